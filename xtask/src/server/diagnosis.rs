//! Why a server would not start: the end of its log and output, and who holds a port it could
//! not bind.

use std::fs::File;
use std::io::Read;

use crate::layout::Layout;
use crate::util::paths::show;

/// The end of the server's log and output, and who holds a port it could not bind.
pub(crate) fn diagnosis(layout: &Layout) -> String {
    let mut text = String::new();
    for file in [layout.log_file(), layout.output_file()] {
        if let Ok(mut f) = File::open(&file) {
            let mut all = String::new();
            let _ = f.read_to_string(&mut all);
            let recent = all
                .rsplit_once("Starting nats-server")
                .map_or(all.as_str(), |(_, after)| after);
            let lines: Vec<&str> = recent.lines().filter(|l| !l.trim().is_empty()).collect();
            let tail = &lines[lines.len().saturating_sub(8)..];
            if !tail.is_empty() {
                text.push_str(&format!(
                    "\n--- last lines of {} ---\n{}",
                    show(&file),
                    tail.join("\n")
                ));
            }
        }
    }
    if let Some(port) = port_in_use(&text) {
        let holder = listeners::get_process_by_port(port, listeners::Protocol::TCP)
            .map(|p| format!(" by pid {} (`{}`)", p.pid, p.name))
            .unwrap_or_default();
        let is_node = layout
            .dir
            .parent()
            .and_then(|dir| dir.file_name())
            .is_some_and(|name| name == "cluster");
        let fix = if is_node {
            "give the cluster other ports with `cargo xtask run --cluster --port N --http-port N \
             --ws-port N --cluster-port N` (node K adds 10·(K-1)); ports a node picked itself \
             are kept in its `ports.json`, which you may delete"
        } else {
            "give this server other ports with `cargo xtask setup --regenerate-config --port N \
             --http-port N --ws-port N`"
        };
        text.insert_str(
            0,
            &format!(": port {port} is already in use{holder}; stop that program, or {fix}"),
        );
    }
    text
}

/// The port in a nats-server error for a port in use, as in
/// `Error listening on port: 127.0.0.1:4222, "address already in use"` (Unix) or
/// `... bind: Only one usage of each socket address ... is normally permitted.` (Windows), or
/// `... bind: winapi error #10048` (WSAEADDRINUSE without its text, as under Wine).
pub(crate) fn port_in_use(log: &str) -> Option<u16> {
    const SAID: [&str; 3] = [
        "address already in use",
        "Only one usage of each socket address",
        "winapi error #10048",
    ];
    let line = log
        .lines()
        .rev()
        .find(|l| SAID.iter().any(|said| l.contains(said)))?;
    line.split(|c: char| {
        !(c.is_ascii_alphanumeric() || c == '.' || c == ':' || c == '[' || c == ']')
    })
    .filter_map(|word| word.trim_end_matches(':').rsplit_once(':')?.1.parse().ok())
    .next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busy_port_is_read_from_the_error() {
        let client = r#"[1] 2026/11/27 09:58:13.486915 [FTL] Error listening on port: 127.0.0.1:4222, "address already in use""#;
        assert_eq!(port_in_use(client), Some(4222));
        let monitor = "[FTL] can't listen to the monitor port: listen tcp 127.0.0.1:8222: bind: address already in use";
        assert_eq!(port_in_use(monitor), Some(8222));
        let ws = "[FTL] Unable to listen for websocket connections: listen tcp [::1]:8223: bind: address already in use";
        assert_eq!(port_in_use(ws), Some(8223));
        let windows = "[FTL] Error listening on port: 127.0.0.1:4222, \"listen tcp 127.0.0.1:4222: bind: Only one usage of each socket address (protocol/network address/port) is normally permitted.\"";
        assert_eq!(port_in_use(windows), Some(4222));
        let wine = "[FTL] Error listening on port: 127.0.0.1:4222, \"listen tcp 127.0.0.1:4222: bind: winapi error #10048\"";
        assert_eq!(port_in_use(wine), Some(4222));
        assert_eq!(port_in_use("[INF] Server is ready"), None);
    }
}

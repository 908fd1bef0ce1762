//! The server process of a checkout: starting it, telling whether it runs, stopping it.
//!
//! The server runs in its directory with `--ports_file_dir` pointing there, so it writes
//! `nats-server_<pid>.ports` with the addresses it really listens on (and removes the file when
//! it exits); `nats-server.pid` records which process is ours.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sysinfo::{
    Pid, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, Signal, System, UpdateKind,
};

use crate::layout::{Layout, show};
use crate::token::TOKEN_VAR;

/// How often a wait on the server looks again.
const POLL: Duration = Duration::from_millis(10);

/// The addresses a running server listens on, from its ports file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoints {
    pub(crate) client: String,
    pub(crate) monitoring: String,
    pub(crate) websocket: Option<String>,
}

impl Endpoints {
    /// Parses a ports file: `{"nats":["nats://h:p"],"monitoring":["http://h:p"],"websocket":[...]}`.
    pub(crate) fn parse(text: &str) -> Result<Endpoints> {
        let ports: serde_json::Value = serde_json::from_str(text).context("not JSON")?;
        let first = |key: &str| {
            ports[key]
                .get(0)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        Ok(Endpoints {
            client: first("nats").context("no client address")?,
            monitoring: first("monitoring")
                .context("no monitoring address: the config needs `http`")?,
            websocket: first("websocket"),
        })
    }

    /// The ports file of the server with `pid`, once it has written it.
    pub(crate) fn of(layout: &Layout, pid: u32) -> Option<Endpoints> {
        let suffix = format!("_{pid}.ports");
        let entries = fs::read_dir(&layout.dir).ok()?;
        let file = entries
            .flatten()
            .find(|e| e.file_name().to_string_lossy().ends_with(&suffix))?;
        Endpoints::parse(&fs::read_to_string(file.path()).ok()?).ok()
    }

    /// `host:port` of the client listener, for a plain TCP connection.
    fn client_address(&self) -> &str {
        self.client.strip_prefix("nats://").unwrap_or(&self.client)
    }
}

pub(crate) fn pid_file(layout: &Layout) -> PathBuf {
    layout.dir.join("nats-server.pid")
}

pub(crate) fn log_file(layout: &Layout) -> PathBuf {
    layout.dir.join("logs/nats.log")
}

/// What the server printed outside its log (errors before the log is open), when detached.
fn output_file(layout: &Layout) -> PathBuf {
    layout.dir.join("logs/nats-server.out")
}

/// The pid of this checkout's server, if it runs. A pid file naming a process that is gone,
/// or that is not our nats-server (the pid was reused), is removed with a message.
pub(crate) fn running(layout: &Layout) -> Result<Option<u32>> {
    let path = pid_file(layout);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", show(&path))),
    };
    let pid: Option<u32> = text.trim().parse().ok();
    match pid {
        Some(pid) if is_our_server(pid, layout) => Ok(Some(pid)),
        _ => {
            let why = match pid {
                Some(pid) if is_alive(pid) => format!("pid {pid} is now another program"),
                Some(pid) => format!("pid {pid} is not running"),
                None => "it holds no pid".to_string(),
            };
            eprintln!("removing stale `{}`: {why}", show(&path));
            fs::remove_file(&path).with_context(|| format!("cannot remove `{}`", show(&path)))?;
            Ok(None)
        }
    }
}

fn process_info(pid: u32) -> (System, Pid) {
    let pid = Pid::from_u32(pid);
    let mut system = System::new();
    let what = ProcessRefreshKind::nothing()
        .with_exe(UpdateKind::Always)
        .with_cmd(UpdateKind::Always);
    system.refresh_processes_specifics(ProcessesToUpdate::Some(&[pid]), true, what);
    (system, pid)
}

pub(crate) fn is_alive(pid: u32) -> bool {
    let (system, pid) = process_info(pid);
    system
        .process(pid)
        .is_some_and(|p| !matches!(p.status(), ProcessStatus::Zombie | ProcessStatus::Dead))
}

/// Whether `pid` is a nats-server started for `layout`: its executable is called nats-server
/// and its command line names this directory as its ports directory. Either alone could
/// match a stranger: another nats-server, or a program that happens to name the directory.
fn is_our_server(pid: u32, layout: &Layout) -> bool {
    let (system, sys_pid) = process_info(pid);
    let Some(process) = system.process(sys_pid) else {
        return false;
    };
    if matches!(
        process.status(),
        ProcessStatus::Zombie | ProcessStatus::Dead
    ) {
        return false;
    }
    let exe_name = process
        .exe()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned());
    let named_nats_server = exe_name
        .as_deref()
        .or(process.name().to_str())
        .is_some_and(|n| n.starts_with("nats-server"));
    let cmd = process.cmd();
    // A command line the OS does not show us (another user's process, an elevated one on
    // Windows) is one we could not signal anyway: the name has to do.
    let ours = cmd.is_empty()
        || cmd.windows(2).any(|pair| {
            pair[0] == "--ports_file_dir" && same_dir(Path::new(&pair[1]), &layout.dir)
        });
    named_nats_server && ours
}

/// Whether two paths name one directory: equal component by component (a trailing slash does
/// not matter), or the same once symbolic links are resolved.
fn same_dir(a: &Path, b: &Path) -> bool {
    a == b || matches!((fs::canonicalize(a), fs::canonicalize(b)), (Ok(a), Ok(b)) if a == b)
}

pub(crate) enum Mode {
    /// Tied to the xtask, printing to its terminal (`run`).
    Foreground,
    /// Outlives the xtask, printing to `logs/nats-server.out` (`run --detach`).
    Detached,
    /// Tied to the xtask, printing to `logs/nats-server.out` (smoke's temporary server).
    Attached,
}

/// Starts the server in its directory with the token in its environment only.
pub(crate) fn spawn(layout: &Layout, token: &str, mode: Mode) -> Result<Child> {
    for dir in [layout.dir.join("data/jetstream"), layout.dir.join("logs")] {
        fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", show(&dir)))?;
    }
    let mut command = Command::new(layout.binary());
    command
        .arg("-c")
        .arg(layout.config())
        .arg("--ports_file_dir")
        .arg(&layout.dir)
        .current_dir(&layout.dir)
        .env(TOKEN_VAR, token)
        .stdin(Stdio::null());
    if matches!(mode, Mode::Detached | Mode::Attached) {
        // Truncated at every start: what an earlier run printed would mislead a diagnosis.
        let out = File::create(output_file(layout))
            .with_context(|| format!("cannot write `{}`", show(&output_file(layout))))?;
        command.stdout(out.try_clone()?).stderr(out);
    }
    match mode {
        Mode::Foreground | Mode::Attached => tie_to_xtask(&mut command),
        Mode::Detached => detach(&mut command),
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start `{}`", show(&layout.binary())))?;
    if let Err(e) = write_pid_file(layout, child.id()) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    Ok(child)
}

/// On Unix the server gets its own process group, so that Ctrl-C reaches only the xtask,
/// which then stops the server gracefully. On Linux the kernel also stops it if the xtask dies.
#[cfg(unix)]
fn tie_to_xtask(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    command.process_group(0);
    #[cfg(target_os = "linux")]
    // SAFETY: prctl is async-signal-safe and touches only the new process.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// On Windows the server shares the console, so Ctrl-C and closing the window reach it too.
#[cfg(windows)]
fn tie_to_xtask(_: &mut Command) {}

/// A detached server outlives the terminal: its own process group on Unix, no console on Windows.
#[cfg(unix)]
fn detach(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    command.process_group(0);
}

#[cfg(windows)]
fn detach(command: &mut Command) {
    use std::os::windows::io::AsRawHandle;
    use std::os::windows::process::CommandExt;
    use windows_sys::Win32::Foundation::{HANDLE_FLAG_INHERIT, SetHandleInformation};
    const DETACHED_PROCESS: u32 = 0x0000_0008;
    const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
    // Windows hands a child every inheritable handle of its parent, the xtask's own stdout and
    // stderr included (rust-lang/rust#54760): a detached server would hold them open, and
    // whoever reads the xtask's output would wait for the server to exit. The standard
    // library duplicates these handles afresh for any child that is meant to inherit them.
    let handles = [
        std::io::stdin().as_raw_handle(),
        std::io::stdout().as_raw_handle(),
        std::io::stderr().as_raw_handle(),
    ];
    for handle in handles.into_iter().filter(|h| !h.is_null()) {
        // SAFETY: a standard handle of this process; only its inheritance flag changes.
        unsafe { SetHandleInformation(handle, HANDLE_FLAG_INHERIT, 0) };
    }
    command.creation_flags(DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP);
}

fn write_pid_file(layout: &Layout, pid: u32) -> Result<()> {
    crate::install::write_atomically(&pid_file(layout), format!("{pid}\n").as_bytes())
}

/// Removes the pid file if it still names `pid`: another run may have written its own since.
pub(crate) fn remove_pid_file(layout: &Layout, pid: u32) {
    let path = pid_file(layout);
    if fs::read_to_string(&path).is_ok_and(|text| text.trim() == pid.to_string()) {
        let _ = fs::remove_file(path);
    }
}

/// Holds `.run.lock` in the server's directory, so that two runs of one checkout cannot both
/// find it stopped and start a server.
pub(crate) fn lock(layout: &Layout) -> Result<File> {
    fs::create_dir_all(&layout.dir)
        .with_context(|| format!("cannot create `{}`", show(&layout.dir)))?;
    let path = layout.dir.join(".run.lock");
    let file = File::create(&path).with_context(|| format!("cannot write `{}`", show(&path)))?;
    file.lock()
        .with_context(|| format!("cannot lock `{}`", show(&path)))?;
    Ok(file)
}

/// Waits until the server is usable: JetStream healthy and an authenticated client answered.
/// A server that exits or misses the deadline is reported with the end of its log; None means
/// `cancelled` said so first.
pub(crate) fn wait_ready(
    child: &mut Child,
    layout: &Layout,
    token: &str,
    timeout: Duration,
    cancelled: &dyn Fn() -> bool,
) -> Result<Option<Endpoints>> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            bail!(
                "nats-server exited during start-up ({status}){}",
                diagnosis(layout)
            );
        }
        if let Some(endpoints) = Endpoints::of(layout, child.id())
            && healthy(&endpoints)
            && ping(&endpoints, token).is_ok()
        {
            return Ok(Some(endpoints));
        }
        if cancelled() {
            return Ok(None);
        }
        if start.elapsed() > timeout {
            bail!(
                "nats-server was not ready within {} s{}",
                timeout.as_secs(),
                diagnosis(layout)
            );
        }
        std::thread::sleep(POLL);
    }
}

/// `/healthz` answers ok, JetStream included.
pub(crate) fn healthy(endpoints: &Endpoints) -> bool {
    let url = format!("{}/healthz?js-enabled-only=true", endpoints.monitoring);
    let agent = quick_agent();
    agent
        .get(&url)
        .call()
        .is_ok_and(|r| r.status().is_success())
}

/// An HTTP client for loopback monitoring requests: no proxy, short timeouts.
pub(crate) fn quick_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(2)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// Connects as a client with `token` and waits for the PONG to a PING: the one round trip
/// that proves clients can use the server. Written against the protocol directly; a client
/// library would bring an async runtime to every `cargo xtask run` for two lines of text.
pub(crate) fn ping(endpoints: &Endpoints, token: &str) -> Result<()> {
    let address = endpoints.client_address();
    let socket = address
        .to_socket_addrs()?
        .next()
        .with_context(|| format!("no address for `{address}`"))?;
    let stream = TcpStream::connect_timeout(&socket, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    if !line.starts_with("INFO ") {
        bail!(
            "`{address}` is not a NATS server: it said `{}`",
            line.trim()
        );
    }
    let connect = serde_json::json!({"auth_token": token, "verbose": false, "pedantic": false, "name": "cargo xtask"});
    (&stream).write_all(format!("CONNECT {connect}\r\nPING\r\n").as_bytes())?;
    line.clear();
    reader.read_line(&mut line)?;
    match line.trim() {
        "PONG" => Ok(()),
        other => bail!("`{address}` refused the client: {other}"),
    }
}

/// Asks our server `pid` to stop gracefully and waits for it; kills it if it does not stop in
/// time. It is looked at again before every signal and while waiting, so a pid that a stranger
/// takes over in the meantime is never signalled.
pub(crate) fn stop(pid: u32, layout: &Layout, timeout: Duration) -> Result<Stopped> {
    let still_ours = || is_our_server(pid, layout);
    if graceful_stop(pid) && wait_gone(timeout, still_ours) {
        return Ok(Stopped::Gracefully);
    }
    if still_ours() {
        kill(pid);
    }
    if wait_gone(Duration::from_secs(5), still_ours) {
        return Ok(Stopped::Killed);
    }
    bail!("nats-server (pid {pid}) is still running after being killed")
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Stopped {
    Gracefully,
    Killed,
}

/// SIGTERM on Unix, which nats-server answers with a clean shutdown (JetStream flushed).
/// Windows has no such signal for a process without a console, so this returns false there.
pub(crate) fn graceful_stop(pid: u32) -> bool {
    let (system, pid) = process_info(pid);
    system
        .process(pid)
        .and_then(|p| p.kill_with(Signal::Term))
        .unwrap_or(false)
}

fn kill(pid: u32) {
    let (system, pid) = process_info(pid);
    if let Some(process) = system.process(pid) {
        process.kill();
    }
}

/// Waits until `running` says no. The server is not our child, so it cannot be waited on.
fn wait_gone(timeout: Duration, running: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    while running() {
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(POLL);
    }
    true
}

/// The end of the server's log and output, and who holds a port it could not bind.
pub(crate) fn diagnosis(layout: &Layout) -> String {
    let mut text = String::new();
    for file in [log_file(layout), output_file(layout)] {
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
        text.insert_str(
            0,
            &format!(
                ": port {port} is already in use{holder}; stop that program, or give this server other ports \
                 with `cargo xtask setup --regenerate-config --port N --http-port N --ws-port N`"
            ),
        );
    }
    text
}

/// The port in a nats-server error for a port in use, as in
/// `Error listening on port: 127.0.0.1:4222, "address already in use"` (Unix) or
/// `... bind: Only one usage of each socket address ... is normally permitted.` (Windows).
pub(crate) fn port_in_use(log: &str) -> Option<u16> {
    let line = log.lines().rev().find(|l| {
        l.contains("address already in use") || l.contains("Only one usage of each socket address")
    })?;
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
    fn ports_files_give_the_endpoints() {
        let text = r#"{"nats":["nats://127.0.0.1:4222"],"monitoring":["http://127.0.0.1:8222"],"websocket":["ws://127.0.0.1:8223"]}"#;
        let endpoints = Endpoints::parse(text).unwrap();
        assert_eq!(endpoints.client, "nats://127.0.0.1:4222");
        assert_eq!(endpoints.client_address(), "127.0.0.1:4222");
        assert_eq!(endpoints.monitoring, "http://127.0.0.1:8222");
        assert_eq!(endpoints.websocket.as_deref(), Some("ws://127.0.0.1:8223"));
        assert!(Endpoints::parse(r#"{"nats":["nats://127.0.0.1:4222"]}"#).is_err());
    }

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
        assert_eq!(port_in_use("[INF] Server is ready"), None);
    }
}

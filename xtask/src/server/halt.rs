//! Stopping the server: asked first, killed only if it will not go, and never a process that
//! is no longer ours.

use std::fs;
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use sysinfo::Signal;

use super::POLL;
use super::identity::{is_our_server, process_info};
use crate::layout::Layout;
use crate::util::files::write_atomically;

/// Asks our server `pid` to stop gracefully and waits for it; kills it if it does not stop in
/// time. It is looked at again before every signal and while waiting, so a pid that a stranger
/// takes over in the meantime is never signalled.
pub(crate) fn stop(pid: u32, layout: &Layout, timeout: Duration) -> Result<Stopped> {
    let still_ours = || is_our_server(pid, layout);
    // For a foreground run of this server, which then knows its exit was asked for. Windows
    // ends the server without a word in its log, so this is the only sign there.
    let _ = write_atomically(&layout.stop_request(), pid.to_string().as_bytes());
    if ask_to_stop(pid) && wait_gone(timeout, still_ours) {
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

/// Stops a server this xtask started and still holds (`what`, in messages), if it runs: asked first, killed only
/// if it will not go within `timeout` (JetStream may be writing its store), then reaped. On
/// Windows, where a process without a console cannot be asked, it is ended at once.
pub(crate) fn shut_down(child: &mut Child, layout: &Layout, what: &str, timeout: Duration) {
    if matches!(child.try_wait(), Ok(None)) {
        let pid = child.id();
        eprintln!("stopping {what} (pid {pid})");
        match stop(pid, layout, timeout) {
            Ok(Stopped::Gracefully) => {}
            Ok(Stopped::Killed) if cfg!(windows) => {}
            Ok(Stopped::Killed) => eprintln!(
                "{what} (pid {pid}) did not stop within {} s and was killed",
                timeout.as_secs()
            ),
            Err(e) => {
                eprintln!("warning: {e:#}");
                let _ = child.kill();
            }
        }
    }
    let _ = child.wait();
}

/// Whether the server `pid`, which has exited, was asked to: by `cargo xtask stop` (which
/// says so in a file), or by a signal, after which nats-server logs a clean shutdown in what
/// its log gained past `log_start`.
pub(crate) fn exit_was_requested(layout: &Layout, pid: u32, log_start: u64) -> bool {
    let marker = layout.stop_request();
    if fs::read_to_string(&marker).is_ok_and(|text| text.trim() == pid.to_string()) {
        let _ = fs::remove_file(marker);
        return true;
    }
    let Ok(log) = fs::read(layout.log_file()) else {
        return false;
    };
    // A log shorter than where it started has been rotated: all of it is new.
    let start = usize::try_from(log_start).unwrap_or(0);
    let new = log.get(start..).unwrap_or(&log);
    let prefix = format!("[{pid}] ");
    String::from_utf8_lossy(new)
        .lines()
        .any(|line| line.starts_with(&prefix) && line.ends_with("[INF] Server Exiting.."))
}

/// Kills our server `pid` at once (SIGKILL on Unix), as a crash would end it, and waits until
/// it is gone.
pub(crate) fn kill_now(pid: u32, layout: &Layout) -> Result<()> {
    let still_ours = || is_our_server(pid, layout);
    if still_ours() {
        kill(pid);
    }
    if !wait_gone(Duration::from_secs(5), still_ours) {
        bail!("nats-server (pid {pid}) is still running after being killed");
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Stopped {
    Gracefully,
    Killed,
}

/// SIGTERM on Unix, which nats-server answers with a clean shutdown (JetStream flushed).
/// Windows has no such signal for a process without a console, so this returns false there.
pub(crate) fn ask_to_stop(pid: u32) -> bool {
    let (system, pid) = process_info(pid);
    system
        .process(pid)
        .and_then(|p| p.kill_with(Signal::Term))
        .unwrap_or(false)
}

/// Asks our server `pid` to reload its config: SIGHUP on Unix. Windows has no such signal for
/// a process without a console, so this returns false there, as it does for a process that is
/// not our server.
pub(crate) fn ask_to_reload(pid: u32, layout: &Layout) -> bool {
    if cfg!(windows) || !is_our_server(pid, layout) {
        return false;
    }
    let (system, pid) = process_info(pid);
    system
        .process(pid)
        .and_then(|p| p.kill_with(Signal::Hangup))
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

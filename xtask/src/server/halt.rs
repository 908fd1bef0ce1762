//! Stopping the server: asked first, killed only if it will not go, and never a process that
//! is no longer ours.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use sysinfo::Signal;

use super::POLL;
use super::identity::{is_our_server, process_info};
use crate::layout::Layout;

/// Asks our server `pid` to stop gracefully and waits for it; kills it if it does not stop in
/// time. It is looked at again before every signal and while waiting, so a pid that a stranger
/// takes over in the meantime is never signalled.
pub(crate) fn stop(pid: u32, layout: &Layout, timeout: Duration) -> Result<Stopped> {
    let still_ours = || is_our_server(pid, layout);
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

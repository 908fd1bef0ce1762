//! The processes a test starts or looks at: by pid, and as children.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
#[cfg(unix)]
use std::process::Command;

use super::{DEADLINE, wait_for};

/// A child process that a failing test does not leave behind: killed when dropped, if it
/// still runs.
pub struct KillOnDrop(pub std::process::Child);

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Whether a process with `pid` exists (a zombie counts as gone).
pub fn alive(pid: u32) -> bool {
    process(pid, |p| {
        !matches!(
            p.status(),
            sysinfo::ProcessStatus::Zombie | sysinfo::ProcessStatus::Dead
        )
    })
    .unwrap_or(false)
}

/// The command line of process `pid`, joined with spaces.
pub fn command_line(pid: u32) -> String {
    let join = |p: &sysinfo::Process| {
        p.cmd()
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    };
    process(pid, join).unwrap_or_default()
}

fn process<T>(pid: u32, look: impl FnOnce(&sysinfo::Process) -> T) -> Option<T> {
    use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};
    let pid = Pid::from_u32(pid);
    let mut system = System::new();
    let what = ProcessRefreshKind::nothing().with_cmd(UpdateKind::Always);
    system.refresh_processes_specifics(ProcessesToUpdate::Some(&[pid]), true, what);
    system.process(pid).map(look)
}

/// The processes (zombies and threads aside) whose command line names `dir`.
pub fn processes_naming(dir: &Path) -> Vec<u32> {
    use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};
    let mut system = System::new();
    let what = ProcessRefreshKind::nothing().with_cmd(UpdateKind::Always);
    system.refresh_processes_specifics(ProcessesToUpdate::All, true, what);
    let dir = dir.to_string_lossy();
    system
        .processes()
        .iter()
        .filter(|(_, p)| {
            p.thread_kind().is_none()
                && !matches!(
                    p.status(),
                    sysinfo::ProcessStatus::Zombie | sysinfo::ProcessStatus::Dead
                )
                && p.cmd()
                    .iter()
                    .any(|a| a.to_string_lossy().contains(dir.as_ref()))
        })
        .map(|(pid, _)| pid.as_u32())
        .collect()
}

/// Waits up to `DEADLINE` for process `pid` to be gone.
pub fn gone(pid: u32) -> bool {
    wait_for(DEADLINE, || (!alive(pid)).then_some(())).is_some()
}

/// Ends `pid` at once, as SIGKILL does on Unix and TerminateProcess on Windows: no clean
/// shutdown.
pub fn kill_hard(pid: u32) {
    let killed = process(pid, |p| p.kill()).unwrap_or(false);
    assert!(killed, "cannot kill pid {pid}");
}

/// Sends `signal` (`TERM`, `INT`, `KILL`) to `pid` with the system's `kill`.
#[cfg(unix)]
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// The lines a child process writes to `pipe`, as they come.
pub fn line_by_line(pipe: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (send, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let _ = send.send(line);
        }
    });
    lines
}

/// A nats-server the test starts itself in a directory of its own, its log read from its
/// stderr. Killed when dropped.
pub struct LoggedServer {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    _dir: tempfile::TempDir,
}

impl LoggedServer {
    /// Starts `server` with `args` in `dir`, which goes with it.
    pub fn start(server: &Path, args: &[&str], dir: tempfile::TempDir) -> LoggedServer {
        let mut child = std::process::Command::new(server)
            .args(args)
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let lines = line_by_line(child.stderr.take().unwrap());
        LoggedServer {
            child,
            lines,
            _dir: dir,
        }
    }

    /// Waits for a log line holding `text`; fails with the lines seen if none comes.
    pub fn wait_for_line(&mut self, text: &str) {
        let mut seen = String::new();
        while let Ok(line) = self.lines.recv_timeout(DEADLINE) {
            if line.contains(text) {
                return;
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        panic!("no `{text}` in:\n{seen}");
    }
}

impl Drop for LoggedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The variable the Wine step sets for the tests it runs under Wine.
const UNDER_WINE_VAR: &str = "NATS_XTASK_UNDER_WINE";

/// Whether the tests run under Wine (the Wine step says so).
pub fn under_wine() -> bool {
    std::env::var_os(UNDER_WINE_VAR).is_some()
}

/// What the xtask says of a port held by the test process: `port N is already in use by pid P`,
/// or under Wine, which never tells who holds a port, `port N is already in use` (the pid is then
/// asserted missing, so that a lookup that starts working there is noticed).
pub fn port_held_by_this_test(port: u16) -> String {
    if under_wine() {
        format!("port {port} is already in use;")
    } else {
        format!(
            "port {port} is already in use by pid {}",
            std::process::id()
        )
    }
}

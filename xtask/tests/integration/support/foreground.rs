//! `cargo xtask run` in the foreground, as a terminal runs it: its output read line by line.

use std::process::{Child, Stdio};
use std::sync::mpsc;

use super::{DEADLINE, Mirror, Ports, Sandbox, ServerBinary, line_by_line, stopped, wait_for};

/// `cargo xtask run` in the foreground, with its output read line by line.
pub struct Foreground {
    pub child: Child,
    /// Its stderr: its own lines and the server's log.
    lines: mpsc::Receiver<String>,
    stdout: mpsc::Receiver<String>,
}

impl Foreground {
    pub fn start(
        sandbox: &Sandbox,
        mirror: &Mirror,
        server: &ServerBinary,
        ports: Ports,
    ) -> Foreground {
        let mut args = vec!["run", "--mirror", &mirror.url, "--version", &server.version];
        let port_args = ports.args();
        args.extend(port_args.iter().map(String::as_str));
        let mut child = sandbox
            .command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = line_by_line(child.stderr.take().unwrap());
        let stdout = line_by_line(child.stdout.take().unwrap());
        Foreground {
            child,
            lines,
            stdout,
        }
    }

    /// The next `count` lines it prints on stdout.
    pub fn stdout_lines(&self, count: usize) -> String {
        let mut seen = String::new();
        for _ in 0..count {
            match self.stdout.recv_timeout(DEADLINE) {
                Ok(line) => seen.push_str(&format!("{line}\n")),
                Err(_) => panic!("only these lines on stdout:\n{seen}"),
            }
        }
        seen
    }

    /// `cargo xtask run` in the foreground, once the xtask says its server is ready:
    /// its own line, after its readiness wait (nats-server's `Server is ready`, which the
    /// xtask shows from the log, comes before the wait is over).
    pub fn ready(sandbox: &Sandbox, mirror: &Mirror, server: &ServerBinary) -> Foreground {
        let run = Foreground::start(sandbox, mirror, server, Ports::picked());
        run.wait_for_line(READY);
        run
    }

    /// How the xtask exited, once it has.
    pub fn exit_status(&mut self) -> std::process::ExitStatus {
        wait_for(DEADLINE, || self.child.try_wait().unwrap()).expect("xtask did not exit")
    }

    /// Stops it as `cargo xtask stop` from another terminal does: asserts what `stop` says of
    /// the server, and that the run then exits 0 saying its server was asked to stop. The
    /// server's pid.
    pub fn stop_from_another_terminal(&mut self, sandbox: &Sandbox) -> u32 {
        let pid = sandbox.recorded_pid().expect("no server is recorded");
        let stop = sandbox.xtask(&["stop"]).ok();
        assert!(stop.stderr.contains(&stopped(pid)), "{}", stop.stderr);
        let status = self.exit_status();
        assert!(status.success(), "{status}");
        self.wait_for_line("was asked to stop");
        pid
    }

    /// Waits for a line containing `text`, returning everything read until then.
    pub fn wait_for_line(&self, text: &str) -> String {
        let mut seen = String::new();
        while let Ok(line) = self.lines.recv_timeout(DEADLINE) {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains(text) {
                return seen;
            }
        }
        panic!("no line with `{text}` in:\n{seen}");
    }
}

/// The end of the xtask's line once its server is ready: `nats-server is ready (pid N);
/// Ctrl-C stops it`.
pub const READY: &str = "; Ctrl-C stops it";

impl Drop for Foreground {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! The server a sandbox runs: the ports it is given, where it listens, and starting it.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::{DEADLINE, Mirror, Run, Sandbox, ServerBinary, wait_for};

impl Sandbox {
    /// The endpoints of the sandbox's running server.
    #[track_caller]
    pub fn endpoints(&self) -> Endpoints {
        let (_, status) = status_json(self);
        let url = |key: &str| {
            status[key]
                .as_str()
                .unwrap_or_else(|| panic!("no {key} in {status}"))
                .to_string()
        };
        Endpoints {
            client: url("client_url"),
            monitoring: url("monitoring_url"),
            // Empty for a server without a WebSocket listener.
            websocket: status["websocket_url"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        }
    }

    /// The pid in the pid file, if there is one.
    pub fn recorded_pid(&self) -> Option<u32> {
        fs::read_to_string(self.nats_dir().join("nats-server.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.nats_dir().join("logs/nats.log")).unwrap_or_default()
    }
}

/// The ports a test asks for: 0, the default, lets the server pick a free one, so tests
/// running side by side never race for a port.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ports {
    pub client: u16,
    pub http: u16,
    pub ws: u16,
}

impl Ports {
    pub fn picked() -> Ports {
        Ports::default()
    }

    /// `--port`, `--http-port` and `--ws-port` for these ports.
    pub fn args(&self) -> Vec<String> {
        let p = |flag: &str, port: u16| [flag.to_string(), port.to_string()];
        [
            p("--port", self.client),
            p("--http-port", self.http),
            p("--ws-port", self.ws),
        ]
        .concat()
    }
}

/// Where a running server listens, as `status --json` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub client: String,
    pub monitoring: String,
    pub websocket: String,
}

/// Stops whatever server a test leaves running.
pub struct StopOnDrop<'a>(pub &'a Sandbox);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.xtask(&["stop", "--timeout", "5"]);
    }
}

/// A nats-server started by hand in the sandbox's directory, as the README says one can
/// (from there, with `NATS_TOKEN` set), with its ports file in that directory. Killed when
/// dropped.
pub struct ByHand {
    pub child: std::process::Child,
    /// The ports file: `{"nats": [...], "monitoring": [...], "websocket": [...]}`.
    pub ports: serde_json::Value,
}

impl ByHand {
    pub fn start(sandbox: &Sandbox, token: &str) -> ByHand {
        let child = Command::new(sandbox.binary())
            .args(["-c", "nats-server.conf", "--ports_file_dir"])
            .arg(sandbox.nats_dir())
            .current_dir(sandbox.nats_dir())
            .env("NATS_TOKEN", token)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // `nats-server_<pid>.ports`, or `nats-server.exe_<pid>.ports` on Windows.
        let suffix = format!("_{}.ports", child.id());
        let mut by_hand = ByHand {
            child,
            ports: serde_json::Value::Null,
        };
        by_hand.ports = wait_for(DEADLINE, || {
            let file = fs::read_dir(sandbox.nats_dir())
                .ok()?
                .flatten()
                .find(|e| e.file_name().to_string_lossy().ends_with(&suffix))?;
            serde_json::from_slice(&fs::read(file.path()).ok()?).ok()
        })
        .expect("the server wrote no ports file");
        by_hand
    }

    /// The first address of `key` in the ports file.
    pub fn url(&self, key: &str) -> String {
        self.ports[key][0].as_str().unwrap().to_string()
    }
}

impl Drop for ByHand {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `status --json`: whether it succeeded (it fails with nothing running, or a node down) and
/// what it reports.
#[track_caller]
pub fn status_json(sandbox: &Sandbox) -> (bool, Value) {
    let run = sandbox.xtask(&["status", "--json"]);
    (run.success, run.json())
}

/// `run --detach` on `ports`, setting up from the mirror, which must succeed.
pub fn detach(sandbox: &Sandbox, mirror: &Mirror, server: &ServerBinary, ports: Ports) -> Run {
    sandbox
        .with_ports(
            &["run", "--detach", "--timeout", READY_WITHIN],
            mirror,
            server,
            ports,
        )
        .ok()
}

/// `run --detach` on ports the server picks, setting up from the mirror; where it listens.
pub fn start(sandbox: &Sandbox, mirror: &Mirror, server: &ServerBinary) -> Endpoints {
    detach(sandbox, mirror, server, Ports::picked());
    sandbox.endpoints()
}

/// `run --detach` on ports the server picks, after `edit` has changed the config setup wrote.
pub fn start_with(
    sandbox: &Sandbox,
    mirror: &Mirror,
    server: &ServerBinary,
    edit: impl FnOnce(String) -> String,
) -> Endpoints {
    sandbox
        .with_ports(&["setup"], mirror, server, Ports::picked())
        .ok();
    sandbox.edit_config(edit);
    sandbox
        .xtask(&["run", "--detach", "--timeout", READY_WITHIN])
        .ok();
    sandbox.endpoints()
}

/// `run --cluster` and `extra` on ports the servers pick, from the mirror.
pub fn cluster_args(mirror: &Mirror, server: &ServerBinary, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "run",
        "--cluster",
        "--timeout",
        READY_WITHIN,
        "--cluster-port",
        "0",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect();
    args.extend([
        "--mirror".into(),
        mirror.url.clone(),
        "--version".into(),
        server.version.clone(),
    ]);
    args.extend(Ports::picked().args());
    args
}

/// `run --cluster --detach` on ports the servers pick, which must succeed.
pub fn start_cluster(sandbox: &Sandbox, mirror: &Mirror, server: &ServerBinary) -> Run {
    let args = cluster_args(mirror, server, &["--detach"]);
    sandbox
        .xtask(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .ok()
}

/// The seconds the start helpers give `run` to have its server ready: tests run side by side,
/// on a machine that may be compiling too.
pub const READY_WITHIN: &str = "120";

/// Whether `shown` is what the log's last lines were at some moment between reading it as
/// `before` and as `after`: a live log may grow while a command reads it.
pub fn the_end_of_the_log_between(shown: &str, before: &str, after: &str) -> bool {
    let shown: Vec<&str> = shown.lines().collect();
    let after: Vec<&str> = after.lines().collect();
    let from = before.lines().count().saturating_sub(shown.len());
    !shown.is_empty()
        && after
            .windows(shown.len())
            .enumerate()
            .any(|(at, window)| at >= from && window == shown.as_slice())
}

/// What `cargo xtask stop` says of the server `pid` it stopped: on Unix it asked, on Windows,
/// which gives no way to ask, it terminated the server, and says why.
pub fn stopped(pid: u32) -> String {
    if cfg!(windows) {
        format!(
            "(pid {pid}) was terminated: Windows gives no way to ask it to shut down cleanly \
             from another program"
        )
    } else {
        format!("(pid {pid}) stopped")
    }
}

/// The `nats-server_<pid>.ports` files in `dir` (`nats-server.exe_<pid>.ports` on Windows).
pub fn ports_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".ports"))
        .collect()
}

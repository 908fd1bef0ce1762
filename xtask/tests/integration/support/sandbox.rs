//! A sandbox for each test: the xtask run against a directory and a cache of its own.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{DEADLINE, Mirror, ServerBinary, binary_name, wait_for};

/// A temporary place for one test: the server's directory and a cache of its own.
pub struct Sandbox {
    pub root: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            root: tempfile::tempdir().unwrap(),
        }
    }

    pub fn nats_dir(&self) -> PathBuf {
        self.root.path().join("nats")
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.root.path().join("cache")
    }

    /// `XDG_CONFIG_HOME` of the xtask run in this sandbox.
    pub fn config_home(&self) -> PathBuf {
        self.root.path().join("config")
    }

    pub fn binary(&self) -> PathBuf {
        self.nats_dir().join(binary_name())
    }

    /// Runs `cargo xtask <args>` against this sandbox's directory and cache.
    pub fn xtask(&self, args: &[&str]) -> Run {
        let mut command = self.command(args);
        Run::from(command.output().unwrap())
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        command.arg("--dir").arg(self.nats_dir()).args(args);
        // Nothing of the developer's shell reaches the xtask under test: no NATS_* variable
        // (NATS_MONITOR_URL, NATS_CLUSTER_PORT, NATS_TOKEN, ...) but the sandbox's cache.
        for (var, _) in std::env::vars_os() {
            if var.to_string_lossy().starts_with("NATS_") {
                command.env_remove(var);
            }
        }
        command.env("NATS_XTASK_CACHE", self.cache_dir());
        // natscli contexts go to the sandbox, never to the user's own.
        command.env("XDG_CONFIG_HOME", self.config_home());
        for var in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ] {
            command.env_remove(var);
        }
        command
    }

    /// The names in `dir` and below, each with its contents (None for a directory), sorted: what
    /// a command that must change nothing is compared on.
    pub fn tree(dir: &Path) -> Vec<(String, Option<Vec<u8>>)> {
        let mut found = Vec::new();
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                found.push((format!("{name}/"), None));
                found.extend(
                    Sandbox::tree(&path)
                        .into_iter()
                        .map(|(inner, bytes)| (format!("{name}/{inner}"), bytes)),
                );
            } else {
                found.push((name, Some(fs::read(&path).unwrap())));
            }
        }
        found.sort();
        found
    }

    /// Scratch that setup must never leave behind.
    pub fn leftovers(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let Ok(entries) = fs::read_dir(self.nats_dir()) else {
            return found;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".setup-") || name.ends_with(".partial") || name.starts_with(".tmp")
            {
                found.push(entry.path());
            }
        }
        found
    }

    /// `cargo xtask <task> --mirror … --version … <ports>`, which must succeed.
    pub fn with_ports(
        &self,
        task: &[&str],
        mirror: &Mirror,
        server: &ServerBinary,
        ports: Ports,
    ) -> Run {
        let mut args = task.to_vec();
        args.extend(["--mirror", &mirror.url, "--version", &server.version]);
        let port_args = ports.args();
        args.extend(port_args.iter().map(String::as_str));
        self.xtask(&args)
    }

    /// The endpoints of the sandbox's running server.
    #[track_caller]
    pub fn endpoints(&self) -> Endpoints {
        let run = self.xtask(&["status", "--json"]);
        let status: serde_json::Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("status --json: {e}: {}{}", run.stdout, run.stderr));
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

    pub fn token(&self) -> String {
        let text = fs::read_to_string(self.nats_dir().join(".env.nats")).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("NATS_TOKEN="))
            .unwrap()
            .to_string()
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

pub struct Run {
    pub success: bool,
    /// The exit code; None when a signal ended the process.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        Run {
            success: out.status.success(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn ok(self) -> Run {
        assert!(
            self.success,
            "xtask failed:\n{}{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts a failure whose message says `what`.
    #[track_caller]
    pub fn fails_with(self, what: &str) -> Run {
        assert!(
            !self.success,
            "xtask succeeded but should have failed with `{what}`:\n{}",
            self.stderr
        );
        assert!(
            self.stderr.contains(what),
            "expected `{what}` in:\n{}",
            self.stderr
        );
        let errors = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .count();
        assert_eq!(errors, 1, "one error message expected:\n{}", self.stderr);
        self
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
    let config = sandbox.nats_dir().join("nats-server.conf");
    let text = fs::read_to_string(&config).unwrap();
    fs::write(&config, edit(text)).unwrap();
    sandbox.xtask(&["run", "--detach"]).ok();
    sandbox.endpoints()
}

/// A config's text without the block that starts with `head` (such as `websocket {`).
pub fn without_block(text: &str, head: &str) -> String {
    let start = text
        .find(head)
        .unwrap_or_else(|| panic!("no {head} in\n{text}"));
    let end = start + text[start..].find("\n}").unwrap() + 2;
    format!("{}{}", &text[..start], &text[end..])
}

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

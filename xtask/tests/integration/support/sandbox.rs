//! A sandbox for each test: the xtask run against a directory and a cache of its own.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::processes::under_wine;
use super::{Mirror, Ports, ServerBinary, binary_name};

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

    /// The server's config, as setup writes it.
    pub fn config_file(&self) -> PathBuf {
        self.nats_dir().join("nats-server.conf")
    }

    /// Rewrites the server's config with `edit`.
    pub fn edit_config(&self, edit: impl FnOnce(String) -> String) {
        let text = fs::read_to_string(self.config_file()).unwrap();
        fs::write(self.config_file(), edit(text)).unwrap();
    }

    /// Runs `cargo xtask <args>` against this sandbox's directory and cache.
    pub fn xtask(&self, args: &[impl AsRef<std::ffi::OsStr>]) -> Run {
        let mut command = self.command(args);
        // Wine 8's CreateProcess now and then fails with ERROR_INTERNAL_ERROR (1359) while
        // many processes start at once (seen once in 226 tests): the xtask never ran, so a
        // second attempt is the same run.
        let mut attempts = 0;
        loop {
            match command.output() {
                Err(e) if e.raw_os_error() == Some(1359) && under_wine() && attempts < 2 => {
                    attempts += 1;
                }
                output => return Run::from(output.unwrap()),
            }
        }
    }

    pub fn command(&self, args: &[impl AsRef<std::ffi::OsStr>]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        command.arg("--dir").arg(self.nats_dir()).args(args);
        // Nothing of the developer's shell reaches the xtask under test: no NATS_* variable
        // (NATS_MONITOR_URL, NATS_CLUSTER_PORT, NATS_TOKEN, ...) but the sandbox's cache, and
        // the client programs prebuilt for a run under Wine, which cannot run cargo.
        for (var, _) in std::env::vars_os() {
            if var.to_string_lossy().starts_with("NATS_") && var != "NATS_XTASK_CLIENTS_DIR" {
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

    pub fn token(&self) -> String {
        let text = fs::read_to_string(self.nats_dir().join(".env.nats")).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("NATS_TOKEN="))
            .unwrap()
            .to_string()
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
    /// What it printed on stdout, which must be JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("no JSON on stdout: {e}:\n{}{}", self.stdout, self.stderr))
    }

    #[track_caller]
    pub fn ok(self) -> Run {
        assert!(
            self.success,
            "xtask failed:\n{}{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts that smoke's report (this run's stdout) has every one of `checks` passed, and
    /// `count` checks, all passed.
    #[track_caller]
    pub fn smoke_passed(self, checks: &[&str], count: usize) -> Run {
        for check in checks {
            assert!(
                self.stdout
                    .lines()
                    .any(|l| l.starts_with("✓") && l.contains(&format!(" {check} "))),
                "no ✓ {check}:\n{}",
                self.stdout
            );
        }
        let total = format!("{count} passed, 0 failed");
        assert_eq!(
            self.stdout.lines().last(),
            Some(total.as_str()),
            "{}",
            self.stdout
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

/// A config's text without the block that starts with `head` (such as `websocket {`).
pub fn without_block(text: &str, head: &str) -> String {
    let start = text
        .find(head)
        .unwrap_or_else(|| panic!("no {head} in\n{text}"));
    let end = start + text[start..].find("\n}").unwrap() + 2;
    format!("{}{}", &text[..start], &text[end..])
}

//! `cargo xtask smoke`: proves that the server works. This part finds the server (or starts a
//! temporary one); the checks themselves are the `xtask-smoke` crate (`xtask/smoke/`), built
//! on first use so that its NATS client does not slow every `cargo xtask` build.

use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::args::{ListenArgs, SourceArgs};
use crate::config::{self, Listen};
use crate::layout::Layout;
use crate::process;
use crate::server::{self, Endpoints, Mode};
use crate::setup::Setup;
use crate::token::{self, TOKEN_VAR};

/// Prove the server works: health, auth, pub/sub, request/reply, JetStream, WebSocket.
///
/// Runs against the server of this checkout with its token. If none is running, starts a
/// temporary one (its own directory, free ports, a token of its own), runs the checks and
/// stops it. Every check runs even when one fails; the exit code is non-zero if any failed.
/// The first run builds the checks (the `xtask-smoke` crate). `--version` and `--mirror` matter
/// only when nothing is installed yet; NATS_XTASK_CACHE and the proxy variables are read as
/// for `setup` then.
#[derive(Debug, clap::Args)]
pub(crate) struct Smoke {
    /// Print the results as one JSON document on stdout.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    source: SourceArgs,
}

impl Smoke {
    pub(crate) fn run(&self, layout: &Layout, root: &Path) -> Result<ExitCode> {
        let (endpoints, token, temporary) = match server::reconcile_pid_file(layout)? {
            Some(pid) => (
                Endpoints::of_running(layout, pid)?,
                token::load(&layout.env_file())?,
                None,
            ),
            None => {
                Setup::for_run(self.source.clone(), ListenArgs::default()).run(layout)?;
                let temporary = Temporary::start(layout)?;
                (
                    temporary.endpoints.clone(),
                    temporary.token.clone(),
                    Some(temporary),
                )
            }
        };
        // Ctrl-C ends the checks (they share the terminal) but not this process, which still
        // has a temporary server to stop and delete.
        ctrlc::set_handler(|| {}).context("cannot handle Ctrl-C")?;
        if !self.json {
            let which = if temporary.is_some() {
                "a temporary server"
            } else {
                "the running server"
            };
            eprintln!("checking {which} at {}", endpoints.client);
        }

        let mut checks = process::cargo();
        checks
            .args([
                "run",
                "--quiet",
                "--package",
                "xtask-smoke",
                "--",
                "--client",
                &endpoints.client,
            ])
            .args(["--monitoring", &endpoints.monitoring])
            .args(
                endpoints
                    .websocket
                    .iter()
                    .flat_map(|url| ["--websocket", url]),
            )
            .args(self.json.then_some("--json"))
            .current_dir(root)
            .env(TOKEN_VAR, &token);
        let deadline = Duration::from_secs(15 * 60);
        let exit = if self.json {
            // The report gains which server was checked.
            checks.stdout(Stdio::piped());
            let output = process::run_unchecked(checks, deadline)?;
            let mut report: Value = serde_json::from_slice(&output.stdout).with_context(|| {
                format!(
                    "the smoke checks printed no report: {}",
                    String::from_utf8_lossy(&output.stdout)
                )
            })?;
            report["server"] = match &temporary {
                Some(t) => json!({"temporary": true, "pid": t.pid, "dir": t.dir.path()}),
                None => json!({"temporary": false}),
            };
            println!("{report}");
            output.status
        } else {
            process::run_unchecked(checks, deadline)?.status
        };
        drop(temporary);
        Ok(if exit.success() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
}

/// A server of its own for one smoke run: a temporary directory, ports the server picks, a
/// fresh token in its environment only. Stopped and deleted when dropped.
struct Temporary {
    layout: Layout,
    dir: tempfile::TempDir,
    child: std::process::Child,
    pid: u32,
    endpoints: Endpoints,
    token: String,
}

impl Temporary {
    fn start(checkout: &Layout) -> Result<Temporary> {
        let dir = tempfile::Builder::new()
            .prefix("nats-smoke-")
            .tempdir()
            .context("cannot create a temporary directory")?;
        let layout = Layout::with_binary(dir.path().to_path_buf(), checkout.binary());
        std::fs::write(
            layout.config(),
            config::render(&Listen::loopback_on_free_ports()),
        )
        .with_context(|| format!("cannot write `{}`", layout.config().display()))?;
        let token = token::generate()?;
        let mut child = server::spawn(&layout, &token, Mode::Attached)?;
        let ready = server::wait_ready(
            &mut child,
            &layout,
            &token,
            Duration::from_secs(30),
            &|| false,
        );
        match ready.and_then(|ready| ready.context("cancelled")) {
            Ok(endpoints) => Ok(Temporary {
                layout,
                dir,
                pid: child.id(),
                child,
                endpoints,
                token,
            }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e.context("cannot start a temporary nats-server"))
            }
        }
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if let Err(e) = server::stop(self.pid, &self.layout, Duration::from_secs(10)) {
            eprintln!("warning: {e:#}");
        }
        let _ = self.child.wait();
    }
}

//! `cargo xtask smoke`: proves that the server works. This part finds the server (or starts a
//! temporary one); the checks themselves are the `xtask-smoke` crate (`xtask/smoke/`), built
//! on first use so that its NATS client does not slow every `cargo xtask` build.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::args::{ListenArgs, SourceArgs};
use crate::cluster;
use crate::config::{self, Listen};
use crate::layout::Layout;
use crate::process;
use crate::server::{self, Endpoints, Mode};
use crate::setup::Setup;
use crate::token::{self, ServerEnv, TOKEN_VAR};

/// Prove the server works: health, auth, pub/sub, request/reply, JetStream, WebSocket.
///
/// Runs against the server of this checkout with its token: the one `run` started, else
/// whatever answers on the ports of this checkout's config (say, a server started by hand).
/// If nothing does, starts a temporary one (its own directory, free ports, a token of its own),
/// runs the checks and stops it. It says which server it checked. Every check runs even when
/// one fails; the exit code is non-zero if any failed.
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
        // Built first, without the token: no build script or proc-macro ever sees it.
        let checks = build_checks(root)?;
        let target = self.target(layout)?;
        // Ctrl-C ends the checks (they share the terminal) but not this process, which still
        // has a temporary server to stop and delete.
        ctrlc::set_handler(|| {}).context("cannot handle Ctrl-C")?;
        let endpoints = &target.endpoints;
        let server = target.describe();
        if !self.json {
            eprintln!(
                "checking {}",
                server["summary"].as_str().unwrap_or_default()
            );
        }

        let mut run = Command::new(&checks);
        run.args(["--client", &endpoints.client])
            .args(["--monitoring", &endpoints.monitoring])
            .args(
                endpoints
                    .websocket
                    .iter()
                    .flat_map(|url| ["--websocket", url]),
            )
            .args(self.json.then_some("--json"))
            .args(target.node_args())
            .env(TOKEN_VAR, &target.token);
        let deadline = Duration::from_secs(5 * 60);
        let exit = if self.json {
            // The report gains which server was checked.
            run.stdout(Stdio::piped());
            let output = process::run_unchecked(run, deadline)?;
            let mut report: Value = serde_json::from_slice(&output.stdout).with_context(|| {
                format!(
                    "the smoke checks printed no report: {}",
                    String::from_utf8_lossy(&output.stdout)
                )
            })?;
            report["server"] = server;
            println!("{report}");
            output.status
        } else {
            process::run_unchecked(run, deadline)?.status
        };
        drop(target);
        Ok(if exit.success() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }

    /// The server to check: the one recorded as this checkout's; else whatever answers on the
    /// ports of this checkout's config (a server started without the xtask, or another
    /// clone's); else a temporary one.
    fn target(&self, layout: &Layout) -> Result<Target> {
        if let Some(pid) = server::reconcile_pid_file(layout)? {
            return Ok(Target {
                endpoints: Endpoints::of_running(layout, pid)?,
                token: token::load(&layout.env_file())?,
                kind: Kind::Recorded { pid },
            });
        }
        let names = cluster::recorded_names(layout);
        let running = cluster::running(layout)?;
        if !running.is_empty() {
            let down: Vec<&str> = names
                .iter()
                .filter(|name| !running.iter().any(|(n, _)| n == *name))
                .map(String::as_str)
                .collect();
            if !down.is_empty() {
                bail!(
                    "nodes {} of the cluster are not running: `cargo xtask run --cluster \
                     --detach` starts them",
                    down.join(", ")
                );
            }
            let mut nodes = Vec::new();
            for (name, pid) in &running {
                nodes.push((
                    name.clone(),
                    Endpoints::of_running(&layout.node(name), *pid)?,
                ));
            }
            return Ok(Target {
                endpoints: nodes[0].1.clone(),
                token: token::load(&layout.env_file())?,
                kind: Kind::Cluster { nodes },
            });
        }
        if let Some(endpoints) = answering_on_configured_ports(layout) {
            let token = token::load(&layout.env_file()).with_context(|| {
                format!(
                    "a server answers at {}, the address in this checkout's config, but \
                     this checkout has no token to check it with",
                    endpoints.client
                )
            })?;
            return Ok(Target {
                endpoints,
                token,
                kind: Kind::Answering,
            });
        }
        Setup::for_run(self.source.clone(), ListenArgs::default()).run(layout)?;
        let temporary = Temporary::start(layout)?;
        Ok(Target {
            endpoints: temporary.endpoints.clone(),
            token: temporary.token.clone(),
            kind: Kind::Temporary(Box::new(temporary)),
        })
    }
}

/// Builds the checks (`cargo build --package xtask-smoke`) without the token in the
/// environment, and returns the executable.
fn build_checks(root: &Path) -> Result<PathBuf> {
    let output = process::run_unchecked(build_command(root), Duration::from_secs(15 * 60))?;
    if !output.status.success() {
        // Cargo's JSON messages are on stdout; what it says to people is on stderr.
        let said = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = said.lines().collect();
        bail!(
            "cannot build the smoke checks (`cargo build --package xtask-smoke`, {}):\n{}",
            output.status,
            lines[lines.len().saturating_sub(20)..].join("\n")
        );
    }
    executable(&String::from_utf8_lossy(&output.stdout), "xtask-smoke")
        .context("cargo built the smoke checks but named no executable")
}

fn build_command(root: &Path) -> Command {
    let mut build = process::cargo();
    build
        .args(["build", "--quiet", "--package", "xtask-smoke"])
        .arg("--message-format=json-render-diagnostics")
        .current_dir(root)
        .env_remove(TOKEN_VAR)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    build
}

/// The executable of binary `name` in cargo's JSON messages.
fn executable(messages: &str, name: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
}

/// The endpoints of a server answering on the addresses in this checkout's config, if one
/// does.
fn answering_on_configured_ports(layout: &Layout) -> Option<Endpoints> {
    let listen = config::read_listen(&fs::read_to_string(layout.config()).ok()?);
    if listen.port <= 0 || listen.http_port <= 0 {
        return None;
    }
    let at = |port: i32| config::reachable(&listen.host, port);
    let monitoring = format!("http://{}", at(listen.http_port)?);
    xtask_probe::get_json(
        &xtask_probe::monitoring_agent(),
        &format!("{monitoring}/varz"),
    )
    .ok()?;
    Some(Endpoints {
        client: format!("nats://{}", at(listen.port)?),
        monitoring,
        websocket: at(listen.ws_port).map(|address| format!("ws://{address}")),
        cluster: None,
        exposed: Vec::new(),
    })
}

/// The server one smoke run checks.
struct Target {
    endpoints: Endpoints,
    token: String,
    kind: Kind,
}

enum Kind {
    /// This checkout's server, recorded in its pid file.
    Recorded { pid: u32 },
    /// This checkout's cluster, checked through its first node.
    Cluster { nodes: Vec<(String, Endpoints)> },
    /// A server answering on this checkout's configured ports, not started by the xtask.
    Answering,
    /// Started for this run, stopped and deleted when dropped.
    Temporary(Box<Temporary>),
}

impl Target {
    /// `--node NAME=MONITORING_URL` for every node of a cluster.
    fn node_args(&self) -> Vec<String> {
        match &self.kind {
            Kind::Cluster { nodes } => nodes
                .iter()
                .flat_map(|(name, endpoints)| {
                    [
                        "--node".to_string(),
                        format!("{name}={}", endpoints.monitoring),
                    ]
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Which server this is, as the report gives it, with a line for people (`summary`). What
    /// the server says of itself comes from `/varz`: an answering server may be another
    /// clone's or a container's.
    fn describe(&self) -> Value {
        let varz = xtask_probe::get_json(
            &xtask_probe::monitoring_agent(),
            &format!("{}/varz", self.endpoints.monitoring),
        )
        .unwrap_or(Value::Null);
        let text = |key: &str| varz[key].as_str().unwrap_or("?").to_string();
        let (version, name, id) = (text("version"), text("server_name"), text("server_id"));
        let mut server = json!({
            "client_url": self.endpoints.client,
            "version": varz["version"],
            "name": varz["server_name"],
            "id": varz["server_id"],
        });
        let which = match &self.kind {
            Kind::Recorded { pid } => {
                server["kind"] = json!("recorded");
                server["pid"] = json!(pid);
                format!("the server of this checkout (pid {pid})")
            }
            Kind::Cluster { nodes } => {
                server["kind"] = json!("cluster");
                server["nodes"] = json!(nodes.iter().map(|(name, _)| name).collect::<Vec<_>>());
                format!(
                    "this checkout's cluster of {} nodes, through {}",
                    nodes.len(),
                    nodes[0].0
                )
            }
            Kind::Answering => {
                server["kind"] = json!("answering");
                "the server answering on this checkout's configured ports, which the xtask did \
                 not start (it may be another clone's or a container's)"
                    .to_string()
            }
            Kind::Temporary(temporary) => {
                server["kind"] = json!("temporary");
                server["pid"] = json!(temporary.pid);
                server["dir"] = json!(temporary.dir.path());
                "a temporary server".to_string()
            }
        };
        server["temporary"] = json!(matches!(self.kind, Kind::Temporary(_)));
        server["summary"] = json!(format!(
            "{which}: nats-server v{version} \"{name}\" ({id}) at {}",
            self.endpoints.client
        ));
        server
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
        let mut child = server::spawn(&layout, &ServerEnv::single(token.clone()), Mode::Attached)?;
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
                server::shut_down(
                    &mut child,
                    &layout,
                    "the temporary nats-server",
                    Duration::from_secs(10),
                );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checks_are_built_without_the_token() {
        let build = build_command(Path::new("."));
        let token = build.get_envs().find(|(name, _)| *name == TOKEN_VAR);
        assert_eq!(
            token,
            Some((std::ffi::OsStr::new(TOKEN_VAR), None)),
            "not removed"
        );
    }

    #[test]
    fn the_executable_is_read_from_cargos_messages() {
        let messages = [
            r#"{"reason":"compiler-artifact","target":{"name":"xtask-probe"},"executable":null}"#,
            r#"{"reason":"compiler-artifact","target":{"name":"xtask-smoke"},"executable":"/t/debug/xtask-smoke"}"#,
            r#"{"reason":"build-finished","success":true}"#,
        ]
        .join("\n");
        assert_eq!(
            executable(&messages, "xtask-smoke"),
            Some(PathBuf::from("/t/debug/xtask-smoke"))
        );
        assert_eq!(executable(&messages, "other"), None);
    }
}

//! `cargo xtask smoke`: proves that the server works. This part finds the server (or starts a
//! temporary one) and does what the checks ask of it (stopping and starting nodes); the checks
//! themselves are the `xtask-smoke` program of the `xtask-clients` crate (`xtask/clients/`),
//! built on first use so that its NATS client does not slow every `cargo xtask` build.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::args::SourceArgs;
use crate::clients::target::Target;
use crate::clients::{self, Program};
use crate::layout::Layout;
use crate::server::tls::ClientFiles;
use crate::util::process;

/// How long the checks may take in all.
const DEADLINE: Duration = Duration::from_secs(5 * 60);
/// The failover check's request protocol: a line the checks print that starts with this asks
/// the xtask to stop or start a node (`@xtask stop n2 graceful`, `@xtask start n2`), and the
/// answer goes to their stdin, `ok` or `failed: why`. The checks' side is
/// `xtask_clients::REQUEST_PREFIX` (`xtask/clients/src/lib.rs`): a constant on each side, since
/// the xtask does not depend on that crate, whose client would weigh on its build.
const REQUEST_PREFIX: &str = "@xtask ";

/// Prove the server works: health, auth, pub/sub, request/reply, JetStream, WebSocket.
///
/// Runs against the server of this checkout with its token: the one `run` started, or its
/// cluster, else whatever answers on the ports of this checkout's config (say, a server
/// started by hand). If nothing does, starts a temporary one (its own directory, free ports, a
/// token of its own), runs the checks and stops it. It says which server it checked. Every
/// check runs even when one fails; the exit code is 1 if any failed, 130 after Ctrl-C (the
/// check under way finishes, the rest are skipped).
///
/// Against a cluster it also checks the routes, the meta group and a stream replicated to
/// every node; `--failover` then stops the node leading a replicated stream while a client
/// publishes to it, proves that no acknowledged message is lost, and starts the node again.
///
/// The first run builds the checks (the `xtask-clients` crate). `--version` and `--mirror` matter
/// only when nothing is installed yet; NATS_XTASK_CACHE and the proxy variables are read as
/// for `setup` then.
#[derive(Debug, clap::Args)]
pub(crate) struct Smoke {
    /// Print the results as one JSON document on stdout.
    #[arg(long)]
    json: bool,

    /// Check a cluster: this checkout's if it runs, else a temporary one of 3 nodes.
    #[arg(long)]
    cluster: bool,

    /// Also stop the node leading a replicated stream while publishing to it (gracefully),
    /// prove that every acknowledged message is kept, and start the node again on its own
    /// ports. Checks a cluster, as `--cluster` does.
    #[arg(long)]
    failover: bool,

    /// With --failover: kill the leader (SIGKILL on Unix), as a crash would end it.
    #[arg(long, requires = "failover")]
    kill: bool,

    #[command(flatten)]
    source: SourceArgs,
}

impl Smoke {
    pub(crate) fn run(&self, layout: &Layout, root: &Path) -> Result<ExitCode> {
        // Built first, without the token: no build script or proc-macro ever sees it.
        let checks = clients::build(root, Program::Smoke)?;
        let mut target = Target::find(layout, self.cluster || self.failover, &self.source)?;
        // Ctrl-C ends the checks (they share the terminal) but not this process, which still
        // has a temporary server to stop and delete, or a node to start again.
        ctrlc::set_handler(|| {}).context("cannot handle Ctrl-C")?;
        let server = target.describe();
        if !self.json {
            eprintln!(
                "checking {}",
                server["summary"].as_str().unwrap_or_default()
            );
        }

        let endpoints = &target.endpoints;
        let mut run = Command::new(&checks);
        run.args(["--client", &endpoints.client])
            .args(["--monitoring", &endpoints.monitoring])
            .args(
                endpoints
                    .websocket
                    .iter()
                    .flat_map(|url| ["--websocket", url]),
            )
            .args(["--max-payload", &target.max_payload(layout)?.to_string()])
            .args(self.json.then_some("--json"))
            .args(target.node_args()?)
            .envs(ClientFiles::of(layout)?.iter().flat_map(ClientFiles::env));
        target.hand_on(&mut run);
        if self.failover {
            let how = if self.kill { "kill" } else { "graceful" };
            run.args(["--failover", how]);
        }
        let outcome = self.converse(run, &mut target);
        if let Some(nodes) = target.cluster() {
            nodes.restore();
        }
        let (status, printed) = outcome?;
        // Interrupted (130) or ended by a signal: there is no report to print.
        let ended = matches!(status.code(), Some(130) | None);
        if status.code().is_none() {
            eprintln!("the smoke checks were ended ({status}) before they finished");
        }
        if self.json && !ended {
            // The report gains which server was checked.
            let mut report: Value = serde_json::from_str(&printed).with_context(|| {
                format!("the smoke checks printed no report ({status}): {printed}")
            })?;
            report["server"] = server;
            println!("{report}");
        }
        drop(target);
        Ok(process::exit_code(status))
    }

    /// Runs the checks until they exit, doing what they ask of the cluster as they ask it.
    /// What they print goes to stdout as it comes, or is returned for `--json`.
    fn converse(&self, mut run: Command, target: &mut Target) -> Result<(ExitStatus, String)> {
        let mut child = run
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start the smoke checks")?;
        let mut answers = child.stdin.take().context("no pipe to the checks")?;
        let lines = child.stdout.take().context("no pipe from the checks")?;
        let (sender, printed) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(lines).lines() {
                if line.as_ref().is_err() || sender.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + DEADLINE;
        let mut report = String::new();
        loop {
            let line =
                match printed.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(line) => line.context("cannot read what the checks print")?,
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        stop_checks(&mut child);
                        bail!(
                            "the smoke checks did not finish within {} s and were stopped",
                            DEADLINE.as_secs()
                        );
                    }
                };
            if let Some(request) = line.strip_prefix(REQUEST_PREFIX) {
                let answer = match target.cluster() {
                    Some(nodes) => nodes.answer(request),
                    None => "failed: the server checked is not a cluster".to_string(),
                };
                // Checks that have gone no longer need the answer.
                let _ = writeln!(answers, "{answer}");
            } else if self.json {
                report.push_str(&line);
            } else {
                println!("{line}");
            }
        }
        Ok((child.wait()?, report))
    }
}

fn stop_checks(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

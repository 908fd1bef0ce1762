//! `cargo xtask run`: start the server, in the foreground with its log shown, or detached.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

mod cluster;

use crate::args::{ListenArgs, SourceArgs};
use crate::install::{self, SetupOptions};
use crate::layout::Layout;
use crate::lifecycle::{self, Say};
use crate::natscli::{self, Owner};
use crate::server::follow::LogFollower;
use crate::server::secrets::{self, ServerEnv};
use crate::server::{self, Endpoints, Mode};
use crate::util::units;

/// Start the server (installing and configuring it first if needed).
///
/// In the foreground (the default) the server's log is shown live and Ctrl-C stops it
/// cleanly. With `--detach` it runs in the background and this returns once clients can use
/// it. The token from `.env.nats` goes into the server's environment only.
///
/// With `--cluster`, a local JetStream cluster of 3 (or 5) nodes from the same binary, node K
/// in `cluster/nK/` on the ports given plus 10·(K-1), its routes authenticated with a password
/// kept in `.env.nats`.
///
/// Environment: NATS_SERVER_MIRROR, NATS_HOST, NATS_PORT, NATS_HTTP_PORT, NATS_WS_PORT and
/// NATS_CLUSTER_PORT as below; NATS_XTASK_CACHE and the proxy variables as for `setup`, when
/// it installs.
#[derive(Debug, clap::Args)]
pub(crate) struct Run {
    /// Run in the background; stop it with `cargo xtask stop`.
    #[arg(long)]
    detach: bool,

    /// Run a local cluster instead of the single server.
    #[arg(long)]
    cluster: bool,

    /// Nodes of the cluster: 3 or 5 [default: the existing cluster's, else 3]
    #[arg(long, value_name = "N", value_parser = parse_nodes, requires = "cluster")]
    nodes: Option<usize>,

    /// Route port of the cluster's first node; 0 lets the server pick [default: 6222]
    #[arg(long, env = "NATS_CLUSTER_PORT")]
    cluster_port: Option<u16>,

    /// Seconds to wait for the server to become ready.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    timeout: u64,

    #[command(flatten)]
    source: SourceArgs,

    #[command(flatten)]
    listen: ListenArgs,
}

/// A cluster of 3 or 5: one that can lose a node and keep a quorum, and not more nodes than
/// a laptop wants to run.
fn parse_nodes(text: &str) -> Result<usize> {
    match text.parse() {
        Ok(n @ (3 | 5)) => Ok(n),
        _ => bail!("a local cluster has 3 or 5 nodes, not `{text}`"),
    }
}

impl Run {
    /// `root` is the checkout, whose natscli contexts follow the server that runs.
    pub(crate) fn run(&self, layout: &Layout, root: Option<&Path>) -> Result<()> {
        let made = crate::util::files::topmost_missing(&layout.dir);
        let first_lock = !layout.run_lock().exists();
        // One run at a time per directory, from "is it running?" until it is.
        let lock = server::run_lock(layout)?;
        let outcome = self.start(layout, root, lock);
        if outcome.is_err() && first_lock {
            // A failed first run leaves nothing behind, not even its lock and the directories
            // it made for it (setup removes what it made itself).
            server::forget_run_lock(layout, made.as_deref());
        }
        outcome
    }

    fn start(&self, layout: &Layout, root: Option<&Path>, lock: std::fs::File) -> Result<()> {
        let contexts = Owner::of(layout, root);
        if self.cluster {
            return cluster::run(self, layout, lock, &contexts);
        }
        let nodes = crate::cluster::running(layout)?;
        if !nodes.is_empty() {
            let names: Vec<&str> = nodes.iter().map(|(name, _)| name.as_str()).collect();
            bail!(
                "this checkout's cluster runs ({}): the single server cannot run beside it; \
                 `cargo xtask stop` stops the cluster",
                units::named("node", &names)
            );
        }
        if let Some(pid) = server::reconcile_pid_file(layout)? {
            eprintln!("nats-server is already running (pid {pid})");
            let endpoints = Endpoints::of(layout, pid);
            say_what_is_ignored(&self.source, endpoints.as_ref(), &self.listen);
            if let Some(endpoints) = &endpoints {
                lifecycle::print_endpoints(endpoints, Say::Stdout);
            }
            return Ok(());
        }
        install::setup(
            layout,
            &SetupOptions::for_run(self.source.clone(), self.listen.clone()),
        )?;
        let timeout = Duration::from_secs(self.timeout);
        if self.detach {
            lifecycle::start_single(layout, timeout, Say::Stdout)?;
            natscli::follow(&contexts, layout);
            Ok(())
        } else {
            let env = ServerEnv::single(secrets::load(&layout.env_file())?);
            foreground(layout, &env, timeout, lock, &contexts)
        }
    }
}

/// Says which options do not apply to a server that already runs, and what would apply them:
/// its binary is not replaced under it, nor are its ports moved.
fn say_what_is_ignored(source: &SourceArgs, running: Option<&Endpoints>, listen: &ListenArgs) {
    if let Some(version) = source.version {
        let runs = running.and_then(|endpoints| {
            let agent = endpoints.agent();
            let varz = xtask_probe::get_json(&agent, &format!("{}/varz", endpoints.monitoring));
            Some(varz.ok()?["version"].as_str()?.to_string())
        });
        if runs.as_deref() != Some(version.to_string().as_str()) {
            let runs = runs.map_or_else(String::new, |v| format!(" (it runs {v})"));
            eprintln!(
                "--version {version} is ignored: the server already runs{runs}, and its binary \
                 is not replaced under it; `cargo xtask setup --version {version}` installs it \
                 and `cargo xtask restart` runs it"
            );
        }
    }
    if listen.any_given() {
        eprintln!(
            "the listen options are ignored: the server already runs on its ports; `cargo xtask \
             stop` first, or `cargo xtask setup --regenerate-config` with them and `cargo xtask \
             restart`"
        );
    }
}

enum Event {
    Interrupted,
    Exited(std::io::Result<std::process::ExitStatus>),
}

fn foreground(
    layout: &Layout,
    env: &ServerEnv,
    timeout: Duration,
    lock: std::fs::File,
    contexts: &Owner,
) -> Result<()> {
    let (events, next_event) = mpsc::channel();
    let on_signal = events.clone();
    ctrlc::set_handler(move || {
        let _ = on_signal.send(Event::Interrupted);
    })
    .context("cannot handle Ctrl-C")?;

    let log = layout.log_file();
    let log_start = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    crate::server::auth::place_streams(layout)?;
    let auth = crate::server::auth::checks(layout, &env.token)?;
    let mut child = server::spawn(layout, env, Mode::Foreground)?;
    let pid = child.id();
    let _pid_file = PidFileGuard(layout.clone(), pid);
    let follower = LogFollower::start(log, log_start, "");

    let interrupted = || matches!(next_event.try_recv(), Ok(Event::Interrupted));
    let ready = match server::wait_ready(&mut child, layout, &auth, timeout, &interrupted) {
        Ok(ready) => ready,
        Err(e) => {
            server::shut_down(&mut child, layout, "nats-server", lifecycle::STOP_TIMEOUT);
            return Err(e);
        }
    };
    drop(lock);
    if let Some(endpoints) = &ready {
        follower.catch_up();
        eprintln!("nats-server is ready (pid {pid}); Ctrl-C stops it");
        lifecycle::print_endpoints(endpoints, Say::Stdout);
        natscli::follow(contexts, layout);
    }
    std::thread::spawn(move || {
        let _ = events.send(Event::Exited(child.wait()));
    });
    if ready.is_some()
        && let Ok(Event::Exited(status)) = next_event.recv()
    {
        follower.finish();
        let status = status?;
        if server::exit_was_requested(layout, pid, log_start) {
            // Its own exit status says nothing more: nats-server exits 1 even when asked.
            eprintln!("nats-server was asked to stop by another program, and stopped");
            return Ok(());
        }
        bail!(
            "nats-server stopped by itself ({status}){}",
            server::diagnosis(layout)
        );
    }

    eprintln!("stopping nats-server (pid {pid})");
    // On Windows, Ctrl-C has reached the server as well.
    if cfg!(unix) {
        server::ask_to_stop(pid);
    }
    let deadline = std::time::Instant::now() + lifecycle::STOP_TIMEOUT;
    let outcome = loop {
        match next_event.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
        {
            Ok(Event::Exited(_)) => break Ok(()),
            Ok(Event::Interrupted) => eprintln!(
                "still stopping nats-server cleanly; it is killed after {} s",
                lifecycle::STOP_TIMEOUT.as_secs()
            ),
            Err(_) => {
                server::stop(pid, layout, Duration::ZERO)?;
                break Err(anyhow::anyhow!(
                    "nats-server did not stop within {} s and was killed",
                    lifecycle::STOP_TIMEOUT.as_secs()
                ));
            }
        }
    };
    follower.finish();
    if outcome.is_ok() {
        eprintln!("nats-server stopped");
    }
    outcome
}

/// Removes the pid file when a foreground run ends, however it ends.
struct PidFileGuard(Layout, u32);

impl Drop for PidFileGuard {
    fn drop(&mut self) {
        server::remove_pid_file(&self.0, self.1);
    }
}

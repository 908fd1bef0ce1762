//! What of a checkout runs (its single server, its cluster, or nothing), stopping it, and
//! starting it in the background as it ran: `stop`, `run --detach`, `restart`, `reset` and
//! `token rotate` share this.

use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::cluster::{self, Node, Secrets};
use crate::layout::Layout;
use crate::server::reload::Target;
use crate::server::secrets::{self, ServerEnv};
use crate::server::{self, Endpoints, Mode, Stopped};

/// The exit code for "not running" (LSB init scripts: program is not running), as `status`
/// and `monitor --once` give it.
pub(crate) const NOT_RUNNING: u8 = 3;

/// Where the addresses of a server started go: stdout for the tasks whose output they are
/// (`run`, `restart`), stderr for those that only restart on the way (`reset`,
/// `token rotate --show-token`, whose stdout is the token).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Say {
    Stdout,
    Stderr,
}

impl Say {
    fn line(self, text: &str) {
        match self {
            Say::Stdout => println!("{text}"),
            Say::Stderr => eprintln!("{text}"),
        }
    }
}

/// What of a checkout runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Running {
    Nothing,
    Single {
        pid: u32,
    },
    /// The cluster's nodes (all of them), and those that run.
    Cluster {
        names: Vec<String>,
        running: Vec<String>,
    },
}

impl Running {
    /// The servers that run, to be reloaded: the single server, or each running node (only
    /// `node`, when one is named), with a word for each node that does not run.
    pub(crate) fn servers(&self, layout: &Layout, node: Option<&str>) -> Result<Vec<Target>> {
        let mut targets = Vec::new();
        match self {
            Running::Nothing => {}
            Running::Single { pid } => targets.push(Target {
                what: "nats-server".to_string(),
                layout: layout.clone(),
                pid: *pid,
            }),
            Running::Cluster { names, running } => {
                for name in names.iter().filter(|n| node.is_none_or(|node| node == *n)) {
                    let node_layout = layout.node(name);
                    match server::reconcile_pid_file(&node_layout)? {
                        Some(pid) if running.contains(name) => targets.push(Target {
                            what: format!("node {name}"),
                            layout: node_layout,
                            pid,
                        }),
                        _ => eprintln!(
                            "node {name} is not running: it reads its config when it starts"
                        ),
                    }
                }
            }
        }
        Ok(targets)
    }

    /// Looks: the single server, else the cluster's nodes. Stale pid files are removed.
    pub(crate) fn now(layout: &Layout) -> Result<Running> {
        if let Some(pid) = server::reconcile_pid_file(layout)? {
            return Ok(Running::Single { pid });
        }
        let running: Vec<String> = cluster::running(layout)?
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        if running.is_empty() {
            return Ok(Running::Nothing);
        }
        Ok(Running::Cluster {
            names: cluster::recorded_names(layout),
            running,
        })
    }

    /// Stops what runs, gracefully: every node of a cluster at once.
    pub(crate) fn stop(&self, layout: &Layout, timeout: Duration) -> Result<()> {
        match self {
            Running::Nothing => Ok(()),
            Running::Single { .. } => stop_server(layout, "nats-server", timeout),
            Running::Cluster { names, .. } => stop_nodes(layout, names, timeout),
        }
    }

    /// Stops what runs, does `meanwhile` (with nothing running), and starts it again as it
    /// ran: `restart`, `reset` and `token rotate`.
    pub(crate) fn restart(
        &self,
        layout: &Layout,
        timeout: Duration,
        say: Say,
        meanwhile: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        self.stop(layout, timeout)?;
        // What ran runs again, even when `meanwhile` failed: the failure is told, and the
        // server is not left down for it.
        let done = meanwhile();
        let started = self.start_again(layout, timeout, say);
        match (done, started) {
            (Ok(()), started) => started,
            (Err(e), Ok(())) => Err(e.context("the server was started again as it was")),
            (Err(e), Err(start)) => Err(e.context(format!(
                "and the server could not be started again: {start:#}"
            ))),
        }
    }

    /// Starts it again in the background as it ran, with the secrets `.env.nats` holds now,
    /// and waits until it is ready: the single server with its config, every node of the
    /// cluster on its own ports.
    pub(crate) fn start_again(&self, layout: &Layout, timeout: Duration, say: Say) -> Result<()> {
        match self {
            Running::Nothing => Ok(()),
            Running::Single { .. } => start_single(layout, timeout, say),
            Running::Cluster { names, .. } => {
                let nodes: Vec<Node> = names
                    .iter()
                    .map(|name| {
                        Node::as_configured(layout, name)
                            .with_context(|| format!("node {name} has no config to start with"))
                    })
                    .collect::<Result<_>>()?;
                start_cluster(layout, &nodes, &nodes, timeout, say)
            }
        }
    }
}

/// Stops the server of `layout`, called `what` in messages, if it runs.
pub(crate) fn stop_server(layout: &Layout, what: &str, timeout: Duration) -> Result<()> {
    let Some(pid) = server::reconcile_pid_file(layout)? else {
        eprintln!("{what} is not running");
        return Ok(());
    };
    let stopped = server::stop(pid, layout, timeout)?;
    server::remove_pid_file(layout, pid);
    match stopped {
        Stopped::Gracefully => eprintln!("{what} (pid {pid}) stopped"),
        Stopped::Killed if cfg!(windows) => eprintln!(
            "{what} (pid {pid}) was terminated: Windows gives no way to ask it to shut down \
             cleanly from another program; JetStream recovers its files at the next start"
        ),
        Stopped::Killed => eprintln!(
            "{what} (pid {pid}) did not stop within {} s and was killed",
            timeout.as_secs()
        ),
    }
    Ok(())
}

/// Stops nodes `names` of `layout`'s cluster, all at once: a RAFT leader asked to stop hands
/// its leadership over first.
pub(crate) fn stop_nodes(layout: &Layout, names: &[String], timeout: Duration) -> Result<()> {
    let outcomes: Vec<Result<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = names
            .iter()
            .map(|name| scope.spawn(|| stop_server(&layout.node(name), name, timeout)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| bail!("stopping a node panicked"))
            })
            .collect()
    });
    let failures: Vec<String> = outcomes
        .into_iter()
        .filter_map(|outcome| outcome.err().map(|e| format!("{e:#}")))
        .collect();
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    Ok(())
}

/// Starts the single server in the background with its config and the token of `.env.nats`,
/// and returns once clients can use it, saying where it listens.
pub(crate) fn start_single(layout: &Layout, timeout: Duration, say: Say) -> Result<()> {
    let env = ServerEnv::single(secrets::load(&layout.env_file())?);
    crate::server::auth::place_streams(layout)?;
    let auth = crate::server::auth::checks(layout, &env.token)?;
    let mut child = server::spawn(layout, &env, Mode::Detached)?;
    let pid = child.id();
    match server::wait_ready(&mut child, layout, &auth, timeout, &|| false) {
        Ok(Some(endpoints)) => {
            eprintln!("nats-server is running (pid {pid}); `cargo xtask stop` stops it");
            print_endpoints(&endpoints, say);
            Ok(())
        }
        outcome => {
            server::shut_down(&mut child, layout, "nats-server", STOP_TIMEOUT);
            server::remove_pid_file(layout, pid);
            outcome.map(drop)
        }
    }
}

/// How long a server asked to stop has before it is killed.
pub(crate) const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts `to_start` of the cluster's `nodes` in the background, with the secrets of
/// `.env.nats`, and returns once the whole cluster is ready, saying where every node listens;
/// on failure (or Ctrl-C, when `interrupted` says so) the nodes started are stopped.
pub(crate) fn start_cluster_until(
    layout: &Layout,
    nodes: &[Node],
    to_start: &[Node],
    timeout: Duration,
    say: Say,
    interrupted: &dyn Fn() -> bool,
) -> Result<()> {
    let token = secrets::load(&layout.env_file())?;
    let password = secrets::ensure_route_password(&layout.env_file())?;
    let secrets = Secrets {
        token: &token,
        password: &password,
    };
    let mode = Mode::Detached;
    match cluster::start_ready(nodes, to_start, &secrets, timeout, mode, interrupted)? {
        Some((_, endpoints)) => {
            cluster::record_count(layout, nodes.len())?;
            eprintln!(
                "the cluster of {} nodes is ready; `cargo xtask stop` stops it",
                nodes.len()
            );
            print_nodes(nodes, &endpoints, say);
            Ok(())
        }
        None => Ok(()),
    }
}

/// [`start_cluster_until`], never interrupted.
pub(crate) fn start_cluster(
    layout: &Layout,
    nodes: &[Node],
    to_start: &[Node],
    timeout: Duration,
    say: Say,
) -> Result<()> {
    start_cluster_until(layout, nodes, to_start, timeout, say, &|| false)
}

/// Where the server listens, on stdout, and a warning on stderr if other machines can reach it.
pub(crate) fn print_endpoints(endpoints: &Endpoints, say: Say) {
    if let Some(warning) = endpoints.exposure_warning() {
        eprintln!("{warning}");
    }
    say.line(&format!("client      {}", endpoints.client));
    say.line(&format!("monitoring  {}", endpoints.monitoring));
    if let Some(websocket) = &endpoints.websocket {
        say.line(&format!("websocket   {websocket}"));
    }
}

/// One line per node: its name and where it listens, and a warning for those that other
/// machines can reach.
pub(crate) fn print_nodes(nodes: &[Node], endpoints: &[Endpoints], say: Say) {
    for (node, endpoints) in nodes.iter().zip(endpoints) {
        if let Some(warning) = endpoints.exposure_warning() {
            eprintln!("{}: {warning}", node.name);
        }
        let mut line = format!(
            "{}  client {}  monitoring {}",
            node.name, endpoints.client, endpoints.monitoring
        );
        if let Some(websocket) = &endpoints.websocket {
            line.push_str(&format!("  websocket {websocket}"));
        }
        if let Some(cluster) = &endpoints.cluster {
            line.push_str(&format!("  routes {cluster}"));
        }
        say.line(&line);
    }
}

/// The URLs clients reach this checkout's server at: every node's when its cluster runs, else
/// the single server's (from its ports file when it runs, else from its config).
pub(crate) fn client_urls(layout: &Layout) -> Result<Vec<String>> {
    match Running::now(layout)? {
        Running::Single { pid } => Ok(vec![Endpoints::of_running(layout, pid)?.client]),
        Running::Cluster { running, .. } => running
            .iter()
            .map(|name| {
                let node = layout.node(name);
                let pid = server::reconcile_pid_file(&node)?
                    .with_context(|| format!("node {name} has stopped"))?;
                Ok(Endpoints::of_running(&node, pid)?.client)
            })
            .collect(),
        Running::Nothing => {
            let text = std::fs::read_to_string(layout.config()).with_context(|| {
                format!(
                    "cannot read `{}`: run `cargo xtask setup` first",
                    crate::util::paths::show(&layout.config())
                )
            })?;
            let listen = crate::server::config::read_listen(&text);
            let address = crate::server::config::reachable(&listen.host, listen.port)
                .with_context(|| {
                    "the server picks its client port at every start (port -1 in its config): \
                 start it first (`cargo xtask run --detach`)"
                })?;
            Ok(vec![format!("{}://{address}", listen.client_scheme())])
        }
    }
}

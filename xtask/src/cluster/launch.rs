//! Starting the nodes of a cluster, each with its config and authenticated routes to the
//! others, and stopping those a run started.

use std::fs;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::ready::{Short, wait_ready};
use super::{Node, POLL, record_ports, recorded_ports};
use crate::server::config::{self, ClusterNode, ROUTE_USER};
use crate::server::secrets::{RouteSecrets, ServerEnv};
use crate::server::tls::TlsDir;
use crate::server::{self, Endpoints, Mode};
use crate::util::files::write_atomically;
use crate::util::paths::show;

/// `host:port` that routes reach `port` at: a wildcard address is reached on loopback.
fn route_address(host: &str, port: i32) -> String {
    config::reachable(host, port).map_or_else(|| format!("{host}:{port}"), |a| a.to_string())
}

/// The routes a node solicits, as the config array `$NATS_ROUTES` is read as: every other
/// node's route listener it can know of, and its own (nats-server ignores a route to itself,
/// but JetStream needs at least one configured).
fn routes_value(password: &str, addresses: &[String]) -> String {
    let urls: Vec<String> = addresses
        .iter()
        .map(|address| format!("\"nats-route://{ROUTE_USER}:{password}@{address}\""))
        .collect();
    format!("[{}]", urls.join(", "))
}

/// The secrets every node gets in its environment.
pub(crate) struct Secrets<'a> {
    pub(crate) token: &'a str,
    pub(crate) password: &'a str,
}

/// A started node the xtask waits for.
pub(crate) struct Started {
    pub(crate) node: Node,
    pub(crate) child: Child,
}

/// Starts `to_start` (detached), in order, with routes to every node whose route listener can
/// be known: fixed or recorded ports, and the ports files of nodes already running. A node on
/// ports it picks is waited for until it has written its ports file, so that the next ones can
/// route to it. On failure, the nodes started so far are stopped.
fn start(
    all: &[Node],
    to_start: &[Node],
    secrets: &Secrets,
    timeout: Duration,
    mode: Mode,
    cancelled: &dyn Fn() -> bool,
) -> Result<Vec<Started>> {
    let (token, password) = (secrets.token, secrets.password);
    let mut started: Vec<Started> = Vec::new();
    let outcome = (|| -> Result<()> {
        for node in to_start {
            if cancelled() {
                bail!("interrupted while the cluster started: the nodes started are stopped");
            }
            let mut addresses: Vec<String> = all
                .iter()
                .filter(|n| n.cluster_port > 0)
                .map(|n| route_address(&n.listen.host, n.cluster_port))
                .collect();
            for other in all {
                if let Some(pid) = server::reconcile_pid_file(&other.layout)?
                    && let Some(url) = Endpoints::of(&other.layout, pid).and_then(|e| e.cluster)
                {
                    // `nats://` or, over TLS, `tls://`: the route URLs have a scheme of their own.
                    let address = url.split_once("://").map_or(url.as_str(), |(_, a)| a);
                    addresses.push(address.to_string());
                }
            }
            addresses.sort();
            addresses.dedup();
            if addresses.is_empty() {
                // The first node on ports it picks: JetStream wants a configured route, and
                // none can be known yet. The others route to it, and gossip does the rest.
                addresses.push("127.0.0.1:1".to_string());
            }
            let env = ServerEnv {
                token: token.to_string(),
                cluster: Some(RouteSecrets {
                    password: password.to_string(),
                    routes: routes_value(password, &addresses),
                }),
            };
            write_config(node)?;
            let child = server::spawn(&node.layout, &env, mode)
                .with_context(|| format!("cannot start node {}", node.name))?;
            started.push(Started {
                node: node.clone(),
                child,
            });
            // One node at a time, each listening before the next starts: nodes that all
            // bootstrap the JetStream meta group at once can settle on a group without one of
            // them, and stay so (seen with 2.10.26).
            let last = started.last_mut().expect("just pushed");
            let endpoints = wait_for_ports_file(last, timeout)?;
            if node.cluster_port <= 0 {
                record_ports(node, &endpoints)?;
                // Its config says from now on where it listens: a later start, which keeps
                // these ports, then finds the config as it is and keeps your edits of it.
                if let Some(recorded) = recorded_ports(node) {
                    write_config(&recorded)?;
                }
            }
        }
        Ok(())
    })();
    match outcome {
        Ok(()) => Ok(started),
        Err(e) => {
            stop_started(&mut started);
            Err(e)
        }
    }
}

/// How many times a new cluster's nodes left out of its meta group are started again.
const REJOINS: usize = 3;

/// Starts `to_start` of the cluster `all` and waits until the whole cluster is ready: the nodes
/// started, with every node's endpoints; None after Ctrl-C (`cancelled`). On failure or Ctrl-C
/// the nodes started are stopped. In a new cluster (no node has JetStream data yet) whose meta
/// group formed without some of its nodes, those are stopped and started again: each then
/// routes to every other node, and joins the group the others formed.
pub(crate) fn start_ready(
    all: &[Node],
    to_start: &[Node],
    secrets: &Secrets,
    timeout: Duration,
    mode: Mode,
    cancelled: &dyn Fn() -> bool,
) -> Result<Option<(Vec<Started>, Vec<Endpoints>)>> {
    let new = to_start.len() == all.len()
        && to_start
            .iter()
            .all(|node| is_empty_dir(&node.layout.jetstream_dir()));
    let mut rejoins = if new { REJOINS } else { 0 };
    let mut started = start(all, to_start, secrets, timeout, mode, cancelled)?;
    loop {
        let ready = wait_ready(
            all,
            &mut started,
            &xtask_probe::Auth::Token(secrets.token.to_string()),
            timeout,
            rejoins > 0,
            cancelled,
        );
        let short = match ready {
            Ok(Some(endpoints)) => return Ok(Some((started, endpoints))),
            Err(e) if rejoins > 0 && e.is::<Short>() => {
                e.downcast::<Short>().expect("checked to be Short")
            }
            outcome => {
                stop_started(&mut started);
                return outcome.map(|_| None);
            }
        };
        rejoins -= 1;
        eprintln!("{short}: starting {} again", short.left_out.join(", "));
        let names = &short.left_out;
        if let Err(e) = start_again(all, &mut started, names, secrets, timeout, mode, cancelled) {
            stop_started(&mut started);
            return Err(e);
        }
    }
}

/// Stops the nodes of `started` named in `names` and starts them again, now with routes to
/// every other node.
fn start_again(
    all: &[Node],
    started: &mut Vec<Started>,
    names: &[String],
    secrets: &Secrets,
    timeout: Duration,
    mode: Mode,
    cancelled: &dyn Fn() -> bool,
) -> Result<()> {
    let (mut again, kept): (Vec<Started>, Vec<Started>) = std::mem::take(started)
        .into_iter()
        .partition(|s| names.contains(&s.node.name));
    *started = kept;
    stop_started(&mut again);
    let nodes: Vec<Node> = again.into_iter().map(|s| s.node).collect();
    started.extend(start(all, &nodes, secrets, timeout, mode, cancelled)?);
    started.sort_by_key(|s| all.iter().position(|node| node.name == s.node.name));
    Ok(())
}

/// Whether `dir` holds nothing (or is not there).
fn is_empty_dir(dir: &std::path::Path) -> bool {
    fs::read_dir(dir).map_or(true, |mut entries| entries.next().is_none())
}

/// Stops nodes this run started, gracefully, all at once.
pub(crate) fn stop_started(started: &mut [Started]) {
    std::thread::scope(|scope| {
        for s in started.iter_mut() {
            scope.spawn(|| {
                let what = format!("node {}", s.node.name);
                server::shut_down(&mut s.child, &s.node.layout, &what, Duration::from_secs(30));
                server::remove_pid_file(&s.node.layout, s.child.id());
            });
        }
    });
}

/// Writes the node's config, unless it has one on the same ports and TLS already: edits made
/// to it stay. One rewritten for other ports or TLS keeps a copy of an edited old one beside
/// it. Under TLS, the node's certificate is issued first unless the one there still serves.
fn write_config(node: &Node) -> Result<()> {
    fs::create_dir_all(&node.layout.dir)
        .with_context(|| format!("cannot create `{}`", show(&node.layout.dir)))?;
    if let Some(tls) = &node.listen.tls {
        let cert = crate::util::paths::normal(&node.layout.dir.join(&tls.cert_file));
        let dir = TlsDir {
            dir: cert
                .parent()
                .map_or(node.layout.dir.clone(), Path::to_path_buf),
        };
        dir.ensure_server(&node.name, &node.listen.host, true)?;
    }
    let path = node.layout.config();
    if let Ok(existing) = fs::read_to_string(&path) {
        let (listen, cluster_port) = (
            config::read_listen(&existing),
            config::read_cluster_port(&existing).unwrap_or(0),
        );
        if listen == node.listen && cluster_port == node.cluster_port {
            return Ok(());
        }
        if config::is_edited_node(&existing, &node.name) {
            let backup = crate::util::files::back_up(&path)?;
            eprintln!(
                "node {}: `{}` is written anew for other ports or TLS; the edited one is kept \
                 as `{}`",
                node.name,
                show(&path),
                show(&backup)
            );
        }
    }
    let cluster = ClusterNode {
        name: node.name.clone(),
        cluster_port: node.cluster_port,
    };
    write_atomically(
        &path,
        config::render_node(&node.listen, &cluster).as_bytes(),
    )
}

fn wait_for_ports_file(started: &mut Started, timeout: Duration) -> Result<Endpoints> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = started.child.try_wait()? {
            bail!(
                "node {} exited during start-up ({status}){}",
                started.node.name,
                server::diagnosis(&started.node.layout)
            );
        }
        if let Some(endpoints) = Endpoints::read(&started.node.layout, started.child.id()) {
            return endpoints.with_context(|| format!("node {} cannot be used", started.node.name));
        }
        if Instant::now() > deadline {
            bail!(
                "node {} wrote no ports file within {} s{}",
                started.node.name,
                timeout.as_secs(),
                server::diagnosis(&started.node.layout)
            );
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_carry_the_password_to_every_address() {
        let routes = routes_value(
            "route_ab",
            &["127.0.0.1:6222".into(), "127.0.0.1:6232".into()],
        );
        assert_eq!(
            routes,
            r#"["nats-route://route:route_ab@127.0.0.1:6222", "nats-route://route:route_ab@127.0.0.1:6232"]"#
        );
        assert_eq!(route_address("0.0.0.0", 6222), "127.0.0.1:6222");
        assert_eq!(route_address("::1", 6222), "[::1]:6222");
        assert_eq!(route_address("::", 6222), "[::1]:6222");
        assert_eq!(route_address("127.0.0.1", 6222), "127.0.0.1:6222");
        assert_eq!(route_address("192.0.2.7", 6222), "192.0.2.7:6222");
    }
}

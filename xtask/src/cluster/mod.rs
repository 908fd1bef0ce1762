//! The local JetStream cluster of a checkout: its nodes and their ports, starting the nodes
//! with authenticated routes, and knowing when the cluster as a whole is ready.
//!
//! Node `nK` lives in `cluster/nK/` (config, data, logs, pid and ports files) and listens on
//! the single server's ports plus 10·(K-1). `cluster/cluster.json` records how many nodes the
//! cluster has: its data only forms a quorum with that many. A node started on ports the
//! server picks records them in `cluster/nK/ports.json`, and later starts reuse them.

use std::fs;
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::layout::Layout;
use crate::server::config::{self, ClusterNode, Listen, ROUTE_USER};
use crate::server::secrets::{RouteSecrets, ServerEnv};
use crate::server::{self, Endpoints, Mode};
use crate::util::files::write_atomically;
use crate::util::paths::show;
use crate::util::units;

/// How far apart the ports of two nodes are.
const PORT_STEP: i32 = 10;
const POLL: Duration = Duration::from_millis(50);
/// The longest pause between two looks at a forming cluster.
const MAX_POLL: Duration = Duration::from_millis(250);
/// How often a RAFT leader tells its followers what it committed (nats-server's
/// `hbInterval`).
const HEARTBEAT: Duration = Duration::from_secs(1);

/// One node: its name, its files, and where it listens (-1: the server picks).
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) layout: Layout,
    pub(crate) listen: Listen,
    pub(crate) cluster_port: i32,
}

impl Node {
    /// Node `name` of `layout`'s cluster on the ports of its config (written at its last
    /// start), or of its ports file for ports it picked: where the other nodes route to it.
    /// None for a node never started.
    pub(crate) fn as_configured(layout: &Layout, name: &str) -> Option<Node> {
        let node_layout = layout.node(name);
        let text = fs::read_to_string(node_layout.config()).ok()?;
        let configured = Node {
            name: name.to_string(),
            listen: config::read_listen(&text),
            cluster_port: config::read_cluster_port(&text)?,
            layout: node_layout,
        };
        Some(recorded_ports(&configured).unwrap_or(configured))
    }
}

/// The port of a listener's URL; 0 for none.
fn port_of(url: Option<&String>) -> i32 {
    url.and_then(|url| url.rsplit(':').next()?.parse().ok())
        .unwrap_or(0)
}

/// Which ports the nodes start on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ports {
    /// Those of the options, for every node.
    Asked,
    /// Those a node had before (its config, or what it picked), for a node started before;
    /// the options' for the others.
    Kept,
}

/// The nodes of a cluster of `count` on `listen`'s ports and `cluster_port`, node K's shifted
/// by 10·(K-1); ports a node picked on an earlier start win, and with `Ports::Kept` so do those
/// of its config.
pub(crate) fn nodes(
    layout: &Layout,
    listen: &Listen,
    cluster_port: i32,
    count: usize,
    ports: Ports,
) -> Vec<Node> {
    (0..count)
        .map(|index| {
            let name = format!("n{}", index + 1);
            let node_layout = layout.node(&name);
            let step = PORT_STEP * index as i32;
            let shift = |port: i32| if port > 0 { port + step } else { port };
            let planned = Node {
                listen: Listen {
                    host: listen.host.clone(),
                    port: shift(listen.port),
                    http_port: shift(listen.http_port),
                    ws_port: shift(listen.ws_port),
                },
                cluster_port: shift(cluster_port),
                layout: node_layout,
                name,
            };
            let kept = match ports {
                Ports::Kept => Node::as_configured(layout, &planned.name),
                Ports::Asked => recorded_ports(&planned),
            };
            kept.unwrap_or(planned)
        })
        .collect()
}

/// Where the first node listens unless options say otherwise: as its config says, for a
/// cluster started before; else on the single server's ports (its config's, else the
/// defaults), with the route port 2000 above the client port, as 6222 is above 4222. Every
/// other node derives its ports from these.
pub(crate) fn first_node_ports(layout: &Layout) -> (Listen, i32) {
    let configured = |layout: &Layout| {
        Some(config::read_listen(
            &fs::read_to_string(layout.config()).ok()?,
        ))
    };
    let first = layout.node("n1");
    if let Some(listen) = configured(&first) {
        let text = fs::read_to_string(first.config()).unwrap_or_default();
        let cluster_port =
            config::read_cluster_port(&text).unwrap_or_else(|| route_port_beside(listen.port));
        return (listen, cluster_port);
    }
    let listen = configured(layout).unwrap_or_default();
    let cluster_port = route_port_beside(listen.port);
    (listen, cluster_port)
}

/// The route port that goes with client port `port`: 2000 above it (6222 for 4222), or picked
/// by the server when the client port is.
fn route_port_beside(port: i32) -> i32 {
    match port {
        port if port <= 0 => -1,
        port if port + 2000 <= i32::from(u16::MAX) - 4 * PORT_STEP => port + 2000,
        _ => 6222,
    }
}

/// The names of the nodes of the cluster recorded in `layout`, if there is one.
pub(crate) fn recorded_names(layout: &Layout) -> Vec<String> {
    (1..=recorded_count(layout).unwrap_or(0))
        .map(|k| format!("n{k}"))
        .collect()
}

/// Fails, naming the nodes there are, unless `node` is one of `layout`'s cluster.
pub(crate) fn check_node(layout: &Layout, node: &str) -> Result<()> {
    let names = recorded_names(layout);
    if names.iter().any(|name| name == node) {
        return Ok(());
    }
    bail!(
        "this checkout's cluster has no node `{node}`{}",
        if names.is_empty() {
            String::from(" (it has no cluster)")
        } else {
            format!(": its nodes are {}", names.join(", "))
        }
    )
}

/// How many nodes the cluster in `layout` was started with.
pub(crate) fn recorded_count(layout: &Layout) -> Option<usize> {
    let text = fs::read_to_string(state_file(layout)).ok()?;
    let state: Value = serde_json::from_str(&text).ok()?;
    state["nodes"].as_u64().map(|n| n as usize)
}

fn state_file(layout: &Layout) -> std::path::PathBuf {
    layout.cluster_dir().join("cluster.json")
}

/// The node count to run with: `asked`, which must be the cluster's if it has one (its
/// JetStream data forms a quorum only with the nodes it was made with), else the cluster's,
/// else 3.
pub(crate) fn node_count(layout: &Layout, asked: Option<usize>) -> Result<usize> {
    match (recorded_count(layout), asked) {
        (Some(recorded), Some(asked)) if recorded != asked => bail!(
            "the cluster in `{}` has {recorded} nodes, not {asked}: its JetStream data forms a \
             quorum only with {recorded}; run it with `--nodes {recorded}`, or start a new one \
             after `cargo xtask reset`, which deletes its data (stored messages included)",
            show(&layout.cluster_dir()),
        ),
        (Some(recorded), _) => Ok(recorded),
        (None, asked) => Ok(asked.unwrap_or(3)),
    }
}

/// Forgets the node count, once the nodes' data are gone.
pub(crate) fn forget_count(layout: &Layout) -> Result<()> {
    match fs::remove_file(state_file(layout)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot delete `{}`", show(&state_file(layout))))
        }
        _ => Ok(()),
    }
}

/// The directories of every node the cluster of `layout` has had (`cluster/n1`, ...).
pub(crate) fn node_dirs(layout: &Layout) -> Vec<Layout> {
    let mut names: Vec<String> = fs::read_dir(layout.cluster_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.path().is_dir())
        .filter_map(|entry| entry.file_name().to_str().map(str::to_string))
        .filter(|name| {
            name.strip_prefix('n')
                .is_some_and(|k| k.parse::<u32>().is_ok())
        })
        .collect();
    names.sort();
    names.iter().map(|name| layout.node(name)).collect()
}

/// Records the node count once the cluster has been ready: from then on its data needs them.
pub(crate) fn record_count(layout: &Layout, count: usize) -> Result<()> {
    if recorded_count(layout).is_some() {
        return Ok(());
    }
    fs::create_dir_all(layout.cluster_dir())
        .with_context(|| format!("cannot create `{}`", show(&layout.cluster_dir())))?;
    write_atomically(
        &state_file(layout),
        json!({"nodes": count}).to_string().as_bytes(),
    )
}

fn recorded_ports(node: &Node) -> Option<Node> {
    let text = fs::read_to_string(node.layout.dir.join("ports.json")).ok()?;
    let ports: Value = serde_json::from_str(&text).ok()?;
    let port = |key: &str| ports[key].as_i64().map(|p| p as i32);
    Some(Node {
        listen: Listen {
            host: node.listen.host.clone(),
            port: port("client")?,
            http_port: port("http")?,
            ws_port: port("websocket")?,
        },
        cluster_port: port("cluster")?,
        ..node.clone()
    })
}

/// Keeps the ports a node picked for itself, so that it comes back on them: the other nodes
/// route to them.
fn record_ports(node: &Node, endpoints: &Endpoints) -> Result<()> {
    let ports = json!({
        "client": port_of(Some(&endpoints.client)),
        "http": port_of(Some(&endpoints.monitoring)),
        "websocket": port_of(endpoints.websocket.as_ref()),
        "cluster": port_of(endpoints.cluster.as_ref()),
    });
    write_atomically(
        &node.layout.dir.join("ports.json"),
        ports.to_string().as_bytes(),
    )
}

/// The nodes of `layout`'s cluster that run, with their pids. Stale pid files are removed.
pub(crate) fn running(layout: &Layout) -> Result<Vec<(String, u32)>> {
    let mut running = Vec::new();
    for name in recorded_names(layout) {
        if let Some(pid) = server::reconcile_pid_file(&layout.node(&name))? {
            running.push((name, pid));
        }
    }
    Ok(running)
}

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
pub(crate) fn start(
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
                    addresses.push(url.trim_start_matches("nats://").to_string());
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

/// Writes the node's config, unless it has one on the same ports already: edits made to it
/// stay. One rewritten for other ports keeps a copy of an edited old one beside it.
fn write_config(node: &Node) -> Result<()> {
    fs::create_dir_all(&node.layout.dir)
        .with_context(|| format!("cannot create `{}`", show(&node.layout.dir)))?;
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
                "node {}: `{}` is written anew for other ports; the edited one is kept as `{}`",
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

/// Waits until the whole cluster is usable: every node healthy and answering an authenticated
/// PING, and the meta leader reporting every node as a current peer (`/healthz` alone stays ok
/// while the meta group is stuck short of a node). Returns every node's endpoints; None when
/// `cancelled` said so first.
pub(crate) fn wait_ready(
    nodes: &[Node],
    started: &mut [Started],
    token: &str,
    timeout: Duration,
    cancelled: &dyn Fn() -> bool,
) -> Result<Option<Vec<Endpoints>>> {
    let deadline = Instant::now() + timeout;
    let mut pause = POLL;
    loop {
        for s in started.iter_mut() {
            if let Some(status) = s.child.try_wait()? {
                bail!(
                    "node {} exited during start-up ({status}){}",
                    s.node.name,
                    server::diagnosis(&s.node.layout)
                );
            }
        }
        let (last_seen, wait) = match formed(nodes) {
            Err(why) => (why, pause),
            Ok(endpoints) => match usable(nodes, &endpoints, token) {
                Ok(()) => return Ok(Some(endpoints)),
                // Every failed `/healthz` logs a warning, and a follower learns what the
                // leader committed with its next heartbeat: ask again after one.
                Err(why) => (why, HEARTBEAT),
            },
        };
        if cancelled() {
            return Ok(None);
        }
        if Instant::now() > deadline {
            let diagnosis: String = started
                .iter()
                .map(|s| server::diagnosis(&s.node.layout))
                .collect();
            bail!(
                "the cluster was not ready within {} s; last seen: {last_seen} (after a restart \
                 the nodes elect a leader, which can take seconds: `--timeout SECONDS` waits \
                 longer){diagnosis}",
                timeout.as_secs()
            );
        }
        std::thread::sleep(wait);
        // Forming the meta group takes a second or more: ask less often as it goes on.
        pause = (pause * 3 / 2).min(MAX_POLL);
    }
}

/// Every node's endpoints once the meta group has formed, else what is not yet.
///
/// Asks only what logs nothing (`/jsz`, `/varz`): `/healthz` logs a warning each time it
/// fails, and polled while the meta group formed it filled each node's log with them.
fn formed(nodes: &[Node]) -> Result<Vec<Endpoints>, String> {
    let mut all = Vec::new();
    for node in nodes {
        let pid = std::fs::read_to_string(node.layout.pid_file())
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .ok_or(format!("node {} has no pid file", node.name))?;
        let endpoints = Endpoints::read(&node.layout, pid)
            .ok_or(format!("node {} has not written its ports file", node.name))?
            .map_err(|e| format!("node {}: {e:#}", node.name))?;
        all.push(endpoints);
    }
    // Each node's own view, asked once: the leader's says who is current, and every node's must
    // name the same leader with nothing left to apply (the leader counts a peer current a
    // little before the peer itself has applied what it was sent, which is what `/healthz` asks).
    let agent = xtask_probe::monitoring_agent();
    let mut views = Vec::new();
    for (node, endpoints) in nodes.iter().zip(&all) {
        let jsz = xtask_probe::get_json(&agent, &format!("{}/jsz", endpoints.monitoring))
            .map_err(|e| format!("node {}: {e:#}", node.name))?;
        views.push(jsz);
    }
    let meta = nodes
        .iter()
        .zip(&views)
        .find_map(|(node, jsz)| parse_meta(jsz, &node.name))
        .ok_or("no meta leader yet")?;
    let current = meta.peers.iter().filter(|p| p.current).count();
    if meta.cluster_size != nodes.len() || current + 1 != nodes.len() {
        let behind: Vec<&str> = nodes
            .iter()
            .map(|n| n.name.as_str())
            .filter(|name| {
                *name != meta.leader && !meta.peers.iter().any(|p| p.name == *name && p.current)
            })
            .collect();
        let size = if meta.cluster_size == nodes.len() {
            format!("counts all {} nodes", nodes.len())
        } else {
            format!(
                "counts {}, not {}",
                units::count(meta.cluster_size as u64, "node"),
                nodes.len()
            )
        };
        let behind = if behind.is_empty() {
            "none".to_string()
        } else {
            behind.join(", ")
        };
        return Err(format!(
            "the meta leader {} {size}; not current with it: {behind}",
            meta.leader
        ));
    }
    for (node, jsz) in nodes.iter().zip(&views) {
        let own = &jsz["meta_cluster"];
        if own["leader"].as_str() != Some(meta.leader.as_str()) {
            return Err(format!(
                "node {} has not heard from the meta leader yet",
                node.name
            ));
        }
        if own["pending"].as_u64().is_some_and(|pending| pending > 0) {
            return Err(format!(
                "node {} has meta changes still to apply",
                node.name
            ));
        }
    }
    Ok(all)
}

/// Whether every node of a formed cluster says it is healthy (`/healthz`, asked once) and
/// answers an authenticated PING.
fn usable(nodes: &[Node], all: &[Endpoints], token: &str) -> Result<(), String> {
    let agent = xtask_probe::monitoring_agent();
    for (node, endpoints) in nodes.iter().zip(all) {
        let url = format!("{}/healthz?js-server-only=true", endpoints.monitoring);
        match xtask_probe::get(&agent, &url) {
            Ok((200, _)) => {}
            Ok((status, body)) => {
                return Err(format!(
                    "node {} /healthz: {status} {}",
                    node.name,
                    body.trim()
                ));
            }
            Err(e) => return Err(format!("node {}: {e:#}", node.name)),
        }
        xtask_probe::Connection::open(&endpoints.client, token, "cargo xtask")
            .and_then(|mut client| client.ping())
            .map_err(|e| format!("node {}: {e:#}", node.name))?;
    }
    Ok(())
}

/// The JetStream meta group as its leader sees it.
#[derive(Debug)]
pub(crate) struct MetaGroup {
    pub(crate) leader: String,
    pub(crate) cluster_size: usize,
    pub(crate) peers: Vec<Peer>,
}

#[derive(Debug)]
pub(crate) struct Peer {
    pub(crate) name: String,
    pub(crate) current: bool,
}

/// The meta group, asked of its leader among `nodes` (each named as its config names it).
pub(crate) fn meta_group(nodes: &[(String, Endpoints)]) -> Option<MetaGroup> {
    let agent = xtask_probe::monitoring_agent();
    nodes.iter().find_map(|(name, endpoints)| {
        let jsz = xtask_probe::get_json(&agent, &format!("{}/jsz", endpoints.monitoring)).ok()?;
        parse_meta(&jsz, name)
    })
}

/// The meta group from a node's `/jsz`, if that node (`name`) leads it.
fn parse_meta(jsz: &Value, name: &str) -> Option<MetaGroup> {
    let meta = &jsz["meta_cluster"];
    let leader = meta["leader"].as_str()?;
    if leader != name {
        return None;
    }
    let peers = meta["replicas"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|peer| {
            Some(Peer {
                name: peer["name"].as_str()?.to_string(),
                current: peer["current"].as_bool().unwrap_or(false),
            })
        })
        .collect();
    Some(MetaGroup {
        leader: leader.to_string(),
        cluster_size: meta["cluster_size"].as_u64().unwrap_or(0) as usize,
        peers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ports_step_by_ten_and_picked_ports_stay_picked() {
        let layout = Layout::new("/x/nats".into());
        let nodes = nodes(&layout, &Listen::default(), 6222, 3, Ports::Asked);
        let ports: Vec<_> = nodes
            .iter()
            .map(|n| {
                (
                    n.name.as_str(),
                    n.listen.port,
                    n.listen.http_port,
                    n.listen.ws_port,
                    n.cluster_port,
                )
            })
            .collect();
        assert_eq!(
            ports,
            [
                ("n1", 4222, 8222, 8223, 6222),
                ("n2", 4232, 8232, 8233, 6232),
                ("n3", 4242, 8242, 8243, 6242)
            ]
        );
        assert!(nodes[1].layout.dir.ends_with("cluster/n2"));
        assert_eq!(nodes[1].layout.env_file(), layout.env_file());
        let picked = super::nodes(
            &layout,
            &Listen::loopback_on_free_ports(),
            -1,
            3,
            Ports::Kept,
        );
        assert!(
            picked
                .iter()
                .all(|n| n.listen.port == -1 && n.cluster_port == -1)
        );
    }

    #[test]
    fn route_ports_sit_2000_above_the_client_port() {
        assert_eq!(route_port_beside(4222), 6222);
        assert_eq!(route_port_beside(24222), 26222);
        assert_eq!(route_port_beside(-1), -1);
        assert_eq!(route_port_beside(65000), 6222);
    }

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

    #[test]
    fn the_meta_group_is_read_from_its_leader_only() {
        let jsz = json!({"meta_cluster": {"leader": "n2", "cluster_size": 3,
            "replicas": [{"name": "n1", "current": true}, {"name": "n3", "current": false}]}});
        assert!(parse_meta(&jsz, "n1").is_none());
        let meta = parse_meta(&jsz, "n2").unwrap();
        assert_eq!((meta.leader.as_str(), meta.cluster_size), ("n2", 3));
        let current: Vec<_> = meta
            .peers
            .iter()
            .map(|p| (p.name.as_str(), p.current))
            .collect();
        assert_eq!(current, [("n1", true), ("n3", false)]);
    }
}

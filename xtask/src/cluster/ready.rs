//! Knowing when a cluster as a whole is ready: every node healthy, and the JetStream meta
//! group formed with every node current.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::Value;

use super::{Node, POLL, Started};
use crate::server::{self, Endpoints};
use crate::util::units;

/// The longest pause between two looks at a forming cluster.
const MAX_POLL: Duration = Duration::from_millis(250);

/// How often a RAFT leader tells its followers what it committed (nats-server's
/// `hbInterval`).
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Waits until the whole cluster is usable: every node healthy and answering an authenticated
/// PING, and the meta leader reporting every node as a current peer (`/healthz` alone stays ok
/// while the meta group is stuck short of a node). Returns every node's endpoints; None when
/// `cancelled` said so first. A `new_group` (a cluster's first start) whose meta group stays
/// formed without some of its nodes fails early with [`Short`], which names them.
pub(super) fn wait_ready(
    nodes: &[Node],
    started: &mut [Started],
    auth: &xtask_probe::Auth,
    timeout: Duration,
    new_group: bool,
    cancelled: &dyn Fn() -> bool,
) -> Result<Option<Vec<Endpoints>>> {
    let deadline = Instant::now() + timeout;
    let mut pause = POLL;
    let mut short_since = None;
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
            Err(NotFormed::Short(short)) => {
                let since = *short_since.get_or_insert_with(Instant::now);
                if new_group && since.elapsed() > SHORT_PATIENCE {
                    return Err(short.into());
                }
                (short.to_string(), pause)
            }
            Err(NotFormed::Yet(why)) => {
                short_since = None;
                (why, pause)
            }
            Ok(endpoints) => match usable(nodes, &endpoints, auth) {
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

/// Why the meta group has not formed: not yet, or formed without every node.
enum NotFormed {
    Yet(String),
    Short(Short),
}

impl From<String> for NotFormed {
    fn from(why: String) -> NotFormed {
        NotFormed::Yet(why)
    }
}

/// How long a new cluster's meta group may count fewer nodes than the cluster has. A node that
/// starts last joins a group of the others within a heartbeat or two; one left out by the first
/// leader never joins on its own (nats-server 2.10's `checkClusterSize` shrinks a new group to
/// the JetStream servers its first leader has heard of, and the leader may never hear the
/// left-out node's answers: seen on a loaded machine with 2.10.26, about one new cluster in
/// fifteen, and under Wine in about one in three).
const SHORT_PATIENCE: Duration = Duration::from_secs(10);

/// A new cluster whose meta group formed without some of its nodes, for good: why, and the
/// names of the nodes left out (started again, each joins the group the others formed).
#[derive(Debug)]
pub(super) struct Short {
    why: String,
    pub(super) left_out: Vec<String>,
}

impl std::fmt::Display for Short {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the new cluster formed without {} ({})",
            self.left_out.join(", "),
            self.why
        )
    }
}

impl std::error::Error for Short {}

/// Every node's endpoints once the meta group has formed, else what is not yet.
///
/// Asks only what logs nothing (`/jsz`): `/healthz` logs a warning each time it
/// fails, and polled while the meta group formed it filled each node's log with them.
fn formed(nodes: &[Node]) -> Result<Vec<Endpoints>, NotFormed> {
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
    let agent = all
        .first()
        .map_or_else(xtask_probe::monitoring_agent, Endpoints::agent);
    let mut views = Vec::new();
    for (node, endpoints) in nodes.iter().zip(&all) {
        let jsz = xtask_probe::get_json(&agent, &format!("{}/jsz", endpoints.monitoring))
            .map_err(|e| format!("node {}: {e:#}", node.name))?;
        views.push(jsz);
    }
    let (leader, meta) = views
        .iter()
        .enumerate()
        .find_map(|(index, jsz)| Some((index, parse_meta(jsz)?)))
        .ok_or(NotFormed::Yet("no meta leader yet".to_string()))?;
    let current = meta.peers.iter().filter(|p| p.current).count();
    if meta.cluster_size != nodes.len() || current + 1 != nodes.len() {
        let behind: Vec<&str> = meta
            .peers
            .iter()
            .filter(|p| !p.current)
            .map(|p| p.name.as_str())
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
        let why = format!(
            "the meta leader {} {size}; not current with it: {behind}",
            meta.leader
        );
        if meta.cluster_size < nodes.len() {
            let left_out = left_out(&agent, nodes, &views, &all[leader]);
            if !left_out.is_empty() {
                return Err(NotFormed::Short(Short { why, left_out }));
            }
        }
        return Err(NotFormed::Yet(why));
    }
    for (node, jsz) in nodes.iter().zip(&views) {
        let own = &jsz["meta_cluster"];
        if own["leader"].as_str() != Some(meta.leader.as_str()) {
            return Err(
                format!("node {} has not heard from the meta leader yet", node.name).into(),
            );
        }
        if own["pending"].as_u64().is_some_and(|pending| pending > 0) {
            return Err(format!("node {} has meta changes still to apply", node.name).into());
        }
    }
    Ok(all)
}

/// Whether every node of a formed cluster says it is healthy (`/healthz`, asked once) and
/// answers an authenticated PING.
fn usable(nodes: &[Node], all: &[Endpoints], auth: &xtask_probe::Auth) -> Result<(), String> {
    let agent = all
        .first()
        .map_or_else(xtask_probe::monitoring_agent, Endpoints::agent);
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
        endpoints
            .connect(auth, "cargo xtask")
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

/// The meta group, asked of whichever of `nodes` leads it.
pub(crate) fn meta_group<'a>(nodes: impl IntoIterator<Item = &'a Endpoints>) -> Option<MetaGroup> {
    nodes.into_iter().find_map(|endpoints| {
        let url = format!("{}/jsz", endpoints.monitoring);
        let jsz = xtask_probe::get_json(&endpoints.agent(), &url).ok()?;
        parse_meta(&jsz)
    })
}

/// The meta group from a node's `/jsz`, if that node leads it: only the leader lists the
/// other peers (`replicas`, with whether each is current), whatever the nodes' names are.
fn parse_meta(jsz: &Value) -> Option<MetaGroup> {
    let meta = &jsz["meta_cluster"];
    let leader = meta["leader"].as_str()?;
    let peers = meta["replicas"]
        .as_array()?
        .iter()
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

/// The nodes the meta group led by `leader` does not count, by RAFT peer id, which each node's
/// own view (`views`, its `/jsz`) names: a node's server name can be edited away from its node
/// name. The leader's `/raftz` says which peers it counts (`/jsz` lists every peer it hears
/// from). None when that cannot be known.
fn left_out(
    agent: &xtask_probe::Agent,
    nodes: &[Node],
    views: &[Value],
    leader: &Endpoints,
) -> Vec<String> {
    let url = format!("{}/raftz", leader.monitoring);
    let Ok(raftz) = xtask_probe::get_json(agent, &url) else {
        return Vec::new();
    };
    let known = known_peers(&raftz);
    if known.is_empty() {
        return Vec::new();
    }
    nodes
        .iter()
        .zip(views)
        .filter(|(_, jsz)| {
            let id = jsz["meta_cluster"]["peer"].as_str();
            !id.is_some_and(|id| known.iter().any(|k| k == id))
        })
        .map(|(node, _)| node.name.clone())
        .collect()
}

/// The RAFT peer ids of the meta group its leader counts, from the leader's `/raftz`: its own
/// and those of the peers it knows (a peer it only hears from is not counted).
fn known_peers(raftz: &Value) -> Vec<String> {
    let meta = &raftz["$SYS"]["_meta_"];
    let peers = meta["peers"].as_object().into_iter().flatten();
    let known = peers.filter(|(_, peer)| peer["known"].as_bool() == Some(true));
    meta["id"]
        .as_str()
        .into_iter()
        .chain(known.map(|(id, _)| id.as_str()))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_meta_group_is_read_from_its_leader_only() {
        let jsz = json!({"meta_cluster": {"leader": "n2", "cluster_size": 3,
            "replicas": [{"name": "n1", "current": true}, {"name": "n3", "current": false}]}});
        let follower = json!({"meta_cluster": {"leader": "n2", "cluster_size": 3}});
        assert!(parse_meta(&follower).is_none());
        let meta = parse_meta(&jsz).unwrap();
        assert_eq!((meta.leader.as_str(), meta.cluster_size), ("n2", 3));
        let current: Vec<_> = meta
            .peers
            .iter()
            .map(|p| (p.name.as_str(), p.current))
            .collect();
        assert_eq!(current, [("n1", true), ("n3", false)]);
    }

    #[test]
    fn the_leader_counts_itself_and_the_peers_it_knows() {
        let raftz = json!({"$SYS": {"_meta_": {"id": "P2", "size": 2, "peers": {
            "P1": {"name": "app-n1", "known": true},
            "P3": {"name": "app-n3", "known": false}}}}});
        assert_eq!(known_peers(&raftz), ["P2", "P1"]);
        assert_eq!(known_peers(&json!({})), Vec::<String>::new());
    }
}

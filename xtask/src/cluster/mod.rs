//! The local JetStream cluster of a checkout: its nodes and the ports they listen on.
//!
//! Node `nK` lives in `cluster/nK/` (config, data, logs, pid and ports files) and listens on
//! the single server's ports plus 10·(K-1). `cluster/cluster.json` records how many nodes the
//! cluster has: its data only forms a quorum with that many. A node started on ports the
//! server picks records them in `cluster/nK/ports.json`, and later starts reuse them.

mod launch;
mod ready;
mod state;

use std::fs;
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use crate::layout::Layout;
use crate::server::Endpoints;
use crate::server::config::{self, Listen};
use crate::server::tls::TlsDir;
use crate::util::files::write_atomically;

pub(crate) use launch::{Secrets, Started, start_ready, stop_started};
pub(crate) use ready::meta_group;
pub(crate) use state::{
    check_node, forget_count, node_count, node_dirs, record_count, recorded_names, running,
};

/// How far apart the ports of two nodes are.
const PORT_STEP: i32 = 10;
/// How often a wait on the nodes looks again.
const POLL: Duration = Duration::from_millis(50);

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
/// of its config. TLS is the checkout's (its config says), each node with a certificate of its
/// own.
pub(crate) fn nodes(
    layout: &Layout,
    listen: &Listen,
    cluster_port: i32,
    count: usize,
    ports: Ports,
) -> Vec<Node> {
    let checkout_tls = config::read_tls(layout);
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
                    tls: None,
                    jwt: false,
                },
                cluster_port: shift(cluster_port),
                layout: node_layout,
                name,
            };
            let kept = match ports {
                Ports::Kept => Node::as_configured(layout, &planned.name),
                Ports::Asked => recorded_ports(&planned),
            };
            let mut node = kept.unwrap_or(planned);
            node.listen.tls = checkout_tls.as_ref().map(|tls| {
                TlsDir::of(layout).config(
                    &node.name,
                    &node.layout.dir,
                    tls.verify,
                    tls.handshake_first,
                )
            });
            node
        })
        .collect()
}

/// Refuses a cluster for a checkout whose server serves a certificate of the user's: each node
/// needs one of its own, for its routes too (usage clientAuth), which only the local CA here
/// issues.
pub(crate) fn refuse_own_certificates(layout: &Layout) -> Result<()> {
    let Some(tls) = config::read_tls(layout) else {
        return Ok(());
    };
    let ours = TlsDir::of(layout).config(crate::server::tls::SERVER, &layout.dir, false, false);
    if tls.cert_file != ours.cert_file {
        anyhow::bail!(
            "`{}` serves a certificate of yours (`{}`), and a local cluster's nodes each need \
             one of their own, which also serves their routes (usage clientAuth, which public \
             CAs no longer issue): `cargo xtask setup --tls` switches to certificates of the \
             local CA, which the cluster's nodes get too",
            crate::util::paths::show(&layout.config()),
            tls.cert_file
        );
    }
    Ok(())
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

fn recorded_ports(node: &Node) -> Option<Node> {
    let text = fs::read_to_string(node.layout.ports_record()).ok()?;
    let ports: Value = serde_json::from_str(&text).ok()?;
    let port = |key: &str| ports[key].as_i64().map(|p| p as i32);
    Some(Node {
        listen: Listen {
            host: node.listen.host.clone(),
            port: port("client")?,
            http_port: port("http")?,
            ws_port: port("websocket")?,
            tls: node.listen.tls.clone(),
            jwt: node.listen.jwt,
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
    write_atomically(&node.layout.ports_record(), ports.to_string().as_bytes())
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
}

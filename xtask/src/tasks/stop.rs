//! `cargo xtask stop`: stop the server of this checkout, or its cluster's nodes, gracefully if
//! they will go.

use std::time::Duration;

use anyhow::Result;

use crate::cluster;
use crate::layout::Layout;
use crate::lifecycle;
use crate::server;

/// Stop the server started by `cargo xtask run --detach`, or every node of the cluster.
///
/// The server is asked to shut down cleanly (SIGTERM on Unix; on Windows, where a detached
/// process cannot be asked, it is terminated) and is killed if it has not exited in time.
/// Cluster nodes are stopped together; a RAFT leader asked to stop hands its leadership over
/// first. A pid file whose process is gone or is another program is removed, never signalled.
#[derive(Debug, clap::Args)]
pub(crate) struct Stop {
    /// Seconds to wait for a clean shutdown before killing the server.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    timeout: u64,

    /// Stop this node of the cluster only (n1, n2, ...); `run --cluster --detach` starts it
    /// again.
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
}

impl Stop {
    pub(crate) fn run(&self, layout: &Layout) -> Result<()> {
        let timeout = Duration::from_secs(self.timeout);
        let names = cluster::recorded_names(layout);
        if let Some(node) = &self.node {
            cluster::check_node(layout, node)?;
            return lifecycle::stop_server(&layout.node(node), node, timeout);
        }
        if server::reconcile_pid_file(layout)?.is_none() && !names.is_empty() {
            return lifecycle::stop_nodes(layout, &names, timeout);
        }
        lifecycle::stop_server(layout, "nats-server", timeout)
    }
}

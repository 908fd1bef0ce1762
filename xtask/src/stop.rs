//! `cargo xtask stop`: stop the server of this checkout, or its cluster's nodes, gracefully if
//! they will go.

use std::time::Duration;

use anyhow::{Result, bail};

use crate::cluster;
use crate::layout::Layout;
use crate::server::{self, Stopped};

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
            if !names.contains(node) {
                bail!(
                    "this checkout's cluster has no node `{node}`{}",
                    if names.is_empty() {
                        String::from(" (it has no cluster)")
                    } else {
                        format!(": its nodes are {}", names.join(", "))
                    }
                );
            }
            return stop_one(&layout.node(node), node, timeout);
        }
        if server::reconcile_pid_file(layout)?.is_none() && !names.is_empty() {
            let outcomes: Vec<Result<()>> = std::thread::scope(|scope| {
                let handles: Vec<_> = names
                    .iter()
                    .map(|name| scope.spawn(|| stop_one(&layout.node(name), name, timeout)))
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
            return Ok(());
        }
        stop_one(layout, "nats-server", timeout)
    }
}

/// Stops the server of `layout`, called `what` in messages.
fn stop_one(layout: &Layout, what: &str, timeout: Duration) -> Result<()> {
    let Some(pid) = server::reconcile_pid_file(layout)? else {
        eprintln!("{what} is not running");
        return Ok(());
    };
    let stopped = server::stop(pid, layout, timeout)?;
    server::remove_pid_file(layout, pid);
    match stopped {
        Stopped::Gracefully => eprintln!("{what} (pid {pid}) stopped"),
        Stopped::Killed if cfg!(windows) => eprintln!(
            "{what} (pid {pid}) was terminated: Windows cannot ask a detached process to stop"
        ),
        Stopped::Killed => eprintln!(
            "{what} (pid {pid}) did not stop within {} s and was killed",
            timeout.as_secs()
        ),
    }
    Ok(())
}

//! The nodes of the cluster a client program works with: this checkout's running cluster, or a
//! temporary one of its own. The smoke checks ask for a node to be stopped and started again
//! (`--failover`); this does it, on the node's own ports, and puts back any node still stopped
//! when they end.

use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::cluster::{self, Node, Secrets, Started};
use crate::layout::Layout;
use crate::server::config::Listen;
use crate::server::secrets;
use crate::server::{self, Endpoints, Mode};

/// How long a node has to start, or to stop gracefully.
const NODE_TIMEOUT: Duration = Duration::from_secs(30);
/// How many nodes a temporary cluster has.
const TEMPORARY_NODES: usize = 3;

pub(crate) struct ClusterNodes {
    /// Every node, on the ports it listens on.
    nodes: Vec<Node>,
    token: String,
    password: String,
    /// The checkout's directory, whose run lock a restart takes; None for a temporary cluster.
    checkout: Option<Layout>,
    /// The nodes this run started and holds: all of a temporary cluster, the restarted ones
    /// of the checkout's.
    started: Vec<Started>,
    /// Nodes stopped on request and not started again yet.
    stopped: Vec<String>,
    /// A temporary cluster's directory, deleted once its nodes are stopped.
    dir: Option<tempfile::TempDir>,
}

impl ClusterNodes {
    /// This checkout's cluster, whose nodes (`running`: names and pids) all run.
    pub(crate) fn of_checkout(layout: &Layout, running: &[(String, u32)]) -> Result<ClusterNodes> {
        let nodes = running
            .iter()
            .map(|(name, _)| {
                Node::as_configured(layout, name)
                    .with_context(|| format!("node {name} runs without a config"))
            })
            .collect::<Result<Vec<Node>>>()?;
        let env_file = layout.env_file();
        Ok(ClusterNodes {
            nodes,
            token: secrets::load(&env_file)?,
            password: secrets::ensure_route_password(&env_file)?,
            checkout: Some(layout.clone()),
            started: Vec::new(),
            stopped: Vec::new(),
            dir: None,
        })
    }

    /// A cluster of its own in a temporary directory, from the checkout's binary, with secrets
    /// of its own: the first node picks its ports, the others route to it, and each keeps the
    /// ports of its first start.
    pub(crate) fn temporary(checkout: &Layout) -> Result<ClusterNodes> {
        let dir = tempfile::Builder::new()
            .prefix("nats-xtask-cluster-")
            .tempdir()
            .context("cannot create a temporary directory")?;
        let layout = Layout::with_binary(dir.path().to_path_buf(), checkout.binary());
        let picked = Listen::loopback_on_free_ports();
        let nodes = cluster::nodes(&layout, &picked, -1, TEMPORARY_NODES, cluster::Ports::Asked);
        let mut cluster = ClusterNodes {
            nodes: nodes.clone(),
            token: secrets::generate()?,
            password: secrets::generate_route_password()?,
            checkout: None,
            started: Vec::new(),
            stopped: Vec::new(),
            dir: Some(dir),
        };
        cluster
            .start(&nodes)
            .context("cannot start a temporary cluster")?;
        // The ports each node picked, now kept in its `ports.json`.
        cluster.nodes = cluster::nodes(&layout, &picked, -1, TEMPORARY_NODES, cluster::Ports::Kept);
        Ok(cluster)
    }

    /// The first node's config, which the checks go through.
    pub(crate) fn first_config(&self) -> Option<std::path::PathBuf> {
        Some(self.nodes.first()?.layout.config())
    }

    pub(crate) fn is_temporary(&self) -> bool {
        self.checkout.is_none()
    }

    pub(crate) fn names(&self) -> Vec<&str> {
        self.nodes.iter().map(|node| node.name.as_str()).collect()
    }

    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    pub(crate) fn dir(&self) -> Option<&std::path::Path> {
        self.dir.as_ref().map(tempfile::TempDir::path)
    }

    /// Every node's name and endpoints, from the ports files of the nodes as they run now.
    pub(crate) fn endpoints(&self) -> Result<Vec<(String, Endpoints)>> {
        Ok(self
            .endpoints_and_pids()?
            .into_iter()
            .map(|(name, endpoints, _)| (name, endpoints))
            .collect())
    }

    /// Every node's name, endpoints and pid, as the nodes run now.
    pub(crate) fn endpoints_and_pids(&self) -> Result<Vec<(String, Endpoints, u32)>> {
        self.nodes
            .iter()
            .map(|node| {
                let pid = server::reconcile_pid_file(&node.layout)?
                    .with_context(|| format!("node {} is not running", node.name))?;
                let endpoints = Endpoints::of_running(&node.layout, pid)?;
                Ok((node.name.clone(), endpoints, pid))
            })
            .collect()
    }

    /// Carries out one request of the checks (`stop NAME graceful|kill`, `start NAME`) and
    /// returns the answer they wait for: `ok`, or `failed: why`.
    pub(crate) fn answer(&mut self, request: &str) -> String {
        let words: Vec<&str> = request.split_whitespace().collect();
        let outcome = match words.as_slice() {
            ["stop", name, "graceful"] => self.stop(name, false),
            ["stop", name, "kill"] => self.stop(name, true),
            ["start", name] => self.restart(name, "as the checks asked"),
            _ => Err(anyhow::anyhow!("the xtask knows no request `{request}`")),
        };
        match outcome {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("failed: {e:#}"),
        }
    }

    fn node(&self, name: &str) -> Result<Node> {
        self.nodes
            .iter()
            .find(|node| node.name == name)
            .cloned()
            .with_context(|| format!("the cluster has no node `{name}`"))
    }

    /// Stops node `name`: asked to shut down, or killed as a crash would end it.
    fn stop(&mut self, name: &str, kill: bool) -> Result<()> {
        let node = self.node(name)?;
        let pid = server::reconcile_pid_file(&node.layout)?
            .with_context(|| format!("node {name} is not running"))?;
        let how = if kill { "killing" } else { "stopping" };
        eprintln!("{how} node {name} (pid {pid}), as the checks asked");
        if kill {
            server::kill_now(pid, &node.layout)?;
        } else {
            server::stop(pid, &node.layout, NODE_TIMEOUT)?;
        }
        server::remove_pid_file(&node.layout, pid);
        // A node this run holds is reaped at once.
        if let Some(index) = self.started.iter().position(|s| s.child.id() == pid) {
            let mut gone = self.started.remove(index);
            let _ = gone.child.wait();
        }
        self.stopped.push(name.to_string());
        Ok(())
    }

    /// Starts node `name` again on its own ports and waits until the whole cluster is ready;
    /// `why` ends the line that says so.
    fn restart(&mut self, name: &str, why: &str) -> Result<()> {
        let node = self.node(name)?;
        eprintln!("starting node {name} again on its own ports, {why}");
        let _lock = match &self.checkout {
            Some(layout) => Some(server::run_lock(layout)?),
            None => None,
        };
        if let Some(pid) = server::reconcile_pid_file(&node.layout)? {
            bail!("node {name} already runs (pid {pid})");
        }
        self.start(&[node])?;
        self.stopped.retain(|stopped| stopped != name);
        Ok(())
    }

    /// Starts `to_start` and waits until the whole cluster is ready; on failure, those
    /// started are stopped.
    fn start(&mut self, to_start: &[Node]) -> Result<()> {
        let secrets = Secrets {
            token: &self.token,
            password: &self.password,
        };
        // A checkout's node outlives the checks, as the others of its cluster do.
        let mode = if self.is_temporary() {
            Mode::Attached
        } else {
            Mode::Detached
        };
        let never = || false;
        let ready =
            cluster::start_ready(&self.nodes, to_start, &secrets, NODE_TIMEOUT, mode, &never)?;
        if let Some((started, _)) = ready {
            self.started.extend(started);
        }
        Ok(())
    }

    /// Starts again the nodes of the checkout's cluster that the checks stopped and did not
    /// start again (they failed, or were interrupted): the cluster is left as it was found.
    pub(crate) fn restore(&mut self) {
        if self.is_temporary() {
            return;
        }
        for name in self.stopped.clone() {
            if let Err(e) =
                self.restart(&name, "as the checks stopped it and did not start it again")
            {
                eprintln!(
                    "warning: node {name}, stopped by the checks, could not be started again: \
                     {e:#}; `cargo xtask run --cluster --detach` starts it"
                );
            }
        }
    }
}

impl Drop for ClusterNodes {
    /// A temporary cluster's nodes are stopped before its directory goes.
    fn drop(&mut self) {
        if self.is_temporary() {
            cluster::stop_started(&mut self.started);
        }
    }
}

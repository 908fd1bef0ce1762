//! `cargo xtask reload`: the running server takes in its edited config, without a restart.

use std::time::Duration;

use anyhow::{Result, bail};

use crate::cluster;
use crate::install;
use crate::layout::Layout;
use crate::lifecycle::Running;
use crate::server::config;
use crate::server::reload::{Target, reload};
use crate::server::secrets::{self, RouteSecrets, ServerEnv};

/// Check the edited config, then have the running server load it without a restart.
///
/// The config is checked first with `nats-server -t`: one the server rejects is refused with
/// its message, and the running server is left alone. Then the server is asked to reload
/// (SIGHUP), and this reports whether it did: `/varz` `config_load_time` changes when it has,
/// and its log says why when it has not (some settings, such as JetStream's limits, need a
/// restart). For a cluster, every node reloads its own config (`cluster/nK/nats-server.conf`),
/// or `--node NAME` alone; a node that refuses does not keep the others from reloading. On Windows a
/// server in the background cannot be signalled: `cargo xtask restart` restarts it instead.
#[derive(Debug, clap::Args)]
pub(crate) struct Reload {
    /// Reload this node of the cluster only (n1, n2, ...).
    #[arg(long, value_name = "NAME")]
    node: Option<String>,

    /// Seconds to wait for the server to report the reload.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    timeout: u64,
}

impl Reload {
    pub(crate) fn run(&self, layout: &Layout) -> Result<()> {
        install::require_installed(layout, "reload")?;
        let targets = self.targets(layout)?;
        // Every config is checked before any server is asked: nothing half-reloaded.
        let token = secrets::load(&layout.env_file())?;
        for target in &targets {
            let env = if target.what == "nats-server" {
                ServerEnv::single(token.clone())
            } else {
                // A node's config reads the route password and its routes from the
                // environment too; which routes does not matter to the check.
                ServerEnv {
                    token: token.clone(),
                    cluster: Some(RouteSecrets {
                        password: secrets::ensure_route_password(&layout.env_file())?,
                        routes: "[]".to_string(),
                    }),
                }
            };
            config::check(&layout.binary(), &target.layout, &env).map_err(|e| {
                anyhow::anyhow!("{e:#}; the running {} is left as it is", target.what)
            })?;
        }
        if cfg!(windows) {
            bail!(
                "on Windows a server in the background cannot be signalled to reload its \
                 config; `cargo xtask restart` restarts it with the new one"
            );
        }
        // A node that refuses does not keep the others from reloading.
        let failures: Vec<String> = targets
            .iter()
            .filter_map(|target| reload(target, Duration::from_secs(self.timeout)).err())
            .map(|e| format!("{e:#}"))
            .collect();
        match failures.as_slice() {
            [] => Ok(()),
            [one] => bail!("{one}"),
            many => bail!(
                "{} servers did not reload:\n  {}",
                many.len(),
                many.join("\n  ")
            ),
        }
    }

    /// The servers to reload: the single server, or the running nodes of the cluster (or the
    /// one named).
    fn targets(&self, layout: &Layout) -> Result<Vec<Target>> {
        let running = Running::now(layout)?;
        match (&running, &self.node) {
            (Running::Nothing, _) => bail!(
                "nats-server is not running, so there is nothing to reload: `cargo xtask run` \
                 starts it with the config as it is"
            ),
            (Running::Single { .. }, Some(_)) => bail!(
                "--node names a node of the cluster, but the single server runs: `cargo xtask \
                 reload` alone reloads it"
            ),
            (Running::Cluster { .. }, Some(node)) => cluster::check_node(layout, node)?,
            _ => {}
        }
        let targets = running.servers(layout, self.node.as_deref())?;
        if targets.is_empty() {
            bail!("no node to reload is running");
        }
        Ok(targets)
    }
}

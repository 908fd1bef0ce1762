//! `cargo xtask restart`: stop what runs and start it again in the background.

use std::time::Duration;

use anyhow::Result;

use crate::install;
use crate::layout::Layout;
use crate::lifecycle::{self, Running, Say};
use crate::server;

/// Stop the server (or every node of the cluster) and start it again in the background.
///
/// It starts in the mode that was running, the single server with its config, every node of
/// the cluster on its own ports, and returns once it is ready, as `run --detach` does. With
/// nothing running it starts the single server and says so.
#[derive(Debug, clap::Args)]
pub(crate) struct Restart {
    /// Seconds to wait for a clean shutdown (then the server is killed), and again for the
    /// server to become ready.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    timeout: u64,
}

impl Restart {
    pub(crate) fn run(&self, layout: &Layout) -> Result<()> {
        install::require_installed(layout, "restart")?;
        // No `run` may start the server between the stop and the start.
        let _lock = server::run_lock(layout)?;
        let timeout = Duration::from_secs(self.timeout);
        let running = Running::now(layout)?;
        if running == Running::Nothing {
            eprintln!(
                "nothing was running: starting the single server (`cargo xtask run --cluster \
                 --detach` starts the cluster)"
            );
            return lifecycle::start_single(layout, timeout, Say::Stdout);
        }
        running.restart(layout, timeout, Say::Stdout, || Ok(()))
    }
}

//! `cargo xtask stop`: stop the server of this checkout, gracefully if it will go.

use std::time::Duration;

use anyhow::Result;

use crate::layout::Layout;
use crate::server::{self, Stopped};

/// Stop the server started by `cargo xtask run --detach`.
///
/// The server is asked to shut down cleanly (SIGTERM on Unix; on Windows, where a detached
/// process cannot be asked, it is terminated) and is killed if it has not exited in time.
/// A pid file whose process is gone or is another program is removed, never signalled.
#[derive(Debug, clap::Args)]
pub(crate) struct Stop {
    /// Seconds to wait for a clean shutdown before killing the server.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    timeout: u64,
}

impl Stop {
    pub(crate) fn run(&self, layout: &Layout) -> Result<()> {
        let Some(pid) = server::reconcile_pid_file(layout)? else {
            eprintln!("nats-server is not running");
            return Ok(());
        };
        let stopped = server::stop(pid, layout, Duration::from_secs(self.timeout))?;
        server::remove_pid_file(layout, pid);
        match stopped {
            Stopped::Gracefully => eprintln!("nats-server (pid {pid}) stopped"),
            Stopped::Killed if cfg!(windows) => eprintln!(
                "nats-server (pid {pid}) was terminated: Windows cannot ask a detached process to stop"
            ),
            Stopped::Killed => eprintln!(
                "nats-server (pid {pid}) did not stop within {} s and was killed",
                self.timeout
            ),
        }
        Ok(())
    }
}

//! `cargo xtask reset`: start over with empty JetStream storage, keeping the install.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::cluster;
use crate::install;
use crate::layout::Layout;
use crate::lifecycle::{Running, Say};
use crate::server;
use crate::util::files::tree_size;
use crate::util::paths::show;
use crate::util::units::{self, bytes};

/// Delete the JetStream data (streams, consumers, messages), keeping binary, config and token.
///
/// Stops what runs first and starts it again afterwards. The single server's data and every
/// cluster node's go together: a node whose data alone were wiped would rejoin its cluster as
/// a stranger. Asks for confirmation on a terminal; elsewhere it needs --yes.
#[derive(Debug, clap::Args)]
pub(crate) struct Reset {
    /// Delete without asking.
    #[arg(long, short)]
    yes: bool,

    /// Delete the logs too.
    #[arg(long)]
    logs: bool,

    /// Seconds to wait for a clean shutdown (then the server is killed), and again for the
    /// server to become ready.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    timeout: u64,
}

impl Reset {
    pub(crate) fn run(&self, layout: &Layout) -> Result<()> {
        install::require_installed(layout, "reset")?;
        // No `run` may start the server while its data go.
        let _lock = server::run_lock(layout)?;
        let doomed: Vec<(PathBuf, u64)> = self
            .doomed(layout)
            .into_iter()
            .filter(|path| path.exists())
            .map(|path| {
                let size = tree_size(&path);
                (path, size)
            })
            .collect();
        if doomed.is_empty() {
            eprintln!("there is no JetStream data to delete");
            return Ok(());
        }
        let total: u64 = doomed.iter().map(|(_, size)| size).sum();
        let running = Running::now(layout)?;
        if !self.yes && !confirmed(&doomed, total, &running)? {
            eprintln!("nothing deleted");
            return Ok(());
        }
        running.restart(
            layout,
            Duration::from_secs(self.timeout),
            Say::Stderr,
            || {
                for (path, size) in &doomed {
                    std::fs::remove_dir_all(path)
                        .with_context(|| format!("cannot delete `{}`", show(path)))?;
                    println!("deleted `{}` ({})", show(path), human(*size));
                }
                // A cluster without data may start again with any number of nodes.
                cluster::forget_count(layout)?;
                if doomed.len() > 1 {
                    println!("deleted {} in all", human(total));
                }
                Ok(())
            },
        )
    }

    /// What goes: the data directories (and with --logs the logs) of the single server and of
    /// every cluster node.
    fn doomed(&self, layout: &Layout) -> Vec<PathBuf> {
        let mut servers = vec![layout.clone()];
        servers.extend(cluster::node_dirs(layout));
        let mut paths = Vec::new();
        for server in &servers {
            paths.push(server.jetstream_dir());
            if self.logs {
                paths.push(server.logs_dir());
            }
        }
        paths
    }
}

/// `512 B`, or `1.5 MiB (1,572,864 bytes)`: the exact count where the unit rounds.
fn human(size: u64) -> String {
    if size < 1024 {
        bytes(&size.into())
    } else {
        format!("{} ({})", bytes(&size.into()), units::count(size, "byte"))
    }
}

/// Asks on the terminal; without one, says how to confirm.
fn confirmed(doomed: &[(PathBuf, u64)], total: u64, running: &Running) -> Result<bool> {
    let list: Vec<String> = doomed
        .iter()
        .map(|(path, size)| format!("`{}` ({})", show(path), human(*size)))
        .collect();
    let mut what = format!("delete {}", list.join(", "));
    if doomed.len() > 1 {
        what.push_str(&format!(" ({} in all)", human(total)));
    }
    if !std::io::stdin().is_terminal() {
        bail!("reset would {what}: run it with --yes to confirm (there is no terminal to ask on)");
    }
    let restart = if *running == Running::Nothing {
        ""
    } else {
        " The server is stopped first and started again after."
    };
    eprint!("{what}?{restart} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

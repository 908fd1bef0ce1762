//! The subcommands, one file each, named as typed (`cargo xtask token` is `token.rs`): the
//! index and the dispatch. Only `main.rs` uses this module, and no task uses another: what two
//! tasks share lives below them.

mod bench;
mod cache;
mod ci;
mod context;
mod env;
mod exec;
mod logs;
mod monitor;
mod reload;
mod reset;
mod restart;
mod run;
mod setup;
mod smoke;
mod status;
mod stop;
mod test;
mod tls;
mod token;
mod uninstall;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::checkout;
use crate::layout::Layout;
use crate::util::paths;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Task {
    Setup(setup::Setup),
    Run(run::Run),
    Stop(stop::Stop),
    Restart(restart::Restart),
    Status(status::Status),
    Logs(logs::Logs),
    Smoke(smoke::Smoke),
    Monitor(monitor::Monitor),
    Bench(bench::Bench),
    Reload(reload::Reload),
    Reset(reset::Reset),
    Token(token::Token),
    Tls(tls::Tls),
    Context(context::Context),
    Env(env::Env),
    Exec(exec::Exec),
    Cache(cache::CacheTask),
    Uninstall(uninstall::Uninstall),
    Test(test::Test),
    Ci(ci::Ci),
}

/// Where a task works: the server's directory and the checkout, each found only when the task
/// asks, so that tasks needing neither (`monitor --url`) run anywhere.
pub(crate) struct Dirs {
    /// `--dir`, as the user gave it.
    pub(crate) dir: Option<PathBuf>,
    /// The checkout the xtask runs in, if any.
    pub(crate) root: Option<PathBuf>,
}

impl Dirs {
    /// The server's directory: `--dir` is relative to where the user is, the default to the
    /// checkout.
    fn layout(&self) -> Result<Layout> {
        match (&self.dir, &self.root) {
            (Some(dir), _) => Ok(Layout::new(
                std::path::absolute(paths::from_user(dir))
                    .with_context(|| format!("bad directory `{}`", dir.display()))?,
            )),
            (None, Some(root)) => Ok(Layout::new(root.join("infrastructure").join("nats"))),
            (None, None) => Err(checkout::not_found(
                "run the xtask inside one, or name the server's directory with --dir DIR (or NATS_DIR)",
            )),
        }
    }

    /// The checkout, for a task that builds from it.
    fn checkout(&self, task: &str) -> Result<&Path> {
        self.root.as_deref().ok_or_else(|| {
            checkout::not_found(&format!(
                "`{task}` builds from the checkout: run it inside one"
            ))
        })
    }
}

impl Task {
    /// Runs the task: its exit code.
    pub(crate) fn run(self, dirs: &Dirs) -> Result<ExitCode> {
        let root = dirs.root.as_deref();
        let layout = || dirs.layout();
        match self {
            Task::Setup(setup) => setup.run(&layout()?)?,
            Task::Run(run) => run.run(&layout()?, root)?,
            Task::Stop(stop) => stop.run(&layout()?)?,
            Task::Status(status) => return status.run(&layout()?),
            Task::Smoke(smoke) => return smoke.run(&layout()?, dirs.checkout("smoke")?),
            Task::Bench(bench) => return bench.run(&layout()?, dirs.checkout("bench")?),
            Task::Logs(logs) => logs.run(&layout()?)?,
            Task::Monitor(monitor) => return monitor.run(layout),
            Task::Reload(reload) => reload.run(&layout()?)?,
            Task::Restart(restart) => restart.run(&layout()?)?,
            Task::Reset(reset) => reset.run(&layout()?)?,
            Task::Test(test) => test.run(dirs.checkout("test")?)?,
            Task::Ci(ci) => ci.run(dirs.checkout("ci")?)?,
            Task::Token(token) => token.run(&layout()?, root)?,
            Task::Tls(tls) => tls.run(&layout()?)?,
            Task::Context(context) => context.run(&layout()?, root)?,
            Task::Env(env) => env.run(&layout()?)?,
            Task::Exec(exec) => return exec.run(&layout()?),
            Task::Cache(cache) => cache.run(layout)?,
            Task::Uninstall(uninstall) => uninstall.run(&layout()?, root)?,
        }
        Ok(ExitCode::SUCCESS)
    }
}

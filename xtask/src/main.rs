//! `cargo xtask`: sets up, runs, tests and watches the NATS server of this checkout.
//! See the README for the tasks, or `cargo xtask --help`.

mod args;
mod bench;
mod cache_task;
mod checkout;
mod ci;
mod clients;
mod cluster;
mod context;
mod cross;
mod env;
mod exec;
mod install;
mod layout;
mod logs;
mod monitor;
mod pip;
mod reload;
mod reset;
mod restart;
mod run;
mod running;
mod server;
mod setup;
mod smoke;
mod status;
mod stop;
mod suite;
mod target;
mod test;
mod token_task;
mod uninstall;
mod util;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use crate::layout::Layout;
use crate::util::paths;

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Set up, run, test and watch the NATS server of this checkout"
)]
struct Flags {
    /// Directory holding the server's files (default: infrastructure/nats of this checkout).
    #[arg(long, global = true, env = "NATS_DIR", value_name = "DIR")]
    dir: Option<PathBuf>,

    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, clap::Subcommand)]
enum Task {
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
    Token(token_task::Token),
    Context(context::Context),
    Env(env::Env),
    Exec(exec::Exec),
    Cache(cache_task::CacheTask),
    Uninstall(uninstall::Uninstall),
    Test(test::Test),
    Ci(ci::Ci),
}

fn main() -> ExitCode {
    match run(Flags::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", xtask_probe::error_text(&e));
            ExitCode::FAILURE
        }
    }
}

fn run(flags: Flags) -> Result<ExitCode> {
    paths::remember_invocation_dir();
    let root = checkout::find();
    if let Some(root) = &root {
        std::env::set_current_dir(root)
            .with_context(|| format!("cannot enter `{}`", root.display()))?;
    }
    // The server's directory: `--dir` is relative to where the user is, the default to the
    // checkout. Tasks that do not need it (monitor --url) do not ask for it.
    let layout = || -> Result<Layout> {
        match (&flags.dir, &root) {
            (Some(dir), _) => Ok(Layout::new(
                std::path::absolute(paths::from_user(dir))
                    .with_context(|| format!("bad directory `{}`", dir.display()))?,
            )),
            (None, Some(root)) => Ok(Layout::new(root.join("infrastructure").join("nats"))),
            (None, None) => Err(checkout::not_found(
                "run the xtask inside one, or name the server's directory with --dir DIR (or NATS_DIR)",
            )),
        }
    };
    let checkout = |task: &str| {
        root.as_deref().ok_or_else(|| {
            checkout::not_found(&format!(
                "`{task}` builds from the checkout: run it inside one"
            ))
        })
    };
    match flags.task {
        Task::Setup(setup) => setup.run(&layout()?)?,
        Task::Run(run) => run.run(&layout()?, root.as_deref())?,
        Task::Stop(stop) => stop.run(&layout()?)?,
        Task::Status(status) => return status.run(&layout()?),
        Task::Smoke(smoke) => return smoke.run(&layout()?, checkout("smoke")?),
        Task::Bench(bench) => return bench.run(&layout()?, checkout("bench")?),
        Task::Logs(logs) => logs.run(&layout()?)?,
        Task::Monitor(monitor) => return monitor.run(layout),
        Task::Reload(reload) => reload.run(&layout()?)?,
        Task::Restart(restart) => restart.run(&layout()?)?,
        Task::Reset(reset) => reset.run(&layout()?)?,
        Task::Test(test) => test.run(checkout("test")?)?,
        Task::Ci(ci) => ci.run(checkout("ci")?)?,
        Task::Token(token) => token.run(&layout()?, root.as_deref())?,
        Task::Context(context) => context.run(&layout()?, root.as_deref())?,
        Task::Env(env) => env.run(&layout()?)?,
        Task::Exec(exec) => return exec.run(&layout()?),
        Task::Cache(cache) => cache.run(layout)?,
        Task::Uninstall(uninstall) => uninstall.run(&layout()?, root.as_deref())?,
    }
    Ok(ExitCode::SUCCESS)
}

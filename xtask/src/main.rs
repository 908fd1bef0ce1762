//! `cargo xtask`: sets up, runs, tests and watches the NATS server of this checkout.
//! See the README for the tasks, or `cargo xtask --help`.

mod archive;
mod cache;
mod config;
mod download;
mod install;
mod layout;
mod monitor;
mod process;
mod release;
mod run;
mod server;
mod setup;
mod smoke;
mod status;
mod stop;
mod test;
mod token;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use crate::layout::Layout;

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
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
    Status(status::Status),
    Smoke(smoke::Smoke),
    Monitor(monitor::Monitor),
    Test(test::Test),
}

fn main() -> ExitCode {
    match run(Flags::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(flags: Flags) -> Result<ExitCode> {
    let root = project_root();
    layout::remember_invocation_dir();
    // `--dir` is relative to where the user is, everything else to the checkout.
    let dir = match flags.dir {
        Some(dir) => std::path::absolute(layout::from_user(&dir))
            .with_context(|| format!("bad directory `{}`", dir.display()))?,
        None => root.join("infrastructure/nats"),
    };
    std::env::set_current_dir(&root)
        .with_context(|| format!("cannot enter `{}`", root.display()))?;
    let layout = Layout::new(dir);
    match flags.task {
        Task::Setup(setup) => setup.run(&layout)?,
        Task::Run(run) => run.run(&layout)?,
        Task::Stop(stop) => stop.run(&layout)?,
        Task::Status(status) => return status.run(&layout),
        Task::Smoke(smoke) => return smoke.run(&layout),
        Task::Monitor(monitor) => monitor.run(&layout)?,
        Task::Test(test) => test.run(&root)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The checkout: the parent of this crate's directory. Cargo sets `CARGO_MANIFEST_DIR` when
/// it runs the xtask; the value from build time serves when the binary is run directly.
fn project_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    let manifest_dir = manifest_dir.unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or(manifest_dir)
}

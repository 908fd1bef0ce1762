//! `cargo xtask`: sets up, runs, tests and watches the NATS server of this checkout.
//! See the README for the tasks, or `cargo xtask --help`.

mod args;
mod checkout;
mod clients;
mod cluster;
mod install;
mod layout;
mod lifecycle;
mod natscli;
mod selftest;
mod server;
mod tasks;
#[cfg(test)]
mod tidy;
mod util;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use crate::tasks::{Dirs, Task};
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
    flags.task.run(&Dirs {
        dir: flags.dir,
        root,
    })
}

//! `cargo xtask bench`: what this server (or cluster) carries, measured as `nats bench` does.
//! This part finds the server (or starts a temporary one); the load is the `xtask-bench`
//! program of the `xtask-clients` crate, which shares the smoke checks' client build.

use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result};

use crate::args::SourceArgs;
use crate::clients::target::Target;
use crate::clients::{self, Program};
use crate::layout::Layout;
use crate::server::tls::ClientFiles;
use crate::util::process::exit_code;
use crate::util::signals;

/// Measure what the server carries: core pub/sub, request/reply, JetStream.
///
/// `cargo xtask bench` alone runs a short suite (each at 128 B) and prints one table;
/// `bench pubsub`, `bench request` and `bench js` measure one thing with their options, given
/// after the benchmark's name (`cargo xtask bench js --help` lists js's): `--msgs` or
/// `--duration`, `--size`, clients, `--replicas` and `--storage` for JetStream, `--json` or
/// `--csv` (as `nats bench --csv` writes it) for scripts. `--help` shows every benchmark's
/// options after this task's own, from the bench program (built first).
///
/// It measures this checkout's server or cluster, with its token; else whatever answers on
/// the ports of its config; else a temporary server (with --cluster, a temporary cluster).
/// The first run builds the bench program in the release profile (about two minutes on two
/// cores), so that it measures the server and not its own client.
#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub(crate) struct Bench {
    /// Print help: this task's options, then the benchmarks and their options.
    #[arg(short = 'h', long)]
    help: bool,

    /// Measure a cluster: this checkout's if it runs, else a temporary one of 3 nodes.
    #[arg(long)]
    cluster: bool,

    #[command(flatten)]
    source: SourceArgs,

    /// What to measure and how, passed to the bench: `pubsub`, `request` or `js` and their
    /// options (after this task's own: `--cluster`, `--dir`, `--version`, `--mirror`); nothing
    /// for the suite.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "BENCH ARGS"
    )]
    args: Vec<String>,
}

impl Bench {
    pub(crate) fn run(&self, layout: &Layout, root: &Path) -> Result<ExitCode> {
        if self.help {
            // This task's options at once; the benchmarks' from the bench program itself, so
            // that the help never differs from what it accepts.
            let mut own = <Bench as clap::Args>::augment_args(clap::Command::new("bench"))
                .bin_name("cargo xtask bench");
            println!("{}", own.render_long_help());
            let bench = clients::build(root, Program::Bench)?;
            println!("\nThe benchmarks and their options, as the bench program takes them:\n");
            let shown = Command::new(&bench)
                .arg("--help")
                .status()
                .context("cannot run the bench for its help")?;
            return Ok(exit_code(shown));
        }
        let bench = clients::build(root, Program::Bench)?;
        // Help, and arguments the bench refuses, before any server is started for it.
        let asks_help = self
            .args
            .iter()
            .any(|a| a == "--help" || a == "-h" || a == "help");
        let mut check = Command::new(&bench);
        if !asks_help {
            check.arg("--check-only");
        }
        check.args(&self.args);
        let checked = check.status()?;
        if asks_help || !checked.success() {
            return Ok(exit_code(checked));
        }
        let target = Target::find(layout, self.cluster, &self.source)?;
        // Ctrl-C reaches the bench too, which deletes what it made on the server first; this
        // process waits for it, then stops a temporary server. A stop asked of this process
        // alone (SIGTERM) is passed on to the bench.
        signals::catch()?;
        let server = target.describe();
        eprintln!(
            "measuring {}",
            server["summary"].as_str().unwrap_or_default()
        );
        let mut run = Command::new(&bench);
        for (endpoints, pid) in target.servers()? {
            run.args(["--client", &endpoints.client])
                .args(["--monitoring", &endpoints.monitoring]);
            if let Some(pid) = pid {
                run.args(["--server-pid", &pid.to_string()]);
            }
        }
        run.args(&self.args)
            .envs(ClientFiles::of(layout)?.iter().flat_map(ClientFiles::env));
        target.hand_on(&mut run);
        let mut child = run.spawn().context("cannot start the bench")?;
        signals::pass_on_to(child.id());
        let status = child.wait().context("cannot wait for the bench")?;
        signals::pass_on_to_none();
        drop(target);
        Ok(exit_code(status))
    }
}

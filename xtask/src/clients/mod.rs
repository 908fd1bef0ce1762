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

/// A program of the crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Program {
    /// `xtask-smoke`: the checks of `cargo xtask smoke`.
    Smoke,
    /// `xtask-bench`: the same client build as the checks' (the workspace's dev profile
    /// optimises the client, so that it is not what limits the figures).
    Bench,
}

impl Program {
    const ALL: [Program; 2] = [Program::Smoke, Program::Bench];

    fn name(self) -> &'static str {
        match self {
            Program::Smoke => "xtask-smoke",
            Program::Bench => "xtask-bench",
        }
    }
}

/// Builds both programs, in one cargo run, and returns the executable of `program`.
///
/// The first build takes a minute or more, so it is announced: on a terminal with cargo's own
/// progress, piped with a line before and one after. Later runs are silent unless cargo had
/// to build something again.
pub(crate) fn build(root: &Path, program: Program) -> Result<PathBuf> {
    let built = checkout::target_dir(root).join("debug");
    let first = Program::ALL.iter().any(|p| {
        !built
            .join(format!("{}{}", p.name(), std::env::consts::EXE_SUFFIX))
            .is_file()
    });
    let progress = first && std::io::stderr().is_terminal();
    if first {
        eprintln!(
            "building the client programs of `smoke` and `bench` (crate `xtask-clients`): once for \
             this checkout, later runs reuse them"
        );
    }
    let start = Instant::now();
    let output = process::run_unchecked(build_command(root, progress), DEADLINE)?;
    let took = start.elapsed().as_secs_f64();
    if !output.status.success() {
        // Cargo's JSON messages are on stdout; what it says to people is on stderr, which a
        // build showing its progress has already shown.
        let said = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = said.lines().collect();
        bail!(
            "cannot build the client programs (`cargo build --package xtask-clients --bins`, \
             {}){}{}",
            output.status,
            if lines.is_empty() { "" } else { ":\n" },
            lines[lines.len().saturating_sub(20)..].join("\n")
        );
    }
    let messages = String::from_utf8_lossy(&output.stdout);
    if first && !progress {
        eprintln!("built the client programs in {took:.1} s");
    } else if !first && rebuilt(&messages) {
        eprintln!(
            "built the client programs again in {took:.1} s: something they are made of changed"
        );
    }
    let name = program.name();
    executable(&messages, name)
        .with_context(|| format!("cargo built `{name}` but named no executable"))
}

fn build_command(root: &Path, progress: bool) -> Command {
    let mut build = process::cargo();
    build.args(["build", "--package", "xtask-clients", "--bins"]);
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
    fn the_programs_are_built_without_the_token_in_the_one_profile() {
        let build = build_command(Path::new("."), false);
        let token = build.get_envs().find(|(name, _)| *name == TOKEN_VAR);
        assert_eq!(
            token,
            Some((std::ffi::OsStr::new(TOKEN_VAR), None)),
            "not removed"
        );
        let args: Vec<_> = build.get_args().collect();
        assert!(
            !args.contains(&std::ffi::OsStr::new("--release")),
            "a second client build"
        );
        assert!(
            args.contains(&std::ffi::OsStr::new("--bins")),
            "one build for both"
        );
        assert!(args.contains(&std::ffi::OsStr::new("--quiet")));
        let shown = build_command(Path::new("."), true);
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

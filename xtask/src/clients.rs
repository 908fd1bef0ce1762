//! The NATS client programs of the `xtask-smoke` crate (`xtask/smoke/`): the smoke checks and
//! the bench. Built on first use, apart from the xtask, so that the client and its runtime do
//! not weigh on every `cargo xtask` build; built without the token in the environment, so that
//! no build script or proc-macro ever sees it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::process;
use crate::token::TOKEN_VAR;

/// A program of the crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Program {
    /// `xtask-smoke`.
    Checks,
    /// `xtask-bench`: the same client build as the checks' (the workspace's dev profile
    /// optimises the client, so that it is not what limits the figures).
    Bench,
}

impl Program {
    fn name(self) -> &'static str {
        match self {
            Program::Checks => "xtask-smoke",
            Program::Bench => "xtask-bench",
        }
    }
}

/// Builds `program` and returns its executable.
pub(crate) fn build(root: &Path, program: Program) -> Result<PathBuf> {
    let output =
        process::run_unchecked(build_command(root, program), Duration::from_secs(15 * 60))?;
    let name = program.name();
    if !output.status.success() {
        // Cargo's JSON messages are on stdout; what it says to people is on stderr.
        let said = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = said.lines().collect();
        bail!(
            "cannot build `{name}` (`cargo build --package xtask-smoke`, {}):\n{}",
            output.status,
            lines[lines.len().saturating_sub(20)..].join("\n")
        );
    }
    executable(&String::from_utf8_lossy(&output.stdout), name)
        .with_context(|| format!("cargo built `{name}` but named no executable"))
}

fn build_command(root: &Path, program: Program) -> Command {
    let mut build = process::cargo();
    build
        .args([
            "build",
            "--quiet",
            "--package",
            "xtask-smoke",
            "--bin",
            program.name(),
        ])
        .arg("--message-format=json-render-diagnostics")
        .current_dir(root)
        .env_remove(TOKEN_VAR)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    build
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
        let build = build_command(Path::new("."), Program::Bench);
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
        assert!(args.contains(&std::ffi::OsStr::new("xtask-bench")));
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
}

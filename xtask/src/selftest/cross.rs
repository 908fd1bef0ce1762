//! `cargo xtask ci --targets`: type-checks the Windows and macOS builds on this Linux machine,
//! so that code behind `cfg(windows)` or `cfg(target_os = "macos")` is compiled before a
//! native runner sees it.
//!
//! `rustup target add` needs the internet, and nothing links without the targets' SDKs, but a
//! check needs neither: Debian's `rustc-web` ships the standard library's sources, which
//! `-Zbuild-std` compiles for the target as metadata, and zig (from PyPI) compiles the C of
//! ring's build script for it. cc-rs is told not to add its own `--target=` (zig wants
//! `-target`) through `CRATE_CC_NO_DEFAULTS`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::Value;

use crate::checkout;
use crate::selftest::debian::{self, DebianRust};
use crate::selftest::{self, Checked, pip};
use crate::util::{process, units};

/// A target to check, with the names zig gives it and its archiver.
struct Target {
    rust: &'static str,
    zig: &'static str,
    /// `lib` takes MSVC's archiver arguments, `ar` the Unix ones.
    archiver: &'static str,
}

const TARGETS: [Target; 2] = [
    Target {
        rust: "x86_64-pc-windows-msvc",
        zig: "x86_64-windows-gnu",
        archiver: "lib",
    },
    Target {
        rust: "aarch64-apple-darwin",
        zig: "aarch64-macos",
        archiver: "ar",
    },
];

const ZIG: &str = "ziglang==0.17.0";
const DEADLINE: Duration = Duration::from_secs(30 * 60);

/// Checks every target, warnings denied in this workspace's code, then shows what Debian's
/// clippy says of it without failing: its version is not the project's, so a lint new to it
/// must not fail CI by itself. Outside CI, a machine that cannot do this says why and passes.
pub(crate) fn check(root: &Path) -> Result<Checked> {
    let tools = match Tools::find_or_install(root) {
        Ok(tools) => tools,
        Err(e) => return selftest::without_tools(e, "the cross-target check"),
    };
    for target in &TARGETS {
        let start = Instant::now();
        let problems = tools.cargo(root, target, "check")?;
        let checked = start.elapsed();
        if !problems.is_empty() {
            bail!(
                "`cargo check --target {}` reports {} in this workspace:\n{}",
                target.rust,
                units::count(problems.len() as u64, "problem"),
                problems.join("\n")
            );
        }
        let start = Instant::now();
        let lints = tools.cargo(root, target, "clippy")?;
        let linted = start.elapsed();
        for lint in &lints {
            eprintln!("{lint}");
        }
        eprintln!(
            "{}: check passed in {:.1} s; Debian's clippy {} in {:.1} s: {}, shown, not failing",
            target.rust,
            checked.as_secs_f64(),
            tools.rust.version,
            linted.as_secs_f64(),
            units::count(lints.len() as u64, "finding")
        );
    }
    Ok(Checked::Yes)
}

struct Tools {
    rust: DebianRust,
    zig: PathBuf,
}

impl Tools {
    fn find_or_install(root: &Path) -> Result<Tools> {
        let rust = debian::rust()?;
        let zig_dir = checkout::target_dir(root).join("ci-tools/zig");
        let zig = pip::ensure(ZIG, &zig_dir, |dir| {
            Some(dir.join("ziglang/zig")).filter(|zig| zig.is_file())
        })?;
        Ok(Tools { rust, zig })
    }

    /// Runs `cargo <task>` (check or clippy) for `target` and returns the rendered warnings and
    /// errors in this workspace's code.
    fn cargo(&self, root: &Path, target: &Target, task: &str) -> Result<Vec<String>> {
        let env_target = target.rust.replace('-', "_");
        let zig = self.zig.display();
        let target_dir = checkout::target_dir(root).join("cross");
        let mut command = self.rust.cargo(root, task, target.rust, &target_dir);
        command
            .args(["--workspace", "--all-targets", "--message-format=json"])
            .env("CRATE_CC_NO_DEFAULTS", "1")
            .env(
                format!("CC_{env_target}"),
                format!("{zig} cc -target {}", target.zig),
            )
            .env(
                format!("AR_{env_target}"),
                format!("{zig} {}", target.archiver),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let output = process::run_unchecked(command, DEADLINE)?;
        let members = root.join("xtask");
        let problems = workspace_diagnostics(&String::from_utf8_lossy(&output.stdout), &members);
        if !output.status.success() && problems.is_empty() {
            let failure = format!(
                "`cargo {task} --target {}` failed ({}): {}",
                target.rust,
                output.status,
                process::last_lines(&output, 15)
            );
            if task == "clippy" {
                return Ok(vec![failure]);
            }
            bail!("{failure}");
        }
        Ok(problems)
    }
}

/// The rendered warnings and errors that cargo's JSON messages report for the crates under
/// `members` (not for dependencies or the standard library).
fn workspace_diagnostics(messages: &str, members: &Path) -> Vec<String> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-message")
        .filter(|m| {
            m["manifest_path"]
                .as_str()
                .is_some_and(|path| Path::new(path).starts_with(members))
        })
        .filter(|m| matches!(m["message"]["level"].as_str(), Some("warning" | "error")))
        .filter_map(|m| m["message"]["rendered"].as_str().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_workspaces_warnings_and_errors_count() {
        let message = |manifest: &str, level: &str, text: &str| {
            serde_json::json!({
                "reason": "compiler-message",
                "manifest_path": manifest,
                "message": {"level": level, "rendered": text},
            })
            .to_string()
        };
        let messages = [
            message("/repo/xtask/Cargo.toml", "warning", "unused import"),
            message(
                "/repo/xtask/clients/Cargo.toml",
                "error",
                "mismatched types",
            ),
            message("/repo/xtask/Cargo.toml", "note", "a note"),
            message(
                "/usr/lib/rustlib/src/rust/library/std/Cargo.toml",
                "warning",
                "std's own",
            ),
            message(
                "/home/u/.cargo/registry/ring/Cargo.toml",
                "warning",
                "a dependency's",
            ),
            message("/repo/vendor/ring/Cargo.toml", "warning", "vendored"),
            r#"{"reason":"compiler-artifact","manifest_path":"/repo/xtask/Cargo.toml"}"#
                .to_string(),
            "Compiling xtask".to_string(),
        ]
        .join("\n");
        assert_eq!(
            workspace_diagnostics(&messages, Path::new("/repo/xtask")),
            ["unused import", "mismatched types"]
        );
    }
}

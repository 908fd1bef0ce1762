//! `cargo xtask setup`: the verified server binary, its config and its token.

use std::path::PathBuf;

use anyhow::Result;

use crate::args::{AuthMode, ListenArgs, SourceArgs, TlsArgs};
use crate::install::release;
use crate::install::{self, SetupOptions};
use crate::layout::Layout;

/// Install the nats-server 2.10 release for this host, write its config and create its token.
///
/// Safe to run again: an installed, verified binary is kept without any network request (the
/// version this checkout pins applies to a first install, `--version` or `--upgrade` change
/// it), and an existing config or `.env.nats` is never overwritten. A setup that fails leaves
/// the directory as it found it.
///
/// Environment: NATS_SERVER_VERSION is `--version`; NATS_XTASK_CACHE is where verified archives
/// are kept (default: the user's cache directory, `nats-xtask`); HTTPS_PROXY, HTTP_PROXY,
/// ALL_PROXY and NO_PROXY are honoured.
#[derive(Debug, clap::Args)]
pub(crate) struct Setup {
    #[command(flatten)]
    source: SourceArgs,

    /// Install the version this checkout pins (`xtask/pins/version`), replacing the one
    /// installed.
    #[arg(long, conflicts_with = "version")]
    upgrade: bool,

    /// Install from this local release archive (.tar.gz or .zip) instead of downloading.
    #[arg(long, value_name = "FILE")]
    archive: Option<PathBuf>,

    /// Expected SHA-256 of the archive; required for `--archive` when no hash is pinned for it.
    #[arg(long, value_name = "HEX", value_parser = release::parse_sha256)]
    sha256: Option<String>,

    /// Install again even if the requested version is already installed.
    #[arg(long)]
    reinstall: bool,

    /// Rewrite nats-server.conf from the template, with its host and ports unless options name
    /// others; the old file is kept beside it.
    #[arg(long)]
    regenerate_config: bool,

    #[command(flatten)]
    listen: ListenArgs,

    #[command(flatten)]
    tls: TlsArgs,

    /// How clients authenticate: `token`, one shared secret (the default), or `jwt`, accounts
    /// and users of their own, each with its credentials (`infrastructure/nats/auth/`)
    #[arg(long, value_enum, value_name = "MODE")]
    auth: Option<AuthMode>,

    /// Print the token on stdout (it is never printed otherwise).
    #[arg(long)]
    show_token: bool,
}

impl Setup {
    pub(crate) fn run(self, layout: &Layout) -> Result<()> {
        let options = SetupOptions {
            source: self.source,
            upgrade: self.upgrade,
            archive: self.archive,
            sha256: self.sha256,
            reinstall: self.reinstall,
            regenerate_config: self.regenerate_config,
            listen: self.listen,
            tls: self.tls,
            auth: self.auth,
            for_run: false,
        };
        let token = install::setup(layout, &options)?;
        if self.show_token {
            println!("{token}");
        }
        Ok(())
    }
}

//! `cargo xtask setup`: the verified server binary, its config and its token.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::args::{ListenArgs, SourceArgs};
use crate::config;
use crate::files::{self, write_atomically};
use crate::install::{self, Request, Source};
use crate::layout::{Layout, show};
use crate::release::{self, Asset, Platform, Version};
use crate::token::{self, EnvFile};

/// Install the nats-server 2.10 release for this host, write its config and create its token.
///
/// Safe to run again: an installed, verified binary is kept without any network request, and
/// an existing config or `.env.nats` is never overwritten.
///
/// Environment: NATS_XTASK_CACHE is where verified archives are kept (default: the user's cache
/// directory, `nats-xtask`); HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY are honoured.
#[derive(Debug, clap::Args)]
pub(crate) struct Setup {
    #[command(flatten)]
    source: SourceArgs,

    /// Install from this local release archive (.tar.gz or .zip) instead of downloading.
    #[arg(long, value_name = "FILE")]
    archive: Option<PathBuf>,

    /// Expected SHA-256 of the archive; required for `--archive` when no hash is pinned for it.
    #[arg(long, value_name = "HEX", value_parser = release::parse_sha256)]
    sha256: Option<String>,

    /// Install again even if the requested version is already installed.
    #[arg(long)]
    reinstall: bool,

    /// Rewrite nats-server.conf from these options; the old file is kept beside it.
    #[arg(long)]
    regenerate_config: bool,

    #[command(flatten)]
    listen: ListenArgs,

    /// Print the token on stdout (it is never printed otherwise).
    #[arg(long)]
    show_token: bool,

    /// Run on behalf of `run`: keep the installed version unless asked, say only what changed.
    #[arg(skip)]
    for_run: bool,
}

impl Setup {
    /// The setup that `run` does first: install what is missing, keep what is there.
    pub(crate) fn for_run(source: SourceArgs, listen: ListenArgs) -> Setup {
        Setup {
            source,
            archive: None,
            sha256: None,
            reinstall: false,
            regenerate_config: false,
            listen,
            show_token: false,
            for_run: true,
        }
    }

    pub(crate) fn run(&self, layout: &Layout) -> Result<()> {
        let version = self.requested_version(layout)?;
        let platform = match (Platform::host(version), &self.archive) {
            (Ok(platform), _) => platform,
            // A nats-server built for this host by other means can still be installed.
            (Err(_), Some(_)) => Platform::unlisted_host(),
            (Err(e), None) => return Err(e),
        };
        if self.archive.is_none()
            && !self.source.mirror.starts_with("http://")
            && !self.source.mirror.starts_with("https://")
        {
            bail!(
                "--mirror `{}` is not an http:// or https:// URL",
                self.source.mirror
            );
        }
        let asset = Asset { version, platform };
        fs::create_dir_all(&layout.dir).with_context(|| {
            format!(
                "cannot create `{}`: check that you may write there",
                show(&layout.dir)
            )
        })?;
        let _lock = files::lock(&layout.setup_lock(), "setup")?;

        let archive = self.archive.as_deref().map(crate::layout::from_user);
        let source = match &archive {
            Some(path) => Source::Archive(path),
            None => Source::Mirror(&self.source.mirror),
        };
        let request = Request {
            asset,
            source,
            sha256: self.sha256.clone(),
            reinstall: self.reinstall,
            config_replaced: self.regenerate_config,
            quiet: self.for_run,
        };
        // The token first: a new binary checks the existing config, which needs it.
        let token_file = token::ensure(&layout.env_file())?;
        install::ensure(layout, &request).context("cannot install nats-server")?;

        self.write_config(layout)?;
        match token_file {
            EnvFile::Created => eprintln!(
                "created `{}` with a new token (readable by you only)",
                show(&layout.env_file())
            ),
            EnvFile::Kept if !self.for_run => {
                eprintln!("kept the token in `{}`", show(&layout.env_file()))
            }
            EnvFile::Kept => {}
        }
        layout.create_working_dirs()?;
        install::server_accepts_config(&layout.binary(), layout)?;
        if !self.for_run {
            eprintln!(
                "`{}` is valid (checked by nats-server -t)",
                show(&layout.config())
            );
        }
        if self.show_token {
            println!("{}", token::load(&layout.env_file())?);
        }
        Ok(())
    }

    /// `--version`, else the version in `--archive`'s official file name, else (for `run`) the
    /// installed version, else the default.
    fn requested_version(&self, layout: &Layout) -> Result<Version> {
        let named = self
            .archive
            .as_ref()
            .and_then(|path| release::version_in_file_name(&path.file_name()?.to_string_lossy()));
        match (self.source.version, named) {
            (Some(asked), Some(named)) if asked != named => {
                bail!("--version {asked} contradicts the archive's name, which says {named}")
            }
            (None, None) if self.archive.is_some() => bail!(
                "cannot tell which version `{}` holds from its name: pass --version 2.10.N",
                self.archive.as_deref().unwrap_or(Path::new("")).display()
            ),
            (asked, named) => {
                let installed = || {
                    self.for_run
                        .then(|| install::manifest_version(layout))
                        .flatten()
                };
                Ok(asked
                    .or(named)
                    .or_else(installed)
                    .unwrap_or_else(Version::default_version))
            }
        }
    }

    fn write_config(&self, layout: &Layout) -> Result<()> {
        let path = layout.config();
        let rendered = config::render(&self.listen.listen());
        match fs::read_to_string(&path) {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                write_atomically(&path, rendered.as_bytes())?;
                eprintln!("wrote `{}`", show(&path));
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", show(&path))),
            Ok(existing) if existing == rendered => {
                if !self.for_run {
                    eprintln!("`{}` is up to date", show(&path))
                }
            }
            Ok(_) if self.regenerate_config => {
                let backup = files::back_up(&path)?;
                write_atomically(&path, rendered.as_bytes())?;
                eprintln!(
                    "rewrote `{}`; the old one is `{}`",
                    show(&path),
                    show(&backup)
                );
            }
            Ok(existing) if self.listen.any_given() => {
                let differences = self.listen.differences(&config::read_listen(&existing));
                if !differences.is_empty() {
                    bail!(
                        "`{}` differs from what you ask for: {}; run `cargo xtask setup \
                         --regenerate-config` with these options to rewrite it (the old file is \
                         kept), or edit it",
                        show(&path),
                        differences.join(", ")
                    );
                }
            }
            Ok(_) if self.for_run => {}
            Ok(_) => eprintln!(
                "kept `{}`, which differs from what setup would write \
                 (`--regenerate-config` rewrites it and keeps a copy)",
                show(&path)
            ),
        }
        Ok(())
    }
}

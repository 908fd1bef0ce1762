//! `cargo xtask cache`: the verified release archives kept between installs.

use anyhow::{Result, bail};
use serde_json::json;

use crate::install;
use crate::install::cache::{CACHE_VAR, Cache};
use crate::layout::Layout;
use crate::util::units::bytes;

/// List or delete the cached release archives (`NATS_XTASK_CACHE`, else the user's cache
/// directory).
#[derive(Debug, clap::Args)]
pub(crate) struct CacheTask {
    #[command(subcommand)]
    action: Option<Action>,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Every cached archive with its version, size and how it was verified (the default).
    List {
        /// One JSON object per archive, one per line.
        #[arg(long)]
        json: bool,
    },
    /// Delete the cached archives.
    Clean {
        /// Keep the archive this checkout's server was installed from.
        #[arg(long)]
        keep_installed: bool,
    },
}

impl CacheTask {
    pub(crate) fn run(&self, layout: impl Fn() -> Result<Layout>) -> Result<()> {
        let cache = Cache::from_env();
        let Some(dir) = cache.dir() else {
            bail!("there is no cache directory on this system: set {CACHE_VAR} to have one");
        };
        let entries = cache.entries();
        match &self.action {
            None | Some(Action::List { json: false }) => {
                if entries.is_empty() {
                    eprintln!("no archives cached in `{}`", dir.display());
                }
                for entry in &entries {
                    println!(
                        "{}  {}  {}  sha256 {}",
                        entry.file_name,
                        bytes(&entry.size.into()),
                        entry
                            .verified
                            .as_deref()
                            .unwrap_or("verified before it was stored"),
                        entry.sha256
                    );
                }
            }
            Some(Action::List { json: true }) => {
                for entry in &entries {
                    println!(
                        "{}",
                        json!({
                            "file": entry.file_name,
                            "version": version_of(&entry.file_name),
                            "sha256": entry.sha256,
                            "bytes": entry.size,
                            "url": entry.url,
                            "verified": entry.verified,
                        })
                    );
                }
            }
            Some(Action::Clean { keep_installed }) => {
                let keep = if *keep_installed {
                    install::installed_asset(&layout()?)
                } else {
                    None
                };
                let mut freed = 0;
                for entry in &entries {
                    if keep.as_deref() == Some(entry.file_name.as_str()) {
                        eprintln!("kept `{}`, installed here", entry.file_name);
                        continue;
                    }
                    cache.remove(entry)?;
                    freed += entry.size;
                    eprintln!(
                        "deleted `{}` ({})",
                        entry.file_name,
                        bytes(&entry.size.into())
                    );
                }
                eprintln!("freed {} in `{}`", bytes(&freed.into()), dir.display());
            }
        }
        Ok(())
    }
}

/// The version in a release archive's name: `nats-server-v2.10.26-linux-amd64.zip` gives
/// `2.10.26`.
fn version_of(file_name: &str) -> Option<&str> {
    file_name.strip_prefix("nats-server-v")?.split('-').next()
}

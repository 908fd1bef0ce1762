//! Verified release archives kept between installs, in the user's cache directory
//! (`NATS_XTASK_CACHE` overrides it), so that another clone or a re-install needs no network.
//!
//! Layout: `<cache>/archives/<sha256>/<asset file name>`, with `<asset file name>.source`
//! holding the URL it was downloaded from. Only archives that passed verification are stored,
//! and every entry is hashed again before it is used. Without a hash to look for (no pin, no
//! `--sha256`), an entry is used only for the very URL it came from: what one mirror served
//! is never taken for another's.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::files::{sha256_file, write_atomically};

pub(crate) const CACHE_VAR: &str = "NATS_XTASK_CACHE";

pub(crate) struct Cache {
    archives: Option<PathBuf>,
}

impl Cache {
    pub(crate) fn from_env() -> Cache {
        let root = match std::env::var_os(CACHE_VAR) {
            Some(dir) if !dir.is_empty() => Some(crate::layout::from_user(Path::new(&dir))),
            _ => dirs::cache_dir().map(|dir| dir.join("nats-xtask")),
        };
        Cache {
            archives: root.map(|root| root.join("archives")),
        }
    }

    /// A cached copy of `file_name` whose content still has its recorded hash: the one with
    /// hash `expected`, else one downloaded from `url`. Corrupt entries are removed.
    pub(crate) fn find(
        &self,
        file_name: &str,
        url: &str,
        expected: Option<&str>,
    ) -> Option<PathBuf> {
        let archives = self.archives.as_ref()?;
        let candidates: Vec<PathBuf> = match expected {
            Some(hash) => vec![archives.join(hash)],
            None => fs::read_dir(archives)
                .ok()?
                .filter_map(|entry| Some(entry.ok()?.path()))
                .filter(|dir| {
                    fs::read_to_string(dir.join(source_name(file_name))).is_ok_and(|s| s == url)
                })
                .collect(),
        };
        for dir in candidates {
            let path = dir.join(file_name);
            let recorded = dir
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            if !path.is_file() {
                continue;
            }
            match sha256_file(&path) {
                Ok(actual) if actual == recorded => return Some(path),
                _ => {
                    eprintln!(
                        "warning: cached `{}` is corrupt; removing it",
                        path.display()
                    );
                    let _ = fs::remove_dir_all(&dir);
                }
            }
        }
        None
    }

    /// Keeps a copy of a verified archive. Failing to is not an error: it only costs a download.
    pub(crate) fn store(&self, archive: &Path, file_name: &str, url: &str, sha256: &str) {
        let Some(archives) = &self.archives else {
            return;
        };
        if let Err(e) = store(archive, &archives.join(sha256), file_name, url) {
            eprintln!(
                "warning: cannot cache `{file_name}` in `{}`: {e:#}",
                archives.display()
            );
        }
    }
}

fn source_name(file_name: &str) -> String {
    format!("{file_name}.source")
}

fn store(archive: &Path, dir: &Path, file_name: &str, url: &str) -> Result<()> {
    fs::create_dir_all(dir)?;
    let mut partial = tempfile::NamedTempFile::new_in(dir)?;
    let mut source =
        File::open(archive).with_context(|| format!("cannot read `{}`", archive.display()))?;
    io::copy(&mut source, partial.as_file_mut())?;
    partial.persist(dir.join(file_name))?;
    write_atomically(&dir.join(source_name(file_name)), url.as_bytes())
}

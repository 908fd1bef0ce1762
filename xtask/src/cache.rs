//! Verified release archives kept between installs, in the user's cache directory
//! (`NATS_XTASK_CACHE` overrides it), so that another clone or a re-install needs no network.
//!
//! Layout: `<cache>/archives/<sha256>/<asset file name>`. Only archives that passed
//! verification are stored, and every entry is hashed again before it is used.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::download::sha256_file;

pub(crate) const CACHE_VAR: &str = "NATS_XTASK_CACHE";

pub(crate) struct Cache {
    archives: Option<PathBuf>,
}

impl Cache {
    pub(crate) fn from_env() -> Cache {
        let root = match std::env::var_os(CACHE_VAR) {
            Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
            _ => dirs::cache_dir().map(|dir| dir.join("nats-xtask")),
        };
        Cache {
            archives: root.map(|root| root.join("archives")),
        }
    }

    /// A cached copy of `file_name` whose content still has its recorded hash, if there is one;
    /// with `expected`, only a copy with that hash. Corrupt entries are removed.
    pub(crate) fn find(
        &self,
        file_name: &str,
        expected: Option<&str>,
    ) -> Option<(PathBuf, String)> {
        let archives = self.archives.as_ref()?;
        let candidates: Vec<PathBuf> = match expected {
            Some(hash) => vec![archives.join(hash)],
            None => fs::read_dir(archives)
                .ok()?
                .filter_map(|e| Some(e.ok()?.path()))
                .collect(),
        };
        for dir in candidates {
            let path = dir.join(file_name);
            let Some(recorded) = dir.file_name().and_then(|n| n.to_str()).map(str::to_string)
            else {
                continue;
            };
            if !path.is_file() {
                continue;
            }
            match sha256_file(&path) {
                Ok(actual) if actual == recorded => return Some((path, actual)),
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
    pub(crate) fn store(&self, archive: &Path, file_name: &str, sha256: &str) {
        let Some(archives) = &self.archives else {
            return;
        };
        if let Err(e) = store(archive, &archives.join(sha256), file_name) {
            eprintln!(
                "warning: cannot cache `{file_name}` in `{}`: {e:#}",
                archives.display()
            );
        }
    }
}

fn store(archive: &Path, dir: &Path, file_name: &str) -> Result<()> {
    fs::create_dir_all(dir)?;
    let partial = tempfile::NamedTempFile::new_in(dir)?;
    fs::copy(archive, partial.path())
        .with_context(|| format!("cannot copy `{}`", archive.display()))?;
    partial.persist(dir.join(file_name))?;
    Ok(())
}

//! Verified release archives kept between installs, in the user's cache directory
//! (`NATS_XTASK_CACHE` overrides it), so that another clone or a re-install needs no network.
//!
//! Layout: `<cache>/archives/<sha256>/<asset file name>`, with `<asset file name>.source`
//! holding the URL it was downloaded from. Only archives that passed verification are stored.
//! An entry is looked up by the hash the archive must have (the pin, `--sha256`, or what the
//! release's `SHA256SUMS` lists), and hashed again as it is copied out, so an entry planted
//! under another hash is never used. Only when `SHA256SUMS` cannot be fetched is an entry
//! found by the URL it came from.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::util::files::{CopyError, copy_file_hashing, write_atomically};

pub(crate) const CACHE_VAR: &str = "NATS_XTASK_CACHE";

pub(crate) struct Cache {
    archives: Option<PathBuf>,
}

impl Cache {
    pub(crate) fn from_env() -> Cache {
        let root = match std::env::var_os(CACHE_VAR) {
            Some(dir) if !dir.is_empty() => Some(crate::util::paths::from_user(Path::new(&dir))),
            _ => dirs::cache_dir().map(|dir| dir.join("nats-xtask")),
        };
        Cache {
            archives: root.map(|root| root.join("archives")),
        }
    }

    /// Copies the cached `file_name` with hash `sha256` to `dest`, hashing what it copies:
    /// true if it did. False when there is none, or when its content no longer has that hash
    /// (or cannot be read): the entry is then corrupt, or planted, and is removed. Failing to
    /// write `dest` is an error, not the entry's fault.
    pub(crate) fn copy_out(&self, file_name: &str, sha256: &str, dest: &Path) -> Result<bool> {
        let Some(archives) = &self.archives else {
            return Ok(false);
        };
        let dir = archives.join(sha256);
        let path = dir.join(file_name);
        if !path.is_file() {
            return Ok(false);
        }
        match copy_file_hashing(&path, dest) {
            Ok(actual) if actual == sha256 => {
                eprintln!("using cached `{}`", path.display());
                return Ok(true);
            }
            Err(e @ CopyError::Write(_)) => return Err(e.naming(&path, dest)),
            _ => {}
        }
        eprintln!(
            "warning: cached `{}` is corrupt; removing it",
            path.display()
        );
        let _ = fs::remove_dir_all(&dir);
        let _ = fs::remove_file(dest);
        Ok(false)
    }

    /// The hashes of the archives `file_name` cached from `url`, newest first: for when the
    /// release's `SHA256SUMS` cannot be fetched to say which hash to look for.
    pub(crate) fn hashes_for_url(&self, file_name: &str, url: &str) -> Vec<String> {
        let Some(entries) = self.archives.as_ref().and_then(|a| fs::read_dir(a).ok()) else {
            return Vec::new();
        };
        let mut found: Vec<(std::time::SystemTime, String)> = entries
            .filter_map(|entry| Some(entry.ok()?.path()))
            .filter(|dir| {
                fs::read_to_string(dir.join(source_name(file_name))).is_ok_and(|s| s == url)
            })
            .filter_map(|dir| {
                let modified = dir.join(file_name).metadata().ok()?.modified().ok()?;
                Some((modified, dir.file_name()?.to_str()?.to_string()))
            })
            .collect();
        found.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
        found.into_iter().map(|(_, hash)| hash).collect()
    }

    /// Keeps a copy of an archive verified as `how` says. Failing to is not an error: it only
    /// costs a download.
    pub(crate) fn store(
        &self,
        archive: &Path,
        file_name: &str,
        url: &str,
        sha256: &str,
        how: &str,
    ) {
        let Some(archives) = &self.archives else {
            return;
        };
        if let Err(e) = store(archive, &archives.join(sha256), file_name, url, how) {
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

fn verified_name(file_name: &str) -> String {
    format!("{file_name}.verified")
}

fn store(archive: &Path, dir: &Path, file_name: &str, url: &str, how: &str) -> Result<()> {
    fs::create_dir_all(dir)?;
    let mut partial = tempfile::NamedTempFile::new_in(dir)?;
    let mut source =
        File::open(archive).with_context(|| format!("cannot read `{}`", archive.display()))?;
    io::copy(&mut source, partial.as_file_mut())?;
    partial.persist(dir.join(file_name))?;
    write_atomically(&dir.join(verified_name(file_name)), how.as_bytes())?;
    write_atomically(&dir.join(source_name(file_name)), url.as_bytes())
}

/// One cached archive.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) file_name: String,
    pub(crate) sha256: String,
    pub(crate) size: u64,
    pub(crate) url: Option<String>,
    /// How it was verified before it was stored.
    pub(crate) verified: Option<String>,
    dir: PathBuf,
}

impl Cache {
    /// Where the archives are, if there is a cache directory at all.
    pub(crate) fn dir(&self) -> Option<&Path> {
        self.archives.as_deref()
    }

    /// Every cached archive, by file name.
    pub(crate) fn entries(&self) -> Vec<Entry> {
        let Some(archives) = &self.archives else {
            return Vec::new();
        };
        let mut entries: Vec<Entry> = fs::read_dir(archives)
            .into_iter()
            .flatten()
            .flatten()
            .flat_map(|hash_dir| {
                let dir = hash_dir.path();
                let sha256 = hash_dir.file_name().to_string_lossy().into_owned();
                fs::read_dir(&dir)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter_map(move |file| {
                        let file_name = file.file_name().to_str()?.to_string();
                        if file_name.ends_with(".source")
                            || file_name.ends_with(".verified")
                            || file_name.starts_with(".tmp")
                        {
                            return None;
                        }
                        let read = |name: String| fs::read_to_string(dir.join(name)).ok();
                        Some(Entry {
                            size: file.metadata().ok()?.len(),
                            url: read(source_name(&file_name)),
                            verified: read(verified_name(&file_name)),
                            sha256: sha256.clone(),
                            dir: dir.clone(),
                            file_name,
                        })
                    })
            })
            .collect();
        entries.sort_by(|a, b| a.file_name.cmp(&b.file_name));
        entries
    }

    /// Deletes a cached archive.
    pub(crate) fn remove(&self, entry: &Entry) -> Result<()> {
        fs::remove_dir_all(&entry.dir)
            .with_context(|| format!("cannot delete `{}`", entry.dir.display()))
    }
}

//! File helpers every other module may use: atomic writes and SHA-256 digests.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::util::paths::show;

/// Writes `path` through a temporary file in the same directory, so it is never half-written.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write to `{}`", show(dir)))?;
    std::io::Write::write_all(&mut file, contents)?;
    file.as_file().sync_all()?;
    file.persist(path)
        .with_context(|| format!("cannot write `{}`", show(path)))?;
    Ok(())
}

/// The bytes of the files under `path` (or of `path` itself, a file); 0 when it is missing.
pub(crate) fn tree_size(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| tree_size(&entry.path()))
        .sum()
}

/// Copies `path` to a new `<path>.<UTC time>.bak` beside it, the time as
/// `2026-12-02T01-39-16Z` (`.<time>-2.bak` and so on when that exists: two backups within a
/// second must not overwrite each other) and returns it.
pub(crate) fn back_up(path: &Path) -> Result<PathBuf> {
    let stamp = file_name_time(std::time::SystemTime::now());
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut n = 1;
    loop {
        let suffix = if n == 1 {
            String::new()
        } else {
            format!("-{n}")
        };
        n += 1;
        let backup = path.with_file_name(format!("{name}.{stamp}{suffix}.bak"));
        let mut copy = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&backup)
        {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot write `{}`", show(&backup))),
        };
        let mut original =
            File::open(path).with_context(|| format!("cannot read `{}`", show(path)))?;
        io::copy(&mut original, &mut copy)
            .with_context(|| format!("cannot back up `{}`", show(path)))?;
        return Ok(backup);
    }
}

/// The topmost of `dir` and its ancestors that does not exist yet: what creating `dir` makes
/// first. None when `dir` exists.
pub(crate) fn topmost_missing(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .take_while(|a| !a.exists())
        .last()
        .map(Path::to_path_buf)
}

/// What a task has created so far, removed again when dropped unless [`Created::keep`] was
/// called: a task that fails leaves things as it found them.
#[derive(Debug, Default)]
pub(crate) struct Created {
    paths: Vec<PathBuf>,
    kept: bool,
}

impl Created {
    /// Creates `dir` and whatever parents it lacks, remembering the topmost one it made.
    pub(crate) fn dir_all(&mut self, dir: &Path) -> Result<()> {
        let topmost_missing = topmost_missing(dir);
        fs::create_dir_all(dir).with_context(|| {
            format!(
                "cannot create `{}`: check that you may write there",
                show(dir)
            )
        })?;
        if let Some(topmost) = topmost_missing {
            self.paths.push(topmost);
        }
        Ok(())
    }

    /// Remembers `path`, a file the task has just created.
    pub(crate) fn file(&mut self, path: &Path) {
        self.paths.push(path.to_path_buf());
    }

    /// The task succeeded: what it created stays.
    pub(crate) fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        for path in self.paths.iter().rev() {
            let _ = if path.is_dir() {
                fs::remove_dir_all(path)
            } else {
                fs::remove_file(path)
            };
        }
    }
}

/// `time` in UTC as RFC 3339 to the second, with `-` for `:`, which Windows refuses in names.
fn file_name_time(time: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(time)
        .to_string()
        .replace(':', "-")
}

/// Renames `from` to `to`, trying again for a few seconds while the OS refuses it as in use:
/// on Windows a file that a virus scanner has just opened cannot be replaced until it lets go.
pub(crate) fn rename_patiently(from: &Path, to: &Path) -> io::Result<()> {
    let mut wait = std::time::Duration::from_millis(50);
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match std::fs::rename(from, to) {
            Err(e) if in_use(&e) && std::time::Instant::now() < give_up => {
                std::thread::sleep(wait);
                wait = (wait * 2).min(std::time::Duration::from_secs(1));
            }
            outcome => return outcome,
        }
    }
}

/// Whether Windows refuses a file operation because another process has the file open: access
/// denied, or a sharing or lock violation (errors 32 and 33, which std does not name).
fn in_use(error: &io::Error) -> bool {
    cfg!(windows)
        && (error.kind() == io::ErrorKind::PermissionDenied
            || matches!(error.raw_os_error(), Some(32 | 33)))
}

/// Holds an exclusive lock on `path` (created if needed) until the file is dropped, so that
/// tasks of one checkout take turns; says so when another `task` holds it.
pub(crate) fn lock(path: &Path, task: &str) -> Result<File> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file = File::create(path).with_context(|| {
        format!(
            "cannot write to `{}`: check that you may write there",
            show(dir)
        )
    })?;
    if file.try_lock().is_err() {
        eprintln!("waiting for another {task} of `{}` to finish", show(dir));
        file.lock()
            .with_context(|| format!("cannot lock `{}`", show(path)))?;
    }
    Ok(file)
}

/// Which side of a copy failed.
#[derive(Debug)]
pub(crate) enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

impl CopyError {
    /// The error as people read it, naming the file that could not be read or written.
    pub(crate) fn naming(self, from: &Path, to: &Path) -> anyhow::Error {
        match self {
            CopyError::Read(e) => {
                anyhow::Error::new(e).context(format!("cannot read `{}`", show(from)))
            }
            CopyError::Write(e) => {
                anyhow::Error::new(e).context(format!("cannot write `{}`", show(to)))
            }
        }
    }
}

/// Copies `reader` to `writer`, feeding every chunk to the hasher on its way. A read error
/// ends the copy with that error: a download is never hashed short.
pub(crate) fn copy_hashing(
    mut reader: impl Read,
    writer: &mut impl Write,
    mut on_chunk: impl FnMut(usize),
) -> Result<String, CopyError> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 256 * 1024];
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        hasher.update(&buffer[..n]);
        writer.write_all(&buffer[..n]).map_err(CopyError::Write)?;
        on_chunk(n);
    }
    Ok(hex(&hasher.finalize()))
}

/// Copies the file `from` to `to` and returns the SHA-256 of the bytes written: the file is
/// read once, so what was hashed is what was copied, whatever happens to `from` meanwhile.
pub(crate) fn copy_file_hashing(from: &Path, to: &Path) -> Result<String, CopyError> {
    let source = File::open(from).map_err(CopyError::Read)?;
    let mut dest = File::create(to).map_err(CopyError::Write)?;
    copy_hashing(source, &mut dest, |_| ())
}

/// The SHA-256 of a file, in lower-case hex.
pub(crate) fn sha256_file(path: &Path) -> Result<String> {
    let file = File::open(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    copy_hashing(file, &mut io::sink(), |_| ()).map_err(|e| match e {
        CopyError::Read(e) | CopyError::Write(e) => {
            anyhow::Error::new(e).context(format!("cannot read `{}`", path.display()))
        }
    })
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backups_are_named_by_readable_utc_time() {
        let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_311_556);
        assert_eq!(file_name_time(time), "2026-11-22T01-39-16Z");
    }

    #[test]
    fn the_hash_covers_every_byte_copied() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
        let mut out = Vec::new();
        let mut seen = 0;
        let hash = copy_hashing(&data[..], &mut out, |n| seen += n).unwrap();
        assert_eq!(out, data);
        assert_eq!(seen, data.len());
        assert_eq!(hash, hex(&Sha256::digest(&data)));
    }

    #[test]
    fn a_read_error_fails_the_copy_instead_of_hashing_short() {
        struct Broken(bool);
        impl Read for Broken {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if std::mem::replace(&mut self.0, true) {
                    Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"))
                } else {
                    buf[0] = 1;
                    Ok(1)
                }
            }
        }
        let err = copy_hashing(Broken(false), &mut Vec::new(), |_| ()).unwrap_err();
        assert!(matches!(err, CopyError::Read(e) if e.kind() == io::ErrorKind::ConnectionReset));
    }

    #[test]
    fn a_write_error_is_told_apart_from_a_read_error() {
        let mut full = [0u8; 2];
        let err = copy_hashing(&b"abc"[..], &mut &mut full[..], |_| ()).unwrap_err();
        assert!(matches!(err, CopyError::Write(_)));
    }

    #[test]
    fn known_digest() {
        assert_eq!(
            copy_hashing(&b"abc"[..], &mut io::sink(), |_| ()).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

//! Unpacking release archives (`.tar.gz` and `.zip`) without letting any entry escape the
//! directory it is unpacked into.

use std::fs::{self, File};
use std::io::{self, BufReader};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::release::Format;

/// Unpacks `archive` into the empty directory `dest`. Entries with absolute paths, `..`, or
/// links whose target lies outside `dest` are refused before anything of theirs is written.
pub(crate) fn unpack(archive: &Path, format: Format, dest: &Path) -> Result<()> {
    let shown = archive.display();
    match format {
        Format::TarGz => unpack_tar_gz(archive, dest),
        Format::Zip => unpack_zip(archive, dest),
    }
    .with_context(|| format!("cannot unpack `{shown}`"))
}

fn unpack_tar_gz(archive: &Path, dest: &Path) -> Result<()> {
    let file = File::open(archive)?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(file)));
    tar.set_preserve_permissions(true);
    tar.set_overwrite(false);
    for entry in tar
        .entries()
        .context("the archive is not a valid .tar.gz")?
    {
        let mut entry = entry.context("the archive is truncated or corrupt")?;
        let path = safe_path(&entry.path()?)?;
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry.link_name()?.context("a link entry has no target")?;
            check_link(&path, &target, kind.is_hard_link())?;
        } else if !(kind.is_file() || kind.is_dir()) {
            bail!(
                "entry `{}` is neither a file, a directory nor a link",
                path.display()
            );
        }
        entry
            .unpack_in(dest)
            .with_context(|| format!("cannot unpack entry `{}`", path.display()))?;
    }
    Ok(())
}

fn unpack_zip(archive: &Path, dest: &Path) -> Result<()> {
    let file = File::open(archive)?;
    let mut zip =
        zip::ZipArchive::new(BufReader::new(file)).context("the archive is not a valid .zip")?;
    for index in 0..zip.len() {
        let mut entry = zip
            .by_index(index)
            .context("the archive is truncated or corrupt")?;
        let path = safe_path(Path::new(entry.name()))?;
        let out = dest.join(&path);
        if entry.is_symlink() {
            // Release zips hold no links; refusing them all is simpler than recreating them.
            bail!("entry `{}` is a link", path.display());
        } else if entry.is_dir() {
            fs::create_dir_all(&out)?;
            continue;
        }
        if let Some(parent) = out.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&out)
            .with_context(|| format!("cannot create `{}`", out.display()))?;
        io::copy(&mut entry, &mut file)
            .with_context(|| format!("entry `{}` is truncated or corrupt", path.display()))?;
        #[cfg(unix)]
        if let Some(mode) = entry.unix_mode() {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&out, fs::Permissions::from_mode(mode & 0o777))?;
        }
    }
    Ok(())
}

/// An entry's path, if it is made of plain names only (a leading `./` is allowed).
fn safe_path(path: &Path) -> Result<PathBuf> {
    let mut safe = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => safe.push(name),
            Component::CurDir => {}
            _ => bail!(
                "entry `{}` would be written outside the target directory",
                path.display()
            ),
        }
    }
    if safe.as_os_str().is_empty() {
        bail!("an entry has an empty path");
    }
    Ok(safe)
}

/// A link at `path` pointing at `target` must stay inside the directory being unpacked into.
/// Hard-link targets are relative to that directory, symbolic ones to the link's own.
fn check_link(path: &Path, target: &Path, hard: bool) -> Result<()> {
    let base = if hard {
        Path::new("")
    } else {
        path.parent().unwrap_or(Path::new(""))
    };
    let mut depth = 0usize;
    for component in base.join(target).components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir if depth > 0 => depth -= 1,
            _ => bail!(
                "entry `{}` links to `{}`, outside the target directory",
                path.display(),
                target.display()
            ),
        }
    }
    Ok(())
}

/// The one server binary among the unpacked files: `<dir>/<name>` or `<name>` at the top.
pub(crate) fn find_binary(dest: &Path, name: &str) -> Result<PathBuf> {
    let mut found = Vec::new();
    let top = dest.join(name);
    if top.is_file() {
        found.push(top);
    }
    for entry in fs::read_dir(dest)? {
        let candidate = entry?.path().join(name);
        if candidate.symlink_metadata().is_ok_and(|m| m.is_file()) {
            found.push(candidate);
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!(
            "the archive has no `{name}` binary: is it a nats-server release archive for this OS?"
        ),
        _ => bail!(
            "the archive has {} `{name}` binaries; expected one",
            found.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_pass_and_escaping_ones_are_refused() {
        assert_eq!(safe_path(Path::new("./a/b")).unwrap(), Path::new("a/b"));
        for bad in ["/etc/passwd", "a/../../b", "..", "a/.."] {
            let err = safe_path(Path::new(bad)).unwrap_err().to_string();
            assert!(err.contains("outside the target directory"), "{bad}: {err}");
        }
        assert!(safe_path(Path::new("./")).is_err());
    }

    #[test]
    fn links_must_stay_inside() {
        assert!(check_link(Path::new("d/link"), Path::new("nats-server"), false).is_ok());
        assert!(check_link(Path::new("d/link"), Path::new("../d2/x"), false).is_ok());
        assert!(check_link(Path::new("d/link"), Path::new("../../x"), false).is_err());
        assert!(check_link(Path::new("d/link"), Path::new("/bin/sh"), false).is_err());
        assert!(check_link(Path::new("d/link"), Path::new("d/x"), true).is_ok());
        assert!(check_link(Path::new("d/link"), Path::new("../x"), true).is_err());
    }
}

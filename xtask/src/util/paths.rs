//! Paths as the user gives and reads them: relative to where they ran the xtask, shown
//! relative to the current directory; and executables' file names on this OS.

use std::path::{Path, PathBuf};

/// `name` as an executable's file name on this OS (`name.exe` on Windows).
pub(crate) fn exe_name(name: &str) -> String {
    format!("{name}{}", std::env::consts::EXE_SUFFIX)
}

static INVOKED_IN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Remembers the directory the user ran the xtask in, before it moves to the checkout.
pub(crate) fn remember_invocation_dir() {
    if let Ok(dir) = std::env::current_dir() {
        let _ = INVOKED_IN.set(dir);
    }
}

/// A path the user gave (an option, a variable), made absolute against where they ran the
/// xtask rather than the checkout it works in.
pub(crate) fn from_user(path: &Path) -> PathBuf {
    match INVOKED_IN.get() {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_path_buf(),
    }
}

/// The directory the user ran the xtask in.
pub(crate) fn invocation_dir() -> PathBuf {
    INVOKED_IN
        .get()
        .cloned()
        .unwrap_or_else(|| std::env::current_dir().unwrap_or_default())
}

/// `path` with its `..` and `.` resolved by name alone (`a/b/../c` is `a/c`), as a config's
/// relative path reads from its directory.
pub(crate) fn normal(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut normal = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir if normal.file_name().is_some() => {
                normal.pop();
            }
            part => normal.push(part),
        }
    }
    normal
}

/// A path as people want to read it: relative to the current directory when it is inside it.
pub(crate) fn show(path: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    path.strip_prefix(&cwd)
        .unwrap_or(path)
        .display()
        .to_string()
}

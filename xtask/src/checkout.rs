//! Where the checkout is: the repository whose `cargo xtask` this is, and its target directory.

use std::fs;
use std::path::{Path, PathBuf};

/// The checkout to work in, if there is one. Under cargo (`cargo xtask`) it is the parent of
/// this crate's directory, which cargo sets at run time. Run directly (`target/debug/xtask`),
/// it is the nearest directory from here up that holds this workspace: never the one the
/// binary was built in, which with a shared target directory is another clone.
pub(crate) fn find() -> Option<PathBuf> {
    if let Some(manifest_dir) = std::env::var_os("CARGO_MANIFEST_DIR") {
        let root = Path::new(&manifest_dir).parent()?;
        if is_checkout(root) {
            return Some(root.to_path_buf());
        }
    }
    let here = std::env::current_dir().ok()?;
    here.ancestors()
        .find(|dir| is_checkout(dir))
        .map(Path::to_path_buf)
}

/// The error for a task that needs a checkout where there is none, with what to do.
pub(crate) fn not_found(what_to_do: &str) -> anyhow::Error {
    let here = std::env::current_dir().unwrap_or_default();
    anyhow::anyhow!(
        "`{}` is not inside a checkout of this repository (a Cargo workspace with the `xtask` \
         and `xtask-probe` crates): {what_to_do}",
        here.display()
    )
}

/// Whether `dir` is the root of this repository: a workspace whose members include `xtask`,
/// holding this crate and the probe crate that only this repository has.
fn is_checkout(dir: &Path) -> bool {
    let manifest = fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
    let workspace = manifest.lines().any(|line| line.trim() == "[workspace]");
    let members = manifest
        .lines()
        .any(|line| line.trim_start().starts_with("members") && line.contains("\"xtask\""));
    workspace
        && members
        && is_crate(&dir.join("xtask"), "xtask")
        && is_crate(&dir.join("xtask/probe"), "xtask-probe")
}

fn is_crate(dir: &Path, name: &str) -> bool {
    let line = format!("name = \"{name}\"");
    fs::read_to_string(dir.join("Cargo.toml"))
        .is_ok_and(|text| text.lines().any(|l| l.trim() == line))
}

/// Cargo's target directory for the checkout: `CARGO_TARGET_DIR`, else `target/`.
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => crate::util::paths::from_user(Path::new(&dir)),
        _ => root.join("target"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkout_is_this_workspace_with_its_xtask_and_probe_crates() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("xtask/probe")).unwrap();
        let write = |path: &str, text: &str| fs::write(root.join(path), text).unwrap();
        write(
            "Cargo.toml",
            "[workspace]\nmembers = [\"xtask\", \"xtask/probe\"]\n",
        );
        write("xtask/Cargo.toml", "[package]\nname = \"xtask\"\n");
        assert!(!is_checkout(root), "any project's xtask is not ours");
        write(
            "xtask/probe/Cargo.toml",
            "[package]\nname = \"xtask-probe\"\n",
        );
        assert!(is_checkout(root));
        assert!(
            !is_checkout(&root.join("xtask")),
            "a member is not the root"
        );
        write("Cargo.toml", "[workspace]\nmembers = [\"other\"]\n");
        assert!(!is_checkout(root), "xtask is not a member");
        write("Cargo.toml", "[package]\nname = \"other\"\n");
        assert!(!is_checkout(root), "not a workspace");
    }
}

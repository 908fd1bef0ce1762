//! A checkout's TLS files, in `infrastructure/nats/tls/`: the local CA (`ca.pem`, and its key
//! `ca-key.pem`, which never leaves the directory), and the certificates it issued, each with
//! its key (`NAME-cert.pem`, `NAME-key.pem`). Every file is written atomically and owner-only.
//! A certificate is issued again when it is missing, does not cover the names asked for, or
//! expires within [`RENEW_WITHIN`].

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

use super::certs::{self, Issued, LEAF_DAYS, Role};
use crate::util::files::write_atomically;
use crate::util::paths::show;

/// A certificate that expires sooner than this is issued again.
pub(crate) const RENEW_WITHIN: Duration = Duration::from_secs(30 * 86_400);

/// The TLS directory of a checkout.
#[derive(Debug, Clone)]
pub(crate) struct TlsDir {
    pub(crate) dir: PathBuf,
}

impl TlsDir {
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

    /// The CA's key, the CA made first when there is none. Says so when it makes one.
    fn ensure_ca(&self) -> Result<String> {
        let key_path = self.ca_key();
        if let Ok(key) = fs::read_to_string(&key_path)
            && self.ca().is_file()
        {
            return Ok(key);
        }
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create `{}`", show(&self.dir)))?;
        let ca = certs::new_ca()?;
        write_atomically(&key_path, ca.key_pem.as_bytes())?;
        write_atomically(&self.ca(), ca.cert_pem.as_bytes())?;
        eprintln!("made a local CA in `{}` (valid 10 years)", show(&self.ca()));
        Ok(ca.key_pem)
    }

    /// Certificate `name` for `role`, covering `names`, issued by the CA (made first if
    /// needed) unless the one there still serves: whether it was issued anew.
    pub(crate) fn ensure(&self, name: &str, role: Role, names: &[String]) -> Result<bool> {
        let ca_key = self.ensure_ca()?;
        if self.serves(name, role, names) {
            return Ok(false);
        }
        let Issued { cert_pem, key_pem } = certs::issue(&ca_key, role, names, LEAF_DAYS)?;
        write_atomically(&self.key(name), key_pem.as_bytes())?;
        write_atomically(&self.cert(name), cert_pem.as_bytes())?;
        Ok(true)
    }

    /// Whether certificate `name` verifies against the CA for `role`, covers every one of
    /// `names`, and is valid for [`RENEW_WITHIN`] more.
    fn serves(&self, name: &str, role: Role, names: &[String]) -> bool {
        let (Ok(ca), Ok(cert), true) = (
            fs::read_to_string(self.ca()),
            fs::read_to_string(self.cert(name)),
            self.key(name).is_file(),
        ) else {
            return false;
        };
        check(&ca, &cert, role, names, RENEW_WITHIN).is_ok()
    }
}

/// Checks `cert_pem` as a client of it would, `ahead` from now: it chains to `ca_pem`, serves
/// `role`, and covers every one of `names`.
pub(crate) fn check(
    ca_pem: &str,
    cert_pem: &str,
    role: Role,
    names: &[String],
    ahead: Duration,
) -> Result<()> {
    let ca = der(ca_pem).context("the CA file holds no certificate")?;
    let anchor = webpki::anchor_from_trusted_cert(&ca).context("the CA cannot be read")?;
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
        &[anchor],
        intermediates,
        at,
        usage,
        None,
        None,
    )
    .map_err(|e| anyhow::anyhow!("it does not verify against the CA: {e}"))?;
    for name in names {
        let server_name = rustls_pki_types::ServerName::try_from(name.as_str())
            .with_context(|| format!("`{name}` is no host name or address"))?;
        leaf.verify_is_valid_for_subject_name(&server_name)
            .map_err(|_| anyhow::anyhow!("it does not cover `{name}`"))?;
    }
    Ok(())
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
        check(&ca, &second, Role::Server, &more, Duration::ZERO).unwrap();

        // Valid for 397 days: not 400 days from now.
        let late = check(
            &ca,
            &second,
            Role::Server,
            &more,
            Duration::from_secs(400 * 86_400),
        );
        assert!(format!("{:#}", late.unwrap_err()).contains("does not verify"));
        let e = check(
            &ca,
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
        assert!(check(&ca, &cert, Role::Server, &names(), Duration::ZERO).is_err());
        assert!(check(&ca, "no pem", Role::Server, &names(), Duration::ZERO).is_err());
    }
}

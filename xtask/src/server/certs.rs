//! The certificates of a checkout's TLS: a local CA, and the certificates it issues to the
//! server, to each cluster node and to clients, made in-process (rcgen with ring).
//!
//! Every key is ECDSA P-256: browsers refuse Ed25519 certificates, and RSA would need another
//! crypto provider. The CA's key is all it takes to issue more: its certificate's parameters
//! are fixed, so an issuer is rebuilt from the key alone (reading the CA's certificate back
//! would need rcgen's x509 parser).

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// How long the CA is valid.
const CA_DAYS: u64 = 3650;
/// How long an issued certificate is valid: what browsers accept at most.
pub(crate) const LEAF_DAYS: u64 = 397;
/// The CA's name.
const CA_NAME: &str = "cargo xtask development CA";

/// A certificate and its private key, both PEM (the key PKCS#8).
pub(crate) struct Issued {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("key_pem", &"<secret>")
            .finish_non_exhaustive()
    }
}

/// What an issued certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// A server, and a cluster node: route TLS is always mutual, so a node's certificate is a
    /// client's too.
    Server,
    /// A client of the server under mutual TLS.
    Client,
}

/// A new CA, valid from now for ten years.
pub(crate) fn new_ca() -> Result<Issued> {
    let key = KeyPair::generate().context("cannot generate the CA's key")?;
    let mut params = ca_params(&key);
    let (from, until) = validity(CA_DAYS);
    params.not_before = from;
    params.not_after = until;
    let cert = params
        .self_signed(&key)
        .context("cannot sign the CA's certificate")?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A certificate for `role` issued by the CA whose key is `ca_key_pem`, for `names` (DNS names
/// and IP addresses), valid from now for `days`.
pub(crate) fn issue(ca_key_pem: &str, role: Role, names: &[String], days: u64) -> Result<Issued> {
    let ca_key = KeyPair::from_pem(ca_key_pem).context("the CA's key cannot be read")?;
    let issuer = Issuer::new(ca_params(&ca_key), ca_key);
    let key = KeyPair::generate().context("cannot generate a key")?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        names.first().map_or("cargo xtask", String::as_str),
    );
    params.distinguished_name = dn;
    params.subject_alt_names = names.iter().map(|name| san(name)).collect::<Result<_>>()?;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = match role {
        Role::Server => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        Role::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
    };
    params.use_authority_key_identifier_extension = true;
    let (from, until) = validity(days);
    params.not_before = from;
    params.not_after = until;
    let cert = params
        .signed_by(&key, &issuer)
        .context("cannot sign the certificate")?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// The CA's name: [`CA_NAME`] and the first hex digits of its public key's SHA-256, so that
/// two checkouts' CAs (or a CA and the one that replaced it) have names of their own, and a
/// certificate of the other is refused as of an unknown issuer.
fn ca_name(key: &KeyPair) -> String {
    use rcgen::PublicKeyData;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.subject_public_key_info());
    let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("{CA_NAME} {hex}")
}

/// The CA's parameters but for its validity: the same every time, so that an issuer rebuilt
/// from the key names the CA its certificate names.
fn ca_params(key: &KeyPair) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, ca_name(key));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// A subject alternative name: an IP address, or else a DNS name (letters, digits, `-` and
/// `.`, with a leading `*.` for a wildcard).
fn san(name: &str) -> Result<SanType> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    if !is_dns_name(name) {
        anyhow::bail!("`{name}` is neither an IP address nor a DNS name");
    }
    Ok(SanType::DnsName(name.to_string().try_into()?))
}

/// Whether `name` is a DNS name a certificate can cover: letters, digits, `-` and `.`, with
/// a leading `*.` for a wildcard.
pub(crate) fn is_dns_name(name: &str) -> bool {
    let host = name.strip_prefix("*.").unwrap_or(name);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// From a minute ago (clocks differ a little) until `days` from now.
fn validity(days: u64) -> (time::OffsetDateTime, time::OffsetDateTime) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let at = |d: Duration| {
        time::OffsetDateTime::from_unix_timestamp(d.as_secs() as i64)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    };
    (
        at(now.saturating_sub(Duration::from_secs(60))),
        at(now + Duration::from_secs(days * 86_400)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::tls::check;

    /// Whether `leaf` verifies for `role` against `ca` alone, as rustls checks it.
    fn verifies(ca: &Issued, leaf: &Issued, role: Role) -> bool {
        check(
            Some(&ca.cert_pem),
            &leaf.cert_pem,
            role,
            &[],
            Duration::ZERO,
        )
        .is_ok()
    }

    /// Whether `leaf`, which `ca` issued, covers the host `name`.
    fn covers(ca: &Issued, leaf: &Issued, name: &str) -> bool {
        let names = [name.to_string()];
        check(
            Some(&ca.cert_pem),
            &leaf.cert_pem,
            Role::Server,
            &names,
            Duration::ZERO,
        )
        .is_ok()
    }

    #[test]
    fn a_server_certificate_verifies_against_its_ca_for_every_name_and_both_usages() {
        let ca = new_ca().unwrap();
        let names = ["localhost", "127.0.0.1", "::1", "nats.example.test"].map(String::from);
        let server = issue(&ca.key_pem, Role::Server, &names, LEAF_DAYS).unwrap();
        assert!(server.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(!format!("{server:?}").contains("PRIVATE"));
        assert!(verifies(&ca, &server, Role::Server));
        assert!(verifies(&ca, &server, Role::Client));
        for name in &names {
            assert!(covers(&ca, &server, name), "{name}");
        }
        assert!(!covers(&ca, &server, "elsewhere.test"));
        assert!(!covers(&ca, &server, "10.0.0.1"));
        // Another CA's certificate does not verify.
        let stranger = new_ca().unwrap();
        assert!(!verifies(&stranger, &server, Role::Server));
    }

    #[test]
    fn a_client_certificate_serves_clients_only() {
        let ca = new_ca().unwrap();
        let client = issue(&ca.key_pem, Role::Client, &["app".into()], 30).unwrap();
        assert!(verifies(&ca, &client, Role::Client));
        assert!(!verifies(&ca, &client, Role::Server));
    }

    #[test]
    fn a_name_that_is_neither_an_address_nor_a_dns_name_is_refused() {
        let ca = new_ca().unwrap();
        let e = issue(&ca.key_pem, Role::Server, &["bad name!".into()], 1).unwrap_err();
        assert!(format!("{e:#}").contains("`bad name!`"), "{e:#}");
    }
}

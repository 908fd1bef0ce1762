//! Asking a running nats-server how it is, without a client library: its monitoring endpoint
//! over HTTP(S), and the first lines of its client protocol over TCP or TLS. Shared by the
//! xtask (is the server ready?) and its smoke checks (does it refuse what it must?).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

pub mod nkeys;

/// How long one request or protocol line may take: the server is on this machine.
const TIMEOUT: Duration = Duration::from_secs(2);

/// `error` and its causes, as `{e:#}` prints them, but without a cause whose text is already
/// there: many errors (async-nats's, ureq's) print their source themselves, and anyhow would
/// print it again ("authorization violation: nats: authorization violation").
pub fn error_text(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

/// What a client of a TLS server trusts: the CA that issued the server's certificate (none:
/// the public CAs, Mozilla's, as browsers trust them), under mutual TLS the certificate it
/// shows, with its key (PEM, as the files hold them), and the name the server's certificate
/// must cover when that is not the address connected to (a certificate for a public name,
/// served on this machine and checked here on loopback).
#[derive(Clone, PartialEq, Eq)]
pub struct Trust {
    ca_pem: Option<Vec<u8>>,
    client: Option<(Vec<u8>, Vec<u8>)>,
    name: Option<String>,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust")
            .field("own_ca", &self.ca_pem.is_some())
            .field("client_certificate", &self.client.is_some())
            .field("name", &self.name)
            .finish()
    }
}

impl Trust {
    /// Trusts the CA in `ca_pem` (none: the public CAs); shows `client` (certificate, key)
    /// when a server asks.
    pub fn new(ca_pem: Option<Vec<u8>>, client: Option<(Vec<u8>, Vec<u8>)>) -> Trust {
        Trust {
            ca_pem,
            client,
            name: None,
        }
    }

    /// Reads the CA's file (none: the public CAs), and the client certificate's and key's
    /// when given.
    pub fn from_files(
        ca: Option<&std::path::Path>,
        client: Option<(&std::path::Path, &std::path::Path)>,
    ) -> Result<Trust> {
        let read = |path: &std::path::Path| {
            std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))
        };
        let client = match client {
            Some((cert, key)) => Some((read(cert)?, read(key)?)),
            None => None,
        };
        Ok(Trust::new(ca.map(read).transpose()?, client))
    }

    /// This trust, verifying the server's certificate for `name` whatever address is
    /// connected to.
    pub fn verifying_as(self, name: Option<String>) -> Trust {
        Trust { name, ..self }
    }

    /// The name the server's certificate must cover, if not the address connected to.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// rustls's configuration for a client of this trust, with ring, ureq's provider (and
    /// async-nats's: its clients take it as it is).
    pub fn client_config(&self) -> Result<rustls::ClientConfig> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca_pem {
            Some(pem) => {
                for cert in CertificateDer::pem_slice_iter(pem) {
                    roots
                        .add(cert.context("the CA file is not PEM")?)
                        .context("the CA's certificate cannot be used")?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = match &self.name {
            None => builder.with_root_certificates(roots),
            Some(name) => {
                let name = rustls::pki_types::ServerName::try_from(name.clone())
                    .with_context(|| format!("`{name}` is not a name a certificate can cover"))?;
                let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .context("cannot verify certificates with these CAs")?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(Named { inner, name }))
            }
        };
        Ok(match &self.client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = CertificateDer::pem_slice_iter(cert)
                    .collect::<Result<Vec<_>, _>>()
                    .context("the client certificate file is not PEM")?;
                let key = PrivateKeyDer::from_pem_slice(key)
                    .context("the client key file holds no private key")?;
                builder
                    .with_client_auth_cert(chain, key)
                    .context("the client certificate and key cannot be used")?
            }
        })
    }
}

/// Verifies a server's certificate as rustls does, for one name whatever the address
/// connected to: the name a certificate for a public name covers, when its server is reached
/// on loopback. Nothing else is relaxed.
#[derive(Debug)]
struct Named {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    name: rustls::pki_types::ServerName<'static>,
}

impl rustls::client::danger::ServerCertVerifier for Named {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _connected_to: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// What this process trusts unless told otherwise: set once, by a program that works with
/// one server (the smoke checks, `monitor`).
static DEFAULT_TRUST: std::sync::OnceLock<Trust> = std::sync::OnceLock::new();

/// Makes `trust` what [`monitoring_agent`] and [`default_trust`] give, once per process.
pub fn trust_by_default(trust: Trust) {
    let _ = DEFAULT_TRUST.set(trust);
}

/// What [`trust_by_default`] set, if anything.
pub fn default_trust() -> Option<&'static Trust> {
    DEFAULT_TRUST.get()
}

/// An HTTP client for monitoring requests on loopback: no proxy, short timeouts, and an HTTP
/// error status is an answer to look at rather than an error. HTTPS trusts what
/// [`trust_by_default`] set.
pub fn monitoring_agent() -> Agent {
    monitoring_agent_trusting(default_trust())
}

/// [`monitoring_agent`], for HTTPS monitoring: trusting what `trust` trusts.
pub fn monitoring_agent_trusting(trust: Option<&Trust>) -> Agent {
    let mut config = ureq::Agent::config_builder()
        .proxy(None)
        .timeout_global(Some(TIMEOUT))
        .http_status_as_error(false);
    if let Some(trust) = trust {
        let roots = match &trust.ca_pem {
            Some(pem) => {
                let certs: Vec<_> = ureq::tls::parse_pem(pem)
                    .filter_map(|item| match item {
                        Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert),
                        _ => None,
                    })
                    .collect();
                ureq::tls::RootCerts::new_with_certs(&certs)
            }
            None => ureq::tls::RootCerts::WebPki,
        };
        config = config.tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build());
    }
    Agent {
        http: config.build().into(),
        name: trust.and_then(|trust| trust.name.clone()),
    }
}

/// The HTTP client of [`monitoring_agent`]: ureq's, which verifies a server's certificate for
/// the host of the URL; when the certificate covers another name ([`Trust::verifying_as`]),
/// each HTTPS request goes to that name, resolved to the URL's address.
#[derive(Debug, Clone)]
pub struct Agent {
    http: ureq::Agent,
    name: Option<String>,
}

impl Agent {
    /// The agent and URL that GET `url`: for a certificate of another name, that name in the
    /// URL, pinned to the URL's address (as `curl --resolve` does).
    fn for_url(&self, url: &str) -> Result<(ureq::Agent, String)> {
        let (Some(name), Some(rest)) = (&self.name, url.strip_prefix("https://")) else {
            return Ok((self.http.clone(), url.to_string()));
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let address = authority
            .to_socket_addrs()
            .ok()
            .and_then(|mut addresses| addresses.next())
            .with_context(|| format!("`{url}` names no address"))?;
        let pin = Pin {
            name: name.clone(),
            address,
        };
        let http = ureq::Agent::with_parts(
            self.http.config().clone(),
            ureq::unversioned::transport::DefaultConnector::new(),
            pin,
        );
        Ok((http, format!("https://{name}:{}{path}", address.port())))
    }
}

/// Resolves one name to one address, and every other as usual.
#[derive(Debug)]
struct Pin {
    name: String,
    address: std::net::SocketAddr,
}

impl ureq::unversioned::resolver::Resolver for Pin {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        if uri.host() != Some(self.name.as_str()) {
            return ureq::unversioned::resolver::DefaultResolver::default()
                .resolve(uri, config, timeout);
        }
        let mut addresses = self.empty();
        addresses.push(self.address);
        Ok(addresses)
    }
}

/// GETs `url`: its status and body, whatever the status.
pub fn get(agent: &Agent, url: &str) -> Result<(u16, String)> {
    let (http, asked) = agent.for_url(url)?;
    let mut response = http
        .get(&asked)
        .call()
        .with_context(|| format!("cannot reach {url}"))?;
    let body = response
        .body_mut()
        .read_to_string()
        .with_context(|| format!("cannot read the answer of {url}"))?;
    Ok((response.status().as_u16(), body))
}

/// GETs `url`, which must answer 2xx with JSON.
pub fn get_json(agent: &Agent, url: &str) -> Result<Value> {
    let (status, body) = get(agent, url)?;
    if !(200..300).contains(&status) {
        bail!("{url} answered HTTP {status}");
    }
    serde_json::from_str(&body).with_context(|| format!("{url} is not JSON"))
}

/// How a client proves who it is: the server's token, or a user's JWT and seed (as a `.creds`
/// file holds them), with which it signs the nonce the server sends.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    Token(String),
    User { jwt: String, seed: String },
}

impl Auth {
    /// The user of a `.creds` file's text: its JWT and seed.
    pub fn from_creds(text: &str) -> Result<Auth> {
        let block = |name: &str| {
            let start = format!("-----BEGIN {name}-----");
            let after = text
                .split_once(&start)
                .with_context(|| format!("no `{start}` in it"))?
                .1;
            let value = after.trim_start().lines().next().unwrap_or_default().trim();
            if value.is_empty() || value.starts_with('-') {
                bail!("`{start}` is followed by nothing");
            }
            Ok(value.to_string())
        };
        Ok(Auth::User {
            jwt: block("NATS USER JWT")?,
            seed: block("USER NKEY SEED")?,
        })
    }

    /// The user of the `.creds` file at `path`.
    pub fn from_creds_file(path: &std::path::Path) -> Result<Auth> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read `{}`", path.display()))?;
        Auth::from_creds(&text)
            .with_context(|| format!("`{}` is no credentials file", path.display()))
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::Token(_) => "Auth::Token(..)",
            Auth::User { .. } => "Auth::User { .. }",
        })
    }
}

/// The byte stream of a client connection: TCP, or TLS over TCP.
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(stream) => stream.read(buf),
            Stream::Tls(stream) => stream.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(stream) => stream.write(buf),
            Stream::Tls(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(stream) => stream.flush(),
            Stream::Tls(stream) => stream.flush(),
        }
    }
}

/// A client connection after the handshake: the server's INFO read, our CONNECT sent.
pub struct Connection {
    address: String,
    reader: BufReader<Stream>,
}

impl Connection {
    /// Connects to `nats://host:port` or `tls://host:port` (or `host:port`) as a client named
    /// `name`, proving who it is with `auth`. A server that requires TLS gets it, verified against `trust`
    /// (none: the connection stays plaintext, which such a server refuses). CONNECT is not
    /// acknowledged (`verbose` is off): what the server thinks of it comes with the answer to
    /// the next line sent.
    pub fn open(url: &str, auth: &Auth, name: &str, trust: Option<&Trust>) -> Result<Connection> {
        let address = url
            .split_once("://")
            .map_or(url, |(_, address)| address)
            .to_string();
        let socket = address
            .to_socket_addrs()
            .with_context(|| format!("`{address}` is not an address"))?
            .next()
            .with_context(|| format!("no address for `{address}`"))?;
        let stream = TcpStream::connect_timeout(&socket, TIMEOUT)
            .with_context(|| format!("cannot connect to {address}"))?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        // Each line goes out as it is written: a PING must not wait for the ACK of the
        // CONNECT before it (Nagle), which over TLS took 40 ms.
        stream.set_nodelay(true)?;
        let mut connection = Connection {
            address,
            reader: BufReader::new(Stream::Plain(stream)),
        };
        let info = connection.line()?;
        let Some(info) = info.strip_prefix("INFO ") else {
            bail!(
                "`{}` is not a NATS server: it said `{info}`",
                connection.address
            );
        };
        let info: Value = serde_json::from_str(info).unwrap_or_default();
        let tls_required = info["tls_required"] == Value::Bool(true);
        if let (true, Some(trust)) = (tls_required, trust) {
            connection = connection.upgrade(trust)?;
        }
        let mut connect = serde_json::json!({
            "verbose": false, "pedantic": false, "name": name,
            "tls_required": tls_required && trust.is_some(),
        });
        match auth {
            Auth::Token(token) => connect["auth_token"] = token.as_str().into(),
            Auth::User { jwt, seed } => {
                use base64::Engine;
                let nonce = info["nonce"].as_str().unwrap_or_default();
                let signature = nkeys::KeyPair::from_seed(seed)
                    .context("the user's seed cannot be read")?
                    .sign(nonce.as_bytes());
                connect["jwt"] = jwt.as_str().into();
                connect["sig"] = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(signature)
                    .into();
            }
        }
        connection.send(&format!("CONNECT {connect}\r\n"))?;
        Ok(connection)
    }

    /// The connection over TLS, as the server asked in its INFO: the handshake done, the
    /// server's certificate verified against `trust` for the host connected to.
    fn upgrade(self, trust: &Trust) -> Result<Connection> {
        let Connection { address, reader } = self;
        let Stream::Plain(tcp) = reader.into_inner() else {
            bail!("`{address}`: TLS already");
        };
        let host = address
            .rsplit_once(':')
            .map_or(address.as_str(), |(host, _)| host)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let server_name = rustls::pki_types::ServerName::try_from(host.to_string())
            .with_context(|| format!("`{host}` is not a host name a certificate can cover"))?;
        let tls = rustls::ClientConnection::new(Arc::new(trust.client_config()?), server_name)
            .context("cannot start TLS")?;
        let mut stream = rustls::StreamOwned::new(tls, tcp);
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .with_context(|| format!("the TLS handshake with {address} failed"))?;
        }
        Ok(Connection {
            address,
            reader: BufReader::new(Stream::Tls(Box::new(stream))),
        })
    }

    /// Sends protocol text as it is (lines end in `\r\n`).
    pub fn send(&mut self, text: &str) -> Result<()> {
        let stream = self.reader.get_mut();
        stream
            .write_all(text.as_bytes())
            .and_then(|()| stream.flush())
            .with_context(|| format!("cannot write to {}", self.address))
    }

    /// The next line the server sends, without its line end.
    pub fn line(&mut self) -> Result<String> {
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .with_context(|| format!("no answer from {}", self.address))?;
        Ok(line.trim_end().to_string())
    }

    /// PING, which must be answered PONG: the one round trip that proves that this client may
    /// use the server.
    pub fn ping(&mut self) -> Result<()> {
        self.send("PING\r\n")?;
        match self.line()?.as_str() {
            "PONG" => Ok(()),
            other => bail!("`{}` refused the client: {other}", self.address),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_its_error_already_prints_is_not_repeated() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "nats: {}", self.0)
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let inner = std::io::Error::other("authorization violation");
        let error = anyhow::Error::new(Outer(inner)).context("cannot connect");
        assert_eq!(
            error_text(&error),
            "cannot connect: nats: authorization violation"
        );
        assert_eq!(
            format!("{error:#}"),
            "cannot connect: nats: authorization violation: authorization violation"
        );
    }
    use std::net::TcpListener;
    use std::thread::JoinHandle;

    /// A peer on loopback that sends `greeting`, then answers each line it reads with
    /// `answer(line)`; it returns the lines it read.
    fn peer(
        greeting: &'static str,
        answer: fn(&str) -> &'static str,
    ) -> (String, JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("nats://{}", listener.local_addr().unwrap());
        let thread = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream.write_all(greeting.as_bytes()).unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut seen = Vec::new();
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                let _ = stream.write_all(answer(line.trim_end()).as_bytes());
                seen.push(std::mem::take(&mut line).trim_end().to_string());
            }
            seen
        });
        (url, thread)
    }

    const INFO: &str = "INFO {\"server_id\":\"test\"}\r\n";

    #[test]
    fn a_client_connects_with_its_token_and_is_answered_pong() {
        let (url, server) = peer(INFO, |line| if line == "PING" { "PONG\r\n" } else { "" });
        let mut client =
            Connection::open(&url, &Auth::Token("nats_secret".into()), "probe test", None).unwrap();
        client.ping().unwrap();
        drop(client);
        let seen = server.join().unwrap();
        let connect: Value =
            serde_json::from_str(seen[0].strip_prefix("CONNECT ").unwrap()).unwrap();
        assert_eq!(connect["auth_token"], "nats_secret");
        assert_eq!(connect["name"], "probe test");
        assert_eq!(connect["verbose"], false);
        assert_eq!(seen[1], "PING");
    }

    #[test]
    fn a_refused_client_gets_the_servers_words() {
        let (url, _server) = peer(INFO, |line| {
            if line == "PING" {
                "-ERR 'Authorization Violation'\r\n"
            } else {
                ""
            }
        });
        let mut client =
            Connection::open(&url, &Auth::Token("wrong".into()), "probe test", None).unwrap();
        let err = client.ping().unwrap_err().to_string();
        assert!(
            err.ends_with("refused the client: -ERR 'Authorization Violation'"),
            "{err}"
        );
    }

    #[test]
    fn a_peer_that_is_not_nats_is_named() {
        let (url, _server) = peer("HTTP/1.1 400 Bad Request\r\n", |_| "");
        let err = Connection::open(&url, &Auth::Token("t".into()), "probe test", None)
            .err()
            .unwrap()
            .to_string();
        let address = url.strip_prefix("nats://").unwrap();
        assert_eq!(
            err,
            format!("`{address}` is not a NATS server: it said `HTTP/1.1 400 Bad Request`")
        );
    }
}

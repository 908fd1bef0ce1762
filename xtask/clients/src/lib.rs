//! What the two client programs, `xtask-smoke` and `xtask-bench`, share, so that neither keeps
//! a copy: the runtime they run on, names no other run shares, the monitoring endpoint's
//! answers, and (in [`server`]) waiting until the server has done what a client asked.

pub mod server;

use anyhow::{Context, Result};
use serde_json::Value;

/// The failover check's request protocol: a line `xtask-smoke` prints that starts with this
/// asks the xtask running it to stop or start a node (`@xtask stop n2 graceful`, `@xtask start
/// n2`), and the answer comes on its stdin, `ok` or `failed: why`. The xtask's side is the
/// `REQUEST_PREFIX` of its `tasks/smoke.rs`: a constant on each side, since the xtask does not
/// depend on this crate, whose client would weigh on its build.
pub const REQUEST_PREFIX: &str = "@xtask ";

/// Eight hex digits from the OS's random source: names no other run shares.
pub fn unique_id() -> String {
    let mut bytes = [0u8; 4];
    let _ = getrandom::fill(&mut bytes);
    format!("{:08x}", u32::from_be_bytes(bytes))
}

/// The threads a program's async runtime runs on.
#[derive(Debug, Clone, Copy)]
pub enum Threads {
    /// The program's own thread alone.
    Current,
    /// This many worker threads.
    Workers(usize),
}

/// The async runtime, with its I/O and timers; `None` once it has said why it cannot start,
/// as `main` says an error.
pub fn runtime(threads: Threads) -> Option<tokio::runtime::Runtime> {
    let mut builder = match threads {
        Threads::Current => tokio::runtime::Builder::new_current_thread(),
        Threads::Workers(n) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(n);
            builder
        }
    };
    match builder.enable_all().build() {
        Ok(runtime) => Some(runtime),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            None
        }
    }
}

/// The TLS a program's clients use, as the xtask hands it over (and `cargo xtask env` gives
/// it to the user): `NATS_CA`, the CA file to trust alone (unset: the public CAs), under
/// mutual TLS `NATS_CERT` and `NATS_KEY`, the certificate to show and its key (paths, never
/// the keys themselves), and `NATS_TLS_NAME`, the name the server's certificate covers when
/// it covers no address of this machine (a certificate for a public name, reached here).
#[derive(Debug, Clone)]
pub struct Tls {
    pub ca: Option<std::path::PathBuf>,
    pub client: Option<(std::path::PathBuf, std::path::PathBuf)>,
    pub name: Option<String>,
    /// The TLS configuration that verifies the server under `name`.
    named: Option<async_nats::rustls::ClientConfig>,
}

impl Tls {
    /// The TLS of the environment, if `NATS_CA` or `NATS_TLS_NAME` is set; the monitoring
    /// requests and the bare protocol connections of this process trust it from then on.
    pub fn from_env() -> Result<Option<Tls>> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let ca = var("NATS_CA").map(std::path::PathBuf::from);
        let name = var("NATS_TLS_NAME").map(|name| name.to_string_lossy().into_owned());
        if ca.is_none() && name.is_none() {
            return Ok(None);
        }
        let client = match (var("NATS_CERT"), var("NATS_KEY")) {
            (Some(cert), Some(key)) => Some((cert.into(), key.into())),
            (None, None) => None,
            _ => anyhow::bail!("NATS_CERT and NATS_KEY go together: set both, or neither"),
        };
        let files = client
            .as_ref()
            .map(|(c, k): &(std::path::PathBuf, std::path::PathBuf)| (c.as_path(), k.as_path()));
        let trust =
            xtask_probe::Trust::from_files(ca.as_deref(), files)?.verifying_as(name.clone());
        let named = match &name {
            Some(_) => Some(trust.client_config()?),
            None => None,
        };
        xtask_probe::trust_by_default(trust);
        Ok(Some(Tls {
            ca,
            client,
            name,
            named,
        }))
    }

    /// `options` trusting the CA alone (or the public CAs), verifying the server under the
    /// name if one is set, and showing the client certificate if there is one.
    pub fn apply(&self, options: async_nats::ConnectOptions) -> async_nats::ConnectOptions {
        if let Some(config) = &self.named {
            return options.require_tls(true).tls_client_config(config.clone());
        }
        let options = match &self.ca {
            Some(ca) => options.add_root_certificates(ca.clone()),
            None => options.require_tls(true),
        };
        match &self.client {
            Some((cert, key)) => options.add_client_certificate(cert.clone(), key.clone()),
            None => options,
        }
    }
}

/// How the program's clients prove who they are, as the xtask hands it over: a user's
/// credentials (`NATS_CREDS`, the path of a `.creds` file) when the server has accounts and
/// users, else the token (`NATS_TOKEN`). Never on the command line.
#[derive(Clone)]
pub enum Credentials {
    Token(String),
    /// The path of a `.creds` file, and its text.
    Creds(std::path::PathBuf, String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Token(_) => f.write_str("Credentials::Token(..)"),
            Credentials::Creds(path, _) => write!(f, "Credentials::Creds({})", path.display()),
        }
    }
}

impl Credentials {
    /// The credentials of the environment: `NATS_CREDS`, else `NATS_TOKEN` (empty if unset).
    pub fn from_env() -> Result<Credentials> {
        match std::env::var_os("NATS_CREDS").filter(|v| !v.is_empty()) {
            Some(path) => {
                let path = std::path::PathBuf::from(path);
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read NATS_CREDS `{}`", path.display()))?;
                Ok(Credentials::Creds(path, text))
            }
            None => Ok(Credentials::Token(
                std::env::var("NATS_TOKEN").unwrap_or_default(),
            )),
        }
    }

    /// Connect options that authenticate so (async-nats reads the `.creds` file itself).
    pub fn options(&self) -> Result<async_nats::ConnectOptions> {
        Ok(match self {
            Credentials::Token(token) => async_nats::ConnectOptions::with_token(token.clone()),
            Credentials::Creds(path, text) => {
                async_nats::ConnectOptions::new()
                    .credentials(text)
                    .with_context(|| format!("`{}` is no credentials file", path.display()))?
            }
        })
    }

    /// The same, for the bare protocol of [`xtask_probe::Connection`].
    pub fn probe(&self) -> Result<xtask_probe::Auth> {
        match self {
            Credentials::Token(token) => Ok(xtask_probe::Auth::Token(token.clone())),
            Credentials::Creds(_, text) => xtask_probe::Auth::from_creds(text),
        }
    }

    /// What a failure to connect says the client used.
    pub fn what(&self) -> &'static str {
        match self {
            Credentials::Token(_) => "the token",
            Credentials::Creds(..) => "the user's credentials",
        }
    }
}

/// `options` with the TLS of `tls`, if any.
pub fn with_tls(
    options: async_nats::ConnectOptions,
    tls: Option<&Tls>,
) -> async_nats::ConnectOptions {
    match tls {
        Some(tls) => tls.apply(options),
        None => options,
    }
}

/// GETs a monitoring URL: its status and body.
pub async fn get(url: String) -> Result<(u16, String)> {
    tokio::task::spawn_blocking(move || xtask_probe::get(&xtask_probe::monitoring_agent(), &url))
        .await?
}

/// GETs a monitoring URL that must answer with JSON.
pub async fn get_json(url: String) -> Result<Value> {
    tokio::task::spawn_blocking(move || {
        xtask_probe::get_json(&xtask_probe::monitoring_agent(), &url)
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_eight_hex_digits_and_differ() {
        let (a, b) = (unique_id(), unique_id());
        assert_eq!(a.len(), 8);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}

//! Options that several tasks share: which release to install, and where the server listens.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::install::release::{GITHUB_RELEASES, Version};
use crate::server::config::Listen;

/// Which release to install, and from where.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SourceArgs {
    /// nats-server 2.10 patch release to install, replacing the one installed [default: the
    /// installed one, else the one this checkout pins]
    #[arg(long = "version", env = "NATS_SERVER_VERSION", value_name = "2.10.N", value_parser = Version::parse)]
    pub(crate) version: Option<Version>,

    /// Base URL that holds `v{VERSION}/{ASSET}` and `v{VERSION}/SHA256SUMS`.
    #[arg(long, env = "NATS_SERVER_MIRROR", value_name = "URL", default_value = GITHUB_RELEASES)]
    pub(crate) mirror: String,
}

/// Where the server listens. They are written into a new config; for an existing one that
/// differs, setup needs `--regenerate-config`.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct ListenArgs {
    /// Address every listener binds to; anything but loopback exposes the server [default: 127.0.0.1]
    #[arg(long, env = "NATS_HOST", value_parser = parse_host)]
    pub(crate) host: Option<String>,
    /// Client port; 0 lets the server pick a free one [default: 4222]
    #[arg(long, env = "NATS_PORT")]
    pub(crate) port: Option<u16>,
    /// HTTP monitoring port; 0 lets the server pick [default: 8222]
    #[arg(long, env = "NATS_HTTP_PORT")]
    pub(crate) http_port: Option<u16>,
    /// WebSocket port; 0 lets the server pick [default: 8223]
    #[arg(long, env = "NATS_WS_PORT")]
    pub(crate) ws_port: Option<u16>,
}

/// Whether every listener serves TLS. Recorded in the config: later setups and runs keep it
/// until `--no-tls`.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct TlsArgs {
    /// Serve every listener over TLS (clients, WebSocket, monitoring), with certificates from a
    /// local CA made in `infrastructure/nats/tls/`
    #[arg(long)]
    pub(crate) tls: bool,
    /// Serve plaintext again (the CA and the certificates stay, for a later `--tls`)
    #[arg(long, conflicts_with_all = ["tls", "tls_verify", "tls_first", "tls_name", "tls_cert"])]
    pub(crate) no_tls: bool,
    /// A host name or IP address, beyond this machine's, that the server certificate covers:
    /// what other machines connect to; repeat for more (implies --tls)
    #[arg(long = "tls-name", value_name = "NAME|IP", value_parser = parse_tls_name)]
    pub(crate) tls_name: Vec<String>,
    /// Mutual TLS: clients must show a certificate from the CA; one is issued for you and the
    /// checks, `tls/client-cert.pem` (implies --tls)
    #[arg(long)]
    pub(crate) tls_verify: bool,
    /// Also serve clients that start with the TLS handshake (`handshake_first: auto`, nats-server
    /// 2.10.4 and later); every other client then waits 50 ms at each connection (implies --tls)
    #[arg(long)]
    pub(crate) tls_first: bool,
    /// Serve a certificate of yours instead of the local CA's (PEM; any intermediate
    /// certificates after it in the file); checked before it is used (implies --tls)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM, readable by you only)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// The CA that issued --tls-cert, which clients here then trust; without it the
    /// certificate must chain to a public CA
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub(crate) tls_ca: Option<PathBuf>,
}

impl TlsArgs {
    /// Whether these options turn TLS on (Some(true)), off (Some(false)), or say nothing.
    pub(crate) fn wanted(&self) -> Option<bool> {
        if self.no_tls {
            Some(false)
        } else if self.tls
            || self.tls_verify
            || self.tls_first
            || !self.tls_name.is_empty()
            || self.tls_cert.is_some()
        {
            Some(true)
        } else {
            None
        }
    }
}

/// How clients prove who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum AuthMode {
    /// One token, shared by every client.
    Token,
    /// Accounts and users, each user with credentials of its own (NATS's operator mode).
    Jwt,
}

/// A name a certificate can cover: an IP address, or a DNS name (letters, digits, `-`, `.`,
/// and a leading `*.` for a wildcard).
fn parse_tls_name(text: &str) -> Result<String> {
    let valid = text.parse::<std::net::IpAddr>().is_ok() || crate::server::certs::is_dns_name(text);
    if !valid {
        anyhow::bail!("`{text}` is neither a host name nor an IP address");
    }
    Ok(text.to_ascii_lowercase())
}

/// A port as the config says it: nats-server reads 0 as "the default port" (or "off", for
/// monitoring) and -1 as "pick a free one".
pub(crate) fn config_port(port: u16) -> i32 {
    if port == 0 { -1 } else { i32::from(port) }
}

/// An IP address to listen on: it goes into the config, so nothing but an address is let in.
fn parse_host(text: &str) -> Result<String> {
    let address: std::net::IpAddr = text
        .parse()
        .with_context(|| format!("`{text}` is not an IP address"))?;
    Ok(address.to_string())
}

impl ListenArgs {
    /// The listeners these options ask for, defaults filling in the rest.
    pub(crate) fn listen(&self) -> Listen {
        let default = Listen::default();
        Listen {
            host: self.host.clone().unwrap_or(default.host),
            port: self.port.map_or(default.port, config_port),
            http_port: self.http_port.map_or(default.http_port, config_port),
            ws_port: self.ws_port.map_or(default.ws_port, config_port),
            tls: None,
            jwt: false,
        }
    }

    /// Each option given whose value differs from `configured`, saying both values.
    pub(crate) fn differences(&self, configured: &Listen) -> Vec<String> {
        let asked = self.listen();
        let port = |port: i32| match port {
            -1 => "0 (the server picks)".to_string(),
            port => port.to_string(),
        };
        let mut differences = Vec::new();
        if self.host.is_some() && asked.host != configured.host {
            differences.push(format!(
                "--host {}, but the config has {}",
                asked.host, configured.host
            ));
        }
        for (given, option, asked, configured) in [
            (self.port, "--port", asked.port, configured.port),
            (
                self.http_port,
                "--http-port",
                asked.http_port,
                configured.http_port,
            ),
            (self.ws_port, "--ws-port", asked.ws_port, configured.ws_port),
        ] {
            if given.is_some() && asked != configured {
                differences.push(format!(
                    "{option} {}, but the config has {}",
                    port(asked),
                    port(configured)
                ));
            }
        }
        differences
    }

    /// `configured`, with what these options name instead.
    pub(crate) fn over(&self, configured: &Listen) -> Listen {
        Listen {
            host: self.host.clone().unwrap_or(configured.host.clone()),
            port: self.port.map_or(configured.port, config_port),
            http_port: self.http_port.map_or(configured.http_port, config_port),
            ws_port: self.ws_port.map_or(configured.ws_port, config_port),
            tls: configured.tls.clone(),
            jwt: configured.jwt,
        }
    }

    pub(crate) fn any_given(&self) -> bool {
        self.host.is_some()
            || self.port.is_some()
            || self.http_port.is_some()
            || self.ws_port.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_names_are_host_names_or_addresses() {
        for good in [
            "nats.example.com",
            "10.0.0.7",
            "::1",
            "*.example.com",
            "Host-1",
        ] {
            assert!(parse_tls_name(good).is_ok(), "{good}");
        }
        assert_eq!(parse_tls_name("Host-1").unwrap(), "host-1");
        for bad in ["", "a..b", "-a.b", "a b", "a/b", "a.*.b", "nats:4222"] {
            assert!(parse_tls_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn port_zero_lets_the_server_pick() {
        let listen = ListenArgs {
            port: Some(0),
            http_port: Some(8322),
            ..ListenArgs::default()
        }
        .listen();
        assert_eq!(
            (listen.port, listen.http_port, listen.ws_port),
            (-1, 8322, 8223)
        );
        assert_eq!(listen.host, "127.0.0.1");
    }

    #[test]
    fn only_the_options_given_are_compared_and_each_difference_is_named() {
        let configured = Listen {
            port: 4322,
            ..Listen::default()
        };
        let asked = ListenArgs {
            port: Some(4322),
            http_port: Some(0),
            ..ListenArgs::default()
        };
        assert_eq!(
            asked.differences(&configured),
            ["--http-port 0 (the server picks), but the config has 8222"]
        );
        let same = ListenArgs {
            port: Some(4322),
            ws_port: Some(8223),
            ..ListenArgs::default()
        };
        assert!(same.differences(&configured).is_empty());
    }

    #[test]
    fn hosts_must_be_ip_addresses() {
        assert_eq!(parse_host("0.0.0.0").unwrap(), "0.0.0.0");
        assert_eq!(parse_host("::1").unwrap(), "::1");
        assert!(parse_host("example.com").is_err());
        assert!(parse_host("127.0.0.1\nhttp: 1").is_err());
    }
}

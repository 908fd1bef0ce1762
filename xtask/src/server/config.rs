//! The server configuration that setup writes, `nats-server.conf`: written from a template,
//! read back, and checked by the server itself.
//!
//! Paths in it are relative to the server's working directory, which is the directory holding
//! the config (`infrastructure/nats/`), so a checkout can move without editing it.

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::layout::Layout;
use crate::server::secrets::ServerEnv;
use crate::util::paths::show;
use crate::util::process;

/// Where the server listens, and whether over TLS. A port of -1 lets the server pick a free one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listen {
    pub(crate) host: String,
    pub(crate) port: i32,
    pub(crate) http_port: i32,
    pub(crate) ws_port: i32,
    /// TLS on every listener: clients, WebSocket, monitoring (HTTPS).
    pub(crate) tls: Option<Tls>,
    /// Accounts and users (operator mode, JWTs) instead of the token: the config includes
    /// `auth/resolver.conf`.
    pub(crate) jwt: bool,
}

/// The certificate every listener serves, from the config's top-level `tls` block (the
/// WebSocket's own block names the same files). Paths are as the config gives them: relative
/// to its directory, or absolute.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Tls {
    pub(crate) cert_file: String,
    pub(crate) key_file: String,
    /// The CA that clients' certificates must chain to (and the one our checks trust).
    pub(crate) ca_file: Option<String>,
    /// Clients must show a certificate from the CA: mutual TLS.
    pub(crate) verify: bool,
    /// Clients that start with the TLS handshake are served too (`handshake_first: auto`,
    /// which nats-server has from 2.10.4 on); the others wait 50 ms for the server to give up
    /// waiting for a handshake at each connection.
    pub(crate) handshake_first: bool,
}

impl Tls {
    /// These settings for a config elsewhere: the paths made absolute, relative ones taken
    /// from `dir`.
    pub(crate) fn absolute_from(self, dir: &Path) -> Tls {
        let absolute = |path: String| path_text(&dir.join(path));
        Tls {
            cert_file: absolute(self.cert_file),
            key_file: absolute(self.key_file),
            ca_file: self.ca_file.map(absolute),
            ..self
        }
    }

    /// The `tls` block of the client port.
    fn block(&self) -> String {
        let Tls {
            cert_file,
            key_file,
            ca_file,
            verify,
            handshake_first,
        } = self;
        let mut lines = vec![
            format!("  cert_file: {}", quoted(cert_file)),
            format!("  key_file: {}", quoted(key_file)),
        ];
        if let Some(ca_file) = ca_file {
            lines.push(format!("  ca_file: {}", quoted(ca_file)));
        }
        if *verify {
            lines.push(
                "  # Clients must show a certificate the CA issued (mutual TLS).\n  verify: true"
                    .to_string(),
            );
        }
        if *handshake_first {
            lines.push(
                "  # Clients that start with the TLS handshake connect too; the others 50 ms later.\n  \
                 handshake_first: \"auto\""
                    .to_string(),
            );
        }
        lines.push("  timeout: 2".to_string());
        format!("tls {{\n{}\n}}", lines.join("\n"))
    }
}

/// A path as a config gives it: with `/` between its parts on every OS (nats-server reads
/// them so on Windows too, and the config reads the same everywhere).
pub(crate) fn path_text(path: &Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

/// A path as a config string: quoted, with backslashes and quotes escaped.
fn quoted(path: &str) -> String {
    format!("\"{}\"", path.replace('\\', "\\\\").replace('"', "\\\""))
}

impl Listen {
    /// Loopback, on ports the server picks (its ports file tells which).
    pub(crate) fn loopback_on_free_ports() -> Listen {
        Listen {
            port: -1,
            http_port: -1,
            ws_port: -1,
            ..Listen::default()
        }
    }

    /// The URL scheme of the client port: `tls` when it serves TLS.
    pub(crate) fn client_scheme(&self) -> &'static str {
        if self.tls.is_some() { "tls" } else { "nats" }
    }
}

impl Default for Listen {
    fn default() -> Listen {
        Listen {
            host: "127.0.0.1".to_string(),
            port: 4222,
            http_port: 8222,
            ws_port: 8223,
            tls: None,
            jwt: false,
        }
    }
}

/// One node of a local cluster: its name and its route port (-1: the server picks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClusterNode {
    pub(crate) name: String,
    pub(crate) cluster_port: i32,
}

/// The name of the cluster every node of a checkout joins.
pub(crate) const CLUSTER_NAME: &str = "nats-dev";
/// The user routes authenticate as; the password is the secret.
pub(crate) const ROUTE_USER: &str = "route";

/// The config of the single server.
pub(crate) fn render(listen: &Listen) -> String {
    render_server(listen, None)
}

/// The config of one cluster node: the single server's, with its own name and a `cluster`
/// block whose route password and routes come from the environment, never from the file.
pub(crate) fn render_node(listen: &Listen, node: &ClusterNode) -> String {
    render_server(listen, Some(node))
}

/// Renders a config. Sizes use binary suffixes (`GB` means 2^30 to nats-server) and durations
/// are quoted strings: unquoted, `2m` would be read as the number 2,000,000.
fn render_server(listen: &Listen, node: Option<&ClusterNode>) -> String {
    let Listen {
        host,
        port,
        http_port,
        ws_port,
        tls,
        jwt,
    } = listen;
    let auth = if *jwt {
        format!(
            "# Accounts and users (`cargo xtask setup --auth jwt`): the operator, the system account\n\
             # and every account's JWT, which `cargo xtask user` and `account` rewrite. No token.\n\
             {}",
            super::auth::INCLUDE
        )
    } else {
        "# The token comes from the environment (`.env.nats`, loaded by `cargo xtask run`),\n\
         # so no secret is ever written here.\n\
         authorization {\n  token: $NATS_TOKEN\n}"
            .to_string()
    };
    let http = if host.contains(':') {
        format!("[{host}]:{http_port}")
    } else {
        format!("{host}:{http_port}")
    };
    let (monitoring, tls_block, websocket_tls) = match tls {
        None => (
            format!("http: \"{http}\""),
            String::new(),
            "  # Plain ws:// for development only: `cargo xtask setup --tls` serves wss://.\n  \
             no_tls: true"
                .to_string(),
        ),
        Some(tls) => (
            format!(
                "# Monitoring over HTTPS, with the certificate of the tls block.\nhttps: \"{http}\""
            ),
            format!(
                "\n# TLS on every listener, with {}.\n{}\n",
                // Ours are in the checkout, named relative to it; yours are where they are.
                if Path::new(&tls.cert_file).is_absolute() {
                    "certificates of yours (`cargo xtask setup --tls-cert`)"
                } else {
                    "the certificates of `cargo xtask setup --tls`"
                },
                tls.block()
            ),
            format!(
                "  # wss:// only; this block does not inherit the one above.\n  tls {{\n    \
                 cert_file: {}\n    key_file: {}\n  }}",
                quoted(&tls.cert_file),
                quoted(&tls.key_file)
            ),
        ),
    };
    let production_note = if tls.is_some() {
        ""
    } else {
        "
# For production, serve clients over TLS (`cargo xtask setup --tls` writes this block):
# tls {
#   cert_file: \"tls/server-cert.pem\"
#   key_file: \"tls/server-key.pem\"
#   ca_file: \"tls/ca.pem\"
#   # verify: true
#   timeout: 2
# }
"
    };
    let (header, server_name, cluster) = match node {
        None => (
            "# nats-server 2.10 configuration, written by `cargo xtask setup`.\n\
             # Setup leaves this file alone once it exists; `cargo xtask setup --regenerate-config`\n\
             # rewrites it (keeping a copy of the old one). Relative paths are relative to this directory.",
            "nats-dev".to_string(),
            String::new(),
        ),
        Some(node) => {
            let route_tls = tls.as_ref().map_or(String::new(), |tls| {
                let ca = tls.ca_file.as_deref().map_or(String::new(), |ca| {
                    format!("\n    ca_file: {}", quoted(ca))
                });
                format!(
                    "\n  # Routes are mutual TLS whatever `verify` says: each node shows its own\n  \
                     # certificate, from the same CA.\n  tls {{\n    cert_file: {}\n    \
                     key_file: {}{ca}\n    verify: true\n    timeout: 2\n  }}",
                    quoted(&tls.cert_file),
                    quoted(&tls.key_file)
                )
            });
            (
                "# Configuration of one node of this checkout's local cluster, written by the first\n\
             # `cargo xtask run --cluster`. Later starts keep it, edits included, unless port options\n\
             # move the node (then an edited copy is kept beside it). `cargo xtask reload` applies\n\
             # edits to a running node. Relative paths are relative to this directory.",
                node.name.clone(),
                format!(
                    r#"
# Routes to the other nodes. They authenticate with the password from `.env.nats`; the
# routes, which carry it, come from the environment too.
cluster {{
  name: "{CLUSTER_NAME}"
  host: "{host}"
  port: {port}
  authorization {{
    user: "{ROUTE_USER}"
    password: $NATS_ROUTE_PASSWORD
  }}
  routes: $NATS_ROUTES{route_tls}
}}
"#,
                    port = node.cluster_port
                ),
            )
        }
    };
    format!(
        r#"{header}

server_name: "{server_name}"

# Every listener is on {host} unless you choose otherwise (see the README).
host: "{host}"
port: {port}
{monitoring}

{auth}
{tls_block}
# Browser clients.
websocket {{
  host: "{host}"
  port: {ws_port}
{websocket_tls}
}}

{cluster}
jetstream {{
  # Files end up in data/jetstream/jetstream/.
  store_dir: "data/jetstream"
  max_memory_store: 1GB
  max_file_store: 10GB
}}

log_file: "logs/nats.log"
# Rotate at 10 MB, keeping a bounded number of old files.
log_size_limit: 10MB
logfile_max_num: 5
logtime: true
debug: false
trace: false

max_connections: 100
max_payload: 8MB
max_pending: 64MB
max_control_line: 4096
# 0 means unlimited.
max_subscriptions: 0
write_deadline: "5s"
ping_interval: "2m"
ping_max: 3
{production_note}"#
    )
}

/// Whether the single server's config `text` is not what setup writes for the host and ports
/// it has: someone edited it.
pub(crate) fn is_edited(text: &str) -> bool {
    text != render(&read_listen(text))
}

/// Whether the config `text` of cluster node `name` is not what `run --cluster` writes for the
/// host and ports it has: someone edited it.
pub(crate) fn is_edited_node(text: &str, name: &str) -> bool {
    let Some(cluster_port) = read_cluster_port(text) else {
        return true;
    };
    let node = ClusterNode {
        name: name.to_string(),
        cluster_port,
    };
    text != render_node(&read_listen(text), &node)
}

/// Where a config makes the server listen, read from its text as nats-server would for the
/// settings setup writes: top-level `host` (or `net`), `port`, `listen` (`host:port`) and
/// `http` (or `http_port`), and the `websocket` block's `port`, also on one line
/// (`websocket { port: 8223 }`). Absent, they take nats-server's defaults (host 0.0.0.0,
/// port 4222; monitoring and WebSocket off, 0). Includes are not followed.
pub(crate) fn read_listen(text: &str) -> Listen {
    let mut listen = Listen {
        host: "0.0.0.0".to_string(),
        port: 4222,
        http_port: 0,
        ws_port: 0,
        tls: None,
        jwt: text
            .lines()
            .any(|line| without_comment(line).trim() == super::auth::INCLUDE),
    };
    for (block, setting) in settings(text) {
        listen.apply(block.as_deref(), &setting);
    }
    listen
}

/// The TLS of the config in `layout`, if it has one (and can be read).
pub(crate) fn read_tls(layout: &Layout) -> Option<Tls> {
    read_listen(&std::fs::read_to_string(layout.config()).ok()?).tls
}

/// Whether the config in `layout` has accounts and users (`setup --auth jwt`) rather than the
/// token; false when it cannot be read.
pub(crate) fn has_accounts(layout: &Layout) -> bool {
    std::fs::read_to_string(layout.config()).is_ok_and(|text| read_listen(&text).jwt)
}

/// The largest payload a config allows, in bytes: its top-level `max_payload`, with
/// nats-server's units (`k`, `m`, `g` count thousands; `kb`, `mb`, `gb` and `ki`, `mi`, `gi`
/// count 1024s), else nats-server's default of 1 MiB.
pub(crate) fn read_max_payload(text: &str) -> u64 {
    // The last setting wins, as in nats-server.
    settings(text)
        .into_iter()
        .rev()
        .filter(|(block, _)| block.is_none())
        .find_map(|(_, setting)| {
            let (key, value) = setting.split_once([':', '='])?;
            (key.trim() == "max_payload").then(|| size(value.trim().trim_matches('"')))?
        })
        .unwrap_or(1024 * 1024)
}

/// A size as nats-server reads one: `8MB` is 8 MiB, `8M` 8 million, `512` bytes.
fn size(text: &str) -> Option<u64> {
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1_000,
        "kb" | "ki" | "kib" => 1 << 10,
        "m" => 1_000_000,
        "mb" | "mi" | "mib" => 1 << 20,
        "g" => 1_000_000_000,
        "gb" | "gi" | "gib" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(factor)
}

/// The route port of a cluster node's config (`port` in its `cluster` block), if it has one.
pub(crate) fn read_cluster_port(text: &str) -> Option<i32> {
    settings(text)
        .into_iter()
        .rev()
        .filter(|(block, _)| block.as_deref() == Some("cluster"))
        .filter_map(|(_, setting)| {
            let (key, value) = setting.split_once([':', '='])?;
            (key.trim() == "port").then(|| value.trim().parse().ok())?
        })
        .next()
}

/// Every `key: value` setting of a config with the path of the block it is in (None: the top
/// level; `websocket.tls` for a block in a block), in order; blocks on one line
/// (`websocket { port: 8223, no_tls: true }`) too.
fn settings(text: &str) -> Vec<(Option<String>, String)> {
    let mut found = Vec::new();
    let mut blocks: Vec<String> = Vec::new();
    let path = |blocks: &[String]| (!blocks.is_empty()).then(|| blocks.join("."));
    for line in text.lines().map(without_comment).map(str::trim) {
        if let Some(name) = line.strip_suffix('{') {
            blocks.push(block_name(name));
            continue;
        }
        if line.starts_with('}') {
            blocks.pop();
            continue;
        }
        if let Some((name, rest)) = line.split_once('{') {
            let inner = rest.trim_end().trim_end_matches('}');
            let mut inside = blocks.clone();
            inside.push(block_name(name));
            for setting in inner.split([',', ';']) {
                found.push((path(&inside), setting.to_string()));
            }
            continue;
        }
        found.push((path(&blocks), line.to_string()));
    }
    found
}

fn block_name(text: &str) -> String {
    text.trim().trim_end_matches([':', '=']).trim().to_string()
}

impl Listen {
    /// Takes in one `key: value` setting found in `block` (None: at the top level).
    fn apply(&mut self, block: Option<&str>, setting: &str) {
        let Some((key, value)) = setting.split_once([':', '=']) else {
            return;
        };
        let value = value.trim().trim_matches('"').trim_matches('\'');
        let port = |text: &str| text.trim().parse::<i32>().ok();
        // `host:port`, the port alone, or `[v6]:port`.
        let host_port = |text: &str| match text.rsplit_once(':') {
            Some((host, p)) if !p.contains(']') => {
                (Some(host.trim_matches(['[', ']']).to_string()), port(p))
            }
            _ => (None, port(text)),
        };
        match (block, key.trim()) {
            (None, "host" | "net") => self.host = value.to_string(),
            (None, "port") => self.port = port(value).unwrap_or(self.port),
            (None, "listen") => {
                let (host, port) = host_port(value);
                if let Some(host) = host.filter(|h| !h.is_empty()) {
                    self.host = host;
                }
                self.port = port.unwrap_or(self.port);
            }
            (None, "http_port" | "monitor_port") => {
                self.http_port = port(value).unwrap_or(self.http_port)
            }
            (None, "http" | "https") => {
                self.http_port = host_port(value).1.unwrap_or(self.http_port)
            }
            (None, "https_port") => self.http_port = port(value).unwrap_or(self.http_port),
            (Some("websocket" | "ws"), "port") => self.ws_port = port(value).unwrap_or(0),
            (Some("tls"), key) => {
                let tls = self.tls.get_or_insert_default();
                let on = !matches!(value, "false" | "off" | "no");
                match key {
                    "cert_file" => tls.cert_file = unquoted(setting_value(setting)),
                    "key_file" => tls.key_file = unquoted(setting_value(setting)),
                    "ca_file" => tls.ca_file = Some(unquoted(setting_value(setting))),
                    "verify" => tls.verify = on,
                    "handshake_first" | "first" | "immediate" => tls.handshake_first = on,
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

/// The value of a `key: value` setting, as written.
fn setting_value(setting: &str) -> &str {
    setting
        .split_once([':', '='])
        .map_or("", |(_, value)| value.trim())
}

/// A config string's value: without its quotes, escapes undone.
fn unquoted(text: &str) -> String {
    let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else {
        return text.trim_matches('\'').to_string();
    };
    let mut value = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => value.extend(chars.next()),
            c => value.push(c),
        }
    }
    value
}

/// Where a client reaches a listener on `host` and `port`: the address itself, or loopback
/// for a wildcard address (`0.0.0.0`, `::`), which listens there too. None for a host that is
/// not an IP address or a port the server picks.
pub(crate) fn reachable(host: &str, port: i32) -> Option<std::net::SocketAddr> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let ip = match host.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    Some(std::net::SocketAddr::new(
        ip,
        u16::try_from(port).ok().filter(|p| *p > 0)?,
    ))
}

/// A config line without its `#` or `//` comment (outside quotes).
fn without_comment(line: &str) -> &str {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted => return &line[..i],
            '/' if !quoted && line[i..].starts_with("//") => return &line[..i],
            _ => {}
        }
    }
    line
}

/// Asks `binary` (`nats-server -t`) whether it accepts the config in `layout`, with `env`, the
/// variables the config reads, in its environment. The error carries what the server said.
pub(crate) fn check(binary: &Path, layout: &Layout, env: &ServerEnv) -> Result<()> {
    let sh = xshell::Shell::new()?;
    sh.change_dir(&layout.dir);
    let config = layout.config();
    let mut command = xshell::cmd!(sh, "{binary} -t -c {config}");
    for (name, value) in env.vars() {
        command = command.env(name, value);
    }
    let output = process::run_unchecked(
        {
            let mut command: std::process::Command = command.into();
            command
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            command
        },
        Duration::from_secs(10),
    )?;
    if !output.status.success() {
        bail!(
            "nats-server rejects `{}`: {}",
            show(&config),
            process::last_lines(&output, 3)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_is_reached_at_its_address_or_on_loopback_for_a_wildcard() {
        let at = |host: &str, port: i32| reachable(host, port).map(|a| a.to_string());
        assert_eq!(at("0.0.0.0", 4222).as_deref(), Some("127.0.0.1:4222"));
        assert_eq!(at("::", 4222).as_deref(), Some("[::1]:4222"));
        assert_eq!(at("127.0.0.2", 4222).as_deref(), Some("127.0.0.2:4222"));
        assert_eq!(
            at("2001:db8::7", 4222).as_deref(),
            Some("[2001:db8::7]:4222")
        );
        // Ports the server picks, and names that are not addresses, cannot be reached here.
        for port in [0, -1] {
            assert_eq!(at("127.0.0.1", port), None, "port {port}");
        }
        assert_eq!(at("localhost", 4222), None);
    }

    #[test]
    fn comments_end_a_line_outside_quotes_only() {
        assert_eq!(
            without_comment("port: 4222 # the client port"),
            "port: 4222 "
        );
        assert_eq!(without_comment("http: 8222 // monitoring"), "http: 8222 ");
        assert_eq!(without_comment(r#"host: "a#b//c""#), r#"host: "a#b//c""#);
        assert_eq!(without_comment(r#"host: "a" # "b""#), r#"host: "a" "#);
        assert_eq!(without_comment("path: a/b"), "path: a/b");
        assert_eq!(without_comment("# all of it"), "");
    }

    #[test]
    fn a_temporary_server_listens_on_loopback_on_ports_it_picks() {
        let listen = Listen::loopback_on_free_ports();
        assert_eq!(
            (
                listen.host.as_str(),
                listen.port,
                listen.http_port,
                listen.ws_port
            ),
            ("127.0.0.1", -1, -1, -1)
        );
        assert_eq!(read_listen(&render(&listen)), listen);
    }

    #[test]
    fn max_payload_is_read_with_nats_servers_units() {
        assert_eq!(read_max_payload(&render(&Listen::default())), 8 << 20);
        for (setting, bytes) in [
            ("max_payload: 64KB", 65_536),
            ("max_payload = 64k", 64_000),
            ("max_payload: 2MiB", 2 << 20),
            ("max_payload: 1G", 1_000_000_000),
            ("max_payload: 2m", 2_000_000),
            ("max_payload: 1gb", 1 << 30),
            ("max_payload: 4096", 4_096),
            ("max_payload: \"3mb\"", 3 << 20),
        ] {
            assert_eq!(read_max_payload(setting), bytes, "{setting}");
        }
        assert_eq!(
            read_max_payload("port: 4222"),
            1 << 20,
            "the server's default"
        );
        let in_a_block = "websocket {\n  max_payload: 5\n}\n";
        assert_eq!(read_max_payload(in_a_block), 1 << 20, "not the top level");
    }

    #[test]
    fn a_nodes_route_port_is_read_from_its_cluster_block() {
        let node = ClusterNode {
            name: "n2".into(),
            cluster_port: 6232,
        };
        let text = render_node(&Listen::default(), &node);
        assert_eq!(read_cluster_port(&text), Some(6232));
        assert_eq!(read_listen(&text).port, 4222);
        assert_eq!(read_cluster_port(&render(&Listen::default())), None);
        assert_eq!(read_cluster_port("cluster { port: 7000 }"), Some(7000));
    }

    fn lines(text: &str) -> Vec<&str> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    }

    #[test]
    fn every_listener_binds_loopback_by_default() {
        let text = render(&Listen::default());
        let lines = lines(&text);
        for want in [
            "host: \"127.0.0.1\"",
            "port: 4222",
            "http: \"127.0.0.1:8222\"",
            "port: 8223",
        ] {
            assert!(lines.contains(&want), "missing `{want}`");
        }
        assert_eq!(
            lines
                .iter()
                .filter(|l| **l == "host: \"127.0.0.1\"")
                .count(),
            2,
            "top level and websocket"
        );
    }

    #[test]
    fn ports_and_host_follow_the_options() {
        let text = render(&Listen {
            host: "0.0.0.0".into(),
            port: 1,
            http_port: 2,
            ws_port: 3,
            tls: None,
            jwt: false,
        });
        let lines = lines(&text);
        for want in [
            "host: \"0.0.0.0\"",
            "port: 1",
            "http: \"0.0.0.0:2\"",
            "port: 3",
        ] {
            assert!(lines.contains(&want), "missing `{want}`");
        }
        assert!(!text.contains("127.0.0.1"));
    }

    #[test]
    fn an_ipv6_monitoring_address_is_bracketed() {
        let text = render(&Listen {
            host: "::1".into(),
            ..Listen::default()
        });
        assert!(lines(&text).contains(&"http: \"[::1]:8222\""));
    }

    #[test]
    fn limits_use_the_field_names_and_units_2_10_understands() {
        let text = render(&Listen::default());
        let lines = lines(&text);
        for want in [
            "max_memory_store: 1GB",
            "max_file_store: 10GB",
            "store_dir: \"data/jetstream\"",
            "max_payload: 8MB",
            "max_pending: 64MB",
            "write_deadline: \"5s\"",
            "ping_interval: \"2m\"",
            "ping_max: 3",
            "max_subscriptions: 0",
            "max_control_line: 4096",
            "max_connections: 100",
            "log_size_limit: 10MB",
            "logfile_max_num: 5",
            "no_tls: true",
        ] {
            assert!(lines.contains(&want), "missing `{want}`");
        }
        for wrong in [
            "max_memory:",
            "max_slow_consumers",
            "max_subs_per_conn",
            "system_account",
        ] {
            assert!(!lines.iter().any(|l| l.starts_with(wrong)), "has `{wrong}`");
        }
    }

    #[test]
    fn the_token_is_a_variable_never_a_value() {
        let text = render(&Listen::default());
        let lines = lines(&text);
        let tokens: Vec<_> = lines.iter().filter(|l| l.starts_with("token:")).collect();
        assert_eq!(tokens, [&"token: $NATS_TOKEN"]);
    }

    #[test]
    fn a_node_config_names_the_node_and_takes_its_route_secrets_from_the_environment() {
        let node = ClusterNode {
            name: "n2".into(),
            cluster_port: 6232,
        };
        let text = render_node(&Listen::default(), &node);
        let lines = lines(&text);
        for want in [
            "server_name: \"n2\"",
            "name: \"nats-dev\"",
            "port: 6232",
            "password: $NATS_ROUTE_PASSWORD",
            "routes: $NATS_ROUTES",
        ] {
            assert!(lines.contains(&want), "missing `{want}` in\n{text}");
        }
        assert_eq!(
            read_listen(&text),
            Listen::default(),
            "the cluster port is not the client's"
        );
        assert!(!render(&Listen::default()).contains("cluster {"));
    }

    #[test]
    fn the_listeners_are_read_back_from_a_rendered_config() {
        for listen in [
            Listen::default(),
            Listen::loopback_on_free_ports(),
            Listen {
                host: "::1".into(),
                port: 1,
                http_port: 2,
                ws_port: 3,
                tls: None,
                jwt: false,
            },
            Listen {
                jwt: true,
                ..Listen::default()
            },
            Listen {
                tls: Some(ours(false, true)),
                ..Listen::default()
            },
            Listen {
                tls: Some(ours(true, false)),
                ..Listen::loopback_on_free_ports()
            },
            Listen {
                tls: Some(Tls {
                    ca_file: None,
                    ..ours(false, false).absolute_from(Path::new(r#"C:\Users\me "x"\nats"#))
                }),
                ..Listen::default()
            },
        ] {
            assert_eq!(read_listen(&render(&listen)), listen);
        }
    }

    #[test]
    fn edited_configs_are_read_as_nats_server_reads_them() {
        let text = "# a comment: port: 1\nport = 5222 # trailing\nhttp_port: 9222\n\
                    authorization { token: $NATS_TOKEN }\nwebsocket: {\n  port: 9223\n}\n\
                    cluster {\n  port: 6222\n}\n";
        let listen = read_listen(text);
        assert_eq!(listen.host, "0.0.0.0", "nats-server's default host");
        assert_eq!(
            (listen.port, listen.http_port, listen.ws_port),
            (5222, 9222, 9223)
        );
        assert_eq!(
            read_listen("").http_port,
            0,
            "no monitoring unless configured"
        );
        let one_line = read_listen(
            "listen: 127.0.0.2:5333\nhttp: 8333\nwebsocket { port: 8334, no_tls: true }\n",
        );
        assert_eq!(one_line.host, "127.0.0.2");
        assert_eq!(
            (one_line.port, one_line.http_port, one_line.ws_port),
            (5333, 8333, 8334)
        );
        let v6 = read_listen("listen: \"[::1]:5333\"\n");
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 5333));
    }

    fn ours(verify: bool, handshake_first: bool) -> Tls {
        Tls {
            cert_file: "tls/server-cert.pem".into(),
            key_file: "tls/server-key.pem".into(),
            ca_file: Some("tls/ca.pem".into()),
            verify,
            handshake_first,
        }
    }

    #[test]
    fn with_tls_every_listener_serves_it_from_the_same_certificate() {
        let text = render(&Listen {
            tls: Some(ours(true, true)),
            ..Listen::default()
        });
        let lines = lines(&text);
        for want in [
            "https: \"127.0.0.1:8222\"",
            "cert_file: \"tls/server-cert.pem\"",
            "key_file: \"tls/server-key.pem\"",
            "ca_file: \"tls/ca.pem\"",
            "verify: true",
            "handshake_first: \"auto\"",
            "timeout: 2",
        ] {
            assert!(lines.contains(&want), "missing `{want}` in\n{text}");
        }
        for gone in ["http: \"127.0.0.1:8222\"", "no_tls: true"] {
            assert!(!lines.contains(&gone), "has `{gone}`");
        }
        // The websocket's own block: it does not inherit the top-level one.
        let websocket: Vec<_> = settings(&text)
            .into_iter()
            .filter(|(block, _)| block.as_deref() == Some("websocket.tls"))
            .map(|(_, setting)| setting)
            .collect();
        assert_eq!(
            websocket,
            [
                "cert_file: \"tls/server-cert.pem\"",
                "key_file: \"tls/server-key.pem\""
            ]
        );
        let plain = render(&Listen::default());
        assert!(!plain.contains("handshake_first") && !plain.contains("https:"));
        // Before 2.10.4 the client port knows no handshake_first.
        let old = render(&Listen {
            tls: Some(ours(false, false)),
            ..Listen::default()
        });
        assert!(!old.contains("handshake_first") && !old.contains("verify: true"));
    }

    #[test]
    fn tls_settings_are_read_from_the_top_level_block_only() {
        let text = "https_port: 9443\ntls { cert_file: \"a.pem\", key_file: \"b.pem\", verify: true }\n\
                    websocket {\n  port: 1\n  tls {\n    cert_file: \"ws.pem\"\n  }\n}\n\
                    cluster {\n  tls {\n    verify: false\n  }\n}\n";
        let listen = read_listen(text);
        assert_eq!(listen.http_port, 9443);
        assert_eq!(
            listen.tls,
            Some(Tls {
                cert_file: "a.pem".into(),
                key_file: "b.pem".into(),
                ca_file: None,
                verify: true,
                handshake_first: false,
            })
        );
        assert_eq!(read_listen("port: 4222").tls, None);
        assert_eq!(unquoted(r#""C:\\a \"b\"""#), r#"C:\a "b""#);
    }

    #[test]
    fn a_config_is_edited_when_it_differs_from_what_its_ports_would_give() {
        let moved = Listen {
            port: 5222,
            ..Listen::loopback_on_free_ports()
        };
        let tls = Listen {
            tls: Some(ours(true, true)),
            ..Listen::default()
        };
        for listen in [Listen::default(), moved, tls] {
            let text = render(&listen);
            assert!(!is_edited(&text), "{listen:?}");
            assert!(is_edited(
                &text.replace("max_payload: 8MB", "max_payload: 2MB")
            ));
            assert!(is_edited(&format!("{text}# mine\n")));
            let node = ClusterNode {
                name: "n2".into(),
                cluster_port: -1,
            };
            let text = render_node(&listen, &node);
            assert!(!is_edited_node(&text, "n2"));
            assert!(is_edited_node(&text, "n3"), "another node's name");
            assert!(is_edited_node(
                &text.replace("debug: false", "debug: true"),
                "n2"
            ));
            assert!(is_edited_node(&render(&listen), "n2"), "no cluster block");
        }
    }
}

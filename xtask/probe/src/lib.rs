//! Asking a running nats-server how it is, without a client library: its monitoring endpoint
//! over HTTP, and the first lines of its client protocol over TCP. Shared by the xtask (is the
//! server ready?) and its smoke checks (does it refuse what it must?).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

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

/// An HTTP client for monitoring requests on loopback: no proxy, short timeouts, and an HTTP
/// error status is an answer to look at rather than an error.
pub fn monitoring_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .proxy(None)
        .timeout_global(Some(TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into()
}

/// GETs `url`: its status and body, whatever the status.
pub fn get(agent: &ureq::Agent, url: &str) -> Result<(u16, String)> {
    let mut response = agent
        .get(url)
        .call()
        .with_context(|| format!("cannot reach {url}"))?;
    let body = response
        .body_mut()
        .read_to_string()
        .with_context(|| format!("cannot read the answer of {url}"))?;
    Ok((response.status().as_u16(), body))
}

/// GETs `url`, which must answer 2xx with JSON.
pub fn get_json(agent: &ureq::Agent, url: &str) -> Result<Value> {
    let (status, body) = get(agent, url)?;
    if !(200..300).contains(&status) {
        bail!("{url} answered HTTP {status}");
    }
    serde_json::from_str(&body).with_context(|| format!("{url} is not JSON"))
}

/// A client connection after the handshake: the server's INFO read, our CONNECT sent.
pub struct Connection {
    address: String,
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Connection {
    /// Connects to `nats://host:port` (or `host:port`) as a client named `name` with `token`.
    /// CONNECT is not acknowledged (`verbose` is off): what the server thinks of it comes with
    /// the answer to the next line sent.
    pub fn open(url: &str, token: &str, name: &str) -> Result<Connection> {
        let address = url.strip_prefix("nats://").unwrap_or(url).to_string();
        let socket = address
            .to_socket_addrs()
            .with_context(|| format!("`{address}` is not an address"))?
            .next()
            .with_context(|| format!("no address for `{address}`"))?;
        let stream = TcpStream::connect_timeout(&socket, TIMEOUT)
            .with_context(|| format!("cannot connect to {address}"))?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        let reader = BufReader::new(stream.try_clone()?);
        let mut connection = Connection {
            address,
            stream,
            reader,
        };
        let info = connection.line()?;
        if !info.starts_with("INFO ") {
            bail!(
                "`{}` is not a NATS server: it said `{info}`",
                connection.address
            );
        }
        let connect = serde_json::json!({
            "auth_token": token, "verbose": false, "pedantic": false, "name": name,
        });
        connection.send(&format!("CONNECT {connect}\r\n"))?;
        Ok(connection)
    }

    /// Sends protocol text as it is (lines end in `\r\n`).
    pub fn send(&mut self, text: &str) -> Result<()> {
        self.stream
            .write_all(text.as_bytes())
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
        let mut client = Connection::open(&url, "nats_secret", "probe test").unwrap();
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
        let mut client = Connection::open(&url, "wrong", "probe test").unwrap();
        let err = client.ping().unwrap_err().to_string();
        assert!(
            err.ends_with("refused the client: -ERR 'Authorization Violation'"),
            "{err}"
        );
    }

    #[test]
    fn a_peer_that_is_not_nats_is_named() {
        let (url, _server) = peer("HTTP/1.1 400 Bad Request\r\n", |_| "");
        let err = Connection::open(&url, "t", "probe test")
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

//! HTTP downloads: timeouts, proxies from the environment, retries with backoff, and a SHA-256
//! computed over exactly the bytes written to disk.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use ureq::Agent;

const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

pub(crate) struct Downloader {
    agent: Agent,
}

/// Why one attempt failed, and whether another could succeed.
enum Failure {
    Transient(anyhow::Error),
    Final(anyhow::Error),
}

impl Downloader {
    pub(crate) fn new() -> Downloader {
        let config = Agent::config_builder()
            // HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY, in either case.
            .proxy(ureq::Proxy::try_from_env())
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(30)))
            // A budget for the whole body: ureq has no idle timeout. 15 minutes lets a 6 MB
            // archive through a 7 kB/s link and still ends a stalled transfer.
            .timeout_recv_body(Some(Duration::from_secs(15 * 60)))
            .http_status_as_error(false)
            .user_agent(concat!("nats-xtask/", env!("CARGO_PKG_VERSION")))
            .build();
        Downloader {
            agent: config.into(),
        }
    }

    /// A small text file such as `SHA256SUMS`.
    pub(crate) fn text(&self, url: &str) -> Result<String> {
        self.retrying(url, || {
            let mut response = self.get(url)?;
            response
                .body_mut()
                .with_config()
                .limit(1 << 20)
                .read_to_string()
                .map_err(|e| {
                    Failure::Transient(
                        anyhow::Error::new(e).context(format!("reading `{url}` failed")),
                    )
                })
        })
    }

    /// Streams `url` into `dest` (truncating it on every attempt) and returns the SHA-256 of
    /// what was written, in lower-case hex.
    pub(crate) fn to_file(&self, url: &str, dest: &Path) -> Result<String> {
        self.retrying(url, || {
            let mut response = self.get(url)?;
            let total = response.body().content_length();
            let mut file = File::create(dest)
                .with_context(|| format!("cannot write `{}`", dest.display()))
                .map_err(Failure::Final)?;
            let reader = response.body_mut().with_config().limit(u64::MAX).reader();
            let mut progress = Progress::new(url, total);
            let cannot_write = |e| {
                Failure::Final(
                    anyhow::Error::new(e).context(format!("cannot write `{}`", dest.display())),
                )
            };
            let hash =
                copy_hashing(reader, &mut file, |n| progress.advance(n)).map_err(|e| match e {
                    CopyError::Read(e) => Failure::Transient(
                        anyhow::Error::new(e).context(format!("download of `{url}` broke off")),
                    ),
                    CopyError::Write(e) => cannot_write(e),
                })?;
            file.sync_all().map_err(cannot_write)?;
            Ok(hash)
        })
    }

    fn get(&self, url: &str) -> Result<ureq::http::Response<ureq::Body>, Failure> {
        let response = self.agent.get(url).call().map_err(|e| {
            // Network trouble may pass; a bad URL, TLS or proxy setting will not.
            let transient = matches!(
                e,
                ureq::Error::Io(_)
                    | ureq::Error::Timeout(_)
                    | ureq::Error::HostNotFound
                    | ureq::Error::ConnectionFailed
            );
            let e = anyhow::Error::new(e).context(format!("cannot reach `{url}`"));
            if transient {
                Failure::Transient(e)
            } else {
                Failure::Final(e)
            }
        })?;
        let status = response.status();
        if status.is_success() {
            Ok(response)
        } else if status.is_server_error() || status.as_u16() == 429 {
            Err(Failure::Transient(anyhow::anyhow!(
                "`{url}` answered HTTP {status}"
            )))
        } else if status.as_u16() == 404 {
            Err(Failure::Final(anyhow::anyhow!(
                "`{url}` was not found (HTTP 404): check the version, or the mirror if you set one"
            )))
        } else {
            Err(Failure::Final(anyhow::anyhow!(
                "`{url}` answered HTTP {status}"
            )))
        }
    }

    fn retrying<T>(&self, url: &str, mut attempt: impl FnMut() -> Result<T, Failure>) -> Result<T> {
        let mut backoff = FIRST_BACKOFF;
        for n in 1..=ATTEMPTS {
            match attempt() {
                Ok(value) => return Ok(value),
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::Transient(e)) if n == ATTEMPTS => {
                    return Err(e.context(format!("gave up on `{url}` after {ATTEMPTS} attempts")));
                }
                Err(Failure::Transient(e)) => {
                    eprintln!("{:#}; retrying in {} ms", e, backoff.as_millis());
                    std::thread::sleep(backoff);
                    backoff *= 2;
                }
            }
        }
        bail!("no attempt made on `{url}`")
    }
}

/// Which side of a copy failed.
#[derive(Debug)]
pub(crate) enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// Copies `reader` to `writer`, feeding every chunk to the hasher on its way. A read error
/// ends the copy with that error: a download is never hashed short.
pub(crate) fn copy_hashing(
    mut reader: impl Read,
    writer: &mut impl Write,
    mut on_chunk: impl FnMut(usize),
) -> Result<String, CopyError> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 256 * 1024];
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        hasher.update(&buffer[..n]);
        writer.write_all(&buffer[..n]).map_err(CopyError::Write)?;
        on_chunk(n);
    }
    Ok(hex(&hasher.finalize()))
}

/// The SHA-256 of a file, in lower-case hex.
pub(crate) fn sha256_file(path: &Path) -> Result<String> {
    let file = File::open(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    copy_hashing(file, &mut io::sink(), |_| ()).map_err(|e| match e {
        CopyError::Read(e) | CopyError::Write(e) => {
            anyhow::Error::new(e).context(format!("cannot read `{}`", path.display()))
        }
    })
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A one-line progress report on a terminal; nothing when stderr is piped.
struct Progress {
    label: String,
    total: Option<u64>,
    done: u64,
    shown: Option<Instant>,
}

impl Progress {
    fn new(url: &str, total: Option<u64>) -> Progress {
        let label = url.rsplit('/').next().unwrap_or(url).to_string();
        let shown = io::stderr().is_terminal().then(Instant::now);
        Progress {
            label,
            total,
            done: 0,
            shown,
        }
    }

    fn advance(&mut self, n: usize) {
        self.done += n as u64;
        let Some(shown) = self.shown else { return };
        let finished = Some(self.done) == self.total;
        if shown.elapsed() < Duration::from_millis(100) && !finished {
            return;
        }
        self.shown = Some(Instant::now());
        let mb = |b: u64| b as f64 / 1e6;
        match self.total {
            Some(total) => eprint!("\r{} {:.1}/{:.1} MB", self.label, mb(self.done), mb(total)),
            None => eprint!("\r{} {:.1} MB", self.label, mb(self.done)),
        }
        if finished {
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_every_byte_copied() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
        let mut out = Vec::new();
        let mut seen = 0;
        let hash = copy_hashing(&data[..], &mut out, |n| seen += n).unwrap();
        assert_eq!(out, data);
        assert_eq!(seen, data.len());
        assert_eq!(hash, hex(&Sha256::digest(&data)));
    }

    #[test]
    fn a_read_error_fails_the_copy_instead_of_hashing_short() {
        struct Broken(bool);
        impl Read for Broken {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if std::mem::replace(&mut self.0, true) {
                    Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"))
                } else {
                    buf[0] = 1;
                    Ok(1)
                }
            }
        }
        let err = copy_hashing(Broken(false), &mut Vec::new(), |_| ()).unwrap_err();
        assert!(matches!(err, CopyError::Read(e) if e.kind() == io::ErrorKind::ConnectionReset));
    }

    #[test]
    fn a_write_error_is_told_apart_from_a_read_error() {
        let mut full = [0u8; 2];
        let err = copy_hashing(&b"abc"[..], &mut &mut full[..], |_| ()).unwrap_err();
        assert!(matches!(err, CopyError::Write(_)));
    }

    #[test]
    fn known_digest() {
        assert_eq!(
            copy_hashing(&b"abc"[..], &mut io::sink(), |_| ()).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

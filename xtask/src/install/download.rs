//! HTTP downloads: timeouts, proxies from the environment, retries with backoff, and a SHA-256
//! computed over exactly the bytes written to disk.

use std::fs::File;
use std::io::{self, IsTerminal};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ureq::Agent;

use crate::util::files::{CopyError, copy_hashing};

const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

pub(crate) struct Downloader {
    agent: Agent,
    attempts: u32,
}

/// How long the one attempt of a quick download may take, all told.
const QUICK: Duration = Duration::from_secs(3);

/// A download that got no usable answer: the host could not be reached, or kept failing until
/// the attempts ran out. Callers look for it in the error to suggest another source.
#[derive(Debug)]
pub(crate) struct NoAnswer(String);

impl std::fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `error` is (or was caused by) a download that got no usable answer.
pub(crate) fn no_answer(error: &anyhow::Error) -> bool {
    error.downcast_ref::<NoAnswer>().is_some()
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
            attempts: ATTEMPTS,
        }
    }

    /// One attempt of at most a few seconds: for a small file that is nice to have, where a
    /// machine without network must not wait.
    pub(crate) fn quick() -> Downloader {
        let config = Agent::config_builder()
            .proxy(ureq::Proxy::try_from_env())
            .timeout_global(Some(QUICK))
            .http_status_as_error(false)
            .user_agent(concat!("nats-xtask/", env!("CARGO_PKG_VERSION")))
            .build();
        Downloader {
            agent: config.into(),
            attempts: 1,
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
            let e = anyhow::Error::new(e).context(NoAnswer(format!("cannot reach `{url}`")));
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
        let attempts = self.attempts;
        for n in 1..=attempts {
            match attempt() {
                Ok(value) => return Ok(value),
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::Transient(e)) if n == attempts && attempts == 1 => return Err(e),
                Err(Failure::Transient(e)) if n == attempts => {
                    return Err(e.context(NoAnswer(format!(
                        "gave up on `{url}` after {attempts} attempts"
                    ))));
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
    fn no_answer_is_found_under_any_context() {
        let gave_up = anyhow::anyhow!("connection refused")
            .context(NoAnswer("gave up on `u` after 4 attempts".into()))
            .context("cannot fetch the release's checksums");
        assert!(no_answer(&gave_up));
        assert!(!no_answer(&anyhow::anyhow!("`u` was not found (HTTP 404)")));
    }
}

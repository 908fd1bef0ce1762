//! The checks of `cargo xtask smoke`, run against one server with a real NATS client.
//!
//! A crate of its own because the client and its async runtime double the xtask's cold build:
//! `cargo xtask smoke` builds and runs it on first use, so `cargo xtask run` stays quick to
//! compile. The xtask finds (or starts) the server and passes its addresses as arguments and
//! its token in the environment, never on the command line.

use std::future::Future;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use async_nats::jetstream::{self, stream::StorageType};
use clap::Parser;
use serde_json::{Value, json};
use xtask_clients::{Threads, unique_id};

mod checks;
mod cluster;
mod failover;

/// How long one check may take before it counts as failed: deadlines for a loaded machine,
/// never a measure of speed. Longer than the JetStream check's steps, clean-up and connection
/// together.
const CHECK_DEADLINE: Duration = Duration::from_secs(20);

/// Checks that a NATS server works: health, auth, pub/sub, request/reply, JetStream,
/// WebSocket. Run through `cargo xtask smoke`.
#[derive(Debug, Parser)]
struct Args {
    /// Client URL, such as nats://127.0.0.1:4222.
    #[arg(long)]
    client: String,
    /// Monitoring URL, such as http://127.0.0.1:8222.
    #[arg(long)]
    monitoring: String,
    /// WebSocket URL, such as ws://127.0.0.1:8223.
    #[arg(long)]
    websocket: Option<String>,
    /// The largest payload the server's config allows (`max_payload`), in bytes: the server
    /// must take exactly that much and refuse one byte more.
    #[arg(long, value_name = "BYTES")]
    max_payload: usize,
    /// Print the results as one JSON document.
    #[arg(long)]
    json: bool,
    /// A node of the cluster the server belongs to, as `NAME=CLIENT_URL,MONITORING_URL`;
    /// given for every node, it adds the cluster's checks, and the JetStream check replicates
    /// to every node.
    #[arg(long = "node", value_name = "NAME=URLS", value_parser = parse_node)]
    nodes: Vec<Node>,
    /// Also stop the node leading a replicated stream while publishing to it, and start it
    /// again; the xtask running the checks does the stopping, when asked on stdout.
    #[arg(long, value_name = "HOW", requires = "nodes")]
    failover: Option<failover::Stop>,
}

/// A node of a cluster: its name and URLs.
#[derive(Debug, Clone)]
struct Node {
    name: String,
    client: String,
    monitoring: String,
}

fn parse_node(text: &str) -> Result<Node> {
    let (name, client, monitoring) = text
        .split_once('=')
        .and_then(|(name, urls)| {
            let (client, monitoring) = urls.split_once(',')?;
            Some((name, client, monitoring))
        })
        .with_context(|| format!("`{text}` is not NAME=CLIENT_URL,MONITORING_URL"))?;
    Ok(Node {
        name: name.to_string(),
        client: client.to_string(),
        monitoring: monitoring.to_string(),
    })
}

/// How long a new cluster's meta leader may take to count every peer online for placement.
const PLACEMENT: Duration = Duration::from_secs(5);

/// The server the checks talk to.
struct Target {
    client: String,
    monitoring: String,
    websocket: Option<String>,
    max_payload: usize,
    /// The token, or a user's credentials.
    credentials: xtask_clients::Credentials,
    /// The CA (and client certificate) of a TLS server.
    tls: Option<xtask_clients::Tls>,
    /// The cluster's nodes; empty for a single server.
    nodes: Vec<Node>,
}

impl Target {
    /// `options` with the server's TLS, if it serves TLS.
    fn options(&self, options: async_nats::ConnectOptions) -> async_nats::ConnectOptions {
        xtask_clients::with_tls(options, self.tls.as_ref())
    }

    /// How many copies of a stream the server keeps: one per node.
    fn replicas(&self) -> usize {
        self.nodes.len().max(1)
    }

    /// Creates a file stream `name` on `subject`, with a copy on every node.
    async fn create_stream(
        &self,
        js: &jetstream::Context,
        name: &str,
        subject: &str,
    ) -> Result<jetstream::stream::Stream> {
        let config = jetstream::stream::Config {
            name: name.to_string(),
            subjects: vec![subject.to_string()],
            storage: StorageType::File,
            num_replicas: self.replicas(),
            ..Default::default()
        };
        // Just after a cluster has formed, its meta leader may not count every peer online for
        // placement yet ("no suitable peers for placement, peer offline"): that passes within
        // a second or two, so the creation is asked again until it does, for a while.
        let deadline = Instant::now() + PLACEMENT;
        loop {
            match js.create_stream(config.clone()).await {
                Err(e)
                    if e.to_string().contains("no suitable peers") && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                created => {
                    return created.with_context(|| {
                        format!(
                            "cannot create the file stream {name} with {}",
                            checks::counted(&json!(self.replicas()), "replica")
                        )
                    });
                }
            }
        }
    }
}

struct Outcome {
    name: &'static str,
    elapsed: Duration,
    failure: Option<String>,
    /// What a check that passed has to tell.
    note: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let from_env = || -> anyhow::Result<_> {
        Ok((
            xtask_clients::Tls::from_env()?,
            xtask_clients::Credentials::from_env()?,
        ))
    };
    let (tls, credentials) = match from_env() {
        Ok(them) => them,
        Err(e) => {
            eprintln!("error: {}", xtask_probe::error_text(&e));
            return ExitCode::FAILURE;
        }
    };
    let target = Target {
        tls,
        client: args.client,
        monitoring: args.monitoring,
        websocket: args.websocket,
        max_payload: args.max_payload,
        credentials,
        nodes: args.nodes,
    };
    let Some(runtime) = xtask_clients::runtime(Threads::Current) else {
        return ExitCode::FAILURE;
    };
    let (outcomes, interrupted) = runtime.block_on(run_checks(&target, args.failover, !args.json));
    if interrupted {
        eprintln!("interrupted: the remaining checks were not run");
        // 128 + SIGINT, as a shell reports a program Ctrl-C ended.
        return ExitCode::from(130);
    }
    let failed = outcomes.iter().filter(|o| o.failure.is_some()).count();
    let passed = outcomes.len() - failed;
    if args.json {
        let checks: Vec<Value> = outcomes
            .iter()
            .map(|o| json!({"name": o.name, "passed": o.failure.is_none(), "ms": millis(o.elapsed), "error": o.failure, "note": o.note}))
            .collect();
        println!(
            "{}",
            json!({"checks": checks, "passed": passed, "failed": failed})
        );
    } else {
        println!("{passed} passed, {failed} failed");
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// The outcome of every check, or of those run before Ctrl-C (then `true`).
async fn run_checks(
    target: &Target,
    failover: Option<failover::Stop>,
    print: bool,
) -> (Vec<Outcome>, bool) {
    let id = unique_id();
    let mut outcomes = Vec::new();
    // Ctrl-C lets the check under way finish (each is bounded, and the JetStream one deletes
    // its stream) and skips the rest, so an interrupted run leaves nothing on the server.
    let interrupted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = interrupted.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    });
    macro_rules! check {
        ($name:literal, $check:expr) => {
            check!($name, CHECK_DEADLINE, async { $check.await.map(|()| None) })
        };
        ($name:literal, $deadline:expr, $check:expr) => {
            if interrupted.load(std::sync::atomic::Ordering::SeqCst) {
                return (outcomes, true);
            }
            let outcome = timed($name, $deadline, $check).await;
            if print {
                report(&outcome);
            }
            outcomes.push(outcome);
        };
    }
    check!("monitoring endpoints", checks::monitoring(target));
    match target.credentials {
        xtask_clients::Credentials::Token(_) => {
            check!("token authentication", checks::authentication(target));
        }
        xtask_clients::Credentials::Creds(..) => {
            check!("user authentication", checks::authentication(target));
        }
    }
    if target.tls.is_some() {
        check!("tls", checks::tls(target));
    }
    check!("publish/subscribe", checks::publish_subscribe(target, &id));
    check!("payload size limit", checks::payload_limit(target, &id));
    check!("request/reply", checks::request_reply(target, &id));
    check!("no responders", checks::no_responders(target, &id));
    check!("jetstream", checks::jetstream_round_trip(target, &id));
    check!("websocket", checks::websocket(target, &id));
    if !target.nodes.is_empty() {
        check!("routes", cluster::routes(target));
        check!("meta group", cluster::meta_group(target));
        check!(
            "replicas on every node",
            cluster::replicas_on_every_node(target, &id)
        );
    }
    if let Some(stop) = failover {
        check!(
            "failover",
            failover::DEADLINE + checks::JETSTREAM_CLEANUP,
            async { failover::failover(target, &id, stop).await.map(Some) }
        );
    }
    (
        outcomes,
        interrupted.load(std::sync::atomic::Ordering::SeqCst),
    )
}

async fn timed(
    name: &'static str,
    deadline: Duration,
    check: impl Future<Output = Result<Option<String>>>,
) -> Outcome {
    let start = Instant::now();
    let (failure, note) = match tokio::time::timeout(deadline, check).await {
        Ok(Ok(note)) => (None, note),
        Ok(Err(e)) => (Some(xtask_probe::error_text(&e)), None),
        Err(_) => (
            Some(format!(
                "expected an answer within {} s, seen none",
                deadline.as_secs()
            )),
            None,
        ),
    };
    Outcome {
        name,
        elapsed: start.elapsed(),
        failure,
        note,
    }
}

fn report(outcome: &Outcome) {
    let ms = millis(outcome.elapsed);
    match &outcome.failure {
        None => println!("✓ {:<22} {ms:>7.1} ms", outcome.name),
        Some(why) => println!("✗ {:<22} {ms:>7.1} ms  {why}", outcome.name),
    }
    if let Some(note) = &outcome.note {
        println!("  {note}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_shown_in_tenths_of_a_millisecond() {
        assert_eq!(millis(Duration::from_micros(12_345)), 12.3);
        assert_eq!(millis(Duration::ZERO), 0.0);
    }
}

//! The checks of `cargo xtask smoke`, run against one server with a real NATS client.
//!
//! A crate of its own because the client and its async runtime double the xtask's cold build:
//! `cargo xtask smoke` builds and runs it on first use, so `cargo xtask run` stays quick to
//! compile. The xtask finds (or starts) the server and passes its addresses as arguments and
//! its token in the environment, never on the command line.

use std::future::Future;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use async_nats::jetstream::{self, consumer::pull, stream::StorageType};
use clap::Parser;
use futures_util::StreamExt;
use serde_json::{Value, json};

mod failover;
#[path = "../../server.rs"]
mod server;

use server::unique_id;

/// How long one check may take before it counts as failed: deadlines for a loaded machine,
/// never a measure of speed. Longer than the JetStream check's steps, clean-up and connection
/// together.
const CHECK_DEADLINE: Duration = Duration::from_secs(20);
/// Within the JetStream check: its steps, then the clean-up, each with a deadline of its own,
/// so that a slow step can never skip deleting the stream.
const JETSTREAM_STEPS: Duration = Duration::from_secs(12);
const JETSTREAM_CLEANUP: Duration = Duration::from_secs(5);
/// How long a message or a reply may take to arrive.
const DELIVERY: Duration = Duration::from_secs(5);

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
    /// The token, from the environment only.
    #[arg(skip = std::env::var("NATS_TOKEN").unwrap_or_default())]
    token: String,
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

/// The server the checks talk to.
struct Target {
    client: String,
    monitoring: String,
    websocket: Option<String>,
    max_payload: usize,
    token: String,
    /// The cluster's nodes; empty for a single server.
    nodes: Vec<Node>,
}

impl Target {
    /// How many copies of a stream the server keeps: one per node.
    fn replicas(&self) -> usize {
        self.nodes.len().max(1)
    }

    /// A file stream `name` on `subject`, with a copy on every node.
    fn stream_config(&self, name: &str, subject: &str) -> jetstream::stream::Config {
        jetstream::stream::Config {
            name: name.to_string(),
            subjects: vec![subject.to_string()],
            storage: StorageType::File,
            num_replicas: self.replicas(),
            ..Default::default()
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
    let target = Target {
        client: args.client,
        monitoring: args.monitoring,
        websocket: args.websocket,
        max_payload: args.max_payload,
        token: args.token,
        nodes: args.nodes,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
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
    check!("monitoring endpoints", monitoring(target));
    check!("token authentication", authentication(target));
    check!("publish/subscribe", publish_subscribe(target, &id));
    check!("payload size limit", payload_limit(target, &id));
    check!("request/reply", request_reply(target, &id));
    check!("no responders", no_responders(target, &id));
    check!("jetstream", jetstream_round_trip(target, &id));
    check!("websocket", websocket(target, &id));
    if !target.nodes.is_empty() {
        check!("routes", routes(target));
        check!("meta group", meta_group(target));
        check!(
            "replicas on every node",
            replicas_on_every_node(target, &id)
        );
    }
    if let Some(stop) = failover {
        check!("failover", failover::DEADLINE + JETSTREAM_CLEANUP, async {
            failover::failover(target, &id, stop).await.map(Some)
        });
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

/// A count the server reported, and its noun, singular for one: `1 consumer`, `3 messages`.
fn counted(value: &Value, noun: &str) -> String {
    if *value == 1 {
        format!("1 {noun}")
    } else {
        format!("{value} {noun}s")
    }
}

/// Fails with "expected …, seen …" unless `ok`.
fn expect(ok: bool, expected: impl std::fmt::Display, seen: impl std::fmt::Display) -> Result<()> {
    if !ok {
        bail!("expected {expected}, seen {seen}");
    }
    Ok(())
}

/// GETs a monitoring URL: its status and body.
async fn get(url: String) -> Result<(u16, String)> {
    tokio::task::spawn_blocking(move || xtask_probe::get(&xtask_probe::monitoring_agent(), &url))
        .await?
}

/// GETs a monitoring URL that must answer with JSON.
async fn get_json(url: String) -> Result<Value> {
    tokio::task::spawn_blocking(move || {
        xtask_probe::get_json(&xtask_probe::monitoring_agent(), &url)
    })
    .await?
}

async fn monitoring(target: &Target) -> Result<()> {
    let base = &target.monitoring;
    let (status, body) = get(format!("{base}/healthz")).await?;
    let health: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    expect(
        status == 200 && health["status"] == "ok",
        r#"/healthz 200 {"status":"ok"}"#,
        format!("{status} {}", body.trim()),
    )?;

    let varz = get_json(format!("{base}/varz")).await?;
    let version = varz["version"].as_str().unwrap_or_default();
    expect(
        version.starts_with("2.10."),
        "/varz version 2.10.x",
        format!("`{version}`"),
    )?;

    let jsz = get_json(format!("{base}/jsz")).await?;
    let enabled =
        jsz["disabled"] != true && jsz["config"]["max_storage"].as_u64().is_some_and(|n| n > 0);
    expect(enabled, "/jsz to show JetStream enabled", jsz.to_string())
}

async fn connect(target: &Target) -> Result<async_nats::Client> {
    async_nats::ConnectOptions::with_token(target.token.clone())
        .name("cargo xtask smoke")
        .connection_timeout(Duration::from_secs(5))
        .connect(&target.client)
        .await
        .with_context(|| format!("cannot connect to {} with the token", target.client))
}

async fn authentication(target: &Target) -> Result<()> {
    connect(target).await?.flush().await?;
    refuses_without_the_token(&target.client).await
}

/// A client with no token, and one with a wrong token, are refused at `url` with an
/// authorization violation.
async fn refuses_without_the_token(url: &str) -> Result<()> {
    let attempts = [
        ("no token", async_nats::ConnectOptions::new()),
        (
            "a wrong token",
            async_nats::ConnectOptions::with_token("nats_wrong".into()),
        ),
    ];
    for (what, options) in attempts {
        let refused = options
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await;
        let seen = match &refused {
            Ok(_) => "a connection".to_string(),
            Err(e) => format!("`{e}`"),
        };
        let violation = matches!(&refused, Err(e) if e.kind() == async_nats::ConnectErrorKind::AuthorizationViolation);
        expect(
            violation,
            format!("a client with {what} refused at {url} with an authorization violation"),
            seen,
        )?;
    }
    Ok(())
}

/// A payload published on `publisher` arrives at `subscriber`, another connection, exactly
/// once and byte for byte: the next message after it is the marker published right behind
/// it, not a second copy.
async fn arrives_once(
    publisher: &async_nats::Client,
    subscriber: &async_nats::Client,
    subject: String,
    payload: Vec<u8>,
) -> Result<()> {
    let mut subscription = subscriber.subscribe(subject.clone()).await?;
    server::read_by_the_server(subscriber, "smoke", DELIVERY).await?;
    publisher
        .publish(subject.clone(), payload.clone().into())
        .await?;
    publisher.publish(subject, "end".into()).await?;
    publisher.flush().await?;
    let mut next = async || {
        tokio::time::timeout(DELIVERY, subscription.next())
            .await
            .ok()
            .flatten()
    };
    let Some(first) = next().await else {
        bail!(
            "expected the message at the other connection within {} s, seen none",
            DELIVERY.as_secs()
        );
    };
    expect(
        first.payload.as_ref() == payload.as_slice(),
        format!("{} bytes as sent", payload.len()),
        format!("{} bytes that differ", first.payload.len()),
    )?;
    let second = next().await;
    expect(
        second.is_some_and(|m| m.payload.as_ref() == b"end"),
        "the message once",
        "it twice, or not the marker behind it",
    )
}

async fn publish_subscribe(target: &Target, id: &str) -> Result<()> {
    let (publisher, subscriber) = (connect(target).await?, connect(target).await?);
    arrives_once(
        &publisher,
        &subscriber,
        format!("smoke.{id}.pubsub"),
        b"hello, \x00\xff world".to_vec(),
    )
    .await
}

/// The server takes a payload of exactly the size its config allows and refuses one byte more:
/// the client refuses on the server's word (its INFO), which must be the config's, and the
/// server itself refuses a client that sends it anyway.
async fn payload_limit(target: &Target, id: &str) -> Result<()> {
    let (publisher, subscriber) = (connect(target).await?, connect(target).await?);
    let max = target.max_payload;
    let advertised = publisher.server_info().max_payload;
    expect(
        advertised == max,
        format!("a limit of {max} bytes, as the config's max_payload says"),
        format!("{advertised} bytes in the server's INFO"),
    )?;
    let exactly: Vec<u8> = (0..max).map(|i| (i % 251) as u8).collect();
    arrives_once(
        &publisher,
        &subscriber,
        format!("smoke.{id}.large"),
        exactly,
    )
    .await?;
    let over = publisher
        .publish(format!("smoke.{id}.large"), vec![0u8; max + 1].into())
        .await;
    let refused = matches!(&over, Err(e) if e.kind() == async_nats::client::PublishErrorKind::MaxPayloadExceeded);
    expect(
        refused,
        format!("the client to refuse a {}-byte payload", max + 1),
        "it sent it",
    )?;
    let said = oversized_publish(target, max + 1).await?;
    expect(
        said.contains("Maximum Payload Violation"),
        "the server to answer an oversized PUB with -ERR 'Maximum Payload Violation'",
        format!("`{}`", said.trim()),
    )
}

/// Announces a `size`-byte message over the bare protocol, as a client without the check
/// would, and returns the server's answer.
async fn oversized_publish(target: &Target, size: usize) -> Result<String> {
    let (client, token) = (target.client.clone(), target.token.clone());
    tokio::task::spawn_blocking(move || -> Result<String> {
        let mut connection = xtask_probe::Connection::open(&client, &token, "cargo xtask smoke")?;
        connection.send(&format!("PUB smoke.oversized {size}\r\n"))?;
        connection.line()
    })
    .await?
}

async fn request_reply(target: &Target, id: &str) -> Result<()> {
    let (requester, responder) = (connect(target).await?, connect(target).await?);
    let subject = format!("smoke.{id}.echo");
    let mut requests = responder.subscribe(subject.clone()).await?;
    server::read_by_the_server(&responder, "smoke", DELIVERY).await?;
    let answering = tokio::spawn(async move {
        if let Some(request) = requests.next().await
            && let Some(reply) = request.reply
        {
            let _ = responder
                .publish(reply, [b"re: ", &request.payload[..]].concat().into())
                .await;
            let _ = responder.flush().await;
        }
    });
    let answer = tokio::time::timeout(DELIVERY, requester.request(subject, "ping".into())).await;
    answering.abort();
    let answer = match answer {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
            bail!("expected a reply from the other connection, seen \"no responders\"")
        }
        Ok(Err(e)) => return Err(e).context("the request failed"),
        Err(_) => bail!(
            "expected a reply from the other connection within {} s, seen none",
            DELIVERY.as_secs()
        ),
    };
    expect(
        answer.payload.as_ref() == b"re: ping",
        "the reply `re: ping`",
        String::from_utf8_lossy(&answer.payload),
    )
}

/// A request nobody listens to fails with "no responders", which the server says at once:
/// a request that times out instead means it did not.
async fn no_responders(target: &Target, id: &str) -> Result<()> {
    let client = connect(target).await?;
    let start = Instant::now();
    let answer = client
        .request(format!("smoke.{id}.nobody"), "anyone?".into())
        .await;
    let seen = match &answer {
        Ok(_) => "an answer".to_string(),
        Err(e) => format!("`{e}` after {} ms", start.elapsed().as_millis()),
    };
    let no_responders =
        matches!(&answer, Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders);
    expect(no_responders, "\"no responders\"", seen)
}

/// Stream, acknowledged publishes, a durable consumer with acks, the counts in `/jsz`; the
/// stream is deleted afterwards whatever happened.
async fn jetstream_round_trip(target: &Target, id: &str) -> Result<()> {
    let client = connect(target).await?;
    let js = jetstream::new(client);
    let stream = format!("SMOKE_{id}");
    let steps = stream_checks(target, &js, &stream, id);
    then_delete(&js, &stream, steps, JETSTREAM_STEPS).await?;
    expect(
        js.get_stream(&stream).await.is_err(),
        format!("stream {stream} gone"),
        "it still there",
    )
}

fn bail_timeout<T>(deadline: Duration) -> Result<T> {
    bail!(
        "expected the JetStream steps within {} s, seen them unfinished",
        deadline.as_secs()
    )
}

async fn stream_checks(
    target: &Target,
    js: &jetstream::Context,
    name: &str,
    id: &str,
) -> Result<()> {
    const COUNT: u64 = 10;
    let subject = format!("smoke.{id}.js");
    let config = target.stream_config(name, &subject);
    let mut stream = js
        .create_stream(config)
        .await
        .context("cannot create a file stream")?;
    server::stream_led(&mut stream, Duration::from_secs(10)).await;
    for n in 1..=COUNT {
        let ack = async {
            js.publish(subject.clone(), format!("event {n}").into())
                .await?
                .await
        }
        .await
        .with_context(|| format!("expected an acknowledgement of event {n} from {name}"))?;
        expect(
            ack.sequence == n && ack.stream == name,
            format!("ack {name}#{n}"),
            format!("ack {}#{}", ack.stream, ack.sequence),
        )?;
    }
    let mut consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("smoke".into()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await?;
    server::consumer_led(&mut consumer, Duration::from_secs(10)).await;
    let mut messages = consumer
        .fetch()
        .max_messages(COUNT as usize)
        .expires(DELIVERY)
        .messages()
        .await?;
    let mut read = Vec::new();
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| anyhow::anyhow!("{e}"))?;
        read.push(String::from_utf8_lossy(&message.payload).into_owned());
        message
            .double_ack()
            .await
            .map_err(|e| anyhow::anyhow!("cannot ack: {e}"))?;
    }
    let want: Vec<String> = (1..=COUNT).map(|n| format!("event {n}")).collect();
    expect(
        read == want,
        format!("{COUNT} messages in order"),
        format!("{read:?}"),
    )?;

    let jsz = get_json(format!(
        "{}/jsz?streams=true&consumers=true",
        target.monitoring
    ))
    .await?;
    let state = stream_state(&jsz, name);
    let messages = &state["messages"];
    let consumers = &state["consumer_count"];
    expect(
        *messages == COUNT && *consumers == 1,
        format!("/jsz to show {name} with {COUNT} messages and 1 consumer"),
        format!(
            "{}, {}",
            counted(messages, "message"),
            counted(consumers, "consumer")
        ),
    )
}

/// Every node has routes to every other node.
async fn routes(target: &Target) -> Result<()> {
    let names: Vec<&str> = target.nodes.iter().map(|n| n.name.as_str()).collect();
    for node in &target.nodes {
        let name = &node.name;
        let routez = get_json(format!("{}/routez", node.monitoring)).await?;
        let mut seen: Vec<String> = routez["routes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|route| route["remote_name"].as_str().map(str::to_string))
            .collect();
        seen.sort();
        seen.dedup();
        let others: Vec<&str> = names.iter().copied().filter(|n| n != name).collect();
        expect(
            seen == others,
            format!("{name} routed to {}", others.join(", ")),
            format!("routes to [{}]", seen.join(", ")),
        )?;
    }
    Ok(())
}

/// Every node names the same meta leader and cluster size, and that leader sees every other
/// node as a current peer: a node that only believes itself the leader is not enough.
async fn meta_group(target: &Target) -> Result<()> {
    let mut views = Vec::new();
    for node in &target.nodes {
        let jsz = get_json(format!("{}/jsz", node.monitoring)).await?;
        views.push((node.name.as_str(), jsz["meta_cluster"].clone()));
    }
    let leaders: Vec<String> = views
        .iter()
        .map(|(name, meta)| format!("{name}: {}", meta["leader"].as_str().unwrap_or("none")))
        .collect();
    let leader = views[0].1["leader"].as_str().unwrap_or_default();
    expect(
        !leader.is_empty() && views.iter().all(|(_, meta)| meta["leader"] == leader),
        "every node to name the same meta leader",
        leaders.join(", "),
    )?;
    let (_, meta) = views
        .iter()
        .find(|(name, _)| *name == leader)
        .with_context(|| format!("the meta leader {leader} is not one of the nodes"))?;
    let peers = meta["replicas"].as_array().cloned().unwrap_or_default();
    let current = peers.iter().filter(|p| p["current"] == true).count();
    expect(
        meta["cluster_size"] == target.nodes.len() && current + 1 == target.nodes.len(),
        format!(
            "meta leader {leader} with all {} nodes current",
            target.nodes.len()
        ),
        format!(
            "cluster size {}, {}",
            meta["cluster_size"],
            counted(&current.into(), "current peer")
        ),
    )
}

/// A stream with a replica on every node, written through one node: every node's own
/// replica (its `/jsz`) reports every message. Reading through a node would be forwarded to
/// the stream's leader and prove nothing about the others.
async fn replicas_on_every_node(target: &Target, id: &str) -> Result<()> {
    const COUNT: u64 = 10;
    let client = connect(target).await?;
    let js = jetstream::new(client);
    let name = format!("SMOKE_R_{id}");
    let subject = format!("smoke.{id}.replicated");
    let steps = async {
        let config = target.stream_config(&name, &subject);
        let mut stream = js
            .create_stream(config)
            .await
            .context("cannot create a replicated stream")?;
        // Until its replicas elect a leader, a publish finds no stream.
        server::stream_led(&mut stream, Duration::from_secs(10)).await;
        for n in 1..=COUNT {
            js.publish(subject.clone(), format!("event {n}").into())
                .await?
                .await?;
        }
        for node in &target.nodes {
            let mut seen = Value::Null;
            for _ in 0..100 {
                let jsz = get_json(format!("{}/jsz?streams=true", node.monitoring)).await?;
                seen = stream_state(&jsz, &name)["messages"].clone();
                if seen == COUNT {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            expect(
                seen == COUNT,
                format!("{}'s replica of {name} with {COUNT} messages", node.name),
                counted(&seen, "message"),
            )?;
        }
        Ok::<(), anyhow::Error>(())
    };
    then_delete(&js, &name, steps, JETSTREAM_STEPS).await
}

/// The state of stream `name` (`messages`, `consumer_count`, ...) in a node's
/// `/jsz?streams=true`: that node's own replica. Null when the node has none.
fn stream_state(jsz: &Value, name: &str) -> Value {
    jsz["account_details"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|account| account["stream_detail"].as_array().into_iter().flatten())
        .find(|stream| stream["name"] == name)
        .map_or(Value::Null, |stream| stream["state"].clone())
}

/// Runs `steps` on stream `name` within `deadline`, then deletes the stream within a deadline
/// of its own, whatever the steps did: a slow or failed step never leaves the stream behind.
async fn then_delete<T>(
    js: &jetstream::Context,
    name: &str,
    steps: impl Future<Output = Result<T>>,
    deadline: Duration,
) -> Result<T> {
    let result = tokio::time::timeout(deadline, steps)
        .await
        .unwrap_or_else(|_| bail_timeout(deadline));
    let deleted = tokio::time::timeout(JETSTREAM_CLEANUP, js.delete_stream(name)).await;
    let value = result?;
    deleted
        .map_err(|_| {
            anyhow::anyhow!(
                "expected stream {name} deleted within {} s",
                JETSTREAM_CLEANUP.as_secs()
            )
        })?
        .with_context(|| format!("cannot delete stream {name}"))?;
    Ok(value)
}

/// The WebSocket listener refuses clients without the token, as the client port does, and
/// messages cross between a TCP client and a WebSocket client both ways: what a browser app
/// talking to a backend relies on.
async fn websocket(target: &Target, id: &str) -> Result<()> {
    let url = target
        .websocket
        .as_deref()
        .context("the server has no WebSocket listener")?;
    expect(
        url.starts_with("ws://") || url.starts_with("wss://"),
        "a ws:// or wss:// URL",
        format!("`{url}`"),
    )?;
    refuses_without_the_token(url).await?;
    let browser = async_nats::ConnectOptions::with_token(target.token.clone())
        .name("cargo xtask smoke (websocket)")
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .with_context(|| format!("cannot connect to {url} with the token"))?;
    let backend = connect(target).await?;
    arrives_once(
        &backend,
        &browser,
        format!("smoke.{id}.to_ws"),
        b"from tcp to websocket".to_vec(),
    )
    .await
    .context("from the TCP client to the WebSocket client")?;
    arrives_once(
        &browser,
        &backend,
        format!("smoke.{id}.from_ws"),
        b"from websocket to tcp".to_vec(),
    )
    .await
    .context("from the WebSocket client to the TCP client")
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

    #[test]
    fn failures_say_what_was_expected_and_what_was_seen() {
        assert!(expect(true, "x", "y").is_ok());
        let err = expect(false, "a reply", "none").unwrap_err();
        assert_eq!(err.to_string(), "expected a reply, seen none");
    }

    #[test]
    fn durations_are_shown_in_tenths_of_a_millisecond() {
        assert_eq!(millis(Duration::from_micros(12_345)), 12.3);
        assert_eq!(millis(Duration::ZERO), 0.0);
    }
}

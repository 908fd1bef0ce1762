//! `cargo xtask smoke`: proves that the server works, with a real client, check by check.

use std::future::Future;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use async_nats::jetstream::{self, consumer::pull, stream::StorageType};
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::config::{self, Listen};
use crate::layout::Layout;
use crate::server::{self, Endpoints, Mode};
use crate::setup::{ListenArgs, Setup, SourceArgs};
use crate::token;

/// How long one check may take before it counts as failed.
const CHECK_DEADLINE: Duration = Duration::from_secs(5);

/// Prove the server works: health, auth, pub/sub, request/reply, JetStream, WebSocket.
///
/// Runs against the server of this checkout with its token. If none is running, starts a
/// temporary one (its own directory, free ports, a token of its own), runs the checks and
/// stops it. Every check runs even when one fails; the exit code is non-zero if any failed.
#[derive(Debug, clap::Args)]
pub(crate) struct Smoke {
    /// Print the results as one JSON document on stdout.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    source: SourceArgs,
}

/// The server the checks talk to.
struct Target {
    endpoints: Endpoints,
    token: String,
}

struct Outcome {
    name: &'static str,
    elapsed: Duration,
    failure: Option<String>,
}

impl Smoke {
    pub(crate) fn run(&self, layout: &Layout) -> Result<ExitCode> {
        let (target, temporary) = match server::running(layout)? {
            Some(pid) => {
                let endpoints = Endpoints::of(layout, pid).with_context(|| {
                    format!("the running nats-server (pid {pid}) has not written its ports file")
                })?;
                (
                    Target {
                        endpoints,
                        token: token::load(&layout.env_file())?,
                    },
                    None,
                )
            }
            None => {
                Setup::for_run(self.source.clone(), ListenArgs::default()).run(layout)?;
                let temporary = Temporary::start(layout)?;
                (
                    Target {
                        endpoints: temporary.endpoints.clone(),
                        token: temporary.token.clone(),
                    },
                    Some(temporary),
                )
            }
        };
        if !self.json {
            let which = if temporary.is_some() {
                "a temporary server"
            } else {
                "the running server"
            };
            eprintln!("checking {which} at {}", target.endpoints.client);
        }

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let outcomes = runtime.block_on(run_checks(&target, !self.json));
        drop(runtime);
        let server = match &temporary {
            Some(t) => json!({"temporary": true, "pid": t.pid, "dir": t.dir.path()}),
            None => json!({"temporary": false}),
        };
        drop(temporary);

        let failed = outcomes.iter().filter(|o| o.failure.is_some()).count();
        let passed = outcomes.len() - failed;
        if self.json {
            let checks: Vec<Value> = outcomes
                .iter()
                .map(|o| json!({"name": o.name, "passed": o.failure.is_none(), "ms": millis(o.elapsed), "error": o.failure}))
                .collect();
            let report =
                json!({"checks": checks, "passed": passed, "failed": failed, "server": server});
            println!("{report}");
        } else {
            println!("{passed} passed, {failed} failed");
        }
        Ok(if failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

async fn run_checks(target: &Target, print: bool) -> Vec<Outcome> {
    let id = token::generate()
        .map(|t| t[5..13].to_string())
        .unwrap_or_else(|_| "smoke".into());
    let mut outcomes = Vec::new();
    macro_rules! check {
        ($name:literal, $check:expr) => {
            let outcome = timed($name, $check).await;
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
    outcomes
}

async fn timed(name: &'static str, check: impl Future<Output = Result<()>>) -> Outcome {
    let start = Instant::now();
    let result = tokio::time::timeout(CHECK_DEADLINE, check).await;
    let failure = match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("{e:#}")),
        Err(_) => Some(format!(
            "expected an answer within {} s, seen none",
            CHECK_DEADLINE.as_secs()
        )),
    };
    Outcome {
        name,
        elapsed: start.elapsed(),
        failure,
    }
}

fn report(outcome: &Outcome) {
    let ms = millis(outcome.elapsed);
    match &outcome.failure {
        None => println!("✓ {:<22} {ms:>7.1} ms", outcome.name),
        Some(why) => println!("✗ {:<22} {ms:>7.1} ms  {why}", outcome.name),
    }
}

/// Fails with "expected …, seen …" unless `ok`.
fn expect(ok: bool, expected: impl std::fmt::Display, seen: impl std::fmt::Display) -> Result<()> {
    if !ok {
        bail!("expected {expected}, seen {seen}");
    }
    Ok(())
}

async fn get(url: String) -> Result<(u16, String)> {
    tokio::task::spawn_blocking(move || {
        let mut response = server::quick_agent()
            .get(&url)
            .call()
            .with_context(|| format!("GET {url}"))?;
        let body = response.body_mut().read_to_string()?;
        Ok((response.status().as_u16(), body))
    })
    .await?
}

async fn monitoring(target: &Target) -> Result<()> {
    let base = &target.endpoints.monitoring;
    let (status, body) = get(format!("{base}/healthz")).await?;
    let health: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    expect(
        status == 200 && health["status"] == "ok",
        r#"/healthz 200 {"status":"ok"}"#,
        format!("{status} {}", body.trim()),
    )?;

    let (_, body) = get(format!("{base}/varz")).await?;
    let varz: Value = serde_json::from_str(&body).context("/varz is not JSON")?;
    let version = varz["version"].as_str().unwrap_or_default();
    expect(
        version.starts_with("2.10."),
        "/varz version 2.10.x",
        format!("`{version}`"),
    )?;

    let (_, body) = get(format!("{base}/jsz")).await?;
    let jsz: Value = serde_json::from_str(&body).context("/jsz is not JSON")?;
    let enabled =
        jsz["disabled"] != true && jsz["config"]["max_storage"].as_u64().is_some_and(|n| n > 0);
    expect(
        enabled,
        "/jsz to show JetStream enabled",
        body.split_whitespace().collect::<String>(),
    )
}

async fn connect(target: &Target) -> Result<async_nats::Client> {
    async_nats::ConnectOptions::with_token(target.token.clone())
        .name("cargo xtask smoke")
        .connection_timeout(Duration::from_secs(2))
        .connect(&target.endpoints.client)
        .await
        .with_context(|| {
            format!(
                "cannot connect to {} with the token",
                target.endpoints.client
            )
        })
}

async fn authentication(target: &Target) -> Result<()> {
    connect(target).await?.flush().await?;
    let url = &target.endpoints.client;
    let attempts = [
        ("no token", async_nats::ConnectOptions::new()),
        (
            "a wrong token",
            async_nats::ConnectOptions::with_token("nats_wrong".into()),
        ),
    ];
    for (what, options) in attempts {
        let refused = options
            .connection_timeout(Duration::from_secs(2))
            .connect(url)
            .await;
        let seen = match &refused {
            Ok(_) => "a connection".to_string(),
            Err(e) => format!("`{e}`"),
        };
        let violation = matches!(&refused, Err(e) if e.kind() == async_nats::ConnectErrorKind::AuthorizationViolation);
        expect(
            violation,
            format!("a client with {what} refused with an authorization violation"),
            seen,
        )?;
    }
    Ok(())
}

/// A payload arrives exactly once, byte for byte: the next message after it is the marker
/// published right behind it, not a second copy.
async fn arrives_once(
    client: &async_nats::Client,
    subject: String,
    payload: Vec<u8>,
) -> Result<()> {
    let mut subscriber = client.subscribe(subject.clone()).await?;
    client.flush().await?;
    client
        .publish(subject.clone(), payload.clone().into())
        .await?;
    client.publish(subject, "end".into()).await?;
    client.flush().await?;
    let first = subscriber.next().await.context("the subscription ended")?;
    expect(
        first.payload.as_ref() == payload.as_slice(),
        format!("{} bytes as sent", payload.len()),
        format!("{} bytes that differ", first.payload.len()),
    )?;
    let second = subscriber.next().await.context("the subscription ended")?;
    expect(
        second.payload.as_ref() == b"end",
        "the message once",
        "it twice",
    )
}

async fn publish_subscribe(target: &Target, id: &str) -> Result<()> {
    let client = connect(target).await?;
    arrives_once(
        &client,
        format!("smoke.{id}.pubsub"),
        b"hello, \x00\xff world".to_vec(),
    )
    .await
}

async fn payload_limit(target: &Target, id: &str) -> Result<()> {
    let client = connect(target).await?;
    let max = client.server_info().max_payload;
    let near_max: Vec<u8> = (0..max - 1024).map(|i| (i % 251) as u8).collect();
    arrives_once(&client, format!("smoke.{id}.large"), near_max).await?;
    let over = client
        .publish(format!("smoke.{id}.large"), vec![0u8; max + 1].into())
        .await;
    let refused = matches!(&over, Err(e) if e.kind() == async_nats::client::PublishErrorKind::MaxPayloadExceeded);
    expect(
        refused,
        format!("a {}-byte payload refused", max + 1),
        "it accepted",
    )
}

async fn request_reply(target: &Target, id: &str) -> Result<()> {
    let client = connect(target).await?;
    let subject = format!("smoke.{id}.echo");
    let mut requests = client.subscribe(subject.clone()).await?;
    client.flush().await?;
    let responder = client.clone();
    let answering = tokio::spawn(async move {
        if let Some(request) = requests.next().await
            && let Some(reply) = request.reply
        {
            let _ = responder
                .publish(reply, [b"re: ", &request.payload[..]].concat().into())
                .await;
        }
    });
    let answer = tokio::time::timeout(
        Duration::from_secs(2),
        client.request(subject, "ping".into()),
    )
    .await
    .context("expected a reply within 2 s, seen none")??;
    answering.abort();
    expect(
        answer.payload.as_ref() == b"re: ping",
        "the reply `re: ping`",
        String::from_utf8_lossy(&answer.payload),
    )
}

async fn no_responders(target: &Target, id: &str) -> Result<()> {
    let client = connect(target).await?;
    let start = Instant::now();
    let answer = client
        .request(format!("smoke.{id}.nobody"), "anyone?".into())
        .await;
    let elapsed = start.elapsed();
    let seen = match &answer {
        Ok(_) => "an answer".to_string(),
        Err(e) => format!("`{e}` after {} ms", elapsed.as_millis()),
    };
    let no_responders =
        matches!(&answer, Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders);
    expect(
        no_responders && elapsed < Duration::from_secs(1),
        "\"no responders\" within 1 s",
        seen,
    )
}

/// Stream, acknowledged publishes, a durable consumer with acks, the counts in `/jsz`; the
/// stream is deleted afterwards whatever happened.
async fn jetstream_round_trip(target: &Target, id: &str) -> Result<()> {
    let client = connect(target).await?;
    let js = jetstream::new(client);
    let stream = format!("SMOKE_{id}");
    let result = stream_checks(target, &js, &stream, id).await;
    let deleted = js.delete_stream(&stream).await;
    result?;
    deleted.with_context(|| format!("cannot delete stream {stream}"))?;
    expect(
        js.get_stream(&stream).await.is_err(),
        format!("stream {stream} gone"),
        "it still there",
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
    let config = jetstream::stream::Config {
        name: name.to_string(),
        subjects: vec![subject.clone()],
        storage: StorageType::File,
        ..Default::default()
    };
    let stream = js
        .create_stream(config)
        .await
        .context("cannot create a file stream")?;
    for n in 1..=COUNT {
        let ack = js
            .publish(subject.clone(), format!("event {n}").into())
            .await?
            .await?;
        expect(
            ack.sequence == n && ack.stream == name,
            format!("ack {name}#{n}"),
            format!("ack {}#{}", ack.stream, ack.sequence),
        )?;
    }
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("smoke".into()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer
        .fetch()
        .max_messages(COUNT as usize)
        .expires(Duration::from_secs(2))
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

    let (_, body) = get(format!(
        "{}/jsz?streams=true&consumers=true",
        target.endpoints.monitoring
    ))
    .await?;
    let jsz: Value = serde_json::from_str(&body).context("/jsz is not JSON")?;
    let ours = jsz["account_details"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|account| account["stream_detail"].as_array().into_iter().flatten())
        .find(|s| s["name"] == name)
        .cloned()
        .unwrap_or(Value::Null);
    let messages = &ours["state"]["messages"];
    let consumers = &ours["state"]["consumer_count"];
    expect(
        *messages == COUNT && *consumers == 1,
        format!("/jsz to show {name} with {COUNT} messages and 1 consumer"),
        format!("{messages} messages, {consumers} consumers"),
    )
}

async fn websocket(target: &Target, id: &str) -> Result<()> {
    let url = target
        .endpoints
        .websocket
        .as_deref()
        .context("the server has no WebSocket listener")?;
    let client = async_nats::ConnectOptions::with_token(target.token.clone())
        .connection_timeout(Duration::from_secs(2))
        .connect(url)
        .await
        .with_context(|| format!("cannot connect to {url} with the token"))?;
    arrives_once(
        &client,
        format!("smoke.{id}.ws"),
        b"over websocket".to_vec(),
    )
    .await
}

/// A server of its own for one smoke run: a temporary directory, ports the server picks, a
/// fresh token in its environment only. Stopped and deleted when dropped.
struct Temporary {
    dir: tempfile::TempDir,
    child: std::process::Child,
    pid: u32,
    endpoints: Endpoints,
    token: String,
}

impl Temporary {
    fn start(checkout: &Layout) -> Result<Temporary> {
        let dir = tempfile::Builder::new()
            .prefix("nats-smoke-")
            .tempdir()
            .context("cannot create a temporary directory")?;
        let layout = Layout::with_binary(dir.path().to_path_buf(), checkout.binary());
        std::fs::write(layout.config(), config::render(&Listen::anywhere_free()))?;
        let token = token::generate()?;
        let mut child = server::spawn(&layout, &token, Mode::Attached)?;
        match server::wait_ready(&mut child, &layout, &token, Duration::from_secs(10)) {
            Ok(endpoints) => Ok(Temporary {
                dir,
                pid: child.id(),
                child,
                endpoints,
                token,
            }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e.context("cannot start a temporary nats-server"))
            }
        }
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if let Err(e) = server::stop(self.pid, Duration::from_secs(10)) {
            eprintln!("warning: {e:#}");
        }
        let _ = self.child.wait();
    }
}

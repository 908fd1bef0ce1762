//! The checks any server must pass, alone or as a node of a cluster: health, auth, pub/sub,
//! the payload limit, request/reply, no responders, JetStream, WebSocket; with the steps the
//! cluster's checks and the failover check build on.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use async_nats::jetstream::{self, consumer::pull};
use futures_util::StreamExt;
use serde_json::Value;
use xtask_clients::server;
use xtask_clients::{get, get_json};

use crate::Target;

/// Within the JetStream check: its steps, then the clean-up, each with a deadline of its own,
/// so that a slow step can never skip deleting the stream.
pub(crate) const JETSTREAM_STEPS: Duration = Duration::from_secs(12);
pub(crate) const JETSTREAM_CLEANUP: Duration = Duration::from_secs(5);
/// How long a message or a reply may take to arrive.
const DELIVERY: Duration = Duration::from_secs(5);

/// A count the server reported, and its noun, singular for one: `1 consumer`, `3 messages`.
pub(crate) fn counted(value: &Value, noun: &str) -> String {
    if *value == 1 {
        format!("1 {noun}")
    } else {
        format!("{value} {noun}s")
    }
}

/// Fails with "expected …, seen …" unless `ok`.
pub(crate) fn expect(
    ok: bool,
    expected: impl std::fmt::Display,
    seen: impl std::fmt::Display,
) -> Result<()> {
    if !ok {
        bail!("expected {expected}, seen {seen}");
    }
    Ok(())
}

pub(crate) async fn monitoring(target: &Target) -> Result<()> {
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

pub(crate) async fn connect(target: &Target) -> Result<async_nats::Client> {
    target
        .options(target.credentials.options()?)
        .name("cargo xtask smoke")
        .connection_timeout(Duration::from_secs(5))
        .connect(&target.client)
        .await
        .with_context(|| {
            format!(
                "cannot connect to {} with {}",
                target.client,
                target.credentials.what()
            )
        })
}

pub(crate) async fn authentication(target: &Target) -> Result<()> {
    connect(target).await?.flush().await?;
    refuses_strangers(target, &target.client).await
}

/// Clients without what the target's own show are refused at `url`: see
/// [`refuses_without_the_token`] and [`refuses_other_users`].
async fn refuses_strangers(target: &Target, url: &str) -> Result<()> {
    match &target.credentials {
        xtask_clients::Credentials::Token(_) => refuses_without_the_token(target, url).await,
        xtask_clients::Credentials::Creds(_, creds) => {
            refuses_other_users(target, url, creds).await
        }
    }
}

/// Under accounts and users, a client without credentials, one with a token (operator mode
/// has none), and one showing the user's JWT but signing with another key are refused with
/// an authorization violation.
async fn refuses_other_users(target: &Target, url: &str, creds: &str) -> Result<()> {
    let xtask_probe::Auth::User { jwt, .. } = xtask_probe::Auth::from_creds(creds)? else {
        bail!("the credentials hold no user");
    };
    let other = xtask_probe::nkeys::KeyPair::generate(xtask_probe::nkeys::Kind::User)?;
    let forged = format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
        other.seed()
    );
    let attempts = [
        ("no credentials", async_nats::ConnectOptions::new()),
        (
            "a token",
            async_nats::ConnectOptions::with_token("nats_wrong".into()),
        ),
        (
            "the user's JWT signed for by another key",
            async_nats::ConnectOptions::new().credentials(&forged)?,
        ),
    ];
    refused_each(target, url, attempts).await
}

/// A client with no token, and one with a wrong token, are refused at `url` with an
/// authorization violation (over TLS when the server serves it, so that it is the token that
/// is refused).
async fn refuses_without_the_token(target: &Target, url: &str) -> Result<()> {
    let attempts = [
        ("no token", async_nats::ConnectOptions::new()),
        (
            "a wrong token",
            async_nats::ConnectOptions::with_token("nats_wrong".into()),
        ),
    ];
    refused_each(target, url, attempts).await
}

/// Each client of `attempts` (what it shows, and its options) is refused at `url` with an
/// authorization violation.
async fn refused_each(
    target: &Target,
    url: &str,
    attempts: impl IntoIterator<Item = (&str, async_nats::ConnectOptions)>,
) -> Result<()> {
    for (what, options) in attempts {
        let (refusal, seen) = attempt(target.options(options), url).await;
        expect(
            refusal
                .is_some_and(|e| e.kind() == async_nats::ConnectErrorKind::AuthorizationViolation),
            format!("a client with {what} refused at {url} with an authorization violation"),
            seen,
        )?;
    }
    Ok(())
}

/// A connection attempt at `url` that should be refused: the error if it was, and what was
/// seen, as a failure tells it.
async fn attempt(
    options: async_nats::ConnectOptions,
    url: &str,
) -> (Option<async_nats::ConnectError>, String) {
    match options
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await
    {
        Ok(_) => (None, "a connection".to_string()),
        Err(e) => {
            let seen = format!("`{e}`");
            (Some(e), seen)
        }
    }
}

/// Over TLS, the server refuses what it must: a client that speaks plaintext, a client that
/// trusts the system's CAs only (the server's certificate is the local CA's), and under mutual
/// TLS a client without a certificate; and its monitoring answers over HTTPS only.
pub(crate) async fn tls(target: &Target) -> Result<()> {
    let tls = target.tls.as_ref().context("the server serves no TLS")?;
    let url = &target.client;
    expect(
        url.starts_with("tls://") && target.monitoring.starts_with("https://"),
        "tls:// and https:// addresses",
        format!("{url} and {}", target.monitoring),
    )?;
    let varz = get_json(format!("{}/varz", target.monitoring)).await?;
    expect(
        varz["tls_required"] == true,
        "/varz tls_required: true",
        format!("tls_required: {}", varz["tls_required"]),
    )?;

    // The bare protocol without TLS: the server's INFO asks for it, and a CONNECT in clear
    // gets the connection closed.
    let (client, auth) = (url.clone(), target.credentials.probe()?);
    let plain = tokio::task::spawn_blocking(move || -> Result<()> {
        xtask_probe::Connection::open(&client, &auth, "cargo xtask smoke (plaintext)", None)?.ping()
    })
    .await?;
    expect(
        plain.is_err(),
        format!("a plaintext client refused at {url}"),
        "it answered PONG",
    )?;

    let credentials = target.credentials.options()?;
    let token = || credentials.clone();
    let mut attempts = Vec::new();
    // A server whose certificate a CA of its own issued: a client of the public CAs alone
    // does not trust it.
    if let Some(ca) = &tls.ca {
        attempts.push((
            "a client that trusts the system's CAs only",
            token().require_tls(true),
            "invalid peer certificate",
        ));
        // A certificate for another name than this machine's: verified for the address
        // connected to, it is refused.
        if tls.name.is_some() {
            attempts.push((
                "a client that verifies the address rather than the certificate's name",
                token().add_root_certificates(ca.clone()),
                "not valid for name",
            ));
        }
        // Under mutual TLS, one that trusts the CA but shows no certificate.
        if tls.client.is_some() {
            attempts.push((
                "a client without a certificate",
                token().add_root_certificates(ca.clone()),
                "CertificateRequired",
            ));
        }
    }
    for (what, options, error) in attempts {
        let (refusal, seen) = attempt(options, url).await;
        expect(
            refusal.is_some() && seen.contains(error),
            format!("{what} refused at {url} with `{error}`"),
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

pub(crate) async fn publish_subscribe(target: &Target, id: &str) -> Result<()> {
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
pub(crate) async fn payload_limit(target: &Target, id: &str) -> Result<()> {
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
    let (client, auth) = (target.client.clone(), target.credentials.probe()?);
    tokio::task::spawn_blocking(move || -> Result<String> {
        let trust = xtask_probe::default_trust();
        let mut connection =
            xtask_probe::Connection::open(&client, &auth, "cargo xtask smoke", trust)?;
        connection.send(&format!("PUB smoke.oversized {size}\r\n"))?;
        connection.line()
    })
    .await?
}

pub(crate) async fn request_reply(target: &Target, id: &str) -> Result<()> {
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
pub(crate) async fn no_responders(target: &Target, id: &str) -> Result<()> {
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
pub(crate) async fn jetstream_round_trip(target: &Target, id: &str) -> Result<()> {
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
    let mut stream = target.create_stream(js, name, &subject).await?;
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

/// The state of stream `name` (`messages`, `consumer_count`, ...) in a node's
/// `/jsz?streams=true`: that node's own replica. Null when the node has none.
pub(crate) fn stream_state(jsz: &Value, name: &str) -> Value {
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
pub(crate) async fn then_delete<T>(
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
pub(crate) async fn websocket(target: &Target, id: &str) -> Result<()> {
    let url = target
        .websocket
        .as_deref()
        .context("the server has no WebSocket listener")?;
    expect(
        url.starts_with("ws://") || url.starts_with("wss://"),
        "a ws:// or wss:// URL",
        format!("`{url}`"),
    )?;
    if target.tls.is_some() {
        expect(
            url.starts_with("wss://"),
            "a wss:// URL, as the server serves TLS",
            format!("`{url}`"),
        )?;
    }
    refuses_strangers(target, url).await?;
    let browser = target
        .options(target.credentials.options()?)
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
    fn failures_say_what_was_expected_and_what_was_seen() {
        assert!(expect(true, "x", "y").is_ok());
        let err = expect(false, "a reply", "none").unwrap_err();
        assert_eq!(err.to_string(), "expected a reply, seen none");
    }
}

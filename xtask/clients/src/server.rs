//! Waiting on the server, for the checks and the bench alike: until it has read what a client
//! sent, until a replicated stream's or consumer's RAFT group has elected its leader.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use async_nats::jetstream::consumer::{Consumer, pull};
use async_nats::jetstream::stream::Stream;

/// Returns once the server has read everything `client` sent so far (a subscription, say), so
/// that another connection's messages find it. `flush` only writes to the socket; the server
/// answers a request nobody listens to with "no responders" after reading what came before it
/// on that connection. `prefix` starts the subject asked (`smoke`, `bench`).
pub async fn read_by_the_server(
    client: &async_nats::Client,
    prefix: &str,
    within: Duration,
) -> Result<()> {
    let nobody = format!("{prefix}.{}.sync", crate::unique_id());
    match tokio::time::timeout(within, client.request(nobody, bytes::Bytes::new())).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => Ok(()),
        Ok(Err(e)) => Err(e).context("cannot make a round trip to the server"),
        Err(_) => bail!(
            "expected the server to answer within {} s, seen no answer",
            within.as_secs()
        ),
    }
}

/// Returns once `consumer` has a leader (a single server's always has), or after `within`,
/// leaving what fails then to say why: until it has one, a fetch finds no responders.
pub async fn consumer_led(consumer: &mut Consumer<pull::Config>, within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        match consumer.info().await {
            Ok(info) if info.cluster.as_ref().is_none_or(|c| c.leader.is_some()) => return,
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Returns once `stream` has a leader (a single server's always has), or after `within`: until
/// then a publish to its subjects finds no stream.
pub async fn stream_led(stream: &mut Stream, within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        match stream.info().await {
            Ok(info) if info.cluster.as_ref().is_none_or(|c| c.leader.is_some()) => return,
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

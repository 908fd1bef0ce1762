//! Waiting for a replicated stream's or consumer's RAFT group to elect its leader: until it has
//! one, the requests it answers (publish, fetch) find no responders.

use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{Consumer, pull};
use async_nats::jetstream::stream::Stream;

/// Returns once `consumer` has a leader (a single server's always has), or after `within`,
/// leaving what fails then to say why.
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

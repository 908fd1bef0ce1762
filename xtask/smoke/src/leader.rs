//! Waiting for a replicated consumer's RAFT group to elect its leader: until it has one, the
//! requests it answers (fetch, next) find no responders.

use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{Consumer, pull};

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

//! `bench pubsub`: core publish/subscribe throughput. Core NATS is at-most-once: whatever a
//! subscriber does not receive is counted and reported with the server's slow consumers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::StreamExt;
use serde_json::json;
use xtask_clients::server;

use crate::measure::{ClientRun, Group};
use crate::progress::{Goal, Progress};
use crate::report::{Outcome, count};
use crate::{Length, Load, Target};

/// Publishers flush (a round trip to the server) every so many messages, so that they cannot
/// run ahead of what the server and the subscribers take.
const FLUSH_EVERY: u64 = 1000;
/// A subscriber that has heard nothing for this long after the publishers finished has
/// received all it will.
const IDLE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Options {
    /// Publishing clients.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pubs: u16,
    /// Subscribing clients; each receives every message.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16))]
    subs: u16,
    #[command(flatten)]
    pub(crate) length: Length,
}

impl Options {
    pub(crate) fn suite(length: Length) -> Options {
        Options {
            pubs: 1,
            subs: 1,
            length,
        }
    }
}

/// A flush, which fails instead of waiting for ever on a server gone away.
async fn flushed(client: &async_nats::Client) -> Result<()> {
    tokio::time::timeout(Duration::from_secs(30), client.flush())
        .await
        .map_err(|_| anyhow::anyhow!("the server did not answer a flush within 30 s"))??;
    Ok(())
}

pub(crate) async fn run(target: &Target, options: &Options) -> Result<Outcome> {
    let first = target.connect("cargo xtask bench").await?;
    let Load {
        goal,
        subject,
        payload,
    } = target
        .load(&first, "pubsub", &options.length, 1_000_000)
        .await?;
    drop(first);
    let size = payload.len();

    let mut subscribers = Vec::new();
    for client in target.connect_each("S", options.subs).await? {
        let subscription = client.subscribe(subject.clone()).await?;
        server::read_by_the_server(&client, "bench", Duration::from_secs(10)).await?;
        subscribers.push((client, subscription));
    }
    let publishers = target.connect_each("P", options.pubs).await?;
    let slow_before = target.slow_consumers().await;
    let drops_before = crate::CLIENT_DROPS.load(Ordering::Relaxed);
    let mut cpu = target.cpu_watch();
    let progress = Progress::start("pubsub", goal);

    let published = Arc::new(AtomicU64::new(0));
    let publishing_done = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut receiving = Vec::new();
    for (j, (client, mut subscription)) in subscribers.into_iter().enumerate() {
        let (published, done) = (published.clone(), publishing_done.clone());
        let counter = (j == 0).then(|| progress.counter());
        receiving.push(tokio::spawn(async move {
            let (mut msgs, mut bytes, mut end) = (0u64, 0u64, start);
            loop {
                let expected = match goal {
                    Goal::Msgs(total) => Some(total),
                    Goal::Time(_) => done
                        .load(Ordering::Acquire)
                        .then(|| published.load(Ordering::Acquire)),
                };
                if expected.is_some_and(|expected| msgs >= expected) {
                    break;
                }
                match tokio::time::timeout(IDLE, subscription.next()).await {
                    Ok(Some(message)) => {
                        msgs += 1;
                        bytes += message.payload.len() as u64;
                        end = Instant::now();
                        if let Some(counter) = &counter {
                            counter.store(msgs, Ordering::Relaxed);
                        }
                    }
                    Ok(None) => break,
                    Err(_) if done.load(Ordering::Acquire) => break,
                    Err(_) => {}
                }
            }
            drop(client);
            ClientRun {
                id: format!("S{j}"),
                msgs,
                bytes,
                start,
                end,
                latency: None,
            }
        }));
    }

    let pubs = publishers.len() as u64;
    let mut sending = Vec::new();
    for (i, client) in publishers.into_iter().enumerate() {
        let share = goal.share(i as u64, pubs);
        let (subject, payload, published) = (subject.clone(), payload.clone(), published.clone());
        // Without subscribers, the progress is what all publishers have sent.
        let counter = (options.subs == 0).then(|| progress.counter());
        sending.push(tokio::spawn(async move {
            let mut msgs = 0u64;
            while share.goes_on(msgs, start) {
                client.publish(subject.clone(), payload.clone()).await?;
                msgs += 1;
                if msgs.is_multiple_of(FLUSH_EVERY) {
                    flushed(&client).await?;
                    published.fetch_add(FLUSH_EVERY, Ordering::AcqRel);
                    if let Some(counter) = &counter {
                        counter.fetch_add(FLUSH_EVERY, Ordering::Relaxed);
                    }
                }
            }
            flushed(&client).await?;
            published.fetch_add(msgs % FLUSH_EVERY, Ordering::AcqRel);
            Ok::<ClientRun, anyhow::Error>(ClientRun {
                id: format!("P{i}"),
                msgs,
                bytes: msgs * payload.len() as u64,
                start,
                end: Instant::now(),
                latency: None,
            })
        }));
    }
    let mut pub_runs = Vec::new();
    for task in sending {
        pub_runs.push(task.await??);
    }
    publishing_done.store(true, Ordering::Release);
    let mut sub_runs = Vec::new();
    for task in receiving {
        sub_runs.push(task.await?);
    }
    drop(progress);
    let cpu = cpu.spent();
    let slow = target.slow_consumers().await.saturating_sub(slow_before);
    let dropped = crate::CLIENT_DROPS.load(Ordering::Relaxed) - drops_before;

    let sent = published.load(Ordering::Acquire);
    let missing: u64 = sub_runs.iter().map(|s| sent.saturating_sub(s.msgs)).sum();
    let mut notes = Vec::new();
    if missing > 0 {
        notes.push(format!(
            "{} published {} not received ({} × {sent} expected): the server counted {}, \
             and the subscribers' client dropped at least {dropped} because their buffer was full",
            count(missing, "message"),
            if missing == 1 { "was" } else { "were" },
            count(sub_runs.len() as u64, "subscriber"),
            count(slow, "slow consumer"),
        ));
    }
    Ok(Outcome {
        name: "pubsub",
        title: format!(
            "core publish/subscribe, {}, {}, {size} B",
            count(pub_runs.len() as u64, "publisher"),
            count(sub_runs.len() as u64, "subscriber")
        ),
        params: json!({"pubs": pub_runs.len(), "subs": sub_runs.len(), "size": size, "msgs": sent}),
        publishers: Some(Group { clients: pub_runs }),
        subscribers: (!sub_runs.is_empty()).then_some(Group { clients: sub_runs }),
        missing,
        extra: json!({"slow_consumers": slow, "client_dropped_at_least": dropped}),
        notes,
        cpu,
        failed: false,
    })
}

//! `bench js`: JetStream publishing with acknowledgements (a bounded window of them in
//! flight, or one at a time with `--sync`), then a durable pull consumer reading everything
//! back. The stream has a name of its own and is deleted afterwards, also after a failure or
//! Ctrl-C.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use async_nats::jetstream::{self, consumer::pull, stream::StorageType};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::json;
use xtask_clients::{server, unique_id};

use crate::measure::{ClientRun, Group, latency_histogram, record};
use crate::progress::{Goal, Progress};
use crate::report::{Outcome, count};
use crate::{Length, Target};

/// How long a publish may wait for its acknowledgement, and the consumer for a message.
const ACK_WAIT: Duration = Duration::from_secs(10);
/// How long a new stream may wait for its replicas to be placed.
const PLACEMENT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Storage {
    File,
    Memory,
}

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Options {
    /// Copies of the stream, one per node: above 1 needs a cluster.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    replicas: u8,
    /// Where the stream keeps its messages.
    #[arg(long, value_enum, default_value_t = Storage::File)]
    storage: Storage,
    /// Publish one message at a time, waiting for each acknowledgement (and measure each
    /// one's latency), instead of a window of them in flight.
    #[arg(long)]
    sync: bool,
    /// Acknowledgements awaited at most at once, when not --sync.
    #[arg(long, default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    window: u32,
    #[command(flatten)]
    pub(crate) length: Length,
}

impl Options {
    pub(crate) fn suite(length: Length, nodes: usize) -> Options {
        Options {
            replicas: u8::try_from(nodes.clamp(1, 5)).unwrap_or(1),
            storage: Storage::File,
            sync: false,
            window: 256,
            length,
        }
    }
}

pub(crate) async fn run(target: &Target, options: &Options) -> Result<Outcome> {
    let goal = options.length.goal(100_000)?;
    let size = options.length.size();
    let nodes = target.clients.len();
    let replicas = usize::from(options.replicas);
    if replicas > nodes {
        // The clusters `run --cluster` makes: 3 nodes, or 5.
        let size = if replicas <= 3 { 3 } else { 5 };
        let here = if nodes == 1 {
            "a single server".to_string()
        } else {
            format!("a cluster of {nodes}")
        };
        let temporary = if size == 3 {
            ", or `cargo xtask bench --cluster` for a temporary one"
        } else {
            ""
        };
        bail!(
            "--replicas {replicas} needs a cluster of at least {replicas} nodes, and this is \
             {here}: measure a cluster of {size} (`cargo xtask run --cluster --nodes {size} \
             --detach` first{temporary})"
        );
    }
    let id = unique_id();
    let name = format!("BENCH_{id}");
    let subject = async_nats::Subject::from(format!("bench.{id}.js"));
    let client = target.connect("cargo xtask bench P0").await?;
    target.check_room(&client, &subject, size).await?;
    // Room for the whole window of acknowledgements in flight, and one more publish: the
    // client's own limit (5,000 by default) would otherwise stall a larger window.
    let js = jetstream::context::ContextBuilder::new()
        .timeout(ACK_WAIT)
        .max_ack_inflight(options.window as usize + 1)
        .build(client);
    let storage = match options.storage {
        Storage::File => StorageType::File,
        Storage::Memory => StorageType::Memory,
    };
    let config = jetstream::stream::Config {
        name: name.clone(),
        subjects: vec![subject.to_string()],
        storage,
        num_replicas: replicas,
        ..Default::default()
    };
    // Listened for before the stream exists: a stop asked while it is made, or while its
    // leader is elected, still deletes it.
    let mut stops = crate::Stops::listen()?;
    let created = std::cell::Cell::new(false);
    let steps = async {
        // Just after a cluster starts, its leader may not count every peer online for
        // placement yet: that passes within seconds.
        let started = Instant::now();
        loop {
            match js.create_stream(config.clone()).await {
                Ok(mut stream) => {
                    created.set(true);
                    server::stream_led(&mut stream, Duration::from_secs(10)).await;
                    break;
                }
                Err(e)
                    if e.to_string().contains("no suitable peers")
                        && started.elapsed() < PLACEMENT =>
                {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    return Err(anyhow::Error::from(e).context(format!(
                        "cannot create a stream with {} and {:?} storage",
                        count(options.replicas, "replica"),
                        options.storage
                    )));
                }
            }
        }
        measure(target, options, &js, &name, subject, goal, size).await
    };
    // The stream goes whatever happened, Ctrl-C included.
    let outcome = tokio::select! {
        outcome = steps => outcome,
        signal = stops.next() => Err(crate::Interrupted(signal).into()),
    };
    if !created.get() {
        return outcome;
    }
    let deleted = tokio::time::timeout(Duration::from_secs(10), js.delete_stream(&name)).await;
    match deleted {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => eprintln!("warning: cannot delete stream {name}: {e}"),
        Err(_) => eprintln!("warning: stream {name} was not deleted within 10 s"),
    }
    outcome
}

async fn measure(
    target: &Target,
    options: &Options,
    js: &jetstream::Context,
    name: &str,
    subject: async_nats::Subject,
    goal: Goal,
    size: usize,
) -> Result<Outcome> {
    let payload = Bytes::from(vec![b'x'; size]);
    let mut cpu = target.cpu_watch();
    let progress = Progress::start("js publish", goal);
    let counter = progress.counter();
    let start = Instant::now();
    let mut latency = options.sync.then(latency_histogram);
    let mut in_flight = VecDeque::new();
    let (mut sent, mut acked, mut failed) = (0u64, 0u64, 0u64);
    let mut failure = None;
    while goal.goes_on(sent, start) {
        let published = Instant::now();
        let ack = js.publish(subject.clone(), payload.clone()).await?;
        sent += 1;
        in_flight.push_back(ack);
        let window = if options.sync {
            1
        } else {
            options.window as usize
        };
        while in_flight.len() >= window {
            let ack = in_flight.pop_front().expect("not empty");
            match ack.await {
                Ok(_) => acked += 1,
                Err(e) => {
                    failed += 1;
                    failure.get_or_insert(e.to_string());
                }
            }
        }
        if let Some(latency) = &mut latency {
            record(latency, published.elapsed());
        }
        counter.store(acked, Ordering::Relaxed);
    }
    for ack in in_flight {
        match ack.await {
            Ok(_) => acked += 1,
            Err(e) => {
                failed += 1;
                failure.get_or_insert(e.to_string());
            }
        }
    }
    let published = ClientRun {
        id: "P0".into(),
        msgs: acked,
        bytes: acked * size as u64,
        start,
        end: Instant::now(),
        latency,
    };
    drop(progress);

    // Everything stored, read back through a durable pull consumer.
    let stream = js.get_stream(name).await?;
    let mut consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some(format!("{name}_READER")),
            ack_policy: jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .context("cannot create the consumer")?;
    server::consumer_led(&mut consumer, Duration::from_secs(10)).await;
    // What the stream holds: every acknowledged message, and maybe some whose acknowledgement
    // was lost; all of it is read back.
    let stored = stream.cached_info().state.messages;
    let progress = Progress::start("js consume", Goal::Msgs(stored));
    let counter = progress.counter();
    let mut messages = consumer.messages().await?;
    let start = Instant::now();
    let (mut read, mut end) = (0u64, start);
    while read < stored {
        match tokio::time::timeout(ACK_WAIT, messages.next()).await {
            Ok(Some(Ok(_))) => {
                read += 1;
                end = Instant::now();
                counter.store(read, Ordering::Relaxed);
            }
            Ok(Some(Err(e))) => bail!("the consumer failed after {read} messages: {e}"),
            Ok(None) | Err(_) => break,
        }
    }
    drop(progress);
    let cpu = cpu.spent();
    let consumed = ClientRun {
        id: "S0".into(),
        msgs: read,
        bytes: read * size as u64,
        start,
        end,
        latency: None,
    };
    let mut notes = Vec::new();
    if failed > 0 {
        notes.push(format!(
            "{failed} of {sent} publishes were not acknowledged (first: {})",
            failure.unwrap_or_default()
        ));
    }
    if stored < acked {
        notes.push(format!(
            "the stream holds {}, fewer than the {acked} acknowledged",
            count(stored, "message")
        ));
    }
    if read < stored {
        notes.push(format!(
            "the consumer read {read} of the {stored} messages stored"
        ));
    }
    let storage = match options.storage {
        Storage::File => "file",
        Storage::Memory => "memory",
    };
    Ok(Outcome {
        name: "js",
        title: format!(
            "JetStream, {storage} storage, {}, {} publish, {size} B",
            count(options.replicas, "replica"),
            if options.sync {
                "synchronous".to_string()
            } else {
                format!("asynchronous (window {})", options.window)
            }
        ),
        params: json!({
            "replicas": options.replicas,
            "storage": storage,
            "sync": options.sync,
            "window": (!options.sync).then_some(options.window),
            "size": size,
            "msgs": sent,
            "stored": stored,
        }),
        publishers: Some(Group {
            clients: vec![published],
        }),
        subscribers: Some(Group {
            clients: vec![consumed],
        }),
        missing: failed + acked.saturating_sub(stored) + stored.saturating_sub(read),
        extra: json!({}),
        notes,
        cpu,
        failed: failed > 0 || read < stored,
    })
}

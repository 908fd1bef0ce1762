//! `smoke --failover`: the node leading a replicated stream stops while a client keeps
//! publishing, and no acknowledged message is lost.
//!
//! The checks cannot stop or start a node themselves: the xtask that runs them can. They ask
//! it with a line on stdout (`@xtask stop n2 graceful`, `@xtask start n2`) and wait for its
//! answer on stdin (`ok`, or `failed: why`).

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use async_nats::jetstream::{self, message::PublishMessage};

use xtask_clients::{REQUEST_PREFIX, get_json};

use crate::Target;
use crate::checks::{counted, expect, stream_state, then_delete};

/// Messages acknowledged before the stop, and after it.
const BEFORE: u64 = 20;
const AFTER: u64 = 20;
/// How long one attempt to publish waits for its acknowledgement.
const ATTEMPT: Duration = Duration::from_secs(1);
/// How long one message may take to be acknowledged, retries included: after SIGKILL of a
/// leader, its followers wait out an election timeout (up to 9 s here) before electing another.
const ACKED_WITHIN: Duration = Duration::from_secs(20);
/// Between two attempts to publish one message, while there is no leader to take it.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// How long a node back from the stop may take for its replica to be current.
const CATCH_UP: Duration = Duration::from_secs(20);
/// The whole check: writes before and after, the stop, the restart, the catch-up, the reading.
pub(crate) const DEADLINE: Duration = Duration::from_secs(90);

/// How the leader is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Stop {
    /// Asked to shut down: it hands its leadership over first.
    Graceful,
    /// SIGKILL: its followers notice and elect a new leader.
    Kill,
}

impl Stop {
    fn word(self) -> &'static str {
        match self {
            Stop::Graceful => "graceful",
            Stop::Kill => "kill",
        }
    }
}

/// Asks the xtask for `request` and waits for its answer; returns when it came.
async fn ask(request: String) -> Result<Instant> {
    tokio::task::spawn_blocking(move || {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{REQUEST_PREFIX}{request}")?;
        out.flush()?;
        drop(out);
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        match answer.trim() {
            "ok" => Ok(Instant::now()),
            "" => bail!("the xtask did not answer `{request}` (run the checks through it)"),
            other => bail!("{}", other.strip_prefix("failed: ").unwrap_or(other)),
        }
    })
    .await?
}

/// Publishes `failover N` with message id `N`, one message at a time, each retried with the
/// same id until acknowledged: the stream keeps one copy whatever the retries.
struct Publisher {
    js: jetstream::Context,
    subject: String,
    published: u64,
    retries: u64,
    duplicates: u64,
    /// When each message was acknowledged.
    acked: Vec<Instant>,
}

impl Publisher {
    async fn next(&mut self) -> Result<()> {
        let n = self.published + 1;
        let start = Instant::now();
        loop {
            let attempt = async {
                let publish = PublishMessage::build()
                    .payload(format!("failover {n}").into())
                    .message_id(n.to_string());
                self.js
                    .send_publish(self.subject.clone(), publish)
                    .await?
                    .await
                    .map_err(anyhow::Error::from)
            };
            let error = match attempt.await {
                Ok(ack) => {
                    self.duplicates += u64::from(ack.duplicate);
                    self.published = n;
                    self.acked.push(Instant::now());
                    return Ok(());
                }
                Err(e) => e,
            };
            if start.elapsed() > ACKED_WITHIN {
                bail!(
                    "expected message {n} acknowledged within {} s, seen `{error:#}`",
                    ACKED_WITHIN.as_secs()
                );
            }
            self.retries += 1;
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }
}

/// The node leading `name`, asked of the stream.
async fn leader(js: &jetstream::Context, name: &str) -> Result<String> {
    let mut stream = js.get_stream(name).await?;
    let info = stream.info().await?;
    info.cluster
        .as_ref()
        .and_then(|c| c.leader.clone())
        .with_context(|| format!("expected stream {name} to have a leader, seen none"))
}

pub(crate) async fn failover(target: &Target, id: &str, stop: Stop) -> Result<String> {
    let urls: Vec<async_nats::ServerAddr> = target
        .nodes
        .iter()
        .map(|node| node.client.parse())
        .collect::<Result<_, _>>()?;
    // Every node's address: whichever the client is on may be the one stopped.
    let client = target
        .options(target.credentials.options()?)
        .name("cargo xtask smoke --failover")
        .connection_timeout(Duration::from_secs(2))
        .connect(urls)
        .await
        .context("cannot connect to the cluster with the token")?;
    let mut js = jetstream::new(client);
    js.set_timeout(ATTEMPT);
    let name = format!("SMOKE_F_{id}");
    let subject = format!("smoke.{id}.failover");
    let steps = async {
        let mut stream = target.create_stream(&js, &name, &subject).await?;
        let mut publisher = Publisher {
            js: js.clone(),
            subject: subject.clone(),
            published: 0,
            retries: 0,
            duplicates: 0,
            acked: Vec::new(),
        };
        for _ in 0..BEFORE {
            publisher.next().await?;
        }
        let old = leader(&js, &name).await?;
        // Publishing goes on while the node stops: that is what an application sees.
        let stopping = tokio::spawn(ask(format!("stop {old} {}", stop.word())));
        while !stopping.is_finished() {
            publisher.next().await?;
        }
        let gone = stopping
            .await?
            .with_context(|| format!("cannot stop {old}"))?;
        while publisher.published < BEFORE + AFTER {
            publisher.next().await?;
        }
        let resumed = publisher
            .acked
            .iter()
            .find(|acked| **acked > gone)
            .map_or(Duration::ZERO, |acked| acked.duration_since(gone));
        let longest_wait = publisher
            .acked
            .windows(2)
            .map(|pair| pair[1].duration_since(pair[0]))
            .max()
            .unwrap_or_default();
        let new = leader(&js, &name).await?;
        expect(
            new != old,
            format!("a new leader of {name} after {old} stopped"),
            new.clone(),
        )?;

        ask(format!("start {old}"))
            .await
            .with_context(|| format!("cannot start {old} again"))?;
        let back = Instant::now();
        let count = publisher.published;
        caught_up(target, &mut stream, &old, count).await?;
        let caught_up_in = back.elapsed();

        let mut read = BTreeSet::new();
        for sequence in 1..=count {
            let message = stream.get_raw_message(sequence).await.with_context(|| {
                format!("cannot read message {sequence} of {name} after the failover")
            })?;
            read.insert(String::from_utf8_lossy(&message.payload).into_owned());
        }
        let want: BTreeSet<String> = (1..=count).map(|n| format!("failover {n}")).collect();
        let lost: Vec<&String> = want.difference(&read).collect();
        expect(
            lost.is_empty(),
            format!("all {count} acknowledged messages in {name}"),
            format!("{} lost: {lost:?}", lost.len()),
        )?;
        Ok(format!(
            "{old} led {name} and was stopped ({}); the first write after it was gone was \
             acknowledged {:.1} s later, by {new}, and the longest wait between two \
             acknowledgements was {:.1} s; {old} back and current in {:.1} s; {count} \
             acknowledged, none lost or doubled ({} {}, {} answered as duplicates)",
            stop.word(),
            resumed.as_secs_f64(),
            longest_wait.as_secs_f64(),
            caught_up_in.as_secs_f64(),
            publisher.retries,
            if publisher.retries == 1 {
                "retry"
            } else {
                "retries"
            },
            publisher.duplicates,
        ))
    };
    then_delete(&js, &name, steps, DEADLINE).await
}

/// Waits until `node`'s replica of `stream` is current and holds `count` messages, and the
/// stream holds exactly that many (no retry stored twice).
async fn caught_up(
    target: &Target,
    stream: &mut jetstream::stream::Stream,
    node: &str,
    count: u64,
) -> Result<()> {
    let monitoring = &target
        .nodes
        .iter()
        .find(|n| n.name == node)
        .with_context(|| format!("no node {node} among those given"))?
        .monitoring;
    let start = Instant::now();
    loop {
        let info = stream.info().await?.clone();
        let current = info
            .cluster
            .as_ref()
            .and_then(|c| c.replicas.iter().find(|r| r.name == node))
            .is_some_and(|r| r.current && !r.offline);
        let jsz = get_json(format!("{monitoring}/jsz?streams=true")).await?;
        let held = stream_state(&jsz, &info.config.name)["messages"].clone();
        if current && held == count && info.state.messages == count {
            return Ok(());
        }
        if start.elapsed() > CATCH_UP {
            bail!(
                "expected {node}'s replica current with {count} messages within {} s, seen \
                 current: {current}, {} on {node}, {} in the stream",
                CATCH_UP.as_secs(),
                counted(&held, "message"),
                info.state.messages
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

//! `bench request`: request/reply round trips against a responder of the same run, each
//! request's latency recorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use futures_util::StreamExt;
use serde_json::json;

use crate::measure::{ClientRun, Group, latency_histogram, record};
use crate::progress::Progress;
use crate::report::{self, Outcome};
use crate::{Length, Load, Target};

#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Options {
    /// Requesting clients, each waiting for its reply before its next request.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    clients: u16,
    #[command(flatten)]
    pub(crate) length: Length,
}

impl Options {
    pub(crate) fn suite(length: Length) -> Options {
        Options { clients: 1, length }
    }
}

pub(crate) async fn run(target: &Target, options: &Options) -> Result<Outcome> {
    // The responder echoes every request.
    let responder = target.connect("cargo xtask bench responder").await?;
    let Load {
        goal,
        subject,
        payload,
    } = target
        .load(&responder, "request", &options.length, 20_000)
        .await?;
    let size = payload.len();
    let mut requests = responder.subscribe(subject.clone()).await?;
    responder.flush().await?;
    let answering = {
        let responder = responder.clone();
        tokio::spawn(async move {
            while let Some(request) = requests.next().await {
                if let Some(reply) = request.reply {
                    let _ = responder.publish(reply, request.payload).await;
                }
            }
        })
    };
    let clients = target.connect_each("P", options.clients).await?;
    let mut cpu = target.cpu_watch();
    let progress = Progress::start("request", goal);
    let done = Arc::new(AtomicU64::new(0));
    let count = clients.len() as u64;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, client) in clients.into_iter().enumerate() {
        let share = goal.share(i as u64, count);
        let (subject, payload, done, counter) = (
            subject.clone(),
            payload.clone(),
            done.clone(),
            progress.counter(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latency = latency_histogram();
            let mut msgs = 0u64;
            while share.goes_on(msgs, start) {
                let sent = Instant::now();
                let reply = client
                    .request(subject.clone(), payload.clone())
                    .await
                    .with_context(|| format!("request {} of P{i} failed", msgs + 1))?;
                record(&mut latency, sent.elapsed());
                anyhow::ensure!(
                    reply.payload.len() == payload.len(),
                    "a reply of another size"
                );
                msgs += 1;
                counter.store(done.fetch_add(1, Ordering::Relaxed) + 1, Ordering::Relaxed);
            }
            Ok::<ClientRun, anyhow::Error>(ClientRun {
                id: format!("P{i}"),
                msgs,
                bytes: msgs * payload.len() as u64,
                start,
                end: Instant::now(),
                latency: Some(latency),
            })
        }));
    }
    let mut runs = Vec::new();
    for task in tasks {
        runs.push(task.await??);
    }
    drop(progress);
    let cpu = cpu.spent();
    answering.abort();
    Ok(Outcome {
        name: "request",
        title: format!(
            "request/reply, {}, {size} B",
            report::count(runs.len() as u64, "client")
        ),
        params: json!({"clients": runs.len(), "size": size, "msgs": done.load(Ordering::Relaxed)}),
        publishers: Some(Group { clients: runs }),
        subscribers: None,
        missing: 0,
        extra: json!({}),
        notes: Vec::new(),
        cpu,
        failed: false,
    })
}

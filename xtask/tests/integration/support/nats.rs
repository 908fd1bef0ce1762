//! A running server seen as its clients see it: JetStream messages and monitoring endpoints.

use std::time::Duration;

use super::{DEADLINE, wait_for};

/// Connects with async-nats as an application would, with `options`; the error's text if it
/// is refused, else whether a request to itself came back.
pub fn connects(url: &str, options: async_nats::ConnectOptions) -> Result<(), String> {
    runtime().block_on(async {
        let client = options
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| e.to_string())?;
        client.flush().await.map_err(|e| e.to_string())
    })
}

/// What a monitoring endpoint answers at `path`, which must be JSON.
#[track_caller]
pub fn monitoring_json(monitoring: &str, path: &str) -> serde_json::Value {
    let url = format!("{monitoring}{path}");
    xtask_probe::get_json(&xtask_probe::monitoring_agent(), &url)
        .unwrap_or_else(|e| panic!("{e:#}"))
}

/// Publishes `count` messages to a new file-backed stream and returns their payloads, each
/// acknowledged by JetStream.
pub fn publish_acked(url: &str, token: &str, stream: &str, count: usize) -> Vec<Vec<u8>> {
    publish_acked_replicated(url, token, stream, 1, 0..count)
}

/// Publishes the messages numbered `range` to `stream` (created with `replicas` if it does not
/// exist) and waits for each acknowledgement; returns their payloads.
pub fn publish_acked_replicated(
    url: &str,
    token: &str,
    stream: &str,
    replicas: usize,
    range: std::ops::Range<usize>,
) -> Vec<Vec<u8>> {
    let client = async_nats::ConnectOptions::with_token(token.into());
    publish_acked_as(url, client, stream, replicas, range)
}

/// [`publish_acked_replicated`] as the client `options` make (a user with credentials).
pub fn publish_acked_as(
    url: &str,
    options: async_nats::ConnectOptions,
    stream: &str,
    replicas: usize,
    range: std::ops::Range<usize>,
) -> Vec<Vec<u8>> {
    runtime().block_on(async {
        use async_nats::jetstream::{self, stream::Config, stream::StorageType};
        let client = options.connect(url).await.unwrap();
        let js = jetstream::new(client);
        let subject = format!("{stream}.events");
        let config = Config {
            name: stream.into(),
            subjects: vec![subject.clone()],
            storage: StorageType::File,
            num_replicas: replicas,
            ..Default::default()
        };
        // Just after a cluster starts, its meta leader may not count every peer online for
        // placement yet: that passes within seconds.
        let started = std::time::Instant::now();
        let mut created = loop {
            match js.get_or_create_stream(config.clone()).await {
                Ok(created) => break created,
                Err(e) => assert!(
                    e.to_string().contains("no suitable peers") && started.elapsed() < DEADLINE,
                    "cannot create {stream}: {e}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        // Until its own group has elected a leader, a replicated stream's publishes find no
        // stream.
        while !created
            .info()
            .await
            .is_ok_and(|info| info.cluster.as_ref().is_none_or(|c| c.leader.is_some()))
        {
            assert!(started.elapsed() < DEADLINE, "{stream} has no leader");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut payloads = Vec::new();
        for i in range {
            let payload = format!("message {i} of {stream}").into_bytes();
            let ack = js
                .publish(subject.clone(), payload.clone().into())
                .await
                .unwrap()
                .await
                .unwrap();
            assert_eq!(ack.sequence, i as u64 + 1);
            payloads.push(payload);
        }
        payloads
    })
}

/// What `stream` holds, read through `url` once the stream answers again (after its leader
/// was lost, the others elect a new one first).
pub fn stored_eventually(url: &str, token: &str, stream: &str) -> Vec<Vec<u8>> {
    let read = || {
        runtime().block_on(async {
            let client = async_nats::ConnectOptions::with_token(token.into())
                .connect(url)
                .await
                .ok()?;
            let js = async_nats::jetstream::new(client);
            let mut stream = js.get_stream(stream).await.ok()?;
            let count = stream.info().await.ok()?.state.messages;
            let mut payloads = Vec::new();
            for seq in 1..=count {
                payloads.push(stream.get_raw_message(seq).await.ok()?.payload.to_vec());
            }
            Some(payloads)
        })
    };
    wait_for(DEADLINE, read).expect("the stream did not answer")
}

/// Publishes `count` core NATS messages of `payload` and waits until the server has them all.
pub fn publish(url: &str, token: &str, subject: &str, count: usize, payload: &[u8]) {
    runtime().block_on(async {
        let client = async_nats::ConnectOptions::with_token(token.into())
            .connect(url)
            .await
            .unwrap();
        for _ in 0..count {
            client
                .publish(subject.to_string(), payload.to_vec().into())
                .await
                .unwrap();
        }
        client.flush().await.unwrap();
    })
}

/// Every message stored in `stream`, in order.
pub fn stored(url: &str, token: &str, stream: &str) -> Vec<Vec<u8>> {
    stored_as(
        url,
        async_nats::ConnectOptions::with_token(token.into()),
        stream,
    )
}

/// [`stored`], as the client `options` make (a user with credentials).
pub fn stored_as(url: &str, options: async_nats::ConnectOptions, stream: &str) -> Vec<Vec<u8>> {
    runtime().block_on(async {
        let client = options.connect(url).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let mut stream = js.get_stream(stream).await.unwrap();
        let count = stream.info().await.unwrap().state.messages;
        let mut payloads = Vec::new();
        for seq in 1..=count {
            payloads.push(stream.get_raw_message(seq).await.unwrap().payload.to_vec());
        }
        payloads
    })
}

/// An async runtime on the test's own thread, for a client the test drives itself.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

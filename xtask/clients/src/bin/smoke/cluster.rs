//! The checks only a cluster has: routes between its nodes, one meta group, and a replica of
//! a stream on every node.

use std::time::Duration;

use anyhow::{Context, Result};
use async_nats::jetstream;
use serde_json::Value;
use xtask_clients::{get_json, server};

use crate::Target;
use crate::checks::{JETSTREAM_STEPS, connect, counted, expect, stream_state, then_delete};

/// Every node has routes to every other node; over TLS, routes that require it, verifying
/// each other's certificates.
pub(crate) async fn routes(target: &Target) -> Result<()> {
    let names: Vec<&str> = target.nodes.iter().map(|n| n.name.as_str()).collect();
    for node in &target.nodes {
        let name = &node.name;
        if target.tls.is_some() {
            let varz = get_json(format!("{}/varz", node.monitoring)).await?;
            let cluster = &varz["cluster"];
            expect(
                cluster["tls_required"] == true && cluster["tls_verify"] == true,
                format!("{name}'s routes to require TLS and verify certificates"),
                format!(
                    "/varz cluster tls_required: {}, tls_verify: {}",
                    cluster["tls_required"], cluster["tls_verify"]
                ),
            )?;
        }
        let routez = get_json(format!("{}/routez", node.monitoring)).await?;
        let mut seen: Vec<String> = routez["routes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|route| route["remote_name"].as_str().map(str::to_string))
            .collect();
        seen.sort();
        seen.dedup();
        let others: Vec<&str> = names.iter().copied().filter(|n| n != name).collect();
        expect(
            seen == others,
            format!("{name} routed to {}", others.join(", ")),
            format!("routes to [{}]", seen.join(", ")),
        )?;
    }
    Ok(())
}

/// Every node names the same meta leader and cluster size, and that leader sees every other
/// node as a current peer: a node that only believes itself the leader is not enough.
pub(crate) async fn meta_group(target: &Target) -> Result<()> {
    let mut views = Vec::new();
    for node in &target.nodes {
        let jsz = get_json(format!("{}/jsz", node.monitoring)).await?;
        views.push((node.name.as_str(), jsz["meta_cluster"].clone()));
    }
    let leaders: Vec<String> = views
        .iter()
        .map(|(name, meta)| format!("{name}: {}", meta["leader"].as_str().unwrap_or("none")))
        .collect();
    let leader = views[0].1["leader"].as_str().unwrap_or_default();
    expect(
        !leader.is_empty() && views.iter().all(|(_, meta)| meta["leader"] == leader),
        "every node to name the same meta leader",
        leaders.join(", "),
    )?;
    let (_, meta) = views
        .iter()
        .find(|(name, _)| *name == leader)
        .with_context(|| format!("the meta leader {leader} is not one of the nodes"))?;
    let peers = meta["replicas"].as_array().cloned().unwrap_or_default();
    let current = peers.iter().filter(|p| p["current"] == true).count();
    expect(
        meta["cluster_size"] == target.nodes.len() && current + 1 == target.nodes.len(),
        format!(
            "meta leader {leader} with all {} nodes current",
            target.nodes.len()
        ),
        format!(
            "cluster size {}, {}",
            meta["cluster_size"],
            counted(&current.into(), "current peer")
        ),
    )
}

/// A stream with a replica on every node, written through one node: every node's own
/// replica (its `/jsz`) reports every message. Reading through a node would be forwarded to
/// the stream's leader and prove nothing about the others.
pub(crate) async fn replicas_on_every_node(target: &Target, id: &str) -> Result<()> {
    const COUNT: u64 = 10;
    let client = connect(target).await?;
    let js = jetstream::new(client);
    let name = format!("SMOKE_R_{id}");
    let subject = format!("smoke.{id}.replicated");
    let steps = async {
        let mut stream = target.create_stream(&js, &name, &subject).await?;
        // Until its replicas elect a leader, a publish finds no stream.
        server::stream_led(&mut stream, Duration::from_secs(10)).await;
        for n in 1..=COUNT {
            js.publish(subject.clone(), format!("event {n}").into())
                .await?
                .await?;
        }
        for node in &target.nodes {
            let mut seen = Value::Null;
            for _ in 0..100 {
                let jsz = get_json(format!("{}/jsz?streams=true", node.monitoring)).await?;
                seen = stream_state(&jsz, &name)["messages"].clone();
                if seen == COUNT {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            expect(
                seen == COUNT,
                format!("{}'s replica of {name} with {COUNT} messages", node.name),
                counted(&seen, "message"),
            )?;
        }
        Ok::<(), anyhow::Error>(())
    };
    then_delete(&js, &name, steps, JETSTREAM_STEPS).await
}

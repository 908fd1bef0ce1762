//! What a cluster keeps between runs: how many nodes it has (`cluster/cluster.json`), which
//! nodes it has had, and which of them run.

use std::fs;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::layout::Layout;
use crate::server;
use crate::util::files::write_atomically;
use crate::util::paths::show;

/// The names of the nodes of the cluster recorded in `layout`, if there is one.
pub(crate) fn recorded_names(layout: &Layout) -> Vec<String> {
    (1..=recorded_count(layout).unwrap_or(0))
        .map(|k| format!("n{k}"))
        .collect()
}

/// Fails, naming the nodes there are, unless `node` is one of `layout`'s cluster.
pub(crate) fn check_node(layout: &Layout, node: &str) -> Result<()> {
    let names = recorded_names(layout);
    if names.iter().any(|name| name == node) {
        return Ok(());
    }
    bail!(
        "this checkout's cluster has no node `{node}`{}",
        if names.is_empty() {
            String::from(" (it has no cluster)")
        } else {
            format!(": its nodes are {}", names.join(", "))
        }
    )
}

/// How many nodes the cluster in `layout` was started with.
fn recorded_count(layout: &Layout) -> Option<usize> {
    let text = fs::read_to_string(layout.cluster_state()).ok()?;
    let state: Value = serde_json::from_str(&text).ok()?;
    state["nodes"].as_u64().map(|n| n as usize)
}

/// The node count to run with: `asked`, which must be the cluster's if it has one (its
/// JetStream data forms a quorum only with the nodes it was made with), else the cluster's,
/// else 3.
pub(crate) fn node_count(layout: &Layout, asked: Option<usize>) -> Result<usize> {
    match (recorded_count(layout), asked) {
        (Some(recorded), Some(asked)) if recorded != asked => bail!(
            "the cluster in `{}` has {recorded} nodes, not {asked}: its JetStream data forms a \
             quorum only with {recorded}; run it with `--nodes {recorded}`, or start a new one \
             after `cargo xtask reset`, which deletes its data (stored messages included)",
            show(&layout.cluster_dir()),
        ),
        (Some(recorded), _) => Ok(recorded),
        (None, asked) => Ok(asked.unwrap_or(3)),
    }
}

/// Forgets the node count, once the nodes' data are gone.
pub(crate) fn forget_count(layout: &Layout) -> Result<()> {
    match fs::remove_file(layout.cluster_state()) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot delete `{}`", show(&layout.cluster_state())))
        }
        _ => Ok(()),
    }
}

/// The directories of every node the cluster of `layout` has had (`cluster/n1`, ...).
pub(crate) fn node_dirs(layout: &Layout) -> Vec<Layout> {
    let mut names: Vec<String> = fs::read_dir(layout.cluster_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.path().is_dir())
        .filter_map(|entry| entry.file_name().to_str().map(str::to_string))
        .filter(|name| {
            name.strip_prefix('n')
                .is_some_and(|k| k.parse::<u32>().is_ok())
        })
        .collect();
    names.sort();
    names.iter().map(|name| layout.node(name)).collect()
}

/// Records the node count once the cluster has been ready: from then on its data needs them.
pub(crate) fn record_count(layout: &Layout, count: usize) -> Result<()> {
    if recorded_count(layout).is_some() {
        return Ok(());
    }
    fs::create_dir_all(layout.cluster_dir())
        .with_context(|| format!("cannot create `{}`", show(&layout.cluster_dir())))?;
    write_atomically(
        &layout.cluster_state(),
        json!({"nodes": count}).to_string().as_bytes(),
    )
}

/// The nodes of `layout`'s cluster that run, with their pids. Stale pid files are removed.
pub(crate) fn running(layout: &Layout) -> Result<Vec<(String, u32)>> {
    let mut running = Vec::new();
    for name in recorded_names(layout) {
        if let Some(pid) = server::reconcile_pid_file(&layout.node(&name))? {
            running.push((name, pid));
        }
    }
    Ok(running)
}

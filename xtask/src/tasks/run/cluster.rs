//! `cargo xtask run --cluster`: the local cluster, in the background or in the foreground with
//! every node's log.

use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::{Event, Run};
use crate::args::{ListenArgs, config_port};
use crate::cluster::{self, Node};
use crate::install::{self, SetupOptions};
use crate::layout::Layout;
use crate::lifecycle::{self, Say};
use crate::natscli::{self, Owner};
use crate::server::follow::LogFollower;
use crate::server::secrets;
use crate::server::{self, Endpoints, Mode};

pub(super) fn run(
    args: &Run,
    layout: &Layout,
    lock: std::fs::File,
    contexts: &Owner,
) -> Result<()> {
    if let Some(pid) = server::reconcile_pid_file(layout)? {
        bail!(
            "the single nats-server of this checkout runs (pid {pid}): the cluster cannot run \
             beside it; `cargo xtask stop` stops it"
        );
    }
    let count = cluster::node_count(layout, args.nodes)?;
    // Nodes that run keep their binary: the others start with the same one.
    let mut source = args.source.clone();
    if let Some((name, pid)) = cluster::running(layout)?.first() {
        let endpoints = Endpoints::of(&layout.node(name), *pid);
        super::say_what_is_ignored(&source, endpoints.as_ref(), &ListenArgs::default());
        source.version = None;
    }
    // The single server's config keeps its own ports: the options are the cluster's.
    install::setup(
        layout,
        &SetupOptions::for_run(source, ListenArgs::default()),
    )?;
    cluster::refuse_own_certificates(layout)?;
    if crate::server::config::has_accounts(layout) {
        anyhow::bail!(
            "`{}` has accounts and users (`--auth jwt`), which a local cluster does not serve \
             yet (its nodes need the `full` resolver): `cargo xtask setup --auth token` for the \
             cluster, or the single server with accounts",
            crate::util::paths::show(&layout.config())
        );
    }
    let token = secrets::load(&layout.env_file())?;
    let password = secrets::ensure_route_password(&layout.env_file())?;
    let (first, cluster_port) = cluster::first_node_ports(layout);
    let first = args.listen.over(&first);
    let cluster_port = args.cluster_port.map_or(cluster_port, config_port);
    // Without port options, nodes started before keep their ports: the others route to them.
    let ports = if args.listen.any_given() || args.cluster_port.is_some() {
        cluster::Ports::Asked
    } else {
        cluster::Ports::Kept
    };
    let nodes = cluster::nodes(layout, &first, cluster_port, count, ports);
    let mut to_start = Vec::new();
    for node in &nodes {
        match server::reconcile_pid_file(&node.layout)? {
            Some(pid) => eprintln!("node {} is already running (pid {pid})", node.name),
            None => to_start.push(node.clone()),
        }
    }
    let timeout = Duration::from_secs(args.timeout);
    let secrets = cluster::Secrets {
        token: &token,
        password: &password,
    };
    // Ctrl-C while the nodes start stops those started, in either mode.
    let (events, next_event) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = events.send(Event::Interrupted);
    })
    .context("cannot handle Ctrl-C")?;
    if !args.detach {
        if to_start.is_empty() {
            eprintln!("every node of the cluster already runs, in the background");
            lifecycle::print_nodes(&nodes, &running_endpoints(&nodes), Say::Stdout);
            return Ok(());
        }
        if to_start.len() != nodes.len() {
            bail!(
                "some nodes of the cluster already run in the background: run with --detach to \
                 start the others, or `cargo xtask stop` them first"
            );
        }
        return foreground(
            layout, &nodes, &secrets, timeout, lock, next_event, contexts,
        );
    }
    let interrupted = || matches!(next_event.try_recv(), Ok(Event::Interrupted));
    lifecycle::start_cluster_until(
        layout,
        &nodes,
        &to_start,
        timeout,
        Say::Stdout,
        &interrupted,
    )?;
    natscli::follow(contexts, layout);
    Ok(())
}

/// The endpoints of the nodes that run.
fn running_endpoints(nodes: &[Node]) -> Vec<Endpoints> {
    nodes
        .iter()
        .filter_map(|node| {
            let pid = server::reconcile_pid_file(&node.layout).ok()??;
            Endpoints::of(&node.layout, pid)
        })
        .collect()
}

/// Runs every node tied to the xtask, showing their logs with each line after its node's
/// name, until Ctrl-C stops them all. A node that exits is reported; the others go on, as a
/// cluster would.
fn foreground(
    layout: &Layout,
    nodes: &[Node],
    secrets: &cluster::Secrets,
    timeout: Duration,
    lock: std::fs::File,
    next_event: mpsc::Receiver<Event>,
    contexts: &Owner,
) -> Result<()> {
    let log_starts: Vec<u64> = nodes
        .iter()
        .map(|n| std::fs::metadata(n.layout.log_file()).map_or(0, |m| m.len()))
        .collect();
    let followers: Vec<LogFollower> = nodes
        .iter()
        .zip(&log_starts)
        .map(|(node, from)| {
            LogFollower::start(node.layout.log_file(), *from, &format!("{} | ", node.name))
        })
        .collect();
    let finish = |followers: Vec<LogFollower>| followers.into_iter().for_each(LogFollower::finish);
    let interrupted = || matches!(next_event.try_recv(), Ok(Event::Interrupted));
    let ready = cluster::start_ready(
        nodes,
        nodes,
        secrets,
        timeout,
        Mode::Foreground,
        &interrupted,
    );
    let (mut started, endpoints) = match ready {
        Ok(Some(ready)) => ready,
        outcome => {
            finish(followers);
            return outcome.map(drop);
        }
    };
    cluster::record_count(layout, nodes.len())?;
    // Another `run` may now start a node stopped meanwhile (`--detach`).
    drop(lock);
    followers.iter().for_each(LogFollower::catch_up);
    eprintln!(
        "the cluster of {} nodes is ready; Ctrl-C stops every node",
        nodes.len()
    );
    lifecycle::print_nodes(nodes, &endpoints, Say::Stdout);
    natscli::follow(contexts, layout);

    let mut exited = vec![false; started.len()];
    let mut unasked = Vec::new();
    loop {
        match next_event.recv_timeout(Duration::from_millis(200)) {
            Ok(Event::Interrupted) => break,
            Ok(Event::Exited(_)) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        for (index, s) in started.iter_mut().enumerate() {
            if exited[index] {
                continue;
            }
            if let Ok(Some(status)) = s.child.try_wait() {
                exited[index] = true;
                let pid = s.child.id();
                server::remove_pid_file(&s.node.layout, pid);
                if server::exit_was_requested(&s.node.layout, pid, log_starts[index]) {
                    eprintln!(
                        "node {} was asked to stop, and stopped ({status})",
                        s.node.name
                    );
                } else {
                    unasked.push(s.node.name.clone());
                    eprintln!(
                        "node {} stopped by itself ({status}){}",
                        s.node.name,
                        server::diagnosis(&s.node.layout)
                    );
                }
            }
        }
        if exited.iter().all(|&e| e) {
            finish(followers);
            if !unasked.is_empty() {
                bail!("every node has stopped, {} by itself", unasked.join(", "));
            }
            eprintln!("every node has stopped");
            return Ok(());
        }
    }
    eprintln!("stopping the cluster");
    // On Windows Ctrl-C has reached the nodes too: they shut down by themselves.
    if cfg!(windows) {
        let deadline = std::time::Instant::now() + lifecycle::STOP_TIMEOUT;
        while std::time::Instant::now() < deadline
            && started
                .iter_mut()
                .any(|s| matches!(s.child.try_wait(), Ok(None)))
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    cluster::stop_started(&mut started);
    // Nodes started from another terminal meanwhile (`run --cluster --detach`) go too.
    for (name, pid) in cluster::running(layout)? {
        let node = layout.node(&name);
        if server::stop(pid, &node, lifecycle::STOP_TIMEOUT).is_ok() {
            server::remove_pid_file(&node, pid);
        }
    }
    finish(followers);
    eprintln!("the cluster stopped");
    Ok(())
}

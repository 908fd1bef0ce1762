//! `cargo xtask run --cluster`, `status` and `stop` driving real 3-node clusters of
//! nats-server, set up from a loopback mirror, on ports the servers pick. Cluster tests cost
//! leader elections, so each test drives one cluster through several checks.

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::*;

/// Node `name` of a `status --json` report.
fn node<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("no node {name} in {status}"))
}

/// What node `name` of a `status --json` report answers on monitoring `path`.
fn node_json(status: &Value, name: &str, path: &str) -> Value {
    monitoring_json(node(status, name)["monitoring_url"].as_str().unwrap(), path)
}

/// The stream as node `monitoring` holds it (`/jsz?streams=true`), if it does.
fn stream_on(monitoring: &str, stream: &str) -> Option<Value> {
    let jsz = monitoring_json(monitoring, "/jsz?streams=true");
    jsz["account_details"]
        .as_array()?
        .iter()
        .flat_map(|account| account["stream_detail"].as_array().into_iter().flatten())
        .find(|detail| detail["name"] == stream)
        .cloned()
}

/// The password the routes use, from `.env.nats`.
fn route_password(sandbox: &Sandbox) -> String {
    let text = std::fs::read_to_string(sandbox.nats_dir().join(".env.nats")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("NATS_ROUTE_PASSWORD="))
        .expect("no route password in .env.nats")
        .to_string()
}

/// Every node's `status --json` once each runs where it did in `before` (its client URL), which
/// the test asserts; `context` goes with a failure.
fn every_node_runs_where_it_did(sandbox: &Sandbox, before: &Value, context: &str) -> Value {
    let (ok, after) = status_json(sandbox);
    assert!(ok, "{context}\n{after}");
    for name in ["n1", "n2", "n3"] {
        assert_eq!(
            node(&after, name)["client_url"],
            node(before, name)["client_url"],
            "{context}\n{after}"
        );
    }
    after
}

/// reload of one node applies its own config, the others untouched; reload of every node
/// names a config nats-server rejects and reloads nothing, while a node refusing at reload
/// does not keep the others from theirs (Unix: reload is SIGHUP).
fn reload_each_node_and_every_node(sandbox: &Sandbox, restarted: &Value) {
    // reload of one node: its own config, the others untouched.
    let n2_config = sandbox.nats_dir().join("cluster/n2/nats-server.conf");
    let text = std::fs::read_to_string(&n2_config).unwrap();
    std::fs::write(
        &n2_config,
        text.replace("max_payload: 8MB", "max_payload: 1MB"),
    )
    .unwrap();
    sandbox.xtask(&["reload", "--node", "n2"]).ok();
    assert_eq!(
        node_json(restarted, "n2", "/varz")["max_payload"],
        1024 * 1024
    );
    assert_eq!(
        node_json(restarted, "n1", "/varz")["max_payload"],
        8 * 1024 * 1024
    );

    // reload of every node: a config nats-server rejects is named, and nothing is reloaded
    // (nothing half-reloaded)...
    let config_of = |name: &str| {
        sandbox
            .nats_dir()
            .join(format!("cluster/{name}/nats-server.conf"))
    };
    let (n1_text, n3_text) = (
        std::fs::read_to_string(config_of("n1")).unwrap(),
        std::fs::read_to_string(config_of("n3")).unwrap(),
    );
    let max_payload = |name: &str| node_json(restarted, name, "/varz")["max_payload"].clone();
    std::fs::write(
        config_of("n1"),
        n1_text.replace("max_payload: 8MB", "max_payload: 2MB"),
    )
    .unwrap();
    std::fs::write(config_of("n3"), format!("{n3_text}\nnot a setting {{\n")).unwrap();
    sandbox
        .xtask(&["reload"])
        .fails_with("cluster/n3/nats-server.conf`");
    assert_eq!(max_payload("n1"), 8 * 1024 * 1024);
    // ...while a node that refuses at reload (a JetStream limit needs a restart) does not keep
    // the others from reloading theirs.
    std::fs::write(
        config_of("n3"),
        n3_text.replace("max_file_store: 10GB", "max_file_store: 20GB"),
    )
    .unwrap();
    let refused = sandbox.xtask(&["reload"]).fails_with("n3");
    assert_eq!(max_payload("n1"), 2 * 1024 * 1024, "{}", refused.stderr);
    std::fs::write(config_of("n1"), &n1_text).unwrap();
    std::fs::write(config_of("n3"), &n3_text).unwrap();
    sandbox.xtask(&["reload"]).ok();
    assert_eq!(max_payload("n1"), 8 * 1024 * 1024);
}

/// Stops the cluster however the test ends.
struct StopCluster<'a>(&'a Sandbox);

impl Drop for StopCluster<'_> {
    fn drop(&mut self) {
        let _ = self.0.xtask(&["stop", "--timeout", "10"]);
    }
}

#[test]
fn a_cluster_starts_keeps_acknowledged_messages_through_node_loss_and_stops_cleanly() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopCluster(&sandbox);
    let run = start_cluster(&sandbox, &mirror, &server);
    let (token, password) = (sandbox.token(), route_password(&sandbox));
    assert!(!run.stdout.contains(&password) && !run.stderr.contains(&password));

    // Every node runs, one leads the meta group, and every peer is current.
    let (ok, status) = status_json(&sandbox);
    assert!(ok, "{status}");
    assert_eq!(status["mode"], "cluster");
    let leader = status["meta_leader"]
        .as_str()
        .expect("a meta leader")
        .to_string();
    let pids: Vec<u32> = ["n1", "n2", "n3"]
        .iter()
        .map(|name| {
            let n = node(&status, name);
            assert_eq!(n["running"], true, "{n}");
            assert_eq!(n["current"], true, "{n}");
            assert_eq!(n["meta_leader"], *name == leader, "{n}");
            n["pid"].as_u64().unwrap() as u32
        })
        .collect();
    for (pid, name) in pids.iter().zip(["n1", "n2", "n3"]) {
        let config = std::fs::read_to_string(
            sandbox
                .nats_dir()
                .join(format!("cluster/{name}/nats-server.conf")),
        )
        .unwrap();
        assert!(
            !config.contains(&password) && !config.contains(&token),
            "{name}'s config holds a secret"
        );
        let line = command_line(*pid);
        assert!(
            !line.contains(&password) && !line.contains(&token),
            "{name}'s command line holds a secret"
        );
    }

    // An R3 stream written through n1 is stored on every node.
    let n1 = node(&status, "n1")["client_url"]
        .as_str()
        .unwrap()
        .to_string();
    let mut sent = publish_acked_replicated(&n1, &token, "ORDERS", 3, 0..50);
    for name in ["n1", "n2", "n3"] {
        let monitoring = node(&status, name)["monitoring_url"]
            .as_str()
            .unwrap()
            .to_string();
        wait_for(DEADLINE, || {
            let stream = stream_on(&monitoring, "ORDERS")?;
            (stream["state"]["messages"] == 50).then_some(())
        })
        .unwrap_or_else(|| panic!("{name} does not hold the 50 messages"));
    }

    // n2 stopped: the others go on; started again on its own ports, it catches up.
    sandbox.xtask(&["stop", "--node", "n2"]).ok();
    assert!(gone(pids[1]));
    let (ok, down) = status_json(&sandbox);
    assert!(!ok && node(&down, "n2")["running"] == false, "{down}");
    // One node down is named in the singular.
    let human = sandbox.xtask(&["status"]);
    assert_eq!(human.code, Some(3), "{}", human.stderr);
    assert!(
        human.stderr.contains("node n2 is not running"),
        "{}",
        human.stderr
    );
    sandbox.xtask(&["smoke"]).fails_with(
        "node n2 of the cluster is not running: `cargo xtask run --cluster --detach` starts it",
    );
    sent.extend(publish_acked_replicated(&n1, &token, "ORDERS", 3, 50..80));
    let again = start_cluster(&sandbox, &mirror, &server);
    assert!(
        again.stderr.contains("node n1 is already running"),
        "{}",
        again.stderr
    );
    let first = status;
    let (_, status) = status_json(&sandbox);
    let n2 = node(&status, "n2");
    assert_eq!(
        n2["client_url"],
        node(&first, "n2")["client_url"],
        "n2 moved"
    );
    assert_ne!(n2["pid"], node(&first, "n2")["pid"]);
    let n2_monitoring = n2["monitoring_url"].as_str().unwrap().to_string();
    wait_for(DEADLINE, || {
        let stream = stream_on(&n2_monitoring, "ORDERS")?;
        (stream["state"]["messages"] == 80).then_some(())
    })
    .expect("n2 did not catch up");

    // Killing the stream's leader outright (SIGKILL) loses no acknowledged message.
    let stream_leader = stream_on(&n2_monitoring, "ORDERS").unwrap()["cluster"]["leader"]
        .as_str()
        .unwrap()
        .to_string();
    let victim = node(&status, &stream_leader);
    kill_hard(victim["pid"].as_u64().unwrap() as u32);
    let survivor = ["n1", "n2", "n3"]
        .into_iter()
        .find(|name| *name != stream_leader)
        .unwrap();
    let survivor_url = node(&status, survivor)["client_url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(stored_eventually(&survivor_url, &token, "ORDERS"), sent);

    // No node wrote a secret to its log or output.
    for name in ["n1", "n2", "n3"] {
        for file in ["logs/nats.log", "logs/nats-server.out"] {
            let path = sandbox.nats_dir().join(format!("cluster/{name}/{file}"));
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(
                !text.contains(&password) && !text.contains(&token),
                "{} holds a secret",
                path.display()
            );
        }
    }

    // Stop leaves no process behind.
    sandbox.xtask(&["stop"]).ok();
    for pid in ["n1", "n2", "n3"].map(|name| node(&status, name)["pid"].as_u64().unwrap() as u32) {
        assert!(gone(pid), "pid {pid} is still running");
    }
    let (ok, _) = status_json(&sandbox);
    assert!(!ok);
    // With every node stopped, monitor --once says nothing runs, as status does.
    let monitor = sandbox.xtask(&["monitor", "--once"]);
    assert_eq!(
        monitor.code,
        Some(3),
        "{}{}",
        monitor.stdout,
        monitor.stderr
    );
    assert!(
        monitor.stderr.contains(
            "nothing of this checkout runs: not its nats-server, nor any of the 3 nodes of its \
             cluster (`cargo xtask run --cluster --detach` starts the cluster again"
        ),
        "{}",
        monitor.stderr
    );
}

#[test]
fn a_route_without_the_password_is_refused() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopCluster(&sandbox);
    start_cluster(&sandbox, &mirror, &server);
    let (_, status) = status_json(&sandbox);
    let n1_monitoring = node(&status, "n1")["monitoring_url"]
        .as_str()
        .unwrap()
        .to_string();
    // The names of the servers n1 has routes to.
    let routed = || -> Vec<String> {
        monitoring_json(&n1_monitoring, "/routez")["routes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|route| route["remote_name"].as_str().map(str::to_string))
            .collect()
    };
    let n1_dir = sandbox.nats_dir().join("cluster/n1");
    let n1_ports = n1_dir.join(&ports_files(&n1_dir)[0]);
    let n1_routes =
        serde_json::from_slice::<Value>(&std::fs::read(n1_ports).unwrap()).unwrap()["cluster"][0]
            .as_str()
            .unwrap()
            .trim_start_matches("nats://")
            .to_string();

    // A server that routes to n1 without the password is refused.
    let mut intruder = by_hand_route(&server, "intruder", &format!("nats-route://{n1_routes}"));
    intruder.wait_for_line("Authorization Violation");
    assert!(
        !routed().contains(&"intruder".to_string()),
        "{:?}",
        routed()
    );
    drop(intruder);

    // The same server with the password gets in: the refusal was the password's doing.
    let password = route_password(&sandbox);
    let _member = by_hand_route(
        &server,
        "member",
        &format!("nats-route://route:{password}@{n1_routes}"),
    );
    wait_for(DEADLINE, || {
        routed().contains(&"member".to_string()).then_some(())
    })
    .expect("a route with the password was not accepted");
}

/// A nats-server outside the cluster's directory that solicits one route, its log on stderr.
fn by_hand_route(server: &ServerBinary, name: &str, route: &str) -> LoggedServer {
    let args = [
        "-a",
        "127.0.0.1",
        "-p",
        "-1",
        "-n",
        name,
        "--cluster_name",
        "nats-dev",
        "--cluster",
        "nats://127.0.0.1:-1",
        "--routes",
        route,
    ];
    LoggedServer::start(&server.path, &args, tempfile::tempdir().unwrap())
}

#[test]
fn the_cluster_and_the_single_server_never_run_together_and_contexts_follow_the_switch() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopCluster(&sandbox);
    sandbox
        .with_ports(
            &["run", "--detach", "--timeout", "120"],
            &mirror,
            &server,
            Ports::picked(),
        )
        .ok();
    sandbox
        .xtask(&["run", "--cluster", "--detach"])
        .fails_with("the single nats-server of this checkout runs");
    // A natscli context written for the single server follows the switch to the cluster.
    sandbox.xtask(&["context", "--name", "app"]).ok();
    let context = || -> Value {
        let path = sandbox.config_home().join("nats/context/app.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let (_, single) = status_json(&sandbox);
    assert_eq!(context()["url"], single["client_url"]);
    sandbox.xtask(&["stop"]).ok();

    let started = start_cluster(&sandbox, &mirror, &server);
    let (_, cluster) = status_json(&sandbox);
    let urls = ["n1", "n2", "n3"]
        .map(|name| {
            node(&cluster, name)["client_url"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .join(",");
    assert_eq!(context()["url"], urls.as_str());
    assert!(
        started
            .stderr
            .contains(&format!("the natscli context `app` now reaches {urls}")),
        "{}",
        started.stderr
    );
    sandbox
        .xtask(&["run", "--detach"])
        .fails_with("this checkout's cluster runs (nodes n1, n2, n3)");
    // And back: the context follows the single server again.
    sandbox.xtask(&["stop"]).ok();
    sandbox.xtask(&["run", "--detach"]).ok();
    let (_, single) = status_json(&sandbox);
    assert_eq!(context()["url"], single["client_url"]);
    sandbox.xtask(&["stop"]).ok();
}

#[test]
fn monitor_and_smoke_failover_see_every_node_and_the_node_count_is_kept() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopCluster(&sandbox);
    start_cluster(&sandbox, &mirror, &server);

    // While it runs, monitor shows one sample per node, the meta leader marked.
    let monitor = sandbox
        .xtask(&["monitor", "--once", "--json", "--interval", "0.2"])
        .ok();
    let samples: Vec<Value> = monitor
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let names: Vec<&str> = samples.iter().filter_map(|s| s["node"].as_str()).collect();
    assert_eq!(names, ["n1", "n2", "n3"], "{}", monitor.stdout);
    let leaders = samples.iter().filter(|s| s["meta_leader"] == true).count();
    assert_eq!(leaders, 1, "{}", monitor.stdout);
    assert!(
        samples.iter().all(|s| s["rates"].is_object()),
        "{}",
        monitor.stdout
    );

    // And smoke checks it as a cluster: every single-server check, then its own, then a
    // failover: the leader of a replicated stream killed while a client publishes, and
    // started again.
    let (_, before) = status_json(&sandbox);
    let smoke = sandbox.xtask(&["smoke", "--json", "--failover", "--kill"]);
    let report: Value = serde_json::from_str(&smoke.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", smoke.stdout, smoke.stderr));
    assert!(smoke.success, "{report}\n{}", smoke.stderr);
    assert_eq!(report["server"]["kind"], "cluster", "{report}");
    let checks: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == true)
        .filter_map(|c| c["name"].as_str())
        .collect();
    for name in [
        "jetstream",
        "routes",
        "meta group",
        "replicas on every node",
        "failover",
    ] {
        assert!(checks.contains(&name), "{name} did not pass: {report}");
    }
    assert_eq!(report["passed"], 12, "{report}");
    let failover = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "failover")
        .unwrap();
    let note = failover["note"].as_str().unwrap_or_default();
    assert!(
        note.contains("was stopped (kill)") && note.contains("none lost or doubled"),
        "{failover}"
    );
    let killed = note.split_whitespace().next().unwrap();
    assert!(
        smoke.stderr.contains(&format!("killing node {killed}"))
            && smoke
                .stderr
                .contains(&format!("starting node {killed} again")),
        "{}",
        smoke.stderr
    );
    // Every node runs again, the killed one on its own ports, and no stream is left.
    let after = every_node_runs_where_it_did(&sandbox, &before, "");
    assert_ne!(node(&after, killed)["pid"], node(&before, killed)["pid"]);
    assert_eq!(node_json(&after, "n1", "/jsz")["streams"], 0);
    sandbox.xtask(&["stop"]).ok();

    // A stale pid file of one node does not block the others.
    std::fs::write(
        sandbox.nats_dir().join("cluster/n2/nats-server.pid"),
        "4000000000\n",
    )
    .unwrap();
    let again = start_cluster(&sandbox, &mirror, &server);
    assert!(again.stderr.contains("removing stale"), "{}", again.stderr);
    let (ok, status) = status_json(&sandbox);
    assert!(ok, "{status}");
    sandbox.xtask(&["stop"]).ok();

    sandbox
        .xtask(&["run", "--cluster", "--detach", "--nodes", "5"])
        .fails_with("has 3 nodes, not 5");
    sandbox
        .xtask(&["run", "--cluster", "--detach", "--nodes", "4"])
        .fails_with("a local cluster has 3 or 5 nodes, not `4`");
}

#[test]
fn a_node_that_cannot_start_is_named_and_the_others_are_stopped() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopCluster(&sandbox);
    // n2's client port is n1's plus 10: hold that one, so that n1 starts and n2 cannot. Both
    // below the ephemeral range, where no test picking its ports lands.
    let base = free_port_block();
    let holder = std::net::TcpListener::bind(("127.0.0.1", base + 10)).unwrap();
    let busy = holder.local_addr().unwrap().port();
    let n1_port = base.to_string();
    let run = sandbox.xtask(&[
        "run",
        "--cluster",
        "--detach",
        "--timeout",
        "120",
        "--cluster-port",
        "0",
        "--mirror",
        &mirror.url,
        "--version",
        &server.version,
        "--port",
        &n1_port,
        "--http-port",
        "0",
        "--ws-port",
        "0",
    ]);
    let run = run.fails_with("node n2 exited during start-up");
    assert!(
        run.stderr.contains(&port_held_by_this_test(busy)),
        "{}",
        run.stderr
    );
    // n1 did start (its log says so), and was stopped again.
    let log = std::fs::read_to_string(sandbox.nats_dir().join("cluster/n1/logs/nats.log")).unwrap();
    let n1_pid: u32 = log
        .lines()
        .find(|l| l.ends_with("Server is ready"))
        .and_then(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
        .unwrap_or_else(|| panic!("n1 never got ready:\n{log}"));
    assert!(gone(n1_pid), "n1 (pid {n1_pid}) was left running");
    assert_eq!(
        sandbox.xtask(&["status"]).code,
        Some(3),
        "status of nothing running"
    );
    // It never was ready, so no node count was settled: another one may be asked for.
    assert!(!sandbox.nats_dir().join("cluster/cluster.json").exists());
}

#[cfg(unix)]
#[test]
fn a_foreground_cluster_shows_every_nodes_log_reports_a_dead_node_and_stops_on_ctrl_c() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopCluster(&sandbox);
    let args = cluster_args(&mirror, &server, &[]);
    let mut child = sandbox
        .command(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = line_by_line(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("Ctrl-C stops every node") {
        let line = lines
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("the cluster did not get ready:\n{seen}"));
        seen.push_str(&line);
        seen.push('\n');
    }
    for name in ["n1", "n2", "n3"] {
        let prefix = format!("{name} | ");
        assert!(
            seen.lines()
                .any(|l| l.starts_with(&prefix) && l.ends_with("[INF] Server is ready")),
            "no log of {name}:\n{seen}"
        );
    }
    let (ok, status) = status_json(&sandbox);
    assert!(ok, "{status}");
    let pids: Vec<u32> = ["n1", "n2", "n3"]
        .map(|name| node(&status, name)["pid"].as_u64().unwrap() as u32)
        .to_vec();

    // A node that dies is reported with the end of its log; the others go on.
    kill_hard(pids[1]);
    let mut after = String::new();
    while !after.contains("node n2 stopped by itself") {
        let line = lines
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("the death of n2 was not reported:\n{after}"));
        after.push_str(&line);
        after.push('\n');
    }
    assert!(alive(pids[0]) && alive(pids[2]), "{after}");

    signal(child.id(), "INT");
    let exit = wait_for(DEADLINE, || child.try_wait().unwrap()).expect("xtask did not exit");
    assert!(exit.success(), "{exit}");
    for pid in pids {
        assert!(gone(pid), "node pid {pid} outlived the xtask");
    }
}

#[test]
fn without_a_cluster_smoke_failover_runs_a_temporary_one_and_removes_it() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let run = sandbox.xtask(&[
        "smoke",
        "--json",
        "--failover",
        "--mirror",
        &mirror.url,
        "--version",
        &server.version,
    ]);
    let report: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", run.stdout, run.stderr));
    assert!(run.success, "{report}\n{}", run.stderr);
    assert_eq!(report["server"]["kind"], "temporary cluster", "{report}");
    assert_eq!(report["server"]["temporary"], true, "{report}");
    assert_eq!(
        report["server"]["nodes"],
        serde_json::json!(["n1", "n2", "n3"])
    );
    assert_eq!(
        (report["passed"].as_u64(), report["failed"].as_u64()),
        (Some(12), Some(0)),
        "{report}"
    );
    let failover = &report["checks"][11];
    assert_eq!(failover["name"], "failover");
    assert!(
        failover["note"]
            .as_str()
            .is_some_and(|note| note.contains("(graceful)") && note.contains("none lost")),
        "{failover}"
    );
    // Its nodes and its directory are gone, and the checkout's own cluster never ran.
    let dir = report["server"]["dir"].as_str().unwrap();
    assert!(!std::path::Path::new(dir).exists(), "{dir} is left");
    assert_eq!(
        processes_naming(std::path::Path::new(dir)),
        Vec::<u32>::new()
    );
    assert!(!sandbox.nats_dir().join("cluster").exists());
}

#[test]
fn restart_reload_logs_env_token_rotation_and_reset_work_on_the_whole_cluster() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopCluster(&sandbox);
    start_cluster(&sandbox, &mirror, &server);
    let (_, first) = status_json(&sandbox);
    let url = |status: &Value, name: &str| {
        node(status, name)["client_url"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let old = sandbox.token();
    let sent = publish_acked_replicated(&url(&first, "n1"), &old, "KEPT", 3, 0..20);

    // restart: every node again, on its own ports, with its data.
    sandbox.xtask(&["restart"]).ok();
    let (ok, restarted) = status_json(&sandbox);
    assert!(ok, "{restarted}");
    for name in ["n1", "n2", "n3"] {
        assert_eq!(url(&restarted, name), url(&first, name));
        assert_ne!(node(&restarted, name)["pid"], node(&first, name)["pid"]);
    }
    assert_eq!(
        stored_eventually(&url(&restarted, "n2"), &old, "KEPT"),
        sent
    );

    // logs: every node's lines after its name; one node's alone with --node.
    let logs = sandbox.xtask(&["logs", "-n", "9"]).ok();
    assert_eq!(logs.stdout.lines().count(), 9, "{}", logs.stdout);
    assert!(
        logs.stdout
            .lines()
            .all(|l| ["n1 | ", "n2 | ", "n3 | "].iter().any(|p| l.starts_with(p))),
        "{}",
        logs.stdout
    );
    // Merged in the order they were written: `nK | [pid] 2026/12/02 10:55:03.698756 ...`.
    let times: Vec<String> = logs
        .stdout
        .lines()
        .map(|l| {
            l.split_whitespace()
                .skip(3)
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{}", logs.stdout);
    let n2_log =
        || std::fs::read_to_string(sandbox.nats_dir().join("cluster/n2/logs/nats.log")).unwrap();
    let before = n2_log();
    let one = sandbox.xtask(&["logs", "--node", "n2", "-n", "2"]).ok();
    assert_eq!(one.stdout.lines().count(), 2, "{}", one.stdout);
    assert!(
        the_end_of_the_log_between(&one.stdout, &before, &n2_log()),
        "not the end of n2's log: {}",
        one.stdout
    );

    // env: every node's URL.
    let env = sandbox.xtask(&["env", "--format", "dotenv"]).ok();
    let urls = ["n1", "n2", "n3"]
        .map(|name| url(&restarted, name))
        .join(",");
    assert_eq!(env.stdout, format!("NATS_URL={urls}\n"));

    // reload: Windows cannot signal a background server, and says so.
    if cfg!(windows) {
        sandbox
            .xtask(&["reload"])
            .fails_with("cannot be signalled to reload its config");
    } else {
        reload_each_node_and_every_node(&sandbox, &restarted);
    }

    // token rotate: every node restarted with the new token; the routes keep theirs.
    let password = route_password(&sandbox);
    sandbox.xtask(&["token", "rotate"]).ok();
    let new = sandbox.token();
    assert_eq!(route_password(&sandbox), password);
    let (ok, rotated) = status_json(&sandbox);
    assert!(ok, "{rotated}");
    for name in ["n1", "n2", "n3"] {
        let client = url(&rotated, name);
        let with = |token: &str| {
            xtask_probe::Connection::open(
                &client,
                &xtask_probe::Auth::Token(token.to_string()),
                "test",
                None,
            )
            .and_then(|mut c| c.ping())
            .is_ok()
        };
        assert!(!with(&old) && with(&new), "{name}");
    }
    // The restarts kept n2's edited config.
    assert_eq!(
        node_json(&rotated, "n2", "/varz")["max_payload"],
        1024 * 1024
    );

    // bench: a stream with a replica on every node, every message accounted for.
    let bench = sandbox
        .xtask(&["bench", "--json", "js", "--replicas", "3", "--msgs", "300"])
        .ok();
    let report: Value = serde_json::from_str(&bench.stdout).unwrap();
    assert_eq!(
        (
            report["server"]["mode"].as_str(),
            report["server"]["nodes"].as_u64()
        ),
        (Some("cluster"), Some(3)),
        "{report}"
    );
    let js = &report["benchmarks"][0];
    assert_eq!(js["params"]["replicas"], 3);
    assert_eq!(
        (js["subscribers"]["msgs"].as_u64(), js["missing"].as_u64()),
        (Some(300), Some(0)),
        "{js}"
    );

    // reset --logs: every node's data together with the single server's, and the logs; the
    // cluster back, empty.
    let single_data = sandbox
        .nats_dir()
        .join("data/jetstream/jetstream/left-by-the-single");
    std::fs::create_dir_all(single_data.parent().unwrap()).unwrap();
    std::fs::write(&single_data, b"stored").unwrap();
    let logs = |name: &str| {
        sandbox
            .nats_dir()
            .join(format!("cluster/{name}/logs/nats.log"))
    };
    let old_log = std::fs::read_to_string(logs("n2")).unwrap();
    let reset = sandbox.xtask(&["reset", "--yes", "--logs"]).ok();
    assert!(!single_data.exists(), "{}", reset.stdout);
    let (ok, status) = status_json(&sandbox);
    assert!(ok, "{status}");
    for name in ["n1", "n2", "n3"] {
        let jsz = node_json(&status, name, "/jsz");
        assert_eq!(jsz["streams"], 0, "{name}: {jsz}");
    }
    // The nodes started again into new logs: none of the old lines is there.
    let new_log = std::fs::read_to_string(logs("n2")).unwrap();
    let first_old = old_log.lines().next().unwrap();
    assert!(!new_log.contains(first_old), "n2's old log is kept");
    assert!(sandbox.nats_dir().join("cluster/cluster.json").exists());
}

/// A base port B below the OS's ephemeral range (so that no test picking its ports gets one)
/// such that every port a 3-node cluster derives from a single server on B, B+1 and B+2 is free:
/// B+{0,1,2}+10·k and B+2000+10·k.
fn free_port_block() -> u16 {
    let free = |port: u16| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
    // Another start for every call, so that two tests asking at once get different blocks.
    static CALLS: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let seed = (std::process::id() as u16).wrapping_add(call.wrapping_mul(101));
    (0..200u16)
        .map(|i| 20_000 + (seed.wrapping_add(i * 37) % 400) * 20)
        .find(|&base| {
            (0..3u16).all(|k| {
                [0u16, 1, 2, 2000]
                    .iter()
                    .all(|offset| free(base + offset + 10 * k))
            })
        })
        .expect("no free block of ports between 20000 and 28000")
}

/// `run --cluster --detach` with every port option, n1's ports at `base`, `base + 1` and
/// `base + 2` and its routes at `base + 2000`.
fn moving_the_cluster_to(base: u16) -> Vec<String> {
    let port = |offset: u16| (base + offset).to_string();
    let mut args: Vec<String> = ["run", "--cluster", "--detach", "--timeout", "120"]
        .map(String::from)
        .to_vec();
    for (option, offset) in [
        ("--port", 0),
        ("--http-port", 1),
        ("--ws-port", 2),
        ("--cluster-port", 2000),
    ] {
        args.extend([option.to_string(), port(offset)]);
    }
    args
}

#[test]
fn a_first_cluster_takes_its_ports_from_the_single_servers_config_and_port_options_move_it() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let base = free_port_block();
    let (client, http, ws) = (
        base.to_string(),
        (base + 1).to_string(),
        (base + 2).to_string(),
    );
    sandbox
        .xtask(&[
            "setup",
            "--mirror",
            &mirror.url,
            "--version",
            &server.version,
            "--port",
            &client,
            "--http-port",
            &http,
            "--ws-port",
            &ws,
        ])
        .ok();
    let _stop = StopOnDrop(&sandbox);
    sandbox
        .xtask(&["run", "--cluster", "--detach", "--timeout", "120"])
        .ok();
    let (_, status) = status_json(&sandbox);
    for (k, name) in ["n1", "n2", "n3"].iter().enumerate() {
        let shift = 10 * k as u16;
        let node = node(&status, name);
        assert_eq!(
            node["client_url"],
            format!("nats://127.0.0.1:{}", base + shift),
            "{status}"
        );
        assert_eq!(
            node["monitoring_url"],
            format!("http://127.0.0.1:{}", base + 1 + shift),
            "{status}"
        );
        let routes = node_json(&status, name, "/varz");
        assert_eq!(
            routes["cluster"]["cluster_port"],
            base + 2000 + shift,
            "{routes}"
        );
    }

    // Port options given again move every node; a node config you edited is rewritten for
    // them and kept beside it (`.bak`).
    sandbox.xtask(&["stop"]).ok();
    let n2_config = sandbox.nats_dir().join("cluster/n2/nats-server.conf");
    let edited = format!(
        "{}\n# my edit\n",
        std::fs::read_to_string(&n2_config).unwrap()
    );
    std::fs::write(&n2_config, &edited).unwrap();
    let moved = free_port_block();
    assert_ne!(moved, base, "the same block twice");
    let run = sandbox.xtask(&moving_the_cluster_to(moved)).ok();
    let (_, status) = status_json(&sandbox);
    for (k, name) in ["n1", "n2", "n3"].iter().enumerate() {
        assert_eq!(
            node(&status, name)["client_url"],
            format!("nats://127.0.0.1:{}", moved + 10 * k as u16),
            "{status}"
        );
    }
    let backups: Vec<String> = std::fs::read_dir(n2_config.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "bak"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert_eq!(backups, [edited], "{}", run.stderr);
}

/// The lines of each node's log, by node name.
fn node_logs(sandbox: &Sandbox) -> Vec<(String, Vec<String>)> {
    ["n1", "n2", "n3"]
        .iter()
        .map(|name| {
            let path = sandbox
                .nats_dir()
                .join(format!("cluster/{name}/logs/nats.log"));
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            (name.to_string(), text.lines().map(str::to_string).collect())
        })
        .collect()
}

/// The lines each node logged since `before`, that contain `needle`.
fn logged_since(
    before: &[(String, Vec<String>)],
    after: &[(String, Vec<String>)],
    needle: &str,
) -> Vec<String> {
    before
        .iter()
        .zip(after)
        .flat_map(|((name, old), (_, new))| {
            new[old.len().min(new.len())..]
                .iter()
                .filter(|line| line.contains(needle))
                .map(move |line| format!("{name}: {line}"))
        })
        .collect()
}

#[test]
fn waiting_for_a_cluster_floods_no_log_and_smoke_provokes_only_its_own_errors() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopCluster(&sandbox);
    // A follower can fail one `/healthz` before the next heartbeat tells it what the leader
    // committed; polling while the meta group formed logged dozens per node.
    let at_most_one_per_node = |lines: &[String], when: &str| {
        for name in ["n1", "n2", "n3"] {
            let of_node = lines
                .iter()
                .filter(|l| l.starts_with(&format!("{name}: ")))
                .count();
            assert!(of_node <= 1, "{when}: {}", lines.join("\n"));
        }
    };

    let before = node_logs(&sandbox);
    start_cluster(&sandbox, &mirror, &server);
    let started = node_logs(&sandbox);
    let failed = logged_since(&before, &started, "Healthcheck failed");
    at_most_one_per_node(&failed, "first start");

    // A restart elects a new meta leader, which takes seconds: the flood was worst here.
    sandbox.xtask(&["restart"]).ok();
    let restarted = node_logs(&sandbox);
    let failed = logged_since(&started, &restarted, "Healthcheck failed");
    at_most_one_per_node(&failed, "restart");

    // Smoke's own [ERR] lines are those its negative checks provoke: a refused token and a
    // payload over the limit.
    sandbox.xtask(&["smoke"]).ok();
    let smoked = node_logs(&sandbox);
    let errors = logged_since(&restarted, &smoked, "[ERR]");
    assert!(!errors.is_empty(), "the negative checks provoked nothing");
    let unprovoked: Vec<&String> = errors
        .iter()
        .filter(|l| !l.contains("authentication error") && !l.contains("maximum payload exceeded"))
        .collect();
    assert!(unprovoked.is_empty(), "{unprovoked:#?}");
    assert_eq!(
        logged_since(&restarted, &smoked, "Healthcheck failed"),
        Vec::<String>::new()
    );
}

/// A node frozen (SIGSTOP) until dropped.
#[cfg(unix)]
struct Frozen(u32);

#[cfg(unix)]
impl Drop for Frozen {
    fn drop(&mut self) {
        signal(self.0, "CONT");
    }
}

/// The negative control of the cluster's own checks: a node that stops answering once the
/// single-server checks have passed (frozen right after the jetstream check, before the
/// websocket check goes through n1) fails the routes, meta group and replicas checks, and
/// only those, and smoke exits 1.
#[cfg(unix)]
#[test]
fn the_cluster_checks_fail_when_a_node_stops_answering() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopCluster(&sandbox);
    start_cluster(&sandbox, &mirror, &server);
    let (_, status) = status_json(&sandbox);
    let n3 = node(&status, "n3")["pid"].as_u64().unwrap() as u32;

    let mut smoke = KillOnDrop(
        sandbox
            .command(&["smoke"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let lines = line_by_line(smoke.stdout.take().unwrap());
    let mut seen = Vec::new();
    let mut frozen = None;
    while let Ok(line) = lines.recv_timeout(DEADLINE) {
        if line.starts_with("✓ jetstream") {
            signal(n3, "STOP");
            frozen = Some(Frozen(n3));
        }
        seen.push(line);
    }
    let code = wait_for(DEADLINE, || smoke.try_wait().unwrap())
        .expect("smoke did not end")
        .code();
    drop(frozen);
    let checks = CHECKS.iter().chain(&CLUSTER_CHECKS).copied();
    let failed: Vec<&str> = checks
        .filter(|name| seen.iter().any(|l| l.starts_with(&format!("✗ {name} "))))
        .collect();
    assert_eq!(
        failed,
        ["routes", "meta group", "replicas on every node"],
        "{}",
        seen.join("\n")
    );
    assert_eq!(code, Some(1), "{}", seen.join("\n"));
    assert_eq!(seen.last().map(String::as_str), Some("8 passed, 3 failed"));
}

/// The tests above that need Unix, listed where they cannot run so that the count of the run
/// shows them, each with why.
#[cfg(not(unix))]
mod not_on_this_os {
    #[test]
    #[ignore = "Unix only: sends SIGINT and SIGKILL"]
    fn a_foreground_cluster_shows_every_nodes_log_reports_a_dead_node_and_stops_on_ctrl_c() {}

    #[test]
    #[ignore = "Unix only: freezes a node with SIGSTOP"]
    fn the_cluster_checks_fail_when_a_node_stops_answering() {}

    #[test]
    #[ignore = "Unix only: sends SIGINT and SIGKILL"]
    fn an_interrupted_failover_leaves_every_node_running_on_its_own_ports() {}
}

/// `cargo xtask smoke --failover` running, its output read line by line as it comes.
struct FailoverRun {
    child: KillOnDrop,
    stdout: std::sync::mpsc::Receiver<String>,
    stderr: std::sync::mpsc::Receiver<String>,
    said: Vec<String>,
}

impl FailoverRun {
    fn start(mut command: Command) -> FailoverRun {
        let mut child = KillOnDrop(
            command
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let stdout = line_by_line(child.stdout.take().unwrap());
        let stderr = line_by_line(child.stderr.take().unwrap());
        FailoverRun {
            child,
            stdout,
            stderr,
            said: Vec::new(),
        }
    }

    /// The node the checks had stopped, once the xtask says `{how} node NAME ...` (`stopping`,
    /// `killing`).
    fn stopped_node(&mut self, how: &str) -> String {
        let prefix = format!("{how} node ");
        loop {
            let Ok(line) = self.stderr.recv_timeout(DEADLINE) else {
                let shown: Vec<String> = self.stdout.try_iter().collect();
                panic!(
                    "no node was stopped:\n{}\n{}",
                    self.said.join("\n"),
                    shown.join("\n")
                );
            };
            self.said.push(line.clone());
            if let Some(rest) = line.strip_prefix(&prefix) {
                return rest.split_whitespace().next().unwrap().to_string();
            }
        }
    }

    /// Its exit code once it has ended, and all it printed on stdout and on stderr.
    fn finish(mut self) -> (Option<i32>, String, String) {
        let shown: Vec<String> = self.stdout.iter().collect();
        self.said.extend(self.stderr.iter());
        let code = wait_for(DEADLINE, || self.child.try_wait().unwrap())
            .expect("smoke did not end")
            .code();
        (code, shown.join("\n"), self.said.join("\n"))
    }
}

/// The negative control of the failover check, and what smoke does when it fails: the node it
/// stopped cannot start again (another program took its client port while it was down), so
/// failover fails alone, the node is named with what starts it, and once the port is free it
/// starts.
#[test]
fn failover_fails_when_the_stopped_node_cannot_start_again_and_says_how_to_start_it() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopCluster(&sandbox);
    start_cluster(&sandbox, &mirror, &server);
    let (_, before) = status_json(&sandbox);

    let mut smoke = FailoverRun::start(sandbox.command(&["smoke", "--failover"]));
    // `stopping node n2 (pid 1234), as the checks asked`: take its port once it is down.
    let stopped = smoke.stopped_node("stopping");
    let url = node(&before, &stopped)["client_url"].as_str().unwrap();
    let address = url.trim_start_matches("nats://").to_string();
    let holder = wait_for(DEADLINE, || std::net::TcpListener::bind(&address).ok())
        .expect("the stopped node's port was never free");
    let (code, shown, said) = smoke.finish();
    drop(holder);
    let failed: Vec<&str> = shown.lines().filter(|l| l.starts_with("✗ ")).collect();
    assert_eq!(failed.len(), 1, "{shown}");
    assert!(
        failed[0].starts_with("✗ failover")
            && failed[0].contains(&format!("cannot start {stopped} again")),
        "{}",
        failed[0]
    );
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "warning: node {stopped}, stopped by the checks, could not be started again"
        )) && said.contains("`cargo xtask run --cluster --detach` starts it"),
        "{said}"
    );

    // Its port free again, it starts on its own ports and the cluster is whole again.
    sandbox
        .xtask(&["run", "--cluster", "--detach", "--timeout", "120"])
        .ok();
    let (ok, after) = status_json(&sandbox);
    assert!(ok, "{after}");
    assert_eq!(
        node(&after, &stopped)["client_url"],
        node(&before, &stopped)["client_url"]
    );
}

/// The xtask's process named `name` started by `parent`, once there is one.
#[cfg(unix)]
fn child_named(parent: u32, name: &str) -> u32 {
    use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};
    wait_for(DEADLINE, || {
        let mut system = System::new();
        system.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            ProcessRefreshKind::nothing(),
        );
        system
            .processes()
            .values()
            .find(|p| p.parent() == Some(Pid::from_u32(parent)) && p.name() == name)
            .map(|p| p.pid().as_u32())
    })
    .unwrap_or_else(|| panic!("{parent} started no {name}"))
}

/// What smoke does when the failover is interrupted while a node is down: Ctrl-C lets the
/// failover finish (which starts the node again) and exits 130; checks that end without a word
/// (killed) leave the xtask to start the node itself. Either way every node runs again on its
/// own ports.
#[cfg(unix)]
#[test]
fn an_interrupted_failover_leaves_every_node_running_on_its_own_ports() {
    use std::os::unix::process::CommandExt;
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopCluster(&sandbox);
    start_cluster(&sandbox, &mirror, &server);
    let (_, before) = status_json(&sandbox);

    for interruption in ["Ctrl-C", "checks killed"] {
        let mut command = sandbox.command(&["smoke", "--failover", "--kill"]);
        // Its own process group, which Ctrl-C on a terminal would reach as a whole.
        command.process_group(0);
        let mut smoke = FailoverRun::start(command);
        let stopped = smoke.stopped_node("killing");
        if interruption == "Ctrl-C" {
            let group = format!("-{}", smoke.child.id());
            let status = Command::new("kill")
                .args(["-INT", "--", &group])
                .status()
                .unwrap();
            assert!(status.success());
        } else {
            signal(child_named(smoke.child.id(), "xtask-smoke"), "KILL");
        }
        let (code, shown, said) = smoke.finish();
        if interruption == "Ctrl-C" {
            assert_eq!(code, Some(130), "{said}\n{shown}");
            assert!(
                said.contains("interrupted: the remaining checks were not run")
                    && shown.contains(" failover "),
                "{said}\n{shown}"
            );
        } else {
            assert_eq!(code, Some(128 + 9), "{said}\n{shown}");
            assert!(
                said.contains(&format!(
                    "starting node {stopped} again on its own ports, as the checks stopped it"
                )),
                "{said}"
            );
        }
        every_node_runs_where_it_did(&sandbox, &before, &format!("{interruption}: {said}"));
    }
}

#[test]
fn ports_a_node_picked_win_over_port_options_and_its_config_edits_stay() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopCluster(&sandbox);
    start_cluster(&sandbox, &mirror, &server);
    let (_, before) = status_json(&sandbox);
    let n2 = sandbox.nats_dir().join("cluster/n2");
    let edited = format!(
        "{}# my edit\n",
        std::fs::read_to_string(n2.join("nats-server.conf")).unwrap()
    );
    std::fs::write(n2.join("nats-server.conf"), &edited).unwrap();
    sandbox.xtask(&["stop"]).ok();

    // Other ports asked for: every node comes back on the ports it picked (`ports.json`), and
    // the edited config is started as it is.
    let base = free_port_block();
    let args = moving_the_cluster_to(base);
    sandbox.xtask(&args).ok();
    every_node_runs_where_it_did(&sandbox, &before, "");
    let config = std::fs::read_to_string(n2.join("nats-server.conf")).unwrap();
    assert_eq!(config, edited);
    let backups = |dir: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| name.ends_with(".bak"))
            .collect()
    };
    assert_eq!(backups(&n2), Vec::<String>::new());
    sandbox.xtask(&["stop"]).ok();

    // Without them, the options apply: the nodes move, the edit kept beside the new config.
    for name in ["n1", "n2", "n3"] {
        let node_dir = sandbox.nats_dir().join("cluster").join(name);
        std::fs::remove_file(node_dir.join("ports.json")).unwrap();
    }
    sandbox.xtask(&args).ok();
    let (_, moved) = status_json(&sandbox);
    for (k, name) in ["n1", "n2", "n3"].iter().enumerate() {
        assert_eq!(
            node(&moved, name)["client_url"],
            format!("nats://127.0.0.1:{}", base + 10 * k as u16),
            "{moved}"
        );
    }
    let kept = backups(&n2);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(std::fs::read_to_string(n2.join(&kept[0])).unwrap(), edited);
}

#[test]
fn five_nodes_form_one_meta_group_and_stop_together() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopCluster(&sandbox);
    let args = cluster_args(&mirror, &server, &["--detach", "--nodes", "5"]);
    let run = sandbox.xtask(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let run = run.ok();
    assert!(
        run.stderr.contains("the cluster of 5 nodes is ready"),
        "{}",
        run.stderr
    );
    let (ok, status) = status_json(&sandbox);
    assert!(ok, "{status}");
    let names = ["n1", "n2", "n3", "n4", "n5"];
    let leaders: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| node(&status, name)["meta_leader"] == true)
        .collect();
    assert_eq!(leaders.len(), 1, "{status}");
    for name in names {
        assert_eq!(node(&status, name)["current"], true, "{status}");
        let routez = node_json(&status, name, "/routez");
        let mut peers: Vec<&str> = routez["routes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|route| route["remote_name"].as_str())
            .collect();
        peers.sort();
        peers.dedup();
        let others: Vec<&str> = names.iter().copied().filter(|n| *n != name).collect();
        assert_eq!(peers, others, "{name}: {routez}");
    }
    let pids: Vec<u32> = names
        .iter()
        .map(|name| node(&status, name)["pid"].as_u64().unwrap() as u32)
        .collect();
    sandbox.xtask(&["stop"]).ok();
    assert!(pids.iter().all(|pid| !alive(*pid)), "{pids:?}");
}

/// A node a new cluster's meta group formed without is named and started again, three times at
/// most, and then the start fails naming the short group. n3 runs without JetStream here, so the
/// group forms without it every time: the state nats-server 2.10 can leave a new cluster in by a
/// race on a loaded machine (and under Wine, often), made certain.
#[test]
fn a_node_a_new_cluster_formed_without_is_started_again() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopCluster(&sandbox);
    start_cluster(&sandbox, &mirror, &server);
    sandbox.xtask(&["stop"]).ok();
    // New again: no node has JetStream data; n3 keeps its ports and loses JetStream.
    sandbox.xtask(&["reset", "--yes"]).ok();
    let n3 = sandbox.nats_dir().join("cluster/n3/nats-server.conf");
    let config = std::fs::read_to_string(&n3).unwrap();
    std::fs::write(&n3, without_block(&config, "jetstream {")).unwrap();

    let run = sandbox
        .xtask(&["run", "--cluster", "--detach", "--timeout", "20"])
        .fails_with("the cluster was not ready within 20 s");
    let said = &run.stderr;
    let rejoins = said
        .lines()
        .filter(|l| {
            l.starts_with("the new cluster formed without n3 (")
                && l.ends_with("): starting n3 again")
        })
        .count();
    assert_eq!(rejoins, 3, "{said}");
    assert_eq!(said.matches("stopping node n3").count(), 4, "{said}");
    assert!(!said.contains("starting n1 again"), "{said}");
    assert!(said.contains("counts 2 nodes, not 3"), "{said}");
}

/// The meta group names the nodes as their configs do: nodes whose `server_name` was edited
/// are seen ready, led and current by `run` and `status` all the same.
#[test]
fn nodes_whose_server_name_was_edited_are_seen_ready_and_current() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopCluster(&sandbox);
    start_cluster(&sandbox, &mirror, &server);
    sandbox.xtask(&["stop"]).ok();
    // New again (a renamed node of a formed group would be a new peer), every node renamed.
    sandbox.xtask(&["reset", "--yes"]).ok();
    for name in ["n1", "n2", "n3"] {
        let path = sandbox
            .nats_dir()
            .join(format!("cluster/{name}/nats-server.conf"));
        let config = std::fs::read_to_string(&path).unwrap();
        let named = format!("server_name: \"{name}\"");
        assert!(config.contains(&named), "{config}");
        let renamed = config.replace(&named, &format!("server_name: \"app-{name}\""));
        std::fs::write(&path, renamed).unwrap();
    }

    sandbox
        .xtask(&["run", "--cluster", "--detach", "--timeout", "120"])
        .ok();
    let (ok, status) = status_json(&sandbox);
    assert!(ok, "{status}");
    let leader = status["meta_leader"].as_str().unwrap_or_default();
    assert!(leader.starts_with("app-n"), "{status}");
    for name in ["n1", "n2", "n3"] {
        let node = node(&status, name);
        assert_eq!(node["server_name"], format!("app-{name}"), "{status}");
        assert_eq!(node["current"], true, "{status}");
        assert_eq!(
            node["meta_leader"],
            leader == format!("app-{name}"),
            "{status}"
        );
    }
}

//! `cargo xtask smoke` and `cargo xtask monitor` against real servers.

use std::fs;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};

use serde_json::Value;

use crate::support::*;

fn smoke_json(sandbox: &Sandbox, extra: &[&str]) -> (bool, Value) {
    let mut args = vec!["smoke", "--json"];
    args.extend_from_slice(extra);
    let run = sandbox.xtask(&args);
    (run.success, run.json())
}

fn failed_checks(report: &Value) -> Vec<String> {
    let checks = report["checks"].as_array().unwrap();
    checks
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

fn jsz(endpoints: &Endpoints) -> Value {
    monitoring_json(&endpoints.monitoring, "/jsz")
}

#[test]
fn every_check_passes_against_the_running_server_and_nothing_is_left_behind() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    let endpoints = start(&sandbox, &mirror, &server);

    let run = sandbox.xtask(&["smoke"]).ok();
    for name in CHECKS {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.starts_with("✓") && l.contains(name)),
            "no ✓ {name}:\n{}",
            run.stdout
        );
    }
    assert_eq!(run.stdout.lines().last(), Some("8 passed, 0 failed"));
    let (ok, report) = smoke_json(&sandbox, &[]);
    assert!(
        ok && report["passed"] == 8 && report["failed"] == 0,
        "{report}"
    );
    assert_eq!(report["server"]["temporary"], false);
    let jsz = jsz(&endpoints);
    assert_eq!(
        (jsz["streams"].as_u64(), jsz["consumers"].as_u64()),
        (Some(0), Some(0)),
        "smoke left streams behind"
    );
}

#[test]
fn without_a_server_smoke_runs_its_own_and_cleans_up() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let (ok, report) = smoke_json(
        &sandbox,
        &["--mirror", &mirror.url, "--version", &server.version],
    );
    assert!(ok, "{report}");
    assert_eq!(report["checks"].as_array().unwrap().len(), CHECKS.len());
    assert_eq!(report["server"]["temporary"], true);
    let pid = report["server"]["pid"].as_u64().unwrap() as u32;
    assert!(!alive(pid), "the temporary server is still running");
    assert!(
        !std::path::Path::new(report["server"]["dir"].as_str().unwrap()).exists(),
        "its directory is left"
    );
    assert_eq!(
        sandbox.xtask(&["status"]).code,
        Some(3),
        "smoke left the checkout's server running"
    );
}

#[test]
fn a_missing_token_file_is_named_with_what_to_run_and_token_rotate_mends_it() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    start(&sandbox, &mirror, &server);
    fs::remove_file(sandbox.nats_dir().join(".env.nats")).unwrap();

    let run = sandbox
        .xtask(&["smoke"])
        .fails_with(".env.nats` is missing, and with it the token");
    for next in [
        "`cargo xtask setup` writes a new one",
        "`cargo xtask token rotate`",
    ] {
        assert!(run.stderr.contains(next), "no {next} in:\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("No such file"), "{}", run.stderr);

    // The step it names for a running server works: a new token, the server restarted with it.
    sandbox.xtask(&["token", "rotate"]).ok();
    let run = sandbox.xtask(&["smoke"]).ok();
    assert_eq!(run.stdout.lines().last(), Some("8 passed, 0 failed"));
}

#[test]
fn smoke_fails_against_a_server_with_another_token() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    start(&sandbox, &mirror, &server);
    fs::write(
        sandbox.nats_dir().join(".env.nats"),
        "NATS_TOKEN=nats_not_the_servers\n",
    )
    .unwrap();

    let run = sandbox.xtask(&["smoke"]);
    assert!(!run.success);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("✗ token authentication")),
        "{}",
        run.stdout
    );
    let last = run.stdout.lines().last().unwrap_or_default().to_string();
    assert!(
        last.ends_with(" failed") && !last.ends_with(" 0 failed"),
        "{last}"
    );
    let (ok, report) = smoke_json(&sandbox, &[]);
    assert!(!ok);
    assert!(
        failed_checks(&report).contains(&"token authentication".to_string()),
        "{report}"
    );
    assert_eq!(
        report["checks"].as_array().unwrap().len(),
        CHECKS.len(),
        "every check runs"
    );
}

#[test]
fn smoke_fails_against_a_server_without_jetstream() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    sandbox
        .with_ports(&["setup"], &mirror, &server, Ports::picked())
        .ok();
    sandbox.edit_config(|text| without_block(&text, "jetstream {"));

    // Started by hand the way `run` starts it, as `run` itself insists on JetStream.
    let child = ByHand::start(&sandbox, &sandbox.token());
    fs::write(
        sandbox.nats_dir().join("nats-server.pid"),
        child.child.id().to_string(),
    )
    .unwrap();

    let (ok, report) = smoke_json(&sandbox, &[]);
    drop(child);
    assert!(!ok);
    let failed = failed_checks(&report);
    assert!(
        failed.contains(&"jetstream".to_string())
            && failed.contains(&"monitoring endpoints".to_string()),
        "{report}"
    );
    assert!(
        !failed.contains(&"publish/subscribe".to_string()),
        "{report}"
    );
}

/// A nats-server started by hand in the sandbox with `token` or else the checkout's own, and
/// the config rewritten for the ports it listens on, so that they are this checkout's
/// configured ports.
fn started_by_hand(
    sandbox: &Sandbox,
    mirror: &Mirror,
    server: &ServerBinary,
    token: Option<&str>,
) -> ByHand {
    sandbox
        .with_ports(&["setup"], mirror, server, Ports::picked())
        .ok();
    let token = token.map_or_else(|| sandbox.token(), str::to_string);
    let by_hand = ByHand::start(sandbox, &token);
    let port = |key: &str| by_hand.url(key).rsplit(':').next().unwrap().to_string();
    let (client, http, ws) = (port("nats"), port("monitoring"), port("websocket"));
    sandbox
        .xtask(&[
            "setup",
            "--regenerate-config",
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
    by_hand
}

#[test]
fn smoke_checks_a_server_answering_on_the_configured_ports() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let by_hand = started_by_hand(&sandbox, &mirror, &server, None);

    let (ok, report) = smoke_json(&sandbox, &[]);
    assert!(ok, "{report}");
    assert_eq!(report["server"]["kind"], "answering", "{report}");
    assert_eq!(
        report["server"]["client_url"],
        by_hand.url("nats"),
        "{report}"
    );
    assert_eq!(report["server"]["version"], server.version.as_str());

    let run = sandbox.xtask(&["smoke"]).ok();
    assert!(
        run.stderr
            .contains("the server answering on this checkout's configured ports"),
        "{}",
        run.stderr
    );
}

#[test]
fn smoke_fails_when_the_server_on_the_configured_ports_refuses_the_token() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _by_hand = started_by_hand(&sandbox, &mirror, &server, Some("nats_another_checkouts"));

    let (ok, report) = smoke_json(&sandbox, &[]);
    assert!(!ok, "{report}");
    assert_eq!(report["server"]["kind"], "answering", "{report}");
    assert!(
        failed_checks(&report).contains(&"token authentication".to_string()),
        "{report}"
    );
}

/// Publishes small messages as fast as it can until stopped; counts them.
struct Traffic {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl Traffic {
    fn start(url: String, token: String) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let (s, n) = (stop.clone(), sent.clone());
        let thread = std::thread::spawn(move || {
            let runtime = runtime();
            runtime.block_on(async {
                let client = async_nats::ConnectOptions::with_token(token)
                    .connect(url)
                    .await
                    .unwrap();
                while !s.load(Ordering::SeqCst) {
                    client
                        .publish("traffic", "0123456789".into())
                        .await
                        .unwrap();
                    client.flush().await.unwrap();
                    n.fetch_add(1, Ordering::SeqCst);
                }
            });
        });
        Traffic { stop, sent, thread }
    }

    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap();
        self.sent.load(Ordering::SeqCst)
    }
}

#[test]
fn monitor_once_reports_totals_and_rates_of_real_traffic() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    let endpoints = start(&sandbox, &mirror, &server);

    let quiet = sandbox
        .xtask(&["monitor", "--once", "--json", "--interval", "0.2"])
        .ok();
    let quiet: Value = serde_json::from_str(&quiet.stdout).unwrap();
    assert_eq!(quiet["rates"]["in_msgs_per_s"], 0.0, "{quiet}");
    for field in [
        "connections",
        "in_msgs",
        "out_msgs",
        "in_bytes",
        "out_bytes",
        "slow_consumers",
        "mem",
        "cpu",
        "uptime",
    ] {
        assert!(!quiet[field].is_null(), "no `{field}` in {quiet}");
    }
    assert_eq!(quiet["jetstream"]["max_storage"], 10u64 << 30);

    let traffic = Traffic::start(endpoints.client.clone(), sandbox.token());
    wait_for(DEADLINE, || {
        (traffic.sent.load(Ordering::SeqCst) > 100).then_some(())
    })
    .unwrap();
    let busy = sandbox
        .xtask(&["monitor", "--once", "--json", "--interval", "0.5"])
        .ok();
    let sent = traffic.finish();
    let busy: Value = serde_json::from_str(&busy.stdout).unwrap();
    let rate = busy["rates"]["in_msgs_per_s"].as_f64().unwrap();
    let total = busy["in_msgs"].as_u64().unwrap();
    assert!(total > 100 && total <= sent, "in_msgs {total}, sent {sent}");
    assert!(
        rate > 0.0 && rate * 0.5 <= sent as f64,
        "rate {rate}/s while {sent} were sent"
    );
    let byte_rate = busy["rates"]["in_bytes_per_s"].as_f64().unwrap();
    assert!(
        (byte_rate - rate * 10.0).abs() < 1e-6 * byte_rate,
        "10-byte messages: {byte_rate} B/s at {rate} msg/s"
    );
    assert!(busy["connections"].as_u64().unwrap() >= 1);
}

#[test]
fn monitor_once_with_nothing_running_says_so_and_exits_3() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    sandbox
        .with_ports(&["setup"], &mirror, &server, Ports::picked())
        .ok();
    for args in [
        &["monitor", "--once"][..],
        &["monitor", "--once", "--json"],
        &["monitor", "--once", "--connections"],
    ] {
        let run = sandbox.xtask(args);
        assert_eq!(run.code, Some(3), "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("nothing of this checkout runs")
                && run.stderr.contains("`cargo xtask run --detach` starts"),
            "{args:?}: {}",
            run.stderr
        );
        assert_eq!(run.stdout, "", "{args:?}");
    }
}

#[test]
fn monitor_waits_for_a_server_not_running_yet_and_shows_it_once_started() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    sandbox
        .with_ports(&["setup"], &mirror, &server, Ports::picked())
        .ok();
    let samples = Samples::start(&sandbox, "0.1");
    let waiting = samples.next("nothing running", |s| s["error"].is_string());
    assert_eq!(waiting["running"], false, "{waiting}");
    assert!(
        waiting["error"]
            .as_str()
            .unwrap()
            .starts_with("nothing of this checkout runs: `cargo xtask run --detach` starts"),
        "{waiting}"
    );
    start(&sandbox, &mirror, &server);
    samples.next("the server started", |s| s["server_id"].is_string());
}

/// Reads `monitor --json` samples line by line.
struct Samples {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
}

impl Samples {
    fn start(sandbox: &Sandbox, interval: &str) -> Samples {
        let mut child = sandbox
            .command(&["monitor", "--json", "--interval", interval])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = line_by_line(child.stdout.take().unwrap());
        Samples { child, lines }
    }

    fn next(&self, what: &str, test: impl Fn(&Value) -> bool) -> Value {
        loop {
            let line = self
                .lines
                .recv_timeout(DEADLINE)
                .unwrap_or_else(|_| panic!("no sample with {what}"));
            let sample: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("monitor --json printed `{line}`: {e}"));
            if test(&sample) {
                return sample;
            }
        }
    }
}

impl Drop for Samples {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn seconds_between(a: &Value, b: &Value) -> f64 {
    let time = |s: &Value| humantime::parse_rfc3339_weak(s["now"].as_str().unwrap()).unwrap();
    time(b).duration_since(time(a)).unwrap().as_secs_f64()
}

#[test]
fn monitor_rates_are_the_traffic_between_samples_over_server_time() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    let endpoints = start(&sandbox, &mirror, &server);

    let samples = Samples::start(&sandbox, "0.2");
    let first = samples.next("totals", |s| s["in_msgs"].is_u64());
    let before = first["in_msgs"].as_u64().unwrap();
    const SENT: u64 = 500;
    publish(
        &endpoints.client,
        &sandbox.token(),
        "counted",
        SENT as usize,
        b"0123456789",
    );

    let mut previous = first;
    loop {
        let sample = samples.next("a sample", |s| s["in_msgs"].is_u64());
        let delta = sample["in_msgs"].as_u64().unwrap() - previous["in_msgs"].as_u64().unwrap();
        let expected = delta as f64 / seconds_between(&previous, &sample);
        let rate = sample["rates"]["in_msgs_per_s"].as_f64().unwrap();
        assert!(
            (rate - expected).abs() <= 1e-9 * expected.max(1.0),
            "rate {rate}, but {delta} msgs over the server's interval make {expected}"
        );
        let bytes = sample["rates"]["in_bytes_per_s"].as_f64().unwrap();
        assert!(
            (bytes - 10.0 * rate).abs() <= 1e-6 * bytes.max(1.0),
            "{bytes} B/s for {rate} 10-byte msgs/s"
        );
        let total = sample["in_msgs"].as_u64().unwrap() - before;
        assert!(total <= SENT, "{total} messages counted, {SENT} sent");
        if total == SENT {
            break;
        }
        previous = sample;
    }
}

#[cfg(unix)]
#[test]
fn monitor_keeps_watching_across_a_server_restart() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    start(&sandbox, &mirror, &server);

    let mut samples = Samples::start(&sandbox, "0.1");
    let first = samples.next("a server id", |s| s["server_id"].is_string());
    sandbox.xtask(&["stop"]).ok();
    samples.next("an error", |s| s["error"].is_string());
    // On new ports: monitor finds the server again through the checkout, not a stale URL.
    start(&sandbox, &mirror, &server);
    let id = first["server_id"].clone();
    let back = samples.next("the new server", |s| {
        s["server_id"].is_string() && s["server_id"] != id
    });
    assert!(back["rates"].is_null(), "no rates across a restart: {back}");

    signal(samples.child.id(), "INT");
    let status =
        wait_for(DEADLINE, || samples.child.try_wait().unwrap()).expect("monitor did not exit");
    assert!(status.success(), "Ctrl-C should exit 0, got {status}");
}

/// The first smoke of a checkout builds its checks from nothing, in a target directory of the
/// test's own: half a minute or more of compiling, which the user is told of.
#[test]
fn the_first_smoke_announces_the_build_of_its_checks_and_the_next_reuses_it() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let target = tempfile::tempdir().unwrap();
    let in_fresh_target = |args: &[&str]| {
        let mut command = sandbox.command(args);
        command.env("CARGO_TARGET_DIR", target.path());
        Run::from(command.output().unwrap())
    };

    let smoke = in_fresh_target(&[
        "smoke",
        "--mirror",
        &mirror.url,
        "--version",
        &server.version,
    ])
    .ok();
    // Piped: one line before and one after, with the time it took; nothing of cargo's.
    let lines: Vec<&str> = smoke.stderr.lines().collect();
    assert_eq!(
        lines[0],
        "building the smoke checks (`xtask-smoke`, crate `xtask-clients`): once for this \
         checkout, later runs reuse it",
        "{}",
        smoke.stderr
    );
    let took = lines[1]
        .strip_prefix("built `xtask-smoke` in ")
        .and_then(|rest| rest.strip_suffix(" s"))
        .and_then(|seconds| seconds.parse::<f64>().ok());
    assert!(took.is_some_and(|s| s > 0.0), "{}", smoke.stderr);
    assert!(
        lines[2..]
            .iter()
            .any(|l| l.starts_with("checking a temporary server")),
        "{}",
        smoke.stderr
    );
    assert!(!smoke.stderr.contains("Compiling"), "{}", smoke.stderr);

    // Built once: nothing to build, nothing said.
    let again = in_fresh_target(&["smoke"]).ok();
    assert!(!again.stderr.contains("built"), "{}", again.stderr);
    assert!(!again.stderr.contains("building"), "{}", again.stderr);
    assert_eq!(
        again.stdout.lines().last(),
        Some("8 passed, 0 failed"),
        "{}",
        again.stderr
    );
}

/// `smoke --json`: its exit code and report.
fn smoke_report(sandbox: &Sandbox) -> (Option<i32>, Value) {
    let run = sandbox.xtask(&["smoke", "--json"]);
    (run.code, run.json())
}

/// Asserts that `check` alone failed, saying `why`, and that smoke exited 1.
#[track_caller]
fn only_failed(code: Option<i32>, report: &Value, check: &str, why: &str) {
    assert_eq!(failed_checks(report), [check], "{report}");
    let failure = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == check)
        .unwrap();
    let error = failure["error"].as_str().unwrap_or_default();
    assert!(error.contains(why), "{check}: no `{why}` in `{error}`");
    assert_eq!(code, Some(1), "{report}");
}

/// Each message check against a server whose config sends that check's messages elsewhere
/// (a subject mapping): that check fails, naming what it missed, and no other.
#[test]
fn each_message_check_fails_alone_against_a_server_that_misroutes_its_messages() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    sandbox
        .with_ports(&["setup"], &mirror, &server, Ports::picked())
        .ok();
    let config = sandbox.config_file();
    let original = fs::read_to_string(&config).unwrap();
    let elsewhere = "\"elsewhere.{{wildcard(1)}}\"";
    let cases = [
        (
            "publish/subscribe",
            format!("\"smoke.*.pubsub\": {elsewhere}"),
            "expected the message at the other connection",
        ),
        (
            "request/reply",
            format!("\"smoke.*.echo\": {elsewhere}"),
            "expected a reply from the other connection, seen \"no responders\"",
        ),
        (
            // Something answers where nobody should: JetStream's API.
            "no responders",
            "\"smoke.*.nobody\": \"$JS.API.INFO\"".to_string(),
            "expected \"no responders\", seen an answer",
        ),
        (
            // A step that fails: the stream still goes.
            "jetstream",
            format!("\"smoke.*.js\": {elsewhere}"),
            "expected an acknowledgement of event 1 from SMOKE_",
        ),
        (
            "websocket",
            format!("\"smoke.*.to_ws\": {elsewhere}"),
            "from the TCP client to the WebSocket client",
        ),
        (
            "websocket",
            format!("\"smoke.*.from_ws\": {elsewhere}"),
            "from the WebSocket client to the TCP client",
        ),
    ];
    let mut first = true;
    for (check, mapping, why) in cases {
        fs::write(
            &config,
            format!("{original}\nmappings {{\n  {mapping}\n}}\n"),
        )
        .unwrap();
        let task = if first {
            ["run", "--detach"]
        } else {
            ["restart", "--timeout"]
        };
        first = false;
        let mut args = task.to_vec();
        if args[0] == "restart" {
            args.push("60");
        }
        sandbox.xtask(&args).ok();
        let (code, report) = smoke_report(&sandbox);
        only_failed(code, &report, check, why);
        let jsz = jsz(&sandbox.endpoints());
        assert_eq!(jsz["streams"], 0, "{check}: a stream is left: {jsz}");
    }
}

#[test]
fn the_payload_check_holds_the_server_to_the_limit_of_the_config() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    sandbox
        .with_ports(&["setup"], &mirror, &server, Ports::picked())
        .ok();
    sandbox.edit_config(|text| text.replace("max_payload: 8MB", "max_payload: 64KB"));
    // A server started by hand with 64 KB, answering where the checkout's config (8 MiB,
    // written again below) says its server is.
    let _by_hand = started_by_hand(&sandbox, &mirror, &server, None);
    assert!(
        fs::read_to_string(sandbox.config_file())
            .unwrap()
            .contains("max_payload: 8MB")
    );

    let (code, report) = smoke_report(&sandbox);
    assert_eq!(report["server"]["kind"], "answering", "{report}");
    only_failed(
        code,
        &report,
        "payload size limit",
        "expected a limit of 8388608 bytes, as the config's max_payload says, seen 65536 bytes",
    );
}

#[test]
fn the_websocket_check_fails_against_a_server_without_a_websocket_listener() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    start_with(&sandbox, &mirror, &server, |text| {
        without_block(&text, "websocket {")
    });

    let (code, report) = smoke_report(&sandbox);
    only_failed(
        code,
        &report,
        "websocket",
        "the server has no WebSocket listener",
    );
}

/// A WebSocket listener that lets anyone in: the client port is a server with the token
/// (started by hand), the WebSocket port the checkout's config names belongs to a server
/// without any authorization. Only the websocket check may pass over it; a check that dialled
/// the client port instead would.
#[test]
fn the_websocket_check_fails_against_a_websocket_listener_open_to_anyone() {
    let (server, open, open_mirror) = sandbox_with_mirror();
    open.with_ports(&["setup"], &open_mirror, &server, Ports::picked())
        .ok();
    open.edit_config(|text| without_block(&text, "authorization {"));
    let open_server = ByHand::start(&open, "unused");
    let open_ws = open_server.url("websocket");
    let open_ws_port = open_ws.rsplit(':').next().unwrap();

    let (sandbox, mirror) = sandbox_with_mirror_of(&server);
    let _by_hand = started_by_hand(&sandbox, &mirror, &server, None);
    sandbox
        .xtask(&[
            "setup",
            "--regenerate-config",
            "--mirror",
            &mirror.url,
            "--version",
            &server.version,
            "--ws-port",
            open_ws_port,
        ])
        .ok();

    let (code, report) = smoke_report(&sandbox);
    assert_eq!(report["server"]["kind"], "answering", "{report}");
    only_failed(
        code,
        &report,
        "websocket",
        &format!("expected a client with no token refused at {open_ws}"),
    );
}

#[test]
fn token_authentication_fails_against_a_server_that_lets_anyone_in() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    start_with(&sandbox, &mirror, &server, |text| {
        without_block(&text, "authorization {")
    });

    let (code, report) = smoke_report(&sandbox);
    // Its WebSocket listener lets anyone in too.
    assert_eq!(
        failed_checks(&report),
        ["token authentication", "websocket"],
        "{report}"
    );
    let error = |name: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .and_then(|c| c["error"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    for (check, at) in [("token authentication", "nats://"), ("websocket", "ws://")] {
        let error = error(check);
        assert!(
            error.contains(&format!("expected a client with no token refused at {at}")),
            "{check}: {error}"
        );
    }
    assert_eq!(code, Some(1), "{report}");
}

/// The tests above that need Unix, listed where they cannot run so that the count of the run
/// shows them, each with why.
#[cfg(not(unix))]
mod not_on_this_os {
    #[test]
    #[ignore = "Unix only: signals"]
    fn monitor_keeps_watching_across_a_server_restart() {}
}

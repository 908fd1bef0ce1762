//! `cargo xtask bench` against real servers, with small message counts: every message
//! accounted for, the JSON and CSV as documented, nothing left on the server.

use serde_json::Value;

use crate::support::*;

fn bench_json(sandbox: &Sandbox, args: &[&str]) -> Value {
    let mut all = vec!["bench", "--json"];
    all.extend_from_slice(args);
    sandbox.xtask(&all).ok().json()
}

#[test]
fn every_mode_accounts_for_every_message_and_leaves_no_stream() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    let endpoints = start(&sandbox, &mirror, &server);

    let report = bench_json(
        &sandbox,
        &[
            "pubsub", "--msgs", "2000", "--pubs", "2", "--subs", "3", "--size", "64",
        ],
    );
    assert_eq!(report["server"]["version"], server.version.as_str());
    assert_eq!(report["server"]["mode"], "single");
    let pubsub = &report["benchmarks"][0];
    assert_eq!(pubsub["publishers"]["msgs"], 2000, "{pubsub}");
    assert_eq!(pubsub["publishers"]["clients"].as_array().unwrap().len(), 2);
    // On loopback every subscriber gets every message: none missing.
    assert_eq!(pubsub["subscribers"]["msgs"], 3 * 2000, "{pubsub}");
    assert_eq!(pubsub["missing"], 0, "{pubsub}");
    assert_eq!(report["complete"], true, "{report}");
    assert_eq!(pubsub["subscribers"]["bytes"], 3 * 2000 * 64);
    for key in ["min", "avg", "max", "stddev"] {
        assert!(
            pubsub["publishers"]["per_client_msgs_per_sec"][key].is_number(),
            "{key}"
        );
    }
    assert!(pubsub["cpu"]["server_seconds"].is_number(), "{pubsub}");

    let report = bench_json(&sandbox, &["request", "--msgs", "300", "--clients", "3"]);
    let request = &report["benchmarks"][0];
    assert_eq!(request["publishers"]["msgs"], 300);
    let latency = &request["publishers"]["latency_us"];
    assert_eq!(latency["count"], 300, "{latency}");
    let p = |key: &str| latency[key].as_u64().unwrap();
    assert!(
        p("min") <= p("p50") && p("p50") <= p("p90") && p("p99") <= p("max"),
        "{latency}"
    );

    // A window above the client's own limit of 5,000 acknowledgements in flight completes.
    let wide = bench_json(&sandbox, &["js", "--msgs", "6000", "--window", "6000"]);
    assert_eq!(wide["benchmarks"][0]["subscribers"]["msgs"], 6000, "{wide}");

    let report = bench_json(&sandbox, &["js", "--msgs", "500", "--sync"]);
    let js = &report["benchmarks"][0];
    assert_eq!(
        (
            js["publishers"]["msgs"].as_u64(),
            js["subscribers"]["msgs"].as_u64()
        ),
        (Some(500), Some(500)),
        "{js}"
    );
    assert_eq!(js["missing"], 0);
    assert_eq!(js["publishers"]["latency_us"]["count"], 500);
    let jsz = monitoring_json(&endpoints.monitoring, "/jsz");
    assert_eq!(
        (jsz["streams"].as_u64(), jsz["consumers"].as_u64()),
        (Some(0), Some(0)),
        "{jsz}"
    );

    // CSV as natscli writes it: a header, a row per client.
    let csv = sandbox
        .xtask(&["bench", "--csv", "pubsub", "--msgs", "1000", "--subs", "2"])
        .ok();
    let lines: Vec<&str> = csv.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "#RunID,ClientID,MsgCount,MsgBytes,MsgsPerSec,BytesPerSec,DurationSecs,MinLatencyMicroSecs,\
         AvgLatencyMicroSecs,MaxLatencyMicroSecs,P50LatencyMicroSecs,P90LatencyMicroSecs,\
         P99LatencyMicroSecs,P99.9LatencyMicroSecs,StdDevLatencyMicroSecs"
    );
    let ids: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(ids, ["S0", "S1", "P0"]);
    for line in &lines[1..] {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 15, "{line}");
        assert!(
            fields[2].parse::<u64>().is_ok() && fields[6].parse::<f64>().is_ok(),
            "{line}"
        );
    }

    // More replicas than servers is refused, with the reason.
    sandbox
        .xtask(&["bench", "js", "--replicas", "3", "--msgs", "10"])
        .fails_with("--replicas 3 needs a cluster");

    // A user's stream that would store the load is left alone: no load is sent.
    let token = sandbox.token();
    let runtime = runtime();
    let js = runtime.block_on(async {
        let client = async_nats::ConnectOptions::with_token(token)
            .connect(&endpoints.client)
            .await
            .unwrap();
        let js = async_nats::jetstream::new(client);
        js.create_stream(async_nats::jetstream::stream::Config {
            name: "EVERYTHING_BENCH".into(),
            subjects: vec!["bench.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
        js
    });
    for mode in ["pubsub", "request", "js"] {
        sandbox
            .xtask(&["bench", mode, "--msgs", "10"])
            .fails_with("stream EVERYTHING_BENCH would store the bench's messages");
    }
    let kept = runtime.block_on(async {
        let mut stream = js.get_stream("EVERYTHING_BENCH").await.unwrap();
        stream.info().await.unwrap().state.messages
    });
    assert_eq!(kept, 0);
}

#[test]
fn the_default_suite_runs_each_benchmark_and_the_options_reach_them() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    let endpoints = start(&sandbox, &mirror, &server);

    // `cargo xtask bench` alone: the three benchmarks, at 128 B, each complete.
    let suite = bench_json(&sandbox, &[]);
    let names: Vec<&str> = suite["benchmarks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["name"].as_str())
        .collect();
    assert_eq!(names, ["pubsub", "request", "js"], "{suite}");
    for benchmark in suite["benchmarks"].as_array().unwrap() {
        assert_eq!(benchmark["params"]["size"], 128, "{benchmark}");
        assert_eq!(benchmark["missing"], 0, "{benchmark}");
        assert!(
            benchmark["publishers"]["msgs"].as_u64() > Some(0),
            "{benchmark}"
        );
    }
    assert_eq!(suite["complete"], true, "{suite}");

    // `--duration` sends for that long; `--storage memory` makes a memory stream.
    let timed = bench_json(
        &sandbox,
        &[
            "js",
            "--storage",
            "memory",
            "--duration",
            "1",
            "--size",
            "16",
        ],
    );
    let js = &timed["benchmarks"][0];
    assert_eq!(js["params"]["storage"], "memory", "{js}");
    assert_eq!(js["params"]["size"], 16, "{js}");
    let seconds = js["publishers"]["seconds"].as_f64().unwrap();
    assert!(seconds >= 1.0, "published for {seconds} s, not 1: {js}");
    let sent = js["publishers"]["msgs"].as_u64().unwrap();
    assert!(sent > 0, "{js}");
    assert_eq!(js["subscribers"]["msgs"].as_u64(), Some(sent), "{js}");
    let jsz = monitoring_json(&endpoints.monitoring, "/jsz");
    assert_eq!(jsz["streams"], 0, "{jsz}");

    // `--csv=FILE` writes the rows into FILE and nothing on stdout.
    let file = sandbox.root.path().join("bench.csv");
    let csv = sandbox
        .xtask(&[
            "bench",
            &format!("--csv={}", file.display()),
            "pubsub",
            "--msgs",
            "100",
        ])
        .ok();
    assert!(!csv.stdout.contains("#RunID"), "{}", csv.stdout);
    let written = std::fs::read_to_string(&file).unwrap();
    let rows: Vec<&str> = written.lines().collect();
    assert!(rows[0].starts_with("#RunID,ClientID,MsgCount"), "{written}");
    let clients: Vec<&str> = rows[1..]
        .iter()
        .map(|row| row.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(clients, ["S0", "P0"], "{written}");
}

#[cfg(unix)]
#[test]
fn an_interrupted_js_bench_deletes_its_stream() {
    use std::os::unix::process::CommandExt;
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    let endpoints = start(&sandbox, &mirror, &server);
    // Built first, so that the run below is measuring when it is interrupted.
    sandbox.xtask(&["bench", "--", "--help"]).ok();
    let mut run = sandbox.command(&["bench", "js", "--duration", "600"]);
    // Its own process group, which Ctrl-C on a terminal would reach as a whole.
    run.process_group(0);
    let mut child = KillOnDrop(run.stdout(std::process::Stdio::null()).spawn().unwrap());
    wait_for(DEADLINE, || {
        (monitoring_json(&endpoints.monitoring, "/jsz")["streams"] == 1).then_some(())
    })
    .expect("the bench made no stream");
    let status = std::process::Command::new("kill")
        .args(["-INT", "--", &format!("-{}", child.id())])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = wait_for(DEADLINE, || child.try_wait().unwrap()).expect("the bench did not stop");
    assert_eq!(exit.code(), Some(130), "an interrupted bench: {exit}");
    let jsz = monitoring_json(&endpoints.monitoring, "/jsz");
    assert_eq!(jsz["streams"], 0, "the stream outlived the bench: {jsz}");
}

#[test]
fn a_wrong_token_fails_fast_with_the_authorization_error() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    start(&sandbox, &mirror, &server);
    // The running server keeps the token it started with; the file gets another.
    let env_file = sandbox.nats_dir().join(".env.nats");
    let text = std::fs::read_to_string(&env_file).unwrap();
    std::fs::write(
        &env_file,
        text.replace(&sandbox.token(), "nats_not_the_servers"),
    )
    .unwrap();
    // Built first: the time is the connection's.
    sandbox.xtask(&["bench", "--", "--help"]).ok();
    let started = std::time::Instant::now();
    let run = sandbox
        .xtask(&["bench", "pubsub", "--msgs", "10"])
        .fails_with("authorization violation");
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    // Not a measure of speed: a bench that kept retrying a refused token would never end.
    assert!(started.elapsed() < DEADLINE);
}

#[test]
fn a_benchmark_option_without_its_name_points_to_its_help_which_bench_help_shows() {
    let sandbox = Sandbox::new();
    let run = sandbox.xtask(&["bench", "--msgs", "1000"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    for next in [
        "`--msgs` is an option of a benchmark, given after its name",
        "`cargo xtask bench pubsub --msgs 1000`",
        "`cargo xtask bench pubsub --help` lists pubsub's options",
    ] {
        assert!(run.stderr.contains(next), "no {next} in:\n{}", run.stderr);
    }

    // The task's own options, then every benchmark with its options.
    let help = sandbox.xtask(&["bench", "--help"]);
    assert_eq!(help.code, Some(0), "{}", help.stderr);
    for shown in [
        "--cluster",
        "--mirror",
        "--json",
        "--csv",
        "cargo xtask bench pubsub [OPTIONS]",
        "--pubs",
        "--subs",
        "cargo xtask bench request [OPTIONS]",
        "--clients",
        "cargo xtask bench js [OPTIONS]",
        "--replicas",
        "--storage",
        "--window",
        "--msgs",
        "--duration",
        "--size",
    ] {
        assert!(
            help.stdout.contains(shown),
            "no {shown} in:\n{}",
            help.stdout
        );
    }
    assert!(
        !sandbox.binary().exists(),
        "a server was installed for nothing"
    );
}

#[test]
fn arguments_are_refused_before_any_server_is_installed_or_started() {
    let sandbox = Sandbox::new();
    sandbox
        .xtask(&["bench", "pubsub", "--msgs", "10", "--duration", "2"])
        .fails_with("cannot be used with");
    sandbox
        .xtask(&["bench", "request", "--msgs", "0"])
        .fails_with("--msgs must be at least 1");
    sandbox
        .xtask(&["bench", "pubsub", "--bogus"])
        .fails_with("unexpected argument '--bogus'");
    assert!(
        !sandbox.binary().exists(),
        "a server was installed for nothing"
    );
}

/// The control of the test above: subscribers that receive nothing (the server sends the
/// bench's messages elsewhere) are reported as missing every message, in a run that completes.
#[test]
fn subscribers_that_receive_nothing_are_reported_missing_every_message() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    start_with(&sandbox, &mirror, &server, |text| {
        format!(
            "{text}\nmappings {{\n  \"bench.*.pubsub\": \"elsewhere.{{{{wildcard(1)}}}}\"\n}}\n"
        )
    });

    let report = bench_json(&sandbox, &["pubsub", "--msgs", "500", "--subs", "2"]);
    let pubsub = &report["benchmarks"][0];
    assert_eq!(pubsub["publishers"]["msgs"], 500, "{pubsub}");
    assert_eq!(pubsub["subscribers"]["msgs"], 0, "{pubsub}");
    assert_eq!(pubsub["missing"], 2 * 500, "{pubsub}");
    assert_eq!(report["complete"], false, "{report}");
}

/// The tests above that need Unix, listed where they cannot run so that the count of the run
/// shows them, each with why.
#[cfg(not(unix))]
mod not_on_this_os {
    #[test]
    #[ignore = "Unix only: sends SIGINT to a process group"]
    fn an_interrupted_js_bench_deletes_its_stream() {}
}

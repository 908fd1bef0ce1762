//! `cargo xtask run`, `stop` and `status` driving a real nats-server, set up from a loopback
//! mirror. Every test has its own directory, and its server picks its own ports.

use std::fs;
use std::process::{Child, Stdio};

use crate::support::*;

#[test]
fn run_detach_returns_a_usable_server_and_status_reports_it() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    let run = detach(&sandbox, &mirror, &server, Ports::picked());
    let endpoints = sandbox.endpoints();
    assert!(run.stdout.contains(&endpoints.client), "{}", run.stdout);
    let token = sandbox.token();
    assert!(
        !run.stdout.contains(&token) && !run.stderr.contains(&token),
        "run printed the token"
    );
    let pid = sandbox.recorded_pid().expect("a pid file");
    assert!(alive(pid));

    let status = sandbox.xtask(&["status"]);
    assert!(status.success, "{}", status.stderr);
    assert!(
        status.stdout.contains(&format!("running (pid {pid})")),
        "{}",
        status.stdout
    );
    let (ok, json) = status_json(&sandbox);
    assert!(ok, "{json}");
    assert_eq!(json["running"], true);
    assert_eq!(json["pid"], pid);
    assert_eq!(json["version"], server.version.as_str());
    // The ports the server picked, as reported, are the ones it listens on: the monitoring
    // URL answers, and the server says the client and WebSocket ports are those reported.
    let port_of = |key: &str, scheme: &str| {
        let url = json[key].as_str().unwrap_or_default();
        url.strip_prefix(&format!("{scheme}://127.0.0.1:"))
            .and_then(|port| port.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{key}: `{url}`"))
    };
    let reported = [
        port_of("client_url", "nats"),
        port_of("websocket_url", "ws"),
    ];
    let monitoring = json["monitoring_url"].as_str().unwrap();
    port_of("monitoring_url", "http");
    let varz = monitoring_json(monitoring, "/varz");
    let listening = [&varz["port"], &varz["websocket"]["port"]].map(|p| p.as_u64().unwrap_or(0));
    assert_eq!(reported, listening, "{varz}");
    assert_eq!(json["jetstream"]["max_storage"], 10u64 << 30);

    let sent = publish_acked(&endpoints.client, &token, "READY", 3);
    assert_eq!(stored(&endpoints.client, &token, "READY"), sent);
    let command_line = command_line(pid);
    assert!(
        command_line.contains("--ports_file_dir"),
        "cannot read the command line: `{command_line}`"
    );
    assert!(
        !command_line.contains(&token),
        "the token is on the command line"
    );
}

#[test]
fn run_when_already_running_says_so_with_the_pid() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    start(&sandbox, &mirror, &server);
    let pid = sandbox.recorded_pid().unwrap();
    let run = detach(&sandbox, &mirror, &server, Ports::picked());
    assert!(
        run.stderr.contains(&format!("already running (pid {pid})")),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, where_it_listens(&sandbox.endpoints()));
    assert_eq!(sandbox.recorded_pid(), Some(pid));
}

/// The lines `run` prints on stdout once its server is ready, or when it already runs.
fn where_it_listens(endpoints: &Endpoints) -> String {
    format!(
        "client      {}\nmonitoring  {}\nwebsocket   {}\n",
        endpoints.client, endpoints.monitoring, endpoints.websocket
    )
}

#[test]
fn two_runs_at_once_start_one_server() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    let ports = Ports::picked();
    let (a, b) = std::thread::scope(|scope| {
        let run = || {
            scope.spawn(|| {
                sandbox.with_ports(
                    &["run", "--detach", "--timeout", "120"],
                    &mirror,
                    &server,
                    ports,
                )
            })
        };
        let (a, b) = (run(), run());
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(a.success && b.success, "{}\n{}", a.stderr, b.stderr);
    let already = [&a, &b]
        .iter()
        .filter(|r| r.stderr.contains("already running"))
        .count();
    assert_eq!(already, 1, "{}\n{}", a.stderr, b.stderr);
    let pid = sandbox.recorded_pid().expect("a pid file");
    let (_, status) = status_json(&sandbox);
    assert_eq!(status["pid"], pid);
    // One server, not two: the only process started for this directory is the recorded one.
    assert_eq!(processes_naming(&sandbox.nats_dir()), [pid]);
}

#[test]
fn a_busy_port_is_reported_with_the_process_holding_it() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = holder.local_addr().unwrap().port();
    let ports = Ports {
        client: busy,
        ..Ports::picked()
    };
    let run = sandbox.with_ports(&["run", "--detach"], &mirror, &server, ports);
    run.fails_with(&port_held_by_this_test(busy));
    assert_eq!(sandbox.recorded_pid(), None, "a pid file was left behind");
    assert_eq!(
        sandbox.xtask(&["status"]).code,
        Some(3),
        "status of nothing running"
    );
}

#[test]
fn stop_shuts_the_server_down_gracefully_and_removes_the_pid_file() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    start(&sandbox, &mirror, &server);
    let pid = sandbox.recorded_pid().unwrap();
    assert_eq!(ports_files(&sandbox.nats_dir()).len(), 1);
    let run = sandbox.xtask(&["stop"]).ok();
    assert!(run.stderr.contains(&stopped(pid)), "{}", run.stderr);
    assert!(!alive(pid));
    assert_eq!(sandbox.recorded_pid(), None);
    // On Windows the terminated server leaves its ports file, which `stop` removes.
    assert_eq!(ports_files(&sandbox.nats_dir()), Vec::<String>::new());
    if cfg!(unix) {
        assert!(
            sandbox.log().contains("Server Exiting"),
            "no clean shutdown in the log"
        );
    }

    let status = sandbox.xtask(&["status", "--json"]);
    assert!(!status.success);
    assert_eq!(status.stdout.trim(), r#"{"mode":"single","running":false}"#);
}

#[test]
fn stop_when_not_running_says_so() {
    let sandbox = Sandbox::new();
    let run = sandbox.xtask(&["stop"]).ok();
    assert!(run.stderr.contains("not running"), "{}", run.stderr);
}

#[test]
fn a_stale_pid_file_is_cleaned_up() {
    let sandbox = Sandbox::new();
    fs::create_dir_all(sandbox.nats_dir()).unwrap();
    let mut gone = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("--help")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    fs::write(
        sandbox.nats_dir().join("nats-server.pid"),
        format!("{pid}\n"),
    )
    .unwrap();
    let run = sandbox.xtask(&["stop"]).ok();
    assert!(
        run.stderr.contains("removing stale") && run.stderr.contains("not running"),
        "{}",
        run.stderr
    );
    assert_eq!(sandbox.recorded_pid(), None);
}

/// Records `stranger`'s pid as the server's, and checks that `stop` leaves it alone. The
/// stranger is killed however the check ends.
fn stop_spares(stranger: Child, what: &str) {
    let mut stranger = KillOnDrop(stranger);
    let sandbox = Sandbox::new();
    fs::create_dir_all(sandbox.nats_dir()).unwrap();
    fs::write(
        sandbox.nats_dir().join("nats-server.pid"),
        format!("{}\n", stranger.id()),
    )
    .unwrap();
    let run = sandbox.xtask(&["stop"]).ok();
    assert!(
        run.stderr.contains("is now another program"),
        "{}",
        run.stderr
    );
    assert!(
        stranger.try_wait().unwrap().is_none(),
        "{what} was signalled"
    );
    assert_eq!(sandbox.recorded_pid(), None);
    assert_eq!(
        sandbox.xtask(&["status"]).code,
        Some(3),
        "status of nothing running"
    );
}

#[cfg(unix)]
#[test]
fn a_pid_reused_by_another_program_is_never_signalled() {
    stop_spares(
        std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap(),
        "an unrelated program",
    );
}

#[test]
fn a_pid_reused_by_another_nats_server_is_never_signalled() {
    let server = server_binary();
    let elsewhere = tempfile::tempdir().unwrap();
    // Someone else's nats-server: same executable name, another directory.
    let stranger = std::process::Command::new(&server.path)
        .args(["-a", "127.0.0.1", "-p", "-1", "--ports_file_dir"])
        .arg(elsewhere.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    stop_spares(stranger, "another nats-server");
}

#[test]
fn acknowledged_messages_survive_stop_and_run() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    let endpoints = start(&sandbox, &mirror, &server);
    let token = sandbox.token();
    let sent = publish_acked(&endpoints.client, &token, "ORDERS", 200);
    sandbox.xtask(&["stop"]).ok();
    detach(&sandbox, &mirror, &server, Ports::picked());
    assert_eq!(stored(&sandbox.endpoints().client, &token, "ORDERS"), sent);
}

#[cfg(unix)]
#[test]
fn acknowledged_messages_survive_sigkill() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    let endpoints = start(&sandbox, &mirror, &server);
    let token = sandbox.token();
    let sent = publish_acked(&endpoints.client, &token, "PAYMENTS", 200);
    let pid = sandbox.recorded_pid().unwrap();
    signal(pid, "KILL");
    assert!(gone(pid));

    let run = detach(&sandbox, &mirror, &server, Ports::picked());
    assert!(run.stderr.contains("removing stale"), "{}", run.stderr);
    assert_eq!(
        stored(&sandbox.endpoints().client, &token, "PAYMENTS"),
        sent
    );
}

#[cfg(unix)]
#[test]
fn stop_removes_the_ports_file_a_killed_server_left() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    start(&sandbox, &mirror, &server);
    let pid = sandbox.recorded_pid().unwrap();
    assert_eq!(ports_files(&sandbox.nats_dir()).len(), 1);
    signal(pid, "KILL");
    assert!(gone(pid));
    assert_eq!(
        ports_files(&sandbox.nats_dir()).len(),
        1,
        "killed servers leave it"
    );

    sandbox.xtask(&["stop"]).ok();
    assert_eq!(ports_files(&sandbox.nats_dir()), Vec::<String>::new());
    assert_eq!(sandbox.recorded_pid(), None);
}

#[cfg(unix)]
#[test]
fn a_foreground_run_shows_the_log_and_stops_cleanly_on_ctrl_c() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let mut run = Foreground::start(&sandbox, &mirror, &server, Ports::picked());
    let shown = run.wait_for_line(READY);
    assert!(
        shown.contains("[INF] Server is ready"),
        "the log is not shown live:\n{shown}"
    );
    let pid = sandbox.recorded_pid().unwrap();

    signal(run.child.id(), "INT");
    let status = run.exit_status();
    assert!(status.success(), "{status}");
    assert!(!alive(pid), "the server outlived the xtask");
    assert!(
        sandbox.log().contains("Server Exiting"),
        "no clean shutdown in the log"
    );
    assert_eq!(sandbox.recorded_pid(), None);
}

#[test]
fn a_foreground_run_prints_where_its_server_listens_once_ready() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    let mut run = Foreground::ready(&sandbox, &mirror, &server);
    assert_eq!(run.stdout_lines(3), where_it_listens(&sandbox.endpoints()));
    run.stop_from_another_terminal(&sandbox);
}

#[cfg(target_os = "linux")]
#[test]
fn a_killed_foreground_xtask_takes_its_server_along() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let run = Foreground::start(&sandbox, &mirror, &server, Ports::picked());
    run.wait_for_line(READY);
    let pid = sandbox.recorded_pid().unwrap();
    signal(run.child.id(), "KILL");
    assert!(gone(pid), "the server lingers as an orphan");
}

#[test]
fn a_server_that_cannot_start_is_reported_with_its_output() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let ports = Ports::picked();
    sandbox.with_ports(&["setup"], &mirror, &server, ports).ok();
    // Valid to `nats-server -t`, fatal at start: the system account is never defined.
    sandbox.edit_config(|text| format!("{text}\nsystem_account: SYS\n"));

    let run = sandbox
        .xtask(&["run", "--detach"])
        .fails_with("nats-server exited during start-up");
    assert!(
        run.stderr.contains("error resolving system account"),
        "{}",
        run.stderr
    );
    assert_eq!(sandbox.recorded_pid(), None);
}

/// The binary run directly, as from a shared target directory, from `dir`: cargo's variables
/// and the sandbox's `--dir` left out, so the xtask must find the checkout by itself.
fn xtask_in(dir: &std::path::Path, args: &[&str]) -> Run {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("NATS_DIR");
    Run::from(command.output().unwrap())
}

#[test]
fn run_directly_the_xtask_acts_on_the_checkout_it_is_run_in() {
    let clone = tempfile::tempdir().unwrap();
    let root = clone.path();
    fs::create_dir_all(root.join("xtask/src")).unwrap();
    fs::create_dir_all(root.join("xtask/probe")).unwrap();
    fs::write(
        root.join("Cargo.toml"),
        "[workspace]\nmembers = [\"xtask\"]\n",
    )
    .unwrap();
    fs::write(
        root.join("xtask/Cargo.toml"),
        "[package]\nname = \"xtask\"\n",
    )
    .unwrap();
    fs::write(
        root.join("xtask/probe/Cargo.toml"),
        "[package]\nname = \"xtask-probe\"\n",
    )
    .unwrap();
    let nats = root.join("infrastructure/nats");
    fs::create_dir_all(&nats).unwrap();
    fs::write(nats.join("nats-server.pid"), "not a pid\n").unwrap();

    // From a subdirectory of that other clone: its pid file is the one looked at.
    let status = xtask_in(&root.join("xtask/src"), &["status"]);
    assert!(!status.success, "nothing runs there: {}", status.stdout);
    let pid_file = std::path::Path::new("infrastructure")
        .join("nats")
        .join("nats-server.pid");
    assert!(
        status
            .stderr
            .contains(&format!("removing stale `{}`", pid_file.display())),
        "{}",
        status.stderr
    );
    assert!(!nats.join("nats-server.pid").exists());
}

#[test]
fn outside_any_checkout_the_xtask_says_so() {
    let elsewhere = tempfile::tempdir().unwrap();
    xtask_in(elsewhere.path(), &["status"])
        .fails_with("is not inside a checkout of this repository");
}

/// Whether the log shows that server `pid` shut down cleanly rather than being killed.
#[cfg(unix)]
fn shut_down_cleanly(sandbox: &Sandbox, pid: u32) -> bool {
    let prefix = format!("[{pid}] ");
    sandbox
        .log()
        .lines()
        .any(|line| line.starts_with(&prefix) && line.ends_with("Server Exiting.."))
}

/// Unix only: on Windows a detached server cannot be asked to stop, and is ended at once.
#[cfg(unix)]
#[test]
fn a_server_that_misses_the_deadline_is_asked_to_stop_before_it_is_killed() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    sandbox
        .with_ports(&["setup"], &mirror, &server, Ports::picked())
        .ok();
    // Up and running, but never usable by the xtask's client: it wants another token.
    sandbox.edit_config(|text| text.replace("token: $NATS_TOKEN", "token: \"nats_someone_elses\""));
    // A deadline the server meets, refusing the token, even on a loaded machine.
    let run = sandbox
        .xtask(&["run", "--detach", "--timeout", "8"])
        .fails_with("was not ready within 8 s");
    assert!(
        run.stderr
            .contains("`cargo xtask run --timeout SECONDS` waits longer"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("last seen: ") && run.stderr.contains("Authorization Violation"),
        "the last reason is not given: {}",
        run.stderr
    );
    let pid: u32 = run
        .stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("stopping nats-server (pid ")?
                .strip_suffix(')')?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no stopping line in {}", run.stderr));
    assert!(gone(pid));
    assert!(
        shut_down_cleanly(&sandbox, pid),
        "killed:\n{}",
        sandbox.log()
    );
    assert_eq!(sandbox.recorded_pid(), None);
}

/// Unix only: a frozen process (SIGSTOP) stands for a server that ignores the request.
#[cfg(unix)]
#[test]
fn stop_kills_a_server_that_does_not_stop_within_its_timeout() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    start(&sandbox, &mirror, &server);
    let pid = sandbox.recorded_pid().unwrap();
    signal(pid, "STOP");

    let stop = sandbox.xtask(&["stop", "--timeout", "1"]).ok();
    assert!(
        stop.stderr.contains(&format!(
            "(pid {pid}) did not stop within 1 s and was killed"
        )),
        "{}",
        stop.stderr
    );
    assert!(gone(pid), "the server is still there");
    assert_eq!(sandbox.recorded_pid(), None);
}

#[test]
fn a_config_without_monitoring_is_named_at_once() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    sandbox
        .with_ports(&["setup"], &mirror, &server, Ports::picked())
        .ok();
    sandbox.edit_config(|text| text.replace("http: ", "# http: "));
    sandbox
        .xtask(&["run", "--detach", "--timeout", "120"])
        .fails_with("the config has no `http` monitoring listener");
    assert_eq!(sandbox.recorded_pid(), None);
}

#[test]
fn a_server_without_jetstream_is_not_ready() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    sandbox
        .with_ports(&["setup"], &mirror, &server, Ports::picked())
        .ok();
    sandbox.edit_config(|text| without_block(&text, "jetstream {"));
    let run = sandbox
        .xtask(&["run", "--detach", "--timeout", "120"])
        .fails_with("nats-server runs without JetStream");
    assert!(
        run.stderr.contains("stopping nats-server"),
        "{}",
        run.stderr
    );
    assert_eq!(sandbox.recorded_pid(), None);
    assert_eq!(
        sandbox.xtask(&["status"]).code,
        Some(3),
        "status of nothing running"
    );
}

#[test]
fn run_and_status_warn_when_other_machines_can_reach_the_server() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    // Ports the server picks, on every interface, for the few seconds the test runs.
    let run = sandbox
        .with_ports(
            &["run", "--detach", "--timeout", "120", "--host", "0.0.0.0"],
            &mirror,
            &server,
            Ports::picked(),
        )
        .ok();
    let warning = "nats-server listens on addresses other machines can reach";
    assert!(run.stderr.contains(warning), "{}", run.stderr);
    let status = sandbox.xtask(&["status"]).ok();
    assert!(status.stderr.contains(warning), "{}", status.stderr);
    let (ok, json) = status_json(&sandbox);
    assert!(ok, "{json}");
    assert!(!json["exposed"].as_array().unwrap().is_empty(), "{json}");

    // On loopback, no warning.
    let (sandbox, mirror) = sandbox_with_mirror_of(&server);
    let _stop = StopOnDrop(&sandbox);
    let run = detach(&sandbox, &mirror, &server, Ports::picked());
    assert!(!run.stderr.contains(warning), "{}", run.stderr);
}

/// The stop of a foreground run from another terminal: on Windows, where the server is ended
/// without a word in its log, too. Nothing of the server stays behind, its ports file included
/// (a terminated server leaves it).
#[test]
fn a_foreground_run_stopped_from_another_terminal_exits_0() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    let mut run = Foreground::ready(&sandbox, &mirror, &server);
    assert_eq!(ports_files(&sandbox.nats_dir()).len(), 1);
    let pid = run.stop_from_another_terminal(&sandbox);
    assert!(gone(pid));
    assert_eq!(sandbox.recorded_pid(), None);
    assert_eq!(ports_files(&sandbox.nats_dir()), Vec::<String>::new());
}

/// What `cargo xtask stop` does on Windows, where the server is ended without a word in its
/// log: only the stop request it leaves tells the foreground run that the exit was asked for.
#[cfg(unix)]
#[test]
fn a_foreground_run_whose_server_is_ended_on_request_without_a_log_line_exits_0() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let mut run = Foreground::ready(&sandbox, &mirror, &server);
    let pid = sandbox.recorded_pid().unwrap();
    fs::write(sandbox.nats_dir().join(".stop-requested"), pid.to_string()).unwrap();
    signal(pid, "KILL");
    let status = run.exit_status();
    assert!(status.success(), "{status}");
    // Its log is there, with its start: the missing exit line means something.
    assert!(
        sandbox
            .log()
            .lines()
            .any(|l| l.starts_with(&format!("[{pid}] ")) && l.contains("Server is ready")),
        "no log of pid {pid}:\n{}",
        sandbox.log()
    );
    assert!(
        !shut_down_cleanly(&sandbox, pid),
        "the server was not ended abruptly"
    );
    run.wait_for_line("was asked to stop");
}

#[cfg(unix)]
#[test]
fn a_foreground_server_killed_by_no_one_s_request_is_a_failure() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let mut run = Foreground::ready(&sandbox, &mirror, &server);
    signal(sandbox.recorded_pid().unwrap(), "KILL");
    let status = run.exit_status();
    assert!(!status.success(), "{status}");
    run.wait_for_line("stopped by itself");
}

/// The tests above that need Unix, listed where they cannot run so that the count of the run
/// shows them, each with why.
#[cfg(not(unix))]
mod not_on_this_os {
    #[test]
    #[ignore = "Unix only: a stand-in process and signals"]
    fn a_pid_reused_by_another_program_is_never_signalled() {}

    #[test]
    #[ignore = "Unix only: sends SIGKILL"]
    fn acknowledged_messages_survive_sigkill() {}

    #[test]
    #[ignore = "Unix only: sends SIGKILL"]
    fn stop_removes_the_ports_file_a_killed_server_left() {}

    #[test]
    #[ignore = "Unix only: sends SIGINT"]
    fn a_foreground_run_shows_the_log_and_stops_cleanly_on_ctrl_c() {}

    #[test]
    #[ignore = "Unix only: a detached server on Windows cannot be asked to stop"]
    fn a_server_that_misses_the_deadline_is_asked_to_stop_before_it_is_killed() {}

    #[test]
    #[ignore = "Unix only: freezes the server with SIGSTOP"]
    fn stop_kills_a_server_that_does_not_stop_within_its_timeout() {}

    #[test]
    #[ignore = "Unix only: sends SIGTERM"]
    fn a_foreground_run_whose_server_is_ended_on_request_without_a_log_line_exits_0() {}

    #[test]
    #[ignore = "Unix only: sends SIGKILL"]
    fn a_foreground_server_killed_by_no_one_s_request_is_a_failure() {}
}

/// The test above that needs Linux (a parent-death signal), listed where it cannot run.
#[cfg(not(target_os = "linux"))]
mod not_on_this_os_but_linux {
    #[test]
    #[ignore = "Linux only: the server ends with the xtask through a parent-death signal"]
    fn a_killed_foreground_xtask_takes_its_server_along() {}
}

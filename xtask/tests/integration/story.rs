//! The README's story, as a user follows it in one checkout, one command after another: the
//! Wine step runs it as the Windows story (`setup` from the release's zip, a detached and a
//! foreground server, each stopped by `stop`), and every other platform runs it too.

use crate::support::*;

#[test]
fn the_readme_story_runs_as_a_user_follows_it() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);

    // Setup downloads the release asset of this host (a zip on Windows) and verifies it.
    let setup = sandbox.with_ports(&["setup"], &mirror, &server, Ports::picked());
    let setup = setup.ok();
    let asset = asset_name(&server.version, host_format());
    assert!(setup.stderr.contains(&asset), "{}", setup.stderr);
    assert!(sandbox.binary().is_file());

    // A detached server, seen by status and proven by smoke.
    sandbox.xtask(&["run", "--detach"]).ok();
    let pid = sandbox.recorded_pid().unwrap();
    let (ok, status) = status_json(&sandbox);
    assert!(ok, "{status}");
    assert_eq!(
        (status["running"].as_bool(), status["pid"].as_u64()),
        (Some(true), Some(u64::from(pid))),
        "{status}"
    );
    sandbox.xtask(&["smoke"]).ok();
    let stop = sandbox.xtask(&["stop"]).ok();
    assert!(stop.stderr.contains(&stopped(pid)), "{}", stop.stderr);
    assert!(gone(pid));
    assert_eq!(leftovers_of_a_server(&sandbox), Vec::<String>::new());

    // A foreground server, stopped from another terminal.
    let mut run = Foreground::start(&sandbox, &mirror, &server, Ports::picked());
    run.wait_for_line(READY);
    let pid = run.stop_from_another_terminal(&sandbox);
    assert!(gone(pid));
    assert_eq!(leftovers_of_a_server(&sandbox), Vec::<String>::new());

    // The log of both runs, the last lines those of the foreground one.
    let logs = sandbox.xtask(&["logs", "-n", "40"]).ok();
    assert!(
        logs.stdout
            .lines()
            .any(|l| l.starts_with(&format!("[{pid}] ")) && l.contains("Server is ready")),
        "{}",
        logs.stdout
    );

    // A new token, never shown; then the data deleted, the config and token kept.
    let old = sandbox.token();
    let rotated = sandbox.xtask(&["token", "rotate"]).ok();
    let new = sandbox.token();
    assert_ne!(new, old);
    for said in [&rotated.stdout, &rotated.stderr] {
        assert!(!said.contains(&new) && !said.contains(&old), "{said}");
    }
    let config = std::fs::read(sandbox.config_file()).unwrap();
    let reset = sandbox.xtask(&["reset", "--yes"]).ok();
    assert!(reset.stdout.contains("deleted `"), "{}", reset.stdout);
    assert_eq!(std::fs::read(sandbox.config_file()).unwrap(), config);
    assert_eq!(sandbox.token(), new);

    // And it starts again, with the new token and an empty store.
    sandbox.xtask(&["run", "--detach"]).ok();
    let endpoints = sandbox.endpoints();
    let jsz = monitoring_json(&endpoints.monitoring, "/jsz");
    assert_eq!(jsz["streams"], 0, "{jsz}");
    let sent = publish_acked(&endpoints.client, &new, "STORY", 1);
    assert_eq!(stored(&endpoints.client, &new, "STORY"), sent);
}

/// What a stopped server must not leave in `infrastructure/nats/`: its pid file and its ports
/// files (on Windows, where it is terminated, nats-server cannot remove its own).
fn leftovers_of_a_server(sandbox: &Sandbox) -> Vec<String> {
    let mut left = ports_files(&sandbox.nats_dir());
    if sandbox.nats_dir().join("nats-server.pid").exists() {
        left.push("nats-server.pid".to_string());
    }
    left
}

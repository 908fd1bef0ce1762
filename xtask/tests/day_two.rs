//! The day-two tasks against real servers: logs, reload, reset, token rotation, the natscli
//! context, env, the connections view, restart and the archive cache.

mod support;

use serde_json::Value;
use support::*;

/// `run --detach` on ports the server picks, after `edit` has changed the config setup wrote.
fn start_with(
    sandbox: &Sandbox,
    mirror: &Mirror,
    server: &ServerBinary,
    edit: impl FnOnce(String) -> String,
) -> Endpoints {
    sandbox
        .with_ports(&["setup"], mirror, server, Ports::picked())
        .ok();
    let config = sandbox.nats_dir().join("nats-server.conf");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, edit(text)).unwrap();
    sandbox.xtask(&["run", "--detach"]).ok();
    sandbox.endpoints()
}

fn config_path(sandbox: &Sandbox) -> std::path::PathBuf {
    sandbox.nats_dir().join("nats-server.conf")
}

#[cfg(unix)]
fn varz(endpoints: &Endpoints) -> Value {
    monitoring_json(&endpoints.monitoring, "/varz")
}

/// Whether the server at `url` lets a client in with `token`.
fn accepts(url: &str, token: &str) -> bool {
    xtask_probe::Connection::open(url, token, "day-two test")
        .and_then(|mut c| c.ping())
        .is_ok()
}

#[cfg(unix)]
#[test]
fn logs_follow_new_lines_across_rotation_and_stop_on_ctrl_c() {
    use std::io::Read;
    use std::process::Stdio;
    let server = server_binary();
    let (sandbox, mirror) = sandbox_with_mirror(&server);
    // A log that rotates every few connections: each is logged at debug level.
    let endpoints = start_with(&sandbox, &mirror, &server, |text| {
        text.replace("log_size_limit: 10MB", "log_size_limit: 2000")
            .replace("debug: false", "debug: true")
    });
    let _stop = StopOnDrop(&sandbox);
    let shown = sandbox.xtask(&["logs", "-n", "2"]).ok();
    let log = sandbox.log();
    let last_two: Vec<&str> = log.lines().rev().take(2).collect();
    assert_eq!(
        shown.stdout,
        format!("{}\n{}\n", last_two[1], last_two[0]),
        "not the last two lines of:\n{log}"
    );

    let mut follow = KillOnDrop(
        sandbox
            .command(&["logs", "-f", "-n", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let lines = line_by_line(follow.stdout.take().unwrap());
    // What the follower has seen, once it has seen `count` lines containing `what`.
    let mut seen = String::new();
    let mut wait_for_lines = |what: &str, count: usize| {
        while seen.matches(what).count() < count {
            let line = lines
                .recv_timeout(DEADLINE)
                .unwrap_or_else(|_| panic!("no {count} × `{what}` in:\n{seen}"));
            seen.push_str(&line);
            seen.push('\n');
        }
        seen.clone()
    };
    // A line logged after it started: the reload's.
    std::fs::write(
        config_path(&sandbox),
        std::fs::read_to_string(config_path(&sandbox))
            .unwrap()
            .replace("max_payload: 8MB", "max_payload: 4MB"),
    )
    .unwrap();
    sandbox.xtask(&["reload"]).ok();
    wait_for_lines("Reloaded server configuration", 1);

    // Enough connections to rotate the log more than once; every one is seen.
    const CONNECTIONS: usize = 30;
    for _ in 0..CONNECTIONS {
        assert!(accepts(&endpoints.client, &sandbox.token()));
    }
    let seen = wait_for_lines("Client connection closed", CONNECTIONS);
    let rotated = std::fs::read_dir(sandbox.nats_dir().join("logs"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("nats.log."))
        .count();
    assert!(
        rotated >= 2,
        "the log did not rotate twice ({rotated} old files)"
    );
    assert_eq!(
        seen.matches("Client connection created").count(),
        CONNECTIONS,
        "{seen}"
    );

    signal(follow.id(), "INT");
    let exit = wait_for(DEADLINE, || follow.try_wait().unwrap()).expect("logs -f did not exit");
    let mut stderr = String::new();
    follow
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(exit.success(), "{exit}: {stderr}");
}

#[cfg(unix)]
#[test]
fn reload_applies_a_changed_setting_and_refuses_a_broken_config() {
    let server = server_binary();
    let (sandbox, mirror) = sandbox_with_mirror(&server);
    let endpoints = start_with(&sandbox, &mirror, &server, |text| text);
    let _stop = StopOnDrop(&sandbox);
    let pid = sandbox.recorded_pid().unwrap();
    let status: Value =
        serde_json::from_str(&sandbox.xtask(&["status", "--json"]).ok().stdout).unwrap();
    assert_eq!(status["health"]["ok"], true, "{status}");
    let config = std::fs::read_to_string(config_path(&sandbox)).unwrap();
    assert_eq!(varz(&endpoints)["max_payload"], 8 * 1024 * 1024);

    std::fs::write(
        config_path(&sandbox),
        config.replace("max_payload: 8MB", "max_payload: 2MB"),
    )
    .unwrap();
    let reloaded = sandbox.xtask(&["reload"]).ok();
    assert!(reloaded.stderr.contains("reloaded"), "{}", reloaded.stderr);
    let after = varz(&endpoints);
    assert_eq!(after["max_payload"], 2 * 1024 * 1024);

    // A broken config never reaches the server.
    std::fs::write(config_path(&sandbox), format!("{config}\nbroken {{{{\n")).unwrap();
    sandbox
        .xtask(&["reload"])
        .fails_with("nats-server rejects")
        .fails_with("the running nats-server is left as it is");
    // A setting that cannot change while it runs: refused by the server, with its words.
    std::fs::write(
        config_path(&sandbox),
        config
            .replace("max_payload: 8MB", "max_payload: 2MB")
            .replace("max_file_store: 10GB", "max_file_store: 5GB"),
    )
    .unwrap();
    sandbox
        .xtask(&["reload"])
        .fails_with("config reload not supported for jetstream max memory and store");
    let untouched = varz(&endpoints);
    assert_eq!(untouched["max_payload"], 2 * 1024 * 1024);
    assert_eq!(untouched["config_load_time"], after["config_load_time"]);
    assert_eq!(sandbox.recorded_pid(), Some(pid));
}

#[test]
fn reset_empties_jetstream_and_keeps_binary_config_and_token() {
    let server = server_binary();
    let (sandbox, mirror) = sandbox_with_mirror(&server);
    let endpoints = start_with(&sandbox, &mirror, &server, |text| text);
    let _stop = StopOnDrop(&sandbox);
    publish_acked(&endpoints.client, &sandbox.token(), "KEPT", 5);
    let kept = [
        sandbox.binary(),
        config_path(&sandbox),
        sandbox.nats_dir().join(".env.nats"),
    ]
    .map(|path| (std::fs::read(&path).unwrap(), path));

    // Without a terminal to ask on, it needs --yes, and deletes nothing.
    sandbox.xtask(&["reset"]).fails_with("--yes");
    assert_eq!(
        monitoring_json(&endpoints.monitoring, "/jsz")["messages"],
        5
    );

    let reset = sandbox.xtask(&["reset", "--yes"]).ok();
    assert!(reset.stdout.contains("deleted `"), "{}", reset.stdout);
    assert!(reset.stdout.contains(" bytes)"), "{}", reset.stdout);
    // It ran, so it runs again, empty.
    let again = sandbox.endpoints();
    let jsz = monitoring_json(&again.monitoring, "/jsz");
    assert_eq!(
        (jsz["streams"].as_u64(), jsz["messages"].as_u64()),
        (Some(0), Some(0))
    );
    for (bytes, path) in kept {
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "{} changed",
            path.display()
        );
    }
    assert!(accepts(&again.client, &sandbox.token()));
}

#[test]
fn token_rotation_refuses_the_old_token_and_updates_this_checkouts_contexts() {
    let server = server_binary();
    let (sandbox, mirror) = sandbox_with_mirror(&server);
    let endpoints = start_with(&sandbox, &mirror, &server, |text| text);
    let _stop = StopOnDrop(&sandbox);
    let old = sandbox.token();

    // A natscli context with the fields natscli reads, owner-only.
    sandbox.xtask(&["context", "--name", "dev"]).ok();
    let contexts = sandbox.config_home().join("nats/context");
    let path = contexts.join("dev.json");
    let context: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(context["url"], endpoints.client.as_str());
    assert_eq!(context["token"], old.as_str());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&contexts), 0o700);
    }
    assert!(
        !sandbox.config_home().join("nats/context.txt").exists(),
        "selected unasked"
    );
    // One it did not write is left alone.
    let foreign = contexts.join("other.json");
    std::fs::write(&foreign, r#"{"url": "nats://elsewhere:4222"}"#).unwrap();
    sandbox
        .xtask(&["context", "--name", "other"])
        .fails_with("was not written by this checkout's xtask");
    sandbox
        .xtask(&["context", "--name", "../escape"])
        .fails_with("cannot name a context");

    // env says where the server is, and the token only when asked.
    let env = sandbox.xtask(&["env", "--format", "dotenv"]).ok();
    assert_eq!(env.stdout, format!("NATS_URL={}\n", endpoints.client));
    for json in [&["--json"][..], &["--format", "json"]] {
        let mut args = vec!["env", "--show-token"];
        args.extend_from_slice(json);
        let env: Value = serde_json::from_str(&sandbox.xtask(&args).ok().stdout).unwrap();
        assert_eq!(env["NATS_TOKEN"], old.as_str());
        assert_eq!(env["NATS_URL"], endpoints.client.as_str());
    }

    let env_file = sandbox.nats_dir().join(".env.nats");
    let before = std::fs::read_to_string(&env_file).unwrap();
    let rotated = sandbox.xtask(&["token", "rotate"]).ok();
    assert!(!rotated.stdout.contains("nats_") && !rotated.stderr.contains("nats_"));
    assert!(
        rotated.stderr.contains("updated the natscli context `dev`"),
        "{}",
        rotated.stderr
    );
    let new = sandbox.token();
    assert_ne!(new, old);
    let running = sandbox.endpoints();
    assert!(!accepts(&running.client, &old), "the old token still works");
    assert!(
        accepts(&running.client, &new),
        "the new token does not work"
    );
    let context: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(context["token"], new.as_str());
    assert_eq!(
        std::fs::read_to_string(&foreign).unwrap(),
        r#"{"url": "nats://elsewhere:4222"}"#
    );
    // Every other line of .env.nats stays.
    assert_eq!(
        std::fs::read_to_string(&env_file).unwrap(),
        before.replace(&old, &new)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    sandbox
        .xtask(&["context", "--name", "dev", "--remove"])
        .ok();
    assert!(!path.exists() && foreign.exists());
}

/// What a program started by `shell` sees of NATS_URL and NATS_TOKEN after the shell has
/// evaluated `env --show-token`'s lines, as the one-liner of `env --help` does.
#[cfg(unix)]
fn seen_by_a_child_of(shell: &str, sandbox: &Sandbox) -> String {
    let script = r#"eval "$("$XTASK" --dir "$SANDBOX_DIR" env --show-token)" &&
        exec sh -c 'printf "%s %s" "$NATS_URL" "$NATS_TOKEN"'"#;
    let output = std::process::Command::new(shell)
        .arg("-c")
        .arg(script)
        .env("XTASK", env!("CARGO_BIN_EXE_xtask"))
        .env("SANDBOX_DIR", sandbox.nats_dir())
        .env_remove("NATS_URL")
        .env_remove("NATS_TOKEN")
        .env_remove("NATS_DIR")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{shell}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[cfg(unix)]
#[test]
fn env_exports_the_url_and_token_to_the_programs_a_shell_starts() {
    let server = server_binary();
    let (sandbox, mirror) = sandbox_with_mirror(&server);
    let endpoints = start_with(&sandbox, &mirror, &server, |text| text);
    let _stop = StopOnDrop(&sandbox);
    let expected = format!("{} {}", endpoints.client, sandbox.token());
    for shell in ["sh", "bash"] {
        assert_eq!(seen_by_a_child_of(shell, &sandbox), expected, "{shell}");
    }
    // Exported lines, with the token only when asked.
    let env = sandbox.xtask(&["env"]).ok();
    assert_eq!(
        env.stdout,
        format!("export NATS_URL='{}'\n", endpoints.client)
    );
}

#[test]
fn monitor_connections_lists_a_named_client_with_its_subscriptions() {
    let server = server_binary();
    let (sandbox, mirror) = sandbox_with_mirror(&server);
    let endpoints = start_with(&sandbox, &mirror, &server, |text| text);
    let _stop = StopOnDrop(&sandbox);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (_client, _subscriptions) = runtime.block_on(async {
        let client = async_nats::ConnectOptions::with_token(sandbox.token())
            .name("orders-service")
            .connect(&endpoints.client)
            .await
            .unwrap();
        let mut subscriptions = Vec::new();
        for subject in ["orders.created", "orders.paid", "orders.shipped"] {
            subscriptions.push(client.subscribe(subject).await.unwrap());
        }
        client.flush().await.unwrap();
        (client, subscriptions)
    });
    let run = sandbox
        .xtask(&[
            "monitor",
            "--connections",
            "--once",
            "--json",
            "--interval",
            "0.2",
            "--sort",
            "subs",
        ])
        .ok();
    let sample: Value =
        serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
    let ours = sample["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "orders-service")
        .unwrap_or_else(|| panic!("no orders-service in {sample}"));
    assert_eq!(ours["subscriptions"], 3, "{ours}");
    assert_eq!(ours["lang"], "rust", "{ours}");
    assert!(ours["rates"].is_object(), "{ours}");
}

#[test]
fn restart_starts_the_server_again_and_tasks_on_nothing_installed_say_what_to_run() {
    let bare = Sandbox::new();
    for task in [
        &["restart"][..],
        &["reset", "--yes"],
        &["token", "rotate"],
        &["reload"],
        &["env"],
    ] {
        bare.xtask(task).fails_with("cargo xtask setup");
    }
    let server = server_binary();
    let (sandbox, mirror) = sandbox_with_mirror(&server);
    start_with(&sandbox, &mirror, &server, |text| text);
    let _stop = StopOnDrop(&sandbox);
    let pid = sandbox.recorded_pid().unwrap();
    sandbox.xtask(&["restart"]).ok();
    let again = sandbox.recorded_pid().unwrap();
    assert_ne!(again, pid);
    assert!(gone(pid));
    assert!(accepts(&sandbox.endpoints().client, &sandbox.token()));
    sandbox.xtask(&["stop"]).ok();
    let started = sandbox.xtask(&["restart"]).ok();
    assert!(
        started.stderr.contains("nothing was running"),
        "{}",
        started.stderr
    );
    assert!(sandbox.recorded_pid().is_some_and(alive));
}

#[test]
fn cache_lists_how_archives_were_verified_and_cleans_them() {
    let server = server_binary();
    let (sandbox, mirror) = sandbox_with_mirror(&server);
    sandbox
        .with_ports(&["setup"], &mirror, &server, Ports::picked())
        .ok();
    let listed = sandbox.xtask(&["cache", "list", "--json"]).ok();
    let entries: Vec<Value> = listed
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 1, "{}", listed.stdout);
    assert_eq!(entries[0]["version"], server.version.as_str());
    assert!(
        entries[0]["verified"]
            .as_str()
            .unwrap()
            .starts_with("verified against"),
        "{}",
        entries[0]
    );
    sandbox.xtask(&["cache", "clean", "--keep-installed"]).ok();
    assert_eq!(
        sandbox
            .xtask(&["cache", "list", "--json"])
            .ok()
            .stdout
            .lines()
            .count(),
        1
    );
    sandbox.xtask(&["cache", "clean"]).ok();
    assert_eq!(sandbox.xtask(&["cache", "list", "--json"]).ok().stdout, "");
}

#[test]
fn setup_never_writes_a_new_token_behind_a_running_server_and_rotate_mends_it() {
    let server = server_binary();
    let (sandbox, mirror) = sandbox_with_mirror(&server);
    let endpoints = start_with(&sandbox, &mirror, &server, |text| text.to_string());
    let _stop = StopOnDrop(&sandbox);
    let old = sandbox.token();
    let env_file = sandbox.nats_dir().join(".env.nats");
    std::fs::remove_file(&env_file).unwrap();

    sandbox
        .xtask(&["setup", "--mirror", &mirror.url])
        .fails_with("`cargo xtask token rotate` writes a new token");
    assert!(!env_file.exists(), "setup wrote a token");
    assert!(
        accepts(&endpoints.client, &old),
        "the server lost its token"
    );

    sandbox.xtask(&["token", "rotate"]).ok();
    let new = sandbox.token();
    assert_ne!(new, old);
    let running = sandbox.endpoints();
    assert!(
        accepts(&running.client, &new),
        "the new token does not work"
    );
    assert!(!accepts(&running.client, &old), "the old token still works");
}

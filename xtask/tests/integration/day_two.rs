//! The day-two tasks against real servers: logs, reload, reset, token rotation, the natscli
//! context, env, the connections view, restart and the archive cache.

use serde_json::Value;

use crate::support::*;

#[cfg(unix)]
fn varz(endpoints: &Endpoints) -> Value {
    monitoring_json(&endpoints.monitoring, "/varz")
}

/// Whether the server at `url` lets a client in with `token`.
fn accepts(url: &str, token: &str) -> bool {
    xtask_probe::Connection::open(
        url,
        &xtask_probe::Auth::Token(token.to_string()),
        "day-two test",
        None,
    )
    .and_then(|mut c| c.ping())
    .is_ok()
}

#[cfg(unix)]
#[test]
fn logs_follow_new_lines_across_rotation_and_stop_on_ctrl_c() {
    use std::io::Read;
    use std::process::Stdio;
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    // A log that rotates every few connections: each is logged at debug level.
    let endpoints = start_with(&sandbox, &mirror, &server, |text| {
        text.replace("log_size_limit: 10MB", "log_size_limit: 2000")
            .replace("debug: false", "debug: true")
    });
    let before = sandbox.log();
    let shown = sandbox.xtask(&["logs", "-n", "2"]).ok();
    let log = sandbox.log();
    assert_eq!(shown.stdout.lines().count(), 2, "{}", shown.stdout);
    assert!(
        the_end_of_the_log_between(&shown.stdout, &before, &log),
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
    sandbox.edit_config(|text| text.replace("max_payload: 8MB", "max_payload: 4MB"));
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
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    let endpoints = start(&sandbox, &mirror, &server);
    let pid = sandbox.recorded_pid().unwrap();
    let (ok, status) = status_json(&sandbox);
    assert!(ok && status["health"]["ok"] == true, "{status}");
    let config = std::fs::read_to_string(sandbox.config_file()).unwrap();
    assert_eq!(varz(&endpoints)["max_payload"], 8 * 1024 * 1024);

    std::fs::write(
        sandbox.config_file(),
        config.replace("max_payload: 8MB", "max_payload: 2MB"),
    )
    .unwrap();
    let reloaded = sandbox.xtask(&["reload"]).ok();
    assert!(reloaded.stderr.contains("reloaded"), "{}", reloaded.stderr);
    let after = varz(&endpoints);
    assert_eq!(after["max_payload"], 2 * 1024 * 1024);

    // A broken config never reaches the server.
    std::fs::write(sandbox.config_file(), format!("{config}\nbroken {{{{\n")).unwrap();
    sandbox
        .xtask(&["reload"])
        .fails_with("nats-server rejects")
        .fails_with("the running nats-server is left as it is");
    // A setting that cannot change while it runs: refused by the server, with its words.
    std::fs::write(
        sandbox.config_file(),
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
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    let endpoints = start(&sandbox, &mirror, &server);
    publish_acked(&endpoints.client, &sandbox.token(), "KEPT", 5);
    let kept = [
        sandbox.binary(),
        sandbox.config_file(),
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
    assert!(
        reset.stdout.contains(" B)") || reset.stdout.contains(" bytes)"),
        "{}",
        reset.stdout
    );
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
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    let endpoints = start(&sandbox, &mirror, &server);
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

    // --select makes one natscli's selected context; --remove takes the selection with it.
    sandbox
        .xtask(&["context", "--name", "dev", "--select"])
        .ok();
    let selection = sandbox.config_home().join("nats/context.txt");
    assert_eq!(std::fs::read_to_string(&selection).unwrap(), "dev");
    sandbox
        .xtask(&["context", "--name", "dev", "--remove"])
        .ok();
    assert!(!path.exists() && foreign.exists());
    assert!(
        !selection.exists(),
        "the selection of a removed context is kept"
    );

    // --force overwrites one this checkout did not write, and then it is this checkout's.
    sandbox
        .xtask(&["context", "--name", "other", "--force"])
        .ok();
    let taken: Value = serde_json::from_slice(&std::fs::read(&foreign).unwrap()).unwrap();
    assert_eq!(taken["url"], running.client.as_str());
    assert_eq!(taken["token"], new.as_str());
    sandbox
        .xtask(&["context", "--name", "other", "--remove"])
        .ok();
    assert!(!foreign.exists());
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
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    let endpoints = start(&sandbox, &mirror, &server);
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
fn monitor_connections_lists_named_clients_sorted_and_limited_as_asked() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    let endpoints = start(&sandbox, &mirror, &server);
    let runtime = runtime();
    // Connected first, so with the lower cid: one subscription. Then one with three.
    let _clients = runtime.block_on(async {
        let mut clients = Vec::new();
        for (name, subjects) in [
            ("audit-log", &["audit.>"][..]),
            (
                "orders-service",
                &["orders.created", "orders.paid", "orders.shipped"],
            ),
        ] {
            let client = async_nats::ConnectOptions::with_token(sandbox.token())
                .name(name)
                .connect(&endpoints.client)
                .await
                .unwrap();
            for subject in subjects {
                clients.push((client.clone(), client.subscribe(*subject).await.unwrap()));
            }
            client.flush().await.unwrap();
        }
        clients
    });
    let connections = |sandbox: &Sandbox, extra: &[&str]| -> Vec<Value> {
        let mut args = vec!["monitor", "--connections", "--once", "--json"];
        args.extend(["--interval", "0.2"]);
        args.extend(extra);
        let run = sandbox.xtask(&args).ok();
        let sample: Value = serde_json::from_str(run.stdout.trim())
            .unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
        sample["connections"].as_array().unwrap().clone()
    };
    let names = |rows: &[Value]| -> Vec<String> {
        rows.iter()
            .map(|c| c["name"].as_str().unwrap_or_default().to_string())
            .collect()
    };

    let by_subs = connections(&sandbox, &["--sort", "subs"]);
    assert_eq!(names(&by_subs), ["orders-service", "audit-log"]);
    assert_eq!(by_subs[0]["subscriptions"], 3, "{}", by_subs[0]);
    assert_eq!(by_subs[0]["lang"], "rust", "{}", by_subs[0]);
    assert!(by_subs[0]["rates"].is_object(), "{}", by_subs[0]);
    let first_by_cid = connections(&sandbox, &["--sort", "cid", "--top", "1"]);
    assert_eq!(names(&first_by_cid), ["audit-log"]);
    let first_by_subs = connections(&sandbox, &["--sort", "subs", "--top", "1"]);
    assert_eq!(names(&first_by_subs), ["orders-service"]);

    // Another server's endpoint, by option or by variable, from a checkout with nothing of its own.
    let elsewhere = Sandbox::new();
    let by_option = connections(&elsewhere, &["--url", &endpoints.monitoring]);
    assert_eq!(names(&by_option).len(), 2, "{by_option:?}");
    let run = elsewhere
        .command(&["monitor", "--once", "--json", "--interval", "0.2"])
        .env("NATS_MONITOR_URL", &endpoints.monitoring)
        .output()
        .unwrap();
    let run = Run::from(run).ok();
    let sample: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(sample["connections"], 2, "{sample}");
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
    bare.xtask(&["context"])
        .fails_with("run `cargo xtask setup`");
    bare.xtask(&["logs"])
        .fails_with("the server writes it once it runs (`cargo xtask run`)");
    let status = bare.xtask(&["status"]);
    assert_eq!(status.code, Some(3), "{}", status.stderr);
    assert!(
        status.stdout.contains("nor installed") && status.stdout.contains("`cargo xtask run`"),
        "{}",
        status.stdout
    );
    let monitor = bare.xtask(&["monitor", "--once"]);
    assert_eq!(monitor.code, Some(3), "{}", monitor.stderr);
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    start(&sandbox, &mirror, &server);
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
    let (server, other) = two_server_binaries();
    let sandbox = Sandbox::new();
    let mirror = mirror_with(&[&server, &other]);
    // Two archives cached, the second one installed.
    sandbox
        .with_ports(&["setup"], &mirror, &other, Ports::picked())
        .ok();
    sandbox
        .xtask(&[
            "setup",
            "--mirror",
            &mirror.url,
            "--version",
            &server.version,
        ])
        .ok();
    let listed = sandbox.xtask(&["cache", "list", "--json"]).ok();
    let entries: Vec<Value> = listed
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 2, "{}", listed.stdout);
    for entry in &entries {
        assert!(
            entry["verified"]
                .as_str()
                .unwrap()
                .starts_with("verified against"),
            "{entry}"
        );
    }
    // --keep-installed deletes the other one and keeps the installed one.
    sandbox.xtask(&["cache", "clean", "--keep-installed"]).ok();
    let kept: Vec<Value> = sandbox
        .xtask(&["cache", "list", "--json"])
        .ok()
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0]["version"], server.version.as_str());
    sandbox.xtask(&["cache", "clean"]).ok();
    assert_eq!(sandbox.xtask(&["cache", "list", "--json"]).ok().stdout, "");
}

#[test]
fn setup_never_writes_a_new_token_behind_a_running_server_and_rotate_mends_it() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    let endpoints = start(&sandbox, &mirror, &server);
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

/// Where the xtask run by an exec test makes its temporary directories (`TMPDIR`), so that
/// the test sees what is left there.
fn scratch(sandbox: &Sandbox) -> std::path::PathBuf {
    let dir = sandbox.root.path().join("tmp");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What `dir` holds.
fn entries(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect()
}

/// A shell script run by exec, given a work directory as `$1`: it writes its NATS_URL,
/// NATS_TOKEN and working directory to `$1/env`, then waits for `$1/go` and exits 7 (or gives
/// up once the test's sandbox is gone).
#[cfg(unix)]
const RECORD_AND_WAIT: &str = r#"printf '%s\n%s\n%s\n' "$NATS_URL" "$NATS_TOKEN" "$(pwd)" > "$1/env.partial"
mv "$1/env.partial" "$1/env"
while [ ! -e "$1/go" ] && [ -d "$1" ]; do sleep 0.02; done
exit 7"#;

/// `cargo xtask exec OPTIONS -- sh -c SCRIPT sh WORK`, from the mirror, run in `work` with its
/// temporary directories in `scratch` and its output in `work/out` and `work/err`.
#[cfg(unix)]
fn exec_sh(
    sandbox: &Sandbox,
    mirror: &Mirror,
    server: &ServerBinary,
    options: &[&str],
    script: &str,
    work: &std::path::Path,
) -> KillOnDrop {
    std::fs::create_dir_all(work).unwrap();
    let mut args = vec!["exec"];
    args.extend(options);
    args.extend(["--mirror", &mirror.url, "--version", &server.version]);
    args.extend(["--", "sh", "-c", script, "sh"]);
    let file = |name: &str| std::fs::File::create(work.join(name)).unwrap();
    KillOnDrop(
        sandbox
            .command(&args)
            .arg(work)
            .current_dir(work)
            .env("TMPDIR", scratch(sandbox))
            .stdout(file("out"))
            .stderr(file("err"))
            .spawn()
            .unwrap(),
    )
}

/// The NATS_URL, NATS_TOKEN and working directory the script recorded, once it has.
#[cfg(unix)]
fn recorded_env(work: &std::path::Path) -> (String, String, String) {
    let text = wait_for(DEADLINE, || std::fs::read_to_string(work.join("env")).ok())
        .unwrap_or_else(|| {
            let err = std::fs::read_to_string(work.join("err")).unwrap_or_default();
            panic!("the command did not start:\n{err}")
        });
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    (lines[0].into(), lines[1].into(), lines[2].into())
}

/// What exec printed, on stdout and stderr.
#[cfg(unix)]
fn printed(work: &std::path::Path) -> String {
    ["out", "err"]
        .map(|name| std::fs::read_to_string(work.join(name)).unwrap())
        .concat()
}

/// Waits for exec to exit and returns its exit code.
#[cfg(unix)]
fn exit_code(xtask: &mut KillOnDrop) -> Option<i32> {
    wait_for(DEADLINE, || xtask.try_wait().unwrap())
        .expect("exec did not exit")
        .code()
}

#[cfg(unix)]
#[test]
fn exec_temporary_runs_the_command_against_a_server_of_its_own_and_removes_it() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let work = sandbox.root.path().join("work");
    let tmp = scratch(&sandbox);
    let mut xtask = exec_sh(
        &sandbox,
        &mirror,
        &server,
        &["--temporary"],
        RECORD_AND_WAIT,
        &work,
    );
    let (url, token, cwd) = recorded_env(&work);
    assert!(
        url.starts_with("nats://127.0.0.1:") && !url.contains(','),
        "{url}"
    );
    assert_eq!(cwd, work.to_string_lossy(), "not run where exec was");
    // A real client gets in with the command's token, which is not the checkout's.
    publish(&url, &token, "exec.temporary", 3, b"hello");
    assert_ne!(token, sandbox.token());
    let servers = processes_naming(&tmp);
    assert!(!servers.is_empty(), "no server runs in `{}`", tmp.display());
    for pid in servers {
        assert!(
            !command_line(pid).contains(&token),
            "the token is on pid {pid}'s command line"
        );
    }

    std::fs::write(work.join("go"), "").unwrap();
    assert_eq!(exit_code(&mut xtask), Some(7), "{}", printed(&work));
    assert_eq!(processes_naming(&tmp), Vec::<u32>::new());
    assert_eq!(entries(&tmp), Vec::<std::path::PathBuf>::new());
    assert!(!printed(&work).contains(&token), "{}", printed(&work));
    assert_eq!(
        sandbox.recorded_pid(),
        None,
        "the checkout's own server was started"
    );
}

#[cfg(unix)]
#[test]
fn exec_temporary_cluster_gives_the_command_every_nodes_url() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let work = sandbox.root.path().join("work");
    let tmp = scratch(&sandbox);
    let mut xtask = exec_sh(
        &sandbox,
        &mirror,
        &server,
        &["--temporary", "--cluster"],
        RECORD_AND_WAIT,
        &work,
    );
    let (url, token, _) = recorded_env(&work);
    let urls: Vec<&str> = url.split(',').collect();
    assert_eq!(urls.len(), 3, "{url}");
    assert!(
        urls.iter().all(|u| u.starts_with("nats://127.0.0.1:")),
        "{url}"
    );
    // One cluster: a stream with a replica on each of 3 nodes, written through the first node,
    // is read back through the last.
    let written = publish_acked_replicated(urls[0], &token, "EXEC", 3, 0..5);
    assert_eq!(stored_eventually(urls[2], &token, "EXEC"), written);
    // Three nodes run in the one temporary directory.
    let dirs = entries(&tmp);
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let pids = ["n1", "n2", "n3"].map(|node| {
        let pid_file = dirs[0].join("cluster").join(node).join("nats-server.pid");
        std::fs::read_to_string(&pid_file)
            .unwrap_or_else(|e| panic!("{}: {e}", pid_file.display()))
            .trim()
            .parse::<u32>()
            .unwrap()
    });
    assert!(pids.iter().all(|pid| alive(*pid)), "not every node runs");

    std::fs::write(work.join("go"), "").unwrap();
    assert_eq!(exit_code(&mut xtask), Some(7), "{}", printed(&work));
    assert!(pids.iter().all(|pid| !alive(*pid)), "a node outlived exec");
    assert_eq!(processes_naming(&tmp), Vec::<u32>::new());
    assert_eq!(entries(&tmp), Vec::<std::path::PathBuf>::new());
    assert!(!printed(&work).contains(&token), "{}", printed(&work));
}

#[cfg(unix)]
#[test]
fn exec_temporary_passes_a_sigterm_on_and_still_removes_its_server() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let work = sandbox.root.path().join("work");
    let tmp = scratch(&sandbox);
    let mut xtask = exec_sh(
        &sandbox,
        &mirror,
        &server,
        &["--temporary"],
        RECORD_AND_WAIT,
        &work,
    );
    recorded_env(&work);
    assert!(!processes_naming(&tmp).is_empty());
    // The command never gets `go`: only the SIGTERM passed on ends it, as a signal.
    signal(xtask.id(), "TERM");
    assert_eq!(exit_code(&mut xtask), Some(128 + 15), "{}", printed(&work));
    assert_eq!(processes_naming(&tmp), Vec::<u32>::new());
    assert_eq!(entries(&tmp), Vec::<std::path::PathBuf>::new());
}

#[test]
fn exec_temporary_names_a_missing_command_and_still_removes_its_server() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let tmp = scratch(&sandbox);
    let mut command = sandbox.command(&[
        "exec",
        "--temporary",
        "--mirror",
        &mirror.url,
        "--version",
        &server.version,
        "--",
        "no-such-program-for-exec",
        "--flag",
    ]);
    for var in ["TMPDIR", "TMP", "TEMP"] {
        command.env(var, &tmp);
    }
    Run::from(command.output().unwrap())
        .fails_with("cannot run `no-such-program-for-exec`: there is no such program");
    assert_eq!(processes_naming(&tmp), Vec::<u32>::new());
    assert_eq!(entries(&tmp), Vec::<std::path::PathBuf>::new());
}

#[test]
fn exec_without_a_running_server_says_to_start_one_or_use_temporary() {
    let sandbox = Sandbox::new();
    let run = sandbox
        .xtask(&["exec", "--", "true"])
        .fails_with("cargo xtask run --detach");
    assert!(run.stderr.contains("--temporary"), "{}", run.stderr);
}

#[cfg(unix)]
#[test]
fn exec_gives_the_command_the_running_servers_url_and_token_and_its_exit_code() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    let endpoints = start(&sandbox, &mirror, &server);
    let work = sandbox.root.path().join("work");
    let mut xtask = exec_sh(&sandbox, &mirror, &server, &[], RECORD_AND_WAIT, &work);
    let (url, token, cwd) = recorded_env(&work);
    assert_eq!(url, endpoints.client);
    assert_eq!(token, sandbox.token());
    assert_eq!(cwd, work.to_string_lossy());
    std::fs::write(work.join("go"), "").unwrap();
    assert_eq!(exit_code(&mut xtask), Some(7), "{}", printed(&work));
    assert!(!printed(&work).contains(&token), "{}", printed(&work));
    // The server it used runs on.
    assert!(sandbox.recorded_pid().is_some_and(alive));
}

#[test]
fn uninstall_stops_the_server_removes_what_setup_made_and_keeps_an_edited_config() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    start_with(&sandbox, &mirror, &server, |text| format!("{text}# mine\n"));
    let pid = sandbox.recorded_pid().unwrap();
    let old_token = sandbox.token();
    let dir = sandbox.nats_dir();
    sandbox.xtask(&["context", "--name", "dev"]).ok();
    let contexts = sandbox.config_home().join("nats/context");
    let foreign_context = r#"{"description": "another program's", "url": "nats://elsewhere:4222"}"#;
    std::fs::write(contexts.join("other.json"), foreign_context).unwrap();
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    let binary = format!("nats-server{}", std::env::consts::EXE_SUFFIX);
    let made = [
        binary.as_str(),
        "LICENSE.nats-server",
        ".install.json",
        ".env.nats",
        "data",
        "logs",
        "nats-server.pid",
    ];
    for name in made {
        assert!(dir.join(name).exists(), "setup made no {name}");
    }

    // Without a terminal to ask on, it needs --yes, names the token, and changes nothing.
    let refused = sandbox.xtask(&["uninstall"]).fails_with("--yes");
    assert!(refused.stderr.contains("`.env.nats`"), "{}", refused.stderr);
    assert!(alive(pid));
    for name in made {
        assert!(dir.join(name).exists(), "{name} went without --yes");
    }
    assert!(contexts.join("dev.json").exists());

    let removed = sandbox.xtask(&["uninstall", "--yes"]).ok();
    assert!(gone(pid), "the server still runs");
    for name in made {
        assert!(
            !dir.join(name).exists(),
            "{name} is left:\n{}",
            removed.stderr
        );
    }
    assert!(!removed.stdout.contains(&old_token) && !removed.stderr.contains(&old_token));
    assert!(
        removed.stderr.contains("kept `") && removed.stderr.contains("nats-server.conf"),
        "{}",
        removed.stderr
    );
    assert!(sandbox.config_file().exists(), "the edited config went");
    assert_eq!(
        std::fs::read_to_string(dir.join("notes.txt")).unwrap(),
        "mine"
    );
    assert!(
        !contexts.join("dev.json").exists(),
        "this checkout's context is left"
    );
    assert_eq!(
        std::fs::read_to_string(contexts.join("other.json")).unwrap(),
        foreign_context
    );

    // Twice --yes: the edited config goes too; what is not the xtask's stays.
    sandbox.xtask(&["uninstall", "--yes", "--yes"]).ok();
    assert!(!sandbox.config_file().exists(), "the edited config is left");
    assert!(dir.join("notes.txt").exists());

    sandbox
        .with_ports(&["setup"], &mirror, &server, Ports::picked())
        .ok();
    assert!(sandbox.binary().is_file());
    assert_ne!(sandbox.token(), old_token, "the old token came back");
}

#[test]
fn uninstall_removes_every_cluster_node_and_the_cache_and_leaves_no_empty_directory() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    start_cluster(&sandbox, &mirror, &server);
    let pids: Vec<u32> = ["n1", "n2", "n3"]
        .iter()
        .map(|node| {
            let pid_file = sandbox
                .nats_dir()
                .join("cluster")
                .join(node)
                .join("nats-server.pid");
            std::fs::read_to_string(pid_file)
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(pids.iter().all(|pid| alive(*pid)));
    let cached = || sandbox.xtask(&["cache", "list", "--json"]).ok().stdout;
    assert_eq!(cached().lines().count(), 1, "setup cached no archive");

    let removed = sandbox.xtask(&["uninstall", "--yes", "--cache"]).ok();
    for pid in pids {
        assert!(gone(pid), "node pid {pid} still runs:\n{}", removed.stderr);
    }
    // Nothing but the xtask's was there: the directory went with it.
    assert!(
        !sandbox.nats_dir().exists(),
        "left: {:?}",
        std::fs::read_dir(sandbox.nats_dir())
            .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
    );
    assert_eq!(cached(), "", "the cache was not emptied");

    sandbox
        .with_ports(&["setup"], &mirror, &server, Ports::picked())
        .ok();
    assert!(sandbox.binary().is_file());
}

#[test]
fn uninstall_with_nothing_installed_says_so_and_succeeds() {
    let sandbox = Sandbox::new();
    let run = sandbox.xtask(&["uninstall"]).ok();
    assert!(
        run.stderr.contains("nothing to uninstall"),
        "{}",
        run.stderr
    );
    assert!(!sandbox.nats_dir().exists());
}

#[test]
fn a_version_asked_for_or_installed_while_the_server_runs_is_named_with_what_runs_it() {
    let (first, other) = two_server_binaries();
    let sandbox = Sandbox::new();
    let _stop = StopOnDrop(&sandbox);
    let mirror = mirror_with(&[&first, &other]);
    sandbox
        .with_ports(&["setup"], &mirror, &first, Ports::picked())
        .ok();
    sandbox.xtask(&["run", "--detach"]).ok();
    // The version installed beside the one that runs, as `status --json` reports it.
    let installed = || {
        let (ok, status) = status_json(&sandbox);
        assert!(ok, "{status}");
        status["installed_version"].clone()
    };

    // `run --version` and port options do not touch a server that runs: said, with why.
    let downloads = mirror.archive_requests();
    let run = sandbox
        .xtask(&[
            "run",
            "--detach",
            "--version",
            &other.version,
            "--mirror",
            &mirror.url,
            "--port",
            "1",
        ])
        .ok();
    for said in [
        format!(
            "--version {} is ignored: the server already runs (it runs {}), and its binary is \
             not replaced under it; `cargo xtask setup --version {}` installs it and `cargo \
             xtask restart` runs it",
            other.version, first.version, other.version
        ),
        "the listen options are ignored: the server already runs on its ports".to_string(),
    ] {
        assert!(run.stderr.contains(&said), "no {said} in:\n{}", run.stderr);
    }
    assert_eq!(
        mirror.archive_requests(),
        downloads,
        "run installed something"
    );
    assert_eq!(installed(), Value::Null);

    // `setup --version` installs it beside the server that runs; setup and status say so.
    let setup = sandbox.xtask(&[
        "setup",
        "--version",
        &other.version,
        "--mirror",
        &mirror.url,
    ]);
    // Windows cannot replace the file of a program that runs: setup says so, and stops.
    if cfg!(windows) {
        setup.fails_with("is the server still running (`cargo xtask stop`)");
        return;
    }
    let setup = setup.ok();
    let said = format!(
        "the server that runs is still v{}: `cargo xtask restart` runs v{}",
        first.version, other.version
    );
    assert!(setup.stderr.contains(&said), "{}", setup.stderr);
    let status = sandbox.xtask(&["status"]).ok();
    for line in [
        format!("  version     {}\n", first.version),
        format!(
            "  installed   {}, not running yet: `cargo xtask restart` runs it\n",
            other.version
        ),
    ] {
        assert!(
            status.stdout.contains(&line),
            "no {line} in:\n{}",
            status.stdout
        );
    }
    assert_eq!(installed(), other.version);

    // Once restarted, it runs and nothing is left to say.
    sandbox.xtask(&["restart"]).ok();
    let status = sandbox.xtask(&["status"]).ok();
    assert!(
        status
            .stdout
            .contains(&format!("  version     {}\n", other.version)),
        "{}",
        status.stdout
    );
    assert!(!status.stdout.contains("installed"), "{}", status.stdout);
    assert_eq!(installed(), Value::Null);
}

/// The tests above that need Unix, listed where they cannot run so that the count of the run
/// shows them, each with why.
#[cfg(not(unix))]
mod not_on_this_os {
    #[test]
    #[ignore = "Unix only: sends SIGINT"]
    fn logs_follow_new_lines_across_rotation_and_stop_on_ctrl_c() {}

    #[test]
    #[ignore = "Unix only: reload is SIGHUP, which Windows lacks"]
    fn reload_applies_a_changed_setting_and_refuses_a_broken_config() {}

    #[test]
    #[ignore = "Unix only: evaluates the output in sh"]
    fn env_exports_the_url_and_token_to_the_programs_a_shell_starts() {}

    #[test]
    #[ignore = "Unix only: the command is an sh script"]
    fn exec_temporary_runs_the_command_against_a_server_of_its_own_and_removes_it() {}

    #[test]
    #[ignore = "Unix only: the command is an sh script"]
    fn exec_temporary_cluster_gives_the_command_every_nodes_url() {}

    #[test]
    #[ignore = "Unix only: sends SIGTERM"]
    fn exec_temporary_passes_a_sigterm_on_and_still_removes_its_server() {}

    #[test]
    #[ignore = "Unix only: the command is an sh script"]
    fn exec_gives_the_command_the_running_servers_url_and_token_and_its_exit_code() {}
}

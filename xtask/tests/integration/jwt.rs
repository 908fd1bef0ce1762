//! `setup --auth jwt`: an operator, accounts and users, checked with real servers, a client
//! the xtask does not own (async-nats reading the `.creds` files) and an NKeys implementation
//! other than ours (the `nkeys` crate) reading every JWT.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::support::*;

fn auth_file(sandbox: &Sandbox, path: &str) -> PathBuf {
    sandbox.nats_dir().join("auth").join(path)
}

/// Connect options of the user whose credentials are at `path`, as async-nats reads them.
fn as_user(path: &Path) -> async_nats::ConnectOptions {
    runtime()
        .block_on(async_nats::ConnectOptions::with_credentials_file(path))
        .unwrap()
}

/// The claims of `jwt`, once the `nkeys` crate checked that its issuer (`iss`) signed it.
fn verified_claims(jwt: &str) -> Value {
    let (signed, signature) = jwt.trim().rsplit_once('.').unwrap();
    let (header, body) = signed.split_once('.').unwrap();
    assert_eq!(
        URL_SAFE_NO_PAD.decode(header).unwrap(),
        br#"{"typ":"JWT","alg":"ed25519-nkey"}"#
    );
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap();
    let issuer = nkeys::KeyPair::from_public_key(claims["iss"].as_str().unwrap()).unwrap();
    issuer
        .verify(
            signed.as_bytes(),
            &URL_SAFE_NO_PAD.decode(signature).unwrap(),
        )
        .unwrap_or_else(|e| panic!("{jwt}: not signed by its issuer: {e}"));
    claims
}

fn creds_jwt(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let after = text.split_once("-----BEGIN NATS USER JWT-----").unwrap().1;
    after.trim_start().lines().next().unwrap().to_string()
}

#[test]
fn a_server_with_accounts_serves_their_users_and_refuses_the_token() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    let setup = sandbox
        .with_ports(
            &["setup", "--auth", "jwt"],
            &mirror,
            &server,
            Ports::picked(),
        )
        .ok();
    for seed in ["SO", "SA", "SU"] {
        assert!(
            !setup.stderr.contains(&format!("{seed}A")) && !setup.stdout.contains(seed),
            "a seed in setup's output:\n{}",
            setup.stderr
        );
    }
    let config = std::fs::read_to_string(sandbox.config_file()).unwrap();
    assert!(
        config.contains("include \"auth/resolver.conf\""),
        "{config}"
    );
    assert!(!config.contains("authorization"), "{config}");
    sandbox
        .xtask(&["run", "--detach", "--timeout", READY_WITHIN])
        .ok();
    let endpoints = sandbox.endpoints();

    // Smoke passes as the default user, with its user authentication check.
    sandbox
        .xtask(&["smoke"])
        .ok()
        .smoke_passed(&["user authentication"], 8);

    // async-nats reads our credentials: the default user stores a message in JetStream.
    let app = auth_file(&sandbox, "users/APP/app.creds");
    publish_acked_as(&endpoints.client, as_user(&app), "JWT", 1, 0..1);
    // The token opens nothing any more.
    let e = connects(
        &endpoints.client,
        async_nats::ConnectOptions::with_token(sandbox.token()),
    )
    .unwrap_err();
    assert!(e.contains("authorization violation"), "{e}");

    // Another NKeys implementation checks every signature: operator, accounts, users.
    let operator =
        verified_claims(&std::fs::read_to_string(auth_file(&sandbox, "operator.jwt")).unwrap());
    assert_eq!(operator["iss"], operator["sub"]);
    for account in ["SYS", "APP"] {
        let path = auth_file(&sandbox, &format!("accounts/{account}.jwt"));
        let claims = verified_claims(&std::fs::read_to_string(path).unwrap());
        assert_eq!(claims["iss"], operator["sub"], "{account}");
        assert_eq!(claims["name"], account);
    }
    assert_eq!(
        operator["nats"]["system_account"],
        verified_claims(&std::fs::read_to_string(auth_file(&sandbox, "accounts/SYS.jwt")).unwrap())
            ["sub"]
    );
    let user = verified_claims(&creds_jwt(&app));
    assert_eq!(user["nats"]["type"], "user");
    assert_eq!(
        user["nats"]["subs"], -1,
        "limits written as -1, never left out"
    );

    // env and exec hand on the credentials' path, never a seed or the token.
    let env = sandbox.xtask(&["env"]).ok();
    assert!(
        env.stdout.contains("NATS_CREDS") && env.stdout.contains("app.creds"),
        "{}",
        env.stdout
    );
    assert!(!env.stdout.contains("NATS_TOKEN") && !env.stdout.contains("SU"));
    sandbox
        .xtask(&["env", "--show-token"])
        .fails_with("has accounts and users, and no token");
    // natscli contexts: the default user's, and the system user's for `nats server report`.
    sandbox.xtask(&["context", "--name", "dev"]).ok();
    let contexts = sandbox.config_home().join("nats/context");
    let read = |name: &str| -> Value {
        serde_json::from_slice(&std::fs::read(contexts.join(name)).unwrap()).unwrap()
    };
    assert_eq!(Path::new(read("dev.json")["creds"].as_str().unwrap()), app);
    assert!(read("dev.json").get("token").is_none());
    assert!(
        read("dev-system.json")["creds"]
            .as_str()
            .unwrap()
            .ends_with("sys.creds")
    );
    sandbox
        .xtask(&["context", "--name", "dev", "--remove"])
        .ok();
    assert!(!contexts.join("dev-system.json").exists());
    sandbox
        .xtask(&["token", "rotate"])
        .fails_with("there is no token to rotate");
    // With no server running, smoke's server of its own has the same accounts.
    sandbox.xtask(&["stop"]).ok();
    let run = sandbox
        .xtask(&["smoke"])
        .ok()
        .smoke_passed(&["user authentication"], 8);
    assert!(run.stderr.contains("temporary"), "{}", run.stderr);
    sandbox
        .xtask(&["run", "--cluster", "--detach"])
        .fails_with("which a local cluster does not serve yet");
    #[cfg(unix)]
    for path in ["operator.nk", "accounts/APP.nk", "users/APP/app.creds"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(auth_file(&sandbox, path))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{path}");
    }
}

#[test]
fn switching_token_jwt_token_keeps_every_stream_and_says_to_restart() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    sandbox
        .with_ports(&["setup"], &mirror, &server, Ports::picked())
        .ok();
    sandbox
        .xtask(&["run", "--detach", "--timeout", READY_WITHIN])
        .ok();
    let token = sandbox.token();
    let mut sent = publish_acked(&sandbox.endpoints().client, &token, "KEPT", 1);

    // To accounts, while it runs: it says to restart, and the restart serves the users.
    let setup = sandbox.xtask(&["setup", "--auth", "jwt"]).ok();
    assert!(
        setup.stderr.contains("cargo xtask restart"),
        "{}",
        setup.stderr
    );
    let restart = sandbox.xtask(&["restart"]).ok();
    assert!(
        restart.stderr.contains("now belong to account APP"),
        "{}",
        restart.stderr
    );
    sandbox.xtask(&["smoke"]).ok();
    // The default user has the token's stream: its message and the next are the user's.
    let app = auth_file(&sandbox, "users/APP/app.creds");
    let url = sandbox.endpoints().client;
    assert_eq!(stored_as(&url, as_user(&app), "KEPT"), sent);
    sent.extend(publish_acked_as(&url, as_user(&app), "KEPT", 1, 1..2));

    // And back: the token's stream has both messages, the one stored under accounts too.
    sandbox.xtask(&["setup", "--auth", "token"]).ok();
    sandbox.xtask(&["restart"]).ok();
    assert_eq!(stored(&sandbox.endpoints().client, &token, "KEPT"), sent);
    // The accounts stay for a later `--auth jwt`.
    assert!(auth_file(&sandbox, "operator.nk").is_file());

    // Streams of the token's clients and of APP both on disk: neither is chosen for the user.
    let app_key =
        verified_claims(&std::fs::read_to_string(auth_file(&sandbox, "accounts/APP.jwt")).unwrap())
            ["sub"]
            .as_str()
            .unwrap()
            .to_string();
    let accounts = sandbox.nats_dir().join("data/jetstream/jetstream");
    std::fs::create_dir_all(accounts.join(&app_key).join("streams")).unwrap();
    sandbox.xtask(&["setup", "--auth", "jwt"]).ok();
    sandbox.xtask(&["restart"]).fails_with("both hold streams");
    assert!(accounts.join("$G").join("streams").join("KEPT").is_dir());
}

#[test]
fn a_changed_account_jwt_is_refused_and_nothing_changes() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    sandbox
        .with_ports(
            &["setup", "--auth", "jwt"],
            &mirror,
            &server,
            Ports::picked(),
        )
        .ok();
    // Grant more than the operator signed: the signature no longer verifies.
    let path = auth_file(&sandbox, "accounts/APP.jwt");
    let jwt = std::fs::read_to_string(&path).unwrap();
    let (head, rest) = jwt.split_once('.').unwrap();
    let (body, signature) = rest.split_once('.').unwrap();
    let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap();
    claims["name"] = "ROOT".into();
    let changed = format!(
        "{head}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    std::fs::write(&path, changed).unwrap();
    let before = Sandbox::tree(&sandbox.nats_dir());
    sandbox
        .xtask(&["setup"])
        .fails_with("its signature does not verify");
    assert_eq!(Sandbox::tree(&sandbox.nats_dir()), before);
    sandbox
        .xtask(&["run", "--detach", "--timeout", READY_WITHIN])
        .fails_with("APP.jwt");
    assert_eq!(Sandbox::tree(&sandbox.nats_dir()), before);
}

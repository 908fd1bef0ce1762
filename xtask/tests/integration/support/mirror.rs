//! A loopback HTTP server standing in for the release mirror.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use super::{ServerBinary, asset_name, host_format, release_archive, sha256_hex};

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

    /// Serves `reply` as the release archive of `version` for this host.
    pub fn put_asset(&self, version: &str, reply: Reply) {
        self.put(version, &asset_name(version, host_format()), reply);
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

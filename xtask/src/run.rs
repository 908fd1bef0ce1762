//! `cargo xtask run`: start the server, in the foreground with its log shown, or detached.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::layout::Layout;
use crate::server::{self, Endpoints, Mode};
use crate::setup::{ListenArgs, Setup, SourceArgs};
use crate::token;

/// Start the server (installing and configuring it first if needed).
///
/// In the foreground (the default) the server's log is shown live and Ctrl-C stops it
/// cleanly. With `--detach` it runs in the background and this returns once clients can use
/// it. The token from `.env.nats` goes into the server's environment only.
#[derive(Debug, clap::Args)]
pub(crate) struct Run {
    /// Run in the background; stop it with `cargo xtask stop`.
    #[arg(long)]
    detach: bool,

    /// Seconds to wait for the server to become ready.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    timeout: u64,

    #[command(flatten)]
    source: SourceArgs,

    #[command(flatten)]
    listen: ListenArgs,
}

impl Run {
    pub(crate) fn run(&self, layout: &Layout) -> Result<()> {
        if let Some(pid) = server::running(layout)? {
            eprintln!("nats-server is already running (pid {pid})");
            if let Some(endpoints) = Endpoints::of(layout, pid) {
                print_endpoints(&endpoints);
            }
            return Ok(());
        }
        Setup::for_run(self.source.clone(), self.listen.clone()).run(layout)?;
        let token = token::load(&layout.env_file())?;
        let timeout = Duration::from_secs(self.timeout);
        if self.detach {
            detached(layout, &token, timeout)
        } else {
            foreground(layout, &token, timeout)
        }
    }
}

fn detached(layout: &Layout, token: &str, timeout: Duration) -> Result<()> {
    let mut child = server::spawn(layout, token, Mode::Detached)?;
    match server::wait_ready(&mut child, layout, token, timeout) {
        Ok(endpoints) => {
            eprintln!(
                "nats-server is running (pid {}); `cargo xtask stop` stops it",
                child.id()
            );
            print_endpoints(&endpoints);
            Ok(())
        }
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            server::remove_pid_file(layout);
            Err(e)
        }
    }
}

enum Event {
    Interrupted,
    Exited(std::io::Result<std::process::ExitStatus>),
}

fn foreground(layout: &Layout, token: &str, timeout: Duration) -> Result<()> {
    let (events, next_event) = mpsc::channel();
    let on_signal = events.clone();
    ctrlc::set_handler(move || {
        let _ = on_signal.send(Event::Interrupted);
    })
    .context("cannot handle Ctrl-C")?;

    let log = server::log_file(layout);
    let log_start = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let mut child = server::spawn(layout, token, Mode::Foreground)?;
    let pid = child.id();
    let _pid_file = PidFileGuard(layout.clone());
    let follower = LogFollower::start(log, log_start);

    match server::wait_ready(&mut child, layout, token, timeout) {
        Ok(endpoints) => {
            follower.catch_up();
            eprintln!("nats-server is ready (pid {pid}); Ctrl-C stops it");
            print_endpoints(&endpoints);
        }
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    }
    std::thread::spawn(move || {
        let _ = events.send(Event::Exited(child.wait()));
    });

    let outcome = match next_event.recv().expect("the waiting thread reports") {
        Event::Exited(status) => {
            let status = status?;
            Err(anyhow::anyhow!(
                "nats-server stopped by itself ({status}){}",
                server::diagnosis(layout)
            ))
        }
        Event::Interrupted => {
            eprintln!("stopping nats-server (pid {pid})");
            // On Windows, Ctrl-C has reached the server as well.
            if cfg!(unix) {
                server::graceful_stop(pid);
            }
            match next_event.recv_timeout(Duration::from_secs(30)) {
                Ok(Event::Exited(_)) => Ok(()),
                _ => {
                    server::stop(pid, Duration::ZERO)?;
                    bail!("nats-server did not stop within 30 s and was killed")
                }
            }
        }
    };
    follower.finish();
    if outcome.is_ok() {
        eprintln!("nats-server stopped");
    }
    outcome
}

pub(crate) fn print_endpoints(endpoints: &Endpoints) {
    println!("client      {}", endpoints.client);
    println!("monitoring  {}", endpoints.monitoring);
    if let Some(websocket) = &endpoints.websocket {
        println!("websocket   {websocket}");
    }
}

/// Removes the pid file when a foreground run ends, however it ends.
struct PidFileGuard(Layout);

impl Drop for PidFileGuard {
    fn drop(&mut self) {
        server::remove_pid_file(&self.0);
    }
}

/// Shows what the server appends to its log, as `tail -F` would, following rotation.
struct LogFollower {
    path: PathBuf,
    position: Arc<Mutex<u64>>,
    stop: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl LogFollower {
    fn start(path: PathBuf, from: u64) -> LogFollower {
        let position = Arc::new(Mutex::new(from));
        let (stop, stopped) = mpsc::channel();
        let (thread_path, thread_position) = (path.clone(), position.clone());
        let thread = std::thread::spawn(move || {
            // Looks every 100 ms; once told to stop, looks one last time.
            loop {
                let done = stopped.recv_timeout(Duration::from_millis(100))
                    != Err(mpsc::RecvTimeoutError::Timeout);
                let mut position = thread_position.lock().unwrap_or_else(|e| e.into_inner());
                *position = copy_new_lines(&thread_path, *position);
                if done {
                    return;
                }
            }
        });
        LogFollower {
            path,
            position,
            stop,
            thread,
        }
    }

    /// Shows everything logged so far, now.
    fn catch_up(&self) {
        let mut position = self.position.lock().unwrap_or_else(|e| e.into_inner());
        *position = copy_new_lines(&self.path, *position);
    }

    fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

/// Prints what `path` holds past `position` and returns the new position. A file shorter than
/// the position has been rotated: it is read from its start.
fn copy_new_lines(path: &PathBuf, position: u64) -> u64 {
    let Ok(mut file) = File::open(path) else {
        return position;
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let from = if len < position { 0 } else { position };
    if file.seek(SeekFrom::Start(from)).is_err() {
        return position;
    }
    let mut text = Vec::new();
    let read = file.read_to_end(&mut text).unwrap_or(0);
    if read > 0 {
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(&text);
    }
    from + read as u64
}

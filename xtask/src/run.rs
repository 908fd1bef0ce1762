//! `cargo xtask run`: start the server, in the foreground with its log shown, or detached.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::args::{ListenArgs, SourceArgs};
use crate::layout::Layout;
use crate::server::{self, Endpoints, Mode};
use crate::setup::Setup;
use crate::token;

/// Start the server (installing and configuring it first if needed).
///
/// In the foreground (the default) the server's log is shown live and Ctrl-C stops it
/// cleanly. With `--detach` it runs in the background and this returns once clients can use
/// it. The token from `.env.nats` goes into the server's environment only.
///
/// Environment: NATS_SERVER_MIRROR, NATS_HOST, NATS_PORT, NATS_HTTP_PORT and NATS_WS_PORT as
/// below; NATS_XTASK_CACHE and the proxy variables as for `setup`, when it installs.
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
        // One run at a time per directory, from "is it running?" until it is.
        let lock = server::run_lock(layout)?;
        if let Some(pid) = server::reconcile_pid_file(layout)? {
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
            foreground(layout, &token, timeout, lock)
        }
    }
}

fn detached(layout: &Layout, token: &str, timeout: Duration) -> Result<()> {
    let mut child = server::spawn(layout, token, Mode::Detached)?;
    let pid = child.id();
    match server::wait_ready(&mut child, layout, token, timeout, &|| false) {
        Ok(Some(endpoints)) => {
            eprintln!("nats-server is running (pid {pid}); `cargo xtask stop` stops it");
            print_endpoints(&endpoints);
            Ok(())
        }
        outcome => {
            server::shut_down(&mut child, layout, STOP_TIMEOUT);
            server::remove_pid_file(layout, pid);
            outcome.map(drop)
        }
    }
}

enum Event {
    Interrupted,
    Exited(std::io::Result<std::process::ExitStatus>),
}

/// How long a server asked to stop has before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

fn foreground(layout: &Layout, token: &str, timeout: Duration, lock: std::fs::File) -> Result<()> {
    let (events, next_event) = mpsc::channel();
    let on_signal = events.clone();
    ctrlc::set_handler(move || {
        let _ = on_signal.send(Event::Interrupted);
    })
    .context("cannot handle Ctrl-C")?;

    let log = layout.log_file();
    let log_start = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let mut child = server::spawn(layout, token, Mode::Foreground)?;
    let pid = child.id();
    let _pid_file = PidFileGuard(layout.clone(), pid);
    let follower = LogFollower::start(log, log_start);

    let interrupted = || matches!(next_event.try_recv(), Ok(Event::Interrupted));
    let ready = match server::wait_ready(&mut child, layout, token, timeout, &interrupted) {
        Ok(ready) => ready,
        Err(e) => {
            server::shut_down(&mut child, layout, STOP_TIMEOUT);
            return Err(e);
        }
    };
    drop(lock);
    if let Some(endpoints) = &ready {
        follower.catch_up();
        eprintln!("nats-server is ready (pid {pid}); Ctrl-C stops it");
        print_endpoints(endpoints);
    }
    std::thread::spawn(move || {
        let _ = events.send(Event::Exited(child.wait()));
    });
    if ready.is_some()
        && let Ok(Event::Exited(status)) = next_event.recv()
    {
        follower.finish();
        let status = status?;
        if server::exit_was_requested(layout, pid, log_start) {
            eprintln!("nats-server was asked to stop by another program, and stopped ({status})");
            return Ok(());
        }
        bail!(
            "nats-server stopped by itself ({status}){}",
            server::diagnosis(layout)
        );
    }

    eprintln!("stopping nats-server (pid {pid})");
    // On Windows, Ctrl-C has reached the server as well.
    if cfg!(unix) {
        server::ask_to_stop(pid);
    }
    let deadline = std::time::Instant::now() + STOP_TIMEOUT;
    let outcome = loop {
        match next_event.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
        {
            Ok(Event::Exited(_)) => break Ok(()),
            Ok(Event::Interrupted) => eprintln!(
                "still stopping nats-server cleanly; it is killed after {} s",
                STOP_TIMEOUT.as_secs()
            ),
            Err(_) => {
                server::stop(pid, layout, Duration::ZERO)?;
                break Err(anyhow::anyhow!(
                    "nats-server did not stop within {} s and was killed",
                    STOP_TIMEOUT.as_secs()
                ));
            }
        }
    };
    follower.finish();
    if outcome.is_ok() {
        eprintln!("nats-server stopped");
    }
    outcome
}

/// Where the server listens, on stdout, and a warning on stderr if other machines can reach it.
pub(crate) fn print_endpoints(endpoints: &Endpoints) {
    if let Some(warning) = endpoints.exposure_warning() {
        eprintln!("{warning}");
    }
    println!("client      {}", endpoints.client);
    println!("monitoring  {}", endpoints.monitoring);
    if let Some(websocket) = &endpoints.websocket {
        println!("websocket   {websocket}");
    }
}

/// Removes the pid file when a foreground run ends, however it ends.
struct PidFileGuard(Layout, u32);

impl Drop for PidFileGuard {
    fn drop(&mut self) {
        server::remove_pid_file(&self.0, self.1);
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

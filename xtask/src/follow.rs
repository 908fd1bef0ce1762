//! Showing what a server appends to its log, as `tail -F` would, following rotation.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// Shows what the server appends to its log, as `tail -F` would, following rotation.
pub(crate) struct LogFollower {
    path: PathBuf,
    prefix: String,
    position: Arc<Mutex<u64>>,
    stop: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl LogFollower {
    /// Follows `path` from byte `from`, putting `prefix` before every line it shows (a node's
    /// name, when several logs are shown at once).
    pub(crate) fn start(path: PathBuf, from: u64, prefix: &str) -> LogFollower {
        let position = Arc::new(Mutex::new(from));
        let (stop, stopped) = mpsc::channel();
        let (thread_path, thread_position) = (path.clone(), position.clone());
        let thread_prefix = prefix.to_string();
        let thread = std::thread::spawn(move || {
            // Looks every 100 ms; once told to stop, looks one last time.
            loop {
                let done = stopped.recv_timeout(Duration::from_millis(100))
                    != Err(mpsc::RecvTimeoutError::Timeout);
                let mut position = thread_position.lock().unwrap_or_else(|e| e.into_inner());
                *position = copy_new_lines(&thread_path, *position, &thread_prefix);
                if done {
                    return;
                }
            }
        });
        LogFollower {
            path,
            prefix: prefix.to_string(),
            position,
            stop,
            thread,
        }
    }

    /// Shows everything logged so far, now.
    pub(crate) fn catch_up(&self) {
        let mut position = self.position.lock().unwrap_or_else(|e| e.into_inner());
        *position = copy_new_lines(&self.path, *position, &self.prefix);
    }

    pub(crate) fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

/// Prints the whole lines `path` holds past `position` to stderr, each after `prefix`, and
/// returns the position after the last of them. A file shorter than the position has been
/// rotated: it is read from its start.
fn copy_new_lines(path: &PathBuf, position: u64, prefix: &str) -> u64 {
    let Ok(mut file) = File::open(path) else {
        return position;
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let from = if len < position { 0 } else { position };
    if file.seek(SeekFrom::Start(from)).is_err() {
        return position;
    }
    let mut text = Vec::new();
    let _ = file.read_to_end(&mut text);
    // A line still being written waits for the next look.
    let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut stderr = std::io::stderr().lock();
    for line in text[..whole].split_inclusive(|&b| b == b'\n') {
        let _ = stderr.write_all(prefix.as_bytes());
        let _ = stderr.write_all(line);
    }
    from + whole as u64
}

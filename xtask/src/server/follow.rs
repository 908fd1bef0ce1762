//! Following what servers append to their logs, as `tail -F` does: across rotation, whole
//! lines only, each after a prefix (a node's name when several logs are shown at once).

use std::fs::{File, Metadata};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;
#[cfg(not(unix))]
use std::time::SystemTime;

/// Where the lines go.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Sink {
    /// Beside the xtask's own messages (`run` in the foreground).
    Stderr,
    /// As the output itself (`logs -f`).
    Stdout,
}

/// Shows what a server appends to its log from a thread of its own.
pub(crate) struct LogFollower {
    tail: Arc<Mutex<Tail>>,
    stop: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl LogFollower {
    /// Follows `path` from byte `from`, on stderr, each line after `prefix`.
    pub(crate) fn start(path: PathBuf, from: u64, prefix: &str) -> LogFollower {
        LogFollower::to(Sink::Stderr, path, from, prefix)
    }

    /// Follows `path` from byte `from` into `sink`, each line after `prefix`.
    pub(crate) fn to(sink: Sink, path: PathBuf, from: u64, prefix: &str) -> LogFollower {
        let tail = Arc::new(Mutex::new(Tail::new(path, from, prefix, sink)));
        let (stop, stopped) = mpsc::channel();
        let thread_tail = tail.clone();
        let thread = std::thread::spawn(move || {
            // Looks every 100 ms; once told to stop, looks one last time.
            loop {
                let done = stopped.recv_timeout(Duration::from_millis(100))
                    != Err(mpsc::RecvTimeoutError::Timeout);
                thread_tail
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .show_new();
                if done {
                    return;
                }
            }
        });
        LogFollower { tail, stop, thread }
    }

    /// Shows everything logged so far, now.
    pub(crate) fn catch_up(&self) {
        self.tail
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .show_new();
    }

    pub(crate) fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

/// One log being followed: the file read so far, which may no longer be the one at `path`.
struct Tail {
    path: PathBuf,
    prefix: String,
    sink: Sink,
    file: Option<(File, Identity)>,
    /// Where to start in the file at `path` when it is first opened.
    from: u64,
    /// The start of a line still being written.
    partial: Vec<u8>,
}

impl Tail {
    fn new(path: PathBuf, from: u64, prefix: &str, sink: Sink) -> Tail {
        Tail {
            path,
            prefix: prefix.to_string(),
            sink,
            file: None,
            from,
            partial: Vec::new(),
        }
    }

    /// Shows the whole lines logged since the last look. When the log has been rotated (the
    /// file at `path` is another one), the rest of the old file comes first, then the new one
    /// from its start; a file truncated in place is read again from its start.
    fn show_new(&mut self) {
        let mut text = std::mem::take(&mut self.partial);
        if self.file.is_none() {
            self.file = open(&self.path, self.from);
        }
        if let Some((file, opened)) = &mut self.file {
            read_rest(file, &mut text);
            let now_at_path = std::fs::metadata(&self.path).ok();
            match now_at_path.as_ref().map(identity) {
                Some(current) if current != *opened => {
                    // Rotated: the rest of the old file (read once more, for what was written
                    // to it since the look above), then the files rotated out after it, when it
                    // rotated more than once since the last look.
                    read_rest(file, &mut text);
                    for backup in rotated_after(&self.path, *opened) {
                        if let Ok(mut backup) = File::open(backup) {
                            read_rest(&mut backup, &mut text);
                        }
                    }
                    self.file = open(&self.path, 0);
                    if let Some((file, _)) = &mut self.file {
                        read_rest(file, &mut text);
                    }
                }
                _ => {
                    // Shorter than what was read: truncated in place, or rotated without
                    // showing it (on Windows a file created under a name just renamed away can
                    // take over its creation time): either way the file at `path` is read from
                    // its start.
                    let position = file.stream_position().unwrap_or(0);
                    if now_at_path.is_some_and(|meta| meta.len() < position) {
                        read_rest(file, &mut text);
                        self.file = open(&self.path, 0);
                        if let Some((file, _)) = &mut self.file {
                            read_rest(file, &mut text);
                        }
                    }
                }
            }
        }
        let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        self.partial = text.split_off(whole);
        if text.is_empty() {
            return;
        }
        let mut shown = Vec::with_capacity(text.len());
        for line in text.split_inclusive(|&b| b == b'\n') {
            shown.extend_from_slice(self.prefix.as_bytes());
            shown.extend_from_slice(line);
        }
        match self.sink {
            Sink::Stderr => {
                let _ = std::io::stderr().lock().write_all(&shown);
            }
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                // Whoever read the output has gone (`logs -f | head`): so has the point.
                if out.write_all(&shown).and_then(|()| out.flush()).is_err() {
                    std::process::exit(0);
                }
            }
        }
    }
}

/// The backups of the log at `path` (`nats.log.2026.11.28.06.39.30.320734116`, which sort by
/// time) that were rotated out after the file `old`, oldest first. None when `old` is not
/// among them (deleted already: nothing tells which came after it).
fn rotated_after(path: &Path, old: Identity) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let mut backups: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
        .map(|entry| entry.path())
        .collect();
    backups.sort();
    let is_old =
        |backup: &PathBuf| std::fs::metadata(backup).is_ok_and(|meta| identity(&meta) == old);
    match backups.iter().position(is_old) {
        Some(index) => backups.split_off(index + 1),
        None => Vec::new(),
    }
}

/// Opens `path` at byte `from`, if it exists.
fn open(path: &PathBuf, from: u64) -> Option<(File, Identity)> {
    let mut file = File::open(path).ok()?;
    let identity = identity(&file.metadata().ok()?);
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(if from > len { 0 } else { from }))
        .ok()?;
    Some((file, identity))
}

fn read_rest(file: &mut File, text: &mut Vec<u8>) {
    let _ = file.read_to_end(text);
}

/// Which file a path names: its device and inode on Unix, its creation time elsewhere (a
/// rotated log is a new file).
#[cfg(unix)]
type Identity = (u64, u64);
#[cfg(not(unix))]
type Identity = Option<SystemTime>;

#[cfg(unix)]
fn identity(meta: &Metadata) -> Identity {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn identity(meta: &Metadata) -> Identity {
    meta.created().ok()
}

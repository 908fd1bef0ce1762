//! Stops asked of the xtask (Ctrl-C, SIGTERM, SIGHUP) while it runs a program of the user's:
//! caught so that the xtask can still clean up after it, and passed on to the program.
//!
//! Ctrl-C on a terminal reaches every process of the foreground group, the program included,
//! so it is not passed on: a second SIGINT would cut short what the program does on the
//! first (pytest's summary, say). A SIGTERM or SIGHUP may be meant for the xtask alone, as a
//! CI runner or a service manager sends it, and is passed on as SIGTERM. On Windows the
//! console delivers Ctrl-C and its close to every process attached to it.

use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::Result;

/// The signal asked first, 0 before any.
static ASKED: AtomicI32 = AtomicI32::new(0);
/// The program a stop is passed on to, 0 while there is none.
static PROGRAM: AtomicI32 = AtomicI32::new(0);

/// Catches the stops from now on: the xtask no longer ends on them.
pub(crate) fn catch() -> Result<()> {
    platform::catch()
}

/// The signal of the first stop asked, if one was.
pub(crate) fn asked() -> Option<i32> {
    match ASKED.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

/// Passes the stops asked from now on to program `pid`, and one asked before, if any.
pub(crate) fn pass_on_to(pid: u32) {
    let pid = i32::try_from(pid).unwrap_or(0);
    PROGRAM.store(pid, Ordering::SeqCst);
    if let Some(signal) = asked() {
        platform::pass_on(signal, pid);
    }
}

/// No program to pass stops on to any more: it has exited, and its pid may be reused.
pub(crate) fn pass_on_to_none() {
    PROGRAM.store(0, Ordering::SeqCst);
}

#[cfg(unix)]
mod platform {
    use std::sync::atomic::Ordering;

    use anyhow::{Result, bail};

    use super::{ASKED, PROGRAM};

    pub(super) fn catch() -> Result<()> {
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: the handler only touches atomics and calls kill, which are
            // async-signal-safe. A caught signal is reset to its default in programs started
            // afterwards, so they still end on Ctrl-C.
            if unsafe { libc::signal(signal, handler) } == libc::SIG_ERR {
                bail!(
                    "cannot catch signal {signal}: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
        Ok(())
    }

    extern "C" fn on_signal(signal: libc::c_int) {
        let _ = ASKED.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
        pass_on(signal, PROGRAM.load(Ordering::SeqCst));
    }

    /// SIGTERM to `pid` for a stop other than Ctrl-C, which the terminal has sent it already.
    pub(super) fn pass_on(signal: i32, pid: i32) {
        if pid > 0 && signal != libc::SIGINT {
            // SAFETY: kill is async-signal-safe; `pid` is the program this xtask started and
            // has not reaped yet, so it cannot be another process.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }
}

#[cfg(not(unix))]
mod platform {
    use std::sync::atomic::Ordering;

    use anyhow::{Context, Result};

    use super::ASKED;

    /// The number of SIGINT, which Windows has no use for but exit codes do (128 + 2).
    const SIGINT: i32 = 2;

    pub(super) fn catch() -> Result<()> {
        ctrlc::set_handler(|| {
            let _ = ASKED.compare_exchange(0, SIGINT, Ordering::SeqCst, Ordering::SeqCst);
        })
        .context("cannot handle Ctrl-C")
    }

    /// The console has delivered it to the program already.
    pub(super) fn pass_on(_: i32, _: i32) {}
}

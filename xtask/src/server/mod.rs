//! The server process of a checkout: which process it is, starting it, knowing when it is
//! ready, stopping it, and saying why it would not start.
//!
//! The server runs in its directory with `--ports_file_dir` pointing there, so it writes
//! `nats-server_<pid>.ports` with the addresses it really listens on (and removes the file when
//! it exits); `nats-server.pid` records which process is ours.

pub(crate) mod auth;
pub(crate) mod certs;
pub(crate) mod config;
mod diagnosis;
mod endpoints;
pub(crate) mod follow;
mod halt;
mod identity;
pub(crate) mod jwt;
mod launch;
mod ready;
pub(crate) mod reload;
pub(crate) mod secrets;
pub(crate) mod tls;

use std::time::Duration;

pub(crate) use diagnosis::diagnosis;
pub(crate) use endpoints::Endpoints;
pub(crate) use halt::{
    Stopped, ask_to_reload, ask_to_stop, exit_was_requested, kill_now, shut_down, stop,
};
pub(crate) use identity::{reconcile_pid_file, remove_pid_file};
pub(crate) use launch::{Mode, forget_run_lock, run_lock, spawn};
pub(crate) use ready::wait_ready;

/// How often a wait on the server looks again.
const POLL: Duration = Duration::from_millis(10);

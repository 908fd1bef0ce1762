//! What the integration tests share, one file per concern, re-exported here so that a test
//! needs only `use crate::support::*`.

mod archives;
mod binaries;
mod foreground;
mod mirror;
mod nats;
mod processes;
mod sandbox;
mod server;

use std::time::{Duration, Instant};

pub use archives::{
    Entry, Format, asset_name, build_archive, pinned, release_archive, release_entries, sha256_hex,
    stem,
};
pub use binaries::{
    ServerBinary, binary_name, host_format, host_platform, server_binary, two_server_binaries,
};
pub use foreground::{Foreground, READY};
pub use mirror::{Mirror, Reply, mirror_with, unreachable_mirror};
pub use nats::{
    connects, monitoring_json, publish, publish_acked, publish_acked_as, publish_acked_replicated,
    runtime, stored, stored_as, stored_eventually,
};
#[cfg(unix)]
pub use processes::signal;
pub use processes::{
    KillOnDrop, LoggedServer, alive, command_line, gone, kill_hard, line_by_line,
    port_held_by_this_test, processes_naming,
};
pub use sandbox::{Run, Sandbox, without_block};
pub use server::{
    ByHand, Endpoints, Ports, READY_WITHIN, StopOnDrop, cluster_args, detach, ports_files, start,
    start_cluster, start_with, status_json, stopped, the_end_of_the_log_between,
};

/// What most tests start from: the first test server, a fresh sandbox, and a mirror serving
/// that server's release for this host.
pub fn sandbox_with_mirror() -> (ServerBinary, Sandbox, Mirror) {
    let server = server_binary();
    let (sandbox, mirror) = sandbox_with_mirror_of(&server);
    (server, sandbox, mirror)
}

/// A fresh sandbox, and a mirror serving the release of `server` for this host.
pub fn sandbox_with_mirror_of(server: &ServerBinary) -> (Sandbox, Mirror) {
    (Sandbox::new(), mirror_with(&[server]))
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

/// The checks a cluster adds, in their order (for a test that freezes a node: Unix only).
#[cfg(unix)]
pub const CLUSTER_CHECKS: [&str; 3] = ["routes", "meta group", "replicas on every node"];

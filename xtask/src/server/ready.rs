//! Knowing when a starting server is usable: JetStream healthy and a client with the token
//! answered.

use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{Endpoints, POLL, diagnosis};
use crate::layout::{Layout, show};

/// Waits until the server is usable: healthy, JetStream enabled, and an authenticated client
/// answered. A server that exits, misses the deadline, or turns out unusable (no monitoring
/// listener, no JetStream) is an error, with the end of its log; the caller stops it. None
/// means `cancelled` said so first.
pub(crate) fn wait_ready(
    child: &mut Child,
    layout: &Layout,
    token: &str,
    timeout: Duration,
    cancelled: &dyn Fn() -> bool,
) -> Result<Option<Endpoints>> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            bail!(
                "nats-server exited during start-up ({status}){}",
                diagnosis(layout)
            );
        }
        if let Some(endpoints) = Endpoints::read(layout, child.id()) {
            let endpoints = endpoints.context("nats-server started, but cannot be used")?;
            if healthy(&endpoints)
                && xtask_probe::Connection::open(&endpoints.client, token, "cargo xtask")
                    .and_then(|mut client| client.ping())
                    .is_ok()
            {
                if !jetstream_enabled(&endpoints) {
                    bail!(
                        "nats-server runs without JetStream: `{}` has no `jetstream` block, or \
                         it is disabled; add it back, or rewrite the config with `cargo xtask \
                         setup --regenerate-config`",
                        show(&layout.config())
                    );
                }
                return Ok(Some(endpoints));
            }
        }
        if cancelled() {
            return Ok(None);
        }
        if start.elapsed() > timeout {
            bail!(
                "nats-server was not ready within {} s (JetStream may still be recovering a \
                 large store: `--timeout SECONDS` waits longer){}",
                timeout.as_secs(),
                diagnosis(layout)
            );
        }
        std::thread::sleep(POLL);
    }
}

/// Whether JetStream is on: `/healthz` answers ok without it when the config has no
/// `jetstream` block, but `/varz` then shows no JetStream config.
fn jetstream_enabled(endpoints: &Endpoints) -> bool {
    let url = format!("{}/varz", endpoints.monitoring);
    xtask_probe::get_json(&xtask_probe::monitoring_agent(), &url)
        .is_ok_and(|varz| varz["jetstream"]["config"].is_object())
}

/// `/healthz` answers ok, JetStream included.
fn healthy(endpoints: &Endpoints) -> bool {
    let url = format!("{}/healthz?js-enabled-only=true", endpoints.monitoring);
    xtask_probe::get(&xtask_probe::monitoring_agent(), &url).is_ok_and(|(status, _)| status == 200)
}

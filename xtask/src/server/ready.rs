//! Knowing when a starting server is usable: JetStream healthy and an authenticated client
//! answered.

use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{Endpoints, POLL, diagnosis};
use crate::layout::Layout;
use crate::util::paths::show;

/// Waits until the server is usable: healthy, JetStream enabled, and an authenticated client
/// answered. A server that exits, misses the deadline, or turns out unusable (no monitoring
/// listener, no JetStream) is an error, with the end of its log; the caller stops it. None
/// means `cancelled` said so first.
pub(crate) fn wait_ready(
    child: &mut Child,
    layout: &Layout,
    auth: &xtask_probe::Auth,
    timeout: Duration,
    cancelled: &dyn Fn() -> bool,
) -> Result<Option<Endpoints>> {
    let start = Instant::now();
    let mut waiting_for = "its ports file".to_string();
    // Read once written: the ports file (and what reaching a TLS server takes) stays as it is.
    let mut endpoints: Option<Endpoints> = None;
    loop {
        if let Some(status) = child.try_wait()? {
            bail!(
                "nats-server exited during start-up ({status}){}",
                diagnosis(layout)
            );
        }
        if endpoints.is_none() {
            endpoints = Endpoints::read(layout, child.id())
                .transpose()
                .context("nats-server started, but cannot be used")?;
        }
        if let Some(endpoints) = &endpoints {
            match usable(endpoints, auth, &show(&layout.config())) {
                Ok(()) => return Ok(Some(endpoints.clone())),
                Err(Unusable::Not(why)) => waiting_for = why,
                Err(Unusable::Never(why)) => bail!("{why}"),
            }
        }
        if cancelled() {
            return Ok(None);
        }
        if start.elapsed() > timeout {
            bail!(
                "nats-server was not ready within {} s; last seen: {waiting_for} (a large \
                 JetStream store can take longer to recover: `cargo xtask run --timeout \
                 SECONDS` waits longer){}",
                timeout.as_secs(),
                diagnosis(layout)
            );
        }
        std::thread::sleep(POLL);
    }
}

/// Why a started server cannot be used.
enum Unusable {
    /// Not yet, perhaps: what was last seen.
    Not(String),
    /// Not with this config.
    Never(String),
}

/// Whether clients can use the server: healthy, JetStream enabled, and an authenticated
/// client answered.
fn usable(endpoints: &Endpoints, auth: &xtask_probe::Auth, config: &str) -> Result<(), Unusable> {
    let agent = endpoints.agent();
    let url = format!("{}/healthz?js-enabled-only=true", endpoints.monitoring);
    match xtask_probe::get(&agent, &url) {
        Ok((200, _)) => {}
        Ok((status, body)) => {
            return Err(Unusable::Not(format!(
                "/healthz answered {status} {}",
                body.trim()
            )));
        }
        Err(e) => return Err(Unusable::Not(format!("{e:#}"))),
    }
    // `/healthz` says ok without JetStream when the config has no `jetstream` block; `/varz`
    // then shows no JetStream config.
    let url = format!("{}/varz", endpoints.monitoring);
    match xtask_probe::get_json(&agent, &url) {
        Ok(varz) if varz["jetstream"]["config"].is_object() => {}
        Ok(_) => {
            return Err(Unusable::Never(format!(
                "nats-server runs without JetStream: `{config}` has no `jetstream` block, or it \
                 is disabled; add it back, or rewrite the config with `cargo xtask setup \
                 --regenerate-config`"
            )));
        }
        Err(e) => return Err(Unusable::Not(format!("{e:#}"))),
    }
    endpoints
        .connect(auth, "cargo xtask")
        .and_then(|mut client| client.ping())
        .map_err(|e| Unusable::Not(format!("{e:#}")))
}

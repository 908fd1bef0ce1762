//! Knowing when a starting server is usable: JetStream healthy and a client with the token
//! answered.

use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::{Endpoints, POLL, diagnosis};
use crate::layout::Layout;

/// Waits until the server is usable: JetStream healthy and an authenticated client answered.
/// A server that exits or misses the deadline is reported with the end of its log; None means
/// `cancelled` said so first.
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
        if let Some(endpoints) = Endpoints::of(layout, child.id())
            && healthy(&endpoints)
            && xtask_probe::Connection::open(&endpoints.client, token, "cargo xtask")
                .and_then(|mut client| client.ping())
                .is_ok()
        {
            return Ok(Some(endpoints));
        }
        if cancelled() {
            return Ok(None);
        }
        if start.elapsed() > timeout {
            bail!(
                "nats-server was not ready within {} s{}",
                timeout.as_secs(),
                diagnosis(layout)
            );
        }
        std::thread::sleep(POLL);
    }
}

/// `/healthz` answers ok, JetStream included.
fn healthy(endpoints: &Endpoints) -> bool {
    let url = format!("{}/healthz?js-enabled-only=true", endpoints.monitoring);
    xtask_probe::get(&xtask_probe::monitoring_agent(), &url).is_ok_and(|(status, _)| status == 200)
}

//! Asking a running server to reload its config (SIGHUP), and knowing whether it did.

use std::fs;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::Value;

use super::{Endpoints, ask_to_reload};
use crate::layout::Layout;
use crate::util::paths::show;

const POLL: Duration = Duration::from_millis(20);

/// A running server to reload: what messages call it, its files and its pid.
pub(crate) struct Target {
    pub(crate) what: String,
    pub(crate) layout: Layout,
    pub(crate) pid: u32,
}

/// Asks `target` to reload and waits until it reports the reload in `/varz`, or its log says
/// why it refused.
pub(crate) fn reload(target: &Target, timeout: Duration) -> Result<()> {
    let Target { what, layout, pid } = target;
    let endpoints = Endpoints::of_running(layout, *pid)?;
    let varz_url = format!("{}/varz", endpoints.monitoring);
    let agent = endpoints.agent();
    let loaded_at = |varz: &Value| varz["config_load_time"].clone();
    let before = loaded_at(&xtask_probe::get_json(&agent, &varz_url)?);
    let log_start = fs::metadata(layout.log_file()).map_or(0, |m| m.len());
    if !ask_to_reload(*pid, layout) {
        bail!("cannot signal {what} (pid {pid}) to reload: is it still running?");
    }
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(why) = refusal(layout, log_start) {
            bail!(
                "{what} did not take in `{}`: {why}; it runs on with the config it had (a \
                 setting that cannot change while it runs needs `cargo xtask restart`)",
                show(&layout.config())
            );
        }
        if let Ok(varz) = xtask_probe::get_json(&agent, &varz_url)
            && loaded_at(&varz) != before
        {
            eprintln!(
                "{what} (pid {pid}) reloaded `{}` at {}",
                show(&layout.config()),
                loaded_at(&varz).as_str().unwrap_or("?")
            );
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{what} (pid {pid}) was asked to reload but did not report it within {} s \
                 (`config_load_time` in /varz unchanged); see `{}`",
                timeout.as_secs(),
                show(&layout.log_file())
            );
        }
        std::thread::sleep(POLL);
    }
}

/// Why the server refused to reload, from what its log gained past `log_start`.
fn refusal(layout: &Layout, log_start: u64) -> Option<String> {
    let log = fs::read(layout.log_file()).ok()?;
    let new = log.get(usize::try_from(log_start).ok()?..)?;
    String::from_utf8_lossy(new).lines().find_map(|line| {
        line.split_once("Failed to reload server configuration: ")
            .map(|(_, why)| why.trim().to_string())
    })
}

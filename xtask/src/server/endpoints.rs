//! The addresses a running server listens on, from the ports file it writes.

use std::fs;

use anyhow::{Context, Result};

use crate::layout::Layout;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoints {
    pub(crate) client: String,
    pub(crate) monitoring: String,
    pub(crate) websocket: Option<String>,
}

impl Endpoints {
    /// Parses a ports file: `{"nats":["nats://h:p"],"monitoring":["http://h:p"],"websocket":[...]}`.
    pub(crate) fn parse(text: &str) -> Result<Endpoints> {
        let ports: serde_json::Value = serde_json::from_str(text).context("not JSON")?;
        let first = |key: &str| {
            ports[key]
                .get(0)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        Ok(Endpoints {
            client: first("nats").context("no client address")?,
            monitoring: first("monitoring")
                .context("no monitoring address: the config needs `http`")?,
            websocket: first("websocket"),
        })
    }

    /// The ports file of the server with `pid`, once it has written it.
    pub(crate) fn of(layout: &Layout, pid: u32) -> Option<Endpoints> {
        let suffix = format!("_{pid}.ports");
        let entries = fs::read_dir(&layout.dir).ok()?;
        let file = entries
            .flatten()
            .find(|e| e.file_name().to_string_lossy().ends_with(&suffix))?;
        Endpoints::parse(&fs::read_to_string(file.path()).ok()?).ok()
    }

    /// The endpoints of the running server `pid`, which must have written its ports file.
    pub(crate) fn of_running(layout: &Layout, pid: u32) -> Result<Endpoints> {
        Endpoints::of(layout, pid).with_context(|| {
            format!(
                "the running nats-server (pid {pid}) has not written its ports file: if it has \
                 only just started, try again; else `cargo xtask stop` and run it again"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_files_give_the_endpoints() {
        let text = r#"{"nats":["nats://127.0.0.1:4222"],"monitoring":["http://127.0.0.1:8222"],"websocket":["ws://127.0.0.1:8223"]}"#;
        let endpoints = Endpoints::parse(text).unwrap();
        assert_eq!(endpoints.client, "nats://127.0.0.1:4222");
        assert_eq!(endpoints.monitoring, "http://127.0.0.1:8222");
        assert_eq!(endpoints.websocket.as_deref(), Some("ws://127.0.0.1:8223"));
        assert!(Endpoints::parse(r#"{"nats":["nats://127.0.0.1:4222"]}"#).is_err());
    }
}

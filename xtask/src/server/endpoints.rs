//! The addresses a running server listens on, from the ports file it writes.

use std::fs;

use anyhow::{Context, Result};

use crate::layout::Layout;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoints {
    pub(crate) client: String,
    pub(crate) monitoring: String,
    pub(crate) websocket: Option<String>,
    /// The route listener of a cluster node.
    pub(crate) cluster: Option<String>,
    /// Every address listened on that other machines can reach (not loopback).
    pub(crate) exposed: Vec<String>,
    /// What reaching a TLS server takes: its CA (and client certificate).
    pub(crate) trust: Option<xtask_probe::Trust>,
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
        let exposed = ["nats", "monitoring", "websocket", "cluster"]
            .iter()
            .flat_map(|key| ports[*key].as_array().into_iter().flatten())
            .filter_map(|url| url.as_str())
            .filter(|url| !is_loopback(url))
            .map(str::to_string)
            .collect();
        Ok(Endpoints {
            client: first("nats").context("no client address")?,
            monitoring: first("monitoring").context(
                "the config has no `http` monitoring listener, which the xtask needs to tell \
                 when the server is ready and how it is: add `http: \"127.0.0.1:8222\"`, or \
                 rewrite the config with `cargo xtask setup --regenerate-config`",
            )?,
            websocket: first("websocket"),
            cluster: first("cluster"),
            exposed,
            trust: None,
        })
    }

    /// An HTTP(S) client for the monitoring endpoint.
    pub(crate) fn agent(&self) -> xtask_probe::Agent {
        xtask_probe::monitoring_agent_trusting(self.trust.as_ref())
    }

    /// A client connection with `token`, as `name`, over TLS when the server requires it.
    pub(crate) fn connect(
        &self,
        auth: &xtask_probe::Auth,
        name: &str,
    ) -> Result<xtask_probe::Connection> {
        xtask_probe::Connection::open(&self.client, auth, name, self.trust.as_ref())
    }

    /// The ports file of the server with `pid`: None until it has written the whole of one
    /// (the server truncates, then writes it), then what it says: an error for one that the
    /// xtask cannot use. A TLS server's come with what reaching it takes.
    pub(crate) fn read(layout: &Layout, pid: u32) -> Option<Result<Endpoints>> {
        let suffix = format!("_{pid}.ports");
        let entries = fs::read_dir(&layout.dir).ok()?;
        let file = entries
            .flatten()
            .find(|e| e.file_name().to_string_lossy().ends_with(&suffix))?;
        let text = fs::read_to_string(file.path()).ok()?;
        serde_json::from_str::<serde_json::Value>(&text).ok()?;
        Some(Endpoints::parse(&text).and_then(|endpoints| {
            Ok(Endpoints {
                trust: super::tls::trust(layout)?,
                ..endpoints
            })
        }))
    }

    /// A warning naming the addresses that other machines can reach, if there are any.
    pub(crate) fn exposure_warning(&self) -> Option<String> {
        // A cluster node's config follows the options when they are given.
        let is_node = self.cluster.is_some();
        let fix = if is_node {
            "run the cluster with --host 127.0.0.1 (and unset NATS_HOST)"
        } else {
            "set `host` to \"127.0.0.1\" in nats-server.conf (at the top and in the websocket \
             block) and unset NATS_HOST"
        };
        let plain = if self.client.starts_with("tls://") {
            ""
        } else {
            " and nothing is encrypted (`cargo xtask setup --tls`)"
        };
        (!self.exposed.is_empty()).then(|| {
            format!(
                "warning: nats-server listens on addresses other machines can reach ({}): the \
                 monitoring port has no authentication{plain}; unless you mean it, {fix}",
                self.exposed.join(", ")
            )
        })
    }

    /// The ports file of the server with `pid`, once it has written a usable one.
    pub(crate) fn of(layout: &Layout, pid: u32) -> Option<Endpoints> {
        Endpoints::read(layout, pid)?.ok()
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

/// Whether a URL's host is a loopback address (or `localhost`).
fn is_loopback(url: &str) -> bool {
    let authority = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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
        assert!(endpoints.exposed.is_empty());
        assert_eq!(endpoints.exposure_warning(), None);
    }

    #[test]
    fn addresses_other_machines_reach_are_named() {
        // What nats-server writes when it listens on 0.0.0.0.
        let text = r#"{"nats":["nats://127.0.0.1:4222","nats://[::1]:4222","nats://192.0.2.2:4222"],
            "monitoring":["http://127.0.0.1:8222","http://[fd00::2]:8222"]}"#;
        let endpoints = Endpoints::parse(text).unwrap();
        assert_eq!(endpoints.client, "nats://127.0.0.1:4222");
        assert_eq!(
            endpoints.exposed,
            ["nats://192.0.2.2:4222", "http://[fd00::2]:8222"]
        );
        let warning = endpoints.exposure_warning().unwrap();
        assert!(warning.contains("in nats-server.conf"), "{warning}");
        let node = Endpoints::parse(
            r#"{"nats":["nats://192.0.2.2:4232"],"monitoring":["http://127.0.0.1:8232"],
                "cluster":["nats://192.0.2.2:6232"]}"#,
        )
        .unwrap();
        assert_eq!(
            node.exposed,
            ["nats://192.0.2.2:4232", "nats://192.0.2.2:6232"]
        );
        let advice = node.exposure_warning().unwrap();
        assert!(
            advice.contains("run the cluster with --host 127.0.0.1"),
            "{advice}"
        );
        assert!(
            warning.contains("(nats://192.0.2.2:4222, http://[fd00::2]:8222)"),
            "{warning}"
        );
    }
}

//! What monitor samples: one look at a server, stamped with the server's own id and clock,
//! and the rates between two looks.

use std::collections::HashMap;
use std::time::SystemTime;

use anyhow::{Context, Result};
use serde_json::{Value, json};

/// Which server answered and when, by its own clock (`server_id` and `now` of `/varz` or
/// `/connz`): rates are counter differences over the difference of two stamps, and there are
/// none across a restart, which brings another server id.
#[derive(Debug, Clone)]
pub(super) struct Stamp {
    pub(super) server_id: String,
    now: SystemTime,
}

impl Stamp {
    /// The stamp of `json`, what `endpoint` answered.
    pub(super) fn of(json: &Value, endpoint: &str) -> Result<Stamp> {
        // nats-server 2.10 always sends it; one that sends none is taken as the same server.
        let server_id = json["server_id"].as_str().unwrap_or_default().to_string();
        let now = json["now"]
            .as_str()
            .with_context(|| format!("{endpoint} has no `now`"))?;
        let now = humantime::parse_rfc3339_weak(now)
            .with_context(|| format!("{endpoint} `now` is not a time: {now}"))?;
        Ok(Stamp { server_id, now })
    }

    /// Seconds from `earlier` to this stamp, if both are of the same server and time passed.
    pub(super) fn seconds_since(&self, earlier: &Stamp) -> Option<f64> {
        if self.server_id != earlier.server_id {
            return None;
        }
        let seconds = self.now.duration_since(earlier.now).ok()?.as_secs_f64();
        (seconds > 0.0).then_some(seconds)
    }
}

/// One look at the server.
#[derive(Debug, Clone)]
pub(super) struct Sample {
    stamp: Stamp,
    pub(super) varz: Value,
    pub(super) jsz: Value,
}

/// Messages and bytes per second between two samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Rates {
    pub(super) in_msgs: f64,
    pub(super) out_msgs: f64,
    pub(super) in_bytes: f64,
    pub(super) out_bytes: f64,
}

/// The counters rates are made of, as `/varz` and `/connz` name them.
pub(super) const COUNTERS: [&str; 4] = ["in_msgs", "out_msgs", "in_bytes", "out_bytes"];

impl Sample {
    fn parse(varz: Value, jsz: Value) -> Result<Sample> {
        Ok(Sample {
            stamp: Stamp::of(&varz, "/varz")?,
            varz,
            jsz,
        })
    }

    fn counter(&self, name: &str) -> Option<u64> {
        self.varz[name].as_u64()
    }

    /// Rates since `earlier`, as nats-top computes them: counter differences over the
    /// difference of the server's timestamps. None across a restart (another server id, or
    /// counters that went down) or when no time has passed.
    pub(super) fn rates_since(&self, earlier: &Sample) -> Option<Rates> {
        let seconds = self.stamp.seconds_since(&earlier.stamp)?;
        let rate =
            |name| Some(self.counter(name)?.checked_sub(earlier.counter(name)?)? as f64 / seconds);
        Some(Rates {
            in_msgs: rate(COUNTERS[0])?,
            out_msgs: rate(COUNTERS[1])?,
            in_bytes: rate(COUNTERS[2])?,
            out_bytes: rate(COUNTERS[3])?,
        })
    }

    /// The sample as `--json` prints it.
    pub(super) fn to_json(&self, rates: Option<Rates>) -> Value {
        let v = &self.varz;
        let j = &self.jsz;
        json!({
            "now": v["now"],
            "server_id": self.stamp.server_id,
            "version": v["version"],
            "uptime": v["uptime"],
            "connections": v["connections"],
            "total_connections": v["total_connections"],
            "subscriptions": v["subscriptions"],
            "slow_consumers": v["slow_consumers"],
            "in_msgs": v["in_msgs"],
            "out_msgs": v["out_msgs"],
            "in_bytes": v["in_bytes"],
            "out_bytes": v["out_bytes"],
            "rates": rates.map(|r| json!({
                "in_msgs_per_s": r.in_msgs,
                "out_msgs_per_s": r.out_msgs,
                "in_bytes_per_s": r.in_bytes,
                "out_bytes_per_s": r.out_bytes,
            })),
            "mem": v["mem"],
            "cpu": v["cpu"],
            "jetstream": {
                "streams": j["streams"],
                "consumers": j["consumers"],
                "messages": j["messages"],
                "bytes": j["bytes"],
                "memory": j["memory"],
                "max_memory": j["config"]["max_memory"],
                "storage": j["storage"],
                "max_storage": j["config"]["max_storage"],
            },
        })
    }
}

/// Samples the server whose monitoring endpoint is `url`.
pub(super) fn sample(url: &str) -> Result<Sample> {
    let agent = xtask_probe::monitoring_agent();
    let get = |path: &str| xtask_probe::get_json(&agent, &format!("{url}{path}"));
    Sample::parse(get("/varz")?, get("/jsz")?)
}

/// One node's sample in a round, with its rates since the last round.
pub(super) struct NodeRow {
    pub(super) name: String,
    pub(super) sample: Result<Sample, String>,
    pub(super) rates: Option<Rates>,
    pub(super) meta_leader: bool,
}

/// Samples every node, with its rates since `previous`, its sample of the last round.
pub(super) fn sample_nodes(
    nodes: &[(String, Option<String>)],
    previous: &HashMap<String, Sample>,
) -> Vec<NodeRow> {
    nodes
        .iter()
        .map(|(name, url)| {
            let sample = match url {
                Some(url) => sample(url).map_err(|e| format!("{e:#}")),
                None => Err("not running".to_string()),
            };
            let rates = match (&sample, previous.get(name)) {
                (Ok(now), Some(before)) => now.rates_since(before),
                _ => None,
            };
            let meta_leader = sample.as_ref().is_ok_and(|s| {
                s.jsz["meta_cluster"]["leader"].as_str() == s.varz["server_name"].as_str()
                    && s.varz["server_name"].is_string()
            });
            NodeRow {
                name: name.clone(),
                sample,
                rates,
                meta_leader,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(id: &str, now: &str, counters: [u64; 4]) -> Sample {
        let varz = json!({"server_id": id, "now": now, "in_msgs": counters[0], "out_msgs": counters[1],
                          "in_bytes": counters[2], "out_bytes": counters[3]});
        Sample::parse(varz, json!({})).unwrap()
    }

    #[test]
    fn rates_divide_by_the_servers_own_time() {
        let a = sample(
            "S",
            "2026-11-27T10:00:00.000000000Z",
            [100, 200, 1000, 2000],
        );
        let b = sample(
            "S",
            "2026-11-27T10:00:00.500000000Z",
            [150, 300, 1500, 2000],
        );
        let rates = b.rates_since(&a).unwrap();
        assert_eq!(
            rates,
            Rates {
                in_msgs: 100.0,
                out_msgs: 200.0,
                in_bytes: 1000.0,
                out_bytes: 0.0
            }
        );
    }

    #[test]
    fn no_rates_across_a_restart_or_without_elapsed_time() {
        let a = sample("S", "2026-11-27T10:00:00Z", [100, 100, 100, 100]);
        let restarted = sample("T", "2026-11-27T10:00:01Z", [1, 1, 1, 1]);
        assert_eq!(restarted.rates_since(&a), None);
        let reset = sample("S", "2026-11-27T10:00:01Z", [1, 1, 1, 1]);
        assert_eq!(reset.rates_since(&a), None);
        assert_eq!(a.rates_since(&a), None);
    }

    #[test]
    fn the_json_sample_carries_totals_rates_and_jetstream() {
        let a = sample("S", "2026-11-27T10:00:00Z", [0, 0, 0, 0]);
        let b = sample("S", "2026-11-27T10:00:02Z", [10, 20, 30, 40]);
        let out = b.to_json(b.rates_since(&a));
        assert_eq!(out["in_msgs"], 10);
        assert_eq!(out["rates"]["in_msgs_per_s"], 5.0);
        assert_eq!(out["rates"]["out_bytes_per_s"], 20.0);
        assert!(out["jetstream"].is_object());
        assert_eq!(a.to_json(None)["rates"], Value::Null);
    }
}

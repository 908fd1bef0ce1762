//! `cargo xtask monitor --connections`: the clients connected, as nats-top shows them, from
//! `/connz`, with per-second rates between samples.

use std::collections::HashMap;
use std::io::Write;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::Watched;
use super::sample::{COUNTERS, Stamp};
use super::view::Output;
use crate::util::units::bytes;

/// `/connz`'s own sort names, which `--sort` takes.
/// (`stop` and `reason` apply to closed connections only, which this does not show.)
pub(super) const SORTS: [&str; 12] = [
    "cid",
    "start",
    "subs",
    "pending",
    "msgs_to",
    "msgs_from",
    "bytes_to",
    "bytes_from",
    "last",
    "idle",
    "uptime",
    "rtt",
];

/// What to ask `/connz` for.
pub(super) struct Query {
    pub(super) sort: String,
    pub(super) top: usize,
}

/// One look at a server's connections.
struct Sample {
    stamp: Stamp,
    connz: Value,
}

fn sample(monitoring: &str, query: &Query) -> Result<Sample> {
    let url = format!(
        "{monitoring}/connz?sort={}&limit={}&subs=0",
        query.sort, query.top
    );
    let connz = xtask_probe::get_json(&xtask_probe::monitoring_agent(), &url)?;
    Ok(Sample {
        stamp: Stamp::of(&connz, "/connz")?,
        connz,
    })
}

impl Sample {
    /// The connections, each with its per-second rates since `earlier` (when the same
    /// connection of the same server was in it).
    fn connections(&self, earlier: Option<&Sample>) -> Vec<Value> {
        let seconds = earlier.and_then(|e| self.stamp.seconds_since(&e.stamp));
        let before: HashMap<u64, &Value> = earlier
            .map(|e| {
                e.list()
                    .iter()
                    .filter_map(|c| Some((c["cid"].as_u64()?, c)))
                    .collect()
            })
            .unwrap_or_default();
        self.list()
            .iter()
            .map(|c| {
                let rates = seconds
                    .zip(c["cid"].as_u64().and_then(|cid| before.get(&cid)))
                    .and_then(|(seconds, then)| {
                        let rate = |name: &str| {
                            Some(
                                c[name].as_u64()?.checked_sub(then[name].as_u64()?)? as f64
                                    / seconds,
                            )
                        };
                        Some(json!({
                            "in_msgs_per_s": rate(COUNTERS[0])?,
                            "out_msgs_per_s": rate(COUNTERS[1])?,
                            "in_bytes_per_s": rate(COUNTERS[2])?,
                            "out_bytes_per_s": rate(COUNTERS[3])?,
                        }))
                    });
                json!({
                    "cid": c["cid"],
                    "name": c["name"],
                    "lang": c["lang"],
                    "version": c["version"],
                    "ip": c["ip"],
                    "port": c["port"],
                    "subscriptions": c["subscriptions"],
                    "pending_bytes": c["pending_bytes"],
                    "in_msgs": c["in_msgs"],
                    "out_msgs": c["out_msgs"],
                    "in_bytes": c["in_bytes"],
                    "out_bytes": c["out_bytes"],
                    "rates": rates,
                    "uptime": c["uptime"],
                    "idle": c["idle"],
                    "rtt": c["rtt"],
                })
            })
            .collect()
    }

    fn list(&self) -> &[Value] {
        self.connz["connections"]
            .as_array()
            .map_or(&[], Vec::as_slice)
    }

    /// The sample as `--json` prints it.
    fn to_json(&self, earlier: Option<&Sample>, node: Option<&str>) -> Value {
        let mut json = json!({
            "now": self.connz["now"],
            "server_id": self.stamp.server_id,
            "num_connections": self.connz["num_connections"],
            "total": self.connz["total"],
            "connections": self.connections(earlier),
        });
        if let Some(node) = node {
            json["node"] = json!(node);
        }
        json
    }
}

/// Samples every interval (once more after one interval with `once`) and shows each.
pub(super) fn watch(
    watched: impl Fn() -> Result<Watched>,
    query: &Query,
    output: &Output,
    interval: Duration,
    once: bool,
) -> Result<()> {
    let stopped = if once {
        None
    } else {
        let (stop, stopped) = mpsc::channel();
        ctrlc::set_handler(move || {
            let _ = stop.send(());
        })
        .context("cannot handle Ctrl-C")?;
        Some(stopped)
    };
    let mut previous: HashMap<String, Sample> = HashMap::new();
    let mut rounds = 0;
    loop {
        let servers: Vec<(Option<String>, Result<String>)> = match watched() {
            Ok(Watched::One(url)) => vec![(None, Ok(url))],
            Ok(Watched::Nodes(nodes)) => nodes
                .into_iter()
                .map(|(name, url)| {
                    let url = url.context("not running");
                    (Some(name), url)
                })
                .collect(),
            Ok(Watched::Nothing(why)) if once => bail!("{why}"),
            Ok(Watched::Nothing(why)) => vec![(None, Err(anyhow::anyhow!("{why}")))],
            Err(e) if once => return Err(e),
            Err(e) => vec![(None, Err(e))],
        };
        let mut text = String::new();
        if let Output::Screen = output {
            text.push_str("\x1b[H\x1b[J");
        }
        let mut current = HashMap::new();
        for (node, url) in servers {
            let key = node.clone().unwrap_or_default();
            let taken = url.and_then(|url| sample(&url, query));
            match taken {
                Ok(now) => {
                    let earlier = previous.get(&key);
                    if !(once && rounds == 0) {
                        text.push_str(&shown(output, &now, earlier, node.as_deref(), query));
                    }
                    current.insert(key, now);
                }
                Err(e) if once => bail!("{e:#}"),
                Err(e) => text.push_str(&match output {
                    Output::Json => {
                        format!("{}\n", json!({"node": node, "error": format!("{e:#}")}))
                    }
                    _ => format!("{}unavailable: {e:#}\n", node_label(node.as_deref())),
                }),
            }
        }
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
        drop(stdout);
        previous = current;
        rounds += 1;
        match &stopped {
            None if rounds == 2 => return Ok(()),
            None => std::thread::sleep(interval),
            Some(stopped) => {
                if stopped.recv_timeout(interval) != Err(mpsc::RecvTimeoutError::Timeout) {
                    return Ok(());
                }
            }
        }
    }
}

fn node_label(node: Option<&str>) -> String {
    node.map(|n| format!("{n}: ")).unwrap_or_default()
}

/// One server's sample, as `output` shows it.
fn shown(
    output: &Output,
    now: &Sample,
    earlier: Option<&Sample>,
    node: Option<&str>,
    query: &Query,
) -> String {
    if let Output::Json = output {
        return format!("{}\n", now.to_json(earlier, node));
    }
    let connections = now.connections(earlier);
    let total = now.connz["total"].as_u64().unwrap_or(0);
    let mut text = format!(
        "{}{total} connection{} ({} shown, sorted by {}){}\n",
        node_label(node),
        if total == 1 { "" } else { "s" },
        connections.len(),
        query.sort,
        if let Output::Screen = output {
            "   (Ctrl-C to quit)"
        } else {
            ""
        }
    );
    text.push_str(&format!(
        "{:>6}  {:<20} {:<12} {:>5} {:>9} {:>10} {:>10} {:>10} {:>10} {:>12} {:>12} {:>9} {:>9}\n",
        "cid",
        "name",
        "lang/ver",
        "subs",
        "pending",
        "msgs in",
        "msgs out",
        "bytes in",
        "bytes out",
        "msgs/s in",
        "msgs/s out",
        "uptime",
        "idle"
    ));
    for c in &connections {
        let text_of = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
        let rate = |name: &str| {
            c["rates"][name]
                .as_f64()
                .map_or_else(|| "-".to_string(), |r| format!("{r:.1}"))
        };
        let name: String = text_of(&c["name"]).chars().take(20).collect();
        text.push_str(&format!(
            "{:>6}  {:<20} {:<12} {:>5} {:>9} {:>10} {:>10} {:>10} {:>10} {:>12} {:>12} {:>9} {:>9}\n",
            text_of(&c["cid"]),
            if c["name"].is_null() { String::new() } else { name },
            format!("{}/{}", text_of(&c["lang"]), text_of(&c["version"])),
            text_of(&c["subscriptions"]),
            bytes(&c["pending_bytes"]),
            text_of(&c["in_msgs"]),
            text_of(&c["out_msgs"]),
            bytes(&c["in_bytes"]),
            bytes(&c["out_bytes"]),
            rate("in_msgs_per_s"),
            rate("out_msgs_per_s"),
            text_of(&c["uptime"]),
            text_of(&c["idle"]),
        ));
    }
    if let Output::Screen = output {
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_at(now: &str, out_msgs: u64) -> Sample {
        let connz = json!({"server_id": "S", "now": now, "num_connections": 1, "total": 1,
            "connections": [{"cid": 5, "name": "svc", "subscriptions": 2, "in_msgs": 10,
                "out_msgs": out_msgs, "in_bytes": 100, "out_bytes": 1000}]});
        Sample {
            stamp: Stamp::of(&connz, "/connz").unwrap(),
            connz,
        }
    }

    #[test]
    fn connection_rates_are_per_connection_over_server_time() {
        let a = sample_at("2026-11-28T10:00:00Z", 100);
        let b = sample_at("2026-11-28T10:00:02Z", 300);
        let json = b.to_json(Some(&a), Some("n1"));
        let c = &json["connections"][0];
        assert_eq!(c["rates"]["out_msgs_per_s"], 100.0);
        assert_eq!(c["rates"]["in_msgs_per_s"], 0.0);
        assert_eq!(
            (c["name"].as_str(), c["subscriptions"].as_u64()),
            (Some("svc"), Some(2))
        );
        assert_eq!(json["node"], "n1");
        assert_eq!(
            b.to_json(None, None)["connections"][0]["rates"],
            Value::Null
        );
    }
}

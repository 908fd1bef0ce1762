//! `cargo xtask monitor`: live statistics from the server's monitoring endpoint.

mod connections;

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::cluster;
use crate::layout::Layout;
use crate::lifecycle::NOT_RUNNING;
use crate::server::{self, Endpoints};
use crate::util::units::{self, bytes};

/// Watch the server: connections, message and byte rates, memory, CPU, JetStream usage.
///
/// Samples `/varz` and `/jsz` every interval; rates are computed from the server's own
/// timestamps between two samples. For this checkout's cluster, one row (or JSON object, with
/// `node` and `meta_leader`) per node and sample. On a terminal the view is redrawn in place;
/// piped, one line is printed per sample. If nothing of this checkout runs, or the server goes
/// away, that is shown and monitoring waits until it runs; Ctrl-C exits. `--once` with nothing
/// running says so and exits 3, as `status` does.
#[derive(Debug, clap::Args)]
pub(crate) struct Monitor {
    /// Seconds between samples, from 0.05 to 3600.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0, value_parser = parse_interval)]
    interval: f64,

    /// Print one sample, with rates over one interval, and exit.
    #[arg(long)]
    once: bool,

    /// Print one JSON object per sample on stdout.
    #[arg(long)]
    json: bool,

    /// Show the connected clients instead, as nats-top does (from /connz): name, language and
    /// version, subscriptions, pending bytes, messages and bytes in and out with rates,
    /// uptime, idle time.
    #[arg(long)]
    connections: bool,

    /// With --connections: the order, by /connz's sort names.
    #[arg(long, value_name = "BY", default_value = "cid", requires = "connections",
          value_parser = clap::builder::PossibleValuesParser::new(connections::SORTS))]
    sort: String,

    /// With --connections: show this many connections (per node), from the top of the order.
    #[arg(long, value_name = "N", default_value_t = 20, requires = "connections",
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    top: u32,

    /// Monitoring URL to watch instead of this checkout's server, such as http://127.0.0.1:8222.
    #[arg(long, env = "NATS_MONITOR_URL", value_name = "URL")]
    url: Option<String>,
}

fn parse_interval(text: &str) -> Result<f64> {
    let seconds: f64 = text
        .parse()
        .with_context(|| format!("`{text}` is not a number of seconds"))?;
    if !(0.05..=3600.0).contains(&seconds) {
        bail!("the interval must be between 0.05 and 3600 seconds");
    }
    Ok(seconds)
}

/// One look at the server.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    server_id: String,
    now: SystemTime,
    varz: Value,
    jsz: Value,
}

/// Messages and bytes per second between two samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rates {
    in_msgs: f64,
    out_msgs: f64,
    in_bytes: f64,
    out_bytes: f64,
}

const COUNTERS: [&str; 4] = ["in_msgs", "out_msgs", "in_bytes", "out_bytes"];

impl Sample {
    fn parse(varz: Value, jsz: Value) -> Result<Sample> {
        let server_id = varz["server_id"]
            .as_str()
            .context("/varz has no server_id")?
            .to_string();
        let now = varz["now"].as_str().context("/varz has no `now`")?;
        let now = humantime::parse_rfc3339_weak(now)
            .with_context(|| format!("/varz `now` is not a time: {now}"))?;
        Ok(Sample {
            server_id,
            now,
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
    pub(crate) fn rates_since(&self, earlier: &Sample) -> Option<Rates> {
        if self.server_id != earlier.server_id {
            return None;
        }
        let seconds = self.now.duration_since(earlier.now).ok()?.as_secs_f64();
        if seconds <= 0.0 {
            return None;
        }
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
    fn to_json(&self, rates: Option<Rates>) -> Value {
        let v = &self.varz;
        let j = &self.jsz;
        json!({
            "now": v["now"],
            "server_id": self.server_id,
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

fn rate_text(
    rates: Option<Rates>,
    msgs: impl Fn(Rates) -> f64,
    bytes_per_s: impl Fn(Rates) -> f64,
) -> String {
    match rates {
        Some(r) => format!("{:.1} msg/s, {}/s", msgs(r), bytes(&json!(bytes_per_s(r)))),
        None => "- msg/s".to_string(),
    }
}

/// The view on a terminal.
fn screen(sample: &Sample, rates: Option<Rates>, url: &str) -> String {
    let v = &sample.varz;
    let j = &sample.jsz;
    let plain = |value: &Value| {
        value
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| value.to_string())
    };
    [
        format!(
            "nats-server {} at {url}   up {}   (Ctrl-C to quit)",
            plain(&v["version"]),
            plain(&v["uptime"])
        ),
        String::new(),
        format!(
            "connections   {} now, {} in all",
            v["connections"], v["total_connections"]
        ),
        format!(
            "in            {}   total {} msgs, {}",
            rate_text(rates, |r| r.in_msgs, |r| r.in_bytes),
            v["in_msgs"],
            bytes(&v["in_bytes"])
        ),
        format!(
            "out           {}   total {} msgs, {}",
            rate_text(rates, |r| r.out_msgs, |r| r.out_bytes),
            v["out_msgs"],
            bytes(&v["out_bytes"])
        ),
        format!("slow consumers {}", v["slow_consumers"]),
        format!(
            "memory        {}   cpu {}%",
            bytes(&v["mem"]),
            plain(&v["cpu"])
        ),
        format!(
            "jetstream     {}, {}, {}, {}",
            units::counted(&j["streams"], "stream"),
            units::counted(&j["consumers"], "consumer"),
            units::counted(&j["messages"], "message"),
            bytes(&j["bytes"])
        ),
        format!(
            "  storage     memory {} of {}, file {} of {}",
            bytes(&j["memory"]),
            bytes(&j["config"]["max_memory"]),
            bytes(&j["storage"]),
            bytes(&j["config"]["max_storage"])
        ),
    ]
    .join("\n")
}

/// The one-line form, for pipes and logs.
fn line(sample: &Sample, rates: Option<Rates>) -> String {
    let v = &sample.varz;
    let j = &sample.jsz;
    format!(
        "{} conns={} in={} out={} slow={} mem={} cpu={}% js: streams={} consumers={} msgs={} mem={}/{} file={}/{}",
        v["now"].as_str().unwrap_or("?"),
        v["connections"],
        rate_text(rates, |r| r.in_msgs, |r| r.in_bytes).replace(' ', ""),
        rate_text(rates, |r| r.out_msgs, |r| r.out_bytes).replace(' ', ""),
        v["slow_consumers"],
        bytes(&v["mem"]).replace(' ', ""),
        v["cpu"],
        j["streams"],
        j["consumers"],
        j["messages"],
        bytes(&j["memory"]).replace(' ', ""),
        bytes(&j["config"]["max_memory"]).replace(' ', ""),
        bytes(&j["storage"]).replace(' ', ""),
        bytes(&j["config"]["max_storage"]).replace(' ', ""),
    )
}

enum Output {
    Json,
    Screen,
    Lines,
}

impl Monitor {
    pub(crate) fn run(&self, layout: impl Fn() -> Result<Layout>) -> Result<ExitCode> {
        let output = if self.json {
            Output::Json
        } else if std::io::stdout().is_terminal() && !self.once {
            Output::Screen
        } else {
            Output::Lines
        };
        let interval = Duration::from_secs_f64(self.interval);
        if self.once
            && let Watched::Nothing(why) = self.watched(&layout)?
        {
            eprintln!("{why}");
            return Ok(ExitCode::from(NOT_RUNNING));
        }
        if self.connections {
            let query = connections::Query {
                sort: self.sort.clone(),
                top: self.top as usize,
            };
            let watched = || self.watched(&layout);
            connections::watch(watched, &query, &output, interval, self.once)?;
            return Ok(ExitCode::SUCCESS);
        }
        if self.once {
            match self.watched(&layout)? {
                Watched::Nothing(why) => bail!("{why}"),
                Watched::One(url) => {
                    let first = sample(&url)?;
                    std::thread::sleep(interval);
                    let second = sample(&url)?;
                    show(&output, &second, second.rates_since(&first), &url);
                }
                Watched::Nodes(nodes) => {
                    let first = sample_nodes(&nodes, &HashMap::new());
                    let first: HashMap<String, Sample> = first
                        .into_iter()
                        .filter_map(|row| Some((row.name, row.sample.ok()?)))
                        .collect();
                    std::thread::sleep(interval);
                    show_nodes(&output, &sample_nodes(&nodes, &first));
                }
            }
            return Ok(ExitCode::SUCCESS);
        }

        let (stop, stopped) = mpsc::channel();
        ctrlc::set_handler(move || {
            let _ = stop.send(());
        })
        .context("cannot handle Ctrl-C")?;
        let mut previous: Option<Sample> = None;
        let mut previous_nodes: HashMap<String, Sample> = HashMap::new();
        loop {
            match self.watched(&layout) {
                Ok(Watched::Nothing(why)) => {
                    show_waiting(&output, &why);
                    previous = None;
                    previous_nodes.clear();
                }
                Ok(Watched::Nodes(nodes)) => {
                    previous = None;
                    let rows = sample_nodes(&nodes, &previous_nodes);
                    show_nodes(&output, &rows);
                    previous_nodes = rows
                        .into_iter()
                        .filter_map(|row| Some((row.name, row.sample.ok()?)))
                        .collect();
                }
                Ok(Watched::One(url)) => {
                    previous_nodes.clear();
                    match sample(&url) {
                        Ok(current) => {
                            let rates = previous.as_ref().and_then(|p| current.rates_since(p));
                            show(&output, &current, rates, &url);
                            previous = Some(current);
                        }
                        Err(e) => {
                            show_down(&output, &e);
                            previous = None;
                        }
                    }
                }
                Err(e) => {
                    show_down(&output, &e);
                    previous = None;
                }
            }
            if stopped.recv_timeout(interval) != Err(mpsc::RecvTimeoutError::Timeout) {
                return Ok(ExitCode::SUCCESS);
            }
        }
    }

    /// `--url`, else this checkout's running server, else its cluster's nodes, else nothing.
    fn watched(&self, layout: &impl Fn() -> Result<Layout>) -> Result<Watched> {
        if let Some(url) = &self.url {
            return Ok(Watched::One(url.trim_end_matches('/').to_string()));
        }
        let layout = &layout()?;
        if let Some(pid) = server::reconcile_pid_file(layout)? {
            return Ok(Watched::One(Endpoints::of_running(layout, pid)?.monitoring));
        }
        let names = cluster::recorded_names(layout);
        if names.is_empty() {
            return Ok(Watched::Nothing(
                "nothing of this checkout runs: `cargo xtask run --detach` starts its nats-server \
                 (`cargo xtask run --cluster --detach` a cluster)"
                    .to_string(),
            ));
        }
        let mut nodes = Vec::new();
        let mut any_running = false;
        for name in names {
            let node = layout.node(&name);
            let pid = server::reconcile_pid_file(&node)?;
            any_running |= pid.is_some();
            let url = pid
                .and_then(|pid| Endpoints::of(&node, pid))
                .map(|endpoints| endpoints.monitoring);
            nodes.push((name, url));
        }
        if !any_running {
            return Ok(Watched::Nothing(format!(
                "nothing of this checkout runs: not its nats-server, nor any of the {} nodes of \
                 its cluster (`cargo xtask run --cluster --detach` starts the cluster again, \
                 `cargo xtask run --detach` the single server)",
                nodes.len()
            )));
        }
        Ok(Watched::Nodes(nodes))
    }
}

/// What monitor watches: one monitoring endpoint, or every node of the cluster (with its
/// endpoint when it runs), or nothing, and why with what starts it.
enum Watched {
    One(String),
    Nodes(Vec<(String, Option<String>)>),
    Nothing(String),
}

/// One node's sample in a round, with its rates since the last round.
struct NodeRow {
    name: String,
    sample: Result<Sample, String>,
    rates: Option<Rates>,
    meta_leader: bool,
}

fn sample_nodes(
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

fn show_nodes(output: &Output, rows: &[NodeRow]) {
    let mut stdout = std::io::stdout().lock();
    let mut text = String::new();
    if let Output::Screen = output {
        text.push_str(&format!(
            "\x1b[H\x1b[Jcluster of {} nodes   (Ctrl-C to quit; * leads the meta group)\n\n{:<6}{:>6}  {:<24}{:<24}{:>10}{:>7}{:>10}{:>12}\n",
            rows.len(),
            "node",
            "conns",
            "in",
            "out",
            "mem",
            "cpu",
            "js msgs",
            "js file"
        ));
    }
    for row in rows {
        let line = match (&row.sample, output) {
            (Ok(sample), Output::Json) => {
                let mut json = sample.to_json(row.rates);
                json["node"] = json!(row.name);
                json["meta_leader"] = json!(row.meta_leader);
                json.to_string()
            }
            (Err(why), Output::Json) => json!({"node": row.name, "error": why}).to_string(),
            (Ok(sample), Output::Lines) => format!(
                "{}{} {}",
                row.name,
                if row.meta_leader { "*" } else { "" },
                line(sample, row.rates)
            ),
            (Err(why), Output::Lines) => format!("{} unavailable: {why}", row.name),
            (Ok(sample), Output::Screen) => {
                let v = &sample.varz;
                let j = &sample.jsz;
                format!(
                    "{:<6}{:>6}  {:<24}{:<24}{:>10}{:>6}%{:>10}{:>12}",
                    format!("{}{}", row.name, if row.meta_leader { "*" } else { "" }),
                    v["connections"],
                    rate_text(row.rates, |r| r.in_msgs, |r| r.in_bytes),
                    rate_text(row.rates, |r| r.out_msgs, |r| r.out_bytes),
                    bytes(&v["mem"]),
                    v["cpu"],
                    j["messages"],
                    bytes(&j["storage"]),
                )
            }
            (Err(why), Output::Screen) => format!("{:<6}{why}", row.name),
        };
        text.push_str(&line);
        text.push('\n');
    }
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

fn sample(url: &str) -> Result<Sample> {
    let agent = xtask_probe::monitoring_agent();
    let get = |path: &str| xtask_probe::get_json(&agent, &format!("{url}{path}"));
    Sample::parse(get("/varz")?, get("/jsz")?)
}

fn show(output: &Output, sample: &Sample, rates: Option<Rates>, url: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = match output {
        Output::Json => writeln!(stdout, "{}", sample.to_json(rates)),
        // Home, clear to the end of the screen, draw.
        Output::Screen => writeln!(stdout, "\x1b[H\x1b[J{}", screen(sample, rates, url)),
        Output::Lines => writeln!(stdout, "{}", line(sample, rates)),
    };
    let _ = stdout.flush();
}

/// Nothing of this checkout runs (yet): `why`, and that monitor waits for it.
fn show_waiting(output: &Output, why: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = match output {
        Output::Json => writeln!(stdout, "{}", json!({"error": why, "running": false})),
        Output::Screen => write!(
            stdout,
            "\x1b[H\x1b[J{why}\nwaiting for it to start (Ctrl-C to quit)\n"
        ),
        Output::Lines => writeln!(stdout, "{why}; waiting for it to start"),
    };
    let _ = stdout.flush();
}

fn show_down(output: &Output, error: &anyhow::Error) {
    let mut stdout = std::io::stdout().lock();
    let _ = match output {
        Output::Json => writeln!(stdout, "{}", json!({"error": format!("{error:#}")})),
        Output::Screen => write!(
            stdout,
            "\x1b[H\x1b[J{error:#}\nretrying every interval (Ctrl-C to quit)\n"
        ),
        Output::Lines => writeln!(stdout, "server unavailable: {error:#}; retrying"),
    };
    let _ = stdout.flush();
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

    #[test]
    fn intervals_are_bounded() {
        assert_eq!(parse_interval("0.5").unwrap(), 0.5);
        assert!(parse_interval("0").is_err());
        assert!(parse_interval("soon").is_err());
    }
}

//! What a bench run reports: for people (as `nats bench` prints it), as one JSON document, or
//! as `nats bench --csv` rows.

use std::fmt::Write as _;

use anyhow::Result;
use serde_json::{Value, json};

use crate::Target;
use crate::measure::Group;

/// A count and its noun, singular for one: `1 publisher`, `2 publishers`.
pub(crate) fn count(n: impl Into<u64>, noun: &str) -> String {
    match n.into() {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

/// One benchmark's results.
pub(crate) struct Outcome {
    pub(crate) name: &'static str,
    pub(crate) title: String,
    pub(crate) params: Value,
    /// The clients that publish (or request).
    pub(crate) publishers: Option<Group>,
    /// The clients that receive (or consume).
    pub(crate) subscribers: Option<Group>,
    /// Messages sent and not received (or not acknowledged): never averaged away.
    pub(crate) missing: u64,
    pub(crate) extra: Value,
    pub(crate) notes: Vec<String>,
    pub(crate) cpu: Cpu,
    /// The run failed (JetStream publishes refused, say), beyond what it measured.
    pub(crate) failed: bool,
}

/// CPU seconds of the server and of the bench during one benchmark.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cpu {
    server: Option<f64>,
    bench: Option<f64>,
}

impl Cpu {
    /// From clock readings (server, bench) before and after.
    pub(crate) fn between(
        before: (Option<f64>, Option<f64>),
        after: (Option<f64>, Option<f64>),
    ) -> Cpu {
        let spent = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
        Cpu {
            server: spent(before.0, after.0),
            bench: spent(before.1, after.1),
        }
    }
}

impl Outcome {
    /// The messages the benchmark moved: what the subscribers received, else what was sent.
    fn msgs(&self) -> u64 {
        self.subscribers
            .as_ref()
            .or(self.publishers.as_ref())
            .map_or(0, Group::msgs)
    }

    fn cpu_json(&self) -> Value {
        let per_million = |seconds: Option<f64>| {
            seconds
                .filter(|_| self.msgs() > 0)
                .map(|s| s * 1e6 / self.msgs() as f64)
        };
        // The OS accounts CPU time in steps of 10 ms or so: milliseconds are all there is.
        let round = |seconds: Option<f64>| seconds.map(|s| (s * 1000.0).round() / 1000.0);
        json!({
            "server_seconds": round(self.cpu.server),
            "bench_seconds": round(self.cpu.bench),
            "server_seconds_per_million_msgs": round(per_million(self.cpu.server)),
            "bench_seconds_per_million_msgs": round(per_million(self.cpu.bench)),
        })
    }
}

/// Every benchmark of a run, and what was measured.
pub(crate) struct Report {
    version: String,
    pub(crate) nodes: usize,
    run_id: String,
    pub(crate) outcomes: Vec<Outcome>,
}

impl Report {
    /// The server measured, as it says of itself.
    pub(crate) async fn about(target: &Target) -> Result<Report> {
        let url = format!("{}/varz", target.monitoring[0]);
        let varz = xtask_clients::get_json(url).await?;
        Ok(Report {
            version: varz["version"].as_str().unwrap_or("?").to_string(),
            nodes: target.clients.len(),
            run_id: xtask_clients::unique_id(),
            outcomes: Vec::new(),
        })
    }

    fn mode(&self) -> String {
        if self.nodes > 1 {
            format!("cluster of {} nodes", self.nodes)
        } else {
            "single server".to_string()
        }
    }

    /// Whether a JetStream publish failed, or a message stored was not read back: failures of
    /// the run, where a core shortfall is one of its figures.
    pub(crate) fn failed(&self) -> bool {
        self.outcomes.iter().any(|o| o.failed)
    }

    /// Whether every message was accounted for as received.
    pub(crate) fn complete(&self) -> bool {
        self.outcomes.iter().all(|o| o.missing == 0)
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "server": {"version": self.version, "mode": if self.nodes > 1 { "cluster" } else { "single" }, "nodes": self.nodes},
            "run_id": self.run_id,
            "benchmarks": self.outcomes.iter().map(|o| json!({
                "name": o.name,
                "title": o.title,
                "params": o.params,
                "publishers": o.publishers.as_ref().map(Group::to_json),
                "subscribers": o.subscribers.as_ref().map(Group::to_json),
                "missing": o.missing,
                "details": o.extra,
                "notes": o.notes,
                "cpu": o.cpu_json(),
            })).collect::<Vec<_>>(),
            "complete": self.complete(),
        })
    }

    /// natscli's CSV: a header, then one row per client, publishers `P0`... and subscribers
    /// `S0`..., latencies in microseconds where they were measured.
    pub(crate) fn to_csv(&self) -> String {
        let mut csv = String::from(
            "#RunID,ClientID,MsgCount,MsgBytes,MsgsPerSec,BytesPerSec,DurationSecs,\
             MinLatencyMicroSecs,AvgLatencyMicroSecs,MaxLatencyMicroSecs,P50LatencyMicroSecs,\
             P90LatencyMicroSecs,P99LatencyMicroSecs,P99.9LatencyMicroSecs,\
             StdDevLatencyMicroSecs\n",
        );
        for (index, outcome) in self.outcomes.iter().enumerate() {
            let run_id = if self.outcomes.len() > 1 {
                format!("{}-{}", self.run_id, index + 1)
            } else {
                self.run_id.clone()
            };
            let groups = [&outcome.subscribers, &outcome.publishers];
            for client in groups.into_iter().flatten().flat_map(|g| &g.clients) {
                let _ = write!(
                    csv,
                    "{run_id},{},{},{},{},{:.6},{:.6}",
                    client.id,
                    client.msgs,
                    client.bytes,
                    client.msgs_per_sec() as u64,
                    client.bytes_per_sec(),
                    client.seconds()
                );
                match &client.latency {
                    Some(h) => {
                        let _ = write!(
                            csv,
                            ",{},{:.3},{},{},{},{},{},{:.3}",
                            h.min(),
                            h.mean(),
                            h.max(),
                            h.value_at_quantile(0.5),
                            h.value_at_quantile(0.9),
                            h.value_at_quantile(0.99),
                            h.value_at_quantile(0.999),
                            h.stdev()
                        );
                    }
                    None => csv.push_str(",,,,,,,,"),
                }
                csv.push('\n');
            }
        }
        csv
    }

    /// As `nats bench` prints it, with a table when several benchmarks ran.
    pub(crate) fn to_text(&self) -> String {
        let mut text = format!("nats-server {} ({})\n", self.version, self.mode());
        for outcome in &self.outcomes {
            let _ = writeln!(text, "\n{}", outcome.title);
            for (label, group) in [("Pub", &outcome.publishers), ("Sub", &outcome.subscribers)] {
                let Some(group) = group else { continue };
                let _ = writeln!(
                    text,
                    " {label} stats: {} msgs/sec ~ {}/sec ({} msgs in {:.3} s)",
                    thousands(group.msgs_per_sec()),
                    human_bytes(group.bytes_per_sec()),
                    group.msgs(),
                    group.seconds()
                );
                if group.clients.len() > 1 {
                    for (n, client) in group.clients.iter().enumerate() {
                        let _ = writeln!(
                            text,
                            "  [{}] {} msgs/sec ~ {}/sec ({} msgs)",
                            n + 1,
                            thousands(client.msgs_per_sec()),
                            human_bytes(client.bytes_per_sec()),
                            client.msgs
                        );
                    }
                    let spread = group.spread();
                    let _ = writeln!(
                        text,
                        "  min {} | avg {} | max {} | stddev {} msgs",
                        thousands(spread.min),
                        thousands(spread.avg),
                        thousands(spread.max),
                        thousands(spread.stddev)
                    );
                }
                if let Some(h) = group.latency() {
                    let _ = writeln!(
                        text,
                        "  latency µs: p50 {} | p90 {} | p99 {} | p99.9 {} | max {} ({} samples)",
                        h.value_at_quantile(0.5),
                        h.value_at_quantile(0.9),
                        h.value_at_quantile(0.99),
                        h.value_at_quantile(0.999),
                        h.max(),
                        h.len()
                    );
                }
            }
            let _ = writeln!(text, " missing: {}", outcome.missing);
            for note in &outcome.notes {
                let _ = writeln!(text, " note: {note}");
            }
            let cpu = outcome.cpu_json();
            if let (Some(server), Some(bench)) = (
                cpu["server_seconds_per_million_msgs"].as_f64(),
                cpu["bench_seconds_per_million_msgs"].as_f64(),
            ) {
                let _ = writeln!(
                    text,
                    " cpu: server {server:.2} s, bench {bench:.2} s per million messages"
                );
            }
        }
        if self.outcomes.len() > 1 {
            text.push_str(&self.table());
        }
        text
    }

    /// One line per benchmark and side (publishing, receiving).
    fn table(&self) -> String {
        let mut table = format!(
            "\n{:<14}{:>14}{:>14}{:>12}{:>12}{:>10}\n",
            "benchmark", "msgs/sec", "bytes/sec", "p50 µs", "p99 µs", "missing"
        );
        for outcome in &self.outcomes {
            let sides = [("pub", &outcome.publishers), ("sub", &outcome.subscribers)];
            let present: Vec<_> = sides.iter().filter(|(_, g)| g.is_some()).collect();
            for (side, group) in &present {
                let Some(group) = group else { continue };
                let name = if present.len() > 1 {
                    format!("{} {side}", outcome.name)
                } else {
                    outcome.name.to_string()
                };
                let latency = group.latency();
                let at = |q: f64| {
                    latency
                        .as_ref()
                        .map_or_else(|| "-".to_string(), |h| h.value_at_quantile(q).to_string())
                };
                let _ = writeln!(
                    table,
                    "{name:<14}{:>14}{:>14}{:>12}{:>12}{:>10}",
                    thousands(group.msgs_per_sec()),
                    human_bytes(group.bytes_per_sec()),
                    at(0.5),
                    at(0.99),
                    outcome.missing
                );
            }
        }
        table
    }
}

/// 1234567.8 as `1,234,568`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn human_bytes(value: f64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = value;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::tests::client;
    use crate::measure::{ClientRun, latency_histogram, record};
    use std::time::{Duration, Instant};

    fn report() -> Report {
        let t = Instant::now();
        let mut latency = latency_histogram();
        record(&mut latency, Duration::from_micros(250));
        let client = |id: &str, latency| ClientRun {
            id: id.into(),
            msgs: 1000,
            bytes: 128_000,
            start: t,
            end: t + Duration::from_millis(500),
            latency,
        };
        Report {
            version: "2.10.26".into(),
            nodes: 1,
            run_id: "abc".into(),
            outcomes: vec![Outcome {
                name: "pubsub",
                title: "t".into(),
                params: json!({}),
                publishers: Some(Group {
                    clients: vec![client("P0", Some(latency))],
                }),
                subscribers: Some(Group {
                    clients: vec![client("S0", None)],
                }),
                missing: 0,
                extra: json!({}),
                notes: Vec::new(),
                cpu: Cpu {
                    server: Some(0.5),
                    bench: Some(0.25),
                },
                failed: false,
            }],
        }
    }

    #[test]
    fn csv_rows_are_natscli_s() {
        let csv = report().to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert!(lines[0].starts_with("#RunID,ClientID,MsgCount,MsgBytes,MsgsPerSec,BytesPerSec,DurationSecs,MinLatencyMicroSecs"));
        assert_eq!(
            lines[1],
            "abc,S0,1000,128000,2000,256000.000000,0.500000,,,,,,,,"
        );
        assert!(lines[2].starts_with("abc,P0,1000,128000,2000,256000.000000,0.500000,250,"));
        assert_eq!(lines[0].split(',').count(), lines[2].split(',').count());
    }

    #[test]
    fn cpu_is_given_per_million_messages() {
        let json = report().to_json();
        let cpu = &json["benchmarks"][0]["cpu"];
        assert_eq!(cpu["server_seconds_per_million_msgs"], 500.0);
        assert_eq!(cpu["bench_seconds_per_million_msgs"], 250.0);
        assert_eq!(json["complete"], true);
    }

    #[test]
    fn rates_are_rounded_and_grouped_in_thousands() {
        assert_eq!(thousands(1234567.8), "1,234,568");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(0.0), "0");
    }

    /// On a cluster of three: pubsub, two publishers at 1,000 and 3,000 msgs/sec and one
    /// subscriber, then a request benchmark that failed with 3 messages missing.
    fn two_benchmarks() -> Report {
        let t = Instant::now();
        let pubsub = Outcome {
            name: "pubsub",
            title: "pubsub: 2 publishers, 1 subscriber".into(),
            params: json!({}),
            publishers: Some(Group {
                clients: vec![
                    client(t, "P0", 1000, 1_024_000, 0, 1000, &[200]),
                    client(t, "P1", 3000, 3_072_000, 0, 1000, &[200]),
                ],
            }),
            subscribers: Some(Group {
                clients: vec![client(t, "S0", 4000, 4_096_000, 0, 1000, &[])],
            }),
            missing: 0,
            extra: json!({}),
            notes: Vec::new(),
            cpu: Cpu {
                server: Some(0.8),
                bench: Some(0.4),
            },
            failed: false,
        };
        let request = Outcome {
            name: "request",
            title: "request: 1 requester".into(),
            params: json!({}),
            publishers: Some(Group {
                clients: vec![client(t, "P0", 500, 50_000, 0, 250, &[1500])],
            }),
            subscribers: None,
            missing: 3,
            extra: json!({}),
            notes: vec!["3 requests timed out".into()],
            cpu: Cpu {
                server: None,
                bench: None,
            },
            failed: true,
        };
        Report {
            version: "2.10.26".into(),
            nodes: 3,
            run_id: "abc".into(),
            outcomes: vec![pubsub, request],
        }
    }

    #[test]
    fn the_text_of_one_benchmark_has_its_stats_missing_and_cpu() {
        let text = report().to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "nats-server 2.10.26 (single server)",
                "",
                "t",
                " Pub stats: 2,000 msgs/sec ~ 250.0 KiB/sec (1000 msgs in 0.500 s)",
                "  latency µs: p50 250 | p90 250 | p99 250 | p99.9 250 | max 250 (1 samples)",
                " Sub stats: 2,000 msgs/sec ~ 250.0 KiB/sec (1000 msgs in 0.500 s)",
                " missing: 0",
                " cpu: server 500.00 s, bench 250.00 s per million messages",
            ]
        );
    }

    #[test]
    fn the_text_of_several_benchmarks_has_each_client_and_a_table() {
        let text = two_benchmarks().to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "nats-server 2.10.26 (cluster of 3 nodes)",
                "",
                "pubsub: 2 publishers, 1 subscriber",
                " Pub stats: 4,000 msgs/sec ~ 3.9 MiB/sec (4000 msgs in 1.000 s)",
                "  [1] 1,000 msgs/sec ~ 1000.0 KiB/sec (1000 msgs)",
                "  [2] 3,000 msgs/sec ~ 2.9 MiB/sec (3000 msgs)",
                "  min 1,000 | avg 2,000 | max 3,000 | stddev 1,000 msgs",
                "  latency µs: p50 200 | p90 200 | p99 200 | p99.9 200 | max 200 (2 samples)",
                " Sub stats: 4,000 msgs/sec ~ 3.9 MiB/sec (4000 msgs in 1.000 s)",
                " missing: 0",
                " cpu: server 200.00 s, bench 100.00 s per million messages",
                "",
                "request: 1 requester",
                " Pub stats: 2,000 msgs/sec ~ 195.3 KiB/sec (500 msgs in 0.250 s)",
                "  latency µs: p50 1500 | p90 1500 | p99 1500 | p99.9 1500 | max 1500 (1 samples)",
                " missing: 3",
                " note: 3 requests timed out",
                "",
                "benchmark           msgs/sec     bytes/sec      p50 µs      p99 µs   missing",
                "pubsub pub             4,000       3.9 MiB         200         200         0",
                "pubsub sub             4,000       3.9 MiB           -           -         0",
                "request                2,000     195.3 KiB        1500        1500         3",
            ]
        );
    }

    #[test]
    fn the_mode_is_a_single_server_or_a_cluster_of_its_nodes() {
        let mut report = report();
        assert_eq!(report.mode(), "single server");
        report.nodes = 2;
        assert_eq!(report.mode(), "cluster of 2 nodes");
    }

    #[test]
    fn a_run_fails_when_one_benchmark_failed() {
        assert!(!report().failed());
        assert!(two_benchmarks().failed());
    }

    #[test]
    fn a_run_is_complete_when_no_benchmark_misses_a_message() {
        assert!(report().complete());
        let report = two_benchmarks();
        assert!(!report.complete());
        assert_eq!(report.to_json()["complete"], false);
    }

    #[test]
    fn csv_run_ids_are_numbered_when_several_benchmarks_ran() {
        let csv = two_benchmarks().to_csv();
        let rows: Vec<(&str, &str)> = csv
            .lines()
            .skip(1)
            .map(|line| {
                let mut fields = line.split(',');
                (fields.next().unwrap(), fields.next().unwrap())
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("abc-1", "S0"),
                ("abc-1", "P0"),
                ("abc-1", "P1"),
                ("abc-2", "P0")
            ]
        );
    }

    #[test]
    fn cpu_spent_is_the_difference_of_two_readings_when_both_are_known() {
        let cpu = Cpu::between((Some(10.0), None), (Some(12.5), Some(3.0)));
        assert_eq!((cpu.server, cpu.bench), (Some(2.5), None));
        let cpu = Cpu::between((Some(1.0), Some(2.0)), (None, Some(3.0)));
        assert_eq!((cpu.server, cpu.bench), (None, Some(1.0)));
    }

    #[test]
    fn count_is_singular_for_one_only() {
        assert_eq!(count(0u64, "publisher"), "0 publishers");
        assert_eq!(count(1u64, "publisher"), "1 publisher");
        assert_eq!(count(2u64, "publisher"), "2 publishers");
    }

    #[test]
    fn human_bytes_switch_units_at_each_power_of_1024() {
        assert_eq!(human_bytes(0.0), "0.0 B");
        assert_eq!(human_bytes(1023.0), "1023.0 B");
        assert_eq!(human_bytes(1024.0), "1.0 KiB");
        assert_eq!(human_bytes(1536.0), "1.5 KiB");
        assert_eq!(human_bytes(1024.0 * 1024.0), "1.0 MiB");
        assert_eq!(human_bytes(1024.0 * 1024.0 * 1024.0), "1.0 GiB");
    }

    #[test]
    fn human_bytes_stop_at_gib() {
        assert_eq!(human_bytes(1024.0 * 1024.0 * 1024.0 * 1024.0), "1024.0 GiB");
    }
}

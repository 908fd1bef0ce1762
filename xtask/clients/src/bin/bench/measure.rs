//! What one client of a benchmark did, and the figures made of it: rates in total and per
//! client, latency percentiles from every message's own time, CPU time from the OS.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::report::Cpu;

/// One client's part: how many messages and bytes it sent or received, between when it
/// could start and when its last message was done, and each message's latency if measured.
#[derive(Debug, Clone)]
pub(crate) struct ClientRun {
    /// `P0`, `S0`, ... as natscli names them.
    pub(crate) id: String,
    pub(crate) msgs: u64,
    pub(crate) bytes: u64,
    pub(crate) start: Instant,
    pub(crate) end: Instant,
    /// Microseconds.
    pub(crate) latency: Option<Histogram<u64>>,
}

impl ClientRun {
    pub(crate) fn seconds(&self) -> f64 {
        self.end.saturating_duration_since(self.start).as_secs_f64()
    }

    pub(crate) fn msgs_per_sec(&self) -> f64 {
        per_second(self.msgs, self.seconds())
    }

    pub(crate) fn bytes_per_sec(&self) -> f64 {
        per_second(self.bytes, self.seconds())
    }
}

fn per_second(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// A latency histogram in microseconds, from 1 µs to an hour, to 3 significant figures.
pub(crate) fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds")
}

/// Records one message's latency.
pub(crate) fn record(histogram: &mut Histogram<u64>, latency: Duration) {
    let micros = u64::try_from(latency.as_micros())
        .unwrap_or(u64::MAX)
        .max(1);
    histogram.saturating_record(micros);
}

/// A group of clients doing the same thing (the publishers, or the subscribers): together,
/// from the first start to the last end, and each.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub(crate) clients: Vec<ClientRun>,
}

impl Group {
    pub(crate) fn msgs(&self) -> u64 {
        self.clients.iter().map(|c| c.msgs).sum()
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.clients.iter().map(|c| c.bytes).sum()
    }

    pub(crate) fn seconds(&self) -> f64 {
        let start = self.clients.iter().map(|c| c.start).min();
        let end = self.clients.iter().map(|c| c.end).max();
        match (start, end) {
            (Some(start), Some(end)) => end.saturating_duration_since(start).as_secs_f64(),
            _ => 0.0,
        }
    }

    pub(crate) fn msgs_per_sec(&self) -> f64 {
        per_second(self.msgs(), self.seconds())
    }

    pub(crate) fn bytes_per_sec(&self) -> f64 {
        per_second(self.bytes(), self.seconds())
    }

    /// Every client's latencies together.
    pub(crate) fn latency(&self) -> Option<Histogram<u64>> {
        let mut all: Option<Histogram<u64>> = None;
        for histogram in self.clients.iter().filter_map(|c| c.latency.as_ref()) {
            match &mut all {
                Some(all) => {
                    let _ = all.add(histogram);
                }
                None => all = Some(histogram.clone()),
            }
        }
        all
    }

    /// min, avg, max and standard deviation of the clients' message rates.
    pub(crate) fn spread(&self) -> Spread {
        let rates: Vec<f64> = self.clients.iter().map(ClientRun::msgs_per_sec).collect();
        Spread::of(&rates)
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "msgs": self.msgs(),
            "bytes": self.bytes(),
            "seconds": self.seconds(),
            "msgs_per_sec": self.msgs_per_sec(),
            "bytes_per_sec": self.bytes_per_sec(),
            "per_client_msgs_per_sec": self.spread().to_json(),
            "latency_us": self.latency().as_ref().map(percentiles),
            "clients": self.clients.iter().map(|c| json!({
                "id": c.id,
                "msgs": c.msgs,
                "bytes": c.bytes,
                "seconds": c.seconds(),
                "msgs_per_sec": c.msgs_per_sec(),
                "bytes_per_sec": c.bytes_per_sec(),
                "latency_us": c.latency.as_ref().map(percentiles),
            })).collect::<Vec<_>>(),
        })
    }
}

/// How a set of rates spreads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Spread {
    pub(crate) min: f64,
    pub(crate) avg: f64,
    pub(crate) max: f64,
    pub(crate) stddev: f64,
}

impl Spread {
    pub(crate) fn of(values: &[f64]) -> Spread {
        if values.is_empty() {
            return Spread {
                min: 0.0,
                avg: 0.0,
                max: 0.0,
                stddev: 0.0,
            };
        }
        let n = values.len() as f64;
        let avg = values.iter().sum::<f64>() / n;
        let variance = values.iter().map(|v| (v - avg).powi(2)).sum::<f64>() / n;
        Spread {
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            avg,
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            stddev: variance.sqrt(),
        }
    }

    fn to_json(self) -> Value {
        json!({"min": self.min, "avg": self.avg, "max": self.max, "stddev": self.stddev})
    }
}

/// The percentiles reported, in microseconds.
pub(crate) fn percentiles(h: &Histogram<u64>) -> Value {
    json!({
        "count": h.len(),
        "min": h.min(),
        "avg": h.mean(),
        "p50": h.value_at_quantile(0.50),
        "p90": h.value_at_quantile(0.90),
        "p99": h.value_at_quantile(0.99),
        "p99_9": h.value_at_quantile(0.999),
        "max": h.max(),
        "stddev": h.stdev(),
    })
}

/// CPU time spent by processes, as the OS accounts it.
pub(crate) struct CpuClock {
    system: System,
    pids: Vec<Pid>,
}

impl CpuClock {
    pub(crate) fn of(pids: &[u32]) -> CpuClock {
        CpuClock {
            system: System::new(),
            pids: pids.iter().map(|pid| Pid::from_u32(*pid)).collect(),
        }
    }

    /// CPU seconds the processes have used so far, all together; None when the OS does not
    /// show one of them.
    pub(crate) fn seconds(&mut self) -> Option<f64> {
        if self.pids.is_empty() {
            return None;
        }
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&self.pids),
            true,
            ProcessRefreshKind::nothing().with_cpu(),
        );
        let mut millis = 0;
        for pid in &self.pids {
            millis += self.system.process(*pid)?.accumulated_cpu_time();
        }
        Some(millis as f64 / 1000.0)
    }
}

/// The CPU time the server and the bench spend from its start to a benchmark's end.
pub(crate) struct CpuWatch {
    server: CpuClock,
    bench: CpuClock,
    before: (Option<f64>, Option<f64>),
}

impl CpuWatch {
    pub(crate) fn start(server_pids: &[u32]) -> CpuWatch {
        let mut server = CpuClock::of(server_pids);
        let mut bench = CpuClock::of(&[std::process::id()]);
        let before = (server.seconds(), bench.seconds());
        CpuWatch {
            server,
            bench,
            before,
        }
    }

    /// What each has spent since the start.
    pub(crate) fn spent(&mut self) -> Cpu {
        Cpu::between(self.before, (self.server.seconds(), self.bench.seconds()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn the_spread_of_client_rates() {
        let spread = Spread::of(&[100.0, 200.0, 300.0]);
        assert_eq!((spread.min, spread.avg, spread.max), (100.0, 200.0, 300.0));
        assert!((spread.stddev - 81.649_658).abs() < 1e-3);
        assert_eq!(Spread::of(&[]).avg, 0.0);
    }

    #[test]
    fn percentiles_come_from_every_recorded_latency() {
        let mut h = latency_histogram();
        for micros in 1..=1000 {
            record(&mut h, Duration::from_micros(micros));
        }
        let p = percentiles(&h);
        assert_eq!(p["count"], 1000);
        assert_eq!(p["p50"], 500);
        assert_eq!(p["p99"], 990);
        assert_eq!(p["max"], 1000);
    }

    #[test]
    fn a_group_spans_its_first_start_to_its_last_end() {
        let t = Instant::now();
        let client = |id: &str, msgs, from, to| ClientRun {
            id: id.into(),
            msgs,
            bytes: msgs * 10,
            start: t + Duration::from_millis(from),
            end: t + Duration::from_millis(to),
            latency: None,
        };
        let group = Group {
            clients: vec![client("P0", 100, 0, 1000), client("P1", 300, 500, 2000)],
        };
        assert_eq!(group.msgs(), 400);
        assert_eq!(group.seconds(), 2.0);
        assert_eq!(group.msgs_per_sec(), 200.0);
        assert_eq!(group.spread().max, 200.0);
    }

    /// A client that ran from `from` to `to` milliseconds after `t`, with these latencies in µs.
    pub(crate) fn client(
        t: Instant,
        id: &str,
        msgs: u64,
        bytes: u64,
        from: u64,
        to: u64,
        latencies: &[u64],
    ) -> ClientRun {
        let latency = (!latencies.is_empty()).then(|| {
            let mut h = latency_histogram();
            for micros in latencies {
                record(&mut h, Duration::from_micros(*micros));
            }
            h
        });
        ClientRun {
            id: id.into(),
            msgs,
            bytes,
            start: t + Duration::from_millis(from),
            end: t + Duration::from_millis(to),
            latency,
        }
    }

    #[test]
    fn no_time_gives_no_rate_rather_than_an_infinite_one() {
        let t = Instant::now();
        let instant = client(t, "P0", 10, 100, 0, 0, &[]);
        assert_eq!(instant.msgs_per_sec(), 0.0);
        assert_eq!(instant.bytes_per_sec(), 0.0);
        let nothing = client(t, "P0", 0, 0, 0, 0, &[]);
        assert_eq!(nothing.msgs_per_sec(), 0.0);
    }

    #[test]
    fn a_group_adds_its_clients_bytes_and_latencies() {
        let t = Instant::now();
        let group = Group {
            clients: vec![
                client(t, "P0", 100, 1000, 0, 1000, &[100]),
                client(t, "P1", 300, 3000, 500, 2000, &[300]),
                client(t, "P2", 0, 0, 0, 1000, &[]),
            ],
        };
        assert_eq!(group.bytes(), 4000);
        assert_eq!(group.bytes_per_sec(), 2000.0);
        let latency = group.latency().expect("two clients measured latency");
        assert_eq!((latency.len(), latency.min(), latency.max()), (2, 100, 300));
        let unmeasured = Group {
            clients: vec![client(t, "P0", 100, 1000, 0, 1000, &[])],
        };
        assert!(unmeasured.latency().is_none());
    }

    #[test]
    fn a_group_s_json_has_its_totals_spread_latency_and_each_client() {
        let t = Instant::now();
        let group = Group {
            clients: vec![
                client(t, "P0", 100, 1000, 0, 1000, &[100]),
                client(t, "P1", 300, 3000, 500, 2000, &[300]),
            ],
        };
        let one_sample = |micros: u64| {
            json!({"count": 1, "min": micros, "avg": micros as f64, "p50": micros, "p90": micros,
                   "p99": micros, "p99_9": micros, "max": micros, "stddev": 0.0})
        };
        assert_eq!(
            group.to_json(),
            json!({
                "msgs": 400,
                "bytes": 4000,
                "seconds": 2.0,
                "msgs_per_sec": 200.0,
                "bytes_per_sec": 2000.0,
                "per_client_msgs_per_sec": {"min": 100.0, "avg": 150.0, "max": 200.0, "stddev": 50.0},
                "latency_us": {"count": 2, "min": 100, "avg": 200.0, "p50": 100, "p90": 300,
                               "p99": 300, "p99_9": 300, "max": 300, "stddev": 100.0},
                "clients": [
                    {"id": "P0", "msgs": 100, "bytes": 1000, "seconds": 1.0, "msgs_per_sec": 100.0,
                     "bytes_per_sec": 1000.0, "latency_us": one_sample(100)},
                    {"id": "P1", "msgs": 300, "bytes": 3000, "seconds": 1.5, "msgs_per_sec": 200.0,
                     "bytes_per_sec": 2000.0, "latency_us": one_sample(300)},
                ],
            })
        );
    }

    #[test]
    fn a_cpu_clock_of_no_process_or_an_unknown_one_reads_nothing() {
        assert_eq!(CpuClock::of(&[]).seconds(), None);
        // Above any OS's highest pid.
        let unknown = i32::MAX as u32;
        assert_eq!(CpuClock::of(&[std::process::id(), unknown]).seconds(), None);
    }

    #[test]
    fn a_cpu_clock_reads_this_process_s_cpu_time_in_seconds() {
        // The OS counts CPU time in ticks (10 ms or so): work until the clock moves on.
        let mut clock = CpuClock::of(&[std::process::id()]);
        let started = Instant::now();
        let before = clock.seconds().expect("the OS shows this process");
        let mut after = before;
        while after <= before && started.elapsed() < Duration::from_secs(5) {
            let mut x = 0u64;
            for i in 0..1_000_000 {
                x = std::hint::black_box(x.wrapping_add(i));
            }
            after = clock.seconds().expect("the OS shows this process");
        }
        let wall = started.elapsed().as_secs_f64();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let spent = after - before;
        // Seconds, not milliseconds: no more than every core could have spent meanwhile.
        assert!(
            before >= 0.0 && spent > 0.0 && spent <= wall * cores + 0.1,
            "{before} s then {after} s in {wall} s of wall time on {cores} cores"
        );
    }
}

//! How monitor shows its samples: a screen redrawn in place, a line per sample, or JSON.

use std::io::Write;

use serde_json::{Value, json};

use super::sample::{NodeRow, Rates, Sample};
use crate::util::units::{self, bytes};

/// Where samples go: a terminal, a pipe, or `--json`.
pub(super) enum Output {
    Json,
    Screen,
    Lines,
}

/// A rate as messages and bytes per second, `-` when there is none yet.
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
pub(super) fn line(sample: &Sample, rates: Option<Rates>) -> String {
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

/// Shows one round of every node's samples.
pub(super) fn show_nodes(output: &Output, rows: &[NodeRow]) {
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

/// Shows one server's sample.
pub(super) fn show(output: &Output, sample: &Sample, rates: Option<Rates>, url: &str) {
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
pub(super) fn show_waiting(output: &Output, why: &str) {
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

/// The server stopped answering: why, and that monitor tries again.
pub(super) fn show_down(output: &Output, error: &anyhow::Error) {
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

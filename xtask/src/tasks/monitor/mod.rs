//! `cargo xtask monitor`: live statistics from the server's monitoring endpoint.

mod connections;
mod sample;
mod view;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::cluster;
use crate::layout::Layout;
use crate::lifecycle::NOT_RUNNING;
use crate::server::{self, Endpoints};
use sample::{Sample, sample, sample_nodes};
use view::{Output, show, show_down, show_nodes, show_waiting};

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
        // Over HTTPS, this checkout's CA is what the samples trust (for `--url` too).
        if let Ok(layout) = layout()
            && let Some(trust) = crate::server::tls::trust(&layout)?
        {
            xtask_probe::trust_by_default(trust);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_bounded() {
        assert_eq!(parse_interval("0.5").unwrap(), 0.5);
        assert!(parse_interval("0").is_err());
        assert!(parse_interval("soon").is_err());
    }
}

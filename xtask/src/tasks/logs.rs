//! `cargo xtask logs`: the end of the server's log, or of every node's, and following it.

use std::path::PathBuf;
use std::sync::mpsc;

use anyhow::{Context, Result, bail};

use crate::cluster;
use crate::layout::Layout;
use crate::lifecycle::Running;
use crate::server::follow::{LogFollower, Sink};
use crate::util::paths::show;

/// Show the end of the server's log, and follow it with -f.
///
/// For the cluster, every node's lines merged by their time, each after the node's name, or
/// one node's with `--node`. `-f` follows the log as it grows, across rotation, until Ctrl-C.
/// Without a cluster running, the single server's log is shown if it has one.
#[derive(Debug, clap::Args)]
pub(crate) struct Logs {
    /// How many of the last lines to show.
    #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 50)]
    lines: usize,

    /// Keep showing lines as they are logged, until Ctrl-C.
    #[arg(short, long)]
    follow: bool,

    /// The log of this node of the cluster only (n1, n2, ...).
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
}

/// A log shown: its file and what goes before each of its lines.
struct Source {
    path: PathBuf,
    prefix: String,
}

impl Logs {
    pub(crate) fn run(&self, layout: &Layout) -> Result<()> {
        let sources = self.sources(layout)?;
        let mut texts = Vec::new();
        for source in &sources {
            // A node that has not logged yet shows nothing, and is followed from its start.
            texts.push(std::fs::read(&source.path).unwrap_or_default());
        }
        let last = last_lines(&sources, &texts, self.lines);
        print!("{last}");
        if !self.follow {
            return Ok(());
        }
        let (stop, stopped) = mpsc::channel();
        ctrlc::set_handler(move || {
            let _ = stop.send(());
        })
        .context("cannot handle Ctrl-C")?;
        let followers: Vec<LogFollower> = sources
            .iter()
            .zip(&texts)
            .map(|(source, text)| {
                LogFollower::to(
                    Sink::Stdout,
                    source.path.clone(),
                    text.len() as u64,
                    &source.prefix,
                )
            })
            .collect();
        let _ = stopped.recv();
        followers.into_iter().for_each(LogFollower::finish);
        Ok(())
    }

    /// The logs to show: the named node's; the cluster's nodes' when it runs, or when it is
    /// all there is; else the single server's.
    fn sources(&self, layout: &Layout) -> Result<Vec<Source>> {
        let names = cluster::recorded_names(layout);
        let node_source = |name: &String| Source {
            path: layout.node(name).log_file(),
            prefix: format!("{name} | "),
        };
        if let Some(node) = &self.node {
            cluster::check_node(layout, node)?;
            return Ok(vec![Source {
                prefix: String::new(),
                ..node_source(node)
            }]);
        }
        let single = Source {
            path: layout.log_file(),
            prefix: String::new(),
        };
        let cluster_runs = matches!(Running::now(layout)?, Running::Cluster { .. });
        if !names.is_empty() && (cluster_runs || !single.path.is_file()) {
            return Ok(names.iter().map(node_source).collect());
        }
        if !single.path.is_file() && !self.follow {
            bail!(
                "there is no log yet at `{}`: the server writes it once it runs (`cargo xtask \
                 run`)",
                show(&single.path)
            );
        }
        Ok(vec![single])
    }
}

/// The last `n` lines of the logs, each after its prefix; the lines of several logs in the
/// order of their time stamps (a line without one keeps its place after the one before it).
fn last_lines(sources: &[Source], texts: &[Vec<u8>], n: usize) -> String {
    let mut lines: Vec<(String, usize, String)> = Vec::new();
    for (index, (source, text)) in sources.iter().zip(texts).enumerate() {
        let text = String::from_utf8_lossy(text);
        let mut time = String::new();
        for line in text
            .lines()
            .rev()
            .take(n)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            if let Some(stamp) = time_stamp(line) {
                time = stamp.to_string();
            }
            lines.push((time.clone(), index, format!("{}{line}\n", source.prefix)));
        }
    }
    // Stable: lines of one log with equal times stay in their order.
    lines.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let skip = lines.len().saturating_sub(n);
    lines
        .into_iter()
        .skip(skip)
        .map(|(_, _, line)| line)
        .collect()
}

/// The time a nats-server log line was written, as it sorts: `[pid] 2026/11/28 06:32:01.412798
/// [INF] ...` gives `2026/11/28 06:32:01.412798`.
fn time_stamp(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('[')?.split_once("] ")?.1;
    let stamp = rest.get(..26)?;
    let digits = |range: std::ops::Range<usize>| {
        stamp
            .get(range)
            .is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()))
    };
    (digits(0..4) && digits(5..7) && digits(11..13) && digits(20..26)).then_some(stamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_logs_merge_by_time_and_keep_the_last_lines() {
        let sources = ["n1 | ", "n2 | "].map(|prefix| Source {
            path: PathBuf::new(),
            prefix: prefix.to_string(),
        });
        let texts = [
            b"[1] 2026/11/28 06:00:00.000001 [INF] a\n[1] 2026/11/28 06:00:00.000003 [INF] c\n  more of c\n".to_vec(),
            b"[2] 2026/11/28 06:00:00.000002 [INF] b\n[2] 2026/11/28 06:00:00.000004 [INF] d\n".to_vec(),
        ];
        assert_eq!(
            last_lines(&sources, &texts, 4),
            "n2 | [2] 2026/11/28 06:00:00.000002 [INF] b\n\
             n1 | [1] 2026/11/28 06:00:00.000003 [INF] c\n\
             n1 |   more of c\n\
             n2 | [2] 2026/11/28 06:00:00.000004 [INF] d\n"
        );
        assert_eq!(time_stamp("no stamp"), None);
    }
}

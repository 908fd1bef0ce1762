//! A progress bar on the terminal for runs longer than a second: done, rate, time left.
//! Nothing when stderr is not a terminal.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How far a run has to go: a number of messages, or a time.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Goal {
    Msgs(u64),
    Time(Duration),
}

impl Goal {
    /// Client `index` of `clients`'s part: its share of the messages (the first ones take
    /// one more each when they do not divide evenly), or the whole time.
    pub(crate) fn share(self, index: u64, clients: u64) -> Goal {
        match self {
            Goal::Msgs(total) => Goal::Msgs(total / clients + u64::from(index < total % clients)),
            time => time,
        }
    }

    /// Whether a client that has sent `sent` messages since `start` goes on.
    pub(crate) fn goes_on(self, sent: u64, start: Instant) -> bool {
        match self {
            Goal::Msgs(total) => sent < total,
            Goal::Time(time) => start.elapsed() < time,
        }
    }
}

/// Counts what is done; shows it while it lives.
pub(crate) struct Progress {
    done: Arc<AtomicU64>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    pub(crate) fn start(label: &str, goal: Goal) -> Progress {
        let done = Arc::new(AtomicU64::new(0));
        let task = std::io::stderr().is_terminal().then(|| {
            let (done, label) = (done.clone(), label.to_string());
            tokio::spawn(async move {
                let start = Instant::now();
                tokio::time::sleep(Duration::from_secs(1)).await;
                loop {
                    draw(&label, goal, done.load(Ordering::Relaxed), start.elapsed());
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
        });
        Progress { done, task }
    }

    /// The counter the clients add to.
    pub(crate) fn counter(&self) -> Arc<AtomicU64> {
        self.done.clone()
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            // Clear the bar's line.
            eprint!("\r\x1b[2K");
        }
    }
}

fn draw(label: &str, goal: Goal, done: u64, elapsed: Duration) {
    let seconds = elapsed.as_secs_f64();
    let rate = done as f64 / seconds.max(1e-9);
    let fraction = match goal {
        Goal::Msgs(total) => done as f64 / total.max(1) as f64,
        Goal::Time(time) => seconds / time.as_secs_f64().max(1e-9),
    }
    .min(1.0);
    let left = if fraction > 0.0 {
        seconds / fraction - seconds
    } else {
        0.0
    };
    const WIDTH: usize = 30;
    let filled = (fraction * WIDTH as f64) as usize;
    let bar = format!("{}{}", "=".repeat(filled), " ".repeat(WIDTH - filled));
    let mut stderr = std::io::stderr().lock();
    let _ = write!(
        stderr,
        "\r\x1b[2K{label} [{bar}] {:>3.0}% {done} msgs  {rate:.0} msgs/s  ETA {left:.0} s",
        fraction * 100.0
    );
    let _ = stderr.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_shared_to_the_last_one_and_time_is_not() {
        let shares: Vec<_> = (0..3)
            .map(|i| match Goal::Msgs(10).share(i, 3) {
                Goal::Msgs(n) => n,
                Goal::Time(_) => panic!("a time"),
            })
            .collect();
        assert_eq!(shares, [4, 3, 3]);
        let start = Instant::now();
        assert!(Goal::Msgs(2).goes_on(1, start) && !Goal::Msgs(2).goes_on(2, start));
        let time = Goal::Time(Duration::from_secs(60)).share(1, 3);
        assert!(matches!(time, Goal::Time(t) if t == Duration::from_secs(60)));
        assert!(time.goes_on(u64::MAX, start));
    }
}

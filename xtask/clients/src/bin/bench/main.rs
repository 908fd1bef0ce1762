//! The load of `cargo xtask bench`: how many messages a second this server (or cluster)
//! carries, at what latency, measured as `nats bench` measures it.
//!
//! The xtask finds (or starts) the server and passes its addresses and processes as
//! arguments and its token in the environment. Timing starts when every client is connected
//! (and subscribed) and ends when the last message is received or acknowledged; every message
//! sent and not received is reported, never averaged away.

mod js;
mod measure;
mod progress;
mod pubsub;
mod report;
mod request;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, FromArgMatches, Parser};
use xtask_clients::{Threads, unique_id};

use measure::CpuWatch;
use progress::Goal;
use report::{Outcome, Report};

/// Measures what a NATS server carries. Run through `cargo xtask bench`.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask bench", bin_name = "cargo xtask bench")]
struct Args {
    /// Client URL of the server, or of every node of a cluster (given by the xtask).
    #[arg(long = "client", hide = true)]
    clients: Vec<String>,
    /// Monitoring URL of the server, or of every node (given by the xtask).
    #[arg(long = "monitoring", hide = true)]
    monitoring: Vec<String>,
    /// The server's process, or every node's, whose CPU time is reported (given by the xtask).
    #[arg(long = "server-pid", hide = true)]
    server_pids: Vec<u32>,
    /// Print one JSON document.
    #[arg(long, global = true, conflicts_with = "csv")]
    json: bool,
    /// Print one CSV row per client, as `nats bench --csv` writes them: on stdout, or into FILE
    /// with `--csv=FILE`.
    #[arg(long, global = true, value_name = "FILE", num_args = 0..=1, require_equals = true)]
    csv: Option<Option<std::path::PathBuf>>,
    /// Check the arguments and exit (the xtask does, before it starts a server).
    #[arg(long, hide = true)]
    check_only: bool,
    #[command(subcommand)]
    what: Option<What>,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// Core publish/subscribe: messages and bytes per second of the publishers and of the
    /// subscribers, every message not received reported.
    Pubsub(pubsub::Options),
    /// Request/reply round trips against a responder: rate and latency percentiles.
    Request(request::Options),
    /// JetStream publishing with acknowledgements, then a durable pull consumer reading
    /// everything back; the stream is deleted afterwards.
    Js(js::Options),
}

/// How long a run goes: `--msgs` or `--duration`, not both.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Length {
    /// Messages to send in all [default: pubsub 1,000,000; request 20,000; js 100,000]
    #[arg(long, conflicts_with = "duration")]
    msgs: Option<u64>,
    /// Seconds to send for, instead of a number of messages.
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// Bytes of each message's payload.
    #[arg(long, value_name = "BYTES", default_value_t = 128,
          value_parser = clap::value_parser!(u32).range(1..))]
    size: u32,
}

impl Length {
    pub(crate) fn size(&self) -> usize {
        self.size as usize
    }

    fn goal(&self, default_msgs: u64) -> Result<Goal> {
        match (self.msgs, self.duration) {
            (Some(0), _) => bail!("--msgs must be at least 1"),
            (_, Some(s)) if !(s > 0.0 && s <= 3600.0) => {
                bail!("--duration must be more than 0 and at most 3600 seconds")
            }
            (_, Some(s)) => Ok(Goal::Time(Duration::from_secs_f64(s))),
            (Some(n), None) => Ok(Goal::Msgs(n)),
            (None, None) => Ok(Goal::Msgs(default_msgs)),
        }
    }
}

/// What a core benchmark sends, and how much of it.
pub(crate) struct Load {
    pub(crate) goal: Goal,
    pub(crate) subject: async_nats::Subject,
    /// One payload, shared by every message without a copy.
    pub(crate) payload: Bytes,
}

/// Messages the client dropped because a subscription's buffer was full (at least: each drop
/// is one slow-consumer event, and events can be lost too).
pub(crate) static CLIENT_DROPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The server measured.
pub(crate) struct Target {
    pub(crate) clients: Vec<String>,
    pub(crate) monitoring: Vec<String>,
    /// The token, or a user's credentials, from the environment only.
    credentials: xtask_clients::Credentials,
    server_pids: Vec<u32>,
    /// The CA (and client certificate) of a TLS server.
    tls: Option<xtask_clients::Tls>,
}

impl Target {
    /// A connection named `name` to the server (any node of a cluster).
    pub(crate) async fn connect(&self, name: &str) -> Result<async_nats::Client> {
        let urls: Vec<async_nats::ServerAddr> = self
            .clients
            .iter()
            .map(|url| url.parse())
            .collect::<Result<_, _>>()?;
        let options = self.credentials.options()?;
        xtask_clients::with_tls(options, self.tls.as_ref())
            .name(name)
            .connection_timeout(Duration::from_secs(5))
            // A subscriber that falls behind buffers rather than drops, up to a point; past
            // it, the client drops messages and says so.
            .subscription_capacity(1 << 20)
            // A server gone for good fails the run instead of stalling it.
            .max_reconnects(Some(10))
            .event_callback(|event| async move {
                if let async_nats::Event::SlowConsumer(_) = event {
                    CLIENT_DROPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
            .connect(urls)
            .await
            .with_context(|| {
                format!(
                    "cannot connect to {} with {}",
                    self.clients.join(","),
                    self.credentials.what()
                )
            })
    }

    /// The load of core benchmark `name` (`pubsub`, `request`): its goal, a payload of the
    /// size asked for, and a subject of this run's own, once `client` has seen that the server
    /// takes them (see [`Target::check_room`]).
    pub(crate) async fn load(
        &self,
        client: &async_nats::Client,
        name: &str,
        length: &Length,
        default_msgs: u64,
    ) -> Result<Load> {
        let goal = length.goal(default_msgs)?;
        let subject = async_nats::Subject::from(format!("bench.{}.{name}", unique_id()));
        self.check_room(client, &subject, length.size()).await?;
        let payload = Bytes::from(vec![b'x'; length.size()]);
        Ok(Load {
            goal,
            subject,
            payload,
        })
    }

    /// `count` connections named for their part in the run: `{role}0`, `{role}1`, ...
    pub(crate) async fn connect_each(
        &self,
        role: &str,
        count: u16,
    ) -> Result<Vec<async_nats::Client>> {
        let mut clients = Vec::new();
        for i in 0..count {
            clients.push(
                self.connect(&format!("cargo xtask bench {role}{i}"))
                    .await?,
            );
        }
        Ok(clients)
    }

    /// Fails unless a `size`-byte payload fits under the server's limit, and no stream would
    /// store what is published on `subject`: the bench's load never lands in a user's stream.
    pub(crate) async fn check_room(
        &self,
        client: &async_nats::Client,
        subject: &str,
        size: usize,
    ) -> Result<()> {
        let max = client.server_info().max_payload;
        if size > max {
            bail!("--size {size} is more than the server's max_payload of {max} bytes");
        }
        let js = async_nats::jetstream::new(client.clone());
        if let Ok(stream) = js.stream_by_subject(subject).await {
            bail!(
                "stream {stream} would store the bench's messages on `{subject}` (and could \
                 discard its own for them): no load is sent"
            );
        }
        Ok(())
    }

    /// Slow consumers the server (every node) has counted so far.
    pub(crate) async fn slow_consumers(&self) -> u64 {
        let mut total = 0;
        for url in &self.monitoring {
            if let Ok(varz) = xtask_clients::get_json(format!("{url}/varz")).await {
                total += varz["slow_consumers"].as_u64().unwrap_or(0);
            }
        }
        total
    }

    /// Starts counting the CPU time of the server and of this process.
    pub(crate) fn cpu_watch(&self) -> CpuWatch {
        CpuWatch::start(&self.server_pids)
    }
}

/// The bench stopped because it was asked to (`Ctrl-C` or `SIGTERM`): it exits as a process
/// ended by that signal would, 130 or 143.
#[derive(Debug)]
pub(crate) struct Interrupted(pub(crate) &'static str);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "interrupted by {}", self.0)
    }
}

impl std::error::Error for Interrupted {}

impl Interrupted {
    fn exit_code(&self) -> ExitCode {
        ExitCode::from(if self.0 == "SIGTERM" { 143 } else { 130 })
    }
}

/// The stops asked of the bench: Ctrl-C, and SIGTERM on Unix. Listened for from
/// [`Stops::listen`] on, so that one asked before [`Stops::next`] is awaited is not lost, and
/// does not end the bench before it has cleaned up.
pub(crate) struct Stops {
    interrupt: Interrupt,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

#[cfg(unix)]
type Interrupt = tokio::signal::unix::Signal;
#[cfg(windows)]
type Interrupt = tokio::signal::windows::CtrlC;

impl Stops {
    pub(crate) fn listen() -> Result<Stops> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Stops {
                interrupt: signal(SignalKind::interrupt()).context("cannot listen for Ctrl-C")?,
                terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            })
        }
        #[cfg(windows)]
        Ok(Stops {
            interrupt: tokio::signal::windows::ctrl_c().context("cannot listen for Ctrl-C")?,
        })
    }

    /// Resolves at the first stop asked since [`Stops::listen`]; names which.
    pub(crate) async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => "Ctrl-C",
                _ = self.terminate.recv() => "SIGTERM",
            }
        }
        #[cfg(windows)]
        {
            self.interrupt.recv().await;
            "Ctrl-C"
        }
    }
}

/// The command line, whose `--help` ends with every benchmark's options: one `--help` shows
/// all a run can be given.
fn command() -> clap::Command {
    let command = Args::command();
    let mut benchmarks = String::from(
        "Each benchmark's options, given after its name (`cargo xtask bench NAME --help` shows \
         one's):\n",
    );
    for benchmark in command.get_subcommands() {
        let mut help = benchmark
            .clone()
            .bin_name(format!("cargo xtask bench {}", benchmark.get_name()))
            .disable_help_flag(true);
        benchmarks.push_str(&format!("\n{}", help.render_help()));
    }
    command.after_long_help(benchmarks)
}

/// Arguments clap refused: an option of a benchmark given without the benchmark's name is
/// told where it goes; anything else as clap says it.
fn refused(error: clap::Error) -> ExitCode {
    let command = Args::command();
    let benchmarks: Vec<&str> = command.get_subcommands().map(|b| b.get_name()).collect();
    let given: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--check-only")
        .collect();
    let named = given.iter().any(|a| benchmarks.contains(&a.as_str()));
    if error.kind() == ErrorKind::UnknownArgument
        && !named
        && let Some(ContextValue::String(arg)) = error.get(ContextKind::InvalidArg)
    {
        let option = arg.split('=').next().unwrap_or(arg).trim_start_matches('-');
        let owner = command.get_subcommands().find(|b| {
            b.get_arguments()
                .any(|a| a.get_long() == Some(option) && !a.is_hide_set())
        });
        if let Some(owner) = owner {
            let name = owner.get_name();
            eprintln!(
                "error: `{arg}` is an option of a benchmark, given after its name: `cargo xtask \
                 bench {name} {}`; `cargo xtask bench {name} --help` lists {name}'s options, \
                 `cargo xtask bench --help` every benchmark's",
                given.join(" ")
            );
            return ExitCode::from(2);
        }
    }
    error.exit()
}

fn main() -> ExitCode {
    let parsed = command()
        .try_get_matches()
        .and_then(|matches| Args::from_arg_matches(&matches));
    let args = match parsed {
        Ok(args) => args,
        Err(error) => return refused(error),
    };
    if args.check_only {
        return match args.check() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {}", xtask_probe::error_text(&e));
                ExitCode::from(2)
            }
        };
    }
    let Some(runtime) = xtask_clients::runtime(Threads::Workers(2)) else {
        return ExitCode::FAILURE;
    };
    // Ctrl-C ends pubsub and request at once (they leave nothing behind); js catches it to
    // delete its stream first.
    let report = runtime.block_on(run(&args));
    match report.and_then(|report| output(&args, &report).map(|()| report)) {
        // As `nats bench`: a core shortfall is a figure of the run, reported next to the
        // rates (and as `complete: false` in JSON), not a failure of it; JetStream publishes
        // that failed are.
        Ok(report) if report.failed() => ExitCode::FAILURE,
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", xtask_probe::error_text(&e));
            e.downcast_ref::<Interrupted>()
                .map_or(ExitCode::FAILURE, Interrupted::exit_code)
        }
    }
}

/// Prints the report as asked.
fn output(args: &Args, report: &Report) -> Result<()> {
    match &args.csv {
        Some(Some(file)) => std::fs::write(file, report.to_csv())
            .with_context(|| format!("cannot write `{}`", file.display()))?,
        Some(None) => print!("{}", report.to_csv()),
        None if args.json => println!("{}", report.to_json()),
        None => print!("{}", report.to_text()),
    }
    Ok(())
}

impl Args {
    /// What can be told wrong without a server.
    fn check(&self) -> Result<()> {
        match &self.what {
            Some(What::Pubsub(options)) => options.length.goal(1).map(drop),
            Some(What::Request(options)) => options.length.goal(1).map(drop),
            Some(What::Js(options)) => options.length.goal(1).map(drop),
            None => Ok(()),
        }
    }
}

async fn run(args: &Args) -> Result<Report> {
    if args.clients.is_empty() || args.monitoring.is_empty() {
        bail!("no server to measure: run the bench through `cargo xtask bench`");
    }
    let target = Target {
        clients: args.clients.clone(),
        monitoring: args.monitoring.clone(),
        credentials: xtask_clients::Credentials::from_env()?,
        server_pids: args.server_pids.clone(),
        tls: xtask_clients::Tls::from_env()?,
    };
    // Fails fast, with the server's word, on a wrong token or address.
    target.connect("cargo xtask bench").await?.flush().await?;
    let mut report = Report::about(&target).await?;
    let outcomes: Vec<Outcome> = match &args.what {
        Some(What::Pubsub(options)) => vec![pubsub::run(&target, options).await?],
        Some(What::Request(options)) => vec![request::run(&target, options).await?],
        Some(What::Js(options)) => vec![js::run(&target, options).await?],
        None => suite(&target, report.nodes).await?,
    };
    report.outcomes = outcomes;
    Ok(report)
}

/// A few seconds in all: each benchmark at 128 B, JetStream replicated to every node of a
/// cluster.
async fn suite(target: &Target, nodes: usize) -> Result<Vec<Outcome>> {
    let length = |msgs| Length {
        msgs: Some(msgs),
        duration: None,
        size: 128,
    };
    Ok(vec![
        pubsub::run(target, &pubsub::Options::suite(length(500_000))).await?,
        request::run(target, &request::Options::suite(length(10_000))).await?,
        js::run(target, &js::Options::suite(length(50_000), nodes)).await?,
    ])
}

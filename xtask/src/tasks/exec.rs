//! `cargo xtask exec`: runs a command of the user's against this checkout's server, or against
//! a temporary server or cluster that lives as long as the command.

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

use crate::args::SourceArgs;
use crate::clients::target::Target;
use crate::layout::Layout;
use crate::lifecycle::{self, Running};
use crate::server::secrets;
use crate::server::tls::ClientFiles;
use crate::util::paths;
use crate::util::paths::show;
use crate::util::process;
use crate::util::signals;

/// What the command finds the server's URLs in (comma-separated for a cluster).
const URL_VAR: &str = "NATS_URL";

/// Run a command with NATS_URL and NATS_TOKEN in its environment; exit with its exit code.
///
/// For a TLS server the command also gets NATS_CA, the CA file to trust, and under mutual TLS
/// NATS_CERT and NATS_KEY, the client certificate and its key (paths).
///
/// Without --temporary the command gets this checkout's running server, or its cluster
/// (NATS_URL then lists every node's URL, separated by commas); with nothing running it fails,
/// saying to start one (`cargo xtask run --detach`). With --temporary it gets a server of its
/// own in a temporary directory, on ports the server picks, with a token of its own, stopped
/// and deleted once the command ends, fails or is stopped (Ctrl-C, SIGTERM).
///
/// The token is in the command's environment only: never on a command line or in the output.
/// The command runs in the directory the xtask was started in. The exit code is the command's;
/// on Unix 128+N when signal N ended it. Ctrl-C reaches the command from the terminal; a
/// SIGTERM or SIGHUP to the xtask is passed on to it as SIGTERM. `--version` and `--mirror`
/// matter only when nothing is installed yet.
#[derive(Debug, clap::Args)]
#[command(
    override_usage = "cargo xtask exec [--temporary [--cluster]] [OPTIONS] -- CMD [ARGS]...",
    after_help = "Examples:
  cargo xtask exec --temporary -- pytest                an application's tests in CI, with a server of their own
  cargo xtask exec --temporary --cluster -- cargo test  the same with a cluster of 3 nodes
  cargo xtask exec -- ./load-test.sh                    with this checkout's running server"
)]
pub(crate) struct Exec {
    /// Give the command a server of its own for its lifetime, instead of the running one.
    #[arg(long)]
    temporary: bool,

    /// With --temporary: a cluster of 3 nodes instead of a single server.
    #[arg(long, requires = "temporary")]
    cluster: bool,

    #[command(flatten)]
    source: SourceArgs,

    /// The command and its arguments, after `--`.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    command: Vec<OsString>,
}

impl Exec {
    pub(crate) fn run(&self, layout: &Layout) -> Result<ExitCode> {
        // Before a temporary server starts: a stop asked from now on leaves nothing behind.
        signals::catch()?;
        let (program, args) = self
            .command
            .split_first()
            .context("no command to run: give it after `--`")?;
        let shown = program.to_string_lossy().into_owned();
        let (target, urls, token, creds) = if self.temporary {
            let target = Target::temporary(layout, self.cluster, &self.source)?;
            let urls = target.client_urls()?.join(",");
            let (token, creds) = (target.token.clone(), target.creds.clone());
            (Some(target), urls, token, creds)
        } else {
            let urls = running_urls(layout)?.join(",");
            // A cluster serves the token only.
            let single = matches!(Running::now(layout)?, Running::Single { .. });
            let creds = crate::server::auth::default_creds(layout).filter(|_| single);
            (None, urls, secrets::load(&layout.env_file())?, creds)
        };
        let what = if urls.contains(',') {
            "cluster"
        } else {
            "server"
        };
        let place = match target.as_ref().and_then(Target::temporary_dir) {
            Some(dir) => format!("the temporary {what} in `{}`", dir.display()),
            None => format!("the {what} of `{}`", show(&layout.dir)),
        };
        if let Some(signal) = signals::asked() {
            eprintln!("stopped (signal {signal}) before `{shown}` started");
            return Ok(ExitCode::from(u8::try_from(128 + signal).unwrap_or(1)));
        }
        eprintln!("running `{shown}` against {place}: {URL_VAR}={urls}");

        // The variables `cargo run` set for the xtask are not the command's: a nested cargo
        // would pass them on to every crate it builds.
        let mut command = process::without_cargo_run_vars(Command::new(resolve(program)));
        command
            .args(args)
            .current_dir(paths::invocation_dir())
            .env(URL_VAR, &urls)
            .envs(ClientFiles::of(layout)?.iter().flat_map(ClientFiles::env));
        crate::clients::target::hand_on(&mut command, creds.as_deref(), &token);
        let mut child = command.spawn().map_err(|e| not_started(e, program))?;
        signals::pass_on_to(child.id());
        let status = child.wait();
        signals::pass_on_to_none();
        let status = status.with_context(|| format!("cannot wait for `{shown}`"))?;
        if let Some(target) = target {
            drop(target);
            eprintln!("stopped and removed {place}");
        }
        Ok(process::exit_code(status))
    }
}

/// The client URLs of this checkout's running server or cluster; an error saying what to do
/// when nothing runs.
fn running_urls(layout: &Layout) -> Result<Vec<String>> {
    if Running::now(layout)? == Running::Nothing {
        bail!(
            "no server of `{}` is running for the command: start it with `cargo xtask run \
             --detach` (or `cargo xtask run --cluster --detach`), or give the command a server \
             of its own with `cargo xtask exec --temporary -- CMD ...`",
            show(&layout.dir)
        );
    }
    lifecycle::client_urls(layout)
}

/// A program named by a path is found from where the user is, not from the checkout the xtask
/// works in; a bare name is looked up on PATH.
fn resolve(program: &OsString) -> OsString {
    if is_path(program) {
        paths::from_user(Path::new(program)).into_os_string()
    } else {
        program.clone()
    }
}

fn is_path(program: &OsString) -> bool {
    Path::new(program).components().count() > 1
}

fn not_started(error: std::io::Error, program: &OsString) -> anyhow::Error {
    let why = match error.kind() {
        std::io::ErrorKind::NotFound if is_path(program) => "there is no program at that path",
        std::io::ErrorKind::NotFound => "there is no such program on PATH",
        std::io::ErrorKind::PermissionDenied => "it is not an executable you may run",
        _ => "it could not be started",
    };
    anyhow::Error::new(error).context(format!("cannot run `{}`: {why}", program.to_string_lossy()))
}

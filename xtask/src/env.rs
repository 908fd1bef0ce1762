//! `cargo xtask env`: where this checkout's server is, for scripts and an application's tests.

use anyhow::Result;
use serde_json::json;

use crate::layout::Layout;
use crate::running;
use crate::token;

/// Print `NATS_URL=...` (and `NATS_TOKEN=...` with --show-token), one per line.
///
/// The lines are `eval`-able in a shell (`eval "$(cargo xtask env --show-token)"`) and
/// readable by `.env` loaders. For a running cluster NATS_URL lists every node, separated by
/// commas, as NATS clients accept it. Without a running server, the address of its config.
#[derive(Debug, clap::Args)]
pub(crate) struct Env {
    /// Print the token too (it is never printed otherwise).
    #[arg(long)]
    show_token: bool,

    /// Print one JSON object (`NATS_URL`, `NATS_TOKEN` with --show-token) instead.
    #[arg(long)]
    json: bool,
}

impl Env {
    pub(crate) fn run(&self, layout: &Layout) -> Result<()> {
        running::require_installed(layout, "env")?;
        let url = running::client_urls(layout)?.join(",");
        let token = if self.show_token {
            Some(token::load(&layout.env_file())?)
        } else {
            None
        };
        if self.json {
            let mut vars = json!({"NATS_URL": url});
            if let Some(token) = token {
                vars["NATS_TOKEN"] = json!(token);
            }
            println!("{vars}");
        } else {
            // Neither value holds anything a shell would expand or split.
            println!("NATS_URL={url}");
            if let Some(token) = token {
                println!("{}={token}", token::TOKEN_VAR);
            }
        }
        Ok(())
    }
}

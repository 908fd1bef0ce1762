//! `cargo xtask token rotate`: a new token, and the server restarted with it.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use crate::install;
use crate::layout::Layout;
use crate::lifecycle::{Running, Say};
use crate::natscli::{self, Owner};
use crate::server;
use crate::server::secrets;
use crate::util::paths::show;

/// Manage the token clients authenticate with.
#[derive(Debug, clap::Args)]
pub(crate) struct Token {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    Rotate(Rotate),
}

/// Replace the token with a new one and restart what runs with it.
///
/// The new token (256 bits from the OS's random source) replaces the old one in `.env.nats`
/// atomically, owner-only; the route password stays. A running server keeps the token it
/// started with, so it is restarted, every node of a cluster. The natscli contexts this
/// checkout wrote (`cargo xtask context`) get the new token. Clients need it from now on.
#[derive(Debug, clap::Args)]
struct Rotate {
    /// Print the new token on stdout, once.
    #[arg(long)]
    show_token: bool,

    /// Seconds to wait for a clean shutdown (then the server is killed), and again for the
    /// server to become ready.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    timeout: u64,
}

impl Token {
    pub(crate) fn run(&self, layout: &Layout, root: Option<&Path>) -> Result<()> {
        let Action::Rotate(rotate) = &self.action;
        rotate.run(layout, root)
    }
}

impl Rotate {
    fn run(&self, layout: &Layout, root: Option<&Path>) -> Result<()> {
        // A lost `.env.nats` is what a rotation mends: the running server gets the new token.
        let mends_lost_token =
            !layout.env_file().exists() && layout.binary().is_file() && layout.config().is_file();
        if !mends_lost_token {
            install::require_installed(layout, "token rotate")?;
        }
        if crate::server::config::has_accounts(layout) {
            anyhow::bail!(
                "`{}` has accounts and users (`--auth jwt`): clients show their own \
                 credentials (`infrastructure/nats/auth/users/`), and the token opens nothing, \
                 so there is no token to rotate; `cargo xtask setup --auth token` goes back to \
                 the token",
                crate::util::paths::show(&layout.config())
            );
        }
        // No `run` may start the server with the old token meanwhile.
        let _lock = server::run_lock(layout)?;
        let new = secrets::generate()?;
        let env_file = layout.env_file();
        let running = Running::now(layout)?;
        running.restart(
            layout,
            Duration::from_secs(self.timeout),
            Say::Stderr,
            || {
                if env_file.exists() {
                    secrets::replace(&env_file, &new)?;
                } else {
                    secrets::create(&env_file, &new)?;
                }
                eprintln!("wrote a new token to `{}`", show(&env_file));
                // With the file, whatever becomes of the restart: the contexts follow it.
                for name in natscli::update_token(&Owner::of(layout, root), &new)? {
                    eprintln!("updated the natscli context `{name}`");
                }
                Ok(())
            },
        )?;
        eprintln!(
            "clients need the new token now (`cargo xtask env --show-token` prints it); the \
             old one is refused"
        );
        if self.show_token {
            println!("{new}");
        }
        Ok(())
    }
}

//! `cargo xtask tls rotate`: new certificates from the same CA (or a new CA), served without a
//! restart (or with one, for a new CA).

use std::time::Duration;

use anyhow::{Result, bail};

use crate::install;
use crate::layout::Layout;
use crate::lifecycle::{Running, Say};
use crate::server;
use crate::server::certs::Role;
use crate::server::config;
use crate::server::reload;
use crate::server::tls::{CLIENT, SERVER, TlsDir, client_names};
use crate::util::paths::show;

/// Manage the certificates of `cargo xtask setup --tls`.
#[derive(Debug, clap::Args)]
pub(crate) struct Tls {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    Rotate(Rotate),
}

/// Issue every certificate anew, with new keys, and have what runs serve them.
///
/// The server's certificate, each cluster node's, and the client certificate of `--tls-verify`
/// are issued again by the same CA, for the same names; each new key replaces the old one in
/// its file (atomically, owner-only), so the old keys are gone. A running server, or every
/// running node, reloads (SIGHUP) and serves the new certificates at once, without a restart:
/// its pid stays, and connected clients stay connected. On Windows, where a server in the
/// background cannot be signalled, it is restarted instead.
///
/// With --ca a new CA is made first, and everything under it: clients and nodes that trusted
/// the old CA must trust the new one, so what runs is restarted. Give your applications and
/// browsers the new `tls/ca.pem`.
#[derive(Debug, clap::Args)]
struct Rotate {
    /// Make a new CA too (then what runs restarts).
    #[arg(long)]
    ca: bool,

    /// Seconds to wait for the reload (or the restart's clean shutdown and start).
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    timeout: u64,
}

impl Tls {
    pub(crate) fn run(&self, layout: &Layout) -> Result<()> {
        let Action::Rotate(rotate) = &self.action;
        rotate.run(layout)
    }
}

impl Rotate {
    fn run(&self, layout: &Layout) -> Result<()> {
        install::require_installed(layout, "tls rotate")?;
        let text = std::fs::read_to_string(layout.config())?;
        let listen = config::read_listen(&text);
        let dir = TlsDir::of(layout);
        let ours = dir.config(SERVER, &layout.dir, false, false);
        match &listen.tls {
            None => bail!(
                "`{}` serves no TLS, so there is nothing to rotate: `cargo xtask setup --tls` \
                 turns it on",
                show(&layout.config())
            ),
            Some(tls) if tls.cert_file != ours.cert_file => bail!(
                "`{}` serves certificates of your own (`{}`), not those of `cargo xtask setup \
                 --tls`: replace those files, then `cargo xtask reload`",
                show(&layout.config()),
                tls.cert_file
            ),
            Some(_) => {}
        }
        // No `run` may start the server with half the new files meanwhile.
        let _lock = server::run_lock(layout)?;
        let timeout = Duration::from_secs(self.timeout);
        let issue_all = || -> Result<()> {
            if self.ca {
                dir.new_ca()?;
            }
            for name in dir.issued() {
                if name == CLIENT {
                    dir.issue(name.as_str(), Role::Client, &client_names())?;
                } else {
                    dir.issue(name.as_str(), Role::Server, &dir.names_for(&listen.host))?;
                }
                eprintln!("issued `{}` with a new key", show(&dir.cert(&name)));
            }
            Ok(())
        };
        let running = Running::now(layout)?;
        if self.ca || cfg!(windows) {
            running.restart(layout, timeout, Say::Stderr, issue_all)?;
            if self.ca {
                eprintln!(
                    "clients must trust the new CA now, `{}`: the old one is refused",
                    show(&dir.ca())
                );
            }
            return Ok(());
        }
        issue_all()?;
        for target in running.servers(layout, None)? {
            reload::reload(&target, timeout)?;
        }
        Ok(())
    }
}

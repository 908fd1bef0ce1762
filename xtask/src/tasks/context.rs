//! `cargo xtask context`: a natscli context for this checkout's server, so that `nats
//! --context NAME ...` reaches it with its token.

use std::fs;
use std::net::ToSocketAddrs;
use std::path::Path;

use anyhow::{Result, bail};
use serde_json::json;

use crate::install;
use crate::layout::Layout;
use crate::lifecycle;
use crate::natscli::{self, Owner};
use crate::server::auth::{self, AuthDir};
use crate::server::secrets;
use crate::server::tls::ClientFiles;

/// Write a natscli context for this checkout's server: its URL and token.
///
/// The file is readable by its owner only, in a directory only they can enter (when this
/// creates it). It is not selected unless --select. A context this checkout's xtask did not
/// write is never overwritten (--force does) nor removed. `cargo xtask token rotate` updates
/// the contexts it wrote, and `cargo xtask run` points them at what it started: the single
/// server or every node of the cluster.
#[derive(Debug, clap::Args)]
pub(crate) struct Context {
    /// Name of the context [default: the checkout directory's name]
    #[arg(long)]
    name: Option<String>,

    /// Remove the context instead.
    #[arg(long, conflicts_with_all = ["select"])]
    remove: bool,

    /// Also make it natscli's selected context.
    #[arg(long)]
    select: bool,

    /// Overwrite (or remove) a context of that name that this checkout did not write.
    #[arg(long)]
    force: bool,
}

impl Context {
    pub(crate) fn run(&self, layout: &Layout, root: Option<&Path>) -> Result<()> {
        let owner = Owner::of(layout, root);
        let (name, path) =
            natscli::context_file(self.name.as_deref(), root.unwrap_or(&layout.dir))?;
        let existing = fs::read_to_string(&path).ok();
        let ours = existing.as_deref().is_some_and(|text| owner.wrote(text));
        if existing.is_some() && !ours && !self.force {
            bail!(
                "the natscli context `{name}` (`{}`) was not written by this checkout's xtask: \
                 it is left alone; choose another --name, or --force to {} it",
                path.display(),
                if self.remove { "remove" } else { "overwrite" }
            );
        }
        if self.remove {
            if existing.is_none() {
                eprintln!("there is no natscli context `{name}`");
                return Ok(());
            }
            natscli::remove(&path)?;
            // And the system user's, when this checkout wrote it.
            let (_, system) = natscli::context_file(
                Some(&format!("{name}-system")),
                root.unwrap_or(&layout.dir),
            )?;
            if fs::read_to_string(&system).is_ok_and(|text| owner.wrote(&text)) {
                natscli::remove(&system)?;
            }
            return Ok(());
        }
        install::require_installed(layout, "context")?;
        let files = ClientFiles::of(layout)?;
        let mut urls = lifecycle::client_urls(layout)?;
        // natscli verifies a server's certificate for the host it connects to: a certificate
        // for a public name is reached under that name.
        // That name must lead here: else the context would send this checkout's token to
        // whatever server the name leads to.
        if let Some(name) = files.as_ref().and_then(|files| files.name.as_deref()) {
            let here = |ip: std::net::IpAddr| {
                ip.is_loopback() || listen_ip(layout).is_some_and(|listen| listen == ip)
            };
            let leads_here = (name, 0)
                .to_socket_addrs()
                .is_ok_and(|mut addresses| addresses.all(|address| here(address.ip())));
            if !leads_here {
                bail!(
                    "your certificate covers `{name}`, not this machine's addresses, and natscli \
                     verifies it for the host it connects to; `{name}` does not lead to this \
                     machine, so a context by that name would send this checkout's token to \
                     another server. Where `{name}` should mean this machine, add it to your \
                     hosts file (`127.0.0.1 {name}`), then run this again"
                );
            }
            urls = urls.iter().map(|url| with_host(url, name)).collect();
        }
        let mut context = json!({
            "description": owner.description,
            "url": urls.join(","),
        });
        // Under accounts, the default user's credentials (a path), else the token.
        let creds = crate::server::auth::default_creds(layout);
        match &creds {
            Some(creds) => context["creds"] = json!(creds),
            None => context["token"] = json!(secrets::load(&layout.env_file())?),
        }
        // natscli's names for the CA, and the certificate and key under mutual TLS.
        if let Some(files) = files {
            if let Some(ca) = files.ca {
                context["ca"] = json!(ca);
            }
            if let Some((cert, key)) = files.client {
                context["cert"] = json!(cert);
                context["key"] = json!(key);
            }
        }
        natscli::write(&path, &context, self.select)?;
        // And one for the system account's user, with which `nats server report` and
        // `nats server ls` ask every server.
        if creds.is_some() {
            let system = format!("{name}-system");
            let (_, path) = natscli::context_file(Some(&system), root.unwrap_or(&layout.dir))?;
            let existing = fs::read_to_string(&path).ok();
            if existing.is_some_and(|text| !owner.wrote(&text)) && !self.force {
                bail!(
                    "the natscli context `{system}` (`{}`) was not written by this checkout's \
                     xtask: it is left alone; choose another --name, or --force",
                    path.display()
                );
            }
            let auth = AuthDir::of(layout);
            context["creds"] = json!(auth.creds(auth::SYSTEM, auth::SYSTEM_USER));
            natscli::write(&path, &context, false)?;
        }
        Ok(())
    }
}

/// `url` (`tls://host:port`) with `host` in place of its host.
fn with_host(url: &str, host: &str) -> String {
    let (scheme, address) = url.split_once("://").unwrap_or(("", url));
    let port = address.rsplit_once(':').map_or("", |(_, port)| port);
    format!("{scheme}://{host}:{port}")
}

/// The address the server of `layout` listens on, when it is one address.
fn listen_ip(layout: &Layout) -> Option<std::net::IpAddr> {
    let text = std::fs::read_to_string(layout.config()).ok()?;
    crate::server::config::read_listen(&text).host.parse().ok()
}

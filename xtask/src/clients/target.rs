//! The server that the client programs (smoke checks, bench, exec's command) run against: this
//! checkout's (single or cluster), one answering on the ports of its config, or a temporary
//! server or cluster of the run's own.

use std::fs;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::nodes::ClusterNodes;
use crate::args::{ListenArgs, SourceArgs};
use crate::cluster;
use crate::install::{self, SetupOptions};
use crate::layout::Layout;
use crate::server::auth::{self, AuthDir};
use crate::server::config::{self, Listen};
use crate::server::secrets::{self, ServerEnv};
use crate::server::tls::TlsDir;
use crate::server::{self, Endpoints, Mode};
use crate::util::units;

/// The endpoints of a server answering on the addresses in this checkout's config, if one
/// does.
fn answering_on_configured_ports(layout: &Layout) -> Option<Endpoints> {
    let listen = config::read_listen(&fs::read_to_string(layout.config()).ok()?);
    if listen.port <= 0 || listen.http_port <= 0 {
        return None;
    }
    let at = |port: i32| config::reachable(&listen.host, port);
    let s = if listen.tls.is_some() { "s" } else { "" };
    let endpoints = Endpoints {
        client: format!("{}://{}", listen.client_scheme(), at(listen.port)?),
        monitoring: format!("http{s}://{}", at(listen.http_port)?),
        websocket: at(listen.ws_port).map(|address| format!("ws{s}://{address}")),
        cluster: None,
        exposed: Vec::new(),
        trust: crate::server::tls::trust(layout).ok()?,
    };
    xtask_probe::get_json(
        &endpoints.agent(),
        &format!("{}/varz", endpoints.monitoring),
    )
    .ok()?;
    Some(endpoints)
}

/// The server one smoke or bench run works with.
pub(crate) struct Target {
    pub(crate) endpoints: Endpoints,
    pub(crate) token: String,
    /// The default user's credentials, when the server has accounts and users.
    pub(crate) creds: Option<std::path::PathBuf>,
    kind: Kind,
}

enum Kind {
    /// This checkout's server, recorded in its pid file.
    Recorded { pid: u32 },
    /// This checkout's cluster or a temporary one, checked through its first node.
    Cluster(Box<ClusterNodes>),
    /// A server answering on this checkout's configured ports, not started by the xtask.
    Answering,
    /// Started for this run, stopped and deleted when dropped.
    Temporary(Box<Temporary>),
}

impl Target {
    /// The server to check: the one recorded as this checkout's, or its cluster; else whatever
    /// answers on the ports of this checkout's config (a server started without the xtask, or
    /// another clone's); else a temporary one. With `cluster`, this checkout's cluster or a
    /// temporary one.
    pub(crate) fn find(layout: &Layout, cluster: bool, source: &SourceArgs) -> Result<Target> {
        let single = server::reconcile_pid_file(layout)?;
        if let Some(pid) = single.filter(|_| !cluster) {
            return Ok(Target {
                endpoints: Endpoints::of_running(layout, pid)?,
                token: secrets::load(&layout.env_file())?,
                creds: auth::default_creds(layout),
                kind: Kind::Recorded { pid },
            });
        }
        let running = cluster::running(layout)?;
        if !running.is_empty() {
            let down: Vec<String> = cluster::recorded_names(layout)
                .into_iter()
                .filter(|name| !running.iter().any(|(n, _)| n == name))
                .collect();
            if !down.is_empty() {
                bail!(
                    "{} of the cluster {} not running: `cargo xtask run --cluster --detach` \
                     starts {}",
                    units::named("node", &down),
                    units::is_are(down.len()),
                    if down.len() == 1 { "it" } else { "them" }
                );
            }
            return Target::of_cluster(ClusterNodes::of_checkout(layout, &running)?);
        }
        if !cluster && let Some(endpoints) = answering_on_configured_ports(layout) {
            let token = secrets::load(&layout.env_file()).with_context(|| {
                format!(
                    "a server answers at {}, the address in this checkout's config, but \
                     this checkout has no token to check it with",
                    endpoints.client
                )
            })?;
            return Ok(Target {
                endpoints,
                token,
                creds: auth::default_creds(layout),
                kind: Kind::Answering,
            });
        }
        if cluster && let Some(pid) = single {
            eprintln!(
                "this checkout's single server (pid {pid}) is not a cluster: using a temporary \
                 cluster instead"
            );
        }
        Target::temporary(layout, cluster, source)
    }

    /// A server of the run's own (with `cluster`, a cluster of 3 nodes) from this checkout's
    /// binary, installed first if it is not: a temporary directory, ports the server picks,
    /// secrets of its own. Stopped and deleted when dropped.
    pub(crate) fn temporary(layout: &Layout, cluster: bool, source: &SourceArgs) -> Result<Target> {
        install::setup(
            layout,
            &SetupOptions::for_run(source.clone(), ListenArgs::default()),
        )?;
        if cluster {
            return Target::of_cluster(ClusterNodes::temporary(layout)?);
        }
        let temporary = Temporary::start(layout)?;
        Ok(Target {
            endpoints: temporary.endpoints.clone(),
            token: temporary.token.clone(),
            creds: auth::default_creds(layout),
            kind: Kind::Temporary(Box::new(temporary)),
        })
    }

    /// A cluster, checked through its first node.
    fn of_cluster(nodes: ClusterNodes) -> Result<Target> {
        let (_, first) = nodes
            .endpoints()?
            .into_iter()
            .next()
            .context("the cluster has no nodes")?;
        Ok(Target {
            endpoints: first,
            token: nodes.token().to_string(),
            creds: None,
            kind: Kind::Cluster(Box::new(nodes)),
        })
    }

    /// Hands `command` what proves who it is to this server: see [`hand_on`].
    pub(crate) fn hand_on(&self, command: &mut std::process::Command) {
        hand_on(command, self.creds.as_deref(), &self.token);
    }

    /// The cluster's nodes, which the checks may ask to stop and start.
    pub(crate) fn cluster(&mut self) -> Option<&mut ClusterNodes> {
        match &mut self.kind {
            Kind::Cluster(nodes) => Some(nodes),
            _ => None,
        }
    }

    /// Every server at hand: the one, or every node; with its pid where the xtask knows it.
    pub(crate) fn servers(&self) -> Result<Vec<(Endpoints, Option<u32>)>> {
        Ok(match &self.kind {
            Kind::Recorded { pid } => vec![(self.endpoints.clone(), Some(*pid))],
            Kind::Temporary(temporary) => vec![(self.endpoints.clone(), Some(temporary.pid))],
            Kind::Answering => vec![(self.endpoints.clone(), None)],
            Kind::Cluster(nodes) => nodes
                .endpoints_and_pids()?
                .into_iter()
                .map(|(_, endpoints, pid)| (endpoints, Some(pid)))
                .collect(),
        })
    }

    /// The client URL of every server at hand: the one, or every node.
    pub(crate) fn client_urls(&self) -> Result<Vec<String>> {
        Ok(self
            .servers()?
            .into_iter()
            .map(|(endpoints, _)| endpoints.client)
            .collect())
    }

    /// The largest payload the server's config allows (the first node's, for a cluster), in
    /// bytes; `layout` is this checkout's server directory.
    pub(crate) fn max_payload(&self, layout: &Layout) -> Result<u64> {
        let path = match &self.kind {
            Kind::Recorded { .. } | Kind::Answering => layout.config(),
            Kind::Temporary(temporary) => temporary.layout.config(),
            Kind::Cluster(nodes) => nodes.first_config().context("the cluster has no nodes")?,
        };
        let text = fs::read_to_string(&path)
            .with_context(|| format!("cannot read `{}`", crate::util::paths::show(&path)))?;
        Ok(config::read_max_payload(&text))
    }

    /// The directory of a temporary server or cluster.
    pub(crate) fn temporary_dir(&self) -> Option<&std::path::Path> {
        match &self.kind {
            Kind::Temporary(temporary) => Some(temporary.dir.path()),
            Kind::Cluster(nodes) => nodes.dir(),
            _ => None,
        }
    }

    /// `--node NAME=CLIENT_URL,MONITORING_URL` for every node of a cluster.
    pub(crate) fn node_args(&self) -> Result<Vec<String>> {
        let Kind::Cluster(nodes) = &self.kind else {
            return Ok(Vec::new());
        };
        Ok(nodes
            .endpoints()?
            .iter()
            .flat_map(|(name, endpoints)| {
                [
                    "--node".to_string(),
                    format!("{name}={},{}", endpoints.client, endpoints.monitoring),
                ]
            })
            .collect())
    }

    /// Which server this is, as the report gives it, with a line for people (`summary`). What
    /// the server says of itself comes from `/varz`: an answering server may be another
    /// clone's or a container's.
    pub(crate) fn describe(&self) -> Value {
        let varz = xtask_probe::get_json(
            &self.endpoints.agent(),
            &format!("{}/varz", self.endpoints.monitoring),
        )
        .unwrap_or(Value::Null);
        let text = |key: &str| varz[key].as_str().unwrap_or("?").to_string();
        let (version, name, id) = (text("version"), text("server_name"), text("server_id"));
        let mut server = json!({
            "client_url": self.endpoints.client,
            "version": varz["version"],
            "name": varz["server_name"],
            "id": varz["server_id"],
        });
        let which = match &self.kind {
            Kind::Recorded { pid } => {
                server["kind"] = json!("recorded");
                server["pid"] = json!(pid);
                format!("the server of this checkout (pid {pid})")
            }
            Kind::Cluster(nodes) => {
                let names = nodes.names();
                server["kind"] = json!(if nodes.is_temporary() {
                    "temporary cluster"
                } else {
                    "cluster"
                });
                server["nodes"] = json!(names);
                if let Some(dir) = nodes.dir() {
                    server["dir"] = json!(dir);
                }
                let whose = if nodes.is_temporary() {
                    "a temporary"
                } else {
                    "this checkout's"
                };
                format!(
                    "{whose} cluster of {} nodes, through {}",
                    names.len(),
                    names[0]
                )
            }
            Kind::Answering => {
                server["kind"] = json!("answering");
                "the server answering on this checkout's configured ports, which the xtask did \
                 not start (it may be another clone's or a container's)"
                    .to_string()
            }
            Kind::Temporary(temporary) => {
                server["kind"] = json!("temporary");
                server["pid"] = json!(temporary.pid);
                server["dir"] = json!(temporary.dir.path());
                "a temporary server".to_string()
            }
        };
        server["temporary"] = json!(match &self.kind {
            Kind::Temporary(_) => true,
            Kind::Cluster(nodes) => nodes.is_temporary(),
            _ => false,
        });
        server["summary"] = json!(format!(
            "{which}: nats-server v{version} \"{name}\" ({id}) at {}",
            self.endpoints.client
        ));
        server
    }
}

/// Hands a client program what proves who it is: the default user's credentials
/// (`NATS_CREDS`, a path) when the server has accounts, else the token (`NATS_TOKEN`); the
/// other variable is removed, so that one inherited from the user's shell does not stand in.
pub(crate) fn hand_on(
    command: &mut std::process::Command,
    creds: Option<&std::path::Path>,
    token: &str,
) {
    match creds {
        Some(creds) => command
            .env("NATS_CREDS", creds)
            .env_remove(secrets::TOKEN_VAR),
        None => command
            .env(secrets::TOKEN_VAR, token)
            .env_remove("NATS_CREDS"),
    };
}

/// A server of its own for one run of smoke, bench or exec: a temporary directory, ports the server picks, a
/// fresh token in its environment only. Stopped and deleted when dropped.
pub(crate) struct Temporary {
    layout: Layout,
    dir: tempfile::TempDir,
    child: std::process::Child,
    pid: u32,
    endpoints: Endpoints,
    token: String,
}

impl Temporary {
    fn start(checkout: &Layout) -> Result<Temporary> {
        let dir = tempfile::Builder::new()
            .prefix("nats-xtask-")
            .tempdir()
            .context("cannot create a temporary directory")?;
        let layout = Layout::with_binary(dir.path().to_path_buf(), checkout.binary());
        // TLS as the checkout's server has it, with its certificates.
        let tls = config::read_tls(checkout).map(|tls| tls.absolute_from(&checkout.dir));
        if tls.is_some() {
            // The names the checks may verify a certificate of yours under.
            let names = TlsDir::of(checkout).server_names();
            TlsDir::of(&layout).record_names(&names)?;
        }
        // Accounts as the checkout's server has them: its operator and accounts' JWTs (no
        // seed), and its users' credentials for the checks.
        let jwt = config::has_accounts(checkout);
        if jwt {
            let (from, to) = (AuthDir::of(checkout), AuthDir::of(&layout));
            std::fs::create_dir_all(&to.dir)
                .with_context(|| format!("cannot create `{}`", to.dir.display()))?;
            for path in [from.operator_jwt(), from.resolver()] {
                let name = path.file_name().unwrap_or_default();
                std::fs::copy(&path, to.dir.join(name))
                    .with_context(|| format!("cannot copy `{}`", path.display()))?;
            }
        }
        let listen = Listen {
            tls,
            jwt,
            ..Listen::loopback_on_free_ports()
        };
        std::fs::write(layout.config(), config::render(&listen))
            .with_context(|| format!("cannot write `{}`", layout.config().display()))?;
        let token = secrets::generate()?;
        let auth = match jwt {
            true => AuthDir::of(checkout).client_auth(auth::SYSTEM, auth::SYSTEM_USER)?,
            false => xtask_probe::Auth::Token(token.clone()),
        };
        let mut child = server::spawn(&layout, &ServerEnv::single(token.clone()), Mode::Attached)?;
        let ready =
            server::wait_ready(&mut child, &layout, &auth, Duration::from_secs(30), &|| {
                false
            });
        match ready.and_then(|ready| ready.context("cancelled")) {
            Ok(endpoints) => Ok(Temporary {
                layout,
                dir,
                pid: child.id(),
                child,
                endpoints,
                token,
            }),
            Err(e) => {
                server::shut_down(
                    &mut child,
                    &layout,
                    "the temporary nats-server",
                    Duration::from_secs(10),
                );
                Err(e.context("cannot start a temporary nats-server"))
            }
        }
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if let Err(e) = server::stop(self.pid, &self.layout, Duration::from_secs(10)) {
            eprintln!("warning: {e:#}");
        }
        let _ = self.child.wait();
    }
}

//! `cargo xtask uninstall`: stops what runs and removes what the xtask made for this checkout,
//! so that it is as before its first setup.

use std::fs;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::install::cache::Cache;
use crate::layout::{Layout, binary_name};
use crate::lifecycle::Running;
use crate::natscli::{self, Owner};
use crate::server;
use crate::server::config;
use crate::util::files::{self, tree_size};
use crate::util::paths::show;
use crate::util::units::bytes;

/// Stop what runs and remove what the xtask made: binary, config, token, data, logs, contexts.
///
/// Removes, in the server's directory (`infrastructure/nats/` or --dir): the binary, its
/// licence and `.install.json`; `.env.nats` with the token (clients using it are refused by
/// any later install, which makes a new one); the config and its `.bak` copies; JetStream
/// data and logs; the cluster nodes' directories; pid, ports and lock files. Also the natscli
/// contexts that this checkout's `cargo xtask context` wrote, never another's, and with
/// --cache the archive cache.
///
/// A config you edited (it differs from what setup writes for its host and ports) is kept,
/// unless --yes is given twice (`-yy`) or --all. What it does not know as its own stays, as
/// does the committed `infrastructure/nats/README.md`. It lists everything first, with sizes,
/// and asks on a terminal; elsewhere it needs --yes. `cargo xtask setup` (or `run`) installs
/// again from scratch.
#[derive(Debug, clap::Args)]
pub(crate) struct Uninstall {
    /// Remove without asking; twice (`-yy`), remove a config you edited too.
    #[arg(long, short, action = clap::ArgAction::Count)]
    yes: u8,

    /// Remove a config you edited too (it still asks, unless --yes).
    #[arg(long)]
    all: bool,

    /// Also empty the archive cache, which every checkout of this user shares.
    #[arg(long)]
    cache: bool,

    /// Seconds to wait for a clean shutdown (then the server is killed).
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    timeout: u64,
}

impl Uninstall {
    pub(crate) fn run(&self, layout: &Layout, root: Option<&Path>) -> Result<()> {
        let edited_too = self.yes >= 2 || self.all;
        let found = Found::in_dir(layout, edited_too);
        let contexts = natscli::written_by(&Owner::of(layout, root));
        let cache = Cache::from_env();
        let archives = if self.cache {
            cache.entries()
        } else {
            Vec::new()
        };
        let running = Running::now(layout)?;
        if found.is_empty() && contexts.is_empty() && archives.is_empty() {
            eprintln!(
                "nothing of the server is installed in `{}`: there is nothing to uninstall",
                show(&layout.dir)
            );
            found.say_kept();
            return Ok(());
        }

        let mut plan = Vec::new();
        match &running {
            Running::Nothing => {}
            Running::Single { pid } => plan.push(format!("stop nats-server (pid {pid})")),
            Running::Cluster { running, .. } => {
                plan.push(format!("stop the cluster's nodes {}", running.join(", ")))
            }
        }
        plan.extend(found.listing(&layout.dir));
        for (name, path) in &contexts {
            plan.push(format!(
                "remove the natscli context `{name}` (`{}`)",
                path.display()
            ));
        }
        if let (Some(dir), false) = (cache.dir(), archives.is_empty()) {
            let size: u64 = archives.iter().map(|entry| entry.size).sum();
            plan.push(format!(
                "empty the archive cache `{}`: {} archive{} ({})",
                dir.display(),
                archives.len(),
                plural(archives.len()),
                human(size)
            ));
        }
        for path in &found.kept {
            plan.push(format!(
                "keep `{}`: you edited it (it differs from what setup writes for its host and \
                 ports); `--yes --yes` or `--all` removes it too",
                show(path)
            ));
        }
        eprintln!("uninstall will:");
        for line in &plan {
            eprintln!("  {line}");
        }
        let token = if found.token.is_some() {
            ", the token in `.env.nats` included"
        } else {
            ""
        };
        if self.yes == 0 && !confirmed(token)? {
            eprintln!("nothing removed");
            return Ok(());
        }

        if layout.dir.is_dir() {
            // No setup or run of this directory may start while it goes.
            let setup_lock = files::lock(&layout.setup_lock(), "setup")?;
            let run_lock = server::run_lock(layout)?;
            Running::now(layout)?.stop(layout, Duration::from_secs(self.timeout))?;
            // Found again once nothing runs: a stopped server has removed its ports file.
            let found = Found::in_dir(layout, edited_too);
            found.remove(&layout.dir)?;
            drop((setup_lock, run_lock));
            for lock in [layout.setup_lock(), layout.run_lock()] {
                remove(&lock)?;
            }
            found.prune(layout, root);
        }
        for (_, path) in &contexts {
            natscli::remove(path)?;
        }
        if !archives.is_empty() {
            for entry in &archives {
                cache.remove(entry)?;
            }
            eprintln!(
                "emptied the archive cache `{}`",
                cache.dir().unwrap_or(Path::new("")).display()
            );
        }
        found.say_kept();
        Ok(())
    }
}

/// What the xtask made in a server's directory, found by the paths `Layout` gives them (and
/// the names of the backups, ports files and staging directories it leaves beside them).
#[derive(Debug, Default)]
struct Found {
    /// The binary, its licence, `.install.json`, and staging directories of interrupted setups.
    install: Vec<PathBuf>,
    /// `.env.nats`: the token and the route password.
    token: Option<PathBuf>,
    /// Configs as setup or `run --cluster` wrote them (or edited ones, when asked), and the
    /// `.bak` copies of earlier ones.
    configs: Vec<PathBuf>,
    /// JetStream's stores.
    data: Vec<PathBuf>,
    /// Server logs and what detached servers printed.
    logs: Vec<PathBuf>,
    /// Pid, ports, lock and record files.
    records: Vec<PathBuf>,
    /// Configs someone edited, which stay.
    kept: Vec<PathBuf>,
    /// Directories to remove once empty, the deepest first.
    dirs: Vec<PathBuf>,
}

impl Found {
    /// What is in `layout`'s directory and its cluster nodes' directories; edited configs
    /// among what goes when `edited_too`.
    fn in_dir(layout: &Layout, edited_too: bool) -> Found {
        let mut found = Found::default();
        found.server(&layout.dir, None, edited_too);
        let cluster = layout.cluster_dir();
        if cluster.is_dir() {
            for entry in entries(&cluster) {
                let name = file_name(&entry);
                if entry == layout.cluster_state() {
                    found.records.push(entry);
                } else if is_node_name(&name) && entry.is_dir() {
                    found.server(&entry, Some(&name), edited_too);
                    found.dirs.push(entry);
                }
            }
            found.dirs.push(cluster);
        }
        found
    }

    /// The files of the server (`node`: a cluster node's) in `dir`.
    fn server(&mut self, dir: &Path, node: Option<&str>, edited_too: bool) {
        let server = Layout::new(dir.to_path_buf());
        let (single, is_node) = (node.is_none(), node.is_some());
        let data = server.jetstream_dir();
        for path in entries(dir) {
            let name = file_name(&path);
            // Either OS's binary: a checkout may be shared between them.
            let binary = [binary_name("linux"), binary_name("windows")].contains(&name.as_str());
            if single && (binary || path == server.license() || path == server.manifest()) {
                self.install.push(path);
            } else if single && path == server.env_file() {
                self.token = Some(path);
            } else if path == server.config() {
                let edited = fs::read_to_string(&path).map_or(true, |text| match node {
                    None => config::is_edited(&text),
                    Some(node) => config::is_edited_node(&text, node),
                });
                if edited && !edited_too {
                    self.kept.push(path);
                } else {
                    self.configs.push(path);
                }
            } else if path == server.pid_file()
                || path == server.stop_request()
                || (single && (path == server.setup_lock() || path == server.run_lock()))
                || (is_node && path == server.ports_record())
            {
                self.records.push(path);
            } else if Some(path.as_path()) == data.parent() {
                if data.exists() {
                    self.data.push(data.clone());
                }
                self.dirs.push(path);
            } else if path == server.logs_dir() {
                let log = file_name(&server.log_file());
                self.logs.extend(entries(&path).into_iter().filter(|entry| {
                    let name = file_name(entry);
                    name == log
                        || name.starts_with(&format!("{log}."))
                        || *entry == server.output_file()
                }));
                self.dirs.push(path);
            } else if name.starts_with("nats-server.conf.") && name.ends_with(".bak") {
                self.configs.push(path);
            } else if (name.starts_with("nats-server") && name.ends_with(".ports"))
                || (name.starts_with(".tmp") && path.is_file())
            {
                // The server's `nats-server_<pid>.ports` (`nats-server.exe_<pid>.ports` on
                // Windows), and what an interrupted atomic write left.
                self.records.push(path);
            } else if single && name.starts_with(".setup-") && path.is_dir() {
                self.install.push(path);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.paths().next().is_none()
    }

    /// Everything that goes.
    fn paths(&self) -> impl Iterator<Item = &PathBuf> {
        self.install
            .iter()
            .chain(&self.token)
            .chain(&self.configs)
            .chain(&self.data)
            .chain(&self.logs)
            .chain(&self.records)
    }

    /// One line per kind of file that goes, with their paths (relative to `dir`) and sizes.
    fn listing(&self, dir: &Path) -> Vec<String> {
        let names = |paths: &[PathBuf]| {
            paths
                .iter()
                .map(|path| format!("`{}`", relative(path, dir)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let size = |paths: &[PathBuf]| human(paths.iter().map(|path| tree_size(path)).sum());
        let mut lines = Vec::new();
        if self.paths().next().is_some() {
            let total = self.paths().map(|path| tree_size(path)).sum();
            lines.push(format!("remove from `{}` ({}):", show(dir), human(total)));
        }
        let token: Vec<PathBuf> = self.token.iter().cloned().collect();
        let log_dirs: Vec<PathBuf> = {
            let mut dirs: Vec<PathBuf> = self
                .logs
                .iter()
                .filter_map(|log| log.parent().map(Path::to_path_buf))
                .collect();
            dirs.dedup();
            dirs
        };
        let groups = [
            (&self.install, "the server", names(&self.install)),
            (
                &token,
                "the token that clients connect with (and the route password)",
                names(&token),
            ),
            (&self.configs, "configs", names(&self.configs)),
            (&self.data, "JetStream data", names(&self.data)),
            (
                &self.logs,
                "logs",
                format!(
                    "{} file{} in {}",
                    self.logs.len(),
                    plural(self.logs.len()),
                    names(&log_dirs)
                ),
            ),
            (
                &self.records,
                "pid, ports, lock and record files",
                format!("{} file{}", self.records.len(), plural(self.records.len())),
            ),
        ];
        for (paths, what, which) in groups {
            if !paths.is_empty() {
                lines.push(format!("  {what}: {which} ({})", size(paths)));
            }
        }
        lines
    }

    /// Says which edited configs stay, and how to remove them too.
    fn say_kept(&self) {
        for path in &self.kept {
            eprintln!(
                "kept `{}`, which you edited: `cargo xtask uninstall --yes --yes` removes it too",
                show(path)
            );
        }
    }

    /// Removes what was found, saying how much went.
    fn remove(&self, dir: &Path) -> Result<()> {
        let mut total = 0;
        for path in self.paths() {
            let size = tree_size(path);
            if remove(path)? {
                total += size;
            }
        }
        println!(
            "removed what is listed from `{}` ({})",
            show(dir),
            human(total)
        );
        Ok(())
    }

    /// Removes the directories left empty, and the server's directory itself when it is,
    /// unless it is the checkout's `infrastructure/nats`, which holds the committed README.
    fn prune(&self, layout: &Layout, root: Option<&Path>) {
        for dir in &self.dirs {
            let _ = fs::remove_dir(dir);
        }
        let checkouts = root.map(|root| root.join("infrastructure").join("nats"));
        if checkouts.as_deref() != Some(layout.dir.as_path()) && fs::remove_dir(&layout.dir).is_ok()
        {
            eprintln!("removed `{}`, left empty", show(&layout.dir));
        }
    }
}

/// Removes the file or directory tree `path`; false when it was not there.
fn remove(path: &Path) -> Result<bool> {
    let removed = if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match removed {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| {
            format!(
                "cannot remove `{}`: check that you may write there and that no program holds \
                 it open, then run uninstall again",
                show(path)
            )
        }),
    }
}

/// The entries of `dir`, by name; none when it cannot be read.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .collect();
    paths.sort();
    paths
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// `n1`, `n2`, ...: the directory of a cluster node.
fn is_node_name(name: &str) -> bool {
    name.strip_prefix('n')
        .is_some_and(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()))
}

fn relative(path: &Path, dir: &Path) -> String {
    path.strip_prefix(dir).unwrap_or(path).display().to_string()
}

fn human(size: u64) -> String {
    bytes(&size.into())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Asks on the terminal; without one, says how to confirm.
fn confirmed(token: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "uninstall would remove all this{token}: run it with --yes to confirm (there is no \
             terminal to ask on)"
        );
    }
    eprint!("remove all this{token}? [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn only_what_the_xtask_makes_is_found_and_edited_configs_stay_unless_asked() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path().to_path_buf());
        let listen = config::Listen::default();
        let ours = [
            "nats-server",
            "LICENSE.nats-server",
            ".install.json",
            ".env.nats",
            "nats-server.conf.1700000000.bak",
            "nats-server.pid",
            "nats-server_4242.ports",
            ".run.lock",
            "data/jetstream/jetstream/stream.dat",
            "logs/nats.log",
            "logs/nats.log.2024-01-01",
            "logs/nats-server.out",
            "cluster/cluster.json",
            "cluster/n1/ports.json",
            "cluster/n1/logs/nats.log",
        ];
        for path in ours {
            touch(&dir.path().join(path), "x");
        }
        touch(&layout.config(), &config::render(&listen));
        let node = config::ClusterNode {
            name: "n1".into(),
            cluster_port: 6222,
        };
        touch(
            &dir.path().join("cluster/n1/nats-server.conf"),
            &format!("{}# mine\n", config::render_node(&listen, &node)),
        );
        let foreign = [
            "README.md",
            "certs/server.pem",
            "data/backup.tar",
            "logs/app.log",
            "cluster/notes.txt",
            "cluster/n1/mine.txt",
        ];
        for path in foreign {
            touch(&dir.path().join(path), "x");
        }

        let found = Found::in_dir(&layout, false);
        let mut relative: Vec<String> = found
            .paths()
            .map(|path| relative(path, dir.path()).replace('\\', "/"))
            .collect();
        relative.sort();
        let mut expected: Vec<&str> = ours
            .iter()
            .map(|path| {
                if path.starts_with("data/") {
                    "data/jetstream"
                } else {
                    path
                }
            })
            .chain(["nats-server.conf"])
            .collect();
        expected.sort();
        assert_eq!(relative, expected);
        assert_eq!(found.kept, [dir.path().join("cluster/n1/nats-server.conf")]);
        assert!(Found::in_dir(&layout, true).kept.is_empty());

        found.remove(dir.path()).unwrap();
        found.prune(&layout, None);
        for path in foreign {
            assert!(dir.path().join(path).exists(), "{path} was removed");
        }
        assert!(!dir.path().join("data/jetstream").exists());
    }

    #[test]
    fn directories_left_empty_go_but_the_checkouts_own_stays() {
        let root = tempfile::tempdir().unwrap();
        let checkouts = root.path().join("infrastructure/nats");
        let layout = Layout::new(checkouts.clone());
        touch(&layout.binary(), "x");
        touch(&layout.log_file(), "x");
        let found = Found::in_dir(&layout, false);
        found.remove(&layout.dir).unwrap();
        found.prune(&layout, Some(root.path()));
        assert!(
            checkouts.is_dir(),
            "the checkout's infrastructure/nats went"
        );
        assert!(!checkouts.join("logs").exists(), "an empty logs/ stayed");

        let elsewhere = Layout::new(root.path().join("elsewhere"));
        touch(&elsewhere.binary(), "x");
        let found = Found::in_dir(&elsewhere, false);
        found.remove(&elsewhere.dir).unwrap();
        found.prune(&elsewhere, Some(root.path()));
        assert!(!elsewhere.dir.exists(), "an empty --dir stayed");
    }
}

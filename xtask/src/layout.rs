//! Where the server's files live: `infrastructure/nats/` of the checkout, or `--dir`.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::util::paths::show;

#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub(crate) dir: PathBuf,
    binary: PathBuf,
    env_file: PathBuf,
}

impl Layout {
    pub(crate) fn new(dir: PathBuf) -> Layout {
        Layout {
            binary: dir.join(binary_name(std::env::consts::OS)),
            env_file: dir.join(".env.nats"),
            dir,
        }
    }

    /// A directory of its own for a server that runs `binary` from elsewhere (smoke's
    /// temporary server).
    pub(crate) fn with_binary(dir: PathBuf, binary: PathBuf) -> Layout {
        Layout {
            env_file: dir.join(".env.nats"),
            dir,
            binary,
        }
    }

    /// Where the nodes of this directory's local cluster keep their own files.
    pub(crate) fn cluster_dir(&self) -> PathBuf {
        self.dir.join("cluster")
    }

    /// How many nodes this directory's cluster has, recorded once it has been ready.
    pub(crate) fn cluster_state(&self) -> PathBuf {
        self.cluster_dir().join("cluster.json")
    }

    /// The ports a cluster node picked at its first start, kept for its later starts.
    pub(crate) fn ports_record(&self) -> PathBuf {
        self.dir.join("ports.json")
    }

    /// Cluster node `name`: its own directory (config, data, logs, pid and ports files),
    /// this directory's binary and secrets.
    pub(crate) fn node(&self, name: &str) -> Layout {
        Layout {
            dir: self.cluster_dir().join(name),
            binary: self.binary.clone(),
            env_file: self.env_file.clone(),
        }
    }

    /// The server binary.
    pub(crate) fn binary(&self) -> PathBuf {
        self.binary.clone()
    }

    pub(crate) fn config(&self) -> PathBuf {
        self.dir.join("nats-server.conf")
    }

    pub(crate) fn env_file(&self) -> PathBuf {
        self.env_file.clone()
    }

    /// What setup installed and verified, so a re-run can trust the binary without a download.
    pub(crate) fn manifest(&self) -> PathBuf {
        self.dir.join(".install.json")
    }

    pub(crate) fn license(&self) -> PathBuf {
        self.dir.join("LICENSE.nats-server")
    }

    /// The running server's pid.
    pub(crate) fn pid_file(&self) -> PathBuf {
        self.dir.join("nats-server.pid")
    }

    pub(crate) fn log_file(&self) -> PathBuf {
        self.dir.join("logs/nats.log")
    }

    /// Written by `cargo xtask stop` with the pid it stops, for a foreground run to read.
    pub(crate) fn stop_request(&self) -> PathBuf {
        self.dir.join(".stop-requested")
    }

    /// Taken while a setup runs, so that setups of one directory take turns.
    pub(crate) fn setup_lock(&self) -> PathBuf {
        self.dir.join(".setup.lock")
    }

    /// Taken from "is it running?" until a started server is, so that two runs cannot both
    /// start one.
    pub(crate) fn run_lock(&self) -> PathBuf {
        self.dir.join(".run.lock")
    }

    /// Creates the directories the server writes to: JetStream's store and the logs.
    pub(crate) fn create_working_dirs(&self) -> Result<()> {
        for dir in [self.jetstream_dir(), self.logs_dir()] {
            fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", show(&dir)))?;
        }
        Ok(())
    }

    /// JetStream's store (`store_dir` in the config): streams, consumers, messages.
    pub(crate) fn jetstream_dir(&self) -> PathBuf {
        self.dir.join("data").join("jetstream")
    }

    pub(crate) fn logs_dir(&self) -> PathBuf {
        self.dir.join("logs")
    }

    /// What a server not run in the foreground printed outside its log (errors before the log
    /// is open).
    pub(crate) fn output_file(&self) -> PathBuf {
        self.dir.join("logs/nats-server.out")
    }
}

/// The server's file name on `os` (as Rust or the releases name it).
pub(crate) fn binary_name(os: &str) -> &'static str {
    if os == "windows" {
        "nats-server.exe"
    } else {
        "nats-server"
    }
}

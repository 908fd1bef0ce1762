//! The setup operation: a verified server binary, its config and its token, as `cargo xtask
//! setup` asks for them, and as `run` and the client programs' server need them first.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::release::{self, Asset, Platform, Version};
use super::{Installed, Request, Source, ensure, manifest_version, server_accepts_config};
use crate::args::{AuthMode, ListenArgs, SourceArgs, TlsArgs};
use crate::layout::Layout;
use crate::lifecycle::Running;
use crate::server::auth::AuthDir;
use crate::server::certs::Role;
use crate::server::config::{self, Listen, Tls};
use crate::server::secrets;
use crate::server::tls::{CLIENT, Own, SERVER, TlsDir, client_names, is_network_address};
use crate::util::files::{self, Created, write_atomically};
use crate::util::paths::show;

/// What a setup does: the options of `cargo xtask setup`, or what `run` asks for first.
#[derive(Debug)]
pub(crate) struct SetupOptions {
    pub(crate) source: SourceArgs,
    /// Install the version this checkout pins, replacing the one installed.
    pub(crate) upgrade: bool,
    /// A local release archive instead of a download.
    pub(crate) archive: Option<PathBuf>,
    /// The archive's SHA-256, as the user vouches for it.
    pub(crate) sha256: Option<String>,
    /// Install again even if the requested version is installed.
    pub(crate) reinstall: bool,
    /// Rewrite the config from the template, keeping the old file beside it.
    pub(crate) regenerate_config: bool,
    pub(crate) listen: ListenArgs,
    /// TLS on or off; unsaid, as the config has it.
    pub(crate) tls: TlsArgs,
    /// Token or accounts and users; unsaid, as the config has it.
    pub(crate) auth: Option<AuthMode>,
    /// On behalf of `run` or the clients' server: say only what changed.
    pub(crate) for_run: bool,
}

/// Sets up as `options` ask (a plain setup installs what is missing and keeps what is there);
/// returns the token. A setup that fails leaves the directory as it found it.
pub(crate) fn setup(layout: &Layout, options: &SetupOptions) -> Result<String> {
    options.run(layout)
}

impl SetupOptions {
    /// The setup that `run` does first: install what is missing, keep what is there.
    pub(crate) fn for_run(source: SourceArgs, listen: ListenArgs) -> SetupOptions {
        SetupOptions {
            source,
            upgrade: false,
            archive: None,
            sha256: None,
            reinstall: false,
            regenerate_config: false,
            listen,
            tls: TlsArgs::default(),
            auth: None,
            for_run: true,
        }
    }

    fn run(&self, layout: &Layout) -> Result<String> {
        let version = self.requested_version(layout)?;
        let platform = match (Platform::host(version), &self.archive) {
            (Ok(platform), _) => platform,
            // A nats-server built for this host by other means can still be installed.
            (Err(_), Some(_)) => Platform::unlisted_host(),
            (Err(e), None) => return Err(e),
        };
        if self.archive.is_none()
            && !self.source.mirror.starts_with("http://")
            && !self.source.mirror.starts_with("https://")
        {
            bail!(
                "--mirror `{}` is not an http:// or https:// URL",
                self.source.mirror
            );
        }
        let asset = Asset { version, platform };
        // Everything this setup creates goes again if it fails, the lock file included.
        let mut created = Created::default();
        created.dir_all(&layout.dir)?;
        let lock_existed = layout.setup_lock().exists();
        let lock = files::lock(&layout.setup_lock(), "setup")?;
        if !lock_existed {
            created.file(&layout.setup_lock());
        }
        let outcome = self.set_up(layout, asset, &mut created);
        drop(lock);
        if outcome.is_ok() {
            created.keep();
        }
        outcome
    }

    fn set_up(&self, layout: &Layout, asset: Asset, created: &mut Created) -> Result<String> {
        let version = asset.version;
        let token = match secrets::existing(&layout.env_file())? {
            Some(token) => Existing(token),
            None => {
                refuse_new_token_beside_running_server(layout)?;
                New(secrets::generate()?)
            }
        };
        let archive = self.archive.as_deref().map(crate::util::paths::from_user);
        let source = match &archive {
            Some(path) => Source::Archive(path),
            None => Source::Mirror(&self.source.mirror),
        };
        let request = Request {
            asset,
            source,
            sha256: self.sha256.clone(),
            reinstall: self.reinstall,
            config_replaced: self.regenerate_config,
            quiet: self.for_run,
            token: token.value(),
        };
        let installed = ensure(layout, &request).context("cannot install nats-server")?;

        self.write_config(layout, version, created)?;
        for dir in [layout.jetstream_dir(), layout.logs_dir()] {
            created.dir_all(&dir)?;
        }
        server_accepts_config(&layout.binary(), layout, token.value())?;
        if !self.for_run {
            eprintln!(
                "`{}` is valid (checked by nats-server -t)",
                show(&layout.config())
            );
        }
        // The token last: a setup that failed before has written none.
        match &token {
            New(value) => {
                secrets::create(&layout.env_file(), value)?;
                created.file(&layout.env_file());
                eprintln!(
                    "created `{}` with a new token (readable by you only)",
                    show(&layout.env_file())
                );
            }
            Existing(_) if !self.for_run => {
                eprintln!("kept the token in `{}`", show(&layout.env_file()))
            }
            Existing(_) => {}
        }
        if !self.for_run {
            self.say_what_is_stale(layout, version, installed)?;
        }
        Ok(token.value().to_string())
    }

    /// What the user may not expect: a server that runs another version than the one just
    /// installed, and an installed version that is not the one this checkout pins.
    fn say_what_is_stale(
        &self,
        layout: &Layout,
        version: Version,
        installed: Installed,
    ) -> Result<()> {
        if let Installed::New {
            replaced: Some(old),
        } = installed
            && old != version
            && Running::now(layout)? != Running::Nothing
        {
            eprintln!(
                "the server that runs is still v{old}: `cargo xtask restart` runs v{version}"
            );
        }
        let pinned = Version::default_version();
        if version != pinned && self.source.version.is_none() && self.archive.is_none() {
            eprintln!(
                "this checkout pins v{pinned} (`xtask/pins/version`); `cargo xtask setup \
                 --upgrade` installs it"
            );
        }
        Ok(())
    }

    /// `--version`, else the version in `--archive`'s official file name, else the pinned one
    /// with `--upgrade`, else the installed version, else the pinned one.
    fn requested_version(&self, layout: &Layout) -> Result<Version> {
        let named = self
            .archive
            .as_ref()
            .and_then(|path| release::version_in_file_name(&path.file_name()?.to_string_lossy()));
        match (self.source.version, named) {
            (Some(asked), Some(named)) if asked != named => {
                bail!("--version {asked} contradicts the archive's name, which says {named}")
            }
            (_, Some(named)) if self.upgrade && named != Version::default_version() => bail!(
                "--upgrade installs v{}, but the archive's name says v{named}",
                Version::default_version()
            ),
            (None, None) if self.archive.is_some() => bail!(
                "cannot tell which version `{}` holds from its name: pass --version 2.10.N",
                self.archive.as_deref().unwrap_or(Path::new("")).display()
            ),
            (asked, named) => {
                let installed = || (!self.upgrade).then(|| manifest_version(layout)).flatten();
                Ok(asked
                    .or(named)
                    .or_else(installed)
                    .unwrap_or_else(Version::default_version))
            }
        }
    }

    /// Writes the config if there is none, or again with `--regenerate-config`: from the
    /// template, on the host and ports of the config there is unless options name others.
    /// TLS options switch an unedited config; its certificates are issued first.
    fn write_config(&self, layout: &Layout, version: Version, created: &mut Created) -> Result<()> {
        let path = layout.config();
        let existing = match fs::read_to_string(&path) {
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", show(&path))),
            Ok(existing) => Some(existing),
        };
        let configured = existing.as_deref().map(config::read_listen);
        let mut listen = match &configured {
            Some(configured) => self.listen.over(configured),
            None => self.listen.listen(),
        };
        listen.tls = self.tls(layout, &listen, version, created)?;
        listen.jwt = match self.auth {
            Some(mode) => mode == AuthMode::Jwt,
            None => listen.jwt,
        };
        if listen.jwt {
            AuthDir::of(layout).ensure(created)?;
        }
        let rendered = config::render(&listen);
        let Some(existing) = existing else {
            write_atomically(&path, rendered.as_bytes())?;
            created.file(&path);
            eprintln!("wrote `{}`", show(&path));
            return Ok(());
        };
        if existing == rendered {
            if !self.for_run {
                eprintln!("`{}` is up to date", show(&path))
            }
            return Ok(());
        }
        let configured = configured.unwrap_or_default();
        let switched = listen.tls != configured.tls || listen.jwt != configured.jwt;
        if self.regenerate_config {
            let backup = files::back_up(&path)?;
            write_atomically(&path, rendered.as_bytes())?;
            eprintln!(
                "rewrote `{}`; the old one is `{}`",
                show(&path),
                show(&backup)
            );
            return self.say_restart(layout, switched);
        }
        let differences = self.listen.differences(&configured);
        if !differences.is_empty() {
            bail!(
                "`{}` differs from what you ask for: {}; run `cargo xtask setup \
                 --regenerate-config` with these options to rewrite it (the old file is \
                 kept), or edit it",
                show(&path),
                differences.join(", ")
            );
        }
        if switched {
            if config::is_edited(&existing) {
                bail!(
                    "`{}` has edits of yours, so setup does not switch its TLS or its auth: \
                     add --regenerate-config to rewrite it from the template (the old file is \
                     kept beside it), or edit it yourself (see the README)",
                    show(&path)
                );
            }
            write_atomically(&path, rendered.as_bytes())?;
            eprintln!(
                "`{}` now serves {}, {}",
                show(&path),
                match &listen.tls {
                    None => "plaintext".to_string(),
                    Some(tls) if tls.verify =>
                        "TLS on every listener, and clients must show a certificate".to_string(),
                    Some(_) => "TLS on every listener".to_string(),
                },
                if listen.jwt {
                    "to users of its accounts (each with its credentials)"
                } else {
                    "to clients with the token"
                }
            );
            return self.say_restart(layout, true);
        }
        if !self.for_run {
            eprintln!(
                "kept `{}` with your edits (`--regenerate-config` would rewrite it from the \
                 template, on the same host and ports, and keep a copy)",
                show(&path)
            );
        }
        Ok(())
    }

    /// After a switch of TLS, a running server still serves as it started.
    fn say_restart(&self, layout: &Layout, switched: bool) -> Result<()> {
        if switched && Running::now(layout)? != Running::Nothing {
            eprintln!(
                "the server that runs still serves as it started: `cargo xtask restart` applies \
                 the change"
            );
        }
        Ok(())
    }

    /// The TLS the config of `listen` is to have, its certificates issued or renewed first:
    /// what the options ask for, else what the config has. A config that names certificates
    /// of its own keeps them.
    fn tls(
        &self,
        layout: &Layout,
        listen: &Listen,
        version: Version,
        created: &mut Created,
    ) -> Result<Option<Tls>> {
        let configured = listen.tls.as_ref();
        let wanted = self.tls.wanted();
        if !wanted.unwrap_or(configured.is_some()) {
            return Ok(None);
        }
        let dir = TlsDir::of(layout);
        let (verify, first) = match wanted {
            Some(_) => (self.tls.tls_verify, self.tls.tls_first),
            None => (
                configured.is_some_and(|tls| tls.verify),
                configured.is_some_and(|tls| tls.handshake_first),
            ),
        };
        if first && version.patch < 4 {
            bail!(
                "--tls-first needs nats-server 2.10.4 or later (`handshake_first` on the client \
                 port), and v{version} is installed: add --version 2.10.4 or later, or leave \
                 --tls-first out"
            );
        }
        let ours = dir.config(SERVER, &layout.dir, verify, first);
        if let Some(configured) = configured
            && wanted.is_none()
            && (&configured.cert_file, &configured.key_file) != (&ours.cert_file, &ours.key_file)
        {
            Own::of_config(layout, configured).check_still_valid()?;
            return Ok(Some(configured.clone()));
        }
        if let Some(cert) = &self.tls.tls_cert {
            return self.own_tls(layout, listen, cert, first, created).map(Some);
        }
        if let Some(configured) = configured
            && !self.tls.tls
            && (&configured.cert_file, &configured.key_file) != (&ours.cert_file, &ours.key_file)
        {
            bail!(
                "`{}` serves a certificate of yours (`{}`): give --tls-cert and --tls-key (and \
                 --tls-ca) again with these options to keep it, or add --tls to serve the local \
                 CA's instead",
                show(&layout.config()),
                configured.cert_file
            );
        }
        created.dir_all(&dir.dir)?;
        if !self.tls.tls_name.is_empty() {
            dir.record_names(&self.tls.tls_name)?;
        }
        dir.ensure_server(SERVER, &listen.host, self.for_run)?;
        if verify {
            if dir.ensure(CLIENT, Role::Client, &client_names())? {
                eprintln!(
                    "issued `{}` for you and the checks: clients must show it (key `{}`, \
                     readable by you only)",
                    show(&dir.cert(CLIENT)),
                    show(&dir.key(CLIENT))
                );
            } else if !self.for_run {
                eprintln!("kept `{}`", show(&dir.cert(CLIENT)));
            }
        }
        Ok(Some(ours))
    }
}

impl SetupOptions {
    /// The TLS of a certificate of yours (`--tls-cert`, `--tls-key`, `--tls-ca`), checked
    /// first as clients will check it, for the names clients connect to.
    fn own_tls(
        &self,
        layout: &Layout,
        listen: &Listen,
        cert: &Path,
        first: bool,
        created: &mut Created,
    ) -> Result<Tls> {
        if self.tls.tls_verify {
            bail!(
                "--tls-verify issues client certificates from the local CA, which cannot go \
                 with --tls-cert: leave --tls-verify out, or serve the local CA's certificates \
                 (`cargo xtask setup --tls --tls-verify`) where clients must show one"
            );
        }
        // Absolute: the config names them wherever the server starts.
        let from_user = |path: &Path| {
            crate::util::paths::normal(&crate::util::paths::invocation_dir().join(path))
        };
        let own = Own {
            cert: from_user(cert),
            key: from_user(self.tls.tls_key.as_deref().unwrap_or(Path::new(""))),
            ca: self.tls.tls_ca.as_deref().map(from_user),
        };
        let dir = TlsDir::of(layout);
        // What clients connect to: the names given, else the address listened on when other
        // machines reach it.
        let mut names = self.tls.tls_name.clone();
        if names.is_empty() && is_network_address(&listen.host) {
            names.push(listen.host.clone());
        }
        own.check(&names)?;
        if !self.tls.tls_name.is_empty() {
            created.dir_all(&dir.dir)?;
            dir.record_names(&self.tls.tls_name)?;
        }
        eprintln!(
            "`{}` serves {} (its key `{}`), checked: it goes with its key, chains to {}, is \
             valid now{}",
            show(&own.cert),
            if names.is_empty() {
                "this machine".to_string()
            } else {
                names.join(", ")
            },
            show(&own.key),
            own.ca
                .as_deref()
                .map_or("a public CA".to_string(), |ca| format!("`{}`", show(ca))),
            if names.is_empty() {
                String::new()
            } else {
                " and covers those names".to_string()
            }
        );
        Ok(own.config(first))
    }
}

/// The token a setup works with: the one in `.env.nats`, or a new one, written only once the
/// rest has succeeded.
enum Token {
    Existing(String),
    New(String),
}
use Token::{Existing, New};

impl Token {
    fn value(&self) -> &str {
        match self {
            Existing(token) | New(token) => token,
        }
    }
}

/// A server of this checkout that runs checks the token it started with: a new one in
/// `.env.nats` would lock every client out of it.
fn refuse_new_token_beside_running_server(layout: &Layout) -> Result<()> {
    let what = match Running::now(layout)? {
        Running::Nothing => return Ok(()),
        Running::Single { pid } => format!("nats-server of this checkout runs (pid {pid})"),
        Running::Cluster { running, .. } => {
            format!("this checkout's cluster runs ({})", running.join(", "))
        }
    };
    bail!(
        "`{}` is missing, but {what} with the token it started with: a new token written now \
         would lock every client out of it. `cargo xtask token rotate` writes a new token and \
         restarts the server with it; or `cargo xtask stop` first",
        show(&layout.env_file())
    )
}

//! A checkout's accounts and users, for `setup --auth jwt`: NATS's decentralized auth, in
//! `infrastructure/nats/auth/`. An operator (`operator.jwt`, its seed `operator.nk`) signs
//! each account (`accounts/NAME.jwt`, `accounts/NAME.nk`), and each account signs its users,
//! whose credentials are standard `.creds` files (`users/ACCOUNT/NAME.creds`). The config
//! includes `resolver.conf`: the operator, the system account, and every account's JWT
//! (`resolver: MEMORY`, so a reload applies a change). Seeds and credentials are written
//! atomically and readable by their owner only; no seed is ever printed.

use std::fs;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde_json::json;
use xtask_probe::nkeys::{KeyPair, Kind};

use super::jwt::{self, Claims};
use crate::layout::Layout;
use crate::util::files::{Created, write_atomically};
use crate::util::paths::show;

/// The system account: the server's own, whose users ask every server how it is.
pub(crate) const SYSTEM: &str = "SYS";
/// The application account, with JetStream.
pub(crate) const APP: &str = "APP";
/// The system account's user, with which the xtask's checks ask the servers.
pub(crate) const SYSTEM_USER: &str = "sys";
/// The application account's first user: what `env`, `exec` and `smoke` connect as.
pub(crate) const DEFAULT_USER: &str = "app";

/// The line of the config that includes the accounts: its presence is what `--auth jwt` is.
pub(crate) const INCLUDE: &str = "include \"auth/resolver.conf\"";

/// The auth directory of a checkout.
#[derive(Debug, Clone)]
pub(crate) struct AuthDir {
    pub(crate) dir: PathBuf,
}

impl AuthDir {
    pub(crate) fn of(layout: &Layout) -> AuthDir {
        AuthDir {
            dir: layout.dir.join("auth"),
        }
    }

    fn operator_seed(&self) -> PathBuf {
        self.dir.join("operator.nk")
    }

    pub(crate) fn operator_jwt(&self) -> PathBuf {
        self.dir.join("operator.jwt")
    }

    fn account_seed(&self, account: &str) -> PathBuf {
        self.dir.join("accounts").join(format!("{account}.nk"))
    }

    pub(crate) fn account_jwt(&self, account: &str) -> PathBuf {
        self.dir.join("accounts").join(format!("{account}.jwt"))
    }

    /// The credentials of `user` of `account`.
    pub(crate) fn creds(&self, account: &str, user: &str) -> PathBuf {
        self.dir
            .join("users")
            .join(account)
            .join(format!("{user}.creds"))
    }

    /// What the config includes: the operator, the system account and every account's JWT.
    pub(crate) fn resolver(&self) -> PathBuf {
        self.dir.join("resolver.conf")
    }

    /// The operator, the system account with its user and the application account with its
    /// first user, each made unless it is there; then `resolver.conf` written again. Says what
    /// it made.
    pub(crate) fn ensure(&self, created: &mut Created) -> Result<()> {
        created.dir_all(&self.dir)?;
        // Only you look inside: it holds every seed.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot restrict `{}`", show(&self.dir)))?;
        }
        for dir in [self.dir.join("accounts"), self.dir.join("users")] {
            created.dir_all(&dir)?;
        }
        let (operator, system) = match self.read_seed(&self.operator_seed(), Kind::Operator)? {
            Some(operator) => {
                let system = self
                    .read_seed(&self.account_seed(SYSTEM), Kind::Account)?
                    .with_context(|| {
                        format!(
                            "`{}` is missing beside the operator's seed: the operator's JWT names \
                             that account, so it cannot be made again; move `{}` away and run \
                             setup again for new accounts and users",
                            show(&self.account_seed(SYSTEM)),
                            show(&self.dir)
                        )
                    })?;
                (operator, system)
            }
            None if self.operator_jwt().exists() || self.account_seed(SYSTEM).exists() => {
                bail!(
                    "`{}` is missing, and the accounts it signed are in `{}`: new keys would \
                     replace them all. Put the operator's seed back; or, for new accounts and \
                     users (every credentials file made again), move `{}` away and run this again",
                    show(&self.operator_seed()),
                    show(&self.dir),
                    show(&self.dir)
                );
            }
            None => {
                let operator = KeyPair::generate(Kind::Operator)?;
                let system = KeyPair::generate(Kind::Account)?;
                // The seeds first: a JWT never stands without the key that signed it.
                write_atomically(&self.account_seed(SYSTEM), system.seed().as_bytes())?;
                write_atomically(&self.operator_seed(), operator.seed().as_bytes())?;
                let claims = Claims {
                    subject: operator.public_key(),
                    name: "cargo xtask".into(),
                    issued_at: now(),
                    expires: None,
                    nats: json!({
                        "system_account": system.public_key(),
                        "type": "operator",
                        "version": 2,
                    }),
                };
                write_atomically(
                    &self.operator_jwt(),
                    jwt::encode(&operator, &claims)?.as_bytes(),
                )?;
                eprintln!(
                    "made an operator and its system account in `{}` (their seeds readable \
                         by you only)",
                    show(&self.dir)
                );
                (operator, system)
            }
        };
        self.ensure_account(&operator, SYSTEM, Some(&system))?;
        self.ensure_account(&operator, APP, None)?;
        self.ensure_user(SYSTEM, SYSTEM_USER)?;
        self.ensure_user(APP, DEFAULT_USER)?;
        write_atomically(&self.resolver(), self.render_resolver()?.as_bytes())
    }

    /// The seed in `path`, if it is there: None when it is missing; an error when it is not a
    /// seed of `kind`.
    fn read_seed(&self, path: &std::path::Path, kind: Kind) -> Result<Option<KeyPair>> {
        let text = match fs::read_to_string(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", show(path))),
            Ok(text) => text,
        };
        let pair = KeyPair::from_seed(&text)
            .with_context(|| format!("`{}` holds no seed that can be read", show(path)))?;
        if pair.kind() != kind {
            bail!(
                "`{}` holds the seed of a {}",
                show(path),
                pair.kind().name()
            );
        }
        Ok(Some(pair))
    }

    /// Account `name` signed by `operator`, made (with `pair`, or a new key) unless there.
    fn ensure_account(&self, operator: &KeyPair, name: &str, pair: Option<&KeyPair>) -> Result<()> {
        if self.account_jwt(name).is_file() && self.account_seed(name).is_file() {
            return Ok(());
        }
        let new;
        let pair = match (
            pair,
            self.read_seed(&self.account_seed(name), Kind::Account)?,
        ) {
            (Some(pair), _) => pair,
            (None, Some(read)) => {
                new = read;
                &new
            }
            (None, None) => {
                new = KeyPair::generate(Kind::Account)?;
                write_atomically(&self.account_seed(name), new.seed().as_bytes())?;
                &new
            }
        };
        let mut limits = json!({
            "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
            "wildcards": true, "conn": -1, "leaf": -1,
        });
        // JetStream for applications; the system account has none.
        if name != SYSTEM {
            for key in ["mem_storage", "disk_storage", "streams", "consumer"] {
                limits[key] = json!(-1);
            }
        }
        let claims = Claims {
            subject: pair.public_key(),
            name: name.to_string(),
            issued_at: now(),
            expires: None,
            nats: json!({
                "limits": limits,
                "default_permissions": {"pub": {}, "sub": {}},
                "type": "account",
                "version": 2,
            }),
        };
        write_atomically(
            &self.account_jwt(name),
            jwt::encode(operator, &claims)?.as_bytes(),
        )?;
        eprintln!("made account {name} (`{}`)", show(&self.account_jwt(name)));
        Ok(())
    }

    /// User `name` of `account`, with every permission and no expiry, unless there.
    fn ensure_user(&self, account: &str, name: &str) -> Result<()> {
        let path = self.creds(account, name);
        if path.is_file() {
            return Ok(());
        }
        let signer = self
            .read_seed(&self.account_seed(account), Kind::Account)?
            .with_context(|| format!("account {account} has no seed here"))?;
        let user = KeyPair::generate(Kind::User)?;
        let claims = Claims {
            subject: user.public_key(),
            name: name.to_string(),
            issued_at: now(),
            expires: None,
            nats: json!({
                "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
                "type": "user", "version": 2,
            }),
        };
        let token = jwt::encode(&signer, &claims)?;
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", show(dir)))?;
        }
        write_atomically(&path, jwt::creds(&token, &user.seed()).as_bytes())?;
        eprintln!(
            "made user {name} of {account}: `{}` (readable by you only)",
            show(&path)
        );
        Ok(())
    }

    /// `resolver.conf`: the operator's JWT (by path, relative to the config's directory), the
    /// system account, and every account's JWT preloaded.
    pub(crate) fn render_resolver(&self) -> Result<String> {
        let read = |path: PathBuf| {
            fs::read_to_string(&path).with_context(|| format!("cannot read `{}`", show(&path)))
        };
        let operator = jwt::decode(&read(self.operator_jwt())?, Kind::Operator)
            .with_context(|| format!("`{}` cannot be used", show(&self.operator_jwt())))?;
        let system = operator.claims.nats["system_account"]
            .as_str()
            .context("the operator's JWT names no system account")?
            .to_string();
        let mut preload = Vec::new();
        for name in self.accounts()? {
            let text = read(self.account_jwt(&name))?;
            let account = jwt::decode(&text, Kind::Operator)
                .with_context(|| format!("`{}` cannot be used", show(&self.account_jwt(&name))))?;
            if account.issuer != operator.claims.subject {
                bail!(
                    "`{}` was signed by another operator than `{}`'s",
                    show(&self.account_jwt(&name)),
                    show(&self.operator_jwt())
                );
            }
            preload.push(format!(
                "  # {name}\n  {}: \"{}\"",
                account.claims.subject,
                text.trim()
            ));
        }
        Ok(format!(
            "# The accounts of `cargo xtask setup --auth jwt`, included by nats-server.conf.\n\
             # Written by the xtask whenever an account changes: edits here are lost.\n\
             operator: \"auth/operator.jwt\"\n\
             system_account: \"{system}\"\n\
             resolver: MEMORY\n\
             resolver_preload: {{\n{}\n}}\n",
            preload.join("\n")
        ))
    }

    /// The accounts here, by name, the system account first.
    pub(crate) fn accounts(&self) -> Result<Vec<String>> {
        let dir = self.dir.join("accounts");
        let mut names: Vec<String> = fs::read_dir(&dir)
            .with_context(|| format!("cannot read `{}`", show(&dir)))?
            .flatten()
            .filter_map(|entry| {
                let file = entry.file_name().to_string_lossy().into_owned();
                Some(file.strip_suffix(".jwt")?.to_string())
            })
            .collect();
        names.sort_by_key(|name| (name != SYSTEM, name.clone()));
        Ok(names)
    }

    /// How a client of the xtask proves it is `user` of `account`: its credentials.
    pub(crate) fn client_auth(&self, account: &str, user: &str) -> Result<xtask_probe::Auth> {
        xtask_probe::Auth::from_creds_file(&self.creds(account, user))
    }
}

/// How the xtask's own clients (readiness probes, checks) prove who they are to the server of
/// `layout`: as the system account's user when its config has accounts, else with `token`.
pub(crate) fn checks(layout: &Layout, token: &str) -> Result<xtask_probe::Auth> {
    if super::config::has_accounts(layout) {
        AuthDir::of(layout).client_auth(SYSTEM, SYSTEM_USER)
    } else {
        Ok(xtask_probe::Auth::Token(token.to_string()))
    }
}

/// Before the single server of `layout` starts: the streams of the token's clients (account
/// `$G`) and those of the application account are the same streams, moved to where the auth
/// the config has looks for them. Without accounts, nats-server keeps its clients' streams in
/// `$G`; with them, in the directory of the application account's public key; a server that
/// finds streams of an account it does not know reports them unrecoverable (`/healthz` 503).
/// Says what it moved.
pub(crate) fn place_streams(layout: &Layout) -> Result<()> {
    let jwt = super::config::has_accounts(layout);
    let auth = AuthDir::of(layout);
    let Ok(app) = fs::read_to_string(auth.account_jwt(APP)) else {
        return Ok(());
    };
    let app = jwt::decode(&app, Kind::Operator)
        .with_context(|| format!("`{}` cannot be used", show(&auth.account_jwt(APP))))?
        .claims
        .subject;
    let accounts = layout.jetstream_dir().join("jetstream");
    let (global, application) = (accounts.join("$G"), accounts.join(&app));
    let (from, to, what) = match jwt {
        true => (&global, &application, "account APP, the default user's"),
        false => (&application, &global, "the token's clients (account $G)"),
    };
    // Streams of an account no key here stands for (one made before `auth/` was made
    // anew) would be reported unrecoverable: say so rather than start without them.
    let known: Vec<String> = auth
        .accounts()?
        .iter()
        .filter_map(|name| fs::read_to_string(auth.account_jwt(name)).ok())
        .filter_map(|text| jwt::decode(&text, Kind::Operator).ok())
        .map(|account| account.claims.subject)
        .collect();
    for entry in fs::read_dir(&accounts).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let an_account_key = name.len() == 56 && name.starts_with('A');
        if an_account_key && !known.contains(&name) {
            bail!(
                "`{}` holds the streams of an account that `{}` no longer has (its keys were \
                 made anew): the server cannot serve them. Put the old `auth/` back, or move \
                 that directory away (with the server stopped) to start without them",
                show(&entry.path()),
                show(&auth.dir)
            );
        }
    }
    if !from.exists() {
        return Ok(());
    }
    if to.exists() {
        bail!(
            "`{}` and `{}` both hold streams: the token's clients' (account $G) and account \
             APP's are the same streams, and only one of them can be served; move one of the \
             two directories away (with the server stopped)",
            show(&global),
            show(&application)
        );
    }
    crate::util::files::rename_patiently(from, to).with_context(|| {
        format!(
            "cannot move `{}` to `{}`: stop whatever holds it open (a server started without \
             the xtask, a virus scanner), then run this again",
            show(from),
            show(to)
        )
    })?;
    eprintln!("the streams of `{}` now belong to {what}", show(from));
    Ok(())
}

/// The default user's credentials of the checkout `layout`, when its config has accounts.
pub(crate) fn default_creds(layout: &Layout) -> Option<PathBuf> {
    super::config::has_accounts(layout).then(|| AuthDir::of(layout).creds(APP, DEFAULT_USER))
}

/// Seconds since the Unix epoch.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_and_users_are_made_once_and_chain_to_the_operator() {
        let temp = tempfile::tempdir().unwrap();
        let auth = AuthDir {
            dir: temp.path().join("auth"),
        };
        let mut created = Created::default();
        auth.ensure(&mut created).unwrap();
        created.keep();
        let operator = jwt::decode(
            &fs::read_to_string(auth.operator_jwt()).unwrap(),
            Kind::Operator,
        )
        .unwrap();
        assert_eq!(operator.issuer, operator.claims.subject, "self-signed");
        let app = jwt::decode(
            &fs::read_to_string(auth.account_jwt(APP)).unwrap(),
            Kind::Operator,
        )
        .unwrap();
        assert_eq!(app.issuer, operator.issuer);
        assert_eq!(app.claims.nats["limits"]["disk_storage"], -1);
        assert_eq!(app.claims.nats["limits"]["conn"], -1);
        let xtask_probe::Auth::User {
            jwt: user_jwt,
            seed,
        } = auth.client_auth(APP, DEFAULT_USER).unwrap()
        else {
            panic!("no user")
        };
        let user = jwt::decode(&user_jwt, Kind::Account).unwrap();
        assert_eq!(user.issuer, app.claims.subject);
        assert_eq!(
            KeyPair::from_seed(&seed).unwrap().public_key(),
            user.claims.subject
        );
        assert_eq!(user.claims.nats["subs"], -1);

        let resolver = fs::read_to_string(auth.resolver()).unwrap();
        assert!(resolver.contains(&format!(
            "system_account: \"{}\"",
            operator.claims.nats["system_account"].as_str().unwrap()
        )));
        assert!(resolver.contains(&app.claims.subject));
        assert_eq!(auth.accounts().unwrap(), [SYSTEM, APP]);

        // Again: nothing new, not a byte.
        let tree = || {
            let mut files = Vec::new();
            let mut dirs = vec![auth.dir.clone()];
            while let Some(dir) = dirs.pop() {
                for entry in fs::read_dir(dir).unwrap().flatten() {
                    match entry.file_type().unwrap().is_dir() {
                        true => dirs.push(entry.path()),
                        false => files.push((entry.path(), fs::read(entry.path()).unwrap())),
                    }
                }
            }
            files.sort();
            files
        };
        let before = tree();
        assert_eq!(
            before.len(),
            9,
            "{:?}",
            before.iter().map(|f| &f.0).collect::<Vec<_>>()
        );
        auth.ensure(&mut Created::default()).unwrap();
        assert_eq!(tree(), before);

        #[cfg(unix)]
        for path in [
            auth.operator_seed(),
            auth.account_seed(APP),
            auth.creds(APP, DEFAULT_USER),
        ] {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", path.display());
        }

        // Without the operator's seed, nothing is made anew: it would replace every account.
        fs::remove_file(auth.operator_seed()).unwrap();
        let e = auth.ensure(&mut Created::default()).unwrap_err();
        assert!(
            format!("{e:#}").contains("new keys would replace them all"),
            "{e:#}"
        );
        assert_eq!(tree().len(), 8);
    }
}

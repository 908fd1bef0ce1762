//! The server's secret: `NATS_TOKEN` in `.env.nats`, created once, readable by its owner only.

use std::fs;
use std::io::{ErrorKind, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::util::paths::show;

pub(crate) const TOKEN_VAR: &str = "NATS_TOKEN";
/// The password cluster nodes present to each other on their routes.
pub(crate) const ROUTE_PASSWORD_VAR: &str = "NATS_ROUTE_PASSWORD";
/// The routes a cluster node solicits, as a config array: they carry the password.
pub(crate) const ROUTES_VAR: &str = "NATS_ROUTES";

/// What a server gets in its environment, and nothing but the server and the checks: the
/// token and, for a cluster node, the route password and the routes that carry it.
#[derive(Clone)]
pub(crate) struct ServerEnv {
    pub(crate) token: String,
    pub(crate) cluster: Option<RouteSecrets>,
}

#[derive(Clone)]
pub(crate) struct RouteSecrets {
    pub(crate) password: String,
    /// `["nats-route://route:<password>@127.0.0.1:6222", ...]`
    pub(crate) routes: String,
}

/// Never the secrets themselves: a debug print must not leak them.
impl std::fmt::Debug for ServerEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerEnv")
            .field("token", &"<secret>")
            .field("cluster", &self.cluster.as_ref().map(|_| "<secret routes>"))
            .finish()
    }
}

impl ServerEnv {
    pub(crate) fn single(token: String) -> ServerEnv {
        ServerEnv {
            token,
            cluster: None,
        }
    }

    /// The variables to set, by name.
    pub(crate) fn vars(&self) -> Vec<(&'static str, &str)> {
        let mut vars = vec![(TOKEN_VAR, self.token.as_str())];
        if let Some(cluster) = &self.cluster {
            vars.push((ROUTE_PASSWORD_VAR, cluster.password.as_str()));
            vars.push((ROUTES_VAR, cluster.routes.as_str()));
        }
        vars
    }
}

/// 256 bits from the OS's secure random source, as `prefix` and 64 hex digits.
fn secret(prefix: &str) -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("the OS's random source failed: {e}"))?;
    Ok(format!("{prefix}{}", crate::util::files::hex(&bytes)))
}

/// The route password in `path`, added to it (atomically, owner-only like the token) if it
/// has none yet. It is URL-safe: it goes into route URLs as it is.
pub(crate) fn ensure_route_password(path: &Path) -> Result<String> {
    let text = read(path)?;
    let vars = parse(&text).with_context(|| format!("`{}` is malformed", path.display()))?;
    if let Some((_, password)) = vars.iter().find(|(k, _)| k == ROUTE_PASSWORD_VAR) {
        if !readable_by_server(password) {
            bail!(
                "{ROUTE_PASSWORD_VAR} in `{}` must start with a letter and hold only letters, \
                 digits, `_` and `-`; delete its line and run again for a new one",
                path.display()
            );
        }
        return Ok(password.clone());
    }
    let password = generate_route_password()?;
    let separator = if text.ends_with('\n') || text.is_empty() {
        ""
    } else {
        "\n"
    };
    let text = format!(
        "{text}{separator}# Password of the routes between this checkout's cluster nodes.\n\
         {ROUTE_PASSWORD_VAR}={password}\n"
    );
    // Owner-only on Unix, like the file it replaces: the temporary file is created 0600.
    crate::util::files::write_atomically(path, text.as_bytes())?;
    Ok(password)
}

/// 256 bits from the OS's secure random source, as `nats_` and 64 hex digits. nats-server
/// parses `$NATS_TOKEN` as a config value, so a token starting with a digit would be read as a
/// number (and fail); the prefix keeps it a string, and hex needs no quoting anywhere.
pub(crate) fn generate() -> Result<String> {
    secret("nats_")
}

/// 256 bits from the OS's secure random source, as `route_` and 64 hex digits: URL-safe.
pub(crate) fn generate_route_password() -> Result<String> {
    secret("route_")
}

/// Whether nats-server will read `token` from the environment as the very same string.
fn readable_by_server(token: &str) -> bool {
    token.starts_with(|c: char| c.is_ascii_alphabetic())
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !matches!(
            token.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off"
        )
}

/// The token in `path`, checked, if the file exists; None if it does not.
pub(crate) fn existing(path: &Path) -> Result<Option<String>> {
    match fs::metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read `{}`", path.display())),
        Ok(_) => {
            let token = load(path)?;
            warn_if_readable_by_others(path);
            Ok(Some(token))
        }
    }
}

/// Writes `token` to a new `path` through a temporary file beside it (owner-only on Unix; on
/// Windows it inherits the ACL of the user's checkout), moved into place only if `path` does
/// not exist: the file is never half-written and never overwritten.
pub(crate) fn create(path: &Path, token: &str) -> Result<()> {
    let write = || -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut file = tempfile::NamedTempFile::new_in(dir)?;
        let text = format!("{HEADER}{TOKEN_VAR}={token}\n");
        file.write_all(text.as_bytes())?;
        file.as_file().sync_all()?;
        file.persist_noclobber(path).map_err(|e| e.error)?;
        Ok(())
    };
    write().with_context(|| format!("cannot create `{}`", path.display()))
}

/// Replaces the token in `path` with `token`, atomically: every other line (the route
/// password, comments) is kept, and the old file stays until the new one is in place. A
/// missing file is written anew.
pub(crate) fn replace(path: &Path, token: &str) -> Result<()> {
    let text = match fs::read_to_string(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => HEADER.to_string(),
        read => read.with_context(|| format!("cannot read `{}`", path.display()))?,
    };
    parse(&text).with_context(|| format!("`{}` is malformed", path.display()))?;
    let mut replaced = false;
    let mut lines: Vec<String> = text
        .lines()
        .map(|line| {
            let bare = line
                .trim_start()
                .strip_prefix("export ")
                .unwrap_or(line.trim_start());
            match bare.split_once('=') {
                Some((key, _)) if key.trim() == TOKEN_VAR && !replaced => {
                    replaced = true;
                    let export = if line.trim_start().starts_with("export ") {
                        "export "
                    } else {
                        ""
                    };
                    format!("{export}{TOKEN_VAR}={token}")
                }
                _ => line.to_string(),
            }
        })
        .collect();
    if !replaced {
        lines.push(format!("{TOKEN_VAR}={token}"));
    }
    // Owner-only on Unix, like the file it replaces: the temporary file is created 0600.
    crate::util::files::write_atomically(path, format!("{}\n", lines.join("\n")).as_bytes())
}

/// The first line of a new `.env.nats`.
const HEADER: &str = "# Secret for the NATS server of this checkout; never commit it.\n";

/// The text of `.env.nats`; when it is missing, the error says what to run.
fn read(path: &Path) -> Result<String> {
    match fs::read_to_string(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => bail!(
            "`{}` is missing, and with it the token: `cargo xtask setup` writes a new one when no \
             server of this checkout runs; if one runs, it keeps the token it started with, and \
             `cargo xtask token rotate` writes a new one and restarts it with it",
            show(path)
        ),
        read => read.with_context(|| format!("cannot read `{}`", path.display())),
    }
}

/// Reads the token from `path`.
pub(crate) fn load(path: &Path) -> Result<String> {
    let text = read(path)?;
    let vars = parse(&text).with_context(|| format!("`{}` is malformed", path.display()))?;
    let token = vars
        .into_iter()
        .find(|(k, _)| k == TOKEN_VAR)
        .map(|(_, v)| v);
    match token {
        Some(token) if readable_by_server(&token) => Ok(token),
        Some(_) => bail!(
            "{TOKEN_VAR} in `{}` must start with a letter and hold only letters, digits, `_` and `-` \
             (nats-server reads it as a config value); delete the file and run `cargo xtask setup` for a new one",
            path.display()
        ),
        None => bail!(
            "`{}` has no {TOKEN_VAR}: add a line `{TOKEN_VAR}=<secret>`, or delete the file \
             and run `cargo xtask setup` to make a new one",
            path.display()
        ),
    }
}

/// Parses `KEY=value` lines with `#` comments and blank lines; a value may be quoted.
/// Errors name the line but never show it: it may hold the secret.
pub(crate) fn parse(text: &str) -> Result<Vec<(String, String)>> {
    crate::util::lines::parse(text, "NAME=value", |line| {
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (key, value) = line.split_once('=')?;
        let key = key.trim();
        let valid_key = !key.is_empty()
            && !key.starts_with(|c: char| c.is_ascii_digit())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        Some((key.to_string(), unquote(value.trim())?)).filter(|_| valid_key)
    })
}

fn unquote(value: &str) -> Option<String> {
    for quote in ['"', '\''] {
        if let Some(rest) = value.strip_prefix(quote) {
            return rest
                .strip_suffix(quote)
                .filter(|inner| !inner.contains(quote))
                .map(str::to_string);
        }
    }
    (!value.contains(char::is_whitespace)).then(|| value.to_string())
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "warning: `{}` can be read by other users (mode {:o}); `chmod 600` it",
            path.display(),
            meta.permissions().mode() & 0o777
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_gets_its_secrets_by_name_and_a_debug_print_shows_none() {
        let single = ServerEnv::single("nats_token".into());
        assert_eq!(single.vars(), [(TOKEN_VAR, "nats_token")]);
        let node = ServerEnv {
            token: "nats_token".into(),
            cluster: Some(RouteSecrets {
                password: "route_secret".into(),
                routes: "[\"nats-route://route:route_secret@127.0.0.1:6222\"]".into(),
            }),
        };
        assert_eq!(
            node.vars(),
            [
                (TOKEN_VAR, "nats_token"),
                (ROUTE_PASSWORD_VAR, "route_secret"),
                (
                    ROUTES_VAR,
                    "[\"nats-route://route:route_secret@127.0.0.1:6222\"]"
                ),
            ]
        );
        let printed = format!("{node:?}");
        assert!(printed.starts_with("ServerEnv"), "{printed}");
        assert!(
            !printed.contains("nats_token") && !printed.contains("route_secret"),
            "{printed}"
        );
    }

    #[test]
    fn tokens_are_256_bits_of_hex_and_differ() {
        let (a, b) = (generate().unwrap(), generate().unwrap());
        let hex = a.strip_prefix("nats_").unwrap();
        assert_eq!(hex.len(), 64);
        assert!(hex.bytes().all(|c| c.is_ascii_hexdigit()));
        assert!(readable_by_server(&a));
        assert_ne!(a, b);
    }

    #[test]
    fn a_replaced_token_keeps_every_other_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env.nats");
        let before =
            "# secret\nexport NATS_TOKEN=nats_old\n# routes\nNATS_ROUTE_PASSWORD=route_x\n";
        fs::write(&path, before).unwrap();
        replace(&path, "nats_new").unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "# secret\nexport NATS_TOKEN=nats_new\n# routes\nNATS_ROUTE_PASSWORD=route_x\n"
        );
        assert_eq!(load(&path).unwrap(), "nats_new");
    }

    #[test]
    fn env_lines_parse_with_comments_export_and_quotes() {
        let vars = parse("# c\n\nNATS_TOKEN=abc\nexport A_1 = \"x y\"\nB='q'\nEMPTY=\n").unwrap();
        let want = [
            ("NATS_TOKEN", "abc"),
            ("A_1", "x y"),
            ("B", "q"),
            ("EMPTY", ""),
        ];
        assert_eq!(vars, want.map(|(k, v)| (k.to_string(), v.to_string())));
    }

    #[test]
    fn malformed_env_lines_are_named_without_their_content() {
        for (text, line) in [
            ("NATS_TOKEN=ok\nsecret-without-name\n", 2),
            ("1X=a\n", 1),
            ("A=\"open\n", 1),
            ("A=two words\n", 1),
            ("=value\n", 1),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert_eq!(err, format!("line {line} is not `NAME=value`"), "{text:?}");
        }
    }

    #[test]
    fn the_env_file_is_created_once_and_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env.nats");
        assert_eq!(existing(&path).unwrap(), None);
        let token = generate().unwrap();
        create(&path, &token).unwrap();
        assert!(readable_by_server(&token));
        assert!(create(&path, "nats_other").is_err(), "never overwritten");
        assert_eq!(existing(&path).unwrap(), Some(token));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[test]
    fn tokens_the_server_would_misread_are_refused() {
        for good in ["nats_0a", "abc", "a-b_C9"] {
            assert!(readable_by_server(good), "{good}");
        }
        for bad in [
            "", "4abc", "1e5", "a,b", "a b", "tok.en", "true", "Off", "\"q\"",
        ] {
            assert!(!readable_by_server(bad), "{bad}");
        }
    }

    #[test]
    fn the_route_password_is_added_once_beside_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env.nats");
        create(&path, &generate().unwrap()).unwrap();
        let token = load(&path).unwrap();
        let password = ensure_route_password(&path).unwrap();
        assert!(
            password.starts_with("route_") && password.len() == 70,
            "{password}"
        );
        assert!(readable_by_server(&password));
        assert_eq!(ensure_route_password(&path).unwrap(), password);
        assert_eq!(load(&path).unwrap(), token, "the token is kept");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn a_missing_env_file_is_named_with_what_to_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env.nats");
        for err in [
            load(&path).unwrap_err(),
            ensure_route_password(&path).unwrap_err(),
        ] {
            let err = format!("{err:#}");
            assert!(err.contains(".env.nats` is missing"), "{err}");
            assert!(
                err.contains("`cargo xtask setup` writes a new one"),
                "{err}"
            );
            assert!(err.contains("`cargo xtask token rotate`"), "{err}");
            assert!(!err.contains("No such file"), "{err}");
        }
    }

    #[test]
    fn a_token_replaced_in_a_missing_env_file_is_written_anew() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env.nats");
        replace(&path, "nats_new").unwrap();
        assert_eq!(load(&path).unwrap(), "nats_new");
        assert!(fs::read_to_string(&path).unwrap().starts_with("# Secret"));
    }

    #[test]
    fn an_env_file_without_the_token_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env.nats");
        fs::write(&path, "OTHER=1\n").unwrap();
        let err = format!("{:#}", existing(&path).unwrap_err());
        assert!(err.contains(".env.nats` has no NATS_TOKEN"), "{err}");
        fs::write(&path, "NATS_TOKEN=1\nbroken line\n").unwrap();
        let err = format!("{:#}", load(&path).unwrap_err());
        assert!(
            err.contains(".env.nats` is malformed: line 2 is not `NAME=value`"),
            "{err}"
        );
    }
}

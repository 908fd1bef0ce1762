//! `cargo xtask env`: where this checkout's server is, for scripts and an application's tests.

use anyhow::{Result, bail};
use serde_json::{Map, Value};

use crate::install;
use crate::layout::Layout;
use crate::lifecycle;
use crate::server::secrets;
use crate::server::tls::ClientFiles;

/// Print NATS_URL (and NATS_TOKEN with --show-token) as lines a shell runs to export them.
///
/// For a TLS server, NATS_CA names the CA file to trust, and under mutual TLS NATS_CERT and
/// NATS_KEY the client certificate and its key (paths: the key stays in its file).
///
/// For a running cluster NATS_URL lists every node, separated by commas, as NATS clients
/// accept it; without a running server, the address of its config. Each value is quoted for
/// the format's shell. To export them into the shell you type in, so that the programs it
/// starts (an application, its tests) see them:
///
///   sh, bash, zsh   eval "$(cargo xtask env --show-token)"
///   fish            cargo xtask env --format fish --show-token | source
///   PowerShell      cargo xtask env --show-token | Out-String | Invoke-Expression
///   cmd.exe         for /f "delims=" %i in ('cargo xtask env --format cmd --show-token') do %i
///   a .env file     cargo xtask env --format dotenv --show-token > .env
///
/// The format is sh by default, powershell on Windows: Git Bash on Windows needs `--format
/// sh`, pwsh elsewhere `--format powershell`. In a batch file, write `%%i` for `%i`. A `.env`
/// file with the token is a secret: keep it out of git.
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct Env {
    /// Print the token too (it is never printed otherwise).
    #[arg(long)]
    show_token: bool,

    /// How to print the variables [default: sh; powershell on Windows]
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<Format>,

    /// The same as `--format json`.
    #[arg(long, conflicts_with = "format")]
    json: bool,
}

/// How the variables are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// `export NAME='value'`, for sh, bash and zsh
    Sh,
    /// `set -gx NAME 'value'`
    Fish,
    /// `$env:NAME = 'value'`
    Powershell,
    /// `set "NAME=value"`, for cmd.exe's `for /f`
    Cmd,
    /// `NAME=value`, quoted only when needed, for `.env` loaders
    Dotenv,
    /// One JSON object
    Json,
}

impl Format {
    /// The shell a user of this OS most likely types in.
    fn native() -> Format {
        if cfg!(windows) {
            Format::Powershell
        } else {
            Format::Sh
        }
    }
}

impl Env {
    pub(crate) fn run(&self, layout: &Layout) -> Result<()> {
        install::require_installed(layout, "env")?;
        let url = lifecycle::client_urls(layout)?.join(",");
        // Under accounts, the default user's credentials (a path: the seed stays in its file).
        let creds = crate::server::auth::default_creds(layout)
            .map(|path| path.to_string_lossy().into_owned());
        if creds.is_some() && self.show_token {
            bail!(
                "`{}` has accounts and users, and no token: NATS_CREDS names the default user's \
                 credentials (leave --show-token out)",
                crate::util::paths::show(&layout.config())
            );
        }
        let token = if self.show_token {
            Some(secrets::load(&layout.env_file())?)
        } else {
            None
        };
        let mut vars = vec![("NATS_URL", url.as_str())];
        if let Some(token) = &token {
            vars.push((secrets::TOKEN_VAR, token.as_str()));
        }
        if let Some(creds) = &creds {
            vars.push(("NATS_CREDS", creds.as_str()));
        }
        let tls: Vec<(&str, String)> = ClientFiles::of(layout)?
            .iter()
            .flat_map(ClientFiles::env)
            .map(|(name, path)| (name, path.to_string_lossy().into_owned()))
            .collect();
        vars.extend(tls.iter().map(|(name, path)| (*name, path.as_str())));
        let format = match (self.json, self.format) {
            (true, _) => Format::Json,
            (false, format) => format.unwrap_or_else(Format::native),
        };
        print!("{}", render(format, &vars)?);
        Ok(())
    }
}

/// The text that sets `vars` in `format`, one line per variable (one JSON object for json),
/// each value quoted for its shell.
fn render(format: Format, vars: &[(&str, &str)]) -> Result<String> {
    let line: fn(&str, &str) -> Result<String> = match format {
        Format::Json => {
            let object: Map<String, Value> = vars
                .iter()
                .map(|(name, value)| (name.to_string(), Value::from(*value)))
                .collect();
            return Ok(format!("{}\n", Value::Object(object)));
        }
        Format::Sh => |name, value| Ok(format!("export {name}={}", sh_quoted(value))),
        Format::Fish => |name, value| Ok(format!("set -gx {name} {}", fish_quoted(value))),
        Format::Powershell => {
            |name, value| Ok(format!("$env:{name} = {}", powershell_quoted(value)))
        }
        Format::Cmd => |name, value| Ok(format!("set \"{name}={}\"", cmd_value(name, value)?)),
        Format::Dotenv => |name, value| Ok(format!("{name}={}", dotenv_value(name, value)?)),
    };
    vars.iter()
        .map(|(name, value)| Ok(line(name, value)? + "\n"))
        .collect()
}

/// Single quotes keep everything literal in sh; a quote inside ends them, is escaped, and
/// opens them again.
fn sh_quoted(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// fish's single quotes know two escapes: `\\` and `\'`.
fn fish_quoted(value: &str) -> String {
    format!("'{}'", value.replace('\\', r"\\").replace('\'', r"\'"))
}

/// PowerShell's single quotes double a quote inside, and count the typographic ones as quotes
/// too.
fn powershell_quoted(value: &str) -> String {
    let mut quoted = String::from("'");
    for c in value.chars() {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}') {
            quoted.push(c);
        }
        quoted.push(c);
    }
    quoted.push('\'');
    quoted
}

/// cmd.exe has no escape that works both in `for /f` and in a batch file for a quote, `%` or
/// `!` (with delayed expansion), and no line can hold a line break: such a value is refused.
fn cmd_value<'a>(name: &str, value: &'a str) -> Result<&'a str> {
    if let Some(c) = value
        .chars()
        .find(|c| matches!(c, '"' | '%' | '!' | '\r' | '\n'))
    {
        bail!("{name} holds {c:?}, which cmd.exe cannot be given safely: use another --format");
    }
    Ok(value)
}

/// Plain when every character means the same to every `.env` loader; else in single quotes
/// (literal for python-dotenv, Node's dotenv and Docker Compose), or double quotes when the
/// value holds a single quote and nothing a loader would expand.
fn dotenv_value(name: &str, value: &str) -> Result<String> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_.:/@,+=%~?&[]".contains(c);
    if value.chars().all(plain) {
        Ok(value.to_string())
    } else if value.contains(['\r', '\n']) {
        bail!("{name} holds a line break, which a .env line cannot: use another --format")
    } else if !value.contains('\'') {
        Ok(format!("'{value}'"))
    } else if !value.contains(['"', '\\', '$', '`']) {
        Ok(format!("\"{value}\""))
    } else {
        bail!("{name} holds both kinds of quote, which no .env quoting keeps: use another --format")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value no URL or token has, to see each format quote what it must.
    const AWKWARD: &str = r#"it's "a b" \ $HOME"#;

    fn one(format: Format, value: &str) -> Result<String> {
        render(format, &[("NATS_URL", value)])
    }

    #[test]
    fn ordinary_values_are_quoted_for_every_shell() {
        let vars = [
            ("NATS_URL", "nats://127.0.0.1:4222"),
            ("NATS_TOKEN", "nats_0a"),
        ];
        let expected = [
            (
                Format::Sh,
                "export NATS_URL='nats://127.0.0.1:4222'\nexport NATS_TOKEN='nats_0a'\n",
            ),
            (
                Format::Fish,
                "set -gx NATS_URL 'nats://127.0.0.1:4222'\nset -gx NATS_TOKEN 'nats_0a'\n",
            ),
            (
                Format::Powershell,
                "$env:NATS_URL = 'nats://127.0.0.1:4222'\n$env:NATS_TOKEN = 'nats_0a'\n",
            ),
            (
                Format::Cmd,
                "set \"NATS_URL=nats://127.0.0.1:4222\"\nset \"NATS_TOKEN=nats_0a\"\n",
            ),
            (
                Format::Dotenv,
                "NATS_URL=nats://127.0.0.1:4222\nNATS_TOKEN=nats_0a\n",
            ),
            (
                Format::Json,
                "{\"NATS_TOKEN\":\"nats_0a\",\"NATS_URL\":\"nats://127.0.0.1:4222\"}\n",
            ),
        ];
        for (format, text) in expected {
            assert_eq!(render(format, &vars).unwrap(), text, "{format:?}");
        }
    }

    #[test]
    fn quotes_spaces_and_backslashes_are_quoted_for_each_shell() {
        assert_eq!(
            one(Format::Sh, AWKWARD).unwrap(),
            "export NATS_URL='it'\\''s \"a b\" \\ $HOME'\n"
        );
        assert_eq!(
            one(Format::Fish, AWKWARD).unwrap(),
            "set -gx NATS_URL 'it\\'s \"a b\" \\\\ $HOME'\n"
        );
        assert_eq!(
            one(Format::Powershell, "it's ‘a b’ $HOME").unwrap(),
            "$env:NATS_URL = 'it''s ‘‘a b’’ $HOME'\n"
        );
        assert_eq!(
            one(Format::Json, AWKWARD).unwrap(),
            "{\"NATS_URL\":\"it's \\\"a b\\\" \\\\ $HOME\"}\n"
        );
        assert_eq!(
            one(Format::Cmd, "a b & c").unwrap(),
            "set \"NATS_URL=a b & c\"\n"
        );
        for refused in ["a\"b", "50%", "a!b", "a\nb"] {
            let err = one(Format::Cmd, refused).unwrap_err().to_string();
            assert!(err.contains("cmd.exe cannot be given safely"), "{err}");
        }
        assert_eq!(
            one(Format::Dotenv, "a b #c").unwrap(),
            "NATS_URL='a b #c'\n"
        );
        assert_eq!(one(Format::Dotenv, "it's").unwrap(), "NATS_URL=\"it's\"\n");
        assert!(one(Format::Dotenv, AWKWARD).is_err());
        assert!(one(Format::Dotenv, "a\nb").is_err());
    }

    /// What sh itself makes of the line: the value, byte for byte.
    #[cfg(unix)]
    #[test]
    fn sh_reads_back_the_very_value() {
        let line = one(Format::Sh, AWKWARD).unwrap();
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{line}printf %s \"$NATS_URL\""))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&output.stdout), AWKWARD);
    }
}

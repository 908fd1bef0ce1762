//! natscli's context files: where natscli keeps them, which ones this checkout's xtask wrote,
//! and keeping those pointed at what runs with the token it runs with.
//!
//! natscli keeps contexts in `$XDG_CONFIG_HOME/nats/context/NAME.json`, else
//! `~/.config/nats/context/NAME.json`, on every OS (not in the OS's own config directory), and
//! the selected one's name in `nats/context.txt` beside it. A context written here says so in
//! its description, which names the checkout: only those are ever changed or removed.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

use crate::layout::Layout;
use crate::lifecycle;
use crate::util::files::write_atomically;
use crate::util::paths::show;

/// Whose contexts are whose: the description written into this checkout's.
pub(crate) struct Owner {
    pub(crate) description: String,
}

impl Owner {
    pub(crate) fn of(layout: &Layout, root: Option<&Path>) -> Owner {
        let place = root.unwrap_or(&layout.dir);
        Owner {
            description: format!(
                "NATS server of {}, written by its `cargo xtask context`",
                std::path::absolute(place)
                    .unwrap_or_else(|_| place.to_path_buf())
                    .display()
            ),
        }
    }

    pub(crate) fn wrote(&self, context: &str) -> bool {
        serde_json::from_str::<Value>(context)
            .is_ok_and(|c| c["description"] == self.description.as_str())
    }
}

/// Puts `token` into every natscli context `owner` wrote; returns their names.
pub(crate) fn update_token(owner: &Owner, token: &str) -> Result<Vec<String>> {
    let mut updated = Vec::new();
    for (name, path) in written_by(owner) {
        set(&path, "token", token)?;
        updated.push(name);
    }
    Ok(updated)
}

/// Points every natscli context `owner` wrote at the servers that run now, saying so of each
/// one that changes: after a switch between the single server and the cluster, `nats
/// --context` reaches what runs. A context that cannot be updated is named, not an error.
pub(crate) fn follow(owner: &Owner, layout: &Layout) {
    let written = written_by(owner);
    if written.is_empty() {
        return;
    }
    let url = match lifecycle::client_urls(layout) {
        Ok(urls) => urls.join(","),
        Err(e) => {
            eprintln!("warning: the natscli contexts keep their URLs: {e:#}");
            return;
        }
    };
    for (name, path) in written {
        match set(&path, "url", &url) {
            Ok(true) => eprintln!("the natscli context `{name}` now reaches {url}"),
            Ok(false) => {}
            Err(e) => eprintln!(
                "warning: cannot point the natscli context `{name}` (`{}`) at {url}: {e:#}",
                path.display()
            ),
        }
    }
}

/// Sets `key` of the natscli context in `path` to `value`, rewriting the file only if that
/// changes it; says whether it did.
fn set(path: &Path, key: &str, value: &str) -> Result<bool> {
    let mut context: Value = serde_json::from_str(&fs::read_to_string(path)?)?;
    if context[key] == value {
        return Ok(false);
    }
    context[key] = json!(value);
    write_atomically(path, serde_json::to_string_pretty(&context)?.as_bytes())?;
    Ok(true)
}

/// The natscli contexts `owner` wrote, by name, with their files.
pub(crate) fn written_by(owner: &Owner) -> Vec<(String, PathBuf)> {
    let Ok(dir) = contexts_dir() else {
        return Vec::new();
    };
    let mut written: Vec<(String, PathBuf)> = fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .filter(|path| fs::read_to_string(path).is_ok_and(|text| owner.wrote(&text)))
        .map(|path| {
            let name = path.file_stem().unwrap_or_default().to_string_lossy();
            (name.into_owned(), path)
        })
        .collect();
    written.sort();
    written
}

/// The name a context gets (`name`, checked, else the checkout directory's) and its file.
pub(crate) fn context_file(name: Option<&str>, checkout: &Path) -> Result<(String, PathBuf)> {
    let name = match name {
        Some(name) => checked_name(name)?,
        None => default_name(checkout),
    };
    let path = contexts_dir()?.join(format!("{name}.json"));
    Ok((name, path))
}

/// Writes `context` into its file `path` (made by [`context_file`]), readable by its owner
/// only, in a directory only they can enter when this creates it; with `select`, makes it
/// natscli's selected context. Says what it did.
pub(crate) fn write(path: &Path, context: &Value, select: bool) -> Result<()> {
    let name = path.file_stem().unwrap_or_default().to_string_lossy();
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    write_atomically(path, serde_json::to_string_pretty(context)?.as_bytes())?;
    eprintln!(
        "wrote the natscli context `{name}` (`{}`): `nats --context {name} ...` reaches this \
         checkout's server",
        path.display()
    );
    if select {
        write_atomically(&selection_file(dir), name.as_bytes())?;
        eprintln!("selected it: plain `nats ...` uses it now");
    }
    Ok(())
}

/// Removes the natscli context in `path`, and natscli's selection of it, saying so.
pub(crate) fn remove(path: &Path) -> Result<()> {
    let name = path.file_stem().unwrap_or_default().to_string_lossy();
    fs::remove_file(path).with_context(|| format!("cannot remove `{}`", path.display()))?;
    let selected = selection_file(path.parent().unwrap_or(Path::new(".")));
    let was_selected = fs::read_to_string(&selected).is_ok_and(|s| s.trim() == name);
    if was_selected {
        fs::remove_file(&selected)
            .with_context(|| format!("cannot remove `{}`", selected.display()))?;
    }
    eprintln!(
        "removed the natscli context `{name}` (`{}`)",
        path.display()
    );
    if was_selected {
        eprintln!("it was natscli's selected context: none is selected now");
    }
    Ok(())
}

/// Where natscli keeps its contexts, on every OS.
fn contexts_dir() -> Result<PathBuf> {
    let config = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => std::env::home_dir()
            .context("cannot tell the home directory, where natscli keeps its contexts")?
            .join(".config"),
    };
    Ok(config.join("nats").join("context"))
}

/// natscli's record of the selected context: `nats/context.txt`.
fn selection_file(contexts: &Path) -> PathBuf {
    contexts.with_file_name("context.txt")
}

/// A name that stays a file in the contexts' directory.
fn checked_name(name: &str) -> Result<String> {
    let plain = !name.is_empty()
        && !name.contains(['/', '\\'])
        && !name.contains("..")
        && !name.starts_with('.')
        && !name.contains(char::is_whitespace);
    if !plain {
        bail!(
            "`{name}` cannot name a context: it must be a plain file name, without `/`, `\\`, \
             `..` or spaces, and not start with `.`"
        );
    }
    Ok(name.to_string())
}

/// The checkout directory's name, made a plain file name.
fn default_name(root: &Path) -> String {
    let base = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name.trim_matches('-').to_string();
    if name.is_empty() {
        "nats-dev".to_string()
    } else {
        name
    }
}

/// Creates `dir` and what leads to it, each new directory owner-only on Unix.
fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_private_dir(parent)?;
    }
    match private_dir_builder().create(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            Err(e).with_context(|| format!("cannot create `{}`", show(dir)))
        }
        _ => Ok(()),
    }
}

#[cfg(unix)]
fn private_dir_builder() -> fs::DirBuilder {
    use std::os::unix::fs::DirBuilderExt;
    let mut builder = fs::DirBuilder::new();
    builder.mode(0o700);
    builder
}

#[cfg(not(unix))]
fn private_dir_builder() -> fs::DirBuilder {
    fs::DirBuilder::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_file_names() {
        for bad in ["", "a/b", "a\\b", "..", "../x", ".hidden", "x y"] {
            assert!(checked_name(bad).is_err(), "{bad}");
        }
        assert_eq!(checked_name("my-app_1").unwrap(), "my-app_1");
        assert_eq!(default_name(Path::new("/src/My App")), "My-App");
        assert_eq!(default_name(Path::new("/")), "nats-dev");
    }
}

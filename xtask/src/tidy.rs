//! The layering the tree shows, kept by tests (as rust-analyzer keeps its tidy checks): only
//! `main.rs` uses the tasks, no task uses another, and the leaves under `util/` use nothing of
//! the rest of the crate.

use std::fs;
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir` but this one, with its text.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("src/tidy.rs") {
            let text = fs::read_to_string(&path).unwrap();
            found.push((path, text));
        }
    }
    found
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The modules `text` names right after `prefix` (`crate::`, `super::`): `tasks` in
/// `crate::tasks::x`, and `tasks` and `util` in `crate::{tasks, util::files}`.
fn named_after<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    let name = |rest: &'a str| {
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        &rest[..end]
    };
    let mut names = Vec::new();
    for (at, _) in text.match_indices(prefix) {
        if text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &text[at + prefix.len()..];
        match rest.strip_prefix('{') {
            Some(group) => {
                // The names at the group's top level, up to its closing brace.
                let mut depth = 0;
                let mut start = 0;
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => {
                            names.push(name(group[start..i].trim_start()));
                            break;
                        }
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            names.push(name(group[start..i].trim_start()));
                            start = i + 1;
                        }
                        _ => {}
                    }
                }
            }
            None => names.push(name(rest)),
        }
    }
    names.retain(|n| !n.is_empty());
    names
}

#[test]
fn only_main_uses_the_tasks() {
    let users: Vec<PathBuf> = sources(&src())
        .into_iter()
        .filter(|(path, _)| !path.ends_with("main.rs") || path.parent() != Some(&src()))
        .filter(|(_, text)| named_after(text, "crate::").contains(&"tasks"))
        .map(|(path, _)| path)
        .collect();
    assert_eq!(users, Vec::<PathBuf>::new(), "these use crate::tasks");
}

#[test]
fn no_task_uses_another() {
    let tasks = src().join("tasks");
    let names: Vec<String> = fs::read_dir(&tasks)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| !p.ends_with("mod.rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for (path, text) in sources(&tasks) {
        let relative = path.strip_prefix(&tasks).unwrap();
        let own = relative.iter().next().unwrap().to_string_lossy();
        let own = own.trim_end_matches(".rs");
        if own == "mod" {
            continue;
        }
        for named in named_after(&text, "super::") {
            assert!(
                named == own || !names.iter().any(|n| n == named),
                "`{}` uses the task `{named}`: what two tasks share belongs below them",
                relative.display()
            );
        }
    }
}

#[test]
fn util_uses_nothing_of_the_rest() {
    for (path, text) in sources(&src().join("util")) {
        for named in named_after(&text, "crate::") {
            assert_eq!(named, "util", "`{}` uses crate::{named}", path.display());
        }
    }
}

#[test]
fn the_checks_see_what_they_look_for() {
    assert_eq!(
        named_after("use crate::tasks::x; a_crate::util; super::run", "crate::"),
        ["tasks"]
    );
    assert_eq!(named_after("use super::run;", "super::"), ["run"]);
    assert_eq!(
        named_after("use crate::{tasks, util::{files, units}, x};", "crate::"),
        ["tasks", "util", "x"]
    );
}

//! Line-based text files (`SHA256SUMS`, `.env.nats`): one entry a line, with blank lines and
//! `#` comments allowed.

use anyhow::{Result, bail};

/// Parses every line that is neither blank nor a comment with `parse`, trimmed. A line it
/// rejects is an error naming the line's number and the `expected` form, never its content:
/// it may hold a secret.
pub(crate) fn parse<T>(
    text: &str,
    expected: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>> {
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse(line) {
            Some(entry) => entries.push(entry),
            None => bail!("line {} is not `{expected}`", index + 1),
        }
    }
    Ok(entries)
}

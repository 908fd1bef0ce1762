//! Quantities as people read them.

use serde_json::Value;

/// A byte count for people: `1.5 MiB`.
pub(crate) fn bytes(value: &Value) -> String {
    let Some(n) = value.as_f64() else {
        return "?".to_string();
    };
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let power = if n < 1024.0 {
        0
    } else {
        ((n.log2() / 10.0) as usize).min(units.len() - 1)
    };
    let scaled = n / 1024f64.powi(power as i32);
    if power == 0 {
        format!("{} B", n.round())
    } else {
        format!("{scaled:.1} {}", units[power])
    }
}

/// A count and its noun, singular for one: `1 node`, `3 nodes`.
pub(crate) fn count(n: u64, noun: &str) -> String {
    format!("{n} {}", noun_for(n, noun))
}

/// A count from a JSON value, as [`count`] writes it; `?` when it is not a number.
pub(crate) fn counted(value: &Value, noun: &str) -> String {
    match value.as_u64() {
        Some(n) => count(n, noun),
        None => format!("? {noun}s"),
    }
}

/// The noun and the names it applies to: `node n2`, `nodes n2, n3`.
pub(crate) fn named<S: AsRef<str>>(noun: &str, names: &[S]) -> String {
    let list: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
    format!("{} {}", noun_for(list.len() as u64, noun), list.join(", "))
}

/// `is` for one, `are` for more (or none).
pub(crate) fn is_are(n: usize) -> &'static str {
    if n == 1 { "is" } else { "are" }
}

/// The noun as it goes with `n`: only regular plurals (`node`, `nodes`) are ever needed.
fn noun_for(n: u64, noun: &str) -> String {
    if n == 1 {
        noun.to_string()
    } else {
        format!("{noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(count(1, "node"), "1 node");
        assert_eq!(count(0, "stream"), "0 streams");
        assert_eq!(count(3, "message"), "3 messages");
        assert_eq!(counted(&json!(1), "consumer"), "1 consumer");
        assert_eq!(counted(&Value::Null, "consumer"), "? consumers");
        assert_eq!(
            format!("{} {} not running", named("node", &["n2"]), is_are(1)),
            "node n2 is not running"
        );
        assert_eq!(
            format!("{} {} not running", named("node", &["n2", "n3"]), is_are(2)),
            "nodes n2, n3 are not running"
        );
    }

    #[test]
    fn byte_counts_read_well() {
        assert_eq!(bytes(&json!(0)), "0 B");
        assert_eq!(bytes(&json!(1023)), "1023 B");
        assert_eq!(bytes(&json!(49.590_552)), "50 B");
        assert_eq!(bytes(&json!(1024)), "1.0 KiB", "the first KiB");
        assert_eq!(bytes(&json!(1536)), "1.5 KiB");
        assert_eq!(bytes(&json!(1073741824u64)), "1.0 GiB");
        assert_eq!(bytes(&json!(10737418240u64)), "10.0 GiB");
        // Past the largest unit, counted in it.
        assert_eq!(bytes(&json!(1u64 << 50)), "1024.0 TiB");
        assert_eq!(bytes(&Value::Null), "?");
    }
}

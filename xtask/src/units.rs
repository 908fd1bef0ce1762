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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn byte_counts_read_well() {
        assert_eq!(bytes(&json!(0)), "0 B");
        assert_eq!(bytes(&json!(1023)), "1023 B");
        assert_eq!(bytes(&json!(49.590_552)), "50 B");
        assert_eq!(bytes(&json!(1536)), "1.5 KiB");
        assert_eq!(bytes(&json!(1073741824u64)), "1.0 GiB");
        assert_eq!(bytes(&json!(10737418240u64)), "10.0 GiB");
        assert_eq!(bytes(&Value::Null), "?");
    }
}

//! One duration grammar for every ShiftGuard setting — check timeouts and windows, bakes, waits,
//! environment variables — mirrored by the CDK construct's validation (`cdk/lib/duration.ts`):
//!
//! - a whole number with a unit: `500ms`, `90s`, `5m`, `1h` (no space, no fraction, one unit);
//! - in JSON, a whole number (no unit) is milliseconds; in an environment variable, so is a bare
//!   whole number (`1500`).
//!
//! Anything else is an error naming the setting (`GRAMMAR` says what is expected). Callers bound
//! the value (a bake at most 7 days, a check timeout at most 15 minutes).

use std::time::Duration;

/// What a duration may look like, for error messages.
pub const GRAMMAR: &str = "a duration such as 500ms, 90s, 5m or 1h";

/// `500ms`, `90s`, `5m`, `1h`, or a bare whole number of milliseconds. `None` for anything else
/// (an unknown unit, a fraction, a sign, a space, an overflow).
pub fn parse(text: &str) -> Option<Duration> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if digits == 0 {
        return None;
    }
    let (number, unit) = text.split_at(digits);
    let n: u64 = number.parse().ok()?;
    let ms = match unit {
        "" | "ms" => Some(n),
        "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => None,
    }?;
    Some(Duration::from_millis(ms))
}

/// A JSON duration: a string in the grammar, or a whole number of milliseconds.
pub fn from_json(value: &serde_json::Value) -> Option<Duration> {
    match value {
        serde_json::Value::Number(n) => n.as_u64().map(Duration::from_millis),
        serde_json::Value::String(s) => parse(s),
        _ => None,
    }
}

/// The JSON Schema of a duration field: a string in the grammar, or whole milliseconds.
#[cfg(feature = "schema")]
pub fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "A duration: 500ms, 90s, 5m or 1h (a whole number with one unit), or a whole number of milliseconds",
        "anyOf": [
            {"type": "string", "pattern": "^\\s*[0-9]+(ms|s|m|h)?\\s*$"},
            {"type": "integer", "minimum": 0}
        ]
    })
}

/// The JSON Schema of a duration field bounded to `min_ms..=max_ms`: the integer branch carries the
/// bounds, and `x-shiftguard-duration` states them for the text form too (JSON Schema cannot bound
/// `"20m"`; the construct's validation reads the keyword, other validators ignore it).
#[cfg(feature = "schema")]
pub fn json_schema_within(min_ms: u64, max_ms: u64) -> schemars::Schema {
    let words = |ms: u64| text(Duration::from_millis(ms));
    schemars::json_schema!({
        "description": format!(
            "A duration from {} to {}: 500ms, 90s, 5m or 1h (a whole number with one unit), or a whole number of milliseconds",
            words(min_ms), words(max_ms)
        ),
        "anyOf": [
            {"type": "string", "pattern": "^\\s*[0-9]+(ms|s|m|h)?\\s*$"},
            {"type": "integer", "minimum": min_ms, "maximum": max_ms}
        ],
        "x-shiftguard-duration": {"minimum": min_ms, "maximum": max_ms}
    })
}

/// A duration in the grammar's largest whole unit (`900000` ms → `15m`), for messages.
pub fn text(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, size) in [("h", 3_600_000u128), ("m", 60_000), ("s", 1_000)] {
        if ms >= size && ms / size * size == ms {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// Serde for a `Duration` field written in the grammar (read: a string or a number of
/// milliseconds; written: `"<n>ms"`).
pub mod serde_text {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}ms", d.as_millis()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        super::from_json(&value).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "expected {} (or a whole number of milliseconds), got {value}",
                super::GRAMMAR
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grammar_table() {
        for (text, ms) in [
            ("500ms", Some(500)),
            ("0ms", Some(0)),
            ("90s", Some(90_000)),
            ("5m", Some(300_000)),
            ("1h", Some(3_600_000)),
            ("1500", Some(1_500)),
            (" 10s ", Some(10_000)),
            ("1.5s", None),
            ("-1s", None),
            ("10 s", None),
            ("10S", None),
            ("1d", None),
            ("5m30s", None),
            ("s", None),
            ("", None),
            ("18446744073709551615s", None),
            ("18446744073709551615", Some(u64::MAX)),
        ] {
            assert_eq!(parse(text), ms.map(Duration::from_millis), "{text:?}");
        }
    }

    #[test]
    fn json_numbers_are_milliseconds() {
        assert_eq!(
            from_json(&serde_json::json!(250)),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            from_json(&serde_json::json!("1h")),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(from_json(&serde_json::json!(-1)), None);
        assert_eq!(from_json(&serde_json::json!(1.5)), None);
        assert_eq!(from_json(&serde_json::json!(null)), None);
    }
}

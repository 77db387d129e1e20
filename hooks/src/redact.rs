//! Keeping configured secrets out of everything the hooks log or return.
//!
//! The checks read secrets (bearer tokens, API keys, HMAC secrets) from environment variables. An
//! endpoint may echo them back (a failing debug endpoint that dumps request headers), and a JSON
//! expectation's failure quotes the value it found: whatever a check observed passes through
//! [`Redactor::text`] / [`Redactor::value`] before it is logged or put in the summary.

use serde_json::Value;

/// The configured secret values, longest first (so that a secret containing another is replaced
/// whole).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Redactor {
    secrets: Vec<(String, String)>,
}

// Never print the secrets themselves, not even in a debug dump of the configuration.
impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Redactor {
    /// `(environment variable, value)` pairs; empty values are ignored.
    pub fn new(secrets: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut secrets: Vec<(String, String)> =
            secrets.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        secrets.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
        secrets.dedup_by(|a, b| a.1 == b.1);
        Redactor { secrets }
    }

    /// One redactor for the secrets of several.
    pub fn merged(all: &[Redactor]) -> Self {
        Redactor::new(all.iter().flat_map(|r| r.secrets.iter().cloned()))
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `text` with every secret — as written, and as it appears inside a JSON string — replaced
    /// by `[redacted:VARIABLE]`.
    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (var, secret) in &self.secrets {
            let marker = format!("[redacted:{var}]");
            out = out.replace(secret.as_str(), &marker);
            let escaped = serde_json::to_string(secret).unwrap_or_default();
            let escaped = escaped.trim_matches('"');
            if escaped != secret {
                out = out.replace(escaped, &marker);
            }
        }
        out
    }

    /// Every string (and object key) in `value`, redacted.
    pub fn value(&self, value: Value) -> Value {
        if self.is_empty() {
            return value;
        }
        match value {
            Value::String(s) => Value::String(self.text(&s)),
            Value::Array(items) => Value::Array(items.into_iter().map(|v| self.value(v)).collect()),
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| (self.text(&k), self.value(v)))
                    .collect(),
            ),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_replaced_wherever_they_appear() {
        let r = Redactor::new([
            ("TOKEN".to_string(), "s3cr\"et-token".to_string()),
            ("KEY".to_string(), "key-123".to_string()),
            ("EMPTY".to_string(), String::new()),
        ]);
        assert_eq!(
            r.text("Authorization: Bearer s3cr\"et-token, X-API-Key: key-123"),
            "Authorization: Bearer [redacted:TOKEN], X-API-Key: [redacted:KEY]"
        );
        // Inside a JSON body the quote is escaped.
        assert_eq!(
            r.text(r#"{"auth":"Bearer s3cr\"et-token"}"#),
            r#"{"auth":"Bearer [redacted:TOKEN]"}"#
        );
        assert_eq!(
            r.value(json!({"headers": {"x-api-key": "key-123"}, "n": 1, "key-123": ["key-123"]})),
            json!({"headers": {"x-api-key": "[redacted:KEY]"}, "n": 1, "[redacted:KEY]": ["[redacted:KEY]"]})
        );
        assert!(!format!("{r:?}").contains("key-123"));
    }

    #[test]
    fn a_secret_containing_another_is_replaced_whole() {
        let r = Redactor::new([
            ("SHORT".to_string(), "abc".to_string()),
            ("LONG".to_string(), "abcdef".to_string()),
        ]);
        assert_eq!(r.text("abcdef abc"), "[redacted:LONG] [redacted:SHORT]");
    }
}

//! What a plan's checks may read from `shift`'s environment, and where they may send it: a plan
//! arrives with the event, so only variables `SHIFT_ALLOWED_SECRETS` lists are read (never
//! `AWS_*`), and a secret a check sends goes only to the origin it is listed with, over https.

use crate::plan::Plan;
use crate::{ShiftConfig, ShiftError, ALLOWED_SECRETS_VAR};

/// Binds the plan's checks to the environment: only variables `SHIFT_ALLOWED_SECRETS` lists may
/// be read (the plan comes with the event: without the allow-list, a plan could send the
/// function's own credentials to any URL), never `AWS_*`.
pub(crate) fn bind_checks(
    plan: &mut Plan,
    config: &ShiftConfig,
) -> Result<hooks::redact::Redactor, ShiftError> {
    let allowed: Vec<&str> = config
        .environment
        .get(ALLOWED_SECRETS_VAR)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let env_pairs: Vec<(&str, &str)> = config
        .environment
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let allowed = AllowedSecrets::parse(&allowed);
    let mut redactors = Vec::new();
    for (field, set) in [
        ("rollout.checks.before", plan.checks_before.as_mut()),
        ("rollout.checks.after", plan.checks_after.as_mut()),
    ] {
        let Some(set) = set else { continue };
        for (check, var) in hooks::config::environment_read_by(set) {
            if var.starts_with("AWS_") || !allowed.names(&var) {
                return Err(ShiftError::InvalidPlan(format!(
                    "{field}: check {check:?} reads environment variable {var}, which {ALLOWED_SECRETS_VAR} does not list (a plan arrives with the event, so only variables the function's owner allows may be read; AWS_* never)"
                )));
            }
        }
        // A secret is sent only to the origin it was allowed for, over https (loopback aside).
        for (check, var, url) in hooks::config::sent_secrets(set) {
            let origin = origin_of(&url).ok_or_else(|| {
                ShiftError::InvalidPlan(format!(
                    "{field}: check {check:?} sends {var} to {url:?}, which is not an absolute http(s) URL"
                ))
            })?;
            if !origin.starts_with("https://") && !is_loopback(&origin) {
                return Err(ShiftError::InvalidPlan(format!(
                    "{field}: check {check:?} would send the secret {var} to {origin} over plain http: secrets go over https only (loopback aside)"
                )));
            }
            if !allowed.sends_to(&var, &origin) {
                return Err(ShiftError::InvalidPlan(format!(
                    "{field}: check {check:?} would send the secret {var} to {origin}, but {ALLOWED_SECRETS_VAR} allows it only to {}: list it as {var}@{origin} if that is intended",
                    allowed.origins_of(&var)
                )));
            }
        }
        redactors.push(
            hooks::config::bind_environment(set, &env_pairs[..], field)
                .map_err(|e| ShiftError::InvalidPlan(e.to_string()))?,
        );
    }
    Ok(hooks::redact::Redactor::merged(&redactors))
}

/// `SHIFT_ALLOWED_SECRETS`: `NAME` (a value a check compares, never sends: an artifact's
/// `fromEnv`) or `NAME@https://host[:port]` (a secret header or signing key, sent to that origin
/// only), comma-separated.
struct AllowedSecrets {
    entries: Vec<(String, Option<String>)>,
}

impl AllowedSecrets {
    fn parse(items: &[&str]) -> Self {
        AllowedSecrets {
            entries: items
                .iter()
                .map(|i| match i.split_once('@') {
                    Some((name, origin)) => (
                        name.trim().to_string(),
                        Some(origin.trim().trim_end_matches('/').to_ascii_lowercase()),
                    ),
                    None => (i.trim().to_string(), None),
                })
                .collect(),
        }
    }
    fn names(&self, var: &str) -> bool {
        self.entries.iter().any(|(n, _)| n == var)
    }
    fn sends_to(&self, var: &str, origin: &str) -> bool {
        self.entries
            .iter()
            .any(|(n, o)| n == var && o.as_deref() == Some(origin))
    }
    fn origins_of(&self, var: &str) -> String {
        let origins: Vec<&str> = self
            .entries
            .iter()
            .filter(|(n, _)| n == var)
            .filter_map(|(_, o)| o.as_deref())
            .collect();
        if origins.is_empty() {
            "no origin".into()
        } else {
            origins.join(", ")
        }
    }
}

/// `scheme://host[:port]`, lower-cased, of an absolute http(s) URL without user information.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some(format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

fn is_loopback(origin: &str) -> bool {
    let host = origin
        .split_once("://")
        .map_or("", |(_, a)| a)
        .trim_start_matches('[');
    host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("::1]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_go_only_to_their_origin_over_https() {
        assert_eq!(
            origin_of("https://Orders.example.com:8443/health?x=1").as_deref(),
            Some("https://orders.example.com:8443")
        );
        assert_eq!(origin_of("https://user@evil.example/"), None);
        assert_eq!(origin_of("ftp://x"), None);
        assert!(
            is_loopback("http://127.0.0.1:8080")
                && is_loopback("http://localhost:1")
                && is_loopback("http://[::1]:9")
        );
        assert!(
            !is_loopback("http://127example.com") || origin_of("http://127example.com").is_some()
        );
        let plan_with = |url: &str| {
            crate::plan::parse_plan(&json!({"shiftguard": "shift", "rollout": {"id": "r1",
                "target": {"type": "lambda-alias", "function": "f", "alias": "live", "newVersion": "2"},
                "steps": [{"weight": 100}],
                "checks": {"after": {"checks": [{"name": "h", "kind": "http", "url": url,
                    "secretHeaders": {"Authorization": "ORDERS_TOKEN"}, "timeout": "2s"}]}}}}))
            .unwrap()
        };
        let config = |allowed: &str| {
            ShiftConfig::from_vars(&[
                ("ORDERS_TOKEN".to_string(), "s3cr3t".to_string()),
                (ALLOWED_SECRETS_VAR.to_string(), allowed.to_string()),
            ])
            .unwrap()
        };
        let ok = config("ORDERS_TOKEN@https://orders.example.com");
        assert!(bind_checks(&mut plan_with("https://orders.example.com/health"), &ok).is_ok());
        for (url, allowed, why) in [
            (
                "https://evil.example/steal",
                "ORDERS_TOKEN@https://orders.example.com",
                "allows it only to https://orders.example.com",
            ),
            (
                "http://orders.example.com/health",
                "ORDERS_TOKEN@http://orders.example.com",
                "over plain http",
            ),
            (
                "https://orders.example.com/health",
                "ORDERS_TOKEN",
                "allows it only to no origin",
            ),
            (
                "https://orders.example.com/health",
                "OTHER@https://orders.example.com",
                "does not list",
            ),
        ] {
            let e = bind_checks(&mut plan_with(url), &config(allowed))
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{url} / {allowed}: {e}");
            assert!(!e.contains("s3cr3t"), "{e}");
        }
        let local = config("ORDERS_TOKEN@http://127.0.0.1:8080");
        assert!(bind_checks(&mut plan_with("http://127.0.0.1:8080/health"), &local).is_ok());
    }
}

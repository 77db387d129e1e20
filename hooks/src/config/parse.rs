//! A check set's text → a validated [`CheckSet`]: size and nesting limits, JSON or YAML, and every
//! field's bounds, each refusal naming the check and the field. The JSON Schema
//! (`cdk/schema/shiftguard.schema.json`) states the same bounds for the construct.

use super::limits::{validate_confidence, validate_window, MAX_CHECK_DURATION, MAX_RETRIES};
use super::*;

/// The largest checks file read: far above any real check set, far below what would slow start-up.
pub const MAX_CHECKS_BYTES: usize = 1024 * 1024;
/// The deepest nesting of `[`/`{` accepted (a check set needs about 6; brackets inside strings
/// count too, so the limit is generous).
pub const MAX_CHECKS_DEPTH: usize = 256;

/// Rejects what the YAML parser would take long to reject: it spends time quadratic in the
/// nesting depth (50,000 levels took 32 s, and the hook would never report). Every `[`/`{` counts,
/// inside strings and comments too: telling strings apart would need a YAML parser, and a stray
/// quote (`# don't`) would hide real nesting. Block-style nesting that deep cannot fit in the size
/// limit.
fn check_size_and_depth(text: &str) -> Result<(), String> {
    if text.len() > MAX_CHECKS_BYTES {
        return Err(format!(
            "is {} bytes; at most {MAX_CHECKS_BYTES} bytes are read",
            text.len()
        ));
    }
    let (mut depth, mut deepest) = (0usize, 0usize);
    for b in text.bytes() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > MAX_CHECKS_DEPTH {
                    return Err(format!(
                        "nests deeper than {MAX_CHECKS_DEPTH} levels of [ and {{: not a check set"
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Parses JSON or YAML and validates; errors name the check and field.
pub fn parse_checks(text: &str) -> Result<CheckSet, String> {
    check_size_and_depth(text)?;
    let value: serde_json::Value = serde_yaml_ng::from_str(text)
        .map_err(|e| format!("is neither valid JSON nor YAML: {e}"))?;
    checks_from_value(value)
}

/// A check set already parsed as JSON (a rollout plan's `checks`), with the same limits and
/// validation as [`parse_checks`] — without the YAML parser, which `shift` then does not link.
pub fn parse_checks_json(value: serde_json::Value) -> Result<CheckSet, String> {
    check_size_and_depth(&value.to_string())?;
    checks_from_value(value)
}

fn checks_from_value(value: serde_json::Value) -> Result<CheckSet, String> {
    let set: CheckSet = serde_path_to_error::deserialize(&value).map_err(|e| {
        let path = e.path().to_string();
        let name = check_name_at(&value, &path);
        let error = e.into_inner().to_string();
        let field = flattened_field(&value, &path, &error);
        format!("{path}{name}{field}: {error}")
    })?;
    if set.checks.is_empty() {
        return Err("checks: is empty: configure at least one check".into());
    }
    if set.concurrency == 0 {
        return Err("concurrency: must be at least 1".into());
    }
    for (i, check) in set.checks.iter().enumerate() {
        let at = format!("checks[{i}] ({:?})", check.name);
        if check.name.trim().is_empty() {
            return Err(format!("checks[{i}].name: is blank"));
        }
        if let Some(functions) = &check.functions {
            if functions.is_empty() {
                return Err(format!("{at}.functions: is empty: name at least one function, or leave the field out to run the check for every function"));
            }
            if let Some(j) = functions.iter().position(|f| f.trim().is_empty()) {
                return Err(format!(
                    "{at}.functions[{j}]: is blank: expected a function name or ARN"
                ));
            }
        }
        if set.checks[..i].iter().any(|o| {
            o.name == check.name && !disjoint(o.functions.as_deref(), check.functions.as_deref())
        }) {
            return Err(format!("{at}.name: is used by another check for the same function (a name may repeat only across checks whose `functions` lists do not overlap)"));
        }
        if check.timeout.is_zero() || check.timeout > MAX_CHECK_DURATION {
            return Err(format!(
                "{at}.timeout: expected more than 0 and at most 15m (a Lambda function's longest run), got {} ms",
                check.timeout.as_millis()
            ));
        }
        if check.backoff > MAX_CHECK_DURATION {
            return Err(format!(
                "{at}.backoff: expected at most 15m, got {} ms",
                check.backoff.as_millis()
            ));
        }
        if check.retries > MAX_RETRIES {
            return Err(format!(
                "{at}.retries: expected at most {MAX_RETRIES}, got {}",
                check.retries
            ));
        }
        if check.retries > 0 && matches!(check.kind, CheckKind::Compare(_) | CheckKind::Logs(_)) {
            return Err(format!(
                "{at}.retries: a {} check is not retried: its failure is a verdict on the data, and retrying until one attempt passes would turn a real difference into a pass",
                check.kind.name()
            ));
        }
        validate_kind(&check.kind).map_err(|p| format!("{at}.{p}"))?;
    }
    Ok(set)
}

/// Whether two checks' `functions` lists name no function in common (an absent list means every
/// function, so it overlaps everything).
fn disjoint(a: Option<&[String]>, b: Option<&[String]>) -> bool {
    let (Some(a), Some(b)) = (a, b) else {
        return false;
    };
    let name = shiftguard_common::codedeploy::function_name;
    !a.iter().any(|x| b.iter().any(|y| name(x) == name(y)))
}

/// The field an error inside a check's kind is about. A kind's settings are flattened into the
/// check, and serde loses the path there: the error ends at `checks[2]`. Its message ends in the
/// value it refused (`got "2d"`), so the one setting of that check holding that value is named.
fn flattened_field(value: &serde_json::Value, path: &str, error: &str) -> String {
    let Some(index) = path
        .strip_prefix("checks[")
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|i| i.parse::<usize>().ok())
    else {
        return String::new();
    };
    let Some(check) = value["checks"][index].as_object() else {
        return String::new();
    };
    let mut holding = check.iter().filter(|(key, v)| {
        *key != "name" && *key != "kind" && error.ends_with(&format!("got {v}"))
    });
    match (holding.next(), holding.next()) {
        (Some((key, _)), None) => format!(".{key}"),
        _ => String::new(),
    }
}

fn check_name_at(value: &serde_json::Value, path: &str) -> String {
    // "checks[2].expect.status" → the name of checks[2], for a message a person can act on.
    let Some(rest) = path.strip_prefix("checks[") else {
        return String::new();
    };
    let Some(index) = rest.split(']').next().and_then(|i| i.parse::<usize>().ok()) else {
        return String::new();
    };
    value["checks"][index]["name"]
        .as_str()
        .map(|n| format!(" (check {n:?})"))
        .unwrap_or_default()
}

fn validate_kind(kind: &CheckKind) -> Result<(), String> {
    match kind {
        CheckKind::Invoke(c) => validate_expect(&c.expect).map_err(|p| format!("expect.{p}")),
        CheckKind::Http(c) => validate_http(c),
        CheckKind::Burst(b) => {
            if b.requests == 0 || b.requests > 10_000 {
                return Err(format!("requests: expected 1 to 10000, got {}", b.requests));
            }
            if b.concurrency == 0 || b.concurrency > 256 {
                return Err(format!(
                    "concurrency: expected 1 to 256, got {}",
                    b.concurrency
                ));
            }
            if !(0.0..=1.0).contains(&b.max_failure_rate) {
                return Err("maxFailureRate: expected 0.0 to 1.0".into());
            }
            match &b.target {
                BurstTarget::Invoke(c) => {
                    validate_expect(&c.expect).map_err(|p| format!("target.invoke.expect.{p}"))
                }
                BurstTarget::Http(c) => validate_http(c).map_err(|p| format!("target.http.{p}")),
            }
        }
        CheckKind::Compare(c) => validate_compare(c),
        CheckKind::Logs(l) => {
            for (field, pattern) in [
                ("pattern", &l.pattern),
                ("invocationPattern", &l.invocation_pattern),
            ] {
                if pattern.len() > 1024 {
                    return Err(format!(
                        "{field}: expected at most 1024 characters (CloudWatch Logs' limit)"
                    ));
                }
            }
            if l.pattern.trim().is_empty() {
                return Err(
                    "pattern: is empty, which would count every line as an error line".into(),
                );
            }
            if l.invocation_pattern.trim().is_empty() {
                return Err(
                    "invocationPattern: is empty; it must match exactly one line per invocation"
                        .into(),
                );
            }
            if let Some(group) = &l.log_group {
                if group.is_empty() || group.len() > 512 {
                    return Err(format!(
                        "logGroup: expected a log group name of 1 to 512 characters, got {group:?}"
                    ));
                }
            }
            validate_window(l.window)?;
            if !(l.max_rate_multiple >= 1.0 && l.max_rate_multiple.is_finite()) {
                return Err(format!(
                    "maxRateMultiple: expected at least 1.0, got {}",
                    l.max_rate_multiple
                ));
            }
            if l.min_samples == 0 {
                return Err(
                    "minSamples: expected at least 1 (no invocations is no data, never a pass)"
                        .into(),
                );
            }
            validate_confidence(l.confidence)
        }
        CheckKind::Artifact(a) => {
            let given = [
                a.code_sha256.is_some(),
                a.image_digest.is_some(),
                a.from_env.is_some(),
                a.same_as.is_some(),
            ];
            if given.iter().filter(|g| **g).count() != 1 {
                return Err(
                    "expected exactly one of codeSha256, imageDigest, fromEnv or sameAs".into(),
                );
            }
            if let Some(v) = &a.code_sha256 {
                crate::artifact::Expected::code(v).map_err(|p| format!("codeSha256: {p}"))?;
            }
            if let Some(v) = &a.image_digest {
                crate::artifact::Expected::image(v).map_err(|p| format!("imageDigest: {p}"))?;
            }
            if let Some(var) = &a.from_env {
                if var.is_empty()
                    || !var
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
                {
                    return Err(format!(
                        "fromEnv: expected an environment variable name, got {var:?}"
                    ));
                }
            }
            if let Some(s) = &a.same_as {
                if s.function.trim().is_empty() || s.qualifier.trim().is_empty() {
                    return Err("sameAs: expected {function, qualifier}, both non-empty".into());
                }
            }
            Ok(())
        }
        CheckKind::Metrics(m) => {
            if let Some(r) = m.max_error_rate {
                if !(0.0..=1.0).contains(&r) {
                    return Err(format!("maxErrorRate: expected 0.0 to 1.0, got {r}"));
                }
            }
            if m.min_samples == 0 {
                return Err(
                    "minSamples: expected at least 1 (no samples is no data, never a pass)".into(),
                );
            }
            if m.max_error_rate_multiple < 1.0 {
                return Err("maxErrorRateMultiple: expected at least 1.0".into());
            }
            validate_window(m.window)
        }
    }
}

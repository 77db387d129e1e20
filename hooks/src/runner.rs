//! Running the check set: concurrently with a bound, each with its timeout, retries and backoff;
//! a panicking check is a failed check, not a crashed hook.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures::{FutureExt, StreamExt};
use serde::Serialize;
use serde_json::Value;
use tracing::{info, warn};

use crate::checks::{Executor, Observation, Verdict};
use crate::config::{Check, CheckKind, CheckSet, Inconclusive};
use crate::redact::Redactor;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    pub name: String,
    pub kind: &'static str,
    pub required: bool,
    pub verdict: Verdict,
    /// Whether this result lets the deployment go on.
    pub passed: bool,
    pub attempts: u32,
    pub latency_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub details: Value,
}

fn counts_as_pass(check: &Check, o: &Observation) -> bool {
    match o.verdict {
        Verdict::Passed => true,
        Verdict::Failed => false,
        Verdict::Inconclusive => inconclusive_policy(&check.kind) == Inconclusive::Pass,
    }
}

/// What an inconclusive verdict means for a check: its `inconclusive` setting, or a failure for
/// kinds without one.
pub fn inconclusive_policy(kind: &CheckKind) -> Inconclusive {
    match kind {
        CheckKind::Metrics(m) => m.inconclusive,
        CheckKind::Compare(c) => c.inconclusive,
        CheckKind::Logs(l) => l.inconclusive,
        _ => Inconclusive::Fail,
    }
}

/// Attempts a check until it passes or runs out of retries; each attempt has the check's timeout.
async fn run_one(executor: Arc<dyn Executor>, check: Check, redactor: &Redactor) -> CheckResult {
    let mut attempts = 0;
    let mut backoff = check.backoff;
    let started = Instant::now();
    let last = loop {
        attempts += 1;
        let mut observation =
            match tokio::time::timeout(check.timeout, executor.run(check.clone())).await {
                Ok(o) => o,
                Err(_) => Observation {
                    verdict: Verdict::Failed,
                    reason: Some(format!("timed out after {} ms", check.timeout.as_millis())),
                    latency_ms: u64::try_from(check.timeout.as_millis()).unwrap_or(u64::MAX),
                    details: Value::Null,
                },
            };
        // Before anything is logged or kept: what an endpoint echoed may hold a secret. Redacted
        // whole, then clipped.
        observation.reason = observation
            .reason
            .map(|r| clip(&redactor.text(&r), MAX_REASON));
        observation.details = clip_strings(redactor.value(observation.details), MAX_DETAIL);
        let ok = counts_as_pass(&check, &observation);
        // Inconclusive is an answer about the data, not a transient failure: do not retry it.
        if ok || observation.verdict == Verdict::Inconclusive || attempts > check.retries {
            break observation;
        }
        warn!(check = %check.name, attempt = attempts, reason = ?observation.reason, "check attempt failed; retrying");
        tokio::time::sleep(backoff).await;
        backoff = backoff.saturating_mul(2);
    };
    let passed = counts_as_pass(&check, &last);
    info!(check = %check.name, verdict = ?last.verdict, passed, attempts, elapsed_ms = started.elapsed().as_millis() as u64, reason = ?last.reason, "check finished");
    CheckResult {
        name: check.name.clone(),
        kind: check.kind.name(),
        required: check.required,
        verdict: last.verdict,
        passed,
        attempts,
        latency_ms: last.latency_ms,
        reason: last.reason,
        details: last.details,
    }
}

/// How much of a reason, and of each string in a check's details, is kept.
const MAX_REASON: usize = 600;
const MAX_DETAIL: usize = 512;

/// At most `max` bytes of `s` (on a character boundary), marked when cut.
fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn clip_strings(value: Value, max: usize) -> Value {
    match value {
        Value::String(s) => Value::String(clip(&s, max)),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| clip_strings(v, max)).collect())
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, clip_strings(v, max)))
                .collect(),
        ),
        other => other,
    }
}

/// Runs every check, at most `set.concurrency` at a time, and returns their results in the
/// configured order. The checks run as futures of the caller's task, never as spawned tasks: when
/// the watchdog cancels that task, every request the checks started is cancelled with it.
pub async fn run_checks(
    executor: Arc<dyn Executor>,
    set: &CheckSet,
    redactor: &Redactor,
) -> Vec<CheckResult> {
    futures::stream::iter(set.checks.iter().cloned())
        .map(|check| {
            let executor = executor.clone();
            let (name, kind, required) = (check.name.clone(), check.kind.name(), check.required);
            async move {
                match AssertUnwindSafe(run_one(executor, check, redactor))
                    .catch_unwind()
                    .await
                {
                    Ok(result) => result,
                    Err(panic) => {
                        let reason =
                            redactor.text(&format!("the check panicked: {}", panic_text(panic)));
                        warn!(check = %name, reason = %reason, "check did not finish");
                        CheckResult {
                            name,
                            kind,
                            required,
                            verdict: Verdict::Failed,
                            passed: false,
                            attempts: 1,
                            latency_ms: 0,
                            reason: Some(reason),
                            details: Value::Null,
                        }
                    }
                }
            }
        })
        .buffered(set.concurrency)
        .collect()
        .await
}

/// The hook's verdict from its checks: every required check passed. The reason lists the required
/// checks that did not (advisory checks never fail a deployment).
pub fn verdict(results: &[CheckResult]) -> (bool, Option<String>) {
    let blocking: Vec<String> = results
        .iter()
        .filter(|r| r.required && !r.passed)
        .map(|r| format!("{}: {}", r.name, r.reason.as_deref().unwrap_or("failed")))
        .collect();
    if blocking.is_empty() {
        (true, None)
    } else {
        (false, Some(blocking.join("; ")))
    }
}

pub fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, required: bool, verdict: Verdict, passed: bool) -> CheckResult {
        CheckResult {
            name: name.into(),
            kind: "invoke",
            required,
            verdict,
            passed,
            attempts: 1,
            latency_ms: 1,
            reason: (!passed).then(|| format!("{name} went wrong")),
            details: Value::Null,
        }
    }

    #[test]
    fn verdict_table() {
        use Verdict::*;
        let cases: Vec<(&str, Vec<CheckResult>, bool)> = vec![
            ("all pass", vec![result("a", true, Passed, true)], true),
            (
                "a required failure fails",
                vec![
                    result("a", true, Passed, true),
                    result("b", true, Failed, false),
                ],
                false,
            ),
            (
                "an advisory failure does not",
                vec![
                    result("a", true, Passed, true),
                    result("b", false, Failed, false),
                ],
                true,
            ),
            (
                "inconclusive that the policy fails",
                vec![result("m", true, Inconclusive, false)],
                false,
            ),
            (
                "inconclusive that the policy passes",
                vec![result("m", true, Inconclusive, true)],
                true,
            ),
        ];
        for (name, results, want) in cases {
            let (ok, reason) = verdict(&results);
            assert_eq!(ok, want, "{name}");
            assert_eq!(reason.is_some(), !want, "{name}: {reason:?}");
        }
        let (_, reason) = verdict(&[result("b", true, Failed, false)]);
        assert_eq!(reason.as_deref(), Some("b: b went wrong"));
    }
}

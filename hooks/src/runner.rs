//! Running the check set: concurrently with a bound, each with its timeout, retries and backoff;
//! a panicking check is a failed check, not a crashed hook.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::checks::{Executor, Observation, Verdict};
use crate::config::{Check, CheckKind, CheckSet, Inconclusive};

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

pub fn kind_name(kind: &CheckKind) -> &'static str {
    match kind {
        CheckKind::Invoke(_) => "invoke",
        CheckKind::Http(_) => "http",
        CheckKind::Burst(_) => "burst",
        CheckKind::Metrics(_) => "metrics",
    }
}

fn counts_as_pass(check: &Check, o: &Observation) -> bool {
    match o.verdict {
        Verdict::Passed => true,
        Verdict::Failed => false,
        Verdict::Inconclusive => match &check.kind {
            CheckKind::Metrics(m) => m.inconclusive == Inconclusive::Pass,
            _ => false,
        },
    }
}

/// Attempts a check until it passes or runs out of retries; each attempt has the check's timeout.
async fn run_one(executor: Arc<dyn Executor>, check: Check) -> CheckResult {
    let mut attempts = 0;
    let mut backoff = check.backoff;
    let started = Instant::now();
    let last = loop {
        attempts += 1;
        let observation =
            match tokio::time::timeout(check.timeout, executor.run(check.clone())).await {
                Ok(o) => o,
                Err(_) => Observation {
                    verdict: Verdict::Failed,
                    reason: Some(format!("timed out after {} ms", check.timeout.as_millis())),
                    latency_ms: check.timeout.as_millis() as u64,
                    details: Value::Null,
                },
            };
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
        kind: kind_name(&check.kind),
        required: check.required,
        verdict: last.verdict,
        passed,
        attempts,
        latency_ms: last.latency_ms,
        reason: last.reason,
        details: last.details,
    }
}

/// Runs every check, at most `set.concurrency` at a time, and returns their results in the
/// configured order.
pub async fn run_checks(executor: Arc<dyn Executor>, set: &CheckSet) -> Vec<CheckResult> {
    let permits = Arc::new(Semaphore::new(set.concurrency));
    let handles: Vec<_> = set
        .checks
        .iter()
        .cloned()
        .map(|check| {
            let (executor, permits) = (executor.clone(), permits.clone());
            let meta = (check.name.clone(), kind_name(&check.kind), check.required);
            let handle = tokio::spawn(async move {
                let _permit = permits
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed");
                run_one(executor, check).await
            });
            (meta, handle)
        })
        .collect();
    let mut results = Vec::with_capacity(handles.len());
    for ((name, kind, required), handle) in handles {
        results.push(match handle.await {
            Ok(result) => result,
            Err(join) => {
                let reason = if join.is_panic() {
                    format!("the check panicked: {}", panic_text(join.into_panic()))
                } else {
                    "the check was cancelled".to_string()
                };
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
        });
    }
    results
}

pub fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

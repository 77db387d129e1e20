//! The hooks' decision metrics (Embedded Metric Format, namespace `ShiftGuard`): one document for
//! the hook's verdict and one per check, built from the summary. Pure; [`run_hook`] writes them.
//! Names and dimensions: hooks/README.md#decision-metrics-cloudwatch-embedded-metric-format.
//!
//! [`run_hook`]: crate::run_hook

use serde_json::{json, Value};
use shiftguard_common::codedeploy::function_name;
use shiftguard_common::emf::{document, Measure};

use crate::{HookSummary, Phase};

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::PreTraffic => "pre-traffic",
        Phase::PostTraffic => "post-traffic",
    }
}

/// `succeeded`, `failed` or `bypassed` (`[shiftguard skip]`).
pub fn outcome(summary: &HookSummary) -> &'static str {
    if summary.bypass.is_some() {
        "bypassed"
    } else if summary.status == "Succeeded" {
        "succeeded"
    } else {
        "failed"
    }
}

/// `Hooks` (Count) and `HookDuration` (Milliseconds) by Function/Phase/Outcome; `CheckVerdicts`
/// (Count) and `CheckDuration` (Milliseconds) by Function/Phase/Check/Verdict.
pub fn documents(summary: &HookSummary, timestamp_ms: i64) -> Vec<Value> {
    let function = summary
        .target
        .as_ref()
        .map(|t| function_name(&t.function).to_string())
        .unwrap_or_default();
    let phase = phase_name(summary.phase);
    let outcome = outcome(summary);
    let mut docs = vec![document(
        timestamp_ms,
        &[
            ("Function", &function),
            ("Phase", phase),
            ("Outcome", outcome),
        ],
        &[&["Phase", "Outcome"], &["Function", "Phase", "Outcome"]],
        &[
            Measure::one("Hooks"),
            Measure::milliseconds("HookDuration", summary.duration_ms),
        ],
        &[
            ("DeploymentId", json!(summary.deployment_id)),
            ("Status", json!(summary.status)),
            ("AlreadyCompleted", json!(summary.report.already_completed)),
            (
                "TargetVersion",
                json!(summary.target.as_ref().map(|t| &t.target_version)),
            ),
            ("Bypass", json!(summary.bypass)),
        ],
    )];
    for check in &summary.checks {
        let verdict = match check.verdict {
            crate::checks::Verdict::Passed => "passed",
            crate::checks::Verdict::Failed => "failed",
            crate::checks::Verdict::Inconclusive => "inconclusive",
        };
        docs.push(document(
            timestamp_ms,
            &[
                ("Function", &function),
                ("Phase", phase),
                ("Check", &check.name),
                ("Verdict", verdict),
            ],
            &[
                &["Phase", "Check", "Verdict"],
                &["Function", "Phase", "Check", "Verdict"],
            ],
            &[
                Measure::one("CheckVerdicts"),
                Measure::milliseconds("CheckDuration", check.latency_ms),
            ],
            &[
                ("DeploymentId", json!(summary.deployment_id)),
                ("Kind", json!(check.kind)),
                ("Required", json!(check.required)),
                ("Passed", json!(check.passed)),
                ("Attempts", json!(check.attempts)),
            ],
        ));
    }
    docs
}

/// The hook could not report to CodeDeploy: `Hooks` with Outcome `report-failed`.
pub fn report_failed(phase: Phase, deployment_id: &str, timestamp_ms: i64) -> Value {
    let phase = phase_name(phase);
    document(
        timestamp_ms,
        &[
            ("Function", ""),
            ("Phase", phase),
            ("Outcome", "report-failed"),
        ],
        &[&["Phase", "Outcome"]],
        &[Measure::one("Hooks")],
        &[("DeploymentId", json!(deployment_id))],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::CheckResult;
    use crate::ReportOutcome;

    fn summary(status: &'static str, bypass: bool) -> HookSummary {
        HookSummary {
            phase: Phase::PostTraffic,
            deployment_id: "d-ABCDEFGHI".into(),
            lifecycle_event_hook_execution_id: "x".into(),
            status,
            reason: None,
            target: None,
            checks: vec![CheckResult {
                name: "new-vs-old".into(),
                kind: "compare",
                required: true,
                verdict: crate::checks::Verdict::Inconclusive,
                passed: false,
                attempts: 1,
                latency_ms: 1200,
                reason: None,
                details: Value::Null,
            }],
            duration_ms: 1300,
            report: ReportOutcome {
                attempts: 1,
                already_completed: false,
            },
            housekeeping: None,
            bypass: bypass.then(|| {
                crate::bypass::requested("d-ABCDEFGHI", "3", Some("[shiftguard skip]"), None)
                    .unwrap()
            }),
        }
    }

    #[test]
    fn the_verdict_and_every_check_are_valid_documents() {
        for (status, bypass, outcome) in [
            ("Succeeded", false, "succeeded"),
            ("Failed", false, "failed"),
            ("Succeeded", true, "bypassed"),
        ] {
            let docs = documents(&summary(status, bypass), 1_700_000_000_000);
            assert_eq!(docs.len(), 2);
            for doc in &docs {
                shiftguard_common::emf::validate(doc).unwrap_or_else(|e| panic!("{e}: {doc}"));
            }
            assert_eq!(docs[0]["Outcome"], outcome);
            assert_eq!(docs[0]["Phase"], "post-traffic");
            assert_eq!(
                docs[0]["Function"], "unknown",
                "no target: still a valid dimension"
            );
            assert_eq!(docs[1]["Check"], "new-vs-old");
            assert_eq!(docs[1]["Verdict"], "inconclusive");
            assert_eq!(docs[1]["CheckDuration"], 1200.0);
        }
        let failed = report_failed(Phase::PreTraffic, "d-1", 1);
        shiftguard_common::emf::validate(&failed).unwrap();
        assert_eq!(failed["Outcome"], "report-failed");
    }
}

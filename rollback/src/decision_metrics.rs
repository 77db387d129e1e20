//! Rollback's decision metrics (Embedded Metric Format, namespace `ShiftGuard`): one document per
//! target handled and per unmapped alarm refused, built from the summary. Pure; [`handle`] writes
//! them. Names and dimensions (one table for every function):
//! hooks/README.md#decision-metrics-cloudwatch-embedded-metric-format.
//!
//! [`handle`]: crate::handle

use serde_json::{json, Value};
use shiftguard_common::emf::{document, Measure};

use crate::report::Summary;

fn text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `RollbackActions` (Count) by Outcome, Action/Outcome and Target/Action/Outcome, and
/// `AlarmToRestored` (Milliseconds, restored targets only) — from the alarm's state change to
/// traffic verified on production.
pub fn documents(summary: &Summary, timestamp_ms: i64) -> Vec<Value> {
    let mut docs = Vec::new();
    for r in &summary.targets {
        let (action, outcome) = (text(&r.action), text(&r.outcome));
        let mut measures = vec![Measure::one("RollbackActions")];
        if let Some(ms) = r.alarm_to_restored_ms {
            measures.push(Measure::milliseconds("AlarmToRestored", ms));
        }
        docs.push(document(
            timestamp_ms,
            &[
                ("Target", &r.target),
                ("Action", &action),
                ("Outcome", &outcome),
            ],
            &[
                &["Outcome"],
                &["Action", "Outcome"],
                &["Target", "Action", "Outcome"],
            ],
            &measures,
            &[
                ("Alarms", json!(r.alarms)),
                (
                    "RequestedBy",
                    json!(summary.request.as_ref().map(|q| &q.requested_by)),
                ),
                ("DeploymentId", json!(r.deployment_id)),
                ("DryRun", json!(summary.dry_run)),
                ("Error", json!(r.error)),
            ],
        ));
    }
    for alarm in &summary.unmapped {
        docs.push(document(
            timestamp_ms,
            &[
                ("Target", "unmapped"),
                ("Action", "none"),
                ("Outcome", "refused"),
            ],
            &[
                &["Outcome"],
                &["Action", "Outcome"],
                &["Target", "Action", "Outcome"],
            ],
            &[Measure::one("RollbackActions")],
            &[("Alarms", json!([alarm]))],
        ));
    }
    docs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Action, Outcome, TargetReport};

    #[test]
    fn every_target_and_refusal_is_a_valid_document() {
        let mut restored = TargetReport::new("alias:checkout:live".into(), vec!["errors".into()]);
        restored.action = Action::RestoreAlias;
        restored.outcome = Outcome::Restored;
        restored.alarm_to_restored_ms = Some(840);
        let failed = TargetReport::new("listener:svc/l".into(), vec!["errors".into()]);
        let summary = Summary {
            dry_run: false,
            alarms: vec![],
            request: None,
            ignored: vec![],
            unmapped: vec!["typo-alarm".into()],
            targets: vec![restored, failed],
            notification: None,
        };
        let docs = documents(&summary, 1_700_000_000_000);
        assert_eq!(docs.len(), 3);
        for doc in &docs {
            shiftguard_common::emf::validate(doc).unwrap_or_else(|e| panic!("{e}: {doc}"));
        }
        assert_eq!(docs[0]["Action"], "restore-alias");
        assert_eq!(docs[0]["Outcome"], "restored");
        assert_eq!(docs[0]["AlarmToRestored"], 840.0);
        assert_eq!(docs[1]["Outcome"], "failed");
        assert!(docs[1].get("AlarmToRestored").is_none());
        assert_eq!(docs[2]["Outcome"], "refused");
    }
}

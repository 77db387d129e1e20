//! What a step tells the world: its EMF metrics, the SNS summary of an ended rollout, and the
//! plan's alarms read from CloudWatch.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use shiftguard_common::error_text;

use crate::{ShiftClients, StepSummary};

/// `RolloutSteps` (Count) by Action, and by Target and Action; the error type when a step failed.
pub fn metrics_document(summary: &StepSummary, error_type: Option<&str>) -> Value {
    let action = match error_type {
        Some(_) => "failed".to_string(),
        None => serde_json::to_value(summary.action)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
    };
    shiftguard_common::emf::document(
        shiftguard_common::emf::now_ms(),
        &[("Target", &summary.target), ("Action", &action)],
        &[&["Action"], &["Target", "Action"]],
        &[
            shiftguard_common::emf::Measure::one("RolloutSteps"),
            shiftguard_common::emf::Measure {
                name: "CanaryWeight",
                unit: "Percent",
                value: f64::from(summary.canary_weight),
            },
        ],
        &[
            ("Rollout", json!(summary.rollout)),
            ("Step", json!(summary.step)),
            ("Status", json!(summary.status)),
            ("Reason", json!(summary.reason)),
            ("ErrorType", json!(error_type)),
        ],
    )
}

pub(crate) async fn publish(
    clients: &ShiftClients,
    topic: &str,
    summary: &StepSummary,
) -> Result<String, String> {
    let mut subject = format!(
        "ShiftGuard rollout {}: {} at step {}/{}{}",
        summary.rollout,
        summary.status,
        summary.step,
        summary.steps,
        summary
            .reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    );
    rollback::publish_to_topic(&clients.rollback, topic, &mut subject, summary).await
}

/// The plan's alarms in ALARM, and those that do not exist. Metric and composite alarms, every
/// page.
pub(crate) async fn alarms_in_alarm(
    clients: &ShiftClients,
    names: &[String],
) -> Result<(Vec<String>, Vec<String>), String> {
    use aws_sdk_cloudwatch::types::{AlarmType, StateValue};
    if names.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let mut found: BTreeMap<String, bool> = BTreeMap::new();
    for chunk in names.chunks(100) {
        let mut token = None;
        loop {
            let out = clients
                .hooks
                .cloudwatch()
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                .alarm_types(AlarmType::MetricAlarm)
                .alarm_types(AlarmType::CompositeAlarm)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| format!("DescribeAlarms failed: {}", error_text(&e)))?;
            for a in out.metric_alarms() {
                if let Some(n) = &a.alarm_name {
                    found.insert(n.clone(), a.state_value == Some(StateValue::Alarm));
                }
            }
            for a in out.composite_alarms() {
                if let Some(n) = &a.alarm_name {
                    found.insert(n.clone(), a.state_value == Some(StateValue::Alarm));
                }
            }
            token = out.next_token.filter(|t| !t.is_empty());
            if token.is_none() {
                break;
            }
        }
    }
    let alarming = names
        .iter()
        .filter(|n| found.get(*n) == Some(&true))
        .cloned()
        .collect();
    let missing = names
        .iter()
        .filter(|n| !found.contains_key(*n))
        .cloned()
        .collect();
    Ok((alarming, missing))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Action;

    #[test]
    fn step_metrics_are_valid_emf() {
        let summary = StepSummary {
            rollout: "orders-v2".into(),
            target: "lattice-listener:svc-1/listener-1".into(),
            status: "in-progress",
            action: Action::Advanced,
            step: 2,
            steps: 4,
            canary_weight: 25,
            wait_seconds: Some(300),
            wait_ms: Some(300_000),
            reason: None,
            checks: Vec::new(),
            alarms_in_alarm: Vec::new(),
            before: Value::Null,
            after: None,
            restore: None,
            promotion: None,
            notification: None,
        };
        for error in [None, Some("Shift.AwsError")] {
            let doc = metrics_document(&summary, error);
            shiftguard_common::emf::validate(&doc).unwrap();
            assert_eq!(
                doc["Action"],
                if error.is_some() {
                    "failed"
                } else {
                    "advanced"
                }
            );
            assert_eq!(doc["CanaryWeight"], 25.0);
        }
    }
}

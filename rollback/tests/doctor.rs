//! `doctor` against the emulator: the reads it makes are real calls, and what they find is the
//! finding (issue 22). The misconfiguration the demo shows: an alarm on a dimension Lambda never
//! publishes — it can never fire, so rollback would never act.

mod support;

use serde_json::{json, Value};
use support::*;

const OWN: &str = "arn:aws:lambda:us-east-1:123456789012:function:checkout_rollback";

async fn alarm(w: &World, name: &str, dims: &[(&str, &str)], topic: &str) {
    let cloudwatch = w.clients.cloudwatch();
    shiftguard_testkit::fixtures::metric_alarm(
        cloudwatch,
        name,
        ("AWS/Lambda", "Errors"),
        dims,
        &[topic],
    )
    .await;
}

async fn run(w: &World, targets: Value) -> Result<Value, rollback::RollbackError> {
    rollback::invoke(
        &w.clients,
        &config(targets),
        &json!({"shiftguard": "doctor"}),
        rollback::Deadline::after(std::time::Duration::from_secs(30)),
        Some(format!("{OWN}:live")),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_a_sound_net_and_names_an_alarm_that_can_never_fire() {
    let w = world().await;
    function(&w, "checkout", 2).await;
    alias(&w, "checkout", "live", "1", &[]).await;
    rehearsal_group(&w).await;
    let topic = topic_to_lambda(&w, "shiftguard-alarms", OWN).await;
    alarm(
        &w,
        "checkout-canary-errors",
        &[
            ("FunctionName", "checkout"),
            ("Resource", "checkout:live"),
            ("ExecutedVersion", "2"),
        ],
        &topic,
    )
    .await;
    let target = rehearsal_alias_target();
    let sound = json!([{"alarms": ["checkout-canary-*"], "targets": [target]}]);
    let report = run(&w, sound.clone())
        .await
        .expect("a sound net is healthy");
    assert_eq!(report["healthy"], true, "{report}");
    assert_eq!(report["alarmsChecked"], 1, "{report}");
    // Nothing has published the metric yet: said, not failed.
    let findings = report["findings"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .all(|f| f["severity"] == "warning" && f["check"] == "alarm-data"),
        "{report}"
    );

    // The misconfiguration: `Alias` is not a dimension Lambda publishes.
    alarm(
        &w,
        "checkout-alias-errors",
        &[("FunctionName", "checkout"), ("Alias", "live")],
        &topic,
    )
    .await;
    // And one that fires into a topic nobody from ShiftGuard hears.
    let silent = w
        .clients
        .sns()
        .create_topic()
        .name("nobody")
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    alarm(
        &w,
        "checkout-silent-errors",
        &[("FunctionName", "checkout"), ("Resource", "checkout:live")],
        &silent,
    )
    .await;
    // And a target that does not exist.
    let broken = json!([
        {"alarms": ["checkout-alias-errors", "checkout-silent-errors", "checkout-typo-errors"], "targets": [target]},
        {"alarms": ["checkout-canary-*"], "targets": [alias_target("checkout", "prod")]},
    ]);
    let err = run(&w, broken).await.expect_err("serious findings fail");
    assert_eq!(err.error_type(), "Rollback.DoctorFoundProblems");
    let text = err.to_string();
    let report: Value = serde_json::from_str(text.split("report: ").nth(1).unwrap()).unwrap();
    let serious: Vec<(String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "serious")
        .map(|f| {
            (
                f["check"].as_str().unwrap().to_string(),
                f["subject"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        serious,
        vec![
            (
                "alarm-dimensions".to_string(),
                "checkout-alias-errors".to_string()
            ),
            // Mapped to the `prod` alias too, it watches `live`.
            (
                "alarm-dimensions".to_string(),
                "checkout-canary-errors".to_string()
            ),
            (
                "alarm-reaches-rollback".to_string(),
                "checkout-silent-errors".to_string()
            ),
            (
                "alarm-exists".to_string(),
                "checkout-typo-errors".to_string()
            ),
            (
                "target-exists".to_string(),
                "lambda-alias:checkout:prod".to_string()
            ),
        ],
        "{report:#}"
    );
    assert!(
        text.contains("dimension Alias is not one Lambda publishes"),
        "{text}"
    );
    assert!(
        text.contains("ResourceNotFoundException: Cannot find alias"),
        "{text}"
    );
    assert!(text.len() < 4000, "the report stays readable: {text}");
}

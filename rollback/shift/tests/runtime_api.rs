//! The real `shift` binary behind the Lambda Runtime API (`cargo lambda watch`), invoked with
//! `cargo lambda invoke` and the sample plans: the path the state machine takes.

#[path = "../../tests/support/mod.rs"]
mod support;

use serde_json::{json, Value};
use shiftguard_testkit::LambdaWatch;
use support::*;

/// The `shift` binary, invoked the way the state machine does: the sample plan from `events/`,
/// one step per invocation, and a plan refused with its errorType.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shift_binary_runs_one_step_per_invocation() {
    let w = world().await;
    function(&w, "checkout", 2).await;
    alias(&w, "checkout", "live", "1", &[]).await;
    w.emu.control(
        "POST",
        "/_shiftguard/lambda/behaviour",
        Some(&json!({"function": "checkout", "version": "*", "response": {"statusCode": 200}})),
    );
    let cloudwatch = aws_sdk_cloudwatch::Client::new(&w.emu.sdk_config().await);
    shiftguard_testkit::fixtures::metric_alarm(
        &cloudwatch,
        "checkout-canary-errors",
        ("AWS/Lambda", "Errors"),
        &[],
        &[],
    )
    .await;
    // As deployed: the rehearsal stack's shift role (its `checkout` rollout is this sample plan),
    // strict IAM.
    w.emu.strict_iam();
    let watch = LambdaWatch::start(&w.emu.role_env("checkout_shift"));

    let (ok, out) = watch.invoke("shift", "shift/alias-rollout.json");
    assert!(ok, "{out}");
    let first: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(
        (
            &first["action"],
            &first["status"],
            &first["step"],
            &first["canaryWeight"],
            &first["waitSeconds"]
        ),
        (
            &json!("started"),
            &json!("in-progress"),
            &json!(1),
            &json!(10),
            &json!(60)
        ),
        "{first}"
    );
    // The bake is 5 minutes (exact in waitMs); the state machine comes back every minute to
    // watch the alarms and the restore record.
    assert_eq!(first["waitMs"], 300_000, "{first}");
    assert_eq!(
        first["checks"][0]["details"]["executedVersion"], "2",
        "{first}"
    );
    assert_eq!(
        alias_state(&w, "checkout", "live").await,
        ("1".to_string(), vec![("2".to_string(), 0.1)])
    );

    // The state machine's retry of the same step: still baking, nothing moved.
    let (ok, out) = watch.invoke("shift", "shift/alias-rollout.json");
    assert!(ok, "{out}");
    let again: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (&again["action"], &again["step"]),
        (&json!("baking"), &json!(1)),
        "{again}"
    );
    assert!(again["waitSeconds"].as_u64().unwrap() <= 60);

    let mut bad = shiftguard_testkit::event("shift/alias-rollout.json");
    bad["rollout"]["steps"][1]["weight"] = json!(5);
    let path = std::env::temp_dir().join(format!("shift-bad-{}.json", std::process::id()));
    std::fs::write(&path, bad.to_string()).unwrap();
    let (ok, out) = watch.invoke_file("shift", &path);
    assert!(!ok);
    assert!(
        out.contains("Shift.InvalidPlan") && out.contains("rollout.steps[1].weight"),
        "{out}"
    );

    let steps: Vec<Value> = watch
        .emf_documents()
        .into_iter()
        .filter(|d| d.get("RolloutSteps").is_some())
        .collect();
    let actions: Vec<&str> = steps.iter().filter_map(|d| d["Action"].as_str()).collect();
    assert_eq!(actions, ["started", "baking"], "{steps:?}");
    let denied = w.emu.denied_calls();
    assert!(denied.is_empty(), "calls IAM denied: {denied:#?}");
}

//! The real `rollback` binary behind the Lambda Runtime API (`cargo lambda watch`), invoked with
//! `cargo lambda invoke` and the sample events: the path users take.

mod support;

use serde_json::{json, Value};
use shiftguard_testkit::LambdaWatch;
use support::*;

/// The binary behind `watch` on the sample alarm as if it fired now (a stage changed after an
/// alarm is left alone): its summary, the first target restored.
fn alarm_restores(watch: &LambdaWatch) -> Value {
    let fresh = shiftguard_testkit::fresh_event(CANARY_EVENT);
    let (ok, out) = watch.invoke_value("rollback", &fresh);
    assert!(ok, "{out}");
    let summary: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(summary["targets"][0]["outcome"], "restored", "{summary}");
    summary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_rolls_back_through_the_runtime_api() {
    let w = world().await;
    function(&w, "checkout", 2).await;
    alias(&w, "checkout", "live", "1", &[("2", 0.1)]).await;
    rehearsal_group(&w).await;
    // Issue 12: an API Gateway stage canary beside the alias, through the binary.
    let stage = api(&w, Some(10.0)).await;
    // As deployed: the rehearsal stack's rollback role, strict IAM.
    let mut env = rollback_role_env(&w);
    env.push((
        "ROLLBACK_TARGETS".into(),
        json!([{"alarms": ["checkout-*"], "targets": [rehearsal_alias_target(), stage_target(&stage)]}])
            .to_string(),
    ));
    let watch = LambdaWatch::start(&env);

    // The sample alarm as if it fired now (a stage changed after an alarm is left alone).
    let summary = alarm_restores(&watch);
    assert_eq!(
        summary["targets"][0]["before"],
        json!({"version": "1", "weights": {"2": 0.1}})
    );
    assert_eq!(live(&w).await, only("1"));
    assert_eq!(summary["targets"][1]["outcome"], "restored", "{summary}");
    assert_eq!(
        summary["targets"][1]["action"], "restore-stage",
        "{summary}"
    );
    assert_eq!(
        stage_state(&w, &stage).await,
        (
            Some(stage.production.clone()),
            Some(stage.canary.clone()),
            Some(0.0)
        )
    );

    let (ok, out) = watch.invoke("rollback", "rollback/sns-single-metric-alarm.json");
    assert!(ok, "{out}");
    assert!(out.contains("\"already-stable\""), "{out}");

    let (ok, out) = watch.invoke("rollback", "rollback/malformed/sns-message-not-json.json");
    assert!(!ok, "a malformed event must fail the invocation: {out}");
    assert!(out.contains("malformed event"), "{out}");
    // Issue 9 [10]: the documented errorType, not a Rust type name.
    assert!(out.contains("Rollback.BadEvent"), "{out}");
    let (ok, out) = watch.invoke("rollback", "rollback/sns-unmapped-alarm.json");
    assert!(!ok, "{out}");
    assert!(out.contains("Rollback.Unmapped"), "{out}");

    // Issue 11 [5]: each action and outcome as Embedded Metric Format in the function's output,
    // valid by the specification.
    let docs = watch.emf_documents();
    for doc in &docs {
        shiftguard_common::emf::validate(doc).unwrap_or_else(|e| panic!("{e}: {doc}"));
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "ShiftGuard"
        );
    }
    let outcomes: Vec<&str> = docs.iter().filter_map(|d| d["Outcome"].as_str()).collect();
    assert_eq!(
        outcomes,
        [
            "restored",
            "restored",
            "already-stable",
            "already-stable",
            "refused"
        ],
        "{docs:?}"
    );
    assert_eq!(docs[0]["Action"], "restore-alias");
    assert!(
        docs[0]["AlarmToRestored"].as_f64().unwrap() > 0.0,
        "{}",
        docs[0]
    );

    // Issue 12 [2]: the operator's rollback, the documented event through the binary.
    let (ok, out) = watch.invoke("rollback", "rollback/operator-rollback.json");
    assert!(ok, "{out}");
    let summary: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(
        summary["targets"][0]["outcome"], "already-stable",
        "{summary}"
    );
    assert_eq!(summary["request"]["requestedBy"], "alice@example.com");
    assert_eq!(
        summary["targets"][0]["alarms"][0],
        "operator:alice@example.com"
    );
    let denied = w.emu.denied_calls();
    assert!(denied.is_empty(), "calls IAM denied: {denied:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_fails_at_start_up_naming_the_variable() {
    let w = world().await;
    let mut env = w.emu.aws_env();
    env.push((
        "ROLLBACK_TARGETS".into(),
        r#"[{"alarms":"a","targets":[{"type":"lambda-alias","function":"f"}]}]"#.into(),
    ));
    let watch = LambdaWatch::start(&env);

    let (ok, out) = watch.invoke("rollback", "rollback/sns-single-metric-alarm.json");
    assert!(!ok, "{out}");
    assert!(
        out.contains("ROLLBACK_TARGETS") && out.contains("alias"),
        "{out}"
    );
    assert!(out.contains("Rollback.BadConfig"), "{out}");
}

// Issue 9 [14]: a wait that overflows when turned into milliseconds is a configuration error
// naming the variable, never a start-up panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overflowing_duration_is_a_configuration_error() {
    let w = world().await;
    let mut env = w.emu.aws_env();
    env.push((
        "ROLLBACK_TARGETS".into(),
        json!([{"alarms": ["checkout-*"], "targets": [alias_target("checkout", "live")]}])
            .to_string(),
    ));
    env.push((
        "CODEDEPLOY_ROLLBACK_WAIT".into(),
        "18446744073709551615s".into(),
    ));
    let watch = LambdaWatch::start(&env);

    let (ok, out) = watch.invoke("rollback", "rollback/sns-single-metric-alarm.json");
    assert!(!ok, "{out}");
    assert!(
        out.contains("Rollback.BadConfig") && out.contains("CODEDEPLOY_ROLLBACK_WAIT"),
        "{out}"
    );
}

/// Issue 22 [3]: the construct ships rollback's alarm → target map in a settings file in a layer
/// (Lambda's environment holds 4 KB). The binary, run with exactly the rehearsal stack's
/// environment — no ROLLBACK_TARGETS of the test's own — reads the map from that file and restores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reads_its_targets_from_the_stacks_settings_file() {
    let w = world().await;
    function(&w, "checkout", 2).await;
    alias(&w, "checkout", "live", "1", &[("2", 0.1)]).await;
    alias(&w, "checkout", "blue", "1", &[]).await;
    rehearsal_group(&w).await;
    w.emu.strict_iam();
    let env = w.emu.stack_env("checkout_rollback");
    assert!(
        !env.iter().any(|(k, _)| k == "ROLLBACK_TARGETS"),
        "the map is in the file, not the environment: {env:?}"
    );
    let file = env
        .iter()
        .find(|(k, _)| k == "SHIFTGUARD_CONFIG_FILE")
        .map(|(_, v)| v.clone())
        .expect("SHIFTGUARD_CONFIG_FILE");
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains("ROLLBACK_TARGETS"));
    let watch = LambdaWatch::start(&env);
    alarm_restores(&watch);
    assert_eq!(live(&w).await, only("1"));

    // doctor, as the construct's deploy-time trigger runs it, with exactly the stack's role: the
    // checkout alarm (created here as the construct creates it: on rollback's topic) is sound; the
    // stack's other alarms do not exist in this world, which is serious.
    let topic = rollback_topic(&w);
    let created = topic_to_lambda(
        &w,
        topic.rsplit(':').next().unwrap(),
        "arn:aws:lambda:us-east-1:123456789012:function:rollback",
    )
    .await;
    assert_eq!(created, topic, "the stack's topic");
    shiftguard_testkit::fixtures::metric_alarm(
        w.clients.cloudwatch(),
        "checkout-canary-errors",
        ("AWS/Lambda", "Errors"),
        &[("FunctionName", "checkout"), ("Resource", "checkout:live")],
        &[&topic],
    )
    .await;
    let (ok, out) = watch.invoke_value("rollback", &json!({"shiftguard": "doctor"}));
    assert!(!ok, "{out}");
    // cargo lambda wraps the message in a box: compare without the wrapping.
    let flat: String = out
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '│')
        .collect();
    let has = |text: &str| flat.contains(&text.replace(' ', ""));
    assert!(has("Rollback.DoctorFoundProblems"), "{out}");
    assert!(has("no alarm matches orders-canary-5xx"), "{out}");
    // The sound alarm: no serious finding. (Under cargo lambda the invoked ARN is a placeholder,
    // so whether its topic reaches rollback cannot be told: a warning, said as such.)
    assert!(
        !has("\"severity\":\"serious\",\"subject\":\"checkout-canary-errors\""),
        "{out}"
    );
    assert!(has("this function's ARN is unknown"), "{out}");
    assert!(
        w.emu.denied_calls().is_empty(),
        "{:#?}",
        w.emu.denied_calls()
    );
}

/// The topic rollback's role may read the subscriptions of (the construct's alarm topic).
fn rollback_topic(w: &World) -> String {
    let out = w.emu.control(
        "POST",
        "/_shiftguard/iam/stack",
        Some(&json!({"templatePath": shiftguard_testkit::rehearsal_template_path(), "stack": "ShiftGuardRehearsal",
                     "functions": ["checkout_rollback"], "unresolved": "placeholder"})),
    );
    let statements = out["functions"]["checkout_rollback"]["statements"]
        .as_array()
        .unwrap()
        .clone();
    statements
        .iter()
        .find(|s| s["Action"] == json!("sns:ListSubscriptionsByTopic"))
        .and_then(|s| s["Resource"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no sns:ListSubscriptionsByTopic statement: {statements:#?}"))
}

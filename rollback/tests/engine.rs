//! Rollback against the emulator's CodeDeploy engine: the deployment shifts traffic by itself and
//! CodeDeploy's rollback deployment is the engine's, not something a test arranged. The test only
//! starts the deployment, sends the alarm (twice, through two envelopes, as AWS may) and watches.

mod support;

use std::time::{Duration, Instant};

use rollback::report::{Action, Outcome};
use rollback::{handle, Deadline};
use serde_json::{json, Value};
use shiftguard_testkit::event;
use support::*;

/// The sample notification, as if the alarm changed state now.
fn alarm_now(file: &str) -> Value {
    let now = aws_smithy_types::DateTime::from(std::time::SystemTime::now())
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap();
    let mut e = event(file);
    if let Some(message) = e.pointer("/Records/0/Sns/Message").and_then(Value::as_str) {
        let mut m: Value = serde_json::from_str(message).unwrap();
        m["StateChangeTime"] = json!(now);
        e["Records"][0]["Sns"]["Message"] = json!(m.to_string());
    } else {
        e["detail"]["state"]["timestamp"] = json!(now);
    }
    e
}

async fn wait_until<F: std::future::Future<Output = bool>>(
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_mid_canary_and_its_duplicate_during_codedeploys_own_rollback() {
    let w = world().await;
    // Canary10Percent5Minutes: 10% for 5 minutes, compressed to 5 s.
    w.emu.control(
        "POST",
        "/_shiftguard/engine",
        Some(&json!({"enabled": true, "timeScale": 60})),
    );
    function(&w, "checkout", 2).await;
    alias(&w, "checkout", "live", "1", &[]).await;
    let deployment = checkout_deployment(&w, "1", "2").await;
    wait_until("the engine to shift 10% to version 2", || async {
        alias_state(&w, "checkout", "live").await == ("1".into(), vec![("2".into(), 0.1)])
    })
    .await;
    let cfg = config(
        json!([{"alarms": ["checkout-canary-errors"], "targets": [alias_target("checkout", "live")]}]),
    );

    let (sns, bridge) = (
        alarm_now("rollback/sns-single-metric-alarm.json"),
        alarm_now("rollback/eventbridge-alarm-state-change.json"),
    );
    let first = handle(&w.clients, &cfg, &sns, Deadline::default());
    let second = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        handle(&w.clients, &cfg, &bridge, Deadline::default()).await
    };
    let (first, second) = tokio::join!(first, second);
    let (first, second) = (
        first.expect("first delivery"),
        second.expect("second delivery"),
    );

    let r1 = &first.targets[0];
    assert_eq!(r1.action, Action::StopDeployment, "{r1:#?}");
    assert_eq!(r1.outcome, Outcome::RestoredByCodeDeploy, "{r1:#?}");
    let r2 = &second.targets[0];
    assert!(
        matches!(
            (r2.action, r2.outcome),
            (
                Action::AwaitCodeDeployRollback,
                Outcome::RestoredByCodeDeploy
            ) | (Action::None, Outcome::AlreadyStable)
        ),
        "the duplicate waits for CodeDeploy's rollback or finds it done: {r2:#?}"
    );
    assert_eq!(
        w.emu.stopped_deployments(),
        vec![json!({"deploymentId": deployment, "autoRollbackEnabled": true})],
        "only the original deployment was stopped"
    );
    assert_eq!(
        w.emu.count("lambda", "UpdateAlias"),
        0,
        "rollback never wrote behind CodeDeploy"
    );
    assert_eq!(
        alias_state(&w, "checkout", "live").await,
        ("1".into(), vec![])
    );

    // What CodeDeploy itself recorded: the original stopped, one rollback deployment that
    // succeeded, linked both ways.
    let original = w.emu.control(
        "GET",
        &format!("/_shiftguard/codedeploy/deployments/{deployment}"),
        None,
    );
    assert_eq!(original["status"], "Stopped", "{original}");
    let rollback_id = original["rollbackInfo"]["rollbackDeploymentId"]
        .as_str()
        .expect("linked")
        .to_string();
    wait_until("CodeDeploy's rollback deployment to succeed", || async {
        w.emu.control(
            "GET",
            &format!("/_shiftguard/codedeploy/deployments/{rollback_id}"),
            None,
        )["status"]
            == "Succeeded"
    })
    .await;
    let rb = w.emu.control(
        "GET",
        &format!("/_shiftguard/codedeploy/deployments/{rollback_id}"),
        None,
    );
    assert_eq!(rb["creator"], "codeDeployRollback");
    assert_eq!(
        rb["rollbackInfo"]["rollbackTriggeringDeploymentId"],
        json!(deployment)
    );
}

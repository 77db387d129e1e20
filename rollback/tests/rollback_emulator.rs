//! Rollback against the local AWS emulator: real API calls over HTTP, the sample events from
//! `events/`, and faults injected by the emulator.

mod support;

use rollback::report::{Action, Outcome};
use rollback::{handle, Deadline, RollbackError};
use serde_json::json;
use shiftguard_testkit::event;
use support::*;

const LATTICE_EVENT: &str = "rollback/sns-lattice-alarm.json";

fn mapping(alarms: &[&str], targets: Vec<serde_json::Value>) -> serde_json::Value {
    json!([{ "alarms": alarms, "targets": targets }])
}

/// Rollback configured with the Lattice sample alarm → `lat`'s listener.
fn lattice_config(lat: &Lattice) -> rollback::Config {
    config(mapping(&["orders-canary-5xx"], vec![lattice_target(lat)]))
}

/// An alias in a canary, and the version rollback must leave alone on traffic.
struct CanaryCase {
    name: &'static str,
    versions: usize,
    primary: &'static str,
    weight: (&'static str, f64),
    restored: &'static str,
}

#[tokio::test]
async fn a_canary_goes_back_to_the_stable_version() {
    let cases = [
        CanaryCase {
            name: "CodeDeploy's shape: primary = old version, new version weighted",
            versions: 2,
            primary: "1",
            weight: ("2", 0.1),
            restored: "1",
        },
        CanaryCase {
            // The shape many guides use: primary = new version, old version as the additional weight.
            name: "hand-rolled shape: primary = new version, older version weighted",
            versions: 3,
            primary: "3",
            weight: ("2", 0.9),
            restored: "2",
        },
    ];
    for case in cases {
        let name = case.name;
        let w = world().await;
        function(&w, "checkout", case.versions).await;
        alias(&w, "checkout", "live", case.primary, &[case.weight]).await;

        let summary = run(&w, &checkout_config(), CANARY_EVENT)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));

        assert_eq!(live(&w).await, only(case.restored), "{name}");
        let report = &summary.targets[0];
        assert_eq!(report.outcome, Outcome::Restored, "{name}");
        assert_eq!(report.action, Action::RestoreAlias, "{name}");
        let (new, weight) = case.weight;
        assert_eq!(
            report.before,
            Some(json!({"version": case.primary, "weights": {new: weight}})),
            "{name}"
        );
        assert_eq!(
            report.after,
            Some(json!({"version": case.restored, "weights": {}})),
            "{name}"
        );
        assert_eq!(report.alarms, vec![CANARY_ALARM], "{name}");
        assert_eq!(w.emu.count("lambda", "UpdateAlias"), 1, "{name}");
    }
}

#[tokio::test]
async fn stable_pointer_alias_decides_the_version() {
    let w = world().await;
    function(&w, "checkout", 4).await;
    alias(&w, "checkout", "blue", "2", &[]).await;
    alias(&w, "checkout", "live", "3", &[("4", 0.1)]).await;
    let mut target = alias_target("checkout", "live");
    target["stableAlias"] = json!("blue");
    let cfg = config(canary_mapping(vec![target]));

    run(&w, &cfg, CANARY_EVENT).await.expect("rollback");

    assert_eq!(live(&w).await, only("2"));
    assert_eq!(
        alias_state(&w, "checkout", "blue").await,
        ("2".to_string(), vec![]),
        "the pointer is only read"
    );
}

#[tokio::test]
async fn explicit_stable_version_wins_and_a_missing_version_is_refused() {
    let w = world().await;
    function(&w, "checkout", 3).await;
    alias(&w, "checkout", "live", "2", &[("3", 0.2)]).await;
    let mut target = alias_target("checkout", "live");
    target["stableVersion"] = json!("1");
    let cfg = config(canary_mapping(vec![target.clone()]));
    run(&w, &cfg, CANARY_EVENT).await.expect("rollback");
    assert_eq!(live(&w).await, only("1"));

    // A pinned version that does not exist: the write is refused and the alias is left alone.
    set_alias(&w, "checkout", "live", "2", &[("3", 0.2)]).await;
    target["stableVersion"] = json!("9");
    let cfg = config(canary_mapping(vec![target]));
    w.emu.reset_calls();
    let err = run(&w, &cfg, CANARY_EVENT).await.unwrap_err();
    assert!(matches!(err, RollbackError::TargetsFailed { .. }), "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert_eq!(
        w.emu.count("lambda", "UpdateAlias"),
        0,
        "nothing was written"
    );
    assert_eq!(
        alias_state(&w, "checkout", "live").await,
        ("2".to_string(), vec![("3".to_string(), 0.2)])
    );
}

#[tokio::test]
async fn every_envelope_and_alarm_kind_rolls_back() {
    let cases = [
        (
            "rollback/sns-single-metric-alarm.json",
            "checkout-canary-errors",
        ),
        (
            "rollback/sns-metric-math-alarm.json",
            "checkout-canary-error-rate",
        ),
        (
            "rollback/sns-anomaly-detection-alarm.json",
            "checkout-latency-anomaly",
        ),
        (
            "rollback/sns-composite-alarm.json",
            "checkout-canary-unhealthy",
        ),
        (
            "rollback/alarm-action-direct.json",
            "checkout-canary-errors",
        ),
        (
            "rollback/eventbridge-alarm-state-change.json",
            "checkout-canary-errors",
        ),
    ];
    let w = world().await;
    checkout_canary(&w).await;
    let cfg = config(mapping(
        &["checkout-*"],
        vec![alias_target("checkout", "live")],
    ));
    for (file, alarm) in cases {
        set_alias(&w, "checkout", "live", "1", &[("2", 0.1)]).await;
        let summary = run(&w, &cfg, file)
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(summary.alarms[0].alarm_name, alarm, "{file}");
        assert_eq!(summary.targets[0].outcome, Outcome::Restored, "{file}");
        assert_eq!(live(&w).await, only("1"), "{file}");
    }
}

#[tokio::test]
async fn codedeploy_in_flight_is_stopped_and_codedeploy_restores_the_alias() {
    let (w, deployment) = canary_in_flight(json!({"rollback_delay": 0.3})).await;
    let cfg = checkout_config();

    let summary = run(&w, &cfg, CANARY_EVENT).await.expect("rollback");

    let report = &summary.targets[0];
    assert_eq!(report.action, Action::StopDeployment);
    assert_eq!(report.outcome, Outcome::RestoredByCodeDeploy, "{report:?}");
    assert_eq!(report.deployment_id.as_deref(), Some(deployment.as_str()));
    assert_eq!(
        w.emu.stopped_deployments(),
        vec![json!({"deploymentId": deployment, "autoRollbackEnabled": true})]
    );
    // Rollback did not edit the alias behind CodeDeploy's back: CodeDeploy's rollback did.
    assert_eq!(w.emu.count("lambda", "UpdateAlias"), 0);
    assert_eq!(live(&w).await, only("1"));
}

#[tokio::test]
async fn codedeploy_that_does_not_restore_in_time_is_backed_up_by_rollback() {
    let (w, _) = canary_in_flight(json!({"auto_rollback": false})).await;
    let mut target = alias_target("checkout", "live");
    target["codeDeploy"] =
        json!({"application": "checkout-app", "deploymentGroup": "checkout-app-group"});
    let cfg = config_with(
        canary_mapping(vec![target]),
        &[("CODEDEPLOY_ROLLBACK_WAIT", "400")],
    );

    let summary = run(&w, &cfg, CANARY_EVENT).await.expect("rollback");

    let report = &summary.targets[0];
    assert_eq!(report.outcome, Outcome::Restored, "{report:?}");
    assert_eq!(report.action, Action::RestoreAlias);
    assert!(
        report
            .detail
            .as_deref()
            .unwrap()
            .contains("had not restored"),
        "{report:?}"
    );
    assert_eq!(w.emu.stopped_deployments().len(), 1);
    assert_eq!(live(&w).await, only("1"));
}

#[tokio::test]
async fn a_finished_deployment_is_not_stopped() {
    let w = world().await;
    checkout_canary(&w).await;
    let deployment = checkout_deployment(&w, "1", "2").await;
    w.emu
        .set_deployment(&deployment, json!({"status": "Succeeded"}));
    let cfg = checkout_config();

    let summary = run(&w, &cfg, CANARY_EVENT).await.expect("rollback");

    assert_eq!(summary.targets[0].action, Action::RestoreAlias);
    assert_eq!(w.emu.count("codedeploy", "StopDeployment"), 0);
    assert_eq!(live(&w).await, only("1"));
}

#[tokio::test]
async fn lattice_default_action_and_weighted_rules_go_back_to_production() {
    let w = world().await;
    let lat = lattice(&w, (90, 10)).await;
    let api = lattice_rule(
        &w,
        &lat,
        "api-canary",
        10,
        "/api",
        &[(&lat.production, 50), (&lat.canary, 50)],
    )
    .await;
    // A rule that does not involve production routes other traffic: it is not touched.
    let admin = lattice_rule(&w, &lat, "admin", 20, "/admin", &[(&lat.other, 100)]).await;
    let cfg = lattice_config(&lat);

    let summary = run(&w, &cfg, LATTICE_EVENT).await.expect("rollback");

    let report = &summary.targets[0];
    assert_eq!(report.outcome, Outcome::Restored, "{report:?}");
    assert_eq!(report.action, Action::RestoreListener);
    assert_eq!(
        listener_weights(&w, &lat).await,
        vec![(lat.production.clone(), 100), (lat.canary.clone(), 0)]
    );
    assert_eq!(
        rule_weights(&w, &lat, &api).await,
        vec![(lat.production.clone(), 100), (lat.canary.clone(), 0)]
    );
    assert_eq!(
        rule_weights(&w, &lat, &admin).await,
        vec![(lat.other.clone(), 100)]
    );
    let before = report.before.as_ref().unwrap().to_string();
    assert!(
        before.contains("\"weight\":90") && before.contains("\"weight\":10"),
        "{before}"
    );
    assert_eq!(w.emu.count("vpc-lattice", "UpdateListener"), 1);
    assert_eq!(w.emu.count("vpc-lattice", "UpdateRule"), 1);
}

#[tokio::test]
async fn lattice_listener_without_a_production_forward_is_an_error() {
    let w = world().await;
    let lat = lattice(&w, (90, 10)).await;
    let mut target = lattice_target(&lat);
    target["productionTargetGroup"] = json!(lat.other);
    let cfg = config(mapping(&["orders-canary-5xx"], vec![target]));

    let err = run(&w, &cfg, LATTICE_EVENT).await.unwrap_err();

    assert!(
        err.to_string()
            .contains("no forward action that includes the production target group"),
        "{err}"
    );
    assert!(writes(&w.emu).is_empty(), "{:?}", writes(&w.emu));
    assert_eq!(
        listener_weights(&w, &lat).await,
        vec![(lat.production.clone(), 90), (lat.canary.clone(), 10)]
    );
}

#[tokio::test]
async fn a_second_delivery_changes_nothing() {
    let w = world().await;
    checkout_canary(&w).await;
    let lat = lattice(&w, (90, 10)).await;
    let cfg = config(json!([
        {"alarms": ["checkout-canary-errors"], "targets": [alias_target("checkout", "live")]},
        {"alarms": ["orders-canary-5xx"], "targets": [lattice_target(&lat)]}
    ]));
    for file in [CANARY_EVENT, LATTICE_EVENT] {
        run(&w, &cfg, file).await.expect("first delivery");
    }
    w.emu.reset_calls();

    for file in [CANARY_EVENT, LATTICE_EVENT] {
        let summary = run(&w, &cfg, file).await.expect("second delivery");
        assert_eq!(summary.targets[0].outcome, Outcome::AlreadyStable, "{file}");
        assert_eq!(summary.targets[0].action, Action::None, "{file}");
    }
    assert!(writes(&w.emu).is_empty(), "{:?}", writes(&w.emu));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_duplicates_end_in_one_restore_and_no_errors() {
    let w = world().await;
    checkout_canary(&w).await;
    let lat = lattice(&w, (90, 10)).await;
    let cfg = config(canary_mapping(vec![
        alias_target("checkout", "live"),
        lattice_target(&lat),
    ]));
    let evt = event(CANARY_EVENT);

    let runs = futures::future::join_all(
        (0..10).map(|_| handle(&w.clients, &cfg, &evt, Deadline::default())),
    )
    .await;

    let mut restored_alias = 0;
    for run in runs {
        let summary = run.expect("every duplicate succeeds");
        for report in summary.targets {
            assert!(
                matches!(report.outcome, Outcome::Restored | Outcome::AlreadyStable),
                "{report:?}"
            );
            if report.target.starts_with("lambda-alias") && report.outcome == Outcome::Restored {
                restored_alias += 1;
            }
        }
    }
    // RevisionId lets exactly one writer win; the others re-read and find it done.
    assert_eq!(restored_alias, 1);
    assert_eq!(live(&w).await, only("1"));
    assert_eq!(
        listener_weights(&w, &lat).await,
        vec![(lat.production.clone(), 100), (lat.canary.clone(), 0)]
    );
}

#[tokio::test]
async fn a_revision_conflict_is_re_read_and_retried() {
    let w = world().await;
    checkout_canary(&w).await;
    // Between rollback's read and its write, a shift moves the canary to 50%.
    w.emu.arm_fault(
        json!({"service": "lambda", "operation": "UpdateAlias", "kind": "concurrent_alias_update",
        "function_version": "1", "routing_config": {"AdditionalVersionWeights": {"2": 0.5}}}),
    );
    let cfg = checkout_config();

    let summary = run(&w, &cfg, CANARY_EVENT).await.expect("rollback");

    assert_eq!(summary.targets[0].outcome, Outcome::Restored);
    assert_eq!(
        w.emu.count("lambda", "UpdateAlias"),
        2,
        "one write lost the race, the retry won"
    );
    assert_eq!(
        w.emu.count("lambda", "GetAlias"),
        2,
        "the alias was read again after the conflict"
    );
    assert_eq!(live(&w).await, only("1"));
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried() {
    let w = world().await;
    checkout_canary(&w).await;
    let lat = lattice(&w, (90, 10)).await;
    w.emu.arm_fault(
        json!({"service": "lambda", "operation": "UpdateAlias", "kind": "throttle", "count": 2}),
    );
    w.emu.arm_fault(
        json!({"service": "lambda", "operation": "GetAlias", "kind": "error500", "count": 1}),
    );
    w.emu.arm_fault(json!({"service": "vpc-lattice", "operation": "UpdateListener", "kind": "throttle", "count": 2}));
    w.emu.arm_fault(json!({"service": "codedeploy", "operation": "ListDeployments", "kind": "throttle", "count": 1}));
    let cfg = config(canary_mapping(vec![
        alias_target("checkout", "live"),
        lattice_target(&lat),
    ]));

    let summary = run(&w, &cfg, CANARY_EVENT).await.expect("rollback");

    assert!(
        summary
            .targets
            .iter()
            .all(|r| r.outcome == Outcome::Restored),
        "{:?}",
        summary.targets
    );
    assert_eq!(w.emu.count("lambda", "UpdateAlias"), 3);
    assert_eq!(w.emu.count("vpc-lattice", "UpdateListener"), 3);
    assert_eq!(live(&w).await, only("1"));
}

#[tokio::test]
async fn an_unmapped_alarm_is_refused_and_nothing_is_touched() {
    let w = world().await;
    checkout_canary(&w).await;
    w.emu.reset_calls();
    let cfg = checkout_config();

    let err = run(&w, &cfg, "rollback/sns-unmapped-alarm.json")
        .await
        .unwrap_err();

    match err {
        RollbackError::Unmapped { unmapped, .. } => {
            assert_eq!(unmapped, vec!["billing-queue-depth"])
        }
        other => panic!("expected a refusal, got {other}"),
    }
    assert!(w.emu.calls().is_empty(), "{:?}", w.emu.calls());
}

#[tokio::test]
async fn ok_and_insufficient_data_are_ignored_without_aws_calls() {
    let w = world().await;
    let cfg = config(mapping(
        &["checkout-*"],
        vec![alias_target("checkout", "live")],
    ));
    for file in [
        "rollback/sns-ok-transition.json",
        "rollback/sns-insufficient-data.json",
    ] {
        let summary = run(&w, &cfg, file).await.expect(file);
        assert!(summary.targets.is_empty(), "{file}");
        assert_eq!(summary.ignored.len(), 1, "{file}");
    }
    assert!(w.emu.calls().is_empty(), "{:?}", w.emu.calls());
}

#[tokio::test]
async fn malformed_events_are_clear_errors_without_aws_calls() {
    let w = world().await;
    let cfg = config(mapping(
        &["checkout-*"],
        vec![alias_target("checkout", "live")],
    ));
    let cases = [
        (
            "rollback/malformed/sns-message-not-json.json",
            "Records[0].Sns.Message: is not a CloudWatch alarm notification: not JSON",
        ),
        (
            "rollback/malformed/sns-empty-records.json",
            "the SNS event has no records",
        ),
        (
            "rollback/malformed/unknown-envelope.json",
            "unknown event envelope",
        ),
        (
            "rollback/malformed/sns-missing-new-state.json",
            "Records[0].Sns.Message.NewStateValue: is missing",
        ),
        (
            "rollback/malformed/sns-unknown-state.json",
            "unknown alarm state \"ON_FIRE\"",
        ),
        (
            "rollback/malformed/alarm-action-missing-alarm-data.json",
            "unknown event envelope",
        ),
        ("rollback/malformed/not-an-object.json", "not a JSON object"),
    ];
    for (file, expected) in cases {
        let err = run(&w, &cfg, file).await.unwrap_err();
        assert!(matches!(err, RollbackError::BadEvent(_)), "{file}: {err}");
        assert!(err.to_string().contains(expected), "{file}: {err}");
    }
    assert!(w.emu.calls().is_empty(), "{:?}", w.emu.calls());
}

#[tokio::test]
async fn dry_run_plans_and_writes_nothing() {
    let w = world().await;
    checkout_canary(&w).await;
    let lat = lattice(&w, (90, 10)).await;
    let cfg = config_with(
        canary_mapping(vec![alias_target("checkout", "live"), lattice_target(&lat)]),
        &[("DRY_RUN", "true")],
    );

    let summary = run(&w, &cfg, CANARY_EVENT).await.expect("dry run");

    assert!(summary.dry_run);
    for report in &summary.targets {
        assert_eq!(report.outcome, Outcome::Planned, "{report:?}");
    }
    assert_eq!(
        summary.targets[0].after,
        Some(json!({"version": "1", "weights": {}}))
    );
    assert!(writes(&w.emu).is_empty(), "{:?}", writes(&w.emu));
    assert_eq!(
        alias_state(&w, "checkout", "live").await,
        ("1".to_string(), vec![("2".to_string(), 0.1)])
    );
    assert_eq!(
        listener_weights(&w, &lat).await,
        vec![(lat.production.clone(), 90), (lat.canary.clone(), 10)]
    );
}

#[tokio::test]
async fn one_failing_target_does_not_stop_the_others() {
    let w = world().await;
    checkout_canary(&w).await;
    let lat = lattice(&w, (90, 10)).await;
    let cfg = config(canary_mapping(vec![
        alias_target("no-such-function", "live"),
        alias_target("checkout", "live"),
        lattice_target(&lat),
    ]));

    let err = run(&w, &cfg, CANARY_EVENT).await.unwrap_err();

    match &err {
        RollbackError::TargetsFailed { failed, summary } => {
            assert_eq!(
                failed,
                &vec!["lambda-alias:no-such-function:live".to_string()]
            );
            assert!(summary.contains("\"outcome\":\"restored\""), "{summary}");
        }
        other => panic!("expected a partial failure, got {other}"),
    }
    assert_eq!(live(&w).await, only("1"));
    assert_eq!(
        listener_weights(&w, &lat).await,
        vec![(lat.production.clone(), 100), (lat.canary.clone(), 0)]
    );
}

#[tokio::test]
async fn the_summary_is_published_when_a_topic_is_configured() {
    let w = world().await;
    checkout_canary(&w).await;
    let topic = w
        .clients
        .sns()
        .create_topic()
        .name("shiftguard-rollbacks")
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let cfg = config_with(
        canary_mapping(vec![alias_target("checkout", "live")]),
        &[("NOTIFY_TOPIC_ARN", &topic)],
    );

    let summary = run(&w, &cfg, CANARY_EVENT).await.expect("rollback");

    assert!(summary
        .notification
        .as_deref()
        .unwrap()
        .starts_with(&format!("published to {topic}")));
    let publish = w
        .emu
        .calls()
        .into_iter()
        .find(|c| c["operation"] == "Publish")
        .expect("a Publish call");
    let body = publish["body"].as_str().unwrap();
    assert!(
        body.contains("lambda-alias%3Acheckout%3Alive") && body.contains("restored"),
        "{body}"
    );

    // A topic that cannot be published to makes the invocation fail, after traffic was handled.
    let cfg = config_with(
        canary_mapping(vec![alias_target("checkout", "live")]),
        &[(
            "NOTIFY_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:deleted-topic",
        )],
    );
    let err = run(&w, &cfg, CANARY_EVENT).await.unwrap_err();
    assert!(matches!(err, RollbackError::Notify { .. }), "{err}");
}

/// A late delivery (a retry an hour later) of an alarm from before a rollout began is not about
/// that rollout: on a Lattice listener, as on an alias, it is left alone — the newer rollout's
/// canary share is not taken away.
#[tokio::test]
async fn a_late_alarm_leaves_a_newer_lattice_rollout_alone() {
    let w = world().await;
    let lat = lattice(&w, (90, 10)).await;
    let arn = get_listener(&w, &lat).await.arn.unwrap();
    let now = shiftguard_common::emf::now_ms();
    let marker = format!("id=orders-v9 step=1 weight=10 at={now} status=baking start={now}");
    w.clients
        .lattice()
        .tag_resource()
        .resource_arn(&arn)
        .tags("shiftguard:rollout", marker)
        .send()
        .await
        .unwrap();
    w.emu.reset_calls();
    let cfg = lattice_config(&lat);
    // The sample event's alarm changed state on 2026-11-21, long before this rollout began.
    let summary = run(&w, &cfg, LATTICE_EVENT)
        .await
        .expect("left alone is not a failure");
    assert_eq!(
        summary.targets[0].outcome,
        Outcome::LeftAlone,
        "{:?}",
        summary.targets[0]
    );
    assert!(writes(&w.emu).is_empty(), "{:?}", writes(&w.emu));
    assert_eq!(
        listener_weights(&w, &lat).await,
        vec![(lat.production.clone(), 90), (lat.canary.clone(), 10)]
    );
    // A dry run plans what the real run does: left alone, not "planned".
    let dry = config_with(
        mapping(&["orders-canary-5xx"], vec![lattice_target(&lat)]),
        &[("DRY_RUN", "true")],
    );
    let summary = run(&w, &dry, LATTICE_EVENT).await.expect("dry run");
    assert_eq!(
        summary.targets[0].outcome,
        Outcome::LeftAlone,
        "{:?}",
        summary.targets[0]
    );
}

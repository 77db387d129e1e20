//! The sequences real CodeDeploy deployments and real alarms produce, against the emulator: a
//! pointer alias not created yet, CodeDeploy's own rollback deployment in flight when the alarm
//! arrives again, a late retry of an old alarm, CodeDeploy calls that fail, a hung call near the
//! deadline. Each test names the failure it reproduces (issue 9's numbering in brackets).

mod support;

use std::time::{Duration, Instant};

use aws_sdk_codedeploy::types::{
    ComputePlatform, RevisionLocation, RevisionLocationType, S3Location,
};
use rollback::report::{Action, Outcome};
use rollback::{handle, Deadline, RollbackError};
use serde_json::{json, Value};
use shiftguard_testkit::event;
use support::*;

const SNS: &str = "rollback/sns-single-metric-alarm.json";
const EVENTBRIDGE: &str = "rollback/eventbridge-alarm-state-change.json";

fn alarm_targets(target: Value) -> Value {
    canary_mapping(vec![target])
}

/// An emulator fault: `service`'s `operation` answers AccessDenied every time.
fn access_denied(service: &str, operation: &str) -> Value {
    json!({"service": service, "operation": operation, "kind": "error", "status": 400,
        "code": "AccessDeniedException", "message": "not allowed", "count": -1})
}

/// Every version the alias was ever written to by an `UpdateAlias` the emulator received.
fn alias_writes(w: &World) -> Vec<String> {
    w.emu
        .calls()
        .iter()
        .filter(|c| c["operation"] == "UpdateAlias")
        .filter_map(|c| {
            let body: Value = serde_json::from_str(c["body"].as_str()?).ok()?;
            body["FunctionVersion"].as_str().map(String::from)
        })
        .collect()
}

// [1] The pointer alias (`stableAlias: blue`, as the SAM example configures) does not exist until
// post-traffic's first success: an alarm in the very first canary must still stop it.
#[tokio::test]
async fn an_alarm_in_the_first_canary_before_the_pointer_exists_stops_the_deployment() {
    let (w, deployment) = canary_in_flight(json!({"rollback_delay": 0.2})).await;
    let mut target = alias_target("checkout", "live");
    target["stableAlias"] = json!("blue");
    let cfg = config(alarm_targets(target));

    let summary = run(&w, &cfg, SNS).await.expect("rollback");

    let report = &summary.targets[0];
    assert_eq!(report.outcome, Outcome::RestoredByCodeDeploy, "{report:#?}");
    assert_eq!(report.deployment_id.as_deref(), Some(deployment.as_str()));
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("does not exist yet")),
        "the missing pointer is said: {report:#?}"
    );
    assert_eq!(live(&w).await, only("1"));
}

// [2] The same alarm through SNS and EventBridge: the second delivery arrives while CodeDeploy's
// rollback deployment (created by the first delivery's stop) runs. It must not stop that
// deployment, and nothing may put the version being rolled away from back on traffic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_delivery_during_codedeploys_rollback_waits_for_it() {
    let (w, deployment) = canary_in_flight(json!({"rollback_delay": 1.5})).await;
    let cfg = checkout_config();

    let first = run(&w, &cfg, SNS);
    let second = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        run(&w, &cfg, EVENTBRIDGE).await
    };
    let (first, second) = tokio::join!(first, second);
    let (first, second) = (first.expect("first"), second.expect("second"));

    assert_eq!(first.targets[0].action, Action::StopDeployment);
    assert_eq!(first.targets[0].outcome, Outcome::RestoredByCodeDeploy);
    let rb = &second.targets[0];
    assert_eq!(rb.action, Action::AwaitCodeDeployRollback, "{rb:#?}");
    assert_eq!(rb.outcome, Outcome::RestoredByCodeDeploy, "{rb:#?}");
    assert_ne!(rb.deployment_id.as_deref(), Some(deployment.as_str()));
    assert_eq!(
        w.emu.stopped_deployments(),
        vec![json!({"deploymentId": deployment, "autoRollbackEnabled": true})],
        "only the original deployment was stopped, never CodeDeploy's rollback"
    );
    assert!(alias_writes(&w).is_empty(), "{:?}", alias_writes(&w));
    assert_eq!(live(&w).await, only("1"));
}

// [2] The same alarm through SNS, EventBridge and the direct alarm action at the same instant:
// all three see the deployment in flight and try to stop it; the ones CodeDeploy answers
// "already completed" must look again and wait for CodeDeploy's rollback, never write the alias
// behind its back.
#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn simultaneous_deliveries_stop_once_and_never_write_behind_codedeploy() {
    let (w, deployment) = canary_in_flight(json!({"rollback_delay": 1.0})).await;
    let cfg = checkout_config();
    let (sns, bridge, action) = (
        event(SNS),
        event(EVENTBRIDGE),
        event("rollback/alarm-action-direct.json"),
    );

    let (a, b, c) = tokio::join!(
        handle(&w.clients, &cfg, &sns, Deadline::default()),
        handle(&w.clients, &cfg, &bridge, Deadline::default()),
        handle(&w.clients, &cfg, &action, Deadline::default()),
    );

    for summary in [a, b, c] {
        let summary = summary.expect("every delivery ends well");
        let report = &summary.targets[0];
        assert_eq!(report.outcome, Outcome::RestoredByCodeDeploy, "{report:#?}");
    }
    assert_eq!(
        w.emu.stopped_deployments(),
        vec![json!({"deploymentId": deployment, "autoRollbackEnabled": true})]
    );
    assert!(alias_writes(&w).is_empty(), "{:?}", alias_writes(&w));
    assert_eq!(live(&w).await, only("1"));
}

// [2] CodeDeploy rolled back on its own (its alarm or a failed hook) and its rollback is slow:
// rollback backs it up only with the version it restores.
#[tokio::test]
async fn a_slow_codedeploy_rollback_is_backed_up_only_toward_the_version_it_restores() {
    let w = world().await;
    function(&w, "checkout", 2).await;
    alias(&w, "checkout", "live", "1", &[("2", 0.3)]).await;
    let deployment = deployment_in_flight(&w, ("1", "2"), BEFORE_THE_ALARM, json!({})).await;
    let started = w.emu.control(
        "POST",
        &format!("/_shiftguard/codedeploy/deployments/{deployment}/rollback"),
        Some(&json!({"restore": false})),
    );
    let rollback_id = started["rollbackDeploymentId"]
        .as_str()
        .unwrap()
        .to_string();
    let cfg = config_with(
        alarm_targets(alias_target("checkout", "live")),
        &[("CODEDEPLOY_ROLLBACK_WAIT", "300")],
    );

    let summary = run(&w, &cfg, SNS).await.expect("rollback");

    let report = &summary.targets[0];
    assert_eq!(report.outcome, Outcome::Restored, "{report:#?}");
    assert_eq!(report.deployment_id.as_deref(), Some(rollback_id.as_str()));
    assert!(
        w.emu.stopped_deployments().is_empty(),
        "a rollback deployment is never stopped"
    );
    assert_eq!(alias_writes(&w), vec!["1".to_string()]);
    assert_eq!(live(&w).await, only("1"));
}

// [5] Lambda retries a failed invocation minutes later; meanwhile a new, healthy deployment has
// started. The old alarm is not about it.
#[tokio::test]
async fn a_late_retry_of_an_old_alarm_leaves_a_newer_deployment_alone() {
    let w = world().await;
    function(&w, "checkout", 3).await;
    alias(&w, "checkout", "live", "2", &[("3", 0.1)]).await;
    let newer = deployment_in_flight(&w, ("2", "3"), AFTER_THE_ALARM, json!({})).await;
    let cfg = checkout_config();

    let summary = run(&w, &cfg, SNS)
        .await
        .expect("a stale alarm is not an error");

    let report = &summary.targets[0];
    assert_eq!(report.outcome, Outcome::LeftAlone, "{report:#?}");
    assert_eq!(report.deployment_id.as_deref(), Some(newer.as_str()));
    assert!(
        report
            .decision
            .as_deref()
            .unwrap()
            .contains("after the alarm"),
        "{report:#?}"
    );
    assert!(writes(&w.emu).is_empty(), "{:?}", writes(&w.emu));
}

// [6] A CodeDeploy lookup that fails: traffic is restored, but the invocation fails so that the
// stop is retried, with the lookup error in the report.
#[tokio::test]
async fn a_failed_codedeploy_lookup_restores_traffic_and_fails_for_a_retry() {
    for operation in ["ListDeployments", "GetDeploymentTarget"] {
        let (w, _) = canary_in_flight(json!({"auto_rollback": false})).await;
        w.emu.arm_fault(access_denied("codedeploy", operation));
        let cfg = checkout_config();

        let err = run(&w, &cfg, SNS).await.unwrap_err();

        assert!(
            matches!(err, RollbackError::Incomplete { .. }),
            "{operation}: {err}"
        );
        assert_eq!(err.error_type(), "Rollback.Incomplete");
        let text = err.to_string();
        assert!(
            text.contains(operation) && text.contains("AccessDenied"),
            "{text}"
        );
        assert!(text.contains("\"outcome\":\"restored\""), "{text}");
        assert_eq!(live(&w).await, only("1"), "{operation}");
    }
}

// [6] StopDeployment refused: restore first, then fail so that Lambda retries the stop.
#[tokio::test]
async fn a_refused_stop_restores_traffic_and_fails_for_a_retry() {
    let (w, _) = canary_in_flight(json!({})).await;
    w.emu
        .arm_fault(access_denied("codedeploy", "StopDeployment"));
    let cfg = checkout_config();

    let err = run(&w, &cfg, SNS).await.unwrap_err();

    assert!(matches!(err, RollbackError::Incomplete { .. }), "{err}");
    assert!(err.to_string().contains("StopDeployment"), "{err}");
    assert_eq!(live(&w).await, only("1"));
}

// [6] The region-wide scan reads no targets of deployments on other compute platforms.
#[tokio::test]
async fn the_region_wide_scan_skips_other_compute_platforms_cheaply() {
    let (w, lambda_deployment) = canary_in_flight(json!({"rollback_delay": 0.1})).await;
    let cd = &w.clients.codedeploy;
    cd.create_application()
        .application_name("fleet")
        .compute_platform(ComputePlatform::Server)
        .send()
        .await
        .expect("CreateApplication");
    cd.create_deployment_group()
        .application_name("fleet")
        .deployment_group_name("fleet-group")
        .service_role_arn("arn:aws:iam::123456789012:role/codedeploy")
        .send()
        .await
        .expect("CreateDeploymentGroup");
    let mut ec2 = Vec::new();
    for key in ["a.zip", "b.zip", "c.zip"] {
        let id = cd
            .create_deployment()
            .application_name("fleet")
            .deployment_group_name("fleet-group")
            .revision(
                RevisionLocation::builder()
                    .revision_type(RevisionLocationType::S3)
                    .s3_location(S3Location::builder().bucket("b").key(key).build())
                    .build(),
            )
            .send()
            .await
            .expect("CreateDeployment")
            .deployment_id
            .unwrap();
        w.emu.set_deployment(&id, json!({"status": "InProgress"}));
        ec2.push(id);
    }
    w.emu.reset_calls();
    let cfg = checkout_config();

    let summary = run(&w, &cfg, SNS).await.expect("rollback");

    assert_eq!(
        summary.targets[0].deployment_id.as_deref(),
        Some(lambda_deployment.as_str())
    );
    let target_reads: Vec<String> = w
        .emu
        .calls()
        .iter()
        .filter(|c| c["operation"] == "ListDeploymentTargets")
        .map(|c| c["body"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(target_reads.len(), 1, "{target_reads:?}");
    assert!(ec2.iter().all(|id| !target_reads[0].contains(id.as_str())));
    assert_eq!(w.emu.count("codedeploy", "BatchGetDeployments"), 1);
}

// [8] One alias read that fails while waiting for CodeDeploy does not abandon the backup, and the
// wait is budgeted from the deadline, not before the first round trip.
#[tokio::test]
async fn waiting_for_codedeploy_survives_a_read_error_and_fits_the_deadline() {
    let (w, _) = canary_in_flight(json!({"auto_rollback": false})).await;
    let cfg = config_with(
        alarm_targets(alias_target("checkout", "live")),
        &[("CODEDEPLOY_ROLLBACK_WAIT", "60s")],
    );
    // The first round trip is slow; then one poll read fails (not retryable by the SDK).
    w.emu.arm_fault(json!({"service": "codedeploy", "operation": "ListDeployments", "kind": "latency", "delay_ms": 1500}));
    w.emu.arm_fault(json!({"service": "lambda", "operation": "GetAlias", "kind": "error", "status": 400, "code": "AccessDeniedException", "message": "blip", "skip": 1}));

    let started = Instant::now();
    let summary = handle(
        &w.clients,
        &cfg,
        &event(SNS),
        Deadline::after(Duration::from_secs(6)),
    )
    .await
    .expect("rollback");

    let elapsed = started.elapsed();
    let report = &summary.targets[0];
    assert_eq!(report.outcome, Outcome::Restored, "{report:#?}");
    assert!(
        elapsed < Duration::from_secs(6),
        "finished before the deadline: {elapsed:?}"
    );
    assert_eq!(live(&w).await, only("1"));
}

// [9] A RevisionId conflict is decided again from the new state: another writer started a new
// canary (3 → 4) between our read and our write, so the older version is now 3, not 1.
#[tokio::test]
async fn a_revision_conflict_is_decided_again() {
    let w = world().await;
    function(&w, "checkout", 4).await;
    alias(&w, "checkout", "live", "1", &[("2", 0.1)]).await;
    w.emu.arm_fault(json!({
        "service": "lambda", "operation": "UpdateAlias", "kind": "concurrent_alias_update",
        "function_version": "3", "routing_config": {"AdditionalVersionWeights": {"4": 0.2}},
    }));
    let cfg = checkout_config();

    let summary = run(&w, &cfg, SNS).await.expect("rollback");

    assert_eq!(
        summary.targets[0].outcome,
        Outcome::Restored,
        "{:#?}",
        summary.targets
    );
    assert_eq!(live(&w).await, only("3"));
    assert_eq!(alias_writes(&w), vec!["1".to_string(), "3".to_string()]);
}

// [9] Lattice: the read after the last write cycle is judged too (a correct end state was
// reported as failed).
#[tokio::test]
async fn lattice_verifies_the_last_write_cycle() {
    let w = world().await;
    let lat = lattice(&w, (90, 10)).await;
    w.emu.arm_fault(json!({"service": "vpc-lattice", "operation": "UpdateListener", "kind": "overwritten", "count": 2}));
    let cfg = config(alarm_targets(lattice_target(&lat)));

    let summary = run(&w, &cfg, SNS)
        .await
        .expect("verified on the third cycle");

    assert_eq!(
        summary.targets[0].outcome,
        Outcome::Restored,
        "{:#?}",
        summary.targets
    );
    assert_eq!(w.emu.count("vpc-lattice", "UpdateListener"), 3);
    assert_eq!(
        listener_weights(&w, &lat).await,
        vec![(lat.production.clone(), 100), (lat.canary.clone(), 0)]
    );
}

// [11] An AppSpec whose CurrentVersion is $LATEST: on no path may the alias end on $LATEST.
#[tokio::test]
async fn an_appspec_current_version_of_latest_is_never_written() {
    for fault in [None, Some(access_denied("codedeploy", "StopDeployment"))] {
        let w = world().await;
        checkout_canary(&w).await;
        deployment_in_flight(
            &w,
            ("$LATEST", "2"),
            BEFORE_THE_ALARM,
            json!({"auto_rollback": false}),
        )
        .await;
        if let Some(f) = fault.clone() {
            w.emu.arm_fault(f);
        }
        let cfg = config_with(
            alarm_targets(alias_target("checkout", "live")),
            &[("CODEDEPLOY_ROLLBACK_WAIT", "200")],
        );

        let _ = run(&w, &cfg, SNS).await;

        assert!(
            !alias_writes(&w).iter().any(|v| v == "$LATEST"),
            "{fault:?}: {:?}",
            alias_writes(&w)
        );
        assert_eq!(live(&w).await, only("1"), "{fault:?}");
    }
}

// [12] Lambda answers ResourceConflictException while a function update is in progress: retried
// within the deadline like a throttle.
#[tokio::test]
async fn a_function_update_in_progress_is_waited_out() {
    let w = world().await;
    checkout_canary(&w).await;
    w.emu.arm_fault(json!({"service": "lambda", "operation": "UpdateAlias", "kind": "error", "status": 409, "code": "ResourceConflictException", "message": "The operation cannot be performed at this time. An update is in progress for resource", "count": 2}));
    let cfg = checkout_config();

    let summary = run(&w, &cfg, SNS).await.expect("rollback");

    assert_eq!(summary.targets[0].outcome, Outcome::Restored);
    assert_eq!(w.emu.count("lambda", "UpdateAlias"), 3);
    assert_eq!(live(&w).await, only("1"));
}

// [13] A hung AWS call and a short function timeout: rollback stops in time and fails with the
// partial summary, instead of being killed by Lambda with nothing said.
#[tokio::test]
async fn a_hung_call_ends_before_the_deadline_with_the_partial_summary() {
    let w = world().await;
    checkout_canary(&w).await;
    w.emu.arm_fault(json!({"service": "lambda", "operation": "UpdateAlias", "kind": "latency", "delay_ms": 8000}));
    let cfg = checkout_config();

    let started = Instant::now();
    let err = handle(
        &w.clients,
        &cfg,
        &event(SNS),
        Deadline::after(Duration::from_secs(3)),
    )
    .await
    .unwrap_err();

    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.error_type(), "Rollback.TargetsFailed");
    let text = err.to_string();
    assert!(text.contains("out of time"), "{text}");
    assert!(
        text.contains("\"before\":{\"version\":\"1\""),
        "what was read is kept: {text}"
    );
}

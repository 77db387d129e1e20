//! Rollback's reach (issue 12): API Gateway stage canaries, an operator's rollback, and
//! identifiers in every form users write them — against the emulator.

mod support;

use rollback::{handle, Deadline, RollbackError};
use serde_json::{json, Value};
use shiftguard_testkit::{event, fresh_event};
use support::*;

const ALARM_EVENT: &str = "rollback/sns-single-metric-alarm.json";
const EVENTBRIDGE_EVENT: &str = "rollback/eventbridge-alarm-state-change.json";
const OPERATOR_EVENT: &str = "rollback/operator-rollback.json";

fn mapped(target: Value) -> Value {
    json!([{"alarms": ["checkout-*"], "targets": [target]}])
}

/// Rollback's handler on `event`, with the default deadline.
async fn roll(
    w: &World,
    cfg: &rollback::Config,
    event: &Value,
) -> Result<rollback::report::Summary, RollbackError> {
    handle(&w.clients, cfg, event, Deadline::default()).await
}

/// A report's outcome as the summary spells it (`restored`, `already-stable`, …).
fn outcome(report: &rollback::report::TargetReport) -> Value {
    serde_json::to_value(report.outcome).unwrap()
}

#[tokio::test]
async fn an_alarm_sends_the_stage_canary_nothing_and_keeps_it_for_investigation() {
    let w = world().await;
    let api = api(&w, Some(10.0)).await;
    assert_eq!(stage_state(&w, &api).await.2, Some(10.0));
    let cfg = config(mapped(stage_target(&api)));

    let summary = roll(&w, &cfg, &fresh_event(ALARM_EVENT))
        .await
        .expect("rolled back");
    let report = &summary.targets[0];
    assert_eq!(outcome(report), "restored", "{report:?}");
    assert_eq!(
        serde_json::to_value(report.action).unwrap(),
        "restore-stage"
    );
    assert_eq!(
        report.before.as_ref().unwrap()["canary"]["percentTraffic"],
        10.0
    );
    assert_eq!(
        report.after.as_ref().unwrap()["canary"]["percentTraffic"],
        0.0
    );
    assert_eq!(
        stage_state(&w, &api).await,
        (
            Some(api.production.clone()),
            Some(api.canary.clone()),
            Some(0.0)
        ),
        "production keeps the stage, the canary deployment is kept at 0%"
    );

    // The same alarm through EventBridge a moment later: already stable, nothing written.
    let before = writes(&w.emu).len();
    let again = roll(&w, &cfg, &fresh_event(EVENTBRIDGE_EVENT))
        .await
        .expect("idempotent");
    assert_eq!(outcome(&again.targets[0]), "already-stable");
    assert_eq!(
        writes(&w.emu).len(),
        before,
        "a second delivery writes nothing"
    );
}

#[tokio::test]
async fn a_stage_without_a_canary_is_already_stable_and_a_dry_run_writes_nothing() {
    let w = world().await;
    let plain = api(&w, None).await;
    let summary = roll(
        &w,
        &config(mapped(stage_target(&plain))),
        &fresh_event(ALARM_EVENT),
    )
    .await
    .expect("nothing to do is not a failure");
    let report = &summary.targets[0];
    assert_eq!(outcome(report), "already-stable");
    assert!(report.decision.as_deref().unwrap().contains("no canary"));

    let w = world().await;
    let api = api(&w, Some(25.0)).await;
    let summary = roll(
        &w,
        &config_with(mapped(stage_target(&api)), &[("DRY_RUN", "true")]),
        &fresh_event(ALARM_EVENT),
    )
    .await
    .unwrap();
    assert_eq!(outcome(&summary.targets[0]), "planned");
    assert_eq!(stage_state(&w, &api).await.2, Some(25.0));
    assert!(writes(&w.emu).is_empty(), "{:?}", writes(&w.emu));
}

#[tokio::test]
async fn a_throttled_update_is_retried() {
    let w = world().await;
    let api = api(&w, Some(10.0)).await;
    w.emu.control(
        "POST",
        "/_shiftguard/faults",
        Some(&json!({"service": "apigateway", "operation": "UpdateStage", "kind": "throttle", "count": 2})),
    );
    let summary = roll(
        &w,
        &config(mapped(stage_target(&api))),
        &fresh_event(ALARM_EVENT),
    )
    .await
    .expect("retried through the throttling");
    let updates = w
        .emu
        .calls()
        .iter()
        .filter(|c| c["service"] == "apigateway" && c["operation"] == "UpdateStage")
        .count();
    assert_eq!(
        updates, 3,
        "two throttled attempts, then the one that went through"
    );
    assert_eq!(outcome(&summary.targets[0]), "restored");
    assert_eq!(stage_state(&w, &api).await.2, Some(0.0));
}

#[tokio::test]
async fn an_operator_rolls_back_configured_targets_on_the_record() {
    let w = world().await;
    checkout_canary(&w).await;
    let api = api(&w, Some(10.0)).await;
    let cfg = config(
        json!([{"alarms": ["checkout-*"], "targets": [alias_target("checkout", "live"), stage_target(&api)]}]),
    );

    // The documented event: only the alias it names.
    let summary = roll(&w, &cfg, &event(OPERATOR_EVENT))
        .await
        .expect("rolled back");
    assert_eq!(summary.targets.len(), 1);
    assert_eq!(summary.targets[0].target, "lambda-alias:checkout:live");
    assert_eq!(summary.targets[0].alarms, ["operator:alice@example.com"]);
    let request = summary
        .request
        .as_ref()
        .expect("the request is on the record");
    assert!(request.reason.contains("INC-42"));
    assert_eq!(live(&w).await, only("1"));
    assert_eq!(
        stage_state(&w, &api).await.2,
        Some(10.0),
        "not named: untouched"
    );

    // Refused requests: nothing is touched for them.
    struct Refused {
        name: &'static str,
        request: Value,
        error_type: &'static str,
        says: &'static str,
    }
    let refused = [
        Refused {
            name: "a target that is not configured",
            request: json!({"shiftguard": "rollback", "targets": ["lambda-alias:payments:live"],
                "reason": "typo", "requestedBy": "bob"}),
            error_type: "Rollback.Unmapped",
            says: "lambda-alias:payments:live",
        },
        Refused {
            name: "a malformed request names the field",
            request: json!({"shiftguard": "rollback", "targets": ["x"], "requestedBy": "bob"}),
            error_type: "Rollback.BadEvent",
            says: "reason",
        },
        Refused {
            name: "a request an hour old: a late retry must not undo what was done since",
            request: json!({"shiftguard": "rollback", "targets": ["lambda-alias:checkout:live"],
                "reason": "INC-42", "requestedBy": "alice", "requestedAt": "2020-01-01T00:00:00Z"}),
            error_type: "Rollback.BadEvent",
            says: "requestedAt",
        },
    ];
    let before = writes(&w.emu).len();
    for r in refused {
        let name = r.name;
        let err = roll(&w, &cfg, &r.request).await.unwrap_err();
        assert_eq!(err.error_type(), r.error_type, "{name}: {err}");
        assert!(err.to_string().contains(r.says), "{name}: {err}");
        assert_eq!(writes(&w.emu).len(), before, "{name}");
    }

    // The stage by its id form in the request, idempotent on a repeat.
    let stage_id = format!("apigateway-canary:{}/prod", api.id);
    let request = json!({"shiftguard": "rollback", "targets": [stage_id], "reason": "INC-42", "requestedBy": "alice"});
    for expected in ["restored", "already-stable"] {
        let summary = roll(&w, &cfg, &request).await.unwrap();
        assert_eq!(outcome(&summary.targets[0]), expected);
    }
}

#[tokio::test]
async fn targets_named_by_arn_work_like_ids() {
    let w = world().await;
    function(&w, "checkout", 2).await;
    alias(&w, "checkout", "live", "1", &[("2", 0.25)]).await;
    let api = api(&w, Some(10.0)).await;
    let lat = lattice(&w, (90, 10)).await;
    let account = "123456789012";
    let region = "us-east-1";
    let lattice_arn =
        |kind: &str, id: &str| format!("arn:aws:vpc-lattice:{region}:{account}:{kind}/{id}");
    let targets = json!([
        {"type": "lambda-alias", "function": format!("arn:aws:lambda:{region}:{account}:function:checkout"), "alias": "live"},
        {"type": "apigateway-canary", "restApi": format!("arn:aws:apigateway:{region}::/restapis/{}/stages/prod", api.id)},
        {"type": "lattice-listener",
         "service": lattice_arn("service", &lat.service),
         "listener": format!("{}/listener/{}", lattice_arn("service", &lat.service), lat.listener),
         "productionTargetGroup": lattice_arn("targetgroup", &lat.production)},
    ]);
    let cfg = config(json!([{"alarms": ["checkout-*"], "targets": targets}]));
    let summary = roll(&w, &cfg, &fresh_event(ALARM_EVENT))
        .await
        .expect("every form resolves");
    assert_eq!(summary.targets.len(), 3);
    for report in &summary.targets {
        assert_eq!(outcome(report), "restored", "{report:?}");
    }
    assert_eq!(live(&w).await, only("1"));
    assert_eq!(stage_state(&w, &api).await.2, Some(0.0));
    let weights = listener_weights(&w, &lat).await;
    assert_eq!(weights.len(), 2, "{weights:?}");
    assert!(
        weights
            .iter()
            .all(|(g, wt)| (g.ends_with(&lat.production)) == (*wt > 0)),
        "{weights:?}"
    );
}

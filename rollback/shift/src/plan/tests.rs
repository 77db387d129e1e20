use super::*;
use serde_json::{json, Value};

fn event(target: Value, steps: Value) -> Value {
    json!({"shiftguard": "shift", "rollout": {"id": "r1", "target": target, "steps": steps, "alarms": ["a"]}})
}
fn lattice() -> Value {
    json!({"type": "lattice-listener", "service": "svc-1", "listener": "listener-1",
           "productionTargetGroup": "tg-prod", "canaryTargetGroup": "tg-canary"})
}
fn plan() -> Plan {
    parse_plan(&event(
        lattice(),
        json!([{"weight": 10, "bake": "5m"}, {"weight": 50, "bake": "5m"}, {"weight": 100, "bake": "1m"}]),
    ))
    .unwrap()
}
fn marker(step: usize, status: Status, at_ms: i64) -> Option<Result<Marker, String>> {
    let weight = [0, 10, 50, 100][step];
    Some(Ok(Marker {
        start_ms: Some(at_ms - 1),
        ..Marker::new("r1", step, weight, status, at_ms)
    }))
}
fn facts(
    marker: Option<Result<Marker, String>>,
    canary: u8,
    alarms: &[&str],
    now_ms: i64,
) -> Facts {
    Facts {
        now_ms,
        marker,
        traffic: Traffic::Canary(canary),
        alarms_in_alarm: alarms.iter().map(|a| a.to_string()).collect(),
        restored: None,
    }
}

#[test]
fn the_input_sets_only_the_release() {
    let alias =
        json!({"type": "lambda-alias", "function": "checkout", "alias": "live", "newVersion": "2"});
    let with = |input: Value| {
        let mut e = event(alias.clone(), json!([{"weight": 100}]));
        e["input"] = input;
        parse_plan(&e)
    };
    let p = with(json!({"target": {"newVersion": "5"}, "id": "r1"})).unwrap();
    // The construct's plan has no newVersion: the input gives it; without it, a clear error.
    let mut bare = event(
        json!({"type": "lambda-alias", "function": "checkout", "alias": "live"}),
        json!([{"weight": 100}]),
    );
    assert!(parse_plan(&bare)
        .unwrap_err()
        .starts_with("rollout.target.newVersion"));
    bare["input"] = json!({"target": {"newVersion": "3"}});
    assert!(
        matches!(parse_plan(&bare).unwrap().target, RolloutTarget::LambdaAlias(ref t) if t.new_version == "3")
    );
    assert!(matches!(p.target, RolloutTarget::LambdaAlias(ref t) if t.new_version == "5"));
    assert!(with(json!({})).is_ok());
    for (input, field) in [
        (
            json!({"target": {"function": "other"}}),
            "input.target.function",
        ),
        (
            json!({"target": {"type": "lattice-listener"}}),
            "input.target.type",
        ),
        (json!({"alarms": []}), "input.alarms"),
        (json!({"checks": {"after": {"checks": []}}}), "input.checks"),
        (json!({"steps": [{"weight": 100}]}), "input.steps"),
        (json!({"id": "someone-else"}), "input.id"),
        (
            json!({"checkFunction": {"version": "3"}}),
            "input.checkFunction",
        ),
        (
            json!({"target": {"newVersion": 5}}),
            "input.target.newVersion",
        ),
        (json!("r2"), "input"),
    ] {
        let e = with(input.clone()).unwrap_err();
        assert!(e.starts_with(field), "{input}: {e}");
    }
    let mut e = event(lattice(), json!([{"weight": 100}]));
    e["rollout"]["checkFunction"] = json!({"function": "orders", "version": "2"});
    e["input"] = json!({"checkFunction": {"version": "3", "currentVersion": "2"}});
    let p = parse_plan(&e).unwrap();
    assert_eq!(p.check_function.unwrap().version, "3");
    e["input"] = json!({"checkFunction": {"function": "other"}});
    assert!(parse_plan(&e)
        .unwrap_err()
        .starts_with("input.checkFunction.function"));
}

#[test]
fn plans_are_validated_naming_the_field() {
    for (steps, field) in [
        (json!([]), "rollout.steps"),
        (
            json!([{"weight": 10}, {"weight": 10}, {"weight": 100}]),
            "rollout.steps[1].weight",
        ),
        (
            json!([{"weight": 50}, {"weight": 25}, {"weight": 100}]),
            "rollout.steps[1].weight",
        ),
        (
            json!([{"weight": 0}, {"weight": 100}]),
            "rollout.steps[0].weight",
        ),
        (
            json!([{"weight": 10}, {"weight": 101}]),
            "rollout.steps[1].weight",
        ),
        (
            json!([{"weight": 10}, {"weight": 50}]),
            "rollout.steps[1].weight: the last step must be 100",
        ),
        (
            json!([{"weight": 10, "bake": "5 minutes"}, {"weight": 100}]),
            "rollout.steps[0].bake",
        ),
        (
            json!([{"weight": 10, "bake": "8000h"}, {"weight": 100}]),
            "rollout.steps[0].bake",
        ),
        (json!([{"weight": 10, "bak": "5m"}, {"weight": 100}]), "bak"),
    ] {
        let err = parse_plan(&event(lattice(), steps.clone())).unwrap_err();
        assert!(err.contains(field), "{steps}: {err}");
    }
    let mut same = lattice();
    same["canaryTargetGroup"] =
        json!("arn:aws:vpc-lattice:us-east-1:123456789012:targetgroup/tg-prod");
    let err = parse_plan(&event(same, json!([{"weight": 100}]))).unwrap_err();
    assert!(err.contains("rollout.target.canaryTargetGroup"), "{err}");
    let alias = json!({"type": "lambda-alias", "function": "checkout", "alias": "live", "newVersion": "$LATEST"});
    let err = parse_plan(&event(alias, json!([{"weight": 100}]))).unwrap_err();
    assert!(err.contains("rollout.target.newVersion"), "{err}");
    // A misspelt target key is an error naming it (it used to be ignored).
    let typo = json!({"type": "lambda-alias", "function": "checkout", "alias": "live", "newVersion": "7", "stableAlais": "blue"});
    let err = parse_plan(&event(typo, json!([{"weight": 100}]))).unwrap_err();
    assert!(
        err.contains("rollout.target") && err.contains("stableAlais"),
        "{err}"
    );
    let mut typo = lattice();
    typo["canaryGroup"] = json!("tg-x");
    let err = parse_plan(&event(typo, json!([{"weight": 100}]))).unwrap_err();
    assert!(err.contains("canaryGroup"), "{err}");
    let mut bad_id = event(lattice(), json!([{"weight": 100}]));
    bad_id["rollout"]["id"] = json!("has space");
    assert!(parse_plan(&bad_id).unwrap_err().contains("rollout.id"));
    // Checks are the hooks' own, validated by the hooks' parser, with the path in front.
    let mut checks = event(lattice(), json!([{"weight": 100}]));
    checks["rollout"]["checks"] = json!({"after": {"checks": [{"name": "h", "kind": "http", "url": "https://x", "expect": {"stauts": 200}}]}});
    let err = parse_plan(&checks).unwrap_err();
    assert!(
        err.contains("rollout.checks.after.") && err.contains("stauts"),
        "{err}"
    );
    // A lattice rollout's invoke check needs a function to invoke.
    checks["rollout"]["checks"] =
        json!({"before": {"checks": [{"name": "smoke", "kind": "invoke"}]}});
    let err = parse_plan(&checks).unwrap_err();
    assert!(
        err.contains("rollout.checks.before.checks[0]") && err.contains("checkFunction"),
        "{err}"
    );
    checks["rollout"]["checkFunction"] =
        json!({"function": "orders", "version": "2", "currentVersion": "1"});
    assert!(parse_plan(&checks).is_ok());
    let mut wrong = event(lattice(), json!([{"weight": 100}]));
    wrong["shiftguard"] = json!("rollback");
    assert!(parse_plan(&wrong).unwrap_err().contains("shiftguard"));
}

#[test]
fn bakes_parse_in_every_unit() {
    for (v, ms) in [
        (json!("500ms"), 500),
        (json!("90s"), 90_000),
        (json!("5m"), 300_000),
        (json!("1h"), 3_600_000),
        (json!(250), 250),
        // The one grammar (shiftguard_common::duration): a bare whole number is milliseconds.
        (json!("5"), 5),
    ] {
        assert_eq!(parse_bake(&v), Some(Duration::from_millis(ms)), "{v}");
    }
    for v in [
        json!("-1s"),
        json!("1d"),
        json!(""),
        json!(1.5),
        json!("99999999999999999999h"),
    ] {
        assert_eq!(parse_bake(&v), None, "{v}");
    }
}

#[test]
fn markers_round_trip_and_foreign_tags_do_not_parse() {
    let m = Marker {
        id: "orders-v2.1_a".into(),
        step: 3,
        weight: 50,
        at_ms: 1_795_337_270_554,
        status: Status::Baking,
        stable: Some("7".into()),
        why: Some("alarm".into()),
        notified: true,
        start_ms: Some(1_795_337_000_000),
        prev: Some("12".into()),
    };
    assert_eq!(Marker::decode(&m.encode()), Some(m.clone()));
    assert!(m.encode().len() <= 256);
    for raw in [
        "",
        "hello",
        "id=x step=a status=baking",
        "id=x status=flying",
        "step=1 status=baking",
        "id=x step=1 weight=200 status=baking",
    ] {
        assert_eq!(Marker::decode(raw), None, "{raw}");
    }
}

#[test]
#[rustfmt::skip]
fn what_one_invocation_does() {
    let p = plan();
    let min = 60_000;
    let t0 = 1_000_000;
    let m = |id: &str, step, status| Some(Ok(Marker { id: id.into(), step, weight: 0, at_ms: 0, status, stable: None, why: None, notified: false, start_ms: None, prev: None }));
    use Decision::*;
    let abort = |restore| Abort { reason: String::new(), why: Why::Outside, restore };
    let split = |ws: &[u8]| Facts { traffic: Traffic::Split(ws.to_vec()), ..facts(marker(2, Status::Moving, t0), 0, &[], t0) };
    let elsewhere = |status| Facts { traffic: Traffic::Elsewhere("the alias is all on version 7".into()), ..facts(marker(2, status, t0), 0, &[], t0) };
    let cases: Vec<(&str, Facts, Decision)> = vec![
        ("fresh target", facts(None, 0, &[], t0), Start),
        ("after an earlier rollout finished", facts(m("r0", 3, Status::Promoted), 0, &[], t0), Start),
        ("another rollout in progress", facts(m("r0", 2, Status::Baking), 0, &[], t0), Refuse(String::new())),
        ("unreadable marker", facts(Some(Err("junk".into())), 0, &[], t0), Refuse(String::new())),
        ("already split, no marker", facts(None, 10, &[], t0), Refuse(String::new())),
        ("alarm at start: abort, nothing to restore", facts(None, 0, &["a"], t0), abort(false)),
        ("started, the checks before did not finish: start again", facts(marker(0, Status::Baking, t0), 0, &[], t0), Start),
        ("step 1 interrupted, production has everything: never written again", facts(marker(1, Status::Moving, t0), 0, &[], t0), abort(false)),
        ("step 1 interrupted after the write", facts(marker(1, Status::Moving, t0), 10, &[], t0), Move { step: 1 }),
        ("crash while moving to step 2, weights not written", facts(marker(2, Status::Moving, t0), 10, &[], t0), Move { step: 2 }),
        ("crash while moving to step 2, weights written", facts(marker(2, Status::Moving, t0), 50, &[], t0), Move { step: 2 }),
        ("crash halfway through the forwards of step 2", split(&[10, 50]), Move { step: 2 }),
        ("forwards at shares no step set", split(&[10, 30]), abort(true)),
        ("moving, but an alarm", facts(marker(2, Status::Moving, t0), 10, &["a"], t0), abort(true)),
        ("moving, production restored by someone", facts(marker(2, Status::Moving, t0), 0, &[], t0), abort(false)),
        ("baking, early", facts(marker(1, Status::Baking, t0), 10, &[], t0 + min), Wait { step: 1, ms: 4 * min as u64 }),
        ("baking, done", facts(marker(1, Status::Baking, t0), 10, &[], t0 + 5 * min), Judge { step: 1 }),
        ("baking, alarm", facts(marker(1, Status::Baking, t0), 10, &["a"], t0 + min), abort(true)),
        ("baking, rollback restored production", facts(marker(2, Status::Baking, t0), 0, &["a"], t0 + min), abort(false)),
        ("baking, the alias was put on another version", elsewhere(Status::Baking), abort(false)),
        ("baking, a person moved the weights", facts(marker(2, Status::Baking, t0), 30, &[], t0 + min), abort(true)),
        ("last step baked", facts(marker(3, Status::Baking, t0), 100, &[], t0 + min), Judge { step: 3 }),
        ("crash while promoting: promotion reads traffic itself", facts(marker(3, Status::Promoting, t0), 0, &[], t0), Promote),
        ("promoting, but an alarm: never completes, production restored", facts(marker(3, Status::Promoting, t0), 100, &["a"], t0), abort(true)),
        ("crash while aborting", facts(marker(2, Status::Aborting, t0), 50, &[], t0), abort(true)),
        ("re-run after promotion", facts(marker(3, Status::Promoted, t0), 0, &["a"], t0), Finished { status: Status::Promoted, notified: false }),
        ("re-run after abort", facts(marker(2, Status::Aborted, t0), 0, &[], t0), Finished { status: Status::Aborted, notified: false }),
    ];
    for (name, f, want) in cases {
        let got = decide(&p, &f);
        let same = match (&got, &want) {
            (Refuse(_), Refuse(_)) => true,
            (Abort { restore: a, reason, .. }, Abort { restore: b, .. }) => a == b && !reason.is_empty(),
            _ => got == want,
        };
        assert!(same, "{name}: got {got:?}, want {want:?}");
    }
    let unexpected = Facts { traffic: Traffic::Unexpected("a third group has traffic".into()), ..facts(marker(1, Status::Baking, t0), 0, &[], t0) };
    assert!(matches!(decide(&p, &unexpected), Abort { restore: true, .. }));
    let resumed = Facts { marker: Some(Ok(Marker { why: Some("checks".into()), ..marker(2, Status::Aborting, t0).unwrap().unwrap() })), ..facts(None, 50, &[], t0) };
    assert!(matches!(decide(&p, &resumed), Abort { why: Why::Checks, ref reason, .. } if reason.contains("checks")));
    assert_eq!(after_judgement(&p, 1), Move { step: 2 });
    assert_eq!(after_judgement(&p, 3), Promote);
    // Issue 19 [4]: a restore by rollback since the rollout began ends it, alarm or not.
    let rec = |at_ms, alarm_ms| RestoreRecord { at_ms, alarm_ms, by: "operator:alice".into(), production: None };
    let restored = |status, canary, r| Facts { restored: Some(r), ..facts(marker(2, status, t0), canary, &[], t0 + min) };
    assert!(matches!(decide(&p, &restored(Status::Baking, 50, rec(t0 + 10, t0 + 5))), Abort { why: Why::Rollback, restore: true, .. }));
    assert!(matches!(decide(&p, &restored(Status::Baking, 0, rec(t0 + 10, t0 + 5))), Abort { why: Why::Rollback, restore: false, .. }));
    assert!(matches!(decide(&p, &restored(Status::Promoting, 100, rec(t0 + 10, t0 + 5))), Abort { why: Why::Rollback, restore: true, .. }));
    assert!(matches!(decide(&p, &restored(Status::Moving, 10, rec(t0 + 10, t0 + 5))), Abort { why: Why::Rollback, .. }));
    // A restore before the rollout began, or for an alarm older than it, is not about it.
    assert_eq!(decide(&p, &restored(Status::Baking, 50, rec(t0 - 100, t0 - 200))), Wait { step: 2, ms: 4 * min as u64 });
    assert_eq!(decide(&p, &restored(Status::Baking, 50, rec(t0 + 10, t0 - 60_000))), Wait { step: 2, ms: 4 * min as u64 });
}

proptest::proptest! {
    /// An alarm in ALARM never lets a rollout start, move, keep baking or judge.
    #[test]
    fn an_alarm_never_moves_traffic_forward(
        step in 0usize..4, status in 0usize..6, canary in 0u8..=100, now in 0i64..10_000_000,
        at in 0i64..10_000_000, has_marker: bool,
    ) {
        let status = [Status::Moving, Status::Baking, Status::Promoting, Status::Promoted, Status::Aborting, Status::Aborted][status];
        let m = has_marker.then(|| Ok(Marker { id: "r1".into(), step, weight: canary, at_ms: at, status, stable: None, why: None, notified: false, start_ms: None, prev: None }));
        let d = decide(&plan(), &facts(m, canary, &["a"], now));
        proptest::prop_assert!(
            !matches!(d, Decision::Start | Decision::Move { .. } | Decision::Wait { .. } | Decision::Judge { .. } | Decision::Promote),
            "{d:?}"
        );
    }
}

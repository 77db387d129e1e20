//! One truth about production (issue 19): the nine sequences in which rollback, `shift` and
//! another writer undid each other, each through the shipped binaries (`rollback` and `shift`
//! behind a local Lambda Runtime API, their real `main`s and configuration) against the
//! emulator, with the faults that open the windows on AWS: a write delayed in flight, a writer
//! winning a `RevisionId` race, a write overwritten right after it lands, two executions at once.

mod common;
#[path = "../../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_cloudwatch::types::StateValue;
use common::*;
use serde_json::{json, Value};
use shiftguard_testkit::fresh_event;
use shiftguard_testkit::runtime::{binary, Answer, Function};

const ALIAS_ALARM: &str = "checkout-canary-errors";
const ALIAS_ALARM_EVENT: &str = "rollback/sns-single-metric-alarm.json";
const LATTICE_ALARM_EVENT: &str = "rollback/sns-lattice-alarm.json";

/// `rollback` as the construct deploys it: its role from the rehearsal stack, strict IAM on (the
/// test's own clients are the operator). Create the world first: the role's references are
/// resolved against it.
fn rollback_fn(w: &World, targets: Value) -> Arc<Function> {
    let mut env = rollback_role_env(w);
    env.push(("ROLLBACK_TARGETS".into(), targets.to_string()));
    Arc::new(Function::start(
        &binary("rollback", &["rollback/src", "common/src"]),
        "shiftguard-rollback",
        &env,
    ))
}

/// `shift` as the construct deploys it (see `rollback_fn`).
fn shift_fn(w: &World) -> Arc<Function> {
    w.emu.strict_iam();
    let mut env = w.emu.role_env("checkout_shift");
    env.push(("SHIFT_CLAIM_SETTLE_MS".into(), "300".into()));
    Arc::new(Function::start(
        &binary(
            "shift",
            &[
                "rollback/shift/src",
                "rollback/src",
                "hooks/src",
                "common/src",
            ],
        ),
        "shiftguard-shift",
        &env,
    ))
}

/// Every call the binaries made was allowed by their roles (a denial a binary tolerated, e.g. a
/// best-effort read, would otherwise pass unseen).
fn no_denials(w: &World) {
    let denied = w.emu.denied_calls();
    assert!(denied.is_empty(), "calls IAM denied: {denied:#?}");
}

/// One invocation, as Lambda makes it (30 s timeout).
async fn invoke(f: &Arc<Function>, event: Value) -> Answer {
    let f = f.clone();
    tokio::task::spawn_blocking(move || f.invoke(&event, Duration::from_secs(30)))
        .await
        .expect("the invocation thread")
}

/// Waits until the emulator has received `operation` since `since` (the call is logged when it
/// arrives, before an injected latency delays its effect): the condition the next action needs.
async fn arrived(w: &World, service: &str, operation: &str, since: f64) {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        if w.emu.calls().iter().any(|c| {
            c["service"] == service
                && c["operation"] == operation
                && c["time"].as_f64().unwrap_or(0.0) >= since
        }) {
            return;
        }
        assert!(
            Instant::now() < until,
            "{service} {operation} never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// `checkout` with `versions` published, `live` all on `on`, its alarm in OK, and the CodeDeploy
/// group the rehearsal stack maps `live` to (rollback asks it for deployments in flight).
async fn alias_world(versions: usize, on: &str) -> Shift {
    let s = shift_world().await;
    rehearsal_group(&s.w).await;
    function(&s.w, "checkout", versions).await;
    alias(&s.w, "checkout", "live", on, &[]).await;
    alarm(&s, ALIAS_ALARM).await;
    set_alarm(&s, ALIAS_ALARM, StateValue::Ok).await;
    s
}

fn alias_plan(id: &str, new_version: &str, steps: Value) -> Value {
    json!({"shiftguard": "shift", "rollout": {"id": id,
        "target": {"type": "lambda-alias", "function": "checkout", "alias": "live", "newVersion": new_version},
        "steps": steps, "alarms": [ALIAS_ALARM]}})
}

/// As the rehearsal stack maps `checkout:live` (its CodeDeploy group scopes rollback's lookups).
fn alias_targets() -> Value {
    json!([{"alarms": [ALIAS_ALARM], "targets": [rehearsal_alias_target()]}])
}

fn lattice_targets(lat: &Lattice) -> Value {
    json!([{"alarms": [ALARM], "targets": [lattice_target(lat)]}])
}

fn ok(answer: Answer, what: &str) -> Value {
    answer.unwrap_or_else(|e| panic!("{what}: {e:?}"))
}

/// Rollback on a fresh delivery of the sample alarm `event`: its summary, the first target
/// restored.
async fn rolled_back(rb: &Arc<Function>, event: &str) -> Value {
    let summary = ok(invoke(rb, fresh_event(event)).await, "rollback");
    assert_eq!(summary["targets"][0]["outcome"], "restored", "{summary}");
    summary
}

/// [1] An alias rollout at its 100% step; the alarm fires. Rollback used to see one version,
/// "nothing says it is the wrong one", and answer `already-stable`: the bad version kept
/// everything until shift's next invocation, up to a whole bake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s1_an_alarm_at_the_100_percent_step_restores_the_rollouts_production() {
    let s = alias_world(2, "1").await;
    let (rb, sh) = (rollback_fn(&s.w, alias_targets()), shift_fn(&s.w));
    let plan = alias_plan(
        "checkout-v2",
        "2",
        json!([{"weight": 10, "bake": "200ms"}, {"weight": 100, "bake": "1h"}]),
    );
    assert_eq!(
        ok(invoke(&sh, plan.clone()).await, "step 1")["action"],
        "started"
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    let second = ok(invoke(&sh, plan.clone()).await, "step 2");
    assert_eq!(
        (&second["action"], &second["canaryWeight"]),
        (&json!("advanced"), &json!(100))
    );
    assert_eq!(live(&s.w).await, only("2"));

    let summary = rolled_back(&rb, ALIAS_ALARM_EVENT).await;
    let report = &summary["targets"][0];
    assert_eq!(
        report["stable"],
        json!({"version": "1", "source": "rollout"}),
        "{summary}"
    );
    assert_eq!(live(&s.w).await, only("1"));

    // shift's next look ends the rollout, writing no traffic.
    let third = ok(invoke(&sh, plan).await, "step after the rollback");
    assert_eq!(
        (&third["action"], &third["status"]),
        (&json!("aborted"), &json!("aborted")),
        "{third}"
    );
    assert!(
        third["reason"]
            .as_str()
            .unwrap()
            .contains("rollback restored production"),
        "{third}"
    );
    assert_eq!(live(&s.w).await, only("1"));
    // The one-hour bake: the state machine came back within a minute to watch it.
    assert_eq!(second["waitSeconds"], 60, "{second}");
    no_denials(&s.w);
}

/// [2] Rolling out an older version number (`live` = 7, rolling out 5: `[7, {5: 0.1}]`): "the
/// older of two" picked 5, the canary that fired, and wrote it at 100%.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s2_rolling_out_an_older_version_number_restores_the_newer_production() {
    let s = alias_world(7, "7").await;
    let (rb, sh) = (rollback_fn(&s.w, alias_targets()), shift_fn(&s.w));
    let plan = alias_plan(
        "checkout-back-to-5",
        "5",
        json!([{"weight": 10, "bake": "1h"}, {"weight": 100}]),
    );
    assert_eq!(ok(invoke(&sh, plan).await, "step 1")["action"], "started");
    assert_eq!(
        alias_state(&s.w, "checkout", "live").await,
        ("7".to_string(), vec![("5".to_string(), 0.1)])
    );
    let summary = rolled_back(&rb, ALIAS_ALARM_EVENT).await;
    assert_eq!(live(&s.w).await, only("7"), "{summary}");
    no_denials(&s.w);
}

/// [3] Rollback loses a `RevisionId` race to a writer that puts the canary at 100%
/// (`[1, {2: 0.1}]` → `[2, {}]`): re-reading, it saw one version and answered `already-stable`;
/// what its first read knew was thrown away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_a_lost_revision_race_keeps_what_the_first_read_knew() {
    let s = shift_world().await;
    function(&s.w, "checkout", 2).await;
    alias(&s.w, "checkout", "live", "1", &[("2", 0.1)]).await;
    let rb = rollback_fn(&s.w, alias_targets());
    s.w.emu.arm_fault(
        json!({"service": "lambda", "operation": "UpdateAlias", "kind": "concurrent_alias_update",
        "function_version": "2", "routing_config": {"AdditionalVersionWeights": {}}}),
    );
    let summary = rolled_back(&rb, ALIAS_ALARM_EVENT).await;
    let report = &summary["targets"][0];
    assert_eq!(
        report["stable"],
        json!({"version": "1", "source": "first-read"}),
        "{summary}"
    );
    assert_eq!(live(&s.w).await, only("1"));
    no_denials(&s.w);
}

/// [4] Lattice: shift's weight write is in flight (slow) while rollback restores. Rollback read
/// 90/10, wrote 100/0 and verified; shift's 50/50 landed afterwards and its read-back agreed
/// with its own write: `advanced`. Now the restore record, left before rollback's write, ends
/// the rollout at shift's next read and production is restored again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s4_a_weight_write_landing_after_a_rollback_does_not_survive_it() {
    let (s, lat) = lattice_world().await;
    let (rb, sh) = (rollback_fn(&s.w, lattice_targets(&lat)), shift_fn(&s.w));
    let plan = lattice_plan(&lat, "orders-v2");
    assert_eq!(
        ok(invoke(&sh, plan.clone()).await, "step 1")["action"],
        "started"
    );
    tokio::time::sleep(Duration::from_millis(350)).await;

    let since = now_secs();
    s.w.emu.arm_fault(json!({"service": "vpc-lattice", "operation": "UpdateListener", "kind": "latency", "delay_ms": 2500}));
    let moving = tokio::spawn({
        let (sh, plan) = (sh.clone(), plan.clone());
        async move { invoke(&sh, plan).await }
    });
    arrived(&s.w, "vpc-lattice", "UpdateListener", since).await;
    rolled_back(&rb, LATTICE_ALARM_EVENT).await;

    let step = ok(moving.await.unwrap(), "the step whose write was in flight");
    assert_eq!(
        (&step["action"], &step["status"]),
        (&json!("aborted"), &json!("aborted")),
        "{step}"
    );
    assert_eq!(step["restore"]["outcome"], "restored", "{step}");
    assert_eq!(canary_share(&listener_weights(&s.w, &lat).await, &lat), 0);
    assert_eq!(
        records(&s.w.emu),
        2,
        "the intent record before the write, completed after"
    );

    // The alarm back in OK changes nothing: the rollout is over, never promoted.
    let again = ok(invoke(&sh, plan).await, "a later step");
    assert_eq!(
        (&again["action"], &again["status"]),
        (&json!("finished"), &json!("aborted"))
    );
    assert_eq!(canary_share(&listener_weights(&s.w, &lat).await, &lat), 0);
    no_denials(&s.w);
}

/// [5] Lattice promotion with a Lambda target group: production's one target was deregistered
/// before the canary's was registered (an empty group), and a rollback in that window ended with
/// the alarmed version registered into production. Now production's target is an alias that
/// promotion moves (never empty), and a rollback during the move puts the alias back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s5_a_rollback_during_promotion_puts_the_production_alias_back() {
    let (s, lat) = lattice_world().await;
    let (rb, sh) = (rollback_fn(&s.w, lattice_targets(&lat)), shift_fn(&s.w));
    let mut plan = lattice_plan(&lat, "orders-v2");
    plan["rollout"]["steps"] =
        json!([{"weight": 10, "bake": "200ms"}, {"weight": 100, "bake": "200ms"}]);
    for _ in 0..2 {
        let a = ok(invoke(&sh, plan.clone()).await, "a step");
        assert_eq!(a["status"], "in-progress", "{a}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(canary_share(&listener_weights(&s.w, &lat).await, &lat), 100);

    let since = now_secs();
    s.w.emu.arm_fault(json!({"service": "lambda", "operation": "UpdateAlias", "kind": "latency", "delay_ms": 2500}));
    let promoting = tokio::spawn({
        let (sh, plan) = (sh.clone(), plan.clone());
        async move { invoke(&sh, plan).await }
    });
    arrived(&s.w, "lambda", "UpdateAlias", since).await;
    assert_eq!(
        targets(&s.w, &lat.production).await,
        [live_arn(&s).await],
        "never empty"
    );
    rolled_back(&rb, LATTICE_ALARM_EVENT).await;

    let step = ok(promoting.await.unwrap(), "the promoting step");
    assert_eq!(
        (&step["action"], &step["status"]),
        (&json!("aborted"), &json!("aborted")),
        "{step}"
    );
    assert_eq!(
        alias_state(&s.w, "orders", "live").await,
        ("1".to_string(), vec![]),
        "production's alias is back on the version before the promotion: {step}"
    );
    assert_eq!(targets(&s.w, &lat.production).await, [live_arn(&s).await]);
    assert_eq!(canary_share(&listener_weights(&s.w, &lat).await, &lat), 0);
    let marker = listener_marker(&s, &lat).await.unwrap();
    assert_eq!(
        (marker.status, marker.prev.as_deref()),
        (shift::plan::Status::Aborted, Some("1"))
    );

    // A production group holding a version (not an alias) is refused before anything moves.
    let (s2, lat2) = lattice_world().await;
    s2.w.clients
        .lattice()
        .deregister_targets()
        .target_group_identifier(&lat2.production)
        .targets(
            aws_sdk_vpclattice::types::Target::builder()
                .id(live_arn(&s2).await)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    register(
        &s2.w,
        &lat2.production,
        &version_arn(&s2, "orders", "1").await,
    )
    .await;
    let sh2 = shift_fn(&s2.w);
    let refused = invoke(&sh2, lattice_plan(&lat2, "orders-v2"))
        .await
        .unwrap_err();
    assert_eq!(refused.error_type, "Shift.InvalidPlan", "{refused:?}");
    assert!(
        refused
            .error_message
            .contains("rollout.target.productionTargetGroup"),
        "{refused:?}"
    );
    no_denials(&s.w);
}

/// [6] Step 1's read-back disagrees (another writer put the listener back right after the
/// write): it was treated as "nothing written", the marker went back to step 0, and the retry
/// sent 10% to the canary again after an operator's rollback. Now it aborts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s6_a_step_1_read_back_that_disagrees_aborts_and_is_never_written_again() {
    let (s, lat) = lattice_world().await;
    let sh = shift_fn(&s.w);
    let plan = lattice_plan(&lat, "orders-v2");
    s.w.emu.arm_fault(
        json!({"service": "vpc-lattice", "operation": "UpdateListener", "kind": "overwritten"}),
    );
    let first = ok(invoke(&sh, plan.clone()).await, "step 1");
    assert_eq!(
        (&first["action"], &first["status"]),
        (&json!("aborted"), &json!("aborted")),
        "{first}"
    );
    let retry = ok(invoke(&sh, plan).await, "the state machine's retry");
    assert_eq!(retry["action"], "finished", "{retry}");
    assert_eq!(
        s.w.emu.count("vpc-lattice", "UpdateListener"),
        1,
        "written once, never again"
    );
    assert_eq!(canary_share(&listener_weights(&s.w, &lat).await, &lat), 0);
    no_denials(&s.w);
}

/// [7] Two executions with different ids on one target both started; the last marker won and the
/// loser's weights were already written. Now each claims, waits and verifies: one starts, the
/// other writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s7_two_executions_on_one_target_never_both_start() {
    let (s, lat) = lattice_world().await;
    let (a, b) = (shift_fn(&s.w), shift_fn(&s.w));
    let (ra, rb) = tokio::join!(
        invoke(&a, lattice_plan(&lat, "orders-v2-a")),
        invoke(&b, lattice_plan(&lat, "orders-v2-b"))
    );
    let started: Vec<&Answer> = [&ra, &rb]
        .into_iter()
        .filter(|r| matches!(r, Ok(v) if v["action"] == "started"))
        .collect();
    assert_eq!(started.len(), 1, "exactly one starts: {ra:?} / {rb:?}");
    let loser = if ra.is_ok() { &rb } else { &ra };
    let refused = loser.as_ref().unwrap_err();
    assert_eq!(refused.error_type, "Shift.Refused", "{refused:?}");
    let winner = started[0].as_ref().unwrap()["rollout"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(listener_marker(&s, &lat).await.unwrap().id, winner);
    assert_eq!(
        s.w.emu.count("vpc-lattice", "UpdateListener"),
        1,
        "only the winner moved traffic"
    );
    assert_eq!(canary_share(&listener_weights(&s.w, &lat).await, &lat), 10);
    no_denials(&s.w);
}

/// [8] An API Gateway stage "promoted" by copying the canary's deployment id into the stage
/// (both on one deployment, canary at 10%): rollback wrote 0% and said `restored` while the
/// alarmed deployment served everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s8_a_stage_serving_its_canarys_deployment_is_never_called_restored() {
    let s = shift_world().await;
    let stage = api(&s.w, Some(10.0)).await;
    s.w.clients
        .apigateway()
        .update_stage()
        .rest_api_id(&stage.id)
        .stage_name("prod")
        .patch_operations(
            aws_sdk_apigateway::types::PatchOperation::builder()
                .op(aws_sdk_apigateway::types::Op::Replace)
                .path("/deploymentId")
                .value(&stage.canary)
                .build(),
        )
        .send()
        .await
        .expect("UpdateStage");
    let rb = rollback_fn(
        &s.w,
        json!([{"alarms": [ALIAS_ALARM], "targets": [stage_target(&stage)]}]),
    );
    s.w.emu.reset_calls();
    let failed = invoke(&rb, fresh_event(ALIAS_ALARM_EVENT))
        .await
        .unwrap_err();
    assert_eq!(failed.error_type, "Rollback.TargetsFailed", "{failed:?}");
    assert!(
        failed.error_message.contains("stage's own deployment"),
        "{failed:?}"
    );
    assert!(
        !failed.error_message.contains("\"outcome\":\"restored\""),
        "{failed:?}"
    );
    assert_eq!(
        s.w.emu.count("apigateway", "UpdateStage"),
        0,
        "nothing written"
    );
    no_denials(&s.w);
}

/// [9] A rollout's execution input could replace any plan key: starting rollout A could move
/// rollout B's target, or add a check that sends B's secret anywhere. Now the input travels
/// apart from the construct's plan and may set only the release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s9_a_rollouts_input_sets_only_the_release() {
    let (s, lat) = lattice_world().await;
    let sh = shift_fn(&s.w);
    s.w.emu.reset_calls();
    for (input, field) in [
        (
            json!({"target": {"listener": "listener-of-rollout-b"}}),
            "input.target.listener",
        ),
        (
            json!({"checks": {"after": {"checks": [{"name": "x", "kind": "http", "url": "http://example.org/"}]}}}),
            "input.checks",
        ),
        (json!({"alarms": []}), "input.alarms"),
    ] {
        let mut event = lattice_plan(&lat, "orders-v2");
        event["input"] = input;
        let refused = invoke(&sh, event).await.unwrap_err();
        assert_eq!(refused.error_type, "Shift.InvalidPlan", "{refused:?}");
        assert!(
            refused.error_message.contains(field),
            "{field}: {refused:?}"
        );
    }
    assert!(writes(&s.w.emu).is_empty(), "{:?}", writes(&s.w.emu));
    // The release itself may be given: an alias rollout's new version.
    function(&s.w, "checkout", 3).await;
    alias(&s.w, "checkout", "live", "1", &[]).await;
    alarm(&s, ALIAS_ALARM).await;
    let mut event = alias_plan(
        "checkout-v3",
        "2",
        json!([{"weight": 10, "bake": "1h"}, {"weight": 100}]),
    );
    event["input"] = json!({"target": {"newVersion": "3"}});
    let started = ok(invoke(&sh, event).await, "a rollout of the version given");
    assert_eq!(started["action"], "started");
    assert_eq!(
        alias_state(&s.w, "checkout", "live").await,
        ("1".to_string(), vec![("3".to_string(), 0.1)])
    );
    no_denials(&s.w);
}

/// Least privilege is tested, not claimed: the same rollback with the rehearsal stack's policy
/// short of the one statement that grants `lambda:UpdateAlias` on `checkout:live` cannot restore,
/// and its failure names the action and the alias (as AWS's AccessDenied does); the alias keeps
/// the canary, and the emulator's log shows the denial.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_removed_from_the_stack_is_the_access_denied_rollback_reports() {
    let s = alias_world(2, "1").await;
    s.w.clients
        .lambda
        .update_alias()
        .function_name("checkout")
        .name("live")
        .routing_config(shiftguard_testkit::fixtures::routing(&[("2", 0.1)]))
        .send()
        .await
        .expect("UpdateAlias");
    let mut template = shiftguard_testkit::rehearsal_template();
    let mut removed = 0;
    for resource in template["Resources"].as_object_mut().unwrap().values_mut() {
        let roles = resource["Properties"]["Roles"].to_string();
        if resource["Type"] != "AWS::IAM::Policy" || !roles.contains("rollback") {
            continue;
        }
        let statements = resource["Properties"]["PolicyDocument"]["Statement"]
            .as_array_mut()
            .unwrap();
        let before = statements.len();
        statements.retain(|st| {
            st["Action"] != json!(["lambda:GetAlias", "lambda:UpdateAlias"])
                || !st["Resource"]
                    .to_string()
                    .contains(":function:checkout:live")
        });
        removed += before - statements.len();
    }
    assert_eq!(
        removed, 1,
        "the rehearsal's rollback has one GetAlias/UpdateAlias statement"
    );
    s.w.emu.strict_iam();
    let mut env =
        s.w.emu
            .role_env_from(&template, "ShiftGuardRehearsalTrimmed", "checkout_rollback");
    env.push(("ROLLBACK_TARGETS".into(), alias_targets().to_string()));
    let rb = Arc::new(Function::start(
        &binary("rollback", &["rollback/src", "common/src"]),
        "shiftguard-rollback",
        &env,
    ));
    let failed = invoke(&rb, fresh_event(ALIAS_ALARM_EVENT))
        .await
        .unwrap_err();
    assert!(
        failed.error_message.contains("lambda:GetAlias")
            && failed.error_message.contains("function:checkout:live"),
        "{failed:?}"
    );
    assert_eq!(
        alias_state(&s.w, "checkout", "live").await,
        ("1".to_string(), vec![("2".to_string(), 0.1)])
    );
    let denied = s.w.emu.denied_calls();
    assert!(
        !denied.is_empty() && denied.iter().all(|d| d["action"] == "lambda:GetAlias"),
        "{denied:#?}"
    );
}

/// shift's own abort, with no rollback in the picture: the alarm fires during an alias rollout's
/// bake, and shift's next step puts production back itself, through rollback's alias path — which
/// first asks CodeDeploy about deployments shifting the alias (a rollout never fights one). The
/// role the construct gives shift allows exactly that (the least-privilege report found these
/// CodeDeploy reads granted and never exercised by a binary).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shift_aborts_on_its_alarm_and_restores_the_alias_itself() {
    let s = alias_world(2, "1").await;
    let sh = shift_fn(&s.w);
    let plan = alias_plan(
        "checkout-v2",
        "2",
        json!([{"weight": 10, "bake": "1h"}, {"weight": 100}]),
    );
    assert_eq!(
        ok(invoke(&sh, plan.clone()).await, "step 1")["action"],
        "started"
    );
    set_alarm(&s, ALIAS_ALARM, StateValue::Alarm).await;
    s.w.emu.reset_calls();
    let aborted = ok(invoke(&sh, plan).await, "the step that sees the alarm");
    assert_eq!(
        (&aborted["action"], &aborted["status"]),
        (&json!("aborted"), &json!("aborted")),
        "{aborted}"
    );
    assert_eq!(live(&s.w).await, only("1"));
    assert!(
        s.w.emu.count("codedeploy", "ListDeployments") >= 1,
        "shift's restore asked CodeDeploy first"
    );
    no_denials(&s.w);
}

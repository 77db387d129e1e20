//! The hooks against the local AWS emulator: discovery, every check kind, and exactly one report
//! to CodeDeploy in every case.

mod support;

use std::time::{Duration, Instant};

use hooks::checks::Verdict;
use hooks::discovery::Source;
use hooks::{HookError, Phase};
use serde_json::json;
use shiftguard_testkit::fixtures;
use support::*;

/// An emulator fault: CodeDeploy's `operation` answers AccessDenied every time.
fn access_denied(operation: &str) -> serde_json::Value {
    json!({"service": "codedeploy", "operation": operation, "kind": "error", "status": 400,
        "code": "AccessDeniedException", "message": "not allowed", "count": -1})
}

fn invoke_ok() -> serde_json::Value {
    json!({"checks": [{"name": "smoke", "kind": "invoke", "payload": {"path": "/health"},
        "expect": {"status": 200, "json": {"/body/status": "ok"}}, "timeout": "2s"}]})
}

#[tokio::test]
async fn pre_traffic_checks_the_exact_new_version_and_reports_succeeded() {
    let (w, d) = healthy_deployment().await;
    behave(
        &w,
        "1",
        json!({"function_error": "Unhandled", "response": {"errorMessage": "the old version must not be called"}}),
    );

    let run = run(&w, Phase::PreTraffic, &d, &config(invoke_ok())).await;

    run.assert_reported("Succeeded");
    let s = run.summary();
    let target = s.target.as_ref().unwrap();
    assert_eq!(
        (
            target.source,
            target.target_version.as_str(),
            target.current_version.as_deref()
        ),
        (Source::DeploymentTarget, "2", Some("1"))
    );
    assert_eq!(target.is_rollback, Some(false));
    assert_eq!(s.checks[0].details["qualifier"], "2");
    assert_eq!(s.checks[0].details["executedVersion"], "2");
    assert_eq!(s.checks[0].verdict, Verdict::Passed);
}

#[tokio::test]
async fn discovery_falls_back_to_the_appspec_then_to_the_environment() {
    let w = world().await;
    let d = deployment(&w, 3, "3").await;
    behave(&w, "3", healthy());
    behave(&w, "2", healthy());
    w.emu.arm_fault(access_denied("ListDeploymentTargets"));

    let run1 = run(&w, Phase::PreTraffic, &d, &config(invoke_ok())).await;
    run1.assert_reported("Succeeded");
    assert_eq!(
        run1.summary().target.as_ref().unwrap().source,
        Source::AppSpec
    );
    assert_eq!(run1.summary().target.as_ref().unwrap().target_version, "3");

    w.emu.arm_fault(access_denied("GetApplicationRevision"));
    let cfg = config_with(
        invoke_ok(),
        &[
            ("TARGET_FUNCTION", "checkout"),
            (
                "TARGET_VERSION",
                "arn:aws:lambda:us-east-1:123456789012:function:checkout:2",
            ),
        ],
    );
    let run2 = run(&w, Phase::PreTraffic, &d, &cfg).await;
    run2.assert_reported("Succeeded");
    assert_eq!(
        run2.summary().target.as_ref().unwrap().source,
        Source::Environment
    );
    assert_eq!(run2.summary().checks[0].details["executedVersion"], "2");

    // With nothing left to ask, the hook cannot know what to check: Failed, never a guess.
    let run3 = run(&w, Phase::PreTraffic, &d, &config(invoke_ok())).await;
    run3.assert_failed_because("cannot tell which version");
}

#[tokio::test]
async fn a_rollback_deployment_is_recognised() {
    let w = world().await;
    let d = deployment(&w, 2, "2").await;
    w.emu
        .set_deployment(&d, json!({"creator": "codeDeployRollback"}));
    behave(&w, "2", healthy());

    let run = run(&w, Phase::PreTraffic, &d, &config(invoke_ok())).await;

    run.assert_reported("Succeeded");
    assert_eq!(
        run.summary().target.as_ref().unwrap().is_rollback,
        Some(true)
    );
}

#[tokio::test]
async fn a_function_error_fails_the_deployment() {
    let w = world().await;
    let d = deployment(&w, 2, "2").await;
    behave(
        &w,
        "2",
        json!({"function_error": "Unhandled", "response": {"errorType": "TypeError", "errorMessage": "cannot read property 'id'"}}),
    );

    let run = run(&w, Phase::PreTraffic, &d, &config(invoke_ok())).await;

    run.assert_failed_because("smoke: the function returned an error (Unhandled)");
    run.assert_failed_because("TypeError");
}

#[tokio::test]
async fn a_hanging_function_times_out_and_a_slow_one_misses_its_budget() {
    let w = world().await;
    let d = deployment(&w, 2, "2").await;
    behave(
        &w,
        "2",
        json!({"delay_ms": 4000, "timeout_ms": 6000, "response": {"statusCode": 200}}),
    );
    let hanging = json!({"checks": [{"name": "smoke", "kind": "invoke", "timeout": "400ms", "retries": 1, "backoff": "50ms"}]});

    let run1 = run(&w, Phase::PreTraffic, &d, &config(hanging)).await;
    run1.assert_reported("Failed");
    let check = &run1.summary().checks[0];
    assert_eq!(check.attempts, 2);
    assert!(
        check
            .reason
            .as_deref()
            .unwrap()
            .contains("timed out after 400 ms"),
        "{check:?}"
    );
    assert!(
        run1.elapsed_ms < 3000,
        "the check timeout bounds the hook: {} ms",
        run1.elapsed_ms
    );

    behave(
        &w,
        "2",
        json!({"delay_ms": 300, "response": {"statusCode": 200, "body": "{\"status\":\"ok\"}"}}),
    );
    let slow = json!({"checks": [{"name": "smoke", "kind": "invoke", "expect": {"status": 200, "maxLatencyMs": 100}}]});
    let run2 = run(&w, Phase::PreTraffic, &d, &config(slow)).await;
    run2.assert_failed_because("above 100 ms");
}

#[tokio::test]
async fn advisory_checks_never_fail_and_retries_recover_transient_failures() {
    let (w, d) = healthy_deployment().await;
    // The first Invoke is refused with a non-retryable error: the check's own retry recovers.
    w.emu.arm_fault(
        json!({"service": "lambda", "operation": "Invoke", "kind": "error", "status": 400,
        "code": "InvalidRequestContentException", "message": "transient", "count": 1}),
    );
    let checks = json!({"concurrency": 1, "checks": [
        {"name": "smoke", "kind": "invoke", "retries": 2, "backoff": "20ms", "expect": {"status": 200}},
        {"name": "nice-to-have", "kind": "invoke", "required": false, "expect": {"status": 418}}
    ]});

    let run = run(&w, Phase::PreTraffic, &d, &config(checks)).await;

    run.assert_reported("Succeeded");
    let s = run.summary();
    assert_eq!((s.checks[0].passed, s.checks[0].attempts), (true, 2));
    assert!(!s.checks[1].passed && !s.checks[1].required);
}

#[tokio::test]
async fn burst_thresholds() {
    let w = world().await;
    let d = deployment(&w, 2, "2").await;
    behave(
        &w,
        "2",
        json!({"delay_ms": 20, "response": {"statusCode": 200}}),
    );
    let burst = |max_avg: u64| {
        json!({"checks": [{"name": "load", "kind": "burst", "requests": 24, "concurrency": 6,
        "target": {"invoke": {"expect": {"status": 200}}}, "maxAvgMs": max_avg, "timeout": "20s"}]})
    };

    let run1 = run(&w, Phase::PreTraffic, &d, &config(burst(2000))).await;
    run1.assert_reported("Succeeded");
    let details = &run1.summary().checks[0].details;
    assert_eq!(
        (details["requests"].as_u64(), details["failures"].as_u64()),
        (Some(24), Some(0))
    );
    assert!(details["avgMs"].as_u64().unwrap() >= 20, "{details}");

    let run2 = run(&w, Phase::PreTraffic, &d, &config(burst(5))).await;
    run2.assert_failed_because("average latency");

    // Post-traffic bursts go through the alias: half the traffic on a failing version.
    set_live(&w, "1", &[("2", 0.5)]).await;
    behave(
        &w,
        "1",
        json!({"function_error": "Unhandled", "response": {"errorMessage": "bad"}}),
    );
    let run3 = run(&w, Phase::PostTraffic, &d, &config(burst(2000))).await;
    run3.assert_failed_because("failure rate");
}

async fn put_invocations(w: &World, version: &str, invocations: f64, errors: f64) {
    use aws_sdk_cloudwatch::types::{MetricDatum, StandardUnit};
    let cw = aws_sdk_cloudwatch::Client::new(&w.emu.sdk_config().await);
    let dims = version_dimensions(version);
    let datum = |name: &str, value: f64| {
        MetricDatum::builder()
            .metric_name(name)
            .value(value)
            .unit(StandardUnit::Count)
            .set_dimensions(Some(dims.clone()))
            .timestamp(std::time::SystemTime::now().into())
            .build()
    };
    cw.put_metric_data()
        .namespace("AWS/Lambda")
        .metric_data(datum("Invocations", invocations))
        .metric_data(datum("Errors", errors))
        .metric_data(datum("Throttles", 0.0))
        .send()
        .await
        .expect("PutMetricData");
}

#[tokio::test]
async fn metrics_compare_the_new_version_with_the_old() {
    let metrics = |inconclusive: &str| {
        json!({"checks": [{"name": "new-vs-old", "kind": "metrics", "window": "5m",
        "minSamples": 50, "maxErrorRateMultiple": 2.0, "inconclusive": inconclusive}]})
    };

    // Healthy: 1% errors on the new version, 1% on the old.
    let w = world().await;
    let d = deployment(&w, 2, "2").await;
    put_invocations(&w, "2", 100.0, 1.0).await;
    put_invocations(&w, "1", 900.0, 9.0).await;
    let run1 = run(&w, Phase::PostTraffic, &d, &config(metrics("fail"))).await;
    run1.assert_reported("Succeeded");
    let cmp = &run1.summary().checks[0].details["comparison"];
    assert_eq!(
        (
            cmp["new"]["invocations"].as_f64(),
            cmp["old"]["errors"].as_f64()
        ),
        (Some(100.0), Some(9.0)),
        "{cmp}"
    );

    // 10% against 1%: more than 2x.
    put_invocations(&w, "2", 100.0, 19.0).await;
    let run2 = run(&w, Phase::PostTraffic, &d, &config(metrics("fail"))).await;
    run2.assert_failed_because("more than 2x");

    // Too few samples: inconclusive, and the config decides.
    let w = world().await;
    let d = deployment(&w, 2, "2").await;
    put_invocations(&w, "2", 10.0, 0.0).await;
    put_invocations(&w, "1", 900.0, 9.0).await;
    let run3 = run(&w, Phase::PostTraffic, &d, &config(metrics("fail"))).await;
    run3.assert_reported("Failed");
    assert_eq!(run3.summary().checks[0].verdict, Verdict::Inconclusive);
    let run4 = run(&w, Phase::PostTraffic, &d, &config(metrics("pass"))).await;
    run4.assert_reported("Succeeded");
    assert_eq!(run4.summary().checks[0].verdict, Verdict::Inconclusive);
}

#[tokio::test]
async fn the_watchdog_reports_failed_before_the_deadline() {
    let w = world().await;
    let d = deployment(&w, 2, "2").await;
    behave(&w, "2", json!({"delay_ms": 20000, "timeout_ms": 30000}));
    let hanging = json!({"checks": [{"name": "smoke", "kind": "invoke", "timeout": "30s"}]});
    // (margin setting, time to the deadline, least time the checks must have had). With 2 s left
    // and the default 5 s margin, the margin is capped at half: the checks still get their half.
    type Case<'a> = (&'a [(&'a str, &'a str)], u64, u128);
    let cases: [Case; 2] = [
        (&[("HOOK_DEADLINE_MARGIN", "500")], 1500, 900),
        (&[], 2000, 900),
    ];
    for (margin, left_ms, least_ms) in cases {
        let cfg = config_with(hanging.clone(), margin);
        let deadline = Instant::now() + Duration::from_millis(left_ms);

        let run = run_with(
            &w,
            Phase::PreTraffic,
            &d,
            Ok(&cfg),
            Some(deadline),
            executors(&w, Phase::PreTraffic),
        )
        .await;

        run.assert_reported("Failed");
        assert!(
            run.summary()
                .reason
                .as_deref()
                .unwrap()
                .starts_with("watchdog"),
            "{:?}",
            run.summary().reason
        );
        assert!(
            run.elapsed_ms >= least_ms,
            "the checks had {} ms, expected at least {least_ms}",
            run.elapsed_ms
        );
        assert!(Instant::now() < deadline, "reported before the deadline");
    }
}

#[tokio::test]
async fn a_panicking_check_reports_failed() {
    let (w, d) = healthy_deployment().await;
    let checks = json!({"checks": [{"name": "smoke", "kind": "invoke"}, {"name": "explodes", "kind": "invoke"}]});

    let run = run_with(
        &w,
        Phase::PreTraffic,
        &d,
        Ok(&config(checks)),
        None,
        panicking_on(&w, Phase::PreTraffic, "explodes"),
    )
    .await;

    run.assert_reported("Failed");
    let s = run.summary();
    assert!(s.checks[0].passed);
    assert!(
        s.checks[1]
            .reason
            .as_deref()
            .unwrap()
            .contains("panicked: boom in explodes"),
        "{:?}",
        s.checks[1]
    );
}

#[tokio::test]
async fn a_bad_configuration_reports_failed_naming_the_variable() {
    let w = world().await;
    let d = deployment(&w, 2, "2").await;
    let err = hooks::HookConfig::from_vars(
        &[(
            "HOOK_CHECKS",
            "{\"checks\":[{\"name\":\"x\",\"kind\":\"invoke\",\"timeout\":\"soon\"}]}",
        )][..],
    )
    .unwrap_err();

    let run = run_with(
        &w,
        Phase::PreTraffic,
        &d,
        Err(&err),
        None,
        executors(&w, Phase::PreTraffic),
    )
    .await;

    run.assert_failed_because("invalid configuration: HOOK_CHECKS");
    run.assert_failed_because("timeout");
}

#[tokio::test]
async fn throttled_reports_are_retried() {
    let (w, d) = healthy_deployment().await;
    // More throttles than the SDK's own retries absorb: the hook's report loop retries too.
    w.emu.arm_fault(json!({"service": "codedeploy", "operation": "PutLifecycleEventHookExecutionStatus", "kind": "throttle", "count": 7}));

    let run = run(&w, Phase::PreTraffic, &d, &config(invoke_ok())).await;

    run.assert_reported("Succeeded");
    assert!(
        run.summary().report.attempts >= 2,
        "{:?}",
        run.summary().report
    );
    assert_eq!(
        w.emu
            .count("codedeploy", "PutLifecycleEventHookExecutionStatus"),
        8
    );
}

#[tokio::test]
async fn a_second_run_of_the_same_hook_counts_already_completed_as_done() {
    let (w, d) = healthy_deployment().await;
    let execution_id = w.emu.new_hook_execution(&d, "BeforeAllowTraffic");
    let event = hook_event("hooks/pre-traffic.json", &d, &execution_id);
    let executors = executors(&w, Phase::PreTraffic);
    let cfg = config(invoke_ok());

    let first = hooks::run_hook(
        &w.clients,
        Ok(&cfg),
        Phase::PreTraffic,
        &event,
        None,
        executors.clone(),
    )
    .await
    .unwrap();
    let second = hooks::run_hook(
        &w.clients,
        Ok(&cfg),
        Phase::PreTraffic,
        &event,
        None,
        executors,
    )
    .await
    .unwrap();

    assert!(!first.report.already_completed);
    assert!(second.report.already_completed);
    let execution = w.emu.hook_execution(&execution_id);
    assert_eq!(
        execution["reports"].as_array().unwrap().len(),
        1,
        "{execution}"
    );
    assert_eq!(
        execution["rejected"].as_array().unwrap().len(),
        1,
        "{execution}"
    );
}

#[tokio::test]
async fn when_reporting_cannot_get_through_the_invocation_fails() {
    let (w, d) = healthy_deployment().await;
    w.emu.arm_fault(json!({"service": "codedeploy", "operation": "PutLifecycleEventHookExecutionStatus", "kind": "error500", "count": -1}));
    let deadline = Instant::now() + Duration::from_secs(8);

    let run = run_with(
        &w,
        Phase::PreTraffic,
        &d,
        Ok(&config(invoke_ok())),
        Some(deadline),
        executors(&w, Phase::PreTraffic),
    )
    .await;

    match &run.result {
        Err(HookError::ReportFailed {
            status, attempts, ..
        }) => assert!(*status == "Succeeded" && *attempts >= 2),
        other => panic!("expected a failed invocation, got {other:?}"),
    }
    assert_eq!(run.execution["reports"].as_array().unwrap().len(), 0);
    assert!(Instant::now() < deadline);
}

#[tokio::test]
async fn a_malformed_event_fails_without_calling_aws() {
    let w = world().await;
    let executors = executors(&w, Phase::PreTraffic);
    let event = shiftguard_testkit::event("hooks/malformed-missing-execution-id.json");

    let err = hooks::run_hook(
        &w.clients,
        Ok(&config(invoke_ok())),
        Phase::PreTraffic,
        &event,
        None,
        executors,
    )
    .await
    .unwrap_err();

    assert!(
        err.to_string()
            .contains("LifecycleEventHookExecutionId is missing"),
        "{err}"
    );
    assert!(w.emu.calls().is_empty());
}

#[tokio::test]
async fn post_traffic_housekeeping_moves_the_pointer_and_prunes_unreferenced_versions() {
    let w = world().await;
    let d = deployment(&w, 5, "5").await;
    // The shift finished: live on 5. An old alias still points at 2.
    set_live(&w, "5", &[]).await;
    fixtures::alias(&w.clients.lambda, "checkout", "legacy", "2", &[]).await;
    fixtures::alias(&w.clients.lambda, "checkout", "blue", "1", &[]).await;
    behave(&w, "5", healthy());
    let cfg = config_with(
        invoke_ok(),
        &[("STABLE_ALIAS", "blue"), ("PRUNE_KEEP_VERSIONS", "2")],
    );

    let run = run(&w, Phase::PostTraffic, &d, &cfg).await;

    run.assert_reported("Succeeded");
    assert_eq!(run.summary().checks[0].details["qualifier"], "live");
    assert_eq!(
        fixtures::alias_state(&w.clients.lambda, "checkout", "blue")
            .await
            .0,
        "5"
    );
    let versions: Vec<String> = w
        .clients
        .lambda
        .list_versions_by_function()
        .function_name("checkout")
        .send()
        .await
        .unwrap()
        .versions
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| v.version)
        .collect();
    // Kept: the newest two (5, 4), 2 (alias legacy) and 1 (the deployment's current version). Deleted: 3.
    assert_eq!(versions, vec!["$LATEST", "1", "2", "4", "5"]);
    assert_eq!(
        run.summary().housekeeping.as_ref().unwrap()["pruned"]["deleted"],
        json!(["3"])
    );
}

#[test]
fn the_example_check_files_are_valid() {
    for file in [
        "hooks/checks-pre-traffic.yaml",
        "hooks/checks-post-traffic.json",
    ] {
        let text = std::fs::read_to_string(
            shiftguard_testkit::workspace_root()
                .join("events")
                .join(file),
        )
        .unwrap();
        let set = hooks::config::parse_checks(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(set.checks.len() >= 3, "{file}");
    }
}

#[tokio::test]
async fn checks_run_concurrently_within_the_bound() {
    let w = world().await;
    let d = deployment(&w, 2, "2").await;
    behave(
        &w,
        "2",
        json!({"delay_ms": 400, "response": {"statusCode": 200}}),
    );
    let checks = |concurrency: usize| {
        json!({"concurrency": concurrency, "checks": [
        {"name": "a", "kind": "invoke"}, {"name": "b", "kind": "invoke"}, {"name": "c", "kind": "invoke"}, {"name": "d", "kind": "invoke"}]})
    };
    let invoke_starts = |w: &World| -> Vec<f64> {
        w.emu
            .calls()
            .iter()
            .filter(|c| c["operation"] == "Invoke")
            .map(|c| c["time"].as_f64().unwrap())
            .collect()
    };

    w.emu.reset_calls();
    run(&w, Phase::PreTraffic, &d, &config(checks(4)))
        .await
        .assert_reported("Succeeded");
    let starts = invoke_starts(&w);
    assert_eq!(starts.len(), 4);
    let spread = starts.iter().cloned().fold(f64::MIN, f64::max)
        - starts.iter().cloned().fold(f64::MAX, f64::min);
    assert!(
        spread < 0.35,
        "all four started together, within one check's duration: {spread:.3}s"
    );

    w.emu.reset_calls();
    run(&w, Phase::PreTraffic, &d, &config(checks(1)))
        .await
        .assert_reported("Succeeded");
    let starts = invoke_starts(&w);
    for pair in starts.windows(2) {
        assert!(
            pair[1] - pair[0] >= 0.39,
            "with concurrency 1 each check starts after the previous one ended: {starts:?}"
        );
    }
}

/// One hook serves several protected functions: a deployment of `checkout` runs checkout's checks
/// (and the shared ones), never pricing's; a function no check names is Failed, not passed.
#[tokio::test]
async fn each_function_gets_only_its_own_checks_and_none_is_not_a_pass() {
    let (w, d) = healthy_deployment().await;
    let checks = json!({"checks": [
        {"name": "smoke", "kind": "invoke", "functions": ["checkout"], "payload": {"path": "/health"},
         "expect": {"status": 200, "json": {"/body/status": "ok"}}, "timeout": "2s"},
        // Would fail against checkout (it answers "ok"): must not run for checkout's deployment.
        {"name": "smoke", "kind": "invoke", "functions": ["arn:aws:lambda:us-east-1:123456789012:function:pricing"],
         "expect": {"status": 200, "json": {"/body/status": "priced"}}, "timeout": "2s"},
        {"name": "shared", "kind": "invoke", "expect": {"status": 200}, "timeout": "2s"}
    ]});

    let run1 = run(&w, Phase::PreTraffic, &d, &config(checks)).await;
    run1.assert_reported("Succeeded");
    let ran: Vec<&str> = run1
        .summary()
        .checks
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(ran, ["smoke", "shared"]);
    assert_eq!(run1.summary().checks[0].details["executedVersion"], "2");

    let pricing_only = json!({"checks": [
        {"name": "smoke", "kind": "invoke", "functions": ["pricing"], "expect": {"status": 200}, "timeout": "2s"}
    ]});
    let run2 = run(&w, Phase::PreTraffic, &d, &config(pricing_only)).await;
    run2.assert_failed_because("no check applies to function checkout");
    assert!(run2.summary().checks.is_empty());
}

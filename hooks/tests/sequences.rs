//! The hooks in the sequences real deployments produce, against the emulator: a second run of the
//! same hook execution, a metrics window with no baseline, a watchdog firing in the middle of a
//! burst, a slow target under a long check timeout, an endpoint that echoes secrets. Each names
//! the failure it reproduces (issue 9's numbering in brackets).

mod support;

use std::time::{Duration, Instant};

use aws_sdk_codedeploy::types::LifecycleEventStatus;
use aws_sdk_lambda::primitives::Blob;
use hooks::Phase;
use serde_json::json;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The one invoke check most sequences need: the function answers 200.
fn smoke() -> serde_json::Value {
    json!({"checks": [{"name": "smoke", "kind": "invoke", "expect": {"status": 200}}]})
}

/// Post-traffic housekeeping was skipped, saying `why`, and the stable pointer `blue` was not
/// created.
async fn assert_nothing_promoted(w: &World, summary: &hooks::HookSummary, why: &str) {
    let skipped = summary.housekeeping.as_ref().expect("the skip is recorded");
    assert!(
        skipped["skipped"].as_str().unwrap().contains(why),
        "{skipped}"
    );
    assert!(
        shiftguard_testkit::fixtures::alias_missing(&w.clients.lambda, "checkout", "blue").await,
        "the stable pointer was not created"
    );
}

async fn invoke_live(w: &World, times: usize) {
    for _ in 0..times {
        w.clients
            .lambda
            .invoke()
            .function_name("checkout")
            .qualifier("live")
            .payload(Blob::new("{}"))
            .send()
            .await
            .unwrap();
    }
}

// [3] An earlier run of the same hook execution already reported Failed (or the deployment was
// stopped): this run's Succeeded is refused as already completed, and nothing may be promoted.
#[tokio::test]
async fn a_refused_success_promotes_nothing() {
    let w = world().await;
    let d = deployment(&w, 3, "3").await;
    behave(&w, "3", healthy());
    set_live(&w, "3", &[]).await;
    let execution = w.emu.new_hook_execution(&d, "AfterAllowTraffic");
    // The first run (say, before a Lambda retry) reported Failed.
    w.clients
        .codedeploy
        .put_lifecycle_event_hook_execution_status()
        .deployment_id(&d)
        .lifecycle_event_hook_execution_id(&execution)
        .status(LifecycleEventStatus::Failed)
        .send()
        .await
        .unwrap();
    let cfg = config_with(
        smoke(),
        &[("STABLE_ALIAS", "blue"), ("PRUNE_KEEP_VERSIONS", "2")],
    );

    let summary = hooks::run_hook(
        &w.clients,
        Ok(&cfg),
        Phase::PostTraffic,
        &hook_event("hooks/post-traffic.json", &d, &execution),
        None,
        executors(&w, Phase::PostTraffic),
    )
    .await
    .expect("the hook reported");

    assert_eq!(summary.status, "Succeeded");
    assert!(summary.report.already_completed);
    assert_nothing_promoted(&w, &summary, "already completed").await;
    assert_eq!(
        w.emu.count("lambda", "DeleteFunction"),
        0,
        "nothing was pruned"
    );
    assert_eq!(w.emu.hook_execution(&execution)["status"], "Failed");
}

// [4] All traffic already shifted (or a low-traffic function): the old version has no invocations
// in the window. A new version that only errors must fail, and a clean one is inconclusive (the
// policy decides, visibly), never a silent pass.
#[tokio::test]
async fn no_baseline_is_not_a_pass() {
    let w = world().await;
    let d = deployment(&w, 2, "2").await;
    behave(
        &w,
        "2",
        json!({"function_error": "Unhandled", "response": {"errorMessage": "boom"}}),
    );
    set_live(&w, "2", &[]).await;
    invoke_live(&w, 25).await;
    let metrics = |policy: &str| json!({"checks": [{"name": "canary", "kind": "metrics", "window": "5m", "inconclusive": policy}]});

    let broken = run(&w, Phase::PostTraffic, &d, &config(metrics("pass"))).await;
    broken.assert_reported("Failed");
    let reason = broken.summary().checks[0].reason.clone().unwrap();
    assert!(
        reason.contains("no baseline") && reason.contains("absolute limit"),
        "{reason}"
    );

    // A clean new version with no baseline: inconclusive, and the policy decides.
    let (w, d) = healthy_deployment().await;
    set_live(&w, "2", &[]).await;
    invoke_live(&w, 25).await;
    let strict = run(&w, Phase::PostTraffic, &d, &config(metrics("fail"))).await;
    strict.assert_failed_because("inconclusive");
    let lenient = run(&w, Phase::PostTraffic, &d, &config(metrics("pass"))).await;
    lenient.assert_reported("Succeeded");
    assert_eq!(
        lenient.summary().checks[0].verdict,
        hooks::checks::Verdict::Inconclusive
    );
}

// [7] The watchdog reports Failed in the middle of a burst: nothing the checks started may go on
// invoking the function afterwards.
#[tokio::test]
async fn the_watchdog_stops_every_request_the_checks_started() {
    let w = world().await;
    let d = deployment(&w, 2, "2").await;
    behave(
        &w,
        "2",
        json!({"delay_ms": 50, "response": {"statusCode": 200}}),
    );
    let cfg = config(
        json!({"checks": [{"name": "load", "kind": "burst", "requests": 400, "concurrency": 2,
        "target": {"invoke": {"payload": {}}}, "timeout": "60s"}]}),
    );

    let result = run_with(
        &w,
        Phase::PreTraffic,
        &d,
        Ok(&cfg),
        Some(Instant::now() + Duration::from_millis(2500)),
        executors(&w, Phase::PreTraffic),
    )
    .await;

    result.assert_failed_because("watchdog");
    let at_report = w.emu.count("lambda", "Invoke");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        w.emu.count("lambda", "Invoke"),
        at_report,
        "invocations went on after the report"
    );
}

// [12] A target that answers in 6 s under a check timeout of 30 s: one attempt is one invocation
// (the SDK's 5 s attempt timeout and its retries used to invoke it four times and fail).
#[tokio::test]
async fn a_slow_target_is_invoked_once_per_attempt() {
    let w = world().await;
    let d = deployment(&w, 2, "2").await;
    behave(
        &w,
        "2",
        json!({"delay_ms": 6000, "timeout_ms": 15000, "response": {"statusCode": 200}}),
    );
    let cfg = config(
        json!({"checks": [{"name": "slow", "kind": "invoke", "timeout": "30s", "expect": {"status": 200}}]}),
    );

    let result = run(&w, Phase::PreTraffic, &d, &cfg).await;

    result.assert_reported("Succeeded");
    assert_eq!(w.emu.count("lambda", "Invoke"), 1);
}

/// Answers every request with `status` and a body that echoes the request's head (as a debug
/// endpoint might), or `body` when given.
async fn echo_server(status: u16, body: Option<String>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/health", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let body = body.unwrap_or_else(|| json!({"youSent": head}).to_string());
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(reply.as_bytes()).await;
            });
        }
    });
    url
}

// [15] A failing endpoint that echoes request headers, and a JSON expectation quoting what it found:
// no configured secret may reach the summary.
#[tokio::test]
async fn secrets_never_reach_the_summary() {
    let w = world().await;
    let d = deployment(&w, 2, "2").await;
    let token = "Bearer tok-3f9a7c1e";
    let key = "key-55d2b0";
    let echo = echo_server(500, None).await;
    let quoting = echo_server(200, Some(json!({"token": key}).to_string())).await;
    // A secret straddling the 512-byte clip of a captured body: redacted whole before clipping.
    let straddling = echo_server(500, Some(format!("{}{key}", "a".repeat(506)))).await;
    let checks = json!({"checks": [
        {"name": "echo", "kind": "http", "url": echo, "secretHeaders": {"Authorization": "SG_TEST_TOKEN", "X-API-Key": "SG_TEST_KEY"}, "expect": {"status": 200}},
        {"name": "quote", "kind": "http", "url": quoting, "expect": {"json": {"/token": "something-else"}}},
        {"name": "straddle", "kind": "http", "url": straddling, "expect": {"status": 200}},
    ]});
    // The checks read their secrets from the environment when they run.
    std::env::set_var("SG_TEST_TOKEN", token);
    std::env::set_var("SG_TEST_KEY", key);
    let cfg = config_with(checks, &[("SG_TEST_TOKEN", token), ("SG_TEST_KEY", key)]);

    let result = run(&w, Phase::PreTraffic, &d, &cfg).await;

    result.assert_reported("Failed");
    let text = serde_json::to_string(result.summary()).unwrap();
    assert!(
        !text.contains("tok-3f9a7c1e") && !text.contains(key),
        "{text}"
    );
    assert!(
        !text.contains("key-55"),
        "no part of a secret survives clipping: {text}"
    );
    assert!(
        text.contains("[redacted:SG_TEST_TOKEN]"),
        "the echo was seen and redacted: {text}"
    );
    assert!(text.contains("[redacted:SG_TEST_KEY]"), "{text}");
}

// [16] A statusCode that does not fit in 16 bits is not an HTTP status (65736 used to become 200).
#[tokio::test]
async fn a_status_code_is_never_truncated() {
    let w = world().await;
    let d = deployment(&w, 2, "2").await;
    behave(&w, "2", json!({"response": {"statusCode": 65736}}));
    let cfg = config(smoke());

    let result = run(&w, Phase::PreTraffic, &d, &cfg).await;

    result.assert_failed_because("65736");
}

// Review of issue 9: when GetDeployment cannot be read, nobody can tell CodeDeploy's rollback
// deployment (whose version is the one being rolled away from) from a release: nothing is promoted.
#[tokio::test]
async fn an_unknown_rollback_status_promotes_nothing() {
    let (w, d) = healthy_deployment().await;
    set_live(&w, "2", &[]).await;
    w.emu.arm_fault(json!({"service": "codedeploy", "operation": "GetDeployment", "kind": "error", "status": 400, "code": "AccessDeniedException", "message": "no", "count": -1}));
    let cfg = config_with(smoke(), &[("STABLE_ALIAS", "blue")]);

    let result = run(&w, Phase::PostTraffic, &d, &cfg).await;

    result.assert_reported("Succeeded");
    let summary = result.summary();
    assert_eq!(summary.target.as_ref().unwrap().is_rollback, None);
    assert_nothing_promoted(&w, summary, "could not be read").await;
}

// Found by `make demo` on the engine: CodeDeploy's rollback deployment runs the hooks too. A failed
// check there would block the restore (pre-traffic during the outage that caused the rollback) or
// mark a finished rollback Failed (post-traffic comparing the restored version with the bad one on a
// few samples). A rollback is never blocked: the checks run and are reported as advisory.
#[tokio::test]
async fn codedeploys_rollback_deployment_is_never_blocked_by_a_check() {
    let w = world().await;
    let d = deployment(&w, 2, "2").await;
    w.emu
        .set_deployment(&d, json!({"creator": "codeDeployRollback"}));
    behave(&w, "2", json!({"response": {"statusCode": 503}}));
    let cfg = config(smoke());

    for phase in [Phase::PreTraffic, Phase::PostTraffic] {
        let result = run(&w, phase, &d, &cfg).await;

        result.assert_reported("Succeeded");
        let summary = result.summary();
        assert!(
            !summary.checks[0].passed,
            "the check still ran and failed: {:?}",
            summary.checks
        );
        let reason = summary.reason.as_deref().unwrap();
        assert!(
            reason.contains("never blocked") && reason.contains("smoke"),
            "{reason}"
        );
    }
}

// The same when the watchdog fires: slow checks are likely during the outage that caused the
// rollback, and a Failed here would stop CodeDeploy restoring the previous version.
#[tokio::test]
async fn a_watchdog_in_codedeploys_rollback_deployment_does_not_block_it() {
    let w = world().await;
    let d = deployment(&w, 2, "2").await;
    w.emu
        .set_deployment(&d, json!({"creator": "codeDeployRollback"}));
    behave(
        &w,
        "2",
        json!({"delay_ms": 5000, "timeout_ms": 15000, "response": {"statusCode": 200}}),
    );
    let cfg = config(json!({"checks": [{"name": "slow", "kind": "invoke", "timeout": "30s"}]}));

    let result = run_with(
        &w,
        Phase::PreTraffic,
        &d,
        Ok(&cfg),
        Some(Instant::now() + Duration::from_millis(2000)),
        executors(&w, Phase::PreTraffic),
    )
    .await;

    result.assert_reported("Succeeded");
    let reason = result.summary().reason.as_deref().unwrap();
    assert!(
        reason.contains("never blocked") && reason.contains("watchdog"),
        "{reason}"
    );
}

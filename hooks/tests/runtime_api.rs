//! The real hook binaries behind the Lambda Runtime API (`cargo lambda watch`), invoked with the
//! sample events: the path CodeDeploy takes.

mod support;

use serde_json::{json, Value};
use shiftguard_testkit::{workspace_root, LambdaWatch};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_and_post_traffic_binaries_report_to_codedeploy() {
    let w = world().await;
    let d = deployment(&w, 2, "2").await;
    behave(&w, "2", healthy());
    let checks = json!({"checks": [{"name": "smoke", "kind": "invoke", "expect": {"status": 200, "json": {"/body/status": "ok"}}}]}).to_string();
    let watches = HookWatches::start(&w, &[("HOOK_CHECKS", &checks), ("STABLE_ALIAS", "blue")]);

    for (binary, file, lifecycle) in [
        (
            "pre-traffic",
            "hooks/pre-traffic.json",
            "BeforeAllowTraffic",
        ),
        (
            "post-traffic",
            "hooks/post-traffic.json",
            "AfterAllowTraffic",
        ),
    ] {
        if binary == "post-traffic" {
            // CodeDeploy shifted all traffic between the two hooks.
            set_live(&w, "2", &[]).await;
        }
        let execution = w.emu.new_hook_execution(&d, lifecycle);
        let event_path = std::env::temp_dir().join(format!("{binary}-{execution}.json"));
        std::fs::write(&event_path, hook_event(file, &d, &execution).to_string()).unwrap();
        let (ok, out) = watches.of(binary).invoke_file(binary, &event_path);
        assert!(ok, "{binary}: {out}");
        let summary: Value =
            serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(summary["status"], "Succeeded", "{summary}");
        let recorded = w.emu.hook_execution(&execution);
        assert_eq!(
            recorded["reports"].as_array().unwrap().len(),
            1,
            "{recorded}"
        );
        assert_eq!(recorded["status"], "Succeeded");
    }
    // Post-traffic moved the stable pointer after its report.
    assert_eq!(
        shiftguard_testkit::fixtures::alias_state(&w.clients.lambda, "checkout", "blue")
            .await
            .0,
        "2"
    );
    assert!(workspace_root()
        .join("events/hooks/pre-traffic.json")
        .exists());

    // Issue 11 [5]: the hook's verdict and each check's as Embedded Metric Format in the
    // binaries' output, valid by the specification.
    let docs = watches.emf_documents();
    for doc in &docs {
        shiftguard_common::emf::validate(doc).unwrap_or_else(|e| panic!("{e}: {doc}"));
    }
    let hooks: Vec<(&str, &str)> = docs
        .iter()
        .filter(|d| d.get("Hooks").is_some())
        .map(|d| (d["Phase"].as_str().unwrap(), d["Outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        hooks,
        [("pre-traffic", "succeeded"), ("post-traffic", "succeeded")],
        "{docs:?}"
    );
    let checks: Vec<&Value> = docs
        .iter()
        .filter(|d| d.get("CheckVerdicts").is_some())
        .collect();
    assert_eq!(checks.len(), 2, "one check in each hook: {docs:?}");
    for check in checks {
        assert_eq!(check["Check"], "smoke");
        assert_eq!(check["Verdict"], "passed");
        assert_eq!(check["Function"], "checkout");
    }
    let denied = w.emu.denied_calls();
    assert!(denied.is_empty(), "calls IAM denied: {denied:#?}");
}

/// One hook invocation through `cargo lambda invoke`, as CodeDeploy makes it: the summary.
fn invoke_hook(w: &World, watches: &HookWatches, binary: &str, deployment: &str) -> Value {
    let (file, lifecycle) = match binary {
        "pre-traffic" => ("hooks/pre-traffic.json", "BeforeAllowTraffic"),
        _ => ("hooks/post-traffic.json", "AfterAllowTraffic"),
    };
    let execution = w.emu.new_hook_execution(deployment, lifecycle);
    let event_path = std::env::temp_dir().join(format!("{binary}-{execution}.json"));
    std::fs::write(
        &event_path,
        hook_event(file, deployment, &execution).to_string(),
    )
    .unwrap();
    let (ok, out) = watches.of(binary).invoke_file(binary, &event_path);
    assert!(ok, "{binary}: {out}");
    let recorded = w.emu.hook_execution(&execution);
    assert_eq!(
        recorded["reports"].as_array().unwrap().len(),
        1,
        "{recorded}"
    );
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

// Issue 11 through the binaries: compare (an interleaved load pre-traffic, CloudWatch periods
// post-traffic), artifact and logs in one checks set for both hooks, then the bypass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_judge_through_the_binaries() {
    let w = world().await;
    let d = deployment(&w, 2, "2").await;
    behave(&w, "1", healthy());
    behave(&w, "2", healthy());
    invoke_version(&w, "1", 25).await;
    invoke_version(&w, "2", 25).await;
    put_periods(&w, "1", 25, |m| 100.0 + (m % 3) as f64).await;
    put_periods(&w, "2", 25, |m| 100.0 + ((m + 1) % 3) as f64).await;
    let built = code_sha256(&w, "checkout", "2").await;
    let checks = json!({"checks": [
        {"name": "new-vs-old", "kind": "compare", "requests": 600, "timeout": "120s", "expect": {"status": 200}, "source": "periods",
         "tailQuantile": null},
        {"name": "same-bytes", "kind": "artifact", "fromEnv": "BUILT_SHA256"},
        {"name": "errors-in-logs", "kind": "logs", "window": "10m"}]});
    let checks = checks.to_string();
    let watch = HookWatches::start(
        &w,
        &[
            ("HOOK_CHECKS", &checks),
            ("BUILT_SHA256", &built),
            ("HOOK_ALLOW_SKIP", "true"),
        ],
    );

    let pre = invoke_hook(&w, &watch, "pre-traffic", &d);
    assert_eq!(pre["status"], "Succeeded", "{pre}");
    assert_eq!(
        pre["checks"][0]["details"]["mode"], "interleaved-load",
        "{pre}"
    );
    set_live(&w, "2", &[]).await;
    let post = invoke_hook(&w, &watch, "post-traffic", &d);
    assert_eq!(post["status"], "Succeeded", "{post}");
    assert_eq!(
        post["checks"][0]["details"]["mode"], "cloudwatch-periods",
        "{post}"
    );
    let verdicts: Vec<&str> = post["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["passed", "passed", "passed"], "{post}");

    // A broken version 2 with the marker in the deployment's description: bypassed, on the record.
    behave(&w, "2", json!({"function_error": "Unhandled"}));
    let hotfix = described_deployment(&w, "2", "INC-9 [shiftguard skip]").await;
    let skipped = invoke_hook(&w, &watch, "pre-traffic", &hotfix);
    assert_eq!(skipped["status"], "Succeeded", "{skipped}");
    assert_eq!(
        skipped["bypass"]["source"], "deployment-description",
        "{skipped}"
    );
    let outcomes: Vec<String> = watch
        .emf_documents()
        .iter()
        .filter(|d| d.get("Hooks").is_some())
        .map(|d| d["Outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(outcomes, ["succeeded", "succeeded", "bypassed"]);
    let denied = w.emu.denied_calls();
    assert!(denied.is_empty(), "calls IAM denied: {denied:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_configuration_still_reports_failed() {
    let w = world().await;
    let d = deployment(&w, 2, "2").await;
    let env = hook_role_env(&w, "pre-traffic"); // no HOOK_CHECKS at all
    let watch = LambdaWatch::start(&env);
    let execution = w.emu.new_hook_execution(&d, "BeforeAllowTraffic");
    let event_path = std::env::temp_dir().join(format!("bad-config-{execution}.json"));
    std::fs::write(
        &event_path,
        hook_event("hooks/pre-traffic.json", &d, &execution).to_string(),
    )
    .unwrap();

    let (ok, out) = watch.invoke_file("pre-traffic", &event_path);

    assert!(ok, "the hook reported, so the invocation succeeds: {out}");
    assert!(out.contains("HOOK_CHECKS"), "{out}");
    let recorded = w.emu.hook_execution(&execution);
    assert_eq!(recorded["status"], "Failed", "{recorded}");
    assert_eq!(recorded["reports"].as_array().unwrap().len(), 1);
}

// Issue 9 [10], [14], [16] through the binary: a check file nested 50,000 levels deep is rejected
// at start-up in moments and the hook still reports Failed naming the variable; a malformed event
// and one that is not JSON fail with the documented errorType `Hook.BadEvent`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_hazards_and_bad_events_through_the_binary() {
    let w = world().await;
    let d = deployment(&w, 2, "2").await;
    let deep = std::env::temp_dir().join(format!("deep-checks-{d}.json"));
    std::fs::write(
        &deep,
        format!("{}{}", "[".repeat(50_000), "]".repeat(50_000)),
    )
    .unwrap();
    let mut env = hook_role_env(&w, "pre-traffic");
    env.push(("HOOK_CHECKS_FILE".into(), deep.display().to_string()));
    let watch = LambdaWatch::start(&env);

    let execution = w.emu.new_hook_execution(&d, "BeforeAllowTraffic");
    let event_path = std::env::temp_dir().join(format!("deep-{execution}.json"));
    std::fs::write(
        &event_path,
        hook_event("hooks/pre-traffic.json", &d, &execution).to_string(),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let (ok, out) = watch.invoke_file("pre-traffic", &event_path);
    assert!(ok, "the hook reported, so the invocation succeeds: {out}");
    assert!(
        out.contains("HOOK_CHECKS_FILE") && out.contains("nests deeper"),
        "{out}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(w.emu.hook_execution(&execution)["status"], "Failed");

    for (name, body) in [
        ("missing-id", json!({"DeploymentId": d}).to_string()),
        ("not-json", "this is not JSON".to_string()),
    ] {
        let path = std::env::temp_dir().join(format!("bad-event-{name}-{d}.json"));
        std::fs::write(&path, body).unwrap();
        let (ok, out) = watch.invoke_file("pre-traffic", &path);
        assert!(!ok, "{name}: {out}");
        assert!(out.contains("Hook.BadEvent"), "{name}: {out}");
    }
}

/// Issue 22: `{"shiftguard": "doctor"}` to a hook binary, as deployed (its rehearsal role, strict
/// IAM): a check set whose functions and log groups are there is healthy; a check naming a
/// function the hook cannot read (a typo: the construct grants reads per function it was given)
/// and a `logs` check on a log group that does not exist are serious, with the documented
/// errorType. Nothing it reads is denied for the sound set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_the_hooks_functions_and_log_groups() {
    let w = world().await;
    shiftguard_testkit::fixtures::function(&w.clients.lambda, "checkout", 2).await;
    w.clients
        .logs()
        .create_log_group()
        .log_group_name("/aws/lambda/checkout")
        .send()
        .await
        .unwrap();
    let doctor = std::env::temp_dir().join(format!(
        "shiftguard-hook-doctor-{}.json",
        std::process::id()
    ));
    std::fs::write(&doctor, r#"{"shiftguard": "doctor"}"#).unwrap();

    let sound = json!({"checks": [
        {"name": "smoke", "kind": "invoke", "functions": ["checkout"]},
        {"name": "errors", "kind": "logs", "functions": ["checkout"]},
    ]})
    .to_string();
    let watches = HookWatches::start(&w, &[("HOOK_CHECKS", &sound)]);
    let (ok, out) = watches
        .of("pre-traffic")
        .invoke_file("pre-traffic", &doctor);
    assert!(ok, "{out}");
    let report: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(report["healthy"], true, "{report}");
    assert_eq!(report["functionsChecked"], 1, "{report}");
    assert!(
        w.emu.denied_calls().is_empty(),
        "{:#?}",
        w.emu.denied_calls()
    );
    drop(watches);

    let broken = json!({"checks": [
        {"name": "smoke", "kind": "invoke", "functions": ["chekout"]},
        {"name": "errors", "kind": "logs", "functions": ["checkout"], "logGroup": "/aws/lambda/checkout-typo"},
    ]})
    .to_string();
    let watches = HookWatches::start(&w, &[("HOOK_CHECKS", &broken)]);
    let (ok, out) = watches
        .of("post-traffic")
        .invoke_file("post-traffic", &doctor);
    assert!(!ok, "{out}");
    let flat: String = out
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '│')
        .collect();
    for needle in [
        "Hook.DoctorFoundProblems",
        "\"subject\":\"chekout\"",
        "\"subject\":\"/aws/lambda/checkout-typo\"",
    ] {
        assert!(flat.contains(needle), "{needle}: {out}");
    }
}

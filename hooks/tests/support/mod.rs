//! Fixtures for the hooks' emulator tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Instant;

use aws_sdk_lambda::primitives::Blob;
use hooks::checks::Executor;
use hooks::{
    aws_executor_factory, http_client, run_hook, Clients, ExecutorFactory, HookConfig, HookError,
    HookSummary, Phase,
};
use serde_json::{json, Value};
use shiftguard_common::env::EnvError;
use shiftguard_testkit::{event, fixtures};

/// The test kit's world with the hooks' clients.
pub type World = shiftguard_testkit::World<Clients>;

pub async fn world() -> World {
    World::start(Clients::new).await
}

/// `checkout` with versions 1..=n, alias `live` on 1, and an in-flight deployment 1 → `target`.
/// Returns the deployment id.
pub async fn deployment(w: &World, versions: usize, target: &str) -> String {
    fixtures::function(&w.clients.lambda, "checkout", versions).await;
    fixtures::alias(&w.clients.lambda, "checkout", "live", "1", &[]).await;
    // The rehearsal stack's application and group (cdk/lib/rehearsal.ts): a hook run with that
    // stack's role may report to it.
    fixtures::codedeploy_group(&w.clients.codedeploy, "checkout-app", "checkout-dg").await;
    let appspec = json!({"version": 0.0, "Resources": [{"checkout": {"Type": "AWS::Lambda::Function",
        "Properties": {"Name": "checkout", "Alias": "live", "CurrentVersion": "1", "TargetVersion": target}}}]});
    let id = fixtures::create_lambda_deployment(
        &w.clients.codedeploy,
        "checkout-app",
        "checkout-dg",
        &appspec,
    )
    .await;
    w.emu.set_deployment(&id, json!({"status": "InProgress"}));
    id
}

/// The two hook binaries, each behind its own `cargo lambda watch` with its own role (as two
/// Lambda functions are deployed), the same extra environment for both.
pub struct HookWatches {
    pub pre: shiftguard_testkit::LambdaWatch,
    pub post: shiftguard_testkit::LambdaWatch,
}

impl HookWatches {
    pub fn start(w: &World, extra: &[(&str, &str)]) -> Self {
        let start = |binary: &str| {
            let mut env = hook_role_env(w, binary);
            env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            shiftguard_testkit::LambdaWatch::start(&env)
        };
        HookWatches {
            pre: start("pre-traffic"),
            post: start("post-traffic"),
        }
    }

    pub fn of(&self, binary: &str) -> &shiftguard_testkit::LambdaWatch {
        if binary == "pre-traffic" {
            &self.pre
        } else {
            &self.post
        }
    }

    /// Both binaries' EMF documents in the order they were written (their `_aws.Timestamp`).
    pub fn emf_documents(&self) -> Vec<Value> {
        let mut docs = self.pre.emf_documents();
        docs.extend(self.post.emf_documents());
        docs.sort_by_key(|d| d["_aws"]["Timestamp"].as_i64().unwrap_or(0));
        docs
    }
}

/// A hook binary as the construct deploys it: strict IAM on (the test's own clients are the
/// operator) and the rehearsal stack's role for `binary` (`pre-traffic` or `post-traffic`).
pub fn hook_role_env(w: &World, binary: &str) -> Vec<(String, String)> {
    w.emu.strict_iam();
    let function = match binary {
        "pre-traffic" => "CodeDeployHook_checkout_pre_traffic",
        "post-traffic" => "CodeDeployHook_checkout_post_traffic",
        other => panic!("no hook binary {other}"),
    };
    w.emu.role_env(function)
}

/// How `checkout` (or one version of it) answers invocations.
pub fn behave(w: &World, version: &str, behaviour: Value) {
    let mut body = behaviour;
    body["function"] = json!("checkout");
    body["version"] = json!(version);
    w.emu
        .control("POST", "/_shiftguard/lambda/behaviour", Some(&body));
}

pub fn healthy() -> Value {
    json!({"response": {"statusCode": 200, "body": "{\"status\":\"ok\"}"}})
}

/// Healthy, answering after `delay_ms`.
pub fn slow(delay_ms: u64) -> Value {
    let mut b = healthy();
    b["delay_ms"] = json!(delay_ms);
    b
}

pub fn config(checks: Value) -> HookConfig {
    config_with(checks, &[])
}

pub fn config_with(checks: Value, extra: &[(&str, &str)]) -> HookConfig {
    let checks = checks.to_string();
    let mut vars: Vec<(&str, &str)> = vec![("HOOK_CHECKS", checks.as_str())];
    vars.extend_from_slice(extra);
    HookConfig::from_vars(&vars[..]).expect("valid hook config")
}

/// The sample hook event from `events/hooks/`, with the ids CodeDeploy (the emulator) issued.
pub fn hook_event(file: &str, deployment_id: &str, execution_id: &str) -> Value {
    let mut e = event(file);
    e["DeploymentId"] = json!(deployment_id);
    e["LifecycleEventHookExecutionId"] = json!(execution_id);
    e
}

pub struct Run {
    pub result: Result<HookSummary, HookError>,
    pub execution: Value,
    pub elapsed_ms: u128,
}

impl Run {
    pub fn summary(&self) -> &HookSummary {
        self.result.as_ref().expect("the hook reported")
    }

    /// Why the hook failed, as its summary says.
    pub fn reason(&self) -> &str {
        self.summary().reason.as_deref().expect("a reason")
    }

    /// Exactly one report reached CodeDeploy, `Failed`, and the summary's reason says `text`.
    pub fn assert_failed_because(&self, text: &str) {
        self.assert_reported("Failed");
        assert!(
            self.summary()
                .reason
                .as_deref()
                .is_some_and(|r| r.contains(text)),
            "expected a reason with {text:?}: {:?}",
            self.summary().reason
        );
    }

    /// Exactly one report reached CodeDeploy, with this status.
    pub fn assert_reported(&self, status: &str) {
        let reports = self.execution["reports"].as_array().expect("reports");
        assert_eq!(reports.len(), 1, "exactly one report: {}", self.execution);
        let summary = self
            .result
            .as_ref()
            .map(|s| serde_json::to_string(s).unwrap_or_default());
        assert_eq!(
            reports[0]["status"], status,
            "{}\n{summary:?}",
            self.execution
        );
        assert_eq!(self.execution["status"], status);
    }
}

pub async fn run_with(
    w: &World,
    phase: Phase,
    deployment_id: &str,
    config: Result<&HookConfig, &EnvError>,
    deadline: Option<Instant>,
    executors: ExecutorFactory,
) -> Run {
    let (file, lifecycle) = match phase {
        Phase::PreTraffic => ("hooks/pre-traffic.json", "BeforeAllowTraffic"),
        Phase::PostTraffic => ("hooks/post-traffic.json", "AfterAllowTraffic"),
    };
    let execution_id = w.emu.new_hook_execution(deployment_id, lifecycle);
    let started = Instant::now();
    let result = run_hook(
        &w.clients,
        config,
        phase,
        &hook_event(file, deployment_id, &execution_id),
        deadline,
        executors,
    )
    .await;
    let elapsed_ms = started.elapsed().as_millis();
    let execution = w.emu.hook_execution(&execution_id);
    Run {
        result,
        execution,
        elapsed_ms,
    }
}

/// The executors the hook runs `phase`'s checks with in production.
pub fn executors(w: &World, phase: Phase) -> ExecutorFactory {
    aws_executor_factory(w.clients.clone(), http_client(), phase)
}

/// A world with [`deployment`] of `checkout` 1 → 2, version 2 [`healthy`]; the deployment's id beside it.
pub async fn healthy_deployment() -> (World, String) {
    let w = world().await;
    let d = deployment(&w, 2, "2").await;
    behave(&w, "2", healthy());
    (w, d)
}

/// `checkout:live` moved (not created) to `version` with `weights`, as a shift would.
pub async fn set_live(w: &World, version: &str, weights: &[(&str, f64)]) {
    w.clients
        .lambda
        .update_alias()
        .function_name("checkout")
        .name("live")
        .function_version(version)
        .routing_config(fixtures::routing(weights))
        .send()
        .await
        .expect("UpdateAlias");
}

pub async fn run(w: &World, phase: Phase, deployment_id: &str, config: &HookConfig) -> Run {
    run_with(
        w,
        phase,
        deployment_id,
        Ok(config),
        None,
        executors(w, phase),
    )
    .await
}

/// An executor that panics on the check named `name` and runs the others for real.
pub fn panicking_on(w: &World, phase: Phase, name: &'static str) -> ExecutorFactory {
    let real = aws_executor_factory(w.clients.clone(), http_client(), phase);
    Arc::new(move |target| {
        struct Panicky(Arc<dyn Executor>, &'static str);
        impl Executor for Panicky {
            fn run(
                &self,
                check: hooks::config::Check,
            ) -> futures::future::BoxFuture<'static, hooks::checks::Observation> {
                if check.name == self.1 {
                    panic!("boom in {}", check.name);
                }
                self.0.run(check)
            }
        }
        Arc::new(Panicky(real(target), name)) as Arc<dyn Executor>
    })
}

/// Lambda's per-minute metrics of one version through the alias, as Lambda publishes them, for
/// the last `minutes` minutes: `Duration` one value a minute, invocations and errors.
/// The dimensions Lambda publishes a version's metrics under when it runs through `checkout:live`.
pub fn version_dimensions(version: &str) -> Vec<aws_sdk_cloudwatch::types::Dimension> {
    use aws_sdk_cloudwatch::types::Dimension;
    [
        ("FunctionName", "checkout"),
        ("Resource", "checkout:live"),
        ("ExecutedVersion", version),
    ]
    .iter()
    .map(|(name, value)| Dimension::builder().name(*name).value(*value).build())
    .collect()
}

pub async fn put_periods(w: &World, version: &str, minutes: u64, duration_ms: impl Fn(u64) -> f64) {
    use aws_sdk_cloudwatch::types::{MetricDatum, StandardUnit};
    let cw = aws_sdk_cloudwatch::Client::new(&w.emu.sdk_config().await);
    let dims = version_dimensions(version);
    let now = std::time::SystemTime::now();
    for minute in 0..minutes {
        let at = now - std::time::Duration::from_secs(60 * minute + 5);
        let datum = |name: &str, value: f64, unit: StandardUnit| {
            MetricDatum::builder()
                .metric_name(name)
                .value(value)
                .unit(unit)
                .set_dimensions(Some(dims.clone()))
                .timestamp(at.into())
                .build()
        };
        cw.put_metric_data()
            .namespace("AWS/Lambda")
            .metric_data(datum(
                "Duration",
                duration_ms(minute),
                StandardUnit::Milliseconds,
            ))
            .metric_data(datum("Invocations", 100.0, StandardUnit::Count))
            .metric_data(datum("Errors", 0.0, StandardUnit::Count))
            .send()
            .await
            .expect("PutMetricData");
    }
}

/// `n` invocations of one version, as production traffic would make them.
pub async fn invoke_version(w: &World, version: &str, n: usize) {
    for _ in 0..n {
        w.clients
            .lambda
            .invoke()
            .function_name("checkout")
            .qualifier(version)
            .payload(Blob::new(b"{}".to_vec()))
            .send()
            .await
            .expect("Invoke");
    }
}

/// The `CodeSha256` Lambda reports for `function:qualifier`.
pub async fn code_sha256(w: &World, function: &str, qualifier: &str) -> String {
    shiftguard_common::lambda::function_version(&w.clients.lambda, function, qualifier)
        .await
        .expect("GetFunctionConfiguration")
        .and_then(|c| c.code_sha256)
        .expect("the version exists and has a CodeSha256")
}

/// A deployment 1 → `target` whose CodeDeploy description is `description`.
pub async fn described_deployment(w: &World, target: &str, description: &str) -> String {
    let appspec = json!({"version": 0.0, "Resources": [{"checkout": {"Type": "AWS::Lambda::Function",
        "Properties": {"Name": "checkout", "Alias": "live", "CurrentVersion": "1", "TargetVersion": target}}}]});
    fixtures::codedeploy_group(&w.clients.codedeploy, "checkout-app", "checkout-dg").await;
    let id = fixtures::create_described_lambda_deployment(
        &w.clients.codedeploy,
        "checkout-app",
        "checkout-dg",
        &appspec,
        Some(description),
    )
    .await;
    w.emu.set_deployment(&id, json!({"status": "InProgress"}));
    id
}

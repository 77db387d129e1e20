//! ShiftGuard's CodeDeploy lifecycle hooks: `pre-traffic` (BeforeAllowTraffic) and
//! `post-traffic` (AfterAllowTraffic).
//!
//! A hook finds the version under deployment, runs the configured checks against it, and reports
//! `Succeeded` or `Failed` with `PutLifecycleEventHookExecutionStatus` — exactly once, whatever
//! happens: a failing or panicking check, a bad configuration, or checks that would outlive the
//! Lambda deadline (a watchdog reports `Failed` first). A deployment never waits out CodeDeploy's
//! one-hour hook timeout because of us.

pub mod artifact;
pub mod bypass;
pub mod checks;
pub mod config;
pub mod decision_metrics;
pub mod discovery;
pub mod doctor;
mod hook;
pub mod housekeeping;
pub mod intervals;
pub mod judge;
pub mod redact;
pub mod runner;
pub mod stats;
pub mod verdict;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use shiftguard_common::env::EnvError;
use tracing::{error, warn};

pub use config::HookConfig;
use discovery::DeploymentTarget;
pub use hook::{aws_executor_factory, run_hook, ExecutorFactory};
use runner::CheckResult;

/// Which lifecycle event this hook serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    PreTraffic,
    PostTraffic,
}

/// The AWS clients the hooks use, built once per process.
#[derive(Clone, Debug)]
pub struct Clients {
    pub codedeploy: aws_sdk_codedeploy::Client,
    pub lambda: aws_sdk_lambda::Client,
    /// For checks' `Invoke`s: no SDK retries and no SDK attempt/operation timeouts. Invokes are not
    /// idempotent, so one check attempt is exactly one invocation, bounded by the check's own
    /// `timeout`; only the check's `retries` repeat it.
    pub invoke: aws_sdk_lambda::Client,
    /// Built at start-up when the checks use them ([`Clients::prepare`]), else on first use.
    cloudwatch: std::sync::OnceLock<aws_sdk_cloudwatch::Client>,
    logs: std::sync::OnceLock<aws_sdk_cloudwatchlogs::Client>,
    sdk: aws_config::SdkConfig,
}

impl Clients {
    pub fn cloudwatch(&self) -> &aws_sdk_cloudwatch::Client {
        self.cloudwatch
            .get_or_init(|| aws_sdk_cloudwatch::Client::new(&self.sdk))
    }

    pub fn logs(&self) -> &aws_sdk_cloudwatchlogs::Client {
        self.logs
            .get_or_init(|| aws_sdk_cloudwatchlogs::Client::new(&self.sdk))
    }

    /// Builds now the clients `checks` use (CloudWatch for `metrics` and `compare`, Logs for `logs`
    /// and `compare`), so that no check waits for one; nothing the checks do not use is built.
    pub fn prepare(&self, checks: &config::CheckSet) -> &Self {
        use config::CheckKind;
        for check in &checks.checks {
            if matches!(check.kind, CheckKind::Metrics(_) | CheckKind::Compare(_)) {
                self.cloudwatch();
            }
            if matches!(check.kind, CheckKind::Logs(_) | CheckKind::Compare(_)) {
                self.logs();
            }
        }
        self
    }

    /// Lambda and CodeDeploy clients the caller already has (`shift`, which holds rollback's):
    /// one client per service in the process.
    pub fn sharing(
        sdk: &aws_config::SdkConfig,
        codedeploy: aws_sdk_codedeploy::Client,
        lambda: aws_sdk_lambda::Client,
    ) -> Self {
        use aws_config::retry::RetryConfig;
        use aws_config::timeout::TimeoutConfig;
        let invoke = aws_sdk_lambda::config::Builder::from(sdk)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .disable_operation_attempt_timeout()
                    .disable_operation_timeout()
                    .build(),
            )
            .build();
        Self {
            codedeploy,
            lambda,
            invoke: aws_sdk_lambda::Client::from_conf(invoke),
            cloudwatch: std::sync::OnceLock::new(),
            logs: std::sync::OnceLock::new(),
            sdk: sdk.clone(),
        }
    }

    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self::sharing(
            sdk,
            aws_sdk_codedeploy::Client::new(sdk),
            aws_sdk_lambda::Client::new(sdk),
        )
    }
}

/// The HTTP client for `http` checks: rustls with ring, the same TLS stack as the AWS SDK. Built
/// on first use, so that hooks without `http` checks never load root certificates twice at init.
#[derive(Clone, Default)]
pub struct HttpClient(Arc<std::sync::OnceLock<reqwest::Client>>);

impl HttpClient {
    pub fn get(&self) -> &reqwest::Client {
        self.0.get_or_init(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder()
                .user_agent(concat!("shiftguard-hooks/", env!("CARGO_PKG_VERSION")))
                // Secret headers (X-API-Key, custom ones) would follow a redirect to another host:
                // only same-origin redirects are followed.
                .redirect(reqwest::redirect::Policy::custom(|attempt| {
                    let same_origin = attempt
                        .previous()
                        .first()
                        .is_some_and(|first| first.origin() == attempt.url().origin());
                    if same_origin && attempt.previous().len() < 10 {
                        attempt.follow()
                    } else {
                        attempt.stop()
                    }
                }))
                .connect_timeout(Duration::from_secs(5))
                .build()
                .expect("the HTTP client builds with a crypto provider installed")
        })
    }
}

pub fn http_client() -> HttpClient {
    HttpClient::default()
}

/// The CodeDeploy hook event — exactly the two ids, nothing else — as `aws_lambda_events` types
/// it. (Rollback parses alarm notifications with its own lenient types instead: the crate's SNS
/// alarm payload refuses `"AlarmDescription": null`, anomaly-detection and composite alarms,
/// which real notifications carry; see rollback/src/event.rs.)
pub type HookEvent = aws_lambda_events::codedeploy::CodeDeployLifecycleEvent;

/// The event, or an error naming the field that is missing or wrong.
pub fn parse_event(event: &Value) -> Result<HookEvent, HookError> {
    if !event.is_object() {
        return Err(HookError::BadEvent("the event is not a JSON object".into()));
    }
    // The fields first, so that the error names the one that is wrong (serde would say only
    // "missing field"), then the crate's type.
    for name in ["DeploymentId", "LifecycleEventHookExecutionId"] {
        match event.get(name) {
            Some(Value::String(s)) if !s.trim().is_empty() => {}
            Some(_) => return Err(HookError::BadEvent(format!("{name} is not a non-empty string"))),
            None => {
                return Err(HookError::BadEvent(format!(
                    "{name} is missing (a CodeDeploy hook event is {{\"DeploymentId\": \"d-…\", \"LifecycleEventHookExecutionId\": \"…\"}})"
                )))
            }
        }
    }
    serde_json::from_value(event.clone())
        .map_err(|e| HookError::BadEvent(format!("not a CodeDeploy lifecycle hook event: {e}")))
}

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("doctor found {serious} serious problem(s) in the hook's checks; report: {report}")]
    DoctorFoundProblems { serious: usize, report: String },
    #[error("invalid configuration: {0}")]
    BadConfig(String),
    /// Without the ids there is nothing to report to: the invocation fails loudly instead.
    #[error("malformed hook event, nothing can be reported to CodeDeploy: {0}")]
    BadEvent(String),
    #[error("could not report {status} for deployment {deployment_id} after {attempts} attempts: {message}")]
    ReportFailed {
        deployment_id: String,
        status: &'static str,
        attempts: u32,
        message: String,
    },
}

impl HookError {
    /// The stable `errorType` Lambda reports for this failure (documented in
    /// hooks/README.md#failures-and-their-errortype).
    pub fn error_type(&self) -> &'static str {
        match self {
            HookError::BadEvent(_) => "Hook.BadEvent",
            HookError::DoctorFoundProblems { .. } => "Hook.DoctorFoundProblems",
            HookError::BadConfig(_) => "Hook.BadConfig",
            HookError::ReportFailed { .. } => "Hook.ReportFailed",
        }
    }
}

impl From<HookError> for lambda_runtime::Diagnostic {
    fn from(e: HookError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.error_type().into(),
            error_message: e.to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookSummary {
    pub phase: Phase,
    pub deployment_id: String,
    pub lifecycle_event_hook_execution_id: String,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub target: Option<DeploymentTarget>,
    pub checks: Vec<CheckResult>,
    pub duration_ms: u64,
    pub report: ReportOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub housekeeping: Option<Value>,
    /// Set when `[shiftguard skip]` bypassed the required checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bypass: Option<bypass::Bypass>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportOutcome {
    pub attempts: u32,
    /// CodeDeploy already had a status (an earlier run of this same hook reported it).
    pub already_completed: bool,
}

/// Whether post-traffic housekeeping (stable pointer, pruning) may run. Pure: only a `Succeeded`
/// that *this* invocation got accepted promotes anything — an `AlreadyCompleted` answer means an
/// earlier run (maybe reporting `Failed`) or a stop decided, and a rollback deployment's version is
/// not a new release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HousekeepingDecision {
    Run,
    /// Nothing is configured.
    NotConfigured,
    Skip(String),
}

pub fn housekeeping_decision(
    phase: Phase,
    configured: bool,
    succeeded: bool,
    bypassed: bool,
    report: &ReportOutcome,
    target: Option<&DeploymentTarget>,
) -> HousekeepingDecision {
    use HousekeepingDecision::*;
    if phase != Phase::PostTraffic || !configured {
        return NotConfigured;
    }
    if !succeeded {
        return Skip("this invocation reported Failed".into());
    }
    // A bypassed version was never checked: promoting it would make it rollback's "stable" version
    // and could prune the last version that passed.
    if bypassed {
        return Skip(
            "emergency bypass: the required checks did not run, so nothing is promoted or pruned"
                .into(),
        );
    }
    if report.already_completed {
        return Skip("CodeDeploy refused this invocation's Succeeded as already completed (an earlier run of this hook or a stop decided): nothing is promoted".into());
    }
    match target.map(|t| t.is_rollback) {
        None => Skip("the version under deployment is unknown".into()),
        Some(Some(true)) => Skip("this is CodeDeploy's rollback deployment, not a release".into()),
        Some(None) => Skip(
            "GetDeployment could not be read, so this may be CodeDeploy's rollback deployment: nothing is promoted on a guess".into(),
        ),
        Some(Some(false)) => Run,
    }
}

/// What to report, from the checks' verdict. Pure. CodeDeploy's rollback deployment is never
/// blocked: it restores the version that was serving before, and a failed check there (pre-traffic
/// during the very outage that caused the rollback, or post-traffic comparing the restored version
/// with the bad one on a handful of samples) would keep the bad version on traffic or mark a
/// completed rollback `Failed`. Its checks still run and are reported, as advisory.
pub fn report_decision(verdict: (bool, Option<String>), rollback: bool) -> (bool, Option<String>) {
    match (verdict, rollback) {
        ((false, Some(why)), true) => (
            true,
            Some(format!(
                "CodeDeploy's rollback deployment is never blocked; these checks failed and are reported as advisory: {why}"
            )),
        ),
        (verdict, _) => verdict,
    }
}

/// `{"shiftguard": "doctor"}`: the check set against the account ([`doctor`](crate::doctor)).
pub async fn doctor(
    clients: &Clients,
    config: &HookConfig,
    phase: Phase,
) -> Result<serde_json::Value, HookError> {
    let facts = doctor::gather(clients, config).await;
    let report = doctor::report(config, &facts, phase);
    shiftguard_common::doctor::conclude(&report, &report.findings, report.serious)
        .map_err(|(serious, report)| HookError::DoctorFoundProblems { serious, report })
}

/// The thin `main` of both hook binaries. A bad configuration must still end in a `Failed`
/// report, so the runtime starts anyway and every invocation reports it.
pub fn main(phase: Phase) -> Result<(), lambda_runtime::Error> {
    shiftguard_common::main(HookConfig::from_env, |config, sdk| {
        serve(phase, config, sdk)
    })
}

async fn serve(
    phase: Phase,
    config: Result<HookConfig, EnvError>,
    sdk: aws_config::SdkConfig,
) -> Result<(), lambda_runtime::Error> {
    use shiftguard_common::init_trace::mark;
    if let Ok(cfg) = &config {
        for unused in cfg.unused_in(phase) {
            warn!(warning = %unused, "check configuration");
        }
    }
    let clients = Clients::new(&sdk);
    if let Ok(cfg) = &config {
        clients.prepare(&cfg.checks);
    }
    let executors = aws_executor_factory(clients.clone(), http_client(), phase);
    mark("clients");
    let (clients, config) = (&clients, &config);
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<shiftguard_common::RawEvent>| {
            let executors = executors.clone();
            async move {
                let payload = match event.payload {
                    shiftguard_common::RawEvent::Json(v) => v,
                    shiftguard_common::RawEvent::Invalid(e) => {
                        error!(error = %e, outcome = "rejected", "the hook event is not JSON");
                        return Err(
                            HookError::BadEvent(format!("the event is not JSON: {e}")).into()
                        );
                    }
                };
                if shiftguard_common::doctor::is_doctor_event(&payload) {
                    let config = config
                        .as_ref()
                        .map_err(|e| HookError::BadConfig(e.to_string()))?;
                    return doctor(clients, config, phase).await.map_err(Into::into);
                }
                let deadline = shiftguard_common::deadline_from_epoch_ms(event.context.deadline);
                let summary = run_hook(
                    clients,
                    config.as_ref(),
                    phase,
                    &payload,
                    deadline,
                    executors,
                )
                .await?;
                serde_json::to_value(summary).map_err(|e| lambda_runtime::Diagnostic {
                    error_type: "Hook.Internal".into(),
                    error_message: format!("the summary could not be serialised: {e}"),
                })
            }
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(is_rollback: bool) -> DeploymentTarget {
        DeploymentTarget {
            function: "checkout".into(),
            alias: Some("live".into()),
            current_version: Some("1".into()),
            target_version: "2".into(),
            source: discovery::Source::DeploymentTarget,
            is_rollback: Some(is_rollback),
            deployment_description: None,
            deployment_creator: None,
        }
    }

    #[test]
    fn a_rollback_deployment_is_never_blocked() {
        let failed = (false, Some("smoke: status 500".to_string()));
        assert_eq!(report_decision(failed.clone(), false), failed);
        let (ok, why) = report_decision(failed, true);
        assert!(ok);
        assert!(why.unwrap().contains("advisory: smoke: status 500"));
        assert_eq!(report_decision((true, None), true), (true, None));
    }

    #[test]
    fn housekeeping_runs_only_after_this_invocations_success_was_accepted() {
        use HousekeepingDecision::*;
        let accepted = ReportOutcome {
            attempts: 1,
            already_completed: false,
        };
        let refused = ReportOutcome {
            attempts: 1,
            already_completed: true,
        };
        let release = target(false);
        let rollback = target(true);
        let unknown = DeploymentTarget {
            is_rollback: None,
            ..target(false)
        };
        // (name, phase, configured, succeeded, report, target, housekeeping runs)
        type Case<'a> = (
            &'a str,
            Phase,
            bool,
            bool,
            &'a ReportOutcome,
            Option<&'a DeploymentTarget>,
            bool,
        );
        let cases: Vec<Case> = vec![
            (
                "accepted success",
                Phase::PostTraffic,
                true,
                true,
                &accepted,
                Some(&release),
                true,
            ),
            (
                "refused as already completed",
                Phase::PostTraffic,
                true,
                true,
                &refused,
                Some(&release),
                false,
            ),
            (
                "reported Failed",
                Phase::PostTraffic,
                true,
                false,
                &accepted,
                Some(&release),
                false,
            ),
            (
                "rollback deployment",
                Phase::PostTraffic,
                true,
                true,
                &accepted,
                Some(&rollback),
                false,
            ),
            (
                "unknown target",
                Phase::PostTraffic,
                true,
                true,
                &accepted,
                None,
                false,
            ),
            (
                "rollback status unknown",
                Phase::PostTraffic,
                true,
                true,
                &accepted,
                Some(&unknown),
                false,
            ),
            (
                "pre-traffic never",
                Phase::PreTraffic,
                true,
                true,
                &accepted,
                Some(&release),
                false,
            ),
            (
                "nothing configured",
                Phase::PostTraffic,
                false,
                true,
                &accepted,
                Some(&release),
                false,
            ),
        ];
        for (name, phase, configured, succeeded, report, target, runs) in cases {
            let decision =
                housekeeping_decision(phase, configured, succeeded, false, report, target);
            assert_eq!(decision == Run, runs, "{name}: {decision:?}");
        }
        assert!(matches!(
            housekeeping_decision(Phase::PostTraffic, true, true, false, &refused, Some(&release)),
            Skip(why) if why.contains("already completed")
        ));
        assert!(matches!(
            housekeeping_decision(Phase::PostTraffic, true, true, true, &accepted, Some(&release)),
            Skip(why) if why.contains("emergency bypass")
        ));
    }
}

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
pub mod housekeeping;
pub mod intervals;
pub mod judge;
pub mod redact;
pub mod runner;
pub mod stats;
pub mod verdict;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_codedeploy::types::LifecycleEventStatus;
use serde::Serialize;
use serde_json::Value;
use shiftguard_common::env::EnvError;
use shiftguard_common::error_text;
use tracing::{error, info, warn};

use checks::{AwsExecutor, Executor};
pub use config::HookConfig;
use discovery::DeploymentTarget;
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
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
}

impl Clients {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
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
            codedeploy: aws_sdk_codedeploy::Client::new(sdk),
            lambda: aws_sdk_lambda::Client::new(sdk),
            invoke: aws_sdk_lambda::Client::from_conf(invoke),
            cloudwatch: aws_sdk_cloudwatch::Client::new(sdk),
            logs: aws_sdk_cloudwatchlogs::Client::new(sdk),
        }
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
    /// The stable `errorType` Lambda reports for this failure (documented in the README).
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

/// What the checks concluded, before reporting.
struct Evaluation {
    succeeded: bool,
    reason: Option<String>,
    target: Option<DeploymentTarget>,
    checks: Vec<CheckResult>,
    bypass: Option<bypass::Bypass>,
}

/// Builds the executor for a deployment target (tests wrap it).
pub type ExecutorFactory = Arc<dyn Fn(DeploymentTarget) -> Arc<dyn Executor> + Send + Sync>;

pub fn aws_executor_factory(clients: Clients, http: HttpClient, phase: Phase) -> ExecutorFactory {
    Arc::new(move |target| {
        Arc::new(AwsExecutor {
            clients: clients.clone(),
            http: http.clone(),
            target,
            phase,
        }) as Arc<dyn Executor>
    })
}

/// Margin kept for reporting when the configuration (and its margin) could not be read.
const FALLBACK_MARGIN: Duration = Duration::from_secs(5);
/// Pauses between report attempts (the SDK retries inside each attempt too).
const REPORT_BACKOFF: Duration = Duration::from_millis(250);

/// Handles one hook invocation: evaluate (bounded by the watchdog), report once, then (post-traffic,
/// on success) housekeeping.
pub async fn run_hook(
    clients: &Clients,
    config: Result<&HookConfig, &EnvError>,
    phase: Phase,
    event: &Value,
    deadline: Option<Instant>,
    executors: ExecutorFactory,
) -> Result<HookSummary, HookError> {
    let started = Instant::now();
    let ids = parse_event(event)
        .inspect_err(|e| error!(error = %e, outcome = "rejected", "malformed hook event"))?;
    let deployment_id = ids.deployment_id.clone();
    info!(deployment_id = %deployment_id, phase = ?phase, time_left_ms = deadline.map(|d| d.saturating_duration_since(started).as_millis() as u64), "hook started");

    // With a function timeout shorter than twice the margin (Lambda's default is 3 s), keep half
    // of what is left for the checks rather than failing at once.
    let margin = config.map(|c| c.deadline_margin).unwrap_or(FALLBACK_MARGIN);
    let margin = deadline.map_or(margin, |d| {
        margin.min(d.saturating_duration_since(started) / 2)
    });
    let watchdog_at = deadline.map(|d| d.checked_sub(margin).unwrap_or_else(Instant::now));
    let evaluation = match config {
        Err(e) => Evaluation {
            succeeded: false,
            reason: Some(format!("invalid configuration: {e}")),
            target: None,
            checks: Vec::new(),
            bypass: None,
        },
        Ok(cfg) => {
            // Everything that could panic or hang runs in its own task, so that a panic or the
            // watchdog still ends in a report.
            // What discovery found, for the watchdog and panic paths too: a rollback deployment is
            // never blocked, however the checks end.
            let discovered: Arc<std::sync::OnceLock<DeploymentTarget>> = Default::default();
            // Likewise the bypass: once granted, only advisory checks are running, and their
            // hanging or panicking must not turn it into a Failed.
            let bypassed: Arc<std::sync::OnceLock<bypass::Bypass>> = Default::default();
            let mut work = tokio::spawn(evaluate(
                clients.clone(),
                cfg.clone(),
                phase,
                deployment_id.clone(),
                executors,
                discovered.clone(),
                bypassed.clone(),
            ));
            let unfinished = |why: String| {
                let target = discovered.get().cloned();
                if let Some(b) = bypassed.get() {
                    return Evaluation {
                        succeeded: true,
                        reason: Some(format!(
                            "{}; the advisory checks did not finish: {why}",
                            bypass_reason(b)
                        )),
                        target,
                        checks: Vec::new(),
                        bypass: Some(b.clone()),
                    };
                }
                let rollback = target.as_ref().is_some_and(|t| t.is_rollback == Some(true));
                let (succeeded, reason) = report_decision((false, Some(why)), rollback);
                Evaluation {
                    succeeded,
                    reason,
                    target,
                    checks: Vec::new(),
                    bypass: None,
                }
            };
            let watchdog = async {
                match watchdog_at {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                joined = &mut work => match joined {
                    Ok(evaluation) => evaluation,
                    Err(join) => unfinished(if join.is_panic() {
                        format!("the hook panicked: {}", runner::panic_text(join.into_panic()))
                    } else {
                        "the hook's work was cancelled".into()
                    }),
                },
                _ = watchdog => {
                    // Every check runs inside this one task (none is spawned), so once it is
                    // cancelled nothing the checks started can go on invoking the function — not
                    // now, and not when the sandbox thaws for the next invocation.
                    work.abort();
                    let _ = work.await;
                    unfinished(format!(
                        "watchdog: the checks had not finished {} ms before the Lambda deadline",
                        margin.as_millis()
                    ))
                }
            }
        }
    };

    let status = if evaluation.succeeded {
        LifecycleEventStatus::Succeeded
    } else {
        LifecycleEventStatus::Failed
    };
    let status_text = if evaluation.succeeded {
        "Succeeded"
    } else {
        "Failed"
    };
    if let Some(reason) = &evaluation.reason {
        warn!(deployment_id = %deployment_id, status = status_text, reason = %reason, "reporting");
    }
    let report = report(clients, &ids, status, deadline).await.map_err(|(attempts, message)| {
        error!(deployment_id = %deployment_id, status = status_text, attempts, error = %message, outcome = "report-failed", "could not report to CodeDeploy");
        shiftguard_common::emf::emit(&[decision_metrics::report_failed(phase, &deployment_id, shiftguard_common::emf::now_ms())]);
        HookError::ReportFailed { deployment_id: deployment_id.clone(), status: status_text, attempts, message }
    })?;
    info!(deployment_id = %deployment_id, status = status_text, attempts = report.attempts, already_completed = report.already_completed, outcome = "reported", "reported to CodeDeploy");

    let mut summary = HookSummary {
        phase,
        deployment_id: deployment_id.clone(),
        lifecycle_event_hook_execution_id: ids.lifecycle_event_hook_execution_id.clone(),
        status: status_text,
        reason: evaluation.reason,
        target: evaluation.target,
        checks: evaluation.checks,
        duration_ms: started.elapsed().as_millis() as u64,
        report,
        housekeeping: None,
        bypass: evaluation.bypass,
    };

    if let Ok(cfg) = config {
        let configured = cfg.stable_alias.is_some() || cfg.prune_keep.is_some();
        match housekeeping_decision(
            phase,
            configured,
            evaluation.succeeded,
            summary.bypass.is_some(),
            &summary.report,
            summary.target.as_ref(),
        ) {
            HousekeepingDecision::NotConfigured => {}
            HousekeepingDecision::Skip(why) => {
                info!(deployment_id = %deployment_id, action = "housekeeping", outcome = "skipped", reason = %why, "housekeeping skipped");
                summary.housekeeping = Some(serde_json::json!({ "skipped": why }));
            }
            HousekeepingDecision::Run => {
                let target = summary.target.clone().expect("Run needs a target");
                // Bounded by the deadline. A failure does not fail the invocation: Lambda's retry
                // could not repair it (CodeDeploy refuses the second report, so housekeeping would
                // be skipped) and would run every check against production again. It is logged at
                // error level and kept in the summary.
                let done = shiftguard_common::Deadline(deadline)
                    .within(
                        Duration::from_millis(200),
                        housekeeping::tidy(clients, cfg, &target),
                    )
                    .await
                    .unwrap_or_else(|late| Err(format!("did not finish: {late}")));
                match done {
                    Ok(done) => summary.housekeeping = done,
                    Err(message) => {
                        error!(deployment_id = %deployment_id, error = %message, outcome = "housekeeping-failed", "housekeeping failed; the deployment is not affected");
                        summary.housekeeping = Some(serde_json::json!({ "error": message }));
                    }
                }
            }
        }
    }
    log_summary(&summary);
    shiftguard_common::emf::emit(&decision_metrics::documents(
        &summary,
        shiftguard_common::emf::now_ms(),
    ));
    Ok(summary)
}

fn log_summary(summary: &HookSummary) {
    info!(
        deployment_id = %summary.deployment_id, status = summary.status,
        summary = %serde_json::to_string(summary).unwrap_or_default(), "hook summary"
    );
}

async fn evaluate(
    clients: Clients,
    cfg: HookConfig,
    phase: Phase,
    deployment_id: String,
    executors: ExecutorFactory,
    discovered: Arc<std::sync::OnceLock<DeploymentTarget>>,
    bypassed: Arc<std::sync::OnceLock<bypass::Bypass>>,
) -> Evaluation {
    let target = match discovery::discover(&clients, &deployment_id, cfg.env_target.as_ref()).await
    {
        Ok(t) => {
            let _ = discovered.set(t.clone());
            t
        }
        Err(e) => {
            return Evaluation {
                succeeded: false,
                reason: Some(e.to_string()),
                target: None,
                checks: Vec::new(),
                bypass: None,
            }
        }
    };
    let rollback = target.is_rollback == Some(true);
    if rollback {
        info!(deployment_id = %deployment_id, phase = ?phase, "this is CodeDeploy's rollback deployment: checking the version it restores, advisory only (a rollback is never blocked)");
    }
    // One hook serves every protected function: only this function's checks run.
    let for_function = match cfg.checks.for_function(&target.function) {
        Ok(checks) => checks,
        // CodeDeploy's rollback is never blocked; its checks are advisory anyway.
        Err(why) if rollback => {
            warn!(deployment_id = %deployment_id, function = %target.function, reason = %why, "no check applies to the function CodeDeploy is rolling back; nothing to run");
            config::CheckSet {
                concurrency: cfg.checks.concurrency,
                checks: Vec::new(),
            }
        }
        Err(why) => {
            error!(deployment_id = %deployment_id, function = %target.function, reason = %why, outcome = "no-applicable-checks", "no check applies to the deployed function");
            return Evaluation {
                succeeded: false,
                reason: Some(why),
                target: Some(target),
                checks: Vec::new(),
                bypass: None,
            };
        }
    };
    // A rollback deployment is never blocked anyway: the bypass is for releases.
    let bypass = if cfg.allow_skip && !rollback {
        bypass_requested(&deployment_id, &target)
    } else {
        None
    };
    let mut checks = for_function.clone();
    if let Some(b) = &bypass {
        let _ = bypassed.set(b.clone());
        checks.checks.retain(|c| !c.required);
        warn!(
            deployment_id = %deployment_id, phase = ?phase, action = "bypass", source = b.source,
            description = %b.description, version = %b.version, deployment_creator = ?b.deployment_creator,
            skipped_required_checks = for_function.checks.len() - checks.checks.len(),
            outcome = "bypassed",
            "EMERGENCY BYPASS: [shiftguard skip] asked for; required checks are not run and Succeeded is reported"
        );
    }
    let results = runner::run_checks(executors(target.clone()), &checks, &cfg.redactor).await;
    for advisory in results
        .iter()
        .filter(|r| !r.passed && (!r.required || rollback))
    {
        warn!(deployment_id = %deployment_id, check = %advisory.name, reason = ?advisory.reason, "advisory check failed (does not fail the deployment)");
    }
    let (succeeded, reason) = match &bypass {
        Some(b) => (true, Some(bypass_reason(b))),
        None => report_decision(runner::verdict(&results), rollback),
    };
    Evaluation {
        succeeded,
        reason,
        target: Some(target),
        checks: results,
        bypass,
    }
}

fn bypass_reason(b: &bypass::Bypass) -> String {
    format!(
        "emergency bypass: the {} of version {} carries {} ({:?}); the required checks were not run",
        b.source.replace('-', " "),
        b.version,
        bypass::SKIP_MARKER,
        b.description
    )
}

/// Whether the version's or the deployment's description asks for the emergency bypass. The
/// version's description comes from `GetFunctionConfiguration`; if it cannot be read, only the
/// deployment's is looked at (the checks run: never bypassed on a guess).
/// The bypass, from the deployment's own description only (no AWS call: discovery read it).
fn bypass_requested(deployment_id: &str, target: &DeploymentTarget) -> Option<bypass::Bypass> {
    bypass::requested(
        deployment_id,
        &target.target_version,
        target.deployment_description.as_deref(),
        target.deployment_creator.as_deref(),
    )
}

/// `PutLifecycleEventHookExecutionStatus`, retried with backoff until shortly before the deadline.
/// `LifecycleEventAlreadyCompletedException` means an earlier run of this hook already reported:
/// done.
async fn report(
    clients: &Clients,
    ids: &HookEvent,
    status: LifecycleEventStatus,
    deadline: Option<Instant>,
) -> Result<ReportOutcome, (u32, String)> {
    // The watchdog margin is the time kept for reporting: stop only just short of the deadline.
    let give_up_at = deadline.map(|d| {
        d.checked_sub(Duration::from_millis(200))
            .unwrap_or_else(Instant::now)
    });
    let mut backoff = REPORT_BACKOFF;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let request = clients
            .codedeploy
            .put_lifecycle_event_hook_execution_status()
            .deployment_id(&ids.deployment_id)
            .lifecycle_event_hook_execution_id(&ids.lifecycle_event_hook_execution_id)
            .status(status.clone())
            .send();
        // One attempt (with the SDK's own retries inside) must not outlive the invocation.
        let sent = match give_up_at {
            Some(at) => match tokio::time::timeout_at(at.into(), request).await {
                Ok(sent) => sent,
                Err(_) => return Err((attempts, "out of time before the Lambda deadline".into())),
            },
            None => request.await,
        };
        let message = match sent {
            Ok(_) => {
                return Ok(ReportOutcome {
                    attempts,
                    already_completed: false,
                })
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_lifecycle_event_already_completed_exception()) =>
            {
                return Ok(ReportOutcome {
                    attempts,
                    already_completed: true,
                })
            }
            Err(e) => {
                let permanent = e.as_service_error().is_some_and(|s| {
                    s.is_deployment_does_not_exist_exception()
                        || s.is_invalid_lifecycle_event_hook_execution_id_exception()
                        || s.is_invalid_deployment_id_exception()
                        || s.is_unsupported_action_for_deployment_type_exception()
                });
                let message = error_text(&e);
                if permanent {
                    return Err((attempts, message));
                }
                message
            }
        };
        let out_of_time = give_up_at.is_some_and(|g| Instant::now() + backoff >= g);
        if out_of_time || attempts >= 8 {
            return Err((attempts, message));
        }
        warn!(deployment_id = %ids.deployment_id, attempt = attempts, error = %message, "report failed; retrying");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(4));
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

/// The thin `main` of both hook binaries.
pub async fn serve(phase: Phase) -> Result<(), lambda_runtime::Error> {
    shiftguard_common::prefer_ca_bundle();
    shiftguard_common::init_logging();
    // A bad configuration must still end in a `Failed` report, so the runtime starts anyway and
    // every invocation reports it.
    let config = HookConfig::from_env().inspect_err(|e| {
        error!(variable = %e.variable, error = %e, "invalid configuration: every invocation will report Failed");
    });
    if let Ok(cfg) = &config {
        for unused in cfg.unused_in(phase) {
            warn!(warning = %unused, "check configuration");
        }
    }
    let clients = Clients::new(&shiftguard_common::aws_config().await);
    let executors = aws_executor_factory(clients.clone(), http_client(), phase);
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

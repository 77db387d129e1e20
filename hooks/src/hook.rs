//! One hook invocation: find the deployment's target, evaluate the checks (bounded by the
//! watchdog), report exactly once, then (post-traffic, on an accepted success) housekeeping.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_codedeploy::types::LifecycleEventStatus;
use serde_json::Value;
use shiftguard_common::env::EnvError;
use shiftguard_common::error_text;
use tracing::{error, info, warn};

use crate::checks::{AwsExecutor, Executor};
use crate::discovery::DeploymentTarget;
use crate::runner::CheckResult;
use crate::{
    bypass, config, decision_metrics, discovery, housekeeping, housekeeping_decision, parse_event,
    report_decision, runner, Clients, HookConfig, HookError, HookEvent, HookSummary,
    HousekeepingDecision, HttpClient, Phase, ReportOutcome,
};

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

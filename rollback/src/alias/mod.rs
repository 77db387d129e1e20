//! Rolling a Lambda alias back: read what the decision needs, ask [`plan_alias`], carry the plan
//! out (write the alias, stop a CodeDeploy deployment, wait for CodeDeploy's rollback), verify.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_lambda::types::AliasRoutingConfiguration;
use serde_json::json;
use shiftguard_common::codedeploy::{self, AliasDeployment};
use shiftguard_common::{error_text, Deadline};
use tracing::{info, warn};

use crate::config::{is_version_number, LambdaAliasTarget};
use crate::plan::{plan_alias, AliasFacts, FirstRead, InFlight, Plan, PointerRead, Step};
use crate::report::{Action, Outcome, TargetReport};
use crate::truth::{record_key, unqualified_function_arn, Intent, TagFacts, Tagged};
use crate::Clients;

/// How many times a write that lost a `RevisionId` race is re-read and retried.
const REVISION_CONFLICT_ATTEMPTS: usize = 5;
/// How many rounds of read → decide → act, when the world keeps changing under the plan.
const DECISION_ROUNDS: usize = 5;
/// Time kept for a direct restore while CodeDeploy calls are slow (at most half of what is left).
const RESTORE_RESERVE: Duration = Duration::from_millis(1500);
/// How often to look whether CodeDeploy's rollback has restored the alias.
const CODEDEPLOY_POLL: Duration = Duration::from_millis(200);
/// One poll read may take at most this long (the SDK's own operation timeout is 20 s).
const POLL_READ_TIMEOUT: Duration = Duration::from_secs(2);
/// Kept after waiting for CodeDeploy, for rollback's own backup write.
const BACKUP_RESERVE: Duration = Duration::from_millis(1500);
/// First pause before retrying a write Lambda refused with `ResourceConflictException` (a function
/// update in progress); doubles each time, within the deadline.
const CONFLICT_BACKOFF: Duration = Duration::from_millis(250);
const CONFLICT_ATTEMPTS: u32 = 8;

#[derive(Debug, thiserror::Error)]
pub enum AliasError {
    #[error("{operation} failed: {message}")]
    Aws {
        operation: &'static str,
        message: String,
    },
    #[error("refused: {0}")]
    Refused(String),
    #[error("the alias kept changing under us: {0} writes lost the RevisionId race")]
    Contended(usize),
    #[error("verification failed: after the write the alias is {0}")]
    NotVerified(String),
    #[error("{0}")]
    NotRestored(String),
}

fn aws<E: std::error::Error>(operation: &'static str) -> impl FnOnce(E) -> AliasError {
    move |e| AliasError::Aws {
        operation,
        message: error_text(&e),
    }
}

pub use crate::traffic::AliasState;

mod read;
mod write;
pub use read::read_alias;
use read::{read_inputs, restore_reserve};
use write::{await_alias, verify, write_alias, write_verified, Written};

/// What carrying out one alias's plan needs besides clients and the target.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub dry_run: bool,
    pub codedeploy_wait: Duration,
    /// When this target's work must be done (the invocation's deadline less the summary's share).
    pub deadline: Deadline,
    /// When the alarm(s) asking for this target changed state (ms since the epoch).
    pub alarm_time_ms: Option<i64>,
}

/// Rolls one alias back. Never returns an error: failures are in the report. `intent`: the
/// restore record to leave on the function before the restoring write (rollback's own runs;
/// `shift`'s aborts leave none).
pub async fn roll_back(
    clients: &Clients,
    target: &LambdaAliasTarget,
    run_: Run,
    intent: Option<&Intent>,
    report: &mut TargetReport,
) {
    if let Err(e) = run(clients, target, run_, intent, report).await {
        report.outcome = Outcome::Failed;
        report.error = Some(e.to_string());
    }
}

/// What carrying out a plan ended in.
enum Carried {
    Done,
    /// The world changed under the plan (a lost `RevisionId` race, a deployment that completed
    /// before we could stop it): read everything again and decide again.
    Again(String),
}

/// Rounds of read → decide → act, until an act finishes without the world having changed under
/// it. A lost race re-reads the deployments and the pointer too, not only the alias: whoever wrote
/// the alias may be CodeDeploy starting a deployment the alarm is not about.
async fn run(
    clients: &Clients,
    target: &LambdaAliasTarget,
    run_: Run,
    intent: Option<&Intent>,
    report: &mut TargetReport,
) -> Result<(), AliasError> {
    let mut earlier: Vec<String> = Vec::new();
    // What the first read decided: knowledge a lost race must not erase.
    let mut remembered: Option<FirstRead> = None;
    for round in 1..=DECISION_ROUNDS {
        // The intent record is left once, in parallel with the first read.
        let round_intent = if round == 1 { intent } else { None };
        let inputs = read_inputs(
            clients,
            target,
            run_.deadline,
            round_intent,
            remembered.as_ref(),
        )
        .await?;
        if round == 1 {
            report.before = Some(inputs.alias.summary());
        }
        let plan = inputs.decide(target, run_.alarm_time_ms, remembered.as_ref());
        if remembered.is_none() && !matches!(plan.step, Step::AlreadyStable | Step::Refuse) {
            remembered = plan
                .stable
                .as_ref()
                .map(|s| FirstRead::of(&inputs.alias, s));
        }
        let mut notes = earlier.clone();
        notes.extend(inputs.notes.iter().cloned());
        record(report, &plan, notes);
        if let Some(why) = &inputs.retry {
            report.add_incomplete(why.clone());
        }
        info!(target = %report.target, round, step = ?plan.step, stable = ?plan.stable, reason = %plan.reason, "decided");
        let tagged = inputs.tagged.clone();
        match carry_out(clients, target, run_, inputs.alias, plan, report).await? {
            Carried::Done => {
                // The record, now with the production restored (after the restore: off the
                // critical path).
                if let (Some(i), Some(t), Some(stable)) = (intent, tagged, report.stable.clone()) {
                    if matches!(
                        report.outcome,
                        Outcome::Restored | Outcome::RestoredByCodeDeploy | Outcome::AlreadyStable
                    ) {
                        let rec = i.record(Some(stable.version));
                        if let Err(e) = t
                            .tag(clients, &record_key(Some(&target.alias)), &rec.encode())
                            .await
                        {
                            report
                                .notes
                                .push(format!("the restore record could not be completed: {e}"));
                        }
                    }
                }
                return Ok(());
            }
            Carried::Again(why) => {
                info!(target = %report.target, round, why = %why, "reading everything again and deciding again");
                earlier.push(format!("round {round}: {why}; decided again"));
            }
        }
    }
    Err(AliasError::Contended(DECISION_ROUNDS))
}

async fn carry_out(
    clients: &Clients,
    target: &LambdaAliasTarget,
    run_: Run,
    alias: AliasState,
    plan: Plan,
    report: &mut TargetReport,
) -> Result<Carried, AliasError> {
    match plan.step.clone() {
        Step::AlreadyStable => {
            report.outcome = Outcome::AlreadyStable;
            report.after = Some(alias.summary());
            Ok(Carried::Done)
        }
        Step::LeaveAlone { deployment_id } => {
            report.outcome = Outcome::LeftAlone;
            report.deployment_id = Some(deployment_id);
            report.after = Some(alias.summary());
            Ok(Carried::Done)
        }
        Step::LeaveRolloutAlone { rollout } => {
            report.outcome = Outcome::LeftAlone;
            report.detail = Some(format!("rollout {rollout} began after the alarm"));
            report.after = Some(alias.summary());
            Ok(Carried::Done)
        }
        Step::Refuse => Err(AliasError::Refused(plan.reason.clone())),
        Step::Restore { version } => {
            report.action = Action::RestoreAlias;
            if run_.dry_run {
                return planned(report, &version, "point the alias at");
            }
            match write_alias(clients, target, &version, &alias, run_.deadline).await? {
                Written::Done(written) => verify(report, &version, written).map(|_| Carried::Done),
                Written::Conflict => Ok(Carried::Again(
                    "the alias changed between our read and our write (RevisionId)".into(),
                )),
            }
        }
        Step::Stop {
            deployment_id,
            codedeploy_restores,
            backup,
        } => {
            report.action = Action::StopDeployment;
            report.deployment_id = Some(deployment_id.clone());
            if run_.dry_run {
                report.outcome = Outcome::Planned;
                report.after = codedeploy_restores
                    .as_ref()
                    .map(|v| json!({ "version": v, "weights": {} }));
                report.detail = Some(format!(
                    "dry run: would stop CodeDeploy deployment {deployment_id} with auto-rollback (CodeDeploy restores version {})",
                    codedeploy_restores.as_deref().unwrap_or("unknown")
                ));
                return Ok(Carried::Done);
            }
            stop(
                clients,
                target,
                &deployment_id,
                codedeploy_restores.as_deref(),
                backup.as_deref(),
                run_,
                report,
            )
            .await
        }
        Step::AwaitRollback {
            deployment_id,
            restores,
            backup,
        } => {
            report.action = Action::AwaitCodeDeployRollback;
            report.deployment_id = Some(deployment_id.clone());
            if run_.dry_run {
                report.outcome = Outcome::Planned;
                report.after = Some(json!({ "version": restores, "weights": {} }));
                report.detail = Some(format!("dry run: would wait for CodeDeploy's rollback deployment {deployment_id} to restore version {restores}"));
                return Ok(Carried::Done);
            }
            let started = Instant::now();
            let (restored, last) = await_alias(
                clients,
                target,
                &restores,
                run_.codedeploy_wait,
                run_.deadline,
            )
            .await;
            if let Some(after) = restored {
                report.outcome = Outcome::RestoredByCodeDeploy;
                report.after = Some(after.summary());
                report.detail = Some(format!(
                    "CodeDeploy's rollback deployment {deployment_id} put the alias on version {restores} ({} ms after we looked)",
                    started.elapsed().as_millis()
                ));
                return Ok(Carried::Done);
            }
            let Some(backup) = backup else {
                return Err(AliasError::NotRestored(format!(
                    "CodeDeploy's rollback deployment {deployment_id} had not restored version {restores} within {} ms, and rollback may not write it (see notes); the invocation fails so that it is retried",
                    started.elapsed().as_millis()
                )));
            };
            report.detail = Some(format!(
                "CodeDeploy's rollback deployment {deployment_id} had not restored version {restores} within {} ms; rollback wrote that same version",
                started.elapsed().as_millis()
            ));
            report.action = Action::RestoreAlias;
            write_verified(clients, target, &backup, last, run_.deadline, report)
                .await
                .map(|_| Carried::Done)
        }
    }
}

fn record(report: &mut TargetReport, plan: &Plan, mut notes: Vec<String>) {
    report.stable = plan.stable.clone();
    report.decision = Some(plan.reason.clone());
    notes.extend(plan.notes.iter().cloned());
    for note in &notes {
        warn!(target = %report.target, note = %note, "noticed");
    }
    report.notes = notes;
    report.incomplete = plan.retry.clone();
}

fn planned(report: &mut TargetReport, version: &str, what: &str) -> Result<Carried, AliasError> {
    report.outcome = Outcome::Planned;
    report.after = Some(json!({ "version": version, "weights": {} }));
    report.detail = Some(format!(
        "dry run: would {what} version {version} with no additional weights"
    ));
    Ok(Carried::Done)
}

/// Stops an ordinary deployment with auto-rollback so that CodeDeploy restores the alias itself
/// (an alias edited behind CodeDeploy's back fails later deployments), then waits for it. If
/// CodeDeploy has not restored it in time, or the stop failed, rollback writes `backup` itself —
/// the plan never makes that a version being deployed, `$LATEST` or one that does not exist.
async fn stop(
    clients: &Clients,
    target: &LambdaAliasTarget,
    deployment_id: &str,
    codedeploy_restores: Option<&str>,
    backup: Option<&str>,
    run_: Run,
    report: &mut TargetReport,
) -> Result<Carried, AliasError> {
    // Bounded so that a hung or throttled CodeDeploy still leaves time to restore traffic.
    let stopped = run_
        .deadline
        .within(
            restore_reserve(run_.deadline),
            clients
                .codedeploy
                .stop_deployment()
                .deployment_id(deployment_id)
                .auto_rollback_enabled(true)
                .send(),
        )
        .await;
    let started = Instant::now();
    let failure = match stopped {
        Ok(Ok(out)) => {
            info!(target = %report.target, deployment_id, action = "stop-deployment", status = ?out.status, "stopped the CodeDeploy deployment with auto-rollback");
            let (restored, last) = match codedeploy_restores {
                Some(v) => {
                    await_alias(clients, target, v, run_.codedeploy_wait, run_.deadline).await
                }
                None => (None, None),
            };
            if let Some(after) = restored {
                report.outcome = Outcome::RestoredByCodeDeploy;
                report.after = Some(after.summary());
                report.detail = Some(format!(
                    "stopped deployment {deployment_id}; CodeDeploy rolled the alias back to version {} after {} ms",
                    codedeploy_restores.unwrap_or_default(),
                    started.elapsed().as_millis()
                ));
                return Ok(Carried::Done);
            }
            let why = format!(
                "stopped deployment {deployment_id}, but CodeDeploy had not restored the alias after {} ms",
                started.elapsed().as_millis()
            );
            return match backup {
                Some(v) => {
                    report.detail = Some(format!(
                        "{why}; rollback wrote the version CodeDeploy restores ({v}) itself"
                    ));
                    report.action = Action::RestoreAlias;
                    write_verified(clients, target, v, last, run_.deadline, report)
                        .await
                        .map(|_| Carried::Done)
                }
                None => Err(AliasError::NotRestored(format!(
                    "{why}, and rollback may not write a version itself (see notes)"
                ))),
            };
        }
        Ok(Err(e))
            if e.as_service_error()
                .is_some_and(|s| s.is_deployment_already_completed_exception()) =>
        {
            // It finished, or CodeDeploy stopped it (its own alarm, or a second delivery of this
            // alarm stopping it first) and may be rolling back right now: never write on that
            // assumption, look again.
            return Ok(Carried::Again(format!(
                "deployment {deployment_id} had already completed when we tried to stop it"
            )));
        }
        Ok(Err(e)) => format!("StopDeployment failed: {}", error_text(&e)),
        Err(out_of_time) => format!("StopDeployment did not answer in time ({out_of_time})"),
    };
    // Traffic first: CodeDeploy is not rolling back, so put the alias back ourselves, then fail the
    // invocation so that Lambda retries the stop — the deployment would otherwise go on shifting.
    warn!(target = %report.target, deployment_id, error = %failure, "restoring the alias directly; the invocation will fail so the stop is retried");
    report.add_incomplete(format!("{failure} (deployment {deployment_id})"));
    match backup {
        Some(v) => {
            report.detail = Some(format!("{failure}; rollback restored version {v} directly"));
            report.action = Action::RestoreAlias;
            write_verified(clients, target, v, None, run_.deadline, report)
                .await
                .map(|_| Carried::Done)
        }
        None => Err(AliasError::NotRestored(format!(
            "{failure}, and no version may be written directly (see notes)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_on_ignores_zero_weights() {
        let mut a = AliasState {
            version: "3".into(),
            weights: std::collections::BTreeMap::new(),
            revision_id: None,
            arn: None,
        };
        assert!(a.all_on("3"));
        a.weights.insert("4".into(), 0.0);
        assert!(a.all_on("3"));
        a.weights.insert("4".into(), 0.1);
        assert!(!a.all_on("3"));
        assert!(!a.all_on("4"));
    }
}

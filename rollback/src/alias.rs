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

// From the SDK (here, beside the calls): the state itself is pure (crate::traffic).
impl AliasState {
    /// From what GetAlias and UpdateAlias both return.
    fn from_api(
        version: Option<String>,
        routing: Option<AliasRoutingConfiguration>,
        revision_id: Option<String>,
    ) -> Self {
        AliasState {
            version: version.unwrap_or_default(),
            weights: routing
                .and_then(|r| r.additional_version_weights)
                .map(|w| w.into_iter().collect())
                .unwrap_or_default(),
            revision_id,
            arn: None,
        }
    }
}

pub async fn read_alias(
    clients: &Clients,
    function: &str,
    alias: &str,
) -> Result<AliasState, AliasError> {
    let out = clients
        .lambda
        .get_alias()
        .function_name(function)
        .name(alias)
        .send()
        .await
        .map_err(aws("GetAlias"))?;
    let mut state = AliasState::from_api(out.function_version, out.routing_config, out.revision_id);
    state.arn = out.alias_arn;
    Ok(state)
}

async fn read_pointer(clients: &Clients, function: &str, pointer: Option<&str>) -> PointerRead {
    let Some(pointer) = pointer else {
        return PointerRead::NotConfigured;
    };
    match clients
        .lambda
        .get_alias()
        .function_name(function)
        .name(pointer)
        .send()
        .await
    {
        Ok(out) => PointerRead::Found(out.function_version.unwrap_or_default()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            PointerRead::Missing
        }
        Err(e) => PointerRead::Unreadable(format!("GetAlias failed: {}", error_text(&e))),
    }
}

/// Whether a published version exists: `Ok(false)` when Lambda says it does not, `Err` when it
/// could not tell.
async fn version_exists(clients: &Clients, function: &str, version: &str) -> Result<bool, String> {
    match clients
        .lambda
        .get_function_configuration()
        .function_name(function)
        .qualifier(version)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(format!(
            "GetFunctionConfiguration failed: {}",
            error_text(&e)
        )),
    }
}

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

fn in_flight(found: &AliasDeployment) -> InFlight {
    InFlight {
        id: found.deployment.id.clone(),
        is_rollback: found.deployment.is_rollback(),
        create_time_ms: found.deployment.create_time_ms,
        current_version: found.target.current_version.clone(),
        target_version: found.target.target_version.clone(),
    }
}

/// What one round read: the inputs of [`plan_alias`].
struct Inputs {
    alias: AliasState,
    pointer: PointerRead,
    deployments: Result<Vec<InFlight>, String>,
    existing: BTreeSet<String>,
    notes: Vec<String>,
    /// The rollout marker and restore record on the function.
    tags: TagFacts,
    /// Where the tags live (for the final record).
    tagged: Option<Tagged>,
    /// Set when the tags could not be read or the record not written: retried.
    retry: Option<String>,
}

impl Inputs {
    fn decide(
        &self,
        target: &LambdaAliasTarget,
        alarm_time_ms: Option<i64>,
        remembered: Option<&FirstRead>,
    ) -> Plan {
        plan_alias(&AliasFacts {
            alias: &self.alias,
            configured_stable: target.stable_version.as_deref(),
            pointer_name: target.stable_alias.as_deref(),
            pointer: &self.pointer,
            deployments: self.deployments.as_deref().map_err(String::as_str),
            alarm_time_ms,
            existing: &self.existing,
            rollout: self.tags.rollout(),
            remembered,
        })
    }
}

/// The function's ShiftGuard tags, and (round 1 of rollback's own runs) the intent record written
/// beside them.
struct TagsRead {
    facts: TagFacts,
    problems: Vec<String>,
}

async fn read_tags_and_record(
    clients: &Clients,
    tagged: &Tagged,
    alias: &str,
    intent: Option<&Intent>,
) -> TagsRead {
    let record = async {
        match intent {
            Some(i) => Some(
                tagged
                    .tag(clients, &record_key(Some(alias)), &i.record(None).encode())
                    .await,
            ),
            None => None,
        }
    };
    let (tags, recorded) = tokio::join!(tagged.read(clients), record);
    let mut problems = Vec::new();
    let facts = match tags {
        Ok(t) => TagFacts::from_tags(&t, Some(alias)),
        Err(e) => {
            problems.push(format!(
                "the rollout marker could not be read ({e}): decided without it"
            ));
            TagFacts::default()
        }
    };
    if let Some(Err(e)) = recorded {
        problems.push(format!(
            "the restore record could not be written ({e}): a rollout may not see this restore"
        ));
    }
    TagsRead { facts, problems }
}

/// Time kept for a direct restore when a CodeDeploy call is slow (at most half of what is left).
fn restore_reserve(deadline: Deadline) -> Duration {
    deadline
        .left(Duration::ZERO)
        .map_or(RESTORE_RESERVE, |left| RESTORE_RESERVE.min(left / 2))
}

/// Reads everything the decision needs, at once: the alias, the pointer, the in-flight CodeDeploy
/// deployments (bounded so that a slow or throttled CodeDeploy leaves time to restore traffic),
/// and whether the versions the plan might write exist.
async fn read_inputs(
    clients: &Clients,
    target: &LambdaAliasTarget,
    deadline: Deadline,
    intent: Option<&Intent>,
    remembered: Option<&FirstRead>,
) -> Result<Inputs, AliasError> {
    // The function's ARN named without a call (from this function's own ARN), so that the tags are
    // read — and the intent record written — in parallel with the alias: no extra round trip
    // before the restoring write.
    let named = clients
        .home
        .get()
        .map(|h| h.function_arn(&target.function))
        .or_else(|| {
            target
                .function
                .starts_with("arn:")
                .then(|| unqualified_function_arn(&target.function))
        })
        .map(Tagged::Function);
    let tags_first = async {
        match &named {
            Some(t) => Some(read_tags_and_record(clients, t, &target.alias, intent).await),
            None => None,
        }
    };
    let group = target
        .code_deploy
        .as_ref()
        .map(|g| (g.application.as_str(), g.deployment_group.as_str()));
    let lookup = codedeploy::in_flight_for_alias(
        &clients.codedeploy,
        group,
        &target.function,
        &target.alias,
    );
    let (alias, pointer, deployments, configured_exists, tags_first) = tokio::join!(
        read_alias(clients, &target.function, &target.alias),
        read_pointer(clients, &target.function, target.stable_alias.as_deref()),
        deadline.within(restore_reserve(deadline), lookup),
        async {
            match &target.stable_version {
                Some(v) => Some(version_exists(clients, &target.function, v).await),
                None => None,
            }
        },
        tags_first,
    );
    let alias = alias?;
    // The ARN Lambda answered wins over the one named: read again (one more round trip) only when
    // the two differ or none could be named.
    let answered = alias
        .arn
        .as_deref()
        .map(unqualified_function_arn)
        .map(Tagged::Function);
    let (tagged, tags) = match (tags_first, named, answered) {
        (Some(read), Some(n), Some(a)) if n == a => (Some(n), read),
        (Some(read), Some(n), None) => (Some(n), read),
        (_, _, Some(a)) => {
            let read = read_tags_and_record(clients, &a, &target.alias, intent).await;
            (Some(a), read)
        }
        (_, _, None) => (
            None,
            TagsRead {
                facts: TagFacts::default(),
                problems: vec!["the function's ARN is not known: its rollout marker was not read and no restore record was left".into()],
            },
        ),
    };
    let deployments: Result<Vec<InFlight>, String> = match deployments {
        Ok(Ok(found)) => Ok(found.iter().map(in_flight).collect()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(out_of_time) => Err(format!(
            "the CodeDeploy lookup did not finish in time ({out_of_time})"
        )),
    };

    let mut existing: BTreeSet<String> = alias.versions().cloned().collect();
    if let PointerRead::Found(v) = &pointer {
        existing.insert(v.clone());
    }
    let mut notes = Vec::new();
    match (&target.stable_version, configured_exists) {
        (Some(v), Some(Ok(true))) => {
            existing.insert(v.clone());
        }
        (Some(v), Some(Err(e))) => notes.push(format!(
            "could not tell whether the configured stable version {v} exists: {e}"
        )),
        _ => {}
    }
    // The versions CodeDeploy, a rollout's marker or the first read would have us write, when
    // the alias does not already name them (one more round trip, only then).
    let rollout = tags.facts.rollout();
    let mut unknown: Vec<String> = deployments
        .iter()
        .flatten()
        .filter_map(|d| {
            if d.is_rollback {
                d.target_version.clone()
            } else {
                d.current_version.clone()
            }
        })
        .chain(rollout.and_then(|m| m.stable.clone()))
        .chain(rollout.and_then(|m| m.prev.clone()))
        .chain(remembered.map(|r| r.stable.version.clone()))
        .filter(|v| is_version_number(v) && !existing.contains(v))
        .collect();
    unknown.sort();
    unknown.dedup();
    let checked = futures::future::join_all(
        unknown
            .iter()
            .map(|v| version_exists(clients, &target.function, v)),
    )
    .await;
    for (v, exists) in unknown.into_iter().zip(checked) {
        match exists {
            Ok(true) => {
                existing.insert(v);
            }
            Ok(false) => {}
            Err(e) => notes.push(format!("could not tell whether version {v} exists: {e}")),
        }
    }
    let retry = (!tags.problems.is_empty()).then(|| tags.problems.join("; "));
    notes.extend(tags.problems);
    Ok(Inputs {
        alias,
        pointer,
        deployments,
        existing,
        notes,
        tags: tags.facts,
        tagged,
        retry,
    })
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

/// Writes `version` (a backup for CodeDeploy's own restore), re-reading after a lost race; done
/// when the alias is all on it, whoever wrote it.
async fn write_verified(
    clients: &Clients,
    target: &LambdaAliasTarget,
    version: &str,
    last: Option<AliasState>,
    deadline: Deadline,
    report: &mut TargetReport,
) -> Result<(), AliasError> {
    let mut alias = match last {
        Some(a) => a,
        None => read_alias(clients, &target.function, &target.alias).await?,
    };
    for _ in 1..=REVISION_CONFLICT_ATTEMPTS {
        if alias.all_on(version) {
            report.outcome = Outcome::Restored;
            report.after = Some(alias.summary());
            return Ok(());
        }
        match write_alias(clients, target, version, &alias, deadline).await? {
            Written::Done(written) => return verify(report, version, written),
            Written::Conflict => {
                alias = read_alias(clients, &target.function, &target.alias).await?;
            }
        }
    }
    Err(AliasError::Contended(REVISION_CONFLICT_ATTEMPTS))
}

fn verify(report: &mut TargetReport, version: &str, written: AliasState) -> Result<(), AliasError> {
    report.after = Some(written.summary());
    if !written.all_on(version) {
        return Err(AliasError::NotVerified(written.summary().to_string()));
    }
    report.outcome = Outcome::Restored;
    Ok(())
}

enum Written {
    Done(AliasState),
    /// `RevisionId` did not match: the alias changed since it was read.
    Conflict,
}

/// One `UpdateAlias` to `version` with no weights; `ResourceConflictException` (a function update
/// in progress) is retried with backoff while the deadline allows, like a throttle.
async fn write_alias(
    clients: &Clients,
    target: &LambdaAliasTarget,
    version: &str,
    alias: &AliasState,
    deadline: Deadline,
) -> Result<Written, AliasError> {
    // Plans never ask for anything else; this is the last line of defence, in release builds too.
    if !is_version_number(version) {
        return Err(AliasError::Refused(format!(
            "{version:?} is not a published version: never written"
        )));
    }
    let mut backoff = CONFLICT_BACKOFF;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut update = clients
            .lambda
            .update_alias()
            .function_name(&target.function)
            .name(&target.alias)
            .function_version(version)
            .routing_config(
                AliasRoutingConfiguration::builder()
                    .set_additional_version_weights(Some(Default::default()))
                    .build(),
            );
        if let Some(rev) = &alias.revision_id {
            update = update.revision_id(rev);
        }
        match update.send().await {
            Ok(out) => {
                return Ok(Written::Done(AliasState::from_api(
                    out.function_version,
                    out.routing_config,
                    out.revision_id,
                )))
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_precondition_failed_exception()) =>
            {
                return Ok(Written::Conflict)
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_conflict_exception())
                    && attempt < CONFLICT_ATTEMPTS
                    && deadline.left(backoff).is_none_or(|l| !l.is_zero()) =>
            {
                warn!(function = %target.function, alias = %target.alias, attempt, error = %error_text(&e), "UpdateAlias: resource conflict (an update is in progress); retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(aws("UpdateAlias")(e)),
        }
    }
}

/// Polls the alias until it is all on `version`, within `wait` and the deadline (less the backup
/// write's reserve). Read errors are retried within that budget. Returns the restored state, or
/// the last state read.
async fn await_alias(
    clients: &Clients,
    target: &LambdaAliasTarget,
    version: &str,
    wait: Duration,
    deadline: Deadline,
) -> (Option<AliasState>, Option<AliasState>) {
    let until = Instant::now() + deadline.cap(wait, BACKUP_RESERVE);
    let mut last = None;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let read = tokio::time::timeout(
            left.clamp(Duration::from_millis(100), POLL_READ_TIMEOUT),
            read_alias(clients, &target.function, &target.alias),
        )
        .await;
        match read {
            Ok(Ok(alias)) if alias.all_on(version) => return (Some(alias), None),
            Ok(Ok(alias)) => last = Some(alias),
            Ok(Err(e)) => {
                warn!(function = %target.function, alias = %target.alias, error = %e, "reading the alias while waiting for CodeDeploy failed; retrying")
            }
            Err(_) => {
                warn!(function = %target.function, alias = %target.alias, "reading the alias while waiting for CodeDeploy timed out; retrying")
            }
        }
        if Instant::now() + CODEDEPLOY_POLL >= until {
            return (None, last);
        }
        tokio::time::sleep(CODEDEPLOY_POLL).await;
    }
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

//! `shift`: progressive rollouts where CodeDeploy cannot go — a VPC Lattice listener's weighted
//! forward, or a Lambda alias on a custom plan (10% → 25% → 50% → 100% with checks between).
//!
//! One invocation is one step. It reads where the rollout stands (the traffic, the marker tag the
//! rollout keeps on its target, the plan's alarms), [`plan::decide`]s, carries the decision out
//! and answers when to come back. A Step Functions state machine (wait → step → choice) drives it;
//! re-running a step is harmless. Aborts restore production through rollback's own code
//! ([`rollback::lattice::roll_back`], [`rollback::alias::roll_back`]).

pub mod plan;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_lambda::types::AliasRoutingConfiguration;
use hooks::config::CheckSet;
use hooks::discovery::{DeploymentTarget, Source};
use hooks::runner::CheckResult;
use hooks::Phase;
use serde::Serialize;
use serde_json::{json, Value};
use shiftguard_common::env::{self, EnvError};
use shiftguard_common::{error_text, Deadline};
use tracing::{error, info, warn};

use plan::{Decision, Facts, Marker, Plan, RestoreRecord, RolloutTarget, Status, Traffic, Why};
use rollback::config::{LambdaAliasTarget, LatticeListenerTarget};
use rollback::lattice::{read_forwards, same_resource, write_groups, Forward};
use rollback::report::TargetReport;
use rollback::truth::{TagFacts, Tagged};

/// The clients `shift` uses: rollback's (to move and restore traffic) and the hooks' (to check).
#[derive(Clone)]
pub struct ShiftClients {
    pub rollback: rollback::Clients,
    pub hooks: hooks::Clients,
    pub http: hooks::HttpClient,
}

impl ShiftClients {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            rollback: rollback::Clients::new(sdk),
            hooks: hooks::Clients::new(sdk),
            http: hooks::HttpClient::default(),
        }
    }
}

/// `shift`'s environment, read once at start-up.
#[derive(Clone, PartialEq)]
pub struct ShiftConfig {
    /// Promotions and aborts are published here, like rollback's summaries.
    pub notify_topic_arn: Option<String>,
    /// Aborts of alias rollouts go through rollback's alias path, which may wait this long for a
    /// CodeDeploy rollback (there is none for a `shift` rollout; kept for the shared code).
    pub codedeploy_wait_ms: u64,
    /// The environment as read at start-up, for the secrets and artifacts a plan's checks name.
    pub environment: BTreeMap<String, String>,
    /// How long a starting rollout waits between its claim and reading it back
    /// (`SHIFT_CLAIM_SETTLE_MS`, default 1000): longer than a tag write takes.
    pub claim_settle: Duration,
}

// The environment holds credentials and the checks' secrets: a debug dump shows names only.
impl std::fmt::Debug for ShiftConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShiftConfig")
            .field("notify_topic_arn", &self.notify_topic_arn)
            .field("codedeploy_wait_ms", &self.codedeploy_wait_ms)
            .field("claim_settle", &self.claim_settle)
            .field("environment", &self.environment.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ShiftConfig {
    pub fn from_env() -> Result<Self, EnvError> {
        let vars: Vec<(String, String)> = std::env::vars().collect();
        Self::from_vars(&vars[..])
    }

    pub fn from_vars(vars: &[(String, String)]) -> Result<Self, EnvError> {
        let as_str: Vec<(&str, &str)> =
            vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let notify = env::non_empty(&as_str[..], rollback::config::NOTIFY_VAR);
        if let Some(arn) = &notify {
            if !arn.starts_with("arn:") || !arn.contains(":sns:") {
                return Err(EnvError::new(
                    rollback::config::NOTIFY_VAR,
                    format!("expected an SNS topic ARN, got {arn:?}"),
                ));
            }
        }
        let claim_settle = match env::non_empty(&as_str[..], CLAIM_SETTLE_VAR) {
            None => Duration::from_millis(1000),
            Some(v) => match v.parse::<u64>() {
                Ok(ms) if (10..=10_000).contains(&ms) => Duration::from_millis(ms),
                _ => {
                    return Err(EnvError::new(
                        CLAIM_SETTLE_VAR,
                        format!("expected milliseconds from 10 to 10000, got {v:?}"),
                    ))
                }
            },
        };
        Ok(ShiftConfig {
            notify_topic_arn: notify,
            codedeploy_wait_ms: 0,
            environment: vars.iter().cloned().collect(),
            claim_settle,
        })
    }
}

/// Why an invocation failed; [`ShiftError::error_type`] is Lambda's `errorType`, which the state
/// machine's Retry/Catch match on.
#[derive(Debug, thiserror::Error)]
pub enum ShiftError {
    #[error("invalid rollout, nothing was moved: {0}")]
    InvalidPlan(String),
    #[error("refused, nothing was moved: {reason}")]
    Refused { reason: String },
    #[error("{message} (nothing is lost: run the step again; summary: {summary})")]
    Aws { message: String, summary: String },
    #[error("the abort could not restore production: {message} (summary: {summary})")]
    RestoreFailed { message: String, summary: String },
    #[error("the summary could not be published to {topic}: {message} (summary: {summary})")]
    Notify {
        topic: String,
        message: String,
        summary: String,
    },
}

impl ShiftError {
    pub fn error_type(&self) -> &'static str {
        match self {
            ShiftError::InvalidPlan(_) => "Shift.InvalidPlan",
            ShiftError::Refused { .. } => "Shift.Refused",
            ShiftError::Aws { .. } => "Shift.AwsError",
            ShiftError::RestoreFailed { .. } => "Shift.RestoreFailed",
            ShiftError::Notify { .. } => "Shift.NotifyFailed",
        }
    }
}

impl From<ShiftError> for lambda_runtime::Diagnostic {
    fn from(e: ShiftError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.error_type().into(),
            error_message: e.to_string(),
        }
    }
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Checks before passed and step 1's weights are written.
    Started,
    /// A bake's checks passed and the next step's weights are written.
    Advanced,
    /// A move a crash interrupted was written again.
    Resumed,
    /// Still baking: nothing written.
    Baking,
    Promoted,
    Aborted,
    /// The rollout had already ended: nothing written.
    Finished,
}

/// The record of one step: returned (the state machine's Choice reads `status` and
/// `waitSeconds`), logged, and published on promotion or abort.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepSummary {
    pub rollout: String,
    pub target: String,
    /// `in-progress`, `promoted` or `aborted`.
    pub status: &'static str,
    pub action: Action,
    pub step: usize,
    pub steps: usize,
    /// The canary's share of traffic after this step, percent.
    pub canary_weight: u8,
    /// When to come back (in progress only): whole seconds for Step Functions, and exact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckResult>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alarms_in_alarm: Vec<String>,
    /// Traffic as read at the start of the step, and as written.
    pub before: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    /// The abort's restore, in rollback's own report form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore: Option<TargetReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotion: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification: Option<String>,
}

/// Kept for the summary and the notification at the end of a step.
const RESERVE: Duration = Duration::from_millis(2000);
/// Kept after the checks for the alarms' second read, the marker writes, the weights and their
/// read-back: a step that runs out of time halfway through the forwards is resumed, but better
/// not to.
const MOVE_RESERVE: Duration = Duration::from_secs(8);
/// The environment variables a plan's checks may read (comma-separated names).
pub const ALLOWED_SECRETS_VAR: &str = "SHIFT_ALLOWED_SECRETS";
pub const CLAIM_SETTLE_VAR: &str = "SHIFT_CLAIM_SETTLE_MS";

/// Handles one `{"shiftguard": "shift", "rollout": {...}}` event.
pub async fn handle_shift(
    clients: &ShiftClients,
    config: &ShiftConfig,
    event: &Value,
    deadline: Deadline,
) -> Result<StepSummary, ShiftError> {
    let mut plan = plan::parse_plan(event).map_err(ShiftError::InvalidPlan)?;
    let redactor = bind_checks(&mut plan, config)?;
    let target = TargetIo::new(clients, &plan);

    let read = target.read(&plan).await?;
    let (alarming, missing) = alarms_in_alarm(clients, &plan.alarms)
        .await
        .map_err(|message| aws_error(message, &plan, &read))?;
    let ours = matches!(&read.marker, Some(Ok(m)) if m.id == plan.id);
    if !missing.is_empty() && !ours {
        return Err(ShiftError::InvalidPlan(format!(
            "rollout.alarms: {} do(es) not exist: a rollout is watched by its alarms",
            missing.join(", ")
        )));
    }
    let mut in_alarm = alarming;
    in_alarm.extend(
        missing
            .iter()
            .map(|m| format!("{m} (deleted: the rollout is no longer watched)")),
    );
    let facts = Facts {
        now_ms: shiftguard_common::emf::now_ms(),
        marker: read.marker.clone(),
        traffic: read.traffic.clone(),
        alarms_in_alarm: in_alarm.clone(),
        restored: read.record.clone(),
    };
    let decision = plan::decide(&plan, &facts);
    info!(rollout = %plan.id, target = %plan.target.id(), decision = ?decision, traffic = ?read.traffic, alarms_in_alarm = ?in_alarm, "rollout step decided");
    let marker = match &read.marker {
        Some(Ok(m)) if m.id == plan.id => Some(m.clone()),
        _ => None,
    };
    let mut summary = StepSummary {
        rollout: plan.id.clone(),
        target: plan.target.id(),
        status: "in-progress",
        action: Action::Baking,
        step: marker.as_ref().map_or(0, |m| m.step),
        steps: plan.steps.len(),
        canary_weight: match read.traffic {
            Traffic::Canary(w) => w,
            _ => 0,
        },
        wait_seconds: None,
        wait_ms: None,
        reason: None,
        checks: Vec::new(),
        alarms_in_alarm: in_alarm,
        before: read.describe.clone(),
        after: None,
        restore: None,
        promotion: None,
        notification: None,
    };
    let stable = marker
        .as_ref()
        .and_then(|m| m.stable.clone())
        .or_else(|| read.stable.clone());
    let ctx = Ctx {
        clients,
        config,
        plan: &plan,
        target: &target,
        read: &read,
        stable,
        redactor: &redactor,
        // The checks end in time for the move, the marker writes and the summary after them.
        checks_deadline: Deadline(deadline.less(RESERVE + MOVE_RESERVE)),
        work: Deadline(deadline.less(RESERVE)),
        start_ms: marker
            .as_ref()
            .and_then(|m| m.start_ms)
            .unwrap_or_else(shiftguard_common::emf::now_ms),
        prev: std::sync::Mutex::new(marker.as_ref().and_then(|m| m.prev.clone())),
        marker: marker.clone(),
        written: std::sync::Mutex::new(None),
    };
    let result = ctx.carry_out(decision, &mut summary).await;
    let result = match result {
        Ok(()) => Ok(()),
        Err(Failure::Aws(message)) => Err(ShiftError::Aws {
            message,
            summary: to_json(&summary),
        }),
        Err(Failure::Refused(reason)) => Err(ShiftError::Refused { reason }),
        Err(Failure::Invalid(reason)) => Err(ShiftError::InvalidPlan(reason)),
        Err(Failure::Restore(message)) => Err(ShiftError::RestoreFailed {
            message,
            summary: to_json(&summary),
        }),
        Err(Failure::WriteFailed(message)) => Err(ShiftError::Aws {
            message,
            summary: to_json(&summary),
        }),
        Err(Failure::Alarmed(why)) => Err(ShiftError::Aws {
            message: format!("an alarm went into ALARM while this step ran: {why}"),
            summary: to_json(&summary),
        }),
        Err(Failure::RolledBack(why)) => Err(ShiftError::Aws {
            message: format!("rolled back while this step ran: {why}"),
            summary: to_json(&summary),
        }),
        Err(Failure::Changed(traffic)) => Err(ShiftError::Aws {
            message: format!(
                "traffic changed while this step ran: {}",
                plan::describe_traffic(&traffic)
            ),
            summary: to_json(&summary),
        }),
    };
    if let Err(e) = &result {
        error!(rollout = %plan.id, target = %summary.target, error_type = e.error_type(), error = %e, outcome = "failed", "rollout step failed");
        shiftguard_common::emf::emit(&[metrics_document(&summary, Some(e.error_type()))]);
        if let (ShiftError::RestoreFailed { .. }, Some(topic)) = (e, &config.notify_topic_arn) {
            // An abort that could not restore production is what a person must hear about first;
            // best effort: the invocation fails (and is retried) either way.
            summary.reason = Some(format!("{e}"));
            if let Err(message) = deadline
                .within(
                    Duration::from_millis(100),
                    publish(clients, topic, &summary),
                )
                .await
                .unwrap_or_else(|late| Err(late.to_string()))
            {
                error!(topic = %topic, error = %message, "could not publish the failed abort either");
            }
        }
        return result.map(|_| summary);
    }
    shiftguard_common::emf::emit(&[metrics_document(&summary, None)]);
    let ended = summary.status != "in-progress";
    let already_notified =
        matches!(&summary.action, Action::Finished) && marker.as_ref().is_some_and(|m| m.notified);
    if let (true, false, Some(topic)) = (ended, already_notified, &config.notify_topic_arn) {
        let published = deadline
            .within(
                Duration::from_millis(200),
                publish(clients, topic, &summary),
            )
            .await
            .unwrap_or_else(|late| Err(format!("did not answer in time ({late})")));
        match published {
            Ok(id) => {
                summary.notification = Some(format!("published to {topic} as {id}"));
                // Remembered on the target, so that a re-run publishes nothing twice — and a
                // re-run after a failed publication publishes what was missed.
                let done = ctx
                    .written
                    .lock()
                    .ok()
                    .and_then(|w| w.clone())
                    .or_else(|| marker.clone());
                let Some(done) = done else {
                    info!(rollout = %plan.id, "rollout step");
                    return Ok(summary);
                };
                let notified = Marker {
                    notified: true,
                    ..done
                };
                if let Err(Failure::Aws(message)) = ctx.write(&notified).await {
                    warn!(rollout = %plan.id, error = %message, "published, but could not record it on the marker: a re-run would publish again");
                }
            }
            Err(message) => {
                error!(topic = %topic, error = %message, outcome = "failed", "could not publish the rollout summary");
                return Err(ShiftError::Notify {
                    topic: topic.clone(),
                    message,
                    summary: to_json(&summary),
                });
            }
        }
    }
    info!(rollout = %plan.id, target = %summary.target, action = ?summary.action, status = summary.status, step = summary.step, canary_weight = summary.canary_weight, summary = %to_json(&summary), "rollout step");
    Ok(summary)
}

/// Binds the plan's checks to the environment: only variables `SHIFT_ALLOWED_SECRETS` lists may
/// be read (the plan comes with the event: without the allow-list, a plan could send the
/// function's own credentials to any URL), never `AWS_*`.
fn bind_checks(
    plan: &mut Plan,
    config: &ShiftConfig,
) -> Result<hooks::redact::Redactor, ShiftError> {
    let allowed: Vec<&str> = config
        .environment
        .get(ALLOWED_SECRETS_VAR)
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let env_pairs: Vec<(&str, &str)> = config
        .environment
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let allowed = AllowedSecrets::parse(&allowed);
    let mut redactors = Vec::new();
    for (field, set) in [
        ("rollout.checks.before", plan.checks_before.as_mut()),
        ("rollout.checks.after", plan.checks_after.as_mut()),
    ] {
        let Some(set) = set else { continue };
        for (check, var) in hooks::config::environment_read_by(set) {
            if var.starts_with("AWS_") || !allowed.names(&var) {
                return Err(ShiftError::InvalidPlan(format!(
                    "{field}: check {check:?} reads environment variable {var}, which {ALLOWED_SECRETS_VAR} does not list (a plan arrives with the event, so only variables the function's owner allows may be read; AWS_* never)"
                )));
            }
        }
        // A secret is sent only to the origin it was allowed for, over https (loopback aside).
        for (check, var, url) in sent_secrets(set) {
            let origin = origin_of(&url).ok_or_else(|| {
                ShiftError::InvalidPlan(format!(
                    "{field}: check {check:?} sends {var} to {url:?}, which is not an absolute http(s) URL"
                ))
            })?;
            if !origin.starts_with("https://") && !is_loopback(&origin) {
                return Err(ShiftError::InvalidPlan(format!(
                    "{field}: check {check:?} would send the secret {var} to {origin} over plain http: secrets go over https only (loopback aside)"
                )));
            }
            if !allowed.sends_to(&var, &origin) {
                return Err(ShiftError::InvalidPlan(format!(
                    "{field}: check {check:?} would send the secret {var} to {origin}, but {ALLOWED_SECRETS_VAR} allows it only to {}: list it as {var}@{origin} if that is intended",
                    allowed.origins_of(&var)
                )));
            }
        }
        redactors.push(
            hooks::config::bind_environment(set, &env_pairs[..], field)
                .map_err(|e| ShiftError::InvalidPlan(e.to_string()))?,
        );
    }
    Ok(hooks::redact::Redactor::merged(&redactors))
}

/// `SHIFT_ALLOWED_SECRETS`: `NAME` (a value a check compares, never sends: an artifact's
/// `fromEnv`) or `NAME@https://host[:port]` (a secret header or signing key, sent to that origin
/// only), comma-separated.
struct AllowedSecrets {
    entries: Vec<(String, Option<String>)>,
}

impl AllowedSecrets {
    fn parse(items: &[&str]) -> Self {
        AllowedSecrets {
            entries: items
                .iter()
                .map(|i| match i.split_once('@') {
                    Some((name, origin)) => (
                        name.trim().to_string(),
                        Some(origin.trim().trim_end_matches('/').to_ascii_lowercase()),
                    ),
                    None => (i.trim().to_string(), None),
                })
                .collect(),
        }
    }
    fn names(&self, var: &str) -> bool {
        self.entries.iter().any(|(n, _)| n == var)
    }
    fn sends_to(&self, var: &str, origin: &str) -> bool {
        self.entries
            .iter()
            .any(|(n, o)| n == var && o.as_deref() == Some(origin))
    }
    fn origins_of(&self, var: &str) -> String {
        let origins: Vec<&str> = self
            .entries
            .iter()
            .filter(|(n, _)| n == var)
            .filter_map(|(_, o)| o.as_deref())
            .collect();
        if origins.is_empty() {
            "no origin".into()
        } else {
            origins.join(", ")
        }
    }
}

/// Every (check, variable, URL) where a check sends a variable's value: secret headers and
/// signing keys of http checks and http bursts.
fn sent_secrets(set: &CheckSet) -> Vec<(String, String, String)> {
    use hooks::config::{BurstCheck, BurstTarget, CheckKind};
    let mut out = Vec::new();
    for check in &set.checks {
        let http = match &check.kind {
            CheckKind::Http(h) => Some(h),
            CheckKind::Burst(BurstCheck {
                target: BurstTarget::Http(h),
                ..
            }) => Some(h),
            _ => None,
        };
        if let Some(h) = http {
            let mut vars: Vec<&String> = h.secret_headers.values().collect();
            if let Some(sig) = &h.signing {
                vars.push(&sig.api_key_env);
                vars.push(&sig.secret_env);
            }
            for v in vars {
                out.push((check.name.clone(), v.clone(), h.url.clone()));
            }
        }
    }
    out
}

/// `scheme://host[:port]`, lower-cased, of an absolute http(s) URL without user information.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some(format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

fn is_loopback(origin: &str) -> bool {
    let host = origin
        .split_once("://")
        .map_or("", |(_, a)| a)
        .trim_start_matches('[');
    host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("::1]")
}

fn aws_error(message: String, plan: &Plan, read: &Read) -> ShiftError {
    ShiftError::Aws {
        message,
        summary: json!({"rollout": plan.id, "target": plan.target.id(), "before": read.describe})
            .to_string(),
    }
}

fn to_json(summary: &StepSummary) -> String {
    serde_json::to_string(summary).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// `RolloutSteps` (Count) by Action, and by Target and Action; the error type when a step failed.
pub fn metrics_document(summary: &StepSummary, error_type: Option<&str>) -> Value {
    let action = match error_type {
        Some(_) => "failed".to_string(),
        None => serde_json::to_value(summary.action)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
    };
    shiftguard_common::emf::document(
        shiftguard_common::emf::now_ms(),
        &[("Target", &summary.target), ("Action", &action)],
        &[&["Action"], &["Target", "Action"]],
        &[
            shiftguard_common::emf::Measure {
                name: "RolloutSteps",
                unit: "Count",
                value: 1.0,
            },
            shiftguard_common::emf::Measure {
                name: "CanaryWeight",
                unit: "Percent",
                value: f64::from(summary.canary_weight),
            },
        ],
        &[
            ("Rollout", json!(summary.rollout)),
            ("Step", json!(summary.step)),
            ("Status", json!(summary.status)),
            ("Reason", json!(summary.reason)),
            ("ErrorType", json!(error_type)),
        ],
    )
}

async fn publish(
    clients: &ShiftClients,
    topic: &str,
    summary: &StepSummary,
) -> Result<String, String> {
    let mut subject = format!(
        "ShiftGuard rollout {}: {} at step {}/{}{}",
        summary.rollout,
        summary.status,
        summary.step,
        summary.steps,
        summary
            .reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    );
    subject.retain(|c| c.is_ascii() && !c.is_ascii_control());
    subject.truncate(100);
    clients
        .rollback
        .sns
        .publish()
        .topic_arn(topic)
        .subject(subject)
        .message(serde_json::to_string_pretty(summary).unwrap_or_default())
        .send()
        .await
        .map(|o| o.message_id.unwrap_or_default())
        .map_err(|e| error_text(&e))
}

/// The plan's alarms in ALARM, and those that do not exist. Metric and composite alarms, every
/// page.
async fn alarms_in_alarm(
    clients: &ShiftClients,
    names: &[String],
) -> Result<(Vec<String>, Vec<String>), String> {
    use aws_sdk_cloudwatch::types::{AlarmType, StateValue};
    if names.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let mut found: BTreeMap<String, bool> = BTreeMap::new();
    for chunk in names.chunks(100) {
        let mut token = None;
        loop {
            let out = clients
                .hooks
                .cloudwatch
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                .alarm_types(AlarmType::MetricAlarm)
                .alarm_types(AlarmType::CompositeAlarm)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| format!("DescribeAlarms failed: {}", error_text(&e)))?;
            for a in out.metric_alarms() {
                if let Some(n) = &a.alarm_name {
                    found.insert(n.clone(), a.state_value == Some(StateValue::Alarm));
                }
            }
            for a in out.composite_alarms() {
                if let Some(n) = &a.alarm_name {
                    found.insert(n.clone(), a.state_value == Some(StateValue::Alarm));
                }
            }
            token = out.next_token.filter(|t| !t.is_empty());
            if token.is_none() {
                break;
            }
        }
    }
    let alarming = names
        .iter()
        .filter(|n| found.get(*n) == Some(&true))
        .cloned()
        .collect();
    let missing = names
        .iter()
        .filter(|n| !found.contains_key(*n))
        .cloned()
        .collect();
    Ok((alarming, missing))
}

// ---- the target ------------------------------------------------------------------------------

/// What was read from the target.
#[derive(Debug, Clone)]
pub struct Read {
    pub marker: Option<Result<Marker, String>>,
    /// The last restore record rollback left on the target.
    pub record: Option<RestoreRecord>,
    pub traffic: Traffic,
    pub describe: Value,
    /// Where the marker tag lives (listener ARN, function ARN) and its key.
    tag_resource: String,
    tag_key: String,
    /// Alias rollouts: the alias's version when nothing is split (the stable version).
    stable: Option<String>,
}

struct TargetIo<'a> {
    clients: &'a ShiftClients,
    target: RolloutTarget,
}

enum Failure {
    Aws(String),
    Refused(String),
    Invalid(String),
    Restore(String),
    /// Traffic is not where this step expected it (read just before a write, or read back).
    Changed(Traffic),
    /// The write call itself failed (nothing says it landed).
    WriteFailed(String),
    /// Rollback restored production since this rollout began (its restore record says so).
    RolledBack(String),
    /// An alarm of the plan is in ALARM (read after a write or a promotion action).
    Alarmed(String),
}

impl<'a> TargetIo<'a> {
    fn new(clients: &'a ShiftClients, plan: &Plan) -> Self {
        TargetIo {
            clients,
            target: plan.target.clone(),
        }
    }

    fn lattice(&self) -> Option<LatticeListenerTarget> {
        match &self.target {
            RolloutTarget::LatticeListener {
                service,
                listener,
                production_target_group,
                ..
            } => Some(LatticeListenerTarget {
                service: service.clone(),
                listener: listener.clone(),
                production_target_group: production_target_group.clone(),
            }),
            _ => None,
        }
    }

    async fn read(&self, plan: &Plan) -> Result<Read, ShiftError> {
        let invalid = ShiftError::InvalidPlan;
        let aws = |m: String| ShiftError::Aws {
            message: m,
            summary: json!({"rollout": plan.id, "target": plan.target.id()}).to_string(),
        };
        match &self.target {
            RolloutTarget::LatticeListener {
                service,
                listener,
                production_target_group,
                canary_target_group,
            } => {
                let lattice = &self.clients.rollback.lattice;
                let got = lattice
                    .get_listener()
                    .service_identifier(service)
                    .listener_identifier(listener)
                    .send()
                    .await;
                let got = match got {
                    Ok(g) => g,
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_resource_not_found_exception()) =>
                    {
                        return Err(invalid(format!("rollout.target.listener: {listener} of service {service} does not exist ({})", error_text(&e))))
                    }
                    Err(e) => return Err(aws(format!("GetListener failed: {}", error_text(&e)))),
                };
                let arn = got.arn.clone().unwrap_or_default();
                let lt = self.lattice().expect("lattice target");
                let forwards = read_forwards(&self.clients.rollback, &lt)
                    .await
                    .map_err(|e| aws(e.to_string()))?;
                let ours = our_forwards(&forwards, production_target_group, canary_target_group);
                if ours.is_empty() {
                    return Err(invalid(format!(
                        "rollout.target: no weighted forward of listener {listener} (default action or rule) names both the production target group {production_target_group} and the canary target group {canary_target_group}; add the canary group to the forward with weight 0"
                    )));
                }
                let traffic = lattice_traffic(&ours, production_target_group, canary_target_group);
                let tags = lattice
                    .list_tags_for_resource()
                    .resource_arn(&arn)
                    .send()
                    .await
                    .map_err(|e| aws(format!("ListTagsForResource failed: {}", error_text(&e))))?;
                let facts = TagFacts::from_tags(&tags.tags.unwrap_or_default(), None);
                Ok(Read {
                    marker: facts.marker,
                    record: facts.record,
                    traffic,
                    describe: rollback::lattice::describe(&forwards),
                    tag_resource: arn,
                    tag_key: rollback::truth::marker_key(None),
                    stable: None,
                })
            }
            RolloutTarget::LambdaAlias {
                function,
                alias,
                new_version,
                stable_version,
                ..
            } => {
                let got = self
                    .clients
                    .rollback
                    .lambda
                    .get_alias()
                    .function_name(function)
                    .name(alias)
                    .send()
                    .await;
                let got = match got {
                    Ok(g) => g,
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_resource_not_found_exception()) =>
                    {
                        return Err(invalid(format!("rollout.target: alias {alias} of function {function} does not exist ({})", error_text(&e))))
                    }
                    Err(e) => return Err(aws(format!("GetAlias failed: {}", error_text(&e)))),
                };
                let version = got.function_version.clone().unwrap_or_default();
                let weights: BTreeMap<String, f64> = got
                    .routing_config
                    .clone()
                    .and_then(|r| r.additional_version_weights)
                    .map(|w| w.into_iter().collect())
                    .unwrap_or_default();
                let alias_arn = got.alias_arn.clone().unwrap_or_default();
                let function_arn = alias_arn
                    .rsplit_once(':')
                    .map(|(f, _)| f.to_string())
                    .unwrap_or_default();
                let tag_key = rollback::truth::marker_key(Some(alias));
                let tags = self
                    .clients
                    .rollback
                    .lambda
                    .list_tags()
                    .resource(&function_arn)
                    .send()
                    .await
                    .map_err(|e| aws(format!("ListTags failed: {}", error_text(&e))))?;
                let facts = TagFacts::from_tags(&tags.tags.unwrap_or_default(), Some(alias));
                let marker = facts.marker;
                let ours_stable = match &marker {
                    Some(Ok(m)) if m.id == plan.id => m.stable.clone(),
                    _ => None,
                };
                let stable = ours_stable
                    .or_else(|| stable_version.clone())
                    .unwrap_or_else(|| version.clone());
                let traffic = alias_traffic(&version, &weights, &stable, new_version);
                Ok(Read {
                    marker,
                    record: facts.record,
                    traffic,
                    describe: json!({"version": version, "weights": weights}),
                    tag_resource: function_arn,
                    tag_key,
                    stable: Some(stable),
                })
            }
        }
    }

    async fn write_marker(&self, read: &Read, marker: &Marker) -> Result<(), Failure> {
        let value = marker.encode();
        let result = match &self.target {
            RolloutTarget::LatticeListener { .. } => self
                .clients
                .rollback
                .lattice
                .tag_resource()
                .resource_arn(&read.tag_resource)
                .tags(&read.tag_key, &value)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| format!("TagResource failed: {}", error_text(&e))),
            RolloutTarget::LambdaAlias { .. } => self
                .clients
                .rollback
                .lambda
                .tag_resource()
                .resource(&read.tag_resource)
                .tags(&read.tag_key, &value)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| format!("TagResource failed: {}", error_text(&e))),
        };
        info!(rollout = %marker.id, step = marker.step, status = ?marker.status, marker = %value, "marker written");
        result.map_err(Failure::Aws)
    }
}

/// The weighted forwards a rollout moves: those that name both its groups.
fn our_forwards<'f>(forwards: &'f [Forward], production: &str, canary: &str) -> Vec<&'f Forward> {
    forwards
        .iter()
        .filter(|f| f.has(production) && f.has(canary))
        .collect()
}

/// The canary's share across the forwards that name both groups, exactly: a share that is not a
/// whole percent, or a third group with traffic, is unexpected; forwards with different whole
/// shares are a split (a move that stopped halfway).
fn lattice_traffic(forwards: &[&Forward], production: &str, canary: &str) -> Traffic {
    let mut shares = Vec::new();
    for f in forwards {
        let (mut p, mut c, mut other) = (0i64, 0i64, Vec::new());
        for (g, w) in &f.groups {
            if same_resource(g, production) {
                p += i64::from(*w);
            } else if same_resource(g, canary) {
                c += i64::from(*w);
            } else if *w > 0 {
                other.push(format!("{g} ({w})"));
            }
        }
        if !other.is_empty() {
            return Traffic::Unexpected(format!(
                "forward {} also sends traffic to {}",
                f.place.name(),
                other.join(", ")
            ));
        }
        if p + c == 0 {
            return Traffic::Unexpected(format!("forward {} sends no traffic", f.place.name()));
        }
        if (c * 100) % (p + c) != 0 {
            return Traffic::Unexpected(format!(
                "forward {} gives the canary {c}/{} of traffic, not a whole percent: not a weight a rollout writes",
                f.place.name(),
                p + c
            ));
        }
        shares.push((c * 100 / (p + c)) as u8);
    }
    let mut distinct = shares.clone();
    distinct.sort_unstable();
    distinct.dedup();
    match distinct.as_slice() {
        [one] => Traffic::Canary(*one),
        _ => Traffic::Split(shares),
    }
}

fn alias_traffic(
    version: &str,
    weights: &BTreeMap<String, f64>,
    stable: &str,
    new: &str,
) -> Traffic {
    let others: Vec<&String> = weights
        .iter()
        .filter(|(v, w)| v.as_str() != new && **w > 0.0)
        .map(|(v, _)| v)
        .collect();
    if !others.is_empty() {
        return Traffic::Unexpected(format!("the alias also routes to version(s) {others:?}"));
    }
    let new_weight = weights.get(new).copied().unwrap_or(0.0);
    let percent = new_weight * 100.0;
    if (percent - percent.round()).abs() > 1e-6 || !(0.0..=100.0).contains(&percent) {
        return Traffic::Unexpected(format!(
            "the alias gives version {new} a weight of {new_weight}, not a whole percent: not a weight a rollout writes"
        ));
    }
    if version == stable {
        Traffic::Canary(percent.round() as u8)
    } else if version == new {
        Traffic::Canary(100)
    } else if new_weight == 0.0 {
        Traffic::Elsewhere(format!(
            "the alias is all on version {version}, not the stable version {stable} the rollout started from"
        ))
    } else {
        Traffic::Unexpected(format!(
            "the alias is on version {version}, neither the stable version {stable} nor the new version {new}"
        ))
    }
}

// ---- carrying a decision out -----------------------------------------------------------------

struct Ctx<'a> {
    clients: &'a ShiftClients,
    config: &'a ShiftConfig,
    plan: &'a Plan,
    target: &'a TargetIo<'a>,
    read: &'a Read,
    stable: Option<String>,
    redactor: &'a hooks::redact::Redactor,
    checks_deadline: Deadline,
    work: Deadline,
    /// When this rollout claimed the target (its marker's `start`; now, for a rollout starting).
    start_ms: i64,
    /// Lattice promotions through an alias: the version it was on before (kept in the marker).
    prev: std::sync::Mutex<Option<String>>,
    /// This rollout's marker as read at the start of the step.
    marker: Option<Marker>,
    /// The last marker this step wrote.
    written: std::sync::Mutex<Option<Marker>>,
}

impl Ctx<'_> {
    fn marker(&self, step: usize, status: Status) -> Marker {
        Marker {
            id: self.plan.id.clone(),
            step,
            weight: self.weight(step),
            at_ms: shiftguard_common::emf::now_ms(),
            status,
            stable: match self.plan.target {
                RolloutTarget::LambdaAlias { .. } => self.stable.clone(),
                _ => None,
            },
            why: None,
            notified: false,
            start_ms: Some(self.start_ms),
            prev: self.prev.lock().ok().and_then(|p| p.clone()),
        }
    }

    /// Where the marker and the record live.
    fn tagged(&self) -> Tagged {
        match self.plan.target {
            RolloutTarget::LatticeListener { .. } => {
                Tagged::Listener(self.read.tag_resource.clone())
            }
            RolloutTarget::LambdaAlias { .. } => Tagged::Function(self.read.tag_resource.clone()),
        }
    }

    fn alias_name(&self) -> Option<&str> {
        match &self.plan.target {
            RolloutTarget::LambdaAlias { alias, .. } => Some(alias.as_str()),
            _ => None,
        }
    }

    /// Reads the target's tags again: a restore record newer than this rollout's start ends it
    /// (`Failure::RolledBack`); so does a marker that is no longer this rollout's (another
    /// claimed the target). Called after each of this rollout's writes and around promotion.
    async fn still_ours(&self) -> Result<(), Failure> {
        let tags = self
            .tagged()
            .read(&self.clients.rollback)
            .await
            .map_err(Failure::Aws)?;
        let facts = TagFacts::from_tags(&tags, self.alias_name());
        let me = self.marker(0, Status::Baking);
        if let Some(r) = facts.record.as_ref().filter(|r| r.ends(&me)) {
            return Err(Failure::RolledBack(format!(
                "rollback restored production (by {}, at {}) after this rollout began",
                r.by, r.at_ms
            )));
        }
        match facts.rollout() {
            Some(m) if m.id == self.plan.id => Ok(()),
            Some(m) => Err(Failure::Refused(format!(
                "rollout {:?} has claimed the target: this rollout ({}) writes nothing more",
                m.id, self.plan.id
            ))),
            None => Err(Failure::Refused(format!(
                "the rollout marker of {} is gone from the target: writing nothing more",
                self.plan.id
            ))),
        }
    }

    fn weight(&self, step: usize) -> u8 {
        if step == 0 {
            0
        } else {
            self.plan.steps[step - 1].weight
        }
    }

    async fn write(&self, marker: &Marker) -> Result<(), Failure> {
        self.target.write_marker(self.read, marker).await?;
        if let Ok(mut w) = self.written.lock() {
            *w = Some(marker.clone());
        }
        Ok(())
    }

    async fn carry_out(&self, decision: Decision, s: &mut StepSummary) -> Result<(), Failure> {
        // Boxed: promotion, its checks and an abort through rollback's restore make a large
        // future, kept off the stack of whatever thread polls it.
        match Box::pin(self.carry_out_once(decision, s)).await {
            // Rollback acted while this step ran: whatever this step wrote does not survive it.
            Err(Failure::RolledBack(why)) => {
                // Production already whole (rollback's restore): nothing to restore again.
                let restore = !matches!(self.read_traffic().await, Ok(Traffic::Canary(0)));
                Box::pin(self.abort(why, Why::Rollback, restore, s)).await
            }
            Err(Failure::Alarmed(why)) => Box::pin(self.abort(why, Why::Alarm, true, s)).await,
            // Traffic moved under the step (a rollback while the checks ran): never written over.
            Err(Failure::Changed(traffic)) => match plan::changed_outside(
                &traffic,
                &format!("while step {} was being written", s.step),
            ) {
                Decision::Abort {
                    reason,
                    why,
                    restore,
                } => self.abort(reason, why, restore, s).await,
                _ => unreachable!("changed_outside always aborts"),
            },
            other => other,
        }
    }

    async fn carry_out_once(&self, decision: Decision, s: &mut StepSummary) -> Result<(), Failure> {
        match decision {
            Decision::Refuse(why) => Err(Failure::Refused(why)),
            Decision::Finished { status, .. } => {
                s.action = Action::Finished;
                s.step = self.marker.as_ref().map_or(0, |m| m.step);
                s.status = if status == Status::Promoted {
                    "promoted"
                } else {
                    "aborted"
                };
                s.reason = Some(format!(
                    "the rollout already ended ({}); nothing was written",
                    s.status
                ));
                Ok(())
            }
            Decision::Wait { step, ms } => {
                s.action = Action::Baking;
                s.step = step;
                set_wait(s, ms);
                Ok(())
            }
            Decision::Abort {
                reason,
                why,
                restore,
            } => self.abort(reason, why, restore, s).await,
            Decision::Promote => Box::pin(self.promote(s)).await,
            Decision::Start => {
                self.check_start().await?;
                // Recorded before the checks: a re-run while they run (or after a crash) is this
                // rollout's, at step 0 — nothing moved.
                self.write(&self.marker(0, Status::Baking)).await?;
                // Claim, then verify: tags have no conditional write, so two executions that both
                // found the target free both write a claim; after a pause longer than a tag write
                // takes, only the last claim is on the target, and the other writes nothing.
                tokio::time::sleep(self.config.claim_settle).await;
                self.still_ours().await?;
                s.step = 0;
                if let Some(set) = &self.plan.checks_before {
                    s.checks = self.run_checks(set, Phase::PreTraffic).await;
                    if let Some(why) = failed(&s.checks) {
                        return self
                            .abort(
                                format!("checks before the first step failed: {why}"),
                                Why::Checks,
                                false,
                                s,
                            )
                            .await;
                    }
                }
                if let Some(why) = self.alarms_now().await? {
                    return self.abort(why, Why::Alarm, false, s).await;
                }
                self.move_to(1, &[0], s).await?;
                s.action = Action::Started;
                Ok(())
            }
            Decision::Move { step } => {
                self.move_to(step, &[self.weight(step - 1), self.weight(step)], s)
                    .await?;
                s.action = Action::Resumed;
                Ok(())
            }
            Decision::Judge { step } => {
                s.step = step;
                if let Some(set) = &self.plan.checks_after {
                    s.checks = self.run_checks(set, Phase::PostTraffic).await;
                    if let Some(why) = failed(&s.checks) {
                        return self
                            .abort(
                                format!(
                                    "checks after step {step} ({}%) failed: {why}",
                                    self.weight(step)
                                ),
                                Why::Checks,
                                true,
                                s,
                            )
                            .await;
                    }
                }
                // The checks took time: the alarms and the restore record are read again before
                // anything moves forward (and the traffic, inside the move).
                self.still_ours().await?;
                if let Some(why) = self.alarms_now().await? {
                    return self.abort(why, Why::Alarm, true, s).await;
                }
                match plan::after_judgement(self.plan, step) {
                    Decision::Move { step } => {
                        self.move_to(step, &[self.weight(step - 1)], s).await?;
                        s.action = Action::Advanced;
                        Ok(())
                    }
                    _ => {
                        self.write(&self.marker(step, Status::Promoting)).await?;
                        Box::pin(self.promote(s)).await
                    }
                }
            }
        }
    }

    /// Before anything moves: the new version / the target groups' targets exist, and Lambda will
    /// accept the weighted alias.
    async fn check_start(&self) -> Result<(), Failure> {
        match &self.plan.target {
            RolloutTarget::LambdaAlias {
                function,
                new_version,
                ..
            } => {
                let stable = self.stable.clone().unwrap_or_default();
                if stable == *new_version {
                    return Err(Failure::Invalid(format!("rollout.target.newVersion: the alias is already on version {new_version}: nothing to roll out")));
                }
                let read = |version: String| async move {
                    match self
                        .clients
                        .rollback
                        .lambda
                        .get_function_configuration()
                        .function_name(function)
                        .qualifier(&version)
                        .send()
                        .await
                    {
                        Ok(c) => Ok(c),
                        Err(e)
                            if e.as_service_error()
                                .is_some_and(|s| s.is_resource_not_found_exception()) =>
                        {
                            Err(Failure::Invalid(format!("rollout.target.newVersion: version {version} of {function} does not exist")))
                        }
                        Err(e) => Err(Failure::Aws(format!("GetFunctionConfiguration failed: {}", error_text(&e)))),
                    }
                };
                let new = read(new_version.clone()).await?;
                let old = read(stable.clone()).await?;
                // Lambda's rules for a weighted alias (Lambda developer guide): both versions
                // with the same execution role and the same dead-letter queue configuration.
                if new.role != old.role {
                    return Err(Failure::Invalid(format!("rollout.target.newVersion: version {new_version} has execution role {:?}, version {stable} {:?}: Lambda routes an alias between versions with the same role only", new.role, old.role)));
                }
                if new.dead_letter_config != old.dead_letter_config {
                    return Err(Failure::Invalid(format!("rollout.target.newVersion: versions {stable} and {new_version} have different dead-letter queue configurations: Lambda routes an alias between versions with the same one only")));
                }
                Ok(())
            }
            RolloutTarget::LatticeListener {
                production_target_group,
                canary_target_group,
                ..
            } => {
                let canary = self.list_targets(canary_target_group).await?;
                for (field, group, empty) in [
                    ("canaryTargetGroup", canary_target_group, canary.is_empty()),
                    (
                        "productionTargetGroup",
                        production_target_group,
                        self.list_targets(production_target_group).await?.is_empty(),
                    ),
                ] {
                    if empty {
                        return Err(Failure::Invalid(format!(
                            "rollout.target.{field}: {group} has no registered targets"
                        )));
                    }
                }
                // A Lambda target group holds one target: promotion can only keep production
                // whole by moving an alias production's group serves (checked before anything
                // moves, not at promotion).
                let lambda_group = self
                    .clients
                    .rollback
                    .lattice
                    .get_target_group()
                    .target_group_identifier(production_target_group)
                    .send()
                    .await
                    .map_err(|e| {
                        Failure::Aws(format!("GetTargetGroup failed: {}", error_text(&e)))
                    })?
                    .r#type
                    == Some(aws_sdk_vpclattice::types::TargetGroupType::Lambda);
                if lambda_group {
                    let production = self.list_targets(production_target_group).await?;
                    if let Err(why) = lambda_promotion(&production, &canary) {
                        return Err(Failure::Invalid(format!(
                            "rollout.target.productionTargetGroup: {why}"
                        )));
                    }
                }
                // The checks must look at what the canary group serves: a version of the checked
                // function registered there must be checkFunction's version.
                if let Some(f) = &self.plan.check_function {
                    let name = shiftguard_common::codedeploy::function_name(&f.function);
                    for (id, _) in &canary {
                        let parts: Vec<&str> = id.split(':').collect();
                        if let ["arn", _, "lambda", _, _, "function", fname, qualifier] =
                            parts.as_slice()
                        {
                            if *fname == name
                                && rollback::config::is_version_number(qualifier)
                                && *qualifier != f.version
                            {
                                return Err(Failure::Invalid(format!("rollout.checkFunction.version: {} but the canary target group serves {id}: the checks would judge another version than the one getting traffic", f.version)));
                            }
                        }
                    }
                    match self
                        .clients
                        .rollback
                        .lambda
                        .get_function_configuration()
                        .function_name(&f.function)
                        .qualifier(&f.version)
                        .send()
                        .await
                    {
                        Ok(_) => {}
                        Err(e)
                            if e.as_service_error()
                                .is_some_and(|s| s.is_resource_not_found_exception()) =>
                        {
                            return Err(Failure::Invalid(format!(
                                "rollout.checkFunction: version {} of {} does not exist",
                                f.version, f.function
                            )));
                        }
                        Err(e) => {
                            return Err(Failure::Aws(format!(
                                "GetFunctionConfiguration failed: {}",
                                error_text(&e)
                            )))
                        }
                    }
                }
                Ok(())
            }
        }
    }

    /// After each write and promotion action: the restore record, the marker and the alarms.
    async fn watch(&self) -> Result<(), Failure> {
        self.still_ours().await?;
        match self.alarms_now().await? {
            Some(why) => Err(Failure::Alarmed(why)),
            None => Ok(()),
        }
    }

    async fn alarms_now(&self) -> Result<Option<String>, Failure> {
        let (alarming, missing) = alarms_in_alarm(self.clients, &self.plan.alarms)
            .await
            .map_err(Failure::Aws)?;
        let mut all = alarming;
        all.extend(missing.into_iter().map(|m| format!("{m} (deleted)")));
        Ok((!all.is_empty()).then(|| format!("alarm(s) in ALARM: {}", all.join(", "))))
    }

    async fn run_checks(&self, set: &CheckSet, phase: Phase) -> Vec<CheckResult> {
        let target = self.check_target();
        let executor = hooks::aws_executor_factory(
            self.clients.hooks.clone(),
            self.clients.http.clone(),
            phase,
        )(target);
        match self
            .checks_deadline
            .within(Duration::ZERO, hooks::runner::run_checks(executor, set, self.redactor))
            .await
        {
            Ok(results) => results,
            Err(late) => vec![CheckResult {
                name: "deadline".into(),
                kind: "watchdog",
                required: true,
                verdict: hooks::checks::Verdict::Failed,
                passed: false,
                attempts: 0,
                latency_ms: 0,
                reason: Some(format!(
                    "the checks did not finish in time to move traffic before the invocation's deadline ({late}); give the function a longer timeout or the checks shorter ones"
                )),
                details: Value::Null,
            }],
        }
    }

    fn check_target(&self) -> DeploymentTarget {
        let (function, alias, current, target) =
            match (&self.plan.target, &self.plan.check_function) {
                (
                    RolloutTarget::LambdaAlias {
                        function,
                        alias,
                        new_version,
                        ..
                    },
                    _,
                ) => (
                    function.clone(),
                    Some(alias.clone()),
                    self.stable.clone(),
                    new_version.clone(),
                ),
                (_, Some(f)) => (
                    f.function.clone(),
                    f.alias.clone(),
                    f.current_version.clone(),
                    f.version.clone(),
                ),
                (_, None) => (String::new(), None, None, String::new()),
            };
        DeploymentTarget {
            function,
            alias,
            current_version: current,
            target_version: target,
            source: Source::Environment,
            is_rollback: Some(false),
            deployment_description: None,
            deployment_creator: None,
        }
    }

    /// Marker `moving` → the step's weights (only from one of `from`) → read back → marker
    /// `baking`. A write that failed with traffic untouched puts step 1's marker back to step 0,
    /// so that the retry can tell it from a rollback's restore.
    async fn move_to(&self, step: usize, from: &[u8], s: &mut StepSummary) -> Result<(), Failure> {
        let weight = self.weight(step);
        self.write(&self.marker(step, Status::Moving)).await?;
        let mut allowed = from.to_vec();
        allowed.push(weight);
        let after = match self.write_weights(weight, &allowed).await {
            Ok(after) => after,
            // Only a write call that failed may send step 1 back to step 0 (nothing says it
            // landed, and production has everything): a read-back that disagrees is someone
            // else's write, and aborts.
            Err(Failure::WriteFailed(message)) => {
                if step == 1 {
                    if let Ok(Traffic::Canary(0)) = self.read_traffic().await {
                        self.write(&self.marker(0, Status::Baking)).await?;
                    }
                }
                return Err(Failure::Aws(message));
            }
            Err(e) => return Err(e),
        };
        // The write may have landed after a rollback's restore (a slow or retried call): the
        // restore record says so, and the alarms are read again.
        self.watch().await?;
        self.write(&self.marker(step, Status::Baking)).await?;
        s.step = step;
        s.canary_weight = weight;
        s.after = Some(after);
        set_wait(s, self.plan.steps[step - 1].bake.as_millis() as u64);
        info!(rollout = %self.plan.id, target = %s.target, step, canary_weight = weight, action = "shift", outcome = "written", "traffic moved");
        Ok(())
    }

    /// Where traffic is now.
    async fn read_traffic(&self) -> Result<Traffic, Failure> {
        match &self.plan.target {
            RolloutTarget::LatticeListener {
                production_target_group,
                canary_target_group,
                ..
            } => {
                let lt = self.target.lattice().expect("lattice target");
                let forwards = read_forwards(&self.clients.rollback, &lt)
                    .await
                    .map_err(|e| Failure::Aws(e.to_string()))?;
                let ours = our_forwards(&forwards, production_target_group, canary_target_group);
                Ok(lattice_traffic(
                    &ours,
                    production_target_group,
                    canary_target_group,
                ))
            }
            RolloutTarget::LambdaAlias {
                function,
                alias,
                new_version,
                ..
            } => {
                let back = rollback::alias::read_alias(&self.clients.rollback, function, alias)
                    .await
                    .map_err(|e| Failure::Aws(e.to_string()))?;
                Ok(alias_traffic(
                    &back.version,
                    &back.weights,
                    &self.stable.clone().unwrap_or_default(),
                    new_version,
                ))
            }
        }
    }

    /// Writes the canary's share — only if traffic is still on one of `allowed` (read just
    /// before: a rollback that restored production while the checks ran is never written over)
    /// — and verifies it by reading back. Returns what was read back.
    async fn write_weights(&self, weight: u8, allowed: &[u8]) -> Result<Value, Failure> {
        match &self.plan.target {
            RolloutTarget::LatticeListener {
                production_target_group,
                canary_target_group,
                ..
            } => {
                let lt = self.target.lattice().expect("lattice target");
                let forwards = read_forwards(&self.clients.rollback, &lt)
                    .await
                    .map_err(|e| Failure::Aws(e.to_string()))?;
                let ours = our_forwards(&forwards, production_target_group, canary_target_group);
                let now = lattice_traffic(&ours, production_target_group, canary_target_group);
                if !now.within(allowed) {
                    return Err(Failure::Changed(now));
                }
                for f in ours {
                    self.write_forward(f, weight).await?;
                }
                // Read back: weights that are not what was written are another writer's.
                let back = read_forwards(&self.clients.rollback, &lt)
                    .await
                    .map_err(|e| Failure::Aws(e.to_string()))?;
                let ours = our_forwards(&back, production_target_group, canary_target_group);
                match lattice_traffic(&ours, production_target_group, canary_target_group) {
                    Traffic::Canary(w) if w == weight => Ok(rollback::lattice::describe(&back)),
                    other => Err(Failure::Changed(other)),
                }
            }
            RolloutTarget::LambdaAlias {
                function,
                alias,
                new_version,
                ..
            } => {
                let stable = self.stable.clone().unwrap_or_default();
                let lambda = &self.clients.rollback.lambda;
                let current = rollback::alias::read_alias(&self.clients.rollback, function, alias)
                    .await
                    .map_err(|e| Failure::Aws(e.to_string()))?;
                let now = alias_traffic(&current.version, &current.weights, &stable, new_version);
                if !now.within(allowed) {
                    return Err(Failure::Changed(now));
                }
                // The RevisionId of that read: a write in between makes Lambda refuse this one.
                let mut update = lambda
                    .update_alias()
                    .function_name(function)
                    .name(alias)
                    .set_revision_id(current.revision_id.clone());
                update = if weight >= 100 {
                    update
                        .function_version(new_version)
                        .routing_config(AliasRoutingConfiguration::builder().build())
                } else {
                    update.function_version(&stable).routing_config(
                        AliasRoutingConfiguration::builder()
                            .additional_version_weights(new_version, f64::from(weight) / 100.0)
                            .build(),
                    )
                };
                match update.send().await {
                    Ok(_) => {}
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|s| s.is_precondition_failed_exception()) =>
                    {
                        let now = self.read_traffic().await?;
                        return Err(Failure::Changed(now));
                    }
                    Err(e) => {
                        return Err(Failure::WriteFailed(format!(
                            "UpdateAlias failed: {}",
                            error_text(&e)
                        )))
                    }
                }
                let back = rollback::alias::read_alias(&self.clients.rollback, function, alias)
                    .await
                    .map_err(|e| Failure::Aws(e.to_string()))?;
                match alias_traffic(&back.version, &back.weights, &stable, new_version) {
                    Traffic::Canary(w) if w == weight => {
                        Ok(json!({"version": back.version, "weights": back.weights}))
                    }
                    other => Err(Failure::Changed(other)),
                }
            }
        }
    }

    /// One forward that names both groups: production (100 − w), canary w, others as they are.
    async fn write_forward(&self, f: &Forward, weight: u8) -> Result<(), Failure> {
        let RolloutTarget::LatticeListener {
            production_target_group,
            canary_target_group,
            ..
        } = &self.plan.target
        else {
            return Ok(());
        };
        let groups: Vec<(String, i32)> = f
            .groups
            .iter()
            .map(|(g, w)| {
                let w = if same_resource(g, canary_target_group) {
                    i32::from(weight)
                } else if same_resource(g, production_target_group) {
                    100 - i32::from(weight)
                } else {
                    *w
                };
                (g.clone(), w)
            })
            .collect();
        let lt = self.target.lattice().expect("lattice target");
        write_groups(&self.clients.rollback, &lt, &f.place, &groups)
            .await
            .map_err(|e| Failure::WriteFailed(e.to_string()))
    }

    async fn list_targets(&self, group: &str) -> Result<Vec<(String, Option<i32>)>, Failure> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .clients
                .rollback
                .lattice
                .list_targets()
                .target_group_identifier(group)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| {
                    Failure::Aws(format!("ListTargets({group}) failed: {}", error_text(&e)))
                })?;
            // A deregistered target stays listed as DRAINING for the group's deregistration delay
            // (5 minutes by default): it is on its way out, not one of the group's targets.
            out.extend(
                page.items
                    .into_iter()
                    .filter(|t| t.status != Some(aws_sdk_vpclattice::types::TargetStatus::Draining))
                    .filter_map(|t| t.id.map(|id| (id, t.port))),
            );
            token = page.next_token.filter(|t| !t.is_empty());
            if token.is_none() {
                out.sort();
                return Ok(out);
            }
        }
    }

    /// Lattice: production takes what the canary serves — a Lambda target group (one target) by
    /// moving the production group's alias to the canary's version (the group is never empty),
    /// other groups by registering the canary's targets before deregistering the old ones — then
    /// production gets all traffic back. Alias: the alias is already all on the new version (the
    /// last step); the stable pointer moves. Traffic, alarms and the restore record are read
    /// first and after every promotion action: promotion goes on only while the canary has it
    /// all and nothing restored production since the rollout began; otherwise it is undone
    /// (the production alias or pointer back on `prev`) and the rollout aborts.
    async fn promote(&self, s: &mut StepSummary) -> Result<(), Failure> {
        s.step = self.plan.steps.len();
        let traffic = self.read_traffic().await?;
        self.watch().await?;
        if let Some(why) = self.alarms_now().await? {
            return self.abort(why, Why::Alarm, true, s).await;
        }
        match &self.plan.target {
            RolloutTarget::LatticeListener {
                production_target_group,
                canary_target_group,
                ..
            } => {
                let canary = self.list_targets(canary_target_group).await?;
                let production = self.list_targets(production_target_group).await?;
                let lattice = &self.clients.rollback.lattice;
                let lambda_group = lattice
                    .get_target_group()
                    .target_group_identifier(production_target_group)
                    .send()
                    .await
                    .map_err(|e| {
                        Failure::Aws(format!("GetTargetGroup failed: {}", error_text(&e)))
                    })?
                    .r#type
                    == Some(aws_sdk_vpclattice::types::TargetGroupType::Lambda);
                if lambda_group {
                    let (function, alias, version) = match lambda_promotion(&production, &canary) {
                        Ok(p) => p,
                        Err(why) => return self.abort(why, Why::Promotion, true, s).await,
                    };
                    let current =
                        rollback::alias::read_alias(&self.clients.rollback, &function, &alias)
                            .await
                            .map_err(|e| Failure::Aws(e.to_string()))?;
                    let done = traffic == Traffic::Canary(0) && current.all_on(&version);
                    if traffic != Traffic::Canary(100) && !done {
                        return self.abort_changed(&traffic, s).await;
                    }
                    if !current.all_on(&version) {
                        let prev = self
                            .prev
                            .lock()
                            .ok()
                            .and_then(|p| p.clone())
                            .unwrap_or_else(|| current.version.clone());
                        if let Ok(mut p) = self.prev.lock() {
                            *p = Some(prev.clone());
                        }
                        // `prev` is on the target before the alias moves: a crash, an alarm or a
                        // rollback from here on puts the alias back.
                        self.write(&self.marker(s.step, Status::Promoting)).await?;
                        self.move_alias(&function, &alias, &version, &current)
                            .await?;
                        self.watch().await?;
                    }
                    let after = self.write_weights(0, &[100, 0]).await?;
                    self.watch().await?;
                    s.after = Some(after);
                    s.promotion = Some(json!({
                        "productionAlias": format!("{function}:{alias}"),
                        "version": version,
                        "previous": self.prev.lock().ok().and_then(|p| p.clone()),
                    }));
                } else {
                    let done =
                        traffic == Traffic::Canary(0) && !canary.is_empty() && production == canary;
                    if traffic != Traffic::Canary(100) && !done {
                        return self.abort_changed(&traffic, s).await;
                    }
                    if canary.is_empty() {
                        return self
                            .abort(format!("the canary target group {canary_target_group} has no targets at promotion: production keeps its own"), Why::Promotion, true, s)
                            .await;
                    }
                    let stale: Vec<&(String, Option<i32>)> =
                        production.iter().filter(|t| !canary.contains(t)).collect();
                    let missing: Vec<&(String, Option<i32>)> =
                        canary.iter().filter(|t| !production.contains(t)).collect();
                    // Production has no traffic now (the canary has 100%): register first, then
                    // deregister, so that the group is never empty; the record is read between.
                    self.change_targets(production_target_group, &missing, true)
                        .await?;
                    self.watch().await?;
                    self.change_targets(production_target_group, &stale, false)
                        .await?;
                    self.watch().await?;
                    let now = self.list_targets(production_target_group).await?;
                    if now != canary {
                        return Err(Failure::Aws(format!("verification failed: production's targets are {now:?}, expected the canary's {canary:?}")));
                    }
                    let after = self.write_weights(0, &[100, 0]).await?;
                    self.watch().await?;
                    s.after = Some(after);
                    s.promotion = Some(json!({
                        "productionTargets": canary.iter().map(|(id, port)| json!({"id": id, "port": port})).collect::<Vec<_>>(),
                        "deregistered": stale.iter().map(|(id, port)| json!({"id": id, "port": port})).collect::<Vec<_>>(),
                    }));
                }
            }
            RolloutTarget::LambdaAlias {
                function,
                alias,
                new_version,
                stable_alias,
                ..
            } => {
                if traffic != Traffic::Canary(100) {
                    return self.abort_changed(&traffic, s).await;
                }
                let mut promotion = json!({"alias": alias, "version": new_version});
                if let Some(pointer) = stable_alias {
                    self.point(function, pointer, new_version).await?;
                    self.watch().await?;
                    promotion["stableAlias"] = json!(pointer);
                }
                s.after = Some(json!({"version": new_version, "weights": {}}));
                s.promotion = Some(promotion);
            }
        }
        self.write(&self.marker(self.plan.steps.len(), Status::Promoted))
            .await?;
        s.action = Action::Promoted;
        s.status = "promoted";
        s.canary_weight = 0;
        s.wait_ms = None;
        s.wait_seconds = None;
        info!(rollout = %self.plan.id, target = %s.target, action = "promote", outcome = "promoted", "rollout promoted");
        Ok(())
    }

    async fn abort_changed(&self, traffic: &Traffic, s: &mut StepSummary) -> Result<(), Failure> {
        let Decision::Abort {
            reason, restore, ..
        } = plan::changed_outside(traffic, "during promotion")
        else {
            unreachable!("changed_outside always aborts")
        };
        self.abort(reason, Why::Promotion, restore, s).await
    }

    /// Registers (or deregisters) targets of a production group that is not a Lambda one.
    async fn change_targets(
        &self,
        group: &str,
        targets: &[&(String, Option<i32>)],
        register: bool,
    ) -> Result<(), Failure> {
        if targets.is_empty() {
            return Ok(());
        }
        let lattice = &self.clients.rollback.lattice;
        let built = targets
            .iter()
            .map(|(id, port)| {
                aws_sdk_vpclattice::types::Target::builder()
                    .id(id)
                    .set_port(*port)
                    .build()
                    .map_err(|e| Failure::Aws(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let unsuccessful = if register {
            lattice
                .register_targets()
                .target_group_identifier(group)
                .set_targets(Some(built))
                .send()
                .await
                .map_err(|e| Failure::Aws(format!("RegisterTargets failed: {}", error_text(&e))))?
                .unsuccessful
        } else {
            lattice
                .deregister_targets()
                .target_group_identifier(group)
                .set_targets(Some(built))
                .send()
                .await
                .map_err(|e| Failure::Aws(format!("DeregisterTargets failed: {}", error_text(&e))))?
                .unsuccessful
        };
        match unsuccessful.as_deref() {
            Some([first, ..]) => Err(Failure::Aws(format!(
                "{} refused {}: {} {}",
                if register {
                    "RegisterTargets"
                } else {
                    "DeregisterTargets"
                },
                first.id.as_deref().unwrap_or("?"),
                first.failure_code.as_deref().unwrap_or(""),
                first.failure_message.as_deref().unwrap_or("")
            ))),
            _ => Ok(()),
        }
    }

    /// Moves a Lambda alias to `version` (no weights) from the state read (`RevisionId`: a write
    /// in between makes Lambda refuse this one), then reads it back.
    async fn move_alias(
        &self,
        function: &str,
        alias: &str,
        version: &str,
        read: &rollback::alias::AliasState,
    ) -> Result<(), Failure> {
        let lambda = &self.clients.rollback.lambda;
        lambda
            .update_alias()
            .function_name(function)
            .name(alias)
            .function_version(version)
            .routing_config(AliasRoutingConfiguration::builder().build())
            .set_revision_id(read.revision_id.clone())
            .send()
            .await
            .map_err(|e| {
                Failure::Aws(format!("UpdateAlias({alias}) failed: {}", error_text(&e)))
            })?;
        let back = rollback::alias::read_alias(&self.clients.rollback, function, alias)
            .await
            .map_err(|e| Failure::Aws(e.to_string()))?;
        if !back.all_on(version) {
            return Err(Failure::Aws(format!(
                "verification failed: alias {alias} reads {back:?}, not all on version {version}"
            )));
        }
        Ok(())
    }

    /// Points the stable pointer alias at `version` (created when missing), verified.
    async fn point(&self, function: &str, pointer: &str, version: &str) -> Result<(), Failure> {
        let lambda = &self.clients.rollback.lambda;
        // No weights on the pointer: it names one version.
        match lambda
            .update_alias()
            .function_name(function)
            .name(pointer)
            .function_version(version)
            .routing_config(AliasRoutingConfiguration::builder().build())
            .send()
            .await
        {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                lambda
                    .create_alias()
                    .function_name(function)
                    .name(pointer)
                    .function_version(version)
                    .description("ShiftGuard: the last version a rollout promoted")
                    .send()
                    .await
                    .map_err(|e| {
                        Failure::Aws(format!("CreateAlias({pointer}) failed: {}", error_text(&e)))
                    })?;
            }
            Err(e) => {
                return Err(Failure::Aws(format!(
                    "UpdateAlias({pointer}) failed: {}",
                    error_text(&e)
                )))
            }
        }
        let back = rollback::alias::read_alias(&self.clients.rollback, function, pointer)
            .await
            .map_err(|e| Failure::Aws(e.to_string()))?;
        if !back.all_on(version) {
            return Err(Failure::Aws(format!(
                "verification failed: the stable pointer {pointer} reads {back:?}"
            )));
        }
        Ok(())
    }

    /// Before an abort restores production: a promotion that moved production (the production
    /// group's alias, the stable pointer) is moved back to what production was, so that
    /// restoring production never restores the new version.
    async fn undo_promotion(&self) -> Result<(), Failure> {
        let promoting = self
            .marker
            .as_ref()
            .is_some_and(|m| m.status == Status::Promoting)
            || self
                .written
                .lock()
                .ok()
                .and_then(|w| w.as_ref().map(|m| m.status == Status::Promoting))
                .unwrap_or(false);
        if !promoting {
            return Ok(());
        }
        match &self.plan.target {
            RolloutTarget::LatticeListener {
                production_target_group,
                ..
            } => {
                let Some(prev) = self.prev.lock().ok().and_then(|p| p.clone()) else {
                    return Ok(());
                };
                let production = self.list_targets(production_target_group).await?;
                let Some((function, alias)) =
                    production.first().and_then(|(id, _)| alias_target(id))
                else {
                    return Ok(());
                };
                let now = rollback::alias::read_alias(&self.clients.rollback, &function, &alias)
                    .await
                    .map_err(|e| Failure::Restore(e.to_string()))?;
                if !now.all_on(&prev) {
                    warn!(rollout = %self.plan.id, alias = %alias, version = %prev, action = "undo-promotion", "putting the production alias back");
                    self.move_alias(&function, &alias, &prev, &now)
                        .await
                        .map_err(|e| match e {
                            Failure::Aws(m) => Failure::Restore(m),
                            other => other,
                        })?;
                }
                Ok(())
            }
            RolloutTarget::LambdaAlias {
                function,
                stable_alias: Some(pointer),
                ..
            } => {
                let Some(stable) = self.stable.clone() else {
                    return Ok(());
                };
                self.point(function, pointer, &stable)
                    .await
                    .map_err(|e| match e {
                        Failure::Aws(m) => Failure::Restore(m),
                        other => other,
                    })
            }
            RolloutTarget::LambdaAlias { .. } => Ok(()),
        }
    }

    /// Production back to 100% through rollback's own restore, verified, then marker `aborted`.
    async fn abort(
        &self,
        reason: String,
        why: Why,
        restore: bool,
        s: &mut StepSummary,
    ) -> Result<(), Failure> {
        warn!(rollout = %self.plan.id, target = %s.target, reason = %reason, why = why.code(), restore, action = "abort", "aborting the rollout");
        s.reason = Some(reason);
        let step = s.step;
        let with_why = |status| Marker {
            why: Some(why.code().into()),
            ..self.marker(step, status)
        };
        // A promotion that moved production is put back whether or not weights need restoring.
        self.undo_promotion().await?;
        if restore {
            self.write(&with_why(Status::Aborting)).await?;
            let mut report = TargetReport::new(
                self.plan.target.id(),
                vec![format!("rollout:{}", self.plan.id)],
            );
            match &self.plan.target {
                RolloutTarget::LatticeListener { .. } => {
                    Box::pin(rollback::lattice::roll_back(
                        &self.clients.rollback,
                        &self.target.lattice().expect("lattice"),
                        false,
                        None,
                        &mut report,
                    ))
                    .await;
                }
                RolloutTarget::LambdaAlias {
                    function, alias, ..
                } => {
                    let Some(stable) = self.stable.clone() else {
                        return Err(Failure::Restore("the stable version is not known".into()));
                    };
                    let t = LambdaAliasTarget {
                        function: function.clone(),
                        alias: alias.clone(),
                        stable_version: Some(stable.clone()),
                        stable_alias: None,
                        code_deploy: None,
                    };
                    let run = rollback::alias::Run {
                        dry_run: false,
                        codedeploy_wait: Duration::from_millis(self.config.codedeploy_wait_ms),
                        deadline: self.work,
                        alarm_time_ms: Some(shiftguard_common::emf::now_ms()),
                    };
                    Box::pin(rollback::alias::roll_back(
                        &self.clients.rollback,
                        &t,
                        run,
                        None,
                        &mut report,
                    ))
                    .await;
                    // Rollback's alias path may leave the alias to a CodeDeploy deployment in
                    // flight: the abort is complete only when the alias is all on stable.
                    if !report.failed() {
                        let back =
                            rollback::alias::read_alias(&self.clients.rollback, function, alias)
                                .await
                                .map_err(|e| Failure::Restore(e.to_string()))?;
                        if !back.all_on(&stable) {
                            report.outcome = rollback::report::Outcome::Failed;
                            report.error = Some(format!("after the restore the alias reads {back:?}, not all on version {stable}"));
                        }
                    }
                }
            }
            let failed = report.failed();
            s.after = report.after.clone();
            s.restore = Some(report);
            if failed {
                let why = s
                    .restore
                    .as_ref()
                    .and_then(|r| r.error.clone())
                    .unwrap_or_default();
                return Err(Failure::Restore(why));
            }
        }
        self.write(&with_why(Status::Aborted)).await?;
        s.action = Action::Aborted;
        s.status = "aborted";
        s.canary_weight = 0;
        s.wait_ms = None;
        s.wait_seconds = None;
        Ok(())
    }
}

/// The longest the state machine waits before calling again: during a long bake each return
/// re-reads the alarms and the restore record, so an alarm acts within a minute even where
/// rollback is not subscribed to it.
pub const MAX_WAIT_SECONDS: u64 = 60;

/// `(function, alias)` of an alias-qualified function ARN (`…:function:NAME:ALIAS`).
fn alias_target(id: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = id.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "lambda", _, _, "function", name, qualifier]
            if !rollback::config::is_version_number(qualifier) && *qualifier != "$LATEST" =>
        {
            Some((name.to_string(), qualifier.to_string()))
        }
        _ => None,
    }
}

/// A Lambda target group's promotion: `(function, alias, version)` — production's one target an
/// alias of the function whose version the canary's one target is. Pure; `Err` says why not.
fn lambda_promotion(
    production: &[(String, Option<i32>)],
    canary: &[(String, Option<i32>)],
) -> Result<(String, String, String), String> {
    let ([(prod, _)], [(can, _)]) = (production, canary) else {
        return Err(format!(
            "a Lambda target group holds one target: production has {}, the canary {}",
            production.len(),
            canary.len()
        ));
    };
    let Some((function, alias)) = alias_target(prod) else {
        return Err(format!("the production target group's target {prod} is not an alias-qualified function (arn:…:function:NAME:ALIAS): promotion moves that alias to the canary's version, so that production is never without a target; register an alias in the production group"));
    };
    let parts: Vec<&str> = can.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "lambda", _, _, "function", name, v]
            if *name == function && rollback::config::is_version_number(v) =>
        {
            Ok((function, alias, v.to_string()))
        }
        _ => Err(format!("the canary target group's target {can} is not a published version of {function} (arn:…:function:{function}:VERSION)")),
    }
}

fn set_wait(s: &mut StepSummary, ms: u64) {
    s.wait_ms = Some(ms);
    s.wait_seconds = Some(ms.div_ceil(1000).min(MAX_WAIT_SECONDS));
}

fn failed(results: &[CheckResult]) -> Option<String> {
    match hooks::runner::verdict(results) {
        (true, _) => None,
        (false, why) => Some(why.unwrap_or_else(|| "a required check failed".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fwd(groups: &[(&str, i32)]) -> Forward {
        Forward {
            place: rollback::lattice::Place::Default,
            groups: groups.iter().map(|(g, w)| (g.to_string(), *w)).collect(),
        }
    }

    #[test]
    #[rustfmt::skip]
    fn traffic_as_read_from_a_listener() {
        let t = |fs: &[Forward]| lattice_traffic(&fs.iter().collect::<Vec<_>>(), "tg-p", "tg-c");
        assert_eq!(t(&[fwd(&[("tg-p", 100), ("tg-c", 0)])]), Traffic::Canary(0));
        assert_eq!(t(&[fwd(&[("tg-p", 90), ("tg-c", 10)])]), Traffic::Canary(10));
        assert_eq!(t(&[fwd(&[("tg-p", 0), ("tg-c", 100)])]), Traffic::Canary(100));
        // Weights are relative: 9/1 is 10%; 67/33 is 33%.
        assert_eq!(t(&[fwd(&[("tg-p", 9), ("tg-c", 1)])]), Traffic::Canary(10));
        assert_eq!(t(&[fwd(&[("tg-p", 67), ("tg-c", 33)])]), Traffic::Canary(33));
        // 999/1 is 0.1%: not "no traffic", and not a weight a rollout writes.
        assert!(matches!(t(&[fwd(&[("tg-p", 999), ("tg-c", 1)])]), Traffic::Unexpected(_)));
        assert_eq!(t(&[fwd(&[("tg-p", 90), ("tg-c", 10)]), fwd(&[("tg-p", 100), ("tg-c", 0)])]), Traffic::Split(vec![10, 0]));
        assert!(matches!(t(&[fwd(&[("tg-p", 90), ("tg-c", 0), ("tg-x", 10)])]), Traffic::Unexpected(_)));
        assert!(matches!(t(&[fwd(&[("tg-p", 0), ("tg-c", 0)])]), Traffic::Unexpected(_)));
    }

    #[test]
    fn secrets_go_only_to_their_origin_over_https() {
        assert_eq!(
            origin_of("https://Orders.example.com:8443/health?x=1").as_deref(),
            Some("https://orders.example.com:8443")
        );
        assert_eq!(origin_of("https://user@evil.example/"), None);
        assert_eq!(origin_of("ftp://x"), None);
        assert!(
            is_loopback("http://127.0.0.1:8080")
                && is_loopback("http://localhost:1")
                && is_loopback("http://[::1]:9")
        );
        assert!(
            !is_loopback("http://127example.com") || origin_of("http://127example.com").is_some()
        );
        let plan_with = |url: &str| {
            plan::parse_plan(&json!({"shiftguard": "shift", "rollout": {"id": "r1",
                "target": {"type": "lambda-alias", "function": "f", "alias": "live", "newVersion": "2"},
                "steps": [{"weight": 100}],
                "checks": {"after": {"checks": [{"name": "h", "kind": "http", "url": url,
                    "secretHeaders": {"Authorization": "ORDERS_TOKEN"}, "timeout": "2s"}]}}}}))
            .unwrap()
        };
        let config = |allowed: &str| {
            ShiftConfig::from_vars(&[
                ("ORDERS_TOKEN".to_string(), "s3cr3t".to_string()),
                (ALLOWED_SECRETS_VAR.to_string(), allowed.to_string()),
            ])
            .unwrap()
        };
        let ok = config("ORDERS_TOKEN@https://orders.example.com");
        assert!(bind_checks(&mut plan_with("https://orders.example.com/health"), &ok).is_ok());
        for (url, allowed, why) in [
            (
                "https://evil.example/steal",
                "ORDERS_TOKEN@https://orders.example.com",
                "allows it only to https://orders.example.com",
            ),
            (
                "http://orders.example.com/health",
                "ORDERS_TOKEN@http://orders.example.com",
                "over plain http",
            ),
            (
                "https://orders.example.com/health",
                "ORDERS_TOKEN",
                "allows it only to no origin",
            ),
            (
                "https://orders.example.com/health",
                "OTHER@https://orders.example.com",
                "does not list",
            ),
        ] {
            let e = bind_checks(&mut plan_with(url), &config(allowed))
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{url} / {allowed}: {e}");
            assert!(!e.contains("s3cr3t"), "{e}");
        }
        let local = config("ORDERS_TOKEN@http://127.0.0.1:8080");
        assert!(bind_checks(&mut plan_with("http://127.0.0.1:8080/health"), &local).is_ok());
    }

    #[test]
    fn the_config_never_prints_a_value_and_checks_the_topic() {
        let vars = vec![
            ("AWS_SECRET_ACCESS_KEY".to_string(), "s3cr3t".to_string()),
            (
                "NOTIFY_TOPIC_ARN".to_string(),
                "arn:aws:sns:us-east-1:123456789012:t".to_string(),
            ),
        ];
        let c = ShiftConfig::from_vars(&vars).unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cr3t") && shown.contains("AWS_SECRET_ACCESS_KEY"),
            "{shown}"
        );
        let bad = vec![("NOTIFY_TOPIC_ARN".to_string(), "my-topic".to_string())];
        assert_eq!(
            ShiftConfig::from_vars(&bad).unwrap_err().variable,
            "NOTIFY_TOPIC_ARN"
        );
    }

    #[test]
    fn step_metrics_are_valid_emf() {
        let summary = StepSummary {
            rollout: "orders-v2".into(),
            target: "lattice-listener:svc-1/listener-1".into(),
            status: "in-progress",
            action: Action::Advanced,
            step: 2,
            steps: 4,
            canary_weight: 25,
            wait_seconds: Some(300),
            wait_ms: Some(300_000),
            reason: None,
            checks: Vec::new(),
            alarms_in_alarm: Vec::new(),
            before: Value::Null,
            after: None,
            restore: None,
            promotion: None,
            notification: None,
        };
        for error in [None, Some("Shift.AwsError")] {
            let doc = metrics_document(&summary, error);
            shiftguard_common::emf::validate(&doc).unwrap();
            assert_eq!(
                doc["Action"],
                if error.is_some() {
                    "failed"
                } else {
                    "advanced"
                }
            );
            assert_eq!(doc["CanaryWeight"], 25.0);
        }
    }

    #[test]
    #[rustfmt::skip]
    fn traffic_as_read_from_an_alias() {
        let w = |pairs: &[(&str, f64)]| pairs.iter().map(|(v, w)| (v.to_string(), *w)).collect::<BTreeMap<_, _>>();
        assert_eq!(alias_traffic("1", &w(&[]), "1", "2"), Traffic::Canary(0));
        assert_eq!(alias_traffic("1", &w(&[("2", 0.25)]), "1", "2"), Traffic::Canary(25));
        assert_eq!(alias_traffic("2", &w(&[]), "1", "2"), Traffic::Canary(100));
        assert!(matches!(alias_traffic("1", &w(&[("3", 0.1)]), "1", "2"), Traffic::Unexpected(_)));
        assert!(matches!(alias_traffic("1", &w(&[("2", 0.001)]), "1", "2"), Traffic::Unexpected(_)));
        // Someone put the alias all on another version: restored their way, not ours to undo.
        assert!(matches!(alias_traffic("3", &w(&[]), "1", "2"), Traffic::Elsewhere(_)));
        assert!(matches!(alias_traffic("3", &w(&[("2", 0.1)]), "1", "2"), Traffic::Unexpected(_)));
    }
}

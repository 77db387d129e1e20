//! `shift`: progressive rollouts where CodeDeploy cannot go — a VPC Lattice listener's weighted
//! forward, or a Lambda alias on a custom plan (10% → 25% → 50% → 100% with checks between).
//!
//! One invocation is one step. It reads where the rollout stands (the traffic, the marker tag the
//! rollout keeps on its target, the plan's alarms), [`plan::decide`]s, carries the decision out
//! and answers when to come back. A Step Functions state machine (wait → step → choice) drives it;
//! re-running a step is harmless. Aborts restore production through rollback's own code
//! ([`rollback::lattice::roll_back`], [`rollback::alias::roll_back`]).

mod context;
mod notify;
pub mod plan;
mod secrets;
mod step;
mod target;

pub use context::Read;
use context::{Ctx, Failure};
pub use notify::metrics_document;
pub use step::MAX_WAIT_SECONDS;

use std::collections::BTreeMap;
use std::time::Duration;

use hooks::runner::CheckResult;
use serde::Serialize;
use serde_json::{json, Value};
use shiftguard_common::env::{self, EnvError};
use shiftguard_common::Deadline;
use tracing::{error, info, warn};

use plan::{Facts, Marker, Plan, Traffic};
use rollback::report::TargetReport;

/// The clients `shift` uses: rollback's (to move and restore traffic) and the hooks' (to check).
#[derive(Clone)]
pub struct ShiftClients {
    pub rollback: rollback::Clients,
    pub hooks: hooks::Clients,
    pub http: hooks::HttpClient,
}

impl ShiftClients {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        // One client per service: the hooks' Lambda and CodeDeploy are rollback's. CloudWatch is
        // read at every step (the plan's alarms).
        let rollback = rollback::Clients::new(sdk);
        let hooks =
            hooks::Clients::sharing(sdk, rollback.codedeploy.clone(), rollback.lambda.clone());
        hooks.cloudwatch();
        Self {
            rollback,
            hooks,
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
    /// The process environment and the settings file it may name ([`env::Environment`]).
    pub fn from_env() -> Result<Self, EnvError> {
        let vars: Vec<(String, String)> = env::Environment::load()?
            .all()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
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
    let redactor = secrets::bind_checks(&mut plan, config)?;
    let read = target::read(clients, &plan).await?;
    let (alarming, missing) = notify::alarms_in_alarm(clients, &plan.alarms)
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
        shiftguard_common::emf::emit(&[notify::metrics_document(&summary, Some(e.error_type()))]);
        if let (ShiftError::RestoreFailed { .. }, Some(topic)) = (e, &config.notify_topic_arn) {
            // An abort that could not restore production is what a person must hear about first;
            // best effort: the invocation fails (and is retried) either way.
            summary.reason = Some(format!("{e}"));
            if let Err(message) = deadline
                .within(
                    Duration::from_millis(100),
                    notify::publish(clients, topic, &summary),
                )
                .await
                .unwrap_or_else(|late| Err(late.to_string()))
            {
                error!(topic = %topic, error = %message, "could not publish the failed abort either");
            }
        }
        return result.map(|_| summary);
    }
    shiftguard_common::emf::emit(&[notify::metrics_document(&summary, None)]);
    let ended = summary.status != "in-progress";
    let already_notified =
        matches!(&summary.action, Action::Finished) && marker.as_ref().is_some_and(|m| m.notified);
    if let (true, false, Some(topic)) = (ended, already_notified, &config.notify_topic_arn) {
        let published = deadline
            .within(
                Duration::from_millis(200),
                notify::publish(clients, topic, &summary),
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

#[cfg(test)]
mod tests {
    use super::*;

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
}

//! ShiftGuard rollback: when a CloudWatch alarm goes into ALARM, put every target mapped to it
//! back on 100% production — Lambda aliases (stopping a CodeDeploy deployment in flight) and VPC
//! Lattice listeners — and leave a record of exactly what changed.
//!
//! [`handle`] is the whole behaviour as a plain async function of clients, configuration and the
//! event, so it runs the same under the Lambda runtime and in tests.
//!
//! The `shift` crate beside it (`rollback/shift`, progressive rollouts) moves traffic forward
//! where rollback puts it back; both read production through [`truth`].

pub mod alias;
pub mod apigateway;
pub mod config;
pub mod decision_metrics;
pub mod doctor;
pub mod event;
pub mod lattice;
pub mod operator;
pub mod plan;
pub mod report;
pub mod traffic;
pub mod truth;

use std::time::Duration;

use serde_json::Value;
use shiftguard_common::error_text;
use tracing::{error, info, warn};

pub use config::Config;
use config::Target;
use event::{parse_event, AlarmState, AlarmTransition, EventError};
use report::{Ignored, Outcome, Summary, TargetReport};
pub use shiftguard_common::Deadline;

/// The AWS clients rollback uses, built once per process.
#[derive(Clone, Debug)]
pub struct Clients {
    pub lambda: aws_sdk_lambda::Client,
    pub codedeploy: aws_sdk_codedeploy::Client,
    /// The clients not every configuration needs: built at start-up when the configuration names
    /// what they serve ([`Clients::for_config`]), else on first use (an operator's request, doctor).
    lattice: std::sync::OnceLock<aws_sdk_vpclattice::Client>,
    sns: std::sync::OnceLock<aws_sdk_sns::Client>,
    apigateway: std::sync::OnceLock<aws_sdk_apigateway::Client>,
    /// Where this function runs, from its own ARN (the first invocation's context): names a
    /// target's ARN without a call.
    pub home: std::sync::OnceLock<truth::Home>,
    /// For `doctor` only: built on its first use, never on an alarm's path.
    sdk: aws_config::SdkConfig,
    cloudwatch: std::sync::OnceLock<aws_sdk_cloudwatch::Client>,
}

impl Clients {
    /// Learns where this function runs from the ARN an invocation was made with (once).
    pub fn learn_home(&self, invoked_function_arn: &str) {
        if self.home.get().is_none() {
            if let Some(home) = truth::Home::from_function_arn(invoked_function_arn) {
                let _ = self.home.set(home);
            }
        }
    }

    /// CloudWatch, for `doctor` (built on first use).
    pub fn cloudwatch(&self) -> &aws_sdk_cloudwatch::Client {
        self.cloudwatch
            .get_or_init(|| aws_sdk_cloudwatch::Client::new(&self.sdk))
    }

    pub fn lattice(&self) -> &aws_sdk_vpclattice::Client {
        self.lattice
            .get_or_init(|| aws_sdk_vpclattice::Client::new(&self.sdk))
    }

    pub fn sns(&self) -> &aws_sdk_sns::Client {
        self.sns.get_or_init(|| aws_sdk_sns::Client::new(&self.sdk))
    }

    pub fn apigateway(&self) -> &aws_sdk_apigateway::Client {
        self.apigateway
            .get_or_init(|| aws_sdk_apigateway::Client::new(&self.sdk))
    }

    /// Lambda and CodeDeploy (every target kind and the rollout marker read them); the others on
    /// first use.
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            home: std::sync::OnceLock::new(),
            sdk: sdk.clone(),
            cloudwatch: std::sync::OnceLock::new(),
            lambda: aws_sdk_lambda::Client::new(sdk),
            codedeploy: aws_sdk_codedeploy::Client::new(sdk),
            lattice: std::sync::OnceLock::new(),
            sns: std::sync::OnceLock::new(),
            apigateway: std::sync::OnceLock::new(),
        }
    }

    /// [`Clients::new`], with every client `config` will use built now, at start-up: an alarm's
    /// path never waits for one. (Nothing the configuration does not use is built.)
    pub fn for_config(sdk: &aws_config::SdkConfig, config: Option<&Config>) -> Self {
        let clients = Self::new(sdk);
        if let Some(config) = config {
            let targets = config.mappings.iter().flat_map(|m| &m.targets);
            for target in targets {
                match target {
                    config::Target::LambdaAlias(_) => {}
                    config::Target::LatticeListener(_) => {
                        clients.lattice();
                    }
                    config::Target::ApigatewayCanary(_) => {
                        clients.apigateway();
                    }
                }
            }
            if config.notify_topic_arn.is_some() {
                clients.sns();
            }
        }
        clients
    }
}

/// Why an invocation failed. Lambda reports it (with [`RollbackError::error_type`] as the
/// `errorType`), so async retries, the on-failure destination and alarms see it; the summary in it
/// says what was done before the failure.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error("malformed event, nothing was done: {0}")]
    BadEvent(#[from] EventError),
    #[error("invalid configuration, nothing was done: {0}")]
    BadConfig(String),
    #[error("refused: alarm(s) or requested target(s) {unmapped:?} are not configured in ROLLBACK_TARGETS, nothing was touched for them; summary: {summary}")]
    Unmapped {
        unmapped: Vec<String>,
        summary: String,
    },
    #[error("rollback failed for {failed:?} (every target was attempted); summary: {summary}")]
    TargetsFailed {
        failed: Vec<String>,
        summary: String,
    },
    #[error("traffic was handled, but {targets:?} must be retried ({why}); summary: {summary}")]
    Incomplete {
        targets: Vec<String>,
        why: String,
        summary: String,
    },
    #[error("doctor found {serious} serious problem(s) in the safety net; report: {report}")]
    DoctorFoundProblems { serious: usize, report: String },
    #[error("traffic was handled but the summary could not be published to {topic}: {message}; summary: {summary}")]
    Notify {
        topic: String,
        message: String,
        summary: String,
    },
}

impl RollbackError {
    /// The stable `errorType` Lambda reports for this failure (documented in
    /// rollback/README.md#failures-and-their-errortype).
    pub fn error_type(&self) -> &'static str {
        match self {
            RollbackError::BadEvent(_) => "Rollback.BadEvent",
            RollbackError::BadConfig(_) => "Rollback.BadConfig",
            RollbackError::Unmapped { .. } => "Rollback.Unmapped",
            RollbackError::TargetsFailed { .. } => "Rollback.TargetsFailed",
            RollbackError::Incomplete { .. } => "Rollback.Incomplete",
            RollbackError::Notify { .. } => "Rollback.NotifyFailed",
            RollbackError::DoctorFoundProblems { .. } => "Rollback.DoctorFoundProblems",
        }
    }
}

impl From<RollbackError> for lambda_runtime::Diagnostic {
    fn from(e: RollbackError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.error_type().into(),
            error_message: e.to_string(),
        }
    }
}

/// What the alarms in one event ask for: each target once, with every alarm that asked for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Routing<'c> {
    pub work: Vec<Work<'c>>,
    pub ignored: Vec<Ignored>,
    /// Alarms in ALARM that no mapping names.
    pub unmapped: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Work<'c> {
    pub target: &'c Target,
    pub alarms: Vec<String>,
    /// The latest state-change time of those alarms; `None` if any of them has none.
    pub alarm_time_ms: Option<i64>,
}

/// Which targets an operator's request asks for. Pure: only configured targets (by the id the
/// summary shows); a name that is not configured is refused, like an unmapped alarm. The request's
/// time stands for the alarm's: a CodeDeploy deployment created after it is left alone.
pub fn route_request<'c>(
    request: &operator::OperatorRequest,
    config: &'c Config,
    now_ms: i64,
) -> Routing<'c> {
    let mut routing = Routing {
        work: Vec::new(),
        ignored: Vec::new(),
        unmapped: Vec::new(),
    };
    let by = format!("operator:{}", request.requested_by);
    for name in &request.targets {
        let mut matching: Vec<&Target> = Vec::new();
        for t in config.mappings.iter().flat_map(|m| &m.targets) {
            if t.names().contains(name) && !matching.contains(&t) {
                matching.push(t);
            }
        }
        if matching.len() > 1 {
            error!(target = %name, requested_by = %request.requested_by, outcome = "refused", "the name matches differently configured targets in ROLLBACK_TARGETS; touching nothing for it");
            routing.unmapped.push(format!(
                "{name} (ambiguous: {} configured targets)",
                matching.len()
            ));
            continue;
        }
        match matching.first() {
            Some(target) => {
                if !routing.work.iter().any(|w| w.target == *target) {
                    info!(target = %name, requested_by = %request.requested_by, reason = %request.reason, "operator requested a rollback");
                    routing.work.push(Work {
                        target,
                        alarms: vec![by.clone()],
                        alarm_time_ms: Some(now_ms),
                    });
                }
            }
            None => {
                error!(target = %name, requested_by = %request.requested_by, outcome = "refused", "the operator named a target that is not in ROLLBACK_TARGETS; touching nothing for it");
                routing.unmapped.push(name.clone());
            }
        }
    }
    routing
}

/// Which targets the event's alarms ask for. Pure: only transitions into ALARM of mapped alarms
/// produce work.
pub fn route<'c>(transitions: &[AlarmTransition], config: &'c Config) -> Routing<'c> {
    let mut routing = Routing {
        work: Vec::new(),
        ignored: Vec::new(),
        unmapped: Vec::new(),
    };
    for t in transitions {
        if !t.is_transition_into_alarm() {
            let reason = match (t.new_state, t.old_state) {
                (AlarmState::Alarm, _) => "still in ALARM (not a transition)".to_string(),
                (state, _) => format!(
                    "state {} is not ALARM",
                    serde_json::to_string(&state)
                        .unwrap_or_default()
                        .trim_matches('"')
                ),
            };
            info!(alarm = %t.alarm_name, new_state = ?t.new_state, old_state = ?t.old_state, outcome = "ignored", "{reason}");
            routing.ignored.push(Ignored {
                alarm: t.alarm_name.clone(),
                reason,
            });
            continue;
        }
        let targets = config.targets_for(&t.alarm_name, t.alarm_arn.as_deref());
        if targets.is_empty() {
            error!(alarm = %t.alarm_name, alarm_arn = ?t.alarm_arn, outcome = "refused", "alarm is not mapped to any target in ROLLBACK_TARGETS; touching nothing");
            routing.unmapped.push(t.alarm_name.clone());
            continue;
        }
        info!(alarm = %t.alarm_name, kind = ?t.kind, envelope = ?t.envelope, targets = targets.len(), "alarm transitioned into ALARM");
        let time = t.state_change_ms();
        for target in targets {
            match routing.work.iter_mut().find(|w| w.target == target) {
                Some(w) => {
                    if !w.alarms.contains(&t.alarm_name) {
                        w.alarms.push(t.alarm_name.clone());
                    }
                    w.alarm_time_ms = match (w.alarm_time_ms, time) {
                        (Some(a), Some(b)) => Some(a.max(b)),
                        _ => None,
                    };
                }
                None => routing.work.push(Work {
                    target,
                    alarms: vec![t.alarm_name.clone()],
                    alarm_time_ms: time,
                }),
            }
        }
    }
    routing
}

/// Kept for the summary, logs and SNS publication at the end of an invocation: target work stops
/// this long before the deadline (at most a third of the time left).
const SUMMARY_RESERVE: Duration = Duration::from_millis(1500);

/// One invocation: `{"shiftguard": "doctor"}` checks the configuration against the account
/// ([`doctor`]); anything else is an alarm or an operator's request ([`handle`]).
pub async fn invoke(
    clients: &Clients,
    config: &Config,
    event: &Value,
    deadline: Deadline,
    own_arn: Option<String>,
) -> Result<Value, RollbackError> {
    if doctor::is_doctor_event(event) {
        let facts = doctor::gather(clients, config, own_arn).await;
        let report = doctor::report(config, &facts);
        return shiftguard_common::doctor::conclude(&report, &report.findings, report.serious)
            .map_err(|(serious, report)| RollbackError::DoctorFoundProblems { serious, report });
    }
    let summary = handle(clients, config, event, deadline).await?;
    serde_json::to_value(summary)
        .map_err(|e| RollbackError::BadConfig(format!("the summary could not be serialised: {e}")))
}

/// Handles one event. Malformed events fail before any AWS call.
pub async fn handle(
    clients: &Clients,
    config: &Config,
    event: &Value,
    deadline: Deadline,
) -> Result<Summary, RollbackError> {
    let request = operator::parse(event).inspect_err(|e| {
        error!(error = %e, outcome = "rejected", "malformed operator request");
    })?;
    let transitions = match &request {
        Some(_) => Vec::new(),
        None => parse_event(event).inspect_err(|e| {
            error!(error = %e, outcome = "rejected", "malformed event");
        })?,
    };
    let routing = match &request {
        Some(r) => {
            let asked_at = operator::request_time(r, shiftguard_common::emf::now_ms())
                .inspect_err(
                    |e| error!(error = %e, outcome = "rejected", "operator request refused"),
                )?;
            route_request(r, config, asked_at)
        }
        None => route(&transitions, config),
    };
    let mut summary = Summary {
        dry_run: config.dry_run,
        alarms: transitions.clone(),
        request: request.clone(),
        ignored: routing.ignored,
        unmapped: routing.unmapped,
        targets: Vec::new(),
        notification: None,
    };

    // Target work ends in time for the summary: each report keeps whatever was done before then.
    let reserve = deadline
        .left(Duration::ZERO)
        .map_or(SUMMARY_RESERVE, |left| SUMMARY_RESERVE.min(left / 3));
    let work_deadline = Deadline(deadline.less(reserve));
    let mut reports: Vec<TargetReport> = routing
        .work
        .iter()
        .map(|w| TargetReport::new(w.target.id(), w.alarms.clone()))
        .collect();
    futures::future::join_all(routing.work.iter().zip(reports.iter_mut()).map(
        |(w, report)| async move {
            // The restore record rollback leaves before it writes (never in a dry run).
            let intent = (!config.dry_run).then(|| truth::Intent {
                alarm_ms: w
                    .alarm_time_ms
                    .unwrap_or_else(shiftguard_common::emf::now_ms),
                by: w.alarms.join(","),
            });
            let work = async {
                match w.target {
                    Target::LambdaAlias(t) => {
                        let run = alias::Run {
                            dry_run: config.dry_run,
                            codedeploy_wait: Duration::from_millis(config.codedeploy_wait_ms),
                            deadline: work_deadline,
                            alarm_time_ms: w.alarm_time_ms,
                        };
                        alias::roll_back(clients, t, run, intent.as_ref(), report).await
                    }
                    Target::LatticeListener(t) => {
                        lattice::roll_back(
                            clients,
                            t,
                            config.dry_run,
                            w.alarm_time_ms,
                            intent.as_ref(),
                            report,
                        )
                            .await
                    }
                    Target::ApigatewayCanary(t) => {
                        apigateway::roll_back(clients, t, config.dry_run, w.alarm_time_ms, report)
                            .await
                    }
                }
            };
            if let Err(out_of_time) = work_deadline.within(Duration::ZERO, work).await {
                report.outcome = Outcome::Failed;
                report.error = Some(format!(
                    "{out_of_time}: stopped before Lambda's timeout so that this record survives; what was done so far is in this report"
                ));
            }
            if matches!(report.outcome, Outcome::Restored | Outcome::RestoredByCodeDeploy) {
                report.alarm_to_restored_ms = w.alarm_time_ms.map(|at| {
                    u64::try_from(shiftguard_common::emf::now_ms() - at).unwrap_or(0)
                });
            }
            log_report(report);
        },
    ))
    .await;
    summary.targets = reports;
    shiftguard_common::emf::emit(&decision_metrics::documents(
        &summary,
        shiftguard_common::emf::now_ms(),
    ));

    if let Some(topic) = &config.notify_topic_arn {
        if !summary.targets.is_empty() {
            // Within the reserve kept for it: a hung SNS must not take the summary down with it.
            let published = deadline
                .within(reserve / 3, publish(clients, topic, &summary))
                .await
                .unwrap_or_else(|late| Err(format!("did not answer in time ({late})")));
            match published {
                Ok(message_id) => {
                    summary.notification = Some(format!("published to {topic} as {message_id}"))
                }
                Err(message) => {
                    error!(topic = %topic, error = %message, outcome = "failed", "could not publish the rollback summary");
                    let s = to_json(&summary);
                    return Err(RollbackError::Notify {
                        topic: topic.clone(),
                        message,
                        summary: s,
                    });
                }
            }
        }
    }

    info!(summary = %to_json(&summary), "rollback summary");
    let failed: Vec<String> = summary
        .targets
        .iter()
        .filter(|r| r.failed())
        .map(|r| r.target.clone())
        .collect();
    if !failed.is_empty() {
        return Err(RollbackError::TargetsFailed {
            failed,
            summary: to_json(&summary),
        });
    }
    let incomplete: Vec<&TargetReport> = summary
        .targets
        .iter()
        .filter(|r| r.incomplete.is_some())
        .collect();
    if !incomplete.is_empty() {
        return Err(RollbackError::Incomplete {
            targets: incomplete.iter().map(|r| r.target.clone()).collect(),
            why: incomplete
                .iter()
                .filter_map(|r| r.incomplete.clone())
                .collect::<Vec<_>>()
                .join("; "),
            summary: to_json(&summary),
        });
    }
    if !summary.unmapped.is_empty() {
        return Err(RollbackError::Unmapped {
            unmapped: summary.unmapped.clone(),
            summary: to_json(&summary),
        });
    }
    Ok(summary)
}

fn log_report(r: &TargetReport) {
    let before = r.before.as_ref().map(Value::to_string).unwrap_or_default();
    let after = r.after.as_ref().map(Value::to_string).unwrap_or_default();
    let alarm = r.alarms.join(",");
    let action = serde_json::to_string(&r.action).unwrap_or_default();
    let outcome = serde_json::to_string(&r.outcome).unwrap_or_default();
    let (action, outcome) = (action.trim_matches('"'), outcome.trim_matches('"'));
    let deployment_id = r.deployment_id.as_deref().unwrap_or("");
    let detail = r.detail.as_deref().unwrap_or("");
    if let Some(err) = &r.error {
        error!(target = %r.target, alarm, action, outcome, deployment_id, before, after, detail, error = %err, "target not restored");
    } else if let Some(incomplete) = &r.incomplete {
        warn!(target = %r.target, alarm, action, outcome, deployment_id, before, after, detail, incomplete = %incomplete, "target handled; something must be retried");
    } else {
        info!(target = %r.target, alarm, action, outcome, deployment_id, before, after, detail, "target handled");
    }
}

fn to_json(summary: &Summary) -> String {
    serde_json::to_string(summary)
        .unwrap_or_else(|e| format!("{{\"error\":\"unserialisable summary: {e}\"}}"))
}

async fn publish(clients: &Clients, topic: &str, summary: &Summary) -> Result<String, String> {
    let restored = summary.targets.iter().filter(|r| !r.failed()).count();
    let failed = summary.targets.len() - restored;
    let mut alarms: Vec<&str> = summary
        .alarms
        .iter()
        .map(|a| a.alarm_name.as_str())
        .collect();
    let requested;
    if let Some(r) = &summary.request {
        requested = format!("requested by {}", r.requested_by);
        alarms.push(&requested);
    }
    let mut subject = format!(
        "ShiftGuard rollback{}: {} ok, {} failed ({})",
        if summary.dry_run { " (dry run)" } else { "" },
        restored,
        failed,
        alarms.join(", ")
    );
    let id = publish_to_topic(clients, topic, &mut subject, summary).await?;
    if failed > 0 {
        warn!(topic, failed, "published a summary that reports failures");
    }
    Ok(id)
}

/// Publishes `summary` (pretty JSON) to `topic` under `subject`, made what SNS takes (at most 100
/// printable ASCII characters); the message id, or the error's text. rollback's and shift's
/// notifications both go through here.
pub async fn publish_to_topic(
    clients: &Clients,
    topic: &str,
    subject: &mut String,
    summary: &impl serde::Serialize,
) -> Result<String, String> {
    subject.retain(|c| c.is_ascii() && !c.is_ascii_control());
    subject.truncate(100);
    clients
        .sns()
        .publish()
        .topic_arn(topic)
        .subject(subject.as_str())
        .message(serde_json::to_string_pretty(summary).unwrap_or_default())
        .send()
        .await
        .map(|out| out.message_id.unwrap_or_default())
        .map_err(|e| error_text(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operator_request_routes_only_configured_targets_once_with_its_time() {
        let config = Config::from_vars(
            &[(
                "ROLLBACK_TARGETS",
                r#"[{"alarms":"a","targets":[{"type":"lambda-alias","function":"checkout","alias":"live"}]},
                   {"alarms":"b","targets":[{"type":"lambda-alias","function":"checkout","alias":"live"},
                                            {"type":"lambda-alias","function":"pay","alias":"live","stableVersion":"3"}]},
                   {"alarms":"c","targets":[{"type":"lambda-alias","function":"pay","alias":"live","stableVersion":"4"}]}]"#,
            )][..],
        )
        .unwrap();
        let request = |targets: &[&str]| operator::OperatorRequest {
            shiftguard: "rollback".into(),
            targets: targets.iter().map(|t| t.to_string()).collect(),
            reason: "INC-1".into(),
            requested_by: "alice".into(),
            requested_at: None,
        };
        let r = route_request(
            &request(&[
                "lambda-alias:checkout:live",
                "lambda-alias:checkout:live",
                "lambda-alias:nope:live",
            ]),
            &config,
            42,
        );
        assert_eq!(
            r.work.len(),
            1,
            "configured in two mappings, named twice: once"
        );
        assert_eq!(r.work[0].alarms, ["operator:alice"]);
        assert_eq!(r.work[0].alarm_time_ms, Some(42));
        assert_eq!(r.unmapped, ["lambda-alias:nope:live"]);
        // Two different configurations under one name: refused, never a guess.
        let r = route_request(&request(&["lambda-alias:pay:live"]), &config, 42);
        assert!(r.work.is_empty());
        assert!(r.unmapped[0].contains("ambiguous"), "{:?}", r.unmapped);
    }
}

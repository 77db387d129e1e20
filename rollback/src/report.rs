//! The record of what rollback did: one entry per target, returned, logged and optionally
//! published.

use serde::Serialize;
use serde_json::Value;

use crate::event::AlarmTransition;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Wrote the alias back to its stable version.
    RestoreAlias,
    /// Stopped a CodeDeploy deployment so that CodeDeploy rolls it back.
    StopDeployment,
    /// Waited for CodeDeploy's own rollback deployment (never stopped).
    AwaitCodeDeployRollback,
    /// Wrote the listener's weighted forwards back to the production target group.
    RestoreListener,
    /// Set an API Gateway stage canary's share of traffic to 0%.
    RestoreStage,
    /// Nothing needed doing.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Traffic is back on production, written and verified by rollback.
    Restored,
    /// CodeDeploy's own rollback put the alias back (after rollback stopped the deployment).
    RestoredByCodeDeploy,
    /// Already 100% production: nothing written.
    AlreadyStable,
    /// `DRY_RUN`: the plan, nothing written.
    Planned,
    /// The deployment in flight was created after the alarm fired: not what the alarm is about.
    LeftAlone,
    /// Did not restore; `error` says why.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetReport {
    pub target: String,
    pub alarms: Vec<String>,
    pub action: Action,
    pub outcome: Outcome,
    /// Alias: `{version, weights}`; listener: the weighted forwards.
    pub before: Option<Value>,
    pub after: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The version rollback considers stable, and where that came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable: Option<crate::plan::Stable>,
    /// Why the decision was what it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// What else was noticed on the way (a missing pointer alias, a disagreement).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Traffic was handled, but something must be retried (a CodeDeploy lookup or stop that
    /// failed): the invocation fails so that Lambda retries it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// From the alarm's state change to traffic verified back on production (restored outcomes
    /// only, when the alarm carried its time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alarm_to_restored_ms: Option<u64>,
}

impl TargetReport {
    /// A report before anything was tried: it stays `failed` unless the work says otherwise.
    pub fn new(target: String, alarms: Vec<String>) -> Self {
        TargetReport {
            target,
            alarms,
            action: Action::None,
            outcome: Outcome::Failed,
            before: None,
            after: None,
            deployment_id: None,
            detail: None,
            stable: None,
            decision: None,
            notes: Vec::new(),
            incomplete: None,
            error: None,
            alarm_to_restored_ms: None,
        }
    }

    pub fn failed(&self) -> bool {
        self.outcome == Outcome::Failed
    }

    pub fn add_incomplete(&mut self, why: String) {
        self.incomplete = Some(match self.incomplete.take() {
            Some(earlier) => format!("{earlier}; {why}"),
            None => why,
        });
    }
}

/// An alarm that was not acted on, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ignored {
    pub alarm: String,
    pub reason: String,
}

/// The whole invocation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub dry_run: bool,
    pub alarms: Vec<AlarmTransition>,
    /// An operator's request (instead of alarms): who asked, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<crate::operator::OperatorRequest>,
    pub ignored: Vec<Ignored>,
    /// Alarms in ALARM that no mapping names: refused, nothing touched.
    pub unmapped: Vec<String>,
    pub targets: Vec<TargetReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification: Option<String>,
}

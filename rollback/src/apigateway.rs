//! Putting an API Gateway REST API stage back on its production deployment: the stage canary's
//! share of traffic (`canarySettings.percentTraffic`) goes to 0. The canary deployment itself is
//! kept, for investigation; promotion or deletion stays a person's decision.
//!
//! Like Lattice, a stage has no revision id: read, write what must change, read back and verify,
//! a bounded number of cycles.

use serde_json::{json, Value};
use shiftguard_common::error_text;
use tracing::info;

use crate::config::ApiGatewayCanaryTarget;
use crate::report::{Action, Outcome, TargetReport};
use crate::Clients;

const CYCLES: usize = 3;

/// What rollback read of a stage.
#[derive(Debug, Clone, PartialEq)]
pub struct StageRead {
    /// The stage's production deployment.
    pub deployment_id: Option<String>,
    /// `lastUpdatedDate`, milliseconds since the epoch.
    pub last_updated_ms: Option<i64>,
    /// `None`: the stage has no canary.
    pub canary: Option<Canary>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Canary {
    pub deployment_id: Option<String>,
    pub percent_traffic: f64,
}

/// What to do with a stage. Pure.
#[derive(Debug, Clone, PartialEq)]
pub enum CanaryStep {
    /// No canary, or a canary that gets no traffic: everything is on the stage's deployment.
    AlreadyStable(&'static str),
    /// Send the canary 0% (it had this much).
    SendNothingToCanary { percent: f64 },
    /// The canary runs on the stage's own deployment (a promotion by copying the canary's
    /// deployment id, say): the stage serves that deployment whatever the canary's share, and
    /// which deployment was production before is not on the stage. Nothing rollback can write
    /// helps; a person must redeploy the previous deployment.
    CanaryIsProduction { deployment: Option<String> },
    /// The stage was updated after the alarm changed state: what it serves now may not be what
    /// the alarm is about. Nothing is written.
    ChangedAfterAlarm { updated_ms: i64, alarm_ms: i64 },
}

/// What to do with a stage for an alarm (or request) at `alarm_ms`. Pure.
pub fn plan_stage_for(stage: &StageRead, alarm_ms: Option<i64>) -> CanaryStep {
    if let Some(c) = &stage.canary {
        if c.deployment_id.is_some() && c.deployment_id == stage.deployment_id {
            return CanaryStep::CanaryIsProduction {
                deployment: stage.deployment_id.clone(),
            };
        }
    }
    let step = plan_stage(stage);
    if let (CanaryStep::SendNothingToCanary { .. }, Some(updated), Some(alarm)) =
        (&step, stage.last_updated_ms, alarm_ms)
    {
        if updated > alarm.saturating_add(crate::truth::STALE_AFTER_MS) {
            return CanaryStep::ChangedAfterAlarm {
                updated_ms: updated,
                alarm_ms: alarm,
            };
        }
    }
    step
}

pub fn plan_stage(stage: &StageRead) -> CanaryStep {
    match &stage.canary {
        None => CanaryStep::AlreadyStable(
            "the stage has no canary: all its traffic goes to the stage's deployment",
        ),
        Some(c) if c.percent_traffic == 0.0 => {
            CanaryStep::AlreadyStable("the canary already gets 0% of the stage's traffic")
        }
        Some(c) => CanaryStep::SendNothingToCanary {
            percent: c.percent_traffic,
        },
    }
}

/// After a write: is the stage where rollback wants it, and is it still the stage rollback read?
/// Pure. A stage whose deployment or canary deployment changed in between was promoted,
/// redeployed or had its canary removed (after which `replace percentTraffic` creates a new canary
/// on the stage's own deployment): rollback must not claim it restored anything, nor write again.
pub fn verify(before: &StageRead, after: &StageRead) -> Result<bool, String> {
    let canary_of = |s: &StageRead| s.canary.as_ref().map(|c| c.deployment_id.clone());
    let on_own = |s: &StageRead| {
        s.canary
            .as_ref()
            .is_some_and(|c| c.deployment_id.is_some() && c.deployment_id == s.deployment_id)
    };
    if after.deployment_id != before.deployment_id
        || canary_of(after) != canary_of(before)
        || on_own(after)
    {
        return Err(format!(
            "the stage changed while rollback worked on it (promoted, redeployed or its canary removed?): before {}, now {}; a person must decide",
            before.describe(),
            after.describe()
        ));
    }
    Ok(after.all_on_production())
}

impl StageRead {
    pub fn describe(&self) -> Value {
        json!({
            "deploymentId": self.deployment_id,
            "canary": self.canary.as_ref().map(|c| json!({
                "deploymentId": c.deployment_id,
                "percentTraffic": c.percent_traffic,
            })),
        })
    }

    fn all_on_production(&self) -> bool {
        matches!(plan_stage(self), CanaryStep::AlreadyStable(_))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{operation} failed: {message}")]
    Aws {
        operation: &'static str,
        message: String,
    },
    #[error("verification failed: after {0} write cycles the canary still gets traffic: {1}")]
    NotVerified(usize, String),
    #[error("{0}")]
    Changed(String),
    #[error("{0}")]
    Refused(String),
}

/// `GetStage` of `api`'s `stage`, as the API answers it (doctor reads the same).
pub(crate) async fn get_stage(
    clients: &Clients,
    api: &str,
    stage: &str,
) -> Result<
    aws_sdk_apigateway::operation::get_stage::GetStageOutput,
    aws_sdk_apigateway::error::SdkError<aws_sdk_apigateway::operation::get_stage::GetStageError>,
> {
    clients
        .apigateway()
        .get_stage()
        .rest_api_id(api)
        .stage_name(stage)
        .send()
        .await
}

async fn read(clients: &Clients, api: &str, stage: &str) -> Result<StageRead, StageError> {
    let out = get_stage(clients, api, stage)
        .await
        .map_err(|e| StageError::Aws {
            operation: "GetStage",
            message: error_text(&e),
        })?;
    Ok(StageRead {
        deployment_id: out.deployment_id,
        last_updated_ms: out.last_updated_date.map(|d| d.to_millis().unwrap_or(0)),
        canary: out.canary_settings.map(|c| Canary {
            deployment_id: c.deployment_id,
            percent_traffic: c.percent_traffic,
        }),
    })
}

/// Rolls one stage canary back; the report says what happened.
pub async fn roll_back(
    clients: &Clients,
    target: &ApiGatewayCanaryTarget,
    dry_run: bool,
    alarm_time_ms: Option<i64>,
    report: &mut TargetReport,
) {
    if let Err(e) = run(clients, target, dry_run, alarm_time_ms, report).await {
        report.outcome = Outcome::Failed;
        report.error = Some(e.to_string());
    }
}

async fn run(
    clients: &Clients,
    target: &ApiGatewayCanaryTarget,
    dry_run: bool,
    alarm_time_ms: Option<i64>,
    report: &mut TargetReport,
) -> Result<(), StageError> {
    let (api, stage) = target.ids();
    let before = read(clients, &api, &stage).await?;
    report.before = Some(before.describe());
    match plan_stage_for(&before, alarm_time_ms) {
        CanaryStep::CanaryIsProduction { deployment } => {
            report.after = report.before.clone();
            let why = format!(
                "the stage's canary runs on the stage's own deployment {deployment:?}: the stage serves it to all traffic whatever the canary's share, and the deployment that was production before is not on the stage; nothing rollback can write helps — redeploy the previous deployment to the stage"
            );
            report.decision = Some(why.clone());
            return Err(StageError::Refused(why));
        }
        CanaryStep::ChangedAfterAlarm {
            updated_ms,
            alarm_ms,
        } => {
            report.action = Action::None;
            report.outcome = Outcome::LeftAlone;
            report.after = report.before.clone();
            report.decision = Some(format!(
                "the stage was updated {} ms after the alarm changed state: what it serves now may not be what the alarm is about, so nothing is written; check the stage",
                updated_ms - alarm_ms
            ));
            return Ok(());
        }
        CanaryStep::AlreadyStable(why) => {
            report.action = Action::None;
            report.outcome = Outcome::AlreadyStable;
            report.after = report.before.clone();
            report.decision = Some(why.into());
            // A late delivery after a promotion also reads "no canary": say that the stage moved
            // after the alarm instead of only reassuring.
            if let (Some(changed), Some(alarm)) = (before.last_updated_ms, alarm_time_ms) {
                if changed > alarm {
                    report.notes.push(format!(
                        "the stage was updated after the alarm ({} ms later): a promotion or a person may have acted since; check which deployment the stage serves ({:?})",
                        changed - alarm,
                        before.deployment_id
                    ));
                }
            }
            return Ok(());
        }
        CanaryStep::SendNothingToCanary { percent } => {
            report.action = Action::RestoreStage;
            report.decision = Some(format!(
                "the canary gets {percent}% of the stage's traffic: set it to 0%, keeping the canary deployment for investigation"
            ));
            if dry_run {
                report.outcome = Outcome::Planned;
                return Ok(());
            }
        }
    }
    let mut current = before.clone();
    for cycle in 1..=CYCLES {
        clients
            .apigateway()
            .update_stage()
            .rest_api_id(&api)
            .stage_name(&stage)
            .patch_operations(
                aws_sdk_apigateway::types::PatchOperation::builder()
                    .op(aws_sdk_apigateway::types::Op::Replace)
                    .path("/canarySettings/percentTraffic")
                    .value("0")
                    .build(),
            )
            .send()
            .await
            .map_err(|e| StageError::Aws {
                operation: "UpdateStage",
                message: error_text(&e),
            })?;
        current = read(clients, &api, &stage).await?;
        report.after = Some(current.describe());
        if verify(&before, &current).map_err(StageError::Changed)? {
            info!(target = %report.target, cycle, "stage canary verified at 0%");
            report.outcome = Outcome::Restored;
            return Ok(());
        }
    }
    Err(StageError::NotVerified(
        CYCLES,
        current.describe().to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(canary: Option<f64>) -> StageRead {
        StageRead {
            deployment_id: Some("prod1".into()),
            last_updated_ms: None,
            canary: canary.map(|p| Canary {
                deployment_id: Some("canary1".into()),
                percent_traffic: p,
            }),
        }
    }

    #[test]
    fn plan_table() {
        assert!(matches!(
            plan_stage(&stage(None)),
            CanaryStep::AlreadyStable(why) if why.contains("no canary")
        ));
        assert!(matches!(
            plan_stage(&stage(Some(0.0))),
            CanaryStep::AlreadyStable(_)
        ));
        assert_eq!(
            plan_stage(&stage(Some(10.0))),
            CanaryStep::SendNothingToCanary { percent: 10.0 }
        );
        assert_eq!(
            plan_stage(&stage(Some(0.001))),
            CanaryStep::SendNothingToCanary { percent: 0.001 }
        );
        // NaN is not 0: it is written to 0 (or fails verification), never called stable.
        assert!(matches!(
            plan_stage(&stage(Some(f64::NAN))),
            CanaryStep::SendNothingToCanary { .. }
        ));
    }

    #[test]
    fn a_canary_on_the_stages_own_deployment_or_a_stage_changed_after_the_alarm_is_left() {
        let promoted = StageRead {
            deployment_id: Some("canary1".into()),
            ..stage(Some(10.0))
        };
        assert_eq!(
            plan_stage_for(&promoted, None),
            CanaryStep::CanaryIsProduction {
                deployment: Some("canary1".into())
            }
        );
        let changed = StageRead {
            last_updated_ms: Some(10_000),
            ..stage(Some(10.0))
        };
        assert!(matches!(
            plan_stage_for(&changed, Some(5_000)),
            CanaryStep::ChangedAfterAlarm { .. }
        ));
        assert_eq!(
            plan_stage_for(&changed, Some(9_000)),
            CanaryStep::SendNothingToCanary { percent: 10.0 },
            "within the clocks' tolerance"
        );
        assert!(matches!(
            plan_stage_for(&stage(Some(0.0)), Some(0)),
            CanaryStep::AlreadyStable(_)
        ));
    }

    #[test]
    fn a_stage_that_changed_under_rollback_is_never_called_restored() {
        let before = stage(Some(10.0));
        assert_eq!(verify(&before, &stage(Some(0.0))), Ok(true));
        assert_eq!(
            verify(&before, &stage(Some(10.0))),
            Ok(false),
            "write again"
        );
        // Promoted: the canary's deployment became the stage's, the canary at 0%.
        let promoted = StageRead {
            deployment_id: Some("canary1".into()),
            ..stage(Some(0.0))
        };
        assert!(verify(&before, &promoted).unwrap_err().contains("promoted"));
        // Canary removed, then `replace percentTraffic` made a new one on the stage's deployment.
        let recreated = StageRead {
            canary: Some(Canary {
                deployment_id: Some("prod1".into()),
                percent_traffic: 0.0,
            }),
            ..stage(None)
        };
        assert!(verify(&before, &recreated).is_err());
    }
}

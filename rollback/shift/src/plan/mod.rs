//! The pure half of a progressive rollout: the plan a user writes (parsed and validated before
//! anything moves), the marker the rollout keeps on its target, and [`decide`] — what one
//! invocation does, as a function of what it read.

use std::time::Duration;

use hooks::config::CheckSet;
use serde::{Deserialize, Serialize};

/// The longest bake one step may ask for (Step Functions waits up to a year; a rollout that bakes
/// longer than a week per step is almost certainly a typo).
pub const MAX_BAKE: Duration = Duration::from_secs(7 * 24 * 3600);

/// A validated rollout plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub id: String,
    pub target: RolloutTarget,
    pub steps: Vec<StepSpec>,
    /// Run against the new version before any traffic moves (pre-traffic style: the exact version).
    pub checks_before: Option<CheckSet>,
    /// Run after each step's bake (post-traffic style: through the alias / the endpoint).
    pub checks_after: Option<CheckSet>,
    /// The function (and versions) the checks look at, for a Lattice target.
    pub check_function: Option<CheckFunction>,
    /// CloudWatch alarm names: any in ALARM stops the rollout.
    pub alarms: Vec<String>,
}

/// What a rollout moves: one of the target kinds, each a struct its module (`target/`) takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutTarget {
    LatticeListener(ListenerRollout),
    LambdaAlias(AliasRollout),
}

/// A VPC Lattice listener's weighted forwards between two target groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerRollout {
    pub service: String,
    pub listener: String,
    pub production_target_group: String,
    pub canary_target_group: String,
}

/// A Lambda alias's weights between its stable version and a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasRollout {
    pub function: String,
    pub alias: String,
    pub new_version: String,
    /// When given, must be the version the alias is on when the rollout starts.
    pub stable_version: Option<String>,
    /// Moved to the new version on promotion (rollback's `stableAlias`).
    pub stable_alias: Option<String>,
}

impl RolloutTarget {
    /// The name rollback and the summaries use for the same target.
    pub fn id(&self) -> String {
        match self {
            RolloutTarget::LatticeListener(t) => {
                format!("lattice-listener:{}/{}", t.service, t.listener)
            }
            RolloutTarget::LambdaAlias(t) => format!("lambda-alias:{}:{}", t.function, t.alias),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepSpec {
    /// The canary's share of traffic, percent.
    pub weight: u8,
    pub bake: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckFunction {
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"\S")))]
    pub function: String,
    #[serde(default)]
    pub alias: Option<String>,
    /// The version behind the canary target group.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^[0-9]{1,10}$")))]
    pub version: String,
    /// The version behind production (for `compare` checks).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^[0-9]{1,10}$")))]
    pub current_version: Option<String>,
}

// ---- the marker (rollback::truth) -----------------------------------------------------------

pub use rollback::truth::{Marker, RestoreRecord, Status, MARKER_KEY};

/// Why a rollout is aborted: a short code kept in the marker (tag-safe characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// An alarm of the plan is in ALARM (or was deleted).
    Alarm,
    /// A check failed.
    Checks,
    /// Traffic changed outside the rollout (a rollback, a person).
    Outside,
    /// A write of step 1 was interrupted and production has all traffic: indistinguishable from a
    /// rollback's restore, so never written again.
    Interrupted,
    /// Promotion found the target changed.
    Promotion,
    /// Rollback (an alarm or an operator) restored production during the rollout.
    Rollback,
}

impl Why {
    pub fn code(self) -> &'static str {
        match self {
            Why::Alarm => "alarm",
            Why::Checks => "checks",
            Why::Outside => "outside",
            Why::Interrupted => "interrupted",
            Why::Promotion => "promotion",
            Why::Rollback => "rollback",
        }
    }
}

mod decide;
mod event;
pub use decide::{
    after_judgement, changed_outside, decide, describe_traffic, Decision, Facts, Traffic,
};
#[cfg(feature = "schema")]
pub use event::plan_schema;
pub use event::{is_shift_event, parse_bake, parse_plan, INPUT_MAY_SET};

#[cfg(test)]
mod tests;

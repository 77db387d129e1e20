//! The target kinds a rollout moves, each known in one module — `lattice` (a VPC Lattice
//! listener's weighted forwards) and `alias` (a Lambda alias) — and this dispatcher, the one place
//! that chooses between them and hands each kind its own part of the plan (`ListenerRollout`,
//! `AliasRollout`). Adding a kind: a module with the same functions, a `RolloutTarget` variant and
//! its struct (`plan/mod.rs`, parsed in `plan/event.rs`) and an arm in each dispatcher below.

pub(crate) mod alias;
pub(crate) mod lattice;

use aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput;
use hooks::discovery::{DeploymentTarget, Source};
use rollback::report::TargetReport;
use rollback::truth::Tagged;
use serde_json::{json, Value};

use crate::context::{Ctx, Failure, Read};
use crate::plan::{Plan, RolloutTarget, Traffic};
use crate::{ShiftClients, ShiftError, StepSummary};

/// Reads the target: traffic, the rollout marker and the restore record.
pub(crate) async fn read(clients: &ShiftClients, plan: &Plan) -> Result<Read, ShiftError> {
    match &plan.target {
        RolloutTarget::LatticeListener(t) => lattice::read(clients, plan, t).await,
        RolloutTarget::LambdaAlias(t) => alias::read(clients, plan, t).await,
    }
}

/// A read of the target that failed for a reason other than the plan's (the plan's own mistakes,
/// such as a listener that does not exist, are `InvalidPlan` naming the field).
pub(crate) fn read_failed<E: std::error::Error>(plan: &Plan, call: &str, e: &E) -> ShiftError {
    ShiftError::Aws {
        message: format!("{call} failed: {}", shiftguard_common::error_text(e)),
        summary: json!({"rollout": plan.id, "target": plan.target.id()}).to_string(),
    }
}

/// What the hooks' checks run against.
pub(crate) fn deployment_target(
    function: String,
    alias: Option<String>,
    current_version: Option<String>,
    target_version: String,
) -> DeploymentTarget {
    DeploymentTarget {
        function,
        alias,
        current_version,
        target_version,
        source: Source::Environment,
        is_rollback: Some(false),
        deployment_description: None,
        deployment_creator: None,
    }
}

impl Ctx<'_> {
    /// A published version's configuration, `None` when Lambda says it does not exist.
    pub(crate) async fn function_version(
        &self,
        function: &str,
        version: &str,
    ) -> Result<Option<GetFunctionConfigurationOutput>, Failure> {
        shiftguard_common::lambda::function_version(
            &self.clients.rollback.lambda,
            function,
            version,
        )
        .await
        .map_err(Failure::Aws)
    }

    /// Where the marker and the record live.
    pub(crate) fn tagged(&self) -> Tagged {
        match self.plan.target {
            RolloutTarget::LatticeListener(_) => Tagged::Listener(self.read.tag_resource.clone()),
            RolloutTarget::LambdaAlias(_) => Tagged::Function(self.read.tag_resource.clone()),
        }
    }

    /// The alias a function's tag keys name (`shiftguard:rollout:ALIAS`).
    pub(crate) fn alias_name(&self) -> Option<&str> {
        match &self.plan.target {
            RolloutTarget::LambdaAlias(t) => Some(t.alias.as_str()),
            RolloutTarget::LatticeListener(_) => None,
        }
    }

    /// The production the marker records (alias rollouts: the stable version).
    pub(crate) fn marker_stable(&self) -> Option<String> {
        match self.plan.target {
            RolloutTarget::LambdaAlias(_) => self.stable.clone(),
            RolloutTarget::LatticeListener(_) => None,
        }
    }

    pub(crate) fn check_target(&self) -> DeploymentTarget {
        match &self.plan.target {
            RolloutTarget::LatticeListener(_) => lattice::check_target(self.plan),
            RolloutTarget::LambdaAlias(t) => alias::check_target(t, self.stable.clone()),
        }
    }

    /// Before anything moves: what the kind needs exists, and traffic can be routed.
    pub(crate) async fn check_start(&self) -> Result<(), Failure> {
        match &self.plan.target {
            RolloutTarget::LatticeListener(t) => self.lattice_check_start(t).await,
            RolloutTarget::LambdaAlias(t) => self.alias_check_start(t).await,
        }
    }

    /// Where traffic is now.
    pub(crate) async fn read_traffic(&self) -> Result<Traffic, Failure> {
        match &self.plan.target {
            RolloutTarget::LatticeListener(t) => self.lattice_read_traffic(t).await,
            RolloutTarget::LambdaAlias(t) => self.alias_read_traffic(t).await,
        }
    }

    /// Writes the canary's share — only if traffic is still on one of `allowed` (read just
    /// before: a rollback that restored production while the checks ran is never written over)
    /// — and verifies it by reading back. Returns what was read back.
    pub(crate) async fn write_weights(&self, weight: u8, allowed: &[u8]) -> Result<Value, Failure> {
        match &self.plan.target {
            RolloutTarget::LatticeListener(t) => {
                self.lattice_write_weights(t, weight, allowed).await
            }
            RolloutTarget::LambdaAlias(t) => self.alias_write_weights(t, weight, allowed).await,
        }
    }

    /// The kind's promotion, after the shared checks (`Ctx::promote`).
    pub(crate) async fn promote_target(
        &self,
        traffic: Traffic,
        s: &mut StepSummary,
    ) -> Result<(), Failure> {
        match &self.plan.target {
            RolloutTarget::LatticeListener(t) => self.lattice_promote(t, traffic, s).await,
            RolloutTarget::LambdaAlias(t) => self.alias_promote(t, traffic, s).await,
        }
    }

    /// An abort's restore of production.
    pub(crate) async fn restore_production(
        &self,
        report: &mut TargetReport,
    ) -> Result<(), Failure> {
        match &self.plan.target {
            RolloutTarget::LatticeListener(t) => self.lattice_restore(t, report).await,
            RolloutTarget::LambdaAlias(t) => self.alias_restore(t, report).await,
        }
    }

    /// Undoes what a promotion moved (the production alias, the stable pointer).
    pub(crate) async fn undo_target(&self) -> Result<(), Failure> {
        match &self.plan.target {
            RolloutTarget::LatticeListener(t) => self.lattice_undo_promotion(t).await,
            RolloutTarget::LambdaAlias(t) => self.alias_undo_promotion(t).await,
        }
    }
}

//! The target kinds a rollout moves, each known in one module — `lattice` (a VPC Lattice
//! listener's weighted forwards) and `alias` (a Lambda alias) — and this dispatcher, the one place
//! that chooses between them. Adding a kind: a module with the same functions, a `RolloutTarget`
//! variant (parsed in `plan.rs`) and an arm in each dispatcher below.

pub(crate) mod alias;
pub(crate) mod lattice;

use hooks::discovery::{DeploymentTarget, Source};
use rollback::report::TargetReport;
use rollback::truth::Tagged;
use serde_json::Value;

use crate::context::{Ctx, Failure, Read};
use crate::plan::{Plan, RolloutTarget, Traffic};
use crate::{ShiftClients, ShiftError, StepSummary};

/// Reads the target: traffic, the rollout marker and the restore record.
pub(crate) async fn read(clients: &ShiftClients, plan: &Plan) -> Result<Read, ShiftError> {
    match plan.target {
        RolloutTarget::LatticeListener { .. } => lattice::read(clients, plan).await,
        RolloutTarget::LambdaAlias { .. } => alias::read(clients, plan).await,
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
    /// Where the marker and the record live.
    pub(crate) fn tagged(&self) -> Tagged {
        match self.plan.target {
            RolloutTarget::LatticeListener { .. } => {
                Tagged::Listener(self.read.tag_resource.clone())
            }
            RolloutTarget::LambdaAlias { .. } => Tagged::Function(self.read.tag_resource.clone()),
        }
    }

    /// The alias a function's tag keys name (`shiftguard:rollout:ALIAS`).
    pub(crate) fn alias_name(&self) -> Option<&str> {
        match &self.plan.target {
            RolloutTarget::LambdaAlias { alias, .. } => Some(alias.as_str()),
            RolloutTarget::LatticeListener { .. } => None,
        }
    }

    /// The production the marker records (alias rollouts: the stable version).
    pub(crate) fn marker_stable(&self) -> Option<String> {
        match self.plan.target {
            RolloutTarget::LambdaAlias { .. } => self.stable.clone(),
            RolloutTarget::LatticeListener { .. } => None,
        }
    }

    pub(crate) fn check_target(&self) -> DeploymentTarget {
        match self.plan.target {
            RolloutTarget::LatticeListener { .. } => lattice::check_target(self.plan),
            RolloutTarget::LambdaAlias { .. } => {
                alias::check_target(self.plan, self.stable.clone())
            }
        }
    }

    /// Before anything moves: what the kind needs exists, and traffic can be routed.
    pub(crate) async fn check_start(&self) -> Result<(), Failure> {
        match self.plan.target {
            RolloutTarget::LatticeListener { .. } => self.lattice_check_start().await,
            RolloutTarget::LambdaAlias { .. } => self.alias_check_start().await,
        }
    }

    /// Where traffic is now.
    pub(crate) async fn read_traffic(&self) -> Result<Traffic, Failure> {
        match self.plan.target {
            RolloutTarget::LatticeListener { .. } => self.lattice_read_traffic().await,
            RolloutTarget::LambdaAlias { .. } => self.alias_read_traffic().await,
        }
    }

    /// Writes the canary's share — only if traffic is still on one of `allowed` (read just
    /// before: a rollback that restored production while the checks ran is never written over)
    /// — and verifies it by reading back. Returns what was read back.
    pub(crate) async fn write_weights(&self, weight: u8, allowed: &[u8]) -> Result<Value, Failure> {
        match self.plan.target {
            RolloutTarget::LatticeListener { .. } => {
                self.lattice_write_weights(weight, allowed).await
            }
            RolloutTarget::LambdaAlias { .. } => self.alias_write_weights(weight, allowed).await,
        }
    }

    /// The kind's promotion, after the shared checks (`Ctx::promote`).
    pub(crate) async fn promote_target(
        &self,
        traffic: Traffic,
        s: &mut StepSummary,
    ) -> Result<(), Failure> {
        match self.plan.target {
            RolloutTarget::LatticeListener { .. } => self.lattice_promote(traffic, s).await,
            RolloutTarget::LambdaAlias { .. } => self.alias_promote(traffic, s).await,
        }
    }

    /// An abort's restore of production.
    pub(crate) async fn restore_production(
        &self,
        report: &mut TargetReport,
    ) -> Result<(), Failure> {
        match self.plan.target {
            RolloutTarget::LatticeListener { .. } => self.lattice_restore(report).await,
            RolloutTarget::LambdaAlias { .. } => self.alias_restore(report).await,
        }
    }

    /// Undoes what a promotion moved (the production alias, the stable pointer).
    pub(crate) async fn undo_target(&self) -> Result<(), Failure> {
        match self.plan.target {
            RolloutTarget::LatticeListener { .. } => self.lattice_undo_promotion().await,
            RolloutTarget::LambdaAlias { .. } => self.alias_undo_promotion().await,
        }
    }
}

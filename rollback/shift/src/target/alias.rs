//! A Lambda alias's rollout: everything `shift` knows of this target kind — reading the alias and
//! its marker (on the function), the checks before a start (the new version exists and Lambda
//! would route it beside the stable one), moving the canary's weight (`RevisionId`-guarded),
//! promotion (the stable pointer moved), the abort's restore and undoing a promotion. The
//! dispatcher (`target/mod.rs`) calls it.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_lambda::types::AliasRoutingConfiguration;
use hooks::discovery::DeploymentTarget;
use rollback::config::LambdaAliasTarget;
use rollback::report::TargetReport;
use rollback::truth::TagFacts;
use serde_json::{json, Value};
use shiftguard_common::{error_text, found, found_or_why};

use crate::context::Read;
use crate::context::{Ctx, Failure};
use crate::plan::{AliasRollout, Plan, Traffic};
use crate::target::read_failed;
use crate::{ShiftClients, ShiftError, StepSummary};

pub(crate) async fn read(
    clients: &ShiftClients,
    plan: &Plan,
    t: &AliasRollout,
) -> Result<Read, ShiftError> {
    let AliasRollout {
        function,
        alias,
        new_version,
        stable_version,
        ..
    } = t;
    let got = found_or_why(
        clients
            .rollback
            .lambda
            .get_alias()
            .function_name(function)
            .name(alias)
            .send()
            .await,
    )
    .map_err(|e| read_failed(plan, "GetAlias", &e))?
    .map_err(|why| {
        ShiftError::InvalidPlan(format!(
            "rollout.target: alias {alias} of function {function} does not exist ({why})"
        ))
    })?;
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
    let tags = clients
        .rollback
        .lambda
        .list_tags()
        .resource(&function_arn)
        .send()
        .await
        .map_err(|e| read_failed(plan, "ListTags", &e))?;
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

/// The checks look at the alias's own function: the new version against the stable one.
pub(crate) fn check_target(t: &AliasRollout, stable: Option<String>) -> DeploymentTarget {
    crate::target::deployment_target(
        t.function.clone(),
        Some(t.alias.clone()),
        stable,
        t.new_version.clone(),
    )
}

impl Ctx<'_> {
    pub(crate) async fn alias_check_start(&self, t: &AliasRollout) -> Result<(), Failure> {
        let AliasRollout {
            function,
            new_version,
            ..
        } = t;
        let stable = self.stable.clone().unwrap_or_default();
        if stable == *new_version {
            return Err(Failure::Invalid(format!("rollout.target.newVersion: the alias is already on version {new_version}: nothing to roll out")));
        }
        let read = |version: String| async move {
            self.function_version(function, &version)
                .await?
                .ok_or_else(|| {
                    Failure::Invalid(format!(
                        "rollout.target.newVersion: version {version} of {function} does not exist"
                    ))
                })
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

    pub(crate) async fn alias_read_traffic(&self, t: &AliasRollout) -> Result<Traffic, Failure> {
        let AliasRollout {
            function,
            alias,
            new_version,
            ..
        } = t;
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

    pub(crate) async fn alias_write_weights(
        &self,
        t: &AliasRollout,
        weight: u8,
        allowed: &[u8],
    ) -> Result<Value, Failure> {
        let AliasRollout {
            function,
            alias,
            new_version,
            ..
        } = t;
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

    pub(crate) async fn alias_promote(
        &self,
        t: &AliasRollout,
        traffic: Traffic,
        s: &mut StepSummary,
    ) -> Result<(), Failure> {
        let AliasRollout {
            function,
            alias,
            new_version,
            stable_alias,
            ..
        } = t;
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
        self.promoted(s).await
    }

    /// Points the stable pointer alias at `version` (created when missing), verified.
    async fn point(&self, function: &str, pointer: &str, version: &str) -> Result<(), Failure> {
        let lambda = &self.clients.rollback.lambda;
        // No weights on the pointer: it names one version.
        let updated = found(
            lambda
                .update_alias()
                .function_name(function)
                .name(pointer)
                .function_version(version)
                .routing_config(AliasRoutingConfiguration::builder().build())
                .send()
                .await,
        );
        match updated {
            Ok(Some(_)) => {}
            Ok(None) => {
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

    /// The abort's restore of production, through rollback's own code (no restore record: this is
    /// the rollout's own abort).
    pub(crate) async fn alias_restore(
        &self,
        t: &AliasRollout,
        report: &mut TargetReport,
    ) -> Result<(), Failure> {
        let AliasRollout {
            function, alias, ..
        } = t;
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
            report,
        ))
        .await;
        // Rollback's alias path may leave the alias to a CodeDeploy deployment in
        // flight: the abort is complete only when the alias is all on stable.
        if !report.failed() {
            let back = rollback::alias::read_alias(&self.clients.rollback, function, alias)
                .await
                .map_err(|e| Failure::Restore(e.to_string()))?;
            if !back.all_on(&stable) {
                report.outcome = rollback::report::Outcome::Failed;
                report.error = Some(format!(
                    "after the restore the alias reads {back:?}, not all on version {stable}"
                ));
            }
        }
        Ok(())
    }

    /// A promotion that moved the stable pointer is put back on the stable version.
    pub(crate) async fn alias_undo_promotion(&self, t: &AliasRollout) -> Result<(), Failure> {
        let AliasRollout {
            function,
            stable_alias: Some(pointer),
            ..
        } = t
        else {
            return Ok(());
        };
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
}

pub(crate) fn alias_traffic(
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

#[cfg(test)]
mod tests {
    use super::*;

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

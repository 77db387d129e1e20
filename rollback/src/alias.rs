//! Putting a Lambda alias back on its stable version, and stopping a CodeDeploy deployment that
//! is shifting it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_codedeploy::types::DeploymentStatus;
use aws_sdk_lambda::types::AliasRoutingConfiguration;
use serde::Serialize;
use serde_json::json;
use shiftguard_common::error_text;
use tracing::{info, warn};

use crate::config::{is_version_number, LambdaAliasTarget};
use crate::report::{Action, Outcome, TargetReport};
use crate::Clients;

/// How many times a write that lost a `RevisionId` race is re-read and retried.
const REVISION_CONFLICT_ATTEMPTS: usize = 5;
/// How often to look whether CodeDeploy's rollback has restored the alias.
const CODEDEPLOY_POLL: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum AliasError {
    #[error("{operation} failed: {message}")]
    Aws {
        operation: &'static str,
        message: String,
    },
    #[error("cannot decide the stable version: {0}")]
    NoStableVersion(String),
    #[error("the alias kept changing under us: {0} writes lost the RevisionId race")]
    Contended(usize),
    #[error("verification failed: after the write the alias is {0}")]
    NotVerified(String),
}

fn aws<E: std::error::Error>(operation: &'static str) -> impl FnOnce(E) -> AliasError {
    move |e| AliasError::Aws {
        operation,
        message: error_text(&e),
    }
}

/// The part of an alias that routes traffic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AliasState {
    pub version: String,
    /// Additional versions and their share (0.0–1.0).
    pub weights: BTreeMap<String, f64>,
    #[serde(skip)]
    pub revision_id: Option<String>,
}

impl AliasState {
    /// All traffic on `version`: it is primary and no other version has a non-zero weight.
    pub fn all_on(&self, version: &str) -> bool {
        self.version == version && self.weights.values().all(|w| *w <= 0.0)
    }

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
        }
    }

    fn summary(&self) -> serde_json::Value {
        json!({ "version": self.version, "weights": self.weights })
    }
}

/// The name in a function ARN, or the name itself.
pub fn function_name(function: &str) -> &str {
    match function.split(':').collect::<Vec<_>>().as_slice() {
        ["arn", _, "lambda", _, _, "function", name, ..] => name,
        _ => function,
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
    Ok(AliasState::from_api(
        out.function_version,
        out.routing_config,
        out.revision_id,
    ))
}

/// The version to restore: explicit config; else the stable-pointer alias; else the older of the
/// alias's two versions (a canary is always the newer publish, whichever of the two shapes the
/// shift uses: CodeDeploy's `[old, {new: w}]` or the hand-rolled `[new, {old: w}]`).
/// `None`: the alias serves a single version and nothing says it is the wrong one.
pub fn decide_stable(
    target: &LambdaAliasTarget,
    alias: &AliasState,
    pointer: Option<&AliasState>,
) -> Result<Option<String>, AliasError> {
    let stable = if let Some(v) = &target.stable_version {
        Some(v.clone())
    } else if let Some(p) = pointer {
        Some(p.version.clone())
    } else {
        let mut versions: Vec<&String> = std::iter::once(&alias.version)
            .chain(
                alias
                    .weights
                    .iter()
                    .filter(|(_, w)| **w > 0.0)
                    .map(|(v, _)| v),
            )
            .collect();
        if versions.len() < 2 {
            return Ok(None);
        }
        if let Some(bad) = versions.iter().find(|v| !is_version_number(v)) {
            return Err(AliasError::NoStableVersion(format!(
                "the alias routes to {bad:?}, which is not a published version number"
            )));
        }
        versions.sort_by_key(|v| v.parse::<u64>().unwrap_or(u64::MAX));
        Some(versions[0].clone())
    };
    match stable {
        Some(v) if !is_version_number(&v) => Err(AliasError::NoStableVersion(format!(
            "{v:?} is not a published version (the stable pointer alias {:?} must point at a numbered version, never $LATEST)",
            target.stable_alias.as_deref().unwrap_or_default()
        ))),
        other => Ok(other),
    }
}

/// Rolls one alias back. Never returns an error: failures are in the report.
pub async fn roll_back(
    clients: &Clients,
    target: &LambdaAliasTarget,
    target_id: String,
    alarms: Vec<String>,
    dry_run: bool,
    codedeploy_wait: Duration,
) -> TargetReport {
    let mut report = TargetReport::new(target_id, alarms);
    if let Err(e) = run(clients, target, dry_run, codedeploy_wait, &mut report).await {
        report.outcome = Outcome::Failed;
        report.error = Some(e.to_string());
    }
    report
}

async fn run(
    clients: &Clients,
    target: &LambdaAliasTarget,
    dry_run: bool,
    codedeploy_wait: Duration,
    report: &mut TargetReport,
) -> Result<(), AliasError> {
    // The first round trip: everything that can be read at once is.
    let (alias, pointer, in_flight) = tokio::join!(
        read_alias(clients, &target.function, &target.alias),
        async {
            match &target.stable_alias {
                Some(p) => read_alias(clients, &target.function, p).await.map(Some),
                None => Ok(None),
            }
        },
        in_flight_deployments(clients, target),
    );
    let alias = alias?;
    let pointer = pointer?;
    report.before = Some(alias.summary());

    let deployment = match in_flight {
        Ok(ids) if ids.is_empty() => None,
        Ok(ids) => deployment_shifting(clients, target, &ids).await,
        Err(e) => {
            // Rollback must not be blocked by CodeDeploy being unreachable: restoring traffic comes
            // first. The report says that the check could not be made.
            warn!(target = %report.target, error = %e, "could not list CodeDeploy deployments; restoring the alias directly");
            report.detail = Some(format!(
                "could not check for a CodeDeploy deployment in flight: {e}"
            ));
            None
        }
    };

    if let Some((deployment_id, current_version)) = deployment {
        report.deployment_id = Some(deployment_id.clone());
        return stop_and_restore(
            clients,
            target,
            &deployment_id,
            &current_version,
            dry_run,
            codedeploy_wait,
            report,
        )
        .await;
    }

    let Some(stable) = decide_stable(target, &alias, pointer.as_ref())? else {
        report.outcome = Outcome::AlreadyStable;
        report.after = report.before.clone();
        report.detail = Some(format!(
            "the alias serves only version {} and no stable version is configured: nothing to roll back",
            alias.version
        ));
        return Ok(());
    };
    restore(clients, target, &stable, alias, dry_run, report).await
}

/// Writes `FunctionVersion=stable` with no weights, guarded by `RevisionId`; on a lost race it
/// re-reads and decides again.
async fn restore(
    clients: &Clients,
    target: &LambdaAliasTarget,
    stable: &str,
    mut alias: AliasState,
    dry_run: bool,
    report: &mut TargetReport,
) -> Result<(), AliasError> {
    for attempt in 1..=REVISION_CONFLICT_ATTEMPTS {
        if alias.all_on(stable) {
            report.outcome = Outcome::AlreadyStable;
            report.after = Some(alias.summary());
            if report.action == Action::None {
                report.detail = Some(format!("already 100% on version {stable}"));
            }
            return Ok(());
        }
        report.action = Action::RestoreAlias;
        if dry_run {
            report.outcome = Outcome::Planned;
            report.after = Some(json!({ "version": stable, "weights": {} }));
            report.detail = Some(format!(
                "dry run: would point the alias at version {stable} with no additional weights"
            ));
            return Ok(());
        }
        let mut update = clients
            .lambda
            .update_alias()
            .function_name(&target.function)
            .name(&target.alias)
            .function_version(stable)
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
                let written =
                    AliasState::from_api(out.function_version, out.routing_config, out.revision_id);
                report.after = Some(written.summary());
                if !written.all_on(stable) {
                    return Err(AliasError::NotVerified(written.summary().to_string()));
                }
                report.outcome = Outcome::Restored;
                return Ok(());
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_precondition_failed_exception()) =>
            {
                info!(target = %report.target, attempt, "alias changed since it was read (RevisionId); reading it again");
                alias = read_alias(clients, &target.function, &target.alias).await?;
            }
            Err(e) => return Err(aws("UpdateAlias")(e)),
        }
    }
    Err(AliasError::Contended(REVISION_CONFLICT_ATTEMPTS))
}

const IN_FLIGHT: [DeploymentStatus; 5] = [
    DeploymentStatus::Created,
    DeploymentStatus::Queued,
    DeploymentStatus::InProgress,
    DeploymentStatus::Baking,
    DeploymentStatus::Ready,
];

/// Ids of CodeDeploy deployments that have not finished, in the configured group or the region.
async fn in_flight_deployments(
    clients: &Clients,
    target: &LambdaAliasTarget,
) -> Result<Vec<String>, AliasError> {
    let mut ids = Vec::new();
    let mut next_token = None;
    loop {
        let mut req = clients
            .codedeploy
            .list_deployments()
            .set_include_only_statuses(Some(IN_FLIGHT.to_vec()))
            .set_next_token(next_token);
        if let Some(group) = &target.code_deploy {
            req = req
                .application_name(&group.application)
                .deployment_group_name(&group.deployment_group);
        }
        let out = req.send().await.map_err(aws("ListDeployments"))?;
        ids.extend(out.deployments.unwrap_or_default());
        next_token = out.next_token.filter(|t| !t.is_empty());
        if next_token.is_none() {
            return Ok(ids);
        }
    }
}

/// The in-flight deployment (and its AppSpec's current version) that shifts this alias, if any.
async fn deployment_shifting(
    clients: &Clients,
    target: &LambdaAliasTarget,
    ids: &[String],
) -> Option<(String, String)> {
    let wanted = function_name(&target.function);
    let lookups = ids.iter().map(|id| async move {
        let targets = clients
            .codedeploy
            .list_deployment_targets()
            .deployment_id(id)
            .send()
            .await
            .map_err(|e| error_text(&e))?;
        for target_id in targets.target_ids.unwrap_or_default() {
            let out = clients
                .codedeploy
                .get_deployment_target()
                .deployment_id(id)
                .target_id(&target_id)
                .send()
                .await
                .map_err(|e| error_text(&e))?;
            let info = out
                .deployment_target
                .and_then(|t| t.lambda_target)
                .and_then(|t| t.lambda_function_info);
            if let Some(info) = info {
                if info.function_name.as_deref().map(function_name) == Some(wanted)
                    && info.function_alias.as_deref() == Some(target.alias.as_str())
                {
                    return Ok(info.current_version.map(|v| (id.clone(), v)));
                }
            }
        }
        Ok::<_, String>(None)
    });
    for (id, result) in ids.iter().zip(futures::future::join_all(lookups).await) {
        match result {
            Ok(Some(found)) => return Some(found),
            Ok(None) => {}
            // Deployments on other compute platforms answer these calls with errors: not ours.
            Err(e) => {
                info!(deployment_id = %id, error = %e, "skipping a deployment whose targets could not be read")
            }
        }
    }
    None
}

/// CodeDeploy is shifting this alias: stop it with auto-rollback so that CodeDeploy restores the
/// alias itself (an alias edited behind CodeDeploy's back fails later deployments). If CodeDeploy
/// has not restored it within the wait, restore it to the AppSpec's current version ourselves,
/// which is the state CodeDeploy's rollback writes, so the two never disagree.
async fn stop_and_restore(
    clients: &Clients,
    target: &LambdaAliasTarget,
    deployment_id: &str,
    current_version: &str,
    dry_run: bool,
    wait: Duration,
    report: &mut TargetReport,
) -> Result<(), AliasError> {
    report.action = Action::StopDeployment;
    if dry_run {
        report.outcome = Outcome::Planned;
        report.after = Some(json!({ "version": current_version, "weights": {} }));
        report.detail = Some(format!(
            "dry run: would stop CodeDeploy deployment {deployment_id} with auto-rollback to version {current_version}"
        ));
        return Ok(());
    }
    let stopped = clients
        .codedeploy
        .stop_deployment()
        .deployment_id(deployment_id)
        .auto_rollback_enabled(true)
        .send()
        .await;
    let codedeploy_rolls_back = match stopped {
        Ok(out) => {
            info!(
                target = %report.target, deployment_id, action = "stop-deployment",
                status = ?out.status, "stopped the CodeDeploy deployment with auto-rollback"
            );
            true
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_deployment_already_completed_exception()) =>
        {
            info!(target = %report.target, deployment_id, "the deployment had already completed; restoring the alias directly");
            report.detail = Some(format!(
                "deployment {deployment_id} had already completed; restored the alias directly"
            ));
            false
        }
        Err(e) => {
            // Traffic first: if CodeDeploy will not stop, put the alias back ourselves.
            warn!(target = %report.target, deployment_id, error = %error_text(&e), "StopDeployment failed; restoring the alias directly");
            report.detail = Some(format!(
                "StopDeployment failed ({}); restored the alias directly",
                error_text(&e)
            ));
            false
        }
    };

    let started = Instant::now();
    let mut alias = read_alias(clients, &target.function, &target.alias).await?;
    if codedeploy_rolls_back {
        while !alias.all_on(current_version) && started.elapsed() < wait {
            tokio::time::sleep(CODEDEPLOY_POLL).await;
            alias = read_alias(clients, &target.function, &target.alias).await?;
        }
        if alias.all_on(current_version) {
            report.outcome = Outcome::RestoredByCodeDeploy;
            report.after = Some(alias.summary());
            report.detail = Some(format!(
                "stopped deployment {deployment_id}; CodeDeploy rolled the alias back to version {current_version} after {} ms",
                started.elapsed().as_millis()
            ));
            return Ok(());
        }
        report.detail = Some(format!(
            "stopped deployment {deployment_id}, but CodeDeploy had not restored the alias after {} ms; restored it to the AppSpec's current version {current_version}",
            wait.as_millis()
        ));
    }
    restore(clients, target, current_version, alias, false, report).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(stable_version: Option<&str>) -> LambdaAliasTarget {
        LambdaAliasTarget {
            function: "f".into(),
            alias: "live".into(),
            stable_version: stable_version.map(String::from),
            stable_alias: None,
            code_deploy: None,
        }
    }

    fn state(version: &str, weights: &[(&str, f64)]) -> AliasState {
        AliasState {
            version: version.into(),
            weights: weights.iter().map(|(v, w)| (v.to_string(), *w)).collect(),
            revision_id: None,
        }
    }

    #[test]
    fn stable_is_the_older_version_in_both_shift_shapes() {
        let codedeploy_shape = state("1", &[("2", 0.1)]);
        let hand_rolled = state("12", &[("9", 0.9)]);
        assert_eq!(
            decide_stable(&target(None), &codedeploy_shape, None)
                .unwrap()
                .as_deref(),
            Some("1")
        );
        assert_eq!(
            decide_stable(&target(None), &hand_rolled, None)
                .unwrap()
                .as_deref(),
            Some("9")
        );
    }

    #[test]
    fn config_then_pointer_then_inference() {
        let alias = state("1", &[("2", 0.1)]);
        assert_eq!(
            decide_stable(&target(Some("7")), &alias, Some(&state("5", &[])))
                .unwrap()
                .as_deref(),
            Some("7")
        );
        assert_eq!(
            decide_stable(&target(None), &alias, Some(&state("5", &[])))
                .unwrap()
                .as_deref(),
            Some("5")
        );
        assert_eq!(
            decide_stable(&target(None), &state("3", &[]), None).unwrap(),
            None
        );
        assert_eq!(
            decide_stable(&target(None), &state("3", &[("4", 0.0)]), None).unwrap(),
            None
        );
    }

    #[test]
    fn latest_is_never_stable() {
        assert!(decide_stable(&target(None), &state("$LATEST", &[("2", 0.5)]), None).is_err());
        assert!(decide_stable(
            &target(None),
            &state("1", &[]),
            Some(&state("$LATEST", &[]))
        )
        .is_err());
    }

    #[test]
    fn function_names_from_arns() {
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:checkout"),
            "checkout"
        );
        assert_eq!(function_name("checkout"), "checkout");
    }
}

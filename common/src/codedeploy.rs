//! CodeDeploy lookups shared by the hooks and rollback: what a Lambda deployment looks like, how
//! CodeDeploy's own rollback deployments are recognised, and how the in-flight deployments that
//! shift one alias are found. One copy, so that both functions agree on what they see.

use aws_sdk_codedeploy::types::{ComputePlatform, DeploymentInfo, DeploymentStatus};
use serde::Serialize;

use crate::error_text;

/// Statuses of a deployment that has not finished.
pub const IN_FLIGHT: [DeploymentStatus; 5] = [
    DeploymentStatus::Created,
    DeploymentStatus::Queued,
    DeploymentStatus::InProgress,
    DeploymentStatus::Baking,
    DeploymentStatus::Ready,
];

/// `BatchGetDeployments` takes at most 25 ids per call.
const BATCH: usize = 25;

/// A CodeDeploy call that failed, naming the operation and the deployment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation}{}: {message}", deployment_id.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
pub struct LookupError {
    pub operation: &'static str,
    pub deployment_id: Option<String>,
    pub message: String,
}

fn lookup_error<'a, E: std::error::Error>(
    operation: &'static str,
    deployment_id: Option<&'a str>,
) -> impl FnOnce(E) -> LookupError + 'a {
    move |e| LookupError {
        operation,
        deployment_id: deployment_id.map(String::from),
        message: error_text(&e),
    }
}

/// The facts about one deployment that ShiftGuard decides on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    pub id: String,
    pub status: Option<String>,
    /// `user`, `codeDeployRollback`, `CloudFormation`, …
    pub creator: Option<String>,
    pub compute_platform: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub create_time_ms: Option<i64>,
    /// Set on a rollback deployment: the deployment it rolls back.
    pub rollback_triggering_deployment_id: Option<String>,
    /// Set on a deployment that was rolled back: the rollback deployment.
    pub rollback_deployment_id: Option<String>,
    pub description: Option<String>,
}

impl Deployment {
    pub fn from_info(info: &DeploymentInfo) -> Self {
        let rollback = info.rollback_info();
        Deployment {
            id: info.deployment_id().unwrap_or_default().to_string(),
            status: info.status().map(|s| s.as_str().to_string()),
            creator: info.creator().map(|c| c.as_str().to_string()),
            compute_platform: info.compute_platform().map(|c| c.as_str().to_string()),
            create_time_ms: info.create_time().and_then(|t| t.to_millis().ok()),
            rollback_triggering_deployment_id: rollback
                .and_then(|r| r.rollback_triggering_deployment_id())
                .filter(|s| !s.is_empty())
                .map(String::from),
            rollback_deployment_id: rollback
                .and_then(|r| r.rollback_deployment_id())
                .filter(|s| !s.is_empty())
                .map(String::from),
            description: info.description().map(String::from),
        }
    }

    /// A deployment CodeDeploy made to roll another one back ("rolled-back deployments are
    /// technically new deployments, with new deployment IDs"). Its hooks run too; it must never be
    /// stopped by ShiftGuard.
    pub fn is_rollback(&self) -> bool {
        self.creator.as_deref() == Some("codeDeployRollback")
            || self.rollback_triggering_deployment_id.is_some()
    }

    pub fn is_lambda(&self) -> bool {
        self.compute_platform.as_deref() == Some(ComputePlatform::Lambda.as_str())
    }
}

/// What a Lambda deployment does to its alias (`GetDeploymentTarget`'s `lambdaFunctionInfo`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LambdaTarget {
    pub function: String,
    pub alias: Option<String>,
    /// For an ordinary deployment the version traffic comes from; for a rollback deployment the
    /// version being rolled away from.
    pub current_version: Option<String>,
    /// For an ordinary deployment the version being deployed; for a rollback deployment the
    /// version it restores.
    pub target_version: Option<String>,
    pub target_version_weight: f64,
    pub status: Option<String>,
}

/// `GetDeployment`: the whole `deploymentInfo` (read the facts with [`Deployment::from_info`]).
pub async fn get_deployment(
    client: &aws_sdk_codedeploy::Client,
    deployment_id: &str,
) -> Result<DeploymentInfo, LookupError> {
    client
        .get_deployment()
        .deployment_id(deployment_id)
        .send()
        .await
        .map_err(lookup_error("GetDeployment", Some(deployment_id)))?
        .deployment_info
        .ok_or_else(|| LookupError {
            operation: "GetDeployment",
            deployment_id: Some(deployment_id.into()),
            message: "the answer has no deploymentInfo".into(),
        })
}

/// The deployment's Lambda target: `ListDeploymentTargets` (every page) and `GetDeploymentTarget`
/// until one is a Lambda target. `None`: the deployment has no Lambda target.
pub async fn lambda_target(
    client: &aws_sdk_codedeploy::Client,
    deployment_id: &str,
) -> Result<Option<LambdaTarget>, LookupError> {
    // The SDK generates no paginator for ListDeploymentTargets: page by hand.
    let mut next_token: Option<String> = None;
    loop {
        let page = client
            .list_deployment_targets()
            .deployment_id(deployment_id)
            .set_next_token(next_token.take())
            .send()
            .await
            .map_err(lookup_error("ListDeploymentTargets", Some(deployment_id)))?;
        for target_id in page.target_ids() {
            let out = client
                .get_deployment_target()
                .deployment_id(deployment_id)
                .target_id(target_id)
                .send()
                .await
                .map_err(lookup_error("GetDeploymentTarget", Some(deployment_id)))?;
            let Some(lambda) = out.deployment_target().and_then(|t| t.lambda_target()) else {
                continue;
            };
            let Some(info) = lambda.lambda_function_info() else {
                continue;
            };
            return Ok(Some(LambdaTarget {
                function: info.function_name().unwrap_or_default().to_string(),
                alias: info.function_alias().map(String::from),
                current_version: info.current_version().map(String::from),
                target_version: info.target_version().map(String::from),
                target_version_weight: info.target_version_weight(),
                status: lambda.status().map(|s| s.as_str().to_string()),
            }));
        }
        match page.next_token {
            Some(t) if !t.is_empty() => next_token = Some(t),
            _ => return Ok(None),
        }
    }
}

/// The name in a function ARN (qualified or not), or the name itself.
pub fn function_name(function: &str) -> &str {
    match function.split(':').collect::<Vec<_>>().as_slice() {
        ["arn", _, "lambda", _, _, "function", name, ..] => name,
        _ => function,
    }
}

/// Ids of the deployments that have not finished, in one deployment group or (without one) in
/// the whole region, every page.
pub async fn in_flight_ids(
    client: &aws_sdk_codedeploy::Client,
    group: Option<(&str, &str)>,
) -> Result<Vec<String>, LookupError> {
    let mut request = client
        .list_deployments()
        .set_include_only_statuses(Some(IN_FLIGHT.to_vec()));
    if let Some((application, deployment_group)) = group {
        request = request
            .application_name(application)
            .deployment_group_name(deployment_group);
    }
    let mut pages = request.into_paginator().send();
    let mut ids = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(lookup_error("ListDeployments", None))?;
        ids.extend(page.deployments.unwrap_or_default());
    }
    Ok(ids)
}

/// The deployments behind `ids` (`BatchGetDeployments`, 25 at a time, concurrently).
pub async fn describe(
    client: &aws_sdk_codedeploy::Client,
    ids: &[String],
) -> Result<Vec<Deployment>, LookupError> {
    let batches = ids.chunks(BATCH).map(|chunk| {
        client
            .batch_get_deployments()
            .set_deployment_ids(Some(chunk.to_vec()))
            .send()
    });
    let mut found = Vec::with_capacity(ids.len());
    for out in futures::future::join_all(batches).await {
        let out = out.map_err(lookup_error("BatchGetDeployments", None))?;
        found.extend(out.deployments_info().iter().map(Deployment::from_info));
    }
    Ok(found)
}

/// An in-flight deployment that shifts a given alias, with what it does to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AliasDeployment {
    pub deployment: Deployment,
    pub target: LambdaTarget,
}

/// Every unfinished Lambda deployment that shifts `function:alias`. Deployments on other compute
/// platforms are skipped from `BatchGetDeployments` alone, without reading their (instance)
/// targets; a Lambda deployment whose target cannot be read is an error, never "someone else's".
pub async fn in_flight_for_alias(
    client: &aws_sdk_codedeploy::Client,
    group: Option<(&str, &str)>,
    function: &str,
    alias: &str,
) -> Result<Vec<AliasDeployment>, LookupError> {
    let ids = in_flight_ids(client, group).await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let deployments: Vec<Deployment> = describe(client, &ids)
        .await?
        .into_iter()
        .filter(Deployment::is_lambda)
        .collect();
    let wanted = function_name(function);
    let targets = futures::future::join_all(
        deployments
            .iter()
            .map(|d| async move { (d, lambda_target(client, &d.id).await) }),
    )
    .await;
    let mut found = Vec::new();
    for (deployment, target) in targets {
        match target? {
            Some(t)
                if function_name(&t.function) == wanted && t.alias.as_deref() == Some(alias) =>
            {
                found.push(AliasDeployment {
                    deployment: deployment.clone(),
                    target: t,
                })
            }
            _ => {}
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_from_arns() {
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:checkout"),
            "checkout"
        );
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:123456789012:function:checkout:live"),
            "checkout"
        );
        assert_eq!(function_name("checkout"), "checkout");
    }

    #[test]
    fn rollback_deployments_are_recognised_by_creator_or_link() {
        let mut d = Deployment {
            id: "d-1".into(),
            status: None,
            creator: Some("user".into()),
            compute_platform: Some("Lambda".into()),
            create_time_ms: None,
            rollback_triggering_deployment_id: None,
            rollback_deployment_id: Some("d-2".into()),
            description: None,
        };
        assert!(
            !d.is_rollback(),
            "a rolled-back deployment is not itself a rollback"
        );
        d.creator = Some("codeDeployRollback".into());
        assert!(d.is_rollback());
        d.creator = None;
        d.rollback_triggering_deployment_id = Some("d-0".into());
        assert!(d.is_rollback());
    }
}

//! Finding what is being deployed from nothing but the deployment id.

use serde::Serialize;
use shiftguard_common::codedeploy;
use shiftguard_common::error_text;
use tracing::{info, warn};

use crate::Clients;

/// The deployment target as the environment gives it (`TARGET_FUNCTION`, `TARGET_VERSION`, …),
/// when the hook does not look it up from CodeDeploy.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvTarget {
    pub function: String,
    pub alias: Option<String>,
    pub version: String,
    pub current_version: Option<String>,
}

/// The function version under deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentTarget {
    pub function: String,
    pub alias: Option<String>,
    pub current_version: Option<String>,
    pub target_version: String,
    /// Which source gave the answer.
    pub source: Source,
    /// A CodeDeploy rollback deployment (its hooks run too); `None` when `GetDeployment` could
    /// not be read, so nobody can say — and nothing is promoted on that.
    pub is_rollback: Option<bool>,
    /// The deployment's description and who created it (`user`, `CloudFormation`, …), from
    /// `GetDeployment`: the emergency bypass reads the description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_creator: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    DeploymentTarget,
    AppSpec,
    Environment,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot tell which version deployment {deployment_id} deploys: {reasons}")]
pub struct DiscoveryError {
    pub deployment_id: String,
    pub reasons: String,
}

/// `ListDeploymentTargets` + `GetDeploymentTarget`; else `GetDeployment` + `GetApplicationRevision`
/// (the AppSpec, JSON or YAML); else the environment (`TARGET_FUNCTION`, `TARGET_VERSION`, …).
/// Whether this is CodeDeploy's own rollback deployment comes from `GetDeployment`, read by the same
/// code rollback uses ([`shiftguard_common::codedeploy`]).
pub async fn discover(
    clients: &Clients,
    deployment_id: &str,
    env_target: Option<&EnvTarget>,
) -> Result<DeploymentTarget, DiscoveryError> {
    let mut reasons = Vec::new();
    let (from_targets, deployment) = tokio::join!(
        from_deployment_target(clients, deployment_id),
        codedeploy::get_deployment(&clients.codedeploy, deployment_id),
    );
    let facts = deployment
        .as_ref()
        .ok()
        .map(codedeploy::Deployment::from_info);
    let is_rollback = facts.as_ref().map(|d| d.is_rollback());

    let found = match from_targets {
        Ok(t) => Some(t),
        Err(e) => {
            reasons.push(format!("deployment targets: {e}"));
            match &deployment {
                Ok(info) => match from_appspec(clients, info).await {
                    Ok(t) => Some(t),
                    Err(e) => {
                        reasons.push(format!("AppSpec: {e}"));
                        None
                    }
                },
                Err(e) => {
                    reasons.push(e.to_string());
                    None
                }
            }
        }
    };
    let found = found.or_else(|| {
        env_target.map(|t| DeploymentTarget {
            function: t.function.clone(),
            alias: t.alias.clone(),
            current_version: t.current_version.clone(),
            target_version: t.version.clone(),
            source: Source::Environment,
            is_rollback: None,
            deployment_description: None,
            deployment_creator: None,
        })
    });
    match found {
        Some(mut target) => {
            target.is_rollback = is_rollback;
            target.deployment_description = facts.as_ref().and_then(|d| d.description.clone());
            target.deployment_creator = facts.as_ref().and_then(|d| d.creator.clone());
            if !reasons.is_empty() {
                warn!(deployment_id, source = ?target.source, earlier = %reasons.join("; "), "fell back to a later discovery source");
            }
            info!(
                deployment_id, source = ?target.source, function = %target.function, alias = ?target.alias,
                current_version = ?target.current_version, target_version = %target.target_version,
                rollback_deployment = ?is_rollback, "found the version under deployment"
            );
            Ok(target)
        }
        None => {
            reasons.push("environment: TARGET_FUNCTION and TARGET_VERSION are not set".into());
            Err(DiscoveryError {
                deployment_id: deployment_id.into(),
                reasons: reasons.join("; "),
            })
        }
    }
}

async fn from_deployment_target(
    clients: &Clients,
    deployment_id: &str,
) -> Result<DeploymentTarget, String> {
    let info = codedeploy::lambda_target(&clients.codedeploy, deployment_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the deployment has no Lambda target")?;
    Ok(DeploymentTarget {
        function: info.function,
        alias: info.alias,
        current_version: info.current_version,
        target_version: info.target_version.ok_or("no targetVersion")?,
        source: Source::DeploymentTarget,
        is_rollback: None,
        deployment_description: None,
        deployment_creator: None,
    })
}

async fn from_appspec(
    clients: &Clients,
    info: &aws_sdk_codedeploy::types::DeploymentInfo,
) -> Result<DeploymentTarget, String> {
    let revision = info
        .revision
        .clone()
        .ok_or("the deployment has no revision")?;
    // GetDeployment's appSpecContent is documented as always null: the AppSpec comes from
    // GetApplicationRevision.
    let out = clients
        .codedeploy
        .get_application_revision()
        .set_application_name(info.application_name.clone())
        .revision(revision)
        .send()
        .await
        .map_err(|e| error_text(&e))?;
    let rev = out
        .revision
        .ok_or("GetApplicationRevision returned no revision")?;
    // SAM's deployments still arrive as the deprecated `String` revision type; read both.
    #[allow(deprecated)]
    let content = rev
        .app_spec_content
        .and_then(|c| c.content)
        .or_else(|| rev.string.and_then(|s| s.content))
        .ok_or("the revision has no AppSpec content")?;
    parse_appspec(&content)
}

/// The Lambda resource of an AppSpec (JSON or YAML).
pub fn parse_appspec(content: &str) -> Result<DeploymentTarget, String> {
    let spec: serde_json::Value = serde_yaml_ng::from_str(content)
        .map_err(|e| format!("the AppSpec is neither JSON nor YAML: {e}"))?;
    let resources = spec
        .get("Resources")
        .and_then(|r| r.as_array())
        .ok_or("the AppSpec has no Resources list")?;
    for resource in resources {
        for body in resource.as_object().into_iter().flat_map(|o| o.values()) {
            if body.get("Type").and_then(|t| t.as_str()) != Some("AWS::Lambda::Function") {
                continue;
            }
            let props = body
                .get("Properties")
                .ok_or("the Lambda resource has no Properties")?;
            let text = |k: &str| {
                props.get(k).and_then(|v| match v {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
            };
            return Ok(DeploymentTarget {
                function: text("Name").ok_or("Properties.Name is missing")?,
                alias: text("Alias"),
                current_version: text("CurrentVersion"),
                target_version: text("TargetVersion")
                    .ok_or("Properties.TargetVersion is missing")?,
                source: Source::AppSpec,
                is_rollback: None,
                deployment_description: None,
                deployment_creator: None,
            });
        }
    }
    Err("the AppSpec names no AWS::Lambda::Function resource".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appspec_yaml_and_json() {
        let yaml = "version: 0.0\nResources:\n  - checkout:\n      Type: AWS::Lambda::Function\n      Properties:\n        Name: checkout\n        Alias: live\n        CurrentVersion: 1\n        TargetVersion: 2\nHooks:\n  - BeforeAllowTraffic: CodeDeployHook_pre\n";
        let t = parse_appspec(yaml).unwrap();
        assert_eq!(
            (
                t.function.as_str(),
                t.target_version.as_str(),
                t.current_version.as_deref()
            ),
            ("checkout", "2", Some("1"))
        );
        let json = r#"{"version":0.0,"Resources":[{"fn":{"Type":"AWS::Lambda::Function","Properties":{"Name":"f","Alias":"live","CurrentVersion":"3","TargetVersion":"4"}}}]}"#;
        assert_eq!(parse_appspec(json).unwrap().target_version, "4");
        assert!(parse_appspec("{\"Resources\":[]}").is_err());
    }
}

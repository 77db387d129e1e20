//! The emergency bypass, on the record: during an incident the fix must ship even if a check is
//! flaky. Off unless the user turns it on (`HOOK_ALLOW_SKIP=true`; the CDK construct's and the SAM
//! application's `allowSkip`). Then `[shiftguard skip]` in **the deployment's own description**
//! makes the hook report `Succeeded` without running its required checks (advisory ones still
//! run and are reported), for that deployment only: a description belongs to one deployment id,
//! where a version's description never changes and would skip every later deployment of it, so
//! a version description is never read. It is logged as a warning with who and what asked, kept in
//! the summary, and counted in the decision metrics (outcome `bypassed`).

use serde::Serialize;

/// The marker, matched case-insensitively anywhere in a description.
pub const SKIP_MARKER: &str = "[shiftguard skip]";

/// Who asked for the bypass, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bypass {
    /// Always `deployment-description`.
    pub source: &'static str,
    /// The deployment the bypass is valid for (the one whose description carries the marker).
    pub deployment_id: String,
    /// The description that carried the marker (clipped).
    pub description: String,
    /// The version under deployment.
    pub version: String,
    /// CodeDeploy's `creator` of the deployment (`user`, `CloudFormation`, …); the IAM identity
    /// is in CloudTrail's `CreateDeployment` event, not in any API the hook can read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment_creator: Option<String>,
}

fn carries_marker(text: &str) -> bool {
    text.to_ascii_lowercase().contains(SKIP_MARKER)
}

/// Whether this deployment's description asks for the bypass. Pure.
pub fn requested(
    deployment_id: &str,
    version: &str,
    deployment_description: Option<&str>,
    deployment_creator: Option<&str>,
) -> Option<Bypass> {
    let text = deployment_description.filter(|d| carries_marker(d))?;
    let mut description: String = text.chars().take(300).collect();
    if description.len() < text.len() {
        description.push('…');
    }
    Some(Bypass {
        source: "deployment-description",
        deployment_id: deployment_id.to_string(),
        description,
        version: version.to_string(),
        deployment_creator: deployment_creator.map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_deployments_own_description_asks_for_the_bypass() {
        // (deployment description, bypassed)
        let cases = [
            (None, false),
            (Some("release 1.2.3"), false),
            (Some("[ShiftGuard Skip] by alice, INC-42"), true),
            (Some("hotfix [shiftguard skip]"), true),
            (Some("shiftguard skip"), false),
        ];
        for (deployment, want) in cases {
            let got = requested("d-ABCDEFGHI", "7", deployment, Some("user"));
            assert_eq!(got.is_some(), want, "{deployment:?}");
            if let Some(b) = got {
                assert_eq!(b.source, "deployment-description");
                assert_eq!(b.deployment_id, "d-ABCDEFGHI");
                assert_eq!(b.version, "7");
                assert_eq!(b.deployment_creator.as_deref(), Some("user"));
            }
        }
    }

    #[test]
    fn long_descriptions_are_clipped_on_a_character_boundary() {
        let long = format!("[shiftguard skip] {}", "é".repeat(400));
        let b = requested("d-ABCDEFGHI", "1", Some(&long), None).unwrap();
        assert!(b.description.ends_with('…'));
        assert_eq!(b.description.chars().count(), 301);
    }
}

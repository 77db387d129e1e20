//! The emergency bypass, on the record: during an incident the fix must ship even if a check is
//! flaky. `[shiftguard skip]` in the new version's description (SAM: `VersionDescription`) or in
//! the deployment's description makes the hook report `Succeeded` without running its required
//! checks (advisory ones still run and are reported). It is logged as a warning with who and what
//! asked, kept in the summary, and counted in the decision metrics (outcome `bypassed`). Off with
//! `HOOK_ALLOW_SKIP=false`.

use serde::Serialize;

/// The marker, matched case-insensitively anywhere in a description.
pub const SKIP_MARKER: &str = "[shiftguard skip]";

/// Who asked for the bypass, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bypass {
    /// `version-description` or `deployment-description`.
    pub source: &'static str,
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

/// Whether the descriptions ask for the bypass. Pure. The version's description wins when both
/// do (it is the more specific request).
pub fn requested(
    version: &str,
    version_description: Option<&str>,
    deployment_description: Option<&str>,
    deployment_creator: Option<&str>,
) -> Option<Bypass> {
    let (source, text) = match (version_description, deployment_description) {
        (Some(v), _) if carries_marker(v) => ("version-description", v),
        (_, Some(d)) if carries_marker(d) => ("deployment-description", d),
        _ => return None,
    };
    let mut description: String = text.chars().take(300).collect();
    if description.len() < text.len() {
        description.push('…');
    }
    Some(Bypass {
        source,
        description,
        version: version.to_string(),
        deployment_creator: deployment_creator.map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_in_either_description_asks_for_the_bypass() {
        // (version description, deployment description, source or none)
        let cases = [
            (None, None, None),
            (Some("v1.2.3 hotfix"), Some("release"), None),
            (
                Some("hotfix [shiftguard skip] INC-42"),
                None,
                Some("version-description"),
            ),
            (
                None,
                Some("[ShiftGuard Skip] by alice"),
                Some("deployment-description"),
            ),
            (
                Some("[shiftguard skip]"),
                Some("[shiftguard skip]"),
                Some("version-description"),
            ),
            (Some("shiftguard skip"), None, None),
        ];
        for (version, deployment, want) in cases {
            let got = requested("7", version, deployment, Some("user"));
            assert_eq!(
                got.as_ref().map(|b| b.source),
                want,
                "{version:?} {deployment:?}"
            );
            if let Some(b) = got {
                assert_eq!(b.version, "7");
                assert_eq!(b.deployment_creator.as_deref(), Some("user"));
            }
        }
    }

    #[test]
    fn long_descriptions_are_clipped_on_a_character_boundary() {
        let long = format!("[shiftguard skip] {}", "é".repeat(400));
        let b = requested("1", Some(&long), None, None).unwrap();
        assert!(b.description.ends_with('…'));
        assert_eq!(b.description.chars().count(), 301);
    }
}

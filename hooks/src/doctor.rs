//! `doctor` for a hook: `{"shiftguard": "doctor"}` checks the hook's check set against the
//! account, reading only — every function a check names exists (a typo in `functions` would fail
//! every deployment of the real function with "no check applies"), and every log group a `logs`
//! check reads is there. A serious finding fails the invocation with `Hook.DoctorFoundProblems`.
//!
//! [`gather`] reads; [`diagnose`] is pure.

use std::collections::BTreeMap;

use serde::Serialize;
use shiftguard_common::doctor::{settle, Finding, Severity};

use crate::config::{CheckKind, HookConfig};
use crate::{Clients, Phase};

/// How one read went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    Found,
    Missing(String),
    Denied(String),
    Failed(String),
}

#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Each function a check names (in `functions`) → whether it exists.
    pub functions: BTreeMap<String, Read>,
    /// Each log group a `logs` check reads → whether it exists.
    pub log_groups: BTreeMap<String, Read>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HookDoctorReport {
    pub doctor: &'static str,
    pub healthy: bool,
    pub serious: usize,
    pub warnings: usize,
    pub checks: usize,
    pub functions_checked: usize,
    pub findings: Vec<Finding>,
}

fn function_name(f: &str) -> &str {
    shiftguard_common::codedeploy::function_name(f)
}

/// The log groups a `logs` check reads, by the functions it names (none when it names none: it
/// reads the deployed function's, known only at deployment).
fn log_groups_of(kind: &CheckKind, functions: Option<&Vec<String>>) -> Vec<String> {
    let CheckKind::Logs(l) = kind else {
        return Vec::new();
    };
    match (&l.log_group, functions) {
        (Some(group), _) => vec![group.clone()],
        (None, Some(fs)) => fs
            .iter()
            .map(|f| format!("/aws/lambda/{}", function_name(f)))
            .collect(),
        (None, None) => Vec::new(),
    }
}

/// The judgement of what was read. Pure.
pub fn diagnose(config: &HookConfig, facts: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    for check in &config.checks.checks {
        for f in check.functions.iter().flatten() {
            let name = function_name(f);
            let (severity, check_name, message) = match facts.functions.get(name) {
                Some(Read::Missing(why)) => (Severity::Serious, "check-function", format!(
                    "check {:?} runs for {name}, which does not exist ({why}): a typo here means the real function's deployments find no check and fail", check.name)),
                Some(Read::Denied(why)) => (Severity::Serious, "permission", format!(
                    "check {:?}: this hook may not read {name} ({why}): its checks would fail too", check.name)),
                Some(Read::Failed(why)) => (Severity::Warning, "check-function", format!("could not be read: {why}")),
                Some(Read::Found) | None => continue,
            };
            out.push(Finding {
                severity,
                check: check_name,
                subject: name.to_string(),
                message,
            });
        }
        for group in log_groups_of(&check.kind, check.functions.as_ref()) {
            let (severity, message) = match facts.log_groups.get(&group) {
                Some(Read::Missing(why)) => (Severity::Serious, format!(
                    "logs check {:?} reads {group}, which does not exist ({why}): it could never find a line", check.name)),
                Some(Read::Denied(why)) => (Severity::Serious, format!(
                    "logs check {:?} may not read {group} ({why})", check.name)),
                Some(Read::Failed(why)) => (Severity::Warning, format!("could not be read: {why}")),
                Some(Read::Found) | None => continue,
            };
            out.push(Finding {
                severity,
                check: "log-group",
                subject: group,
                message,
            });
        }
    }
    settle(out).0
}

pub fn report(config: &HookConfig, facts: &Facts, phase: Phase) -> HookDoctorReport {
    let (findings, serious) = settle(diagnose(config, facts));
    HookDoctorReport {
        doctor: match phase {
            Phase::PreTraffic => "pre-traffic",
            Phase::PostTraffic => "post-traffic",
        },
        healthy: serious == 0,
        serious,
        warnings: findings.len() - serious,
        checks: config.checks.checks.len(),
        functions_checked: facts.functions.len(),
        findings,
    }
}

fn read_of<E, R>(err: &aws_sdk_lambda::error::SdkError<E, R>, missing: &str) -> Read
where
    E: std::error::Error + aws_smithy_types::error::metadata::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    let (code, text) = match err.as_service_error() {
        Some(e) => (
            e.code().unwrap_or_default().to_string(),
            format!(
                "{}: {}",
                e.code().unwrap_or("error"),
                e.message().unwrap_or_default()
            ),
        ),
        None => (String::new(), shiftguard_common::error_text(err)),
    };
    if code == missing {
        Read::Missing(text)
    } else if code.contains("AccessDenied") {
        Read::Denied(text)
    } else {
        Read::Failed(text)
    }
}

/// The reads `diagnose` needs; none changes anything. A function is read as `$LATEST` (what the
/// hook's role may read: the function's versions).
pub async fn gather(clients: &Clients, config: &HookConfig) -> Facts {
    let mut facts = Facts::default();
    for check in &config.checks.checks {
        for f in check.functions.iter().flatten() {
            let name = function_name(f).to_string();
            if facts.functions.contains_key(&name) {
                continue;
            }
            let read = match clients
                .lambda
                .get_function()
                .function_name(&name)
                .qualifier("$LATEST")
                .send()
                .await
            {
                Ok(_) => Read::Found,
                Err(e) => read_of(&e, "ResourceNotFoundException"),
            };
            facts.functions.insert(name, read);
        }
        for group in log_groups_of(&check.kind, check.functions.as_ref()) {
            if facts.log_groups.contains_key(&group) {
                continue;
            }
            // One line at most, from now: reads nothing that matters, answers whether it exists.
            let now = shiftguard_common::emf::now_ms();
            let read = match clients
                .logs()
                .filter_log_events()
                .log_group_name(&group)
                .start_time(now - 60_000)
                .end_time(now)
                .limit(1)
                .send()
                .await
            {
                Ok(_) => Read::Found,
                Err(e) => read_of(&e, "ResourceNotFoundException"),
            };
            facts.log_groups.insert(group, read);
        }
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(checks: &str) -> HookConfig {
        HookConfig::from_vars(&[("HOOK_CHECKS", checks)][..]).unwrap()
    }

    #[test]
    fn a_missing_function_or_log_group_is_serious_and_a_sound_set_is_healthy() {
        let c = config(
            r#"{"checks": [{"name": "smoke", "kind": "invoke", "functions": ["checkout", "chekout"]},
                           {"name": "errors", "kind": "logs", "functions": ["checkout"]},
                           {"name": "all", "kind": "invoke"}]}"#,
        );
        let mut facts = Facts::default();
        facts.functions.insert("checkout".into(), Read::Found);
        facts.functions.insert(
            "chekout".into(),
            Read::Missing("ResourceNotFoundException: Function not found".into()),
        );
        facts.log_groups.insert(
            "/aws/lambda/checkout".into(),
            Read::Missing(
                "ResourceNotFoundException: The specified log group does not exist.".into(),
            ),
        );
        let r = report(&c, &facts, Phase::PreTraffic);
        assert_eq!(r.serious, 2, "{r:#?}");
        assert_eq!(
            r.findings
                .iter()
                .map(|f| (f.check, f.subject.as_str()))
                .collect::<Vec<_>>(),
            vec![
                ("log-group", "/aws/lambda/checkout"),
                ("check-function", "chekout")
            ]
        );
        assert!(r.findings[1].message.contains("a typo here"), "{r:#?}");
        facts.functions.insert("chekout".into(), Read::Found);
        facts
            .log_groups
            .insert("/aws/lambda/checkout".into(), Read::Found);
        let r = report(&c, &facts, Phase::PreTraffic);
        assert!(r.healthy && r.findings.is_empty(), "{r:#?}");
        assert_eq!(r.checks, 3);
        // Denied reads are serious (the checks would be denied too); failed reads are warnings.
        facts.functions.insert(
            "checkout".into(),
            Read::Denied("AccessDeniedException".into()),
        );
        facts.log_groups.insert(
            "/aws/lambda/checkout".into(),
            Read::Failed("throttled".into()),
        );
        let r = report(&c, &facts, Phase::PostTraffic);
        assert_eq!(
            (r.serious, r.warnings, r.doctor),
            (2, 1, "post-traffic"), // two checks name checkout: each is told
            "{r:#?}"
        );
    }
}

//! What `doctor` (`{"shiftguard": "doctor"}`, sent to rollback or a hook) says: findings, each
//! serious (the safety net would not work: the invocation fails) or a warning (worth a look).

use serde::Serialize;

/// The event that asks a ShiftGuard function to check its own configuration against the account.
pub fn is_doctor_event(event: &serde_json::Value) -> bool {
    event.get("shiftguard").and_then(|v| v.as_str()) == Some("doctor")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The net would not work when it must: fails the check.
    Serious,
    /// Worth a look; not provably wrong (e.g. no data published yet).
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub severity: Severity,
    /// What was checked (e.g. `alarm-dimensions`, `target-exists`, `check-function`).
    pub check: &'static str,
    /// The alarm, target, function or log group it is about.
    pub subject: String,
    pub message: String,
}

/// Findings sorted (serious first) and deduplicated, and how many are serious.
pub fn settle(mut findings: Vec<Finding>) -> (Vec<Finding>, usize) {
    findings
        .sort_by(|a, b| (a.severity, &a.subject, a.check).cmp(&(b.severity, &b.subject, b.check)));
    findings.dedup();
    let serious = findings
        .iter()
        .filter(|f| f.severity == Severity::Serious)
        .count();
    (findings, serious)
}

/// Logs each finding and the verdict, and gives the report as the invocation's answer: `Ok` when
/// nothing is serious, else `Err((serious, report as JSON text))` for the caller's own
/// `…DoctorFoundProblems` error.
pub fn conclude<R: Serialize>(
    report: &R,
    findings: &[Finding],
    serious: usize,
) -> Result<serde_json::Value, (usize, String)> {
    for f in findings {
        tracing::warn!(check = f.check, subject = %f.subject, severity = ?f.severity, action = "doctor", outcome = "finding", "{}", f.message);
    }
    tracing::info!(
        action = "doctor",
        healthy = serious == 0,
        serious,
        warnings = findings.len() - serious,
        "doctor checked the configuration"
    );
    let value = serde_json::to_value(report).unwrap_or_default();
    if serious > 0 {
        return Err((serious, value.to_string()));
    }
    Ok(value)
}

//! An operator's rollback: during an incident, roll back *now* without waiting for an alarm.
//!
//! `{"shiftguard": "rollback", "targets": ["lambda-alias:checkout:live"], "reason": "INC-42 5xx",
//! "requestedBy": "alice"}` through `aws lambda invoke` or `cargo lambda invoke`. It goes through
//! exactly the decisions an alarm does, for configured targets only (named by the ids the summary
//! shows), and the reason and requester are in the summary, the logs and the notification.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::EventError;

/// The documented operator event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperatorRequest {
    /// Always `"rollback"`.
    pub shiftguard: String,
    /// Target ids as rollback names them: `lambda-alias:FUNCTION:ALIAS`,
    /// `lattice-listener:SERVICE/LISTENER`, `apigateway-canary:API/STAGE`.
    pub targets: Vec<String>,
    /// Why: kept in the record.
    pub reason: String,
    /// Who: kept in the record.
    pub requested_by: String,
}

/// `None` when the event is not an operator request (then it is an alarm envelope).
pub fn parse(event: &Value) -> Result<Option<OperatorRequest>, EventError> {
    let Some(obj) = event.as_object() else {
        return Ok(None);
    };
    if !obj.contains_key("shiftguard") {
        return Ok(None);
    }
    let bad = |at: &str, problem: String| EventError::Invalid {
        at: at.into(),
        problem,
    };
    let request: OperatorRequest = serde_path_to_error::deserialize(event)
        .map_err(|e| {
            let at = e.path().to_string();
            bad(
                if at == "." { "operator request" } else { &at },
                format!(
                    "{} (an operator rollback is {{\"shiftguard\": \"rollback\", \"targets\": [\"lambda-alias:FUNCTION:ALIAS\"], \"reason\": \"…\", \"requestedBy\": \"…\"}})",
                    e.into_inner()
                ),
            )
        })?;
    if request.shiftguard != "rollback" {
        return Err(bad(
            "shiftguard",
            format!("expected \"rollback\", got {:?}", request.shiftguard),
        ));
    }
    if request.targets.is_empty() {
        return Err(bad(
            "targets",
            "is empty: name the targets to roll back, as the summary names them".into(),
        ));
    }
    for (i, t) in request.targets.iter().enumerate() {
        if t.trim().is_empty() {
            return Err(bad(&format!("targets[{i}]"), "is blank".into()));
        }
    }
    for (field, value) in [
        ("reason", &request.reason),
        ("requestedBy", &request.requested_by),
    ] {
        if value.trim().is_empty() {
            return Err(bad(
                field,
                "is required: an operator rollback is on the record (who and why)".into(),
            ));
        }
        if value.chars().count() > 1024 {
            return Err(bad(field, "is longer than 1024 characters".into()));
        }
    }
    Ok(Some(request))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_parse_and_bad_ones_name_the_field() {
        let ok = json!({"shiftguard": "rollback", "targets": ["lambda-alias:checkout:live"], "reason": "INC-42", "requestedBy": "alice"});
        assert_eq!(parse(&ok).unwrap().unwrap().requested_by, "alice");
        assert_eq!(parse(&json!({"Records": []})).unwrap(), None);
        let cases = [
            (
                json!({"shiftguard": "promote", "targets": ["x"], "reason": "r", "requestedBy": "a"}),
                "shiftguard",
            ),
            (
                json!({"shiftguard": "rollback", "targets": [], "reason": "r", "requestedBy": "a"}),
                "targets",
            ),
            (
                json!({"shiftguard": "rollback", "targets": [" "], "reason": "r", "requestedBy": "a"}),
                "targets[0]",
            ),
            (
                json!({"shiftguard": "rollback", "targets": ["x"], "reason": " ", "requestedBy": "a"}),
                "reason",
            ),
            (
                json!({"shiftguard": "rollback", "targets": ["x"], "reason": "r"}),
                "requestedBy",
            ),
            (
                json!({"shiftguard": "rollback", "targets": ["x"], "reason": "r", "requestedBy": "a", "force": true}),
                "force",
            ),
            (
                json!({"shiftguard": "rollback", "targets": "x", "reason": "r", "requestedBy": "a"}),
                "targets",
            ),
        ];
        for (event, field) in cases {
            let err = parse(&event).unwrap_err().to_string();
            assert!(err.contains(field), "{event}: {err}");
        }
    }
}

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
    /// Who: kept in the record (as the caller states it; the IAM identity that invoked the
    /// function is in CloudTrail).
    pub requested_by: String,
    /// When it was asked (RFC 3339). It stands for the alarm's time in the decisions (a CodeDeploy
    /// deployment created after it is left alone), so a retry of the same request decides the
    /// same way; without it, the time rollback receives the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<String>,
}

/// A request older than this is refused: a retry an hour later must not undo what people did
/// since (a redeploy of the fix). Send a new request.
pub const MAX_REQUEST_AGE_MS: i64 = 15 * 60 * 1000;
/// Clocks differ a little; a request from further in the future is a mistake.
const MAX_CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

/// The time that stands for the alarm's: `requestedAt` if given (and not too old or in the
/// future), else `now_ms`. Pure.
pub fn request_time(request: &OperatorRequest, now_ms: i64) -> Result<i64, EventError> {
    let Some(raw) = &request.requested_at else {
        return Ok(now_ms);
    };
    let at = crate::event::parse_time_ms(raw).ok_or_else(|| EventError::Invalid {
        at: "requestedAt".into(),
        problem: format!("expected an RFC 3339 time such as 2026-11-22T14:05:00Z, got {raw:?}"),
    })?;
    if now_ms - at > MAX_REQUEST_AGE_MS {
        return Err(EventError::Invalid {
            at: "requestedAt".into(),
            problem: format!(
                "the request is {} minutes old; an operator rollback is acted on within {} minutes of being asked, so that a late retry never undoes what was done since: send a new request",
                (now_ms - at) / 60_000,
                MAX_REQUEST_AGE_MS / 60_000
            ),
        });
    }
    if at - now_ms > MAX_CLOCK_SKEW_MS {
        return Err(EventError::Invalid {
            at: "requestedAt".into(),
            problem: format!("{raw:?} is in the future"),
        });
    }
    Ok(at)
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
        // (event, the start of the error: the field it names)
        let cases = [
            (
                json!({"shiftguard": "promote", "targets": ["x"], "reason": "r", "requestedBy": "a"}),
                "shiftguard: expected",
            ),
            (
                json!({"shiftguard": "rollback", "targets": [], "reason": "r", "requestedBy": "a"}),
                "targets: is empty",
            ),
            (
                json!({"shiftguard": "rollback", "targets": [" "], "reason": "r", "requestedBy": "a"}),
                "targets[0]: is blank",
            ),
            (
                json!({"shiftguard": "rollback", "targets": ["x"], "reason": " ", "requestedBy": "a"}),
                "reason: is required",
            ),
            (
                json!({"shiftguard": "rollback", "targets": ["x"], "reason": "r"}),
                "operator request: missing field `requestedBy`",
            ),
            (
                json!({"shiftguard": "rollback", "targets": ["x"], "requestedBy": "a"}),
                "operator request: missing field `reason`",
            ),
            (
                json!({"shiftguard": "rollback", "targets": ["x"], "reason": "r", "requestedBy": "a", "force": true}),
                "force: unknown field `force`",
            ),
            (
                json!({"shiftguard": "rollback", "targets": "x", "reason": "r", "requestedBy": "a"}),
                "targets: invalid type",
            ),
        ];
        for (event, start) in cases {
            let err = parse(&event).unwrap_err().to_string();
            assert!(err.starts_with(start), "{event}: {err}");
        }
    }

    #[test]
    fn the_request_time_stands_for_the_alarm_and_old_requests_are_refused() {
        let now = crate::event::parse_time_ms("2026-11-22T14:30:00Z").unwrap();
        let at = |t: Option<&str>| OperatorRequest {
            shiftguard: "rollback".into(),
            targets: vec!["x".into()],
            reason: "r".into(),
            requested_by: "a".into(),
            requested_at: t.map(str::to_string),
        };
        assert_eq!(request_time(&at(None), now).unwrap(), now);
        assert_eq!(
            request_time(&at(Some("2026-11-22T14:25:00Z")), now).unwrap(),
            now - 5 * 60 * 1000,
            "a retry decides with the original time"
        );
        let old = request_time(&at(Some("2026-11-22T13:30:00Z")), now).unwrap_err();
        assert!(
            old.to_string()
                .starts_with("requestedAt: the request is 60 minutes old"),
            "{old}"
        );
        assert!(request_time(&at(Some("2026-11-22T15:30:00Z")), now).is_err());
        assert!(request_time(&at(Some("yesterday")), now)
            .unwrap_err()
            .to_string()
            .starts_with("requestedAt"));
    }
}

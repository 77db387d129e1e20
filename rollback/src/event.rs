//! Alarm notifications, in the three envelopes CloudWatch delivers them in, reduced to the few
//! facts rollback acts on.
//!
//! Parsing is deliberately lenient about fields rollback does not need (real notifications carry
//! `AlarmDescription: null`, anomaly alarms have no `Threshold`, composite alarms no `Trigger`) and
//! strict about the ones it does: the alarm's name and its new state.

use serde::Serialize;
use serde_json::Value;

/// What went wrong with an incoming event. Each says where in the event the problem is.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error("the event is not a JSON object")]
    NotAnObject,
    #[error("unknown event envelope: expected SNS `Records`, a CloudWatch alarm action (`source: aws.cloudwatch` with `alarmData`) or an EventBridge `CloudWatch Alarm State Change`; {0}")]
    UnknownEnvelope(String),
    #[error("the SNS event has no records")]
    EmptyRecords,
    #[error("the event is not JSON: {0}")]
    NotJson(String),
    #[error("{at}: {problem}")]
    Invalid { at: String, problem: String },
}

fn invalid(at: impl Into<String>, problem: impl Into<String>) -> EventError {
    EventError::Invalid {
        at: at.into(),
        problem: problem.into(),
    }
}

/// A CloudWatch alarm state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmState {
    Ok,
    Alarm,
    InsufficientData,
}

impl AlarmState {
    fn parse(raw: &str, at: &str) -> Result<Self, EventError> {
        match raw {
            "OK" => Ok(Self::Ok),
            "ALARM" => Ok(Self::Alarm),
            "INSUFFICIENT_DATA" => Ok(Self::InsufficientData),
            other => Err(invalid(
                at,
                format!("unknown alarm state {other:?} (expected OK, ALARM or INSUFFICIENT_DATA)"),
            )),
        }
    }
}

/// How the notification reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Envelope {
    Sns,
    AlarmAction,
    EventBridge,
}

/// The kind of alarm, for the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlarmKind {
    SingleMetric,
    MetricMath,
    AnomalyDetection,
    Composite,
}

/// One alarm state change.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmTransition {
    pub alarm_name: String,
    pub alarm_arn: Option<String>,
    pub new_state: AlarmState,
    pub old_state: Option<AlarmState>,
    pub kind: AlarmKind,
    pub envelope: Envelope,
    pub reason: Option<String>,
    pub state_change_time: Option<String>,
    /// Taken from the alarm ARN: SNS notifications carry the region only as prose
    /// ("US East (N. Virginia)").
    pub region: Option<String>,
}

impl AlarmTransition {
    /// A change into ALARM from another state. A notification that repeats ALARM is not one.
    pub fn is_transition_into_alarm(&self) -> bool {
        self.new_state == AlarmState::Alarm && self.old_state != Some(AlarmState::Alarm)
    }

    /// When the alarm changed state, in milliseconds since the Unix epoch; `None` when the
    /// notification carries no time or one that does not parse.
    pub fn state_change_ms(&self) -> Option<i64> {
        self.state_change_time.as_deref().and_then(parse_time_ms)
    }
}

/// An RFC 3339 time as CloudWatch writes it: SNS notifications use `2021-02-15T14:57:14.419+0000`
/// (no colon in the offset), alarm actions and EventBridge `2024-01-01T00:00:00.000+0000` or `Z`.
pub fn parse_time_ms(raw: &str) -> Option<i64> {
    use aws_smithy_types::date_time::{DateTime, Format};
    let raw = raw.trim();
    let bytes = raw.as_bytes();
    // `+0000` → `+00:00`, the form RFC 3339 requires.
    let normalised = if bytes.len() > 5
        && matches!(bytes[bytes.len() - 5], b'+' | b'-')
        && bytes[bytes.len() - 4..].iter().all(u8::is_ascii_digit)
    {
        format!("{}:{}", &raw[..raw.len() - 2], &raw[raw.len() - 2..])
    } else {
        raw.to_string()
    };
    DateTime::from_str(&normalised, Format::DateTimeWithOffset)
        .ok()
        .and_then(|t| t.to_millis().ok())
}

/// Parses any supported envelope into its alarm transitions (SNS may batch several records).
pub fn parse_event(event: &Value) -> Result<Vec<AlarmTransition>, EventError> {
    let obj = event.as_object().ok_or(EventError::NotAnObject)?;
    if let Some(records) = obj.get("Records") {
        return parse_sns(records);
    }
    let source = obj.get("source").and_then(Value::as_str);
    if source == Some("aws.cloudwatch") {
        if obj.contains_key("alarmData") {
            return Ok(vec![parse_alarm_action(obj)?]);
        }
        if obj.get("detail-type").and_then(Value::as_str) == Some("CloudWatch Alarm State Change") {
            return Ok(vec![parse_eventbridge(obj)?]);
        }
        return Err(EventError::UnknownEnvelope(
            "source is aws.cloudwatch but there is neither `alarmData` nor detail-type `CloudWatch Alarm State Change`".into(),
        ));
    }
    let described = match (source, obj.get("detail-type").and_then(Value::as_str)) {
        (Some(s), Some(d)) => format!("got source {s:?} with detail-type {d:?}"),
        (Some(s), None) => format!("got source {s:?}"),
        _ => {
            let mut keys: Vec<&str> = obj.keys().map(String::as_str).take(8).collect();
            keys.sort_unstable();
            format!("got an object with keys {keys:?}")
        }
    };
    Err(EventError::UnknownEnvelope(described))
}

fn parse_sns(records: &Value) -> Result<Vec<AlarmTransition>, EventError> {
    let records = records
        .as_array()
        .ok_or_else(|| invalid("Records", "is not an array"))?;
    if records.is_empty() {
        return Err(EventError::EmptyRecords);
    }
    records
        .iter()
        .enumerate()
        .map(|(i, record)| {
            let at = format!("Records[{i}]");
            let message = record
                .get("Sns")
                .ok_or_else(|| invalid(&at, "has no `Sns` object (not an SNS record)"))?
                .get("Message")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("{at}.Sns"), "has no string `Message`"))?;
            let message: Value = serde_json::from_str(message).map_err(|e| {
                invalid(
                    format!("{at}.Sns.Message"),
                    format!("is not a CloudWatch alarm notification: not JSON ({e})"),
                )
            })?;
            parse_sns_alarm_message(&message, &format!("{at}.Sns.Message"))
        })
        .collect()
}

fn parse_sns_alarm_message(msg: &Value, at: &str) -> Result<AlarmTransition, EventError> {
    if !msg.is_object() {
        return Err(invalid(at, "is not a JSON object"));
    }
    let alarm_name = required_str(msg, "AlarmName", at)?;
    let new_state = AlarmState::parse(
        &required_str(msg, "NewStateValue", at)?,
        &format!("{at}.NewStateValue"),
    )?;
    let old_state = optional_state(msg.get("OldStateValue"), &format!("{at}.OldStateValue"))?;
    let kind = if msg.get("AlarmRule").is_some() || msg.get("Trigger").is_none_or(Value::is_null) {
        AlarmKind::Composite
    } else {
        metric_kind(
            msg.pointer("/Trigger/ThresholdMetricId"),
            msg.pointer("/Trigger/Metrics"),
        )
    };
    let alarm_arn = optional_str(msg, "AlarmArn");
    Ok(AlarmTransition {
        region: alarm_arn.as_deref().and_then(region_of_arn),
        alarm_name,
        alarm_arn,
        new_state,
        old_state,
        kind,
        envelope: Envelope::Sns,
        reason: optional_str(msg, "NewStateReason"),
        state_change_time: optional_str(msg, "StateChangeTime"),
    })
}

fn parse_alarm_action(obj: &serde_json::Map<String, Value>) -> Result<AlarmTransition, EventError> {
    let data = object_field(obj, "alarmData")?;
    let mut transition = parse_state_change(data, "alarmData", Envelope::AlarmAction)?;
    transition.alarm_arn = map_str(obj, "alarmArn");
    transition.region =
        map_str(obj, "region").or_else(|| transition.alarm_arn.as_deref().and_then(region_of_arn));
    Ok(transition)
}

fn parse_eventbridge(obj: &serde_json::Map<String, Value>) -> Result<AlarmTransition, EventError> {
    let detail = object_field(obj, "detail")?;
    let mut transition = parse_state_change(detail, "detail", Envelope::EventBridge)?;
    transition.alarm_arn = obj
        .get("resources")
        .and_then(Value::as_array)
        .and_then(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .find(|a| a.contains(":alarm:"))
        })
        .map(String::from);
    transition.region =
        map_str(obj, "region").or_else(|| transition.alarm_arn.as_deref().and_then(region_of_arn));
    Ok(transition)
}

/// The shape shared by the alarm action's `alarmData` and EventBridge's `detail`.
fn parse_state_change(
    data: &Value,
    at: &str,
    envelope: Envelope,
) -> Result<AlarmTransition, EventError> {
    let alarm_name = required_str(data, "alarmName", at)?;
    let state_at = format!("{at}.state.value");
    let state = data
        .pointer("/state/value")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(&state_at, "is missing"))?;
    let new_state = AlarmState::parse(state, &state_at)?;
    let old_state = optional_state(
        data.pointer("/previousState/value"),
        &format!("{at}.previousState.value"),
    )?;
    let config = data.get("configuration");
    let kind = if config.and_then(|c| c.get("alarmRule")).is_some() {
        AlarmKind::Composite
    } else {
        metric_kind(
            config.and_then(|c| c.get("thresholdMetricId")),
            config.and_then(|c| c.get("metrics")),
        )
    };
    Ok(AlarmTransition {
        alarm_name,
        alarm_arn: None,
        new_state,
        old_state,
        kind,
        envelope,
        reason: data
            .pointer("/state/reason")
            .and_then(Value::as_str)
            .map(String::from),
        state_change_time: data
            .pointer("/state/timestamp")
            .and_then(Value::as_str)
            .map(String::from),
        region: None,
    })
}

fn metric_kind(threshold_metric_id: Option<&Value>, metrics: Option<&Value>) -> AlarmKind {
    let expressions: Vec<&str> = metrics
        .and_then(Value::as_array)
        .map(|m| {
            m.iter()
                .filter_map(|q| q.get("Expression").or_else(|| q.get("expression")))
                .filter_map(Value::as_str)
                .collect()
        })
        .unwrap_or_default();
    if threshold_metric_id.is_some_and(|v| !v.is_null())
        || expressions
            .iter()
            .any(|e| e.contains("ANOMALY_DETECTION_BAND"))
    {
        AlarmKind::AnomalyDetection
    } else if metrics
        .and_then(Value::as_array)
        .is_some_and(|m| m.len() > 1)
        || !expressions.is_empty()
    {
        AlarmKind::MetricMath
    } else {
        AlarmKind::SingleMetric
    }
}

fn required_str(obj: &Value, key: &str, at: &str) -> Result<String, EventError> {
    match obj.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(invalid(format!("{at}.{key}"), "is empty")),
        Some(other) => Err(invalid(
            format!("{at}.{key}"),
            format!("is not a string (got {})", type_name(other)),
        )),
        None => Err(invalid(format!("{at}.{key}"), "is missing")),
    }
}

/// The envelope's `field`, which must be a JSON object.
fn object_field<'a>(
    obj: &'a serde_json::Map<String, Value>,
    field: &str,
) -> Result<&'a Value, EventError> {
    obj.get(field)
        .filter(|d| d.is_object())
        .ok_or_else(|| invalid(field, "is not an object"))
}

fn map_str(obj: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    obj.get(key).and_then(Value::as_str).map(String::from)
}

fn optional_str(obj: &Value, key: &str) -> Option<String> {
    obj.get(key).and_then(Value::as_str).map(String::from)
}

fn optional_state(value: Option<&Value>, at: &str) -> Result<Option<AlarmState>, EventError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => AlarmState::parse(s, at).map(Some),
        Some(other) => Err(invalid(
            at,
            format!("is not a string (got {})", type_name(other)),
        )),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `arn:aws:cloudwatch:us-east-1:123456789012:alarm:name` → `us-east-1`.
pub fn region_of_arn(arn: &str) -> Option<String> {
    let mut parts = arn.splitn(6, ':');
    let (_, _, _, region) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    (!region.is_empty()).then(|| region.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_comes_from_the_arn() {
        assert_eq!(
            region_of_arn("arn:aws:cloudwatch:eu-west-1:1:alarm:x").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(region_of_arn("not-an-arn"), None);
    }

    #[test]
    fn alarm_times_in_every_form_cloudwatch_writes() {
        let sns = parse_time_ms("2021-02-15T14:57:14.419+0000").unwrap();
        assert_eq!(sns, 1_613_401_034_419);
        assert_eq!(parse_time_ms("2021-02-15T14:57:14.419Z"), Some(sns));
        assert_eq!(parse_time_ms("2021-02-15T15:57:14.419+01:00"), Some(sns));
        assert_eq!(parse_time_ms("2021-02-15T09:57:14.419-0500"), Some(sns));
        assert_eq!(parse_time_ms("yesterday"), None);
        assert_eq!(parse_time_ms(""), None);
    }

    #[test]
    fn a_repeated_alarm_is_not_a_transition() {
        let mut t = AlarmTransition {
            alarm_name: "a".into(),
            alarm_arn: None,
            new_state: AlarmState::Alarm,
            old_state: Some(AlarmState::Alarm),
            kind: AlarmKind::SingleMetric,
            envelope: Envelope::Sns,
            reason: None,
            state_change_time: None,
            region: None,
        };
        assert!(!t.is_transition_into_alarm());
        t.old_state = None;
        assert!(t.is_transition_into_alarm());
        t.old_state = Some(AlarmState::InsufficientData);
        assert!(t.is_transition_into_alarm());
    }
}

//! Decision metrics in CloudWatch's Embedded Metric Format: one JSON object per log line, which
//! CloudWatch Logs turns into metrics in namespace [`NAMESPACE`]. No API call and no client, so
//! nothing at init and nothing that can fail an invocation.
//!
//! The document shape (CloudWatch user guide, *Specification: Embedded metric format*): a root
//! object with `_aws: {Timestamp (ms), CloudWatchMetrics: [{Namespace, Dimensions: [[names]],
//! Metrics: [{Name, Unit}]}]}`, and every dimension (a string, at most 1024 characters) and metric
//! value (a number) as a top-level member; other members are kept as searchable properties.

use std::io::Write;

use serde_json::{json, Map, Value};

/// Every ShiftGuard metric is in this namespace.
pub const NAMESPACE: &str = "ShiftGuard";

/// A dimension value CloudWatch accepts; other characters become `?`.
fn dimension_value(value: &str) -> String {
    if value.trim().is_empty() {
        return "unknown".into();
    }
    // Printable ASCII only (a check named in another script would otherwise lose its metric).
    value
        .chars()
        .take(1024)
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// What CloudWatch accepts as a dimension value: 1 to 1024 printable ASCII characters, not only
/// whitespace.
fn valid_dimension_value(v: &str) -> bool {
    !v.trim().is_empty()
        && v.chars().count() <= 1024
        && v.chars().all(|c| c.is_ascii() && !c.is_ascii_control())
}

/// One metric value of a document.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measure {
    pub name: &'static str,
    /// A CloudWatch unit: `Count`, `Milliseconds`, …
    pub unit: &'static str,
    pub value: f64,
}

impl Measure {
    /// One occurrence (`Count`, 1): what a dashboard sums.
    pub const fn one(name: &'static str) -> Self {
        Measure {
            name,
            unit: "Count",
            value: 1.0,
        }
    }

    /// A duration in milliseconds.
    pub fn milliseconds(name: &'static str, ms: u64) -> Self {
        Measure {
            name,
            unit: "Milliseconds",
            value: ms as f64,
        }
    }
}

/// Builds one EMF document. `dimensions` are the dimension members (name, value);
/// `dimension_sets` the combinations CloudWatch aggregates by (each a list of those names);
/// `properties` extra members for Logs Insights (never dimensions: no new metrics, no cost).
pub fn document(
    timestamp_ms: i64,
    dimensions: &[(&'static str, &str)],
    dimension_sets: &[&[&'static str]],
    measures: &[Measure],
    properties: &[(&'static str, Value)],
) -> Value {
    let mut root = Map::new();
    for (name, value) in properties {
        root.insert((*name).into(), value.clone());
    }
    for (name, value) in dimensions {
        root.insert((*name).into(), Value::String(dimension_value(value)));
    }
    for m in measures {
        root.insert(m.name.into(), json!(m.value));
    }
    let metrics: Vec<Value> = measures
        .iter()
        .map(|m| json!({"Name": m.name, "Unit": m.unit}))
        .collect();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": dimension_sets,
                "Metrics": metrics,
            }],
        }),
    );
    Value::Object(root)
}

/// Writes each document as one line on standard output, where Lambda sends it to CloudWatch Logs.
/// One locked write for all of them, so lines never interleave with the JSON log lines of
/// `tracing`. A raw write, not `print!`: `print!` panics when stdout is gone, and metrics must
/// never fail an invocation (in-process tests therefore show these lines uncaptured).
pub fn emit(documents: &[Value]) {
    let mut text = String::new();
    for doc in documents {
        if let Ok(line) = serde_json::to_string(doc) {
            text.push_str(&line);
            text.push('\n');
        }
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Checks a document against the Embedded Metric Format specification (the published JSON schema
/// and the prose rules it cannot express: targets on the root, value types, limits). For tests,
/// and for anyone reading our log lines.
pub fn validate(doc: &Value) -> Result<(), String> {
    const UNITS: &[&str] = &[
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    ];
    let root = doc.as_object().ok_or("the root is not a JSON object")?;
    let size = serde_json::to_string(doc).map_err(|e| e.to_string())?.len();
    if size > 1024 * 1024 {
        return Err(format!("{size} bytes: a log event is at most 1 MB"));
    }
    let aws = root
        .get("_aws")
        .and_then(Value::as_object)
        .ok_or("_aws is missing or not an object")?;
    if !aws
        .get("Timestamp")
        .is_some_and(|t| t.is_i64() || t.is_u64())
    {
        return Err("_aws.Timestamp is missing or not an integer (milliseconds)".into());
    }
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .ok_or("_aws.CloudWatchMetrics is missing or not an array")?;
    for (i, d) in directives.iter().enumerate() {
        let at = format!("_aws.CloudWatchMetrics[{i}]");
        let d = d.as_object().ok_or(format!("{at} is not an object"))?;
        let namespace = d
            .get("Namespace")
            .and_then(Value::as_str)
            .ok_or(format!("{at}.Namespace is missing or not a string"))?;
        if namespace.is_empty() || namespace.chars().count() > 1024 {
            return Err(format!("{at}.Namespace must have 1 to 1024 characters"));
        }
        let sets = d
            .get("Dimensions")
            .and_then(Value::as_array)
            .ok_or(format!("{at}.Dimensions is missing or not an array"))?;
        if sets.is_empty() {
            return Err(format!(
                "{at}.Dimensions must have at least one DimensionSet"
            ));
        }
        for (j, set) in sets.iter().enumerate() {
            let set = set
                .as_array()
                .ok_or(format!("{at}.Dimensions[{j}] is not an array"))?;
            if set.len() > 30 {
                return Err(format!("{at}.Dimensions[{j}] has more than 30 keys"));
            }
            for key in set {
                let key = key
                    .as_str()
                    .ok_or(format!("{at}.Dimensions[{j}] holds a non-string"))?;
                if key.is_empty() || key.chars().count() > 250 {
                    return Err(format!(
                        "{at}: dimension name {key:?} must have 1 to 250 characters"
                    ));
                }
                match root.get(key) {
                    Some(Value::String(v)) if valid_dimension_value(v) => {}
                    Some(Value::String(_)) => {
                        return Err(format!(
                            "dimension target {key:?} must have 1 to 1024 printable ASCII characters, not only spaces"
                        ))
                    }
                    Some(_) => return Err(format!("dimension target {key:?} is not a string")),
                    None => return Err(format!("dimension target {key:?} is not a root member")),
                }
            }
        }
        let metrics = d
            .get("Metrics")
            .and_then(Value::as_array)
            .ok_or(format!("{at}.Metrics is missing or not an array"))?;
        if metrics.len() > 100 {
            return Err(format!("{at}.Metrics has more than 100 MetricDefinitions"));
        }
        for m in metrics {
            let m = m
                .as_object()
                .ok_or(format!("{at}.Metrics holds a non-object"))?;
            let name = m
                .get("Name")
                .and_then(Value::as_str)
                .ok_or(format!("{at}.Metrics[].Name is missing or not a string"))?;
            if name.is_empty() || name.chars().count() > 1024 {
                return Err(format!(
                    "metric name {name:?} must have 1 to 1024 characters"
                ));
            }
            if let Some(unit) = m.get("Unit") {
                if !unit.as_str().is_some_and(|u| UNITS.contains(&u)) {
                    return Err(format!("metric {name:?}: {unit} is not a CloudWatch unit"));
                }
            }
            if let Some(r) = m.get("StorageResolution") {
                if !(r == 1 || r == 60) {
                    return Err(format!(
                        "metric {name:?}: StorageResolution {r} is not 1 or 60"
                    ));
                }
            }
            match root.get(name) {
                Some(Value::Number(_)) => {}
                Some(Value::Array(values))
                    if values.len() <= 100 && values.iter().all(Value::is_number) => {}
                Some(_) => {
                    return Err(format!(
                        "metric target {name:?} is not a number or an array of at most 100 numbers"
                    ))
                }
                None => return Err(format!("metric target {name:?} is not a root member")),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specifications_own_example_is_valid() {
        let example = json!({
            "_aws": {"Timestamp": 1574109732004_i64, "CloudWatchMetrics": [{
                "Namespace": "lambda-function-metrics", "Dimensions": [["functionVersion"]],
                "Metrics": [{"Name": "time", "Unit": "Milliseconds", "StorageResolution": 60}]}]},
            "functionVersion": "$LATEST", "time": 100, "requestId": "989ffbf8-9ace-4817-a57c-e4dd734019ee"
        });
        assert_eq!(validate(&example), Ok(()));
    }

    #[test]
    fn documents_we_build_are_valid_and_broken_ones_are_not() {
        let doc = document(
            1,
            &[("Phase", "pre-traffic"), ("Outcome", "")],
            &[&["Phase"], &["Phase", "Outcome"]],
            &[Measure {
                name: "Hooks",
                unit: "Count",
                value: 1.0,
            }],
            &[("DeploymentId", json!("d-1"))],
        );
        assert_eq!(validate(&doc), Ok(()));
        assert_eq!(
            doc["Outcome"], "unknown",
            "an empty dimension value is not allowed"
        );
        let odd = document(1, &[("Check", "prüfung\t1")], &[&["Check"]], &[], &[]);
        assert_eq!(validate(&odd), Ok(()));
        assert_eq!(odd["Check"], "pr?fung?1");
        let broken = [
            json!([]),
            json!({"_aws": {"CloudWatchMetrics": []}}),
            json!({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [["Missing"]], "Metrics": []}]}}),
            json!({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [[]], "Metrics": [{"Name": "M", "Unit": "Parsecs"}]}]}, "M": 1}),
            json!({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [[]], "Metrics": [{"Name": "M"}]}]}, "M": "1"}),
            json!({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [["D"]], "Metrics": []}]}, "D": 3}),
            json!({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [], "Metrics": []}]}}),
            json!({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [["D"]], "Metrics": []}]}, "D": "ü"}),
            json!({"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", "Dimensions": [["D"]], "Metrics": []}]}, "D": "  "}),
        ];
        for doc in broken {
            assert!(validate(&doc).is_err(), "{doc}");
        }
    }
}

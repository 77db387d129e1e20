//! Defaults and bounds shared by several check kinds' settings (`crate::checks::<kind>`) and the
//! check set's validation: a leaf, so that the kinds need nothing else from `config`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A check's timeout and backoff: a Lambda function runs at most 15 minutes.
pub(crate) const MAX_CHECK_DURATION: Duration = Duration::from_secs(15 * 60);
/// Extra attempts after a failure.
pub(crate) const MAX_RETRIES: u32 = 100;
/// CloudWatch's Lambda metrics have 1-minute periods.
const MIN_WINDOW: Duration = Duration::from_secs(60);
const MAX_WINDOW: Duration = Duration::from_secs(24 * 3600);

// The same bounds for the JSON Schema (tests/schema), so that the construct refuses at synth what
// the validation below refuses at start-up.
#[cfg(feature = "schema")]
fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}
#[cfg(feature = "schema")]
pub(crate) fn timeout_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    shiftguard_common::duration::json_schema_within(1, ms(MAX_CHECK_DURATION))
}
#[cfg(feature = "schema")]
pub(crate) fn backoff_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    shiftguard_common::duration::json_schema_within(0, ms(MAX_CHECK_DURATION))
}
#[cfg(feature = "schema")]
pub(crate) fn window_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    shiftguard_common::duration::json_schema_within(ms(MIN_WINDOW), ms(MAX_WINDOW))
}

pub(crate) fn default_window() -> Duration {
    Duration::from_secs(15 * 60)
}
pub(crate) fn default_multiple() -> f64 {
    2.0
}
pub(crate) fn default_min_samples() -> u64 {
    20
}

pub(crate) fn validate_window(window: Duration) -> Result<(), String> {
    if window < MIN_WINDOW || window > MAX_WINDOW {
        return Err(format!("window: expected 1m (CloudWatch's Lambda metrics have 1-minute periods) to 24h, got {}s", window.as_secs()));
    }
    Ok(())
}

pub(crate) fn validate_confidence(confidence: f64) -> Result<(), String> {
    if !(0.5..1.0).contains(&confidence) {
        return Err(format!(
            "confidence: expected at least 0.5 and below 1.0, got {confidence}"
        ));
    }
    Ok(())
}

/// What an inconclusive verdict (no baseline, too few samples) does to the deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Inconclusive {
    Pass,
    #[default]
    Fail,
}

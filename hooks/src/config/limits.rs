//! Defaults and bounds shared by several check kinds' settings (`crate::checks::<kind>`) and the
//! check set's validation: a leaf, so that the kinds need nothing else from `config`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

const MAX_WINDOW: Duration = Duration::from_secs(24 * 3600);

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
    if window < Duration::from_secs(60) || window > MAX_WINDOW {
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

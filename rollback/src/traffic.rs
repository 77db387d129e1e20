//! The traffic state the pure decisions ([`crate::plan`]) read and the I/O ([`crate::alias`])
//! produces: its own module, so the two depend on it and not on each other.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;

/// The part of an alias that routes traffic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AliasState {
    pub version: String,
    /// Additional versions and their share (0.0–1.0).
    pub weights: BTreeMap<String, f64>,
    #[serde(skip)]
    pub revision_id: Option<String>,
    /// The alias's ARN, as Lambda answered it.
    #[serde(skip)]
    pub arn: Option<String>,
}

impl AliasState {
    /// All traffic on `version`: it is primary and no other version has a non-zero weight.
    pub fn all_on(&self, version: &str) -> bool {
        self.version == version && self.weights.values().all(|w| *w <= 0.0)
    }

    /// Every version the alias names.
    pub fn versions(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.version).chain(self.weights.keys())
    }

    /// The versions that get traffic (the primary, and additional ones with a weight).
    pub fn serving(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.version).chain(
            self.weights
                .iter()
                .filter(|(_, w)| **w > 0.0)
                .map(|(v, _)| v),
        )
    }

    pub fn summary(&self) -> serde_json::Value {
        json!({ "version": self.version, "weights": self.weights })
    }
}

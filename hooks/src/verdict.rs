//! A check's or a judgement's verdict: its own module, so that the statistics (`judge`) and the
//! checks that use them both depend on it and not on each other.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Passed,
    Failed,
    /// Too little data to judge; whether that passes is the check's `inconclusive` setting.
    Inconclusive,
}

impl Verdict {
    /// `Failed` when a test showed the limit crossed, `Passed` otherwise (no inconclusive middle).
    pub fn failed_if(failed: bool) -> Self {
        if failed {
            Verdict::Failed
        } else {
            Verdict::Passed
        }
    }
}

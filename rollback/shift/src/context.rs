//! What one step of a rollout works with: the context every part of the step shares ([`Ctx`]:
//! clients, configuration, plan, what was read, deadlines, the marker), what was read from the
//! target ([`Read`]) and why a step stopped ([`Failure`]). A leaf below `step` (the frame: marker,
//! checks, watch, promotion, abort) and `target` (what differs by target kind): both extend
//! `Ctx` with methods, and the target kinds call back into the frame's (`watch`, `abort`).

use rollback::truth::RestoreRecord;
use serde_json::Value;
use shiftguard_common::Deadline;

use crate::plan::{Marker, Plan, Traffic};
use crate::{ShiftClients, ShiftConfig};

/// What was read from the target.
#[derive(Debug, Clone)]
pub struct Read {
    pub marker: Option<Result<Marker, String>>,
    /// The last restore record rollback left on the target.
    pub record: Option<RestoreRecord>,
    pub traffic: Traffic,
    pub describe: Value,
    /// Where the marker tag lives (listener ARN, function ARN) and its key.
    pub(crate) tag_resource: String,
    pub(crate) tag_key: String,
    /// Alias rollouts: the alias's version when nothing is split (the stable version).
    pub(crate) stable: Option<String>,
}

/// Why carrying a step out stopped; `handle_shift` maps each to an errorType or an abort.
pub(crate) enum Failure {
    Aws(String),
    Refused(String),
    Invalid(String),
    Restore(String),
    /// Traffic is not where this step expected it (read just before a write, or read back).
    Changed(Traffic),
    /// The write call itself failed (nothing says it landed).
    WriteFailed(String),
    /// Rollback restored production since this rollout began (its restore record says so).
    RolledBack(String),
    /// An alarm of the plan is in ALARM (read after a write or a promotion action).
    Alarmed(String),
}

pub(crate) struct Ctx<'a> {
    pub(crate) clients: &'a ShiftClients,
    pub(crate) config: &'a ShiftConfig,
    pub(crate) plan: &'a Plan,
    pub(crate) read: &'a Read,
    pub(crate) stable: Option<String>,
    pub(crate) redactor: &'a hooks::redact::Redactor,
    pub(crate) checks_deadline: Deadline,
    pub(crate) work: Deadline,
    /// When this rollout claimed the target (its marker's `start`; now, for a rollout starting).
    pub(crate) start_ms: i64,
    /// Lattice promotions through an alias: the version it was on before (kept in the marker).
    pub(crate) prev: std::sync::Mutex<Option<String>>,
    /// This rollout's marker as read at the start of the step.
    pub(crate) marker: Option<Marker>,
    /// The last marker this step wrote.
    pub(crate) written: std::sync::Mutex<Option<Marker>>,
}

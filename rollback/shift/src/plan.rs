//! The pure half of a progressive rollout: the plan a user writes (parsed and validated before
//! anything moves), the marker the rollout keeps on its target, and [`decide`] — what one
//! invocation does, as a function of what it read.

use std::time::Duration;

use hooks::config::{CheckKind, CheckSet};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The longest bake one step may ask for (Step Functions waits up to a year; a rollout that bakes
/// longer than a week per step is almost certainly a typo).
pub const MAX_BAKE: Duration = Duration::from_secs(7 * 24 * 3600);

/// A validated rollout plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub id: String,
    pub target: RolloutTarget,
    pub steps: Vec<StepSpec>,
    /// Run against the new version before any traffic moves (pre-traffic style: the exact version).
    pub checks_before: Option<CheckSet>,
    /// Run after each step's bake (post-traffic style: through the alias / the endpoint).
    pub checks_after: Option<CheckSet>,
    /// The function (and versions) the checks look at, for a Lattice target.
    pub check_function: Option<CheckFunction>,
    /// CloudWatch alarm names: any in ALARM stops the rollout.
    pub alarms: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutTarget {
    LatticeListener {
        service: String,
        listener: String,
        production_target_group: String,
        canary_target_group: String,
    },
    LambdaAlias {
        function: String,
        alias: String,
        new_version: String,
        /// When given, must be the version the alias is on when the rollout starts.
        stable_version: Option<String>,
        /// Moved to the new version on promotion (rollback's `stableAlias`).
        stable_alias: Option<String>,
    },
}

impl RolloutTarget {
    /// The name rollback and the summaries use for the same target.
    pub fn id(&self) -> String {
        match self {
            RolloutTarget::LatticeListener {
                service, listener, ..
            } => format!("lattice-listener:{service}/{listener}"),
            RolloutTarget::LambdaAlias {
                function, alias, ..
            } => format!("lambda-alias:{function}:{alias}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepSpec {
    /// The canary's share of traffic, percent.
    pub weight: u8,
    pub bake: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckFunction {
    pub function: String,
    #[serde(default)]
    pub alias: Option<String>,
    /// The version behind the canary target group.
    pub version: String,
    /// The version behind production (for `compare` checks).
    #[serde(default)]
    pub current_version: Option<String>,
}

// ---- the event as written --------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawEvent {
    shiftguard: String,
    rollout: RawPlan,
    /// The previous step's answer, where a Step Functions state machine keeps it; not read.
    #[serde(default)]
    #[allow(dead_code)]
    last: Option<Value>,
    /// What the caller who started the rollout gave (the execution input's `rollout`), beside the
    /// plan the construct wrote: only [`INPUT_MAY_SET`] is taken from it.
    #[serde(default)]
    input: Option<Value>,
}

/// What a rollout's input may set: the release, never where traffic goes, what is checked, where
/// a check sends a secret, or which alarms watch it.
pub const INPUT_MAY_SET: [&str; 4] = [
    "id",
    "target.newVersion",
    "checkFunction.version",
    "checkFunction.currentVersion",
];

/// Applies the caller's input to the construct's plan. Pure; every refusal names the field.
fn apply_input(plan: &mut RawPlan, input: &Value) -> Result<(), String> {
    let Value::Object(given) = input else {
        return Err(format!("input: expected an object, got {input}"));
    };
    let text = |v: &Value, field: &str| -> Result<String, String> {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("input.{field}: expected a string, got {v}"))
    };
    let refuse = |field: &str| {
        Err(format!(
            "input.{field}: a rollout's input may set only {} (the rest of the plan comes from the construct, so that starting one rollout cannot move another target, change its checks or send a secret elsewhere)",
            INPUT_MAY_SET.join(", ")
        ))
    };
    for (key, value) in given {
        match key.as_str() {
            "id" => {
                if text(value, "id")? != plan.id {
                    return Err(format!(
                        "input.id: {value} is not the rollout's id {:?} (the execution's name)",
                        plan.id
                    ));
                }
            }
            "target" => {
                let Value::Object(t) = value else {
                    return refuse("target");
                };
                for (k, v) in t {
                    match (k.as_str(), &mut plan.target) {
                        ("newVersion", RawTarget::LambdaAlias { new_version, .. }) => {
                            *new_version = text(v, "target.newVersion")?;
                        }
                        _ => return refuse(&format!("target.{k}")),
                    }
                }
            }
            "checkFunction" => {
                let Value::Object(f) = value else {
                    return refuse("checkFunction");
                };
                let Some(cf) = plan.check_function.as_mut() else {
                    return Err("input.checkFunction: the rollout's plan has no checkFunction to set versions of".into());
                };
                for (k, v) in f {
                    match k.as_str() {
                        "version" => cf.version = text(v, "checkFunction.version")?,
                        "currentVersion" => {
                            cf.current_version = Some(text(v, "checkFunction.currentVersion")?)
                        }
                        _ => return refuse(&format!("checkFunction.{k}")),
                    }
                }
            }
            other => return refuse(other),
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawPlan {
    id: String,
    target: RawTarget,
    steps: Vec<RawStep>,
    #[serde(default)]
    checks: Option<RawChecks>,
    #[serde(default)]
    check_function: Option<CheckFunction>,
    #[serde(default)]
    alarms: Vec<String>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
// deny_unknown_fields: a misspelt target key (`stableAlais`) is an error naming it, never ignored.
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
enum RawTarget {
    #[serde(rename_all = "camelCase")]
    LatticeListener {
        service: String,
        listener: String,
        production_target_group: String,
        canary_target_group: String,
    },
    #[serde(rename_all = "camelCase")]
    LambdaAlias {
        function: String,
        alias: String,
        /// Usually the release the execution's input gives (`input.target.newVersion`): absent
        /// from the construct's plan, refused below when still absent.
        #[serde(default)]
        new_version: String,
        #[serde(default)]
        stable_version: Option<String>,
        #[serde(default)]
        stable_alias: Option<String>,
    },
}

#[derive(Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
struct RawStep {
    weight: i64,
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(schema_with = "bake_schema"))]
    bake: Option<Value>,
}

/// A step's bake: a duration in the one grammar, or none.
#[cfg(feature = "schema")]
fn bake_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    // Flat (one branch a JSON type) so that validators name the failing type, not "no branch".
    let mut schema = shiftguard_common::duration::json_schema(g);
    if let Some(branches) = schema.get_mut("anyOf").and_then(|b| b.as_array_mut()) {
        branches.push(serde_json::json!({"type": "null"}));
    }
    schema
}

#[derive(Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
struct RawChecks {
    // Parsed as check sets by `hooks::config::parse_checks` (below): their schema is a CheckSet's.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<hooks::config::CheckSet>"))]
    before: Option<Value>,
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<hooks::config::CheckSet>"))]
    after: Option<Value>,
}

/// The JSON Schema of a rollout plan as the construct writes it (`rollout()`'s props), for the
/// construct's validation at synth (tests/schema).
#[cfg(feature = "schema")]
pub fn plan_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    g.subschema_for::<RawPlan>()
}

/// Whether an event asks for a rollout step (`"shiftguard": "shift"`).
pub fn is_shift_event(event: &Value) -> bool {
    event.get("shiftguard").and_then(Value::as_str) == Some("shift")
}

/// Parses and validates the event: every error names the field and what was expected.
pub fn parse_plan(event: &Value) -> Result<Plan, String> {
    let raw: RawEvent = serde_path_to_error::deserialize(event).map_err(|e| {
        let path = e.path().to_string();
        format!("{path}: {}", e.into_inner())
    })?;
    if raw.shiftguard != "shift" {
        return Err(format!(
            "shiftguard: expected \"shift\", got {:?}",
            raw.shiftguard
        ));
    }
    let mut r = raw.rollout;
    if let Some(input) = &raw.input {
        apply_input(&mut r, input)?;
    }
    if r.id.is_empty()
        || r.id.len() > 64
        || !r
            .id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(format!(
            "rollout.id: expected 1-64 letters, digits, '.', '_' or '-', got {:?}",
            r.id
        ));
    }
    let blank = |v: &str, field: &str| -> Result<(), String> {
        if v.trim().is_empty() {
            Err(format!("rollout.target.{field}: is blank"))
        } else {
            Ok(())
        }
    };
    let target = match r.target {
        RawTarget::LatticeListener {
            service,
            listener,
            production_target_group,
            canary_target_group,
        } => {
            blank(&service, "service")?;
            blank(&listener, "listener")?;
            blank(&production_target_group, "productionTargetGroup")?;
            blank(&canary_target_group, "canaryTargetGroup")?;
            if rollback::lattice::same_resource(&production_target_group, &canary_target_group) {
                return Err("rollout.target.canaryTargetGroup: is the production target group; a rollout moves traffic between two groups".into());
            }
            RolloutTarget::LatticeListener {
                service,
                listener,
                production_target_group,
                canary_target_group,
            }
        }
        RawTarget::LambdaAlias {
            function,
            alias,
            new_version,
            stable_version,
            stable_alias,
        } => {
            blank(&function, "function")?;
            blank(&alias, "alias")?;
            // The marker's tag key is `shiftguard:rollout:ALIAS`, at most 128 characters.
            if alias.len() > 128 - MARKER_KEY.len() - 1 {
                return Err(format!(
                    "rollout.target.alias: at most {} characters (the rollout's marker tag key names it), got {}",
                    128 - MARKER_KEY.len() - 1,
                    alias.len()
                ));
            }
            if !rollback::config::is_version_number(&new_version) {
                return Err(format!(
                    "rollout.target.newVersion: expected a published version number, got {new_version:?}"
                ));
            }
            if let Some(v) = &stable_version {
                if !rollback::config::is_version_number(v) {
                    return Err(format!(
                        "rollout.target.stableVersion: expected a published version number, got {v:?}"
                    ));
                }
                if *v == new_version {
                    return Err("rollout.target.stableVersion: is the new version".into());
                }
            }
            if stable_alias.as_deref() == Some(alias.as_str()) {
                return Err("rollout.target.stableAlias: is the alias being shifted".into());
            }
            RolloutTarget::LambdaAlias {
                function,
                alias,
                new_version,
                stable_version,
                stable_alias,
            }
        }
    };
    if r.steps.is_empty() {
        return Err("rollout.steps: is empty: expected steps such as [{\"weight\":10,\"bake\":\"5m\"},{\"weight\":100}]".into());
    }
    let mut steps = Vec::with_capacity(r.steps.len());
    let mut previous = 0;
    for (i, s) in r.steps.iter().enumerate() {
        if !(1..=100).contains(&s.weight) || s.weight <= previous {
            return Err(format!(
                "rollout.steps[{i}].weight: expected a percentage from 1 to 100, larger than the step before ({previous}), got {}",
                s.weight
            ));
        }
        previous = s.weight;
        let bake = match &s.bake {
            None => Duration::ZERO,
            Some(v) => parse_bake(v).ok_or_else(|| {
                format!("rollout.steps[{i}].bake: expected a duration such as \"5m\", \"90s\", \"1h\" or milliseconds (at most 7 days), got {v}")
            })?,
        };
        steps.push(StepSpec {
            weight: s.weight as u8,
            bake,
        });
    }
    if previous != 100 {
        return Err(format!(
            "rollout.steps[{}].weight: the last step must be 100 (the whole of traffic on the new version before promotion), got {previous}",
            steps.len() - 1
        ));
    }
    let mut alarms = Vec::new();
    for (i, a) in r.alarms.into_iter().enumerate() {
        if a.trim().is_empty() || a.len() > 255 {
            return Err(format!(
                "rollout.alarms[{i}]: expected an alarm name (1-255 characters)"
            ));
        }
        if !alarms.contains(&a) {
            alarms.push(a);
        }
    }
    let (before, after) = match r.checks {
        Some(c) => (c.before, c.after),
        None => (None, None),
    };
    let parse = |v: Option<Value>, field: &str| -> Result<Option<CheckSet>, String> {
        v.map(|v| {
            hooks::config::parse_checks(&v.to_string())
                .map_err(|e| format!("rollout.checks.{field}.{e}"))
        })
        .transpose()
    };
    let checks_before = parse(before, "before")?;
    let checks_after = parse(after, "after")?;
    if let RolloutTarget::LatticeListener { .. } = &target {
        if r.check_function.is_none() {
            for (field, set) in [("before", &checks_before), ("after", &checks_after)] {
                for (i, c) in set.iter().flat_map(|s| s.checks.iter()).enumerate() {
                    if needs_function(&c.kind) {
                        return Err(format!(
                            "rollout.checks.{field}.checks[{i}] ({:?}): a {} check looks at a Lambda function: give rollout.checkFunction {{function, version, currentVersion}} for a lattice target, or use http checks",
                            c.name,
                            hooks::runner::kind_name(&c.kind)
                        ));
                    }
                }
            }
        }
    } else if r.check_function.is_some() {
        return Err("rollout.checkFunction: only for a lattice-listener target (an alias rollout checks the alias's own function)".into());
    }
    if let Some(f) = &r.check_function {
        if f.function.trim().is_empty() || !rollback::config::is_version_number(&f.version) {
            return Err("rollout.checkFunction: expected {function, version (a version number), currentVersion?, alias?}".into());
        }
    }
    Ok(Plan {
        id: r.id,
        target,
        steps,
        checks_before,
        checks_after,
        check_function: r.check_function,
        alarms,
    })
}

fn needs_function(kind: &CheckKind) -> bool {
    match kind {
        CheckKind::Http(_) => false,
        CheckKind::Burst(b) => matches!(b.target, hooks::config::BurstTarget::Invoke(_)),
        _ => true,
    }
}

/// A bake in the one duration grammar (`shiftguard_common::duration`: `"5m"`, `"90s"`, `"1h"`,
/// `"500ms"` or a number of milliseconds), at most [`MAX_BAKE`].
pub fn parse_bake(v: &Value) -> Option<Duration> {
    shiftguard_common::duration::from_json(v).filter(|d| *d <= MAX_BAKE)
}

// ---- the marker (rollback::truth) -----------------------------------------------------------

pub use rollback::truth::{Marker, RestoreRecord, Status, MARKER_KEY};

/// Why a rollout is aborted: a short code kept in the marker (tag-safe characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// An alarm of the plan is in ALARM (or was deleted).
    Alarm,
    /// A check failed.
    Checks,
    /// Traffic changed outside the rollout (a rollback, a person).
    Outside,
    /// A write of step 1 was interrupted and production has all traffic: indistinguishable from a
    /// rollback's restore, so never written again.
    Interrupted,
    /// Promotion found the target changed.
    Promotion,
    /// Rollback (an alarm or an operator) restored production during the rollout.
    Rollback,
}

impl Why {
    pub fn code(self) -> &'static str {
        match self {
            Why::Alarm => "alarm",
            Why::Checks => "checks",
            Why::Outside => "outside",
            Why::Interrupted => "interrupted",
            Why::Promotion => "promotion",
            Why::Rollback => "rollback",
        }
    }
}

// ---- the decision ----------------------------------------------------------------------------

/// Where traffic is, as read from the target.
#[derive(Debug, Clone, PartialEq)]
pub enum Traffic {
    /// The canary's share, a whole percent, the same in every forward.
    Canary(u8),
    /// Forwards with different whole shares (a move that stopped halfway).
    Split(Vec<u8>),
    /// The canary has no traffic, but production is not what the rollout knows (an alias put on
    /// another version): someone restored it their way.
    Elsewhere(String),
    /// Not a state a rollout can be in (a third group with traffic, a share that is not a whole
    /// percent, another version on the alias…).
    Unexpected(String),
}

impl Traffic {
    /// Whether every share is one of `allowed`.
    pub fn within(&self, allowed: &[u8]) -> bool {
        match self {
            Traffic::Canary(w) => allowed.contains(w),
            Traffic::Split(ws) => ws.iter().all(|w| allowed.contains(w)),
            _ => false,
        }
    }
}

/// What one invocation read.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub now_ms: i64,
    /// The marker on the target, if any (`Err` holds an unreadable tag's text).
    pub marker: Option<Result<Marker, String>>,
    pub traffic: Traffic,
    /// The plan's alarms that are in ALARM now.
    pub alarms_in_alarm: Vec<String>,
    /// The last restore record rollback left on the target.
    pub restored: Option<RestoreRecord>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Nothing of this rollout moved yet: run the checks before, then move to step 1.
    Start,
    /// Write this step's weights again (a move that did not finish); traffic is on one of the
    /// two steps' weights.
    Move { step: usize },
    /// Baking: come back later.
    Wait { step: usize, ms: u64 },
    /// The bake is over: run the checks after it, then move on or promote.
    Judge { step: usize },
    /// Make the new version production (the carrying out reads traffic first).
    Promote,
    /// Stop the rollout. `restore`: traffic must be put back on production first.
    Abort {
        reason: String,
        why: Why,
        restore: bool,
    },
    /// The rollout already ended: report it again, write nothing (but publish a summary that
    /// never reached the topic).
    Finished { status: Status, notified: bool },
    /// Cannot run: nothing is touched and the invocation fails with this.
    Refuse(String),
}

fn alarms_text(alarms: &[String]) -> String {
    alarms.join(", ")
}

/// The abort for traffic that is not where the rollout put it: when production already has
/// everything (restored by rollback or a person) nothing is written; otherwise production is
/// restored.
pub fn changed_outside(traffic: &Traffic, during: &str) -> Decision {
    match traffic {
        Traffic::Canary(0) => Decision::Abort {
            reason: format!(
                "production was restored outside the rollout (a rollback or a person) {during}"
            ),
            why: Why::Outside,
            restore: false,
        },
        Traffic::Elsewhere(what) => Decision::Abort {
            reason: format!(
                "production was restored outside the rollout {during}: {what}; left as it is"
            ),
            why: Why::Outside,
            restore: false,
        },
        other => Decision::Abort {
            reason: format!(
                "traffic changed outside the rollout {during}: {}",
                describe_traffic(other)
            ),
            why: Why::Outside,
            restore: true,
        },
    }
}

pub fn describe_traffic(t: &Traffic) -> String {
    match t {
        Traffic::Canary(w) => format!("the canary has {w}%"),
        Traffic::Split(ws) => format!("the forwards give the canary {ws:?}%"),
        Traffic::Elsewhere(w) | Traffic::Unexpected(w) => w.clone(),
    }
}

/// What this invocation does. Pure: the I/O layer read `facts`; it carries the decision out.
pub fn decide(plan: &Plan, facts: &Facts) -> Decision {
    let ours = match &facts.marker {
        Some(Ok(m)) if m.id == plan.id => Some(m),
        Some(Ok(m)) if !m.status.finished() => {
            return Decision::Refuse(format!(
                "rollout {:?} is {} at step {} on this target: one rollout at a time (wait for it, or abort it)",
                m.id,
                m.status.as_str(),
                m.step
            ))
        }
        Some(Err(raw)) => {
            return Decision::Refuse(format!(
                "the target's {MARKER_KEY} tag is not a marker ShiftGuard wrote ({raw:?}): refusing to guess where a rollout stands"
            ))
        }
        _ => None,
    };
    let alarming = !facts.alarms_in_alarm.is_empty();
    let start = |during: &str| {
        match &facts.traffic {
        Traffic::Canary(0) if alarming => Decision::Abort {
            reason: format!(
                "alarm(s) in ALARM {during}: {}; no traffic was moved",
                alarms_text(&facts.alarms_in_alarm)
            ),
            why: Why::Alarm,
            restore: false,
        },
        Traffic::Canary(0) => Decision::Start,
        other => Decision::Refuse(format!(
            "{}, and no step of this rollout is recorded on the target: refusing to start from there (put production back to 100% first)",
            describe_traffic(other)
        )),
    }
    };
    let Some(m) = ours else {
        return start("before the rollout started");
    };
    let weight_of = |step: usize| -> u8 {
        if step == 0 {
            0
        } else {
            plan.steps.get(step - 1).map_or(100, |s| s.weight)
        }
    };
    if m.step > plan.steps.len() {
        return Decision::Refuse(format!(
            "the marker says step {} but the plan has {} steps: the plan changed during the rollout",
            m.step,
            plan.steps.len()
        ));
    }
    let alarm_abort = || Decision::Abort {
        reason: format!(
            "alarm(s) in ALARM during step {}: {}",
            m.step,
            alarms_text(&facts.alarms_in_alarm)
        ),
        why: Why::Alarm,
        restore: true,
    };
    let during = format!("during step {} ({}%)", m.step, weight_of(m.step));
    // A restore by rollback since the rollout began ends it, whatever the marker says: its writes
    // never survive a rollback (traffic goes back to production if anything is elsewhere).
    if let Some(r) = facts.restored.as_ref().filter(|r| r.ends(m)) {
        if !m.status.finished() && m.status != Status::Aborting {
            return Decision::Abort {
                reason: format!(
                    "rollback restored production {during} (by {}, at {})",
                    r.by, r.at_ms
                ),
                why: Why::Rollback,
                restore: facts.traffic != Traffic::Canary(0),
            };
        }
    }
    match m.status {
        Status::Promoted | Status::Aborted => Decision::Finished {
            status: m.status,
            notified: m.notified,
        },
        Status::Aborting => Decision::Abort {
            reason: format!(
                "resuming an abort that did not finish (begun for: {})",
                m.why.as_deref().unwrap_or("unknown")
            ),
            why: match m.why.as_deref() {
                Some("alarm") => Why::Alarm,
                Some("checks") => Why::Checks,
                Some("interrupted") => Why::Interrupted,
                Some("promotion") => Why::Promotion,
                Some("rollback") => Why::Rollback,
                _ => Why::Outside,
            },
            restore: true,
        },
        // The last bake's checks passed: promotion reads traffic itself before touching anything
        // and aborts if the canary no longer has it all.
        // Never while an alarm is in ALARM: production (still the old version, or put back
        // from `prev`) is restored instead.
        Status::Promoting if alarming => alarm_abort(),
        Status::Promoting => Decision::Promote,
        // Started, checks before not yet passed: nothing moved (step 0).
        Status::Baking if m.step == 0 => start("before the first step"),
        Status::Moving => {
            let (from, to) = (weight_of(m.step.saturating_sub(1)), weight_of(m.step));
            if alarming {
                return alarm_abort();
            }
            if m.step == 1 && facts.traffic == Traffic::Canary(0) {
                // Either the write never landed, or it did and a rollback restored production
                // before this run: the two cannot be told apart, and writing again could undo a
                // rollback. (A write that failed cleanly put the marker back to step 0.)
                return Decision::Abort {
                    reason: "the write of step 1 was interrupted and production has all traffic: that cannot be told apart from a rollback's restore, so it is not written again; start a new rollout (a new id)".into(),
                    why: Why::Interrupted,
                    restore: false,
                };
            }
            if facts.traffic.within(&[from, to]) {
                Decision::Move { step: m.step }
            } else {
                changed_outside(&facts.traffic, &during)
            }
        }
        Status::Baking => {
            if facts.traffic != Traffic::Canary(weight_of(m.step)) {
                return changed_outside(&facts.traffic, &during);
            }
            if alarming {
                return alarm_abort();
            }
            let bake = plan
                .steps
                .get(m.step - 1)
                .map_or(Duration::ZERO, |s| s.bake);
            let done_at = m.at_ms.saturating_add(bake.as_millis() as i64);
            if facts.now_ms < done_at {
                Decision::Wait {
                    step: m.step,
                    ms: (done_at - facts.now_ms) as u64,
                }
            } else {
                Decision::Judge { step: m.step }
            }
        }
    }
}

/// After the checks of a bake passed: the next step, or promotion after the last.
pub fn after_judgement(plan: &Plan, step: usize) -> Decision {
    if step >= plan.steps.len() {
        Decision::Promote
    } else {
        Decision::Move { step: step + 1 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(target: Value, steps: Value) -> Value {
        json!({"shiftguard": "shift", "rollout": {"id": "r1", "target": target, "steps": steps, "alarms": ["a"]}})
    }
    fn lattice() -> Value {
        json!({"type": "lattice-listener", "service": "svc-1", "listener": "listener-1",
               "productionTargetGroup": "tg-prod", "canaryTargetGroup": "tg-canary"})
    }
    fn plan() -> Plan {
        parse_plan(&event(
            lattice(),
            json!([{"weight": 10, "bake": "5m"}, {"weight": 50, "bake": "5m"}, {"weight": 100, "bake": "1m"}]),
        ))
        .unwrap()
    }
    fn marker(step: usize, status: Status, at_ms: i64) -> Option<Result<Marker, String>> {
        let weight = [0, 10, 50, 100][step];
        Some(Ok(Marker {
            id: "r1".into(),
            step,
            weight,
            at_ms,
            status,
            stable: None,
            why: None,
            notified: false,
            start_ms: Some(at_ms - 1),
            prev: None,
        }))
    }
    fn facts(
        marker: Option<Result<Marker, String>>,
        canary: u8,
        alarms: &[&str],
        now_ms: i64,
    ) -> Facts {
        Facts {
            now_ms,
            marker,
            traffic: Traffic::Canary(canary),
            alarms_in_alarm: alarms.iter().map(|a| a.to_string()).collect(),
            restored: None,
        }
    }

    #[test]
    fn the_input_sets_only_the_release() {
        let alias = json!({"type": "lambda-alias", "function": "checkout", "alias": "live", "newVersion": "2"});
        let with = |input: Value| {
            let mut e = event(alias.clone(), json!([{"weight": 100}]));
            e["input"] = input;
            parse_plan(&e)
        };
        let p = with(json!({"target": {"newVersion": "5"}, "id": "r1"})).unwrap();
        // The construct's plan has no newVersion: the input gives it; without it, a clear error.
        let mut bare = event(
            json!({"type": "lambda-alias", "function": "checkout", "alias": "live"}),
            json!([{"weight": 100}]),
        );
        assert!(parse_plan(&bare)
            .unwrap_err()
            .starts_with("rollout.target.newVersion"));
        bare["input"] = json!({"target": {"newVersion": "3"}});
        assert!(
            matches!(parse_plan(&bare).unwrap().target, RolloutTarget::LambdaAlias { ref new_version, .. } if new_version == "3")
        );
        assert!(
            matches!(p.target, RolloutTarget::LambdaAlias { ref new_version, .. } if new_version == "5")
        );
        assert!(with(json!({})).is_ok());
        for (input, field) in [
            (
                json!({"target": {"function": "other"}}),
                "input.target.function",
            ),
            (
                json!({"target": {"type": "lattice-listener"}}),
                "input.target.type",
            ),
            (json!({"alarms": []}), "input.alarms"),
            (json!({"checks": {"after": {"checks": []}}}), "input.checks"),
            (json!({"steps": [{"weight": 100}]}), "input.steps"),
            (json!({"id": "someone-else"}), "input.id"),
            (
                json!({"checkFunction": {"version": "3"}}),
                "input.checkFunction",
            ),
            (
                json!({"target": {"newVersion": 5}}),
                "input.target.newVersion",
            ),
            (json!("r2"), "input"),
        ] {
            let e = with(input.clone()).unwrap_err();
            assert!(e.starts_with(field), "{input}: {e}");
        }
        let mut e = event(lattice(), json!([{"weight": 100}]));
        e["rollout"]["checkFunction"] = json!({"function": "orders", "version": "2"});
        e["input"] = json!({"checkFunction": {"version": "3", "currentVersion": "2"}});
        let p = parse_plan(&e).unwrap();
        assert_eq!(p.check_function.unwrap().version, "3");
        e["input"] = json!({"checkFunction": {"function": "other"}});
        assert!(parse_plan(&e)
            .unwrap_err()
            .starts_with("input.checkFunction.function"));
    }

    #[test]
    fn plans_are_validated_naming_the_field() {
        for (steps, field) in [
            (json!([]), "rollout.steps"),
            (
                json!([{"weight": 10}, {"weight": 10}, {"weight": 100}]),
                "rollout.steps[1].weight",
            ),
            (
                json!([{"weight": 50}, {"weight": 25}, {"weight": 100}]),
                "rollout.steps[1].weight",
            ),
            (
                json!([{"weight": 0}, {"weight": 100}]),
                "rollout.steps[0].weight",
            ),
            (
                json!([{"weight": 10}, {"weight": 101}]),
                "rollout.steps[1].weight",
            ),
            (
                json!([{"weight": 10}, {"weight": 50}]),
                "rollout.steps[1].weight: the last step must be 100",
            ),
            (
                json!([{"weight": 10, "bake": "5 minutes"}, {"weight": 100}]),
                "rollout.steps[0].bake",
            ),
            (
                json!([{"weight": 10, "bake": "8000h"}, {"weight": 100}]),
                "rollout.steps[0].bake",
            ),
            (json!([{"weight": 10, "bak": "5m"}, {"weight": 100}]), "bak"),
        ] {
            let err = parse_plan(&event(lattice(), steps.clone())).unwrap_err();
            assert!(err.contains(field), "{steps}: {err}");
        }
        let mut same = lattice();
        same["canaryTargetGroup"] =
            json!("arn:aws:vpc-lattice:us-east-1:123456789012:targetgroup/tg-prod");
        let err = parse_plan(&event(same, json!([{"weight": 100}]))).unwrap_err();
        assert!(err.contains("rollout.target.canaryTargetGroup"), "{err}");
        let alias = json!({"type": "lambda-alias", "function": "checkout", "alias": "live", "newVersion": "$LATEST"});
        let err = parse_plan(&event(alias, json!([{"weight": 100}]))).unwrap_err();
        assert!(err.contains("rollout.target.newVersion"), "{err}");
        // A misspelt target key is an error naming it (it used to be ignored).
        let typo = json!({"type": "lambda-alias", "function": "checkout", "alias": "live", "newVersion": "7", "stableAlais": "blue"});
        let err = parse_plan(&event(typo, json!([{"weight": 100}]))).unwrap_err();
        assert!(
            err.contains("rollout.target") && err.contains("stableAlais"),
            "{err}"
        );
        let mut typo = lattice();
        typo["canaryGroup"] = json!("tg-x");
        let err = parse_plan(&event(typo, json!([{"weight": 100}]))).unwrap_err();
        assert!(err.contains("canaryGroup"), "{err}");
        let mut bad_id = event(lattice(), json!([{"weight": 100}]));
        bad_id["rollout"]["id"] = json!("has space");
        assert!(parse_plan(&bad_id).unwrap_err().contains("rollout.id"));
        // Checks are the hooks' own, validated by the hooks' parser, with the path in front.
        let mut checks = event(lattice(), json!([{"weight": 100}]));
        checks["rollout"]["checks"] = json!({"after": {"checks": [{"name": "h", "kind": "http", "url": "https://x", "expect": {"stauts": 200}}]}});
        let err = parse_plan(&checks).unwrap_err();
        assert!(
            err.contains("rollout.checks.after.") && err.contains("stauts"),
            "{err}"
        );
        // A lattice rollout's invoke check needs a function to invoke.
        checks["rollout"]["checks"] =
            json!({"before": {"checks": [{"name": "smoke", "kind": "invoke"}]}});
        let err = parse_plan(&checks).unwrap_err();
        assert!(
            err.contains("rollout.checks.before.checks[0]") && err.contains("checkFunction"),
            "{err}"
        );
        checks["rollout"]["checkFunction"] =
            json!({"function": "orders", "version": "2", "currentVersion": "1"});
        assert!(parse_plan(&checks).is_ok());
        let mut wrong = event(lattice(), json!([{"weight": 100}]));
        wrong["shiftguard"] = json!("rollback");
        assert!(parse_plan(&wrong).unwrap_err().contains("shiftguard"));
    }

    #[test]
    fn bakes_parse_in_every_unit() {
        for (v, ms) in [
            (json!("500ms"), 500),
            (json!("90s"), 90_000),
            (json!("5m"), 300_000),
            (json!("1h"), 3_600_000),
            (json!(250), 250),
            // The one grammar (shiftguard_common::duration): a bare whole number is milliseconds.
            (json!("5"), 5),
        ] {
            assert_eq!(parse_bake(&v), Some(Duration::from_millis(ms)), "{v}");
        }
        for v in [
            json!("-1s"),
            json!("1d"),
            json!(""),
            json!(1.5),
            json!("99999999999999999999h"),
        ] {
            assert_eq!(parse_bake(&v), None, "{v}");
        }
    }

    #[test]
    fn markers_round_trip_and_foreign_tags_do_not_parse() {
        let m = Marker {
            id: "orders-v2.1_a".into(),
            step: 3,
            weight: 50,
            at_ms: 1_795_337_270_554,
            status: Status::Baking,
            stable: Some("7".into()),
            why: Some("alarm".into()),
            notified: true,
            start_ms: Some(1_795_337_000_000),
            prev: Some("12".into()),
        };
        assert_eq!(Marker::decode(&m.encode()), Some(m.clone()));
        assert!(m.encode().len() <= 256);
        for raw in [
            "",
            "hello",
            "id=x step=a status=baking",
            "id=x status=flying",
            "step=1 status=baking",
            "id=x step=1 weight=200 status=baking",
        ] {
            assert_eq!(Marker::decode(raw), None, "{raw}");
        }
    }

    #[test]
    #[rustfmt::skip]
    fn what_one_invocation_does() {
        let p = plan();
        let min = 60_000;
        let t0 = 1_000_000;
        let m = |id: &str, step, status| Some(Ok(Marker { id: id.into(), step, weight: 0, at_ms: 0, status, stable: None, why: None, notified: false, start_ms: None, prev: None }));
        use Decision::*;
        let abort = |restore| Abort { reason: String::new(), why: Why::Outside, restore };
        let split = |ws: &[u8]| Facts { traffic: Traffic::Split(ws.to_vec()), ..facts(marker(2, Status::Moving, t0), 0, &[], t0) };
        let elsewhere = |status| Facts { traffic: Traffic::Elsewhere("the alias is all on version 7".into()), ..facts(marker(2, status, t0), 0, &[], t0) };
        let cases: Vec<(&str, Facts, Decision)> = vec![
            ("fresh target", facts(None, 0, &[], t0), Start),
            ("after an earlier rollout finished", facts(m("r0", 3, Status::Promoted), 0, &[], t0), Start),
            ("another rollout in progress", facts(m("r0", 2, Status::Baking), 0, &[], t0), Refuse(String::new())),
            ("unreadable marker", facts(Some(Err("junk".into())), 0, &[], t0), Refuse(String::new())),
            ("already split, no marker", facts(None, 10, &[], t0), Refuse(String::new())),
            ("alarm at start: abort, nothing to restore", facts(None, 0, &["a"], t0), abort(false)),
            ("started, the checks before did not finish: start again", facts(marker(0, Status::Baking, t0), 0, &[], t0), Start),
            ("step 1 interrupted, production has everything: never written again", facts(marker(1, Status::Moving, t0), 0, &[], t0), abort(false)),
            ("step 1 interrupted after the write", facts(marker(1, Status::Moving, t0), 10, &[], t0), Move { step: 1 }),
            ("crash while moving to step 2, weights not written", facts(marker(2, Status::Moving, t0), 10, &[], t0), Move { step: 2 }),
            ("crash while moving to step 2, weights written", facts(marker(2, Status::Moving, t0), 50, &[], t0), Move { step: 2 }),
            ("crash halfway through the forwards of step 2", split(&[10, 50]), Move { step: 2 }),
            ("forwards at shares no step set", split(&[10, 30]), abort(true)),
            ("moving, but an alarm", facts(marker(2, Status::Moving, t0), 10, &["a"], t0), abort(true)),
            ("moving, production restored by someone", facts(marker(2, Status::Moving, t0), 0, &[], t0), abort(false)),
            ("baking, early", facts(marker(1, Status::Baking, t0), 10, &[], t0 + min), Wait { step: 1, ms: 4 * min as u64 }),
            ("baking, done", facts(marker(1, Status::Baking, t0), 10, &[], t0 + 5 * min), Judge { step: 1 }),
            ("baking, alarm", facts(marker(1, Status::Baking, t0), 10, &["a"], t0 + min), abort(true)),
            ("baking, rollback restored production", facts(marker(2, Status::Baking, t0), 0, &["a"], t0 + min), abort(false)),
            ("baking, the alias was put on another version", elsewhere(Status::Baking), abort(false)),
            ("baking, a person moved the weights", facts(marker(2, Status::Baking, t0), 30, &[], t0 + min), abort(true)),
            ("last step baked", facts(marker(3, Status::Baking, t0), 100, &[], t0 + min), Judge { step: 3 }),
            ("crash while promoting: promotion reads traffic itself", facts(marker(3, Status::Promoting, t0), 0, &[], t0), Promote),
            ("promoting, but an alarm: never completes, production restored", facts(marker(3, Status::Promoting, t0), 100, &["a"], t0), abort(true)),
            ("crash while aborting", facts(marker(2, Status::Aborting, t0), 50, &[], t0), abort(true)),
            ("re-run after promotion", facts(marker(3, Status::Promoted, t0), 0, &["a"], t0), Finished { status: Status::Promoted, notified: false }),
            ("re-run after abort", facts(marker(2, Status::Aborted, t0), 0, &[], t0), Finished { status: Status::Aborted, notified: false }),
        ];
        for (name, f, want) in cases {
            let got = decide(&p, &f);
            let same = match (&got, &want) {
                (Refuse(_), Refuse(_)) => true,
                (Abort { restore: a, reason, .. }, Abort { restore: b, .. }) => a == b && !reason.is_empty(),
                _ => got == want,
            };
            assert!(same, "{name}: got {got:?}, want {want:?}");
        }
        let unexpected = Facts { traffic: Traffic::Unexpected("a third group has traffic".into()), ..facts(marker(1, Status::Baking, t0), 0, &[], t0) };
        assert!(matches!(decide(&p, &unexpected), Abort { restore: true, .. }));
        let resumed = Facts { marker: Some(Ok(Marker { why: Some("checks".into()), ..marker(2, Status::Aborting, t0).unwrap().unwrap() })), ..facts(None, 50, &[], t0) };
        assert!(matches!(decide(&p, &resumed), Abort { why: Why::Checks, ref reason, .. } if reason.contains("checks")));
        assert_eq!(after_judgement(&p, 1), Move { step: 2 });
        assert_eq!(after_judgement(&p, 3), Promote);
        // Issue 19 [4]: a restore by rollback since the rollout began ends it, alarm or not.
        let rec = |at_ms, alarm_ms| RestoreRecord { at_ms, alarm_ms, by: "operator:alice".into(), production: None };
        let restored = |status, canary, r| Facts { restored: Some(r), ..facts(marker(2, status, t0), canary, &[], t0 + min) };
        assert!(matches!(decide(&p, &restored(Status::Baking, 50, rec(t0 + 10, t0 + 5))), Abort { why: Why::Rollback, restore: true, .. }));
        assert!(matches!(decide(&p, &restored(Status::Baking, 0, rec(t0 + 10, t0 + 5))), Abort { why: Why::Rollback, restore: false, .. }));
        assert!(matches!(decide(&p, &restored(Status::Promoting, 100, rec(t0 + 10, t0 + 5))), Abort { why: Why::Rollback, restore: true, .. }));
        assert!(matches!(decide(&p, &restored(Status::Moving, 10, rec(t0 + 10, t0 + 5))), Abort { why: Why::Rollback, .. }));
        // A restore before the rollout began, or for an alarm older than it, is not about it.
        assert_eq!(decide(&p, &restored(Status::Baking, 50, rec(t0 - 100, t0 - 200))), Wait { step: 2, ms: 4 * min as u64 });
        assert_eq!(decide(&p, &restored(Status::Baking, 50, rec(t0 + 10, t0 - 60_000))), Wait { step: 2, ms: 4 * min as u64 });
    }

    proptest::proptest! {
        /// An alarm in ALARM never lets a rollout start, move, keep baking or judge.
        #[test]
        fn an_alarm_never_moves_traffic_forward(
            step in 0usize..4, status in 0usize..6, canary in 0u8..=100, now in 0i64..10_000_000,
            at in 0i64..10_000_000, has_marker: bool,
        ) {
            let status = [Status::Moving, Status::Baking, Status::Promoting, Status::Promoted, Status::Aborting, Status::Aborted][status];
            let m = has_marker.then(|| Ok(Marker { id: "r1".into(), step, weight: canary, at_ms: at, status, stable: None, why: None, notified: false, start_ms: None, prev: None }));
            let d = decide(&plan(), &facts(m, canary, &["a"], now));
            proptest::prop_assert!(
                !matches!(d, Decision::Start | Decision::Move { .. } | Decision::Wait { .. } | Decision::Judge { .. } | Decision::Promote),
                "{d:?}"
            );
        }
    }
}

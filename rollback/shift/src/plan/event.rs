//! The rollout event as written (the construct's plan, the caller's input) → a validated [`Plan`]:
//! every refusal names the field and what was expected.

use std::time::Duration;

use hooks::config::{CheckKind, CheckSet};
use serde::Deserialize;
use serde_json::Value;

use super::{
    AliasRollout, CheckFunction, ListenerRollout, Plan, RolloutTarget, StepSpec, MARKER_KEY,
    MAX_BAKE,
};

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
    #[cfg_attr(
        feature = "schema",
        schemars(regex(pattern = r"^[A-Za-z0-9._-]{1,64}$"))
    )]
    id: String,
    target: RawTarget,
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    steps: Vec<RawStep>,
    #[serde(default)]
    checks: Option<RawChecks>,
    #[serde(default)]
    check_function: Option<CheckFunction>,
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(inner(length(min = 1, max = 255), regex(pattern = r"\S")))
    )]
    alarms: Vec<String>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
// deny_unknown_fields: a misspelt target key (`stableAlais`) is an error naming it, never ignored.
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
enum RawTarget {
    #[serde(rename_all = "camelCase")]
    LatticeListener {
        #[cfg_attr(feature = "schema", schemars(regex(pattern = r"\S")))]
        service: String,
        #[cfg_attr(feature = "schema", schemars(regex(pattern = r"\S")))]
        listener: String,
        #[cfg_attr(feature = "schema", schemars(regex(pattern = r"\S")))]
        production_target_group: String,
        #[cfg_attr(feature = "schema", schemars(regex(pattern = r"\S")))]
        canary_target_group: String,
    },
    #[serde(rename_all = "camelCase")]
    LambdaAlias {
        #[cfg_attr(feature = "schema", schemars(regex(pattern = r"\S")))]
        function: String,
        #[cfg_attr(
            feature = "schema",
            schemars(regex(pattern = r"^(?![0-9]+$)[A-Za-z0-9_-]{1,109}$"))
        )]
        alias: String,
        /// Usually the release the execution's input gives (`input.target.newVersion`): absent
        /// from the construct's plan, refused below when still absent.
        #[serde(default)]
        #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^[0-9]{1,10}$")))]
        new_version: String,
        #[serde(default)]
        #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^[0-9]{1,10}$")))]
        stable_version: Option<String>,
        #[serde(default)]
        #[cfg_attr(
            feature = "schema",
            schemars(regex(pattern = r"^(?![0-9]+$)[A-Za-z0-9_-]{1,128}$"))
        )]
        stable_alias: Option<String>,
    },
}

#[derive(Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
struct RawStep {
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 100)))]
    weight: i64,
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(schema_with = "bake_schema"))]
    bake: Option<Value>,
}

/// A step's bake: a duration in the one grammar, or none.
#[cfg(feature = "schema")]
fn bake_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    // Flat (one branch a JSON type) so that validators name the failing type, not "no branch".
    let mut schema =
        shiftguard_common::duration::json_schema_within(0, MAX_BAKE.as_millis() as u64);
    if let Some(branches) = schema.get_mut("anyOf").and_then(|b| b.as_array_mut()) {
        branches.push(serde_json::json!({"type": "null"}));
    }
    schema
}

#[derive(Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
struct RawChecks {
    // Parsed as check sets by `hooks::config::parse_checks_json` (below): their schema is a CheckSet's.
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
            RolloutTarget::LatticeListener(ListenerRollout {
                service,
                listener,
                production_target_group,
                canary_target_group,
            })
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
            RolloutTarget::LambdaAlias(AliasRollout {
                function,
                alias,
                new_version,
                stable_version,
                stable_alias,
            })
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
            hooks::config::parse_checks_json(v).map_err(|e| format!("rollout.checks.{field}.{e}"))
        })
        .transpose()
    };
    let checks_before = parse(before, "before")?;
    let checks_after = parse(after, "after")?;
    if let RolloutTarget::LatticeListener(_) = &target {
        if r.check_function.is_none() {
            for (field, set) in [("before", &checks_before), ("after", &checks_after)] {
                for (i, c) in set.iter().flat_map(|s| s.checks.iter()).enumerate() {
                    if needs_function(&c.kind) {
                        return Err(format!(
                            "rollout.checks.{field}.checks[{i}] ({:?}): a {} check looks at a Lambda function: give rollout.checkFunction {{function, version, currentVersion}} for a lattice target, or use http checks",
                            c.name,
                            c.kind.name()
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

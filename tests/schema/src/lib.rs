//! The JSON Schema of ShiftGuard's configuration, generated from the types the functions parse it
//! with, so the construct (cdk/lib/validate.ts) refuses at synth exactly what the functions would
//! refuse at their first deployment: `HOOK_CHECKS` (a check set), `ROLLBACK_TARGETS` (alarm →
//! target mappings) and a rollout's plan. Committed at `cdk/schema/shiftguard.schema.json`; the
//! test fails when it is stale (`make schema` writes it).

use schemars::generate::SchemaSettings;

/// Where the schema is committed (relative to the workspace root).
pub const COMMITTED: &str = "cdk/schema/shiftguard.schema.json";

/// The schema document: `$defs` holds every type; `checkSet`, `rollbackMappings` and
/// `rolloutPlan` are references to the three roots.
pub fn schema() -> serde_json::Value {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let check_set = generator.subschema_for::<hooks::config::CheckSet>();
    let mappings = generator.subschema_for::<Vec<rollback::config::Mapping>>();
    let plan = shift::plan::plan_schema(&mut generator);
    let defs = generator.take_definitions(true);
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://shiftguard.dev/schema/shiftguard.schema.json",
        "title": "ShiftGuard configuration",
        "description": "Generated from the Rust configuration types by tests/schema (make schema): do not edit.",
        "$defs": defs,
        "properties": {
            "checkSet": check_set,
            "rollbackMappings": mappings,
            "rolloutPlan": plan,
        },
    })
}

/// The committed text: pretty JSON, one trailing newline.
pub fn text() -> String {
    serde_json::to_string_pretty(&schema()).expect("a schema is JSON") + "\n"
}

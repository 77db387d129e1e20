//! What the emulator's call log says a function wrote.

use serde_json::Value;

use crate::Emulator;

/// Mutating AWS calls the emulator received (what a test that expects "nothing touched" checks).
/// The writes the emulator received, `service:Operation`, in order — except rollback's restore
/// records (`shiftguard:restored` tags: see [`records`]), which say what rollback did, not where
/// traffic goes.
pub fn writes(emu: &Emulator) -> Vec<String> {
    emu.calls()
        .iter()
        .filter(|c| !is_record(c))
        .map(|c| {
            format!(
                "{}:{}",
                c["service"].as_str().unwrap_or(""),
                c["operation"].as_str().unwrap_or("")
            )
        })
        .filter(|op| {
            [
                "UpdateAlias",
                "StopDeployment",
                "UpdateListener",
                "UpdateRule",
                "BatchUpdateRule",
                "Publish",
                "UpdateStage",
                "TagResource",
                "RegisterTargets",
                "DeregisterTargets",
            ]
            .iter()
            .any(|w| op.ends_with(w))
        })
        .collect()
}

fn is_record(call: &Value) -> bool {
    call["operation"] == "TagResource"
        && call["body"]
            .as_str()
            .is_some_and(|b| b.contains("shiftguard:restored"))
}

/// How many restore records (`shiftguard:restored…` tags) rollback wrote.
pub fn records(emu: &Emulator) -> usize {
    emu.calls().iter().filter(|c| is_record(c)).count()
}

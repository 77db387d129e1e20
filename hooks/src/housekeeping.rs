//! Post-traffic housekeeping, opt-in, after a successful report: move the stable-pointer alias to
//! the new version and prune old versions.

use std::collections::BTreeSet;

use serde_json::{json, Value};
use shiftguard_common::error_text;
use tracing::info;

use crate::config::HookConfig;
use crate::discovery::DeploymentTarget;
use crate::Clients;

/// Returns what was done, or `None` when nothing is configured.
pub async fn tidy(
    clients: &Clients,
    cfg: &HookConfig,
    target: &DeploymentTarget,
) -> Result<Option<Value>, String> {
    let mut done = serde_json::Map::new();
    if let Some(pointer) = &cfg.stable_alias {
        done.insert(
            "stableAlias".into(),
            move_pointer(clients, &target.function, pointer, &target.target_version).await?,
        );
    }
    if let Some(keep) = cfg.prune_keep {
        done.insert("pruned".into(), prune(clients, target, keep).await?);
    }
    Ok((!done.is_empty()).then_some(Value::Object(done)))
}

async fn move_pointer(
    clients: &Clients,
    function: &str,
    pointer: &str,
    version: &str,
) -> Result<Value, String> {
    let before =
        shiftguard_common::lambda::alias_version(&clients.lambda, function, pointer).await?;
    if before.as_deref() == Some(version) {
        return Ok(json!({"alias": pointer, "before": before, "after": version, "changed": false}));
    }
    if before.is_some() {
        clients
            .lambda
            .update_alias()
            .function_name(function)
            .name(pointer)
            .function_version(version)
            .send()
            .await
            .map_err(|e| format!("UpdateAlias {pointer}: {}", error_text(&e)))?;
    } else {
        clients
            .lambda
            .create_alias()
            .function_name(function)
            .name(pointer)
            .function_version(version)
            .description(
                "ShiftGuard stable pointer: the last version that passed post-traffic checks",
            )
            .send()
            .await
            .map_err(|e| format!("CreateAlias {pointer}: {}", error_text(&e)))?;
    }
    info!(function, alias = pointer, before = ?before, after = version, action = "move-stable-pointer", outcome = "done", "moved the stable pointer");
    Ok(json!({"alias": pointer, "before": before, "after": version, "changed": true}))
}

/// Deletes numbered versions beyond the newest `keep`, never one an alias routes to, nor the two
/// versions of this deployment.
async fn prune(clients: &Clients, target: &DeploymentTarget, keep: usize) -> Result<Value, String> {
    let function = target.function.as_str();
    let mut versions = Vec::new();
    let mut marker = None;
    loop {
        let out = clients
            .lambda
            .list_versions_by_function()
            .function_name(function)
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| format!("ListVersionsByFunction: {}", error_text(&e)))?;
        versions.extend(
            out.versions
                .unwrap_or_default()
                .into_iter()
                .filter_map(|v| v.version)
                .filter_map(|v| v.parse::<u64>().ok()),
        );
        marker = out.next_marker.filter(|m| !m.is_empty());
        if marker.is_none() {
            break;
        }
    }
    let mut protected: BTreeSet<String> = [
        Some(target.target_version.clone()),
        target.current_version.clone(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut marker = None;
    loop {
        let out = clients
            .lambda
            .list_aliases()
            .function_name(function)
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| format!("ListAliases: {}", error_text(&e)))?;
        for alias in out.aliases.unwrap_or_default() {
            protected.extend(alias.function_version);
            protected.extend(
                alias
                    .routing_config
                    .and_then(|r| r.additional_version_weights)
                    .unwrap_or_default()
                    .into_keys(),
            );
        }
        marker = out.next_marker.filter(|m| !m.is_empty());
        if marker.is_none() {
            break;
        }
    }
    versions.sort_unstable_by(|a, b| b.cmp(a));
    let doomed: Vec<String> = versions
        .iter()
        .skip(keep)
        .map(u64::to_string)
        .filter(|v| !protected.contains(v))
        .collect();
    for v in &doomed {
        clients
            .lambda
            .delete_function()
            .function_name(function)
            .qualifier(v)
            .send()
            .await
            .map_err(|e| format!("DeleteFunction {function}:{v}: {}", error_text(&e)))?;
        info!(function, version = %v, action = "prune-version", outcome = "deleted", "deleted an old version");
    }
    Ok(json!({"kept": keep, "deleted": doomed, "protected": protected}))
}

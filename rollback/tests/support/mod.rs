//! Fixtures for rollback's emulator tests: real resources created through the AWS API.
#![allow(dead_code, unused_imports)] // each test crate uses a part of the kit

use rollback::{Clients, Config};
use serde_json::{json, Value};
pub use shiftguard_testkit::apigateway::*;
pub use shiftguard_testkit::calls::*;
use shiftguard_testkit::fixtures;
pub use shiftguard_testkit::fixtures::topic_to_lambda;
pub use shiftguard_testkit::lattice::*;

/// The test kit's world with rollback's clients.
pub type World = shiftguard_testkit::World<Clients>;

pub async fn world() -> World {
    World::start(|sdk| {
        let clients = Clients::new(sdk);
        // As the binary learns it from its invocation: the emulator's account and region.
        clients.learn_home("arn:aws:lambda:us-east-1:123456789012:function:shiftguard-rollback");
        clients
    })
    .await
}

pub fn config(targets: Value) -> Config {
    config_with(targets, &[])
}

pub fn config_with(targets: Value, extra: &[(&str, &str)]) -> Config {
    let targets = targets.to_string();
    let mut vars: Vec<(&str, &str)> = vec![("ROLLBACK_TARGETS", targets.as_str())];
    vars.extend_from_slice(extra);
    Config::from_vars(&vars[..]).expect("valid config")
}

pub async fn function(w: &World, name: &str, versions: usize) {
    fixtures::function(&w.clients.lambda, name, versions).await
}

pub async fn alias(w: &World, function: &str, alias: &str, version: &str, weights: &[(&str, f64)]) {
    fixtures::alias(&w.clients.lambda, function, alias, version, weights).await
}

pub async fn alias_state(w: &World, function: &str, alias: &str) -> (String, Vec<(String, f64)>) {
    fixtures::alias_state(&w.clients.lambda, function, alias).await
}

pub fn alias_target(function: &str, alias: &str) -> Value {
    json!({"type": "lambda-alias", "function": function, "alias": alias})
}

/// The alarm every alias test maps: the single-metric sample event's.
pub const CANARY_ALARM: &str = "checkout-canary-errors";
/// The sample event of [`CANARY_ALARM`] through SNS.
pub const CANARY_EVENT: &str = "rollback/sns-single-metric-alarm.json";

/// `ROLLBACK_TARGETS` that map [`CANARY_ALARM`] to `targets`.
pub fn canary_mapping(targets: Vec<Value>) -> Value {
    json!([{ "alarms": [CANARY_ALARM], "targets": targets }])
}

/// Rollback configured with [`CANARY_ALARM`] → `checkout:live`, the mapping most tests use.
pub fn checkout_config() -> Config {
    config(canary_mapping(vec![alias_target("checkout", "live")]))
}

/// `checkout` with versions 1 and 2, `live` in a CodeDeploy-shaped canary: 1 with 2 at 10%.
pub async fn checkout_canary(w: &World) {
    function(w, "checkout", 2).await;
    alias(w, "checkout", "live", "1", &[("2", 0.1)]).await;
}

/// `function:alias` moved (not created) to `version` with `weights`, as a shift or an operator would.
pub async fn set_alias(
    w: &World,
    function: &str,
    alias: &str,
    version: &str,
    weights: &[(&str, f64)],
) {
    w.clients
        .lambda
        .update_alias()
        .function_name(function)
        .name(alias)
        .function_version(version)
        .routing_config(fixtures::routing(weights))
        .send()
        .await
        .expect("UpdateAlias");
}

/// `checkout:live` as the API reports it now.
pub async fn live(w: &World) -> (String, Vec<(String, f64)>) {
    alias_state(w, "checkout", "live").await
}

/// An alias state with `version` alone on traffic.
pub fn only(version: &str) -> (String, Vec<(String, f64)>) {
    (version.to_string(), vec![])
}

/// Rollback's handler on the sample event `file`, with the default deadline.
pub async fn run(
    w: &World,
    cfg: &Config,
    file: &str,
) -> Result<rollback::report::Summary, rollback::RollbackError> {
    rollback::handle(
        &w.clients,
        cfg,
        &shiftguard_testkit::event(file),
        rollback::Deadline::default(),
    )
    .await
}

/// `checkout:live` as the rehearsal stack (`cdk/lib/rehearsal.ts`) maps it: with its CodeDeploy
/// group, which scopes rollback's deployment lookups (create it with [`rehearsal_group`]).
pub fn rehearsal_alias_target() -> Value {
    let mut target = alias_target("checkout", "live");
    target["codeDeploy"] = json!({"application": "checkout-app", "deploymentGroup": "checkout-dg"});
    target
}

/// The rehearsal stack's CodeDeploy application and group (`checkout-app` / `checkout-dg`).
pub async fn rehearsal_group(w: &World) {
    fixtures::codedeploy_group(&w.clients.codedeploy, "checkout-app", "checkout-dg").await;
}

/// `rollback` as the construct deploys it, for a binary test: strict IAM on (the test's own clients
/// are the operator) and the environment with the rehearsal stack's rollback role. Create the world
/// first: the role's references are resolved against it.
pub fn rollback_role_env(w: &World) -> Vec<(String, String)> {
    w.emu.strict_iam();
    w.emu.role_env("checkout_rollback")
}

/// A CodeDeploy deployment of the sample stack (`checkout-app`, alias `checkout:live`) shifting
/// from version `current` to `target`; returns its id.
pub async fn checkout_deployment(w: &World, current: &str, target: &str) -> String {
    let codedeploy = &w.clients.codedeploy;
    fixtures::codedeploy_deployment(
        codedeploy,
        "checkout-app",
        "checkout",
        "live",
        current,
        target,
    )
    .await
}

/// When the sample events' alarms changed state (`StateChangeTime` in `events/rollback/`).
pub const ALARM_TIME: &str = "2026-11-21T14:57:14.419Z";
/// A deployment created before the sample alarm fired: what that alarm is about.
pub const BEFORE_THE_ALARM: &str = "2026-11-21T14:50:00Z";
/// A deployment created after the sample alarm fired: a late (retried) alarm is not about it.
pub const AFTER_THE_ALARM: &str = "2026-11-21T15:30:00Z";

/// A world with [`checkout_canary`] and CodeDeploy's deployment of it (1 → 2) in flight since before
/// the sample alarm, with `extra` control-plane settings; the deployment's id beside it.
pub async fn canary_in_flight(extra: Value) -> (World, String) {
    let w = world().await;
    checkout_canary(&w).await;
    let id = deployment_in_flight(&w, ("1", "2"), BEFORE_THE_ALARM, extra).await;
    (w, id)
}

/// An in-flight CodeDeploy deployment of `function:alias` from `current` to `target`, created at
/// `created`, with `extra` control-plane settings (e.g. `rollback_delay`).
pub async fn deployment_in_flight(
    w: &World,
    versions: (&str, &str),
    created: &str,
    extra: Value,
) -> String {
    let id = checkout_deployment(w, versions.0, versions.1).await;
    let mut body = json!({"status": "InProgress", "createTime": created});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    w.emu.set_deployment(&id, body);
    id
}

pub fn lattice_target(lat: &Lattice) -> Value {
    json!({"type": "lattice-listener", "service": lat.service, "listener": lat.listener, "productionTargetGroup": lat.production})
}

pub fn stage_target(api: &Api) -> Value {
    json!({"type": "apigateway-canary", "restApi": api.id, "stage": "prod"})
}

//! Fixtures for rollback's emulator tests: real resources created through the AWS API.
#![allow(dead_code)]

use aws_sdk_apigateway::types::DeploymentCanarySettings;
use aws_sdk_vpclattice::types::{
    ForwardAction, HttpMatch, PathMatch, PathMatchType, RuleAction, RuleMatch, TargetGroupType,
    WeightedTargetGroup,
};
use rollback::{Clients, Config};
use serde_json::{json, Value};
use shiftguard_testkit::{fixtures, Emulator};

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

/// An SNS topic `name` that delivers to the Lambda function `endpoint` (an ARN): the topic's ARN.
pub async fn topic_to_lambda(w: &World, name: &str, endpoint: &str) -> String {
    let topic = w
        .clients
        .sns()
        .create_topic()
        .name(name)
        .send()
        .await
        .expect("CreateTopic")
        .topic_arn
        .expect("a topic ARN");
    w.clients
        .sns()
        .subscribe()
        .topic_arn(&topic)
        .protocol("lambda")
        .endpoint(endpoint)
        .send()
        .await
        .expect("Subscribe");
    topic
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

pub struct Lattice {
    pub service: String,
    pub listener: String,
    pub production: String,
    pub canary: String,
    pub other: String,
}

fn forward(groups: &[(&str, i32)]) -> RuleAction {
    RuleAction::Forward(
        ForwardAction::builder()
            .set_target_groups(Some(
                groups
                    .iter()
                    .map(|(g, w)| {
                        WeightedTargetGroup::builder()
                            .target_group_identifier(*g)
                            .weight(*w)
                            .build()
                            .unwrap()
                    })
                    .collect(),
            ))
            .build()
            .unwrap(),
    )
}

/// A service whose listener forwards 90/10 production/canary by default.
pub async fn lattice(w: &World, default_weights: (i32, i32)) -> Lattice {
    let l = &w.clients.lattice();
    let service = l
        .create_service()
        .name("orders")
        .send()
        .await
        .expect("CreateService")
        .id
        .unwrap();
    let mut groups = Vec::new();
    for name in ["orders-production", "orders-canary", "orders-admin"] {
        groups.push(
            l.create_target_group()
                .name(name)
                .r#type(TargetGroupType::Lambda)
                .send()
                .await
                .expect("CreateTargetGroup")
                .id
                .unwrap(),
        );
    }
    let listener = l
        .create_listener()
        .service_identifier(&service)
        .name("orders-https")
        .protocol(aws_sdk_vpclattice::types::ListenerProtocol::Https)
        .default_action(forward(&[
            (&groups[0], default_weights.0),
            (&groups[1], default_weights.1),
        ]))
        .send()
        .await
        .expect("CreateListener")
        .id
        .unwrap();
    Lattice {
        service,
        listener,
        production: groups[0].clone(),
        canary: groups[1].clone(),
        other: groups[2].clone(),
    }
}

pub async fn lattice_rule(
    w: &World,
    lat: &Lattice,
    name: &str,
    priority: i32,
    prefix: &str,
    groups: &[(&str, i32)],
) -> String {
    w.clients
        .lattice()
        .create_rule()
        .service_identifier(&lat.service)
        .listener_identifier(&lat.listener)
        .name(name)
        .priority(priority)
        .r#match(RuleMatch::HttpMatch(
            HttpMatch::builder()
                .path_match(
                    PathMatch::builder()
                        .r#match(PathMatchType::Prefix(prefix.into()))
                        .build(),
                )
                .build(),
        ))
        .action(forward(groups))
        .send()
        .await
        .expect("CreateRule")
        .id
        .unwrap()
}

/// The weights of a forward action, as (target group, weight) pairs.
pub fn weights_of(action: Option<&RuleAction>) -> Vec<(String, i32)> {
    match action {
        Some(RuleAction::Forward(f)) => f
            .target_groups
            .iter()
            .map(|g| (g.target_group_identifier.clone(), g.weight.unwrap_or(-1)))
            .collect(),
        other => panic!("not a forward: {other:?}"),
    }
}

/// `lat`'s listener as the API reports it now.
pub async fn get_listener(
    w: &World,
    lat: &Lattice,
) -> aws_sdk_vpclattice::operation::get_listener::GetListenerOutput {
    w.clients
        .lattice()
        .get_listener()
        .service_identifier(&lat.service)
        .listener_identifier(&lat.listener)
        .send()
        .await
        .expect("GetListener")
}

pub async fn listener_weights(w: &World, lat: &Lattice) -> Vec<(String, i32)> {
    weights_of(get_listener(w, lat).await.default_action.as_ref())
}

pub async fn rule_weights(w: &World, lat: &Lattice, rule: &str) -> Vec<(String, i32)> {
    let out = w
        .clients
        .lattice()
        .get_rule()
        .service_identifier(&lat.service)
        .listener_identifier(&lat.listener)
        .rule_identifier(rule)
        .send()
        .await
        .expect("GetRule");
    weights_of(out.action.as_ref())
}

pub fn lattice_target(lat: &Lattice) -> Value {
    json!({"type": "lattice-listener", "service": lat.service, "listener": lat.listener, "productionTargetGroup": lat.production})
}

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

pub struct Api {
    pub id: String,
    pub production: String,
    pub canary: String,
}

/// The id the rehearsal stack (`cdk/lib/rehearsal.ts`) names: a world's first API gets it.
pub const REHEARSAL_API_ID: &str = "chk0api001";

/// A REST API with stage `prod` on deployment 1 and (with `percent`) a canary deployment 2. The
/// world's first API has the rehearsal stack's id (moto's `_custom_id_` tag), so that a binary
/// with the stack's role may act on it.
pub async fn api(w: &World, percent: Option<f64>) -> Api {
    let gw = &w.clients.apigateway();
    let taken = gw
        .get_rest_apis()
        .send()
        .await
        .expect("GetRestApis")
        .items
        .unwrap_or_default()
        .iter()
        .any(|a| a.id.as_deref() == Some(REHEARSAL_API_ID));
    let mut create = gw.create_rest_api().name("checkout-api");
    if !taken {
        create = create.tags("_custom_id_", REHEARSAL_API_ID);
    }
    let id = create.send().await.expect("CreateRestApi").id.unwrap();
    // AWS refuses to deploy an API without methods: GET / with a mock integration.
    let root = gw
        .get_resources()
        .rest_api_id(&id)
        .send()
        .await
        .expect("GetResources")
        .items
        .unwrap_or_default()
        .into_iter()
        .find(|r| r.path.as_deref() == Some("/"))
        .and_then(|r| r.id)
        .expect("the root resource");
    gw.put_method()
        .rest_api_id(&id)
        .resource_id(&root)
        .http_method("GET")
        .authorization_type("NONE")
        .send()
        .await
        .expect("PutMethod");
    gw.put_integration()
        .rest_api_id(&id)
        .resource_id(&root)
        .http_method("GET")
        .r#type(aws_sdk_apigateway::types::IntegrationType::Mock)
        .send()
        .await
        .expect("PutIntegration");
    let production = gw
        .create_deployment()
        .rest_api_id(&id)
        .stage_name("prod")
        .send()
        .await
        .expect("CreateDeployment")
        .id
        .unwrap();
    let mut canary = String::new();
    if let Some(percent) = percent {
        canary = gw
            .create_deployment()
            .rest_api_id(&id)
            .stage_name("prod")
            .canary_settings(
                DeploymentCanarySettings::builder()
                    .percent_traffic(percent)
                    .build(),
            )
            .send()
            .await
            .expect("CreateDeployment with a canary")
            .id
            .unwrap();
    }
    Api {
        id,
        production,
        canary,
    }
}

/// (stage deployment, canary deployment, canary percent).
pub async fn stage_state(w: &World, api: &Api) -> (Option<String>, Option<String>, Option<f64>) {
    let s = w
        .clients
        .apigateway()
        .get_stage()
        .rest_api_id(&api.id)
        .stage_name("prod")
        .send()
        .await
        .expect("GetStage");
    let canary = s.canary_settings;
    (
        s.deployment_id,
        canary.as_ref().and_then(|c| c.deployment_id.clone()),
        canary.map(|c| c.percent_traffic),
    )
}

pub fn stage_target(api: &Api) -> Value {
    json!({"type": "apigateway-canary", "restApi": api.id, "stage": "prod"})
}

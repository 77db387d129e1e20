//! What `shift`'s emulator tests share: a world with `shift`'s clients, plans, the listener's
//! marker, and a driver that runs steps until a rollout ends.
#![allow(dead_code)]

use std::time::Duration;

use aws_sdk_cloudwatch::types::StateValue;
use rollback::Deadline;
use serde_json::{json, Value};
use shift::plan::{Marker, MARKER_KEY};
use shift::{handle_shift, ShiftClients, ShiftConfig, ShiftError, StepSummary};

pub use crate::support::*;

pub const ALARM: &str = "orders-canary-5xx";

pub struct Shift {
    pub w: World,
    pub shift: ShiftClients,
}

pub async fn shift_world() -> Shift {
    let w = world().await;
    let shift = ShiftClients::new(&w.emu.sdk_config().await);
    Shift { w, shift }
}

pub async fn step(s: &Shift, event: &Value) -> Result<StepSummary, ShiftError> {
    step_with(s, event, &[]).await
}

pub async fn step_with(
    s: &Shift,
    event: &Value,
    vars: &[(String, String)],
) -> Result<StepSummary, ShiftError> {
    let config = ShiftConfig::from_vars(vars).unwrap();
    handle_shift(
        &s.shift,
        &config,
        event,
        Deadline::after(Duration::from_secs(60)),
    )
    .await
}

/// Runs steps until the rollout ends, waiting as told; returns every step's summary.
pub async fn drive(s: &Shift, event: &Value) -> Vec<StepSummary> {
    let mut all = Vec::new();
    loop {
        let summary = step(s, event).await.expect("a step");
        let (status, wait) = (summary.status, summary.wait_ms.unwrap_or(0));
        all.push(summary);
        if status != "in-progress" {
            return all;
        }
        assert!(all.len() < 20, "a rollout of three steps that does not end");
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
}

pub async fn alarm(s: &Shift, name: &str) {
    shiftguard_testkit::fixtures::metric_alarm(
        s.shift.hooks.cloudwatch(),
        name,
        ("AWS/VpcLattice", "HTTPCode_5XX_Count"),
        &[],
        &[],
    )
    .await;
}

pub async fn set_alarm(s: &Shift, name: &str, state: StateValue) {
    s.shift
        .hooks
        .cloudwatch()
        .set_alarm_state()
        .alarm_name(name)
        .state_value(state)
        .state_reason("test")
        .send()
        .await
        .expect("SetAlarmState");
}

pub async fn version_arn(s: &Shift, function: &str, version: &str) -> String {
    s.w.clients
        .lambda
        .get_function_configuration()
        .function_name(function)
        .qualifier(version)
        .send()
        .await
        .expect("GetFunctionConfiguration")
        .function_arn
        .unwrap()
}

/// `orders` versions 1 (behind production) and 2 (behind the canary group), the listener at
/// production 100 / canary 0, and the alarm in OK.
pub async fn lattice_world() -> (Shift, Lattice) {
    let s = shift_world().await;
    let lat = lattice(&s.w, (100, 0)).await;
    function(&s.w, "orders", 2).await;
    let (v1, v2) = (
        version_arn(&s, "orders", "1").await,
        version_arn(&s, "orders", "2").await,
    );
    // A Lambda target group holds one target: production's is the alias `live` (on version 1),
    // which promotion moves, so that production is never without a target.
    alias(&s.w, "orders", "live", "1", &[]).await;
    let _ = v1;
    register(&s.w, &lat.production, &live_arn(&s).await).await;
    register(&s.w, &lat.canary, &v2).await;
    alarm(&s, ALARM).await;
    set_alarm(&s, ALARM, StateValue::Ok).await;
    (s, lat)
}

/// The alias-qualified ARN production's target group holds (`orders:live`).
pub async fn live_arn(s: &Shift) -> String {
    let v1 = version_arn(s, "orders", "1").await;
    format!("{}:live", v1.rsplit_once(':').unwrap().0)
}

pub fn lattice_plan(lat: &Lattice, id: &str) -> Value {
    json!({"shiftguard": "shift", "rollout": {
        "id": id,
        "target": {"type": "lattice-listener", "service": lat.service, "listener": lat.listener,
                   "productionTargetGroup": lat.production, "canaryTargetGroup": lat.canary},
        "steps": [{"weight": 10, "bake": "300ms"}, {"weight": 50, "bake": "300ms"}, {"weight": 100, "bake": "300ms"}],
        "alarms": [ALARM],
    }})
}

pub fn canary_share(weights: &[(String, i32)], lat: &Lattice) -> i32 {
    let get = |g: &str| weights.iter().find(|(n, _)| n == g).map_or(0, |(_, w)| *w);
    let (p, c) = (get(&lat.production), get(&lat.canary));
    c * 100 / (p + c)
}

pub async fn listener_arn(s: &Shift, lat: &Lattice) -> String {
    get_listener(&s.w, lat).await.arn.unwrap()
}

pub async fn listener_marker(s: &Shift, lat: &Lattice) -> Option<Marker> {
    let tags =
        s.w.clients
            .lattice()
            .list_tags_for_resource()
            .resource_arn(listener_arn(s, lat).await)
            .send()
            .await
            .expect("ListTagsForResource")
            .tags
            .unwrap_or_default();
    tags.get(MARKER_KEY).and_then(|t| Marker::decode(t))
}

/// The marker a crash (or a person) left on the listener.
pub async fn set_marker(s: &Shift, lat: &Lattice, marker: &Marker) {
    s.w.clients
        .lattice()
        .tag_resource()
        .resource_arn(listener_arn(s, lat).await)
        .tags(MARKER_KEY, marker.encode())
        .send()
        .await
        .expect("TagResource");
}

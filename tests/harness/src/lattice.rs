//! VPC Lattice fixtures: a service `orders` whose listener forwards between a production and a
//! canary target group (a third group, `orders-admin`, for rules), and readers of its weights.
//! Used by rollback's and `shift`'s tests alike.

use aws_sdk_vpclattice::types::{
    ForwardAction, HttpMatch, PathMatch, PathMatchType, RuleAction, RuleMatch, TargetGroupType,
    WeightedTargetGroup,
};

use crate::World;

fn client<C>(w: &World<C>) -> aws_sdk_vpclattice::Client {
    aws_sdk_vpclattice::Client::new(&w.sdk)
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
pub async fn lattice<C>(w: &World<C>, default_weights: (i32, i32)) -> Lattice {
    let l = &client(w);
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

pub async fn lattice_rule<C>(
    w: &World<C>,
    lat: &Lattice,
    name: &str,
    priority: i32,
    prefix: &str,
    groups: &[(&str, i32)],
) -> String {
    client(w)
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
pub async fn get_listener<C>(
    w: &World<C>,
    lat: &Lattice,
) -> aws_sdk_vpclattice::operation::get_listener::GetListenerOutput {
    client(w)
        .get_listener()
        .service_identifier(&lat.service)
        .listener_identifier(&lat.listener)
        .send()
        .await
        .expect("GetListener")
}

pub async fn listener_weights<C>(w: &World<C>, lat: &Lattice) -> Vec<(String, i32)> {
    weights_of(get_listener(w, lat).await.default_action.as_ref())
}

pub async fn rule_weights<C>(w: &World<C>, lat: &Lattice, rule: &str) -> Vec<(String, i32)> {
    let out = client(w)
        .get_rule()
        .service_identifier(&lat.service)
        .listener_identifier(&lat.listener)
        .rule_identifier(rule)
        .send()
        .await
        .expect("GetRule");
    weights_of(out.action.as_ref())
}

/// Registers the target `arn` (a Lambda function or an alias of one) in target group `group`.
pub async fn register<C>(w: &World<C>, group: &str, arn: &str) {
    client(w)
        .register_targets()
        .target_group_identifier(group)
        .targets(
            aws_sdk_vpclattice::types::Target::builder()
                .id(arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("RegisterTargets");
}

/// The ids of `group`'s targets, those draining left out (as `shift` reads them).
pub async fn targets<C>(w: &World<C>, group: &str) -> Vec<String> {
    client(w)
        .list_targets()
        .target_group_identifier(group)
        .send()
        .await
        .expect("ListTargets")
        .items
        .into_iter()
        .filter(|t| t.status != Some(aws_sdk_vpclattice::types::TargetStatus::Draining))
        .filter_map(|t| t.id)
        .collect()
}

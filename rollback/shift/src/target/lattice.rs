//! A VPC Lattice listener's rollout: everything `shift` knows of this target kind — reading its
//! weighted forwards and marker, the checks before a start, moving the canary's share, promotion
//! (a Lambda target group's production alias moved, other groups' targets swapped register-first),
//! the abort's restore and undoing a promotion. The dispatcher (`target/mod.rs`) calls it.

use aws_sdk_lambda::types::AliasRoutingConfiguration;
use hooks::discovery::DeploymentTarget;
use rollback::config::LatticeListenerTarget;
use rollback::lattice::{read_forwards, same_resource, write_groups, Forward};
use rollback::report::TargetReport;
use rollback::truth::TagFacts;
use serde_json::{json, Value};
use shiftguard_common::{error_text, found_or_why};
use tracing::warn;

use crate::context::Read;
use crate::context::{Ctx, Failure};
use crate::plan::{ListenerRollout, Plan, Status, Traffic, Why};
use crate::target::read_failed;
use crate::{ShiftClients, ShiftError, StepSummary};

/// The listener as rollback's configuration names it (the restore goes through rollback's code).
pub(crate) fn spec(t: &ListenerRollout) -> LatticeListenerTarget {
    LatticeListenerTarget {
        service: t.service.clone(),
        listener: t.listener.clone(),
        production_target_group: t.production_target_group.clone(),
    }
}

pub(crate) async fn read(
    clients: &ShiftClients,
    plan: &Plan,
    t: &ListenerRollout,
) -> Result<Read, ShiftError> {
    let ListenerRollout {
        service,
        listener,
        production_target_group,
        canary_target_group,
    } = t;
    let lattice = &clients.rollback.lattice();
    let got = found_or_why(
        lattice
            .get_listener()
            .service_identifier(service)
            .listener_identifier(listener)
            .send()
            .await,
    )
    .map_err(|e| read_failed(plan, "GetListener", &e))?
    .map_err(|why| {
        ShiftError::InvalidPlan(format!(
            "rollout.target.listener: {listener} of service {service} does not exist ({why})"
        ))
    })?;
    let arn = got.arn.clone().unwrap_or_default();
    let forwards = read_forwards(&clients.rollback, &spec(t))
        .await
        .map_err(|e| ShiftError::Aws {
            message: e.to_string(),
            summary: json!({"rollout": plan.id, "target": plan.target.id()}).to_string(),
        })?;
    let ours = our_forwards(&forwards, production_target_group, canary_target_group);
    if ours.is_empty() {
        return Err(ShiftError::InvalidPlan(format!(
                    "rollout.target: no weighted forward of listener {listener} (default action or rule) names both the production target group {production_target_group} and the canary target group {canary_target_group}; add the canary group to the forward with weight 0"
                )));
    }
    let traffic = lattice_traffic(&ours, production_target_group, canary_target_group);
    let tags = lattice
        .list_tags_for_resource()
        .resource_arn(&arn)
        .send()
        .await
        .map_err(|e| read_failed(plan, "ListTagsForResource", &e))?;
    let facts = TagFacts::from_tags(&tags.tags.unwrap_or_default(), None);
    Ok(Read {
        marker: facts.marker,
        record: facts.record,
        traffic,
        describe: rollback::lattice::describe(&forwards),
        tag_resource: arn,
        tag_key: rollback::truth::marker_key(None),
        stable: None,
    })
}

/// The function the checks look at: `checkFunction`, when the plan names one.
pub(crate) fn check_target(plan: &Plan) -> DeploymentTarget {
    let (function, alias, current, target) = match &plan.check_function {
        Some(f) => (
            f.function.clone(),
            f.alias.clone(),
            f.current_version.clone(),
            f.version.clone(),
        ),
        None => (String::new(), None, None, String::new()),
    };
    crate::target::deployment_target(function, alias, current, target)
}

impl Ctx<'_> {
    pub(crate) async fn lattice_check_start(&self, t: &ListenerRollout) -> Result<(), Failure> {
        let ListenerRollout {
            production_target_group,
            canary_target_group,
            ..
        } = t;
        let canary = self.list_targets(canary_target_group).await?;
        for (field, group, empty) in [
            ("canaryTargetGroup", canary_target_group, canary.is_empty()),
            (
                "productionTargetGroup",
                production_target_group,
                self.list_targets(production_target_group).await?.is_empty(),
            ),
        ] {
            if empty {
                return Err(Failure::Invalid(format!(
                    "rollout.target.{field}: {group} has no registered targets"
                )));
            }
        }
        // A Lambda target group holds one target: promotion can only keep production
        // whole by moving an alias production's group serves (checked before anything
        // moves, not at promotion).
        if self.is_lambda_group(production_target_group).await? {
            let production = self.list_targets(production_target_group).await?;
            if let Err(why) = lambda_promotion(&production, &canary) {
                return Err(Failure::Invalid(format!(
                    "rollout.target.productionTargetGroup: {why}"
                )));
            }
        }
        // The checks must look at what the canary group serves: a version of the checked
        // function registered there must be checkFunction's version.
        if let Some(f) = &self.plan.check_function {
            let name = shiftguard_common::codedeploy::function_name(&f.function);
            for (id, _) in &canary {
                let parts: Vec<&str> = id.split(':').collect();
                if let ["arn", _, "lambda", _, _, "function", fname, qualifier] = parts.as_slice() {
                    if *fname == name
                        && rollback::config::is_version_number(qualifier)
                        && *qualifier != f.version
                    {
                        return Err(Failure::Invalid(format!("rollout.checkFunction.version: {} but the canary target group serves {id}: the checks would judge another version than the one getting traffic", f.version)));
                    }
                }
            }
            if self
                .function_version(&f.function, &f.version)
                .await?
                .is_none()
            {
                return Err(Failure::Invalid(format!(
                    "rollout.checkFunction: version {} of {} does not exist",
                    f.version, f.function
                )));
            }
        }
        Ok(())
    }

    pub(crate) async fn lattice_read_traffic(
        &self,
        t: &ListenerRollout,
    ) -> Result<Traffic, Failure> {
        self.lattice_now(t).await.map(|(_, traffic)| traffic)
    }

    /// The listener's forwards as they are now, and the canary's share across those it moves.
    async fn lattice_now(&self, t: &ListenerRollout) -> Result<(Vec<Forward>, Traffic), Failure> {
        let ListenerRollout {
            production_target_group,
            canary_target_group,
            ..
        } = t;
        let forwards = read_forwards(&self.clients.rollback, &spec(t))
            .await
            .map_err(|e| Failure::Aws(e.to_string()))?;
        let traffic = lattice_traffic(
            &our_forwards(&forwards, production_target_group, canary_target_group),
            production_target_group,
            canary_target_group,
        );
        Ok((forwards, traffic))
    }

    pub(crate) async fn lattice_write_weights(
        &self,
        t: &ListenerRollout,
        weight: u8,
        allowed: &[u8],
    ) -> Result<Value, Failure> {
        let (forwards, now) = self.lattice_now(t).await?;
        if !now.within(allowed) {
            return Err(Failure::Changed(now));
        }
        for f in our_forwards(
            &forwards,
            &t.production_target_group,
            &t.canary_target_group,
        ) {
            self.write_forward(t, f, weight).await?;
        }
        // Read back: weights that are not what was written are another writer's.
        match self.lattice_now(t).await? {
            (back, Traffic::Canary(w)) if w == weight => Ok(rollback::lattice::describe(&back)),
            (_, other) => Err(Failure::Changed(other)),
        }
    }

    /// One forward that names both groups: production (100 − w), canary w, others as they are.
    async fn write_forward(
        &self,
        t: &ListenerRollout,
        f: &Forward,
        weight: u8,
    ) -> Result<(), Failure> {
        let ListenerRollout {
            production_target_group,
            canary_target_group,
            ..
        } = t;
        let groups: Vec<(String, i32)> = f
            .groups
            .iter()
            .map(|(g, w)| {
                let w = if same_resource(g, canary_target_group) {
                    i32::from(weight)
                } else if same_resource(g, production_target_group) {
                    100 - i32::from(weight)
                } else {
                    *w
                };
                (g.clone(), w)
            })
            .collect();
        write_groups(&self.clients.rollback, &spec(t), &f.place, &groups)
            .await
            .map_err(|e| Failure::WriteFailed(e.to_string()))
    }

    /// Whether a target group's targets are Lambda functions (one target, moved by an alias).
    async fn is_lambda_group(&self, group: &str) -> Result<bool, Failure> {
        let got = self
            .clients
            .rollback
            .lattice()
            .get_target_group()
            .target_group_identifier(group)
            .send()
            .await
            .map_err(|e| Failure::Aws(format!("GetTargetGroup failed: {}", error_text(&e))))?;
        Ok(got.r#type == Some(aws_sdk_vpclattice::types::TargetGroupType::Lambda))
    }

    pub(crate) async fn list_targets(
        &self,
        group: &str,
    ) -> Result<Vec<(String, Option<i32>)>, Failure> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .clients
                .rollback
                .lattice()
                .list_targets()
                .target_group_identifier(group)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| {
                    Failure::Aws(format!("ListTargets({group}) failed: {}", error_text(&e)))
                })?;
            // A deregistered target stays listed as DRAINING for the group's deregistration delay
            // (5 minutes by default): it is on its way out, not one of the group's targets.
            out.extend(
                page.items
                    .into_iter()
                    .filter(|t| t.status != Some(aws_sdk_vpclattice::types::TargetStatus::Draining))
                    .filter_map(|t| t.id.map(|id| (id, t.port))),
            );
            token = page.next_token.filter(|t| !t.is_empty());
            if token.is_none() {
                out.sort();
                return Ok(out);
            }
        }
    }

    pub(crate) async fn lattice_promote(
        &self,
        t: &ListenerRollout,
        traffic: Traffic,
        s: &mut StepSummary,
    ) -> Result<(), Failure> {
        let ListenerRollout {
            production_target_group,
            canary_target_group,
            ..
        } = t;
        let canary = self.list_targets(canary_target_group).await?;
        let production = self.list_targets(production_target_group).await?;
        if self.is_lambda_group(production_target_group).await? {
            let (function, alias, version) = match lambda_promotion(&production, &canary) {
                Ok(p) => p,
                Err(why) => return self.abort(why, Why::Promotion, true, s).await,
            };
            let current = rollback::alias::read_alias(&self.clients.rollback, &function, &alias)
                .await
                .map_err(|e| Failure::Aws(e.to_string()))?;
            let done = traffic == Traffic::Canary(0) && current.all_on(&version);
            if traffic != Traffic::Canary(100) && !done {
                return self.abort_changed(&traffic, s).await;
            }
            if !current.all_on(&version) {
                let prev = self
                    .prev
                    .lock()
                    .ok()
                    .and_then(|p| p.clone())
                    .unwrap_or_else(|| current.version.clone());
                if let Ok(mut p) = self.prev.lock() {
                    *p = Some(prev.clone());
                }
                // `prev` is on the target before the alias moves: a crash, an alarm or a
                // rollback from here on puts the alias back.
                self.write(&self.marker(s.step, Status::Promoting)).await?;
                self.move_alias(&function, &alias, &version, &current)
                    .await?;
                self.watch().await?;
            }
            let after = self.lattice_write_weights(t, 0, &[100, 0]).await?;
            self.watch().await?;
            s.after = Some(after);
            s.promotion = Some(json!({
                "productionAlias": format!("{function}:{alias}"),
                "version": version,
                "previous": self.prev.lock().ok().and_then(|p| p.clone()),
            }));
        } else {
            let done = traffic == Traffic::Canary(0) && !canary.is_empty() && production == canary;
            if traffic != Traffic::Canary(100) && !done {
                return self.abort_changed(&traffic, s).await;
            }
            if canary.is_empty() {
                return self
                            .abort(format!("the canary target group {canary_target_group} has no targets at promotion: production keeps its own"), Why::Promotion, true, s)
                            .await;
            }
            let stale: Vec<&(String, Option<i32>)> =
                production.iter().filter(|t| !canary.contains(t)).collect();
            let missing: Vec<&(String, Option<i32>)> =
                canary.iter().filter(|t| !production.contains(t)).collect();
            // Production has no traffic now (the canary has 100%): register first, then
            // deregister, so that the group is never empty; the record is read between.
            self.change_targets(production_target_group, &missing, true)
                .await?;
            self.watch().await?;
            self.change_targets(production_target_group, &stale, false)
                .await?;
            self.watch().await?;
            let now = self.list_targets(production_target_group).await?;
            if now != canary {
                return Err(Failure::Aws(format!("verification failed: production's targets are {now:?}, expected the canary's {canary:?}")));
            }
            let after = self.lattice_write_weights(t, 0, &[100, 0]).await?;
            self.watch().await?;
            s.after = Some(after);
            s.promotion = Some(json!({
                "productionTargets": canary.iter().map(|(id, port)| json!({"id": id, "port": port})).collect::<Vec<_>>(),
                "deregistered": stale.iter().map(|(id, port)| json!({"id": id, "port": port})).collect::<Vec<_>>(),
            }));
        }
        self.promoted(s).await
    }

    /// Registers (or deregisters) targets of a production group that is not a Lambda one.
    async fn change_targets(
        &self,
        group: &str,
        targets: &[&(String, Option<i32>)],
        register: bool,
    ) -> Result<(), Failure> {
        if targets.is_empty() {
            return Ok(());
        }
        let lattice = &self.clients.rollback.lattice();
        let built = targets
            .iter()
            .map(|(id, port)| {
                aws_sdk_vpclattice::types::Target::builder()
                    .id(id)
                    .set_port(*port)
                    .build()
                    .map_err(|e| Failure::Aws(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let unsuccessful = if register {
            lattice
                .register_targets()
                .target_group_identifier(group)
                .set_targets(Some(built))
                .send()
                .await
                .map_err(|e| Failure::Aws(format!("RegisterTargets failed: {}", error_text(&e))))?
                .unsuccessful
        } else {
            lattice
                .deregister_targets()
                .target_group_identifier(group)
                .set_targets(Some(built))
                .send()
                .await
                .map_err(|e| Failure::Aws(format!("DeregisterTargets failed: {}", error_text(&e))))?
                .unsuccessful
        };
        match unsuccessful.as_deref() {
            Some([first, ..]) => Err(Failure::Aws(format!(
                "{} refused {}: {} {}",
                if register {
                    "RegisterTargets"
                } else {
                    "DeregisterTargets"
                },
                first.id.as_deref().unwrap_or("?"),
                first.failure_code.as_deref().unwrap_or(""),
                first.failure_message.as_deref().unwrap_or("")
            ))),
            _ => Ok(()),
        }
    }

    /// Moves a Lambda alias to `version` (no weights) from the state read (`RevisionId`: a write
    /// in between makes Lambda refuse this one), then reads it back.
    async fn move_alias(
        &self,
        function: &str,
        alias: &str,
        version: &str,
        read: &rollback::traffic::AliasState,
    ) -> Result<(), Failure> {
        let lambda = &self.clients.rollback.lambda;
        lambda
            .update_alias()
            .function_name(function)
            .name(alias)
            .function_version(version)
            .routing_config(AliasRoutingConfiguration::builder().build())
            .set_revision_id(read.revision_id.clone())
            .send()
            .await
            .map_err(|e| {
                Failure::Aws(format!("UpdateAlias({alias}) failed: {}", error_text(&e)))
            })?;
        let back = rollback::alias::read_alias(&self.clients.rollback, function, alias)
            .await
            .map_err(|e| Failure::Aws(e.to_string()))?;
        if !back.all_on(version) {
            return Err(Failure::Aws(format!(
                "verification failed: alias {alias} reads {back:?}, not all on version {version}"
            )));
        }
        Ok(())
    }

    /// The abort's restore of production, through rollback's own code (no restore record: this is
    /// the rollout's own abort).
    pub(crate) async fn lattice_restore(
        &self,
        t: &ListenerRollout,
        report: &mut TargetReport,
    ) -> Result<(), Failure> {
        Box::pin(rollback::lattice::roll_back(
            &self.clients.rollback,
            &spec(t),
            false,
            None,
            None,
            report,
        ))
        .await;
        Ok(())
    }

    /// A promotion that moved the production group's alias is put back on `prev`.
    pub(crate) async fn lattice_undo_promotion(&self, t: &ListenerRollout) -> Result<(), Failure> {
        let production_target_group = &t.production_target_group;
        let Some(prev) = self.prev.lock().ok().and_then(|p| p.clone()) else {
            return Ok(());
        };
        let production = self.list_targets(production_target_group).await?;
        let Some((function, alias)) = production.first().and_then(|(id, _)| alias_target(id))
        else {
            return Ok(());
        };
        let now = rollback::alias::read_alias(&self.clients.rollback, &function, &alias)
            .await
            .map_err(|e| Failure::Restore(e.to_string()))?;
        if !now.all_on(&prev) {
            warn!(rollout = %self.plan.id, alias = %alias, version = %prev, action = "undo-promotion", "putting the production alias back");
            self.move_alias(&function, &alias, &prev, &now)
                .await
                .map_err(|e| match e {
                    Failure::Aws(m) => Failure::Restore(m),
                    other => other,
                })?;
        }
        Ok(())
    }
}

/// The weighted forwards a rollout moves: those that name both its groups.
pub(crate) fn our_forwards<'f>(
    forwards: &'f [Forward],
    production: &str,
    canary: &str,
) -> Vec<&'f Forward> {
    forwards
        .iter()
        .filter(|f| f.has(production) && f.has(canary))
        .collect()
}

/// The canary's share across the forwards that name both groups, exactly: a share that is not a
/// whole percent, or a third group with traffic, is unexpected; forwards with different whole
/// shares are a split (a move that stopped halfway).
pub(crate) fn lattice_traffic(forwards: &[&Forward], production: &str, canary: &str) -> Traffic {
    let mut shares = Vec::new();
    for f in forwards {
        let (mut p, mut c, mut other) = (0i64, 0i64, Vec::new());
        for (g, w) in &f.groups {
            if same_resource(g, production) {
                p += i64::from(*w);
            } else if same_resource(g, canary) {
                c += i64::from(*w);
            } else if *w > 0 {
                other.push(format!("{g} ({w})"));
            }
        }
        if !other.is_empty() {
            return Traffic::Unexpected(format!(
                "forward {} also sends traffic to {}",
                f.place.name(),
                other.join(", ")
            ));
        }
        if p + c == 0 {
            return Traffic::Unexpected(format!("forward {} sends no traffic", f.place.name()));
        }
        if (c * 100) % (p + c) != 0 {
            return Traffic::Unexpected(format!(
                "forward {} gives the canary {c}/{} of traffic, not a whole percent: not a weight a rollout writes",
                f.place.name(),
                p + c
            ));
        }
        shares.push((c * 100 / (p + c)) as u8);
    }
    let mut distinct = shares.clone();
    distinct.sort_unstable();
    distinct.dedup();
    match distinct.as_slice() {
        [one] => Traffic::Canary(*one),
        _ => Traffic::Split(shares),
    }
}

/// `(function, alias)` of an alias-qualified function ARN (`…:function:NAME:ALIAS`).
pub(crate) fn alias_target(id: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = id.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "lambda", _, _, "function", name, qualifier]
            if !rollback::config::is_version_number(qualifier) && *qualifier != "$LATEST" =>
        {
            Some((name.to_string(), qualifier.to_string()))
        }
        _ => None,
    }
}

/// A Lambda target group's promotion: `(function, alias, version)` — production's one target an
/// alias of the function whose version the canary's one target is. Pure; `Err` says why not.
pub(crate) fn lambda_promotion(
    production: &[(String, Option<i32>)],
    canary: &[(String, Option<i32>)],
) -> Result<(String, String, String), String> {
    let ([(prod, _)], [(can, _)]) = (production, canary) else {
        return Err(format!(
            "a Lambda target group holds one target: production has {}, the canary {}",
            production.len(),
            canary.len()
        ));
    };
    let Some((function, alias)) = alias_target(prod) else {
        return Err(format!("the production target group's target {prod} is not an alias-qualified function (arn:…:function:NAME:ALIAS): promotion moves that alias to the canary's version, so that production is never without a target; register an alias in the production group"));
    };
    let parts: Vec<&str> = can.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "lambda", _, _, "function", name, v]
            if *name == function && rollback::config::is_version_number(v) =>
        {
            Ok((function, alias, v.to_string()))
        }
        _ => Err(format!("the canary target group's target {can} is not a published version of {function} (arn:…:function:{function}:VERSION)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fwd(groups: &[(&str, i32)]) -> Forward {
        Forward {
            place: rollback::lattice::Place::Default,
            groups: groups.iter().map(|(g, w)| (g.to_string(), *w)).collect(),
        }
    }

    #[test]
    #[rustfmt::skip]
    fn traffic_as_read_from_a_listener() {
        let t = |fs: &[Forward]| lattice_traffic(&fs.iter().collect::<Vec<_>>(), "tg-p", "tg-c");
        assert_eq!(t(&[fwd(&[("tg-p", 100), ("tg-c", 0)])]), Traffic::Canary(0));
        assert_eq!(t(&[fwd(&[("tg-p", 90), ("tg-c", 10)])]), Traffic::Canary(10));
        assert_eq!(t(&[fwd(&[("tg-p", 0), ("tg-c", 100)])]), Traffic::Canary(100));
        // Weights are relative: 9/1 is 10%; 67/33 is 33%.
        assert_eq!(t(&[fwd(&[("tg-p", 9), ("tg-c", 1)])]), Traffic::Canary(10));
        assert_eq!(t(&[fwd(&[("tg-p", 67), ("tg-c", 33)])]), Traffic::Canary(33));
        // 999/1 is 0.1%: not "no traffic", and not a weight a rollout writes.
        assert!(matches!(t(&[fwd(&[("tg-p", 999), ("tg-c", 1)])]), Traffic::Unexpected(_)));
        assert_eq!(t(&[fwd(&[("tg-p", 90), ("tg-c", 10)]), fwd(&[("tg-p", 100), ("tg-c", 0)])]), Traffic::Split(vec![10, 0]));
        assert!(matches!(t(&[fwd(&[("tg-p", 90), ("tg-c", 0), ("tg-x", 10)])]), Traffic::Unexpected(_)));
        assert!(matches!(t(&[fwd(&[("tg-p", 0), ("tg-c", 0)])]), Traffic::Unexpected(_)));
    }
}

//! Putting a VPC Lattice listener's weighted forwards back on the production target group.
//!
//! Lattice has no revision id or ETag: rollback reads, writes what must change, then reads back
//! and verifies, retrying the cycle a bounded number of times if another writer interfered.

use aws_sdk_vpclattice::types::{ForwardAction, RuleAction, WeightedTargetGroup};
use serde_json::{json, Value};
use shiftguard_common::error_text;
use tracing::info;

use crate::config::LatticeListenerTarget;
use crate::report::{Action, Outcome, TargetReport};
use crate::truth::{began_after, production_before, record_key, Intent, TagFacts, Tagged};
use crate::Clients;

const CYCLES: usize = 3;
/// The weight the production group gets. Any positive weight with all others at 0 is 100%.
const PRODUCTION_WEIGHT: i32 = 100;

#[derive(Debug, thiserror::Error)]
pub enum LatticeError {
    #[error("{operation} failed: {message}")]
    Aws {
        operation: &'static str,
        message: String,
    },
    #[error("the listener has no forward action that includes the production target group {0}: refusing to guess which group is production")]
    NoProductionForward(String),
    #[error("verification failed: after {0} write cycles the listener still does not send all traffic to production: {1}")]
    NotVerified(usize, String),
    #[error("could not build the request: {0}")]
    Build(String),
}

fn aws<E: std::error::Error>(operation: &'static str) -> impl FnOnce(E) -> LatticeError {
    move |e| LatticeError::Aws {
        operation,
        message: error_text(&e),
    }
}

/// Where a weighted forward lives: the listener's default action or a listener rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Place {
    Default,
    Rule(String),
}

impl Place {
    pub fn name(&self) -> String {
        match self {
            Place::Default => "default".into(),
            Place::Rule(id) => id.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Forward {
    pub place: Place,
    pub groups: Vec<(String, i32)>,
}

/// Ids and ARNs name the same group: compare the last path segment.
pub fn same_resource(a: &str, b: &str) -> bool {
    a.rsplit('/').next() == b.rsplit('/').next()
}

impl Forward {
    pub fn has(&self, production: &str) -> bool {
        self.groups
            .iter()
            .any(|(g, _)| same_resource(g, production))
    }

    /// All traffic on production: production has weight and nothing else does.
    fn all_on(&self, production: &str) -> bool {
        self.groups.iter().all(|(g, w)| {
            if same_resource(g, production) {
                *w > 0
            } else {
                *w == 0
            }
        })
    }

    fn restored(&self, production: &str) -> Vec<(String, i32)> {
        self.groups
            .iter()
            .map(|(g, _)| {
                let w = if same_resource(g, production) {
                    PRODUCTION_WEIGHT
                } else {
                    0
                };
                (g.clone(), w)
            })
            .collect()
    }
}

fn forward_of(action: Option<&RuleAction>) -> Option<Vec<(String, i32)>> {
    match action? {
        RuleAction::Forward(f) => {
            let single = f.target_groups.len() == 1;
            Some(
                f.target_groups
                    .iter()
                    // An unweighted group alone takes everything; Lattice's default weight is 100.
                    .map(|g| {
                        (
                            g.target_group_identifier.clone(),
                            g.weight.unwrap_or(if single { 100 } else { 0 }),
                        )
                    })
                    .collect(),
            )
        }
        _ => None,
    }
}

fn to_action(groups: &[(String, i32)]) -> Result<RuleAction, LatticeError> {
    let groups = groups
        .iter()
        .map(|(g, w)| {
            WeightedTargetGroup::builder()
                .target_group_identifier(g)
                .weight(*w)
                .build()
                .map_err(|e| LatticeError::Build(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let forward = ForwardAction::builder()
        .set_target_groups(Some(groups))
        .build()
        .map_err(|e| LatticeError::Build(e.to_string()))?;
    Ok(RuleAction::Forward(forward))
}

pub fn describe(forwards: &[Forward]) -> Value {
    Value::Array(
        forwards
            .iter()
            .map(|f| {
                json!({
                    "rule": f.place.name(),
                    "targetGroups": f.groups.iter().map(|(g, w)| json!({"targetGroup": g, "weight": w})).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

/// Every weighted forward on the listener: its default action and each non-default rule.
pub async fn read_forwards(
    clients: &Clients,
    t: &LatticeListenerTarget,
) -> Result<Vec<Forward>, LatticeError> {
    read_listener(clients, t)
        .await
        .map(|(forwards, _)| forwards)
}

/// The listener's weighted forwards and its ARN (as Lattice answered it).
pub async fn read_listener(
    clients: &Clients,
    t: &LatticeListenerTarget,
) -> Result<(Vec<Forward>, Option<String>), LatticeError> {
    let (listener, rule_ids) = tokio::join!(
        clients
            .lattice()
            .get_listener()
            .service_identifier(&t.service)
            .listener_identifier(&t.listener)
            .send(),
        list_rule_ids(clients, t),
    );
    let listener = listener.map_err(aws("GetListener"))?;
    let arn = listener.arn.clone();
    let rule_ids = rule_ids?;
    let mut forwards = Vec::new();
    if let Some(groups) = forward_of(listener.default_action.as_ref()) {
        forwards.push(Forward {
            place: Place::Default,
            groups,
        });
    }
    let rules = futures::future::join_all(rule_ids.iter().map(|id| {
        clients
            .lattice()
            .get_rule()
            .service_identifier(&t.service)
            .listener_identifier(&t.listener)
            .rule_identifier(id)
            .send()
    }))
    .await;
    for (id, rule) in rule_ids.into_iter().zip(rules) {
        let rule = rule.map_err(aws("GetRule"))?;
        if let Some(groups) = forward_of(rule.action.as_ref()) {
            forwards.push(Forward {
                place: Place::Rule(id),
                groups,
            });
        }
    }
    Ok((forwards, arn))
}

async fn list_rule_ids(
    clients: &Clients,
    t: &LatticeListenerTarget,
) -> Result<Vec<String>, LatticeError> {
    let mut ids = Vec::new();
    let mut next_token = None;
    loop {
        let out = clients
            .lattice()
            .list_rules()
            .service_identifier(&t.service)
            .listener_identifier(&t.listener)
            .set_next_token(next_token)
            .send()
            .await
            .map_err(aws("ListRules"))?;
        // The default rule is the listener's default action, changed only through UpdateListener.
        ids.extend(
            out.items
                .into_iter()
                .filter(|r| !r.is_default.unwrap_or(false))
                .filter_map(|r| r.id),
        );
        next_token = out.next_token.filter(|t| !t.is_empty());
        if next_token.is_none() {
            return Ok(ids);
        }
    }
}

async fn write(
    clients: &Clients,
    t: &LatticeListenerTarget,
    forward: &Forward,
) -> Result<(), LatticeError> {
    write_groups(
        clients,
        t,
        &forward.place,
        &forward.restored(&t.production_target_group),
    )
    .await
}

/// Writes one weighted forward (the listener's default action or a rule) with these weights.
pub async fn write_groups(
    clients: &Clients,
    t: &LatticeListenerTarget,
    place: &Place,
    groups: &[(String, i32)],
) -> Result<(), LatticeError> {
    let action = to_action(groups)?;
    match place {
        Place::Default => {
            clients
                .lattice()
                .update_listener()
                .service_identifier(&t.service)
                .listener_identifier(&t.listener)
                .default_action(action)
                .send()
                .await
                .map_err(aws("UpdateListener"))?;
        }
        Place::Rule(id) => {
            clients
                .lattice()
                .update_rule()
                .service_identifier(&t.service)
                .listener_identifier(&t.listener)
                .rule_identifier(id)
                .action(action)
                .send()
                .await
                .map_err(aws("UpdateRule"))?;
        }
    }
    Ok(())
}

/// Rolls one listener back. Never returns an error: failures are in the report. `intent`: the
/// restore record left on the listener before the restoring write (rollback's own runs).
pub async fn roll_back(
    clients: &Clients,
    target: &LatticeListenerTarget,
    dry_run: bool,
    alarm_ms: Option<i64>,
    intent: Option<&Intent>,
    report: &mut TargetReport,
) {
    if let Err(e) = run(clients, target, dry_run, alarm_ms, intent, report).await {
        report.outcome = Outcome::Failed;
        report.error = Some(e.to_string());
    }
}

/// Leaves the restore record on the listener; a failure is retried (the invocation fails) so
/// that a rollout cannot miss this restore for long.
async fn leave_record(
    clients: &Clients,
    tagged: &Tagged,
    record: &crate::truth::RestoreRecord,
    report: &mut TargetReport,
) {
    if let Err(e) = tagged
        .tag(clients, &record_key(None), &record.encode())
        .await
    {
        report.add_incomplete(format!(
            "the restore record could not be written ({e}): a rollout may not see this restore"
        ));
    }
}

/// What one look at the listener says to do.
#[derive(Debug, PartialEq)]
enum Next<'a> {
    /// Every forward that includes production sends it all traffic.
    Done,
    Fix(Vec<&'a Forward>),
    NoProductionForward,
}

fn next<'a>(forwards: &'a [Forward], production: &str) -> Next<'a> {
    let ours: Vec<&Forward> = forwards.iter().filter(|f| f.has(production)).collect();
    if ours.is_empty() {
        return Next::NoProductionForward;
    }
    let to_fix: Vec<&Forward> = ours.into_iter().filter(|f| !f.all_on(production)).collect();
    if to_fix.is_empty() {
        Next::Done
    } else {
        Next::Fix(to_fix)
    }
}

async fn run(
    clients: &Clients,
    t: &LatticeListenerTarget,
    dry_run: bool,
    alarm_ms: Option<i64>,
    intent: Option<&Intent>,
    report: &mut TargetReport,
) -> Result<(), LatticeError> {
    let production = &t.production_target_group;
    // The listener's ARN named without a call, so that the intent record is written in parallel
    // with the first read and lands before the restoring write.
    let named = clients
        .home
        .get()
        .map(|h| Tagged::Listener(h.listener_arn(&t.service, &t.listener)));
    let mut early_report = TargetReport::new(String::new(), Vec::new());
    // Rollback's own runs (dry runs too: the plan must be the real one) read the rollout marker:
    // a rollout the alarm is not about, a promotion to put back. `shift`'s aborts do not.
    let consult = intent.is_some() || dry_run;
    let read_tags = |tagged: Option<Tagged>| async move {
        match (consult, tagged) {
            (true, Some(t)) => Some(t.read(clients).await),
            _ => None,
        }
    };
    let (read, tags, ()) =
        tokio::join!(read_listener(clients, t), read_tags(named.clone()), async {
            if let (Some(i), Some(tagged)) = (intent, &named) {
                leave_record(clients, tagged, &i.record(None), &mut early_report).await;
            }
        });
    let (mut forwards, arn) = read?;
    let answered = arn.map(Tagged::Listener);
    let (tagged, tags) = match (named, answered) {
        (Some(n), Some(a)) if n == a => (Some(n), tags),
        (_, Some(a)) => {
            // Named wrongly or not at all: the record goes on the ARN Lattice answered, before
            // anything is written (one more round trip).
            if let Some(i) = intent {
                leave_record(clients, &a, &i.record(None), report).await;
            }
            let tags = read_tags(Some(a.clone())).await;
            (Some(a), tags)
        }
        (n, None) => (n, tags),
    };
    match tags {
        Some(Ok(tags)) => {
            let facts = TagFacts::from_tags(&tags, None);
            if let Some(m) = facts.rollout().filter(|m| began_after(m, alarm_ms)) {
                // Like a deployment created after the alarm: the alarm is not about this rollout
                // (a late delivery), and its canary share is not taken away.
                report.before = Some(describe(&forwards));
                report.after = report.before.clone();
                report.outcome = Outcome::LeftAlone;
                report.decision = Some(format!(
                    "rollout {} began after the alarm changed state: the alarm is not about it, so the listener is left alone",
                    m.id
                ));
                return Ok(());
            }
            if let Some(prev) = facts.rollout().and_then(|m| production_before(m, alarm_ms)) {
                if dry_run {
                    report.notes.push(format!("dry run: would put the production target group's alias back on version {prev} (a rollout's promotion moved it)"));
                } else {
                    put_production_alias_back(clients, t, prev, report).await?;
                }
            }
        }
        Some(Err(e)) => report.add_incomplete(format!(
            "the listener's rollout marker could not be read ({e}): a promotion in progress would not be put back"
        )),
        None => {}
    }
    if let Some(why) = early_report.incomplete {
        report.add_incomplete(why);
    }
    report.before = Some(describe(&forwards));
    let result = restore(clients, t, dry_run, report, &mut forwards).await;
    if let (Ok(()), Some(i), Some(tagged)) = (&result, intent, &tagged) {
        leave_record(clients, tagged, &i.record(Some(production.clone())), report).await;
    }
    result
}

/// A rollout's promotion moved the production group's alias (a Lambda target group holds one
/// target: an alias, so that it is never empty): put it back on the version production was on,
/// before production gets all traffic back.
async fn put_production_alias_back(
    clients: &Clients,
    t: &LatticeListenerTarget,
    prev: &str,
    report: &mut TargetReport,
) -> Result<(), LatticeError> {
    let targets = clients
        .lattice()
        .list_targets()
        .target_group_identifier(&t.production_target_group)
        .send()
        .await
        .map_err(aws("ListTargets"))?
        .items;
    let alias = targets
        .iter()
        .filter_map(|x| x.id.as_deref())
        .find_map(|id| {
            let parts: Vec<&str> = id.split(':').collect();
            match parts.as_slice() {
                ["arn", _, "lambda", _, _, "function", name, q]
                    if !crate::config::is_version_number(q) && *q != "$LATEST" =>
                {
                    Some((name.to_string(), q.to_string()))
                }
                _ => None,
            }
        });
    let Some((function, alias)) = alias else {
        return Ok(());
    };
    let now = crate::alias::read_alias(clients, &function, &alias)
        .await
        .map_err(|e| LatticeError::Aws {
            operation: "GetAlias",
            message: e.to_string(),
        })?;
    if now.all_on(prev) {
        return Ok(());
    }
    let mut update = clients
        .lambda
        .update_alias()
        .function_name(&function)
        .name(&alias)
        .function_version(prev)
        .routing_config(
            aws_sdk_lambda::types::AliasRoutingConfiguration::builder()
                .set_additional_version_weights(Some(Default::default()))
                .build(),
        );
    if let Some(rev) = &now.revision_id {
        update = update.revision_id(rev);
    }
    update.send().await.map_err(aws("UpdateAlias"))?;
    let back = crate::alias::read_alias(clients, &function, &alias)
        .await
        .map_err(|e| LatticeError::Aws {
            operation: "GetAlias",
            message: e.to_string(),
        })?;
    if !back.all_on(prev) {
        return Err(LatticeError::NotVerified(
            1,
            format!(
                "production alias {function}:{alias} reads {}",
                back.summary()
            ),
        ));
    }
    report.action = Action::RestoreListener;
    report.notes.push(format!(
        "a rollout's promotion had moved production's alias {function}:{alias} to version {}: put back on version {prev}",
        now.version
    ));
    info!(target = %report.target, alias = %alias, version = %prev, action = "restore-production-alias", "production alias put back");
    Ok(())
}

async fn restore(
    clients: &Clients,
    t: &LatticeListenerTarget,
    dry_run: bool,
    report: &mut TargetReport,
    forwards: &mut Vec<Forward>,
) -> Result<(), LatticeError> {
    let production = &t.production_target_group;
    // Read, write what must change, read back: the read after the last write is judged too.
    let mut cycles = 0;
    loop {
        let to_fix = match next(forwards, production) {
            Next::NoProductionForward => {
                return Err(LatticeError::NoProductionForward(production.clone()))
            }
            Next::Done => {
                report.after = Some(describe(forwards));
                if report.action == Action::None {
                    report.outcome = Outcome::AlreadyStable;
                    report.detail = Some(
                        "every weighted forward already sends all traffic to production".into(),
                    );
                } else {
                    report.outcome = Outcome::Restored;
                    report.detail = Some(format!("verified after {cycles} write cycle(s)"));
                }
                return Ok(());
            }
            Next::Fix(to_fix) => to_fix,
        };
        if cycles == CYCLES {
            let still: Vec<Forward> = to_fix.into_iter().cloned().collect();
            return Err(LatticeError::NotVerified(
                CYCLES,
                describe(&still).to_string(),
            ));
        }
        report.action = Action::RestoreListener;
        if dry_run {
            let planned: Vec<Forward> = forwards
                .iter()
                .map(|f| {
                    if f.has(production) {
                        Forward {
                            place: f.place.clone(),
                            groups: f.restored(production),
                        }
                    } else {
                        f.clone()
                    }
                })
                .collect();
            report.after = Some(describe(&planned));
            report.outcome = Outcome::Planned;
            report.detail = Some(format!(
                "dry run: would set {} to production only",
                to_fix
                    .iter()
                    .map(|f| f.place.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            return Ok(());
        }
        cycles += 1;
        let writes = futures::future::join_all(to_fix.iter().map(|f| write(clients, t, f))).await;
        writes.into_iter().collect::<Result<Vec<()>, _>>()?;
        info!(target = %report.target, cycle = cycles, action = "restore-listener", "wrote production-only weights; reading back");
        *forwards = read_forwards(clients, t).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fwd(groups: &[(&str, i32)]) -> Forward {
        Forward {
            place: Place::Default,
            groups: groups.iter().map(|(g, w)| (g.to_string(), *w)).collect(),
        }
    }

    #[test]
    fn production_only_means_others_at_zero() {
        assert!(fwd(&[("tg-prod", 90), ("tg-canary", 0)]).all_on("tg-prod"));
        assert!(!fwd(&[("tg-prod", 90), ("tg-canary", 10)]).all_on("tg-prod"));
        assert!(!fwd(&[("tg-prod", 0), ("tg-canary", 0)]).all_on("tg-prod"));
        let arn = "arn:aws:vpc-lattice:us-east-1:123456789012:targetgroup/tg-prod";
        assert!(fwd(&[("tg-prod", 1)]).all_on(arn));
    }

    #[test]
    fn what_a_look_at_the_listener_says() {
        let done = [fwd(&[("tg-prod", 100), ("tg-canary", 0)])];
        assert_eq!(next(&done, "tg-prod"), Next::Done);
        let split = [fwd(&[("tg-prod", 90), ("tg-canary", 10)])];
        assert!(matches!(next(&split, "tg-prod"), Next::Fix(f) if f.len() == 1));
        let other = [fwd(&[("tg-a", 90), ("tg-b", 10)])];
        assert_eq!(next(&other, "tg-prod"), Next::NoProductionForward);
    }

    #[test]
    fn restored_weights_keep_every_group() {
        assert_eq!(
            fwd(&[("tg-prod", 90), ("tg-canary", 10), ("tg-other", 5)]).restored("tg-prod"),
            vec![
                ("tg-prod".to_string(), 100),
                ("tg-canary".to_string(), 0),
                ("tg-other".to_string(), 0)
            ]
        );
    }
}

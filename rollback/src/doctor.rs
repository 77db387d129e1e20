//! `doctor`: the safety net checks itself. `{"shiftguard": "doctor"}` makes rollback read (and
//! never change) what its configuration depends on, and say what would stop it from working at
//! 3 a.m.: an alarm that does not exist, watches a dimension its target never publishes, or fires
//! into nothing rollback hears; a target that is not there; a read its role may not make.
//!
//! [`gather`] makes the reads (every one a Describe/List/Get); [`diagnose`] is the pure judgement
//! of what was read. A serious finding fails the invocation with `Rollback.DoctorFoundProblems`
//! (the construct runs doctor after every deploy, so a misconfigured net fails the deploy).

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_cloudwatch::types::{AlarmType, DimensionFilter};
use serde::Serialize;
use shiftguard_common::error_text;

use crate::config::{Config, Target};
use crate::Clients;

pub use shiftguard_common::doctor::{is_doctor_event, Finding, Severity};

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DoctorReport {
    pub doctor: &'static str,
    /// This function's ARN as it was invoked: what an alarm action or a subscription must name.
    pub function_arn: Option<String>,
    pub healthy: bool,
    pub serious: usize,
    pub warnings: usize,
    /// How much was looked at.
    pub alarms_checked: usize,
    pub targets_checked: usize,
    pub findings: Vec<Finding>,
}

/// One metric an alarm watches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct WatchedMetric {
    pub namespace: String,
    pub metric: String,
    pub dimensions: Vec<(String, String)>,
}

/// What DescribeAlarms said of one alarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmFacts {
    pub name: String,
    pub composite: bool,
    pub actions_enabled: bool,
    pub actions: Vec<String>,
    pub metrics: Vec<WatchedMetric>,
}

/// How one read went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read<T> {
    Found(T),
    Missing(String),
    Denied(String),
    Failed(String),
}

/// Everything [`gather`] read.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// This function's ARN (unqualified): what an alarm action or a subscription must name.
    pub own_arn: Option<String>,
    /// Each configured alarm (name, ARN or glob) → the alarms it matched.
    pub alarms: BTreeMap<String, Read<Vec<AlarmFacts>>>,
    /// Each SNS topic an alarm notifies → its subscribers' endpoints (`lambda` protocol).
    pub topics: BTreeMap<String, Read<Vec<String>>>,
    /// Each watched metric → whether CloudWatch has it (ListMetrics, last two weeks).
    pub published: BTreeMap<WatchedMetric, Read<bool>>,
    /// Each target id → whether it is there.
    pub targets: BTreeMap<String, Read<()>>,
    /// Each CodeDeploy group `application/group` a target names → whether it is there.
    pub groups: BTreeMap<String, Read<()>>,
}

fn function_name(function: &str) -> &str {
    shiftguard_common::codedeploy::function_name(function)
}

fn unqualified(arn: &str) -> &str {
    // arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
    match arn.match_indices(':').nth(6) {
        Some((at, _)) => &arn[..at],
        None => arn,
    }
}

/// What Lambda publishes for a function in `AWS/Lambda`: the dimension sets an alarm on a
/// target may use (a `Resource` of `FUNCTION` or `FUNCTION:ALIAS`, `ExecutedVersion` under an
/// alias). Pure.
fn lambda_dimension_problem(metric: &WatchedMetric, function: &str, alias: &str) -> Option<String> {
    let names: BTreeSet<&str> = metric.dimensions.iter().map(|(n, _)| n.as_str()).collect();
    let value = |n: &str| {
        metric
            .dimensions
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    for name in &names {
        if !["FunctionName", "Resource", "ExecutedVersion"].contains(name) {
            return Some(format!(
                "dimension {name} is not one Lambda publishes (FunctionName, Resource, ExecutedVersion): this alarm never gets data"
            ));
        }
    }
    match value("FunctionName") {
        None => {
            return Some(format!(
            "no FunctionName dimension: it watches every function in the account, not {function}"
        ))
        }
        Some(f) if f != function => {
            return Some(format!(
                "FunctionName is {f}, but the target it rolls back is {function}"
            ))
        }
        _ => {}
    }
    if let Some(resource) = value("Resource") {
        let qualified = format!("{function}:{alias}");
        if resource != function && resource != qualified {
            return Some(format!(
                "Resource is {resource}, but Lambda publishes {function} and {qualified} for this target: this alarm never gets data"
            ));
        }
    }
    if names.contains("ExecutedVersion")
        && value("Resource") != Some(&format!("{function}:{alias}"))
    {
        return Some(format!(
            "ExecutedVersion is published only with Resource = {function}:{alias}"
        ));
    }
    None
}

/// The judgement of what was read. Pure.
pub fn diagnose(config: &Config, facts: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut push = |severity, check, subject: &str, message: String| {
        out.push(Finding {
            severity,
            check,
            subject: subject.to_string(),
            message,
        })
    };
    let reaches_rollback = |action: &str| -> Option<bool> {
        let own = facts.own_arn.as_deref()?;
        if action.contains(":lambda:") {
            return Some(unqualified(action) == unqualified(own));
        }
        match facts.topics.get(action) {
            Some(Read::Found(endpoints)) => {
                Some(endpoints.iter().any(|e| unqualified(e) == unqualified(own)))
            }
            _ => None,
        }
    };
    for mapping in &config.mappings {
        for pattern in &mapping.alarms {
            let alarms = match facts.alarms.get(pattern) {
                Some(Read::Found(a)) if !a.is_empty() => a,
                Some(Read::Found(_)) | Some(Read::Missing(_)) => {
                    push(
                        Severity::Serious,
                        "alarm-exists",
                        pattern,
                        format!(
                            "no alarm matches {pattern}: nothing can make rollback act for {}",
                            mapping
                                .targets
                                .iter()
                                .map(Target::id)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                    continue;
                }
                Some(Read::Denied(why)) => {
                    push(
                        Severity::Serious,
                        "permission",
                        pattern,
                        format!("cloudwatch:DescribeAlarms was denied: {why}"),
                    );
                    continue;
                }
                Some(Read::Failed(why)) => {
                    push(
                        Severity::Warning,
                        "alarm-exists",
                        pattern,
                        format!("could not be read: {why}"),
                    );
                    continue;
                }
                None => continue,
            };
            for alarm in alarms {
                let subject = alarm.name.as_str();
                // Does its ALARM reach rollback?
                if !alarm.actions_enabled {
                    push(
                        Severity::Serious,
                        "alarm-reaches-rollback",
                        subject,
                        "its actions are disabled: its ALARM notifies nobody".into(),
                    );
                } else if facts.own_arn.is_none() {
                    push(Severity::Warning, "alarm-reaches-rollback", subject, format!(
                        "could not tell whether its actions ({}) reach rollback: this function's ARN is unknown (a local runtime)",
                        alarm.actions.join(", ")));
                } else {
                    let verdicts: Vec<Option<bool>> =
                        alarm.actions.iter().map(|a| reaches_rollback(a)).collect();
                    if !verdicts.contains(&Some(true)) {
                        if verdicts.contains(&None) {
                            let why: Vec<String> = alarm
                                .actions
                                .iter()
                                .filter_map(|a| match facts.topics.get(a) {
                                    Some(Read::Denied(w))
                                    | Some(Read::Failed(w))
                                    | Some(Read::Missing(w)) => Some(format!("{a}: {w}")),
                                    _ => None,
                                })
                                .collect();
                            push(
                                Severity::Warning,
                                "alarm-reaches-rollback",
                                subject,
                                format!(
                                    "could not tell whether its actions ({}) reach rollback: {}",
                                    alarm.actions.join(", "),
                                    if why.is_empty() {
                                        "this function's ARN is unknown".to_string()
                                    } else {
                                        why.join("; ")
                                    }
                                ),
                            );
                        } else {
                            push(Severity::Serious, "alarm-reaches-rollback", subject, format!(
                                "its ALARM goes to {} — no topic rollback is subscribed to, nor rollback itself",
                                if alarm.actions.is_empty() { "no action at all".to_string() } else { alarm.actions.join(", ") }));
                        }
                    }
                }
                // Does it watch what its targets publish?
                for target in &mapping.targets {
                    let Target::LambdaAlias(t) = target else {
                        continue;
                    };
                    let function = function_name(&t.function);
                    let lambda_metrics: Vec<&WatchedMetric> = alarm
                        .metrics
                        .iter()
                        .filter(|m| m.namespace == "AWS/Lambda")
                        .collect();
                    for m in &lambda_metrics {
                        if let Some(problem) = lambda_dimension_problem(m, function, &t.alias) {
                            push(
                                Severity::Serious,
                                "alarm-dimensions",
                                subject,
                                format!("{} {}: {problem}", m.namespace, m.metric),
                            );
                        }
                    }
                }
                for m in &alarm.metrics {
                    if let Some(Read::Found(false)) = facts.published.get(m) {
                        push(Severity::Warning, "alarm-data", subject, format!(
                            "CloudWatch has no {} {} with {} in the last two weeks: fine before the first deployment, else check the dimensions",
                            m.namespace, m.metric,
                            m.dimensions.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")));
                    }
                }
            }
        }
        for target in &mapping.targets {
            let id = target.id();
            match facts.targets.get(&id) {
                Some(Read::Found(())) => {}
                Some(Read::Missing(why)) => push(
                    Severity::Serious,
                    "target-exists",
                    &id,
                    format!("does not exist: {why}"),
                ),
                Some(Read::Denied(why)) => push(
                    Severity::Serious,
                    "permission",
                    &id,
                    format!("rollback may not read it: {why}"),
                ),
                Some(Read::Failed(why)) => push(
                    Severity::Warning,
                    "target-exists",
                    &id,
                    format!("could not be read: {why}"),
                ),
                None => {}
            }
            if let Target::LambdaAlias(t) = target {
                if let Some(g) = &t.code_deploy {
                    let key = format!("{}/{}", g.application, g.deployment_group);
                    match facts.groups.get(&key) {
                        Some(Read::Missing(why)) => push(Severity::Serious, "deployment-group", &key, format!(
                            "the CodeDeploy group {id} names does not exist: rollback cannot find (or stop) its deployments: {why}")),
                        Some(Read::Denied(why)) => push(Severity::Serious, "permission", &key, format!("rollback may not list its deployments: {why}")),
                        Some(Read::Failed(why)) => push(Severity::Warning, "deployment-group", &key, format!("could not be read: {why}")),
                        _ => {}
                    }
                }
            }
        }
    }
    shiftguard_common::doctor::settle(out).0
}

/// The report of a diagnosis.
pub fn report(config: &Config, facts: &Facts) -> DoctorReport {
    let findings = diagnose(config, facts);
    let serious = findings
        .iter()
        .filter(|f| f.severity == Severity::Serious)
        .count();
    DoctorReport {
        doctor: "rollback",
        function_arn: facts.own_arn.clone(),
        healthy: serious == 0,
        serious,
        warnings: findings.len() - serious,
        alarms_checked: facts
            .alarms
            .values()
            .map(|r| match r {
                Read::Found(a) => a.len(),
                _ => 0,
            })
            .sum(),
        targets_checked: facts.targets.len(),
        findings,
    }
}

/// A failed read: missing (the service's not-found `missing` codes), denied, or failed otherwise.
fn classify<
    T,
    E: std::error::Error + aws_smithy_types::error::metadata::ProvideErrorMetadata + 'static,
    R,
>(
    err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
    missing: &[&str],
) -> Read<T>
where
    R: std::fmt::Debug,
{
    let code = code_of(err);
    let code = code.as_deref();
    // The service's own words when it answered (code: message); the whole chain otherwise.
    let text = match err.as_service_error() {
        Some(e) => format!(
            "{}: {}",
            e.code().unwrap_or("error"),
            e.message().unwrap_or_default()
        ),
        None => error_text(err),
    };
    match code {
        Some(c) if missing.contains(&c) => Read::Missing(text),
        // SNS says AuthorizationError where the others say AccessDenied.
        Some(c)
            if c.contains("AccessDenied")
                || c == "UnauthorizedOperation"
                || c == "AuthorizationError" =>
        {
            Read::Denied(text)
        }
        _ => Read::Failed(text),
    }
}

fn code_of<E: aws_smithy_types::error::metadata::ProvideErrorMetadata, R>(
    err: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> Option<String> {
    err.as_service_error()
        .and_then(|e| e.code())
        .map(str::to_string)
}

/// Makes every read `diagnose` needs; none changes anything.
pub async fn gather(clients: &Clients, config: &Config, own_arn: Option<String>) -> Facts {
    let cloudwatch = clients.cloudwatch();
    // Lambda always gives the function's ARN; a local runtime (cargo lambda) may give a
    // placeholder, which names nothing: then whether an alarm reaches rollback is "could not tell".
    let own_arn = own_arn.filter(|a| a.starts_with("arn:") && a.contains(":function:"));
    let mut facts = Facts {
        own_arn,
        ..Facts::default()
    };
    let patterns: BTreeSet<&String> = config.mappings.iter().flat_map(|m| &m.alarms).collect();
    for pattern in patterns {
        let name = pattern.rsplit(":alarm:").next().unwrap_or(pattern);
        let request = cloudwatch
            .describe_alarms()
            .alarm_types(AlarmType::MetricAlarm)
            .alarm_types(AlarmType::CompositeAlarm);
        let glob = name.contains('*');
        let request = if glob {
            let prefix = &name[..name.find('*').unwrap_or(name.len())];
            if prefix.is_empty() {
                request
            } else {
                request.alarm_name_prefix(prefix)
            }
        } else {
            request.alarm_names(name)
        };
        let mut found = Vec::new();
        let mut pages = request.into_paginator().send();
        let mut failure = None;
        while let Some(page) = pages.next().await {
            match page {
                Ok(p) => {
                    for a in p.metric_alarms() {
                        let mut metrics = Vec::new();
                        if let (Some(ns), Some(metric)) = (a.namespace(), a.metric_name()) {
                            metrics.push(WatchedMetric {
                                namespace: ns.to_string(),
                                metric: metric.to_string(),
                                dimensions: dimension_pairs(a.dimensions()),
                            });
                        }
                        for q in a.metrics() {
                            if let Some(m) = q.metric_stat().and_then(|s| s.metric()) {
                                metrics.push(WatchedMetric {
                                    namespace: m.namespace().unwrap_or_default().to_string(),
                                    metric: m.metric_name().unwrap_or_default().to_string(),
                                    dimensions: dimension_pairs(m.dimensions()),
                                });
                            }
                        }
                        found.push(AlarmFacts {
                            name: a.alarm_name().unwrap_or_default().to_string(),
                            composite: false,
                            actions_enabled: a.actions_enabled().unwrap_or(true),
                            actions: a.alarm_actions().to_vec(),
                            metrics,
                        });
                    }
                    for a in p.composite_alarms() {
                        found.push(AlarmFacts {
                            name: a.alarm_name().unwrap_or_default().to_string(),
                            composite: true,
                            actions_enabled: a.actions_enabled().unwrap_or(true),
                            actions: a.alarm_actions().to_vec(),
                            metrics: Vec::new(),
                        });
                    }
                }
                Err(e) => {
                    failure = Some(classify(&e, &[]));
                    break;
                }
            }
        }
        if glob {
            found.retain(|a| crate::config::glob_match(name, &a.name));
        }
        facts
            .alarms
            .insert(pattern.clone(), failure.unwrap_or(Read::Found(found)));
    }
    let alarms: Vec<AlarmFacts> = facts
        .alarms
        .values()
        .filter_map(|r| match r {
            Read::Found(a) => Some(a.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    // The topics the alarms notify: who is subscribed. Read even when this function's ARN is
    // unknown (a local runtime): the read is also the check that rollback's role may make it.
    let topics: BTreeSet<&String> = alarms
        .iter()
        .flat_map(|a| &a.actions)
        .filter(|a| a.contains(":sns:"))
        .collect();
    for topic in topics {
        let mut endpoints = Vec::new();
        let mut pages = clients
            .sns()
            .list_subscriptions_by_topic()
            .topic_arn(topic)
            .into_paginator()
            .send();
        let mut failure = None;
        while let Some(page) = pages.next().await {
            match page {
                Ok(p) => endpoints.extend(
                    p.subscriptions()
                        .iter()
                        .filter(|s| s.protocol() == Some("lambda"))
                        .filter_map(|s| s.endpoint().map(str::to_string)),
                ),
                Err(e) => {
                    failure = Some(match classify(&e, &["NotFound", "NotFoundException"]) {
                        // A topic that does not exist has no subscribers: nothing hears the alarm.
                        Read::Missing(_) => Read::Found(Vec::new()),
                        other => other,
                    });
                    break;
                }
            }
        }
        facts
            .topics
            .insert(topic.clone(), failure.unwrap_or(Read::Found(endpoints)));
    }
    // Whether CloudWatch has each watched metric (ListMetrics covers the last two weeks).
    let metrics: BTreeSet<WatchedMetric> = alarms.iter().flat_map(|a| a.metrics.clone()).collect();
    for m in metrics {
        let mut request = cloudwatch
            .list_metrics()
            .namespace(&m.namespace)
            .metric_name(&m.metric);
        for (name, value) in &m.dimensions {
            request =
                request.dimensions(DimensionFilter::builder().name(name).value(value).build());
        }
        let read = match request.send().await {
            Ok(out) => Read::Found(
                out.metrics()
                    .iter()
                    .any(|x| x.dimensions().len() == m.dimensions.len()),
            ),
            Err(e) => classify(&e, &[]),
        };
        facts.published.insert(m, read);
    }
    // The targets and their deployment groups.
    for target in config.mappings.iter().flat_map(|m| &m.targets) {
        let id = target.id();
        if facts.targets.contains_key(&id) {
            continue;
        }
        let read = match target {
            Target::LambdaAlias(t) => match clients
                .lambda
                .get_alias()
                .function_name(&t.function)
                .name(&t.alias)
                .send()
                .await
            {
                Ok(_) => Read::Found(()),
                Err(e) => classify(&e, &["ResourceNotFoundException"]),
            },
            Target::LatticeListener(t) => match clients
                .lattice()
                .get_listener()
                .service_identifier(&t.service)
                .listener_identifier(&t.listener)
                .send()
                .await
            {
                Ok(_) => Read::Found(()),
                Err(e) => classify(&e, &["ResourceNotFoundException"]),
            },
            Target::ApigatewayCanary(t) => {
                let (api, stage) = t.ids();
                match crate::apigateway::get_stage(clients, &api, &stage).await {
                    Ok(_) => Read::Found(()),
                    Err(e) => classify(&e, &["NotFoundException"]),
                }
            }
        };
        facts.targets.insert(id, read);
        if let Target::LambdaAlias(t) = target {
            if let Some(g) = &t.code_deploy {
                let key = format!("{}/{}", g.application, g.deployment_group);
                if facts.groups.contains_key(&key) {
                    continue;
                }
                let read = match clients
                    .codedeploy
                    .list_deployments()
                    .application_name(&g.application)
                    .deployment_group_name(&g.deployment_group)
                    .send()
                    .await
                {
                    Ok(_) => Read::Found(()),
                    Err(e) => classify(
                        &e,
                        &[
                            "DeploymentGroupDoesNotExistException",
                            "ApplicationDoesNotExistException",
                        ],
                    ),
                };
                facts.groups.insert(key, read);
            }
        }
    }
    facts
}

/// An alarm's (or a metric query's) dimensions as (name, value) pairs.
fn dimension_pairs(dimensions: &[aws_sdk_cloudwatch::types::Dimension]) -> Vec<(String, String)> {
    dimensions
        .iter()
        .map(|d| {
            (
                d.name().unwrap_or_default().to_string(),
                d.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[cfg(test)]
#[path = "doctor_tests.rs"]
mod tests;

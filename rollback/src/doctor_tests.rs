use super::*;

const OWN: &str = "arn:aws:lambda:us-east-1:123456789012:function:checkout_rollback";
const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:alarms";

fn config() -> Config {
    Config {
        mappings: crate::config::parse_mappings(
            r#"[{"alarms": ["checkout-*"], "targets": [{"type": "lambda-alias", "function": "checkout", "alias": "live",
                "codeDeploy": {"application": "app", "deploymentGroup": "dg"}}]}]"#,
        )
        .unwrap(),
        dry_run: false,
        notify_topic_arn: None,
        codedeploy_wait_ms: 0,
    }
}

fn metric(dims: &[(&str, &str)]) -> WatchedMetric {
    WatchedMetric {
        namespace: "AWS/Lambda".into(),
        metric: "Errors".into(),
        dimensions: dims
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn alarm(name: &str, dims: &[(&str, &str)], actions: &[&str]) -> AlarmFacts {
    AlarmFacts {
        name: name.into(),
        composite: false,
        actions_enabled: true,
        actions: actions.iter().map(|a| a.to_string()).collect(),
        metrics: vec![metric(dims)],
    }
}

/// A healthy net: the alarm watches the alias's new version, its topic reaches rollback, the
/// target and its group are there, the metric has data.
fn healthy() -> Facts {
    let good = alarm(
        "checkout-canary-errors",
        &[
            ("FunctionName", "checkout"),
            ("Resource", "checkout:live"),
            ("ExecutedVersion", "7"),
        ],
        &[TOPIC],
    );
    let mut f = Facts {
        own_arn: Some(format!("{OWN}:$LATEST")),
        ..Facts::default()
    };
    f.published
        .insert(good.metrics[0].clone(), Read::Found(true));
    f.alarms
        .insert("checkout-*".into(), Read::Found(vec![good]));
    f.topics.insert(TOPIC.into(), Read::Found(vec![OWN.into()]));
    f.targets
        .insert("lambda-alias:checkout:live".into(), Read::Found(()));
    f.groups.insert("app/dg".into(), Read::Found(()));
    f
}

#[test]
fn a_healthy_net_has_no_findings() {
    let r = report(&config(), &healthy());
    assert!(r.healthy && r.findings.is_empty(), "{r:#?}");
    assert_eq!((r.alarms_checked, r.targets_checked), (1, 1));
}

#[test]
fn each_misconfiguration_is_the_finding_that_names_it() {
    type Break = fn(&mut Facts);
    let table: &[(&str, Break, Severity, &str, &str)] = &[
        (
            "an alarm on a dimension Lambda never publishes",
            |f| {
                f.alarms.insert(
                    "checkout-*".into(),
                    Read::Found(vec![alarm(
                        "checkout-errors",
                        &[("FunctionName", "checkout"), ("Alias", "live")],
                        &[TOPIC],
                    )]),
                );
            },
            Severity::Serious,
            "alarm-dimensions",
            "dimension Alias is not one Lambda publishes",
        ),
        (
            "an alarm on another alias",
            |f| {
                f.alarms.insert(
                    "checkout-*".into(),
                    Read::Found(vec![alarm(
                        "checkout-errors",
                        &[("FunctionName", "checkout"), ("Resource", "checkout:prod")],
                        &[TOPIC],
                    )]),
                );
            },
            Severity::Serious,
            "alarm-dimensions",
            "Resource is checkout:prod",
        ),
        (
            "an alarm on another function",
            |f| {
                f.alarms.insert(
                    "checkout-*".into(),
                    Read::Found(vec![alarm(
                        "checkout-errors",
                        &[("FunctionName", "cart")],
                        &[TOPIC],
                    )]),
                );
            },
            Severity::Serious,
            "alarm-dimensions",
            "FunctionName is cart",
        ),
        (
            "ExecutedVersion without the alias",
            |f| {
                f.alarms.insert(
                    "checkout-*".into(),
                    Read::Found(vec![alarm(
                        "checkout-errors",
                        &[("FunctionName", "checkout"), ("ExecutedVersion", "7")],
                        &[TOPIC],
                    )]),
                );
            },
            Severity::Serious,
            "alarm-dimensions",
            "ExecutedVersion is published only with Resource = checkout:live",
        ),
        (
            "no alarm matches",
            |f| {
                f.alarms.insert("checkout-*".into(), Read::Found(vec![]));
            },
            Severity::Serious,
            "alarm-exists",
            "no alarm matches checkout-*",
        ),
        (
            "an alarm whose topic rollback is not subscribed to",
            |f| {
                f.topics.insert(
                    TOPIC.into(),
                    Read::Found(vec![
                        "arn:aws:lambda:us-east-1:123456789012:function:other".into()
                    ]),
                );
            },
            Severity::Serious,
            "alarm-reaches-rollback",
            "no topic rollback is subscribed to",
        ),
        (
            "an alarm with no action",
            |f| {
                if let Some(Read::Found(a)) = f.alarms.get_mut("checkout-*") {
                    a[0].actions.clear();
                }
            },
            Severity::Serious,
            "alarm-reaches-rollback",
            "no action at all",
        ),
        (
            "an alarm with actions disabled",
            |f| {
                if let Some(Read::Found(a)) = f.alarms.get_mut("checkout-*") {
                    a[0].actions_enabled = false;
                }
            },
            Severity::Serious,
            "alarm-reaches-rollback",
            "actions are disabled",
        ),
        (
            "the target does not exist",
            |f| {
                f.targets.insert(
                    "lambda-alias:checkout:live".into(),
                    Read::Missing("Alias not found".into()),
                );
            },
            Severity::Serious,
            "target-exists",
            "does not exist",
        ),
        (
            "rollback may not read the target",
            |f| {
                f.targets.insert(
                    "lambda-alias:checkout:live".into(),
                    Read::Denied("AccessDeniedException".into()),
                );
            },
            Severity::Serious,
            "permission",
            "may not read it",
        ),
        (
            "the deployment group does not exist",
            |f| {
                f.groups.insert(
                    "app/dg".into(),
                    Read::Missing("DeploymentGroupDoesNotExistException".into()),
                );
            },
            Severity::Serious,
            "deployment-group",
            "does not exist",
        ),
        (
            "no data yet",
            |f| {
                for v in f.published.values_mut() {
                    *v = Read::Found(false);
                }
            },
            Severity::Warning,
            "alarm-data",
            "no AWS/Lambda Errors",
        ),
        (
            "a topic that could not be read",
            |f| {
                f.topics
                    .insert(TOPIC.into(), Read::Failed("throttled".into()));
            },
            Severity::Warning,
            "alarm-reaches-rollback",
            "could not tell",
        ),
    ];
    for (what, breaks, severity, check, says) in table {
        let mut facts = healthy();
        breaks(&mut facts);
        let r = report(&config(), &facts);
        assert_eq!(r.findings.len(), 1, "{what}: {r:#?}");
        let f = &r.findings[0];
        assert_eq!((f.severity, f.check), (*severity, *check), "{what}: {f:#?}");
        assert!(f.message.contains(says), "{what}: {}", f.message);
        assert_eq!(r.healthy, *severity != Severity::Serious, "{what}");
    }
}

#[test]
fn a_direct_alarm_action_on_rollback_reaches_it() {
    let mut f = healthy();
    if let Some(Read::Found(a)) = f.alarms.get_mut("checkout-*") {
        a[0].actions = vec![format!("{OWN}:live")];
    }
    f.topics.clear();
    assert!(report(&config(), &f).findings.is_empty());
}

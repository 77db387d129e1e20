use super::*;
use std::collections::BTreeMap;

fn alias(version: &str, weights: &[(&str, f64)]) -> AliasState {
    AliasState {
        version: version.into(),
        weights: weights
            .iter()
            .map(|(v, w)| (v.to_string(), *w))
            .collect::<BTreeMap<_, _>>(),
        revision_id: None,
        arn: None,
    }
}

fn deployment(id: &str, rollback: bool, created: i64, current: &str, target: &str) -> InFlight {
    InFlight {
        id: id.into(),
        is_rollback: rollback,
        create_time_ms: Some(created),
        current_version: Some(current.into()),
        target_version: Some(target.into()),
    }
}

struct Case {
    name: &'static str,
    alias: AliasState,
    configured: Option<&'static str>,
    pointer: PointerRead,
    deployments: Result<Vec<InFlight>, &'static str>,
    alarm_ms: Option<i64>,
    existing: &'static [&'static str],
    want: Step,
    want_retry: bool,
}

fn run(c: &Case) -> Plan {
    let existing: BTreeSet<String> = c.existing.iter().map(|s| s.to_string()).collect();
    let deployments = c.deployments.as_deref().map_err(|e| *e);
    plan_alias(&AliasFacts {
        alias: &c.alias,
        configured_stable: c.configured,
        pointer_name: Some("blue"),
        pointer: &c.pointer,
        deployments,
        alarm_time_ms: c.alarm_ms,
        existing: &existing,
        rollout: None,
        remembered: None,
    })
}

#[test]
fn decision_table() {
    use PointerRead::*;
    let canary = || alias("1", &[("2", 0.1)]);
    let cases = vec![
        Case {
            name: "no deployment, canary split: the older version",
            alias: canary(),
            configured: None,
            pointer: NotConfigured,
            deployments: Ok(vec![]),
            alarm_ms: Some(1_000_000),
            existing: &["1", "2"],
            want: Step::Restore {
                version: "1".into(),
            },
            want_retry: false,
        },
        Case {
            name: "pointer alias not created yet: falls through to the older version",
            alias: canary(),
            configured: None,
            pointer: Missing,
            deployments: Ok(vec![]),
            alarm_ms: None,
            existing: &["1", "2"],
            want: Step::Restore {
                version: "1".into(),
            },
            want_retry: false,
        },
        Case {
            name: "pointer alias not created yet during the first canary: stop it",
            alias: canary(),
            configured: None,
            pointer: Missing,
            deployments: Ok(vec![deployment("d-1", false, 500_000, "1", "2")]),
            alarm_ms: Some(1_000_000),
            existing: &["1", "2"],
            want: Step::Stop {
                deployment_id: "d-1".into(),
                codedeploy_restores: Some("1".into()),
                backup: Some("1".into()),
            },
            want_retry: false,
        },
        Case {
            name: "pointer unreadable: decide without it, then retry",
            alias: canary(),
            configured: None,
            pointer: Unreadable("AccessDenied".into()),
            deployments: Ok(vec![]),
            alarm_ms: None,
            existing: &["1", "2"],
            want: Step::Restore {
                version: "1".into(),
            },
            want_retry: true,
        },
        Case {
            name: "pointer wins over inference",
            alias: alias("3", &[("4", 0.5)]),
            configured: None,
            pointer: Found("2".into()),
            deployments: Ok(vec![]),
            alarm_ms: None,
            existing: &["2", "3", "4"],
            want: Step::Restore {
                version: "2".into(),
            },
            want_retry: false,
        },
        Case {
            name: "configured wins over the pointer",
            alias: alias("3", &[("4", 0.5)]),
            configured: Some("1"),
            pointer: Found("2".into()),
            deployments: Ok(vec![]),
            alarm_ms: None,
            existing: &["1", "2", "3", "4"],
            want: Step::Restore {
                version: "1".into(),
            },
            want_retry: false,
        },
        Case {
            name: "configured version that does not exist is refused",
            alias: canary(),
            configured: Some("9"),
            pointer: NotConfigured,
            deployments: Ok(vec![]),
            alarm_ms: None,
            existing: &["1", "2"],
            want: Step::Refuse,
            want_retry: false,
        },
        Case {
            name: "pointer on $LATEST is refused",
            alias: canary(),
            configured: None,
            pointer: Found("$LATEST".into()),
            deployments: Ok(vec![]),
            alarm_ms: None,
            existing: &["1", "2"],
            want: Step::Refuse,
            want_retry: false,
        },
        Case {
            name: "one version, nothing configured: already stable",
            alias: alias("3", &[]),
            configured: None,
            pointer: NotConfigured,
            deployments: Ok(vec![]),
            alarm_ms: None,
            existing: &["3"],
            want: Step::AlreadyStable,
            want_retry: false,
        },
        Case {
            name: "already on the pointer's version",
            alias: alias("3", &[("4", 0.0)]),
            configured: None,
            pointer: Found("3".into()),
            deployments: Ok(vec![]),
            alarm_ms: None,
            existing: &["3", "4"],
            want: Step::AlreadyStable,
            want_retry: false,
        },
        Case {
            name: "CodeDeploy's rollback in flight: wait for it, back up with what it restores",
            alias: alias("2", &[]),
            configured: None,
            pointer: NotConfigured,
            deployments: Ok(vec![deployment("d-rb", true, 2_000_000, "2", "1")]),
            alarm_ms: Some(1_500_000),
            existing: &["1", "2"],
            want: Step::AwaitRollback {
                deployment_id: "d-rb".into(),
                restores: "1".into(),
                backup: Some("1".into()),
            },
            want_retry: false,
        },
        Case {
            name: "CodeDeploy's rollback already restored: nothing to do",
            alias: alias("1", &[]),
            configured: None,
            pointer: NotConfigured,
            deployments: Ok(vec![deployment("d-rb", true, 2_000_000, "2", "1")]),
            alarm_ms: Some(1_500_000),
            existing: &["1", "2"],
            want: Step::AlreadyStable,
            want_retry: false,
        },
        Case {
            name: "CodeDeploy's rollback disagrees with the pointer: follow CodeDeploy",
            alias: alias("2", &[]),
            configured: None,
            pointer: Found("0".into()),
            deployments: Ok(vec![deployment("d-rb", true, 2_000_000, "2", "1")]),
            alarm_ms: None,
            existing: &["0", "1", "2"],
            want: Step::AwaitRollback {
                deployment_id: "d-rb".into(),
                restores: "1".into(),
                backup: Some("1".into()),
            },
            want_retry: false,
        },
        Case {
            name:
                "rollback beside an ordinary deployment: the rollback wins, nothing is stopped",
            alias: canary(),
            configured: None,
            pointer: NotConfigured,
            deployments: Ok(vec![
                deployment("d-1", false, 500_000, "1", "2"),
                deployment("d-rb", true, 900_000, "2", "1"),
            ]),
            alarm_ms: Some(1_000_000),
            existing: &["1", "2"],
            want: Step::AwaitRollback {
                deployment_id: "d-rb".into(),
                restores: "1".into(),
                backup: Some("1".into()),
            },
            want_retry: false,
        },
        Case {
            name: "deployment created after the alarm: left alone",
            alias: alias("2", &[("3", 0.1)]),
            configured: None,
            pointer: NotConfigured,
            deployments: Ok(vec![deployment("d-new", false, 5_000_000, "2", "3")]),
            alarm_ms: Some(1_000_000),
            existing: &["2", "3"],
            want: Step::LeaveAlone {
                deployment_id: "d-new".into(),
            },
            want_retry: false,
        },
        Case {
            name: "AppSpec current version $LATEST: stop, but back up only with a real version",
            alias: alias("$LATEST", &[("2", 0.1)]),
            configured: None,
            pointer: NotConfigured,
            deployments: Ok(vec![deployment("d-1", false, 500, "$LATEST", "2")]),
            alarm_ms: Some(1_000_000),
            existing: &["2"],
            want: Step::Stop {
                deployment_id: "d-1".into(),
                codedeploy_restores: Some("$LATEST".into()),
                backup: None,
            },
            want_retry: false,
        },
        Case {
            name: "lookup failed: restore directly, then retry",
            alias: canary(),
            configured: None,
            pointer: NotConfigured,
            deployments: Err("ListDeployments: throttled"),
            alarm_ms: Some(1_000_000),
            existing: &["1", "2"],
            want: Step::Restore {
                version: "1".into(),
            },
            want_retry: true,
        },
        Case {
            name: "a stale pointer on the version being deployed: back up only with CodeDeploy's version",
            alias: canary(),
            configured: None,
            pointer: Found("2".into()),
            deployments: Ok(vec![deployment("d-1", false, 500_000, "1", "2")]),
            alarm_ms: Some(1_000_000),
            existing: &["1", "2"],
            want: Step::Stop {
                deployment_id: "d-1".into(),
                codedeploy_restores: Some("1".into()),
                backup: Some("1".into()),
            },
            want_retry: false,
        },
        Case {
            name: "a pinned version that disagrees with CodeDeploy: stop, never fight CodeDeploy",
            alias: alias("5", &[("6", 0.1)]),
            configured: Some("4"),
            pointer: NotConfigured,
            deployments: Ok(vec![deployment("d-1", false, 500_000, "5", "6")]),
            alarm_ms: Some(1_000_000),
            existing: &["4", "5", "6"],
            want: Step::Stop { deployment_id: "d-1".into(), codedeploy_restores: Some("5".into()), backup: Some("5".into()) },
            want_retry: false,
        },
    ];
    for c in &cases {
        let plan = run(c);
        assert_eq!(plan.step, c.want, "{}: {plan:#?}", c.name);
        assert_eq!(plan.retry.is_some(), c.want_retry, "{}: {plan:#?}", c.name);
    }
}

fn rollout(status: Status, stable: &str, start: i64, at: i64) -> Marker {
    Marker {
        stable: Some(stable.into()),
        start_ms: Some(start),
        ..Marker::new("r1", 2, 100, status, at)
    }
}

fn decide_with(
    alias: AliasState,
    alarm_ms: Option<i64>,
    rollout: Option<&Marker>,
    remembered: Option<&FirstRead>,
    existing: &[&str],
) -> Plan {
    let existing: BTreeSet<String> = existing.iter().map(|s| s.to_string()).collect();
    plan_alias(&AliasFacts {
        alias: &alias,
        configured_stable: None,
        pointer_name: None,
        pointer: &PointerRead::NotConfigured,
        deployments: Ok(&[]),
        alarm_time_ms: alarm_ms,
        existing: &existing,
        rollout,
        remembered,
    })
}

/// What the marker or the first read knew, the alias now, and the plan they must lead to.
struct FactsCase {
    name: &'static str,
    alias: AliasState,
    alarm_ms: i64,
    rollout: Option<Marker>,
    remembered: Option<FirstRead>,
    existing: &'static [&'static str],
    want: Step,
    want_source: Option<StableSource>,
}

#[test]
fn a_rollouts_marker_and_the_first_read_are_better_facts_than_inference() {
    let restore = |v: &str| Step::Restore { version: v.into() };
    let at_100 = rollout(Status::Baking, "1", 1_000, 5_000);
    let older = rollout(Status::Baking, "7", 1_000, 5_000);
    let later = rollout(Status::Baking, "1", 60_000, 61_000);
    let promoted = rollout(Status::Promoted, "1", 1_000, 5_000);
    let first = FirstRead::of(
        &alias("1", &[("2", 0.1)]),
        &Stable {
            version: "1".into(),
            source: StableSource::OlderOfTwo,
        },
    );
    let case = |name,
                alias,
                alarm_ms,
                rollout: Option<&Marker>,
                remembered: Option<&FirstRead>,
                existing,
                want,
                want_source| FactsCase {
        name,
        alias,
        alarm_ms,
        rollout: rollout.cloned(),
        remembered: remembered.cloned(),
        existing,
        want,
        want_source,
    };
    let cases = [
        // Issue 19 [1]
        case(
            "the rollout's last step put everything on the new version: the marker's stable",
            alias("2", &[]),
            6_000,
            Some(&at_100),
            None,
            &["1", "2"],
            restore("1"),
            Some(StableSource::Rollout),
        ),
        // [2]
        case(
            "rolling out an older version number: the marker, never older of two",
            alias("7", &[("5", 0.1)]),
            6_000,
            Some(&older),
            None,
            &["5", "7"],
            restore("7"),
            None,
        ),
        case(
            "without the marker: the bug",
            alias("7", &[("5", 0.1)]),
            6_000,
            None,
            None,
            &["5", "7"],
            restore("5"),
            None,
        ),
        case(
            "the older version number alone on traffic: the marker still says 7",
            alias("5", &[]),
            6_000,
            Some(&older),
            None,
            &["5", "7"],
            restore("7"),
            None,
        ),
        case(
            "a rollout that began after the alarm is not what the alarm is about",
            alias("1", &[("2", 0.1)]),
            6_000,
            Some(&later),
            None,
            &["1", "2"],
            Step::LeaveRolloutAlone {
                rollout: "r1".into(),
            },
            None,
        ),
        case(
            "promoted: within the hour the previous production comes back",
            alias("2", &[]),
            6_000,
            Some(&promoted),
            None,
            &["1", "2"],
            restore("1"),
            None,
        ),
        case(
            "promoted: later, nothing says so",
            alias("2", &[]),
            5_000 + PROMOTED_WATCH_MS + 1,
            Some(&promoted),
            None,
            &["1", "2"],
            Step::AlreadyStable,
            None,
        ),
        // [3]: a writer won the RevisionId race and put the canary at 100%.
        case(
            "the first read's decision survives the re-decision",
            alias("2", &[]),
            6_000,
            None,
            Some(&first),
            &["1", "2"],
            restore("1"),
            Some(StableSource::FirstRead),
        ),
        case(
            "without the first read: the bug",
            alias("2", &[]),
            6_000,
            None,
            None,
            &["1", "2"],
            Step::AlreadyStable,
            None,
        ),
        case(
            "moved to other versions altogether (a new deployment, 3 -> 4): decided anew",
            alias("3", &[("4", 0.2)]),
            6_000,
            None,
            Some(&first),
            &["1", "2", "3", "4"],
            restore("3"),
            None,
        ),
    ];
    for c in &cases {
        let plan = decide_with(
            c.alias.clone(),
            Some(c.alarm_ms),
            c.rollout.as_ref(),
            c.remembered.as_ref(),
            c.existing,
        );
        assert_eq!(plan.step, c.want, "{}: {plan:#?}", c.name);
        if let Some(source) = &c.want_source {
            assert_eq!(
                plan.stable.as_ref().map(|s| &s.source),
                Some(source),
                "{}: {plan:#?}",
                c.name
            );
        }
    }
}

#[test]
fn older_of_two_in_both_shift_shapes() {
    assert_eq!(
        older_of_two(&alias("1", &[("2", 0.1)])),
        Ok(Some("1".into()))
    );
    assert_eq!(
        older_of_two(&alias("12", &[("9", 0.9)])),
        Ok(Some("9".into()))
    );
    assert_eq!(older_of_two(&alias("3", &[("4", 0.0)])), Ok(None));
    assert!(older_of_two(&alias("$LATEST", &[("2", 0.5)])).is_err());
}

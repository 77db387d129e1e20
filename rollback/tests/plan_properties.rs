//! Properties of rollback's decision over every combination of what it can read: the alias's
//! routing, the pointer (absent, missing, unreadable, found), in-flight deployments (ordinary or
//! CodeDeploy's rollbacks, before or after the alarm, with versions that may be `$LATEST` or
//! missing), a failed lookup, the alarm's time and which versions exist.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use rollback::config::is_version_number;
use rollback::plan::{is_stale, plan_alias, AliasFacts, InFlight, Plan, PointerRead, Step};
use rollback::traffic::AliasState;

const VERSIONS: [&str; 7] = ["1", "2", "3", "4", "5", "6", "$LATEST"];

fn version() -> impl Strategy<Value = String> {
    prop::sample::select(&VERSIONS[..]).prop_map(String::from)
}

fn alias_state() -> impl Strategy<Value = AliasState> {
    (
        version(),
        prop::collection::btree_map(version(), prop::sample::select(vec![0.0, 0.1, 0.5]), 0..2),
    )
        .prop_map(|(version, weights)| AliasState {
            weights: weights
                .into_iter()
                .filter(|(v, _)| *v != version)
                .collect::<BTreeMap<_, _>>(),
            version,
            revision_id: None,
            arn: None,
        })
}

fn pointer() -> impl Strategy<Value = PointerRead> {
    prop_oneof![
        Just(PointerRead::NotConfigured),
        Just(PointerRead::Missing),
        Just(PointerRead::Unreadable("AccessDenied".into())),
        version().prop_map(PointerRead::Found),
    ]
}

fn in_flight() -> impl Strategy<Value = InFlight> {
    (
        Just(0u32),
        any::<bool>(),
        // Seconds apart, and one within the clock tolerance of an alarm time.
        prop::option::of(prop::sample::select(vec![0i64, 100_000, 151_000, 200_000])),
        prop::option::of(version()),
        prop::option::of(version()),
    )
        .prop_map(|(n, is_rollback, created, current, target)| InFlight {
            id: format!("d-{n}"),
            is_rollback,
            create_time_ms: created,
            current_version: current,
            target_version: target,
        })
}

#[derive(Debug, Clone)]
struct Facts {
    alias: AliasState,
    configured: Option<String>,
    pointer: PointerRead,
    deployments: Result<Vec<InFlight>, String>,
    alarm_ms: Option<i64>,
    existing: BTreeSet<String>,
}

fn facts() -> impl Strategy<Value = Facts> {
    (
        alias_state(),
        prop::option::of(
            version().prop_filter("config validation refuses $LATEST", |v| {
                is_version_number(v)
            }),
        ),
        pointer(),
        prop_oneof![
            // Deployment ids are unique.
            4 => prop::collection::vec(in_flight(), 0..3).prop_map(|mut d| {
                d.iter_mut().enumerate().for_each(|(i, d)| d.id = format!("d-{i}"));
                Ok(d)
            }),
            1 => Just(Err("ListDeployments: throttled".to_string())),
        ],
        prop::option::of(prop::sample::select(vec![50_000i64, 150_000])),
        prop::collection::btree_set(version(), 0..7),
    )
        .prop_map(
            |(alias, configured, pointer, deployments, alarm_ms, existing)| Facts {
                alias,
                configured,
                pointer,
                deployments,
                alarm_ms,
                existing,
            },
        )
}

fn decide(f: &Facts) -> Plan {
    plan_alias(&AliasFacts {
        alias: &f.alias,
        configured_stable: f.configured.as_deref(),
        pointer_name: Some("blue"),
        pointer: &f.pointer,
        deployments: f.deployments.as_deref().map_err(String::as_str),
        alarm_time_ms: f.alarm_ms,
        existing: &f.existing,
        rollout: None,
        remembered: None,
    })
}

fn deployment<'a>(f: &'a Facts, id: &str) -> &'a InFlight {
    f.deployments
        .as_ref()
        .ok()
        .and_then(|d| d.iter().find(|d| d.id == id))
        .expect("a plan names only deployments that were read")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn rollback_never_plans_an_unsafe_write_or_stop(f in facts()) {
        let plan = decide(&f);
        let deployments: &[InFlight] = f.deployments.as_deref().unwrap_or(&[]);

        for v in plan.writes() {
            // Never $LATEST, never a version that does not exist.
            prop_assert!(is_version_number(v), "writes {v:?}: {plan:#?}");
            prop_assert!(
                f.existing.contains(v) || f.alias.versions().any(|a| a == v),
                "writes {v} which is not known to exist: {plan:#?}"
            );
            match &plan.step {
                // With CodeDeploy in charge, rollback only ever writes what CodeDeploy restores.
                Step::Stop { codedeploy_restores, .. } => {
                    if codedeploy_restores.as_deref().is_some_and(is_version_number) {
                        prop_assert_eq!(Some(v), codedeploy_restores.as_deref(), "fights CodeDeploy: {:#?}", plan);
                    }
                }
                Step::AwaitRollback { restores, .. } => {
                    prop_assert_eq!(v, restores.as_str(), "fights CodeDeploy's rollback: {:#?}", plan);
                }
                // Otherwise all traffic only ever goes to the stable version the team named, when
                // it named one.
                _ => {
                    if let Some(c) = &f.configured {
                        prop_assert_eq!(v, c.as_str(), "configured stable version ignored: {:#?}", plan);
                    } else if let PointerRead::Found(p) = &f.pointer {
                        prop_assert_eq!(v, p.as_str(), "pointer ignored: {:#?}", plan);
                    }
                }
            }
            // Never a version being deployed, never one CodeDeploy rolls away from.
            for d in deployments {
                if d.is_rollback {
                    prop_assert_ne!(Some(v), d.current_version.as_deref(), "writes the version rolled away from: {:#?}", plan);
                } else {
                    prop_assert_ne!(Some(v), d.target_version.as_deref(), "writes a version being deployed: {:#?}", plan);
                }
            }
        }
        match &plan.step {
            Step::Stop { deployment_id, backup, .. } => {
                let d = deployment(&f, deployment_id);
                prop_assert!(!d.is_rollback, "stops CodeDeploy's rollback: {plan:#?}");
                prop_assert!(
                    !deployments.iter().any(|d| d.is_rollback),
                    "stops something while CodeDeploy rolls back: {plan:#?}"
                );
                prop_assert!(!is_stale(d, f.alarm_ms), "stops a deployment newer than the alarm: {plan:#?}");
                if backup.is_some() {
                    prop_assert_ne!(backup.as_deref(), d.target_version.as_deref(), "backs up with the version being deployed: {:#?}", plan);
                }
            }
            Step::AwaitRollback { deployment_id, restores, .. } => {
                let d = deployment(&f, deployment_id);
                prop_assert!(d.is_rollback);
                prop_assert_eq!(Some(restores.as_str()), d.target_version.as_deref());
            }
            Step::LeaveAlone { deployment_id } => {
                let d = deployment(&f, deployment_id);
                prop_assert!(is_stale(d, f.alarm_ms), "left alone though not newer than the alarm: {plan:#?}");
            }
            Step::Restore { version } => {
                prop_assert!(!f.alias.all_on(version), "writes what is already there: {plan:#?}");
                prop_assert!(
                    !deployments.iter().any(|d| d.is_rollback || !is_stale(d, f.alarm_ms)),
                    "writes the alias directly while CodeDeploy shifts it: {plan:#?}"
                );
            }
            Step::LeaveRolloutAlone { .. } => prop_assert!(false, "no rollout marker was read: {plan:#?}"),
            Step::AlreadyStable | Step::Refuse => {}
        }
        // Stale deployments alone: nothing is written or stopped.
        let stale_only = !deployments.is_empty()
            && deployments.iter().all(|d| !d.is_rollback && is_stale(d, f.alarm_ms));
        if stale_only {
            prop_assert!(matches!(plan.step, Step::LeaveAlone { .. }), "{plan:#?}");
        }
        // A lookup or pointer that could not be read makes the invocation fail for a retry.
        if f.deployments.is_err() || matches!(f.pointer, PointerRead::Unreadable(_)) {
            prop_assert!(plan.retry.is_some(), "{plan:#?}");
        }
    }
}

fn transition() -> impl Strategy<Value = rollback::event::AlarmTransition> {
    use rollback::event::{AlarmKind, AlarmState, AlarmTransition, Envelope};
    let state = || {
        prop::sample::select(vec![
            AlarmState::Ok,
            AlarmState::Alarm,
            AlarmState::InsufficientData,
        ])
    };
    (
        prop::sample::select(vec![
            "checkout-errors",
            "checkout-latency",
            "billing-errors",
            "other",
        ]),
        state(),
        prop::option::of(state()),
    )
        .prop_map(|(name, new_state, old_state)| AlarmTransition {
            alarm_name: name.into(),
            alarm_arn: None,
            new_state,
            old_state,
            kind: AlarmKind::SingleMetric,
            envelope: Envelope::Sns,
            reason: None,
            state_change_time: Some("2026-11-21T14:57:14.419+0000".into()),
            region: None,
        })
}

proptest! {
    #[test]
    fn only_transitions_into_alarm_of_mapped_alarms_produce_work(
        transitions in prop::collection::vec(transition(), 0..6)
    ) {
        let targets = r#"[{"alarms":["checkout-*"],"targets":[{"type":"lambda-alias","function":"checkout","alias":"live"}]}]"#;
        let config = rollback::Config::from_vars(&[("ROLLBACK_TARGETS", targets)][..]).unwrap();
        let routing = rollback::route(&transitions, &config);
        for work in &routing.work {
            for alarm in &work.alarms {
                prop_assert!(alarm.starts_with("checkout-"), "{routing:?}");
                prop_assert!(transitions.iter().any(|t| &t.alarm_name == alarm && t.is_transition_into_alarm()), "{routing:?}");
            }
        }
        for t in &transitions {
            if t.is_transition_into_alarm() && !t.alarm_name.starts_with("checkout-") {
                prop_assert!(routing.unmapped.contains(&t.alarm_name), "{routing:?}");
            }
        }
    }
}

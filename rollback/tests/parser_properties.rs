//! Property tests: arbitrary JSON and mutated real events never panic the parser, and an event
//! the parser rejects never reaches AWS.

mod support;

use proptest::prelude::*;
use rollback::event::parse_event;
use rollback::{handle, Deadline, RollbackError};
use serde_json::{json, Map, Value};
use shiftguard_testkit::event;

const REAL_EVENTS: &[&str] = &[
    "rollback/sns-single-metric-alarm.json",
    "rollback/sns-metric-math-alarm.json",
    "rollback/sns-anomaly-detection-alarm.json",
    "rollback/sns-composite-alarm.json",
    "rollback/sns-ok-transition.json",
    "rollback/alarm-action-direct.json",
    "rollback/eventbridge-alarm-state-change.json",
];

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("ALARM"),
            Just("OK"),
            Just("aws.cloudwatch"),
            Just("Records"),
            Just("{\"AlarmName\":1}")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("Records".to_string()),
                        Just("Sns".to_string()),
                        Just("Message".to_string()),
                        Just("source".to_string()),
                        Just("alarmData".to_string()),
                        Just("detail".to_string()),
                        Just("detail-type".to_string()),
                        "[a-zA-Z]{1,8}",
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A path of keys/indices into a value, chosen by `picks`, and a replacement applied there.
fn mutate(mut v: Value, picks: &[usize], replacement: Value, remove: bool) -> Value {
    fn walk(v: &mut Value, picks: &[usize], replacement: Value, remove: bool) {
        let Some((&pick, rest)) = picks.split_first() else {
            *v = replacement;
            return;
        };
        match v {
            Value::Object(map) if !map.is_empty() => {
                let key = map.keys().nth(pick % map.len()).cloned().unwrap();
                if rest.is_empty() && remove {
                    map.remove(&key);
                } else {
                    walk(map.get_mut(&key).unwrap(), rest, replacement, remove);
                }
            }
            Value::Array(items) if !items.is_empty() => {
                let i = pick % items.len();
                if rest.is_empty() && remove {
                    items.remove(i);
                } else {
                    walk(&mut items[i], rest, replacement, remove);
                }
            }
            // Mutating inside the SNS Message string: parse, mutate, re-serialise (or truncate).
            Value::String(s) if s.starts_with('{') => {
                if let Ok(mut inner) = serde_json::from_str::<Value>(s) {
                    walk(&mut inner, rest, replacement, remove);
                    *s = inner.to_string();
                } else {
                    s.truncate(pick % (s.len() + 1));
                }
            }
            other => *other = replacement,
        }
    }
    walk(&mut v, picks, replacement, remove);
    v
}

fn mutated_real_event() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(REAL_EVENTS),
        prop::collection::vec(any::<usize>(), 0..6),
        arbitrary_json(),
        any::<bool>(),
    )
        .prop_map(|(file, picks, replacement, remove)| {
            mutate(event(file), &picks, replacement, remove)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_panics(v in arbitrary_json()) {
        let _ = parse_event(&v);
    }

    #[test]
    fn mutated_real_events_never_panic(v in mutated_real_event()) {
        let _ = parse_event(&v);
    }
}

/// Through the whole handler, against the emulator: whenever the parser rejects an event, the
/// emulator sees no call at all.
#[test]
fn rejected_events_never_reach_aws() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let w = rt.block_on(support::world());
    let cfg = support::config(
        json!([{ "alarms": ["checkout-*"], "targets": [support::alias_target("checkout", "live")] }]),
    );
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 150,
        ..ProptestConfig::default()
    });
    let strategy = prop_oneof![arbitrary_json(), mutated_real_event()];
    let rejected = std::cell::Cell::new(0);
    runner
        .run(&strategy, |v| {
            w.emu.reset_calls();
            let parsed = parse_event(&v);
            let result = rt.block_on(handle(&w.clients, &cfg, &v, Deadline::default()));
            if parsed.is_err() {
                rejected.set(rejected.get() + 1);
                prop_assert!(matches!(result, Err(RollbackError::BadEvent(_))));
                prop_assert!(
                    w.emu.calls().is_empty(),
                    "calls for a rejected event: {:?}",
                    w.emu.calls()
                );
            }
            Ok(())
        })
        .unwrap();
    assert!(
        rejected.get() > 50,
        "the strategy should mostly produce invalid events; only {} were rejected",
        rejected.get()
    );
}

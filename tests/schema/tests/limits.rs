//! The bounds the schema states are the functions' own: every row of `cases/refused.json` is
//! refused by the function that reads it, naming the field (cdk/test/limits.test.ts holds the
//! construct's validation to the same rows, so a bound cannot be stated in one place only).

use serde_json::Value;

fn cases() -> (Value, Vec<Value>) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cases/refused.json");
    let table: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = table["cases"].as_array().unwrap().clone();
    (table["bases"].clone(), cases)
}

/// The row's document over the root's base (an object's keys replace the base's).
fn document(bases: &Value, case: &Value) -> Value {
    let base = &bases[case["root"].as_str().unwrap()];
    match (base, &case["document"]) {
        (Value::Object(b), Value::Object(d)) => {
            let mut out = b.clone();
            out.extend(d.clone());
            Value::Object(out)
        }
        (_, d) => d.clone(),
    }
}

fn refusal(root: &str, doc: &Value) -> Result<(), String> {
    match root {
        "checkSet" => hooks::config::parse_checks(&doc.to_string()).map(|_| ()),
        "rollbackMappings" => rollback::config::parse_mappings(&doc.to_string()).map(|_| ()),
        "rolloutPlan" => {
            shift::plan::parse_plan(&serde_json::json!({"shiftguard": "shift", "rollout": doc}))
                .map(|_| ())
        }
        other => panic!("unknown root {other}"),
    }
}

#[test]
fn every_base_is_accepted() {
    let (bases, _) = cases();
    for (root, base) in bases.as_object().unwrap() {
        refusal(root, base).unwrap_or_else(|e| panic!("the {root} base is refused: {e}"));
    }
}

#[test]
fn every_bound_the_schema_states_is_the_functions_own() {
    let (bases, cases) = cases();
    assert!(cases.len() >= 50, "the table lost rows");
    let mut wrong = Vec::new();
    for case in &cases {
        let (root, field) = (
            case["root"].as_str().unwrap(),
            case["field"].as_str().unwrap(),
        );
        let doc = document(&bases, case);
        match refusal(root, &doc) {
            Ok(()) => wrong.push(format!(
                "{root} {doc}: accepted (expected a refusal naming {field})"
            )),
            Err(e) if !e.contains(field) => {
                wrong.push(format!("{root} {doc}: refused without naming {field}: {e}"))
            }
            Err(_) => {}
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

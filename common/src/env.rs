//! Reading typed settings from the environment, with errors that name the variable and say what
//! was expected.

use std::fmt;

/// A setting that could not be read. Its text names the variable and what it should hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvError {
    pub variable: String,
    pub problem: String,
}

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.problem)
    }
}

impl std::error::Error for EnvError {}

impl EnvError {
    pub fn new(variable: &str, problem: impl Into<String>) -> Self {
        Self {
            variable: variable.to_string(),
            problem: problem.into(),
        }
    }
}

/// A source of settings: the process environment in production, a map in tests.
pub trait Vars {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Vars for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<S: std::hash::BuildHasher> Vars for std::collections::HashMap<String, String, S> {
    fn get(&self, name: &str) -> Option<String> {
        std::collections::HashMap::get(self, name).cloned()
    }
}

impl Vars for [(&str, &str)] {
    fn get(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

/// A value that is set and not blank.
pub fn non_empty(vars: &(impl Vars + ?Sized), name: &str) -> Option<String> {
    vars.get(name).filter(|v| !v.trim().is_empty())
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`), or `default` when unset. Anything else is an error:
/// a typo in a safety switch such as `DRY_RUN` must not silently mean "off".
pub fn bool_var(vars: &(impl Vars + ?Sized), name: &str, default: bool) -> Result<bool, EnvError> {
    match non_empty(vars, name) {
        None => Ok(default),
        Some(v) => match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            other => Err(EnvError::new(
                name,
                format!("expected true or false, got {other:?}"),
            )),
        },
    }
}

/// A duration in the one grammar (`crate::duration`: `250ms`, `5s`, `2m`, `1h`, or a bare whole
/// number of milliseconds) within `range_ms`, or `default_ms` when unset.
pub fn duration_ms_var(
    vars: &(impl Vars + ?Sized),
    name: &str,
    default_ms: u64,
    range_ms: std::ops::RangeInclusive<u64>,
) -> Result<u64, EnvError> {
    let Some(raw) = non_empty(vars, name) else {
        return Ok(default_ms);
    };
    let parsed = crate::duration::parse(&raw).and_then(|d| u64::try_from(d.as_millis()).ok());
    match parsed {
        Some(ms) if range_ms.contains(&ms) => Ok(ms),
        _ => Err(EnvError::new(
            name,
            format!(
                "expected {} (or a whole number of milliseconds) between {} ms and {} ms, got {:?}",
                crate::duration::GRAMMAR,
                range_ms.start(),
                range_ms.end(),
                raw.trim()
            ),
        )),
    }
}

/// Names a JSON file of further settings (see [`Environment`]).
pub const CONFIG_FILE_VAR: &str = "SHIFTGUARD_CONFIG_FILE";

/// The settings a function starts with: the process environment and, when
/// `SHIFTGUARD_CONFIG_FILE` names one, a JSON file of more — how the construct gets past Lambda's
/// 4 KB limit on a function's environment (check sets and target maps for many functions live in
/// a file shipped in a layer, read once at start-up).
///
/// The file is `{"version": 1, "environment": {"NAME": value, …}}`; a value is a string, or any
/// other JSON value, which stands for its JSON text (so a check set can be written as an object).
/// Inside string values, `${NAME}` is the process environment variable NAME (how deploy-time
/// values — a generated function name — reach a file written at synth); `$${` is a literal `${`.
/// A name set both in the file and in the environment, an unset `${NAME}`, an unreadable or
/// malformed file are errors naming the variable: never a silent choice between two values.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    vars: std::collections::BTreeMap<String, String>,
}

impl Environment {
    /// The process environment, and the file it names.
    pub fn load() -> Result<Self, EnvError> {
        let process: std::collections::BTreeMap<String, String> = std::env::vars().collect();
        let file = match process
            .get(CONFIG_FILE_VAR)
            .filter(|p| !p.trim().is_empty())
        {
            None => None,
            Some(path) => Some(std::fs::read_to_string(path.trim()).map_err(|e| {
                EnvError::new(CONFIG_FILE_VAR, format!("cannot read {path:?}: {e}"))
            })?),
        };
        Self::from_parts(process, file.as_deref())
    }

    /// `process` overlaid with the settings file's text (`None`: no file).
    pub fn from_parts(
        process: std::collections::BTreeMap<String, String>,
        file: Option<&str>,
    ) -> Result<Self, EnvError> {
        let mut vars = process;
        let Some(text) = file else {
            return Ok(Self { vars });
        };
        let bad = |problem: String| EnvError::new(CONFIG_FILE_VAR, problem);
        let doc: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| bad(format!("the settings file is not JSON: {e}")))?;
        let Some(doc) = doc.as_object() else {
            return Err(bad(
                "the settings file must be an object {\"version\": 1, \"environment\": {…}}".into(),
            ));
        };
        if let Some(key) = doc
            .keys()
            .find(|k| !["version", "environment"].contains(&k.as_str()))
        {
            return Err(bad(format!(
                "unknown key {key:?} in the settings file (expected version and environment)"
            )));
        }
        if doc.get("version") != Some(&serde_json::json!(1)) {
            return Err(bad(format!(
                "the settings file's version must be 1, got {}",
                doc.get("version")
                    .map_or("nothing".into(), |v| v.to_string())
            )));
        }
        let Some(settings) = doc.get("environment").and_then(|e| e.as_object()) else {
            return Err(bad(
                "the settings file's environment must be an object of NAME: value".into(),
            ));
        };
        let mut added = Vec::new();
        for (name, value) in settings {
            if vars.contains_key(name) {
                return Err(EnvError::new(
                    name,
                    format!("is set both in the environment and in the settings file {CONFIG_FILE_VAR} names: set it in one place"),
                ));
            }
            let mut value = value.clone();
            substitute(&mut value, &vars).map_err(|p| EnvError::new(name, p))?;
            let text = match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            added.push((name.clone(), text));
        }
        vars.extend(added);
        Ok(Self { vars })
    }

    /// Every setting (the process environment and the file's), by name.
    pub fn all(&self) -> &std::collections::BTreeMap<String, String> {
        &self.vars
    }
}

impl Vars for Environment {
    fn get(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }
}

/// `${NAME}` in every string of `value` replaced with the process variable's value.
fn substitute(
    value: &mut serde_json::Value,
    process: &std::collections::BTreeMap<String, String>,
) -> Result<(), String> {
    match value {
        serde_json::Value::String(s) if s.contains('$') => *s = expand(s, process)?,
        serde_json::Value::Array(items) => {
            for item in items {
                substitute(item, process)?;
            }
        }
        serde_json::Value::Object(map) => {
            for (_, item) in map.iter_mut() {
                substitute(item, process)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn expand(s: &str, process: &std::collections::BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let end = after
                .find('}')
                .ok_or_else(|| format!("an unclosed ${{ in {s:?} in the settings file"))?;
            let name = &after[..end];
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(format!(
                    "${{{name}}} in the settings file is not a variable reference (NAME: A-Z, 0-9, _)"
                ));
            }
            let v = process.get(name).ok_or_else(|| {
                format!(
                    "the settings file refers to ${{{name}}}, which is not set in the environment"
                )
            })?;
            out.push_str(v);
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_settings_file_adds_settings_with_deploy_time_values() {
        let file = r#"{"version": 1, "environment": {
            "HOOK_CHECKS": {"checks": [{"name": "smoke", "kind": "invoke", "functions": ["${SG_F0}", "x$${y}"]}]},
            "PLAIN": "a $ sign and ${SG_F0}"}}"#;
        let env = Environment::from_parts(process(&[("SG_F0", "Stack-Checkout-1AB")]), Some(file))
            .unwrap();
        assert_eq!(
            env.get("HOOK_CHECKS").unwrap(),
            r#"{"checks":[{"functions":["Stack-Checkout-1AB","x${y}"],"kind":"invoke","name":"smoke"}]}"#
        );
        assert_eq!(env.get("PLAIN").unwrap(), "a $ sign and Stack-Checkout-1AB");
        assert_eq!(env.get("SG_F0").unwrap(), "Stack-Checkout-1AB");
        assert!(Environment::from_parts(process(&[("A", "1")]), None)
            .unwrap()
            .get("A")
            .is_some());
    }

    #[test]
    fn a_settings_file_never_chooses_silently() {
        let cases: &[(&str, &str, &str)] = &[
            (
                r#"{"version": 1, "environment": {"A": "x"}}"#,
                "A",
                "both in the environment",
            ),
            (
                r#"{"version": 1, "environment": {"B": "${NOPE}"}}"#,
                "B",
                "NOPE}, which is not set",
            ),
            (
                r#"{"version": 1, "environment": {"B": "${lower}"}}"#,
                "B",
                "not a variable reference",
            ),
            (
                r#"{"version": 1, "environment": {"B": "${A"}}"#,
                "B",
                "unclosed",
            ),
            (
                r#"{"version": 2, "environment": {}}"#,
                CONFIG_FILE_VAR,
                "version must be 1",
            ),
            (
                r#"{"version": 1, "env": {}}"#,
                CONFIG_FILE_VAR,
                "unknown key \"env\"",
            ),
            (r#"[1]"#, CONFIG_FILE_VAR, "must be an object"),
            (r#"{"version": 1"#, CONFIG_FILE_VAR, "not JSON"),
        ];
        for (file, variable, says) in cases {
            let e = Environment::from_parts(process(&[("A", "1")]), Some(file)).unwrap_err();
            assert_eq!(&e.variable, variable, "{file}: {e}");
            assert!(e.to_string().contains(says), "{file}: {e}");
        }
    }

    #[test]
    fn bool_var_rejects_typos_and_names_the_variable() {
        let vars: &[(&str, &str)] = &[("DRY_RUN", "ture")];
        let err = bool_var(vars, "DRY_RUN", false).unwrap_err();
        assert_eq!(err.variable, "DRY_RUN");
        assert!(err.to_string().contains("expected true or false"));
        assert!(!bool_var(&[("X", "no")][..], "X", true).unwrap());
        assert!(bool_var(&[][..], "X", true).unwrap());
    }

    #[test]
    fn durations_accept_ms_and_seconds_within_range() {
        let vars: &[(&str, &str)] = &[
            ("A", "5s"),
            ("B", "250"),
            ("C", "0"),
            ("D", "soon"),
            ("F", "2m"),
            ("G", "250ms"),
        ];
        assert_eq!(duration_ms_var(vars, "A", 1, 0..=10_000).unwrap(), 5000);
        assert_eq!(duration_ms_var(vars, "B", 1, 0..=10_000).unwrap(), 250);
        assert!(duration_ms_var(vars, "C", 1, 1..=10_000).is_err());
        assert!(duration_ms_var(vars, "D", 1, 0..=10_000).is_err());
        assert_eq!(duration_ms_var(vars, "E", 7, 0..=10_000).unwrap(), 7);
        assert_eq!(duration_ms_var(vars, "F", 1, 0..=600_000).unwrap(), 120_000);
        assert_eq!(duration_ms_var(vars, "G", 1, 0..=10_000).unwrap(), 250);
        // Overflowing values are configuration errors naming the variable, never a panic.
        let huge: &[(&str, &str)] = &[
            ("H", "18446744073709551615s"),
            ("I", "99999999999999999999"),
        ];
        assert_eq!(
            duration_ms_var(huge, "H", 1, 0..=10_000)
                .unwrap_err()
                .variable,
            "H"
        );
        assert_eq!(
            duration_ms_var(huge, "I", 1, 0..=10_000)
                .unwrap_err()
                .variable,
            "I"
        );
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

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

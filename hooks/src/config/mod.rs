//! The hooks' configuration: the checks to run (`HOOK_CHECKS` inline or `HOOK_CHECKS_FILE`, JSON
//! or YAML) and the environment settings, validated once at start-up.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use shiftguard_common::env::{self, EnvError, Vars};

// Each kind's settings and their validation live beside its execution (`crate::checks::<kind>`);
// re-exported here, where the check set is bound from the environment.
pub use crate::checks::artifact::{ArtifactCheck, SameAs};
use crate::checks::compare::{
    default_compare_concurrency, default_compare_requests, default_compare_window,
    default_statistic, validate_compare,
};
pub use crate::checks::compare::{CompareCheck, CompareSource};
use crate::checks::invoke::{validate_expect, validate_http};
pub use crate::checks::invoke::{BurstCheck, BurstTarget, Expect, HttpCheck, InvokeCheck, Signing};
pub use crate::checks::logs::{LogsCheck, DEFAULT_INVOCATION_PATTERN, DEFAULT_LOG_PATTERN};
pub use crate::checks::metrics::MetricsCheck;

pub const CHECKS_VAR: &str = "HOOK_CHECKS";
pub const CHECKS_FILE_VAR: &str = "HOOK_CHECKS_FILE";
pub const MARGIN_VAR: &str = "HOOK_DEADLINE_MARGIN";
pub const STABLE_ALIAS_VAR: &str = "STABLE_ALIAS";
pub const PRUNE_KEEP_VAR: &str = "PRUNE_KEEP_VERSIONS";
pub const ALLOW_SKIP_VAR: &str = "HOOK_ALLOW_SKIP";

#[derive(Debug, Clone, PartialEq)]
pub struct HookConfig {
    pub checks: CheckSet,
    /// Report `Failed` this long before the Lambda deadline if the checks have not finished.
    pub deadline_margin: Duration,
    /// Fallback discovery for the SAM `!Ref Fn.Version` style.
    pub env_target: Option<EnvTarget>,
    /// Post-traffic, after success: point this alias at the new version.
    pub stable_alias: Option<String>,
    /// Post-traffic, after success: delete versions older than the newest N (never one an alias
    /// points at).
    pub prune_keep: Option<usize>,
    /// The values of every secret the checks read, kept out of logs and summaries.
    pub redactor: crate::redact::Redactor,
    /// Honour `[shiftguard skip]` in the deployment's own description (the emergency bypass). Off
    /// unless `HOOK_ALLOW_SKIP=true`.
    pub allow_skip: bool,
}

/// The checks file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckSet {
    /// How many checks run at once.
    #[serde(default = "default_concurrency")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub concurrency: usize,
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub checks: Vec<Check>,
}

impl CheckSet {
    /// The checks that run for a deployment of `function`. None applying is an error, never an
    /// empty pass: a hook that checks nothing for a function would let every version through.
    pub fn for_function(&self, function: &str) -> Result<CheckSet, String> {
        let checks: Vec<Check> = self
            .checks
            .iter()
            .filter(|c| c.applies_to(function))
            .cloned()
            .collect();
        if checks.is_empty() {
            let mut named: Vec<&str> = self
                .checks
                .iter()
                .flat_map(|c| c.functions.iter().flatten())
                .map(|f| shiftguard_common::codedeploy::function_name(f))
                .collect();
            named.sort_unstable();
            named.dedup();
            return Err(format!(
                "no check applies to function {}: every configured check names other functions in `functions` ({}); add a check for it (or one without `functions`)",
                shiftguard_common::codedeploy::function_name(function),
                named.join(", ")
            ));
        }
        Ok(CheckSet {
            concurrency: self.concurrency,
            checks,
        })
    }
}

fn default_concurrency() -> usize {
    4
}

// No `deny_unknown_fields` here: with `flatten` serde hands the fields this struct does not know
// to the kind's struct, which denies unknown ones, so typos are still caught. The schema says the
// same with `unevaluatedProperties` (a flattened kind's own `additionalProperties` cannot).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(extend("unevaluatedProperties" = false)))]
#[serde(rename_all = "camelCase")]
pub struct Check {
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"\S")))]
    pub name: String,
    #[serde(flatten)]
    pub kind: CheckKind,
    /// Per attempt, e.g. `10s` or `1500ms`.
    #[serde(default = "default_timeout", with = "duration_text")]
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "crate::config::limits::timeout_schema")
    )]
    pub timeout: Duration,
    /// Extra attempts after a failure.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(max = 100)))]
    pub retries: u32,
    /// First pause between attempts; doubles each time.
    #[serde(default = "default_backoff", with = "duration_text")]
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "crate::config::limits::backoff_schema")
    )]
    pub backoff: Duration,
    /// Advisory checks (`false`) are reported but never fail the deployment.
    #[serde(default = "yes")]
    pub required: bool,
    /// The functions (names or ARNs) whose deployments this check runs for; every function when
    /// absent. One hook serves every function a team protects, so each function's own checks
    /// carry its name (the CDK construct's `protect` writes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "schema",
        schemars(length(min = 1), inner(regex(pattern = r"\S")))
    )]
    pub functions: Option<Vec<String>>,
}

impl Check {
    /// Whether this check runs for a deployment of `function` (a name or an ARN).
    pub fn applies_to(&self, function: &str) -> bool {
        let name = shiftguard_common::codedeploy::function_name(function);
        self.functions.as_ref().is_none_or(|fs| {
            fs.iter()
                .any(|f| shiftguard_common::codedeploy::function_name(f) == name)
        })
    }
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_backoff() -> Duration {
    Duration::from_millis(500)
}
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CheckKind {
    Invoke(InvokeCheck),
    Http(HttpCheck),
    Burst(BurstCheck),
    Metrics(MetricsCheck),
    Compare(CompareCheck),
    Logs(LogsCheck),
    Artifact(ArtifactCheck),
}

impl CheckKind {
    /// The kind as written in a check set (`"kind": "invoke"`).
    pub fn name(&self) -> &'static str {
        match self {
            CheckKind::Invoke(_) => "invoke",
            CheckKind::Http(_) => "http",
            CheckKind::Burst(_) => "burst",
            CheckKind::Metrics(_) => "metrics",
            CheckKind::Compare(_) => "compare",
            CheckKind::Logs(_) => "logs",
            CheckKind::Artifact(_) => "artifact",
        }
    }
}

/// The one duration grammar (`shiftguard_common::duration`): `250ms`, `10s`, `5m`, `1h`, or a
/// whole number of milliseconds.
use shiftguard_common::duration::serde_text as duration_text;

impl HookConfig {
    /// The process environment and the settings file it may name ([`env::Environment`]).
    pub fn from_env() -> Result<Self, EnvError> {
        Self::from_vars(&env::Environment::load()?)
    }

    pub fn from_vars(vars: &(impl Vars + ?Sized)) -> Result<Self, EnvError> {
        let inline = env::non_empty(vars, CHECKS_VAR);
        let file = env::non_empty(vars, CHECKS_FILE_VAR);
        let (var, text) = match (inline, file) {
            (Some(_), Some(_)) => {
                return Err(EnvError::new(CHECKS_VAR, format!("set either {CHECKS_VAR} or {CHECKS_FILE_VAR}, not both")))
            }
            (Some(text), None) => (CHECKS_VAR, text),
            (None, Some(path)) => {
                let resolved = resolve_path(vars, &path);
                // The size first: never read a huge file whole only to reject it.
                if let Ok(meta) = std::fs::metadata(&resolved) {
                    if meta.len() > MAX_CHECKS_BYTES as u64 {
                        return Err(EnvError::new(
                            CHECKS_FILE_VAR,
                            format!("{} is {} bytes; at most {MAX_CHECKS_BYTES} bytes are read", resolved.display(), meta.len()),
                        ));
                    }
                }
                let text = std::fs::read_to_string(&resolved).map_err(|e| {
                    EnvError::new(CHECKS_FILE_VAR, format!("cannot read {}: {e}", resolved.display()))
                })?;
                (CHECKS_FILE_VAR, text)
            }
            (None, None) => {
                return Err(EnvError::new(
                    CHECKS_VAR,
                    format!("no checks configured: set {CHECKS_VAR} (JSON or YAML) or {CHECKS_FILE_VAR} (a file shipped with the function); a hook without checks would pass every version"),
                ))
            }
        };
        let mut checks = parse_checks(&text).map_err(|p| EnvError::new(var, p))?;
        let redactor = bind_environment(&mut checks, vars, var)?;
        let env_target = match env::non_empty(vars, "TARGET_FUNCTION") {
            None => None,
            Some(function) => {
                let version = env::non_empty(vars, "TARGET_VERSION").ok_or_else(|| {
                    EnvError::new("TARGET_VERSION", "is required with TARGET_FUNCTION: the version being deployed (SAM: !Ref MyFunction.Version)")
                })?;
                let version = version_of(&version).ok_or_else(|| {
                    EnvError::new(
                        "TARGET_VERSION",
                        format!("expected a version number or a version ARN, got {version:?}"),
                    )
                })?;
                Some(EnvTarget {
                    function,
                    alias: env::non_empty(vars, "TARGET_ALIAS"),
                    version,
                    current_version: env::non_empty(vars, "CURRENT_VERSION"),
                })
            }
        };
        let prune_keep = match env::non_empty(vars, PRUNE_KEEP_VAR) {
            None => None,
            Some(raw) => match raw.trim().parse::<usize>() {
                Ok(n) if n >= 2 => Some(n),
                _ => {
                    return Err(EnvError::new(
                        PRUNE_KEEP_VAR,
                        format!("expected a whole number of versions to keep, at least 2 (the new one and the one to roll back to), got {raw:?}"),
                    ))
                }
            },
        };
        Ok(HookConfig {
            checks,
            deadline_margin: std::time::Duration::from_millis(env::duration_ms_var(
                vars,
                MARGIN_VAR,
                5_000,
                500..=60_000,
            )?),
            env_target,
            stable_alias: env::non_empty(vars, STABLE_ALIAS_VAR),
            prune_keep,
            redactor,
            allow_skip: env::bool_var(vars, ALLOW_SKIP_VAR, false)?,
        })
    }
}

/// Reads what a check set takes from the environment — artifact `fromEnv` values and the secrets
/// of `secretHeaders`/`signing` — and returns the redactor for those secrets. `var` names where the
/// checks came from, for the error. (The hooks call it at start-up; `shift` for a plan's checks.)
pub fn bind_environment(
    checks: &mut CheckSet,
    vars: &(impl Vars + ?Sized),
    var: &str,
) -> Result<crate::redact::Redactor, EnvError> {
    for check in checks.checks.iter_mut() {
        let CheckKind::Artifact(a) = &mut check.kind else {
            continue;
        };
        let Some(name) = a.from_env.clone() else {
            continue;
        };
        let value = env::non_empty(vars, &name).ok_or_else(|| {
            EnvError::new(
                &name,
                format!("is not set, and artifact check {:?} in {var} takes the expected artifact from it", check.name),
            )
        })?;
        crate::artifact::Expected::parse(&value).map_err(|problem| {
            EnvError::new(
                &name,
                format!("(artifact check {:?}) {problem}", check.name),
            )
        })?;
        a.from_env_value = Some(value);
    }
    let mut secrets = Vec::new();
    for (check, secret) in referenced_secrets(checks) {
        match env::non_empty(vars, &secret) {
            Some(value) => secrets.push((secret, value)),
            None => {
                return Err(EnvError::new(
                    &secret,
                    format!("is not set, and check {check:?} in {var} takes a secret from it"),
                ))
            }
        }
    }
    Ok(crate::redact::Redactor::new(secrets))
}

impl HookConfig {
    /// Settings a check has that this phase does not use (a checks file shared by both hooks is
    /// fine, but a reader should know which half applies): one warning each, for the log at
    /// start-up.
    pub fn unused_in(&self, phase: crate::Phase) -> Vec<String> {
        let mut out = Vec::new();
        for check in &self.checks.checks {
            let CheckKind::Compare(c) = &check.kind else {
                continue;
            };
            let ignored: Vec<&str> = match phase {
                crate::Phase::PreTraffic => [
                    ("window", c.window != default_compare_window()),
                    ("statistic", c.statistic != default_statistic()),
                ]
                .iter()
                .filter(|(_, set)| *set)
                .map(|(f, _)| *f)
                .collect(),
                crate::Phase::PostTraffic => [
                    ("requests", c.requests != default_compare_requests()),
                    (
                        "concurrency",
                        c.concurrency != default_compare_concurrency(),
                    ),
                    ("payload", !c.payload.is_null()),
                    ("expect", c.expect != Expect::default()),
                ]
                .iter()
                .filter(|(_, set)| *set)
                .map(|(f, _)| *f)
                .collect(),
            };
            if !ignored.is_empty() {
                out.push(format!(
                    "compare check {:?}: {} not used by this hook ({}: {})",
                    check.name,
                    ignored.join(", "),
                    match phase {
                        crate::Phase::PreTraffic => "pre-traffic sends an interleaved load",
                        crate::Phase::PostTraffic => "post-traffic reads CloudWatch periods",
                    },
                    "the other hook uses them"
                ));
            }
            if phase == crate::Phase::PreTraffic && (c.requests as u64) < c.min_samples {
                out.push(format!(
                    "compare check {:?}: requests {} is below minSamples {}: its verdict can only be inconclusive",
                    check.name, c.requests, c.min_samples
                ));
            } else if phase == crate::Phase::PreTraffic {
                let needed = c.thresholds().min_requests_to_pass();
                if (c.requests as u64) < needed {
                    out.push(format!(
                        "compare check {:?}: requests {} can never pass with these limits (at least {} a side can: the errors' pass margin and the tail need them); its verdict is at best inconclusive ({})",
                        check.name,
                        c.requests,
                        needed,
                        match c.inconclusive {
                            Inconclusive::Fail => "which fails the deployment",
                            Inconclusive::Pass => "which passes, as configured",
                        }
                    ));
                }
            }
        }
        out
    }
}

/// (check name, environment variable) for every secret the checks read from the environment.
/// Every environment variable a check set reads, as (check name, variable): the secrets of
/// `secretHeaders`/`signing` and artifact `fromEnv`.
pub fn environment_read_by(set: &CheckSet) -> Vec<(String, String)> {
    let mut out = referenced_secrets(set);
    for check in &set.checks {
        if let CheckKind::Artifact(ArtifactCheck {
            from_env: Some(var),
            ..
        }) = &check.kind
        {
            out.push((check.name.clone(), var.clone()));
        }
    }
    out
}

fn referenced_secrets(set: &CheckSet) -> Vec<(String, String)> {
    sent_secrets(set)
        .into_iter()
        .map(|(check, var, _)| (check, var))
        .collect()
}

/// Every (check, variable, URL) where a check sends a variable's value over HTTP: secret headers
/// and signing keys of http checks and http bursts.
pub fn sent_secrets(set: &CheckSet) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for check in &set.checks {
        let http = match &check.kind {
            CheckKind::Http(h) => Some(h),
            CheckKind::Burst(BurstCheck {
                target: BurstTarget::Http(h),
                ..
            }) => Some(h),
            _ => None,
        };
        if let Some(h) = http {
            let mut vars: Vec<&String> = h.secret_headers.values().collect();
            if let Some(s) = &h.signing {
                vars.push(&s.api_key_env);
                vars.push(&s.secret_env);
            }
            out.extend(
                vars.into_iter()
                    .map(|v| (check.name.clone(), v.clone(), h.url.clone())),
            );
        }
    }
    out
}

/// A version number, or the version in a qualified function ARN (what `!Ref Fn.Version` gives).
fn version_of(raw: &str) -> Option<String> {
    let v = raw.rsplit(':').next()?;
    (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())).then(|| v.to_string())
}

fn resolve_path(vars: &(impl Vars + ?Sized), path: &str) -> std::path::PathBuf {
    let p = std::path::Path::new(path);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    // Files shipped in the deployment package live under LAMBDA_TASK_ROOT.
    match env::non_empty(vars, "LAMBDA_TASK_ROOT") {
        Some(root) if std::path::Path::new(&root).join(p).exists() => {
            std::path::Path::new(&root).join(p)
        }
        _ => p.to_path_buf(),
    }
}

pub(crate) mod limits;
pub use crate::discovery::EnvTarget;
pub use limits::Inconclusive;
mod parse;
pub use parse::{parse_checks, parse_checks_json, MAX_CHECKS_BYTES, MAX_CHECKS_DEPTH};

#[cfg(test)]
mod tests;

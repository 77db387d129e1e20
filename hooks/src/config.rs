//! The hooks' configuration: the checks to run (`HOOK_CHECKS` inline or `HOOK_CHECKS_FILE`, JSON
//! or YAML) and the environment settings, validated once at start-up.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use shiftguard_common::env::{self, EnvError, Vars};

// Each kind's settings and their validation live beside its execution (`crate::checks::<kind>`);
// re-exported here, where the check set is bound from the environment.
use crate::checks::{
    default_compare_concurrency, default_compare_requests, default_compare_window,
    default_statistic, validate_compare, validate_expect, validate_http,
};
pub use crate::checks::{
    ArtifactCheck, BurstCheck, BurstTarget, CompareCheck, CompareSource, Expect, HttpCheck,
    InvokeCheck, LogsCheck, MetricsCheck, SameAs, Signing, DEFAULT_INVOCATION_PATTERN,
    DEFAULT_LOG_PATTERN,
};

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

#[derive(Debug, Clone, PartialEq)]
pub struct EnvTarget {
    pub function: String,
    pub alias: Option<String>,
    pub version: String,
    pub current_version: Option<String>,
}

/// The checks file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckSet {
    /// How many checks run at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
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
    pub name: String,
    #[serde(flatten)]
    pub kind: CheckKind,
    /// Per attempt, e.g. `10s` or `1500ms`.
    #[serde(default = "default_timeout", with = "duration_text")]
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "shiftguard_common::duration::json_schema")
    )]
    pub timeout: Duration,
    /// Extra attempts after a failure.
    #[serde(default)]
    pub retries: u32,
    /// First pause between attempts; doubles each time.
    #[serde(default = "default_backoff", with = "duration_text")]
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "shiftguard_common::duration::json_schema")
    )]
    pub backoff: Duration,
    /// Advisory checks (`false`) are reported but never fail the deployment.
    #[serde(default = "yes")]
    pub required: bool,
    /// The functions (names or ARNs) whose deployments this check runs for; every function when
    /// absent. One hook serves every function a team protects, so each function's own checks
    /// carry its name (the CDK construct's `protect` writes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

pub(crate) fn default_window() -> Duration {
    Duration::from_secs(15 * 60)
}
pub(crate) fn default_multiple() -> f64 {
    2.0
}
pub(crate) fn default_min_samples() -> u64 {
    20
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Inconclusive {
    Pass,
    #[default]
    Fail,
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

/// The largest checks file read: far above any real check set, far below what would slow start-up.
pub const MAX_CHECKS_BYTES: usize = 1024 * 1024;
/// The deepest nesting of `[`/`{` accepted (a check set needs about 6; brackets inside strings
/// count too, so the limit is generous).
pub const MAX_CHECKS_DEPTH: usize = 256;
/// Bounds on durations: a Lambda function runs at most 15 minutes.
const MAX_CHECK_DURATION: Duration = Duration::from_secs(15 * 60);
const MAX_RETRIES: u32 = 100;
const MAX_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Rejects what the YAML parser would take long to reject: it spends time quadratic in the
/// nesting depth (50,000 levels took 32 s, and the hook would never report). Every `[`/`{` counts,
/// inside strings and comments too: telling strings apart would need a YAML parser, and a stray
/// quote (`# don't`) would hide real nesting. Block-style nesting that deep cannot fit in the size
/// limit.
fn check_size_and_depth(text: &str) -> Result<(), String> {
    if text.len() > MAX_CHECKS_BYTES {
        return Err(format!(
            "is {} bytes; at most {MAX_CHECKS_BYTES} bytes are read",
            text.len()
        ));
    }
    let (mut depth, mut deepest) = (0usize, 0usize);
    for b in text.bytes() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > MAX_CHECKS_DEPTH {
                    return Err(format!(
                        "nests deeper than {MAX_CHECKS_DEPTH} levels of [ and {{: not a check set"
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Parses JSON or YAML and validates; errors name the check and field.
pub fn parse_checks(text: &str) -> Result<CheckSet, String> {
    check_size_and_depth(text)?;
    let value: serde_json::Value = serde_yaml_ng::from_str(text)
        .map_err(|e| format!("is neither valid JSON nor YAML: {e}"))?;
    let set: CheckSet = serde_path_to_error::deserialize(&value).map_err(|e| {
        let path = e.path().to_string();
        let name = check_name_at(&value, &path);
        format!("{path}{name}: {}", e.into_inner())
    })?;
    if set.checks.is_empty() {
        return Err("checks: is empty: configure at least one check".into());
    }
    if set.concurrency == 0 {
        return Err("concurrency: must be at least 1".into());
    }
    for (i, check) in set.checks.iter().enumerate() {
        let at = format!("checks[{i}] ({:?})", check.name);
        if check.name.trim().is_empty() {
            return Err(format!("checks[{i}].name: is blank"));
        }
        if let Some(functions) = &check.functions {
            if functions.is_empty() {
                return Err(format!("{at}.functions: is empty: name at least one function, or leave the field out to run the check for every function"));
            }
            if let Some(j) = functions.iter().position(|f| f.trim().is_empty()) {
                return Err(format!(
                    "{at}.functions[{j}]: is blank: expected a function name or ARN"
                ));
            }
        }
        if set.checks[..i].iter().any(|o| {
            o.name == check.name && !disjoint(o.functions.as_deref(), check.functions.as_deref())
        }) {
            return Err(format!("{at}.name: is used by another check for the same function (a name may repeat only across checks whose `functions` lists do not overlap)"));
        }
        if check.timeout.is_zero() || check.timeout > MAX_CHECK_DURATION {
            return Err(format!(
                "{at}.timeout: expected more than 0 and at most 15m (a Lambda function's longest run), got {} ms",
                check.timeout.as_millis()
            ));
        }
        if check.backoff > MAX_CHECK_DURATION {
            return Err(format!(
                "{at}.backoff: expected at most 15m, got {} ms",
                check.backoff.as_millis()
            ));
        }
        if check.retries > MAX_RETRIES {
            return Err(format!(
                "{at}.retries: expected at most {MAX_RETRIES}, got {}",
                check.retries
            ));
        }
        if check.retries > 0 && matches!(check.kind, CheckKind::Compare(_) | CheckKind::Logs(_)) {
            return Err(format!(
                "{at}.retries: a {} check is not retried: its failure is a verdict on the data, and retrying until one attempt passes would turn a real difference into a pass",
                crate::runner::kind_name(&check.kind)
            ));
        }
        validate_kind(&check.kind).map_err(|p| format!("{at}.{p}"))?;
    }
    Ok(set)
}

/// Whether two checks' `functions` lists name no function in common (an absent list means every
/// function, so it overlaps everything).
fn disjoint(a: Option<&[String]>, b: Option<&[String]>) -> bool {
    let (Some(a), Some(b)) = (a, b) else {
        return false;
    };
    let name = shiftguard_common::codedeploy::function_name;
    !a.iter().any(|x| b.iter().any(|y| name(x) == name(y)))
}

fn check_name_at(value: &serde_json::Value, path: &str) -> String {
    // "checks[2].expect.status" → the name of checks[2], for a message a person can act on.
    let Some(rest) = path.strip_prefix("checks[") else {
        return String::new();
    };
    let Some(index) = rest.split(']').next().and_then(|i| i.parse::<usize>().ok()) else {
        return String::new();
    };
    value["checks"][index]["name"]
        .as_str()
        .map(|n| format!(" (check {n:?})"))
        .unwrap_or_default()
}

fn validate_kind(kind: &CheckKind) -> Result<(), String> {
    match kind {
        CheckKind::Invoke(c) => validate_expect(&c.expect).map_err(|p| format!("expect.{p}")),
        CheckKind::Http(c) => validate_http(c),
        CheckKind::Burst(b) => {
            if b.requests == 0 || b.requests > 10_000 {
                return Err(format!("requests: expected 1 to 10000, got {}", b.requests));
            }
            if b.concurrency == 0 || b.concurrency > 256 {
                return Err(format!(
                    "concurrency: expected 1 to 256, got {}",
                    b.concurrency
                ));
            }
            if !(0.0..=1.0).contains(&b.max_failure_rate) {
                return Err("maxFailureRate: expected 0.0 to 1.0".into());
            }
            match &b.target {
                BurstTarget::Invoke(c) => {
                    validate_expect(&c.expect).map_err(|p| format!("target.invoke.expect.{p}"))
                }
                BurstTarget::Http(c) => validate_http(c).map_err(|p| format!("target.http.{p}")),
            }
        }
        CheckKind::Compare(c) => validate_compare(c),
        CheckKind::Logs(l) => {
            for (field, pattern) in [
                ("pattern", &l.pattern),
                ("invocationPattern", &l.invocation_pattern),
            ] {
                if pattern.len() > 1024 {
                    return Err(format!(
                        "{field}: expected at most 1024 characters (CloudWatch Logs' limit)"
                    ));
                }
            }
            if l.pattern.trim().is_empty() {
                return Err(
                    "pattern: is empty, which would count every line as an error line".into(),
                );
            }
            if l.invocation_pattern.trim().is_empty() {
                return Err(
                    "invocationPattern: is empty; it must match exactly one line per invocation"
                        .into(),
                );
            }
            if let Some(group) = &l.log_group {
                if group.is_empty() || group.len() > 512 {
                    return Err(format!(
                        "logGroup: expected a log group name of 1 to 512 characters, got {group:?}"
                    ));
                }
            }
            validate_window(l.window)?;
            if !(l.max_rate_multiple >= 1.0 && l.max_rate_multiple.is_finite()) {
                return Err(format!(
                    "maxRateMultiple: expected at least 1.0, got {}",
                    l.max_rate_multiple
                ));
            }
            if l.min_samples == 0 {
                return Err(
                    "minSamples: expected at least 1 (no invocations is no data, never a pass)"
                        .into(),
                );
            }
            validate_confidence(l.confidence)
        }
        CheckKind::Artifact(a) => {
            let given = [
                a.code_sha256.is_some(),
                a.image_digest.is_some(),
                a.from_env.is_some(),
                a.same_as.is_some(),
            ];
            if given.iter().filter(|g| **g).count() != 1 {
                return Err(
                    "expected exactly one of codeSha256, imageDigest, fromEnv or sameAs".into(),
                );
            }
            if let Some(v) = &a.code_sha256 {
                crate::artifact::Expected::code(v).map_err(|p| format!("codeSha256: {p}"))?;
            }
            if let Some(v) = &a.image_digest {
                crate::artifact::Expected::image(v).map_err(|p| format!("imageDigest: {p}"))?;
            }
            if let Some(var) = &a.from_env {
                if var.is_empty()
                    || !var
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
                {
                    return Err(format!(
                        "fromEnv: expected an environment variable name, got {var:?}"
                    ));
                }
            }
            if let Some(s) = &a.same_as {
                if s.function.trim().is_empty() || s.qualifier.trim().is_empty() {
                    return Err("sameAs: expected {function, qualifier}, both non-empty".into());
                }
            }
            Ok(())
        }
        CheckKind::Metrics(m) => {
            if let Some(r) = m.max_error_rate {
                if !(0.0..=1.0).contains(&r) {
                    return Err(format!("maxErrorRate: expected 0.0 to 1.0, got {r}"));
                }
            }
            if m.min_samples == 0 {
                return Err(
                    "minSamples: expected at least 1 (no samples is no data, never a pass)".into(),
                );
            }
            if m.max_error_rate_multiple < 1.0 {
                return Err("maxErrorRateMultiple: expected at least 1.0".into());
            }
            validate_window(m.window)
        }
    }
}

pub(crate) fn validate_window(window: Duration) -> Result<(), String> {
    if window < Duration::from_secs(60) || window > MAX_WINDOW {
        return Err(format!("window: expected 1m (CloudWatch's Lambda metrics have 1-minute periods) to 24h, got {}s", window.as_secs()));
    }
    Ok(())
}

pub(crate) fn validate_confidence(confidence: f64) -> Result<(), String> {
    if !(0.5..1.0).contains(&confidence) {
        return Err(format!(
            "confidence: expected at least 0.5 and below 1.0, got {confidence}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_json_both_parse() {
        let yaml = "checks:\n  - name: smoke\n    kind: invoke\n    payload: {ping: true}\n    expect: {status: 200}\n    timeout: 2s\n";
        let set = parse_checks(yaml).unwrap();
        assert_eq!(set.checks[0].timeout, Duration::from_secs(2));
        assert!(set.checks[0].required);
        let json = r#"{"checks":[{"name":"smoke","kind":"invoke"}]}"#;
        assert_eq!(parse_checks(json).unwrap().checks[0].name, "smoke");
    }

    #[test]
    fn errors_name_the_check_and_field() {
        let err = parse_checks(r#"{"checks":[{"name":"smoke","kind":"invoke","timout":"2s"}]}"#)
            .unwrap_err();
        assert!(err.contains("smoke") && err.contains("timout"), "{err}");
        let err = parse_checks(r#"{"checks":[{"name":"health","kind":"http","url":"ftp://x"}]}"#)
            .unwrap_err();
        assert!(err.contains("\"health\"") && err.contains("url"), "{err}");
        let err = parse_checks(r#"{"checks":[{"name":"health","kind":"http","url":"https://x","expect":{"stauts":200}}]}"#).unwrap_err();
        assert!(err.contains("health") && err.contains("stauts"), "{err}");
        let err = parse_checks(r#"{"checks":[{"name":"h","kind":"http","url":"https://x","headers":{"Authorization":"Bearer abc"}}]}"#).unwrap_err();
        assert!(err.contains("secretHeaders"), "{err}");
        let err = parse_checks(
            r#"{"checks":[{"name":"a","kind":"invoke"},{"name":"a","kind":"invoke"}]}"#,
        )
        .unwrap_err();
        assert!(err.contains("used by another check"), "{err}");
        let err = parse_checks(r#"{"checks":[{"name":"a","kind":"teleport"}]}"#).unwrap_err();
        assert!(err.contains("teleport"), "{err}");
    }

    #[test]
    fn checks_run_only_for_the_functions_they_name() {
        let set = parse_checks(
            r#"{"checks":[
                {"name":"smoke","kind":"invoke","functions":["cart"]},
                {"name":"smoke","kind":"invoke","functions":["arn:aws:lambda:eu-west-1:123456789012:function:pricing:live"]},
                {"name":"shared","kind":"invoke"},
                {"name":"cart-only","kind":"invoke","functions":["cart","basket"]}
            ]}"#,
        )
        .unwrap();
        let names = |f: &str| -> Vec<(String, Option<Vec<String>>)> {
            set.for_function(f)
                .unwrap()
                .checks
                .into_iter()
                .map(|c| (c.name, c.functions))
                .collect()
        };
        // Table: the deployed function (name or ARN) → the checks that run.
        let cart = names("cart");
        assert_eq!(cart.len(), 3, "{cart:?}");
        assert_eq!(cart[0].1.as_deref(), Some(&["cart".to_string()][..]));
        assert_eq!(
            names("arn:aws:lambda:eu-west-1:123456789012:function:cart").len(),
            3
        );
        let pricing = names("pricing");
        assert_eq!(
            pricing.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
            ["smoke", "shared"]
        );
        assert_eq!(names("basket").len(), 2);
        assert_eq!(
            names("other").len(),
            1,
            "only the check without `functions`"
        );

        let only_named = parse_checks(
            r#"{"concurrency":2,"checks":[{"name":"smoke","kind":"invoke","functions":["cart","pricing"]}]}"#,
        )
        .unwrap();
        let err = only_named.for_function("orders").unwrap_err();
        assert!(
            err.contains("no check applies to function orders") && err.contains("cart, pricing"),
            "{err}"
        );
        assert_eq!(only_named.for_function("pricing").unwrap().concurrency, 2);
    }

    #[test]
    fn a_check_name_repeats_only_across_disjoint_functions() {
        for (checks, ok) in [
            (
                r#"{"name":"a","kind":"invoke","functions":["x"]},{"name":"a","kind":"invoke","functions":["y"]}"#,
                true,
            ),
            (
                r#"{"name":"a","kind":"invoke","functions":["x"]},{"name":"a","kind":"invoke","functions":["y","x"]}"#,
                false,
            ),
            (
                r#"{"name":"a","kind":"invoke","functions":["x"]},{"name":"a","kind":"invoke","functions":["arn:aws:lambda:us-east-1:123456789012:function:x"]}"#,
                false,
            ),
            (
                r#"{"name":"a","kind":"invoke"},{"name":"a","kind":"invoke","functions":["y"]}"#,
                false,
            ),
            (
                r#"{"name":"a","kind":"invoke","functions":["y"]},{"name":"a","kind":"invoke"}"#,
                false,
            ),
        ] {
            let result = parse_checks(&format!(r#"{{"checks":[{checks}]}}"#));
            assert_eq!(result.is_ok(), ok, "{checks}: {result:?}");
            if let Err(e) = result {
                assert!(e.contains("checks[1]") && e.contains("name"), "{e}");
            }
        }
        let err = parse_checks(r#"{"checks":[{"name":"a","kind":"invoke","functions":[]}]}"#)
            .unwrap_err();
        assert!(
            err.contains("checks[0] (\"a\").functions: is empty"),
            "{err}"
        );
        let err =
            parse_checks(r#"{"checks":[{"name":"a","kind":"invoke","functions":["x"," "]}]}"#)
                .unwrap_err();
        assert!(err.contains("functions[1]: is blank"), "{err}");
    }

    #[test]
    fn durations_that_overflow_or_exceed_a_lambda_run_are_errors_not_panics() {
        for raw in [
            "\"18446744073709551615m\"",
            "\"307445734561825861m\"",
            "\"16m\"",
            "\"99999999999999s\"",
            "18446744073709551615",
        ] {
            let text = format!(r#"{{"checks":[{{"name":"a","kind":"invoke","timeout":{raw}}}]}}"#);
            let err = parse_checks(&text).unwrap_err();
            assert!(err.contains("timeout"), "{raw}: {err}");
        }
        let err =
            parse_checks(r#"{"checks":[{"name":"m","kind":"metrics","window":"99999999999m"}]}"#)
                .unwrap_err();
        assert!(err.contains("window"), "{err}");
    }

    /// Issue 21 [10]: one duration grammar. The hooks used to refuse `1h` where shift took it.
    #[test]
    fn the_hooks_read_the_one_duration_grammar() {
        let parsed = parse_checks(
            r#"{"checks":[{"name":"m","kind":"metrics","window":"1h"},{"name":"i","kind":"invoke","timeout":"1500","backoff":"250ms"}]}"#,
        )
        .unwrap();
        let CheckKind::Metrics(m) = &parsed.checks[0].kind else {
            panic!()
        };
        assert_eq!(m.window, Duration::from_secs(3600));
        assert_eq!(parsed.checks[1].timeout, Duration::from_millis(1500));
        let err = parse_checks(r#"{"checks":[{"name":"i","kind":"invoke","timeout":"1.5s"}]}"#)
            .unwrap_err();
        assert!(
            err.contains("timeout") && err.contains(shiftguard_common::duration::GRAMMAR),
            "{err}"
        );
    }

    #[test]
    fn deep_or_huge_check_files_are_rejected_at_once() {
        let deep = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
        let started = std::time::Instant::now();
        let err = parse_checks(&deep).unwrap_err();
        assert!(err.contains("nests deeper"), "{err}");
        assert!(
            started.elapsed() < Duration::from_millis(200),
            "{:?}",
            started.elapsed()
        );
        // Block-style nesting as deep as the size limit allows.
        let deep_yaml: String = (0..1400).map(|i| format!("{}-\n", " ".repeat(i))).collect();
        let started = std::time::Instant::now();
        assert!(parse_checks(&deep_yaml).is_err());
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        let huge = format!("checks: []\n# {}", "x".repeat(MAX_CHECKS_BYTES));
        assert!(parse_checks(&huge).unwrap_err().contains("bytes"));
        // Brackets inside strings count (a stray quote must not hide nesting), generously.
        let ok = format!(
            r#"{{"checks":[{{"name":"{}","kind":"invoke"}}]}}"#,
            "[".repeat(100)
        );
        assert!(parse_checks(&ok).is_ok());
        let hidden = format!(
            "# don't\nchecks: {}{}",
            "[".repeat(50_000),
            "]".repeat(50_000)
        );
        assert!(parse_checks(&hidden).unwrap_err().contains("nests deeper"));
    }

    #[test]
    fn judge_kinds_parse_with_their_defaults_and_reject_nonsense() {
        let set = parse_checks(
            "checks:\n  - {name: c, kind: compare}\n  - {name: l, kind: logs}\n  - {name: a, kind: artifact, codeSha256: LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=}\n",
        )
        .unwrap();
        let CheckKind::Compare(c) = &set.checks[0].kind else {
            panic!()
        };
        assert_eq!(
            (
                c.requests,
                c.confidence,
                c.latency_tolerance,
                c.error_rate_tolerance,
                c.min_samples
            ),
            (1000, 0.98, 0.2, 0.0005, 20)
        );
        assert_eq!((c.statistic.as_str(), c.window.as_secs()), ("p50", 1800));
        assert_eq!(c.inconclusive, Inconclusive::Fail);
        let bad = [
            (
                r#"{"name":"c","kind":"compare","confidence":1.0}"#,
                "confidence",
            ),
            (
                r#"{"name":"c","kind":"compare","statistic":"p100"}"#,
                "statistic",
            ),
            (
                r#"{"name":"c","kind":"compare","statistic":"Median"}"#,
                "statistic",
            ),
            (
                r#"{"name":"c","kind":"compare","statistic":"p1e1"}"#,
                "statistic",
            ),
            (
                r#"{"name":"c","kind":"compare","statistic":"p+50"}"#,
                "statistic",
            ),
            (
                r#"{"name":"c","kind":"compare","retries":2}"#,
                "not retried",
            ),
            (r#"{"name":"l","kind":"logs","pattern":" "}"#, "pattern"),
            (r#"{"name":"c","kind":"compare","requests":0}"#, "requests"),
            (
                r#"{"name":"c","kind":"compare","minSamples":1}"#,
                "minSamples",
            ),
            (
                r#"{"name":"c","kind":"compare","latencyTolerance":-0.1}"#,
                "latencyTolerance",
            ),
            (
                r#"{"name":"c","kind":"compare","errorRateTolerance":1}"#,
                "errorRateTolerance",
            ),
            (
                r#"{"name":"l","kind":"logs","maxRateMultiple":0.5}"#,
                "maxRateMultiple",
            ),
            (r#"{"name":"l","kind":"logs","minSamples":0}"#, "minSamples"),
            (r#"{"name":"a","kind":"artifact"}"#, "exactly one"),
            (
                r#"{"name":"a","kind":"artifact","codeSha256":"abc","fromEnv":"X"}"#,
                "exactly one",
            ),
            (
                r#"{"name":"a","kind":"artifact","codeSha256":"abc"}"#,
                "codeSha256",
            ),
            (
                r#"{"name":"a","kind":"artifact","imageDigest":"sha256:xyz"}"#,
                "imageDigest",
            ),
            (
                r#"{"name":"a","kind":"artifact","sameAs":{"function":"f"}}"#,
                "qualifier",
            ),
        ];
        for (check, want) in bad {
            let err = parse_checks(&format!(r#"{{"checks":[{check}]}}"#)).unwrap_err();
            assert!(err.contains(want), "{check}: {err}");
        }
    }

    #[test]
    fn settings_the_phase_does_not_use_are_named() {
        let checks = r#"{"checks":[{"name":"c","kind":"compare","window":"45m","requests":10}]}"#;
        let cfg = HookConfig::from_vars(&[(CHECKS_VAR, checks)][..]).unwrap();
        let pre = cfg.unused_in(crate::Phase::PreTraffic);
        assert!(
            pre[0].contains("window") && !pre[0].contains("requests"),
            "{pre:?}"
        );
        assert!(pre[1].contains("below minSamples"), "{pre:?}");
        let post = cfg.unused_in(crate::Phase::PostTraffic);
        assert_eq!(post.len(), 1, "{post:?}");
        assert!(
            post[0].contains("requests") && !post[0].contains("window"),
            "{post:?}"
        );
    }

    #[test]
    fn an_artifact_from_the_environment_is_read_and_checked_at_start_up() {
        let checks = r#"{"checks":[{"name":"built","kind":"artifact","fromEnv":"BUILT_SHA"}]}"#;
        let err = HookConfig::from_vars(&[(CHECKS_VAR, checks)][..]).unwrap_err();
        assert_eq!(err.variable, "BUILT_SHA");
        let err = HookConfig::from_vars(&[(CHECKS_VAR, checks), ("BUILT_SHA", "not-a-hash")][..])
            .unwrap_err();
        assert_eq!(err.variable, "BUILT_SHA");
        let ok = HookConfig::from_vars(
            &[
                (CHECKS_VAR, checks),
                (
                    "BUILT_SHA",
                    "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
                ),
            ][..],
        )
        .unwrap();
        let CheckKind::Artifact(a) = &ok.checks.checks[0].kind else {
            panic!()
        };
        assert!(a.from_env_value.is_some());
        assert!(!ok.allow_skip, "the bypass is off unless turned on");
        let on = HookConfig::from_vars(
            &[
                (CHECKS_VAR, r#"{"checks":[{"name":"a","kind":"invoke"}]}"#),
                (ALLOW_SKIP_VAR, "true"),
            ][..],
        )
        .unwrap();
        assert!(on.allow_skip);
    }

    #[test]
    fn env_errors_name_the_variable() {
        let err = HookConfig::from_vars(&[][..]).unwrap_err();
        assert_eq!(err.variable, CHECKS_VAR);
        let checks = r#"{"checks":[{"name":"a","kind":"invoke"}]}"#;
        // Issue 9 [14]: a margin that overflows in milliseconds panicked at start-up (debug) or
        // wrapped (release); now it is an error naming the variable.
        let err = HookConfig::from_vars(
            &[(CHECKS_VAR, checks), (MARGIN_VAR, "18446744073709551615s")][..],
        )
        .unwrap_err();
        assert_eq!(err.variable, MARGIN_VAR);
        let err = HookConfig::from_vars(&[(CHECKS_VAR, checks), ("TARGET_FUNCTION", "f")][..])
            .unwrap_err();
        assert_eq!(err.variable, "TARGET_VERSION");
        let ok = HookConfig::from_vars(
            &[
                (CHECKS_VAR, checks),
                ("TARGET_FUNCTION", "f"),
                ("TARGET_VERSION", "arn:aws:lambda:us-east-1:1:function:f:7"),
            ][..],
        )
        .unwrap();
        assert_eq!(ok.env_target.unwrap().version, "7");
        let err =
            HookConfig::from_vars(&[(CHECKS_VAR, checks), (PRUNE_KEEP_VAR, "1")][..]).unwrap_err();
        assert_eq!(err.variable, PRUNE_KEEP_VAR);
    }
}

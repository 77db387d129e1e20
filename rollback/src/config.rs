//! Rollback's configuration, read once at start-up from the environment.
//!
//! `ROLLBACK_TARGETS` is the allow-list: rollback touches only what an alarm is mapped to here.

use serde::{Deserialize, Serialize};
use shiftguard_common::env::{self, EnvError, Vars};

pub const TARGETS_VAR: &str = "ROLLBACK_TARGETS";
pub const DRY_RUN_VAR: &str = "DRY_RUN";
pub const NOTIFY_VAR: &str = "NOTIFY_TOPIC_ARN";
pub const CODEDEPLOY_WAIT_VAR: &str = "CODEDEPLOY_ROLLBACK_WAIT";

/// Everything rollback needs to know, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub mappings: Vec<Mapping>,
    pub dry_run: bool,
    pub notify_topic_arn: Option<String>,
    /// How long to wait for CodeDeploy's own rollback to restore an alias after `StopDeployment`
    /// before rollback restores it itself.
    pub codedeploy_wait_ms: u64,
}

/// Alarms (names, ARNs or `*`-globs of either) and the targets they put back on production.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mapping {
    #[serde(deserialize_with = "one_or_many")]
    #[cfg_attr(feature = "schema", schemars(schema_with = "one_or_many_schema"))]
    pub alarms: Vec<String>,
    #[cfg_attr(feature = "schema", schemars(length(min = 1)))]
    pub targets: Vec<Target>,
}

/// Something rollback may put back on production.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Target {
    LambdaAlias(LambdaAliasTarget),
    LatticeListener(LatticeListenerTarget),
    ApigatewayCanary(ApiGatewayCanaryTarget),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LambdaAliasTarget {
    /// Function name or ARN (unqualified).
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"\S")))]
    pub function: String,
    #[cfg_attr(
        feature = "schema",
        schemars(regex(pattern = r"^(?![0-9]+$)[A-Za-z0-9_-]{1,128}$"))
    )]
    pub alias: String,
    /// The version to restore, when the team pins it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^[0-9]{1,10}$")))]
    pub stable_version: Option<String>,
    /// An alias that always points at the last good version (e.g. `blue`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "schema",
        schemars(regex(pattern = r"^(?![0-9]+$)[A-Za-z0-9_-]{1,128}$"))
    )]
    pub stable_alias: Option<String>,
    /// Narrows the search for a CodeDeploy deployment in flight to one deployment group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_deploy: Option<CodeDeployGroup>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CodeDeployGroup {
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"\S")))]
    pub application: String,
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"\S")))]
    pub deployment_group: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LatticeListenerTarget {
    /// Service id or ARN.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"\S")))]
    pub service: String,
    /// Listener id or ARN.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"\S")))]
    pub listener: String,
    /// Target group id or ARN that serves production.
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"\S")))]
    pub production_target_group: String,
}

/// An API Gateway REST API stage whose canary gets a share of the stage's traffic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiGatewayCanaryTarget {
    /// REST API id (`a1b2c3d4e5`) or ARN (`arn:aws:apigateway:REGION::/restapis/ID`, or the
    /// stage's ARN `…/restapis/ID/stages/STAGE`).
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"\S")))]
    pub rest_api: String,
    /// Stage name; may be left out when `restApi` is a stage ARN.
    #[serde(default)]
    pub stage: String,
}

impl ApiGatewayCanaryTarget {
    /// (REST API id, stage name), whichever form the configuration used.
    pub fn ids(&self) -> (String, String) {
        let (api, stage_from_arn) = parse_rest_api(&self.rest_api);
        let stage = if self.stage.is_empty() {
            stage_from_arn.unwrap_or_default()
        } else {
            self.stage.clone()
        };
        (api, stage)
    }
}

/// A REST API id, or the id (and stage) in an API Gateway ARN
/// (`arn:PARTITION:apigateway:REGION::/restapis/ID[/stages/STAGE]`). Anything else that starts
/// with `arn:` gives an empty id, which validation rejects naming `restApi`.
fn parse_rest_api(raw: &str) -> (String, Option<String>) {
    if !raw.starts_with("arn:") {
        return (raw.to_string(), None);
    }
    let parts: Vec<&str> = raw.splitn(6, ':').collect();
    let path = match parts.as_slice() {
        ["arn", _, "apigateway", _, "", path] => path.strip_prefix("/restapis/"),
        _ => None,
    };
    let Some(path) = path else {
        return (String::new(), None);
    };
    match path.split('/').collect::<Vec<_>>().as_slice() {
        [api] => (api.to_string(), None),
        [api, "stages", stage] if !stage.is_empty() => (api.to_string(), Some(stage.to_string())),
        _ => (String::new(), None),
    }
}

impl Target {
    /// Every name an operator may use for this target: [`Target::id`], and the same with ids in
    /// place of ARNs (`lambda-alias:checkout:live` for a function configured by ARN).
    pub fn names(&self) -> Vec<String> {
        let last = |s: &str| s.rsplit(['/', ':']).next().unwrap_or(s).to_string();
        let mut names = vec![self.id()];
        match self {
            Target::LambdaAlias(t) if t.function.starts_with("arn:") => {
                if let Some(name) = t.function.split(':').nth(6) {
                    names.push(format!("lambda-alias:{name}:{}", t.alias));
                }
            }
            Target::LatticeListener(t) => {
                names.push(format!(
                    "lattice-listener:{}/{}",
                    last(&t.service),
                    last(&t.listener)
                ));
            }
            _ => {}
        }
        names.dedup();
        names
    }

    /// A stable, human-readable name for logs and the summary.
    pub fn id(&self) -> String {
        match self {
            Target::LambdaAlias(t) => format!("lambda-alias:{}:{}", t.function, t.alias),
            Target::LatticeListener(t) => {
                format!("lattice-listener:{}/{}", t.service, t.listener)
            }
            Target::ApigatewayCanary(t) => {
                let (api, stage) = t.ids();
                format!("apigateway-canary:{api}/{stage}")
            }
        }
    }
}

/// One alarm or a list of them.
#[cfg(feature = "schema")]
fn one_or_many_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let _ = g;
    // Validation refuses an empty list and a blank name (from_vars, below).
    let name = serde_json::json!({"type": "string", "pattern": "\\S"});
    schemars::json_schema!({"anyOf": [name, {"type": "array", "minItems": 1, "items": name}]})
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

impl Config {
    /// The process environment and the settings file it may name ([`env::Environment`]).
    pub fn from_env() -> Result<Self, EnvError> {
        Self::from_vars(&env::Environment::load()?)
    }

    pub fn from_vars(vars: &(impl Vars + ?Sized)) -> Result<Self, EnvError> {
        let raw = env::non_empty(vars, TARGETS_VAR).ok_or_else(|| {
            EnvError::new(
                TARGETS_VAR,
                "is required: a JSON array mapping alarms to the targets they roll back, e.g. \
                 [{\"alarms\":[\"checkout-*\"],\"targets\":[{\"type\":\"lambda-alias\",\"function\":\"checkout\",\"alias\":\"live\"}]}]",
            )
        })?;
        let mappings = parse_mappings(&raw).map_err(|p| EnvError::new(TARGETS_VAR, p))?;
        let notify_topic_arn = env::non_empty(vars, NOTIFY_VAR);
        if let Some(arn) = &notify_topic_arn {
            if !is_sns_topic_arn(arn) {
                return Err(EnvError::new(
                    NOTIFY_VAR,
                    format!(
                        "expected an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME), got {arn:?}"
                    ),
                ));
            }
        }
        Ok(Config {
            mappings,
            dry_run: env::bool_var(vars, DRY_RUN_VAR, false)?,
            notify_topic_arn,
            codedeploy_wait_ms: env::duration_ms_var(
                vars,
                CODEDEPLOY_WAIT_VAR,
                10_000,
                0..=600_000,
            )?,
        })
    }

    /// The targets an alarm maps to, each once, in the order configured. Empty: not ours.
    pub fn targets_for(&self, alarm_name: &str, alarm_arn: Option<&str>) -> Vec<&Target> {
        let mut found: Vec<&Target> = Vec::new();
        for mapping in &self.mappings {
            let hit = mapping.alarms.iter().any(|pattern| {
                if pattern.starts_with("arn:") {
                    alarm_arn.is_some_and(|arn| glob_match(pattern, arn))
                } else {
                    glob_match(pattern, alarm_name)
                }
            });
            if hit {
                for target in &mapping.targets {
                    if !found.contains(&target) {
                        found.push(target);
                    }
                }
            }
        }
        found
    }
}

/// Parses and validates the mapping list; the error names the JSON path of the bad field.
pub fn parse_mappings(raw: &str) -> Result<Vec<Mapping>, String> {
    let de = &mut serde_json::Deserializer::from_str(raw);
    let mappings: Vec<Mapping> = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let what = inner.to_string();
        let what = what.split(" at line ").next().unwrap_or(&what).to_string();
        if path == "." || path.is_empty() {
            format!("is not a valid JSON array of mappings: {what}")
        } else {
            format!("{path}: {what}")
        }
    })?;
    if mappings.is_empty() {
        return Err("is an empty list: map at least one alarm to a target".into());
    }
    for (i, m) in mappings.iter().enumerate() {
        if m.alarms.is_empty() {
            return Err(format!("[{i}].alarms: is empty: name at least one alarm"));
        }
        for (j, a) in m.alarms.iter().enumerate() {
            if a.trim().is_empty() {
                return Err(format!("[{i}].alarms[{j}]: is blank"));
            }
            if a.trim() == "*" {
                return Err(format!(
                    "[{i}].alarms[{j}]: a bare \"*\" would let every alarm in the account roll these targets back; name the alarms or a narrower pattern"
                ));
            }
        }
        if m.targets.is_empty() {
            return Err(format!("[{i}].targets: is empty: name at least one target"));
        }
        for (j, t) in m.targets.iter().enumerate() {
            validate_target(t).map_err(|p| format!("[{i}].targets[{j}].{p}"))?;
        }
    }
    Ok(mappings)
}

fn validate_target(target: &Target) -> Result<(), String> {
    match target {
        Target::LambdaAlias(t) => {
            if t.function.trim().is_empty() {
                return Err("function: is blank".into());
            }
            if t.function.starts_with("arn:") && t.function.split(':').count() > 7 {
                return Err(format!(
                    "function: {:?} is a qualified ARN; give the function's name or unqualified ARN and the alias separately",
                    t.function
                ));
            }
            validate_alias_name(&t.alias).map_err(|p| format!("alias: {p}"))?;
            if let Some(v) = &t.stable_version {
                if !is_version_number(v) {
                    return Err(format!(
                        "stableVersion: expected a published version number such as \"12\", got {v:?} ($LATEST and aliases are not versions)"
                    ));
                }
            }
            if let Some(a) = &t.stable_alias {
                validate_alias_name(a).map_err(|p| format!("stableAlias: {p}"))?;
                if a == &t.alias {
                    return Err("stableAlias: must differ from alias (the alias being rolled back cannot point at its own stable version)".into());
                }
            }
            if let Some(cd) = &t.code_deploy {
                if cd.application.trim().is_empty() {
                    return Err("codeDeploy.application: is blank".into());
                }
                if cd.deployment_group.trim().is_empty() {
                    return Err("codeDeploy.deploymentGroup: is blank".into());
                }
            }
            Ok(())
        }
        Target::LatticeListener(t) => {
            for (field, value) in [
                ("service", &t.service),
                ("listener", &t.listener),
                ("productionTargetGroup", &t.production_target_group),
            ] {
                if value.trim().is_empty() {
                    return Err(format!("{field}: is blank"));
                }
            }
            Ok(())
        }
        Target::ApigatewayCanary(t) => {
            let (api, stage_in_arn) = parse_rest_api(&t.rest_api);
            if api.is_empty() || !api.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(format!(
                    "restApi: expected a REST API id such as \"a1b2c3d4e5\" or an ARN arn:aws:apigateway:REGION::/restapis/ID[/stages/STAGE], got {:?}",
                    t.rest_api
                ));
            }
            if let (Some(from_arn), false) = (&stage_in_arn, t.stage.is_empty()) {
                if *from_arn != t.stage {
                    return Err(format!(
                        "stage: {:?} differs from the stage {from_arn:?} in restApi's ARN",
                        t.stage
                    ));
                }
            }
            let (_, stage) = t.ids();
            if stage.is_empty()
                || stage.len() > 128
                || !stage
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(format!(
                    "stage: expected a stage name (letters, digits, - and _; at most 128), got {stage:?}"
                ));
            }
            Ok(())
        }
    }
}

fn validate_alias_name(alias: &str) -> Result<(), String> {
    if alias.is_empty() || alias.len() > 128 {
        return Err(format!("expected 1 to 128 characters, got {alias:?}"));
    }
    if alias == "$LATEST" || is_version_number(alias) {
        return Err(format!("{alias:?} is a version, not an alias"));
    }
    if !alias
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "{alias:?} is not a Lambda alias name (letters, digits, - and _)"
        ));
    }
    Ok(())
}

/// A published Lambda version: digits only (never `$LATEST`).
pub fn is_version_number(v: &str) -> bool {
    !v.is_empty() && v.len() <= 10 && v.bytes().all(|b| b.is_ascii_digit())
}

fn is_sns_topic_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    parts.len() == 6 && parts[0] == "arn" && parts[2] == "sns" && !parts[5].is_empty()
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(targets: &str) -> Vec<(&str, &str)> {
        vec![(TARGETS_VAR, targets)]
    }

    #[test]
    fn globs() {
        assert!(glob_match("checkout-*", "checkout-canary-errors"));
        assert!(glob_match("*-errors", "checkout-canary-errors"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("checkout-*", "billing-errors"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
    }

    #[test]
    fn stage_canaries_by_id_api_arn_or_stage_arn() {
        let target = |t: &str| parse_mappings(&format!(r#"[{{"alarms":"a","targets":[{t}]}}]"#));
        let id_of = |t: &str| target(t).map(|m| m[0].targets[0].id());
        let want = Ok("apigateway-canary:a1b2c3d4e5/prod".to_string());
        assert_eq!(
            id_of(r#"{"type":"apigateway-canary","restApi":"a1b2c3d4e5","stage":"prod"}"#),
            want
        );
        assert_eq!(
            id_of(
                r#"{"type":"apigateway-canary","restApi":"arn:aws:apigateway:us-east-1::/restapis/a1b2c3d4e5","stage":"prod"}"#
            ),
            want
        );
        assert_eq!(
            id_of(
                r#"{"type":"apigateway-canary","restApi":"arn:aws-cn:apigateway:cn-north-1::/restapis/a1b2c3d4e5/stages/prod"}"#
            ),
            want
        );
        for (bad, field) in [
            (
                r#"{"type":"apigateway-canary","restApi":"a1b2c3d4e5"}"#,
                "stage",
            ),
            (
                r#"{"type":"apigateway-canary","restApi":"a1b2c3d4e5","stage":"  "}"#,
                "stage",
            ),
            (
                r#"{"type":"apigateway-canary","restApi":"arn:aws:apigateway:us-east-1::/restapis/a1b2c3d4e5/stages/prod","stage":"beta"}"#,
                "stage",
            ),
            (
                r#"{"type":"apigateway-canary","restApi":"arn:aws:apigateway:us-east-1::/restapis/a1b2c3d4e5/stages/prod/x"}"#,
                "restApi",
            ),
            (
                r#"{"type":"apigateway-canary","restApi":"arn:aws:execute-api:us-east-1:1:a1b2c3d4e5/prod","stage":"prod"}"#,
                "restApi",
            ),
            (
                r#"{"type":"apigateway-canary","restApi":"my api","stage":"prod"}"#,
                "restApi",
            ),
        ] {
            let err = target(bad).unwrap_err();
            assert!(err.contains(&format!("targets[0].{field}")), "{bad}: {err}");
        }
    }

    #[test]
    fn operators_may_name_targets_by_id_or_arn_form() {
        let m = parse_mappings(r#"[{"alarms":"a","targets":[
            {"type":"lambda-alias","function":"arn:aws:lambda:us-east-1:123456789012:function:checkout","alias":"live"},
            {"type":"lattice-listener","service":"arn:aws:vpc-lattice:us-east-1:123456789012:service/svc-1","listener":"arn:aws:vpc-lattice:us-east-1:123456789012:service/svc-1/listener/listener-1","productionTargetGroup":"tg-1"}]}]"#).unwrap();
        assert!(m[0].targets[0]
            .names()
            .contains(&"lambda-alias:checkout:live".to_string()));
        assert!(m[0].targets[1]
            .names()
            .contains(&"lattice-listener:svc-1/listener-1".to_string()));
    }

    #[test]
    fn errors_name_the_variable_and_the_field() {
        let err = Config::from_vars(&vars(
            r#"[{"alarms":"a","targets":[{"type":"lambda-alias","function":"f","alias":"live","stabelVersion":"3"}]}]"#,
        )[..])
        .unwrap_err();
        assert_eq!(err.variable, TARGETS_VAR);
        assert!(err.problem.contains("[0].targets[0]"), "{err}");
        assert!(err.problem.contains("stabelVersion"), "{err}");

        let err = Config::from_vars(&vars(
            r#"[{"alarms":"a","targets":[{"type":"lambda-alias","function":"f","alias":"live","stableVersion":"$LATEST"}]}]"#,
        )[..])
        .unwrap_err();
        assert!(
            err.problem.contains("[0].targets[0].stableVersion"),
            "{err}"
        );

        let err =
            Config::from_vars(&vars(r#"[{"alarms":"a","targets":[{"type":"s3-bucket"}]}]"#)[..])
                .unwrap_err();
        assert!(err.problem.contains("s3-bucket"), "{err}");

        let err = Config::from_vars(&[][..]).unwrap_err();
        assert!(err.to_string().starts_with("ROLLBACK_TARGETS: is required"));

        let err = Config::from_vars(&vars("{not json")[..]).unwrap_err();
        assert!(err.problem.contains("not a valid JSON array"), "{err}");

        let err = Config::from_vars(&vars(r#"[{"alarms":"*","targets":[{"type":"lattice-listener","service":"s","listener":"l","productionTargetGroup":"tg"}]}]"#)[..]).unwrap_err();
        assert!(err.problem.contains("every alarm"), "{err}");
    }

    #[test]
    fn other_variables_are_checked() {
        let targets =
            r#"[{"alarms":"a","targets":[{"type":"lambda-alias","function":"f","alias":"live"}]}]"#;
        let err =
            Config::from_vars(&[(TARGETS_VAR, targets), (NOTIFY_VAR, "my-topic")][..]).unwrap_err();
        assert_eq!(err.variable, NOTIFY_VAR);
        let err =
            Config::from_vars(&[(TARGETS_VAR, targets), (DRY_RUN_VAR, "maybe")][..]).unwrap_err();
        assert_eq!(err.variable, DRY_RUN_VAR);
        let ok = Config::from_vars(&[(TARGETS_VAR, targets), (DRY_RUN_VAR, "true")][..]).unwrap();
        assert!(ok.dry_run);
        assert_eq!(ok.codedeploy_wait_ms, 10_000);
    }

    #[test]
    fn alarms_map_by_name_arn_and_glob_without_duplicates() {
        let cfg = Config::from_vars(&vars(
            r#"[
              {"alarms":["checkout-*"],"targets":[{"type":"lambda-alias","function":"checkout","alias":"live"}]},
              {"alarms":["arn:aws:cloudwatch:*:alarm:checkout-canary-errors"],"targets":[
                {"type":"lambda-alias","function":"checkout","alias":"live"},
                {"type":"lattice-listener","service":"svc-1","listener":"listener-1","productionTargetGroup":"tg-1"}]}
            ]"#,
        )[..])
        .unwrap();
        let arn = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:checkout-canary-errors";
        assert_eq!(
            cfg.targets_for("checkout-canary-errors", Some(arn)).len(),
            2
        );
        assert_eq!(cfg.targets_for("checkout-canary-errors", None).len(), 1);
        assert!(cfg.targets_for("billing", None).is_empty());
    }
}

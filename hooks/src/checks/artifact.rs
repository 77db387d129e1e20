//! `artifact`: the bytes under deployment are exactly the ones that were tested.

use super::*;

// ---- settings and validation ----

/// The version under deployment is exactly the artifact that was tested: exactly one of the
/// expected values.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArtifactCheck {
    /// A zip's `CodeSha256`: base64 as Lambda shows it, or hex as `sha256sum` prints it.
    #[serde(default)]
    pub code_sha256: Option<String>,
    /// An image's digest, `sha256:<64 hex>`.
    #[serde(default)]
    pub image_digest: Option<String>,
    /// The name of an environment variable holding either of the above (read at start-up).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^[A-Za-z0-9_]+$")))]
    pub from_env: Option<String>,
    /// The same artifact as another function's version or alias, e.g. staging's `live`.
    #[serde(default)]
    pub same_as: Option<SameAs>,
    /// Filled from `fromEnv` at start-up.
    #[serde(skip)]
    pub from_env_value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SameAs {
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"\S")))]
    pub function: String,
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"\S")))]
    pub qualifier: String,
}

// ---- execution ----

impl AwsExecutor {
    /// `artifact`: the version under deployment is exactly the artifact that was tested.
    pub(crate) async fn artifact(&self, c: &ArtifactCheck) -> Observation {
        let started = Instant::now();
        let deployed = match self
            .deployed(&self.target.function, &self.target.target_version)
            .await
        {
            Ok(d) => d,
            Err(why) => return Observation::fail(ms(started.elapsed()), why, Value::Null),
        };
        let expected = if let Some(v) = &c.code_sha256 {
            crate::artifact::Expected::code(v).map(|e| (e, "codeSha256".to_string()))
        } else if let Some(v) = &c.image_digest {
            crate::artifact::Expected::image(v).map(|e| (e, "imageDigest".to_string()))
        } else if let (Some(var), Some(v)) = (&c.from_env, &c.from_env_value) {
            crate::artifact::Expected::parse(v).map(|e| (e, format!("environment variable {var}")))
        } else if let Some(same) = &c.same_as {
            match self.deployed(&same.function, &same.qualifier).await {
                Ok(other) => other
                    .as_expected()
                    .map(|e| (e, format!("{}:{}", same.function, same.qualifier))),
                Err(why) => Err(why),
            }
        } else {
            Err("the check names no expected artifact".into())
        };
        let latency = ms(started.elapsed());
        let (expected, from) = match expected {
            Ok(e) => e,
            Err(why) => return Observation::fail(latency, why, Value::Null),
        };
        let details = json!({
            "version": self.target.target_version,
            "expected": expected.describe(),
            "expectedFrom": from,
            "deployed": deployed.describe(),
        });
        match crate::artifact::matches(&expected, &deployed) {
            Ok(()) => Observation::pass(latency, details),
            Err(why) => {
                Observation::fail(latency, format!("{why} (expected from {from})"), details)
            }
        }
    }

    /// What `GetFunction` says a version (or alias) is made of.
    pub(crate) async fn deployed(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<crate::artifact::Deployed, String> {
        let out = self
            .clients
            .lambda
            .get_function()
            .function_name(function)
            .qualifier(qualifier)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "GetFunction {function}:{qualifier} failed: {}",
                    error_text(&e)
                )
            })?;
        let config = out.configuration.ok_or_else(|| {
            format!("GetFunction {function}:{qualifier} returned no configuration")
        })?;
        let image = config.package_type == Some(aws_sdk_lambda::types::PackageType::Image);
        if image {
            let uri = out.code.and_then(|c| c.resolved_image_uri).ok_or_else(|| {
                format!("{function}:{qualifier} is an image without a ResolvedImageUri")
            })?;
            Ok(crate::artifact::Deployed::Image { resolved_uri: uri })
        } else {
            let sha = config
                .code_sha256
                .ok_or_else(|| format!("{function}:{qualifier} has no CodeSha256"))?;
            Ok(crate::artifact::Deployed::Code { code_sha256: sha })
        }
    }
}

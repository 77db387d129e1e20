//! `invoke`, `http` and `burst`: requests to the version (or the alias) and to endpoints, and what a good answer looks like.

use super::*;

// ---- settings and validation ----

/// Invoke the function: at the exact target version (pre-traffic) or through the alias
/// (post-traffic).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InvokeCheck {
    #[serde(default)]
    pub payload: serde_json::Value,
    #[serde(default)]
    pub expect: Expect,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpCheck {
    #[serde(default = "default_method")]
    pub method: String,
    #[cfg_attr(feature = "schema", schemars(regex(pattern = r"^https?://")))]
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Header name → name of the environment variable holding its value. Secrets never inline.
    #[serde(default)]
    pub secret_headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub signing: Option<Signing>,
    #[serde(default)]
    pub expect: Expect,
}

pub(crate) fn default_method() -> String {
    "GET".into()
}

/// API key + HMAC-SHA256: `X-API-Key`, `X-Timestamp` (Unix seconds) and `X-Signature` = hex
/// HMAC-SHA256(secret, timestamp + body).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Signing {
    pub api_key_env: String,
    pub secret_env: String,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expect {
    /// HTTP status, or for invoke the API Gateway-style `statusCode` of the response.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 100, max = 599)))]
    pub status: Option<u16>,
    #[serde(default)]
    pub body_contains: Option<String>,
    /// JSON pointer → expected value (in the response, or for invoke in the parsed `body` when the
    /// response is API Gateway-style and the pointer starts with `/body/`).
    #[serde(default)]
    pub json: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub max_latency_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BurstCheck {
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 10000)))]
    pub requests: usize,
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 256)))]
    pub concurrency: usize,
    pub target: BurstTarget,
    #[serde(default = "default_max_failure_rate")]
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0, max = 1.0)))]
    pub max_failure_rate: f64,
    #[serde(default = "default_max_avg")]
    pub max_avg_ms: u64,
    #[serde(default = "default_max_p95")]
    pub max_p95_ms: u64,
}

pub(crate) fn default_max_failure_rate() -> f64 {
    0.01
}
pub(crate) fn default_max_avg() -> u64 {
    500
}
pub(crate) fn default_max_p95() -> u64 {
    1000
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum BurstTarget {
    Invoke(InvokeCheck),
    Http(HttpCheck),
}

pub(crate) fn validate_http(c: &HttpCheck) -> Result<(), String> {
    if !(c.url.starts_with("https://") || c.url.starts_with("http://")) {
        return Err(format!("url: expected an http(s) URL, got {:?}", c.url));
    }
    if reqwest::Method::from_bytes(c.method.as_bytes()).is_err() {
        return Err(format!("method: {:?} is not an HTTP method", c.method));
    }
    for name in c.headers.keys() {
        let lower = name.to_ascii_lowercase();
        if [
            "authorization",
            "x-api-key",
            "cookie",
            "proxy-authorization",
        ]
        .contains(&lower.as_str())
        {
            return Err(format!(
                "headers.{name}: secrets are never inline; use secretHeaders: {{{name}: ENV_VAR_NAME}}"
            ));
        }
    }
    for (header, var) in &c.secret_headers {
        if var.is_empty()
            || !var
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        {
            return Err(format!(
                "secretHeaders.{header}: expected an environment variable name, got {var:?}"
            ));
        }
    }
    validate_expect(&c.expect).map_err(|p| format!("expect.{p}"))
}

pub(crate) fn validate_expect(e: &Expect) -> Result<(), String> {
    for pointer in e.json.keys() {
        if !pointer.starts_with('/') {
            return Err(format!(
                "json: {pointer:?} is not a JSON pointer (it starts with /)"
            ));
        }
    }
    if let Some(s) = e.status {
        if !(100..=599).contains(&s) {
            return Err(format!("status: {s} is not an HTTP status"));
        }
    }
    Ok(())
}

// ---- execution ----

impl AwsExecutor {
    /// Pre-traffic invokes the exact new version (the alias does not send it traffic yet);
    /// post-traffic invokes the alias, as callers do.
    pub(crate) fn qualifier(&self) -> String {
        match (self.phase, &self.target.alias) {
            (Phase::PostTraffic, Some(alias)) => alias.clone(),
            _ => self.target.target_version.clone(),
        }
    }

    pub(crate) async fn invoke(&self, c: &InvokeCheck) -> Observation {
        let qualifier = self.qualifier();
        // Pre-traffic, the version that ran must be the one under deployment.
        let must_run =
            (self.phase == Phase::PreTraffic).then_some(self.target.target_version.as_str());
        self.invoke_at(&c.payload, &c.expect, &qualifier, must_run)
            .await
    }

    /// One invocation of `qualifier`, judged against `expect`; `must_run` is the version that
    /// must have executed (Lambda's `X-Amz-Executed-Version`).
    pub(crate) async fn invoke_at(
        &self,
        payload: &Value,
        expect: &Expect,
        qualifier: &str,
        must_run: Option<&str>,
    ) -> Observation {
        let started = Instant::now();
        let out = self
            .clients
            .invoke
            .invoke()
            .function_name(&self.target.function)
            .qualifier(qualifier)
            .payload(Blob::new(serde_json::to_vec(payload).unwrap_or_default()))
            .send()
            .await;
        let latency = ms(started.elapsed());
        let out = match out {
            Ok(out) => out,
            Err(e) => {
                return Observation::fail(
                    latency,
                    format!("Invoke failed: {}", error_text(&e)),
                    Value::Null,
                )
            }
        };
        let payload = out.payload.map(|p| p.into_inner()).unwrap_or_default();
        let text = String::from_utf8_lossy(&payload).to_string();
        // Full text here: the runner redacts secrets first, then clips (a secret cut in half by an
        // earlier clip would no longer be recognised).
        let details = json!({ "qualifier": qualifier, "executedVersion": out.executed_version, "response": text });
        if let Some(kind) = out.function_error {
            return Observation::fail(
                latency,
                format!("the function returned an error ({kind}): {text}"),
                details,
            );
        }
        if let (Some(want), Some(v)) = (must_run, &out.executed_version) {
            if v != want {
                let which = if want == self.target.target_version {
                    "the version under deployment"
                } else {
                    "the version asked for"
                };
                return Observation::fail(
                    latency,
                    format!("Lambda ran version {v}, not {which} {want}"),
                    details,
                );
            }
        }
        let response: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
        // API Gateway-style responses: {statusCode, body: "<json or text>"}.
        let status = match response.get("statusCode") {
            None => None,
            Some(v) => match v.as_u64().and_then(|s| u16::try_from(s).ok()) {
                Some(s) if (100..=599).contains(&s) => Some(s),
                // Never truncated into something else (65736 is not 200).
                _ => {
                    return Observation::fail(
                        latency,
                        format!("the response's statusCode {v} is not an HTTP status"),
                        details,
                    )
                }
            },
        };
        let body_text = match response.get("body") {
            Some(Value::String(b)) => b.clone(),
            _ => text.clone(),
        };
        match assess(expect, status, &body_text, &response, latency) {
            Ok(()) => Observation::pass(latency, details),
            Err(reason) => Observation::fail(latency, reason, details),
        }
    }

    pub(crate) async fn http(&self, c: &HttpCheck) -> Observation {
        let request = match build_request(self.http.get(), c) {
            Ok(r) => r,
            Err(reason) => return Observation::fail(0, reason, Value::Null),
        };
        let started = Instant::now();
        let response = self.http.get().execute(request).await;
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                return Observation::fail(
                    ms(started.elapsed()),
                    format!("request failed: {}", error_chain(&e)),
                    json!({"url": c.url}),
                )
            }
        };
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        let latency = ms(started.elapsed());
        let details = json!({ "url": c.url, "status": status, "body": body });
        let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        match assess(&c.expect, Some(status), &body, &parsed, latency) {
            Ok(()) => Observation::pass(latency, details),
            Err(reason) => Observation::fail(latency, reason, details),
        }
    }

    pub(crate) async fn burst(&self, c: &BurstCheck) -> Observation {
        let started = Instant::now();
        let results: Vec<Observation> = futures::stream::iter(0..c.requests)
            .map(|_| async {
                match &c.target {
                    BurstTarget::Invoke(i) => self.invoke(i).await,
                    BurstTarget::Http(h) => self.http(h).await,
                }
            })
            .buffer_unordered(c.concurrency)
            .collect()
            .await;
        let failures = results
            .iter()
            .filter(|r| r.verdict != Verdict::Passed)
            .count();
        let mut latencies: Vec<u64> = results.iter().map(|r| r.latency_ms).collect();
        latencies.sort_unstable();
        let avg = latencies.iter().sum::<u64>() / latencies.len().max(1) as u64;
        let p95 = percentile(&latencies, 0.95);
        let failure_rate = failures as f64 / results.len().max(1) as f64;
        let first_failure = results.iter().find_map(|r| r.reason.clone());
        let details = json!({
            "requests": results.len(), "concurrency": c.concurrency, "failures": failures,
            "failureRate": failure_rate, "avgMs": avg, "p95Ms": p95, "firstFailure": first_failure,
        });
        let mut problems = Vec::new();
        if failure_rate > c.max_failure_rate {
            problems.push(format!(
                "failure rate {:.1}% above {:.1}%",
                failure_rate * 100.0,
                c.max_failure_rate * 100.0
            ));
        }
        if avg > c.max_avg_ms {
            problems.push(format!(
                "average latency {avg} ms above {} ms",
                c.max_avg_ms
            ));
        }
        if p95 > c.max_p95_ms {
            problems.push(format!("p95 latency {p95} ms above {} ms", c.max_p95_ms));
        }
        let elapsed = ms(started.elapsed());
        if problems.is_empty() {
            Observation::pass(elapsed, details)
        } else {
            Observation::fail(elapsed, problems.join("; "), details)
        }
    }
}

pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

pub fn assess(
    expect: &Expect,
    status: Option<u16>,
    body: &str,
    response: &Value,
    latency_ms: u64,
) -> Result<(), String> {
    let mut problems = Vec::new();
    if let Some(want) = expect.status {
        match status {
            Some(got) if got == want => {}
            Some(got) => problems.push(format!("status {got}, expected {want}")),
            None => problems.push(format!("no statusCode in the response, expected {want}")),
        }
    }
    if let Some(needle) = &expect.body_contains {
        if !body.contains(needle.as_str()) {
            problems.push(format!("body does not contain {needle:?}"));
        }
    }
    for (pointer, want) in &expect.json {
        let got = lookup(response, pointer);
        if got.as_ref() != Some(want) {
            problems.push(format!(
                "{pointer} is {}, expected {want}",
                got.map_or("missing".into(), |g| g.to_string())
            ));
        }
    }
    if let Some(max) = expect.max_latency_ms {
        if latency_ms > max {
            problems.push(format!("latency {latency_ms} ms above {max} ms"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// A JSON pointer into the response; `/body/...` also looks inside an API Gateway-style string
/// body that holds JSON.
pub fn lookup(response: &Value, pointer: &str) -> Option<Value> {
    if let Some(v) = response.pointer(pointer) {
        return Some(v.clone());
    }
    let rest = pointer.strip_prefix("/body")?;
    let body: Value = serde_json::from_str(response.get("body")?.as_str()?).ok()?;
    body.pointer(rest).cloned()
}

pub fn build_request(client: &reqwest::Client, c: &HttpCheck) -> Result<reqwest::Request, String> {
    let method = reqwest::Method::from_bytes(c.method.as_bytes()).map_err(|e| e.to_string())?;
    let body = c.body.clone().unwrap_or_default();
    let mut req = client.request(method, &c.url);
    for (k, v) in &c.headers {
        req = req.header(k, v);
    }
    for (header, var) in &c.secret_headers {
        let value = std::env::var(var).map_err(|_| {
            format!("secret header {header}: environment variable {var} is not set")
        })?;
        req = req.header(header, value);
    }
    if let Some(signing) = &c.signing {
        let key = std::env::var(&signing.api_key_env).map_err(|_| {
            format!(
                "signing: environment variable {} is not set",
                signing.api_key_env
            )
        })?;
        let secret = std::env::var(&signing.secret_env).map_err(|_| {
            format!(
                "signing: environment variable {} is not set",
                signing.secret_env
            )
        })?;
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            .to_string();
        req = req
            .header("X-API-Key", key)
            .header("X-Timestamp", &timestamp)
            .header("X-Signature", sign(&secret, &timestamp, &body));
    }
    if c.body.is_some() {
        req = req.body(body);
    }
    req.build().map_err(|e| format!("bad request: {e}"))
}

/// Hex HMAC-SHA256 of `timestamp + body`.
pub fn sign(secret: &str, timestamp: &str, body: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

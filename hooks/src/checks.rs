//! One attempt of each kind of check, against the version under deployment.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, StatusCode};
use aws_sdk_lambda::primitives::Blob;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use hmac::{KeyInit, Mac};
use serde::Serialize;
use serde_json::{json, Value};
use shiftguard_common::error_text;

use crate::config::{
    BurstCheck, BurstTarget, Check, CheckKind, Expect, HttpCheck, Inconclusive, InvokeCheck,
    MetricsCheck,
};
use crate::discovery::DeploymentTarget;
use crate::{Clients, Phase};

/// What one attempt of a check saw.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    pub verdict: Verdict,
    pub reason: Option<String>,
    pub latency_ms: u64,
    pub details: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Passed,
    Failed,
    /// Too little data to judge; whether that passes is the check's `inconclusive` setting.
    Inconclusive,
}

impl Observation {
    fn pass(latency_ms: u64, details: Value) -> Self {
        Self {
            verdict: Verdict::Passed,
            reason: None,
            latency_ms,
            details,
        }
    }
    fn fail(latency_ms: u64, reason: impl Into<String>, details: Value) -> Self {
        Self {
            verdict: Verdict::Failed,
            reason: Some(reason.into()),
            latency_ms,
            details,
        }
    }
}

/// Runs one attempt of a check. A trait so that tests can wrap the real executor (to make a check
/// panic, for instance) while everything else stays real.
pub trait Executor: Send + Sync {
    fn run(&self, check: Check) -> BoxFuture<'static, Observation>;
}

/// The executor that talks to AWS and to HTTP endpoints.
#[derive(Clone)]
pub struct AwsExecutor {
    pub clients: Clients,
    pub http: crate::HttpClient,
    pub target: DeploymentTarget,
    pub phase: Phase,
}

impl Executor for AwsExecutor {
    fn run(&self, check: Check) -> BoxFuture<'static, Observation> {
        let this = self.clone();
        async move {
            match &check.kind {
                CheckKind::Invoke(c) => this.invoke(c).await,
                CheckKind::Http(c) => this.http(c).await,
                CheckKind::Burst(c) => this.burst(c).await,
                CheckKind::Metrics(c) => this.metrics(c).await,
            }
        }
        .boxed()
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

impl AwsExecutor {
    /// Pre-traffic invokes the exact new version (the alias does not send it traffic yet);
    /// post-traffic invokes the alias, as callers do.
    fn qualifier(&self) -> String {
        match (self.phase, &self.target.alias) {
            (Phase::PostTraffic, Some(alias)) => alias.clone(),
            _ => self.target.target_version.clone(),
        }
    }

    async fn invoke(&self, c: &InvokeCheck) -> Observation {
        let started = Instant::now();
        let qualifier = self.qualifier();
        let out = self
            .clients
            .invoke
            .invoke()
            .function_name(&self.target.function)
            .qualifier(&qualifier)
            .payload(Blob::new(
                serde_json::to_vec(&c.payload).unwrap_or_default(),
            ))
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
        if self.phase == Phase::PreTraffic {
            if let Some(v) = &out.executed_version {
                if v != &self.target.target_version {
                    return Observation::fail(
                        latency,
                        format!(
                            "Lambda ran version {v}, not the version under deployment {}",
                            self.target.target_version
                        ),
                        details,
                    );
                }
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
        match assess(&c.expect, status, &body_text, &response, latency) {
            Ok(()) => Observation::pass(latency, details),
            Err(reason) => Observation::fail(latency, reason, details),
        }
    }

    async fn http(&self, c: &HttpCheck) -> Observation {
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

    async fn burst(&self, c: &BurstCheck) -> Observation {
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

    async fn metrics(&self, c: &MetricsCheck) -> Observation {
        let started = Instant::now();
        let (Some(alias), Some(old)) = (&self.target.alias, &self.target.current_version) else {
            return Observation::fail(
                0,
                "a metrics check needs the alias and the current version of the deployment",
                Value::Null,
            );
        };
        let new = &self.target.target_version;
        // Whole minutes (Lambda's metric period), and the current partial minute included: the
        // shift may have started moments ago.
        let now_s = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let end = UNIX_EPOCH + Duration::from_secs(now_s - now_s % 60 + 60);
        let start = end - c.window - Duration::from_secs(60);
        let mut queries = Vec::new();
        for (label, version) in [("new", new), ("old", old)] {
            for (metric, stat) in [
                ("Invocations", "Sum"),
                ("Errors", "Sum"),
                ("Throttles", "Sum"),
                ("Duration", "p99"),
            ] {
                let dims = vec![
                    Dimension::builder()
                        .name("FunctionName")
                        .value(&self.target.function)
                        .build(),
                    Dimension::builder()
                        .name("Resource")
                        .value(format!("{}:{alias}", self.target.function))
                        .build(),
                    Dimension::builder()
                        .name("ExecutedVersion")
                        .value(version)
                        .build(),
                ];
                queries.push(
                    MetricDataQuery::builder()
                        .id(format!("{label}_{}", metric.to_ascii_lowercase()))
                        .metric_stat(
                            MetricStat::builder()
                                .metric(
                                    Metric::builder()
                                        .namespace("AWS/Lambda")
                                        .metric_name(metric)
                                        .set_dimensions(Some(dims))
                                        .build(),
                                )
                                .period(60)
                                .stat(stat)
                                .build(),
                        )
                        .return_data(true)
                        .build(),
                );
            }
        }
        // Every page (GetMetricData pages with NextToken, results marked PartialData until the
        // last one), each series merged by id.
        let mut pages = self
            .clients
            .cloudwatch
            .get_metric_data()
            .set_metric_data_queries(Some(queries))
            .start_time(start.into())
            .end_time(end.into())
            .into_paginator()
            .send();
        let mut values: std::collections::HashMap<String, Vec<f64>> = Default::default();
        let mut trouble = Vec::new();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(p) => p,
                Err(e) => {
                    return Observation::fail(
                        ms(started.elapsed()),
                        format!("GetMetricData failed: {}", error_text(&e)),
                        Value::Null,
                    )
                }
            };
            for r in page.metric_data_results() {
                let id = r.id().unwrap_or_default().to_string();
                values.entry(id.clone()).or_default().extend(r.values());
                match r.status_code() {
                    Some(StatusCode::Complete) | Some(StatusCode::PartialData) | None => {}
                    Some(other) => trouble.push(format!("{id}: {}", other.as_str())),
                }
            }
            trouble.extend(page.messages().iter().filter_map(|m| {
                m.value()
                    .map(|v| format!("{}: {v}", m.code().unwrap_or("message")))
            }));
        }
        let latency = ms(started.elapsed());
        if !trouble.is_empty() {
            return Observation {
                verdict: Verdict::Inconclusive,
                reason: Some(format!(
                    "inconclusive: CloudWatch did not return complete data ({})",
                    trouble.join("; ")
                )),
                latency_ms: latency,
                details: json!({ "newVersion": new, "oldVersion": old }),
            };
        }
        let series = |id: &str| -> Vec<f64> { values.get(id).cloned().unwrap_or_default() };
        let sum = |id: &str| series(id).iter().sum::<f64>();
        let max = |id: &str| {
            series(id)
                .iter()
                .cloned()
                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
        };
        let comparison = compare(
            c,
            Sample {
                invocations: sum("new_invocations"),
                errors: sum("new_errors"),
                throttles: sum("new_throttles"),
                p99_ms: max("new_duration"),
            },
            Sample {
                invocations: sum("old_invocations"),
                errors: sum("old_errors"),
                throttles: sum("old_throttles"),
                p99_ms: max("old_duration"),
            },
        );
        let details = json!({ "newVersion": new, "oldVersion": old, "window": format!("{}s", c.window.as_secs()), "comparison": comparison.details });
        Observation {
            verdict: comparison.verdict,
            reason: comparison.reason,
            latency_ms: latency,
            details,
        }
    }
}

/// The absolute error-rate limit a metrics check applies when the old version gives no baseline
/// and `maxErrorRate` is not set (documented in the README).
pub const NO_BASELINE_MAX_ERROR_RATE: f64 = 0.05;

/// Invocation counts of one version over the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub invocations: f64,
    pub errors: f64,
    pub throttles: f64,
    pub p99_ms: Option<f64>,
}

pub struct Comparison {
    pub verdict: Verdict,
    pub reason: Option<String>,
    pub details: Value,
}

/// The new version's error rate against an absolute limit and against a multiple of the old
/// version's. The old rate is floored at one error in its sample (a clean old version with 200
/// invocations gives a baseline of 0.5%), so that one error in the new version is not an infinite
/// multiple of zero.
pub fn compare(c: &MetricsCheck, new: Sample, old: Sample) -> Comparison {
    let rate = |s: &Sample| {
        if s.invocations > 0.0 {
            s.errors / s.invocations
        } else {
            0.0
        }
    };
    let (new_rate, old_rate) = (rate(&new), rate(&old));
    let details = json!({
        "new": {"invocations": new.invocations, "errors": new.errors, "throttles": new.throttles, "errorRate": new_rate, "p99Ms": new.p99_ms},
        "old": {"invocations": old.invocations, "errors": old.errors, "throttles": old.throttles, "errorRate": old_rate, "p99Ms": old.p99_ms},
    });
    if (new.invocations as u64) < c.min_samples {
        let reason = format!(
            "inconclusive: {} invocations of the new version, fewer than minSamples {} (inconclusive {})",
            new.invocations,
            c.min_samples,
            if c.inconclusive == Inconclusive::Pass { "passes" } else { "fails" }
        );
        return Comparison {
            verdict: Verdict::Inconclusive,
            reason: Some(reason),
            details,
        };
    }
    let mut problems = Vec::new();
    // Without a baseline the relative comparisons cannot be made: judge against the absolute limit
    // (the configured one, or the documented default), and call a version within it inconclusive,
    // never a pass — the check's `inconclusive` policy decides, visibly.
    if (old.invocations as u64) < c.min_samples {
        let limit = c.max_error_rate.unwrap_or(NO_BASELINE_MAX_ERROR_RATE);
        let no_baseline = format!(
            "no baseline: the old version had {} invocations in the window, fewer than minSamples {}",
            old.invocations, c.min_samples
        );
        return if new_rate > limit {
            Comparison {
                verdict: Verdict::Failed,
                reason: Some(format!(
                    "error rate {:.2}% above the absolute limit {:.2}% ({no_baseline})",
                    new_rate * 100.0,
                    limit * 100.0
                )),
                details,
            }
        } else {
            Comparison {
                verdict: Verdict::Inconclusive,
                reason: Some(format!(
                    "inconclusive: {no_baseline}; error rate {:.2}% is within the absolute limit {:.2}% but nothing can be compared (inconclusive {})",
                    new_rate * 100.0,
                    limit * 100.0,
                    if c.inconclusive == Inconclusive::Pass { "passes" } else { "fails" }
                )),
                details,
            }
        };
    }
    if let Some(limit) = c.max_error_rate {
        if new_rate > limit {
            problems.push(format!(
                "error rate {:.2}% above the limit {:.2}%",
                new_rate * 100.0,
                limit * 100.0
            ));
        }
    }
    {
        let baseline = old_rate.max(1.0 / old.invocations);
        if new_rate > baseline * c.max_error_rate_multiple {
            problems.push(format!(
                "error rate {:.2}% is more than {}x the old version's {:.2}%",
                new_rate * 100.0,
                c.max_error_rate_multiple,
                old_rate * 100.0
            ));
        }
        let throttle_rate = |s: &Sample| s.throttles / (s.invocations + s.throttles).max(1.0);
        let throttle_baseline = throttle_rate(&old).max(1.0 / old.invocations);
        if throttle_rate(&new) > throttle_baseline * c.max_error_rate_multiple {
            problems.push(format!(
                "throttle rate {:.2}% is more than {}x the old version's",
                throttle_rate(&new) * 100.0,
                c.max_error_rate_multiple
            ));
        }
        if let (Some(multiple), Some(n), Some(o)) = (c.max_p99_multiple, new.p99_ms, old.p99_ms) {
            if o > 0.0 && n > o * multiple {
                problems.push(format!(
                    "p99 duration {n:.0} ms is more than {multiple}x the old version's {o:.0} ms"
                ));
            }
        }
    }
    if problems.is_empty() {
        Comparison {
            verdict: Verdict::Passed,
            reason: None,
            details,
        }
    } else {
        Comparison {
            verdict: Verdict::Failed,
            reason: Some(problems.join("; ")),
            details,
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn assess(
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
fn lookup(response: &Value, pointer: &str) -> Option<Value> {
    if let Some(v) = response.pointer(pointer) {
        return Some(v.clone());
    }
    let rest = pointer.strip_prefix("/body")?;
    let body: Value = serde_json::from_str(response.get("body")?.as_str()?).ok()?;
    body.pointer(rest).cloned()
}

fn build_request(client: &reqwest::Client, c: &HttpCheck) -> Result<reqwest::Request, String> {
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

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics_from(fields: &str) -> MetricsCheck {
        crate::config::parse_checks(&format!(
            r#"{{"checks":[{{"name":"m","kind":"metrics"{fields}}}]}}"#
        ))
        .map(|s| match &s.checks[0].kind {
            CheckKind::Metrics(m) => m.clone(),
            _ => unreachable!(),
        })
        .unwrap()
    }

    fn metrics_check(min_samples: u64) -> MetricsCheck {
        metrics_from(&format!(
            r#","minSamples":{min_samples},"maxErrorRate":0.05"#
        ))
    }

    fn s(invocations: f64, errors: f64) -> Sample {
        Sample {
            invocations,
            errors,
            throttles: 0.0,
            p99_ms: None,
        }
    }

    #[test]
    fn metrics_verdicts() {
        let c = metrics_check(20);
        assert_eq!(
            compare(&c, s(100.0, 1.0), s(900.0, 9.0)).verdict,
            Verdict::Passed
        );
        assert_eq!(
            compare(&c, s(100.0, 3.0), s(900.0, 9.0)).verdict,
            Verdict::Failed,
            "3% is more than 2x 1%"
        );
        assert_eq!(
            compare(&c, s(100.0, 6.0), s(0.0, 0.0)).verdict,
            Verdict::Failed,
            "above the absolute limit"
        );
        // No baseline: a version that only errors fails even without maxErrorRate; a clean one is
        // inconclusive, never a pass.
        let no_limit = metrics_from("");
        assert_eq!(
            compare(&no_limit, s(100.0, 100.0), s(0.0, 0.0)).verdict,
            Verdict::Failed
        );
        assert_eq!(
            compare(&no_limit, s(100.0, 0.0), s(0.0, 0.0)).verdict,
            Verdict::Inconclusive
        );
        assert_eq!(
            compare(&no_limit, s(100.0, 0.0), s(5.0, 0.0)).verdict,
            Verdict::Inconclusive,
            "5 old invocations are no baseline"
        );
        assert_eq!(
            compare(&no_limit, s(100.0, 3.0), s(100.0, 1.0)).verdict,
            Verdict::Failed,
            "3% is more than 2x 1%"
        );
        assert_eq!(
            compare(&c, s(5.0, 5.0), s(900.0, 0.0)).verdict,
            Verdict::Inconclusive
        );
        assert_eq!(
            compare(&c, s(100.0, 0.0), s(200.0, 0.0)).verdict,
            Verdict::Passed
        );
        assert_eq!(
            compare(&c, s(200.0, 1.0), s(200.0, 0.0)).verdict,
            Verdict::Passed,
            "one error against a clean baseline of 200 is within 2x"
        );
    }

    #[test]
    fn signature_is_hex_hmac_of_timestamp_and_body() {
        // Computed independently: python3 -c "import hmac,hashlib; print(hmac.new(b'key', b'1700000000{}', hashlib.sha256).hexdigest())"
        assert_eq!(
            sign("key", "1700000000", "{}"),
            "8bf94835bbbcef46f74a1250c47850ede3fa88090e59f1b0bc6af31209a97ca9"
        );
        assert_eq!(sign("k", "1", "b").len(), 64);
    }

    #[test]
    fn pointers_reach_into_string_bodies() {
        let response = json!({"statusCode": 200, "body": "{\"status\":\"ok\",\"items\":[1,2]}"});
        assert_eq!(lookup(&response, "/body/status"), Some(json!("ok")));
        assert_eq!(lookup(&response, "/statusCode"), Some(json!(200)));
        assert_eq!(lookup(&response, "/body/missing"), None);
    }

    #[test]
    fn p95() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.95), 95);
        assert_eq!(percentile(&[7], 0.95), 7);
    }
}

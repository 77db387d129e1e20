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
    ArtifactCheck, BurstCheck, BurstTarget, Check, CheckKind, CompareCheck, Expect, HttpCheck,
    Inconclusive, InvokeCheck, LogsCheck, MetricsCheck,
};
use crate::discovery::DeploymentTarget;
use crate::stats;
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
                CheckKind::Compare(c) => match this.phase {
                    Phase::PreTraffic => this.compare_load(c).await,
                    Phase::PostTraffic => this.compare_series(c).await,
                },
                CheckKind::Logs(c) => this.logs(c).await,
                CheckKind::Artifact(c) => this.artifact(c).await,
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
        let qualifier = self.qualifier();
        // Pre-traffic, the version that ran must be the one under deployment.
        let must_run =
            (self.phase == Phase::PreTraffic).then_some(self.target.target_version.as_str());
        self.invoke_at(&c.payload, &c.expect, &qualifier, must_run)
            .await
    }

    /// One invocation of `qualifier`, judged against `expect`; `must_run` is the version that
    /// must have executed (Lambda's `X-Amz-Executed-Version`).
    async fn invoke_at(
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

    /// One Lambda metric of one version, as served through the alias.
    /// One version's metric: through the alias (`Resource` = function:alias, `ExecutedVersion`),
    /// or — a target without an alias, such as a Lattice rollout whose target groups invoke
    /// versions directly — what Lambda publishes for version-qualified invocations
    /// (`Resource` = function:version).
    fn version_query(
        &self,
        id: String,
        alias: Option<&str>,
        version: &str,
        metric: &str,
        stat: &str,
    ) -> MetricDataQuery {
        let function = Dimension::builder()
            .name("FunctionName")
            .value(&self.target.function)
            .build();
        let dims = match alias {
            Some(alias) => vec![
                function,
                Dimension::builder()
                    .name("Resource")
                    .value(format!("{}:{alias}", self.target.function))
                    .build(),
                Dimension::builder()
                    .name("ExecutedVersion")
                    .value(version)
                    .build(),
            ],
            None => vec![
                function,
                Dimension::builder()
                    .name("Resource")
                    .value(format!("{}:{version}", self.target.function))
                    .build(),
            ],
        };
        MetricDataQuery::builder()
            .id(id)
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
            .build()
    }

    /// Every page of `GetMetricData` over the window (whole minutes, Lambda's metric period, and
    /// the current partial minute included: the shift may have ended moments ago), each series
    /// merged by id. `Err` is the reason the data cannot be judged: a failed call is a failure,
    /// incomplete data inconclusive.
    async fn metric_series(
        &self,
        queries: Vec<MetricDataQuery>,
        window: Duration,
    ) -> Result<std::collections::HashMap<String, Vec<f64>>, (Verdict, String)> {
        let now_s = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let end = UNIX_EPOCH + Duration::from_secs(now_s - now_s % 60 + 60);
        let start = end - window - Duration::from_secs(60);
        // GetMetricData pages with NextToken, results marked PartialData until the last one.
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
            let page = page.map_err(|e| {
                (
                    Verdict::Failed,
                    format!("GetMetricData failed: {}", error_text(&e)),
                )
            })?;
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
        if !trouble.is_empty() {
            return Err((
                Verdict::Inconclusive,
                format!(
                    "inconclusive: CloudWatch did not return complete data ({})",
                    trouble.join("; ")
                ),
            ));
        }
        Ok(values)
    }

    async fn metrics(&self, c: &MetricsCheck) -> Observation {
        let started = Instant::now();
        let Some(old) = &self.target.current_version else {
            return Observation::fail(
                0,
                "a metrics check needs the current version of the deployment (the baseline)",
                Value::Null,
            );
        };
        let alias = self.target.alias.as_deref();
        let new = &self.target.target_version;
        let mut queries = Vec::new();
        for (label, version) in [("new", new), ("old", old)] {
            for (metric, stat) in [
                ("Invocations", "Sum"),
                ("Errors", "Sum"),
                ("Throttles", "Sum"),
                ("Duration", "p99"),
            ] {
                queries.push(self.version_query(
                    format!("{label}_{}", metric.to_ascii_lowercase()),
                    alias,
                    version,
                    metric,
                    stat,
                ));
            }
        }
        let fetched = self.metric_series(queries, c.window).await;
        let latency = ms(started.elapsed());
        let values = match fetched {
            Ok(values) => values,
            Err((verdict, reason)) => {
                return Observation {
                    verdict,
                    reason: Some(reason),
                    latency_ms: latency,
                    details: json!({ "newVersion": new, "oldVersion": old }),
                }
            }
        };
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

    /// Pre-traffic `compare`: the same requests to the old and the new version, interleaved (one
    /// to each in turn, alternating which goes first, so that both see the same conditions), then
    /// judged with [`stats::judge`]. Latency is the client's round trip of each successful request.
    async fn compare_load(&self, c: &CompareCheck) -> Observation {
        let started = Instant::now();
        let new = self.target.target_version.clone();
        let Some(old) = self.target.current_version.clone() else {
            return inconclusive_without_baseline(
                c.inconclusive,
                "the deployment has no current version to compare with (a first deployment?)",
                json!({ "newVersion": new }),
            );
        };
        if old == new {
            return inconclusive_without_baseline(
                c.inconclusive,
                &format!(
                    "the current and the new version are the same ({new}): nothing to compare"
                ),
                json!({ "newVersion": new, "oldVersion": old }),
            );
        }
        let order = (0..c.requests).flat_map(|i| {
            if i % 2 == 0 {
                [true, false]
            } else {
                [false, true]
            }
        });
        // Each round trip timed here to the microsecond (issue 21 [6]): a 3 ms function's 20%
        // tolerance is 0.6 ms, below whole-millisecond resolution.
        let results: Vec<(bool, Observation, Duration)> = futures::stream::iter(order)
            .map(|is_new| {
                let version = if is_new { &new } else { &old };
                async move {
                    let sent = Instant::now();
                    let seen = self
                        .invoke_at(&c.payload, &c.expect, version, Some(version))
                        .await;
                    (is_new, seen, sent.elapsed())
                }
            })
            .buffer_unordered(c.concurrency)
            .collect()
            .await;
        let side = |want_new: bool| {
            let mine: Vec<(&Observation, Duration)> = results
                .iter()
                .filter(|(is_new, _, _)| *is_new == want_new)
                .map(|(_, o, took)| (o, *took))
                .collect();
            let latencies: Vec<f64> = mine
                .iter()
                .filter(|(o, _)| o.verdict == Verdict::Passed)
                .map(|(_, took)| took.as_micros() as f64 / 1000.0)
                .collect();
            let mine: Vec<&Observation> = mine.into_iter().map(|(o, _)| o).collect();
            let errors = mine.iter().filter(|o| o.verdict != Verdict::Passed).count() as u64;
            let first_failure = mine.iter().find_map(|o| o.reason.clone());
            (latencies, mine.len() as u64, errors, first_failure)
        };
        let (new_latencies, new_requests, new_errors, new_failure) = side(true);
        let (old_latencies, old_requests, old_errors, old_failure) = side(false);
        // Not one request to the new version succeeded: that is a failure, whatever the old
        // version did (a wrong payload fails both, and two equal error rates must not let an
        // `inconclusive: pass` policy through).
        if new_latencies.is_empty() {
            return Observation::fail(
                ms(started.elapsed()),
                format!(
                    "none of the {new_requests} requests to the new version {new} succeeded: {}",
                    new_failure.clone().unwrap_or_default()
                ),
                json!({"mode": "interleaved-load", "newVersion": new, "oldVersion": old,
                    "firstFailure": {"new": new_failure, "old": old_failure}}),
            );
        }
        let judgement = stats::judge(
            &stats::Side {
                latencies_ms: &new_latencies,
                requests: new_requests,
                errors: new_errors,
            },
            &stats::Side {
                latencies_ms: &old_latencies,
                requests: old_requests,
                errors: old_errors,
            },
            &c.thresholds(),
        );
        let details = json!({
            "mode": "interleaved-load",
            "newVersion": new,
            "oldVersion": old,
            "requestsPerVersion": c.requests,
            "firstFailure": {"new": new_failure, "old": old_failure},
            "judgement": judgement,
        });
        judged(
            c.inconclusive,
            judgement.verdict,
            &judgement.reason,
            ms(started.elapsed()),
            details,
        )
    }

    /// Post-traffic `compare`: CloudWatch's per-period series of both versions through the alias
    /// (`ExecutedVersion`), one latency value (the configured statistic) per minute, and the
    /// invocation and error counts over the window.
    async fn compare_series(&self, c: &CompareCheck) -> Observation {
        let started = Instant::now();
        let new = self.target.target_version.clone();
        let Some(old) = &self.target.current_version else {
            return inconclusive_without_baseline(
                c.inconclusive,
                "a post-traffic comparison needs the version served before (the baseline)",
                json!({ "newVersion": new }),
            );
        };
        let alias = self.target.alias.as_deref();
        if *old == new {
            return inconclusive_without_baseline(
                c.inconclusive,
                &format!(
                    "the current and the new version are the same ({new}): nothing to compare"
                ),
                json!({ "newVersion": new, "oldVersion": old }),
            );
        }
        // Per-invocation records first (issue 21 [5]): Lambda's REPORT lines give every
        // invocation's Duration to 0.01 ms; CloudWatch periods are the fallback.
        let fallback = match c.source {
            crate::config::CompareSource::Periods => "source: periods".to_string(),
            source => match self.compare_reports(c, &new, old, started).await {
                Ok(observation) => return observation,
                Err(why) if source == crate::config::CompareSource::Reports => {
                    return judged(
                        c.inconclusive,
                        Verdict::Inconclusive,
                        &format!("inconclusive: {why} (source: reports)"),
                        ms(started.elapsed()),
                        json!({ "mode": "log-reports", "newVersion": new, "oldVersion": old }),
                    )
                }
                Err(why) => why,
            },
        };
        let mut queries = Vec::new();
        for (label, version) in [("new", &new), ("old", old)] {
            queries.push(self.version_query(
                format!("{label}_latency"),
                alias,
                version,
                "Duration",
                &c.statistic,
            ));
            queries.push(self.version_query(
                format!("{label}_invocations"),
                alias,
                version,
                "Invocations",
                "Sum",
            ));
            queries.push(self.version_query(
                format!("{label}_errors"),
                alias,
                version,
                "Errors",
                "Sum",
            ));
        }
        let values = match self.metric_series(queries, c.window).await {
            Ok(values) => values,
            Err((verdict, reason)) => {
                let details = json!({ "newVersion": new, "oldVersion": old });
                return judged(
                    c.inconclusive,
                    verdict,
                    &reason,
                    ms(started.elapsed()),
                    details,
                );
            }
        };
        let series = |id: &str| values.get(id).cloned().unwrap_or_default();
        let count = |id: &str| series(id).iter().sum::<f64>().max(0.0).round() as u64;
        let (new_latencies, old_latencies) = (series("new_latency"), series("old_latency"));
        // One value per period, not per request: no tail to judge from them.
        let thresholds = stats::Thresholds {
            tail_quantile: None,
            ..c.thresholds()
        };
        let judgement = stats::judge(
            &stats::Side {
                latencies_ms: &new_latencies,
                requests: count("new_invocations"),
                errors: count("new_errors"),
            },
            &stats::Side {
                latencies_ms: &old_latencies,
                requests: count("old_invocations"),
                errors: count("old_errors"),
            },
            &thresholds,
        );
        let details = json!({
            "mode": "cloudwatch-periods",
            "reportsUnavailable": fallback,
            "newVersion": new,
            "oldVersion": old,
            "window": format!("{}s", c.window.as_secs()),
            "statistic": c.statistic,
            "periodSeconds": 60,
            "judgement": judgement,
        });
        judged(
            c.inconclusive,
            judgement.verdict,
            &judgement.reason,
            ms(started.elapsed()),
            details,
        )
    }

    /// `logs`: error lines per invocation of the new version against the old, from CloudWatch
    /// Logs. Lambda names each log stream `YYYY/MM/DD/[VERSION]id`, which tells the versions
    /// apart; invocations are counted from the line Lambda writes for each (`invocationPattern`,
    /// `REPORT RequestId` by default).
    async fn logs(&self, c: &LogsCheck) -> Observation {
        let started = Instant::now();
        let function = shiftguard_common::codedeploy::function_name(&self.target.function);
        let group = c
            .log_group
            .clone()
            .unwrap_or_else(|| format!("/aws/lambda/{function}"));
        let new = self.target.target_version.clone();
        // The same version on both sides would be compared with itself: no baseline.
        let old = self
            .target
            .current_version
            .clone()
            .filter(|old| *old != new);
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let start_ms = now_ms - c.window.as_millis() as i64;
        let (errors, reports) = tokio::join!(
            self.count_log_lines(function, &group, &c.pattern, start_ms, now_ms),
            self.count_log_lines(function, &group, &c.invocation_pattern, start_ms, now_ms),
        );
        let latency = ms(started.elapsed());
        let base = json!({ "logGroup": group, "pattern": c.pattern, "newVersion": new, "oldVersion": old });
        let (errors, reports) = match (errors, reports) {
            (Ok(e), Ok(r)) => (e, r),
            (Err((verdict, why)), _) | (_, Err((verdict, why))) => {
                return judged(c.inconclusive, verdict, &why, latency, base)
            }
        };
        let of = |version: Option<&String>| LogCounts {
            invocations: version
                .and_then(|v| reports.get(v))
                .map_or(0, |t| t.invocations),
            error_lines: version
                .and_then(|v| errors.get(v))
                .map_or(0, |t| t.invocations),
        };
        let comparison = judge_logs(c, of(Some(&new)), of(old.as_ref()));
        let mut details = base;
        details["comparison"] = comparison.details;
        let lines = |version: Option<&String>| {
            version
                .and_then(|v| errors.get(v))
                .copied()
                .unwrap_or_default()
        };
        details["errorLines"] = json!({
            "new": {"lines": lines(Some(&new)).lines, "withoutRequestId": lines(Some(&new)).without_request_id},
            "old": {"lines": lines(old.as_ref()).lines, "withoutRequestId": lines(old.as_ref()).without_request_id},
        });
        judged(
            c.inconclusive,
            comparison.verdict,
            comparison.reason.as_deref().unwrap_or_default(),
            latency,
            details,
        )
    }

    /// Post-traffic `compare` from Lambda's own per-invocation records: the `REPORT` lines of the
    /// function's log group over the window (Duration to 0.01 ms, one per invocation), split by
    /// version from the log stream names, and the error lines counted by request id — both
    /// versions over the same minutes: from the minute of the new version's first invocation, so
    /// that the old version's hours before the deployment do not stand in for its baseline. `Err`
    /// (why) when there are no such records (no log group, no REPORT line of the new version, a
    /// failed read): the caller falls back to CloudWatch periods.
    async fn compare_reports(
        &self,
        c: &CompareCheck,
        new: &str,
        old: &str,
        started: Instant,
    ) -> Result<Observation, String> {
        let function = shiftguard_common::codedeploy::function_name(&self.target.function);
        let group = format!("/aws/lambda/{function}");
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let start_ms = now_ms - c.window.as_millis() as i64;
        let (reports, errors) = tokio::join!(
            self.log_events(
                &group,
                crate::config::DEFAULT_INVOCATION_PATTERN,
                start_ms,
                now_ms
            ),
            self.log_events(&group, crate::config::DEFAULT_LOG_PATTERN, start_ms, now_ms),
        );
        let (reports, errors) = match (reports, errors) {
            (Ok(r), Ok(e)) => (r, e),
            (Err((_, why)), _) | (_, Err((_, why))) => return Err(why),
        };
        let of = |events: &[LogEvent], version: &str| -> Vec<LogEvent> {
            events
                .iter()
                .filter(|e| stream_version(&e.stream, function) == Some(version))
                .cloned()
                .collect()
        };
        let new_reports = of(&reports, new);
        let Some(first) = new_reports.iter().map(|e| e.timestamp).min() else {
            return Err(format!(
                "no REPORT line of version {new} in {group} over the window"
            ));
        };
        let from = first - first.rem_euclid(60_000);
        let since = |events: Vec<LogEvent>| -> Vec<LogEvent> {
            events.into_iter().filter(|e| e.timestamp >= from).collect()
        };
        let (new_reports, old_reports) = (since(new_reports), since(of(&reports, old)));
        let failed = tally_by_version(&since(errors), function);
        let durations = |events: &[LogEvent]| -> Vec<f64> {
            events
                .iter()
                .filter_map(|e| report_duration_ms(&e.message))
                .collect()
        };
        let invocations = |events: &[LogEvent], version: &str| {
            tally_by_version(events, function)
                .get(version)
                .map_or(0, |t| t.invocations)
        };
        let (new_latencies, old_latencies) = (durations(&new_reports), durations(&old_reports));
        let judgement = stats::judge(
            &stats::Side {
                latencies_ms: &new_latencies,
                requests: invocations(&new_reports, new),
                errors: failed.get(new).map_or(0, |t| t.invocations),
            },
            &stats::Side {
                latencies_ms: &old_latencies,
                requests: invocations(&old_reports, old),
                errors: failed.get(old).map_or(0, |t| t.invocations),
            },
            &c.thresholds(),
        );
        let details = json!({
            "mode": "log-reports",
            "logGroup": group,
            "newVersion": new,
            "oldVersion": old,
            "window": format!("{}s", c.window.as_secs()),
            "sinceMs": from,
            "judgement": judgement,
        });
        Ok(judged(
            c.inconclusive,
            judgement.verdict,
            &judgement.reason,
            ms(started.elapsed()),
            details,
        ))
    }

    /// Every event matching `pattern` in the window: pages fetched by hand, so that a throttled
    /// page is retried with backoff until the check's own timeout stops it (CloudWatch Logs
    /// throttles FilterLogEvents per account). More than [`MAX_LOG_EVENTS`]: inconclusive.
    async fn log_events(
        &self,
        group: &str,
        pattern: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<LogEvent>, (Verdict, String)> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let mut backoff = Duration::from_millis(100);
        loop {
            let page = match self
                .clients
                .logs
                .filter_log_events()
                .log_group_name(group)
                .filter_pattern(pattern)
                .start_time(start_ms)
                .end_time(end_ms)
                .set_next_token(token.clone())
                .send()
                .await
            {
                Ok(page) => page,
                Err(e) => {
                    use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;
                    let service = e.as_service_error();
                    if service.is_some_and(|s| s.is_resource_not_found_exception()) {
                        // No log group: the function has never logged anything — no data.
                        return Err((
                            Verdict::Inconclusive,
                            format!("inconclusive: log group {group} does not exist (no invocation has logged yet)"),
                        ));
                    }
                    let throttled = service.is_some_and(|s| {
                        s.code().is_some_and(|c| c.contains("Throttl"))
                            || s.message().is_some_and(|m| m.contains("Rate exceeded"))
                    });
                    if throttled {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                        continue;
                    }
                    return Err((
                        Verdict::Failed,
                        format!("FilterLogEvents on {group} failed: {}", error_text(&e)),
                    ));
                }
            };
            backoff = Duration::from_millis(100);
            for event in page.events() {
                out.push(LogEvent {
                    timestamp: event.timestamp().unwrap_or(0),
                    stream: event.log_stream_name().unwrap_or_default().to_string(),
                    message: event.message().unwrap_or_default().to_string(),
                });
            }
            if out.len() > MAX_LOG_EVENTS {
                return Err((
                    Verdict::Inconclusive,
                    format!("inconclusive: more than {MAX_LOG_EVENTS} lines match {pattern:?} in {group}; narrow the pattern or the window"),
                ));
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    /// Invocations with a line matching `pattern` in the window, per version (from the log stream
    /// names): each line's request id (the first UUID in it, as Lambda writes it in `REPORT`,
    /// `Task timed out` and runtime lines) counted once, so an invocation that logs ten error
    /// lines is one failed invocation (issue 21 [8]). A line without a request id counts as one
    /// invocation of its own (the cautious side), and is reported.
    async fn count_log_lines(
        &self,
        function: &str,
        group: &str,
        pattern: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<std::collections::HashMap<String, LogTally>, (Verdict, String)> {
        let events = self.log_events(group, pattern, start_ms, end_ms).await?;
        Ok(tally_by_version(&events, function))
    }

    /// `artifact`: the version under deployment is exactly the artifact that was tested.
    async fn artifact(&self, c: &ArtifactCheck) -> Observation {
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
    async fn deployed(
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

/// The absolute error-rate limit a metrics check applies when the old version gives no baseline
/// and `maxErrorRate` is not set (documented in the README).
pub const NO_BASELINE_MAX_ERROR_RATE: f64 = 0.05;

/// The most log lines a `logs` check counts per query (pages of up to 10,000).
pub const MAX_LOG_EVENTS: usize = 200_000;

/// The version in a Lambda log stream name of `function`: `2026/11/22/[7]0123abcd…` in the
/// function's own group, `2026/11/22/checkout[7]0123…` in a custom (maybe shared) log group, where
/// Lambda puts the function's name first. A stream of another function gives `None`.
pub fn stream_version<'s>(stream: &'s str, function: &str) -> Option<&'s str> {
    // After the date: YYYY/MM/DD/
    let rest = stream.splitn(4, '/').nth(3)?;
    let open = rest.find('[')?;
    let close = open + rest[open..].find(']')?;
    let owner = &rest[..open];
    if !owner.is_empty() && owner != function {
        return None;
    }
    let version = &rest[open + 1..close];
    (!version.is_empty()).then_some(version)
}

/// An observation from a judged comparison: the reason says what the inconclusive policy did.
fn judged(
    policy: Inconclusive,
    verdict: Verdict,
    reason: &str,
    latency_ms: u64,
    details: Value,
) -> Observation {
    let reason = match verdict {
        Verdict::Passed => None,
        Verdict::Failed => Some(reason.to_string()),
        Verdict::Inconclusive => Some(format!(
            "{}{reason} (inconclusive {})",
            if reason.starts_with("inconclusive") {
                ""
            } else {
                "inconclusive: "
            },
            policy_text(policy)
        )),
    };
    Observation {
        verdict,
        reason,
        latency_ms,
        details,
    }
}

fn policy_text(policy: Inconclusive) -> &'static str {
    match policy {
        Inconclusive::Pass => "passes by the check's policy",
        Inconclusive::Fail => "fails by the check's policy",
    }
}

fn inconclusive_without_baseline(policy: Inconclusive, why: &str, details: Value) -> Observation {
    judged(policy, Verdict::Inconclusive, why, 0, details)
}

/// One version's lines in a `logs` check's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogCounts {
    /// `REPORT` lines: one per invocation.
    pub invocations: u64,
    /// Invocations with at least one error line (by request id).
    pub error_lines: u64,
}

/// One CloudWatch Logs event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    pub timestamp: i64,
    pub stream: String,
    pub message: String,
}

/// Per version (from the stream names), the distinct request ids among `events`. Pure.
pub fn tally_by_version(
    events: &[LogEvent],
    function: &str,
) -> std::collections::HashMap<String, LogTally> {
    let mut counts: std::collections::HashMap<String, LogTally> = Default::default();
    let mut ids: std::collections::HashSet<(&str, &str)> = Default::default();
    for event in events {
        let Some(version) = stream_version(&event.stream, function) else {
            continue;
        };
        let tally = counts.entry(version.to_string()).or_default();
        match request_id(&event.message) {
            Some(id) => {
                if ids.insert((version, id)) {
                    tally.invocations += 1;
                }
            }
            None => {
                tally.invocations += 1;
                tally.without_request_id += 1;
            }
        }
        tally.lines += 1;
    }
    counts
}

/// `Duration: 12.34 ms` of a `REPORT` line.
pub fn report_duration_ms(line: &str) -> Option<f64> {
    let rest = line
        .split("\tDuration: ")
        .nth(1)
        .or_else(|| line.split(" Duration: ").nth(1))?;
    rest.split(" ms").next()?.trim().parse().ok()
}

/// What matched one pattern for one version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogTally {
    /// Distinct request ids (a line without one counts as its own).
    pub invocations: u64,
    pub lines: u64,
    pub without_request_id: u64,
}

/// The first UUID in a log line (Lambda's request id: `REPORT RequestId: 8f5…`,
/// `2026-… 8f5… ERROR …`, `{"requestId":"8f5…"}`).
pub fn request_id(line: &str) -> Option<&str> {
    let bytes = line.as_bytes();
    let shape = [8, 4, 4, 4, 12];
    let total = 36;
    (0..bytes.len().saturating_sub(total - 1)).find_map(|start| {
        let candidate = &bytes[start..start + total];
        let mut at = 0;
        for (i, len) in shape.iter().enumerate() {
            if !candidate[at..at + len].iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            at += len;
            if i < 4 {
                if candidate[at] != b'-' {
                    return None;
                }
                at += 1;
            }
        }
        let before_ok = start == 0 || !bytes[start - 1].is_ascii_hexdigit();
        let after_ok = start + total == bytes.len() || !bytes[start + total].is_ascii_hexdigit();
        (before_ok && after_ok).then(|| &line[start..start + total])
    })
}

/// The `logs` check's decision. Pure.
///
/// | evidence | verdict |
/// | --- | --- |
/// | new error lines above `maxLines` | fail |
/// | fewer than `minSamples` invocations of either version | inconclusive |
/// | lines per invocation above `maxRateMultiple` × old, significant | fail |
/// | above the multiple but not significant | inconclusive |
/// | otherwise | pass |
///
/// The old rate is floored at one line in its invocations (as the metrics check does), so that
/// one line against a clean baseline is not an infinite multiple of zero. Significance is Fisher's
/// exact test on invocations with an error line, each version's lines capped at its invocations
/// (a line count cannot tell two lines of one invocation from one line of two).
pub fn judge_logs(c: &LogsCheck, new: LogCounts, old: LogCounts) -> Comparison {
    let rate = |x: LogCounts| {
        if x.invocations == 0 {
            0.0
        } else {
            x.error_lines as f64 / x.invocations as f64
        }
    };
    let (new_rate, old_rate) = (rate(new), rate(old));
    let mut details = json!({
        "new": {"invocations": new.invocations, "errorLines": new.error_lines, "linesPerInvocation": new_rate},
        "old": {"invocations": old.invocations, "errorLines": old.error_lines, "linesPerInvocation": old_rate},
        "maxLines": c.max_lines,
        "maxRateMultiple": c.max_rate_multiple,
        "minSamples": c.min_samples,
        "confidence": c.confidence,
    });
    let verdict = |verdict, reason: String, details| Comparison {
        verdict,
        reason: Some(reason),
        details,
    };
    if let Some(max) = c.max_lines {
        if new.error_lines > max {
            return verdict(
                Verdict::Failed,
                format!(
                    "the new version wrote {} error lines, above maxLines {max}",
                    new.error_lines
                ),
                details,
            );
        }
    }
    if new.invocations < c.min_samples {
        return verdict(
            Verdict::Inconclusive,
            format!("inconclusive: {} invocations of the new version in the logs, fewer than minSamples {}", new.invocations, c.min_samples),
            details,
        );
    }
    if old.invocations < c.min_samples {
        return verdict(
            Verdict::Inconclusive,
            format!("inconclusive: no baseline, the old version has {} invocations in the logs, fewer than minSamples {}", old.invocations, c.min_samples),
            details,
        );
    }
    let floor = old_rate.max(1.0 / old.invocations as f64);
    let limit = c.max_rate_multiple * floor;
    let test = stats::error_rate_test(
        new.error_lines.min(new.invocations),
        new.invocations,
        old.error_lines.min(old.invocations),
        old.invocations,
    );
    let p = test.as_ref().map(|t| t.p_value).unwrap_or(1.0);
    details["pValue"] = json!(p);
    details["limitPerInvocation"] = json!(limit);
    let numbers = format!(
        "{:.4} error lines per invocation ({} in {}) vs {:.4} old ({} in {}), limit {:.4} = {}× the old rate",
        new_rate, new.error_lines, new.invocations, old_rate, old.error_lines, old.invocations, limit, c.max_rate_multiple
    );
    if new_rate <= limit {
        return Comparison {
            verdict: Verdict::Passed,
            reason: None,
            details,
        };
    }
    let alpha = 1.0 - c.confidence;
    if p < alpha {
        verdict(
            Verdict::Failed,
            format!("{numbers}; significant (Fisher p={p:.4} < {alpha:.4})"),
            details,
        )
    } else {
        verdict(
            Verdict::Inconclusive,
            format!("inconclusive: {numbers}, but not significant (Fisher p={p:.4}, needs < {alpha:.4})"),
            details,
        )
    }
}

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
    fn report_lines_give_the_duration() {
        assert_eq!(
            report_duration_ms("REPORT RequestId: 8f5a3b2c-1d4e-4f60-9a7b-0c1d2e3f4a5b\tDuration: 12.34 ms\tBilled Duration: 13 ms"),
            Some(12.34)
        );
        assert_eq!(report_duration_ms("START RequestId: x"), None);
    }

    #[test]
    fn request_ids_are_found_in_lambdas_line_shapes() {
        let id = "8f5a3b2c-1d4e-4f60-9a7b-0c1d2e3f4a5b";
        for line in [
            format!("REPORT RequestId: {id}\tDuration: 2.50 ms"),
            format!("2026-12-04T10:00:00.000Z\t{id}\tERROR\tboom"),
            format!("{{\"requestId\":\"{id}\",\"level\":\"ERROR\"}}"),
            format!("{id} Task timed out after 3.00 seconds"),
        ] {
            assert_eq!(request_id(&line), Some(id), "{line}");
        }
        assert_eq!(request_id("ERROR no id here"), None);
        assert_eq!(request_id("a8f5a3b2c-1d4e-4f60-9a7b-0c1d2e3f4a5b"), None);
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

    fn logs_check(fields: &str) -> LogsCheck {
        crate::config::parse_checks(&format!(
            r#"{{"checks":[{{"name":"l","kind":"logs"{fields}}}]}}"#
        ))
        .map(|s| match &s.checks[0].kind {
            CheckKind::Logs(l) => l.clone(),
            _ => unreachable!(),
        })
        .unwrap()
    }

    fn lines(invocations: u64, error_lines: u64) -> LogCounts {
        LogCounts {
            invocations,
            error_lines,
        }
    }

    #[test]
    fn logs_verdicts() {
        let c = logs_check("");
        assert_eq!(c.pattern, crate::config::DEFAULT_LOG_PATTERN);
        // (name, check, new, old, verdict)
        let limited = logs_check(r#","maxLines":3"#);
        let cases = [
            (
                "clean against clean",
                &c,
                lines(100, 0),
                lines(900, 0),
                Verdict::Passed,
            ),
            (
                "same rate",
                &c,
                lines(100, 2),
                lines(900, 18),
                Verdict::Passed,
            ),
            (
                "one line against a clean baseline: large, not significant",
                &c,
                lines(100, 1),
                lines(900, 0),
                Verdict::Inconclusive,
            ),
            (
                "one line against a baseline of 1%",
                &c,
                lines(100, 1),
                lines(900, 9),
                Verdict::Passed,
            ),
            (
                "every invocation errs",
                &c,
                lines(100, 100),
                lines(900, 9),
                Verdict::Failed,
            ),
            (
                "10x the old rate, significant",
                &c,
                lines(200, 40),
                lines(900, 18),
                Verdict::Failed,
            ),
            (
                "above 2x but a handful: not significant",
                &c,
                lines(20, 2),
                lines(100, 1),
                Verdict::Inconclusive,
            ),
            (
                "too few new invocations",
                &c,
                lines(5, 5),
                lines(900, 0),
                Verdict::Inconclusive,
            ),
            (
                "no baseline",
                &c,
                lines(100, 0),
                lines(3, 0),
                Verdict::Inconclusive,
            ),
            (
                "the absolute limit fails even without a baseline",
                &limited,
                lines(100, 4),
                lines(0, 0),
                Verdict::Failed,
            ),
            (
                "within the absolute limit",
                &limited,
                lines(100, 3),
                lines(900, 27),
                Verdict::Passed,
            ),
        ];
        for (name, check, new, old, want) in cases {
            let got = judge_logs(check, new, old);
            assert_eq!(
                got.verdict, want,
                "{name}: {:?} {}",
                got.reason, got.details
            );
        }
    }

    #[test]
    fn log_streams_name_their_version() {
        let v = |s| stream_version(s, "checkout");
        assert_eq!(v("2026/11/22/[7]0123abcdef"), Some("7"));
        assert_eq!(v("2026/11/22/[$LATEST]0123"), Some("$LATEST"));
        assert_eq!(
            v("2026/11/22/checkout[7]0123"),
            Some("7"),
            "a custom log group"
        );
        assert_eq!(
            v("2026/11/22/payments[7]0123"),
            None,
            "another function's stream"
        );
        assert_eq!(v("custom-stream"), None);
        assert_eq!(v("2026/11/22/[]x"), None);
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

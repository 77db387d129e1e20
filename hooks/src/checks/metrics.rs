//! `metrics`: CloudWatch series of both versions (through the alias, or version-qualified), against absolute and relative limits; the per-version metric queries `compare` shares.

use super::*;
use crate::config::limits::{default_min_samples, default_multiple, default_window};
use shiftguard_common::duration::serde_text as duration_text;

// ---- settings and validation ----

/// New version against old over the shift window, from CloudWatch by `ExecutedVersion`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricsCheck {
    /// How far back to look, e.g. `15m`.
    #[serde(default = "default_window", with = "duration_text")]
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "crate::config::limits::window_schema")
    )]
    pub window: Duration,
    /// Fail when the new version's error rate is above this (0.0–1.0).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0, max = 1.0)))]
    pub max_error_rate: Option<f64>,
    /// Fail when the new error rate is above this multiple of the old one.
    #[serde(default = "default_multiple")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1.0)))]
    pub max_error_rate_multiple: f64,
    /// Fail when the new version's p99 duration is above this multiple of the old one.
    #[serde(default)]
    pub max_p99_multiple: Option<f64>,
    /// Below this many invocations of the new version the verdict is inconclusive.
    #[serde(default = "default_min_samples")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub min_samples: u64,
    /// What an inconclusive verdict means.
    #[serde(default)]
    pub inconclusive: Inconclusive,
}

// ---- execution ----

impl AwsExecutor {
    /// One version's metric: through the alias (`Resource` = function:alias, `ExecutedVersion`),
    /// or — a target without an alias, such as a Lattice rollout whose target groups invoke
    /// versions directly — what Lambda publishes for version-qualified invocations
    /// (`Resource` = function:version).
    pub(crate) fn version_query(
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
    pub(crate) async fn metric_series(
        &self,
        queries: Vec<MetricDataQuery>,
        window: Duration,
    ) -> Result<std::collections::HashMap<String, Vec<f64>>, (Verdict, String)> {
        Ok(self
            .metric_points(queries, window)
            .await?
            .into_iter()
            .map(|(id, points)| (id, points.into_iter().map(|(_, v)| v).collect()))
            .collect())
    }

    /// [`AwsExecutor::metric_series`] with each value's period (epoch seconds).
    pub(crate) async fn metric_points(
        &self,
        queries: Vec<MetricDataQuery>,
        window: Duration,
    ) -> Result<std::collections::HashMap<String, Vec<(i64, f64)>>, (Verdict, String)> {
        let now_s = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let end = UNIX_EPOCH + Duration::from_secs(now_s - now_s % 60 + 60);
        let start = end - window - Duration::from_secs(60);
        // GetMetricData pages with NextToken, results marked PartialData until the last one.
        let mut pages = self
            .clients
            .cloudwatch()
            .get_metric_data()
            .set_metric_data_queries(Some(queries))
            .start_time(start.into())
            .end_time(end.into())
            .into_paginator()
            .send();
        let mut values: std::collections::HashMap<String, Vec<(i64, f64)>> = Default::default();
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
                // Timestamps[x] is Values[x].
                values.entry(id.clone()).or_default().extend(
                    r.timestamps()
                        .iter()
                        .map(|t| t.secs())
                        .zip(r.values().iter().copied()),
                );
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

    pub(crate) async fn metrics(&self, c: &MetricsCheck) -> Observation {
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
}

/// The absolute error-rate limit a metrics check applies when the old version gives no baseline
/// and `maxErrorRate` is not set (hooks/README.md#checks: "No baseline is not a pass").
pub const NO_BASELINE_MAX_ERROR_RATE: f64 = 0.05;

/// Invocation counts of one version over the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub invocations: f64,
    pub errors: f64,
    pub throttles: f64,
    pub p99_ms: Option<f64>,
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

/// The periods both versions have a latency value in: only those are compared, and only their
/// counts summed (issue 21 [5]: the old version's periods before the deployment are not its
/// baseline). Returns (new latencies, old latencies, the paired periods). Pure.
pub fn paired_periods(
    new: &[(i64, f64)],
    old: &[(i64, f64)],
) -> (Vec<f64>, Vec<f64>, std::collections::BTreeSet<i64>) {
    let old_at: std::collections::BTreeMap<i64, f64> = old.iter().copied().collect();
    let mut minutes = std::collections::BTreeSet::new();
    let (mut n, mut o) = (Vec::new(), Vec::new());
    for &(t, v) in new {
        if let Some(&w) = old_at.get(&t) {
            if minutes.insert(t) {
                n.push(v);
                o.push(w);
            }
        }
    }
    (n, o, minutes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_periods_both_versions_have_are_compared() {
        // The old version's periods before the deployment (60, 120) have no new counterpart.
        let old = [(60, 10.0), (120, 11.0), (180, 12.0), (240, 13.0)];
        let new = [(180, 20.0), (240, 21.0), (300, 22.0)];
        let (n, o, minutes) = paired_periods(&new, &old);
        assert_eq!(n, [20.0, 21.0]);
        assert_eq!(o, [12.0, 13.0]);
        assert_eq!(minutes.into_iter().collect::<Vec<_>>(), [180, 240]);
    }
}

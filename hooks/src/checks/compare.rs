//! `compare`: the new version against the old with the judge (`crate::stats`) — pre-traffic an interleaved load, post-traffic Lambda's REPORT lines (or CloudWatch periods).

use super::*;
use crate::config::limits::{default_min_samples, validate_confidence, validate_window};
use shiftguard_common::duration::serde_text as duration_text;

/// The observation of a judged comparison that started at `started`.
fn judged_by(
    policy: Inconclusive,
    judgement: &judge::Judgement,
    started: Instant,
    details: Value,
) -> Observation {
    judged(
        policy,
        judgement.verdict,
        &judgement.reason,
        ms(started.elapsed()),
        details,
    )
}

// ---- settings and validation ----

/// The new version against the old, judged with statistics ([`crate::judge::judge`]).
/// Pre-traffic: the same load sent to both versions, interleaved; post-traffic: CloudWatch series
/// of both versions (`ExecutedVersion`) over the window, one latency value per period.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompareCheck {
    /// Pre-traffic: requests sent to EACH version (so twice this many invocations).
    #[serde(default = "default_compare_requests")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 5000)))]
    pub requests: usize,
    /// Pre-traffic: requests in flight at once (both versions together).
    #[serde(default = "default_compare_concurrency")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 64)))]
    pub concurrency: usize,
    /// Pre-traffic: the invocation payload, and what a successful answer looks like (a request
    /// that does not meet `expect` counts as an error).
    #[serde(default)]
    pub payload: serde_json::Value,
    #[serde(default)]
    pub expect: Expect,
    /// Post-traffic: how far back to look.
    #[serde(default = "default_compare_window", with = "duration_text")]
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "crate::config::limits::window_schema")
    )]
    pub window: Duration,
    /// Post-traffic: the per-period latency statistic compared (`Average`, `p50`, `p90`, `p99`…).
    #[serde(default = "default_statistic")]
    #[cfg_attr(
        feature = "schema",
        schemars(regex(pattern = r"^(Average|Minimum|Maximum|p[0-9]+(\.[0-9]+)?)$"))
    )]
    pub statistic: String,
    /// Post-traffic: where the samples come from — `reports`: Lambda's per-invocation `REPORT`
    /// lines in `/aws/lambda/<function>`; `periods`: CloudWatch's one value per minute; `auto`
    /// (default): reports when the new version has any in the window, else periods.
    #[serde(default)]
    pub source: CompareSource,
    #[serde(default = "default_confidence")]
    #[cfg_attr(feature = "schema", schemars(range(min = 0.5), extend("exclusiveMaximum" = 1.0)))]
    pub confidence: f64,
    /// How much slower the new version may be (0.2: 20%): the median shift and the tail.
    #[serde(default = "default_latency_tolerance")]
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0, max = 100.0)))]
    pub latency_tolerance: f64,
    /// *a*: fails when the error rate's increase is shown above `(1 + r)·old + a` (0.0005).
    #[serde(default = "default_error_rate_tolerance")]
    #[cfg_attr(feature = "schema", schemars(range(min = 0.0), extend("exclusiveMaximum" = 1.0)))]
    pub error_rate_tolerance: f64,
    /// *r*: the relative part of the error limits (0.2).
    #[serde(default = "default_error_rate_relative_tolerance")]
    pub error_rate_relative_tolerance: f64,
    /// *m*: passes only when an increase beyond `(1 + r)·old + m` is excluded (0.01).
    #[serde(default = "default_error_rate_pass_margin")]
    pub error_rate_pass_margin: f64,
    /// The tail judged besides the median, pre-traffic (default 0.95: p95); `null`: not judged.
    #[serde(default = "default_tail_quantile")]
    pub tail_quantile: Option<f64>,
    /// With a broken baseline (the old version answered nothing): the error-rate limit (0.05).
    #[serde(default = "default_max_error_rate")]
    pub max_error_rate: f64,
    /// With a broken baseline: the tail latency limit, ms (none: latency not judged then).
    #[serde(default)]
    pub max_latency_ms: Option<f64>,
    /// Fewer latency samples (requests pre-traffic, periods post-traffic) or requests than this
    /// on either side is inconclusive.
    #[serde(default = "default_min_samples")]
    #[cfg_attr(feature = "schema", schemars(range(min = 2)))]
    pub min_samples: u64,
    #[serde(default)]
    pub inconclusive: Inconclusive,
}

/// Post-traffic `compare`'s samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum CompareSource {
    #[default]
    Auto,
    Reports,
    Periods,
}

impl CompareCheck {
    pub fn thresholds(&self) -> crate::judge::Thresholds {
        crate::judge::Thresholds {
            confidence: self.confidence,
            latency_tolerance: self.latency_tolerance,
            error_rate_tolerance: self.error_rate_tolerance,
            error_rate_relative_tolerance: self.error_rate_relative_tolerance,
            error_rate_pass_margin: self.error_rate_pass_margin,
            tail_quantile: self.tail_quantile,
            max_error_rate: self.max_error_rate,
            max_latency_ms: self.max_latency_ms,
            min_samples: self.min_samples,
        }
    }
}

/// Enough for a comparison with the default limits to pass at all (`Thresholds::
/// min_requests_to_pass`: 536 for the errors' pass margin, 139 for the p95 tail; 699 for p99).
pub(crate) fn default_compare_requests() -> usize {
    1000
}
pub(crate) fn default_compare_concurrency() -> usize {
    10
}
pub(crate) fn default_compare_window() -> Duration {
    Duration::from_secs(30 * 60)
}
pub(crate) fn default_statistic() -> String {
    "p50".into()
}
pub(crate) fn default_confidence() -> f64 {
    0.98
}
pub(crate) fn default_latency_tolerance() -> f64 {
    0.2
}
pub(crate) fn default_error_rate_tolerance() -> f64 {
    0.0005
}
pub(crate) fn default_error_rate_relative_tolerance() -> f64 {
    0.2
}
pub(crate) fn default_error_rate_pass_margin() -> f64 {
    0.01
}
pub(crate) fn default_tail_quantile() -> Option<f64> {
    crate::judge::Thresholds::default().tail_quantile
}
pub(crate) fn default_max_error_rate() -> f64 {
    0.05
}

/// The per-period statistics GetMetricData takes that make sense for a latency.
pub(crate) const LATENCY_STATISTICS: &[&str] = &["Average", "Minimum", "Maximum"];

pub(crate) fn validate_compare(c: &CompareCheck) -> Result<(), String> {
    if c.requests == 0 || c.requests > 5_000 {
        return Err(format!(
            "requests: expected 1 to 5000 per version, got {}",
            c.requests
        ));
    }
    if c.concurrency == 0 || c.concurrency > 64 {
        return Err(format!(
            "concurrency: expected 1 to 64, got {}",
            c.concurrency
        ));
    }
    validate_expect(&c.expect).map_err(|p| format!("expect.{p}"))?;
    validate_window(c.window)?;
    // pNN or pNN.N…: digits with an optional fraction, as CloudWatch writes percentiles.
    let percentile = c.statistic.strip_prefix('p').is_some_and(|p| {
        let (whole, fraction) = p.split_once('.').unwrap_or((p, "0"));
        !whole.is_empty()
            && !fraction.is_empty()
            && whole
                .bytes()
                .chain(fraction.bytes())
                .all(|b| b.is_ascii_digit())
            && p.parse::<f64>().is_ok_and(|v| v > 0.0 && v < 100.0)
    });
    if !percentile && !LATENCY_STATISTICS.contains(&c.statistic.as_str()) {
        return Err(format!(
            "statistic: expected Average, Minimum, Maximum or a percentile such as p50 or p99, got {:?}",
            c.statistic
        ));
    }
    validate_confidence(c.confidence)?;
    if !(c.latency_tolerance >= 0.0 && c.latency_tolerance <= 100.0) {
        return Err(format!(
            "latencyTolerance: expected a fraction from 0.0 (0.2 is 20% slower), got {}",
            c.latency_tolerance
        ));
    }
    if !(c.error_rate_tolerance >= 0.0 && c.error_rate_tolerance < 1.0) {
        return Err(format!("errorRateTolerance: expected 0.0 to below 1.0 (absolute: 0.01 is one percentage point), got {}", c.error_rate_tolerance));
    }
    if c.min_samples < 2 {
        return Err(format!(
            "minSamples: expected at least 2 (a comparison needs data on both sides), got {}",
            c.min_samples
        ));
    }
    c.thresholds().validate().map_err(|e| e.to_string())
}

// ---- execution ----

impl AwsExecutor {
    /// Pre-traffic `compare`: the same requests to the old and the new version, interleaved (one
    /// to each in turn, alternating which goes first, so that both see the same conditions), then
    /// judged with [`judge::judge`]. Latency is the client's round trip of each successful request.
    pub(crate) async fn compare_load(&self, c: &CompareCheck) -> Observation {
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
        let judgement = judge::judge(
            &judge::Side {
                latencies_ms: &new_latencies,
                requests: new_requests,
                errors: new_errors,
            },
            &judge::Side {
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
        judged_by(c.inconclusive, &judgement, started, details)
    }

    /// Post-traffic `compare`: CloudWatch's per-period series of both versions through the alias
    /// (`ExecutedVersion`), one latency value (the configured statistic) per minute, and the
    /// invocation and error counts over the window.
    pub(crate) async fn compare_series(&self, c: &CompareCheck) -> Observation {
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
            CompareSource::Periods => "source: periods".to_string(),
            source => match self.compare_reports(c, &new, old, started).await {
                Ok(observation) => return observation,
                Err(why) if source == CompareSource::Reports => {
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
        let values = match self.metric_points(queries, c.window).await {
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
        // Paired minutes only: both versions over the same periods.
        let (new_latencies, old_latencies, minutes) =
            paired_periods(&series("new_latency"), &series("old_latency"));
        let count = |id: &str| {
            series(id)
                .iter()
                .filter(|(t, _)| minutes.contains(t))
                .map(|(_, v)| v)
                .sum::<f64>()
                .max(0.0)
                .round() as u64
        };
        // One value per period, not per request: no tail to judge from them.
        let thresholds = judge::Thresholds {
            tail_quantile: None,
            ..c.thresholds()
        };
        let judgement = judge::judge(
            &judge::Side {
                latencies_ms: &new_latencies,
                requests: count("new_invocations"),
                errors: count("new_errors"),
            },
            &judge::Side {
                latencies_ms: &old_latencies,
                requests: count("old_invocations"),
                errors: count("old_errors"),
            },
            &thresholds,
        );
        let details = json!({
            "mode": "cloudwatch-periods",
            "reportsUnavailable": fallback,
            "pairedPeriods": minutes.len(),
            "newVersion": new,
            "oldVersion": old,
            "window": format!("{}s", c.window.as_secs()),
            "statistic": c.statistic,
            "periodSeconds": 60,
            "judgement": judgement,
        });
        judged_by(c.inconclusive, &judgement, started, details)
    }

    /// Post-traffic `compare` from Lambda's own per-invocation records: the `REPORT` lines of the
    /// function's log group over the window (Duration to 0.01 ms, one per invocation), split by
    /// version from the log stream names, and the error lines counted by request id — both
    /// versions over the same minutes: from the minute of the new version's first invocation, so
    /// that the old version's hours before the deployment do not stand in for its baseline. `Err`
    /// (why) when there are no such records (no log group, no REPORT line of the new version, a
    /// failed read): the caller falls back to CloudWatch periods.
    pub(crate) async fn compare_reports(
        &self,
        c: &CompareCheck,
        new: &str,
        old: &str,
        started: Instant,
    ) -> Result<Observation, String> {
        let function = shiftguard_common::codedeploy::function_name(&self.target.function);
        let group = format!("/aws/lambda/{function}");
        let (start_ms, now_ms) = window_ms(c.window);
        let (reports, errors) = tokio::join!(
            self.log_events(
                &group,
                super::logs::DEFAULT_INVOCATION_PATTERN,
                start_ms,
                now_ms
            ),
            self.log_events(&group, super::logs::DEFAULT_LOG_PATTERN, start_ms, now_ms),
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
        let errors = since(errors);
        let failed = tally_by_version(&errors, function);
        // Latency samples are successful invocations only, as pre-traffic's are: a failed
        // invocation's duration is no baseline (and a production that fails everything is then a
        // broken baseline, judged as one).
        let failed_ids: std::collections::HashSet<&str> = errors
            .iter()
            .filter_map(|e| request_id(&e.message))
            .collect();
        let durations = |events: &[LogEvent]| -> Vec<f64> {
            events
                .iter()
                .filter(|e| request_id(&e.message).is_none_or(|id| !failed_ids.contains(id)))
                .filter_map(|e| report_duration_ms(&e.message))
                .collect()
        };
        let invocations = |events: &[LogEvent], version: &str| {
            tally_by_version(events, function)
                .get(version)
                .map_or(0, |t| t.invocations)
        };
        let (new_latencies, old_latencies) = (durations(&new_reports), durations(&old_reports));
        let judgement = judge::judge(
            &judge::Side {
                latencies_ms: &new_latencies,
                requests: invocations(&new_reports, new),
                errors: failed.get(new).map_or(0, |t| t.invocations),
            },
            &judge::Side {
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
        Ok(judged_by(c.inconclusive, &judgement, started, details))
    }
}

//! `logs`: error lines and invocations per version from CloudWatch Logs (by request id), and the log reading `compare` shares.

use super::compare::default_confidence;
use super::*;
use crate::config::limits::{default_min_samples, default_multiple, default_window};
use shiftguard_common::duration::serde_text as duration_text;

// ---- settings and validation ----

/// Error lines of the new version against the old in CloudWatch Logs, per invocation.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogsCheck {
    /// A CloudWatch Logs filter pattern for an error line.
    #[serde(default = "default_log_pattern")]
    #[cfg_attr(
        feature = "schema",
        schemars(length(max = 1024), regex(pattern = r"\S"))
    )]
    pub pattern: String,
    /// A filter pattern for the one line Lambda writes per invocation, to count invocations.
    /// Default `"REPORT RequestId"` (text log format); with Lambda's JSON log format use
    /// `{ $.type = "platform.report" }`.
    #[serde(default = "default_invocation_pattern")]
    #[cfg_attr(
        feature = "schema",
        schemars(length(max = 1024), regex(pattern = r"\S"))
    )]
    pub invocation_pattern: String,
    /// Default `/aws/lambda/<function>`.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 512)))]
    pub log_group: Option<String>,
    #[serde(default = "default_window", with = "duration_text")]
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "crate::config::limits::window_schema")
    )]
    pub window: Duration,
    /// Fail when the new version wrote more error lines than this in the window.
    #[serde(default)]
    pub max_lines: Option<u64>,
    /// Fail when the new version's error lines per invocation are above this multiple of the
    /// old version's (and the difference is significant).
    #[serde(default = "default_multiple")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1.0)))]
    pub max_rate_multiple: f64,
    /// Below this many invocations of either version (counted from `REPORT` lines) the
    /// comparison is inconclusive.
    #[serde(default = "default_min_samples")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1)))]
    pub min_samples: u64,
    #[serde(default = "default_confidence")]
    #[cfg_attr(feature = "schema", schemars(range(min = 0.5), extend("exclusiveMaximum" = 1.0)))]
    pub confidence: f64,
    #[serde(default)]
    pub inconclusive: Inconclusive,
}

/// Errors and timeouts as Lambda's runtimes write them.
pub const DEFAULT_LOG_PATTERN: &str = "?ERROR ?Error ?\"Task timed out\"";

/// Lambda's per-invocation `REPORT` line in the text log format.
pub const DEFAULT_INVOCATION_PATTERN: &str = "\"REPORT RequestId\"";

pub(crate) fn default_invocation_pattern() -> String {
    DEFAULT_INVOCATION_PATTERN.into()
}

pub(crate) fn default_log_pattern() -> String {
    DEFAULT_LOG_PATTERN.into()
}

// ---- execution ----

impl AwsExecutor {
    /// `logs`: error lines per invocation of the new version against the old, from CloudWatch
    /// Logs. Lambda names each log stream `YYYY/MM/DD/[VERSION]id`, which tells the versions
    /// apart; invocations are counted from the line Lambda writes for each (`invocationPattern`,
    /// `REPORT RequestId` by default).
    pub(crate) async fn logs(&self, c: &LogsCheck) -> Observation {
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
        let (start_ms, now_ms) = window_ms(c.window);
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

    /// Every event matching `pattern` in the window: pages fetched by hand, so that a throttled
    /// page is retried with backoff until the check's own timeout stops it (CloudWatch Logs
    /// throttles FilterLogEvents per account). More than [`MAX_LOG_EVENTS`]: inconclusive.
    pub(crate) async fn log_events(
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
                .logs()
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
    pub(crate) async fn count_log_lines(
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
}

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

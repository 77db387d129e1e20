//! One attempt of each kind of check, against the version under deployment.
//!
//! One file per kind's execution and judgement (`invoke.rs`: invoke, http, burst; `metrics.rs`;
//! `compare.rs`; `logs.rs`; `artifact.rs`), each an `impl AwsExecutor` block; this file holds the
//! observation types, the dispatch ([`AwsExecutor::run`]) and the inconclusive-policy wording.
//! Each kind's settings and validation live in its file too; `config` only names the kinds
//! (`CheckKind`) and calls each kind's validation. Adding a kind: tests/README.md, "Adding a check
//! kind", lists every file it touches.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, StatusCode};
use aws_sdk_lambda::primitives::Blob;
use futures::StreamExt;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use shiftguard_common::error_text;

use crate::config::limits::Inconclusive;
use crate::discovery::DeploymentTarget;
use crate::{judge, stats};
use crate::{Clients, Phase};

pub(crate) mod artifact;
pub(crate) mod compare;
mod dispatch;
pub(crate) mod invoke;
pub(crate) mod logs;
pub(crate) mod metrics;

pub use artifact::*;
pub use compare::*;
pub use dispatch::Executor;
pub use invoke::*;
pub use logs::*;
pub use metrics::*;

/// What one attempt of a check saw.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    pub verdict: Verdict,
    pub reason: Option<String>,
    pub latency_ms: u64,
    pub details: Value,
}

pub use crate::verdict::Verdict;

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

/// The executor that talks to AWS and to HTTP endpoints.
#[derive(Clone)]
pub struct AwsExecutor {
    pub clients: Clients,
    pub http: crate::HttpClient,
    pub target: DeploymentTarget,
    pub phase: Phase,
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

/// (start, end) in epoch ms of a look-back `window` ending now (CloudWatch Logs' time range).
fn window_ms(window: Duration) -> (i64, i64) {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    (now_ms - window.as_millis() as i64, now_ms)
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

pub struct Comparison {
    pub verdict: Verdict,
    pub reason: Option<String>,
    pub details: Value,
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
    use crate::config::CheckKind;

    /// One check of `kind` with the configuration's extra `fields` (`,"name":value…`), parsed.
    fn parsed(kind: &str, fields: &str) -> CheckKind {
        let json = format!(r#"{{"checks":[{{"name":"c","kind":"{kind}"{fields}}}]}}"#);
        crate::config::parse_checks(&json).unwrap().checks[0]
            .kind
            .clone()
    }

    fn metrics_from(fields: &str) -> MetricsCheck {
        match parsed("metrics", fields) {
            CheckKind::Metrics(m) => m,
            other => panic!("not a metrics check: {other:?}"),
        }
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
        // No maxErrorRate: without a baseline a version that only errors still fails; a clean one
        // is inconclusive, never a pass.
        let no_limit = metrics_from("");
        #[rustfmt::skip]
        let cases = [
            ("same rate as the baseline", &c, s(100.0, 1.0), s(900.0, 9.0), Verdict::Passed),
            ("3% is more than 2x 1%", &c, s(100.0, 3.0), s(900.0, 9.0), Verdict::Failed),
            ("above the absolute limit", &c, s(100.0, 6.0), s(0.0, 0.0), Verdict::Failed),
            ("only errors, no baseline", &no_limit, s(100.0, 100.0), s(0.0, 0.0), Verdict::Failed),
            ("clean, no baseline", &no_limit, s(100.0, 0.0), s(0.0, 0.0), Verdict::Inconclusive),
            ("5 old invocations are no baseline", &no_limit, s(100.0, 0.0), s(5.0, 0.0), Verdict::Inconclusive),
            ("3% is more than 2x 1% (no limit)", &no_limit, s(100.0, 3.0), s(100.0, 1.0), Verdict::Failed),
            ("5 new invocations are too few", &c, s(5.0, 5.0), s(900.0, 0.0), Verdict::Inconclusive),
            ("clean against clean", &c, s(100.0, 0.0), s(200.0, 0.0), Verdict::Passed),
            ("one error against a clean baseline of 200 is within 2x", &c, s(200.0, 1.0), s(200.0, 0.0), Verdict::Passed),
        ];
        for (why, check, new, old, want) in cases {
            assert_eq!(compare(check, new, old).verdict, want, "{why}");
        }
    }

    fn logs_check(fields: &str) -> LogsCheck {
        match parsed("logs", fields) {
            CheckKind::Logs(l) => l,
            other => panic!("not a logs check: {other:?}"),
        }
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

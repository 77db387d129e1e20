//! [`judge`]: the decision a comparison of the new version with the old one comes to — pass, fail
//! or inconclusive — from intervals at a confidence held against tolerances (issue 21; the design,
//! the defaults and why: `hooks/JUDGE.md`). Pure: numbers in, a judgement with every number that
//! decided it out. The statistics it stands on are in [`crate::stats`] and [`crate::intervals`].

use serde::Serialize;

use crate::stats::*;
use crate::verdict::Verdict;

/// What decides a verdict (issue 21; the design, the defaults and why: `hooks/JUDGE.md`). Every
/// part of a judgement is an interval at `confidence` held against a limit: **fail** when its
/// lower end is beyond the limit, **pass** when its upper end is within it, **inconclusive**
/// otherwise (fail first).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Thresholds {
    /// The two-sided level of every interval (0.98: Kayenta's).
    pub confidence: f64,
    /// The new version may be this much slower (0.2: 20%): the median shift against
    /// `latency_tolerance × old median`, and the tail (new q-quantile ≤ (1 + tolerance) × old).
    pub latency_tolerance: f64,
    /// *a*: the error rate fails when the increase is shown to exceed `(1 + r)·old + a`.
    pub error_rate_tolerance: f64,
    /// *r*: the relative part of the error limits (0.2, as the latency tolerance).
    pub error_rate_relative_tolerance: f64,
    /// *m*: the error rate passes only when an increase beyond `(1 + r)·old + m` is excluded.
    /// Two limits because one cannot both fail 10 errors in 2,000 against none and pass one
    /// (`hooks/JUDGE.md` §2): the two levels of acceptance sampling.
    pub error_rate_pass_margin: f64,
    /// The tail judged besides the median (default 0.95: p95; 0.99 with ~2,000 requests a side);
    /// `None`: not judged
    /// (post-traffic CloudWatch periods carry no per-request latencies).
    pub tail_quantile: Option<f64>,
    /// With a broken baseline (the old version answered nothing successfully): the new version
    /// fails when its error rate is shown to exceed this.
    pub max_error_rate: f64,
    /// With a broken baseline: the new version fails when its tail (`tail_quantile`, else p99) is
    /// shown to exceed this many ms. `None`: latency is not judged then.
    pub max_latency_ms: Option<f64>,
    /// Fewer latency samples, or fewer requests, than this on either side is inconclusive.
    pub min_samples: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            confidence: 0.98,
            latency_tolerance: 0.2,
            error_rate_tolerance: 0.0005,
            error_rate_relative_tolerance: 0.2,
            error_rate_pass_margin: 0.01,
            // p95, not p99: with the default 1,000 requests a side, equal versions pass p95 all
            // but always (lognormal σ 0.3: 100%, σ 0.6: 69%) where p99 passes 52% / 12% of the
            // time; p99 needs ~2,000 a side (hooks/JUDGE.md §3). Set 0.99 with the requests for it.
            tail_quantile: Some(0.95),
            max_error_rate: 0.05,
            max_latency_ms: None,
            min_samples: 20,
        }
    }
}

impl Thresholds {
    /// For the configuration to call once at start-up; [`judge`] assumes valid thresholds.
    pub fn validate(&self) -> Result<(), StatsError> {
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return Err(StatsError::BadThreshold(
                "confidence must be between 0 and 1",
            ));
        }
        if !(self.latency_tolerance >= 0.0 && self.latency_tolerance.is_finite()) {
            return Err(StatsError::BadThreshold(
                "the latency tolerance must be a fraction of at least 0",
            ));
        }
        if !(0.0..1.0).contains(&self.error_rate_tolerance)
            || !(0.0..1.0).contains(&self.error_rate_pass_margin)
            || self.error_rate_tolerance > self.error_rate_pass_margin
        {
            return Err(StatsError::BadThreshold(
                "the error-rate tolerance and pass margin must be at least 0, below 1, tolerance ≤ margin",
            ));
        }
        if !(self.error_rate_relative_tolerance >= 0.0
            && self.error_rate_relative_tolerance.is_finite())
        {
            return Err(StatsError::BadThreshold(
                "the relative error-rate tolerance must be at least 0",
            ));
        }
        if let Some(q) = self.tail_quantile {
            if !(0.5..1.0).contains(&q) {
                return Err(StatsError::BadThreshold(
                    "the tail quantile must be at least 0.5 and below 1",
                ));
            }
        }
        if !(0.0..1.0).contains(&self.max_error_rate) {
            return Err(StatsError::BadThreshold(
                "maxErrorRate must be at least 0 and below 1",
            ));
        }
        if self
            .max_latency_ms
            .is_some_and(|v| !(v > 0.0 && v.is_finite()))
        {
            return Err(StatsError::BadThreshold("maxLatencyMs must be above 0"));
        }
        if self.min_samples < 2 {
            return Err(StatsError::BadThreshold("minSamples must be at least 2"));
        }
        Ok(())
    }

    /// α = 1 − confidence.
    pub fn alpha(&self) -> f64 {
        1.0 - self.confidence
    }

    fn z(&self) -> f64 {
        crate::intervals::normal_quantile(1.0 - self.alpha() / 2.0)
    }

    /// The fewest requests per side with which a comparison can pass at all (no errors on
    /// either side and the tail judged): below it every verdict is at best inconclusive.
    pub fn min_requests_to_pass(&self) -> u64 {
        let can_pass = |n: u64| {
            let (_, _, upper) = crate::intervals::mover_difference(
                (0, n),
                (0, n),
                1.0 + self.error_rate_relative_tolerance,
                self.z(),
            );
            let errors = upper <= self.error_rate_pass_margin;
            let tail = self.tail_quantile.is_none_or(|q| {
                let needed = (q / (1.0 - q)).ceil() as u64;
                n >= needed && {
                    // P(K = 0) = B(α, n + β)/B(α, β): one term, not the whole distribution.
                    let r = tail_rank(q, n);
                    let (a, b, nf) = ((n - r + 1) as f64, r as f64, n as f64);
                    let ln_beta =
                        |x: f64, y: f64| libm::lgamma(x) + libm::lgamma(y) - libm::lgamma(x + y);
                    (ln_beta(a, nf + b) - ln_beta(a, b)).exp() < self.alpha() / 2.0
                }
            });
            errors && tail && n >= self.min_samples
        };
        let (mut lo, mut hi) = (1u64, 1u64 << 20);
        if !can_pass(hi) {
            return u64::MAX;
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if can_pass(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        hi
    }
}

/// The rank of the old q-quantile among n0 old values (Weibull plotting position, 1-based).
fn tail_rank(q: f64, n0: u64) -> u64 {
    ((q * (n0 as f64 + 1.0)) - 1e-9).ceil().max(1.0) as u64
}

/// What one version showed: latency samples (ms) and request/error counts.
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    pub latencies_ms: &'a [f64],
    pub requests: u64,
    pub errors: u64,
}

/// The latency half of a [`Judgement`], every number that decided it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencyJudgement {
    pub verdict: Verdict,
    pub reason: String,
    pub new_samples: usize,
    pub old_samples: usize,
    pub new_median_ms: Option<f64>,
    pub old_median_ms: Option<f64>,
    /// New median / old median (reported; the interval decides).
    pub ratio_of_medians: Option<f64>,
    /// Hodges–Lehmann shift, new − old: positive when the new version is slower.
    pub shift_ms: Option<f64>,
    /// `shift_ms / old_median_ms`.
    pub relative_shift: Option<f64>,
    /// The shift's interval at the configured confidence, ms (absent: unbounded, too few samples).
    pub shift_ci_ms: Option<[f64; 2]>,
    /// The same, relative to the old median.
    pub relative_shift_ci: Option<[f64; 2]>,
    /// How the interval was computed: `exact` or `normal` (tie-corrected).
    pub ci_method: Option<&'static str>,
    /// The limit: `latencyTolerance × oldMedianMs`.
    pub max_shift_ms: Option<f64>,
    /// The Mann–Whitney test (reported; the interval decides).
    pub test: Option<MannWhitney>,
    pub alpha: f64,
}

/// The error-rate half of a [`Judgement`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorJudgement {
    pub verdict: Verdict,
    pub reason: String,
    pub new_requests: u64,
    pub old_requests: u64,
    pub new_errors: u64,
    pub old_errors: u64,
    /// `newRate − (1 + relativeTolerance)·oldRate`, and its interval (MOVER/Newcombe).
    pub increase: Option<f64>,
    pub increase_ci: Option<[f64; 2]>,
    /// Fails when the interval's lower end exceeds this (`errorRateTolerance`).
    pub fail_above: f64,
    /// Passes when the interval's upper end is within this (`errorRatePassMargin`).
    pub pass_within: f64,
    /// Fisher's exact one-sided test (reported; the interval decides).
    pub test: Option<ErrorRates>,
    pub alpha: f64,
}

/// The tail part of a [`Judgement`]: how many new requests are slower than
/// `(1 + latencyTolerance) ×` the old version's q-quantile, against the exact null.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TailJudgement {
    pub verdict: Verdict,
    pub reason: String,
    pub quantile: f64,
    /// The old version's q-quantile (the r-th smallest old latency), ms.
    pub old_quantile_ms: Option<f64>,
    /// `(1 + latencyTolerance) × oldQuantileMs`.
    pub threshold_ms: Option<f64>,
    pub slower: u64,
    pub new_samples: usize,
    /// The share a version no worse than the threshold shows: `(n0 + 1 − r)/(n0 + 1)`.
    pub expected_share: Option<f64>,
    /// P(K ≥ slower) and P(K ≤ slower) under the null (beta-binomial).
    pub p_upper: Option<f64>,
    pub p_lower: Option<f64>,
}

/// The verdict of comparing the new version with the old, with everything that decided it, for
/// the hook's summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Judgement {
    /// Failed if any part failed; else inconclusive if any part was; else passed.
    pub verdict: Verdict,
    pub reason: String,
    /// `compared`, or `broken` when the old version answered nothing successfully (the new one is
    /// then judged on the absolute limits only).
    pub baseline: &'static str,
    pub latency: LatencyJudgement,
    pub errors: ErrorJudgement,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tail: Option<TailJudgement>,
    pub thresholds: Thresholds,
}

/// Judges the new version against the old. Each part is an interval against a limit (see
/// [`Thresholds`]).
///
/// The rules, part by part, are the table in hooks/README.md#the-canary-judge-compare-logs-artifact
/// (the design and its reference values: `hooks/JUDGE.md`).
///
/// Fewer than `min_samples` on either side: inconclusive. An old version with at least
/// `min_samples` requests and no successful one is a broken baseline: the new version fails only
/// when shown to exceed `max_error_rate` (or `max_latency_ms`), and passes otherwise.
pub fn judge(new: &Side, old: &Side, t: &Thresholds) -> Judgement {
    let broken = old.requests >= t.min_samples
        && old.latencies_ms.is_empty()
        && old.errors >= old.requests
        && !new.latencies_ms.is_empty();
    if broken {
        return judge_broken_baseline(new, old, t);
    }
    let latency = judge_latency(new.latencies_ms, old.latencies_ms, t);
    let errors = judge_errors(new, old, t);
    let tail = t
        .tail_quantile
        .map(|q| judge_tail(new.latencies_ms, old.latencies_ms, q, t));
    let verdicts = [
        Some(latency.verdict),
        Some(errors.verdict),
        tail.as_ref().map(|x| x.verdict),
    ];
    let verdict = combine(verdicts.iter().flatten().copied());
    let mut reason = format!("latency: {}; errors: {}", latency.reason, errors.reason);
    if let Some(tail) = &tail {
        reason.push_str(&format!("; tail: {}", tail.reason));
    }
    Judgement {
        verdict,
        reason,
        baseline: "compared",
        latency,
        errors,
        tail,
        thresholds: *t,
    }
}

fn combine(verdicts: impl Iterator<Item = Verdict>) -> Verdict {
    let all: Vec<Verdict> = verdicts.collect();
    if all.contains(&Verdict::Failed) {
        Verdict::Failed
    } else if all.contains(&Verdict::Inconclusive) {
        Verdict::Inconclusive
    } else {
        Verdict::Passed
    }
}

/// The interval rule: fail when the lower end is beyond `fail_above`, pass when the upper end is
/// within `pass_within`, otherwise inconclusive.
fn interval_verdict(lower: f64, upper: f64, fail_above: f64, pass_within: f64) -> Verdict {
    if lower > fail_above {
        Verdict::Failed
    } else if upper <= pass_within {
        Verdict::Passed
    } else {
        Verdict::Inconclusive
    }
}

fn fmt_p(p: f64) -> String {
    if p < 1e-4 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    }
}

fn pct(x: f64) -> String {
    format!("{:+.1}%", x * 100.0)
}

fn judge_latency(new: &[f64], old: &[f64], t: &Thresholds) -> LatencyJudgement {
    let alpha = t.alpha();
    let mut j = LatencyJudgement {
        verdict: Verdict::Inconclusive,
        reason: String::new(),
        new_samples: new.len(),
        old_samples: old.len(),
        new_median_ms: None,
        old_median_ms: None,
        ratio_of_medians: None,
        shift_ms: None,
        relative_shift: None,
        shift_ci_ms: None,
        relative_shift_ci: None,
        ci_method: None,
        max_shift_ms: None,
        test: None,
        alpha,
    };
    // Every number that can be computed is, even when the samples are too few to decide.
    let (Ok(new_median), Ok(old_median), Ok(shift), Ok(test)) = (
        median(new),
        median(old),
        hodges_lehmann(new, old),
        mann_whitney_u(new, old),
    ) else {
        j.reason = if check(new).is_err_and(|e| e == StatsError::NotFinite)
            || check(old).is_err_and(|e| e == StatsError::NotFinite)
        {
            "a latency sample is not a finite number".into()
        } else {
            format!(
                "{} new and {} old samples, nothing to compare",
                new.len(),
                old.len()
            )
        };
        return j;
    };
    let max_shift = t.latency_tolerance * old_median;
    let relative = |v: f64| (old_median > 0.0).then(|| v / old_median);
    j.new_median_ms = Some(new_median);
    j.old_median_ms = Some(old_median);
    j.ratio_of_medians = (old_median > 0.0).then(|| new_median / old_median);
    j.shift_ms = Some(shift);
    j.relative_shift = relative(shift);
    j.max_shift_ms = Some(max_shift);
    j.test = Some(test);
    let ci = crate::intervals::hl_interval(new, old, t.confidence);
    j.ci_method = Some(if ci.exact { "exact" } else { "normal" });
    if let Some((lo, hi)) = ci.bounds {
        j.shift_ci_ms = Some([lo, hi]);
        j.relative_shift_ci = relative(lo).zip(relative(hi)).map(|(a, b)| [a, b]);
    }
    let medians = format!("median {new_median:.2} ms vs {old_median:.2} ms");
    let p = format!("Mann-Whitney p={}", fmt_p(test.p_value));
    let tolerance = format!(
        "the {:.0}% tolerance ({max_shift:.2} ms)",
        t.latency_tolerance * 100.0
    );
    let few = t.min_samples;
    if (new.len() as u64) < few || (old.len() as u64) < few {
        j.reason = format!(
            "{} new and {} old samples, fewer than minSamples {few} ({medians}, shift {shift:+.2} ms)",
            new.len(),
            old.len()
        );
        return j;
    }
    let Some((lo, hi)) = ci.bounds else {
        j.reason = format!(
            "{} and {} samples are too few for a {:.0}% interval of the shift ({medians})",
            new.len(),
            old.len(),
            t.confidence * 100.0
        );
        return j;
    };
    let interval = match j.relative_shift_ci {
        Some([a, b]) => format!(
            "shift {shift:+.2} ms, {:.0}% interval [{lo:+.2}, {hi:+.2}] ms ([{}, {}])",
            t.confidence * 100.0,
            pct(a),
            pct(b)
        ),
        None => format!(
            "shift {shift:+.2} ms, {:.0}% interval [{lo:+.2}, {hi:+.2}] ms",
            t.confidence * 100.0
        ),
    };
    j.verdict = interval_verdict(lo, hi, max_shift, max_shift);
    j.reason = match j.verdict {
        Verdict::Failed => format!("slower beyond {tolerance}: {interval}, {medians}, {p}"),
        Verdict::Passed => format!("within {tolerance}: {interval}, {medians}, {p}"),
        Verdict::Inconclusive => {
            format!("cannot tell against {tolerance}: {interval} straddles it ({medians}, {p})")
        }
    };
    j
}

fn judge_errors(new: &Side, old: &Side, t: &Thresholds) -> ErrorJudgement {
    let alpha = t.alpha();
    let mut j = ErrorJudgement {
        verdict: Verdict::Inconclusive,
        reason: String::new(),
        new_requests: new.requests,
        old_requests: old.requests,
        new_errors: new.errors,
        old_errors: old.errors,
        increase: None,
        increase_ci: None,
        fail_above: t.error_rate_tolerance,
        pass_within: t.error_rate_pass_margin,
        test: None,
        alpha,
    };
    let test = match error_rate_test(new.errors, new.requests, old.errors, old.requests) {
        Ok(test) => test,
        Err(e) => {
            j.reason = format!("the error counts cannot be compared: {e}");
            return j;
        }
    };
    j.test = Some(test);
    let rates = format!(
        "{}/{} ({:.3}%) vs {}/{} ({:.3}%)",
        new.errors,
        new.requests,
        test.new_rate * 100.0,
        old.errors,
        old.requests,
        test.old_rate * 100.0
    );
    let few = t.min_samples;
    if new.requests < few || old.requests < few {
        j.reason = format!(
            "{} new and {} old requests, fewer than minSamples {few} ({rates})",
            new.requests, old.requests
        );
        return j;
    }
    let w = 1.0 + t.error_rate_relative_tolerance;
    let (theta, lo, hi) = crate::intervals::mover_difference(
        (new.errors, new.requests),
        (old.errors, old.requests),
        w,
        t.z(),
    );
    j.increase = Some(theta);
    j.increase_ci = Some([lo, hi]);
    j.verdict = interval_verdict(lo, hi, t.error_rate_tolerance, t.error_rate_pass_margin);
    let interval = format!(
        "increase over {w:.2}× the old rate {:+.3} points, {:.0}% interval [{:+.3}, {:+.3}]",
        theta * 100.0,
        t.confidence * 100.0,
        lo * 100.0,
        hi * 100.0
    );
    let p = format!("Fisher p={}", fmt_p(test.p_value));
    j.reason = match j.verdict {
        Verdict::Failed => format!(
            "more errors: {rates}, {interval} is above {:.3} points ({p})",
            t.error_rate_tolerance * 100.0
        ),
        Verdict::Passed => format!(
            "{rates}: {interval} is within {:.2} points ({p})",
            t.error_rate_pass_margin * 100.0
        ),
        Verdict::Inconclusive => format!(
            "{rates}: {interval} neither excludes {:.2} points nor shows more than {:.3} ({p}; with no errors, {} requests a side can pass)",
            t.error_rate_pass_margin * 100.0,
            t.error_rate_tolerance * 100.0,
            t.min_requests_to_pass()
        ),
    };
    j
}

fn judge_tail(new: &[f64], old: &[f64], q: f64, t: &Thresholds) -> TailJudgement {
    let mut j = TailJudgement {
        verdict: Verdict::Inconclusive,
        reason: String::new(),
        quantile: q,
        old_quantile_ms: None,
        threshold_ms: None,
        slower: 0,
        new_samples: new.len(),
        expected_share: None,
        p_upper: None,
        p_lower: None,
    };
    let label = format!("p{}", (q * 100.0).round());
    let needed = (q / (1.0 - q)).ceil() as usize;
    if old.len() < needed || new.is_empty() {
        j.reason = format!(
            "{label} needs at least {needed} old samples (and new ones) to be estimated; {} old, {} new",
            old.len(),
            new.len()
        );
        return j;
    }
    let (n0, n1) = (old.len() as u64, new.len() as u64);
    let r = tail_rank(q, n0);
    let tau = sorted(old)[(r - 1) as usize];
    let threshold = (1.0 + t.latency_tolerance) * tau;
    let slower = new.iter().filter(|&&v| v > threshold).count() as u64;
    let (p_upper, p_lower) = crate::intervals::beta_binomial_tails(slower, n1, n0, r);
    let h = t.alpha() / 2.0;
    let expected = (n0 + 1 - r) as f64 / (n0 + 1) as f64;
    j.old_quantile_ms = Some(tau);
    j.threshold_ms = Some(threshold);
    j.slower = slower;
    j.expected_share = Some(expected);
    j.p_upper = Some(p_upper);
    j.p_lower = Some(p_lower);
    let counts = format!(
        "{slower} of {n1} new requests ({:.2}%) slower than {threshold:.2} ms ({:.0}% over the old {label} {tau:.2} ms; a version no worse shows {:.2}%)",
        slower as f64 * 100.0 / n1 as f64,
        t.latency_tolerance * 100.0,
        expected * 100.0
    );
    j.verdict = if p_upper < h {
        Verdict::Failed
    } else if p_lower < h {
        Verdict::Passed
    } else {
        Verdict::Inconclusive
    };
    j.reason = match j.verdict {
        Verdict::Failed => format!("{label} slower beyond the tolerance: {counts}, P={}", fmt_p(p_upper)),
        Verdict::Passed => format!("{label} within the tolerance: {counts}, P={}", fmt_p(p_lower)),
        Verdict::Inconclusive => format!(
            "{label} cannot be told apart from the tolerance: {counts} (P≥{}, P≤{}; {} requests a side can pass)",
            fmt_p(p_upper),
            fmt_p(p_lower),
            t.min_requests_to_pass()
        ),
    };
    j
}

/// The old version answered nothing successfully: nothing to compare with. The new version is
/// judged on the absolute limits, visibly — failed only when shown to exceed one, else passed (a
/// fix for a completely broken production must not be blocked for lack of a baseline).
fn judge_broken_baseline(new: &Side, old: &Side, t: &Thresholds) -> Judgement {
    let h = t.alpha() / 2.0;
    let mut errors = judge_errors(new, old, t);
    let (cp_low, cp_high) = crate::intervals::clopper_pearson(new.errors, new.requests, h);
    let over = cp_low > t.max_error_rate;
    errors.verdict = Verdict::failed_if(over);
    errors.reason = format!(
        "{}/{} new errors, {:.0}% interval [{:.3}%, {:.3}%] {} maxErrorRate {:.2}%",
        new.errors,
        new.requests,
        t.confidence * 100.0,
        cp_low * 100.0,
        cp_high * 100.0,
        if over {
            "is above"
        } else {
            "is not shown above"
        },
        t.max_error_rate * 100.0
    );
    let mut latency = judge_latency(new.latencies_ms, &[], t);
    let q = t.tail_quantile.unwrap_or(0.99);
    match t.max_latency_ms {
        Some(limit) => {
            let n = new.latencies_ms.len() as u64;
            let beyond = new.latencies_ms.iter().filter(|&&v| v > limit).count() as u64;
            let (low, _) = crate::intervals::clopper_pearson(beyond, n, h);
            let fails = low > 1.0 - q;
            latency.verdict = Verdict::failed_if(fails);
            latency.reason = format!(
                "{beyond} of {n} new requests slower than maxLatencyMs {limit} ms: the p{} {} above it",
                (q * 100.0).round(),
                if fails { "is shown" } else { "is not shown" }
            );
        }
        None => {
            latency.verdict = Verdict::Passed;
            latency.reason = "not judged: no baseline and no maxLatencyMs".into();
        }
    }
    let verdict = combine([latency.verdict, errors.verdict].into_iter());
    Judgement {
        verdict,
        reason: format!(
            "old version had 0 successful of {} requests (100% errors): judged on absolute limits only: latency: {}; errors: {}",
            old.requests, latency.reason, errors.reason
        ),
        baseline: "broken",
        latency,
        errors,
        tail: None,
        thresholds: *t,
    }
}

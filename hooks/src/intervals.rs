#![allow(clippy::excessive_precision)] // AS241 coefficients as published
//! The confidence intervals the judge decides on (issue 21; the design and its reference values:
//! `hooks/JUDGE.md`). Pure numerics, no I/O:
//!
//! - [`normal_quantile`]: Φ⁻¹ (Wichura's AS241, polished by Newton steps on libm's `erfc`);
//! - [`wilson`] and [`mover_difference`]: the score interval of one proportion, and the MOVER
//!   interval (Newcombe's hybrid score method, generalised to `p_new − w·p_old`) of the error-rate
//!   increase — well defined and near-nominal at zero counts, where Wald intervals collapse;
//! - [`clopper_pearson`]: the exact interval of one proportion (broken baselines);
//! - [`hl_interval`]: the distribution-free interval of the Hodges–Lehmann shift (Moses), order
//!   statistics of the pairwise differences, exact for small samples without ties;
//! - [`beta_binomial_tails`]: the exact null distribution of "how many new requests are slower than
//!   the old version's q-quantile", which accounts for that quantile being estimated too.

use crate::stats::EXACT_MAX_PAIRS;

/// Φ⁻¹(p) for 0 < p < 1. Wichura's AS241 (PPND16), then two Newton steps on Φ computed from
/// `erfc`, so the result is as exact as libm's `erfc`.
pub fn normal_quantile(p: f64) -> f64 {
    assert!(p > 0.0 && p < 1.0, "normal_quantile({p})");
    let q = p - 0.5;
    let mut x = if q.abs() <= 0.425 {
        let r = 0.180625 - q * q;
        q * (((((((r * 2509.0809287301226727 + 33430.575583588128105) * r
            + 67265.770927008700853)
            * r
            + 45921.953931549871457)
            * r
            + 13731.693765509461125)
            * r
            + 1971.5909503065514427)
            * r
            + 133.14166789178437745)
            * r
            + 3.387132872796366608)
            / (((((((r * 5226.495278852545925 + 28729.085735721942674) * r
                + 39307.89580009271061)
                * r
                + 21213.794301586595867)
                * r
                + 5394.1960214247511077)
                * r
                + 687.1870074920579083)
                * r
                + 42.313330701600911252)
                * r
                + 1.0)
    } else {
        let mut r = if q < 0.0 { p } else { 1.0 - p };
        r = (-r.ln()).sqrt();
        let v = if r <= 5.0 {
            let r = r - 1.6;
            (((((((r * 7.7454501427834140764e-4 + 0.0227238449892691845833) * r
                + 0.24178072517745061177)
                * r
                + 1.27045825245236838258)
                * r
                + 3.64784832476320460504)
                * r
                + 5.7694972214606914055)
                * r
                + 4.6303378461565452959)
                * r
                + 1.42343711074968357734)
                / (((((((r * 1.05075007164441684324e-9 + 5.475938084995344946e-4) * r
                    + 0.0151986665636164571966)
                    * r
                    + 0.14810397642748007459)
                    * r
                    + 0.68976733498510000455)
                    * r
                    + 1.6763848301838038494)
                    * r
                    + 2.05319162663775882187)
                    * r
                    + 1.0)
        } else {
            let r = r - 5.0;
            (((((((r * 2.01033439929228813265e-7 + 2.71155556874348757815e-5) * r
                + 0.0012426609473880784386)
                * r
                + 0.026532189526576123093)
                * r
                + 0.29656057182850489123)
                * r
                + 1.7848265399172913358)
                * r
                + 5.4637849111641143699)
                * r
                + 6.6579046435011037772)
                / (((((((r * 2.04426310338993978564e-15 + 1.4215117583164458887e-7) * r
                    + 1.8463183175100546818e-5)
                    * r
                    + 7.868691311456132591e-4)
                    * r
                    + 0.0148753612908506148525)
                    * r
                    + 0.13692988092273580531)
                    * r
                    + 0.59983220655588793769)
                    * r
                    + 1.0)
        };
        if q < 0.0 {
            -v
        } else {
            v
        }
    };
    for _ in 0..2 {
        // Φ(x) − p over φ(x): Newton on the CDF.
        let cdf = 0.5 * libm::erfc(-x / std::f64::consts::SQRT_2);
        let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
        if pdf > 0.0 {
            x -= (cdf - p) / pdf;
        }
    }
    x
}

/// The Wilson score interval of `k` successes in `n` (n > 0) at `z`; exactly 0 below when k = 0
/// and 1 above when k = n.
pub fn wilson(k: u64, n: u64, z: f64) -> (f64, f64) {
    let (kf, nf, z2) = (k as f64, n as f64, z * z);
    let centre = (kf + z2 / 2.0) / (nf + z2);
    let half = z * (kf * (nf - kf) / nf + z2 / 4.0).sqrt() / (nf + z2);
    let low = if k == 0 { 0.0 } else { centre - half };
    let high = if k == n { 1.0 } else { centre + half };
    (low.max(0.0), high.min(1.0))
}

/// The interval of θ = p_new − w·p_old (w ≥ 0) by MOVER (Zou & Donner 2008) from the two Wilson
/// intervals; with w = 1, Newcombe's (1998) method 10. Returns (θ̂, lower, upper).
pub fn mover_difference(new: (u64, u64), old: (u64, u64), w: f64, z: f64) -> (f64, f64, f64) {
    let (p1, p0) = (new.0 as f64 / new.1 as f64, old.0 as f64 / old.1 as f64);
    let ((l1, u1), (l0, u0)) = (wilson(new.0, new.1, z), wilson(old.0, old.1, z));
    let theta = p1 - w * p0;
    let lower = theta - ((p1 - l1).powi(2) + (w * (u0 - p0)).powi(2)).sqrt();
    let upper = theta + ((u1 - p1).powi(2) + (w * (p0 - l0)).powi(2)).sqrt();
    (theta, lower, upper)
}

/// ln Γ.
fn ln_gamma(x: f64) -> f64 {
    libm::lgamma(x)
}

/// The regularised incomplete beta I_x(a, b) (Numerical Recipes' continued fraction, Lentz).
pub fn incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    // The fraction converges fast for x < (a + 1)/(a + b + 2); use the symmetry otherwise.
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_fraction(x, a, b) / a
    } else {
        1.0 - front * beta_fraction(1.0 - x, b, a) / b
    }
}

fn beta_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=10_000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    h
}

/// The x with I_x(a, b) = p, by bisection (monotone in x; 200 halvings reach f64 resolution).
fn beta_quantile(p: f64, a: f64, b: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if incomplete_beta(mid, a, b) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The Clopper–Pearson interval of `k` in `n` with `h` in each tail (h = α/2).
pub fn clopper_pearson(k: u64, n: u64, h: f64) -> (f64, f64) {
    let (kf, nf) = (k as f64, n as f64);
    let low = if k == 0 {
        0.0
    } else {
        beta_quantile(h, kf, nf - kf + 1.0)
    };
    let high = if k == n {
        1.0
    } else {
        beta_quantile(1.0 - h, kf + 1.0, nf - kf)
    };
    (low, high)
}

/// The interval of the Hodges–Lehmann shift `new − old`, and how it was computed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShiftInterval {
    /// `None`: too few samples for this confidence (the interval is unbounded).
    pub bounds: Option<(f64, f64)>,
    /// The order statistic used (1-based): the interval is [D(k), D(mn + 1 − k)].
    pub k: u64,
    pub exact: bool,
    /// The coverage the order statistics give (≥ the requested one when exact).
    pub achieved_confidence: Option<f64>,
}

/// The distribution-free confidence interval of the shift (Moses; Bauer 1972): order statistics
/// of the m·n differences new_j − old_i. Exact (R's `qwilcox` rule, but an order index of 0 is
/// unbounded, not bumped to 1) without ties and within [`EXACT_MAX_PAIRS`] pairs; otherwise
/// k = ⌈mn/2 − ½ − z·σ_U⌉ with the tie-corrected σ_U, the interval of shifts the
/// continuity-corrected Mann–Whitney test does not reject.
pub fn hl_interval(new: &[f64], old: &[f64], confidence: f64) -> ShiftInterval {
    let (m, n) = (new.len(), old.len());
    let pairs = (m as u64) * (n as u64);
    let h = (1.0 - confidence) / 2.0;
    let mut pooled: Vec<f64> = new.iter().chain(old.iter()).copied().collect();
    pooled.sort_unstable_by(f64::total_cmp);
    let mut tie_term = 0.0;
    let mut ties = false;
    let mut i = 0;
    while i < pooled.len() {
        let mut j = i + 1;
        while j < pooled.len() && pooled[j] == pooled[i] {
            j += 1;
        }
        let t = (j - i) as f64;
        tie_term += t * t * t - t;
        ties |= j - i > 1;
        i = j;
    }
    let (k, exact, achieved) = if !ties && (pairs as usize) <= EXACT_MAX_PAIRS && pairs > 0 {
        let cdf = exact_cdf(m, n);
        // Smallest q with P(W ≤ q) ≥ h (R's fuzz: 10·ε).
        let q = cdf
            .iter()
            .position(|&c| c >= h - 10.0 * f64::EPSILON)
            .unwrap_or(cdf.len()) as u64;
        let achieved = (q >= 1).then(|| 1.0 - 2.0 * cdf[(q - 1) as usize]);
        (q, true, achieved)
    } else {
        let (mf, nf) = (m as f64, n as f64);
        let total = mf + nf;
        let variance = mf * nf / 12.0 * ((total + 1.0) - tie_term / (total * (total - 1.0)));
        let z = normal_quantile(1.0 - h);
        let raw = mf * nf / 2.0 - 0.5 - z * variance.max(0.0).sqrt();
        let k = raw.ceil();
        (if k < 1.0 { 0 } else { k as u64 }, false, None)
    };
    let bounds = (k >= 1 && k <= pairs / 2 + pairs % 2 && pairs > 0).then(|| {
        let (x, y) = (sorted(old), sorted(new));
        (
            crate::stats::kth_difference(&x, &y, k),
            crate::stats::kth_difference(&x, &y, pairs + 1 - k),
        )
    });
    ShiftInterval {
        bounds,
        k,
        exact,
        achieved_confidence: achieved,
    }
}

fn sorted(sample: &[f64]) -> Vec<f64> {
    let mut v = sample.to_vec();
    v.sort_unstable_by(f64::total_cmp);
    v
}

/// P(W ≤ u) for u = 0..=⌊mn/2⌋, W the Mann–Whitney statistic of m and n untied values under the
/// null.
fn exact_cdf(m: usize, n: usize) -> Vec<f64> {
    let (counts, total) = crate::stats::exact_counts(m, n, m * n / 2);
    let mut cum = 0.0;
    counts
        .iter()
        .map(|&ways| {
            cum += ways;
            cum / total
        })
        .collect()
}

/// The null distribution of K = #{new > (1 + tol)·τ}, τ the r-th smallest of n0 old values, when
/// new is distributed as (1 + tol)·old: beta-binomial(n1, n0 − r + 1, r). Returns P(K ≥ k) and
/// P(K ≤ k).
pub fn beta_binomial_tails(k: u64, n1: u64, n0: u64, r: u64) -> (f64, f64) {
    let pmf = beta_binomial_pmf(n1, (n0 - r + 1) as f64, r as f64);
    let upper: f64 = pmf[k as usize..].iter().sum();
    let lower: f64 = pmf[..=k as usize].iter().sum();
    (upper.min(1.0), lower.min(1.0))
}

/// P(K = j), j = 0..=n.
pub fn beta_binomial_pmf(n: u64, alpha: f64, beta: f64) -> Vec<f64> {
    let nf = n as f64;
    let ln_beta = |a: f64, b: f64| ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b);
    let base = ln_beta(alpha, beta);
    (0..=n)
        .map(|j| {
            let jf = j as f64;
            let ln_choose = ln_gamma(nf + 1.0) - ln_gamma(jf + 1.0) - ln_gamma(nf - jf + 1.0);
            (ln_choose + ln_beta(jf + alpha, nf - jf + beta) - base).exp()
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    //! Reference values computed independently (pure Python, cross-checked with mpmath at 50
    //! digits): `hooks/JUDGE.md`, "Reference values".
    use super::*;

    fn close(got: f64, want: f64, rel: f64) {
        let scale = want.abs().max(1e-300);
        assert!(
            (got - want).abs() <= rel * scale,
            "got {got:e}, want {want:e}"
        );
    }

    /// An interval's two bounds, each within 1e-9 of the reference.
    fn close_bounds((lo, hi): (f64, f64), (want_lo, want_hi): (f64, f64)) {
        close(lo, want_lo, 1e-9);
        close(hi, want_hi, 1e-9);
    }

    #[test]
    fn normal_quantiles() {
        close(normal_quantile(0.99), 2.3263478740408408, 1e-14);
        close(normal_quantile(0.975), 1.959963984540054, 1e-14);
        close(normal_quantile(0.995), 2.5758293035489004, 1e-14);
        close(normal_quantile(0.01), -2.3263478740408408, 1e-14);
        close(normal_quantile(1e-10), -6.361340902404056, 1e-12);
    }

    #[test]
    fn wilson_intervals() {
        let z = normal_quantile(0.99);
        for (k, n, lo, hi) in [
            (0, 50, 0.0, 0.097666655988237923),
            (0, 2000, 0.0, 0.0026986448250770565),
            (1, 2000, 6.873752308151638e-5, 0.003627208657170463),
            (10, 2000, 0.0024358038519089207, 0.010235854524917365),
            (50, 10000, 0.0036056223558060466, 0.0069298653925520095),
            (5, 50, 0.037497950925426739, 0.2406353738651636),
            (50, 50, 0.90233334401176208, 1.0),
        ] {
            close_bounds(wilson(k, n, z), (lo, hi));
        }
    }

    #[test]
    fn mover_intervals() {
        let z = normal_quantile(0.99);
        for (new, old, w, lo, hi) in [
            (
                (10, 2000),
                (0, 2000),
                1.0,
                0.0012773952965967089,
                0.010235854524917365,
            ),
            (
                (1, 2000),
                (0, 2000),
                1.0,
                -0.0022328869745953714,
                0.003627208657170463,
            ),
            (
                (50, 10000),
                (0, 10000),
                1.0,
                0.003504386991404249,
                0.0069298653925520095,
            ),
            (
                (3, 100),
                (0, 100),
                1.0,
                -0.025635831282645627,
                0.099696060826490264,
            ),
            (
                (130, 100_000),
                (100, 100_000),
                1.0,
                -5.4255983837870661e-5,
                0.00065913145331064893,
            ),
            (
                (10, 2000),
                (0, 2000),
                1.2,
                0.0008693624353808306,
                0.010235854524917365,
            ),
            (
                (1, 2000),
                (0, 2000),
                1.2,
                -0.0027669637476341423,
                0.003627208657170463,
            ),
            (
                (50, 10000),
                (0, 10000),
                1.2,
                0.0034619529446417662,
                0.0069298653925520095,
            ),
            (
                (0, 2000),
                (0, 2000),
                1.2,
                -0.0032383737900924678,
                0.0026986448250770565,
            ),
            (
                (0, 50),
                (0, 50),
                1.2,
                -0.11719998718588551,
                0.097666655988237923,
            ),
            (
                (130, 100_000),
                (100, 100_000),
                1.2,
                -0.00029432051268136012,
                0.00048450216860901861,
            ),
            ((0, 50), (50, 50), 1.2, -1.2, -1.0474398063441956),
        ] {
            let (_, l, h) = mover_difference(new, old, w, z);
            close_bounds((l, h), (lo, hi));
        }
    }

    #[test]
    fn clopper_pearson_intervals() {
        let h = 0.01;
        for (k, n, lo, hi) in [
            (0, 50, 0.0, 0.087989160644090258),
            (1, 2000, 5.0251553006155241e-6, 0.0033145012418919099),
            (10, 2000, 0.0020676190093135887, 0.010046808268162067),
            (24, 200, 0.072088605340868086, 0.18364442053928994),
            (3, 20, 0.022711415571841678, 0.42072891712581552),
            (20, 20, 0.7943282347242815, 1.0),
        ] {
            close_bounds(clopper_pearson(k, n, h), (lo, hi));
        }
    }

    #[test]
    fn beta_binomial_critical_counts() {
        // (k, n, r, the tail P(X >= k) or P(X <= k)): p99 at n = 200 is r = 199 (alpha 2,
        // beta 199); p99 at n = 699 is r = 693; p95 at n = 200 is r = 191; p99 at n = 2000 is
        // r = 1981.
        enum Tail {
            AtLeast(f64),
            AtMost(f64),
        }
        use Tail::*;
        #[rustfmt::skip]
        let cases = [
            (9, 200, 199, AtLeast(0.00998291727772)),
            (8, 200, 199, AtLeast(0.0184833189419)),
            (0, 200, 199, AtMost(199.0 / 798.0)),
            (19, 699, 693, AtLeast(0.00689169037593)),
            (18, 699, 693, AtLeast(0.0107649454563)),
            (0, 699, 693, AtMost(0.00769548147136)),
            (1, 699, 693, AtMost(0.03476520889)),
            (23, 200, 191, AtLeast(0.00770890430519)),
            (1, 200, 191, AtMost(0.0053331249144)),
            (0, 2000, 1981, AtMost(9.09222045481e-7)),
        ];
        for (k, n, r, tail) in cases {
            let (ge, le) = beta_binomial_tails(k, n, n, r);
            match tail {
                AtLeast(want) => close(ge, want, 1e-9),
                AtMost(want) => close(le, want, 1e-9),
            }
        }
    }

    #[test]
    fn shift_intervals() {
        // SciPy's male/female sample (the estimate is 7).
        let new = [19.0, 22.0, 16.0, 29.0, 24.0];
        let old = [20.0, 11.0, 17.0, 12.0];
        let at90 = hl_interval(&new, &old, 0.90);
        assert_eq!((at90.k, at90.bounds), (3, Some((-1.0, 13.0))));
        close(at90.achieved_confidence.unwrap(), 1.0 - 8.0 / 126.0, 1e-12);
        let at98 = hl_interval(&new, &old, 0.98);
        assert_eq!((at98.k, at98.bounds), (1, Some((-4.0, 18.0))));
        // Tied data: the normal approximation with the tie-corrected variance.
        let new: Vec<f64> = (0..25).map(|i| ((7 * i) % 11) as f64).collect();
        let old: Vec<f64> = (0..30).map(|i| ((5 * i) % 13 + 1) as f64).collect();
        let tied = hl_interval(&new, &old, 0.98);
        assert!(!tied.exact);
        assert_eq!((tied.k, tied.bounds), (238, Some((-4.0, 1.0))));
        // Too few samples for the confidence: unbounded, never bumped to an index of 1.
        let few = hl_interval(&[1.0, 2.0], &[3.0, 4.0], 0.98);
        assert_eq!(few.bounds, None);
    }

    /// `hooks/JUDGE.md` §1's 20-a-side example (lognormal σ 0.6, Python `random.Random(1125)`).
    pub(crate) const MEMO_OLD: [f64; 20] = [
        138.0, 157.0, 127.8, 88.5, 47.7, 138.6, 117.7, 246.9, 153.4, 56.4, 84.7, 136.3, 63.2,
        212.9, 278.9, 95.9, 85.2, 42.8, 126.7, 100.7,
    ];
    pub(crate) const MEMO_NEW: [f64; 20] = [
        347.8, 180.1, 87.2, 211.3, 255.2, 40.9, 206.3, 70.6, 112.1, 76.4, 82.2, 348.0, 67.3, 73.6,
        391.1, 155.7, 119.3, 232.8, 40.0, 218.9,
    ];

    #[test]
    fn the_memos_twenty_a_side_example_is_wide() {
        let (old, new) = (MEMO_OLD, MEMO_NEW);
        let ci = hl_interval(&new, &old, 0.98);
        assert!(ci.exact);
        assert_eq!(ci.k, 115);
        let (lo, hi) = ci.bounds.unwrap();
        close(lo, -37.7, 1e-3);
        close(hi, 105.6, 1e-3);
        close(
            ci.achieved_confidence.unwrap(),
            4826909072.0 / 4923090315.0,
            1e-9,
        );
    }
}

//! Draws of continuous distributions that stay exact at the edges of their
//! parameters: the Beta distribution for any positive finite shapes (as its
//! logit, which is what the churn formula needs), and the standard normal's
//! and lognormal's inverse CDF for truncated draws.
//!
//! `rand_distr`'s Beta (Cheng 1978, algorithms BB and BC) overflows for shapes
//! near the ends of the float range (`1/β` is infinite below about 5.6e-309,
//! `2αβ` overflows above about 1e154); [`beta_logit`] uses it only inside
//! [`CHENG_SHAPES`], where it is checked against the closed forms, so results
//! there are unchanged, and draws by log-gamma variates elsewhere. Its
//! algorithm BC (a shape at most 1) is copied here as `cheng_bc`, the same
//! draws bit for bit with fewer mispredicted branches: it is most of the cost
//! of a new subscriber.

use rand::RngExt;
use rand_distr::{Beta, Distribution, Open01, StandardNormal};

use crate::model::logit;
use crate::rng::DrawRng;

/// The shapes for which [`beta_logit`] uses `rand_distr`'s Beta (both shapes in
/// this closed range); outside it, the log-gamma method.
pub const CHENG_SHAPES: (f64, f64) = (1e-6, 1e6);

/// `logit(X)` for `X ~ Beta(alpha, beta)`, `alpha, beta > 0` finite (MODEL.md,
/// "The population": the churn probability `π_u`). Returned as a logit so that
/// draws within 1e-16 of 0 or 1 keep their precision; `±inf` stands for an `X`
/// of exactly 1 or 0 (a logit beyond the float range).
///
/// Inside [`CHENG_SHAPES`], `logit` of `rand_distr`'s draw (Cheng's
/// algorithms; BC through `cheng_bc`, the same draws). Elsewhere `X = G_α / (G_α + G_β)` with independent gamma
/// variates, so `logit(X) = ln G_α − ln G_β`, each `ln G` from Marsaglia and
/// Tsang's method (2000) written in logarithms, and for a shape `s < 1` the
/// boost `G_s = G_{s+1}·U^{1/s}` kept as the exponent `−ln(U)/s`, compared in
/// logarithms when it exceeds the float range (shapes down to 5e-324).
pub fn beta_logit(alpha: f64, beta: f64, rng: &mut DrawRng) -> f64 {
    let (low, high) = CHENG_SHAPES;
    if (low..=high).contains(&alpha) && (low..=high).contains(&beta) {
        let x: f64 = if alpha.min(beta) <= 1.0 {
            cheng_bc(alpha, beta, rng)
        } else {
            Beta::new(alpha, beta)
                .expect("positive finite shapes")
                .sample(rng)
        };
        return logit(x);
    }
    let a = LogGamma::draw(alpha, rng);
    let b = LogGamma::draw(beta, rng);
    a.minus(&b)
}

/// `rand_distr`'s `Beta::sample` where it uses Cheng's algorithm BC (Cheng
/// 1978, "Generating beta variates with nonintegral shape parameters", for
/// `min(α, β) <= 1`): the same constants, the same operations in the same
/// order on the same numbers of `rng`, so the same draws bit for bit (a test
/// holds it to `rand_distr`). Only the order of the decisions differs: both
/// halves of step 1's test (`u1 < 1/2` or not, a coin toss) are computed and
/// one is chosen without a branch, so an iteration that is rejected (most
/// are, for small shapes) costs no misprediction on that toss.
fn cheng_bc(alpha: f64, beta: f64, rng: &mut DrawRng) -> f64 {
    // `Beta::new`'s constants: `a` the larger shape, `b` the smaller.
    let (a, b, switched) = if alpha < beta {
        (beta, alpha, true)
    } else {
        (alpha, beta, false)
    };
    let sum = a + b;
    let inverse_b = 1.0 / b;
    let delta = 1.0 + a - b;
    let kappa1 = delta * (1. / 18. / 4. + 3. / 18. / 4. * b) / (a * inverse_b - 14. / 18.);
    let kappa2 = 0.25 + (0.5 + 0.25 / delta) * b;
    let w = loop {
        let u1: f64 = rng.sample(Open01);
        let u2: f64 = rng.sample(Open01);
        let low = u1 < 0.5;
        // Step 2 (`u1 < 1/2`) and step 3 (otherwise), both computed.
        let y = u1 * u2;
        let z_low = u1 * y;
        let z_high = u1 * u1 * u2;
        let quick = z_high <= 0.25;
        let rejected = std::hint::select_unpredictable(
            low,
            0.25 * u2 + z_low - y >= kappa1,
            !quick && z_high >= kappa2,
        );
        if rejected {
            continue;
        }
        let z = if low { z_low } else { z_high };
        // Step 5 (accepted at once in step 3 where `z <= 1/4`).
        let v = inverse_b * (u1 / (1.0 - u1)).ln();
        let w = a * v.exp();
        if !low && quick {
            break w;
        }
        // `!(… < …)` as in `rand_distr`: a comparison with NaN accepts.
        #[allow(clippy::neg_cmp_op_on_partial_ord)]
        if !(sum * ((sum / (b + w)).ln() + v) - 4f64.ln() < z.ln()) {
            break w;
        }
    };
    // Step 6.
    if !switched {
        if w == f64::INFINITY {
            return 1.0;
        }
        w / (b + w)
    } else {
        b / (b + w)
    }
}

/// `ln G` of a gamma variate of shape `s`, kept in parts so that the
/// difference of two is exact to rounding whatever their size:
/// `ln G = ln(scale) + log_rest − boost`.
struct LogGamma {
    /// Marsaglia–Tsang's `d = s' − 1/3` (`s' = s`, or `s + 1` for `s < 1`).
    scale: f64,
    /// `3·ln(1 + c·z)`, the accepted draw's `ln v`.
    log_rest: f64,
    /// `−ln(U)/s` for `s < 1` (0 otherwise); may be `+inf`.
    boost: f64,
    /// `−ln U` and `s` for `s < 1`: the logarithm of `boost`,
    /// [`LogGamma::log_boost`], is computed only where `boost` is infinite
    /// (two logarithms saved per draw otherwise).
    minus_log_u: f64,
    shape: f64,
}

impl LogGamma {
    fn draw(shape: f64, rng: &mut DrawRng) -> Self {
        let boosted = shape < 1.0;
        let d = if boosted { shape + 1.0 } else { shape } - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        let log_rest = loop {
            let z: f64 = StandardNormal.sample(rng);
            let w = c * z;
            if w <= -1.0 {
                continue;
            }
            let u = open_unit(rng);
            // Accept when ln u < z²/2 + d − d·v + d·ln v, v = (1 + w)³, with
            // d·(ln v − (v − 1)) written so that it keeps its precision when
            // w is tiny (huge shapes): 3·ln(1+w) − w(3 + 3w + w²) by its
            // series −4.5w² − 0.75w⁴ + 0.6w⁵ for |w| < 1e-3.
            let log_v = 3.0 * w.ln_1p();
            let gap = if w.abs() < 1e-3 {
                let w2 = w * w;
                -4.5 * w2 - 0.75 * w2 * w2 + 0.6 * w2 * w2 * w
            } else {
                log_v - w * (3.0 + 3.0 * w + w * w)
            };
            if u.ln() < 0.5 * z * z + d * gap {
                break log_v;
            }
        };
        let (boost, minus_log_u) = if boosted {
            let minus_log_u = -open_unit(rng).ln();
            (minus_log_u / shape, minus_log_u)
        } else {
            (0.0, 0.0)
        };
        LogGamma {
            scale: d,
            log_rest,
            boost,
            minus_log_u,
            shape,
        }
    }

    /// `ln(−ln U) − ln s`, the logarithm of `boost`, finite for any `s > 0`
    /// (`−inf` without a boost).
    fn log_boost(&self) -> f64 {
        if self.shape < 1.0 {
            self.minus_log_u.ln() - self.shape.ln()
        } else {
            f64::NEG_INFINITY
        }
    }

    /// `ln G_self − ln G_other`.
    fn minus(&self, other: &LogGamma) -> f64 {
        let ratio = self.scale / other.scale;
        let log_scales = if ratio.is_normal() {
            ratio.ln()
        } else {
            self.scale.ln() - other.scale.ln()
        };
        let finite_part = log_scales + (self.log_rest - other.log_rest);
        let boosts = match (self.boost.is_finite(), other.boost.is_finite()) {
            (true, true) => other.boost - self.boost,
            (false, true) => f64::NEG_INFINITY,
            (true, false) => f64::INFINITY,
            (false, false) => match other.log_boost().total_cmp(&self.log_boost()) {
                std::cmp::Ordering::Greater => f64::INFINITY,
                std::cmp::Ordering::Less => f64::NEG_INFINITY,
                std::cmp::Ordering::Equal => 0.0,
            },
        };
        finite_part + boosts
    }
}

/// A uniform number in the open interval (0, 1).
fn open_unit(rng: &mut DrawRng) -> f64 {
    rng.open_uniform()
}

/// The standard normal CDF `Φ(x)`.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * statrs::function::erf::erfc(-x / std::f64::consts::SQRT_2)
}

/// The standard normal quantile `Φ⁻¹(p)` for `p` in (0, 1) (`∓inf` at 0 and 1).
pub fn normal_quantile(p: f64) -> f64 {
    -std::f64::consts::SQRT_2 * statrs::function::erf::erfc_inv(2.0 * p)
}

/// A draw of `Normal(mean, sd)` truncated to `[low, high]` (either bound may
/// be infinite) by inverse-CDF sampling: `x = mean + sd·Φ⁻¹(Φ(a) + u·(Φ(b) −
/// Φ(a)))` with `a, b` the standardised bounds and `u` uniform in (0, 1),
/// computed on the side of the mean where the tail probabilities keep their
/// precision (so a range far in a tail still draws inside it). A range so
/// narrow that the density changes across it by less than 1e-12 (relative)
/// draws uniformly, which is then the same distribution to that precision.
/// `None` when [`normal_mass`] is 0.
pub fn truncated_normal(mean: f64, sd: f64, low: f64, high: f64, u: f64) -> Option<f64> {
    let range = StandardRange::new(mean, sd, low, high);
    if range.mass().is_nan() || range.mass() <= 0.0 {
        return None;
    }
    let x = if range.is_flat() {
        low + u * (high - low)
    } else {
        let (pa, pb) = (normal_cdf(range.a), normal_cdf(range.b));
        let z = normal_quantile(pa + u * (pb - pa)).clamp(range.a, range.b);
        mean + sd * if range.flipped { -z } else { z }
    };
    Some(x.clamp(low, high))
}

/// The probability that `Normal(mean, sd)` puts on `[low, high]`, as
/// [`truncated_normal`] computes it (0 when it is below what a double holds,
/// beyond about 38 sd from the mean).
pub fn normal_mass(mean: f64, sd: f64, low: f64, high: f64) -> f64 {
    StandardRange::new(mean, sd, low, high).mass()
}

/// Standardised bounds `a <= b`, mirrored to the lower side of the mean when
/// the range lies above it (`flipped`), where `Φ` keeps its precision.
struct StandardRange {
    a: f64,
    b: f64,
    flipped: bool,
}

impl StandardRange {
    fn new(mean: f64, sd: f64, low: f64, high: f64) -> Self {
        let a = (low - mean) / sd;
        let b = (high - mean) / sd;
        if a > 0.0 {
            StandardRange {
                a: -b,
                b: -a,
                flipped: true,
            }
        } else {
            StandardRange {
                a,
                b,
                flipped: false,
            }
        }
    }

    /// The density changes across the range by less than 1e-12 (relative):
    /// `(b − a)·max(|a|, |b|) < 1e-12`.
    fn is_flat(&self) -> bool {
        (self.b - self.a) * self.a.abs().max(self.b.abs()) < 1e-12
    }

    fn mass(&self) -> f64 {
        if self.is_flat() {
            let density = (-0.5 * self.a * self.a).exp() / (2.0 * std::f64::consts::PI).sqrt();
            (self.b - self.a) * density
        } else {
            normal_cdf(self.b) - normal_cdf(self.a)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sigmoid;
    use crate::rng::{Event, ReplicationKey};

    /// `cheng_bc` draws what `rand_distr`'s Beta draws, bit for bit, and
    /// leaves the generator where it does, for shapes across BC's range
    /// (either shape the smaller, one of them 1, tiny and huge ones).
    #[test]
    fn cheng_bc_is_rand_distrs_beta_bit_for_bit() {
        let stream = ReplicationKey::new(23, 1).stream(4, Event::ChurnPropensity);
        let shapes = [
            (0.1, 10.0),
            (10.0, 0.1),
            (0.7, 4.0),
            (0.9, 2.0),
            (1.0, 1.0),
            (1.0, 3.0),
            (0.5, 0.5),
            (1e-6, 1e6),
            (1e6, 1e-6),
            (0.999, 1.001),
            (0.02, 0.03),
        ];
        for (alpha, beta) in shapes {
            let reference = Beta::new(alpha, beta).unwrap();
            for user in 0..5_000 {
                let mut ours = stream.generator(user);
                let mut theirs = stream.generator(user);
                let x = cheng_bc(alpha, beta, &mut ours);
                let y: f64 = reference.sample(&mut theirs);
                assert_eq!(
                    x.to_bits(),
                    y.to_bits(),
                    "Beta({alpha}, {beta}), user {user}"
                );
                assert_eq!(ours.uniform().to_bits(), theirs.uniform().to_bits());
            }
        }
    }

    fn draws(alpha: f64, beta: f64, n: u32) -> Vec<f64> {
        let stream = ReplicationKey::new(17, 0).stream(0, Event::ChurnPropensity);
        (0..n)
            .map(|u| beta_logit(alpha, beta, &mut stream.generator(u)))
            .collect()
    }

    /// The mean of `X = sigmoid(logit)`.
    fn mean_of_x(logits: &[f64]) -> f64 {
        logits.iter().map(|&l| sigmoid(l)).sum::<f64>() / logits.len() as f64
    }

    #[test]
    fn beta_draws_have_the_mean_of_the_distribution_from_the_smallest_to_the_largest_shapes() {
        let n = 40_000;
        for (alpha, beta) in [
            (5e-324, 5e-324),
            (1e-309, 1e-309),
            (1e-308, 1e-308),
            (1e-300, 3e-300),
            (1e-7, 2e-7),
            (1e-7, 0.5),
            (0.7, 1.2),
            (2.0, 5e-9),
            (3.0, 1e7),
            (1e7, 1e7),
            (1e154, 1e154),
            (1e300, 3e300),
            (f64::MAX, f64::MAX),
            (f64::MAX, 1.0),
            (1e-300, 1e300),
        ] {
            let logits = draws(alpha, beta, n);
            assert!(logits.iter().all(|l| !l.is_nan()), "Beta({alpha}, {beta})");
            let mean = mean_of_x(&logits);
            // E[X] = m = α/(α+β) and Var X = m(1 − m)/(α + β + 1), written to
            // stay finite for the largest shapes.
            let expected = 1.0 / (1.0 + beta / alpha);
            let variance = expected * (1.0 - expected) / (alpha + beta + 1.0);
            let tolerance = 5.0 * (variance / f64::from(n)).sqrt() + 1e-12;
            assert!(
                (mean - expected).abs() < tolerance,
                "Beta({alpha}, {beta}): mean {mean}, expected {expected} ± {tolerance}"
            );
        }
    }

    #[test]
    fn beta_draws_with_huge_equal_shapes_spread_like_the_normal_limit() {
        // Var X = αβ/((α+β)²(α+β+1)) ≈ 1/(8α) for α = β; the logit's sd is
        // then 4·sd(X) = sqrt(2/α).
        for alpha in [1e7, 1e12, 1e100] {
            let logits = draws(alpha, alpha, 40_000);
            let n = logits.len() as f64;
            let mean = logits.iter().sum::<f64>() / n;
            let sd = (logits.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
            let expected = (2.0 / alpha).sqrt();
            // The sample sd has a relative standard error of 1/sqrt(2n).
            assert!(
                (sd / expected - 1.0).abs() < 5.0 / (2.0 * n).sqrt(),
                "α = β = {alpha}: sd of the logit {sd}, expected {expected}"
            );
        }
    }

    #[test]
    fn beta_draws_match_rand_distr_where_they_are_used_together() {
        // At the edges of CHENG_SHAPES both methods are the same distribution:
        // P(X > 1/2) agrees within the standard errors.
        let n = 40_000;
        for (alpha, beta) in [(1e-6, 1e-6), (2e-6, 1e-6), (1e6, 1e6), (0.5, 1e6)] {
            let cheng = draws(alpha, beta, n);
            let stream = ReplicationKey::new(18, 0).stream(0, Event::ChurnPropensity);
            let log_gamma: Vec<f64> = (0..n)
                .map(|u| {
                    let mut rng = stream.generator(u);
                    let a = LogGamma::draw(alpha, &mut rng);
                    let b = LogGamma::draw(beta, &mut rng);
                    a.minus(&b)
                })
                .collect();
            let above = |ls: &[f64]| ls.iter().filter(|&&l| l > 0.0).count() as f64 / n as f64;
            let (p, q) = (above(&cheng), above(&log_gamma));
            let se = (p * (1.0 - p) / n as f64 * 2.0).sqrt();
            assert!(
                (p - q).abs() < 5.0 * se + 1e-9,
                "Beta({alpha}, {beta}): P(X > 1/2) {p} vs {q}"
            );
        }
    }

    /// The largest gap between the empirical CDF of `logits` (as `X`) and
    /// Beta(α, β)'s CDF at nine points, in binomial standard errors.
    fn cdf_gap_in_standard_errors(alpha: f64, beta: f64, logits: &[f64]) -> f64 {
        use statrs::distribution::{Beta as BetaDistribution, ContinuousCDF};
        let exact = BetaDistribution::new(alpha, beta).unwrap();
        let n = logits.len() as f64;
        (1..10)
            .map(|k| {
                let x = f64::from(k) / 10.0;
                let p = exact.cdf(x);
                let below = logits.iter().filter(|&&l| sigmoid(l) <= x).count() as f64 / n;
                let se = (p * (1.0 - p) / n).sqrt().max(1e-12);
                (below - p).abs() / se
            })
            .fold(0.0, f64::max)
    }

    /// Log-gamma draws alone, whatever the shapes.
    fn log_gamma_draws(alpha: f64, beta: f64, n: u32, seed: u64) -> Vec<f64> {
        let stream = ReplicationKey::new(seed, 0).stream(0, Event::ChurnPropensity);
        (0..n)
            .map(|u| {
                let mut rng = stream.generator(u);
                let a = LogGamma::draw(alpha, &mut rng);
                let b = LogGamma::draw(beta, &mut rng);
                a.minus(&b)
            })
            .collect()
    }

    #[test]
    fn log_gamma_beta_draws_follow_the_beta_cdf() {
        // Both branches of LogGamma (shape below and above 1) against the
        // closed-form CDF; 9 points per case, 5 standard errors.
        for (alpha, beta) in [(0.3, 2.0), (5.0, 0.5), (50.0, 80.0), (0.05, 0.07)] {
            let gap =
                cdf_gap_in_standard_errors(alpha, beta, &log_gamma_draws(alpha, beta, 20_000, 3));
            assert!(
                gap < 5.0,
                "Beta({alpha}, {beta}): CDF off by {gap:.1} standard errors"
            );
        }
    }

    /// `BRANDSIM_SLOW_TESTS=1`: both methods on a grid of shapes from 1e-3 to
    /// 1e3, 10^6 draws each (the README records the result).
    #[test]
    fn slow_beta_draws_follow_the_beta_cdf_on_a_grid_of_shapes() {
        if std::env::var_os("BRANDSIM_SLOW_TESTS").is_none() {
            return;
        }
        let shapes = [1e-3, 0.05, 0.5, 1.0, 3.0, 40.0, 1e3];
        let mut worst: f64 = 0.0;
        for &alpha in &shapes {
            for &beta in &shapes {
                let log_gamma = log_gamma_draws(alpha, beta, 1_000_000, 11);
                let both = draws(alpha, beta, 1_000_000);
                for (method, logits) in [("log-gamma", &log_gamma), ("beta_logit", &both)] {
                    let gap = cdf_gap_in_standard_errors(alpha, beta, logits);
                    worst = worst.max(gap);
                    assert!(
                        gap < 5.5,
                        "{method} Beta({alpha}, {beta}): {gap:.1} standard errors"
                    );
                }
            }
        }
        eprintln!("largest CDF gap over 49 shape pairs x 2 methods: {worst:.2} standard errors");
    }

    #[test]
    fn truncated_normal_draws_stay_inside_the_range_even_far_in_a_tail() {
        for (mean, sd, low, high) in [
            (0.3, 0.05, 0.0, f64::INFINITY),
            (0.0, 1.0, 30.0, 31.0),
            (0.0, 1.0, -31.0, -30.0),
            (0.0, 1e-300, -1.0, 1.0),
            (0.0, 1e300, 0.0, 1.0),
        ] {
            for k in 0..100 {
                let u = (f64::from(k) + 0.5) / 100.0;
                let x = truncated_normal(mean, sd, low, high, u).unwrap();
                assert!((low..=high).contains(&x), "{x} outside [{low}, {high}]");
            }
        }
        assert_eq!(truncated_normal(0.0, 1.0, 50.0, 51.0, 0.5), None);
        assert!(normal_mass(0.0, 1.0, 40.0, f64::INFINITY) == 0.0);
    }

    #[test]
    fn truncated_normal_has_the_closed_form_mean() {
        // E[X | X > 0] for Normal(0.3, 0.5): μ + σ·φ(α)/(1 − Φ(α)), α = −0.6.
        let (mean, sd) = (0.3, 0.5);
        let alpha: f64 = -0.6;
        let phi = (-0.5 * alpha * alpha).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let expected = mean + sd * phi / (1.0 - normal_cdf(alpha));
        let n = 100_000;
        let got = (0..n)
            .map(|k| {
                let u = (f64::from(k) + 0.5) / f64::from(n);
                truncated_normal(mean, sd, 0.0, f64::INFINITY, u).unwrap()
            })
            .sum::<f64>()
            / f64::from(n);
        assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
    }
}

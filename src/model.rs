//! The formulas of MODEL.md, each in exactly one function named as in the model.
//! Systems, the optimiser and tests all call these.
//!
//! Rates of exactly 0 or 1 are carried as logits of -inf and +inf, which makes
//! `σ(logit(p) + shift)` exactly 0 or 1 whatever finite shift is added, as
//! MODEL.md requires.

use crate::scenario::Scenario;

/// `σ(x) = 1 / (1 + e^-x)`; `σ(-inf) = 0`, `σ(+inf) = 1`.
#[inline]
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The margin of [`clicks`]' decision without `exp`: `2^-14`, about 12 times
/// the bound on its approximation's error.
pub(crate) const CLICK_DECISION_MARGIN: f64 = 1.0 / 16_384.0;

/// Up to which `|y|` [`exp_bounded`] is used.
pub(crate) const EXP_BOUNDED_LIMIT: f64 = 30.0;

/// `e^y` for `|y| <= 30`, within a relative `4.9·10^-6`, without a libm call
/// or `fma` (so the same on every x86-64 CPU).
///
/// `y = k·ln 2 + r` with `k` the integer nearest `y/ln 2` (`|k| <= 44`,
/// `|r| <= 0.3466`), `e^y = 2^k·P(r)` with `P` the Taylor polynomial of `e^r` of
/// degree 5 (degree 7, within `1.1·10^-8`, was 2% slower in the busy market).
/// Its remainder is at most `e^|r|·|r|^6/6!`, so relative to `e^r` at most
/// `e^(2·0.3466)·0.3466^6/720 < 4.82·10^-6`; the rounding of `r`
/// (absolute, so relative in `e^r`: about `|k|·2^-53`) and of the polynomial's
/// dozen operations add under `10^-14`. `2^k` is exact. Outside `|y| <= 30` the
/// result means nothing.
#[inline(always)]
pub fn exp_bounded(y: f64) -> f64 {
    // 1.5·2^52: adding it rounds to an integer (to nearest) for |t| < 2^51.
    const ROUND: f64 = 6_755_399_441_055_744.0;
    let k = (y * std::f64::consts::LOG2_E + ROUND) - ROUND;
    let r = y - k * std::f64::consts::LN_2;
    let r2 = r * r;
    let r4 = r2 * r2;
    // Estrin's scheme (a short dependency chain) of Σ_{n<=5} r^n/n!.
    let low = (1.0 + r) + r2 * (0.5 + r * (1.0 / 6.0));
    let high = 1.0 / 24.0 + r * (1.0 / 120.0);
    let polynomial = low + r4 * high;
    let scale = f64::from_bits(((k as i64 + 1023) as u64) << 52);
    polynomial * scale
}

/// `logit(p) = ln(p / (1 - p))`; `logit(0) = -inf`, `logit(1) = +inf`.
#[inline]
pub fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

/// `σ(base_logit + shift)`, exactly 0 or 1 when the base rate is 0 or 1 (a logit of
/// ∓inf) even if the shift is infinite, where the sum alone would give NaN.
#[inline]
fn exact_rate(base_logit: f64) -> Option<f64> {
    base_logit
        .is_infinite()
        .then_some(if base_logit > 0.0 { 1.0 } else { 0.0 })
}

/// Step 1, exposure: `1 − exp(−(λ_s + ω_t))`.
#[inline]
pub fn exposure_probability(channel_rate: f64, word_of_mouth_rate: f64) -> f64 {
    -(-(channel_rate + word_of_mouth_rate)).exp_m1()
}

/// The word-of-mouth rate of a day: `ω_t = q · S_t / N`, with `S_t` the summed
/// satisfaction of paying users at the start of the day.
#[inline]
pub fn word_of_mouth_rate(word_of_mouth: f64, satisfaction_sum: f64, population: u32) -> f64 {
    word_of_mouth * satisfaction_sum / f64::from(population)
}

/// The local word-of-mouth rate of user `u` on a day (MODEL.md v2,
/// "Social-network word of mouth"): `ω^net_{u,t} = q_net · Σ_{v ∈ N(u), v Paying}
/// sat_v / deg(u)`, given the sum, with the neighbours' satisfaction at the start
/// of the day; 0 when `deg(u) = 0`. Step 1's probability is then
/// `exposure_probability(λ_s, ω_t + ω^net_{u,t})`.
#[inline]
pub fn network_word_of_mouth_rate(
    network_word_of_mouth: f64,
    neighbour_satisfaction_sum: f64,
    degree: u32,
) -> f64 {
    if degree == 0 {
        return 0.0;
    }
    network_word_of_mouth * neighbour_satisfaction_sum / f64::from(degree)
}

/// Step 3, click: `p_click = σ(logit(r_i) + β_V·V + ε_u)`, given `logit(r_i)`.
#[inline]
pub fn p_click(click_logit: f64, click_effect: f64, brand_value: f64, propensity: f64) -> f64 {
    if let Some(p) = exact_rate(click_logit) {
        return p;
    }
    sigmoid(click_argument(
        click_logit,
        click_effect,
        brand_value,
        propensity,
    ))
}

/// The logit of [`p_click`] for a base rate strictly between 0 and 1:
/// `logit(r_i) + β_V·V + ε_u`.
#[inline]
fn click_argument(click_logit: f64, click_effect: f64, brand_value: f64, propensity: f64) -> f64 {
    click_logit + click_effect * brand_value + propensity
}

/// The item's factor of `e^−x` in [`clicks`], for an item of base logit
/// `logit(r_i)` on a day of `V`: `e^−(logit(r_i) + β_V·V)` (the logit's first
/// two terms as [`p_click`] adds them), computed once per item and day; NaN
/// (never decides) where that sum is not within ±30 (a rate of 0 or 1 among
/// them).
pub fn click_factor(click_logit: f64, click_effect: f64, brand_value: f64) -> f64 {
    let item_part = click_logit + click_effect * brand_value;
    if item_part.abs() <= EXP_BOUNDED_LIMIT {
        (-item_part).exp()
    } else {
        f64::NAN
    }
}

/// Step 3's draw: whether a user whose click uniform is `u` clicks, exactly
/// `u < p_click(click_logit, click_effect, brand_value, propensity)` (bit for
/// bit, for every input), but for almost every `u` without `p_click`'s `exp`.
/// `item_factor` is [`click_factor`]`(click_logit, click_effect, brand_value)`.
/// For callers that need the outcome and not `p` (no score).
///
/// With `x` the logit of `p_click` as computed, `u < σ(x)` is
/// `u·(1 + e^−x) < 1` in exact arithmetic. `e^−x` is estimated as
/// `Ê = item_factor·`[`exp_bounded`]`(−ε_u)`, within a relative `4.9·10^-6`
/// (`exp_bounded`'s bound, a libm `exp` of a few ulps, one product, and the
/// rounding of the sum `x`, under `10^-14` for `|x| <= 60`); so the computed
/// `w = u·(1 + Ê)` is within a relative `5·10^-6` of `u·(1 + e^−x)`. The
/// computed `p_click` is within `2^-50` of `σ(x)` (an `exp` of a few ulps,
/// glibc's within 0.51, and two roundings; no overflow for `|x| <= 60`). So
/// `w < 1 − 2^-14` proves `u < p_click` and `w > 1 + 2^-14` proves the
/// opposite: the margin (`6.1·10^-5`) is about 12 times both errors together.
/// Only a `u` within about `2^-14·p` of `p` (a share of about `2^-13·p` of the
/// draws), a propensity beyond ±30 or an item without a factor falls back to
/// `u < p_click(...)`.
#[inline(always)]
pub fn clicks(
    u: f64,
    click_logit: f64,
    click_effect: f64,
    brand_value: f64,
    propensity: f64,
    item_factor: f64,
) -> bool {
    if item_factor.is_nan() {
        // No factor (an item's click rate of 0 or 1, say: `p_click` is exact
        // without `exp`): the same for every exposure of the item, so a
        // branch that predicts well.
        return u < p_click(click_logit, click_effect, brand_value, propensity);
    }
    let w = u * (1.0 + item_factor * exp_bounded(-propensity));
    let below = w < 1.0 - CLICK_DECISION_MARGIN;
    let above = w > 1.0 + CLICK_DECISION_MARGIN;
    // One branch that almost always goes the same way (whether the bounds
    // decided), not one on the outcome: a NaN factor makes both false.
    if (below | above) & (propensity.abs() <= EXP_BOUNDED_LIMIT) {
        return below;
    }
    u < p_click(click_logit, click_effect, brand_value, propensity)
}

/// Step 4, conversion:
/// `p_conv = σ(logit(c_i) + γ_V·V − θ_s·(price_i / price_reference − 1))`.
#[inline]
pub fn p_conv(
    conversion_rate: f64,
    conversion_effect: f64,
    brand_value: f64,
    price_sensitivity: f64,
    price: f64,
    price_reference: f64,
) -> f64 {
    if let Some(p) = exact_rate(logit(conversion_rate)) {
        return p;
    }
    sigmoid(
        logit(conversion_rate) + conversion_effect * brand_value
            - price_sensitivity * (price / price_reference - 1.0),
    )
}

/// Step 4, satisfaction of a new payer: `clamp(quality_i + σ_sat·Z, 0, 1)`.
#[inline]
pub fn satisfaction(quality: f64, satisfaction_noise: f64, z: f64) -> f64 {
    (quality + satisfaction_noise * z).clamp(0.0, 1.0)
}

/// Step 6, churn at a renewal:
/// `h = σ(logit(π_u) − δ_V·V − δ_sat·(sat_u − 0.5))`.
#[inline]
pub fn churn_probability(
    churn_propensity: f64,
    retention_effect: f64,
    brand_value: f64,
    satisfaction_effect: f64,
    satisfaction: f64,
) -> f64 {
    churn_probability_of_logit(
        logit(churn_propensity),
        retention_effect,
        brand_value,
        satisfaction_effect,
        satisfaction,
    )
}

/// [`churn_probability`] given `logit(π_u)` (`∓inf` for `π_u` of exactly 0 or
/// 1), which is how the engine draws `π_u`: a Beta draw within 1e-16 of 1
/// keeps its logit.
#[inline]
pub fn churn_probability_of_logit(
    churn_logit: f64,
    retention_effect: f64,
    brand_value: f64,
    satisfaction_effect: f64,
    satisfaction: f64,
) -> f64 {
    if let Some(p) = exact_rate(churn_logit) {
        return p;
    }
    sigmoid(
        churn_logit - retention_effect * brand_value - satisfaction_effect * (satisfaction - 0.5),
    )
}

/// Paid impression rates per user and day, one per segment:
/// `λ_s = Σ_k I_k · m_{s,k} / Σ_{s'} N_{s'} m_{s',k}` with `I_k = 1000·B_k / cpm_k`
/// (zero where the denominator is zero).
pub fn channel_rates(scenario: &Scenario, segment_sizes: &[u32]) -> Vec<f64> {
    let mut rates = vec![0.0; scenario.market.segments.len()];
    for (k, channel) in scenario.channels.iter().enumerate() {
        let impressions = 1000.0 * channel.daily_budget / channel.cpm;
        let reach: f64 = scenario
            .market
            .segments
            .iter()
            .zip(segment_sizes)
            .map(|(segment, &size)| f64::from(size) * segment.targeting[k])
            .sum();
        if reach > 0.0 {
            for (rate, segment) in rates.iter_mut().zip(&scenario.market.segments) {
                *rate += impressions * segment.targeting[k] / reach;
            }
        }
    }
    rates
}

/// Spend of one day: `Σ_k B_k + κ·V²`.
pub fn daily_spend(scenario: &Scenario) -> f64 {
    let budgets: f64 = scenario.channels.iter().map(|c| c.daily_budget).sum();
    budgets + scenario.brand.cost_per_day * scenario.brand.value * scenario.brand.value
}

/// `∂ log P(x) / ∂V = β·(x − p)` for a logistic Bernoulli draw with outcome `x`
/// whose logit has slope `β` in `V` (the score-function estimator's term).
#[inline]
pub fn logistic_score(slope: f64, outcome: bool, p: f64) -> f64 {
    slope * (f64::from(u8::from(outcome)) - p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_of_zero_and_one_stay_exact_whatever_the_shift() {
        for shift in [-30.0, -1.0, 0.0, 2.5, 40.0] {
            assert_eq!(p_click(logit(0.0), 1.0, shift, 0.3), 0.0);
            assert_eq!(p_click(logit(1.0), 1.0, shift, -0.3), 1.0);
            assert_eq!(p_conv(0.0, 0.5, shift, 1.0, 200.0, 99.0), 0.0);
            assert_eq!(p_conv(1.0, 0.5, shift, 1.0, 200.0, 99.0), 1.0);
            assert_eq!(churn_probability(0.0, 0.3, shift, 1.0, 0.9), 0.0);
            assert_eq!(churn_probability(1.0, 0.3, shift, 1.0, 0.1), 1.0);
        }
        // An infinite propensity (σ_s·z beyond f32) must not turn 0 into NaN.
        assert_eq!(p_click(logit(0.0), 0.0, 0.0, f64::INFINITY), 0.0);
        assert_eq!(p_click(logit(1.0), 0.0, 0.0, f64::NEG_INFINITY), 1.0);
    }

    #[test]
    fn logistic_formulas_reduce_to_base_rates_at_zero_shift() {
        assert!((p_click(logit(0.05), 0.8, 0.0, 0.0) - 0.05).abs() < 1e-15);
        assert!((p_conv(0.1, 0.5, 0.0, 1.2, 99.0, 99.0) - 0.1).abs() < 1e-15);
        assert!((churn_probability(0.2, 0.3, 0.0, 1.0, 0.5) - 0.2).abs() < 1e-15);
        assert!((exposure_probability(0.1, 0.2) - (1.0 - (-0.3f64).exp())).abs() < 1e-15);
    }

    /// `exp_bounded` keeps the relative error its doc comment states (and
    /// `clicks`' proof uses) over its whole range, with room to spare.
    #[test]
    fn exp_bounded_is_within_its_stated_error() {
        let mut worst = 0.0f64;
        let n = 1_200_000;
        for k in 0..=n {
            let y = -30.0 + 60.0 * f64::from(k) / f64::from(n);
            for y in [y, y.next_up(), y.next_down()] {
                if y.abs() <= 30.0 {
                    let exact = y.exp();
                    worst = worst.max(((exp_bounded(y) - exact) / exact).abs());
                }
            }
        }
        assert!(worst < 4.9e-6, "worst relative error {worst:e}");
        assert!(worst > 1e-7, "the bound is for degree 5; got {worst:e}");
    }

    /// The click decided without `exp` is `u < p_click(...)`, bit for bit, on
    /// millions of random (logit, uniform) pairs and at the edges: uniforms at
    /// `p` and its neighbours, 0 and the largest, propensities around ±30 and
    /// beyond, infinite and NaN terms, base rates of 0 and 1.
    #[test]
    fn clicks_decide_exactly_as_p_click() {
        let mut numbers = crate::rng::ReplicationKey::new(17, 4)
            .stream(0, crate::rng::Event::Click)
            .generator(0);
        let logits = [
            logit(0.0),
            logit(1.0),
            logit(0.05),
            logit(1e-300),
            logit(1.0 - 1e-16),
            -29.9,
            29.9,
            -45.0,
            45.0,
            0.0,
        ];
        let propensities = [
            0.0,
            30.0,
            -30.0,
            30.0f64.next_up(),
            -30.0f64.next_down(),
            60.0,
            -60.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            1e-300,
        ];
        let effects = [
            (0.8, 0.0),
            (0.8, 1.5),
            (-2.0, 3.0),
            (1e300, 1e10),
            (f64::NAN, 1.0),
        ];
        let mut checked = 0u64;
        let mut check = |u: f64, click_logit: f64, effect: f64, value: f64, propensity: f64| {
            let factor = click_factor(click_logit, effect, value);
            let expected = u < p_click(click_logit, effect, value, propensity);
            assert_eq!(
                clicks(u, click_logit, effect, value, propensity, factor),
                expected,
                "u {u:e}, logit {click_logit}, effect {effect}, value {value}, propensity {propensity}"
            );
            checked += 1;
        };
        for _ in 0..3_000_000 {
            let click_logit = (numbers.uniform() - 0.5) * 20.0;
            let propensity = (numbers.uniform() - 0.5) * 70.0;
            let value = (numbers.uniform() - 0.5) * 4.0;
            check(numbers.uniform(), click_logit, 0.8, value, propensity);
        }
        for &click_logit in &logits {
            for &propensity in &propensities {
                for &(effect, value) in &effects {
                    let p = p_click(click_logit, effect, value, propensity);
                    let mut uniforms = vec![0.0, 1.0 - f64::EPSILON / 2.0, 0.5];
                    if p.is_finite() {
                        uniforms.extend([p, p.next_up(), p.next_down()]);
                        uniforms.extend([p * (1.0 - 2e-6), p * (1.0 + 2e-6)]);
                        uniforms.extend([p * (1.0 - 1.2e-4), p * (1.0 + 1.2e-4)]);
                        // Just outside and inside the margin of the decision.
                        for share in [5.5e-5, 6.0e-5, 6.2e-5, 6.6e-5, 7.0e-5] {
                            uniforms.extend([p * (1.0 - share), p * (1.0 + share)]);
                        }
                    }
                    for _ in 0..200 {
                        uniforms.push(numbers.uniform());
                    }
                    for u in uniforms.into_iter().filter(|u| (0.0..1.0).contains(u)) {
                        check(u, click_logit, effect, value, propensity);
                    }
                }
            }
        }
        // Near p, on the 2^-53 grid the engine's uniforms live on.
        for _ in 0..200_000 {
            let click_logit = (numbers.uniform() - 0.5) * 12.0;
            let propensity = (numbers.uniform() - 0.5) * 8.0;
            let p = p_click(click_logit, 0.8, 0.5, propensity);
            let grid = (p * 9_007_199_254_740_992.0).floor();
            for step in -3..=3 {
                let u = (grid + f64::from(step)) / 9_007_199_254_740_992.0;
                if (0.0..1.0).contains(&u) {
                    check(u, click_logit, 0.8, 0.5, propensity);
                }
            }
            // Where the bounds decide, closest to their margin.
            let share = 6.2e-5 + 4e-5 * numbers.uniform();
            for u in [p * (1.0 - share), p * (1.0 + share)] {
                if (0.0..1.0).contains(&u) {
                    check(u, click_logit, 0.8, 0.5, propensity);
                }
            }
        }
        assert!(checked > 4_000_000);
    }

    #[test]
    fn satisfaction_is_clamped_to_the_unit_interval() {
        assert_eq!(satisfaction(0.9, 0.1, 5.0), 1.0);
        assert_eq!(satisfaction(0.1, 0.1, -5.0), 0.0);
        assert!((satisfaction(0.5, 0.1, 1.0) - 0.6).abs() < 1e-15);
    }
}

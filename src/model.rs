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
    sigmoid(click_logit + click_effect * brand_value + propensity)
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

    #[test]
    fn satisfaction_is_clamped_to_the_unit_interval() {
        assert_eq!(satisfaction(0.9, 0.1, 5.0), 1.0);
        assert_eq!(satisfaction(0.1, 0.1, -5.0), 0.0);
        assert!((satisfaction(0.5, 0.1, 1.0) - 0.6).abs() < 1e-15);
    }
}

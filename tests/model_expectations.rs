//! One simulated day against the expectations MODEL.md implies, computed here
//! independently of the engine: paid reach by segment and targeting, item choice
//! by topic and promotion, clicks with heterogeneous propensities, conversions
//! with the price effect, satisfaction, dormancy, and churn shifted by the brand
//! and satisfaction. Each count is a sum of independent per-user Bernoulli draws,
//! so its variance is at most its mean: tolerances are 5 standard errors.

use std::sync::Arc;

use brandsim::engine::simulate;
use brandsim::model::{logit, sigmoid};
use brandsim::outcome::Outcome;
use brandsim::scenario::{Scenario, parse_str};

const MARKET: &str = r#"
[simulation]
days = 1
seed = 11
replications = 1

[market]
population = 400_000
word_of_mouth = 0.0
dormancy = 0.3
price_reference = 100.0
satisfaction_noise = 0.3

[[market.segments]]
name = "broad"
share = 0.6
topics = { a = 0.7, b = 0.3 }
price_sensitivity = 1.0
click_heterogeneity = 0.8
churn_alpha = 1.0
churn_beta = 1.0
targeting = { ads = 2.0 }

[[market.segments]]
name = "narrow"
share = 0.4
topics = { b = 1.0 }
price_sensitivity = 0.0
click_heterogeneity = 0.0
churn_alpha = 1.0
churn_beta = 1.0
targeting = { ads = 0.5, social = 0.0 }

[[content]]
name = "a1"
topic = "a"
click_rate = 0.3
conversion_rate = 0.4
price = 150.0
quality = 0.7
promotion = 2.0
renewal_days = 0

[[content]]
name = "a2"
topic = "a"
click_rate = 0.2
conversion_rate = 0.5
price = 50.0
quality = 0.95
renewal_days = 0

[[content]]
name = "b1"
topic = "b"
click_rate = 0.25
conversion_rate = 0.3
price = 100.0
quality = 0.5
renewal_days = 0

[[content]]
name = "c1"
topic = "c"
click_rate = 0.5
conversion_rate = 0.5
price = 80.0
quality = 0.1
renewal_days = 0

[[channels]]
name = "ads"
daily_budget = 4000.0
cpm = 20.0

[[channels]]
name = "social"
daily_budget = 1000.0
cpm = 10.0

[brand]
value = 0.4
click_effect = 0.8
conversion_effect = 0.5
retention_effect = 0.3
satisfaction_effect = 1.0
topic_match = 0.7
cost_per_day = 0.0
"#;

fn market() -> Scenario {
    parse_str(MARKET, "market.toml").unwrap()
}

fn run(scenario: &Scenario, replication: u32) -> Outcome {
    simulate(&Arc::new(scenario.clone()), replication)
}

/// `E[f(Z)]`, `Z ~ Normal(0, 1)`, by Simpson's rule on [-10, 10].
fn normal_expectation(f: impl Fn(f64) -> f64) -> f64 {
    let (n, a, b) = (4000, -10.0, 10.0);
    let h = (b - a) / n as f64;
    let density = |z: f64| (-z * z / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
    (0..=n)
        .map(|k| {
            let z = a + h * k as f64;
            let weight = if k == 0 || k == n {
                1.0
            } else if k % 2 == 1 {
                4.0
            } else {
                2.0
            };
            weight * f(z) * density(z)
        })
        .sum::<f64>()
        * h
        / 3.0
}

fn assert_close(what: &str, observed: f64, expected: f64) {
    let tolerance = 5.0 * expected.max(1.0).sqrt();
    assert!(
        (observed - expected).abs() < tolerance,
        "{what}: simulated {observed}, expected {expected:.1} (tolerance {tolerance:.1})"
    );
}

/// Expected day-0 exposures, clicks and conversions per item, and satisfaction
/// summed over new payers, from MODEL.md's formulas.
struct DayZero {
    exposures: Vec<f64>,
    clicks: Vec<f64>,
    conversions: Vec<f64>,
    satisfaction: f64,
    registrations: f64,
}

fn expected_day_zero() -> DayZero {
    // Segments: 240 000 and 160 000 users. ads buys 200 000 impressions, shared by
    // targeting weight: reach 240 000·2 + 160 000·0.5 = 560 000. social buys
    // 100 000, all to "broad" (weight 1 by default; "narrow" 0).
    let sizes: [f64; 2] = [240_000.0, 160_000.0];
    let lambda: [f64; 2] = [
        200_000.0 * 2.0 / 560_000.0 + 100_000.0 / 240_000.0,
        200_000.0 * 0.5 / 560_000.0,
    ];
    // Favourite topics (a, b) per segment.
    let topics = [[0.7, 0.3], [0.0, 1.0]];
    // Items: a1, a2 (topic a), b1 (topic b), c1 (topic c); promotions 2, 1, 1, 1.
    let promotion = [2.0, 1.0, 1.0, 1.0];
    let item_topic = [0, 0, 1, 2];
    let (r, c, price, quality) = (
        [0.3, 0.2, 0.25, 0.5],
        [0.4, 0.5, 0.3, 0.5],
        [150.0, 50.0, 100.0, 80.0],
        [0.7, 0.95, 0.5, 0.1],
    );
    let (v, beta, gamma, m, sigma_sat) = (0.4, 0.8, 0.5, 0.7, 0.3);
    let theta = [1.0, 0.0];
    let click_sd = [0.8, 0.0];
    let total_promotion: f64 = promotion.iter().sum();
    let mut day = DayZero {
        exposures: vec![0.0; 4],
        clicks: vec![0.0; 4],
        conversions: vec![0.0; 4],
        satisfaction: 0.0,
        registrations: 0.0,
    };
    for s in 0..2 {
        let exposed = sizes[s] * (1.0 - (-lambda[s]).exp());
        for (topic, &weight) in topics[s].iter().enumerate() {
            let own: f64 = (0..4)
                .filter(|&i| item_topic[i] == topic)
                .map(|i| promotion[i])
                .sum();
            for i in 0..4 {
                let in_topic = if item_topic[i] == topic {
                    promotion[i] / own
                } else {
                    0.0
                };
                let choice = m * in_topic + (1.0 - m) * promotion[i] / total_promotion;
                let shown = exposed * weight * choice;
                let p_click =
                    normal_expectation(|z| sigmoid(logit(r[i]) + beta * v + click_sd[s] * z));
                let p_conv = sigmoid(logit(c[i]) + gamma * v - theta[s] * (price[i] / 100.0 - 1.0));
                let clicks = shown * p_click;
                day.exposures[i] += shown;
                day.clicks[i] += clicks;
                day.conversions[i] += clicks * p_conv;
                day.registrations += clicks;
                let mean_satisfaction =
                    normal_expectation(|z| (quality[i] + sigma_sat * z).clamp(0.0, 1.0));
                day.satisfaction += clicks * p_conv * mean_satisfaction;
            }
        }
    }
    day
}

#[test]
fn one_day_funnel_matches_the_model_item_by_item() {
    let expected = expected_day_zero();
    let outcome = run(&market(), 0);
    for (i, item) in outcome.items.iter().enumerate() {
        assert_close(
            &format!("exposures of item {i}"),
            item.exposures as f64,
            expected.exposures[i],
        );
        assert_close(
            &format!("clicks of item {i}"),
            item.clicks as f64,
            expected.clicks[i],
        );
        assert_close(
            &format!("conversions of item {i}"),
            item.conversions as f64,
            expected.conversions[i],
        );
    }
    // Everyone who clicks on day 0 registers (nobody is registered before).
    assert_close(
        "registrations",
        outcome.registrations as f64,
        expected.registrations,
    );
    assert_eq!(
        outcome.dormant, 0,
        "nobody is registered at the start of day 0"
    );
    let payers = outcome.conversions() as f64;
    let expected_mean = expected.satisfaction / expected.conversions.iter().sum::<f64>();
    let satisfaction = outcome.metrics().get("satisfaction").unwrap();
    assert!(
        (satisfaction - expected_mean).abs() < 5.0 * 0.5 / payers.sqrt(),
        "satisfaction {satisfaction}, expected {expected_mean}"
    );
}

#[test]
fn registered_non_payers_go_dormant_from_the_next_day() {
    let mut scenario = market();
    scenario.simulation.days = 2;
    for item in &mut scenario.content {
        item.conversion_rate = 0.0;
    }
    for replication in 0..3 {
        let outcome = run(&scenario, replication);
        let registered_day_zero = outcome.daily.registrations[0] as f64;
        assert_eq!(outcome.daily.dormant[0], 0);
        let dormant = outcome.daily.dormant[1] as f64;
        let expected = 0.3 * registered_day_zero;
        let se = (registered_day_zero * 0.3 * 0.7).sqrt();
        assert!(
            (dormant - expected).abs() < 5.0 * se,
            "dormant on day 1: {dormant}, expected {expected:.1} ± {se:.1}"
        );
    }
}

#[test]
fn churn_is_shifted_by_brand_value_and_satisfaction() {
    // Everyone subscribes on day 0 with satisfaction exactly 0.8, renews daily.
    let mut scenario = market();
    scenario.simulation.days = 2;
    scenario.market.population = 300_000;
    scenario.market.satisfaction_noise = 0.0;
    scenario.channels[0].daily_budget = 1e9;
    scenario.market.segments.truncate(1);
    scenario.market.segments[0].share = 1.0;
    scenario.market.segments[0].click_heterogeneity = 0.0;
    let (alpha, beta) = (2.0, 3.0);
    scenario.market.segments[0].churn_alpha = alpha;
    scenario.market.segments[0].churn_beta = beta;
    scenario.market.segments[0].targeting = vec![1.0, 1.0];
    for item in &mut scenario.content {
        item.click_rate = 1.0;
        item.conversion_rate = 1.0;
        item.quality = 0.8;
        item.renewal_days = 1;
    }
    let (v, delta_v, delta_sat) = (1.0, 0.3, 1.0);
    scenario.brand.value = v;
    let outcome = run(&scenario, 0);
    let subscribers = outcome.daily.active_payers[0] as f64;
    assert_eq!(subscribers, 300_000.0);
    // E over π ~ Beta(2, 3) of h = σ(logit π − δ_V·V − δ_sat·(0.8 − 0.5)), by
    // Simpson's rule on (0, 1); B(2, 3) = 1/12.
    let n = 20_000;
    let h = 1.0 / n as f64;
    let churn: f64 = (1..n)
        .map(|k| {
            let p: f64 = k as f64 * h;
            let density = p.powf(alpha - 1.0) * (1.0 - p).powf(beta - 1.0) * 12.0;
            let weight = if k % 2 == 1 { 4.0 } else { 2.0 };
            weight * density * sigmoid(logit(p) - delta_v * v - delta_sat * 0.3)
        })
        .sum::<f64>()
        * h
        / 3.0;
    let churned = outcome.daily.churned[1] as f64;
    let expected = subscribers * churn;
    let se = (subscribers * churn * (1.0 - churn)).sqrt();
    assert!(
        (churned - expected).abs() < 5.0 * se,
        "churned at the first renewal: {churned}, expected {expected:.1} ± {se:.1}"
    );
    // Without the shifts, churn is E[π] = α/(α+β).
    let mut plain = scenario.clone();
    plain.brand.retention_effect = 0.0;
    plain.brand.satisfaction_effect = 0.0;
    let churned = run(&plain, 0).daily.churned[1] as f64;
    let expected = subscribers * 0.4;
    assert!((churned - expected).abs() < 5.0 * (subscribers * 0.24).sqrt());
}

/// Issue 12, points 10 and 17: the churn at the first renewal of a market where
/// everyone subscribes on day 0, against the formula, where the float range
/// and the stored precision used to bend it: Beta shapes down to the smallest
/// doubles and up to the largest, and a satisfaction a hair above 0.5 times a
/// huge `satisfaction_effect` (stored as f32 it was exactly 0.5: h = 50%).
#[test]
fn churn_follows_the_formula_at_the_edges_of_shapes_and_precision() {
    // E[σ(logit π − s)] for π ~ Uniform(0, 1) = c·(ln(1/c)/k² − 1/k), with
    // c = e^−s, k = 1 − c.
    let uniform_churn = |shift: f64| {
        let c = (-shift).exp();
        let k = 1.0 - c;
        c * (-c.ln() / (k * k) - 1.0 / k)
    };
    let cases = [
        // (alpha, beta, quality, satisfaction_effect, expected churn)
        (1e-309, 1e-309, 0.8, 0.0, 0.5),
        (1e-308, 1e-308, 0.8, 0.0, 0.5),
        (5e-324, 1.5e-323, 0.8, 0.0, 0.25),
        (1e300, 3e300, 0.8, 0.0, 0.25),
        (f64::MAX, f64::MAX, 0.8, 0.0, 0.5),
        (1.0, 1.0, 0.500_000_029, 1e8, uniform_churn(2.9)),
    ];
    for (alpha, beta, quality, satisfaction_effect, churn) in cases {
        let mut scenario = market();
        scenario.simulation.days = 2;
        scenario.market.population = 100_000;
        scenario.market.satisfaction_noise = 0.0;
        scenario.channels[0].daily_budget = 1e9;
        scenario.market.segments.truncate(1);
        scenario.market.segments[0].share = 1.0;
        scenario.market.segments[0].churn_alpha = alpha;
        scenario.market.segments[0].churn_beta = beta;
        scenario.market.segments[0].targeting = vec![1.0, 1.0];
        for item in &mut scenario.content {
            item.click_rate = 1.0;
            item.conversion_rate = 1.0;
            item.quality = quality;
            item.renewal_days = 1;
        }
        scenario.brand.value = 0.0;
        scenario.brand.satisfaction_effect = satisfaction_effect;
        let outcome = run(&scenario, 0);
        let subscribers = outcome.daily.active_payers[0] as f64;
        assert_eq!(subscribers, 100_000.0);
        let churned = outcome.daily.churned[1] as f64;
        let expected = subscribers * churn;
        let se = (subscribers * churn * (1.0 - churn)).sqrt();
        assert!(
            (churned - expected).abs() < 5.0 * se,
            "Beta({alpha:e}, {beta:e}), quality {quality}, δ_sat {satisfaction_effect:e}: \
             churned {churned}, expected {expected:.1} ± {se:.1}"
        );
    }
}

/// Issue 12, point 10, the other draws at their edges: a click propensity
/// `ε_u ~ Normal(0, σ_s)` with σ_s = f64::MAX is ±inf (or huge) for almost
/// every user, so `p_click` is 0 or 1 with probability ½ each (never NaN), and
/// a satisfaction noise of f64::MAX clamps `sat_u` to 0 or 1, ½ each.
#[test]
fn huge_standard_deviations_give_the_limits_of_the_formulas() {
    let mut scenario = market();
    scenario.market.population = 100_000;
    scenario.market.satisfaction_noise = f64::MAX;
    scenario.market.segments.truncate(1);
    scenario.market.segments[0].share = 1.0;
    scenario.market.segments[0].click_heterogeneity = f64::MAX;
    scenario.market.segments[0].targeting = vec![1.0, 1.0];
    scenario.channels[0].daily_budget = 1e9;
    for item in &mut scenario.content {
        item.conversion_rate = 1.0;
    }
    scenario.brand.value = 0.0;
    let outcome = run(&scenario, 0);
    let exposures = outcome.exposures() as f64;
    let clicks = outcome.clicks() as f64;
    assert_eq!(exposures, 100_000.0);
    let se = (exposures * 0.25).sqrt();
    assert!(
        (clicks - exposures / 2.0).abs() < 5.0 * se,
        "clicks {clicks} of {exposures} exposures, expected half ± {:.1}",
        5.0 * se
    );
    // Everyone who clicked paid; each satisfaction is 0 or 1.
    let payers = outcome.active_payers as f64;
    assert_eq!(payers, clicks);
    let satisfied = outcome.satisfaction_sum;
    assert_eq!(satisfied.fract(), 0.0);
    let se = (payers * 0.25).sqrt();
    assert!(
        (satisfied - payers / 2.0).abs() < 5.0 * se,
        "{satisfied} of {payers} satisfied"
    );
}

//! The engine against known results of the model: the Bass mean-field recursion,
//! the shifted-beta-geometric survival curve, and invariants of the randomness.

mod accounting;

use std::sync::Arc;

use brandsim::engine::simulate;
use brandsim::outcome::Outcome;
use brandsim::scenario::{Scenario, parse_str};

fn bass() -> Scenario {
    parse_str(include_str!("../scenarios/bass.toml"), "bass.toml").unwrap()
}

fn mean_and_se(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

fn run(scenario: &Scenario, replications: u32) -> Vec<Outcome> {
    let scenario = Arc::new(scenario.clone());
    (0..replications).map(|j| simulate(&scenario, j)).collect()
}

#[test]
fn adopters_follow_bass_mean_field() {
    let scenario = bass();
    let n = f64::from(scenario.market.population);
    let (p, q) = (0.01, scenario.market.word_of_mouth);
    let outcomes = run(&scenario, 8);
    let mut f = 0.0;
    for day in 0..scenario.simulation.days as usize {
        f += (1.0 - f) * (1.0 - (-(p + q * f)).exp());
        let adopters: Vec<f64> = outcomes
            .iter()
            .map(|o| o.daily.active_payers[day] as f64 / n)
            .collect();
        let (mean, se) = mean_and_se(&adopters);
        // The binomial noise of one day bounds the standard error from below.
        let tolerance = 5.0 * se.max((f * (1.0 - f) / n / 8.0).sqrt()) + 1e-6;
        assert!(
            (mean - f).abs() < tolerance,
            "day {day}: simulated F = {mean:.5}, Bass recursion F = {f:.5}, tolerance {tolerance:.5}"
        );
    }
    assert!(f > 0.9, "the horizon covers the whole diffusion (F = {f})");
}

fn everyone_subscribes_on_day_zero(alpha: f64, beta: f64) -> Scenario {
    let mut scenario = bass();
    scenario.simulation.days = 12;
    scenario.market.population = 200_000;
    scenario.market.word_of_mouth = 0.0;
    scenario.channels[0].daily_budget = 1e9; // λ = 1e5: exposure certain on day 0
    scenario.content[0].renewal_days = 1;
    let segment = &mut scenario.market.segments[0];
    segment.churn_alpha = alpha;
    segment.churn_beta = beta;
    scenario
}

#[test]
fn survivors_follow_the_shifted_beta_geometric_curve() {
    for (alpha, beta) in [(0.704, 1.182), (2.0, 5.0)] {
        let scenario = everyone_subscribes_on_day_zero(alpha, beta);
        let n = f64::from(scenario.market.population);
        let outcome = &run(&scenario, 1)[0];
        assert_eq!(outcome.daily.active_payers[0] as f64, n);
        let mut survival = 1.0;
        for k in 1..scenario.simulation.days as usize {
            // S(k) = B(α, β+k) / B(α, β) = Π_{i<k} (β+i)/(α+β+i)
            survival *= (beta + (k - 1) as f64) / (alpha + beta + (k - 1) as f64);
            let observed = outcome.daily.active_payers[k] as f64 / n;
            let se = (survival * (1.0 - survival) / n).sqrt();
            assert!(
                (observed - survival).abs() < 5.0 * se,
                "α={alpha} β={beta} renewal {k}: survivors {observed:.5}, sBG {survival:.5} (se {se:.5})"
            );
        }
    }
}

#[test]
fn results_do_not_depend_on_thread_count() {
    let mut scenario = bass();
    scenario.simulation.days = 20;
    scenario.market.dormancy = 0.05;
    scenario.content[0].conversion_rate = 0.3;
    scenario.content[0].renewal_days = 3;
    scenario.market.satisfaction_noise = 0.2;
    scenario.market.segments[0].click_heterogeneity = 0.5;
    let scenario = Arc::new(scenario);
    let on = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| simulate(&scenario, 3))
    };
    let one = on(1);
    assert_eq!(one, on(2));
    assert_eq!(one, on(3));
}

#[test]
fn common_random_numbers_make_day_zero_clicks_monotone_in_brand_value() {
    let mut scenario = bass();
    scenario.simulation.days = 1;
    scenario.content[0].click_rate = 0.1;
    scenario.content[0].conversion_rate = 0.2;
    scenario.brand.click_effect = 0.8;
    scenario.market.segments[0].click_heterogeneity = 1.0;
    scenario.channels[0].daily_budget = 500.0;
    for seed in 0..5 {
        scenario.simulation.seed = seed;
        for (v, c) in [(0.0, 0.1), (1.0, 0.05), (-2.0, 0.5)] {
            let mut low = scenario.clone();
            low.brand.value = v - c;
            let mut high = scenario.clone();
            high.brand.value = v + c;
            let (low, high) = (&run(&low, 1)[0], &run(&high, 1)[0]);
            assert_eq!(low.exposures(), high.exposures());
            assert!(high.clicks() >= low.clicks(), "seed {seed}, V={v}, c={c}");
        }
    }
}

#[test]
fn accounting_identities_hold_on_every_replication() {
    let scenario = parse_str(
        include_str!("../scenarios/knowledge_platform.toml"),
        "knowledge_platform.toml",
    )
    .unwrap();
    for outcome in run(&scenario, 4) {
        accounting::assert_accounting_identities(&scenario, &outcome);
        // Exactly, not just within rounding: revenue is summed from item counts.
        let m = outcome.metrics();
        let get = |name: &str| m.get(name).unwrap();
        let expected_revenue: f64 = outcome
            .items
            .iter()
            .zip(&scenario.content)
            .map(|(i, item)| item.price * (i.conversions + i.renewals) as f64)
            .sum();
        assert_eq!(get("revenue"), expected_revenue);
        assert_eq!(get("profit"), get("revenue") - get("spend"));
    }
}

#[test]
fn a_replication_is_the_same_alone_or_inside_a_study() {
    let mut scenario = bass();
    scenario.simulation.days = 15;
    scenario.content[0].conversion_rate = 0.4;
    scenario.content[0].renewal_days = 4;
    let scenario = Arc::new(scenario);
    let pool = brandsim::study::thread_pool(2);
    let study = brandsim::study::run_replications(&scenario, &[0, 1, 2, 3, 4], &pool, &|_| {});
    let alone = simulate(&scenario, 3);
    assert_eq!(study.outcomes[3], alone);
    assert_ne!(study.outcomes[2], alone);
    let reversed = brandsim::study::run_replications(&scenario, &[4, 3], &pool, &|_| {});
    assert_eq!(reversed.outcomes[1], alone);
}

//! Network word of mouth and seeding against known results (MODEL.md v2,
//! "Social-network word of mouth", "Seeding"): exact day-by-day waves on
//! hand-made graphs, the exposure probability with paying friends, the Bass
//! mean-field limit, structure in its known direction, and the accounting of
//! seeding. Statistical checks use tolerances from standard errors and fixed seeds.

mod accounting;

use std::sync::Arc;

use brandsim::engine::{build_world, day_schedule, simulate};
use brandsim::outcome::Outcome;
use brandsim::scenario::{
    GraphScope, Network, NetworkModel, Scenario, Seeding, SeedingRule, parse_str,
};

/// The Bass market (every exposed user buys at once, one-off, satisfaction 1),
/// `population` users, no paid channel unless `p > 0` (`p` impressions per user
/// a day), mean-field word of mouth `q`.
fn market(population: u32, days: u32, p: f64, q: f64) -> Scenario {
    let mut scenario = parse_str(include_str!("../scenarios/bass.toml"), "bass.toml").unwrap();
    scenario.market.population = population;
    scenario.simulation.days = days;
    scenario.market.word_of_mouth = q;
    // p = 1000·B/cpm/N impressions per user and day.
    scenario.channels[0].daily_budget =
        p * f64::from(population) * scenario.channels[0].cpm / 1000.0;
    scenario
}

fn with_network(mut scenario: Scenario, model: NetworkModel, q_net: f64) -> Scenario {
    scenario.market.network = Some(Network {
        model,
        word_of_mouth: q_net,
        graph: GraphScope::PerReplication,
    });
    scenario
}

fn edges(edges: Vec<(u32, u32)>) -> NetworkModel {
    NetworkModel::File {
        path: "hand-made.csv".into(),
        edges: Arc::new(edges),
    }
}

fn seeding(day: u32, users: u32, rule: SeedingRule) -> Seeding {
    Seeding {
        name: format!("seed-{day}-{users}"),
        day,
        item: 0,
        users,
        rule,
        segment: None,
        cost_per_user: 0.0,
    }
}

fn run(scenario: &Scenario, replications: u32) -> Vec<Outcome> {
    let scenario = Arc::new(scenario.clone());
    let outcomes: Vec<Outcome> = (0..replications).map(|j| simulate(&scenario, j)).collect();
    for outcome in &outcomes {
        accounting::assert_accounting_identities(&scenario, outcome);
    }
    outcomes
}

fn mean_and_se(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

/// A `q_net` so large that a user with a paying friend is exposed for sure.
const CERTAIN: f64 = 1e6;

#[test]
fn a_wave_moves_one_step_a_day_along_a_path() {
    // Path 0 – 1 – … – 9; top-degree seeds user 1 (degree 2, the lowest number).
    let path = edges((1..10).map(|v| (v - 1, v)).collect());
    let mut scenario = with_network(market(10, 12, 0.0, 0.0), path, CERTAIN);
    scenario.seeding = vec![seeding(0, 1, SeedingRule::TopDegree)];
    let outcome = &run(&scenario, 1)[0];
    // Seeded before the day's aggregates: its neighbours 0 and 2 buy on day 0;
    // then one more user a day (a day's buyers are heard of from the next day).
    assert_eq!(
        outcome.daily.seeded,
        vec![1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    assert_eq!(
        outcome.daily.conversions,
        vec![2, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0]
    );
    assert_eq!(
        outcome.daily.active_payers,
        vec![3, 4, 5, 6, 7, 8, 9, 10, 10, 10, 10, 10]
    );
    assert_eq!(outcome.revenue, 9.0 * 10.0, "the seeded user pays nothing");
}

#[test]
fn a_seeded_hub_reaches_its_leaves_the_same_day_and_isolated_users_never() {
    // A star on 0..=5 and the isolated users 6..=9.
    let star = edges((1..6).map(|v| (0, v)).collect());
    let mut scenario = with_network(market(10, 5, 0.0, 0.0), star, CERTAIN);
    scenario.seeding = vec![seeding(0, 1, SeedingRule::TopDegree)];
    let outcome = &run(&scenario, 1)[0];
    assert_eq!(outcome.daily.conversions, vec![5, 0, 0, 0, 0]);
    assert_eq!(outcome.aware, 6);
    // The empty graph: the seeded user has no one to tell.
    let mut alone = with_network(market(10, 5, 0.0, 0.0), edges(Vec::new()), CERTAIN);
    alone.seeding = vec![seeding(0, 3, SeedingRule::Random)];
    let outcome = &run(&alone, 1)[0];
    assert_eq!(
        (outcome.conversions(), outcome.seeded, outcome.active_payers),
        (0, 3, 3)
    );
}

#[test]
fn a_leaf_with_a_paying_hub_is_exposed_with_probability_one_minus_exp_of_its_rates() {
    // Star: the hub (user 0) is seeded with satisfaction 1 on day 0, so each
    // leaf's ω^net = q_net·1/1 every day; with λ = 0.01 and ω = q·S/N the
    // leaves still unaware on day t buy with 1 − exp(−(λ + ω_t + q_net)).
    let leaves = 20_000u32;
    let star = edges((1..=leaves).map(|v| (0, v)).collect());
    let (p, q, q_net) = (0.01, 0.2, 0.3);
    let mut scenario = with_network(market(leaves + 1, 4, p, q), star, q_net);
    scenario.seeding = vec![seeding(0, 1, SeedingRule::TopDegree)];
    let outcomes = run(&scenario, 4);
    let n = f64::from(leaves + 1);
    for day in 0..4 {
        // Per replication: the share of the leaves unaware at the start of the
        // day that buy on it, against the model's probability at the day's S.
        let mut residuals = Vec::new();
        for outcome in &outcomes {
            let payers_at_start = if day == 0 {
                1.0
            } else {
                outcome.daily.active_payers[day - 1] as f64
            };
            let left = n - payers_at_start;
            let omega = q * payers_at_start / n;
            let expected = 1.0 - (-(p + omega + q_net)).exp();
            let bought = outcome.daily.conversions[day] as f64;
            residuals
                .push((bought - expected * left) / (expected * (1.0 - expected) * left).sqrt());
        }
        // Each residual is a standardised binomial count: mean 0, sd 1.
        let (mean, _) = mean_and_se(&residuals);
        assert!(
            mean.abs() < 4.0 / (residuals.len() as f64).sqrt(),
            "day {day}: standardised residuals {residuals:?}"
        );
    }
}

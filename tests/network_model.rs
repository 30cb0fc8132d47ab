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

/// `F(t)`, the adopters' share at the end of each day, of the Bass recursion
/// `F(t+1) = F(t) + (1 − F(t))·(1 − exp(−(p + q·F(t))))` (one-off buyers who all
/// recommend with satisfaction 1).
fn bass_curve(p: f64, q: f64, days: usize) -> Vec<f64> {
    let mut f = 0.0;
    (0..days)
        .map(|_| {
            f += (1.0 - f) * (1.0 - (-(p + q * f)).exp());
            f
        })
        .collect()
}

/// The `q` whose Bass curve is closest (least squares) to `observed`, given `p`.
fn fitted_q(p: f64, observed: &[f64]) -> f64 {
    let loss = |q: f64| -> f64 {
        bass_curve(p, q, observed.len())
            .iter()
            .zip(observed)
            .map(|(f, o)| (f - o).powi(2))
            .sum()
    };
    // Golden-section search: the loss is unimodal in q around the truth.
    let (mut low, mut high) = (0.0f64, 2.0f64);
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..100 {
        let a = high - ratio * (high - low);
        let b = low + ratio * (high - low);
        if loss(a) < loss(b) {
            high = b;
        } else {
            low = a;
        }
    }
    (low + high) / 2.0
}

#[test]
fn adopters_on_a_dense_random_graph_follow_the_bass_mean_field() {
    // MODEL.md v2: with word_of_mouth = 0 and q_net = q on a graph of high mean
    // degree, ω^net_{u,t} ≈ q·S_t/N: the Bass recursion with q, up to a lag of
    // order 1/mean_degree (here 1/400, far below the standard error).
    let (p, q, days) = (0.01, 0.3, 60usize);
    let scenario = with_network(
        market(10_000, days as u32, p, 0.0),
        NetworkModel::ErdosRenyi { mean_degree: 400.0 },
        q,
    );
    let outcomes = run(&scenario, 8);
    let n = f64::from(scenario.market.population);
    let estimates: Vec<f64> = outcomes
        .iter()
        .map(|o| {
            let observed: Vec<f64> = o
                .daily
                .active_payers
                .iter()
                .map(|&a| a as f64 / n)
                .collect();
            fitted_q(p, &observed)
        })
        .collect();
    let (mean, se) = mean_and_se(&estimates);
    eprintln!("q estimates {estimates:?}: {mean} ± {se}");
    assert!(
        (mean - q).abs() < 4.0 * se,
        "fitted q = {mean:.4} ± {se:.4} (per replication {estimates:?}), Bass q = {q}"
    );
    // And day by day, the mean curve within 5 standard errors of the recursion.
    let curve = bass_curve(p, q, days);
    for (day, f) in curve.iter().enumerate() {
        let shares: Vec<f64> = outcomes
            .iter()
            .map(|o| o.daily.active_payers[day] as f64 / n)
            .collect();
        let (mean, se) = mean_and_se(&shares);
        let tolerance = 5.0 * se.max((f * (1.0 - f) / n / 8.0).sqrt()) + 1e-6;
        assert!(
            (mean - f).abs() < tolerance,
            "day {day}: simulated F = {mean:.5}, Bass F = {f:.5}, tolerance {tolerance:.5}"
        );
    }
}

/// The paired differences `b_j − a_j` of `metric` over the same replications:
/// their mean and its standard error.
fn paired(a: &[Outcome], b: &[Outcome], metric: impl Fn(&Outcome) -> f64) -> (f64, f64) {
    let differences: Vec<f64> = a
        .iter()
        .zip(b)
        .map(|(a, b)| metric(b) - metric(a))
        .collect();
    mean_and_se(&differences)
}

#[test]
fn a_ring_lattice_diffuses_slower_than_a_rewired_graph_of_the_same_degree() {
    // Friends of friends are friends on the ring: word of mouth stays local and
    // re-reaches the same people; rewiring every edge spreads it.
    let base = market(20_000, 60, 0.002, 0.0);
    let on = |rewiring: f64| {
        let scenario = with_network(
            base.clone(),
            NetworkModel::WattsStrogatz { k: 10, rewiring },
            0.3,
        );
        run(&scenario, 8)
    };
    let (ring, rewired) = (on(0.0), on(1.0));
    let adopters_by_day_40 = |o: &Outcome| o.daily.active_payers[39] as f64;
    let (difference, se) = paired(&ring, &rewired, adopters_by_day_40);
    eprintln!("rewired − ring adopters by day 40: {difference} ± {se}");
    assert!(
        difference - 4.0 * se > 0.0,
        "rewired − ring adopters by day 40 = {difference:.1} ± {se:.1}: the interval includes 0"
    );
}

#[test]
fn seeding_the_top_degree_users_of_a_scale_free_graph_beats_seeding_at_random() {
    let base = with_network(
        market(20_000, 30, 0.0, 0.0),
        NetworkModel::BarabasiAlbert { m: 2 },
        0.3,
    );
    let with_rule = |rule: SeedingRule| {
        let mut scenario = base.clone();
        scenario.seeding = vec![seeding(0, 100, rule)];
        run(&scenario, 8)
    };
    let (random, top) = (
        with_rule(SeedingRule::Random),
        with_rule(SeedingRule::TopDegree),
    );
    let adopters = |o: &Outcome| o.active_payers as f64;
    let (difference, se) = paired(&random, &top, adopters);
    eprintln!("top-degree − random adopters: {difference} ± {se}");
    assert!(
        difference - 4.0 * se > 0.0,
        "top-degree − random adopters = {difference:.1} ± {se:.1}: the interval includes 0"
    );
}

#[test]
fn seeding_counts_in_seeded_aware_and_spend_but_not_in_revenue_conversions_or_registrations() {
    for renewal_days in [0, 4] {
        let mut scenario = market(1000, 10, 0.0, 0.0);
        scenario.content[0].renewal_days = renewal_days;
        scenario.seeding = vec![Seeding {
            cost_per_user: 2.5,
            ..seeding(3, 100, SeedingRule::Random)
        }];
        let outcome = &run(&scenario, 1)[0];
        let daily = &outcome.daily;
        assert_eq!(daily.seeded, vec![0, 0, 0, 100, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            daily.aware,
            vec![0, 0, 0, 100, 100, 100, 100, 100, 100, 100]
        );
        assert_eq!(
            daily.spend,
            vec![0.0, 0.0, 0.0, 250.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        );
        assert_eq!(daily.active_payers[3], 100);
        assert_eq!(
            (outcome.conversions(), outcome.registrations, outcome.seeded),
            (0, 0, 100)
        );
        assert_eq!(daily.revenue[3], 0.0, "the first period is free");
        if renewal_days == 0 {
            assert_eq!(outcome.revenue, 0.0);
        } else {
            // Every seeded subscriber is due on day 3 + 4: renews (and pays) or churns.
            assert_eq!(daily.renewals[7] + daily.churned[7], 100);
            assert_eq!(daily.revenue[7], 10.0 * daily.renewals[7] as f64);
            assert!(daily.renewals[7] > 0 && daily.churned[7] > 0);
        }
    }
}

#[test]
fn a_registered_user_seeded_on_a_day_draws_no_dormancy_that_day() {
    // Day 0: everyone is exposed and clicks, nobody converts: all Registered.
    // Day 1: dormancy is certain for every registered user not seeded.
    let mut scenario = market(1000, 3, 50.0, 0.0);
    scenario.content[0].conversion_rate = 0.0;
    scenario.market.dormancy = 1.0;
    scenario.seeding = vec![seeding(1, 100, SeedingRule::Random)];
    let outcome = &run(&scenario, 1)[0];
    assert_eq!(outcome.daily.registrations, vec![1000, 0, 0]);
    assert_eq!(outcome.daily.dormant, vec![0, 900, 0]);
    assert_eq!(outcome.daily.active_payers, vec![0, 100, 100]);
    assert_eq!((outcome.seeded, outcome.seeded_registered), (100, 100));
}

#[test]
fn seedings_of_one_day_run_in_file_order_and_take_only_candidates() {
    let mut scenario = market(1000, 3, 0.0, 0.0);
    scenario.seeding = vec![
        Seeding {
            cost_per_user: 1.0,
            ..seeding(0, 990, SeedingRule::Random)
        },
        // Only 10 candidates are left for the second.
        Seeding {
            name: "second".into(),
            cost_per_user: 100.0,
            ..seeding(0, 50, SeedingRule::Random)
        },
        // Nobody is left on day 1.
        Seeding {
            cost_per_user: 7.0,
            ..seeding(1, 5, SeedingRule::Random)
        },
    ];
    let outcome = &run(&scenario, 1)[0];
    assert_eq!(outcome.daily.seeded, vec![1000, 0, 0]);
    // In file order 990·1 + 10·100; the other way round it would be 50·100 + 950·1.
    assert_eq!(outcome.daily.spend, vec![1990.0, 0.0, 0.0]);
}

#[test]
fn a_segment_seeding_takes_users_of_its_segment_only() {
    let mut scenario = parse_str(
        include_str!("../scenarios/knowledge_platform.toml"),
        "knowledge_platform.toml",
    )
    .unwrap();
    scenario.market.population = 1000;
    scenario.simulation.days = 2;
    scenario.market.word_of_mouth = 0.0;
    scenario
        .channels
        .iter_mut()
        .for_each(|c| c.daily_budget = 0.0);
    let hobbyists = 2;
    let item = scenario
        .content
        .iter()
        .position(|i| i.name == "tech-pro-monthly")
        .unwrap();
    scenario.seeding = vec![Seeding {
        item,
        segment: Some(hobbyists),
        ..seeding(0, 500, SeedingRule::Random)
    }];
    let sizes = scenario.segment_sizes();
    let scenario = Arc::new(scenario);
    let mut world = build_world(&scenario, 0);
    day_schedule().run(&mut world);
    let segments: Vec<u16> = world
        .resource::<brandsim::engine::resources::Subscribers>()
        .ever()
        .map(|profile| profile.segment)
        .collect();
    assert_eq!(
        segments.len() as u32,
        sizes[hobbyists],
        "every hobbyist, no more"
    );
    assert!(segments.iter().all(|&s| usize::from(s) == hobbyists));
    let outcome = simulate(&scenario, 0);
    assert_eq!(outcome.seeded, u64::from(sizes[hobbyists]));
    accounting::assert_accounting_identities(&scenario, &outcome);
}

/// The knowledge platform on a small-world network with both kinds of seeding:
/// every stage (subscriptions, churn, dormancy) and both rules.
fn platform_with_network_and_seeding() -> Scenario {
    let mut scenario = parse_str(
        include_str!("../scenarios/knowledge_platform.toml"),
        "knowledge_platform.toml",
    )
    .unwrap();
    scenario.market.population = 20_000;
    scenario.simulation.days = 60;
    let item = scenario
        .content
        .iter()
        .position(|i| i.name == "tech-pro-monthly")
        .unwrap();
    scenario.seeding = vec![
        Seeding {
            item,
            cost_per_user: 3.0,
            ..seeding(2, 200, SeedingRule::TopDegree)
        },
        Seeding {
            item,
            segment: Some(0),
            ..seeding(20, 300, SeedingRule::Random)
        },
    ];
    with_network(
        scenario,
        NetworkModel::WattsStrogatz {
            k: 8,
            rewiring: 0.2,
        },
        0.4,
    )
}

#[test]
fn results_with_a_network_and_seeding_do_not_depend_on_thread_count() {
    let scenario = Arc::new(platform_with_network_and_seeding());
    let on = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| simulate(&scenario, 5))
    };
    let one = on(1);
    assert!(one.seeded == 500 && one.churned > 0 && one.dormant > 0);
    accounting::assert_accounting_identities(&scenario, &one);
    assert_eq!(one, on(2));
    assert_eq!(one, on(3));
}

#[test]
fn runs_that_differ_only_in_a_later_seeding_are_identical_before_its_day() {
    let with = platform_with_network_and_seeding();
    let mut without = with.clone();
    without.seeding.truncate(1);
    let (with, without) = (&run(&with, 1)[0], &run(&without, 1)[0]);
    let days = 0..20;
    assert_eq!(
        with.daily.exposures[days.clone()],
        without.daily.exposures[days.clone()]
    );
    assert_eq!(
        with.daily.conversions[days.clone()],
        without.daily.conversions[days.clone()]
    );
    assert_eq!(
        with.daily.churned[days.clone()],
        without.daily.churned[days]
    );
    assert_ne!(
        with.daily.active_payers[20],
        without.daily.active_payers[20]
    );
}

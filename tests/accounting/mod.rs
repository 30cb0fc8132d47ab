//! The accounting identities every replication must satisfy, whatever the
//! scenario (shared by the engine-model, degenerate-scenario and fuzz tests).

use brandsim::outcome::Outcome;
use brandsim::scenario::Scenario;

/// Equal, or within a relative `1e-9`; two non-finite values must be the same.
fn close(a: f64, b: f64) -> bool {
    if !a.is_finite() || !b.is_finite() {
        return a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
    }
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Panics, naming the identity, if `outcome` breaks one.
pub fn assert_accounting_identities(scenario: &Scenario, outcome: &Outcome) {
    let n = u64::from(scenario.market.population);
    let days = scenario.simulation.days as usize;
    let m = outcome.metrics();
    let get = |name: &str| m.get(name).unwrap();
    assert!(
        outcome.conversions() <= outcome.registrations,
        "conversions <= registrations"
    );
    assert!(
        outcome.registrations <= outcome.aware,
        "registrations <= aware"
    );
    assert!(outcome.aware <= n, "aware <= N");
    assert!(
        outcome.clicks() <= outcome.exposures(),
        "clicks <= exposures"
    );
    for item in &outcome.items {
        assert!(item.conversions <= item.clicks && item.clicks <= item.exposures);
    }
    assert_eq!(
        outcome.registrations,
        outcome.conversions()
            + outcome.dormant
            + outcome.registered_at_end
            + outcome.seeded_registered,
        "every registered user converted, went dormant, is still registered, or was seeded"
    );
    assert_eq!(
        outcome.conversions() + outcome.seeded,
        outcome.active_payers + outcome.churned,
        "every converter and every seeded user is still paying or churned"
    );
    assert!(
        outcome.seeded_registered <= outcome.seeded,
        "seeded registered users <= seeded"
    );
    let expected_revenue: f64 = outcome
        .items
        .iter()
        .zip(&scenario.content)
        .map(|(i, item)| item.price * (i.conversions + i.renewals) as f64)
        .sum();
    // With campaigns or a schedule each payment pays its day's price: only the
    // daily sum below holds.
    let prices_fixed = !scenario.calendar.is_time_varying();
    assert!(
        !prices_fixed || close(get("revenue"), expected_revenue),
        "revenue = Σ price·(conversions + renewals)"
    );
    let expected_revenue = if prices_fixed {
        expected_revenue
    } else {
        get("revenue")
    };
    let daily_revenue: f64 = outcome.daily.revenue.iter().sum();
    assert!(
        close(daily_revenue, expected_revenue),
        "daily revenue sums to revenue"
    );
    let total = |series: &[u64]| series.iter().sum::<u64>();
    assert_eq!(outcome.daily.days(), days, "one daily value per day");
    assert_eq!(total(&outcome.daily.exposures), outcome.exposures());
    assert_eq!(total(&outcome.daily.clicks), outcome.clicks());
    assert_eq!(total(&outcome.daily.registrations), outcome.registrations);
    assert_eq!(total(&outcome.daily.conversions), outcome.conversions());
    assert_eq!(total(&outcome.daily.renewals), outcome.renewals());
    assert_eq!(total(&outcome.daily.churned), outcome.churned);
    assert_eq!(total(&outcome.daily.dormant), outcome.dormant);
    assert_eq!(outcome.daily.aware[days - 1], outcome.aware);
    assert_eq!(outcome.daily.active_payers[days - 1], outcome.active_payers);
    assert_seeding_accounting(scenario, outcome);
    let seeding_spend: f64 = (0..days)
        .map(|t| {
            let seedings: Vec<_> = scenario
                .seeding
                .iter()
                .filter(|s| s.day as usize == t)
                .collect();
            match seedings.as_slice() {
                [one] => outcome.daily.value("seeded", t) * one.cost_per_user,
                _ => 0.0,
            }
        })
        .sum();
    let one_seeding_a_day = (0..days).all(|t| {
        scenario
            .seeding
            .iter()
            .filter(|s| s.day as usize == t)
            .count()
            <= 1
    });
    let daily_spend: f64 = scenario
        .channels
        .iter()
        .map(|c| c.daily_budget)
        .sum::<f64>()
        + scenario.brand.cost_per_day * scenario.brand.value * scenario.brand.value;
    assert!(
        !prices_fixed
            || !one_seeding_a_day
            || close(get("spend"), daily_spend * days as f64 + seeding_spend),
        "spend = days · (Σ B_k + κ·V²) + Σ seeded · cost_per_user"
    );
    assert!(
        close(get("spend"), outcome.daily.spend.iter().sum()),
        "daily spend sums to spend"
    );
    assert!(
        close(get("profit"), get("revenue") - get("spend")),
        "profit = revenue − spend"
    );
    for rate in [
        "acquisition_rate",
        "conversion_rate",
        "awareness",
        "satisfaction",
        "seed_r",
    ] {
        let value = get(rate);
        assert!(
            (0.0..=1.0).contains(&value),
            "{rate} = {value} is in [0, 1]"
        );
    }
}

/// MODEL.md v2, "Seeding": the daily series `seeded` sums to the metric, is
/// empty without `[[seeding]]`, zero on days without one, and at most the users
/// the day's seedings ask for.
fn assert_seeding_accounting(scenario: &Scenario, outcome: &Outcome) {
    let days = scenario.simulation.days as usize;
    if scenario.seeding.is_empty() {
        assert!(
            outcome.daily.seeded.is_empty(),
            "no seeded series without seeding"
        );
        assert_eq!(outcome.seeded, 0, "nothing seeded without seeding");
        return;
    }
    assert_eq!(outcome.daily.seeded.len(), days, "one seeded value per day");
    assert_eq!(
        outcome.daily.seeded.iter().sum::<u64>(),
        outcome.seeded,
        "daily seeded sums to seeded"
    );
    for (t, &seeded) in outcome.daily.seeded.iter().enumerate() {
        let asked: u64 = scenario
            .seeding
            .iter()
            .filter(|s| s.day as usize == t)
            .map(|s| u64::from(s.users))
            .sum();
        assert!(seeded <= asked, "day {t}: seeded {seeded} <= asked {asked}");
    }
    assert_eq!(
        outcome.metrics().get("seeded"),
        Some(outcome.seeded as f64),
        "the seeded metric"
    );
}

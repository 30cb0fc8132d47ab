//! Campaigns and schedules in the engine against known results (MODEL.md v2,
//! "Campaigns and schedules", "The calendar"): the Bass recursion with a
//! time-varying `p`, common random numbers before a campaign, prices and
//! availability by day, and `npv`.

use std::sync::Arc;

use brandsim::engine::simulate;
use brandsim::outcome::{DailySeries, Outcome};
use brandsim::scenario::{Scenario, parse_str};

fn scenario(text: &str) -> Scenario {
    parse_str(text, "campaigns.toml").unwrap_or_else(|error| panic!("{error}"))
}

fn run(scenario: &Scenario, replications: u32) -> Vec<Outcome> {
    let scenario = Arc::new(scenario.clone());
    (0..replications).map(|j| simulate(&scenario, j)).collect()
}

fn mean_and_se(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

const BASS: &str = include_str!("../scenarios/bass.toml");
const PLATFORM: &str = include_str!("../scenarios/knowledge_platform.toml");

/// Every daily series of one replication as rows of numbers, day by day.
fn days(series: &DailySeries) -> Vec<Vec<f64>> {
    (0..series.days())
        .map(|day| {
            brandsim::metrics::SERIES_NAMES
                .iter()
                .map(|name| series.value(name, day))
                .collect()
        })
        .collect()
}

#[test]
fn bass_with_a_budget_doubled_on_days_20_to_39_follows_the_time_varying_recursion() {
    // A slower diffusion than bass.toml's (p = 0.005, q = 0.1), so that the
    // doubled budget of days 20-39 still moves it.
    let slow = BASS
        .replace("word_of_mouth = 0.3", "word_of_mouth = 0.1")
        .replace("daily_budget = 10.0", "daily_budget = 5.0");
    let text = format!(
        "{slow}\n[[campaigns]]\nname = \"double\"\nstart = 20\nend = 39\n\
         set = {{ \"channels.ads.daily_budget\" = 10.0 }}\n"
    );
    let scenario = scenario(&text);
    let n = f64::from(scenario.market.population);
    let q = scenario.market.word_of_mouth;
    // p_t = 1000·B_t/cpm/N: 0.005, and 0.01 while the budget is doubled.
    let p = |t: usize| if (20..=39).contains(&t) { 0.01 } else { 0.005 };
    let outcomes = run(&scenario, 8);
    let (mut f, mut f_constant) = (0.0, 0.0);
    let mut largest_gap: f64 = 0.0;
    for day in 0..scenario.simulation.days as usize {
        f += (1.0 - f) * (1.0 - (-(p(day) + q * f)).exp());
        f_constant += (1.0 - f_constant) * (1.0 - (-(0.005 + q * f_constant)).exp());
        let adopters: Vec<f64> = outcomes
            .iter()
            .map(|o| o.daily.active_payers[day] as f64 / n)
            .collect();
        let (mean, se) = mean_and_se(&adopters);
        let tolerance = 5.0 * se.max((f * (1.0 - f) / n / 8.0).sqrt()) + 1e-6;
        assert!(
            (mean - f).abs() < tolerance,
            "day {day}: simulated F = {mean:.5}, recursion with p_t F = {f:.5}, tolerance {tolerance:.5}"
        );
        largest_gap = largest_gap.max((f - f_constant).abs() / tolerance);
        // The budget is spent as the campaign says.
        let spend = if (20..=39).contains(&day) { 10.0 } else { 5.0 };
        assert!(outcomes.iter().all(|o| o.daily.spend[day] == spend));
    }
    assert!(
        largest_gap > 3.0,
        "the test must tell the doubled budget from the constant one"
    );
}

#[test]
fn runs_that_differ_only_in_a_campaign_from_day_30_are_identical_before_it() {
    let base_text = PLATFORM.replace("population = 100_000", "population = 20_000");
    let with_campaign = format!(
        "{base_text}\n[[campaigns]]\nname = \"push\"\nstart = 30\nend = 44\nset = {{ \
         \"brand.value\" = 1.0, \"channels.kol.daily_budget\" = 50.0, \
         \"content.annual-vip.price\" = 199.0, \"market.dormancy\" = 0.05 }}\n"
    );
    let mut base = scenario(&base_text);
    let mut campaign = scenario(&with_campaign);
    base.simulation.days = 60;
    campaign.simulation.days = 60;
    for j in 0..3 {
        let (a, b) = (
            &run(&base, j + 1)[j as usize],
            &run(&campaign, j + 1)[j as usize],
        );
        let (a, b) = (days(&a.daily), days(&b.daily));
        for day in 0..30 {
            let same = a[day]
                .iter()
                .zip(&b[day])
                .all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(
                same,
                "replication {j} day {day}: {:?} vs {:?}",
                a[day], b[day]
            );
        }
        assert_ne!(a[30], b[30], "replication {j}: the campaign changes day 30");
    }
}

/// One item (`renewal_days` given), 20 000 users reached fast, no word of mouth.
fn one_item(renewal_days: u32, campaign: &str) -> Scenario {
    let text = BASS
        .replace("population = 100_000", "population = 20_000")
        .replace("word_of_mouth = 0.3", "word_of_mouth = 0.0")
        .replace("daily_budget = 10.0", "daily_budget = 4.0")
        .replace("conversion_rate = 1.0", "conversion_rate = 0.5")
        .replace(
            "renewal_days = 0",
            &format!("renewal_days = {renewal_days}"),
        );
    scenario(&format!("{text}\n{campaign}"))
}

#[test]
fn a_price_campaign_changes_revenue_per_payment_only_inside_its_window() {
    let campaign = "[[campaigns]]\nname = \"sale\"\nstart = 10\nend = 19\n\
                    set = { \"content.the product.price\" = 4.0 }\n";
    for renewal_days in [0, 7] {
        let scenario = one_item(renewal_days, campaign);
        let outcome = &run(&scenario, 1)[0];
        let daily = &outcome.daily;
        let mut renewals_in_window = 0;
        for day in 0..daily.days() {
            let price = if (10..=19).contains(&day) { 4.0 } else { 10.0 };
            let payments = daily.conversions[day] + daily.renewals[day];
            assert!(payments > 0, "day {day} has payments");
            assert_eq!(
                daily.revenue[day],
                payments as f64 * price,
                "renewal_days {renewal_days}, day {day}: every payment pays the day's price"
            );
            if (10..=19).contains(&day) {
                renewals_in_window += daily.renewals[day];
            }
        }
        if renewal_days > 0 {
            // Subscribers of before the sale renew inside it, at the sale price.
            assert!(
                renewals_in_window > 100,
                "{renewals_in_window} renewals in the window"
            );
        }
        assert_eq!(outcome.revenue, daily.revenue.iter().sum::<f64>());
    }
}

#[test]
fn unavailable_items_are_never_shown_while_spend_and_renewals_go_on() {
    let campaign = "[[campaigns]]\nname = \"closed\"\nstart = 10\nend = 19\n\
                    set = { \"content.the product.available\" = false }\n";
    let scenario = one_item(3, campaign);
    let outcome = &run(&scenario, 1)[0];
    let daily = &outcome.daily;
    for day in 0..daily.days() {
        let closed = (10..=19).contains(&day);
        assert_eq!(daily.exposures[day] == 0, closed, "day {day}");
        assert_eq!(daily.spend[day], 4.0, "day {day}: spend is still counted");
        if closed {
            assert_eq!(daily.clicks[day] + daily.conversions[day], 0);
            assert!(
                daily.renewals[day] > 0,
                "day {day}: subscribers keep renewing"
            );
        }
    }
    // Registered users still turn dormant while nothing is shown.
    let mut dormant = one_item(3, campaign);
    dormant.market.dormancy = 0.2;
    dormant.content[0].click_rate = 0.5;
    let outcome = &run(&dormant, 1)[0];
    assert!((10..=19).all(|day| outcome.daily.exposures[day] == 0));
    assert!(outcome.daily.dormant[12] > 0);
}

#[test]
fn an_unavailable_item_is_left_out_before_the_promotion_rules() {
    // Two items of one topic; the promoted one is unavailable all year: the
    // other, with promotion 0, is then the only choice.
    let text = format!(
        "{}\n[[content]]\nname = \"other\"\ntopic = \"product\"\nclick_rate = 1.0\n\
         conversion_rate = 1.0\nprice = 10.0\nquality = 1.0\npromotion = 0.0\nrenewal_days = 0\n",
        BASS.replace("renewal_days = 0", "renewal_days = 0\navailable = false")
    );
    let mut scenario = scenario(&text);
    scenario.simulation.days = 5;
    let outcome = &run(&scenario, 1)[0];
    assert_eq!(outcome.items[0].exposures, 0);
    assert!(outcome.items[1].exposures > 0);
}

#[test]
fn a_campaign_over_the_whole_horizon_equals_setting_the_values_directly() {
    let set = [
        ("brand.value", "0.7"),
        ("brand.topic_match", "0.5"),
        ("brand.cost_per_day", "20.0"),
        ("market.word_of_mouth", "0.5"),
        ("market.dormancy", "0.04"),
        ("channels.ads.daily_budget", "55.0"),
        ("channels.seo.cpm", "5.0"),
        ("market.segments.students.targeting.kol", "0.3"),
        ("content.english-club.price", "19.0"),
        ("content.english-club.quality", "0.4"),
        ("content.annual-vip.promotion", "3.0"),
        ("content.money-basics.click_rate", "0.2"),
        ("content.python-from-zero.conversion_rate", "0.3"),
    ];
    let base_text = PLATFORM.replace("population = 100_000", "population = 20_000");
    let entries: Vec<String> = set.iter().map(|(k, v)| format!("\"{k}\" = {v}")).collect();
    let campaign = format!(
        "{base_text}\n[[campaigns]]\nname = \"all-year\"\nstart = 0\nend = 999\nset = {{ {} }}\n",
        entries.join(", ")
    );
    let assignments: Vec<_> = set
        .iter()
        .map(|(k, v)| brandsim::scenario::parse_assignment(&format!("{k}={v}")).unwrap())
        .collect();
    let direct = brandsim::scenario::ScenarioSource {
        file: "direct.toml".into(),
        document: base_text.parse().unwrap(),
    }
    .with_overrides(&assignments)
    .unwrap()
    .0;
    let mut with_campaign = scenario(&campaign);
    let mut direct = direct;
    with_campaign.simulation.days = 90;
    direct.simulation.days = 90;
    for j in 0..2 {
        let a = &run(&direct, j + 1)[j as usize];
        let b = &run(&with_campaign, j + 1)[j as usize];
        assert_eq!(days(&a.daily), days(&b.daily), "replication {j}");
        assert_eq!(a.items, b.items);
        assert_eq!(a.active_payers, b.active_payers);
    }
}

#[test]
fn npv_is_profit_at_rate_zero_and_the_discounted_daily_sum_otherwise() {
    let base_text = PLATFORM.replace("population = 100_000", "population = 20_000");
    let mut scenario = scenario(&base_text);
    scenario.simulation.days = 400;
    let outcome = &run(&scenario, 1)[0];
    assert_eq!(outcome.npv, outcome.revenue - outcome.spend);
    let metrics = outcome.metrics();
    assert_eq!(metrics.get("npv"), metrics.get("profit"));

    scenario.calendar.discount_rate = 0.1;
    let outcome = &run(&scenario, 1)[0];
    let by_hand: f64 = (0..400)
        .map(|t| {
            (outcome.daily.revenue[t] - outcome.daily.spend[t]) / 1.1f64.powf(t as f64 / 365.0)
        })
        .sum();
    assert!((outcome.npv - by_hand).abs() <= 1e-9 * by_hand.abs());
    assert!(outcome.npv < outcome.revenue - outcome.spend);
}

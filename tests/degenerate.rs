//! Degenerate but legal scenarios: each passes validation, runs, satisfies the
//! accounting identities on every replication, and gives the obvious result.

mod accounting;

use std::sync::Arc;

use accounting::assert_accounting_identities;
use brandsim::engine::simulate;
use brandsim::outcome::Outcome;
use brandsim::scenario::{Scenario, parse_str};
use toml::{Table, Value};

const PLATFORM: &str = include_str!("../scenarios/knowledge_platform.toml");

/// The bundled platform scenario, made small (3000 users, 90 days), edited as a
/// TOML document and validated like a file: so every variant is legal.
fn variant(edit: impl FnOnce(&mut Table)) -> Scenario {
    let mut document: Table = toml::from_str(PLATFORM).unwrap();
    let market = document["market"].as_table_mut().unwrap();
    market.insert("population".into(), Value::Integer(3000));
    let simulation = document["simulation"].as_table_mut().unwrap();
    simulation.insert("days".into(), Value::Integer(90));
    edit(&mut document);
    let text = toml::to_string(&document).unwrap();
    parse_str(&text, "variant.toml").unwrap_or_else(|error| panic!("a legal variant: {error}"))
}

fn table<'a>(document: &'a mut Table, key: &str) -> &'a mut Table {
    document[key].as_table_mut().unwrap()
}

/// Sets `key` in every element of the array of tables at `path` (`content`, `channels`).
fn set_all(document: &mut Table, path: &str, key: &str, value: Value) {
    let list = match path {
        "market.segments" => table(document, "market")["segments"].as_array_mut(),
        _ => document[path].as_array_mut(),
    };
    for element in list.unwrap() {
        element
            .as_table_mut()
            .unwrap()
            .insert(key.into(), value.clone());
    }
}

/// Runs three replications and checks the identities on each.
fn run_checked(scenario: &Scenario) -> Vec<Outcome> {
    let shared = Arc::new(scenario.clone());
    (0..3)
        .map(|j| {
            let outcome = simulate(&shared, j);
            assert_accounting_identities(scenario, &outcome);
            outcome
        })
        .collect()
}

#[test]
fn zero_budget_reaches_nobody_and_spends_only_on_the_brand() {
    let scenario = variant(|d| {
        set_all(d, "channels", "daily_budget", Value::Float(0.0));
        table(d, "brand").insert("value".into(), Value::Float(2.0));
    });
    for outcome in run_checked(&scenario) {
        assert_eq!(outcome.exposures(), 0);
        assert_eq!(outcome.aware, 0);
        // κ·V² = 50 · 4 a day.
        assert_eq!(outcome.spend, 200.0 * 90.0);
    }
}

#[test]
fn a_segment_with_share_zero_has_no_users() {
    let scenario = variant(|d| {
        let segments = table(d, "market")["segments"].as_array_mut().unwrap();
        segments[0]
            .as_table_mut()
            .unwrap()
            .insert("share".into(), Value::Float(0.0));
        segments[1]
            .as_table_mut()
            .unwrap()
            .insert("share".into(), Value::Float(0.8));
    });
    assert_eq!(scenario.segment_sizes(), vec![0, 2400, 600]);
    for outcome in run_checked(&scenario) {
        assert!(outcome.exposures() > 0);
    }
}

#[test]
fn one_day_horizon_gives_one_day_of_series() {
    let scenario = variant(|d| {
        table(d, "simulation").insert("days".into(), Value::Integer(1));
    });
    for outcome in run_checked(&scenario) {
        assert_eq!(outcome.daily.days(), 1);
        assert_eq!(outcome.renewals(), 0);
        assert_eq!(
            outcome.dormant, 0,
            "nobody is registered at the start of day 0"
        );
    }
}

#[test]
fn free_items_convert_without_revenue() {
    let scenario = variant(|d| {
        set_all(d, "content", "price", Value::Float(0.0));
        set_all(d, "content", "conversion_rate", Value::Float(0.5));
    });
    for outcome in run_checked(&scenario) {
        assert!(outcome.conversions() > 0);
        assert_eq!(outcome.revenue, 0.0);
    }
}

#[test]
fn rates_of_zero_stop_the_funnel_at_exposure() {
    let scenario = variant(|d| {
        set_all(d, "content", "click_rate", Value::Float(0.0));
        set_all(d, "content", "conversion_rate", Value::Float(0.0));
        set_all(d, "content", "quality", Value::Float(0.0));
        let market = table(d, "market");
        market.insert("dormancy".into(), Value::Float(0.0));
        market.insert("satisfaction_noise".into(), Value::Float(0.0));
        table(d, "brand").insert("topic_match".into(), Value::Float(0.0));
        table(d, "brand").insert("value".into(), Value::Float(3.0));
    });
    for outcome in run_checked(&scenario) {
        assert!(outcome.exposures() > 0);
        assert_eq!(outcome.clicks(), 0);
        assert_eq!(outcome.registrations, 0);
        assert_eq!(outcome.conversions(), 0);
    }
}

#[test]
fn rates_of_one_convert_every_exposed_user_at_once() {
    let scenario = variant(|d| {
        set_all(d, "content", "click_rate", Value::Float(1.0));
        set_all(d, "content", "conversion_rate", Value::Float(1.0));
        set_all(d, "content", "quality", Value::Float(1.0));
        set_all(d, "market.segments", "churn_beta", Value::Float(1e-9));
        let market = table(d, "market");
        market.insert("dormancy".into(), Value::Float(1.0));
        table(d, "brand").insert("topic_match".into(), Value::Float(1.0));
        table(d, "brand").insert("value".into(), Value::Float(-3.0));
    });
    for outcome in run_checked(&scenario) {
        assert!(outcome.exposures() > 0);
        assert_eq!(outcome.clicks(), outcome.exposures());
        assert_eq!(outcome.conversions(), outcome.registrations);
        assert_eq!(
            outcome.dormant, 0,
            "everyone converts the day they register"
        );
    }
}

#[test]
fn a_topic_whose_items_all_have_promotion_zero_is_never_shown() {
    // Career items: interview-bootcamp and annual-vip.
    let scenario = variant(|d| {
        for element in d["content"].as_array_mut().unwrap() {
            let item = element.as_table_mut().unwrap();
            if item["topic"].as_str() == Some("career") {
                item.insert("promotion".into(), Value::Float(0.0));
            }
        }
    });
    let career: Vec<usize> = (0..scenario.content.len())
        .filter(|&i| scenario.topics[scenario.content[i].topic] == "career")
        .collect();
    assert_eq!(career.len(), 2);
    for outcome in run_checked(&scenario) {
        assert!(outcome.exposures() > 0);
        for &i in &career {
            assert_eq!(
                outcome.items[i].exposures, 0,
                "{}",
                scenario.content[i].name
            );
        }
    }
}

#[test]
fn no_item_with_promotion_falls_back_to_uniform_choice() {
    let scenario = variant(|d| set_all(d, "content", "promotion", Value::Float(0.0)));
    for outcome in run_checked(&scenario) {
        assert!(outcome.items.iter().all(|item| item.exposures > 0));
    }
}

#[test]
fn without_paid_channels_nothing_happens() {
    let scenario = variant(|d| {
        d.remove("channels");
        set_all(
            d,
            "market.segments",
            "targeting",
            Value::Table(Table::new()),
        );
    });
    assert!(scenario.channels.is_empty());
    for outcome in run_checked(&scenario) {
        assert_eq!(outcome.exposures(), 0);
        assert_eq!(outcome.spend, 0.0);
    }
}

#[test]
fn without_word_of_mouth_exposure_stays_at_the_paid_rate() {
    let scenario = variant(|d| {
        table(d, "market").insert("word_of_mouth".into(), Value::Float(0.0));
    });
    let with_word_of_mouth = variant(|_| {});
    let exposures = |s: &Scenario| -> u64 { run_checked(s).iter().map(Outcome::exposures).sum() };
    assert!(exposures(&scenario) < exposures(&with_word_of_mouth));
}

#[test]
fn huge_renewal_days_never_renew_within_the_horizon() {
    let scenario = variant(|d| {
        set_all(
            d,
            "content",
            "renewal_days",
            Value::Integer(i64::from(u32::MAX)),
        );
        set_all(d, "content", "conversion_rate", Value::Float(0.5));
    });
    for outcome in run_checked(&scenario) {
        assert!(outcome.conversions() > 0);
        assert_eq!(outcome.renewals(), 0);
        assert_eq!(outcome.churned, 0);
    }
}

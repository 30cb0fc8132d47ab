//! `[[uncertain]]` (MODEL.md version 2, "Parameter uncertainty"): scenario
//! values drawn once per replication, before day 0, from a stream keyed by
//! `(S, j, uncertain index)`; parsing and validation with key paths, and the
//! draws themselves.
//!
//! A `--set`, a variant (compare arm), a sweep point or a sensitivity design
//! point that sets an uncertain key fixes it: the resolved document then marks
//! the entry `fixed = true` (a brandsim extension), which keeps the entry, and
//! so the stream index of every later entry, in place.

use std::collections::HashMap;

use toml::{Table, Value};

use super::Scenario;
use super::load::{Bound, Checked, Field, Kind, Validator, optional, required};
use super::overrides::{Step, key_path, locate};
use crate::distributions::{beta_logit, normal_mass, truncated_normal};
use crate::model::sigmoid;
use crate::rng::{Event, INITIAL_DAY, ReplicationKey};

/// One `[[uncertain]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Uncertain {
    /// The key as the file writes it (`channels.ads.daily_budget`): the name of
    /// its column in `replications.csv`.
    pub key: String,
    pub distribution: UncertainDistribution,
    /// Set by `--set`, a variant or a grid point: not drawn, the key keeps its
    /// value.
    pub fixed: bool,
    slot: Slot,
}

/// The distribution of an uncertain key; parameters as MODEL.md names them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UncertainDistribution {
    /// Normal(mean, sd) truncated to the key's range (inverse CDF).
    Normal {
        mean: f64,
        sd: f64,
    },
    /// exp(Normal(ln median, sigma)) truncated to the key's range.
    LogNormal {
        median: f64,
        sigma: f64,
    },
    Uniform {
        low: f64,
        high: f64,
    },
    Triangular {
        low: f64,
        mode: f64,
        high: f64,
    },
    /// `low + (high − low)·Beta(alpha, beta)`.
    Beta {
        alpha: f64,
        beta: f64,
        low: f64,
        high: f64,
    },
}

/// Which value of a [`Scenario`] an uncertain key sets, with its range.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Slot {
    WordOfMouth,
    /// `market.network.word_of_mouth` (q_net), only with a network.
    NetworkWordOfMouth,
    Dormancy,
    PriceReference,
    SatisfactionNoise,
    PriceSensitivity(usize),
    ClickHeterogeneity(usize),
    ChurnAlpha(usize),
    ChurnBeta(usize),
    Targeting(usize, usize),
    Price(usize),
    Promotion(usize),
    ClickRate(usize),
    ConversionRate(usize),
    Quality(usize),
    DailyBudget(usize),
    Cpm(usize),
    BrandValue,
    CostPerDay,
    TopicMatch,
    ClickEffect,
    ConversionEffect,
    RetentionEffect,
    SatisfactionEffect,
    DiscountRate,
}

impl Slot {
    fn value(self, scenario: &mut Scenario) -> &mut f64 {
        let market = &mut scenario.market;
        let brand = &mut scenario.brand;
        match self {
            Slot::WordOfMouth => &mut market.word_of_mouth,
            Slot::NetworkWordOfMouth => {
                &mut market
                    .network
                    .as_mut()
                    .expect("the slot exists only with a network")
                    .word_of_mouth
            }
            Slot::Dormancy => &mut market.dormancy,
            Slot::PriceReference => &mut market.price_reference,
            Slot::SatisfactionNoise => &mut market.satisfaction_noise,
            Slot::PriceSensitivity(s) => &mut market.segments[s].price_sensitivity,
            Slot::ClickHeterogeneity(s) => &mut market.segments[s].click_heterogeneity,
            Slot::ChurnAlpha(s) => &mut market.segments[s].churn_alpha,
            Slot::ChurnBeta(s) => &mut market.segments[s].churn_beta,
            Slot::Targeting(s, k) => &mut market.segments[s].targeting[k],
            Slot::Price(i) => &mut scenario.content[i].price,
            Slot::Promotion(i) => &mut scenario.content[i].promotion,
            Slot::ClickRate(i) => &mut scenario.content[i].click_rate,
            Slot::ConversionRate(i) => &mut scenario.content[i].conversion_rate,
            Slot::Quality(i) => &mut scenario.content[i].quality,
            Slot::DailyBudget(k) => &mut scenario.channels[k].daily_budget,
            Slot::Cpm(k) => &mut scenario.channels[k].cpm,
            Slot::BrandValue => &mut brand.value,
            Slot::CostPerDay => &mut brand.cost_per_day,
            Slot::TopicMatch => &mut brand.topic_match,
            Slot::ClickEffect => &mut brand.click_effect,
            Slot::ConversionEffect => &mut brand.conversion_effect,
            Slot::RetentionEffect => &mut brand.retention_effect,
            Slot::SatisfactionEffect => &mut brand.satisfaction_effect,
            Slot::DiscountRate => {
                &mut std::sync::Arc::make_mut(&mut scenario.calendar).discount_rate
            }
        }
    }

    /// The key's valid range, as the scenario schema gives it.
    fn bound(self) -> Bound {
        match self {
            Slot::Dormancy
            | Slot::ClickRate(_)
            | Slot::ConversionRate(_)
            | Slot::Quality(_)
            | Slot::TopicMatch => Bound::Unit,
            Slot::PriceReference | Slot::ChurnAlpha(_) | Slot::ChurnBeta(_) | Slot::Cpm(_) => {
                Bound::Positive
            }
            Slot::BrandValue
            | Slot::ClickEffect
            | Slot::ConversionEffect
            | Slot::RetentionEffect
            | Slot::SatisfactionEffect => Bound::Finite,
            _ => Bound::NonNegative,
        }
    }
}

/// `[low, high]` of a bound, and whether `low` itself is excluded (`> 0`).
fn range_of(bound: Bound) -> (f64, f64, bool) {
    match bound {
        Bound::Finite => (f64::NEG_INFINITY, f64::INFINITY, false),
        Bound::NonNegative => (0.0, f64::INFINITY, false),
        Bound::Positive => (0.0, f64::INFINITY, true),
        Bound::Unit => (0.0, 1.0, false),
    }
}

/// The keys an `[[uncertain]]` table may hold.
const FIELDS: &[Field] = &[
    required("key", Kind::Text),
    required("distribution", Kind::OneOf(DISTRIBUTIONS)),
    optional("mean", Kind::Number(Bound::Finite)),
    optional("sd", Kind::Number(Bound::Positive)),
    optional("median", Kind::Number(Bound::Positive)),
    optional("sigma", Kind::Number(Bound::Positive)),
    optional("low", Kind::Number(Bound::Finite)),
    optional("mode", Kind::Number(Bound::Finite)),
    optional("high", Kind::Number(Bound::Finite)),
    optional("alpha", Kind::Number(Bound::Positive)),
    optional("beta", Kind::Number(Bound::Positive)),
    optional("fixed", Kind::Boolean),
];

const DISTRIBUTIONS: &[&str] = &["normal", "lognormal", "uniform", "triangular", "beta"];

/// Required and optional parameters of each distribution.
fn parameters(distribution: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match distribution {
        "normal" => (&["mean", "sd"], &[]),
        "lognormal" => (&["median", "sigma"], &[]),
        "uniform" => (&["low", "high"], &[]),
        "triangular" => (&["low", "mode", "high"], &[]),
        _ => (&["alpha", "beta"], &["low", "high"]),
    }
}

const CAPABLE: &str = "uncertain-capable keys are market.{word_of_mouth, dormancy, \
    price_reference, satisfaction_noise}, market.segments.<s>.{price_sensitivity, \
    click_heterogeneity, churn_alpha, churn_beta, targeting.<c>}, content.<i>.{price, \
    promotion, click_rate, conversion_rate, quality}, channels.<c>.{daily_budget, cpm}, \
    brand.{value, cost_per_day, topic_match, click_effect, conversion_effect, \
    retention_effect, satisfaction_effect}, market.network.word_of_mouth (with a network) and \
    simulation.discount_rate";

/// The slot a key path's steps name, if it is uncertain-capable.
fn slot_of(steps: &[Step], scenario: &Scenario) -> Option<Slot> {
    use Step::{Index, Key};
    let names: Vec<Option<&str>> = steps
        .iter()
        .map(|step| match step {
            Key(key) => Some(key.as_str()),
            Index(_) => None,
        })
        .collect();
    let slot = match (names.as_slice(), steps) {
        ([Some("simulation"), Some("discount_rate")], _) => Slot::DiscountRate,
        ([Some("market"), Some("network"), Some("word_of_mouth")], _) => {
            scenario.market.network.as_ref()?;
            Slot::NetworkWordOfMouth
        }
        ([Some("market"), Some(field)], _) => match *field {
            "word_of_mouth" => Slot::WordOfMouth,
            "dormancy" => Slot::Dormancy,
            "price_reference" => Slot::PriceReference,
            "satisfaction_noise" => Slot::SatisfactionNoise,
            _ => return None,
        },
        ([Some("market"), Some("segments"), None, Some(field)], [_, _, Index(s), _]) => {
            match *field {
                "price_sensitivity" => Slot::PriceSensitivity(*s),
                "click_heterogeneity" => Slot::ClickHeterogeneity(*s),
                "churn_alpha" => Slot::ChurnAlpha(*s),
                "churn_beta" => Slot::ChurnBeta(*s),
                _ => return None,
            }
        }
        (
            [
                Some("market"),
                Some("segments"),
                None,
                Some("targeting"),
                Some(channel),
            ],
            [_, _, Index(s), _, _],
        ) => {
            let k = scenario.channels.iter().position(|c| c.name == *channel)?;
            Slot::Targeting(*s, k)
        }
        ([Some("content"), None, Some(field)], [_, Index(i), _]) => match *field {
            "price" => Slot::Price(*i),
            "promotion" => Slot::Promotion(*i),
            "click_rate" => Slot::ClickRate(*i),
            "conversion_rate" => Slot::ConversionRate(*i),
            "quality" => Slot::Quality(*i),
            _ => return None,
        },
        ([Some("channels"), None, Some(field)], [_, Index(k), _]) => match *field {
            "daily_budget" => Slot::DailyBudget(*k),
            "cpm" => Slot::Cpm(*k),
            _ => return None,
        },
        ([Some("brand"), Some(field)], _) => match *field {
            "value" => Slot::BrandValue,
            "cost_per_day" => Slot::CostPerDay,
            "topic_match" => Slot::TopicMatch,
            "click_effect" => Slot::ClickEffect,
            "conversion_effect" => Slot::ConversionEffect,
            "retention_effect" => Slot::RetentionEffect,
            "satisfaction_effect" => Slot::SatisfactionEffect,
            _ => return None,
        },
        _ => return None,
    };
    Some(slot)
}

/// Marks `fixed = true` on every `[[uncertain]]` entry whose key an override
/// (`--set`, a variant, a grid point) has set, before validation.
pub(super) fn fix_set_keys(document: &mut Table, set_by: &HashMap<String, String>) {
    if set_by.is_empty() {
        return;
    }
    let Some(Value::Array(entries)) = document.get("uncertain") else {
        return;
    };
    let fixed: Vec<bool> = entries
        .iter()
        .map(|entry| {
            entry
                .get("key")
                .and_then(Value::as_str)
                .and_then(|key| locate(document, key).ok())
                .is_some_and(|steps| set_by.contains_key(&key_path(&steps)))
        })
        .collect();
    if let Some(Value::Array(entries)) = document.get_mut("uncertain") {
        for (entry, fixed) in entries.iter_mut().zip(fixed) {
            if let (true, Some(table)) = (fixed, entry.as_table_mut()) {
                table.insert("fixed".to_string(), Value::Boolean(true));
            }
        }
    }
}

/// Validates the `[[uncertain]]` tables of `document` against `scenario` (the
/// rest of the file, already valid); errors at `uncertain[i].<key>`.
pub(super) fn parse(
    validator: &Validator<'_>,
    document: &Table,
    scenario: &Scenario,
) -> Checked<Vec<Uncertain>> {
    let Some(elements) = document.get("uncertain").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    let mut paths: HashMap<String, usize> = HashMap::new();
    let mut uncertain = Vec::new();
    for (i, element) in elements.iter().enumerate() {
        let path = format!("uncertain[{i}]");
        let empty = Table::new();
        let table = element.as_table().unwrap_or(&empty);
        validator.check_table(&path, table, FIELDS)?;
        let at = |key: &str| format!("{path}.{key}");
        let number = |key: &str| table.get(key).and_then(number_of);
        let key = table.get("key").and_then(Value::as_str).unwrap_or_default();
        let steps = locate(document, key)
            .map_err(|message| validator.error(&at("key"), format!("{key:?}: {message}")))?;
        let Some(slot) = slot_of(&steps, scenario) else {
            return Err(validator.error(
                &at("key"),
                format!("{key:?} cannot be uncertain; {CAPABLE}"),
            ));
        };
        let canonical = key_path(&steps);
        if let Some(first) = paths.insert(canonical.clone(), i) {
            return Err(validator.error(
                &at("key"),
                format!("{key:?} is already uncertain in uncertain[{first}]"),
            ));
        }
        let name = table
            .get("distribution")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let (needed, allowed) = parameters(name);
        for parameter in [
            "mean", "sd", "median", "sigma", "low", "mode", "high", "alpha", "beta",
        ] {
            let present = table.contains_key(parameter);
            if present && !needed.contains(&parameter) && !allowed.contains(&parameter) {
                return Err(validator.error(
                    &at(parameter),
                    format!(
                        "a {name} distribution has no {parameter:?}; it takes {}",
                        describe_parameters(needed, allowed)
                    ),
                ));
            }
            if !present && needed.contains(&parameter) {
                return Err(validator.error(
                    &path,
                    format!(
                        "missing {parameter:?}: a {name} distribution takes {}",
                        describe_parameters(needed, allowed)
                    ),
                ));
            }
        }
        let get = |key: &str| number(key).unwrap_or_default();
        let distribution = match name {
            "normal" => UncertainDistribution::Normal {
                mean: get("mean"),
                sd: get("sd"),
            },
            "lognormal" => UncertainDistribution::LogNormal {
                median: get("median"),
                sigma: get("sigma"),
            },
            "uniform" => UncertainDistribution::Uniform {
                low: get("low"),
                high: get("high"),
            },
            "triangular" => UncertainDistribution::Triangular {
                low: get("low"),
                mode: get("mode"),
                high: get("high"),
            },
            _ => UncertainDistribution::Beta {
                alpha: get("alpha"),
                beta: get("beta"),
                low: number("low").unwrap_or(0.0),
                high: number("high").unwrap_or(1.0),
            },
        };
        check_support(distribution, slot.bound())
            .map_err(|(parameter, message)| validator.error(&at(parameter), message))?;
        uncertain.push(Uncertain {
            key: key.to_string(),
            distribution,
            fixed: table.get("fixed").and_then(Value::as_bool).unwrap_or(false),
            slot,
        });
    }
    check_extremes(validator, scenario, &uncertain)?;
    Ok(uncertain)
}

/// The most entries whose extremes are combined in [`check_extremes`]: 2^12
/// corners.
const MAX_CORNER_ENTRIES: usize = 12;

/// The products of the model (`1000·daily_budget/cpm`, `effect·value`, money
/// totals, ...) must stay finite at every value a replication can draw: the
/// derived-quantity checks of the file, run at every corner of the drawn
/// values' attainable ranges (for up to [`MAX_CORNER_ENTRIES`] drawn entries;
/// beyond, at each entry's ends alone).
fn check_extremes(
    validator: &Validator<'_>,
    scenario: &Scenario,
    uncertain: &[Uncertain],
) -> Checked<()> {
    let drawn: Vec<(usize, (f64, f64))> = uncertain
        .iter()
        .enumerate()
        .filter(|(_, u)| !u.fixed)
        .map(|(i, u)| (i, u.attainable()))
        .collect();
    let check = |values: &[(usize, f64)]| -> Checked<()> {
        let mut extreme = scenario.clone();
        for &(i, value) in values {
            uncertain[i].set(&mut extreme, value);
        }
        validator
            .check_derived_quantities(&extreme)
            .and_then(|()| validator.check_days_derived_quantities(&extreme))
            .map_err(|error| {
                let at: Vec<String> = values
                    .iter()
                    .map(|&(i, value)| format!("{} = {value:e}", uncertain[i].key))
                    .collect();
                let first = values.first().map_or(0, |&(i, _)| i);
                validator.error(
                    &format!("uncertain[{first}]"),
                    format!(
                        "a replication may draw {}, and then {}: {}",
                        at.join(", "),
                        error.key_path,
                        error.message
                    ),
                )
            })
    };
    if drawn.len() <= MAX_CORNER_ENTRIES {
        for corner in 0..1u32 << drawn.len() {
            let values: Vec<(usize, f64)> = drawn
                .iter()
                .enumerate()
                .map(|(bit, &(i, (low, high)))| {
                    (i, if corner >> bit & 1 == 1 { high } else { low })
                })
                .collect();
            check(&values)?;
        }
    } else {
        for &(i, (low, high)) in &drawn {
            check(&[(i, low)])?;
            check(&[(i, high)])?;
        }
    }
    Ok(())
}

fn number_of(value: &Value) -> Option<f64> {
    match value {
        Value::Float(x) => Some(*x),
        Value::Integer(i) => Some(*i as f64),
        _ => None,
    }
}

fn describe_parameters(needed: &[&str], allowed: &[&str]) -> String {
    let mut text = needed.join(", ");
    if !allowed.is_empty() {
        text.push_str(&format!(" (optional: {})", allowed.join(", ")));
    }
    text
}

/// The parameter rules of MODEL.md: `low < high`, `low <= mode <= high`, a
/// support inside the key's range (above an open bound), a truncated normal or
/// lognormal with mass in the range. The error names the parameter.
fn check_support(
    distribution: UncertainDistribution,
    bound: Bound,
) -> Result<(), (&'static str, String)> {
    let (min, max, open) = range_of(bound);
    let range = if open {
        format!("({min}, {max}]")
    } else {
        format!("[{min}, {max}]")
    };
    let support = |low: f64, high: f64| -> Result<(), (&'static str, String)> {
        // Both are finite: validated as numbers.
        if low >= high {
            return Err((
                "high",
                format!("expected low < high, found low = {low} and high = {high}"),
            ));
        }
        if !(high - low).is_finite() {
            return Err((
                "high",
                format!("high − low = {high} − {low} overflows a 64-bit float"),
            ));
        }
        if low < min || (open && low <= min) {
            return Err((
                "low",
                format!(
                    "the support must lie in the key's range {range} ({}), found low = {low}",
                    bound.describe()
                ),
            ));
        }
        if high > max {
            return Err((
                "high",
                format!(
                    "the support must lie in the key's range {range} ({}), found high = {high}",
                    bound.describe()
                ),
            ));
        }
        Ok(())
    };
    match distribution {
        UncertainDistribution::Normal { mean, sd } => {
            if normal_mass(mean, sd, min, max) <= 0.0 {
                return Err((
                    "mean",
                    format!(
                        "a normal({mean}, {sd}) truncated to the key's range {range} has no \
                         probability in it"
                    ),
                ));
            }
        }
        UncertainDistribution::LogNormal { median, sigma } => {
            let (low, high) = log_range(min, max);
            if normal_mass(median.ln(), sigma, low, high) <= 0.0 {
                return Err((
                    "median",
                    format!(
                        "a lognormal(median {median}, sigma {sigma}) truncated to the key's \
                         range {range} has no probability in it"
                    ),
                ));
            }
        }
        UncertainDistribution::Uniform { low, high } => support(low, high)?,
        UncertainDistribution::Triangular { low, mode, high } => {
            support(low, high)?;
            if !(low <= mode && mode <= high) {
                return Err((
                    "mode",
                    format!("expected low <= mode <= high, found {low}, {mode}, {high}"),
                ));
            }
        }
        UncertainDistribution::Beta { low, high, .. } => support(low, high)?,
    }
    Ok(())
}

/// The key's range `[min, max]` in logarithms, for a lognormal.
fn log_range(min: f64, max: f64) -> (f64, f64) {
    let low = if min > 0.0 {
        min.ln()
    } else {
        f64::NEG_INFINITY
    };
    (low, max.ln())
}

impl Uncertain {
    /// `key ~ normal(mean 0.3, sd 0.05)`, for tables; `(fixed: set)` after a
    /// fixed one.
    pub fn describe(&self) -> String {
        let fixed = if self.fixed { " (fixed: set)" } else { "" };
        format!("{} ~ {}{fixed}", self.key, self.describe_distribution())
    }

    /// `normal(mean 0.3, sd 0.05)`.
    pub fn describe_distribution(&self) -> String {
        match self.distribution {
            UncertainDistribution::Normal { mean, sd } => format!("normal(mean {mean}, sd {sd})"),
            UncertainDistribution::LogNormal { median, sigma } => {
                format!("lognormal(median {median}, sigma {sigma})")
            }
            UncertainDistribution::Uniform { low, high } => format!("uniform({low}, {high})"),
            UncertainDistribution::Triangular { low, mode, high } => {
                format!("triangular({low}, mode {mode}, {high})")
            }
            UncertainDistribution::Beta {
                alpha,
                beta,
                low,
                high,
            } => format!("beta(alpha {alpha}, beta {beta}) on [{low}, {high}]"),
        }
    }

    /// The smallest and largest value [`Self::draw`] can return: the support,
    /// or for a normal or lognormal the range its 53-bit uniforms reach
    /// (`Φ⁻¹` of `2^-54` is about −8.3 sd), inside the key's range.
    fn attainable(&self) -> (f64, f64) {
        const REACH: f64 = 8.3;
        let (min, max, open) = range_of(self.slot.bound());
        let (low, high) = match self.distribution {
            UncertainDistribution::Normal { mean, sd } => (mean - REACH * sd, mean + REACH * sd),
            UncertainDistribution::LogNormal { median, sigma } => (
                (median.ln() - REACH * sigma).exp(),
                (median.ln() + REACH * sigma).exp(),
            ),
            UncertainDistribution::Uniform { low, high }
            | UncertainDistribution::Triangular { low, high, .. }
            | UncertainDistribution::Beta { low, high, .. } => (low, high),
        };
        let low = low.clamp(min.max(-f64::MAX), max.min(f64::MAX));
        let high = high.clamp(min.max(-f64::MAX), max.min(f64::MAX));
        let low = if open && low <= min {
            min.next_up()
        } else {
            low
        };
        (low, high.max(low))
    }

    /// The value of replication `replication` of a study with `seed`: from the
    /// stream keyed by `(seed, replication, index)`, `index` this entry's place
    /// in `[[uncertain]]`. Inverse-CDF draws of one uniform, except `beta`.
    pub fn draw(&self, seed: u64, replication: u32, index: usize) -> f64 {
        let mut rng = ReplicationKey::new(seed, replication)
            .stream(INITIAL_DAY, Event::Uncertain)
            .generator(index as u32);
        let (min, max, open) = range_of(self.slot.bound());
        let x = match self.distribution {
            UncertainDistribution::Normal { mean, sd } => {
                truncated_normal(mean, sd, min, max, rng.open_uniform()).unwrap_or(mean)
            }
            UncertainDistribution::LogNormal { median, sigma } => {
                let (low, high) = log_range(min, max);
                truncated_normal(median.ln(), sigma, low, high, rng.open_uniform())
                    .unwrap_or(median.ln())
                    .exp()
            }
            UncertainDistribution::Uniform { low, high } => low + rng.open_uniform() * (high - low),
            UncertainDistribution::Triangular { low, mode, high } => {
                let u = rng.open_uniform();
                let width = high - low;
                let left = (mode - low) / width;
                if u < left {
                    low + width * (u * left).sqrt()
                } else {
                    high - width * ((1.0 - u) * (1.0 - left)).sqrt()
                }
            }
            UncertainDistribution::Beta {
                alpha,
                beta,
                low,
                high,
            } => low + (high - low) * sigmoid(beta_logit(alpha, beta, &mut rng)),
        };
        // Rounding may land on a bound: keep the value inside the key's range
        // (above an open bound), where validation would have put it.
        let x = x.clamp(min.max(-f64::MAX), max.min(f64::MAX));
        if open && x <= min { min.next_up() } else { x }
    }

    /// Puts `value` into this entry's key of `scenario`.
    pub fn set(&self, scenario: &mut Scenario, value: f64) {
        *self.slot.value(scenario) = value;
    }
}

impl Scenario {
    /// Whether any `[[uncertain]]` entry is drawn (not fixed).
    pub fn has_uncertainty(&self) -> bool {
        self.uncertain.iter().any(|u| !u.fixed)
    }

    /// Replication `replication`'s scenario: every uncertain key that is not
    /// fixed replaced by its draw; with the drawn `(key, value)` pairs in file
    /// order.
    pub fn with_uncertain_draws(&self, replication: u32) -> (Scenario, Vec<(String, f64)>) {
        let mut drawn = self.clone();
        let mut values = Vec::new();
        for (index, uncertain) in self.uncertain.iter().enumerate() {
            if uncertain.fixed {
                continue;
            }
            let value = uncertain.draw(self.simulation.seed, replication, index);
            uncertain.set(&mut drawn, value);
            values.push((uncertain.key.clone(), value));
        }
        (drawn, values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Assignment, parse_str};

    const BASE: &str = include_str!("../../scenarios/knowledge_platform.toml");

    fn with_uncertain(tables: &str) -> Result<Scenario, String> {
        parse_str(&format!("{BASE}\n{tables}"), "u.toml").map_err(|e| e.to_string())
    }

    /// The line of the appended `tables` that holds `needle`, in the file.
    fn line_of(tables: &str, needle: &str) -> usize {
        let offset = tables.lines().position(|l| l.contains(needle)).unwrap();
        BASE.lines().count() + 2 + offset
    }

    #[test]
    fn bad_uncertain_tables_are_rejected_with_key_path_and_line() {
        let cases = [
            (
                "[[uncertain]]\nkey = \"market.population\"\ndistribution = \"normal\"\nmean = 1.0\nsd = 1.0\n",
                "key =",
                "uncertain[0].key: \"market.population\" cannot be uncertain",
            ),
            (
                "[[uncertain]]\nkey = \"market.segments.students.share\"\ndistribution = \"uniform\"\nlow = 0.1\nhigh = 0.2\n",
                "key =",
                "uncertain[0].key: \"market.segments.students.share\" cannot be uncertain",
            ),
            (
                "[[uncertain]]\nkey = \"channels.tv.cpm\"\ndistribution = \"uniform\"\nlow = 1.0\nhigh = 2.0\n",
                "key =",
                "uncertain[0].key: \"channels.tv.cpm\": no channel named \"tv\"",
            ),
            (
                "[[uncertain]]\nkey = \"brand.value\"\ndistribution = \"normal\"\nmean = 0.0\nsd = 1.0\nsigma = 2.0\n",
                "sigma =",
                "uncertain[0].sigma: a normal distribution has no \"sigma\"; it takes mean, sd",
            ),
            (
                "[[uncertain]]\nkey = \"brand.value\"\ndistribution = \"lognormal\"\nmedian = 1.0\n",
                "[[uncertain]]",
                "uncertain[0]: missing \"sigma\"",
            ),
            (
                "[[uncertain]]\nkey = \"brand.value\"\ndistribution = \"normal\"\nmean = 0.0\nsd = 0.0\n",
                "sd =",
                "uncertain[0].sd: expected a number > 0, found 0.0",
            ),
            (
                "[[uncertain]]\nkey = \"brand.value\"\ndistribution = \"gamma\"\n",
                "distribution =",
                "uncertain[0].distribution: expected one of \"normal\"",
            ),
            (
                "[[uncertain]]\nkey = \"market.dormancy\"\ndistribution = \"uniform\"\nlow = 0.5\nhigh = 0.5\n",
                "high =",
                "uncertain[0].high: expected low < high",
            ),
            (
                "[[uncertain]]\nkey = \"market.dormancy\"\ndistribution = \"uniform\"\nlow = 0.5\nhigh = 1.5\n",
                "high =",
                "uncertain[0].high: the support must lie in the key's range [0, 1]",
            ),
            (
                "[[uncertain]]\nkey = \"channels.ads.cpm\"\ndistribution = \"uniform\"\nlow = 0.0\nhigh = 5.0\n",
                "low =",
                "uncertain[0].low: the support must lie in the key's range (0, inf]",
            ),
            (
                "[[uncertain]]\nkey = \"market.dormancy\"\ndistribution = \"triangular\"\nlow = 0.1\nmode = 0.6\nhigh = 0.5\n",
                "mode =",
                "uncertain[0].mode: expected low <= mode <= high",
            ),
            (
                "[[uncertain]]\nkey = \"market.dormancy\"\ndistribution = \"beta\"\nalpha = 2.0\nbeta = 2.0\nlow = -0.1\n",
                "low =",
                "uncertain[0].low: the support must lie in the key's range [0, 1]",
            ),
            (
                "[[uncertain]]\nkey = \"market.dormancy\"\ndistribution = \"normal\"\nmean = 100.0\nsd = 1.0\n",
                "mean =",
                "uncertain[0].mean: a normal(100, 1) truncated to the key's range [0, 1] has no probability",
            ),
            (
                "[[uncertain]]\nkey = \"brand.value\"\ndistribution = \"normal\"\nmean = 0.0\nsd = 1.0\n\n[[uncertain]]\nkey = \"brand.value\"\ndistribution = \"uniform\"\nlow = 0.0\nhigh = 1.0\n",
                "low =",
                "uncertain[1].key: \"brand.value\" is already uncertain in uncertain[0]",
            ),
            (
                "[[uncertain]]\nkey = \"channels.ads.daily_budget\"\ndistribution = \"uniform\"\nlow = 0.0\nhigh = 1e306\n\n[[uncertain]]\nkey = \"channels.ads.cpm\"\ndistribution = \"uniform\"\nlow = 1e-6\nhigh = 1.0\n",
                "[[uncertain]]",
                "uncertain[0]: a replication may draw channels.ads.daily_budget = 1e306, channels.ads.cpm = 1e-6, and then channels[0].daily_budget: daily impressions",
            ),
            (
                "[[uncertain]]\nkey = \"brand.value\"\ndistribution = \"normal\"\nmean = 0.0\nsd = 1.0\nspread = 2.0\n",
                "spread =",
                "uncertain[0].spread: unknown key",
            ),
        ];
        for (tables, line_needle, expected) in cases {
            let error = with_uncertain(tables).expect_err(tables);
            assert!(error.contains(expected), "{error}\n  expected: {expected}");
            // The duplicate is reported at its key, two lines above `low`.
            let line = if expected.contains("already") {
                line_of(tables, line_needle) - 2
            } else {
                line_of(tables, line_needle)
            };
            assert!(
                error.starts_with(&format!("u.toml:{line}: ")),
                "{error}\n  expected line {line}"
            );
        }
    }

    #[test]
    fn draws_lie_in_the_key_range_and_have_the_distributions_means() {
        let tables = "
[[uncertain]]
key = \"market.word_of_mouth\"
distribution = \"normal\"
mean = 0.05
sd = 0.1

[[uncertain]]
key = \"channels.ads.cpm\"
distribution = \"lognormal\"
median = 20.0
sigma = 0.5

[[uncertain]]
key = \"brand.value\"
distribution = \"uniform\"
low = -1.0
high = 3.0

[[uncertain]]
key = \"market.dormancy\"
distribution = \"triangular\"
low = 0.0
mode = 0.1
high = 0.5

[[uncertain]]
key = \"content.annual-vip.quality\"
distribution = \"beta\"
alpha = 2.0
beta = 6.0
low = 0.2
high = 0.6
";
        let scenario = with_uncertain(tables).unwrap();
        // Closed-form means: the normal truncated at 0 is μ + σφ(a)/(1 − Φ(a))
        // with a = −0.5; the lognormal exp(μ + σ²/2); uniform (l + h)/2;
        // triangular (l + m + h)/3; beta l + (h − l)·α/(α + β).
        let a: f64 = -0.5;
        let phi = (-0.5 * a * a).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let expected = [
            0.05 + 0.1 * phi / (1.0 - crate::distributions::normal_cdf(a)),
            20.0 * (0.125f64).exp(),
            1.0,
            0.6 / 3.0,
            0.2 + 0.4 * 0.25,
        ];
        let n = 20_000u32;
        let mut sums = [0.0; 5];
        let mut squares = [0.0; 5];
        for j in 0..n {
            let (drawn, values) = scenario.with_uncertain_draws(j);
            assert_eq!(values.len(), 5);
            assert!(drawn.market.word_of_mouth >= 0.0 && drawn.channels[0].cpm > 0.0);
            assert!((0.0..=0.5).contains(&drawn.market.dormancy));
            for (k, (_, value)) in values.iter().enumerate() {
                sums[k] += value;
                squares[k] += value * value;
            }
        }
        for k in 0..5 {
            let mean = sums[k] / f64::from(n);
            let sd = (squares[k] / f64::from(n) - mean * mean).sqrt();
            let se = sd / f64::from(n).sqrt();
            assert!(
                (mean - expected[k]).abs() < 5.0 * se,
                "entry {k}: mean {mean}, expected {} ± {}",
                expected[k],
                5.0 * se
            );
        }
    }

    #[test]
    fn a_set_key_is_fixed_and_keeps_the_other_draws_in_place() {
        let tables = "
[[uncertain]]
key = \"market.word_of_mouth\"
distribution = \"normal\"
mean = 0.3
sd = 0.1

[[uncertain]]
key = \"brand.value\"
distribution = \"uniform\"
low = 0.0
high = 1.0
";
        let text = format!("{BASE}\n{tables}");
        let (scenario, source) = {
            let dir =
                std::env::temp_dir().join(format!("brandsim-uncertain-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join("u.toml");
            std::fs::write(&file, &text).unwrap();
            let loaded = crate::scenario::load_file(&file, &[]).unwrap();
            std::fs::remove_dir_all(&dir).unwrap();
            loaded
        };
        let set = [Assignment {
            key: "market.word_of_mouth".into(),
            value: toml::Value::Float(0.5),
        }];
        let (fixed, fixed_source) = source.with_overrides(&set).unwrap();
        assert!(!scenario.uncertain[0].fixed && fixed.uncertain[0].fixed);
        for j in 0..20 {
            let (_, free) = scenario.with_uncertain_draws(j);
            let (drawn, values) = fixed.with_uncertain_draws(j);
            assert_eq!(drawn.market.word_of_mouth, 0.5);
            // brand.value is drawn from the same stream (index 1) either way.
            assert_eq!(values, vec![free[1].clone()]);
        }
        // The resolved document keeps the mark, so a study re-loaded from its
        // scenario.toml is the same study.
        assert!(fixed_source.resolved_toml().contains("fixed = true"));
        let reloaded = parse_str(&fixed_source.resolved_toml(), "u.toml").unwrap();
        assert_eq!(reloaded.uncertain, fixed.uncertain);
    }

    /// `simulation.discount_rate` (MODEL.md v2) is uncertain-capable: each
    /// replication discounts `npv` at its own draw, never below 0.
    #[test]
    fn the_discount_rate_can_be_uncertain() {
        let scenario = with_uncertain(
            "[[uncertain]]\nkey = \"simulation.discount_rate\"\ndistribution = \"uniform\"\nlow = 0.0\nhigh = 0.2\n",
        )
        .unwrap();
        for j in 0..5 {
            let (drawn, values) = scenario.with_uncertain_draws(j);
            let rate = drawn.calendar.discount_rate;
            assert!((0.0..=0.2).contains(&rate), "{rate}");
            assert_eq!(values, vec![("simulation.discount_rate".to_string(), rate)]);
        }
        let error = with_uncertain(
            "[[uncertain]]\nkey = \"simulation.discount_rate\"\ndistribution = \"uniform\"\nlow = -0.1\nhigh = 0.2\n",
        )
        .unwrap_err();
        assert!(error.contains("uncertain[0].low"), "{error}");
    }
}

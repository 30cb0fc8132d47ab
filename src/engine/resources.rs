//! Resources of one replication: the scenario's parameters in the form the systems
//! use them, the day, the day's aggregates and the tallies.

use std::sync::Arc;

use bevy_ecs::prelude::*;

use super::components::{Profile, Subscription};
use super::traits::TraitDraws;
use crate::model;
use crate::rng::{Chance, Event, EventStream, ReplicationKey};
use crate::scenario::Scenario;

/// The scenario of this replication and what follows from it alone.
#[derive(Resource)]
pub struct Market {
    /// The scenario with every time-varying key at its value of the current day
    /// (the base scenario itself on days no campaign or schedule row changes).
    pub scenario: Arc<Scenario>,
    /// The scenario as given, with its calendar.
    pub base: Arc<Scenario>,
    /// Users per segment (largest-remainder rounding).
    pub segment_sizes: Vec<u32>,
    /// `λ_s`, paid impressions per user and day, per segment.
    pub channel_rates: Vec<f64>,
    /// `Σ_k B_k + κ·V²`.
    pub daily_spend: f64,
}

/// Items in the form the funnel steps need them.
#[derive(Resource)]
pub struct Catalogue {
    /// `logit(r_i)` per item.
    pub click_logit: Vec<f64>,
    /// `p_conv` per segment and item (it has no per-user term).
    pub conversion_probability: Vec<Vec<f64>>,
    pub price: Vec<f64>,
    pub quality: Vec<f64>,
    pub renewal_days: Vec<u32>,
    /// Whether some item is available: if none is, nobody is exposed.
    pub any_available: bool,
    /// Item choice among the items of each topic.
    pub by_topic: Vec<ItemPicker>,
    /// Item choice among all items.
    pub all: ItemPicker,
}

/// Chooses an item with probability proportional to its promotion.
#[derive(Debug, Clone)]
pub struct ItemPicker {
    items: Vec<u16>,
    /// Cumulative promotion, ending at the total; empty when no item has positive
    /// promotion.
    cumulative: Vec<f64>,
}

impl ItemPicker {
    /// Items with positive promotion among `candidates` (`(item, promotion)`).
    pub fn new(candidates: impl Iterator<Item = (u16, f64)>) -> Self {
        let mut items = Vec::new();
        let mut cumulative = Vec::new();
        let mut total = 0.0;
        for (item, promotion) in candidates.filter(|&(_, p)| p > 0.0) {
            total += promotion;
            items.push(item);
            cumulative.push(total);
        }
        ItemPicker { items, cumulative }
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The item at uniform `u` in [0, 1). The picker must not be empty.
    #[inline]
    pub fn pick(&self, u: f64) -> u16 {
        let total = self.cumulative[self.cumulative.len() - 1];
        let target = u * total;
        let at = self.cumulative.partition_point(|&c| c <= target);
        self.items[at.min(self.items.len() - 1)]
    }
}

impl Catalogue {
    pub fn new(scenario: &Scenario) -> Self {
        let brand = &scenario.brand;
        let content = &scenario.content;
        let conversion_probability = scenario
            .market
            .segments
            .iter()
            .map(|segment| {
                content
                    .iter()
                    .map(|item| {
                        model::p_conv(
                            item.conversion_rate,
                            brand.conversion_effect,
                            brand.value,
                            segment.price_sensitivity,
                            item.price,
                            scenario.market.price_reference,
                        )
                    })
                    .collect()
            })
            .collect();
        // Unavailable items are left out before the promotion rules apply.
        let promoted = |topic: Option<usize>| {
            ItemPicker::new(
                content
                    .iter()
                    .enumerate()
                    .filter(move |(_, item)| item.available)
                    .filter(move |(_, item)| topic.is_none_or(|t| item.topic == t))
                    .map(|(i, item)| (i as u16, item.promotion)),
            )
        };
        let any_available = content.iter().any(|item| item.available);
        let mut all = promoted(None);
        if all.is_empty() && any_available {
            // No available item has positive promotion: choose uniformly among
            // the available items.
            all = ItemPicker::new(
                content
                    .iter()
                    .enumerate()
                    .filter(|(_, item)| item.available)
                    .map(|(i, _)| (i as u16, 1.0)),
            );
        }
        Catalogue {
            click_logit: content.iter().map(|i| model::logit(i.click_rate)).collect(),
            conversion_probability,
            price: content.iter().map(|i| i.price).collect(),
            quality: content.iter().map(|i| i.quality).collect(),
            renewal_days: content.iter().map(|i| i.renewal_days).collect(),
            any_available,
            by_topic: (0..scenario.topics.len())
                .map(|t| promoted(Some(t)))
                .collect(),
            all,
        }
    }

    /// Step 2, item choice: with probability `m` an item of the user's topic (if
    /// any has positive promotion), else one from all items.
    #[inline]
    pub fn choose_item(&self, topic: usize, topic_match: f64, branch: f64, pick: f64) -> u16 {
        let own = &self.by_topic[topic];
        if branch < topic_match && !own.is_empty() {
            own.pick(pick)
        } else {
            self.all.pick(pick)
        }
    }
}

/// The scenario's values day by day, and the version of them that `Market`
/// holds now: `start_day` rebuilds the day's parameters when the version of
/// the day differs. Empty timeline (no campaign, no schedule): nothing to do.
#[derive(Resource, Debug, Default)]
pub struct DayValues {
    pub timeline: crate::scenario::Timeline,
    /// The version of the values in `Market::scenario` (`None`: the base scenario
    /// as built).
    pub current: Option<usize>,
}

/// The simulated day `t`.
#[derive(Resource, Debug, Clone, Copy, Default)]
pub struct Today(pub u32);

/// The random streams of this replication.
#[derive(Resource, Debug, Clone, Copy)]
pub struct Randomness {
    pub key: ReplicationKey,
    /// Initial traits drawn when first needed.
    pub traits: TraitDraws,
}

impl Randomness {
    pub fn new(key: ReplicationKey) -> Self {
        Randomness {
            key,
            traits: TraitDraws::new(key),
        }
    }

    pub fn stream(&self, day: u32, event: Event) -> EventStream {
        self.key.stream(day, event)
    }
}

/// Running aggregates over users, kept as integers so that they do not depend
/// on the order in which users are processed.
#[derive(Resource, Debug, Clone, Copy, Default)]
pub struct Aggregates {
    /// Users ever aware.
    pub aware: u64,
    /// Users in `Paying`.
    pub active_payers: u64,
    /// `S` = summed satisfaction of paying users, in units of 2^-32.
    pub satisfaction_sum: u64,
}

/// One satisfaction value in the fixed-point units of [`Aggregates`].
#[inline]
pub fn satisfaction_units(satisfaction: f32) -> u64 {
    (f64::from(satisfaction) * SATISFACTION_UNIT).round() as u64
}

pub const SATISFACTION_UNIT: f64 = 4_294_967_296.0;

impl Aggregates {
    pub fn satisfaction_sum(&self) -> f64 {
        self.satisfaction_sum as f64 / SATISFACTION_UNIT
    }
}

/// The day's exposure probability per segment, from the aggregates at its start.
#[derive(Resource, Debug, Clone, Default)]
pub struct DayRates {
    pub exposure: Vec<Chance>,
}

/// New events of the current day (MODEL.md, "Daily series").
#[derive(Resource, Debug, Clone, Default)]
pub struct DayCounts {
    pub exposures: u64,
    pub clicks: u64,
    pub registrations: u64,
    pub conversions: u64,
    pub renewals: u64,
    pub churned: u64,
    pub dormant: u64,
    pub revenue: f64,
    /// Users seeded today (MODEL.md v2, "Seeding").
    pub seeded: u64,
    /// `Σ users_seeded · cost_per_user` of today's seedings.
    pub seeding_spend: f64,
}

/// Renewal days ahead: `due[t]` holds the subscribers whose renewal is day `t`.
#[derive(Resource, Debug, Default)]
pub struct RenewalCalendar {
    pub due: Vec<Vec<Entity>>,
}

impl RenewalCalendar {
    /// Books a renewal; one past the horizon is never reached, so not kept.
    pub fn book(&mut self, day: u64, entity: Entity) {
        self.book_all(day, [entity]);
    }

    /// Books renewals of several subscribers on one day.
    pub fn book_all(&mut self, day: u64, entities: impl IntoIterator<Item = Entity>) {
        if let Some(slot) = usize::try_from(day).ok().and_then(|d| self.due.get_mut(d)) {
            slot.extend(entities);
        }
    }
}

/// The day's new subscribers, from the funnel scan to their spawning.
#[derive(Resource, Debug, Default)]
pub struct NewSubscribers {
    pub pending: Vec<(Profile, Subscription)>,
}

/// Σ ∂log P(draw)/∂V over the logistic draws that `V` enters (click,
/// conversion, churn): the score of the likelihood-ratio gradient estimator.
#[derive(Resource, Debug, Clone, Copy, Default)]
pub struct Score(pub f64);

/// The recorded daily series, one value per day each.
#[derive(Resource, Debug, Clone, Default)]
pub struct DailyRecord {
    pub series: crate::outcome::DailySeries,
}

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
    /// [`model::click_factor`] per item at the day's `V`: step 3's draw
    /// without `exp` ([`model::clicks`]).
    pub click_factor: Vec<f64>,
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
    /// Each segment's favourite-topic draw.
    pub topics: Vec<TopicPicker>,
    /// The tables above laid out for deciding steps 2–3 of 64 users at once,
    /// where they are small enough.
    pub wide: Option<super::wide_funnel::WideTables>,
}

/// Chooses an item with probability proportional to its promotion.
#[derive(Debug, Clone)]
pub struct ItemPicker {
    items: Vec<u16>,
    /// Cumulative promotion, ending at the total; empty when no item has positive
    /// promotion.
    cumulative: Vec<f64>,
    /// `cumulative` padded with NaN to [`SMALL`] entries, and the items, when
    /// there are 1 to [`SMALL`]: then a pick counts without branching, in
    /// the picker itself (no loads through the `Vec`s).
    small: Option<SmallTable<u16>>,
}

/// A table of at most [`SMALL`] cumulative weights kept inline: the weights
/// padded with NaN, their total (the last of them), the values they choose
/// and the index of the last value.
#[derive(Debug, Clone)]
struct SmallTable<T> {
    cumulative: [f64; SMALL],
    total: f64,
    values: [T; SMALL],
    last: usize,
}

impl<T: Copy + Default> SmallTable<T> {
    /// Of `(value, running total)` pairs, if there are 1 to [`SMALL`].
    fn new(entries: &[(T, f64)]) -> Option<Self> {
        let last = entries.len().checked_sub(1).filter(|&last| last < SMALL)?;
        let mut table = SmallTable {
            cumulative: [f64::NAN; SMALL],
            total: entries[last].1,
            values: [T::default(); SMALL],
            last,
        };
        for (i, &(value, total)) in entries.iter().enumerate() {
            table.values[i] = value;
            table.cumulative[i] = total;
        }
        Some(table)
    }

    /// The value of the first running total above `target`, else the last.
    #[inline(always)]
    fn value_at(&self, target: f64) -> T {
        // The totals never decrease, so those at most `target` are a prefix.
        self.values[count_at_most(&self.cumulative, target).min(self.last)]
    }
}

/// Up to how many entries a table of cumulative weights is searched by
/// counting (no branch to mispredict) rather than by bisection or a loop.
pub(crate) const SMALL: usize = 8;

/// The entries of `cumulative` at most `target`: where a search for `target`
/// in the nondecreasing `cumulative` ends. NaN padding never counts.
#[inline(always)]
fn count_at_most(cumulative: &[f64; SMALL], target: f64) -> usize {
    cumulative.iter().map(|&c| usize::from(c <= target)).sum()
}

/// The favourite-topic distribution of one segment in the form step 2 draws
/// it ([`crate::engine::traits::favourite_topic_at`], without its branches).
#[derive(Debug, Clone)]
pub struct TopicPicker {
    /// The topics and the running totals of their weights, as
    /// `favourite_topic_at` sums them, when the segment has at most [`SMALL`]
    /// topics.
    small: Option<SmallTable<usize>>,
}

impl TopicPicker {
    pub fn new(segment: &crate::scenario::Segment) -> Self {
        let mut total = 0.0;
        let entries: Vec<(usize, f64)> = segment
            .topics
            .iter()
            .map(|&(topic, weight)| {
                total += weight;
                (topic, total)
            })
            .collect();
        TopicPicker {
            small: SmallTable::new(&entries),
        }
    }

    /// The inline table (running totals NaN-padded, topics, index of the
    /// last), if the segment has at most [`SMALL`] topics.
    pub(crate) fn small_parts(&self) -> Option<(&[f64; SMALL], &[usize; SMALL], usize)> {
        self.small
            .as_ref()
            .map(|table| (&table.cumulative, &table.values, table.last))
    }

    /// The favourite topic of a user of `segment` (the segment this picker was
    /// made of) whose topic draw is `u`: the first topic whose running total
    /// exceeds `u`, else the last, exactly as `favourite_topic_at`.
    #[inline]
    pub fn pick(&self, segment: &crate::scenario::Segment, u: f64) -> usize {
        match &self.small {
            Some(table) => table.value_at(u),
            None => crate::engine::traits::favourite_topic_at(segment, u),
        }
    }
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
        let entries: Vec<(u16, f64)> = items
            .iter()
            .copied()
            .zip(cumulative.iter().copied())
            .collect();
        let small = SmallTable::new(&entries);
        ItemPicker {
            items,
            cumulative,
            small,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The inline table (cumulative promotions NaN-padded, their total, the
    /// items, index of the last), if there are 1 to [`SMALL`] items.
    pub(crate) fn small_parts(&self) -> Option<(&[f64; SMALL], f64, &[u16; SMALL], usize)> {
        self.small
            .as_ref()
            .map(|table| (&table.cumulative, table.total, &table.values, table.last))
    }

    /// The item at uniform `u` in [0, 1). The picker must not be empty.
    #[inline]
    pub fn pick(&self, u: f64) -> u16 {
        if let Some(table) = &self.small {
            return table.value_at(u * table.total);
        }
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
        let mut catalogue = Catalogue {
            click_logit: content.iter().map(|i| model::logit(i.click_rate)).collect(),
            click_factor: content
                .iter()
                .map(|i| {
                    model::click_factor(model::logit(i.click_rate), brand.click_effect, brand.value)
                })
                .collect(),
            conversion_probability,
            price: content.iter().map(|i| i.price).collect(),
            quality: content.iter().map(|i| i.quality).collect(),
            renewal_days: content.iter().map(|i| i.renewal_days).collect(),
            any_available,
            by_topic: (0..scenario.topics.len())
                .map(|t| promoted(Some(t)))
                .collect(),
            all,
            topics: scenario
                .market
                .segments
                .iter()
                .map(TopicPicker::new)
                .collect(),
            wide: None,
        };
        catalogue.wide = super::wide_funnel::WideTables::of(&catalogue);
        catalogue
    }

    /// Step 2, item choice: with probability `m` an item of the user's topic (if
    /// any has positive promotion), else one from all items.
    #[inline]
    pub fn choose_item(&self, topic: usize, topic_match: f64, branch: f64, pick: f64) -> u16 {
        let own = &self.by_topic[topic];
        // `branch` is in [0, 1): at `m = 0` or `m = 1` the choice does not depend
        // on it, so the picker is known without waiting for the draw (branches
        // on `m` are the same all run long). Otherwise either side is common:
        // choose without a branch to mispredict (`&`, not `&&`, which compiled
        // to a branch on `branch < topic_match`).
        let picker = if topic_match <= 0.0 || own.is_empty() {
            &self.all
        } else if topic_match >= 1.0 {
            own
        } else {
            std::hint::select_unpredictable(branch < topic_match, own, &self.all)
        };
        picker.pick(pick)
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

/// Every subscriber of a replication, and the renewal days ahead: `due[t]`
/// holds the subscribers whose renewal is day `t`, as places in dense tables
/// of what their renewals read.
///
/// A subscriber's data never change while it subscribes (its `h` is kept at
/// the base `V`), so a subscriber is a place in these tables and nothing
/// else: the churn step reads the day's subscribers from a dense table and
/// moves 4 bytes per renewal. (Until issue 18's fifth session a subscriber
/// was also an entity of its own; spawning and despawning it cost 70 ns a
/// subscriber on one thread, alone, a third of the monthly-renewal
/// benchmark: see BENCHMARKS.md, issue 18, "Fifth session".)
#[derive(Resource, Debug, Default)]
pub struct Subscribers {
    due: Vec<Vec<u32>>,
    /// What every renewal reads, by place (16 bytes: the day's scan of them
    /// streams less than a whole record would). Places are given in the order
    /// users subscribe and never reused (a user subscribes at most once, so
    /// there are at most `N`): a day's list is then runs of consecutive
    /// places, which the CPU prefetches; reusing a churned subscriber's place
    /// made every such renewal a cache miss.
    draws: Vec<RenewalDraw>,
    /// `sat_u` by place: read when the subscriber churns (or on a day of
    /// another `V`).
    satisfaction: Vec<f32>,
    /// How many still subscribe.
    paying: u64,
    /// With per-user scores: the order in which [`Self::paying_at_end`] visits
    /// the subscribers (see [`EndOrder`]).
    end_order: Option<EndOrder>,
    /// Emptied day lists, kept for their memory (allocating a large list
    /// afresh each day costs page faults).
    spare: Vec<Vec<u32>>,
}

/// What a renewal reads of a subscriber: a copy of its `Profile` and
/// `Subscription`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Renewal {
    pub user: u32,
    pub segment: u16,
    /// As in [`Subscription`].
    pub item: u16,
    pub satisfaction: f32,
    pub churn_probability: f64,
}

/// The part of a [`Renewal`] that every renewal reads (the churn draw and
/// where a renewal is counted).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RenewalDraw {
    pub churn_probability: f64,
    pub user: u32,
    pub item: u16,
    pub segment: u16,
}

/// The order of the subscribers still paying, as a table whose rows are
/// appended when users subscribe and where a churned subscriber's row is taken
/// by the last row (a swap-remove). This is the order in which a query visited
/// the subscribers' entities when they were entities, so the float sums of
/// the end-of-run score pass (`engine::simulate_with_scores`) are unchanged,
/// bit for bit. 8 bytes per subscriber, kept only with per-user scores.
#[derive(Debug, Clone, Default)]
struct EndOrder {
    /// Places, by row.
    rows: Vec<u32>,
    /// Row, by place (meaningless once the place's subscriber churned).
    row_of: Vec<u32>,
}

impl Renewal {
    /// The renewal data of the subscriber `profile` with `subscription`.
    pub fn of(profile: &Profile, subscription: &Subscription) -> Self {
        Renewal {
            user: profile.user,
            segment: profile.segment,
            item: subscription.item,
            satisfaction: subscription.satisfaction,
            churn_probability: subscription.churn_probability,
        }
    }
}

impl Subscribers {
    /// No subscribers yet, over a horizon of `days` days.
    pub fn new(days: u32) -> Self {
        Subscribers {
            due: vec![Vec::new(); days as usize],
            ..Subscribers::default()
        }
    }

    /// Keeps the order that [`Self::paying_at_end`] needs (per-user scores
    /// only; call before anyone subscribes).
    pub fn keep_end_order(&mut self) {
        assert!(self.draws.is_empty(), "before anyone subscribes");
        self.end_order = Some(EndOrder::default());
    }

    /// A new subscriber, with its first renewal on `day` (one past the
    /// horizon is never reached, so not booked).
    pub fn subscribe(&mut self, day: u64, profile: &Profile, subscription: &Subscription) {
        self.subscribe_all(&[(*profile, *subscription)], |_| day);
    }

    /// New subscribers in order, each with its first renewal on
    /// `first_renewal(subscription)`: as [`Self::subscribe`] one after
    /// another, with the tables grown once and each run of subscribers who
    /// renew on the same day booked at once.
    pub fn subscribe_all(
        &mut self,
        new: &[(Profile, Subscription)],
        first_renewal: impl Fn(&Subscription) -> u64,
    ) {
        let first = self.draws.len();
        u32::try_from(first + new.len()).expect("fewer than 2^32 subscribers");
        reserve_growing_slowly(&mut self.draws, new.len());
        reserve_growing_slowly(&mut self.satisfaction, new.len());
        for (profile, subscription) in new {
            self.draws.push(RenewalDraw {
                churn_probability: subscription.churn_probability,
                user: profile.user,
                item: subscription.item,
                segment: profile.segment,
            });
            self.satisfaction.push(subscription.satisfaction);
        }
        self.paying += new.len() as u64;
        let places = first as u32..(first + new.len()) as u32;
        if let Some(order) = &mut self.end_order {
            for place in places.clone() {
                order.row_of.push(order.rows.len() as u32);
                order.rows.push(place);
            }
        }
        let mut start = places.start;
        for run in new.chunk_by(|a, b| first_renewal(&a.1) == first_renewal(&b.1)) {
            let end = start + run.len() as u32;
            self.book(first_renewal(&run[0].1), start..end);
            start = end;
        }
    }

    /// The subscriber at `place` churned: it never acts again.
    pub fn end(&mut self, place: u32) {
        self.paying -= 1;
        if let Some(order) = &mut self.end_order {
            let row = order.row_of[place as usize];
            order.rows.swap_remove(row as usize);
            if let Some(&moved) = order.rows.get(row as usize) {
                order.row_of[moved as usize] = row;
            }
        }
    }

    /// How many still subscribe.
    pub fn paying(&self) -> u64 {
        self.paying
    }

    /// The subscribers still paying, as `(user, sat_u)`, in the order of
    /// `EndOrder`. Panics unless [`Self::keep_end_order`] was called.
    pub fn paying_at_end(&self) -> impl Iterator<Item = (u32, f32)> + '_ {
        let order = self
            .end_order
            .as_ref()
            .expect("keep_end_order before the first subscriber");
        order.rows.iter().map(|&place| {
            (
                self.draws[place as usize].user,
                self.satisfaction[place as usize],
            )
        })
    }

    /// Everyone who subscribed so far (also those who churned since), by
    /// place: the order they subscribed in.
    pub fn ever(&self) -> impl Iterator<Item = Profile> + '_ {
        self.draws.iter().map(|draw| Profile {
            user: draw.user,
            segment: draw.segment,
        })
    }

    /// What the churn draw at `place` reads.
    #[inline]
    pub fn draw(&self, place: u32) -> &RenewalDraw {
        &self.draws[place as usize]
    }

    /// The whole renewal data at `place`.
    #[inline]
    pub fn renewal(&self, place: u32) -> Renewal {
        let draw = self.draws[place as usize];
        Renewal {
            user: draw.user,
            segment: draw.segment,
            item: draw.item,
            satisfaction: self.satisfaction[place as usize],
            churn_probability: draw.churn_probability,
        }
    }

    /// Books renewals of several booked subscribers on one day (past the
    /// horizon: nothing to book, and their places are never needed again).
    pub fn book_all(&mut self, day: u64, places: &[u32]) {
        self.book(day, places.iter().copied());
    }

    /// [`Self::book_all`] of any places.
    fn book(&mut self, day: u64, places: impl IntoIterator<Item = u32>) {
        let spare = &mut self.spare;
        if let Some(slot) = usize::try_from(day).ok().and_then(|d| self.due.get_mut(d)) {
            if slot.capacity() == 0
                && let Some(list) = spare.pop()
            {
                *slot = list;
            }
            slot.extend(places);
        }
    }

    /// The list of `day`, taken out of the calendar (empty past the horizon);
    /// give it back with [`Self::recycle`].
    pub fn take_due(&mut self, day: u32) -> Vec<u32> {
        self.due
            .get_mut(day as usize)
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Keeps a used day list's memory for another day.
    pub fn recycle(&mut self, mut list: Vec<u32>) {
        if list.capacity() > 0 {
            list.clear();
            self.spare.push(list);
        }
    }
}

/// Room for `additional` more in `list`; a list that must grow grows by at
/// least an eighth (and 4096), not twofold: the subscribers' tables are a
/// good part of a busy market's memory, and a large `Vec` grows in place or
/// by `mremap` (without copying) anyway.
fn reserve_growing_slowly<T>(list: &mut Vec<T>, additional: usize) {
    if list.capacity() - list.len() < additional {
        list.reserve_exact(additional.max(list.capacity() / 8 + 4096));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{Event, ReplicationKey};

    /// Picks by counting give the item and topic that bisection and the
    /// running-total loop give, bit for bit, on uniforms at and around every
    /// boundary and on random ones, with zero weights, one entry, and more
    /// entries than the counted table holds.
    #[test]
    fn counting_picks_what_searching_picks() {
        let mut uniforms = ReplicationKey::new(3, 1)
            .stream(0, Event::Topic)
            .generator(0);
        let weight_sets: [&[f64]; 6] = [
            &[1.0],
            &[0.5, 0.3, 0.2],
            &[0.0, 0.3, 0.0, 0.7],
            &[0.1; 8],
            &[0.05; 11],
            &[1e-300, 2.0, 1e300],
        ];
        for weights in weight_sets {
            let picker = ItemPicker::new(weights.iter().enumerate().map(|(i, &w)| (i as u16, w)));
            let segment = crate::scenario::Segment {
                topics: weights.iter().copied().enumerate().collect(),
                ..test_segment()
            };
            let topics = TopicPicker::new(&segment);
            let mut points: Vec<f64> = (0..2000).map(|_| uniforms.uniform()).collect();
            let mut total = 0.0;
            for &w in weights {
                total += w;
                let share = total / picker.cumulative.last().copied().unwrap_or(1.0);
                points.extend([
                    total,
                    share,
                    f64::from_bits(total.to_bits() - 1),
                    f64::from_bits(share.to_bits() + 1),
                ]);
            }
            points.extend([0.0, 1.0 - f64::EPSILON / 2.0]);
            for u in points.into_iter().filter(|u| (0.0..1.0).contains(u)) {
                if !picker.is_empty() {
                    let searched = {
                        let target = u * picker.cumulative[picker.cumulative.len() - 1];
                        let at = picker.cumulative.partition_point(|&c| c <= target);
                        picker.items[at.min(picker.items.len() - 1)]
                    };
                    assert_eq!(picker.pick(u), searched, "{weights:?} at {u}");
                }
                assert_eq!(
                    topics.pick(&segment, u),
                    crate::engine::traits::favourite_topic_at(&segment, u),
                    "{weights:?} at {u}"
                );
            }
        }
    }

    /// A subscriber's renewal reads back whole from the two tables (16 + 4
    /// bytes a place); places are handed out in the order users subscribe, so
    /// a day's list is consecutive places; past the horizon nothing is booked,
    /// but the subscriber has its place.
    #[test]
    fn subscribers_keep_renewals_whole_in_booking_order() {
        assert_eq!(std::mem::size_of::<RenewalDraw>(), 16);
        let mut subscribers = Subscribers::new(10);
        let mut booked = Vec::new();
        for k in 0..5u32 {
            let (profile, subscription) = test_subscriber(k);
            subscribers.subscribe(3, &profile, &subscription);
            booked.push(Renewal::of(&profile, &subscription));
        }
        let (profile, subscription) = test_subscriber(5);
        subscribers.subscribe(10, &profile, &subscription);
        let due = subscribers.take_due(3);
        assert_eq!(due, vec![0, 1, 2, 3, 4]);
        for (&place, renewal) in due.iter().zip(&booked) {
            assert_eq!(subscribers.renewal(place), *renewal);
            assert_eq!(
                subscribers.draw(place).churn_probability,
                renewal.churn_probability
            );
        }
        assert_eq!(subscribers.draws.len(), 6);
        assert_eq!(subscribers.paying(), 6);
        assert!((0..10).all(|day| subscribers.take_due(day).is_empty()));
    }

    /// `subscribe_all` gives the places `subscribe` one by one gives, and
    /// books each on its own day, in place order, with runs of equal and of
    /// different days interleaved and some days past the horizon.
    #[test]
    fn subscribing_together_is_subscribing_one_by_one() {
        let new: Vec<(Profile, Subscription)> = (0..40u32)
            .map(|k| {
                let (profile, mut subscription) = test_subscriber(k);
                subscription.item = [0, 0, 1, 2, 2, 2, 0, 1][k as usize % 8];
                (profile, subscription)
            })
            .collect();
        let day_of = |subscription: &Subscription| [3u64, 7, 12][usize::from(subscription.item)];
        let mut together = Subscribers::new(10);
        together.subscribe(5, &new[0].0, &new[0].1);
        together.subscribe_all(&new[1..], day_of);
        let mut one_by_one = Subscribers::new(10);
        for (profile, subscription) in &new {
            let day = if profile.user == new[0].0.user {
                5
            } else {
                day_of(subscription)
            };
            one_by_one.subscribe(day, profile, subscription);
        }
        assert_eq!(together.draws, one_by_one.draws);
        assert_eq!(together.satisfaction, one_by_one.satisfaction);
        assert_eq!(together.paying(), 40);
        for day in 0..12 {
            assert_eq!(
                together.take_due(day),
                one_by_one.take_due(day),
                "day {day}"
            );
        }
    }

    /// `paying_at_end` visits the subscribers in the order a table with
    /// swap-removes keeps them: checked against such a table (a `Vec` of
    /// users, `swap_remove` on churn) over random subscriptions and churns.
    #[test]
    fn the_end_order_is_a_swap_remove_table() {
        let mut subscribers = Subscribers::new(1);
        subscribers.keep_end_order();
        // The users of the reference table, by row; the places still paying;
        // the user of each place.
        let mut table: Vec<u32> = Vec::new();
        let mut places: Vec<u32> = Vec::new();
        let mut user_of: Vec<u32> = Vec::new();
        let mut state = 12345u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        for k in 0..2000u32 {
            if next() % 3 != 0 || places.is_empty() {
                let (profile, subscription) = test_subscriber(k);
                subscribers.subscribe(5, &profile, &subscription);
                places.push(user_of.len() as u32);
                user_of.push(profile.user);
                table.push(profile.user);
            } else {
                let place = places.swap_remove(next() as usize % places.len());
                subscribers.end(place);
                let user = user_of[place as usize];
                let row = table.iter().position(|&u| u == user).unwrap();
                table.swap_remove(row);
            }
            let visited: Vec<u32> = subscribers.paying_at_end().map(|(user, _)| user).collect();
            assert_eq!(visited, table);
        }
        assert_eq!(subscribers.paying(), table.len() as u64);
    }

    /// Subscriber `k` of the tests above: user `1000 + k`.
    fn test_subscriber(k: u32) -> (Profile, Subscription) {
        (
            Profile {
                user: 1000 + k,
                segment: (k % 3) as u16,
            },
            Subscription {
                item: (k % 2) as u16,
                satisfaction: 0.25 * k as f32,
                churn_probability: 0.1 + f64::from(k) * 1e-17,
            },
        )
    }

    fn test_segment() -> crate::scenario::Segment {
        let scenario = crate::scenario::parse_str(
            include_str!("../../scenarios/knowledge_platform.toml"),
            "knowledge_platform.toml",
        )
        .expect("the bundled scenario is valid");
        scenario.market.segments[0].clone()
    }
}

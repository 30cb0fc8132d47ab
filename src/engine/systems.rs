//! The systems of the day (MODEL.md, "One day"), in timeline order: steps 1–5
//! (exposure, item choice, click, conversion, dormancy) share one scan over the
//! prospect blocks; step 6 (churn) visits the subscribers due.
//!
//! Scans over many users run on rayon over fixed units (a prospect block, a
//! chunk of subscribers) and return their results in unit order; stage changes
//! of entities are then made in that order. So a replication gives the same
//! result, bit for bit, on any number of threads.

use std::cell::RefCell;
use std::sync::Arc;

use bevy_ecs::prelude::*;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use super::components::*;
use super::network::{NetworkDay, NetworkState};
use super::resources::*;
use super::score::{ScoreWeighted, UserScores};
use super::traits::click_propensity_from;
use super::wakeful::Wakefulness;
use super::wide_funnel::{WideSteps, WideTables, WordInputs};
use crate::model;
use crate::rng::{AheadRng, Chance, Event, EventStream, WideDraws, unit_interval};
use crate::scenario::{Scenario, Segment};

/// Subscribers per unit of parallel work in the renewal step. Fixed, like
/// every split here (the funnel's unit is a prospect block, `engine::BLOCK`
/// users), so results never depend on threads.
pub const CHUNK: usize = 1 << 14;

/// Adds the day's counts per item (`per_item[i]` for item `i`) to one field of
/// each item's tally.
fn add_to_item_tallies(
    items: &mut Query<(&ContentIndex, &mut ItemTally)>,
    per_item: &[u64],
    field: fn(&mut ItemTally) -> &mut u64,
) {
    for (index, mut tally) in items.iter_mut() {
        *field(&mut tally) += per_item[usize::from(index.0)];
    }
}

/// Start of day: the day's values of the time-varying keys (MODEL.md v2: once
/// a day, and only when they change, the parameters that follow from them are
/// rebuilt), then the aggregates that drive the day (`S_t`, `ω_t`) and each
/// segment's exposure probability (zero when no item is available).
pub fn start_day(
    mut market: ResMut<Market>,
    mut catalogue: ResMut<Catalogue>,
    mut values: ResMut<DayValues>,
    today: Res<Today>,
    aggregates: Res<Aggregates>,
    mut rates: ResMut<DayRates>,
) {
    if let Some(version) = values.timeline.version_on(today.0)
        && values.current != Some(version)
    {
        let set = values.timeline.set_of(version);
        let day = if set.is_empty() {
            Arc::clone(&market.base)
        } else {
            Arc::new(crate::scenario::Timeline::day_scenario(&market.base, set))
        };
        market.channel_rates = model::channel_rates(&day, &market.segment_sizes);
        market.daily_spend = model::daily_spend(&day);
        *catalogue = Catalogue::new(&day);
        market.scenario = day;
        values.current = Some(version);
    }
    let scenario = &market.scenario;
    if !catalogue.any_available {
        rates.exposure = vec![Chance::new(0.0); market.channel_rates.len()];
        return;
    }
    let omega = model::word_of_mouth_rate(
        scenario.market.word_of_mouth,
        aggregates.satisfaction_sum(),
        scenario.market.population,
    );
    rates.exposure = market
        .channel_rates
        .iter()
        .map(|&lambda| Chance::new(model::exposure_probability(lambda, omega)))
        .collect();
}

/// Steps 1–5, exposure, item choice, click, conversion and dormancy, in one
/// parallel scan over the prospect blocks: they chain within a user's day and
/// read nothing of other users' day, so one pass does them all. Each block
/// updates its users' bits and counts what happened; then, in block order, the
/// day's payers join the aggregates (`active_payers`, `S_t`) and the new
/// subscribers wait for [`add_subscribers`].
#[allow(clippy::too_many_arguments)]
pub fn run_funnel(
    mut subscribers: ResMut<NewSubscribers>,
    mut blocks: Query<&mut ProspectBlock>,
    mut items: Query<(&ContentIndex, &mut ItemTally)>,
    today: Res<Today>,
    randomness: Res<Randomness>,
    market: Res<Market>,
    catalogue: Res<Catalogue>,
    rates: Res<DayRates>,
    wakefulness: Res<Wakefulness>,
    mut aggregates: ResMut<Aggregates>,
    mut counts: ResMut<DayCounts>,
    mut score: Option<ResMut<Score>>,
    mut user_scores: Option<ResMut<UserScores>>,
    mut scans: Local<Vec<BlockScan>>,
    mut network: Option<ResMut<NetworkState>>,
) {
    let t = today.0;
    // MODEL.md v2: with a network, step 1 adds each user's `ω^net_{u,t}` (from the
    // start-of-day neighbour sums) to the segment's rate.
    let mean_field_rate = model::word_of_mouth_rate(
        market.scenario.market.word_of_mouth,
        aggregates.satisfaction_sum(),
        market.scenario.market.population,
    );
    let network_day = network
        .as_deref()
        .filter(|_| catalogue.any_available)
        .map(|network| NetworkDay {
            neighbour_sums: &network.neighbour_sums,
            headrooms: &network.headrooms,
            graph: &network.graph,
            word_of_mouth: network.word_of_mouth,
            with_friends: &network.with_friends,
            mean_field_rate,
            channel_rates: &market.channel_rates,
            segment_chances: &rates.exposure,
        });
    let day = FunnelDraws {
        exposure: randomness.stream(t, Event::Exposure),
        wide: WideDraws::detect(),
        item_choice: randomness.stream(t, Event::ItemChoice),
        click: randomness.stream(t, Event::Click),
        conversion: randomness.stream(t, Event::Conversion),
        satisfaction: randomness.stream(t, Event::Satisfaction),
        dormancy: randomness.stream(t, Event::Dormancy),
        dormancy_chance: Chance::new(market.scenario.market.dormancy),
        exposure_chances: &rates.exposure,
        scenario: &market.scenario,
        base_brand_value: market.base.brand.value,
        catalogue: &catalogue,
        randomness: &randomness,
        network: network_day,
        scored: score.is_some(),
        wide_tables: catalogue.wide.as_ref(),
        days_left: market.scenario.simulation.days - t,
    };
    let mut tables: Vec<_> = blocks
        .contiguous_iter_mut()
        .expect("prospect blocks are stored in tables")
        .collect();
    let blocks: Vec<&mut ProspectBlock> = tables
        .iter_mut()
        .flat_map(|table| table.bypass_change_detection().iter_mut())
        .collect();
    // One result per block, kept from day to day so the scan allocates little.
    scans.resize_with(blocks.len(), || BlockScan::new(catalogue.price.len()));
    wakefulness.scan_starts();
    // Split down to single blocks, so an idle thread can always steal one:
    // rayon's default split leaves runs of some 30 blocks that a thread must
    // finish alone while the other waits at the end of the scan.
    match user_scores.as_deref_mut() {
        None => blocks
            .into_par_iter()
            .zip(scans.par_iter_mut())
            .with_max_len(1)
            .for_each(|(block, scan)| day.scan_block(block, scan)),
        Some(tracked) => {
            let slices = per_block_slices(&blocks, &mut tracked.running);
            blocks
                .into_par_iter()
                .zip(scans.par_iter_mut())
                .zip(slices)
                .with_max_len(1)
                .for_each(|((block, scan), scores)| day.scan_block_scored(block, scan, scores));
        }
    }
    wakefulness.keep_awake();

    // The blocks' results in block order, whatever the threads did.
    let items_count = catalogue.price.len();
    let (mut exposures, mut clicks, mut conversions) = (
        vec![0; items_count],
        vec![0; items_count],
        vec![0; items_count],
    );
    for scan in scans.iter_mut() {
        add(&mut exposures, &scan.exposures);
        add(&mut clicks, &scan.clicks);
        add(&mut conversions, &scan.conversions);
        aggregates.aware += scan.changes.newly_aware;
        counts.registrations += scan.changes.registrations;
        counts.dormant += scan.changes.dormant;
        if let Some(score) = score.as_deref_mut() {
            score.0 += scan.score;
        }
        aggregates.active_payers += scan.payers;
        aggregates.satisfaction_sum += scan.payers_satisfaction;
        subscribers.pending.append(&mut scan.subscribers);
        if let Some(network) = network.as_deref_mut() {
            network.started.append(&mut scan.new_payers);
        }
        if let (Some(tracked), Some(weighted)) = (user_scores.as_deref_mut(), &scan.weighted) {
            tracked.weighted.add(weighted);
        }
    }
    counts.exposures += exposures.iter().sum::<u64>();
    counts.clicks += clicks.iter().sum::<u64>();
    counts.conversions += conversions.iter().sum::<u64>();
    counts.revenue += revenue(&conversions, &catalogue.price);
    add_to_item_tallies(&mut items, &exposures, |tally| &mut tally.exposures);
    add_to_item_tallies(&mut items, &clicks, |tally| &mut tally.clicks);
    add_to_item_tallies(&mut items, &conversions, |tally| &mut tally.conversions);
}

/// The day's new subscribers, in block order, each given its place among the
/// [`Subscribers`] and its first renewal booked.
pub fn add_subscribers(
    today: Res<Today>,
    catalogue: Res<Catalogue>,
    mut new: ResMut<NewSubscribers>,
    mut subscribers: ResMut<Subscribers>,
) {
    let t = u64::from(today.0);
    subscribers.subscribe_all(&new.pending, |subscription| {
        t + u64::from(catalogue.renewal_days[usize::from(subscription.item)])
    });
    new.pending.clear();
}

/// Each block's users' running scores: the part of `running` (indexed by user
/// number) that the block covers, in the order of `blocks`. Blocks cover the
/// users `0..N` in consecutive runs, each up to the next block's first user.
fn per_block_slices<'a>(
    blocks: &[&mut ProspectBlock],
    mut running: &'a mut [f64],
) -> Vec<&'a mut [f64]> {
    let mut order: Vec<usize> = (0..blocks.len()).collect();
    order.sort_by_key(|&b| blocks[b].first_user());
    let mut slices: Vec<Option<&'a mut [f64]>> = (0..blocks.len()).map(|_| None).collect();
    for (position, &b) in order.iter().enumerate() {
        let end = order.get(position + 1).map_or(running.len(), |&next| {
            (blocks[next].first_user() - blocks[b].first_user()) as usize
        });
        let (own, rest) = std::mem::take(&mut running).split_at_mut(end);
        slices[b] = Some(own);
        running = rest;
    }
    slices
        .into_iter()
        .map(|slice| slice.expect("every block has its users"))
        .collect()
}

/// `total[i] += part[i]`.
fn add(total: &mut [u64], part: &[u64]) {
    total.iter_mut().zip(part).for_each(|(t, p)| *t += p);
}

/// `Σ_i n_i · price_i`: the revenue of `n_i` payments of each item, summed by
/// item so it never depends on the order of the payers.
fn revenue(payments: &[u64], prices: &[f64]) -> f64 {
    payments
        .iter()
        .zip(prices)
        .map(|(&n, price)| n as f64 * price)
        .sum()
}

/// The draws and parameters of one day's steps 1–5, shared by every block.
struct FunnelDraws<'a> {
    exposure: EventStream,
    /// How this CPU draws a word of a block at once.
    wide: WideDraws,
    item_choice: EventStream,
    click: EventStream,
    conversion: EventStream,
    satisfaction: EventStream,
    dormancy: EventStream,
    dormancy_chance: Chance,
    /// Step 1's probability per segment.
    exposure_chances: &'a [Chance],
    /// The day's values.
    scenario: &'a Scenario,
    /// `V` of the base scenario, at which a subscriber's `h` is kept.
    base_brand_value: f64,
    catalogue: &'a Catalogue,
    randomness: &'a Randomness,
    /// With a social network: what step 1 adds for users with paying friends.
    network: Option<NetworkDay<'a>>,
    /// Whether the replication's score (`Outcome::score`) is wanted: only then
    /// is `p_click` computed for every exposure (else only where its draw
    /// needs it, see [`model::clicks`]).
    scored: bool,
    /// The catalogue's tables for deciding a word's steps 2–3 together, if
    /// they are small enough.
    wide_tables: Option<&'a WideTables>,
    /// The days left in the horizon, today included: a subscription whose
    /// period is at least this never renews, so its `h` is never drawn.
    days_left: u32,
}

/// From how many exposed users in a word of 64 their draws of steps 2–3 are
/// made together, eight at a time ([`EventStream::generators_of`] on the
/// exposed users' places), and their items and clicks decided together
/// ([`WideTables`]): both passes cost about as much per exposed user as the
/// one-by-one path costs for a few. Measured (CPU ms of one replication at
/// 10^6 users, 1 thread): the busy market 3: 500–512, 5: 503–506, 8: 525;
/// the bundled platform (sparse) 74.5, 73.6, 74.2.
const AHEAD_FROM: u32 = 5;

/// A user's draws of steps 2–3 on a day (MODEL.md, "The funnel"): the
/// uniform of its favourite topic (an initial trait), the item choice's two
/// uniforms (topic or all, then which item), its click propensity `ε_u` (an
/// initial trait) and the click's uniform.
#[derive(Debug, Clone, Copy)]
struct ExposureDraws {
    topic: f64,
    branch: f64,
    pick: f64,
    propensity: f64,
    click: f64,
}

/// The numbers behind [`ExposureDraws`] of the exposed users of one word,
/// drawn together ([`FunnelDraws::draw_word`]), entry `j` for the `j`-th
/// exposed user: each stream's user bits and, for the item choice and the
/// propensity, the generators' next numbers; with [`WideTables`] their `ε_u`,
/// items and click decisions.
struct WordDraws {
    /// The exposed users' places in the word, in order: entry `j` of the
    /// arrays below is user `first_user + lanes[j]`'s.
    lanes: [u8; 64],
    /// Per place in the word, its entry (for the exposed users).
    slot: [u8; 64],
    /// Exposures per item that the triage counted (the block's, for the day).
    exposures: Vec<u64>,
    topic: [[u64; 64]; 1],
    item_choice: [[u64; 64]; 3],
    propensity: [[u64; 64]; 2],
    click: [[u64; 64]; 1],
    /// With [`WideTables`]: the exposed users' `ε_u`, and their items and
    /// clicks decided together.
    propensities: [f64; 64],
    steps: Option<WideSteps>,
}

impl WordDraws {
    /// For a catalogue of `items` items.
    fn new(items: usize) -> Self {
        WordDraws {
            lanes: [0; 64],
            slot: [0; 64],
            exposures: vec![0; items],
            topic: [[0; 64]; 1],
            item_choice: [[0; 64]; 3],
            propensity: [[0; 64]; 2],
            click: [[0; 64]; 1],
            propensities: [0.0; 64],
            steps: None,
        }
    }

    /// `ε_u` of the word's user `i` (for `σ_s != 0`): what
    /// `TraitDraws::click_propensity` draws.
    #[inline(always)]
    fn propensity_of(&self, i: usize, segment: &Segment) -> f64 {
        click_propensity_from(
            segment,
            &mut AheadRng::new(self.propensity[0][i], self.propensity[1][i]),
        )
    }

    /// The draws of the word's user `i`: the same numbers as
    /// [`FunnelDraws::exposure_draws`].
    #[inline(always)]
    fn of(&self, i: usize, segment: &Segment) -> ExposureDraws {
        let propensity = if segment.click_heterogeneity == 0.0 {
            0.0
        } else {
            self.propensity_of(i, segment)
        };
        ExposureDraws {
            topic: unit_interval(self.topic[0][i]),
            branch: unit_interval(self.item_choice[1][i]),
            pick: unit_interval(self.item_choice[2][i]),
            propensity,
            click: unit_interval(self.click[0][i]),
        }
    }
}

/// What one day's scan found in one block.
pub struct BlockScan {
    /// Per item.
    exposures: Vec<u64>,
    /// Per item.
    clicks: Vec<u64>,
    /// Per item.
    conversions: Vec<u64>,
    changes: BlockChanges,
    /// Of the click and conversion draws.
    score: f64,
    /// Users who paid (step 4), and their summed satisfaction in the units of
    /// `Aggregates::satisfaction_sum`.
    payers: u64,
    payers_satisfaction: u64,
    /// The payers whose item renews, in user order.
    subscribers: Vec<(Profile, Subscription)>,
    /// With a social network: every payer and its satisfaction units, for
    /// its neighbours' sums.
    new_payers: Vec<(u32, u64)>,
    /// The day's score-weighted counts, when per-user scores are tracked.
    weighted: Option<ScoreWeighted>,
}

thread_local! {
    /// Each thread's [`WordDraws`] (about 5 KB), taken by a block's scan and
    /// put back: not allocated or cleared per block and day, and not kept per
    /// block (a byte per user at 4096 users a block).
    static KEPT_DRAWS: std::cell::Cell<Option<Box<WordDraws>>> = const { std::cell::Cell::new(None) };
}

impl BlockScan {
    fn new(items: usize) -> Self {
        BlockScan {
            exposures: vec![0; items],
            clicks: vec![0; items],
            conversions: vec![0; items],
            changes: BlockChanges::default(),
            score: 0.0,
            payers: 0,
            payers_satisfaction: 0,
            subscribers: Vec::new(),
            new_payers: Vec::new(),
            weighted: None,
        }
    }

    fn clear(&mut self) {
        for counts in [&mut self.exposures, &mut self.clicks, &mut self.conversions] {
            counts.fill(0);
        }
        self.score = 0.0;
        self.payers = 0;
        self.payers_satisfaction = 0;
        self.subscribers.clear();
        self.new_payers.clear();
    }
}

impl FunnelDraws<'_> {
    /// Step 1 for the users `first_user + i` whose bit `i` is set in `among`:
    /// one 64-lane draw at the segment's `chance`, or, with a network, the same
    /// draws with each user with paying friends at its own probability.
    #[inline]
    fn exposed(&self, first_user: u32, among: u64, chance: Chance, segment: u16) -> u64 {
        match &self.network {
            None => self
                .exposure
                .happens_among(self.wide, first_user, among, chance),
            Some(network) => network.exposed(
                self.exposure,
                self.wide,
                first_user,
                among,
                usize::from(segment),
            ),
        }
    }

    /// Steps 1–5 for the users of one block. The draws of steps 2–3 of a
    /// word's exposed users are made together where there are many
    /// ([`AHEAD_FROM`]) and the CPU has AVX-512; the same numbers.
    /// With small tables ([`WideTables`]) their items and most of their clicks
    /// are then decided together too, and only the users who click (or whose
    /// click the bounds leave undecided) respond one by one.
    fn scan_block(&self, block: &mut ProspectBlock, scan: &mut BlockScan) {
        scan.clear();
        let segment = block.segment();
        let segment_data = &self.scenario.market.segments[usize::from(segment)];
        let chance = self.exposure_chances[usize::from(segment)];
        let dormancy_applies = self.dormancy_chance != Chance::default();
        let ahead_applies = self.wide.is_wide();
        let wide_steps = self.wide_tables.filter(|_| ahead_applies && !self.scored);
        // Both the triage and the responses of a word use them, one after the
        // other; one per thread, kept (nothing to clear but the counts).
        let items = scan.exposures.len();
        let mut kept = KEPT_DRAWS
            .with(|kept| kept.take())
            .filter(|kept| kept.exposures.len() == items)
            .unwrap_or_else(|| Box::new(WordDraws::new(items)));
        kept.exposures.fill(0);
        let ahead = RefCell::new(&mut *kept);
        let triage_from = if ahead_applies { AHEAD_FROM } else { u32::MAX };
        scan.changes = block.live_day(
            |first_user, among| self.exposed(first_user, among, chance, segment),
            |first_user, among| {
                if dormancy_applies {
                    self.dormancy
                        .happens_among(self.wide, first_user, among, self.dormancy_chance)
                } else {
                    0
                }
            },
            triage_from,
            |first_user, hits| {
                let mut ahead = ahead.borrow_mut();
                let ahead = &mut *ahead;
                ahead.steps = None;
                let count = hits.count_ones() as usize;
                // The exposed users' places in the word, in user order
                // (`lanes`), and each place's entry in the draws (`slot`).
                let mut left = hits;
                let mut j = 0;
                while left != 0 {
                    let i = left.trailing_zeros() as usize;
                    left &= left - 1;
                    ahead.lanes[j] = i as u8;
                    ahead.slot[i] = j as u8;
                    j += 1;
                }
                self.draw_word(first_user, count, segment_data, ahead);
                let Some(tables) = wide_steps else {
                    return hits;
                };
                if segment_data.click_heterogeneity != 0.0 {
                    for j in 0..count {
                        ahead.propensities[j] = ahead.propensity_of(j, segment_data);
                    }
                } else {
                    ahead.propensities = [0.0; 64];
                }
                let steps = tables.steps(
                    true,
                    usize::from(segment),
                    self.scenario.brand.topic_match,
                    &WordInputs {
                        topic: &ahead.topic[0],
                        branch: &ahead.item_choice[1],
                        pick: &ahead.item_choice[2],
                        propensity: &ahead.propensities,
                        click: &ahead.click[0],
                    },
                    count,
                );
                let mut responders = 0u64;
                for (j, (&item, &lane)) in steps.items[..count].iter().zip(&ahead.lanes).enumerate()
                {
                    ahead.exposures[usize::from(item)] += 1;
                    let responds = (steps.clicks | !steps.decided) >> j & 1;
                    responders |= responds << lane;
                }
                ahead.steps = Some(steps);
                responders
            },
            |user, word| {
                let profile = Profile { user, segment };
                if !word.triaged {
                    let draws = self.exposure_draws(segment_data, user);
                    return self.respond(profile, scan, None, draws);
                }
                let ahead = ahead.borrow();
                let i = usize::from(ahead.slot[(user - word.first_user) as usize]);
                let Some(steps) = &ahead.steps else {
                    return self.respond(profile, scan, None, ahead.of(i, segment_data));
                };
                // Item counted in the triage; the click decided there or here.
                let item = steps.items[i];
                let clicks = if steps.decided >> i & 1 == 1 {
                    steps.clicks >> i & 1 == 1
                } else {
                    let brand = &self.scenario.brand;
                    let item = usize::from(item);
                    model::clicks(
                        unit_interval(ahead.click[0][i]),
                        self.catalogue.click_logit[item],
                        brand.click_effect,
                        brand.value,
                        ahead.propensities[i],
                        self.catalogue.click_factor[item],
                    )
                };
                if !clicks {
                    return Response::Ignores;
                }
                self.after_click(profile, item, scan, None)
            },
        );
        // The exposures the triage counted.
        for (total, &counted) in scan.exposures.iter_mut().zip(&kept.exposures) {
            *total += counted;
        }
        KEPT_DRAWS.with(|slot| slot.set(Some(kept)));
    }

    /// Steps 2–3's draws of `user`, one by one.
    #[inline(always)]
    fn exposure_draws(&self, segment: &Segment, user: u32) -> ExposureDraws {
        let mut item_choice = self.item_choice.generator(user);
        let (branch, pick) = (item_choice.uniform(), item_choice.uniform());
        ExposureDraws {
            topic: self.randomness.traits.topic_uniform(user),
            branch,
            pick,
            propensity: self.randomness.traits.click_propensity(segment, user),
            click: self.click.uniform(user),
        }
    }

    /// The numbers behind steps 2–3's draws of the `count` users
    /// `first_user + ahead.lanes[j]`, eight at a time, into `ahead` (entry
    /// `j` each).
    fn draw_word(&self, first_user: u32, count: usize, segment: &Segment, ahead: &mut WordDraws) {
        let traits = &self.randomness.traits;
        let (wide, lanes) = (self.wide, &ahead.lanes);
        traits
            .topic_stream()
            .generators_of(wide, first_user, lanes, count, &mut ahead.topic);
        self.item_choice
            .generators_of(wide, first_user, lanes, count, &mut ahead.item_choice);
        if segment.click_heterogeneity != 0.0 {
            traits.click_propensity_stream().generators_of(
                wide,
                first_user,
                lanes,
                count,
                &mut ahead.propensity,
            );
        }
        self.click
            .generators_of(wide, first_user, lanes, count, &mut ahead.click);
    }

    /// [`Self::scan_block`] that also keeps each user's running score (`scores`,
    /// the block's users in order) and the day's score-weighted counts
    /// (`scan.weighted`). The users' draws and so every count are the same.
    fn scan_block_scored(
        &self,
        block: &mut ProspectBlock,
        scan: &mut BlockScan,
        scores: &mut [f64],
    ) {
        scan.clear();
        let mut weighted = scan
            .weighted
            .take()
            .unwrap_or_else(|| ScoreWeighted::new(self.catalogue.price.len()));
        weighted.clear();
        let at_start = block.clone();
        let first = block.first_user();
        let segment = block.segment();
        let segment_data = &self.scenario.market.segments[usize::from(segment)];
        let chance = self.exposure_chances[usize::from(segment)];
        let dormancy_applies = self.dormancy_chance != Chance::default();
        let mut payers = Vec::new();
        scan.changes = block.live_day(
            |first_user, among| self.exposed(first_user, among, chance, segment),
            |first_user, among| {
                if dormancy_applies {
                    self.dormancy
                        .happens_among(self.wide, first_user, among, self.dormancy_chance)
                } else {
                    0
                }
            },
            u32::MAX,
            |_, hits| hits,
            |user, _| {
                let track = UserTrack {
                    score: &mut scores[(user - first) as usize],
                    weighted: &mut weighted,
                    stage: at_start.stage(user),
                };
                let draws = self.exposure_draws(segment_data, user);
                let response = self.respond(Profile { user, segment }, scan, Some(track), draws);
                if response == Response::Pays {
                    payers.push(user);
                }
                response
            },
        );
        // Who left the block today without paying turned dormant.
        if scan.changes.dormant > 0 {
            for (offset, &score) in scores.iter().enumerate() {
                let user = first + offset as u32;
                if at_start.stage(user).is_some()
                    && block.stage(user).is_none()
                    && !payers.contains(&user)
                {
                    weighted.dormant += score;
                }
            }
        }
        scan.weighted = Some(weighted);
    }

    /// Steps 2–4 for a user exposed today: the item it is shown
    /// (`exposures_i += 1`), `p_click` (`clicks_i += 1`), then `p_conv`; a
    /// new payer draws its satisfaction and, for an item that renews, gets its
    /// `h`. With `track`, the user's running score and the score-weighted
    /// counts follow the same draws.
    ///
    /// Small enough to be inlined in the scan's loop: most exposures end at
    /// the click, decided without `p_click` when no score is wanted
    /// ([`model::clicks`]); the rest of the steps are [`Self::after_click`].
    #[inline(always)]
    fn respond(
        &self,
        profile: Profile,
        scan: &mut BlockScan,
        mut track: Option<UserTrack>,
        draws: ExposureDraws,
    ) -> Response {
        let segment = profile.segment;
        let segment_index = usize::from(segment);
        let segment = &self.scenario.market.segments[segment_index];
        let topic = self.catalogue.topics[segment_index].pick(segment, draws.topic);
        let item = self.catalogue.choose_item(
            topic,
            self.scenario.brand.topic_match,
            draws.branch,
            draws.pick,
        );
        let i = usize::from(item);
        scan.exposures[i] += 1;
        let propensity = draws.propensity;
        let clicks = if self.scored || track.is_some() {
            self.click_scored(i, propensity, draws.click, scan, track.as_mut())
        } else {
            // Without a score, only the outcome of `U < p_click` is needed.
            let brand = &self.scenario.brand;
            model::clicks(
                draws.click,
                self.catalogue.click_logit[i],
                brand.click_effect,
                brand.value,
                propensity,
                self.catalogue.click_factor[i],
            )
        };
        if !clicks {
            return Response::Ignores;
        }
        self.after_click(profile, item, scan, track)
    }

    /// Step 3 with the score: `p_click`, the click, and the score of the draw
    /// added to the block's (and, with `track`, to the user's running score and
    /// the score-weighted counts of item `i`).
    #[inline(never)]
    fn click_scored(
        &self,
        i: usize,
        propensity: f64,
        uniform: f64,
        scan: &mut BlockScan,
        mut track: Option<&mut UserTrack>,
    ) -> bool {
        let brand = &self.scenario.brand;
        if let Some(track) = track.as_mut() {
            track.weighted.exposures[i] += *track.score;
            if track.stage == Some(ProspectStage::Unaware) {
                track.weighted.aware += *track.score;
            }
        }
        let p = model::p_click(
            self.catalogue.click_logit[i],
            brand.click_effect,
            brand.value,
            propensity,
        );
        // `EventStream::bernoulli`: the user's click uniform below `p`.
        let clicks = uniform < p;
        let click_score = model::logistic_score(brand.click_effect, clicks, p);
        scan.score += click_score;
        if let Some(track) = track {
            *track.score += click_score;
            if clicks {
                track.weighted.clicks[i] += *track.score;
                if track.stage != Some(ProspectStage::Registered) {
                    track.weighted.registrations += *track.score;
                }
            }
        }
        clicks
    }

    /// Steps 3–4 of a user who clicked on `item`: `clicks_i += 1`, then the
    /// conversion; a new payer draws its satisfaction and, for an item that
    /// renews, gets its `h`. Out of line: only a few exposures get here.
    #[inline(never)]
    fn after_click(
        &self,
        profile: Profile,
        item: u16,
        scan: &mut BlockScan,
        mut track: Option<UserTrack>,
    ) -> Response {
        let Profile { user, segment } = profile;
        let segment_index = usize::from(segment);
        let segment = &self.scenario.market.segments[segment_index];
        let brand = &self.scenario.brand;
        let i = usize::from(item);
        scan.clicks[i] += 1;

        let p = self.catalogue.conversion_probability[segment_index][i];
        let converts = self.conversion.bernoulli(user, p);
        if self.scored || track.is_some() {
            let conversion_score = model::logistic_score(brand.conversion_effect, converts, p);
            scan.score += conversion_score;
            if let Some(track) = &mut track {
                *track.score += conversion_score;
            }
        }
        if !converts {
            return Response::Registers;
        }
        scan.conversions[i] += 1;
        let z: f64 = StandardNormal.sample(&mut self.satisfaction.generator(user));
        let exact_satisfaction = model::satisfaction(
            self.catalogue.quality[i],
            self.scenario.market.satisfaction_noise,
            z,
        );
        // `S_t` and the satisfaction metric sum the stored f32 (in fixed
        // point); `h` is computed from the f64, before rounding, because a
        // large `satisfaction_effect` multiplies the rounding error.
        let satisfaction = exact_satisfaction as f32;
        scan.payers += 1;
        scan.payers_satisfaction += satisfaction_units(satisfaction);
        if self.network.is_some() {
            scan.new_payers
                .push((user, satisfaction_units(satisfaction)));
        }
        if let Some(track) = &mut track {
            let score = *track.score;
            track.weighted.conversions[i] += score;
            track.weighted.revenue += self.catalogue.price[i] * score;
            if self.catalogue.renewal_days[i] == 0 {
                // A one-off buyer pays to the end and draws nothing more.
                track.weighted.active_payers += score;
                track.weighted.satisfaction_sum += f64::from(satisfaction) * score;
            }
        }
        let renewal_days = self.catalogue.renewal_days[i];
        if renewal_days > 0 {
            // Kept at the base `V`; a renewal on a day of another `V` recomputes
            // it. A subscriber whose first renewal lies past the horizon never
            // reads it: its `π_u` (a Beta draw, the larger part of a new
            // subscriber's cost) is not drawn, and `h` is NaN.
            let churn_probability = if renewal_days < self.days_left {
                model::churn_probability_of_logit(
                    self.randomness.traits.churn_propensity_logit(segment, user),
                    brand.retention_effect,
                    self.base_brand_value,
                    brand.satisfaction_effect,
                    exact_satisfaction,
                )
            } else {
                f64::NAN
            };
            let subscription = Subscription {
                item,
                satisfaction,
                churn_probability,
            };
            scan.subscribers.push((profile, subscription));
        }
        Response::Pays
    }
}

/// A user's running score and the block's score-weighted counts, while it
/// responds to an exposure; `stage` is its stage at the start of the day.
struct UserTrack<'a> {
    score: &'a mut f64,
    weighted: &'a mut ScoreWeighted,
    stage: Option<ProspectStage>,
}

/// Step 6, churn: each subscriber due today renews or churns with its `h`; a
/// renewal pays and books the next one. A churned user never acts again: it is
/// counted and leaves the subscribers.
#[allow(clippy::too_many_arguments)]
pub fn renew_or_churn(
    today: Res<Today>,
    randomness: Res<Randomness>,
    market: Res<Market>,
    catalogue: Res<Catalogue>,
    mut subscribers: ResMut<Subscribers>,
    mut items: Query<(&ContentIndex, &mut ItemTally)>,
    mut counts: ResMut<DayCounts>,
    mut score: Option<ResMut<Score>>,
    mut aggregates: ResMut<Aggregates>,
    mut user_scores: Option<ResMut<UserScores>>,
    mut network: Option<ResMut<NetworkState>>,
    mut kept: Local<Vec<RenewalDraws>>,
) {
    let t = today.0;
    let due = subscribers.take_due(t);
    if due.is_empty() {
        subscribers.recycle(due);
        return;
    }
    let stream = randomness.stream(t, Event::Churn);
    let wide = WideDraws::detect();
    let brand = &market.scenario.brand;
    let retention_effect = brand.retention_effect;
    // `h` is kept at the base `V`: on a day of another `V_t` it is recomputed.
    let brand_value_differs = brand.value.to_bits() != market.base.brand.value.to_bits();
    let items_count = catalogue.price.len();
    let running = user_scores
        .as_deref()
        .map(|tracked| tracked.running.as_slice());
    // Only a scored run sums the scores of the churn draws.
    let scored = score.is_some() || running.is_some();
    // Each chunk's lists, kept from day to day for their memory (growing them
    // afresh each day cost page faults and copies). A list filled to less
    // than a quarter of its room last time gives its memory back, and so do
    // chunks beyond today's, so the kept room stays within four times a day's
    // places (a day's mix of items can differ from the last's).
    let chunk_count = due.len().div_ceil(CHUNK);
    kept.resize_with(chunk_count, RenewalDraws::default);
    let reuse = |list: &mut Vec<u32>| {
        if list.capacity() > 4 * list.len().max(64) {
            *list = Vec::new();
        }
        list.clear();
    };
    let chunks = &mut kept[..];
    for draws in chunks.iter_mut() {
        draws.renewed.resize_with(items_count, Vec::new);
        draws.renewed.iter_mut().for_each(reuse);
        reuse(&mut draws.churned);
        draws.score = 0.0;
        draws.tracked = running.map(|_| (Vec::new(), ScoreWeighted::new(items_count)));
    }
    due.par_chunks(CHUNK)
        .zip(chunks.par_iter_mut())
        .for_each(|(due, draws)| {
            if !scored && !brand_value_differs {
                // The plain case: each subscriber's kept `h`, 64 draws at once.
                for group in due.chunks(64) {
                    let mut users = [0u32; 64];
                    let mut probabilities = [0.0f64; 64];
                    let mut items = [0u16; 64];
                    for (k, &place) in group.iter().enumerate() {
                        let renewal = subscribers.draw(place);
                        users[k] = renewal.user;
                        probabilities[k] = renewal.churn_probability;
                        items[k] = renewal.item;
                    }
                    let churns = stream.bernoulli_each(wide, &users, &probabilities, group.len());
                    for (k, &place) in group.iter().enumerate() {
                        if churns >> k & 1 == 1 {
                            draws.churned.push(place);
                        } else {
                            draws.renewed[usize::from(items[k])].push(place);
                        }
                    }
                }
                return;
            }
            for &place in due {
                let renewal = subscribers.draw(place);
                let h = if brand_value_differs {
                    let renewal = subscribers.renewal(place);
                    model::churn_probability_of_logit(
                        randomness.traits.churn_propensity_logit(
                            &market.scenario.market.segments[usize::from(renewal.segment)],
                            renewal.user,
                        ),
                        retention_effect,
                        brand.value,
                        brand.satisfaction_effect,
                        f64::from(renewal.satisfaction),
                    )
                } else {
                    renewal.churn_probability
                };
                let churns = stream.bernoulli(renewal.user, h);
                if scored {
                    let churn_score = model::logistic_score(-retention_effect, churns, h);
                    draws.score += churn_score;
                    if let (Some(running), Some((updates, weighted))) =
                        (running, &mut draws.tracked)
                    {
                        let user = renewal.user;
                        let score = running[user as usize] + churn_score;
                        updates.push((user, score));
                        if churns {
                            weighted.churned += score;
                        } else {
                            let item = usize::from(renewal.item);
                            weighted.renewals[item] += score;
                            weighted.revenue += catalogue.price[item] * score;
                        }
                    }
                }
                if churns {
                    draws.churned.push(place);
                } else {
                    draws.renewed[usize::from(renewal.item)].push(place);
                }
            }
        });
    let mut renewals = vec![0u64; items_count];
    for draws in chunks.iter() {
        if let Some(score) = score.as_deref_mut() {
            score.0 += draws.score;
        }
        if let (Some(tracked), Some((updates, weighted))) =
            (user_scores.as_deref_mut(), &draws.tracked)
        {
            for &(user, score) in updates {
                tracked.running[user as usize] = score;
            }
            tracked.weighted.add(weighted);
        }
        for &place in &draws.churned {
            let renewal = subscribers.renewal(place);
            aggregates.active_payers -= 1;
            aggregates.satisfaction_sum -= satisfaction_units(renewal.satisfaction);
            if let Some(network) = network.as_deref_mut() {
                network
                    .stopped
                    .push((renewal.user, satisfaction_units(renewal.satisfaction)));
            }
            counts.churned += 1;
            subscribers.end(place);
        }
        for (item, renewed) in draws.renewed.iter().enumerate() {
            renewals[item] += renewed.len() as u64;
            let renewal_day = u64::from(t) + u64::from(catalogue.renewal_days[item]);
            subscribers.book_all(renewal_day, renewed);
        }
    }
    subscribers.recycle(due);
    counts.revenue += revenue(&renewals, &catalogue.price);
    add_to_item_tallies(&mut items, &renewals, |tally| &mut tally.renewals);
    counts.renewals += renewals.iter().sum::<u64>();
}

/// What one chunk of the day's renewals drew (kept by `renew_or_churn` from day to
/// day for its memory).
#[derive(Default)]
pub struct RenewalDraws {
    /// Per item, the subscribers who renew (their places in the calendar).
    renewed: Vec<Vec<u32>>,
    /// Who churns.
    churned: Vec<u32>,
    score: f64,
    /// With per-user scores: the new running score of each subscriber due, and
    /// the chunk's score-weighted renewals, churns and revenue.
    tracked: Option<(Vec<(u32, f64)>, ScoreWeighted)>,
}

/// End of day: append the day's counts to the daily series, then start afresh.
pub fn record_day(
    market: Res<Market>,
    aggregates: Res<Aggregates>,
    mut counts: ResMut<DayCounts>,
    mut record: ResMut<DailyRecord>,
    mut today: ResMut<Today>,
) {
    let day = std::mem::take(&mut *counts);
    let series = &mut record.series;
    series.exposures.push(day.exposures);
    series.clicks.push(day.clicks);
    series.registrations.push(day.registrations);
    series.conversions.push(day.conversions);
    series.renewals.push(day.renewals);
    series.churned.push(day.churned);
    series.dormant.push(day.dormant);
    series.revenue.push(day.revenue);
    // Adding a zero would turn a spend of -0.0 into 0.0: only seeding days add.
    series.spend.push(if day.seeding_spend != 0.0 {
        market.daily_spend + day.seeding_spend
    } else {
        market.daily_spend
    });
    if !market.base.seeding.is_empty() {
        series.seeded.push(day.seeded);
    }
    series.aware.push(aggregates.aware);
    series.active_payers.push(aggregates.active_payers);
    today.0 += 1;
}

//! One system per step of the day (MODEL.md, "One day"), in timeline order;
//! steps 1–3 (exposure, item choice, click) share one scan.
//!
//! Scans over many users run on rayon over fixed-size chunks and return their
//! results in chunk order; stage changes are then applied in that order. So a
//! replication gives the same result, bit for bit, on any number of threads.

use bevy_ecs::prelude::*;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use super::components::*;
use super::resources::*;
use super::wakeful::Wakefulness;
use crate::model;
use crate::rng::{Chance, Event, EventStream, WideDraws};
use crate::scenario::Scenario;

/// Subscribers per unit of parallel work in the renewal step. Fixed, like
/// every split here, so results never depend on threads.
pub const CHUNK: usize = 1 << 14;

/// Registered users per unit of parallel work in the day's scan of steps 1–3:
/// about the work of a prospect block (`engine::BLOCK` users drawn 64 at a
/// time), so the units balance across threads.
pub const REGISTERED_CHUNK: usize = 1 << 10;

/// Clickers per unit of parallel work in the conversion step: the day's
/// clickers are few, and each costs more than a user of a scan.
pub const CLICKER_CHUNK: usize = 1 << 10;

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

/// Start of day: the aggregates that drive the day (`S_t`, `ω_t`) and each
/// segment's exposure probability.
pub fn start_day(market: Res<Market>, aggregates: Res<Aggregates>, mut rates: ResMut<DayRates>) {
    let scenario = &market.scenario;
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

/// Steps 1–3, exposure, item choice and click, in one scan over every prospect:
/// they chain within a user's day and read no other user's result of the day,
/// so one parallel scan does all three (one wake-up of the other threads a day
/// instead of three; see BENCHMARKS.md). An `Unaware` user who is exposed
/// becomes `Aware`; one who clicks registers and leaves its block (its entity
/// is spawned by the conversion step, with the stage it reaches today).
#[allow(clippy::too_many_arguments)]
pub fn expose_and_click(
    mut blocks: Query<&mut ProspectBlock>,
    registered: Query<(Entity, &Profile), With<Registered>>,
    mut items: Query<(&ContentIndex, &mut ItemTally)>,
    today: Res<Today>,
    randomness: Res<Randomness>,
    market: Res<Market>,
    catalogue: Res<Catalogue>,
    rates: Res<DayRates>,
    mut funnel: ResMut<FunnelToday>,
    mut aggregates: ResMut<Aggregates>,
    mut counts: ResMut<DayCounts>,
    mut score: ResMut<Score>,
    wakefulness: Res<Wakefulness>,
) {
    let t = today.0;
    let day = ContactDraws {
        exposure: randomness.stream(t, Event::Exposure),
        wide: WideDraws::detect(),
        item_choice: randomness.stream(t, Event::ItemChoice),
        click: randomness.stream(t, Event::Click),
        dormancy: randomness.stream(t, Event::Dormancy),
        dormancy_chance: Chance::new(market.scenario.market.dormancy),
        exposure_chances: &rates.exposure,
        scenario: &market.scenario,
        catalogue: &catalogue,
        randomness: &randomness,
    };
    // Prospects in blocks, and registered users (prospects too), in one
    // parallel scan.
    let mut block_tables: Vec<_> = blocks
        .contiguous_iter_mut()
        .expect("prospect blocks are stored in tables")
        .collect();
    let mut units = Vec::new();
    for blocks in &mut block_tables {
        let blocks = blocks.bypass_change_detection();
        units.extend(blocks.iter_mut().map(ScanUnit::Block));
    }
    for (entities, profiles) in registered
        .contiguous_iter()
        .expect("user components are stored in tables")
    {
        let chunks = entities.chunks(REGISTERED_CHUNK);
        let chunks = chunks.zip(profiles.chunks(REGISTERED_CHUNK));
        units.extend(chunks.map(|(entities, profiles)| ScanUnit::Registered(entities, profiles)));
    }
    wakefulness.scan_starts();
    let scans: Vec<ContactScan> = units
        .into_par_iter()
        .map(|unit| match unit {
            ScanUnit::Block(block) => day.scan_block(block),
            ScanUnit::Registered(entities, profiles) => day.scan_registered(entities, profiles),
        })
        .collect();
    wakefulness.keep_awake();

    // The scans' results in scan order, whatever the threads did.
    let mut total = day.new_scan();
    for scan in scans {
        total.add(scan);
    }
    aggregates.aware += total.newly_aware;
    score.0 += total.score;
    counts.exposures += total.exposures.iter().sum::<u64>();
    counts.clicks += total.clicks.iter().sum::<u64>();
    add_to_item_tallies(&mut items, &total.exposures, |tally| &mut tally.exposures);
    add_to_item_tallies(&mut items, &total.clicks, |tally| &mut tally.clicks);

    counts.registrations += total
        .clicked
        .iter()
        .filter(|contact| contact.home == Home::Block)
        .count() as u64;
    funnel.clicked = total.clicked;
    funnel.dormant = total.dormant;
}

/// A unit of the day's parallel scan.
enum ScanUnit<'w> {
    Block(&'w mut ProspectBlock),
    /// Registered users (`REGISTERED_CHUNK` or fewer), entity by entity.
    Registered(&'w [Entity], &'w [Profile]),
}

/// The draws and parameters of one day's steps 1–3, shared by every scan.
struct ContactDraws<'a> {
    exposure: EventStream,
    /// How this CPU draws a word of a block at once.
    wide: WideDraws,
    item_choice: EventStream,
    click: EventStream,
    /// Step 5's draws, made in the scan of registered users since they read
    /// nothing of the day; they apply to those who do not convert.
    dormancy: EventStream,
    dormancy_chance: Chance,
    /// Step 1's probability per segment.
    exposure_chances: &'a [Chance],
    scenario: &'a Scenario,
    catalogue: &'a Catalogue,
    randomness: &'a Randomness,
}

/// What one scan of steps 1–3 found (over a block, or a chunk of registered
/// users).
struct ContactScan {
    /// Per item.
    exposures: Vec<u64>,
    /// Per item.
    clicks: Vec<u64>,
    newly_aware: u64,
    score: f64,
    /// Who clicked, in scan order.
    clicked: Vec<Contact>,
    /// Registered users who did not click and whose dormancy draw came up, in
    /// scan order.
    dormant: Vec<Entity>,
}

impl ContactScan {
    fn add(&mut self, other: ContactScan) {
        let add = |total: &mut Vec<u64>, part: Vec<u64>| {
            total.iter_mut().zip(part).for_each(|(t, p)| *t += p);
        };
        add(&mut self.exposures, other.exposures);
        add(&mut self.clicks, other.clicks);
        self.newly_aware += other.newly_aware;
        self.score += other.score;
        self.clicked.extend(other.clicked);
        self.dormant.extend(other.dormant);
    }
}

impl ContactDraws<'_> {
    fn new_scan(&self) -> ContactScan {
        let items = self.catalogue.price.len();
        ContactScan {
            exposures: vec![0; items],
            clicks: vec![0; items],
            newly_aware: 0,
            score: 0.0,
            clicked: Vec::new(),
            dormant: Vec::new(),
        }
    }

    /// Steps 1–3 for the prospects of one block. Those who click register and
    /// leave the block.
    fn scan_block(&self, block: &mut ProspectBlock) -> ContactScan {
        let mut scan = self.new_scan();
        let segment = block.segment();
        let chance = self.exposure_chances[usize::from(segment)];
        scan.newly_aware = block.expose(
            |first_user, among| {
                self.exposure
                    .happens_among(self.wide, first_user, among, chance)
            },
            |user| {
                self.choose_and_click(Profile { user, segment }, Home::Block, &mut scan);
            },
        );
        for contact in &scan.clicked {
            block.remove(contact.profile.user);
        }
        scan
    }

    /// Steps 1–3, and the draw of step 5, for some registered users.
    fn scan_registered(&self, entities: &[Entity], profiles: &[Profile]) -> ContactScan {
        let mut scan = self.new_scan();
        let dormancy_applies = self.dormancy_chance != Chance::default();
        for (&entity, &profile) in entities.iter().zip(profiles) {
            let chance = self.exposure_chances[usize::from(profile.segment)];
            let dormant =
                dormancy_applies && self.dormancy.happens(profile.user, self.dormancy_chance);
            let home = Home::Registered { entity, dormant };
            let clicked = self.exposure.happens(profile.user, chance)
                && self.choose_and_click(profile, home, &mut scan);
            if dormant && !clicked {
                scan.dormant.push(entity);
            }
        }
        scan
    }

    /// Steps 2 and 3 for a user exposed today: the item it is shown
    /// (`exposures_i += 1`), then `p_click` (`clicks_i += 1`). Whether it clicks.
    #[inline]
    fn choose_and_click(&self, profile: Profile, home: Home, scan: &mut ContactScan) -> bool {
        let Profile { user, segment } = profile;
        let segment = &self.scenario.market.segments[usize::from(segment)];
        let brand = &self.scenario.brand;
        let topic = self.randomness.traits.favourite_topic(segment, user);
        let mut draws = self.item_choice.generator(user);
        let (branch, pick) = (draws.uniform(), draws.uniform());
        let item = self
            .catalogue
            .choose_item(topic, brand.topic_match, branch, pick);
        scan.exposures[usize::from(item)] += 1;
        let p = model::p_click(
            self.catalogue.click_logit[usize::from(item)],
            brand.click_effect,
            brand.value,
            self.randomness.traits.click_propensity(segment, user),
        );
        let clicks = self.click.bernoulli(user, p);
        scan.score += model::logistic_score(brand.click_effect, clicks, p);
        if clicks {
            scan.clicks[usize::from(item)] += 1;
            scan.clicked.push(Contact {
                profile,
                home,
                item,
            });
        }
        clicks
    }
}

/// What a conversion draws besides its outcome.
struct NewPayer {
    contact: Contact,
    satisfaction: f32,
    /// `h`, for an item that renews.
    churn_probability: Option<f64>,
}

/// Step 4, conversion: `p_conv`; a new payer draws its satisfaction, books its
/// first renewal and leaves the funnel. Then each of the day's clickers gets
/// the entity of the stage it has reached: a user who registered today and did
/// not convert is spawned `Registered`, a new subscriber carries a
/// `Subscription`, and a one-off buyer, who never acts again, counts in the
/// aggregates (`active_payers`, `S_t`) and has no entity. A registered clicker
/// who does not convert and drew dormancy is handed to the dormancy step.
#[allow(clippy::too_many_arguments)]
pub fn convert(
    mut commands: Commands,
    today: Res<Today>,
    randomness: Res<Randomness>,
    market: Res<Market>,
    catalogue: Res<Catalogue>,
    mut funnel: ResMut<FunnelToday>,
    mut items: Query<(&ContentIndex, &mut ItemTally)>,
    mut counts: ResMut<DayCounts>,
    mut score: ResMut<Score>,
    mut aggregates: ResMut<Aggregates>,
    mut calendar: ResMut<RenewalCalendar>,
) {
    let t = today.0;
    let conversion_stream = randomness.stream(t, Event::Conversion);
    let satisfaction_stream = randomness.stream(t, Event::Satisfaction);
    let scenario = &market.scenario;
    let gamma = scenario.brand.conversion_effect;
    let chunks: Vec<ConversionDraws> = funnel
        .clicked
        .par_chunks(CLICKER_CHUNK)
        .map(|contacts| {
            let mut draws = ConversionDraws::default();
            for contact in contacts {
                let user = contact.profile.user;
                let segment = usize::from(contact.profile.segment);
                let item = usize::from(contact.item);
                let p = catalogue.conversion_probability[segment][item];
                let converts = conversion_stream.bernoulli(user, p);
                draws.score += model::logistic_score(gamma, converts, p);
                match contact.home {
                    _ if converts => {}
                    Home::Block => draws.registered_today.push(contact.profile),
                    Home::Registered { entity, dormant } => {
                        if dormant {
                            draws.dormant.push(entity);
                        }
                    }
                }
                if !converts {
                    continue;
                }
                let z: f64 = StandardNormal.sample(&mut satisfaction_stream.generator(user));
                let satisfaction = model::satisfaction(
                    catalogue.quality[item],
                    scenario.market.satisfaction_noise,
                    z,
                );
                let satisfaction = satisfaction as f32;
                let churn_probability = (catalogue.renewal_days[item] > 0).then(|| {
                    let pi = randomness
                        .traits
                        .churn_propensity(&scenario.market.segments[segment], user);
                    let brand = &scenario.brand;
                    model::churn_probability(
                        pi,
                        brand.retention_effect,
                        brand.value,
                        brand.satisfaction_effect,
                        f64::from(satisfaction),
                    )
                });
                draws.payers.push(NewPayer {
                    contact: *contact,
                    satisfaction,
                    churn_probability,
                });
            }
            draws
        })
        .collect();
    let mut conversions = vec![0u64; catalogue.price.len()];
    for draws in chunks {
        score.0 += draws.score;
        funnel.dormant.extend(draws.dormant);
        commands.spawn_batch(
            draws
                .registered_today
                .into_iter()
                .map(|profile| (profile, Registered)),
        );
        for payer in draws.payers {
            let Contact {
                profile,
                home,
                item,
            } = payer.contact;
            conversions[usize::from(item)] += 1;
            aggregates.active_payers += 1;
            aggregates.satisfaction_sum += satisfaction_units(payer.satisfaction);
            let Some(churn_probability) = payer.churn_probability else {
                if let Home::Registered { entity, .. } = home {
                    commands.entity(entity).despawn();
                }
                continue;
            };
            let subscription = Subscription {
                item,
                satisfaction: payer.satisfaction,
                churn_probability,
            };
            let entity = match home {
                Home::Block => commands.spawn((profile, subscription)).id(),
                Home::Registered { entity, .. } => {
                    commands
                        .entity(entity)
                        .remove::<Registered>()
                        .insert(subscription);
                    entity
                }
            };
            let renewal_day = u64::from(t) + u64::from(catalogue.renewal_days[usize::from(item)]);
            calendar.book(renewal_day, entity);
        }
    }
    counts.revenue += revenue(&conversions, &catalogue.price);
    add_to_item_tallies(&mut items, &conversions, |tally| &mut tally.conversions);
    counts.conversions += conversions.iter().sum::<u64>();
}

/// What one chunk of the day's clickers drew.
#[derive(Default)]
struct ConversionDraws {
    payers: Vec<NewPayer>,
    /// Who registered today and did not convert.
    registered_today: Vec<Profile>,
    /// Registered users who did not convert and drew dormancy.
    dormant: Vec<Entity>,
    score: f64,
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

/// Step 5, dormancy: a user registered at the start of the day who did not
/// convert today (converted users have left the funnel) is lost with
/// probability `d`. The draws are made in the day's scan (they read nothing of
/// the day), the outcome waits for conversion: this step applies it. A dormant
/// user never acts again: it is counted and despawned.
pub fn go_dormant(
    mut commands: Commands,
    mut funnel: ResMut<FunnelToday>,
    mut counts: ResMut<DayCounts>,
) {
    counts.dormant += funnel.dormant.len() as u64;
    for entity in funnel.dormant.drain(..) {
        commands.entity(entity).despawn();
    }
}

/// Step 6, churn: each subscriber due today renews or churns with its `h`; a
/// renewal pays and books the next one. A churned user never acts again: it is
/// counted and despawned.
#[allow(clippy::too_many_arguments)]
pub fn renew_or_churn(
    mut commands: Commands,
    subscribers: Query<(&Profile, &Subscription)>,
    today: Res<Today>,
    randomness: Res<Randomness>,
    market: Res<Market>,
    catalogue: Res<Catalogue>,
    mut calendar: ResMut<RenewalCalendar>,
    mut items: Query<(&ContentIndex, &mut ItemTally)>,
    mut counts: ResMut<DayCounts>,
    mut score: ResMut<Score>,
    mut aggregates: ResMut<Aggregates>,
) {
    let t = today.0;
    let Some(due) = calendar.due.get_mut(t as usize).map(std::mem::take) else {
        return;
    };
    let stream = randomness.stream(t, Event::Churn);
    let retention_effect = market.scenario.brand.retention_effect;
    let items_count = catalogue.price.len();
    let chunks: Vec<RenewalDraws> = due
        .par_chunks(CHUNK)
        .map(|due| {
            let mut draws = RenewalDraws {
                renewed: vec![Vec::new(); items_count],
                churned: Vec::new(),
                score: 0.0,
            };
            for &entity in due {
                let (profile, subscription) = subscribers
                    .get(entity)
                    .expect("a booked renewal belongs to a subscriber");
                let h = subscription.churn_probability;
                let churns = stream.bernoulli(profile.user, h);
                draws.score += model::logistic_score(-retention_effect, churns, h);
                if churns {
                    draws.churned.push((entity, subscription.satisfaction));
                } else {
                    draws.renewed[usize::from(subscription.item)].push(entity);
                }
            }
            draws
        })
        .collect();
    let mut renewals = vec![0u64; items_count];
    for draws in chunks {
        score.0 += draws.score;
        for (entity, satisfaction) in draws.churned {
            aggregates.active_payers -= 1;
            aggregates.satisfaction_sum -= satisfaction_units(satisfaction);
            counts.churned += 1;
            commands.entity(entity).despawn();
        }
        for (item, renewed) in draws.renewed.into_iter().enumerate() {
            renewals[item] += renewed.len() as u64;
            let renewal_day = u64::from(t) + u64::from(catalogue.renewal_days[item]);
            calendar.book_all(renewal_day, renewed);
        }
    }
    counts.revenue += revenue(&renewals, &catalogue.price);
    add_to_item_tallies(&mut items, &renewals, |tally| &mut tally.renewals);
    counts.renewals += renewals.iter().sum::<u64>();
}

/// What one chunk of the day's renewals drew.
struct RenewalDraws {
    /// Per item, the subscribers who renew.
    renewed: Vec<Vec<Entity>>,
    /// Who churns, with the satisfaction that leaves `S`.
    churned: Vec<(Entity, f32)>,
    score: f64,
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
    series.spend.push(market.daily_spend);
    series.aware.push(aggregates.aware);
    series.active_payers.push(aggregates.active_payers);
    today.0 += 1;
}

//! One system per step of the day (MODEL.md, "One day"), in timeline order.
//!
//! Scans over many users run on rayon over fixed-size chunks and return their
//! results in chunk order; stage changes are then applied in that order. So a
//! replication gives the same result, bit for bit, on any number of threads.

use bevy_ecs::prelude::*;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use super::components::*;
use super::resources::*;
use crate::model;
use crate::rng::{Chance, Event};

/// Users per unit of parallel work in scans over a table. Fixed, so the split
/// never depends on threads.
pub const CHUNK: usize = 1 << 14;

/// Contacts per unit of parallel work in the day's funnel lists, which are much
/// shorter than the tables and cost more per entry.
pub const CONTACT_CHUNK: usize = 1 << 10;

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

/// Step 1, exposure: each prospect is exposed with its segment's probability. An
/// `Unaware` user who is exposed becomes `Aware` (step 2's stage change).
pub fn expose(
    mut prospects: Query<(Entity, &Profile, &mut Funnel)>,
    today: Res<Today>,
    randomness: Res<Randomness>,
    rates: Res<DayRates>,
    mut funnel: ResMut<FunnelToday>,
    mut aggregates: ResMut<Aggregates>,
) {
    let stream = randomness.stream(today.0, Event::Exposure);
    let chances = &rates.exposure;
    funnel.exposed.clear();
    let tables = prospects
        .contiguous_iter_mut()
        .expect("user components are stored in tables");
    for (entities, profiles, mut funnels) in tables {
        let funnels = funnels.bypass_change_detection();
        let chunks: Vec<(Vec<Contact>, u64)> = entities
            .par_chunks(CHUNK)
            .zip(profiles.par_chunks(CHUNK))
            .zip(funnels.par_chunks_mut(CHUNK))
            .map(|((entities, profiles), funnels)| {
                let mut exposed = Vec::new();
                let mut newly_aware = 0;
                for ((&entity, &profile), funnel) in entities.iter().zip(profiles).zip(funnels) {
                    let chance = chances[usize::from(profile.segment)];
                    if !stream.happens(profile.user, chance) {
                        continue;
                    }
                    if *funnel == Funnel::UNAWARE {
                        *funnel = Funnel::AWARE;
                        newly_aware += 1;
                    }
                    exposed.push(Contact {
                        entity,
                        profile,
                        stage: funnel.stage(),
                        item: 0,
                    });
                }
                (exposed, newly_aware)
            })
            .collect();
        for (exposed, newly_aware) in chunks {
            funnel.exposed.extend(exposed);
            aggregates.aware += newly_aware;
        }
    }
}

/// Step 2, item choice: which item each exposed user sees.
pub fn choose_items(
    today: Res<Today>,
    randomness: Res<Randomness>,
    market: Res<Market>,
    catalogue: Res<Catalogue>,
    mut funnel: ResMut<FunnelToday>,
    mut items: Query<(&ContentIndex, &mut ItemTally)>,
    mut counts: ResMut<DayCounts>,
) {
    let stream = randomness.stream(today.0, Event::ItemChoice);
    let scenario = &market.scenario;
    let topic_match = scenario.brand.topic_match;
    let items_count = catalogue.price.len();
    let exposures = funnel
        .exposed
        .par_chunks_mut(CONTACT_CHUNK)
        .map(|contacts| {
            let mut exposures = vec![0u64; items_count];
            for contact in contacts {
                let Profile { user, segment } = contact.profile;
                let segment = &scenario.market.segments[usize::from(segment)];
                let topic = randomness.traits.favourite_topic(segment, user);
                let mut draws = stream.generator(user);
                let (branch, pick) = (draws.uniform(), draws.uniform());
                contact.item = catalogue.choose_item(topic, topic_match, branch, pick);
                exposures[usize::from(contact.item)] += 1;
            }
            exposures
        })
        .reduce(
            || vec![0u64; items_count],
            |mut total, chunk| {
                total.iter_mut().zip(chunk).for_each(|(t, c)| *t += c);
                total
            },
        );
    add_to_item_tallies(&mut items, &exposures, |tally| &mut tally.exposures);
    counts.exposures += funnel.exposed.len() as u64;
}

/// Step 3, click: `p_click`; a click registers an `Unaware`/`Aware` user.
#[allow(clippy::too_many_arguments)]
pub fn click(
    mut commands: Commands,
    today: Res<Today>,
    randomness: Res<Randomness>,
    market: Res<Market>,
    catalogue: Res<Catalogue>,
    mut funnel: ResMut<FunnelToday>,
    mut items: Query<(&ContentIndex, &mut ItemTally)>,
    mut counts: ResMut<DayCounts>,
    mut score: ResMut<Score>,
) {
    let stream = randomness.stream(today.0, Event::Click);
    let scenario = &market.scenario;
    let brand = &scenario.brand;
    let chunks: Vec<(Vec<Contact>, f64)> = funnel
        .exposed
        .par_chunks(CONTACT_CHUNK)
        .map(|contacts| {
            let mut clicked = Vec::new();
            let mut chunk_score = 0.0;
            for contact in contacts {
                let user = contact.profile.user;
                let segment = &scenario.market.segments[usize::from(contact.profile.segment)];
                let p = model::p_click(
                    catalogue.click_logit[usize::from(contact.item)],
                    brand.click_effect,
                    brand.value,
                    randomness.traits.click_propensity(segment, user),
                );
                let clicks = stream.bernoulli(user, p);
                chunk_score += model::logistic_score(brand.click_effect, clicks, p);
                if clicks {
                    clicked.push(*contact);
                }
            }
            (clicked, chunk_score)
        })
        .collect();
    funnel.clicked.clear();
    for (clicked, chunk_score) in chunks {
        funnel.clicked.extend(clicked);
        score.0 += chunk_score;
    }
    let mut clicks = vec![0u64; catalogue.price.len()];
    // Registration rewrites the funnel stage and adds the marker in one move of
    // the entity, applied after this step.
    let registered = Funnel::registered_on(today.0);
    let mut newly_registered = Vec::new();
    for contact in &mut funnel.clicked {
        clicks[usize::from(contact.item)] += 1;
        if !matches!(contact.stage, FunnelStage::Registered(_)) {
            contact.stage = registered.stage();
            newly_registered.push((contact.entity, (registered, Registered)));
        }
    }
    counts.registrations += newly_registered.len() as u64;
    commands.insert_batch(newly_registered);
    add_to_item_tallies(&mut items, &clicks, |tally| &mut tally.clicks);
    counts.clicks += funnel.clicked.len() as u64;
}

/// What a conversion draws besides its outcome.
struct NewPayer {
    contact: Contact,
    satisfaction: f32,
    /// `π_u`, for an item that renews.
    churn_propensity: Option<f64>,
}

/// Step 4, conversion: `p_conv`; a new payer draws its satisfaction, books its
/// first renewal and leaves the funnel.
#[allow(clippy::too_many_arguments)]
pub fn convert(
    mut commands: Commands,
    today: Res<Today>,
    randomness: Res<Randomness>,
    market: Res<Market>,
    catalogue: Res<Catalogue>,
    funnel: Res<FunnelToday>,
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
    let chunks: Vec<(Vec<NewPayer>, f64)> = funnel
        .clicked
        .par_chunks(CONTACT_CHUNK)
        .map(|contacts| {
            let mut payers = Vec::new();
            let mut chunk_score = 0.0;
            for contact in contacts {
                let user = contact.profile.user;
                let segment = usize::from(contact.profile.segment);
                let item = usize::from(contact.item);
                let p = catalogue.conversion_probability[segment][item];
                let converts = conversion_stream.bernoulli(user, p);
                chunk_score += model::logistic_score(gamma, converts, p);
                if !converts {
                    continue;
                }
                let z: f64 = StandardNormal.sample(&mut satisfaction_stream.generator(user));
                let satisfaction = model::satisfaction(
                    catalogue.quality[item],
                    scenario.market.satisfaction_noise,
                    z,
                );
                let churn_propensity = (catalogue.renewal_days[item] > 0).then(|| {
                    randomness
                        .traits
                        .churn_propensity(&scenario.market.segments[segment], user)
                });
                payers.push(NewPayer {
                    contact: *contact,
                    satisfaction: satisfaction as f32,
                    churn_propensity,
                });
            }
            (payers, chunk_score)
        })
        .collect();
    let mut conversions = vec![0u64; catalogue.price.len()];
    for (payers, chunk_score) in chunks {
        score.0 += chunk_score;
        for payer in payers {
            let item = payer.contact.item;
            conversions[usize::from(item)] += 1;
            counts.revenue += catalogue.price[usize::from(item)];
            aggregates.active_payers += 1;
            aggregates.satisfaction_sum += satisfaction_units(payer.satisfaction);
            let mut user = commands.entity(payer.contact.entity);
            user.remove::<(Funnel, Registered)>().insert(Purchase {
                item,
                satisfaction: payer.satisfaction,
            });
            if let Some(churn_propensity) = payer.churn_propensity {
                let renewal_day =
                    u64::from(t) + u64::from(catalogue.renewal_days[usize::from(item)]);
                user.insert(Subscription {
                    renewal_day: u32::try_from(renewal_day).unwrap_or(u32::MAX),
                    churn_propensity,
                });
                calendar.book(renewal_day, payer.contact.entity);
            }
        }
    }
    add_to_item_tallies(&mut items, &conversions, |tally| &mut tally.conversions);
    counts.conversions += conversions.iter().sum::<u64>();
}

/// Step 5, dormancy: a user registered at the start of the day who did not
/// convert today (converted users have left the funnel) is lost with
/// probability `d`. A dormant user never acts again: it is counted and despawned.
pub fn go_dormant(
    mut commands: Commands,
    registered: Query<(Entity, &Profile, &Funnel), With<Registered>>,
    today: Res<Today>,
    randomness: Res<Randomness>,
    market: Res<Market>,
    mut counts: ResMut<DayCounts>,
) {
    let dormancy = Chance::new(market.scenario.market.dormancy);
    if dormancy == Chance::default() {
        return;
    }
    let t = today.0;
    let stream = randomness.stream(t, Event::Dormancy);
    let tables = registered
        .contiguous_iter()
        .expect("user components are stored in tables");
    for (entities, profiles, funnels) in tables {
        let chunks: Vec<Vec<Entity>> = entities
            .par_chunks(CHUNK)
            .zip(profiles.par_chunks(CHUNK))
            .zip(funnels.par_chunks(CHUNK))
            .map(|((entities, profiles), funnels)| {
                (0..entities.len())
                    .filter(|&i| {
                        matches!(funnels[i].stage(), FunnelStage::Registered(day) if day < t)
                            && stream.happens(profiles[i].user, dormancy)
                    })
                    .map(|i| entities[i])
                    .collect()
            })
            .collect();
        for entity in chunks.into_iter().flatten() {
            commands.entity(entity).despawn();
            counts.dormant += 1;
        }
    }
}

/// Step 6, churn: each subscriber due today renews or churns with
/// `churn_probability`; a renewal pays and books the next one. A churned user
/// never acts again: it is counted and despawned.
#[allow(clippy::too_many_arguments)]
pub fn renew_or_churn(
    mut commands: Commands,
    mut subscribers: Query<(&Profile, &Purchase, &mut Subscription)>,
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
    let brand = &market.scenario.brand;
    let mut renewals = vec![0u64; catalogue.price.len()];
    for entity in due {
        let (profile, purchase, mut subscription) = subscribers
            .get_mut(entity)
            .expect("a booked renewal belongs to a subscriber");
        let h = model::churn_probability(
            subscription.churn_propensity,
            brand.retention_effect,
            brand.value,
            brand.satisfaction_effect,
            f64::from(purchase.satisfaction),
        );
        let churns = stream.bernoulli(profile.user, h);
        score.0 += model::logistic_score(-brand.retention_effect, churns, h);
        if churns {
            aggregates.active_payers -= 1;
            aggregates.satisfaction_sum -= satisfaction_units(purchase.satisfaction);
            counts.churned += 1;
            commands.entity(entity).despawn();
        } else {
            let item = usize::from(purchase.item);
            renewals[item] += 1;
            counts.revenue += catalogue.price[item];
            let renewal_day = u64::from(t) + u64::from(catalogue.renewal_days[item]);
            subscription.renewal_day = u32::try_from(renewal_day).unwrap_or(u32::MAX);
            calendar.book(renewal_day, entity);
        }
    }
    add_to_item_tallies(&mut items, &renewals, |tally| &mut tally.renewals);
    counts.renewals += renewals.iter().sum::<u64>();
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

//! `[[seeding]]` in the engine (MODEL.md v2, "Seeding"): at the start of a
//! seeding's day, before the day's aggregates, chosen candidates become `Paying`
//! at price 0, as if they had converted.

use std::sync::Arc;

use bevy_ecs::prelude::*;
use rand_distr::{Distribution, StandardNormal};

use super::components::{ProspectBlock, ProspectStage, Subscription};
use super::network::NetworkState;
use super::resources::*;
use super::score::UserScores;
use crate::model;
use crate::network::Graph;
use crate::rng::{Event, INITIAL_DAY};
use crate::scenario::{Scenario, Seeding, SeedingRule, Timeline};

/// What seeding did over the horizon beyond the daily series: the seeded users
/// who were `Registered` (they leave the registered users without converting,
/// so the accounting `registrations = conversions + dormant + registered at the
/// end + seeded_registered` holds).
#[derive(Resource, Debug, Clone, Copy, Default)]
pub struct SeedingTally {
    pub seeded_registered: u64,
}

/// Start of day, before `start_day`: the seedings of today, in file order (a
/// user seeded by one is no candidate for the next). Does nothing on other
/// days.
pub fn seed_users(world: &mut World) {
    let t = world.resource::<Today>().0;
    let base = Arc::clone(&world.resource::<Market>().base);
    if !base.seeding.iter().any(|s| s.day == t && s.users > 0) {
        return;
    }
    let day = day_values(world, &base, t);
    for (index, seeding) in base.seeding.iter().enumerate() {
        if seeding.day == t && seeding.users > 0 {
            seed(world, &day, index, seeding);
        }
    }
}

/// The scenario with the values of day `t` (a seeded user's satisfaction reads
/// `quality_{i,t}`); `start_day` has not run yet today.
fn day_values(world: &World, base: &Arc<Scenario>, t: u32) -> Arc<Scenario> {
    let timeline = &world.resource::<DayValues>().timeline;
    match timeline
        .version_on(t)
        .map(|version| timeline.set_of(version))
    {
        Some(set) if !set.is_empty() => Arc::new(Timeline::day_scenario(base, set)),
        _ => Arc::clone(base),
    }
}

/// Seeding `index` of the scenario, on its day.
fn seed(world: &mut World, day: &Scenario, index: usize, seeding: &Seeding) {
    let t = world.resource::<Today>().0;
    let randomness = *world.resource::<Randomness>();
    let chosen = {
        let mut blocks = world.query::<&ProspectBlock>();
        let blocks: Vec<&ProspectBlock> = blocks.iter(world).collect();
        let in_segment = |block: &&&ProspectBlock| {
            seeding
                .segment
                .is_none_or(|s| usize::from(block.segment()) == s)
        };
        match seeding.rule {
            SeedingRule::Random => {
                let mut candidates: Vec<u32> = blocks
                    .iter()
                    .filter(in_segment)
                    .flat_map(|block| block.users())
                    .collect();
                candidates.sort_unstable();
                let mut rng = randomness
                    .key
                    .stream(INITIAL_DAY, Event::Seeding)
                    .generator(index as u32);
                let amount = (seeding.users as usize).min(candidates.len());
                let mut chosen: Vec<u32> =
                    rand::seq::index::sample(&mut rng, candidates.len(), amount)
                        .into_iter()
                        .map(|i| candidates[i])
                        .collect();
                chosen.sort_unstable();
                chosen
            }
            SeedingRule::TopDegree => {
                let network = world
                    .get_resource::<NetworkState>()
                    .expect("validation refuses top-degree without a network");
                top_degree(&network.graph, &blocks, seeding)
            }
        }
    };
    let item = seeding.item;
    let quality = day.content[item].quality;
    let renewal_days = day.content[item].renewal_days;
    let noise = day.market.satisfaction_noise;
    let brand = &day.brand;
    let satisfaction_stream = randomness.stream(t, Event::Satisfaction);
    let mut blocks = world.query::<&mut ProspectBlock>();
    let mut taken = Vec::with_capacity(chosen.len());
    {
        let mut blocks: Vec<Mut<ProspectBlock>> = blocks.iter_mut(world).collect();
        blocks.sort_by_key(|block| block.first_user());
        for user in chosen {
            let at = blocks.partition_point(|block| block.first_user() <= user) - 1;
            let block = &mut blocks[at];
            let segment = block.segment();
            let stage = block
                .take(user)
                .expect("a chosen user is a candidate in its block");
            taken.push((user, segment, stage));
        }
    }
    let (mut newly_aware, mut were_registered, mut units_sum) = (0u64, 0u64, 0u64);
    let mut subscribers = Vec::new();
    let mut one_off = Vec::new();
    let mut payers = Vec::with_capacity(taken.len());
    for &(user, segment, stage) in &taken {
        match stage {
            ProspectStage::Unaware => newly_aware += 1,
            ProspectStage::Registered => were_registered += 1,
            ProspectStage::Aware => {}
        }
        // Step 4's satisfaction, from the same keyed draw a conversion today
        // would use.
        let z: f64 = StandardNormal.sample(&mut satisfaction_stream.generator(user));
        let exact_satisfaction = model::satisfaction(quality, noise, z);
        let satisfaction = exact_satisfaction as f32;
        units_sum += satisfaction_units(satisfaction);
        payers.push((user, satisfaction_units(satisfaction)));
        if renewal_days > 0 {
            let segment_data = &day.market.segments[usize::from(segment)];
            // As in the funnel: NaN (never read) if it never renews.
            let churn_probability = if renewal_days < day.simulation.days - t {
                model::churn_probability_of_logit(
                    randomness.traits.churn_propensity_logit(segment_data, user),
                    brand.retention_effect,
                    world.resource::<Market>().base.brand.value,
                    brand.satisfaction_effect,
                    exact_satisfaction,
                )
            } else {
                f64::NAN
            };
            let profile = super::components::Profile { user, segment };
            let subscription = Subscription {
                item: item as u16,
                satisfaction,
                churn_probability,
            };
            subscribers.push((profile, subscription));
        } else {
            one_off.push((user, satisfaction));
        }
    }
    let seeded = taken.len() as u64;
    {
        let mut aggregates = world.resource_mut::<Aggregates>();
        aggregates.aware += newly_aware;
        aggregates.active_payers += seeded;
        aggregates.satisfaction_sum += units_sum;
    }
    {
        let mut counts = world.resource_mut::<DayCounts>();
        counts.seeded += seeded;
        counts.seeding_spend += seeded as f64 * seeding.cost_per_user;
    }
    world.resource_mut::<SeedingTally>().seeded_registered += were_registered;
    if let Some(mut tracked) = world.get_resource_mut::<UserScores>() {
        // A one-off payer counts with its score now (a subscriber at the end),
        // as the funnel counts its own payers.
        for &(user, satisfaction) in &one_off {
            let score = tracked.running[user as usize];
            tracked.weighted.active_payers += score;
            tracked.weighted.satisfaction_sum += f64::from(satisfaction) * score;
        }
    }
    if let Some(mut network) = world.get_resource_mut::<NetworkState>() {
        // Before the day's aggregates: their friends hear of them today.
        for &(user, units) in &payers {
            network.add_payer(user, units);
        }
    }
    if !subscribers.is_empty() {
        let renewal_day = u64::from(t) + u64::from(renewal_days);
        world
            .resource_mut::<Subscribers>()
            .subscribe_all(&subscribers, |_| renewal_day);
    }
}

/// `top-degree`: up to `seeding.users` candidates (users still in a block, of
/// the seeding's segment if it has one) in order of degree in the whole network,
/// highest first, ties to the lower user number; in user order.
fn top_degree(graph: &Graph, blocks: &[&ProspectBlock], seeding: &Seeding) -> Vec<u32> {
    let mut candidates: Vec<&ProspectBlock> = blocks
        .iter()
        .copied()
        .filter(|block| {
            seeding
                .segment
                .is_none_or(|s| usize::from(block.segment()) == s)
        })
        .collect();
    // In user order, so that ties go to the lower user number.
    candidates.sort_unstable_by_key(|block| block.first_user());
    let users = || candidates.iter().flat_map(|block| block.users());
    // The cut: the degree `d` with fewer than `users` candidates above it and
    // at least `users` at or above it (counting, not sorting: linear, and
    // no per-candidate list). Degrees beyond the table share its last slot
    // and are resolved below.
    const TABLE: usize = 1 << 12;
    let mut counts = vec![0u64; TABLE];
    for user in users() {
        counts[(graph.degree(user) as usize).min(TABLE - 1)] += 1;
    }
    let mut left = u64::from(seeding.users);
    let mut found = None;
    for degree in (0..TABLE).rev() {
        if counts[degree] >= left {
            found = Some(degree);
            break;
        }
        left -= counts[degree];
    }
    let Some(cut) = found else {
        // Fewer candidates than `users`: all of them.
        return users().collect();
    };
    if cut == TABLE - 1 {
        // The cut lies among the largest degrees: rank those few exactly.
        let mut ranked: Vec<(std::cmp::Reverse<u32>, u32)> = users()
            .filter(|&user| graph.degree(user) as usize >= TABLE - 1)
            .map(|user| (std::cmp::Reverse(graph.degree(user)), user))
            .collect();
        ranked.sort_unstable();
        ranked.truncate(seeding.users as usize);
        let mut chosen: Vec<u32> = ranked.into_iter().map(|(_, user)| user).collect();
        chosen.sort_unstable();
        return chosen;
    }
    // Everyone above the cut, and the first `left` at it in user order.
    let mut chosen = Vec::with_capacity(seeding.users.min(1 << 24) as usize);
    for user in users() {
        let degree = graph.degree(user) as usize;
        if degree > cut {
            chosen.push(user);
        } else if degree == cut && left > 0 {
            chosen.push(user);
            left -= 1;
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::ReplicationKey;

    /// The selection picks exactly what ranking every candidate by (degree
    /// descending, user ascending) and taking the first `users` picks: on a
    /// graph with many tied degrees, with users already out of their blocks,
    /// with and without a segment, and for more users than candidates.
    #[test]
    fn top_degree_is_the_head_of_the_full_ranking_among_candidates() {
        let scale_free = crate::network::barabasi_albert(3_000, 2, ReplicationKey::new(5, 0));
        // Hubs beyond the degree table (degrees above 4 095) among 6 000 users
        // of whom the blocks hold the first 3 000: 0 and 3 with every user
        // from 4 on (tied), 1 with 5 000 of them, 4 and 5 with 4 100 each
        // (tied, and not the largest), 2 with 2 200.
        let mut edges: Vec<(u32, u32)> = (6..6_000).flat_map(|v| [(0, v), (3, v)]).collect();
        edges.extend((1_000..6_000).map(|v| (1, v)));
        edges.extend(
            (6..4_106)
                .flat_map(|v| [(4, v + 1), (5, v)])
                .filter(|&(a, b)| a != b),
        );
        edges.extend((10..2_210).map(|v| (2, v)));
        let hubs = Graph::from_edges(6_000, &edges);
        for graph in [scale_free, hubs] {
            check_top_degree_against_the_full_ranking(&graph);
        }
    }

    fn check_top_degree_against_the_full_ranking(graph: &Graph) {
        let mut blocks = [
            ProspectBlock::new(0, 0, 1_000),
            ProspectBlock::new(1, 1_000, 1_500),
            ProspectBlock::new(0, 2_500, 500),
        ];
        // Hubs and ordinary users already paying: no longer candidates.
        for user in (0..3_000).step_by(7) {
            let at = blocks.iter().rposition(|b| b.first_user() <= user).unwrap();
            blocks[at].take(user);
        }
        let refs: Vec<&ProspectBlock> = blocks.iter().collect();
        for (segment, users) in [
            (None, 0),
            (None, 1),
            (None, 2),
            (None, 3),
            (None, 40),
            (Some(0), 25),
            (Some(1), 5_000),
            (None, 2_571),
            (None, 2_572),
        ] {
            let seeding = Seeding {
                name: "s".into(),
                day: 0,
                item: 0,
                users,
                rule: SeedingRule::TopDegree,
                segment,
                cost_per_user: 0.0,
            };
            let mut expected: Vec<u32> = (0..3_000)
                .filter(|&u| {
                    let b = refs.iter().rfind(|b| b.first_user() <= u).unwrap();
                    b.stage(u).is_some() && segment.is_none_or(|s| usize::from(b.segment()) == s)
                })
                .collect();
            expected.sort_by_key(|&u| (std::cmp::Reverse(graph.degree(u)), u));
            expected.truncate(users as usize);
            expected.sort_unstable();
            assert_eq!(
                top_degree(graph, &refs, &seeding),
                expected,
                "{segment:?} {users}"
            );
        }
    }
}

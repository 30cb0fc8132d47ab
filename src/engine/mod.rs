//! One replication of the market on a `bevy_ecs` World: [`simulate`] is the single
//! core that every study, sweep, comparison and optimiser step loops around.
//!
//! Must not depend on: the CLI, reporting, or anything that writes files.

pub mod components;
pub mod resources;
pub mod systems;
pub mod traits;

use std::sync::Arc;

use bevy_ecs::prelude::*;
use bevy_ecs::schedule::SingleThreadedExecutor;

use crate::model;
use crate::outcome::{ItemCounts, Outcome};
use crate::rng::ReplicationKey;
use crate::scenario::Scenario;
use components::*;
use resources::*;

/// Runs replication `replication` of `scenario` (seeded by the scenario's master
/// seed) over the whole horizon. Parallel inside when called from a rayon pool
/// with idle threads; the result never depends on that.
pub fn simulate(scenario: &Arc<Scenario>, replication: u32) -> Outcome {
    let mut world = build_world(scenario, replication);
    let mut day = day_schedule();
    for _ in 0..scenario.simulation.days {
        day.run(&mut world);
    }
    collect_outcome(&mut world, replication)
}

/// The day's timeline, top to bottom. Stage changes made with commands in one step
/// are applied before the next step runs.
pub fn day_schedule() -> Schedule {
    let mut schedule = Schedule::default();
    schedule.set_executor(SingleThreadedExecutor::new());
    schedule.add_systems(
        (
            systems::start_day,
            systems::expose,
            systems::choose_items,
            systems::click,
            systems::convert,
            systems::go_dormant,
            systems::renew_or_churn,
            systems::record_day,
        )
            .chain(),
    );
    schedule
}

/// A World holding replication `replication` at the start of day 0: users with
/// their initial traits, content items and the resources of the day loop.
pub fn build_world(scenario: &Arc<Scenario>, replication: u32) -> World {
    let key = ReplicationKey::new(scenario.simulation.seed, replication);
    let segment_sizes = scenario.segment_sizes();
    let mut world = World::new();
    world.insert_resource(Market {
        channel_rates: model::channel_rates(scenario, &segment_sizes),
        daily_spend: model::daily_spend(scenario),
        segment_sizes: segment_sizes.clone(),
        scenario: Arc::clone(scenario),
    });
    world.insert_resource(Catalogue::new(scenario));
    world.insert_resource(Randomness::new(key));
    world.insert_resource(Today(0));
    world.insert_resource(Aggregates::default());
    world.insert_resource(DayRates::default());
    world.insert_resource(FunnelToday::default());
    world.insert_resource(DayCounts::default());
    world.insert_resource(Score::default());
    world.insert_resource(DailyRecord::default());
    world.insert_resource(RenewalCalendar {
        due: vec![Vec::new(); scenario.simulation.days as usize],
    });
    // The population last: anything spawned after it (resources are entities
    // too) would grow the World's entity index, sized exactly for the
    // population, to twice its size.
    for index in 0..scenario.content.len() {
        world.spawn((ContentIndex(index as u16), ItemTally::default()));
    }
    spawn_users(&mut world, &segment_sizes);
    world
}

/// Spawns the population, `Unaware`, numbered segment by segment in file order.
fn spawn_users(world: &mut World, segment_sizes: &[u32]) {
    let segment_ends = segment_sizes
        .iter()
        .scan(0u32, |end, &size| {
            *end += size;
            Some(*end)
        })
        .collect();
    world.spawn_batch(NewUsers {
        segment_ends,
        segment: 0,
        next_user: 0,
    });
}

/// The users to spawn, with the exact length, so that the World reserves its
/// storage once.
struct NewUsers {
    /// One past the last user of each segment.
    segment_ends: Vec<u32>,
    segment: usize,
    next_user: u32,
}

impl Iterator for NewUsers {
    type Item = (Profile, Funnel);

    fn next(&mut self) -> Option<Self::Item> {
        while self.next_user >= *self.segment_ends.get(self.segment)? {
            self.segment += 1;
        }
        let profile = Profile {
            user: self.next_user,
            segment: self.segment as u16,
        };
        self.next_user += 1;
        Some((profile, Funnel::UNAWARE))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let population = self.segment_ends.last().copied().unwrap_or(0);
        let left = (population - self.next_user) as usize;
        (left, Some(left))
    }
}

impl ExactSizeIterator for NewUsers {}

/// Reads the World at the end of the horizon into an [`Outcome`].
fn collect_outcome(world: &mut World, replication: u32) -> Outcome {
    let market = world.resource::<Market>();
    let scenario = Arc::clone(&market.scenario);
    let aggregates = *world.resource::<Aggregates>();
    let mut items = vec![ItemCounts::default(); scenario.content.len()];
    let mut tallies = world.query::<(&ContentIndex, &ItemTally)>();
    for (index, tally) in tallies.iter(world) {
        items[usize::from(index.0)] = ItemCounts {
            exposures: tally.exposures,
            clicks: tally.clicks,
            conversions: tally.conversions,
            renewals: tally.renewals,
        };
    }
    let registered_at_end = world
        .query_filtered::<(), With<Registered>>()
        .iter(world)
        .count() as u64;
    let daily = world.resource::<DailyRecord>().series.clone();
    let sum = |series: &[u64]| series.iter().sum::<u64>();
    let revenue = items
        .iter()
        .zip(&scenario.content)
        .map(|(counts, item)| item.price * (counts.conversions + counts.renewals) as f64)
        .sum();
    Outcome {
        replication,
        population: scenario.market.population,
        registrations: sum(&daily.registrations),
        churned: sum(&daily.churned),
        dormant: sum(&daily.dormant),
        aware: aggregates.aware,
        active_payers: aggregates.active_payers,
        registered_at_end,
        satisfaction_sum: aggregates.satisfaction_sum(),
        revenue,
        spend: daily.spend.iter().sum(),
        score: world.resource::<Score>().0,
        items,
        daily,
    }
}

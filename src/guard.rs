//! The resource guard: before a study starts, estimate the memory it needs and
//! compare it with the memory available; run fewer replications at a time, or
//! refuse with a message saying how much is needed and how to shrink the study.
//!
//! Must not depend on: the CLI. Every command that simulates calls [`plan_study`]
//! before simulating and [`run_planned`] to simulate.

use std::fmt;
use std::sync::Arc;

use crate::outcome::Outcome;
use crate::scenario::Scenario;
use crate::study::{StudyRun, run_replications};

/// Peak bytes per user of one running replication, measured with `brandsim run`'s
/// peak-memory report at 10^6 users: about 7 on the bundled platform scenario
/// (users in the funnel cost three bits; only subscribers are entities),
/// 7 on the Bass market, 160 in the worst case found (every user is exposed,
/// clicks and subscribes on day 0, so every user becomes an entity and is
/// booked in the renewal calendar at once). Rounded up to stay conservative.
pub const BYTES_PER_USER: u64 = 512;

/// Bytes per day of one running replication: the renewal calendar (24) and the
/// daily series while they grow (11 series of 8 bytes, up to twice over by
/// `Vec` doubling, and copied once into the outcome).
pub const BYTES_PER_DAY_RUNNING: u64 = 24 + 3 * 88;

/// Bytes per day of one finished replication: its daily series (11 × 8).
pub const BYTES_PER_DAY_FINISHED: u64 = 88;

/// Bytes per day of the study summary: the daily bands (11 series × 4 × 8) and
/// the text of `daily.csv` (about 11 × 4 × 20).
pub const BYTES_PER_DAY_SUMMARY: u64 = 352 + 1024;

/// The process itself: code, thread stacks touched, allocator slack.
pub const FIXED_BYTES: u64 = 64 << 20;

/// Share of the available memory a study may plan to use.
pub const USABLE_SHARE: f64 = 0.9;

/// The memory a study needs, in parts (bytes; saturating, never overflowing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// One replication while it runs: users, per-day state, per-segment item tables.
    pub per_running_replication: u64,
    /// One finished replication kept for the summary.
    pub per_finished_replication: u64,
    /// The summary, the output files and the process.
    pub fixed: u64,
}

impl MemoryEstimate {
    /// The estimate for `scenario`, whose population and horizon can be as large
    /// as `u32::MAX` each: all products are taken in `u64` with saturation.
    pub fn of(scenario: &Scenario) -> Self {
        let users = u64::from(scenario.market.population);
        let days = u64::from(scenario.simulation.days);
        let items = scenario.content.len() as u64;
        let segments = scenario.market.segments.len() as u64;
        let per_running_replication = users
            .saturating_mul(BYTES_PER_USER)
            .saturating_add(days.saturating_mul(BYTES_PER_DAY_RUNNING))
            .saturating_add(segments.saturating_mul(items).saturating_mul(8));
        let per_finished_replication = days
            .saturating_mul(BYTES_PER_DAY_FINISHED)
            .saturating_add(items.saturating_mul(32))
            .saturating_add(256);
        let fixed = days
            .saturating_mul(BYTES_PER_DAY_SUMMARY)
            .saturating_add(FIXED_BYTES);
        MemoryEstimate {
            per_running_replication,
            per_finished_replication,
            fixed,
        }
    }

    /// Bytes needed with `concurrent` replications running out of `replications`.
    pub fn total(&self, concurrent: u64, replications: u64) -> u64 {
        self.per_running_replication
            .saturating_mul(concurrent)
            .saturating_add(self.per_finished_replication.saturating_mul(replications))
            .saturating_add(self.fixed)
    }
}

/// How a study will run within the memory: how many replications at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct StudyPlan {
    /// Replications running at once (>= 1).
    pub concurrent_replications: usize,
    /// What the study would have run at once without the guard.
    pub wanted_concurrency: usize,
    pub estimate: MemoryEstimate,
    /// Bytes needed with `concurrent_replications`.
    pub needed: u64,
    /// Available memory, when the OS reports it.
    pub available: Option<u64>,
}

impl StudyPlan {
    /// A line for stderr when the guard lowered the concurrency.
    pub fn note(&self) -> Option<String> {
        (self.concurrent_replications < self.wanted_concurrency).then(|| {
            format!(
                "note: running {} replication(s) at a time instead of {} to fit in memory: each needs about {}, {} available; --threads {} avoids this note",
                self.concurrent_replications,
                self.wanted_concurrency,
                Bytes(self.estimate.per_running_replication),
                self.available.map_or("?".into(), |a| Bytes(a).to_string()),
                self.concurrent_replications
            )
        })
    }
}

/// A study that cannot fit in the available memory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the study needs about {needed} of memory ({users} users × {per_user} bytes per user for one replication at a time, {days} days, {replications} replications) but only {usable} of {available} available can be used; shrink it: fewer users (--set market.population=...), fewer days (--set simulation.days=...) or fewer replications (--replications)",
    needed = Bytes(*needed),
    usable = Bytes(*usable),
    available = Bytes(*available),
    per_user = BYTES_PER_USER
)]
pub struct GuardError {
    pub needed: u64,
    pub usable: u64,
    pub available: u64,
    pub users: u32,
    pub days: u32,
    pub replications: usize,
}

/// Plans a study of `replications` replications of `scenario` on `threads`
/// threads within `available` bytes (`None`: unknown, no limit). Reduces the
/// replications running at once until the estimate fits; refuses when even one
/// at a time does not.
pub fn plan_study(
    scenario: &Scenario,
    replications: usize,
    threads: usize,
    available: Option<u64>,
) -> Result<StudyPlan, GuardError> {
    let estimate = MemoryEstimate::of(scenario);
    let wanted = threads.min(replications).max(1);
    let total = |concurrent: usize| estimate.total(concurrent as u64, replications as u64);
    let Some(available) = available else {
        return Ok(StudyPlan {
            concurrent_replications: wanted,
            wanted_concurrency: wanted,
            estimate,
            needed: total(wanted),
            available: None,
        });
    };
    let usable = (available as f64 * USABLE_SHARE) as u64;
    let fits = (1..=wanted).rev().find(|&c| total(c) <= usable);
    match fits {
        Some(concurrent) => Ok(StudyPlan {
            concurrent_replications: concurrent,
            wanted_concurrency: wanted,
            estimate,
            needed: total(concurrent),
            available: Some(available),
        }),
        None => Err(GuardError {
            needed: total(1),
            usable,
            available,
            users: scenario.market.population,
            days: scenario.simulation.days,
            replications,
        }),
    }
}

/// `MemAvailable` of `/proc/meminfo` in bytes, on Linux.
pub fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// Runs the replications as [`run_replications`] does, but never more than
/// `plan.concurrent_replications` at once (in batches, in order). Outcomes come
/// back in the order asked and do not depend on the batching.
pub fn run_planned(
    scenario: &Arc<Scenario>,
    replications: &[u32],
    pool: &rayon::ThreadPool,
    plan: &StudyPlan,
    on_done: &(dyn Fn(&Outcome) + Sync),
) -> StudyRun {
    if plan.concurrent_replications >= replications.len() {
        return run_replications(scenario, replications, pool, on_done);
    }
    let mut outcomes = Vec::with_capacity(replications.len());
    let mut seconds = 0.0;
    for batch in replications.chunks(plan.concurrent_replications.max(1)) {
        let run = run_replications(scenario, batch, pool, on_done);
        outcomes.extend(run.outcomes);
        seconds += run.seconds;
    }
    StudyRun { outcomes, seconds }
}

/// Bytes shown in binary units: `512 B`, `1.5 MiB`, `3.2 GiB`.
#[derive(Debug, Clone, Copy)]
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        if self.0 < 1024 {
            return write!(f, "{} B", self.0);
        }
        let mut value = self.0 as f64 / 1024.0;
        let mut unit = 0;
        while value >= 1024.0 && unit + 1 < UNITS.len() {
            value /= 1024.0;
            unit += 1;
        }
        write!(f, "{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bass() -> Scenario {
        crate::scenario::parse_str(include_str!("../scenarios/bass.toml"), "bass.toml").unwrap()
    }

    const GIB: u64 = 1 << 30;

    #[test]
    fn impossible_study_is_refused_with_size_and_how_to_shrink() {
        let mut scenario = bass();
        scenario.market.population = u32::MAX;
        let error = plan_study(&scenario, 8, 2, Some(16 * GIB)).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("needs about 2.0 TiB"), "{message}");
        assert!(message.contains("4294967295 users"), "{message}");
        assert!(message.contains("--set market.population="), "{message}");
        assert!(message.contains("of 16.0 GiB available"), "{message}");
    }

    #[test]
    fn huge_horizon_is_refused_even_for_one_user() {
        let mut scenario = bass();
        scenario.market.population = 1;
        scenario.simulation.days = u32::MAX;
        assert!(plan_study(&scenario, 1, 1, Some(16 * GIB)).is_err());
    }

    #[test]
    fn concurrency_is_lowered_until_the_estimate_fits() {
        let mut scenario = bass();
        scenario.market.population = 12_000_000; // about 5.7 GiB per replication
        let plan = plan_study(&scenario, 32, 8, Some(16 * GIB)).unwrap();
        assert_eq!(plan.wanted_concurrency, 8);
        assert_eq!(plan.concurrent_replications, 2);
        assert!(plan.needed <= (16.0 * GIB as f64 * USABLE_SHARE) as u64);
        assert!(
            plan.note()
                .unwrap()
                .contains("2 replication(s) at a time instead of 8")
        );
        let roomy = plan_study(&scenario, 32, 8, Some(1024 * GIB)).unwrap();
        assert_eq!(roomy.concurrent_replications, 8);
        assert_eq!(roomy.note(), None);
    }

    #[test]
    fn estimates_saturate_instead_of_overflowing() {
        let mut scenario = bass();
        scenario.market.population = u32::MAX;
        scenario.simulation.days = u32::MAX;
        let estimate = MemoryEstimate::of(&scenario);
        assert_eq!(estimate.total(u64::MAX, u64::MAX), u64::MAX);
        assert!(plan_study(&scenario, usize::MAX, usize::MAX, Some(u64::MAX)).is_err());
    }

    #[test]
    fn batches_give_the_same_outcomes_as_one_run() {
        let mut scenario = bass();
        scenario.market.population = 500;
        scenario.simulation.days = 5;
        let scenario = Arc::new(scenario);
        let pool = crate::study::thread_pool(2);
        let replications = [0, 1, 2, 3, 4];
        let mut plan = plan_study(&scenario, 5, 2, None).unwrap();
        plan.concurrent_replications = 2;
        let batched = run_planned(&scenario, &replications, &pool, &plan, &|_| {});
        let whole = run_replications(&scenario, &replications, &pool, &|_| {});
        assert_eq!(batched.outcomes, whole.outcomes);
    }

    #[test]
    fn bytes_are_shown_in_binary_units() {
        assert_eq!(Bytes(512).to_string(), "512 B");
        assert_eq!(Bytes(1536 << 10).to_string(), "1.5 MiB");
        assert_eq!(Bytes(u64::MAX).to_string(), "16.0 EiB");
    }
}

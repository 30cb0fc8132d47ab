//! The resource guard: before a study starts, estimate the memory it needs and
//! compare it with the memory available; run fewer replications at a time, or
//! refuse with a message saying how much is needed and how to shrink the study.
//!
//! Must not depend on: the CLI. Every command that simulates calls [`plan_study`]
//! before simulating and [`run_planned`] to simulate.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::outcome::Outcome;
use crate::scenario::Scenario;
use crate::study::{StudyRun, run_replications};

/// Bytes per user of one running replication for the users still in the funnel:
/// three bits each in prospect blocks of 4096 users, plus the blocks' entities
/// and the day's change lists. Measured: 0.48 bytes/user (peak RSS above the start,
/// 3·10^7 users of the Bass scenario, outputs included); budgeted with margin.
pub const PROSPECT_BYTES_PER_USER: u64 = 1;

/// Bytes per subscriber of one running replication: its place in the
/// `Subscribers` table (20 bytes, growing by an eighth), its booking in the
/// renewal calendar, and its entries in the day's lists of new subscribers
/// (the scan's and the merged one, 24 bytes each), and with renewals its
/// share of the churn step's kept lists (up to 16 bytes); 8 more with
/// per-user scores. Measured above the process when every one of 10^6 or 10^7
/// users subscribes on day 0, on 1 or 2 threads (the worst case): 69
/// bytes/user with monthly renewals, 81 with daily ones (155 when each
/// subscriber was also an entity, until issue 18's fifth session); budgeted
/// with margin.
pub const BYTES_PER_SUBSCRIBER: u64 = 96;

/// Bytes a subscriber who stopped keeps to the end of the replication: its
/// place in the `Subscribers` table (20 bytes: places are not reused, issue
/// 18; 4 more with per-user scores); budgeted with margin.
pub const BYTES_PER_FORMER_SUBSCRIBER: u64 = 32;

/// How many users, as shares of the population, a market keeps as subscribers
/// at once at most (`peak`) and makes subscribers over the horizon (`ever`,
/// at least `peak`): the first hold [`BYTES_PER_SUBSCRIBER`] each, the others
/// [`BYTES_PER_FORMER_SUBSCRIBER`] to the end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SubscriberShares {
    pub peak: f64,
    pub ever: f64,
}

impl SubscriberShares {
    /// The worst case: every user a subscriber at once.
    pub const EVERYONE: SubscriberShares = SubscriberShares {
        peak: 1.0,
        ever: 1.0,
    };
}

/// Bytes per (segment, item) pair of one running replication: the per-segment
/// item tables (conversion probabilities, pickers, tallies). Measured: about 40
/// bytes per pair (400 segments × 400 items, outputs included); budgeted with
/// margin.
pub const BYTES_PER_SEGMENT_ITEM: u64 = 64;

/// Bytes per day of one running replication: the renewal calendar (24) and the
/// daily series while they grow (11 series of 8 bytes, up to twice over by
/// `Vec` doubling, and copied once into the outcome).
pub const BYTES_PER_DAY_RUNNING: u64 = 24 + 3 * 88;

/// Bytes per day of one finished replication: its daily series (11 × 8).
pub const BYTES_PER_DAY_FINISHED: u64 = 88;

/// Bytes per day of the study summary: the daily bands (11 series × 4 × 8) and
/// the text of `daily.csv` (about 11 × 4 × 20).
pub const BYTES_PER_DAY_SUMMARY: u64 = 352 + 1024;

/// Bytes per user of one running replication with a social network, beyond the
/// graph: the neighbour sum (8), the headroom of `ω^net` (2) and the friends
/// bit of `engine::network`, and the day's lists of new and lost payers;
/// budgeted with margin.
pub const NETWORK_BYTES_PER_USER: u64 = 20;

/// Bytes per user that building a graph, or summarising it, holds for a moment
/// beyond the graph itself, with margin: the generators build the CSR in place
/// (`network::generate`, measured: Erdős–Rényi and Barabási–Albert one `u32`
/// per user, Watts–Strogatz 12 bytes with its slack), a file graph one `u32`
/// cursor per user; a replication whose graph `network.json` reports
/// summarises it at its end, beside its World (`network::offer_graph`: the
/// degrees, then the clustering's cumulative wedge counts or the components'
/// union–find, about 16 bytes per user at once).
pub const GRAPH_BUILD_BYTES_PER_USER: u64 = 24;

/// Bytes per edge of a file graph's edge list, which the scenario holds beside
/// the graph (`(u32, u32)` pairs); generated graphs have no edge list.
pub const FILE_GRAPH_BYTES_PER_EDGE: u64 = 8;

/// The process itself: code, thread stacks touched, allocator slack.
pub const FIXED_BYTES: u64 = 64 << 20;

/// Users of the pilot run that measures how many subscribers a market keeps
/// at once, when the worst case (every user a subscriber) does not fit.
pub const PILOT_USERS: u32 = 100_000;

/// Replications of the pilot run.
pub const PILOT_REPLICATIONS: u32 = 2;

/// The longest horizon a pilot runs (its cost and its per-day memory grow
/// with the days); a longer one keeps the worst-case estimate.
pub const PILOT_MAX_DAYS: u32 = 10_000;

/// The most (segment, item) pairs a pilot runs with; more keep the
/// worst-case estimate.
pub const PILOT_MAX_SEGMENT_ITEMS: usize = 100_000;

/// Share of the available memory a study may plan to use.
pub const USABLE_SHARE: f64 = 0.9;

/// The memory a study needs, in parts (bytes; saturating, never overflowing).
/// Each part of a running replication is one term of [`MemoryEstimate::of`]: a
/// new per-replication table (e.g. per-day campaign tables) adds one term there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// Bytes per user of one running replication (prospect bits plus, when any
    /// item is a subscription, a subscriber's place each; with a network, the
    /// neighbour sum and a per-replication graph's share), for messages.
    pub per_user: u64,
    /// One replication while it runs: users, per-day state, per-segment item
    /// tables, a per-replication graph.
    pub per_running_replication: u64,
    /// One finished replication kept for the summary.
    pub per_finished_replication: u64,
    /// The summary, the output files, the process, and a fixed or file graph.
    pub fixed: u64,
}

impl MemoryEstimate {
    /// The estimate for `scenario`, whose population and horizon can be as large
    /// as `u32::MAX` each: all products are taken in `u64` with saturation.
    pub fn of(scenario: &Scenario) -> Self {
        Self::with_subscriber_shares(scenario, SubscriberShares::EVERYONE)
    }

    /// [`Self::of`] where at most `shares.peak` of the users (in [0, 1]) are
    /// subscribers at once and `shares.ever` ever are, instead of all of them.
    pub fn with_subscriber_shares(scenario: &Scenario, shares: SubscriberShares) -> Self {
        let users = u64::from(scenario.market.population);
        let days = u64::from(scenario.simulation.days);
        let items = scenario.content.len() as u64;
        let segments = scenario.market.segments.len() as u64;
        // Only subscribers are kept; one-off buyers are counted, and users who
        // stop keep only their place in the subscribers' table. Without subscription items there are none; with
        // them, at most every user at once.
        let subscriptions = scenario.content.iter().any(|item| item.renewal_days > 0);
        let peak = shares.peak.clamp(0.0, 1.0);
        let former = (shares.ever.clamp(0.0, 1.0) - peak).max(0.0);
        let per_user = PROSPECT_BYTES_PER_USER
            + if subscriptions {
                (BYTES_PER_SUBSCRIBER as f64 * peak + BYTES_PER_FORMER_SUBSCRIBER as f64 * former)
                    .ceil() as u64
            } else {
                0
            };
        // A per-replication graph lives in each running replication; a fixed or
        // file graph once in the process (it is shared).
        let (network_per_user, graph_per_replication, graph_shared) = network_bytes(scenario);
        let state_per_user = per_user + network_per_user;
        let terms = [
            users.saturating_mul(state_per_user),
            graph_per_replication,
            days.saturating_mul(BYTES_PER_DAY_RUNNING),
            segments
                .saturating_mul(items)
                .saturating_mul(BYTES_PER_SEGMENT_ITEM),
        ];
        let per_running_replication = terms.iter().fold(0u64, |a, &t| a.saturating_add(t));
        let per_finished_replication = days
            .saturating_mul(BYTES_PER_DAY_FINISHED)
            .saturating_add(items.saturating_mul(32))
            .saturating_add(256);
        let fixed = days
            .saturating_mul(BYTES_PER_DAY_SUMMARY)
            .saturating_add(FIXED_BYTES)
            .saturating_add(graph_shared);
        // For messages, a per-replication graph counts per user too.
        let per_user = state_per_user + graph_per_replication.checked_div(users).unwrap_or(0);
        MemoryEstimate {
            per_user,
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

/// The network's bytes of a running replication (MODEL.md v2, "Social-network
/// word of mouth"): per user beyond the graph, and the graph with what building
/// it holds for a moment (`4·(N+1) + 8·E` bytes of CSR, `E` the expected edges of
/// the model, and a file graph's edge list), either per running replication or
/// once (a fixed or file graph).
fn network_bytes(scenario: &Scenario) -> (u64, u64, u64) {
    use crate::scenario::{GraphScope, NetworkModel};
    let Some(network) = &scenario.market.network else {
        return (0, 0, 0);
    };
    let users = u64::from(scenario.market.population);
    let edges = match &network.model {
        NetworkModel::ErdosRenyi { mean_degree } => {
            // The expectation plus six standard deviations.
            let expected = f64::from(scenario.market.population) * mean_degree / 2.0;
            (expected + 6.0 * expected.sqrt()).min(u64::MAX as f64) as u64
        }
        NetworkModel::WattsStrogatz { k, .. } => users.saturating_mul(u64::from(*k)) / 2,
        NetworkModel::BarabasiAlbert { m } => {
            let m = u64::from(*m);
            (m * (m + 1) / 2).saturating_add(users.saturating_sub(m + 1).saturating_mul(m))
        }
        NetworkModel::File { edges, .. } => edges.len() as u64,
    };
    let file = matches!(network.model, NetworkModel::File { .. });
    let edge_list = if file { FILE_GRAPH_BYTES_PER_EDGE } else { 0 };
    let graph = (4 * (users + 1))
        .saturating_add(edges.saturating_mul(8))
        .saturating_add(users.saturating_mul(GRAPH_BUILD_BYTES_PER_USER))
        .saturating_add(edges.saturating_mul(edge_list));
    let shared = file || network.graph == GraphScope::Fixed;
    if shared {
        (NETWORK_BYTES_PER_USER, 0, graph)
    } else {
        (NETWORK_BYTES_PER_USER, graph, 0)
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
    "the study needs about {needed} of memory ({users} users × {per_user} bytes per user for one replication at a time, {days} days, {replications} replications) but only {usable} of {available} available can be used; shrink it: fewer users (--set market.population=...), fewer days (--set simulation.days=...) or fewer replications ({replications_option})",
    needed = Bytes(*needed),
    usable = Bytes(*usable),
    available = Bytes(*available),
)]
pub struct GuardError {
    pub needed: u64,
    /// Bytes per user of one running replication in the estimate.
    pub per_user: u64,
    pub usable: u64,
    pub available: u64,
    pub users: u32,
    pub days: u32,
    pub replications: usize,
    /// The option that sets `replications` (`--replications`; calibrate's
    /// `--se-replications` when those are the most held at once).
    pub replications_option: &'static str,
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
    let mut fits = most_that_fit(wanted, |c| total(c) <= usable);
    let mut estimate = estimate;
    if fits.is_none()
        && let Some(shares) = pilot_subscriber_shares(scenario)
    {
        // The worst case does not fit: budget the subscribers a pilot run of
        // the same market, scaled down, keeps at once and makes in all.
        let measured = MemoryEstimate::with_subscriber_shares(scenario, shares);
        let total = |concurrent: usize| measured.total(concurrent as u64, replications as u64);
        fits = most_that_fit(wanted, |c| total(c) <= usable);
        estimate = measured;
    }
    let total = |concurrent: usize| estimate.total(concurrent as u64, replications as u64);
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
            per_user: estimate.per_user,
            usable,
            available,
            users: scenario.market.population,
            days: scenario.simulation.days,
            replications,
            replications_option: "--replications",
        }),
    }
}

/// The largest `c` in `1..=wanted` with `fits(c)`, for a `fits` that holds up
/// to some `c` and not beyond (the memory needed grows with `c`): a bisection,
/// so any `wanted` (up to `usize::MAX`) takes some 64 steps.
fn most_that_fit(wanted: usize, fits: impl Fn(usize) -> bool) -> Option<usize> {
    if wanted == 0 || !fits(1) {
        return None;
    }
    let (mut low, mut high) = (1, wanted);
    while low < high {
        let middle = low + (high - low).div_ceil(2);
        if fits(middle) {
            low = middle;
        } else {
            high = middle - 1;
        }
    }
    Some(low)
}

/// The shares of users who are subscribers (or other payers) at once, at most,
/// and who ever were, with a margin, in a pilot run of `scenario` scaled down to
/// [`PILOT_USERS`] users with every channel's budget scaled alike, so each
/// user gets the impressions it gets in the full market (`λ_s` and `ω_t` are
/// per user; MODEL.md, "The population"): the peak of `active_payers` over
/// the days, and the payers at the end plus those who churned, of
/// [`PILOT_REPLICATIONS`] replications, each plus 20% and 0.02.
/// Budgets that a campaign or schedule sets, and seeded users, are not scaled
/// down, so they only make the pilot busier than the market (the estimate
/// errs on the safe side). `None` (the estimate stays the worst case) when
/// the market is no larger than the pilot, has no subscription item, or is
/// too long ([`PILOT_MAX_DAYS`]) or too wide ([`PILOT_MAX_SEGMENT_ITEMS`]) for
/// a quick pilot.
pub fn pilot_subscriber_shares(scenario: &Scenario) -> Option<SubscriberShares> {
    let population = scenario.market.population;
    if population <= PILOT_USERS
        || scenario.simulation.days > PILOT_MAX_DAYS
        || scenario.market.segments.len() * scenario.content.len() > PILOT_MAX_SEGMENT_ITEMS
        || scenario.content.iter().all(|item| item.renewal_days == 0)
    {
        return None;
    }
    let scale = f64::from(PILOT_USERS) / f64::from(population);
    let mut pilot = scenario.clone();
    pilot.market.population = PILOT_USERS;
    for channel in &mut pilot.channels {
        channel.daily_budget *= scale;
    }
    let pilot = Arc::new(pilot);
    let (mut peak, mut ever) = (0u64, 0u64);
    for replication in 0..PILOT_REPLICATIONS {
        let outcome = crate::engine::simulate(&pilot, replication);
        let most = outcome.daily.active_payers.iter().copied().max();
        peak = peak.max(most.unwrap_or(0));
        ever = ever.max(outcome.active_payers + outcome.churned);
    }
    let share = |count: u64| (count as f64 / f64::from(PILOT_USERS) * 1.2 + 0.02).min(1.0);
    Some(SubscriberShares {
        peak: share(peak),
        ever: share(ever.max(peak)),
    })
}

/// The memory this process may still use, on Linux: the smallest of
/// `MemAvailable` (`/proc/meminfo`) and what its memory cgroups (v2 and v1: a
/// container, a Slurm job's `--mem`) still allow. `None` when nothing is known.
pub fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok();
    let from_cgroups = cgroups
        .as_deref()
        .and_then(|text| cgroup_available(text, Path::new("/sys/fs/cgroup")));
    smallest(meminfo.as_deref().and_then(mem_available), from_cgroups)
}

/// The smaller of two optional limits (an unknown one does not limit).
fn smallest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `MemAvailable` of a `/proc/meminfo` text, in bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// What the memory cgroups of a process still allow, from its
/// `/proc/self/cgroup` text and the cgroup file systems mounted at `root`: for
/// each level from its own cgroup up to the root, `limit − usage` (v2:
/// `memory.max − memory.current`, at `root` or, on a hybrid system,
/// `root/unified`; v1: `memory.limit_in_bytes − memory.usage_in_bytes` below
/// `root/memory`), the smallest of them. `None` when no level sets a limit.
pub fn cgroup_available(proc_self_cgroup: &str, root: &Path) -> Option<u64> {
    let mut smallest_room: Option<u64> = None;
    for line in proc_self_cgroup.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let relative = path.trim_start_matches('/');
        let room = if id == "0" && controllers.is_empty() {
            let base = if root.join("cgroup.controllers").exists() {
                root.to_path_buf()
            } else {
                root.join("unified")
            };
            room_up_to(&base, relative, "memory.max", "memory.current")
        } else if controllers.split(',').any(|c| c == "memory") {
            room_up_to(
                &root.join("memory"),
                relative,
                "memory.limit_in_bytes",
                "memory.usage_in_bytes",
            )
        } else {
            None
        };
        smallest_room = smallest(smallest_room, room);
    }
    smallest_room
}

/// The smallest `limit − usage` from `base/relative` up to `base`.
fn room_up_to(base: &Path, relative: &str, limit: &str, usage: &str) -> Option<u64> {
    let read = |dir: &Path, name: &str| -> Option<u64> {
        let text = std::fs::read_to_string(dir.join(name)).ok()?;
        text.trim().parse().ok() // "max" (no limit) does not parse
    };
    let mut dir = base.join(relative);
    let mut room: Option<u64> = None;
    loop {
        // v1 writes "no limit" as a huge number (2^63 rounded to pages).
        if let Some(limit) = read(&dir, limit).filter(|&l| l < 1 << 62) {
            let used = read(&dir, usage).unwrap_or(0);
            room = smallest(room, Some(limit.saturating_sub(used)));
        }
        if dir == base || !dir.pop() || !dir.starts_with(base) {
            break;
        }
    }
    room
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

    /// The Bass market sold as a 30-day subscription: every buyer is a subscriber.
    fn subscribed() -> Scenario {
        let mut scenario = bass();
        scenario.content[0].renewal_days = 30;
        scenario
    }

    /// A market whose subscribers churn fast holds few at once but keeps a
    /// calendar place for each who ever subscribed: the pilot measures both,
    /// and the estimate budgets the former subscribers' places too.
    #[test]
    fn a_pilot_budgets_the_places_of_subscribers_who_churned() {
        let mut churning = subscribed();
        churning.content[0].renewal_days = 1;
        for segment in &mut churning.market.segments {
            (segment.churn_alpha, segment.churn_beta) = (20.0, 1.0);
        }
        // Bass's p = 0.01 at 10^8 users.
        churning.market.population = 100_000_000;
        churning.channels[0].daily_budget *= 1000.0;
        let shares = pilot_subscriber_shares(&churning).unwrap();
        assert!(shares.ever > shares.peak + 0.2, "{shares:?}");
        let peak_only = SubscriberShares {
            peak: shares.peak,
            ever: shares.peak,
        };
        let extra = MemoryEstimate::with_subscriber_shares(&churning, shares).per_user
            - MemoryEstimate::with_subscriber_shares(&churning, peak_only).per_user;
        let expected = BYTES_PER_FORMER_SUBSCRIBER as f64 * (shares.ever - shares.peak);
        assert!(
            (extra as f64 - expected).abs() <= 1.0,
            "{extra} vs {expected}"
        );
    }

    /// Issue 18: 3·10^8 users of the knowledge platform fit in 20 GiB, because
    /// a pilot of the same market scaled down shows that only a few percent
    /// pay at once; where everyone subscribes, the pilot says so and the
    /// worst case stands.
    #[test]
    fn a_pilot_run_admits_a_large_market_whose_subscribers_are_few() {
        let mut platform = crate::scenario::parse_str(
            include_str!("../scenarios/knowledge_platform.toml"),
            "knowledge_platform.toml",
        )
        .unwrap();
        platform.market.population = 300_000_000;
        let worst = MemoryEstimate::of(&platform);
        assert!(
            worst.total(1, 1) > 18 * GIB,
            "the worst case alone does not fit"
        );
        let plan = plan_study(&platform, 1, 2, Some(20 * GIB)).unwrap();
        let shares = pilot_subscriber_shares(&platform).unwrap();
        assert!((0.02..0.1).contains(&shares.peak), "{shares:?}");
        assert!((shares.peak..0.3).contains(&shares.ever), "{shares:?}");
        assert_eq!(
            plan.estimate,
            MemoryEstimate::with_subscriber_shares(&platform, shares)
        );
        assert!(plan.needed < 6 * GIB, "{}", Bytes(plan.needed));

        let mut everyone = subscribed();
        everyone.market.population = 200_000_000;
        assert_eq!(
            pilot_subscriber_shares(&everyone),
            Some(SubscriberShares::EVERYONE)
        );
        assert!(plan_study(&everyone, 1, 1, Some(16 * GIB)).is_err());
        // No pilot for a market no larger than it, or without subscriptions.
        assert_eq!(pilot_subscriber_shares(&subscribed()), None);
        let mut one_off = bass();
        one_off.market.population = 100_000_000;
        assert_eq!(pilot_subscriber_shares(&one_off), None);
    }

    #[test]
    fn impossible_study_is_refused_with_size_and_how_to_shrink() {
        let mut scenario = subscribed();
        scenario.market.population = u32::MAX;
        // The budget that reaches each user as in the bundled file: everyone
        // subscribes (the pilot run finds so), the worst case.
        scenario.channels[0].daily_budget *= f64::from(u32::MAX) / 100_000.0;
        let error = plan_study(&scenario, 8, 2, Some(16 * GIB)).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("needs about 388.1 GiB"), "{message}");
        assert!(
            message.contains("4294967295 users × 97 bytes per user"),
            "{message}"
        );
        assert!(message.contains("--set market.population="), "{message}");
        assert!(message.contains("of 16.0 GiB available"), "{message}");
    }

    #[test]
    fn users_cost_what_the_engine_allocates_for_them() {
        // One-off purchases: users are prospect bits, buyers are only counted,
        // so 5·10^7 users of the Bass market fit in 1 GiB.
        let mut scenario = bass();
        scenario.market.population = 50_000_000;
        assert_eq!(
            MemoryEstimate::of(&scenario).per_user,
            PROSPECT_BYTES_PER_USER
        );
        assert!(plan_study(&scenario, 8, 2, Some(GIB)).is_ok());
        // Subscriptions: at most every user is a subscriber at once.
        let scenario = subscribed();
        assert_eq!(
            MemoryEstimate::of(&scenario).per_user,
            PROSPECT_BYTES_PER_USER + BYTES_PER_SUBSCRIBER
        );
        // Segment × item tables are budgeted per pair.
        let mut wide = bass();
        wide.content = vec![wide.content[0].clone(); 1000];
        wide.market.segments = vec![wide.market.segments[0].clone(); 1000];
        let narrow = MemoryEstimate::of(&bass()).per_running_replication;
        assert!(
            MemoryEstimate::of(&wide).per_running_replication
                >= narrow + 999_999 * BYTES_PER_SEGMENT_ITEM
        );
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
        let mut scenario = subscribed();
        scenario.market.population = 60_000_000; // about 5.4 GiB per replication
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
    fn the_most_replications_that_fit_are_found_by_bisection() {
        for wanted in [1, 2, 3, 7, 64, 1000, usize::MAX] {
            for limit in [0, 1, 2, 5, 63, 64, 999, usize::MAX] {
                let expected = (limit >= 1).then(|| limit.min(wanted));
                assert_eq!(
                    most_that_fit(wanted, |c| c <= limit),
                    expected,
                    "{wanted} {limit}"
                );
            }
        }
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

    /// A cgroup file system in a scratch directory: `files` are (path, content).
    fn fake_cgroups(name: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
        let root = std::env::temp_dir().join(format!("brandsim-cg-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (path, content) in files {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        root
    }

    #[test]
    fn cgroup_limits_v2_v1_and_hybrid_are_read_up_to_the_root() {
        const MIB: u64 = 1 << 20;
        type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], Option<u64>);
        let cases: [Case; 5] = [
            (
                "v2 job with --mem",
                "0::/slurm/job_7\n",
                &[
                    ("cgroup.controllers", "memory"),
                    ("slurm/job_7/memory.max", "1073741824\n"),
                    ("slurm/job_7/memory.current", "104857600\n"),
                    ("slurm/memory.max", "max\n"),
                ],
                Some(1024 * MIB - 100 * MIB),
            ),
            (
                "v2 parent tighter than the child",
                "0::/a/b\n",
                &[
                    ("cgroup.controllers", "memory"),
                    ("a/b/memory.max", "max\n"),
                    ("a/memory.max", "524288000\n"),
                    ("a/memory.current", "24288000\n"),
                ],
                Some(500_000_000),
            ),
            (
                "hybrid: v2 under unified, v1 memory",
                "4:memory:/docker/c1\n0::/\n",
                &[
                    ("memory/docker/c1/memory.limit_in_bytes", "2147483648\n"),
                    ("memory/docker/c1/memory.usage_in_bytes", "1073741824\n"),
                    ("memory/memory.limit_in_bytes", "9223372036854771712\n"),
                    ("unified/memory.max", "max\n"),
                ],
                Some(1024 * MIB),
            ),
            (
                "no limit anywhere",
                "0::/user.slice\n",
                &[
                    ("cgroup.controllers", "memory"),
                    ("user.slice/memory.max", "max\n"),
                ],
                None,
            ),
            (
                "usage above the limit leaves nothing",
                "0::/x\n",
                &[
                    ("cgroup.controllers", "memory"),
                    ("x/memory.max", "1000\n"),
                    ("x/memory.current", "5000\n"),
                ],
                Some(0),
            ),
        ];
        for (i, (what, proc_cgroup, files, expected)) in cases.iter().enumerate() {
            let root = fake_cgroups(&i.to_string(), files);
            assert_eq!(cgroup_available(proc_cgroup, &root), *expected, "{what}");
            let _ = std::fs::remove_dir_all(root);
        }
    }

    #[test]
    fn the_smallest_of_mem_available_and_the_cgroup_is_used() {
        let meminfo = "MemTotal: 32000000 kB\nMemAvailable: 16000000 kB\n";
        let available = mem_available(meminfo);
        assert_eq!(available, Some(16_000_000 * 1024));
        assert_eq!(smallest(available, Some(1 << 30)), Some(1 << 30));
        assert_eq!(smallest(available, None), available);
        assert_eq!(smallest(None, Some(5)), Some(5));
        // A study that MemAvailable allows is refused in a 1 GiB cgroup.
        let mut scenario = bass();
        scenario.market.population = 2_000_000_000;
        assert!(plan_study(&scenario, 8, 1, available).is_ok());
        assert!(plan_study(&scenario, 8, 1, smallest(available, Some(1 << 30))).is_err());
    }

    #[test]
    fn bytes_are_shown_in_binary_units() {
        assert_eq!(Bytes(512).to_string(), "512 B");
        assert_eq!(Bytes(1536 << 10).to_string(), "1.5 MiB");
        assert_eq!(Bytes(u64::MAX).to_string(), "16.0 EiB");
    }

    /// A network adds its graph (`4·(N+1) + 8·E` plus building room, and a file
    /// graph's edge list) to each running replication, or once to the process
    /// for a fixed or file graph, and the neighbour sums per user.
    #[test]
    fn a_network_adds_its_graph_per_replication_or_once_and_its_state_per_user() {
        use crate::scenario::{GraphScope, Network, NetworkModel};
        let plain = MemoryEstimate::of(&bass());
        let mut scenario = bass();
        let n = u64::from(scenario.market.population);
        scenario.market.network = Some(Network {
            model: NetworkModel::WattsStrogatz {
                k: 10,
                rewiring: 0.1,
            },
            word_of_mouth: 0.3,
            graph: GraphScope::PerReplication,
        });
        let edges = n * 5;
        let graph = 4 * (n + 1) + 8 * edges + GRAPH_BUILD_BYTES_PER_USER * n;
        let per_replication = MemoryEstimate::of(&scenario);
        assert_eq!(
            per_replication.per_running_replication - plain.per_running_replication,
            NETWORK_BYTES_PER_USER * n + graph
        );
        assert_eq!(per_replication.fixed, plain.fixed);
        assert_eq!(
            per_replication.per_user,
            plain.per_user + NETWORK_BYTES_PER_USER + graph / n
        );
        scenario.market.network.as_mut().unwrap().graph = GraphScope::Fixed;
        let fixed = MemoryEstimate::of(&scenario);
        assert_eq!(
            fixed.per_running_replication - plain.per_running_replication,
            NETWORK_BYTES_PER_USER * n
        );
        assert_eq!(fixed.fixed - plain.fixed, graph);
        // A file graph adds the edge list the scenario holds, once.
        let listed = 1_000u64;
        scenario.market.network.as_mut().unwrap().model = NetworkModel::File {
            path: "/friends.csv".into(),
            edges: std::sync::Arc::new((0..listed as u32).map(|u| (u, u + 1)).collect()),
        };
        let file = MemoryEstimate::of(&scenario);
        assert_eq!(
            file.fixed - plain.fixed,
            4 * (n + 1) + (8 + FILE_GRAPH_BYTES_PER_EDGE) * listed + GRAPH_BUILD_BYTES_PER_USER * n
        );
    }
}

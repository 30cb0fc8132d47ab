//! The scenario: a checked, immutable description of one market (MODEL.md, "Scenario file").
//!
//! Parsing and validation live in `load`; `--set` overrides in `overrides`. Nothing
//! downstream re-checks a `Scenario`: every invariant listed on these types holds.

pub mod calendar;
mod campaigns;
mod load;
mod network;
mod overrides;
mod schedule;
mod seeding;
mod uncertain;

pub use calendar::{Calendar, Campaign, ScheduleRow, TimeVaryingKey, Timeline};
pub use load::{MAX_FILE_BYTES, MAX_LIST_LEN, ScenarioError, ScenarioSource, load_file, parse_str};
// For programs that embed brandsim (the Python package).
pub use load::{load_str, position_in_text};
pub use overrides::{Assignment, parse_assignment};
pub use seeding::{Seeding, SeedingRule};
pub use uncertain::{Uncertain, UncertainDistribution};

/// A validated scenario. Every index (`topic`, `segment`, `channel`) is in range and
/// every number is finite and inside the range MODEL.md gives for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// `name`, or the file stem when absent.
    pub name: String,
    pub simulation: Simulation,
    pub market: Market,
    /// Distinct topic names, in order of first appearance in `[[content]]`.
    pub topics: Vec<String>,
    pub content: Vec<ContentItem>,
    pub channels: Vec<Channel>,
    pub brand: Brand,
    pub optimize: OptimizeSettings,
    /// `[[variants]]`: what-ifs of this scenario for `brandsim compare`, each valid
    /// when its `set` is applied on top of this scenario. They never change it.
    pub variants: Vec<Variant>,
    /// The start date, discount rate, campaigns and schedule (MODEL.md v2); empty
    /// for a version-1 scenario, whose values never change. Shared, so that a
    /// copy of the scenario with one day's values costs little.
    pub calendar: std::sync::Arc<Calendar>,
    /// `[[uncertain]]`: values drawn per replication, in file order (the
    /// index keys their random stream).
    pub uncertain: Vec<Uncertain>,
    /// `[[seeding]]` (MODEL.md v2, "Seeding"), in file order (the index keys a
    /// random seeding's stream); empty without seeding.
    pub seeding: Vec<Seeding>,
}

/// One `[[variants]]` entry: the scenario with `set` applied like `--set`.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// Unique among the scenario's variants.
    pub name: String,
    pub set: Vec<Assignment>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Simulation {
    /// Horizon T >= 1: days 0..T-1.
    pub days: u32,
    /// Master seed in [0, 2^63).
    pub seed: u64,
    /// Replications >= 1.
    pub replications: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Market {
    /// N >= 1.
    pub population: u32,
    /// q >= 0.
    pub word_of_mouth: f64,
    /// d in [0, 1].
    pub dormancy: f64,
    /// > 0.
    pub price_reference: f64,
    /// σ_sat >= 0.
    pub satisfaction_noise: f64,
    /// At least one; shares sum to 1 within 1e-9.
    pub segments: Vec<Segment>,
    /// `[market.network]` (MODEL.md v2, "Social-network word of mouth"); `None`
    /// for mean-field word of mouth only.
    pub network: Option<Network>,
}

/// `[market.network]`: the social network on the users `0..N-1` and its word of
/// mouth (MODEL.md v2, "Social-network word of mouth"). Checked against the
/// final population (after `--set` and overrides).
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// How the graph is made.
    pub model: NetworkModel,
    /// `q_net >= 0`: the weight of the satisfaction-weighted share of paying
    /// neighbours in the exposure hazard.
    pub word_of_mouth: f64,
    /// One graph per replication or one for the whole study.
    pub graph: GraphScope,
}

/// The four graph models of MODEL.md v2 with their checked parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum NetworkModel {
    /// `erdos-renyi`: each pair is an edge with probability `mean_degree / (N-1)`;
    /// `0 <= mean_degree <= N-1`.
    ErdosRenyi { mean_degree: f64 },
    /// `watts-strogatz`: ring lattice of even degree `k >= 2` (`N > k`), then each
    /// lattice edge rewired with probability `rewiring` in `[0, 1]`.
    WattsStrogatz { k: u32, rewiring: f64 },
    /// `barabasi-albert`: a clique on `0..=m`, then each later user attaches to
    /// `m >= 1` earlier users by degree (`mean_degree = 2m`, `N >= m + 1`).
    BarabasiAlbert { m: u32 },
    /// `file`: the listed pairs, each once, user numbers below `N`, no
    /// self-loops or duplicates (in either order). `path` is absolute (resolved
    /// against the scenario file's directory).
    File {
        path: std::path::PathBuf,
        edges: std::sync::Arc<Vec<(u32, u32)>>,
    },
}

/// `graph = "per-replication" | "fixed"`: whether each replication draws its own
/// graph (streams keyed by `(S, j)`) or the whole study shares one (keyed by `S`;
/// a file graph is always the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphScope {
    PerReplication,
    Fixed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub name: String,
    /// >= 0.
    pub share: f64,
    /// Favourite-topic distribution: `(index into Scenario::topics, weight)`, weights
    /// normalised to sum to 1, in file order. Every topic has at least one item.
    pub topics: Vec<(usize, f64)>,
    /// θ_s >= 0.
    pub price_sensitivity: f64,
    /// σ_s >= 0.
    pub click_heterogeneity: f64,
    /// α > 0.
    pub churn_alpha: f64,
    /// β > 0.
    pub churn_beta: f64,
    /// m_{s,k} >= 0, one per channel in `Scenario::channels` order (missing = 1.0).
    pub targeting: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContentItem {
    pub name: String,
    /// Index into `Scenario::topics`.
    pub topic: usize,
    /// r_i in [0, 1].
    pub click_rate: f64,
    /// c_i in [0, 1].
    pub conversion_rate: f64,
    /// >= 0.
    pub price: f64,
    /// In [0, 1].
    pub quality: f64,
    /// >= 0, default 1.0.
    pub promotion: f64,
    /// 0 = one-off purchase.
    pub renewal_days: u32,
    /// Whether the item can be chosen (MODEL.md v2); default true.
    pub available: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    pub name: String,
    /// B_k >= 0.
    pub daily_budget: f64,
    /// > 0.
    pub cpm: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Brand {
    /// V (any finite number).
    pub value: f64,
    /// β_V.
    pub click_effect: f64,
    /// γ_V.
    pub conversion_effect: f64,
    /// δ_V.
    pub retention_effect: f64,
    /// δ_sat.
    pub satisfaction_effect: f64,
    /// m in [0, 1].
    pub topic_match: f64,
    /// κ >= 0.
    pub cost_per_day: f64,
}

/// The gradient estimator of `brandsim optimize` (MODEL.md, "The outer loop").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Estimator {
    Spsa,
    FiniteDifference,
    /// `lr`: the score function taken user by user (README, "The lr estimator").
    LikelihoodRatio,
    /// `lr-whole`: the whole objective times the sum of every user's score.
    LikelihoodRatioWhole,
}

/// `[optimize]`: defaults for `brandsim optimize`; every key optional.
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizeSettings {
    /// A metric name of `crate::metrics` (checked at load time).
    pub objective: String,
    pub estimator: Estimator,
    /// >= 1.
    pub iterations: u32,
    /// η > 0.
    pub learning_rate: f64,
    /// λ >= 0.
    pub regularization: f64,
    /// c > 0.
    pub perturbation: f64,
    /// >= 1; with `adaptive`, the number of the first step.
    pub replications_per_step: u32,
    /// Adaptive effort: the replications per step grow by the norm test and the
    /// search stops once it has converged. The default when the `[optimize]`
    /// table does not give `replications_per_step` (the search then starts at 4).
    pub adaptive: bool,
    /// Positive: the standard error of the answer that counts as converged,
    /// relative to `max(1, |θ_i|)` for each tuned value.
    pub tolerance: f64,
    /// Positive: simulated user-days after which the search stops.
    pub budget_user_days: Option<f64>,
}

impl Default for OptimizeSettings {
    fn default() -> Self {
        OptimizeSettings {
            objective: "seed_r".to_string(),
            estimator: Estimator::Spsa,
            iterations: 50,
            learning_rate: 0.05,
            regularization: 0.01,
            perturbation: 0.1,
            replications_per_step: 8,
            adaptive: false,
            tolerance: 0.01,
            budget_user_days: None,
        }
    }
}

impl Scenario {
    /// Segment sizes (MODEL.md version 2, "The population"): the quotas
    /// `N·share_s / Σ_s' share_s'` rounded by the largest-remainder method.
    /// Floors first, then one more each to the largest remainders, where
    /// remainders that differ by at most `1e-9 + 1e-12·N` are ties and ties go
    /// to the earlier segment in file order. So 0.3/0.6/0.1 of N = 114 give
    /// 34/69/11, as exact decimal arithmetic would, whatever the binary
    /// rounding of 0.3 and 0.1.
    ///
    /// Each extra user goes to the earliest segment whose remainder is within
    /// the tolerance of the largest remainder still unserved (a tie is not
    /// transitive, so it is always judged against that largest one).
    pub fn segment_sizes(&self) -> Vec<u32> {
        let population = self.market.population;
        let shares: Vec<f64> = self.market.segments.iter().map(|s| s.share).collect();
        largest_remainder_sizes(population, &shares)
    }
}

/// The largest-remainder rounding of [`Scenario::segment_sizes`] for `shares`
/// (non-negative, with a positive sum) of `population` users.
fn largest_remainder_sizes(population: u32, shares: &[f64]) -> Vec<u32> {
    let n = f64::from(population);
    let total: f64 = shares.iter().sum();
    let quotas: Vec<f64> = shares.iter().map(|share| n * share / total).collect();
    let mut sizes: Vec<u32> = quotas.iter().map(|q| q.floor() as u32).collect();
    let mut assigned: u64 = sizes.iter().map(|&s| u64::from(s)).sum();
    // Rounding of the quotas can make the floors exceed N by a few with
    // billions of users: the largest segment gives them back.
    while assigned > u64::from(population) {
        let largest = (0..sizes.len())
            .rev()
            .max_by_key(|&s| sizes[s])
            .unwrap_or(0);
        sizes[largest] -= 1;
        assigned -= 1;
    }
    let tolerance = 1e-9 + 1e-12 * n;
    let remainders: Vec<f64> = quotas.iter().map(|q| q - q.floor()).collect();
    let mut served = vec![false; sizes.len()];
    let mut left = u64::from(population).saturating_sub(assigned);
    while left > 0 {
        let largest = (0..sizes.len())
            .filter(|&s| !served[s])
            .map(|s| remainders[s])
            .max_by(f64::total_cmp);
        let Some(largest) = largest else {
            // More users left than segments: only binary rounding of the
            // quotas can get here; start another round.
            served.fill(false);
            continue;
        };
        let s = (0..sizes.len())
            .find(|&s| !served[s] && remainders[s] >= largest - tolerance)
            .expect("the largest remainder is among the unserved");
        served[s] = true;
        sizes[s] += 1;
        left -= 1;
    }
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_sizes_use_largest_remainder_with_ties_to_earlier_segment() {
        let mut scenario =
            crate::scenario::parse_str(include_str!("../../scenarios/bass.toml"), "bass.toml")
                .unwrap();
        scenario.market.population = 10;
        let template = scenario.market.segments[0].clone();
        scenario.market.segments = [0.25, 0.25, 0.5]
            .iter()
            .map(|&share| Segment {
                share,
                ..template.clone()
            })
            .collect();
        // 2.5, 2.5, 5 -> floors 2, 2, 5; one left goes to the first tie.
        assert_eq!(scenario.segment_sizes(), vec![3, 2, 5]);
        scenario.market.population = 7;
        scenario.market.segments[0].share = 1.0 / 3.0;
        scenario.market.segments[1].share = 1.0 / 3.0;
        scenario.market.segments[2].share = 1.0 / 3.0;
        assert_eq!(scenario.segment_sizes(), vec![3, 2, 2]);
    }

    #[test]
    fn segment_sizes_follow_the_contract_examples_whatever_the_binary_rounding() {
        // MODEL.md version 2, "The population": exact decimal arithmetic gives
        // quotas 34.2/68.4/11.4; 68.4 and 11.4 tie (in binary 11.4 comes out
        // larger) and the tie goes to the earlier segment.
        assert_eq!(
            largest_remainder_sizes(114, &[0.3, 0.6, 0.1]),
            vec![34, 69, 11]
        );
        // Quotas normalised by the sum 1.0000000009: remainders 0.4999999986
        // and 0.4999999995 differ by less than 1e-9 + 4e-12, a tie.
        assert_eq!(
            largest_remainder_sizes(4, &[0.375, 0.125, 0.500_000_000_9]),
            vec![2, 0, 2]
        );
        // Remainders farther apart than the tolerance are not ties.
        assert_eq!(
            largest_remainder_sizes(4, &[0.375, 0.125, 0.5]),
            vec![2, 0, 2]
        );
        assert_eq!(
            largest_remainder_sizes(10, &[0.24, 0.26, 0.5]),
            vec![2, 3, 5]
        );
        // Ties are judged against the largest remainder, 0.4 + 5e-10, not 0.2:
        // 0.2: the first two tie, and the one user goes to the earlier.
        assert_eq!(
            largest_remainder_sizes(1, &[0.4, 0.400_000_000_5, 0.199_999_999_5]),
            vec![1, 0, 0]
        );
        for n in [1, 7, 28, 114, 1000, 99_999] {
            let sizes = largest_remainder_sizes(n, &[0.45, 0.35, 0.20]);
            assert_eq!(sizes.iter().sum::<u32>(), n);
        }
        // 0.45/0.35/0.2 of 28: quotas 12.6/9.8/5.6; 9.8 first, then the tie
        // 12.6 ≈ 5.6 goes to the earlier segment.
        assert_eq!(
            largest_remainder_sizes(28, &[0.45, 0.35, 0.20]),
            vec![13, 10, 5]
        );
    }

    #[test]
    fn segment_sizes_never_exceed_the_population() {
        let mut scenario =
            crate::scenario::parse_str(include_str!("../../scenarios/bass.toml"), "bass.toml")
                .unwrap();
        scenario.market.population = u32::MAX;
        let template = scenario.market.segments[0].clone();
        // Within the 1e-9 tolerance, yet the floors alone add up to more than N.
        scenario.market.segments = [0.5 + 4e-10, 0.5 + 4e-10]
            .iter()
            .map(|&share| Segment {
                share,
                ..template.clone()
            })
            .collect();
        let sizes = scenario.segment_sizes();
        assert_eq!(
            sizes.iter().map(|&s| u64::from(s)).sum::<u64>(),
            u64::from(u32::MAX)
        );
    }
}

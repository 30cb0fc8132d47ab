//! The summary of a social-network graph written to `network.json`: size, degree
//! distribution and its quantiles, clustering (two definitions), components.

use std::sync::atomic::{AtomicU32, Ordering};

use rayon::prelude::*;
use serde::Serialize;

use super::Graph;
use crate::rng::DrawRng;

/// Degree quantiles: the degree of the user at rank `⌊q·(N − 1)⌋` (0-based) of
/// the users sorted by degree, for `q` = 0, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DegreeQuantiles {
    pub min: u32,
    pub p05: u32,
    pub p25: u32,
    pub p50: u32,
    pub p75: u32,
    pub p95: u32,
    pub p99: u32,
    pub max: u32,
}

/// What `network.json` says about one graph.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraphSummary {
    /// `N`.
    pub users: u32,
    /// `E`, undirected edges.
    pub edges: u64,
    /// `2E / N` (0 without users).
    pub mean_degree: f64,
    pub max_degree: u32,
    pub degree_quantiles: DegreeQuantiles,
    /// Transitivity (global clustering coefficient): `3 × triangles / connected
    /// triples` = `Σ_u t(u) / Σ_u deg(u)(deg(u) − 1)/2` (Newman 2003, eq. 3);
    /// 0 when there is no connected triple.
    pub transitivity: f64,
    /// Average local clustering (Watts & Strogatz 1998): the mean over all users
    /// of `t(u) / (deg(u)(deg(u) − 1)/2)`, users of degree < 2 counting 0 (as
    /// networkx's `average_clustering`).
    pub average_clustering: f64,
    /// Triangles in the graph; `None` when the clustering was sampled.
    pub triangles: Option<u64>,
    /// `"exact"`, or `"sampled"` when the
    /// graph has more than [`EXACT_CLUSTERING_WEDGES`] connected triples: then both coefficients are
    /// estimated from [`CLUSTERING_SAMPLES`] random wedges each (Schank &
    /// Wagner 2005, "Approximating clustering coefficient and transitivity").
    pub clustering: &'static str,
    /// Standard error of `transitivity` (0 when exact).
    pub transitivity_se: f64,
    /// Standard error of `average_clustering` (0 when exact).
    pub average_clustering_se: f64,
    /// Connected components (an isolated user is one).
    pub components: u64,
    /// Users in the largest component.
    pub largest_component: u32,
    /// Users of degree 0.
    pub isolated_users: u32,
    /// `[degree, users]` for every degree some user has, ascending.
    pub degree_counts: Vec<[u64; 2]>,
}

/// The summary of `graph`. Triangles are counted in parallel on the current
/// rayon pool (the result does not depend on it); the work is `O(E^1.5)` at
/// worst with the edges oriented from lower to higher degree (the "forward"
/// algorithm, Schank & Wagner 2005), and components take a union–find pass.
pub fn summary(graph: &Graph) -> GraphSummary {
    summary_within(graph, EXACT_CLUSTERING_WEDGES)
}

/// The most connected triples (`Σ_u deg(u)(deg(u) − 1)/2`) of a graph whose
/// triangles are all counted (the forward count's work grows with them): about
/// 0.1 s on one core. 2·10^5 users at mean degree 10 are counted exactly; 10^6
/// users are sampled (about 0.05 s), so a study's outputs stay cheap.
pub const EXACT_CLUSTERING_WEDGES: u64 = 10_000_000;

/// Random wedges drawn for each sampled clustering coefficient: a standard
/// error of at most `0.5/√200000 ≈ 0.0011`.
pub const CLUSTERING_SAMPLES: u32 = 200_000;

/// [`summary`], counting triangles exactly only up to `wedge_limit` connected triples.
fn summary_within(graph: &Graph, wedge_limit: u64) -> GraphSummary {
    let n = graph.users();
    let degrees: Vec<u32> = (0..n).map(|u| graph.degree(u)).collect();
    let max_degree = degrees.iter().copied().max().unwrap_or(0);
    let mut histogram = vec![0u64; max_degree as usize + 1];
    for &d in &degrees {
        histogram[d as usize] += 1;
    }
    let degree_counts: Vec<[u64; 2]> = histogram
        .iter()
        .enumerate()
        .filter(|&(_, &count)| count > 0)
        .map(|(d, &count)| [d as u64, count])
        .collect();
    let quantile = |q: f64| -> u32 {
        if n == 0 {
            return 0;
        }
        let rank = (q * f64::from(n - 1)).floor() as u64;
        let mut seen = 0u64;
        for &[degree, count] in &degree_counts {
            seen += count;
            if seen > rank {
                return degree as u32;
            }
        }
        max_degree
    };
    let clustering = if wedges(&degrees) <= wedge_limit {
        exact_clustering(&degrees, &triangles_per_user(graph, &degrees))
    } else {
        sampled_clustering(graph, &degrees)
    };
    let (components, largest_component) = components(graph);
    GraphSummary {
        users: n,
        edges: graph.edges(),
        mean_degree: if n == 0 {
            0.0
        } else {
            2.0 * graph.edges() as f64 / f64::from(n)
        },
        max_degree,
        degree_quantiles: DegreeQuantiles {
            min: quantile(0.0),
            p05: quantile(0.05),
            p25: quantile(0.25),
            p50: quantile(0.5),
            p75: quantile(0.75),
            p95: quantile(0.95),
            p99: quantile(0.99),
            max: max_degree,
        },
        transitivity: clustering.transitivity,
        average_clustering: clustering.average_clustering,
        triangles: clustering.triangles,
        clustering: clustering.method,
        transitivity_se: clustering.transitivity_se,
        average_clustering_se: clustering.average_clustering_se,
        components,
        largest_component,
        isolated_users: histogram.first().map_or(0, |&c| c as u32),
        degree_counts,
    }
}

/// `t(u)`, the triangles through each user. Each edge is oriented from the
/// lower to the higher `(degree, number)`; each triangle is then found once, at
/// its lowest corner `u`, as `v ∈ out(u)`, `w ∈ out(v) ∩ out(u)` (`out(u)`
/// marked in a bitmap of the users).
fn triangles_per_user(graph: &Graph, degrees: &[u32]) -> Vec<u32> {
    let n = graph.users() as usize;
    let higher = |u: u32, v: u32| (degrees[v as usize], v) > (degrees[u as usize], u);
    let mut out_offsets = Vec::with_capacity(n + 1);
    out_offsets.push(0u32);
    let mut out = Vec::with_capacity(graph.edges() as usize);
    for u in 0..n as u32 {
        out.extend(graph.neighbours(u).iter().filter(|&&v| higher(u, v)));
        out_offsets.push(out.len() as u32);
    }
    let out_of =
        |u: u32| &out[out_offsets[u as usize] as usize..out_offsets[u as usize + 1] as usize];
    let counts: Vec<AtomicU32> = (0..n).map(|_| AtomicU32::new(0)).collect();
    let words = n.div_ceil(64);
    (0..n as u32)
        .into_par_iter()
        .with_min_len(4096)
        .for_each_init(
            // out(u) as a bitmap of N bits: small enough to stay in cache, so
            // the test of each w ∈ out(v) is cheap wherever w lies.
            || vec![0u64; words],
            |marked, u| {
                let mine = out_of(u);
                if mine.len() < 2 {
                    return;
                }
                for &w in mine {
                    marked[w as usize / 64] |= 1u64 << (w % 64);
                }
                for &v in mine {
                    for &w in out_of(v) {
                        if marked[w as usize / 64] >> (w % 64) & 1 == 1 {
                            counts[u as usize].fetch_add(1, Ordering::Relaxed);
                            counts[v as usize].fetch_add(1, Ordering::Relaxed);
                            counts[w as usize].fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                for &w in mine {
                    marked[w as usize / 64] = 0;
                }
            },
        );
    counts.into_iter().map(AtomicU32::into_inner).collect()
}

/// Both clustering coefficients, how they were found, and their standard errors.
struct Clustering {
    transitivity: f64,
    average_clustering: f64,
    triangles: Option<u64>,
    method: &'static str,
    transitivity_se: f64,
    average_clustering_se: f64,
}

/// The coefficients from every user's triangle count `t(u)`.
fn exact_clustering(degrees: &[u32], triangles_at: &[u32]) -> Clustering {
    let triangle_sum: u64 = triangles_at.iter().map(|&t| u64::from(t)).sum();
    let local_sum: f64 = degrees
        .iter()
        .zip(triangles_at)
        .filter(|&(&d, _)| d >= 2)
        .map(|(&d, &t)| f64::from(t) / (f64::from(d) * f64::from(d - 1) / 2.0))
        .sum();
    let triples = wedges(degrees);
    Clustering {
        transitivity: if triples == 0 {
            0.0
        } else {
            triangle_sum as f64 / triples as f64
        },
        average_clustering: if degrees.is_empty() {
            0.0
        } else {
            local_sum / degrees.len() as f64
        },
        triangles: Some(triangle_sum / 3),
        method: "exact",
        transitivity_se: 0.0,
        average_clustering_se: 0.0,
    }
}

/// `Σ_u deg(u)(deg(u) − 1)/2`, the connected triples (wedges).
fn wedges(degrees: &[u32]) -> u64 {
    degrees
        .iter()
        .map(|&d| u64::from(d) * u64::from(d.saturating_sub(1)) / 2)
        .sum()
}

/// Both coefficients estimated from random wedges: for transitivity, wedges
/// drawn uniformly (the centre by its share of wedges, then two distinct
/// neighbours); for the average, users drawn uniformly, each with one random
/// wedge (0 for degree < 2). Each is a mean of Bernoulli indicators ("the
/// wedge is closed"), with SE `√(p̂(1 − p̂)/K)`. The draws come from a fixed
/// stream, so the same graph always gets the same estimates.
///
/// The stream's numbers are taken in a fixed order (three per transitivity
/// sample, then one per average sample and two more where its user has a
/// wedge), and [`DrawRng::skipped`] reaches any of them directly, so the
/// samples are checked in parallel on the caller's pool and counted in
/// integers: the same estimates on any number of threads.
fn sampled_clustering(graph: &Graph, degrees: &[u32]) -> Clustering {
    use crate::rng::{Event, INITIAL_DAY, ReplicationKey};
    let n = degrees.len() as u64;
    let stream = ReplicationKey::new(0, 0).stream(INITIAL_DAY - 1, Event::Network);
    let start = stream.generator(0);
    const CHUNK: u64 = 4096;
    let samples = u64::from(CLUSTERING_SAMPLES);
    let mut cumulative = Vec::with_capacity(degrees.len());
    let mut total = 0u64;
    for &d in degrees {
        total += u64::from(d) * u64::from(d.saturating_sub(1)) / 2;
        cumulative.push(total);
    }
    let mut taken = 0;
    let mut closed = 0u64;
    if total > 0 {
        let index = CentreIndex::new(&cumulative, total);
        closed = (0..samples.div_ceil(CHUNK))
            .into_par_iter()
            .map(|chunk| {
                let (first, end) = (chunk * CHUNK, ((chunk + 1) * CHUNK).min(samples));
                let mut generator = start.skipped(3 * first);
                let centres: Vec<(u32, DrawRng)> = (first..end)
                    .map(|_| {
                        let wedge = super::generate::below(&mut generator, total);
                        let u = index.centre(wedge) as u32;
                        let centre = (u, generator.clone());
                        generator = generator.skipped(2);
                        centre
                    })
                    .collect();
                closed_wedges(graph, degrees, &centres)
            })
            .sum();
        taken = 3 * samples;
    }
    let mut closed_local = 0u64;
    if n > 0 {
        // Which users the average's samples draw, and where each one's wedge
        // starts in the stream: in order, since a user of degree < 2 takes
        // no wedge.
        let mut generator = start.skipped(taken);
        let mut with_wedges: Vec<(u32, DrawRng)> = Vec::new();
        for _ in 0..samples {
            let u = super::generate::below(&mut generator, n) as u32;
            if degrees[u as usize] >= 2 {
                with_wedges.push((u, generator.clone()));
                generator = generator.skipped(2);
            }
        }
        closed_local = with_wedges
            .par_chunks(CHUNK as usize)
            .map(|chunk| closed_wedges(graph, degrees, chunk))
            .sum();
    }
    let share = |count: u64| count as f64 / samples as f64;
    let se = |p: f64| (p * (1.0 - p) / samples as f64).sqrt();
    let (transitivity, average_clustering) = (share(closed), share(closed_local));
    Clustering {
        transitivity,
        average_clustering,
        triangles: None,
        method: "sampled",
        transitivity_se: se(transitivity),
        average_clustering_se: se(average_clustering),
    }
}

/// The user of a wedge number, `cumulative.partition_point(|&c| c <= wedge)`
/// (`cumulative` the running totals of wedges per user, ending at `total`),
/// found in a short stretch: `starts[k]` is the answer for the first wedge
/// number of the `k`-th of `B` equal ranges, so a wedge of range `k` lies
/// between `starts[k]` and `starts[k + 1]`. Built in one pass; a lookup reads
/// two entries and searches a stretch of about `N/B` users, where a search of
/// the whole table is a cache miss per step in a large graph.
struct CentreIndex<'a> {
    cumulative: &'a [u64],
    total: u64,
    starts: Vec<u32>,
}

impl<'a> CentreIndex<'a> {
    fn new(cumulative: &'a [u64], total: u64) -> Self {
        let ranges = cumulative.len().clamp(1, 1 << 20);
        let mut starts = Vec::with_capacity(ranges + 1);
        let mut user = 0;
        for k in 0..=ranges {
            let first = Self::first_of(k, ranges, total);
            while user < cumulative.len() && cumulative[user] <= first {
                user += 1;
            }
            starts.push(user as u32);
        }
        CentreIndex {
            cumulative,
            total,
            starts,
        }
    }

    /// The smallest wedge number of range `k`: `⌈k·total/B⌉`.
    fn first_of(k: usize, ranges: usize, total: u64) -> u64 {
        ((k as u128 * u128::from(total)).div_ceil(ranges as u128)) as u64
    }

    /// The user of `wedge` (`< total`).
    fn centre(&self, wedge: u64) -> usize {
        let ranges = self.starts.len() - 1;
        let k = (u128::from(wedge) * ranges as u128 / u128::from(self.total)) as usize;
        let (low, high) = (self.starts[k] as usize, self.starts[k + 1] as usize);
        low + self.cumulative[low..high].partition_point(|&c| c <= wedge)
    }
}

/// How many wedges [`closed_wedges`] takes through each stage together.
const GROUP: usize = 16;

/// How many of the wedges are closed: wedge `(u, generator)` is two distinct
/// neighbours of `u`, drawn with the generator's next two numbers (the first
/// uniform over the `d` neighbours, the second over the other `d − 1`), and it
/// is closed if they are adjacent (looked up in the shorter row). `u` has
/// degree at least 2.
///
/// In groups of [`GROUP`] wedges, stage by stage: each stage first fetches
/// what the next one reads for the whole group, so a group's cache misses
/// overlap instead of coming one after another (the rows of a large graph are
/// all misses).
fn closed_wedges(graph: &Graph, degrees: &[u32], wedges: &[(u32, DrawRng)]) -> u64 {
    use super::generate::{below, prefetch};
    let row_start = |u: u32| &graph.neighbours[graph.offsets[u as usize] as usize..];
    let mut closed = 0;
    for group in wedges.chunks(GROUP) {
        for &(u, _) in group {
            prefetch(&graph.offsets[u as usize]);
        }
        // The wedge's two ends, as places in the neighbours.
        let mut places = [(0usize, 0usize); GROUP];
        for (place, (u, generator)) in places.iter_mut().zip(group) {
            let first = graph.offsets[*u as usize] as usize;
            let d = u64::from(graph.offsets[*u as usize + 1]) - first as u64;
            let mut generator = generator.clone();
            let i = below(&mut generator, d);
            let mut j = below(&mut generator, d - 1);
            if j >= i {
                j += 1;
            }
            *place = (first + i as usize, first + j as usize);
            prefetch(&graph.neighbours[place.0]);
            prefetch(&graph.neighbours[place.1]);
        }
        let mut ends = [(0u32, 0u32); GROUP];
        for (end, &(i, j)) in ends.iter_mut().zip(&places[..group.len()]) {
            *end = (graph.neighbours[i], graph.neighbours[j]);
            for user in [end.0, end.1] {
                prefetch(&degrees[user as usize]);
                prefetch(&graph.offsets[user as usize]);
            }
        }
        // The end with the shorter row, and the other.
        for end in &mut ends[..group.len()] {
            if degrees[end.0 as usize] > degrees[end.1 as usize] {
                *end = (end.1, end.0);
            }
            prefetch(&row_start(end.0)[0]);
        }
        closed += ends[..group.len()]
            .iter()
            .filter(|&&(short, other)| graph.neighbours(short).binary_search(&other).is_ok())
            .count() as u64;
    }
    closed
}

/// The number of connected components and the size of the largest, by
/// union–find (union by size, path halving).
fn components(graph: &Graph) -> (u64, u32) {
    let n = graph.users() as usize;
    let mut parent: Vec<u32> = (0..n as u32).collect();
    let mut size = vec![1u32; n];
    fn root(parent: &mut [u32], mut x: u32) -> u32 {
        while parent[x as usize] != x {
            let grand = parent[parent[x as usize] as usize];
            parent[x as usize] = grand;
            x = grand;
        }
        x
    }
    // Each edge once, from its lower end `u`, whose root is kept while its
    // row is read; the parent and size of the neighbour `AHEAD` half-edges on
    // are fetched ahead (in a large graph each is a cache miss otherwise).
    const AHEAD: usize = 16;
    let neighbours = &graph.neighbours;
    let mut components = n as u64;
    for u in 0..n as u32 {
        let row = graph.offsets[u as usize] as usize..graph.offsets[u as usize + 1] as usize;
        let mut a = u;
        for h in row {
            if let Some(&ahead) = neighbours.get(h + AHEAD) {
                super::generate::prefetch(&parent[ahead as usize]);
                super::generate::prefetch(&size[ahead as usize]);
            }
            let v = neighbours[h];
            if v <= u {
                continue;
            }
            a = root(&mut parent, a);
            let b = root(&mut parent, v);
            if a != b {
                let (big, small) = if size[a as usize] >= size[b as usize] {
                    (a, b)
                } else {
                    (b, a)
                };
                parent[small as usize] = big;
                size[big as usize] += size[small as usize];
                components -= 1;
                a = big;
            }
        }
    }
    let largest = (0..n as u32)
        .filter(|&u| parent[u as usize] == u)
        .map(|u| size[u as usize])
        .max()
        .unwrap_or(0);
    (components, largest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::ReplicationKey;

    /// Triangles by brute force over all triples.
    fn brute_force(graph: &Graph) -> (u64, Vec<u32>) {
        let n = graph.users();
        let adjacent = |a: u32, b: u32| graph.neighbours(a).binary_search(&b).is_ok();
        let mut at = vec![0u32; n as usize];
        let mut total = 0;
        for a in 0..n {
            for b in a + 1..n {
                for c in b + 1..n {
                    if adjacent(a, b) && adjacent(b, c) && adjacent(a, c) {
                        total += 1;
                        for x in [a, b, c] {
                            at[x as usize] += 1;
                        }
                    }
                }
            }
        }
        (total, at)
    }

    #[test]
    fn a_small_graph_has_the_summary_worked_out_by_hand() {
        // A triangle 0-1-2 with a tail 2-3, an edge 4-5, and user 6 alone.
        let graph = Graph::from_edges(7, &[(0, 1), (1, 2), (0, 2), (2, 3), (4, 5)]);
        let s = summary(&graph);
        assert_eq!((s.users, s.edges, s.max_degree), (7, 5, 3));
        assert_eq!(s.mean_degree, 10.0 / 7.0);
        assert_eq!(s.triangles, Some(1));
        assert_eq!((s.clustering, s.transitivity_se), ("exact", 0.0));
        // Triples: deg 2,2,3,1,1,1,0 -> 1 + 1 + 3 = 5; t-sum 3.
        assert_eq!(s.transitivity, 3.0 / 5.0);
        // Local: 1, 1, 1/3, then 0s: (7/3) / 7.
        assert!((s.average_clustering - (7.0 / 3.0) / 7.0).abs() < 1e-15);
        assert_eq!(
            (s.components, s.largest_component, s.isolated_users),
            (3, 4, 1)
        );
        assert_eq!(s.degree_counts, vec![[0, 1], [1, 3], [2, 2], [3, 1]]);
        // Sorted degrees 0 1 1 1 2 2 3: rank floor(q·6).
        let q = s.degree_quantiles;
        assert_eq!(
            (q.min, q.p05, q.p25, q.p50, q.p75, q.p95, q.p99, q.max),
            (0, 0, 1, 1, 2, 2, 2, 3)
        );
    }

    #[test]
    fn triangle_counts_match_brute_force_on_random_graphs() {
        for seed in 0..5 {
            let key = ReplicationKey::new(seed, 1);
            for graph in [
                super::super::erdos_renyi(60, 12.0, key),
                super::super::watts_strogatz(50, 6, 0.2, key),
                super::super::barabasi_albert(70, 3, key),
            ] {
                let (total, at) = brute_force(&graph);
                let s = summary(&graph);
                assert_eq!(s.triangles, Some(total));
                assert_eq!(
                    triangles_per_user(
                        &graph,
                        &(0..graph.users())
                            .map(|u| graph.degree(u))
                            .collect::<Vec<_>>()
                    ),
                    at
                );
            }
        }
    }

    /// The sampled coefficients as they were computed before they were
    /// parallel and staged: one sample after another from one generator.
    fn sequential_sampled_clustering(graph: &Graph, degrees: &[u32]) -> (u64, u64) {
        use super::super::generate::below;
        use crate::rng::{Event, INITIAL_DAY};
        let n = degrees.len() as u64;
        let stream = ReplicationKey::new(0, 0).stream(INITIAL_DAY - 1, Event::Network);
        let mut generator = stream.generator(0);
        let adjacent = |a: u32, b: u32| {
            let (short, other) = if degrees[a as usize] <= degrees[b as usize] {
                (a, b)
            } else {
                (b, a)
            };
            graph.neighbours(short).binary_search(&other).is_ok()
        };
        let closed_at = |generator: &mut DrawRng, u: u32| {
            let row = graph.neighbours(u);
            let d = row.len() as u64;
            let i = below(generator, d);
            let mut j = below(generator, d - 1);
            if j >= i {
                j += 1;
            }
            adjacent(row[i as usize], row[j as usize])
        };
        let mut cumulative = Vec::new();
        let mut total = 0u64;
        for &d in degrees {
            total += u64::from(d) * u64::from(d.saturating_sub(1)) / 2;
            cumulative.push(total);
        }
        let (mut closed, mut closed_local) = (0, 0);
        if total > 0 {
            for _ in 0..CLUSTERING_SAMPLES {
                let wedge = below(&mut generator, total);
                let u = cumulative.partition_point(|&c| c <= wedge) as u32;
                closed += u64::from(closed_at(&mut generator, u));
            }
        }
        for _ in 0..CLUSTERING_SAMPLES {
            let u = below(&mut generator, n) as u32;
            if degrees[u as usize] >= 2 {
                closed_local += u64::from(closed_at(&mut generator, u));
            }
        }
        (closed, closed_local)
    }

    /// The index finds the user a search of the whole table finds, at every
    /// range boundary and around it, with long runs of equal totals (users of
    /// degree < 2) and single users holding many ranges (hubs).
    #[test]
    fn the_centre_index_agrees_with_a_whole_search() {
        for degrees in [
            vec![2u32, 0, 0, 3, 1, 1, 500, 2, 0, 7],
            (0..5000u32)
                .map(|u| (u * 7919 % 13) + u32::from(u % 97 == 0) * 300)
                .collect(),
            vec![5; 3],
        ] {
            let mut cumulative = Vec::new();
            let mut total = 0u64;
            for &d in &degrees {
                total += u64::from(d) * u64::from(d.saturating_sub(1)) / 2;
                cumulative.push(total);
            }
            let index = CentreIndex::new(&cumulative, total);
            let ranges = index.starts.len() - 1;
            let mut wedges: Vec<u64> = (0..=ranges)
                .flat_map(|k| {
                    let first = CentreIndex::first_of(k, ranges, total);
                    [first.saturating_sub(1), first, first + 1]
                })
                .chain(cumulative.iter().flat_map(|&c| [c.saturating_sub(1), c]))
                .chain((0..total).step_by(7))
                .filter(|&w| w < total)
                .collect();
            wedges.sort_unstable();
            for wedge in wedges {
                assert_eq!(
                    index.centre(wedge),
                    cumulative.partition_point(|&c| c <= wedge),
                    "wedge {wedge} of {total}"
                );
            }
        }
    }

    /// The components and the largest one's size, by breadth-first search, on
    /// graphs with isolated users, many small components and one large one.
    #[test]
    fn components_agree_with_a_breadth_first_search() {
        let key = ReplicationKey::new(9, 2);
        for graph in [
            super::super::erdos_renyi(30_000, 0.8, key),
            super::super::erdos_renyi(30_000, 1.3, key),
            super::super::barabasi_albert(5_000, 1, key),
            Graph::from_edges(7, &[(0, 1), (1, 2), (4, 5)]),
        ] {
            let n = graph.users() as usize;
            let mut seen = vec![false; n];
            let (mut count, mut largest) = (0u64, 0u32);
            for start in 0..n {
                if seen[start] {
                    continue;
                }
                seen[start] = true;
                let (mut queue, mut size) = (vec![start as u32], 0u32);
                while let Some(u) = queue.pop() {
                    size += 1;
                    for &v in graph.neighbours(u) {
                        if !std::mem::replace(&mut seen[v as usize], true) {
                            queue.push(v);
                        }
                    }
                }
                count += 1;
                largest = largest.max(size);
            }
            assert_eq!(components(&graph), (count, largest));
        }
    }

    /// The parallel, staged sampling counts exactly the wedges the sequential
    /// one does, on graphs with and without users of degree < 2.
    #[test]
    fn sampled_clustering_counts_what_one_sample_after_another_counts() {
        let key = ReplicationKey::new(5, 1);
        for graph in [
            super::super::barabasi_albert(30_000, 3, key),
            super::super::watts_strogatz(20_000, 6, 0.2, key),
            super::super::erdos_renyi(20_000, 1.5, key),
        ] {
            let degrees: Vec<u32> = (0..graph.users()).map(|u| graph.degree(u)).collect();
            let sampled = sampled_clustering(&graph, &degrees);
            let (closed, closed_local) = sequential_sampled_clustering(&graph, &degrees);
            let samples = f64::from(CLUSTERING_SAMPLES);
            assert_eq!(sampled.transitivity, closed as f64 / samples);
            assert_eq!(sampled.average_clustering, closed_local as f64 / samples);
            assert!(closed_local > 0);
        }
    }

    #[test]
    fn sampled_clustering_is_within_five_standard_errors_of_the_exact_one() {
        let key = ReplicationKey::new(3, 0);
        for graph in [
            super::super::watts_strogatz(20_000, 8, 0.1, key),
            super::super::barabasi_albert(20_000, 4, key),
            super::super::erdos_renyi(2_000, 40.0, key),
        ] {
            let exact = summary_within(&graph, u64::MAX);
            let sampled = summary_within(&graph, 0);
            assert_eq!((exact.clustering, sampled.clustering), ("exact", "sampled"));
            assert_eq!(sampled.triangles, None);
            for (estimate, se, truth) in [
                (
                    sampled.transitivity,
                    sampled.transitivity_se,
                    exact.transitivity,
                ),
                (
                    sampled.average_clustering,
                    sampled.average_clustering_se,
                    exact.average_clustering,
                ),
            ] {
                // The SE of a share near 0 is near 0: allow one closed wedge.
                let tolerance = 5.0 * se + 1.0 / f64::from(CLUSTERING_SAMPLES);
                assert!(
                    (estimate - truth).abs() < tolerance,
                    "{estimate} ± {se} vs {truth}"
                );
            }
            // The same graph always gets the same estimates.
            assert_eq!(summary_within(&graph, 0), sampled);
        }
    }

    #[test]
    fn ring_lattice_clustering_is_the_known_closed_form() {
        // Watts & Strogatz 1998: C(0) = 3(k − 2) / (4(k − 1)) for every user.
        let graph = super::super::watts_strogatz(1_000, 10, 0.0, ReplicationKey::new(1, 0));
        let s = summary(&graph);
        let expected = 3.0 * 8.0 / (4.0 * 9.0);
        assert!((s.average_clustering - expected).abs() < 1e-12);
        assert!((s.transitivity - expected).abs() < 1e-12);
        assert_eq!((s.components, s.isolated_users), (1, 0));
        assert_eq!(s.degree_quantiles.min, 10);
        assert_eq!(s.degree_quantiles.max, 10);
    }

    #[test]
    fn an_empty_graph_summarises_without_dividing_by_zero() {
        let s = summary(&Graph::from_edges(0, &[]));
        assert_eq!((s.users, s.edges, s.components), (0, 0, 0));
        assert_eq!(
            (s.mean_degree, s.transitivity, s.average_clustering),
            (0.0, 0.0, 0.0)
        );
        let s = summary(&Graph::from_edges(3, &[]));
        assert_eq!(
            (s.components, s.isolated_users, s.largest_component),
            (3, 3, 1)
        );
    }
}

//! The summary of a social-network graph written to `network.json`: size, degree
//! distribution and its quantiles, clustering (two definitions), components.

use std::sync::atomic::{AtomicU32, Ordering};

use rayon::prelude::*;
use serde::Serialize;

use super::Graph;

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
fn sampled_clustering(graph: &Graph, degrees: &[u32]) -> Clustering {
    use crate::rng::{Event, INITIAL_DAY, ReplicationKey};
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
    let closed_at = |generator: &mut crate::rng::DrawRng, u: u32| {
        let row = graph.neighbours(u);
        let d = row.len() as u64;
        let i = super::generate::below(generator, d);
        let mut j = super::generate::below(generator, d - 1);
        if j >= i {
            j += 1;
        }
        adjacent(row[i as usize], row[j as usize])
    };
    let samples = u64::from(CLUSTERING_SAMPLES);
    let mut cumulative = Vec::with_capacity(degrees.len());
    let mut total = 0u64;
    for &d in degrees {
        total += u64::from(d) * u64::from(d.saturating_sub(1)) / 2;
        cumulative.push(total);
    }
    let mut closed = 0u64;
    if total > 0 {
        for _ in 0..samples {
            let wedge = super::generate::below(&mut generator, total);
            let u = cumulative.partition_point(|&c| c <= wedge) as u32;
            closed += u64::from(closed_at(&mut generator, u));
        }
    }
    let mut closed_local = 0u64;
    if n > 0 {
        for _ in 0..samples {
            let u = super::generate::below(&mut generator, n) as u32;
            if degrees[u as usize] >= 2 {
                closed_local += u64::from(closed_at(&mut generator, u));
            }
        }
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
    let mut components = n as u64;
    for (u, v) in graph.edge_list() {
        let (a, b) = (root(&mut parent, u), root(&mut parent, v));
        if a != b {
            let (big, small) = if size[a as usize] >= size[b as usize] {
                (a, b)
            } else {
                (b, a)
            };
            parent[small as usize] = big;
            size[big as usize] += size[small as usize];
            components -= 1;
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

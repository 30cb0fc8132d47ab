//! The graph generators of MODEL.md v2 ("Social-network word of mouth"):
//! Erdős–Rényi, Watts–Strogatz and Barabási–Albert, each drawing from the
//! `Event::Network` streams of one key, so a graph is a pure function of it.
//!
//! They are sequential on purpose: a fixed graph is built under the cache's
//! lock (see `graph_for`), where rayon could run another replication's work on
//! this thread and deadlock on that lock.

use rand::Rng;

use super::Graph;
use crate::rng::{DrawRng, Event, ReplicationKey};

/// A uniform integer in `0..n` (`n >= 1`) from 64 random bits (Lemire's
/// multiply-shift; the bias is below `n / 2^64`).
#[inline]
pub(super) fn below(generator: &mut DrawRng, n: u64) -> u64 {
    ((u128::from(generator.next_u64()) * u128::from(n)) >> 64) as u64
}

/// Erdős–Rényi `G(N, p)` with `p = mean_degree / (N - 1)`: every pair of users is
/// an edge independently with probability `p` (MODEL.md v2).
///
/// Drawn by geometric skipping (Batagelj & Brandes 2005, "Efficient generation
/// of large random networks", algorithm G(n,p)) row by row: user `u`'s
/// neighbours `v > u` are found by skipping `⌊ln U / ln(1 − p)⌋` non-edges at a
/// time with `U` from `u`'s stream (round 0), so the work is `O(N + E)`.
///
/// `mean_degree` in `[0, N - 1]` (checked upstream; larger is taken as `p = 1`).
pub fn erdos_renyi(users: u32, mean_degree: f64, key: ReplicationKey) -> Graph {
    let mut edges = Vec::new();
    if users >= 2 && mean_degree > 0.0 {
        let p = mean_degree / f64::from(users - 1);
        let stream = key.stream(0, Event::Network);
        let n = u64::from(users);
        if p >= 1.0 {
            for u in 0..users {
                for v in u + 1..users {
                    edges.push((u, v));
                }
            }
        } else {
            // ln(1 − p) without cancellation for small p.
            let log_q = (-p).ln_1p();
            let expected = p * (n as f64) * ((n - 1) as f64) / 2.0;
            edges.reserve((expected + 6.0 * expected.sqrt()) as usize);
            for u in 0..users {
                let mut generator = stream.generator(u);
                let mut v = u64::from(u);
                loop {
                    let skip = (generator.open_uniform().ln() / log_q).floor();
                    if skip >= (n - v) as f64 {
                        break;
                    }
                    v += 1 + skip as u64;
                    if v >= n {
                        break;
                    }
                    edges.push((u, v as u32));
                }
            }
        }
    }
    Graph::from_edges(users, &edges)
}

/// Watts–Strogatz: the ring lattice joining each user `u` to `u ± 1, …, u ± k/2`
/// (mod N), then for `j = 1..k/2` and within it `u = 0..N−1` the edge
/// `(u, u + j mod N)` is rewired with probability `rewiring`: `u` keeps it and
/// `u + j` is replaced by `w` drawn uniformly among the users `w ≠ u` not
/// adjacent to `u` at that moment, the edge kept as is if there is none
/// (MODEL.md v2; Watts & Strogatz 1998).
///
/// The draws of `(j, u)` come from `u`'s stream of round `j`: first the
/// Bernoulli, then `w` by rejection (or, when fewer than a quarter of the users
/// are candidates, by its rank among them). `k` even, `2 <= k < N`, `rewiring`
/// in `[0, 1]` (checked upstream). The edge count `N·k/2` never changes.
pub fn watts_strogatz(users: u32, k: u32, rewiring: f64, key: ReplicationKey) -> Graph {
    let n = users;
    let half = k / 2;
    // Rows are kept sorted throughout (binary search for adjacency, sorted
    // insertion), so the graph needs no sorting at the end.
    let mut adjacency: Vec<Vec<u32>> = (0..n)
        .map(|u| {
            let mut row = Vec::with_capacity(k as usize + 2);
            // u ± j mod N without a division (j < N).
            for j in (1..=half).rev() {
                row.push(if u >= j { u - j } else { u + (n - j) });
            }
            for j in 1..=half {
                row.push(if j < n - u { u + j } else { j - (n - u) });
            }
            // Only rows that wrap around the ring are out of order.
            if !row.is_sorted() {
                row.sort_unstable();
            }
            row
        })
        .collect();
    if rewiring > 0.0 {
        let mut scratch = Vec::new();
        for j in 1..=half {
            let stream = key.stream(j, Event::Network);
            for u in 0..n {
                let mut generator = stream.generator(u);
                if generator.uniform() >= rewiring {
                    continue;
                }
                let Some(w) =
                    non_neighbour(&mut generator, &adjacency[u as usize], u, n, &mut scratch)
                else {
                    continue;
                };
                let target = ((u64::from(u) + u64::from(j)) % u64::from(n)) as u32;
                remove(&mut adjacency[u as usize], target);
                remove(&mut adjacency[target as usize], u);
                insert(&mut adjacency[u as usize], w);
                insert(&mut adjacency[w as usize], u);
            }
        }
    }
    Graph::from_adjacency(adjacency)
}

/// A user drawn uniformly among the users `w ≠ u` of `0..n` not in `u`'s
/// sorted `row`, or `None` if there is none: by rejection, or, when fewer than
/// a quarter of the users are candidates, as the candidate of a uniform rank
/// (`scratch` is working space).
fn non_neighbour(
    generator: &mut DrawRng,
    row: &[u32],
    u: u32,
    n: u32,
    scratch: &mut Vec<u32>,
) -> Option<u32> {
    let candidates = u64::from(n) - 1 - row.len() as u64;
    if candidates == 0 {
        return None;
    }
    if 4 * candidates >= u64::from(n) {
        loop {
            let w = below(generator, u64::from(n)) as u32;
            if w != u && row.binary_search(&w).is_err() {
                return Some(w);
            }
        }
    }
    scratch.clear();
    scratch.extend_from_slice(row);
    insert(scratch, u);
    Some(nth_missing(scratch, below(generator, candidates) as u32))
}

/// The `rank`-th (from 0) number missing from the sorted, distinct `taken`.
fn nth_missing(taken: &[u32], rank: u32) -> u32 {
    // Below taken[i] exactly taken[i] - i numbers are missing, a non-decreasing
    // count: the answer lies beyond every taken[i] with at most `rank` below it.
    let before = taken
        .iter()
        .enumerate()
        .take_while(|&(i, &t)| t - i as u32 <= rank)
        .count();
    rank + before as u32
}

/// Removes `value` (present) from the sorted `row`.
fn remove(row: &mut Vec<u32>, value: u32) {
    let at = row
        .binary_search(&value)
        .expect("a rewired lattice edge is present on both sides");
    row.remove(at);
}

/// Inserts `value` (absent) into the sorted `row`.
fn insert(row: &mut Vec<u32>, value: u32) {
    let at = row.binary_search(&value).unwrap_err();
    row.insert(at, value);
}

/// Barabási–Albert preferential attachment with `m = mean_degree / 2`: users
/// `0..=m` form a clique; each later user `u`, in number order, draws `m`
/// distinct earlier users one at a time, each draw proportional to degree (a
/// uniform half-edge of the graph so far), a repeat drawn again, the degrees
/// frozen while `u` draws; then its `m` edges are added (MODEL.md v2;
/// Barabási & Albert 1999).
///
/// `u`'s draws come from its stream of round 0. `m >= 1`, `N >= m + 1` (checked
/// upstream). `E = m(m+1)/2 + (N − m − 1)·m`, every degree at least `m`.
pub fn barabasi_albert(users: u32, m: u32, key: ReplicationKey) -> Graph {
    let n = u64::from(users);
    let m64 = u64::from(m);
    let clique = m64 * (m64 + 1) / 2;
    let total = clique + n.saturating_sub(m64 + 1) * m64;
    let mut edges: Vec<(u32, u32)> = Vec::with_capacity(total as usize);
    for a in 0..=m.min(users.saturating_sub(1)) {
        for b in a + 1..=m.min(users.saturating_sub(1)) {
            edges.push((a, b));
        }
    }
    let stream = key.stream(0, Event::Network);
    // chosen_by[v] == u: v is already among u's draws.
    let mut chosen_by = vec![u32::MAX; users as usize];
    let mut chosen = Vec::with_capacity(m as usize);
    for u in m.saturating_add(1)..users {
        let mut generator = stream.generator(u);
        let frozen = 2 * edges.len() as u64;
        chosen.clear();
        while chosen.len() < m as usize {
            let half_edge = below(&mut generator, frozen);
            let (a, b) = edges[(half_edge / 2) as usize];
            let v = if half_edge.is_multiple_of(2) { a } else { b };
            if chosen_by[v as usize] != u {
                chosen_by[v as usize] = u;
                chosen.push(v);
            }
        }
        for &v in &chosen {
            edges.push((v, u));
        }
    }
    Graph::from_edges(users, &edges)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Panics unless `graph` is simple and symmetric: neighbours strictly
    /// ascending (no duplicates), no self-loops, each edge on both sides.
    pub(crate) fn assert_simple(graph: &Graph) {
        for u in 0..graph.users() {
            let row = graph.neighbours(u);
            assert!(row.windows(2).all(|w| w[0] < w[1]), "user {u}: {row:?}");
            assert!(!row.contains(&u), "self-loop at {u}");
            for &v in row {
                assert!(v < graph.users());
                assert!(
                    graph.neighbours(v).binary_search(&u).is_ok(),
                    "({u}, {v}) one-sided"
                );
            }
        }
    }

    fn key(seed: u64) -> ReplicationKey {
        ReplicationKey::new(seed, 0)
    }

    #[test]
    fn erdos_renyi_edge_count_and_mean_degree_match_binomial_within_five_se() {
        for (users, mean_degree, seed) in
            [(20_000u32, 10.0, 1u64), (3_000, 2.5, 2), (500, 250.0, 3)]
        {
            let graph = erdos_renyi(users, mean_degree, key(seed));
            assert_simple(&graph);
            let pairs = f64::from(users) * f64::from(users - 1) / 2.0;
            let p = mean_degree / f64::from(users - 1);
            let se = (pairs * p * (1.0 - p)).sqrt();
            let edges = graph.edges() as f64;
            assert!(
                (edges - pairs * p).abs() < 5.0 * se,
                "{users} {mean_degree}: {edges} vs {}",
                pairs * p
            );
            let observed_mean = 2.0 * edges / f64::from(users);
            assert!((observed_mean - mean_degree).abs() < 5.0 * 2.0 * se / f64::from(users));
        }
    }

    #[test]
    fn erdos_renyi_pairs_are_independent_with_probability_p() {
        // Each of the 45 pairs of 10 users, over 4000 graphs: its frequency is
        // Binomial(4000, p); all 45 within 5 SE.
        let (users, p) = (10u32, 0.3);
        let mut counts = vec![0u32; 100];
        let graphs = 4_000;
        for seed in 0..graphs {
            let graph = erdos_renyi(users, p * 9.0, key(seed));
            for (u, v) in graph.edge_list() {
                counts[(u * 10 + v) as usize] += 1;
            }
        }
        let se = (f64::from(graphs as u32) * p * (1.0 - p)).sqrt();
        for u in 0..users {
            for v in u + 1..users {
                let count = f64::from(counts[(u * 10 + v) as usize]);
                assert!((count - 4000.0 * p).abs() < 5.0 * se, "({u}, {v}): {count}");
            }
        }
    }

    #[test]
    fn erdos_renyi_extremes_are_empty_and_complete() {
        assert_eq!(erdos_renyi(50, 0.0, key(1)).edges(), 0);
        assert_eq!(erdos_renyi(50, 49.0, key(1)).edges(), 50 * 49 / 2);
        assert_eq!(erdos_renyi(1, 0.0, key(1)).edges(), 0);
        assert_eq!(erdos_renyi(2, 1.0, key(1)).edges(), 1);
    }

    #[test]
    fn watts_strogatz_without_rewiring_is_the_ring_lattice_of_degree_k() {
        let graph = watts_strogatz(1_000, 6, 0.0, key(1));
        assert_simple(&graph);
        assert_eq!(graph.edges(), 3_000);
        assert!((0..1_000).all(|u| graph.degree(u) == 6));
        assert_eq!(graph.neighbours(0), &[1, 2, 3, 997, 998, 999]);
        let graph = watts_strogatz(3, 2, 0.0, key(1));
        assert_eq!(graph.edges(), 3);
    }

    #[test]
    fn watts_strogatz_rewiring_keeps_the_edge_count_and_moves_the_expected_share() {
        for (users, k) in [(10_000u32, 10u32), (12, 10), (5, 4)] {
            for rewiring in [0.3, 1.0] {
                let graph = watts_strogatz(users, k, rewiring, key(7));
                assert_simple(&graph);
                assert_eq!(graph.edges(), u64::from(users) * u64::from(k) / 2);
            }
        }
        // At rewiring p on a large ring, each lattice edge is rewired with
        // probability p (and rarely lands back on the lattice): the share of
        // non-lattice edges is p within 5 SE (minus O(k/N)).
        let (users, k, p) = (20_000u32, 10u32, 0.3);
        let graph = watts_strogatz(users, k, p, key(3));
        let off_lattice = graph
            .edge_list()
            .filter(|&(u, v)| {
                let d = v - u;
                d > k / 2 && d < users - k / 2
            })
            .count() as f64;
        let m = f64::from(users * k / 2);
        let se = (m * p * (1.0 - p)).sqrt();
        assert!(
            (off_lattice - m * p).abs() < 5.0 * se + m * 1e-3,
            "{off_lattice} vs {}",
            m * p
        );
    }

    #[test]
    fn barabasi_albert_has_minimum_degree_m_and_the_known_edge_count() {
        for (users, m) in [(5_000u32, 5u32), (100, 1), (4, 3), (30, 25)] {
            let graph = barabasi_albert(users, m, key(11));
            assert_simple(&graph);
            let expected =
                u64::from(m) * u64::from(m + 1) / 2 + u64::from(users - m - 1) * u64::from(m);
            assert_eq!(graph.edges(), expected, "N = {users}, m = {m}");
            assert_eq!((0..users).map(|u| graph.degree(u)).min(), Some(m));
            // Each later user's m edges go to earlier users.
            for u in m + 1..users {
                assert_eq!(
                    graph.neighbours(u).iter().filter(|&&v| v < u).count(),
                    m as usize
                );
            }
        }
    }

    #[test]
    fn barabasi_albert_third_user_attaches_proportionally_to_degree() {
        // m = 1: users 0-1 joined; user 2 picks 0 or 1 (1/2 each); user 3 then
        // picks the centre of the path (degree 2) with probability 2/4.
        let graphs = 8_000u64;
        let mut centre = 0u32;
        for seed in 0..graphs {
            let graph = barabasi_albert(4, 1, key(seed));
            let hub = graph.neighbours(2)[0];
            if graph.neighbours(3).contains(&hub) {
                centre += 1;
            }
        }
        let se = (graphs as f64 * 0.25).sqrt();
        assert!(
            (f64::from(centre) - graphs as f64 / 2.0).abs() < 5.0 * se,
            "{centre}"
        );
    }

    #[test]
    fn a_clique_alone_when_the_population_is_m_plus_one() {
        let graph = barabasi_albert(4, 3, key(1));
        assert_eq!(graph.edges(), 6);
        assert!((0..4).all(|u| graph.degree(u) == 3));
    }

    #[test]
    fn the_new_neighbour_is_uniform_among_non_neighbours_on_both_paths() {
        // Rejection path (7 of 12 users are candidates) and rank path (2 of 12).
        let stream = ReplicationKey::new(1, 0).stream(0, Event::Network);
        let mut scratch = Vec::new();
        for (row, expected) in [
            (vec![1u32, 2, 10, 11], vec![3u32, 4, 5, 6, 7, 8, 9]),
            (vec![1, 2, 3, 4, 5, 7, 9, 10, 11], vec![6, 8]),
        ] {
            let draws = 70_000u32;
            let mut counts = [0u32; 12];
            for k in 0..draws {
                let mut generator = stream.generator(k);
                let w = non_neighbour(&mut generator, &row, 0, 12, &mut scratch).unwrap();
                counts[w as usize] += 1;
            }
            let p = 1.0 / expected.len() as f64;
            let se = (f64::from(draws) * p * (1.0 - p)).sqrt();
            for w in 0..12u32 {
                let count = f64::from(counts[w as usize]);
                if expected.contains(&w) {
                    assert!(
                        (count - f64::from(draws) * p).abs() < 5.0 * se,
                        "{w}: {count}"
                    );
                } else {
                    assert_eq!(count, 0.0, "{w} is u or a neighbour");
                }
            }
        }
        let full: Vec<u32> = (1..12).collect();
        assert_eq!(
            non_neighbour(&mut stream.generator(0), &full, 0, 12, &mut scratch),
            None
        );
    }

    #[test]
    fn erdos_renyi_degrees_follow_the_binomial_distribution() {
        // N = 20000, p = 5/(N−1): degree k has probability
        // C(N−1, k) p^k (1−p)^(N−1−k); the count of users of each degree 0..=12
        // is within 5 SE of N times it (users' degrees are nearly independent).
        let users = 20_000u32;
        let graph = erdos_renyi(users, 5.0, key(21));
        let p = 5.0 / f64::from(users - 1);
        let mut probability = (1.0 - p).powi(users as i32 - 1);
        for k in 0..=12u32 {
            let observed = (0..users).filter(|&u| graph.degree(u) == k).count() as f64;
            let expected = f64::from(users) * probability;
            let se = (expected * (1.0 - probability)).sqrt();
            assert!(
                (observed - expected).abs() < 5.0 * se + 1.0,
                "k = {k}: {observed} vs {expected}"
            );
            probability *= f64::from(users - 1 - k) / f64::from(k + 1) * p / (1.0 - p);
        }
    }

    #[test]
    fn nth_missing_counts_the_gaps() {
        let taken = [0, 1, 5];
        let missing: Vec<u32> = (0..5).map(|r| nth_missing(&taken, r)).collect();
        assert_eq!(missing, vec![2, 3, 4, 6, 7]);
        assert_eq!(nth_missing(&[], 3), 3);
        assert_eq!(nth_missing(&[3], 3), 4);
    }

    #[test]
    fn dense_watts_strogatz_draws_among_the_few_candidates() {
        // N = 9, k = 6: each user has 2 non-neighbours, the rank path is used.
        for seed in 0..200 {
            let graph = watts_strogatz(9, 6, 1.0, key(seed));
            assert_simple(&graph);
            assert_eq!(graph.edges(), 27);
        }
    }
}

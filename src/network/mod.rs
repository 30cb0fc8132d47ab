//! The social network of MODEL.md v2 ("Social-network word of mouth"): the compact
//! graph the engine walks (CSR), and `graph_for`, the graph of one replication.
//!
//! The generators live in `generate`; a graph is a pure function of its key
//! (`(S, j)` per replication, `S` for a fixed graph), so any thread, shard or
//! process builds the same one.

mod generate;
mod memo;
mod summary;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use crate::rng::ReplicationKey;
use crate::scenario::{GraphScope, NetworkModel, Scenario};

pub use generate::{barabasi_albert, erdos_renyi, watts_strogatz};
pub use memo::{GraphIdentity, offer_graph, remembered_summary, want_summary};
pub use summary::{DegreeQuantiles, GraphSummary, summary};

/// The most half-edges (`2E`) a [`Graph`] can hold: its offsets are `u32`.
pub const MAX_HALF_EDGES: u64 = u32::MAX as u64;

/// An undirected simple graph on the users `0..N-1` in compressed sparse row
/// form: user `u`'s neighbours are `neighbours[offsets[u]..offsets[u + 1]]`,
/// sorted ascending, and each edge is stored in both directions.
///
/// Bytes: `4·(N + 1)` for the offsets and `4·2E` for the neighbours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Graph {
    /// `N + 1` entries, `offsets[0] = 0`, `offsets[N] = 2E`.
    offsets: Vec<u32>,
    /// `2E` entries: each user's neighbours, sorted ascending.
    neighbours: Vec<u32>,
}

/// Why a list of edges makes no [`Graph`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// `2E` does not fit the `u32` offsets.
    #[error(
        "the graph has {edges} edges, {} half-edges; at most {MAX_HALF_EDGES} half-edges (2^32 - 1) fit",
        2 * edges
    )]
    TooManyEdges { edges: u64 },
}

impl Graph {
    /// The graph of `users` users with the undirected `edges`, each listed once
    /// (in either orientation), without self-loops, every user below `users`:
    /// checked upstream (the scenario's validation or a generator).
    ///
    /// # Panics
    /// If `2E >= 2^32` (see [`Graph::try_from_edges`]); the scenario's
    /// validation keeps every graph it allows far below that.
    pub fn from_edges(users: u32, edges: &[(u32, u32)]) -> Graph {
        Self::try_from_edges(users, edges).unwrap_or_else(|error| panic!("{error}"))
    }

    /// [`Graph::from_edges`], with an error instead of a panic when `2E` does
    /// not fit `u32` offsets.
    pub fn try_from_edges(users: u32, edges: &[(u32, u32)]) -> Result<Graph, GraphError> {
        let half_edges = 2 * edges.len() as u64;
        if half_edges > MAX_HALF_EDGES {
            return Err(GraphError::TooManyEdges {
                edges: edges.len() as u64,
            });
        }
        let n = users as usize;
        let mut offsets = vec![0u32; n + 1];
        for &(a, b) in edges {
            debug_assert!(a != b && a < users && b < users, "bad edge ({a}, {b})");
            offsets[a as usize + 1] += 1;
            offsets[b as usize + 1] += 1;
        }
        for u in 0..n {
            offsets[u + 1] += offsets[u];
        }
        let mut next: Vec<u32> = offsets[..n].to_vec();
        let mut neighbours = vec![0u32; half_edges as usize];
        for &(a, b) in edges {
            neighbours[next[a as usize] as usize] = b;
            next[a as usize] += 1;
            neighbours[next[b as usize] as usize] = a;
            next[b as usize] += 1;
        }
        drop(next);
        // Edges listed in increasing (min, max) order, as Erdős–Rényi's rows
        // and sorted files are, leave every row sorted already.
        for u in 0..n {
            let row = &mut neighbours[offsets[u] as usize..offsets[u + 1] as usize];
            if !row.is_sorted() {
                row.sort_unstable();
            }
        }
        Ok(Graph {
            offsets,
            neighbours,
        })
    }

    /// The graph of CSR arrays a generator built in place: `offsets` of
    /// `N + 1` entries from 0 to `neighbours.len()`, each row sorted, without
    /// repeats or self-loops, and symmetric (checked in debug builds only: the
    /// generators make rows sorted by construction).
    fn from_csr(offsets: Vec<u32>, neighbours: Vec<u32>) -> Graph {
        let graph = Graph {
            offsets,
            neighbours,
        };
        debug_assert!(graph.is_simple_csr());
        graph
    }

    /// Whether the arrays make a simple undirected graph: `offsets` from 0 to
    /// `2E`, non-decreasing; every row strictly ascending, without itself,
    /// every neighbour below `N` and listing the user back. `O(E log d)`.
    fn is_simple_csr(&self) -> bool {
        let users = self.offsets.len() as u64 - 1;
        self.offsets.first() == Some(&0)
            && self.offsets.last().map(|&end| end as usize) == Some(self.neighbours.len())
            && self.offsets.is_sorted()
            && (0..users as u32).all(|u| {
                let row = self.neighbours(u);
                row.windows(2).all(|pair| pair[0] < pair[1])
                    && row.binary_search(&u).is_err()
                    && row.iter().all(|&v| {
                        u64::from(v) < users && self.neighbours(v).binary_search(&u).is_ok()
                    })
            })
    }

    /// `N`, the number of users.
    pub fn users(&self) -> u32 {
        (self.offsets.len() - 1) as u32
    }

    /// `E`, the number of undirected edges.
    pub fn edges(&self) -> u64 {
        self.neighbours.len() as u64 / 2
    }

    /// `deg(u)`, the number of `u`'s neighbours.
    #[inline]
    pub fn degree(&self, user: u32) -> u32 {
        self.offsets[user as usize + 1] - self.offsets[user as usize]
    }

    /// `N(u)`, sorted ascending.
    #[inline]
    pub fn neighbours(&self, user: u32) -> &[u32] {
        &self.neighbours
            [self.offsets[user as usize] as usize..self.offsets[user as usize + 1] as usize]
    }

    /// The CSR offsets: `N + 1` entries, user `u`'s neighbours at
    /// `offsets[u]..offsets[u + 1]` of [`Graph::half_edges`] (for hot loops that
    /// walk many users without a bounds check per user).
    pub fn offsets(&self) -> &[u32] {
        &self.offsets
    }

    /// Every user's neighbours one after the other (`2E` entries, each user's
    /// sorted ascending), indexed by [`Graph::offsets`].
    pub fn half_edges(&self) -> &[u32] {
        &self.neighbours
    }

    /// Bytes on the heap: `4·(N + 1) + 4·2E` (the allocations' capacities).
    pub fn heap_bytes(&self) -> usize {
        4 * (self.offsets.capacity() + self.neighbours.capacity())
    }

    /// Every edge once, as `(u, v)` with `u < v`, in increasing order.
    pub fn edge_list(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        (0..self.users()).flat_map(move |u| {
            self.neighbours(u)
                .iter()
                .filter(move |&&v| v > u)
                .map(move |&v| (u, v))
        })
    }
}

/// The graph of replication `replication` of `scenario` run with master seed
/// `seed` (MODEL.md v2, "Social-network word of mouth"), or `None` without a
/// `[market.network]`.
///
/// A pure function of its arguments: per-replication graphs are drawn from
/// streams keyed by `(seed, replication)`, fixed graphs by `seed` alone, file
/// graphs have no randomness. Fixed and file graphs are built once and shared
/// (an `Arc`) by every replication of the process that asks while one is in use;
/// per-replication graphs are built on every call.
///
/// `replication` must be below 2^32 (a `u32` replication number).
pub fn graph_for(scenario: &Scenario, seed: u64, replication: u64) -> Option<Arc<Graph>> {
    let network = scenario.market.network.as_ref()?;
    let users = scenario.market.population;
    if let NetworkModel::File { edges, .. } = &network.model {
        let key = CacheKey::File {
            edges: Arc::as_ptr(edges) as usize,
            users,
        };
        return Some(cached(key, Some(edges), || Graph::from_edges(users, edges)));
    }
    match network.graph {
        GraphScope::PerReplication => {
            let replication = u32::try_from(replication)
                .unwrap_or_else(|_| panic!("replication {replication} is not a u32"));
            let key = ReplicationKey::new(seed, replication);
            Some(Arc::new(generate_model(&network.model, users, key)))
        }
        GraphScope::Fixed => {
            let key = CacheKey::Generated {
                seed,
                model: ModelKey::of(&network.model),
                users,
            };
            Some(cached(key, None, || {
                generate_model(&network.model, users, ReplicationKey::whole_study(seed))
            }))
        }
    }
}

/// The graph of a generated `model` on `users` users, drawn from `key`'s streams.
fn generate_model(model: &NetworkModel, users: u32, key: ReplicationKey) -> Graph {
    match *model {
        NetworkModel::ErdosRenyi { mean_degree } => erdos_renyi(users, mean_degree, key),
        NetworkModel::WattsStrogatz { k, rewiring } => watts_strogatz(users, k, rewiring, key),
        NetworkModel::BarabasiAlbert { m } => barabasi_albert(users, m, key),
        NetworkModel::File { ref edges, .. } => Graph::from_edges(users, edges),
    }
}

/// A generated model's parameters, hashable (floats by their bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ModelKey {
    ErdosRenyi { mean_degree_bits: u64 },
    WattsStrogatz { k: u32, rewiring_bits: u64 },
    BarabasiAlbert { m: u32 },
    File,
}

impl ModelKey {
    fn of(model: &NetworkModel) -> ModelKey {
        match *model {
            NetworkModel::ErdosRenyi { mean_degree } => ModelKey::ErdosRenyi {
                mean_degree_bits: mean_degree.to_bits(),
            },
            NetworkModel::WattsStrogatz { k, rewiring } => ModelKey::WattsStrogatz {
                k,
                rewiring_bits: rewiring.to_bits(),
            },
            NetworkModel::BarabasiAlbert { m } => ModelKey::BarabasiAlbert { m },
            NetworkModel::File { .. } => ModelKey::File,
        }
    }
}

/// What identifies a shared graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum CacheKey {
    Generated {
        seed: u64,
        model: ModelKey,
        users: u32,
    },
    /// The address of the scenario's edge list: the cache keeps that list
    /// alive, so the address is not reused while the entry exists.
    File { edges: usize, users: u32 },
}

/// An edge list of a file graph, shared with the scenario.
type SharedEdges = Arc<Vec<(u32, u32)>>;

/// Shared graphs: weak references to every graph still in use, and the most
/// recently asked one kept alive so that consecutive replications share it.
#[derive(Default)]
struct GraphCache {
    entries: HashMap<CacheKey, (Weak<Graph>, Option<SharedEdges>)>,
    last: Option<(CacheKey, Arc<Graph>)>,
}

static CACHE: Mutex<Option<GraphCache>> = Mutex::new(None);

/// The shared graph of `key`, built by `build` if no one holds it. The lock is
/// held while building, so a graph is built once; `build` must not call back
/// into this cache (the generators are sequential and do not use rayon, so
/// no work of another replication is run on this thread meanwhile).
fn cached(key: CacheKey, edges: Option<&SharedEdges>, build: impl FnOnce() -> Graph) -> Arc<Graph> {
    let mut guard = CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let cache = guard.get_or_insert_with(GraphCache::default);
    if let Some((last_key, graph)) = &cache.last
        && *last_key == key
    {
        return Arc::clone(graph);
    }
    if let Some(graph) = cache.entries.get(&key).and_then(|(weak, _)| weak.upgrade()) {
        cache.last = Some((key, Arc::clone(&graph)));
        return graph;
    }
    let graph = Arc::new(build());
    cache.entries.retain(|_, (weak, _)| weak.strong_count() > 0);
    cache
        .entries
        .insert(key, (Arc::downgrade(&graph), edges.cloned()));
    cache.last = Some((key, Arc::clone(&graph)));
    graph
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csr_stores_each_edge_both_ways_with_sorted_neighbours() {
        let graph = Graph::from_edges(5, &[(3, 0), (0, 1), (4, 1), (1, 3)]);
        assert_eq!(graph.users(), 5);
        assert_eq!(graph.edges(), 4);
        assert_eq!(graph.neighbours(0), &[1, 3]);
        assert_eq!(graph.neighbours(1), &[0, 3, 4]);
        assert_eq!(graph.neighbours(2), &[] as &[u32]);
        assert_eq!(graph.degree(2), 0);
        assert_eq!(graph.degree(1), 3);
        assert_eq!(graph.neighbours(3), &[0, 1]);
        assert_eq!(graph.neighbours(4), &[1]);
        assert_eq!(graph.heap_bytes(), 4 * (5 + 1) + 4 * 2 * 4);
        assert_eq!(graph.offsets(), &[0, 2, 5, 5, 7, 8]);
        assert_eq!(graph.half_edges(), &[1, 3, 0, 3, 4, 0, 1, 1]);
        let listed: Vec<_> = graph.edge_list().collect();
        assert_eq!(listed, vec![(0, 1), (0, 3), (1, 3), (1, 4)]);
    }

    fn scenario_with(model: NetworkModel, graph: GraphScope, users: u32) -> Scenario {
        let mut scenario =
            crate::scenario::parse_str(include_str!("../../scenarios/bass.toml"), "bass.toml")
                .unwrap();
        scenario.market.population = users;
        scenario.market.network = Some(crate::scenario::Network {
            model,
            word_of_mouth: 0.4,
            graph,
        });
        scenario
    }

    #[test]
    fn graph_for_is_a_pure_function_of_seed_and_replication() {
        let scenario = scenario_with(
            NetworkModel::WattsStrogatz {
                k: 4,
                rewiring: 0.5,
            },
            GraphScope::PerReplication,
            2_000,
        );
        let a = graph_for(&scenario, 5, 3).unwrap();
        let b = graph_for(&scenario, 5, 3).unwrap();
        assert_eq!(a, b);
        assert!(!Arc::ptr_eq(&a, &b));
        assert_ne!(*a, *graph_for(&scenario, 5, 4).unwrap());
        assert_ne!(*a, *graph_for(&scenario, 6, 3).unwrap());
        // From other threads, in any order: the same graphs.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let graphs: Vec<Arc<Graph>> = pool.install(|| {
            use rayon::prelude::*;
            (0..6u32)
                .into_par_iter()
                .rev()
                .map(|j| graph_for(&scenario, 5, u64::from(j)).unwrap())
                .collect()
        });
        for (j, graph) in (0..6u64).rev().zip(graphs) {
            assert_eq!(*graph, *graph_for(&scenario, 5, j).unwrap());
        }
    }

    #[test]
    fn a_fixed_graph_is_shared_by_every_replication_and_keyed_by_the_seed() {
        let scenario = scenario_with(
            NetworkModel::BarabasiAlbert { m: 2 },
            GraphScope::Fixed,
            1_234,
        );
        let a = graph_for(&scenario, 9, 0).unwrap();
        let b = graph_for(&scenario, 9, 17).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let other_seed = graph_for(&scenario, 10, 0).unwrap();
        assert_ne!(*a, *other_seed);
        // The fixed graph is not replication 0's per-replication graph.
        let per_replication = scenario_with(
            NetworkModel::BarabasiAlbert { m: 2 },
            GraphScope::PerReplication,
            1_234,
        );
        assert_ne!(*a, *graph_for(&per_replication, 9, 0).unwrap());
        // Rebuilt after every holder has gone: the same graph.
        let expected = (*a).clone();
        drop((a, b, other_seed));
        assert_eq!(*graph_for(&scenario, 9, 3).unwrap(), expected);
    }

    #[test]
    fn a_file_graph_is_its_edges_and_no_network_gives_none() {
        let edges = Arc::new(vec![(0, 1), (2, 1)]);
        let scenario = scenario_with(
            NetworkModel::File {
                path: "/friends.csv".into(),
                edges,
            },
            GraphScope::PerReplication,
            4,
        );
        let graph = graph_for(&scenario, 1, 0).unwrap();
        assert_eq!(*graph, Graph::from_edges(4, &[(0, 1), (1, 2)]));
        assert!(Arc::ptr_eq(&graph, &graph_for(&scenario, 2, 5).unwrap()));
        let mut without = scenario.clone();
        without.market.network = None;
        assert!(graph_for(&without, 1, 0).is_none());
    }

    #[test]
    fn the_csr_check_refuses_unsorted_one_sided_or_looping_rows() {
        let good = Graph::from_edges(4, &[(0, 1), (1, 2), (0, 3)]);
        assert!(good.is_simple_csr());
        let broken = |offsets: Vec<u32>, neighbours: Vec<u32>| {
            !Graph {
                offsets,
                neighbours,
            }
            .is_simple_csr()
        };
        // Unsorted row 0, a one-sided edge, a self-loop, a neighbour out of
        // range, offsets not ending at 2E.
        assert!(broken(vec![0, 2, 3, 3], vec![2, 1, 0]));
        assert!(broken(vec![0, 1, 1], vec![1]));
        assert!(broken(vec![0, 1, 1], vec![0]));
        assert!(broken(vec![0, 1, 2], vec![5, 0]));
        assert!(broken(vec![0, 1, 1], vec![1, 0]));
    }

    #[test]
    fn too_many_half_edges_are_refused_with_a_message() {
        let message = GraphError::TooManyEdges { edges: 1 << 31 }.to_string();
        assert!(message.contains("4294967296 half-edges"), "{message}");
    }

    #[test]
    fn a_graph_of_no_users_or_no_edges_is_empty() {
        let graph = Graph::from_edges(0, &[]);
        assert_eq!((graph.users(), graph.edges()), (0, 0));
        let graph = Graph::from_edges(3, &[]);
        assert_eq!((graph.users(), graph.edges()), (3, 0));
        assert!((0..3).all(|u| graph.degree(u) == 0));
    }
}

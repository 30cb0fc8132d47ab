//! Summaries of generated graphs kept for `network.json`: a study asks for the
//! summaries of the graphs it will report ([`want_summary`]), the engine
//! summarises each of those graphs in the replication that built it, on
//! another thread of the pool while the days run ([`offer_graph`]), and the study's outputs take them from here
//! ([`remembered_summary`]) instead of generating the graphs again.
//!
//! A summary is a pure function of the graph, and a generated graph a pure
//! function of its [`GraphIdentity`] (MODEL.md v2, "Social-network word of
//! mouth": the model, `N` and the key `(S, j)`, or `S` alone for a fixed graph),
//! so a remembered summary is the one a regeneration would give, whichever
//! study, grid point or arm asked first. File graphs are not remembered: they
//! need no generation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{Graph, GraphSummary, summary};
use crate::scenario::{GraphScope, NetworkModel, Scenario};

/// What determines a generated graph: equal identities, equal graphs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GraphIdentity {
    /// The model and its parameters (floats by their bits).
    model: (u8, u64, u64),
    users: u32,
    seed: u64,
    /// `Some(j)` for a per-replication graph, `None` for a fixed one.
    replication: Option<u32>,
}

impl GraphIdentity {
    /// The identity of the graph replication `replication` of `scenario` runs
    /// on with master seed `seed`; `None` without a network or for a file graph.
    pub fn of(scenario: &Scenario, seed: u64, replication: u32) -> Option<GraphIdentity> {
        let network = scenario.market.network.as_ref()?;
        let model = match network.model {
            NetworkModel::ErdosRenyi { mean_degree } => (0, mean_degree.to_bits(), 0),
            NetworkModel::WattsStrogatz { k, rewiring } => (1, u64::from(k), rewiring.to_bits()),
            NetworkModel::BarabasiAlbert { m } => (2, u64::from(m), 0),
            NetworkModel::File { .. } => return None,
        };
        Some(GraphIdentity {
            model,
            users: scenario.market.population,
            seed,
            replication: match network.graph {
                GraphScope::PerReplication => Some(replication),
                GraphScope::Fixed => None,
            },
        })
    }
}

/// A graph's place in the memo.
enum Entry {
    /// A study will report this graph: summarise it when it is built.
    Wanted,
    /// Being summarised by the replication that built it.
    Summarising,
    Done(Arc<GraphSummary>),
}

/// At most this many entries are kept; beyond, summaries already taken are
/// dropped first (each is a few kilobytes: mostly the degree counts).
const MAX_ENTRIES: usize = 256;

static MEMO: Mutex<Option<HashMap<GraphIdentity, Entry>>> = Mutex::new(None);

fn with_memo<T>(f: impl FnOnce(&mut HashMap<GraphIdentity, Entry>) -> T) -> T {
    let mut guard = MEMO.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    f(guard.get_or_insert_with(HashMap::new))
}

/// Asks for the summary of graph `identity` (a study that will write it to
/// `network.json`): the replication that builds it next summarises it.
pub fn want_summary(identity: GraphIdentity) {
    with_memo(|memo| {
        if memo.len() >= MAX_ENTRIES {
            memo.retain(|_, entry| !matches!(entry, Entry::Done(_)));
        }
        memo.entry(identity).or_insert(Entry::Wanted);
    });
}

/// The engine, in a replication that runs on `graph` (of
/// `identity`): summarises it if a study asked for it and no one has yet. The
/// summary runs outside the lock, on the caller's rayon pool.
pub fn offer_graph(identity: GraphIdentity, graph: &Graph) {
    let claimed = with_memo(|memo| match memo.get_mut(&identity) {
        Some(entry @ Entry::Wanted) => {
            *entry = Entry::Summarising;
            true
        }
        _ => false,
    });
    if claimed {
        let done = Arc::new(summary(graph));
        with_memo(|memo| memo.insert(identity, Entry::Done(done)));
    }
}

/// The summary of graph `identity` if a replication of this process made it.
pub fn remembered_summary(identity: GraphIdentity) -> Option<Arc<GraphSummary>> {
    with_memo(|memo| match memo.get(&identity) {
        Some(Entry::Done(summary)) => Some(Arc::clone(summary)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::ReplicationKey;

    fn identity(seed: u64, replication: Option<u32>) -> GraphIdentity {
        GraphIdentity {
            model: (2, 3, 0),
            users: 500,
            seed,
            replication,
        }
    }

    /// Only a wanted graph is summarised, once, and the summary is the graph's.
    #[test]
    fn a_wanted_graph_is_summarised_once_when_offered_and_others_never() {
        let graph = super::super::barabasi_albert(500, 3, ReplicationKey::new(7, 1));
        let wanted = identity(0xfeed_0001, Some(1));
        let unwanted = identity(0xfeed_0001, Some(2));
        assert!(remembered_summary(wanted).is_none());
        want_summary(wanted);
        assert!(remembered_summary(wanted).is_none());
        offer_graph(unwanted, &graph);
        assert!(remembered_summary(unwanted).is_none());
        offer_graph(wanted, &graph);
        let first = remembered_summary(wanted).expect("summarised when offered");
        assert_eq!(*first, summary(&graph));
        // Asking again keeps the summary; offering again does not recompute it.
        want_summary(wanted);
        offer_graph(
            wanted,
            &super::super::barabasi_albert(500, 3, ReplicationKey::new(8, 1)),
        );
        assert!(Arc::ptr_eq(&first, &remembered_summary(wanted).unwrap()));
    }

    /// Fixed and per-replication graphs, models and seeds are told apart; a
    /// file graph has no identity.
    #[test]
    fn identities_follow_what_the_graph_depends_on() {
        use crate::scenario::{Network, parse_str};
        let mut scenario =
            parse_str(include_str!("../../scenarios/bass.toml"), "bass.toml").unwrap();
        assert_eq!(GraphIdentity::of(&scenario, 1, 0), None);
        scenario.market.network = Some(Network {
            model: NetworkModel::BarabasiAlbert { m: 2 },
            word_of_mouth: 0.3,
            graph: GraphScope::PerReplication,
        });
        let a = GraphIdentity::of(&scenario, 1, 0).unwrap();
        assert_ne!(a, GraphIdentity::of(&scenario, 1, 1).unwrap());
        assert_ne!(a, GraphIdentity::of(&scenario, 2, 0).unwrap());
        // q_net does not change the graph.
        scenario.market.network.as_mut().unwrap().word_of_mouth = 0.5;
        assert_eq!(a, GraphIdentity::of(&scenario, 1, 0).unwrap());
        scenario.market.network.as_mut().unwrap().graph = GraphScope::Fixed;
        let fixed = GraphIdentity::of(&scenario, 1, 0).unwrap();
        assert_eq!(fixed, GraphIdentity::of(&scenario, 1, 7).unwrap());
        assert_ne!(fixed, a);
        scenario.market.network.as_mut().unwrap().model =
            NetworkModel::ErdosRenyi { mean_degree: 4.0 };
        assert_ne!(GraphIdentity::of(&scenario, 1, 0).unwrap(), fixed);
    }
}

//! `network.json` and `degree.svg` of a study with a social network: the summary of
//! the graphs its replications ran on (MODEL.md v2, "Social-network word of mouth").
//!
//! Graphs are rebuilt with `network::graph_for` (a pure function of the scenario,
//! seed and replication), so a merged study writes the same file as an unsharded
//! one. Per-replication graphs are summarised for the first
//! [`MAX_SUMMARISED_REPLICATIONS`] replication numbers of the study only, fewer
//! for large graphs ([`SUMMARISED_EDGES`]), so the outputs stay cheap beside the
//! study itself.

use std::sync::Arc;

use rayon::prelude::*;
use serde_json::{Value, json};

use crate::network::{
    GraphIdentity, GraphSummary, graph_for, remembered_summary, summary, want_summary,
};
use crate::plots::{PlotError, PlotFile, PlotFormat};
use crate::scenario::{GraphScope, NetworkModel, Scenario};

/// How many per-replication graphs `network.json` summarises at most: those of
/// the lowest replication numbers.
pub const MAX_SUMMARISED_REPLICATIONS: usize = 4;

/// Per-replication graphs are summarised while their expected edges add up to
/// at most this many (at least one graph): each costs a regeneration and a
/// summary, about 0.2 s + 0.2 s of CPU at 10^6 users and mean degree 10, so two
/// such graphs, four of 10^5 users.
pub const SUMMARISED_EDGES: f64 = 1e7;

/// The expected number of edges of a generated graph.
fn expected_edges(model: &NetworkModel, users: u32) -> f64 {
    let n = f64::from(users);
    match *model {
        NetworkModel::ErdosRenyi { mean_degree } => n * mean_degree / 2.0,
        NetworkModel::WattsStrogatz { k, .. } => n * f64::from(k) / 2.0,
        NetworkModel::BarabasiAlbert { m } => n * f64::from(m),
        NetworkModel::File { ref edges, .. } => edges.len() as f64,
    }
}

/// Which graphs `network.json` of a study of `scenario` whose finished
/// replications are `replications` summarises: its scope (`"file"`, `"fixed"` or
/// `"per-replication"`) and the replication numbers (`None`: the study's one
/// graph). Nothing without a network.
pub fn summarised_graphs(
    scenario: &Scenario,
    replications: &[u32],
) -> (&'static str, Vec<Option<u32>>) {
    let Some(network) = &scenario.market.network else {
        return ("none", Vec::new());
    };
    match (&network.model, network.graph) {
        (NetworkModel::File { .. }, _) => ("file", vec![None]),
        (_, GraphScope::Fixed) => ("fixed", vec![None]),
        (_, GraphScope::PerReplication) => {
            let mut numbers = replications.to_vec();
            numbers.sort_unstable();
            numbers.dedup();
            let per_graph = expected_edges(&network.model, scenario.market.population);
            let affordable = (SUMMARISED_EDGES / per_graph.max(1.0)).floor() as usize;
            numbers.truncate(affordable.clamp(1, MAX_SUMMARISED_REPLICATIONS));
            ("per-replication", numbers.into_iter().map(Some).collect())
        }
    }
}

/// Asks the engine to summarise, as it builds them, the graphs that
/// `network.json` of a study of `scenario` over `replications` (all of the
/// study's, whether run now or not) will report, so that the outputs need not
/// generate them again (`network::want_summary`). Call before running.
pub fn request_summaries(scenario: &Scenario, replications: &[u32]) {
    let seed = scenario.simulation.seed;
    for j in summarised_graphs(scenario, replications).1 {
        if let Some(identity) = GraphIdentity::of(scenario, seed, j.unwrap_or(0)) {
            want_summary(identity);
        }
    }
}

/// The network outputs of a study: `network.json` and, when plots are asked
/// for, the degree distribution plot.
pub struct NetworkOutputs {
    pub json: String,
    pub plot: Option<PlotFile>,
}

/// The outputs for a study of `scenario` whose finished replications are
/// `replications` (any order), computed on a pool of `threads` threads (0 = one
/// per core); `None` when the scenario has no network.
pub fn network_outputs(
    scenario: &Scenario,
    replications: &[u32],
    threads: usize,
    plot_format: Option<PlotFormat>,
) -> Result<Option<NetworkOutputs>, PlotError> {
    let Some(network) = &scenario.market.network else {
        return Ok(None);
    };
    let seed = scenario.simulation.seed;
    let (scope, summarised) = summarised_graphs(scenario, replications);
    let pool = crate::study::thread_pool(threads);
    let summaries: Vec<Arc<GraphSummary>> = pool.install(|| {
        summarised
            .par_iter()
            .map(|j| {
                let j = j.unwrap_or(0);
                GraphIdentity::of(scenario, seed, j)
                    .and_then(remembered_summary)
                    .unwrap_or_else(|| {
                        let graph = graph_for(scenario, seed, u64::from(j))
                            .expect("the scenario has a network");
                        Arc::new(summary(&graph))
                    })
            })
            .collect()
    });
    let (model, parameters) = match &network.model {
        NetworkModel::ErdosRenyi { mean_degree } => {
            ("erdos-renyi", json!({ "mean_degree": mean_degree }))
        }
        NetworkModel::WattsStrogatz { k, rewiring } => (
            "watts-strogatz",
            json!({ "mean_degree": k, "rewiring": rewiring }),
        ),
        NetworkModel::BarabasiAlbert { m } => {
            ("barabasi-albert", json!({ "mean_degree": 2 * m, "m": m }))
        }
        NetworkModel::File { path, edges } => (
            "file",
            json!({ "file": path.display().to_string(), "listed_edges": edges.len() }),
        ),
    };
    let graphs: Vec<Value> = summarised
        .iter()
        .zip(&summaries)
        .map(|(j, s)| {
            let mut value = serde_json::to_value(&**s).expect("plain data");
            if let (Some(j), Value::Object(map)) = (j, &mut value) {
                let mut entry = serde_json::Map::new();
                entry.insert("replication".to_string(), json!(j));
                entry.extend(std::mem::take(map));
                *map = entry;
            }
            value
        })
        .collect();
    let mut document = json!({
        "model": model,
        "parameters": parameters,
        "word_of_mouth": network.word_of_mouth,
        "graph": scope,
        "seed": seed,
        "replications": replications.len(),
        "graphs": graphs,
    });
    if scope == "per-replication" {
        document["summarised"] = json!(format!(
            "the graphs of the first {} replication numbers of the study (at most \
             {MAX_SUMMARISED_REPLICATIONS}, and fewer while they exceed 10^7 edges together)",
            summaries.len()
        ));
    }
    let json = serde_json::to_string_pretty(&document).expect("plain JSON");
    let plot = match plot_format {
        Some(format) => {
            let series: Vec<(String, Vec<[u64; 2]>)> = summarised
                .iter()
                .zip(&summaries)
                .map(|(j, s)| {
                    let label = match j {
                        Some(j) => format!("replication {j}"),
                        None => "the study's graph".to_string(),
                    };
                    (label, s.degree_counts.clone())
                })
                .collect();
            let isolated = summaries.first().map_or(0.0, |s| {
                f64::from(s.isolated_users) / f64::from(s.users.max(1))
            });
            let title = format!(
                "{}: degree distribution, {model}, N = {}, mean degree {:.2}",
                scenario.name,
                scenario.market.population,
                summaries.first().map_or(0.0, |s| s.mean_degree)
            );
            Some(crate::plots::degree_distribution(
                &title, &series, isolated, format,
            )?)
        }
        None => None,
    };
    Ok(Some(NetworkOutputs { json, plot }))
}

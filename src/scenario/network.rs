//! `[market.network]` (MODEL.md v2, "Social-network word of mouth"): validation of
//! its keys against the final population, and reading edge-list files.
//!
//! An edge-list file is read once per process (cached by path, size and
//! modification time), so the points of a sweep share one edge list. The resolved
//! scenario names the file by its absolute path and records its content hash
//! (`file_hash`), so a study directory finds the same edges from anywhere and a
//! changed file is refused rather than silently mixed into a resumed study.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use toml::{Table, Value};

use super::load::{
    Bound, Checked, Field, Kind, Validator, describe_found, did_you_mean, number_of, optional,
    required,
};
use super::{GraphScope, Network, NetworkModel, ScenarioError};
use crate::csv_lines::LineCounter;
use crate::network::MAX_HALF_EDGES;

/// The names of `model`, in MODEL.md's order.
pub(super) const MODELS: &[&str] = &["erdos-renyi", "watts-strogatz", "barabasi-albert", "file"];

/// The names of `graph`.
const SCOPES: &[&str] = &["per-replication", "fixed"];

/// The keys of `[market.network]`; which apply to which model is checked after.
pub(super) const NETWORK_FIELDS: &[Field] = &[
    required("model", Kind::OneOf(MODELS)),
    optional("mean_degree", Kind::Number(Bound::NonNegative)),
    optional("rewiring", Kind::Number(Bound::Unit)),
    optional("file", Kind::Text),
    optional("file_hash", Kind::Text),
    required("word_of_mouth", Kind::Number(Bound::NonNegative)),
    optional("graph", Kind::OneOf(SCOPES)),
];

/// The keys each model takes beside `model`, `word_of_mouth` and `graph`, the
/// required ones first.
fn model_keys(model: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match model {
        "erdos-renyi" | "barabasi-albert" => (&["mean_degree"], &[]),
        "watts-strogatz" => (&["mean_degree", "rewiring"], &[]),
        _ => (&["file"], &["file_hash"]),
    }
}

const PATH: &str = "market.network";

/// `[market.network]` of the market table `market` of a scenario of `population`
/// users, or `None` when absent. Errors name the key path and line; errors in an
/// edge-list file name that file and the line.
pub(super) fn parse(
    validator: &Validator<'_>,
    market: &Table,
    population: u32,
) -> Checked<Option<Network>> {
    let Some(value) = market.get("network") else {
        return Ok(None);
    };
    let Some(table) = value.as_table() else {
        // The market's own check has named the type already; unreachable.
        return Err(validator.error(PATH, "expected a table"));
    };
    let model_path = Validator::child(PATH, "model");
    if let Some(Value::String(model)) = table.get("model")
        && !MODELS.contains(&model.as_str())
    {
        return Err(validator.error(
            &model_path,
            format!(
                "unknown network model {model:?}; {}expected one of: {}",
                did_you_mean(model, MODELS),
                MODELS.join(", ")
            ),
        ));
    }
    validator.check_table(PATH, table, NETWORK_FIELDS)?;
    let model = table
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (needed, allowed) = model_keys(model);
    for key in table.keys() {
        let shared = ["model", "word_of_mouth", "graph"].contains(&key.as_str());
        if !shared && !needed.contains(&key.as_str()) && !allowed.contains(&key.as_str()) {
            return Err(validator.error(
                &Validator::child(PATH, key),
                format!(
                    "{key:?} does not apply to model {model:?}; it takes {}",
                    needed.join(", ")
                ),
            ));
        }
    }
    for key in needed {
        if !table.contains_key(*key) {
            let mut error = validator.error(
                &Validator::child(PATH, key),
                format!("missing required key {key:?} for model {model:?}"),
            );
            error.line = validator.locations.line(PATH);
            return Err(error);
        }
    }
    let number = |key: &str| table.get(key).and_then(number_of).unwrap_or(0.0);
    let n = u64::from(population);
    let model = match model {
        "erdos-renyi" => {
            let mean_degree = number("mean_degree");
            let path = Validator::child(PATH, "mean_degree");
            let most = (n - 1) as f64;
            if mean_degree > most {
                return Err(validator.error_among(
                    &[path, "market.population".to_string()],
                    format!(
                        "mean_degree {mean_degree:?} exceeds N − 1 = {most} (N = market.population \
                         = {population}); expected 0 <= mean_degree <= N − 1"
                    ),
                ));
            }
            // N·mean_degree half-edges expected, sd below its square root: ten
            // sd of margin keep the drawn graph within the u32 offsets.
            let expected = n as f64 * mean_degree;
            if expected + 10.0 * expected.sqrt() >= MAX_HALF_EDGES as f64 {
                return Err(too_many_edges(validator, &path, expected / 2.0));
            }
            NetworkModel::ErdosRenyi { mean_degree }
        }
        "watts-strogatz" => {
            let path = Validator::child(PATH, "mean_degree");
            let k = even_degree(validator, table, &path)?;
            if n <= u64::from(k) {
                return Err(validator.error_among(
                    &[path, "market.population".to_string()],
                    format!(
                        "mean_degree k = {k} needs more than k users; N = market.population = \
                         {population} (expected N > k)"
                    ),
                ));
            }
            if n * u64::from(k) > MAX_HALF_EDGES {
                return Err(too_many_edges(
                    validator,
                    &path,
                    (n * u64::from(k) / 2) as f64,
                ));
            }
            NetworkModel::WattsStrogatz {
                k,
                rewiring: number("rewiring"),
            }
        }
        "barabasi-albert" => {
            let path = Validator::child(PATH, "mean_degree");
            let m = even_degree(validator, table, &path)? / 2;
            if n < u64::from(m) + 1 {
                return Err(validator.error_among(
                    &[path, "market.population".to_string()],
                    format!(
                        "m = mean_degree / 2 = {m} needs at least m + 1 = {} users; N = \
                         market.population = {population}",
                        u64::from(m) + 1
                    ),
                ));
            }
            let m64 = u64::from(m);
            let edges = m64 * (m64 + 1) / 2 + (n - m64 - 1) * m64;
            if 2 * edges > MAX_HALF_EDGES {
                return Err(too_many_edges(validator, &path, edges as f64));
            }
            NetworkModel::BarabasiAlbert { m }
        }
        _ => edge_file(validator, table, population)?,
    };
    let graph = match table.get("graph").and_then(Value::as_str) {
        Some("fixed") => GraphScope::Fixed,
        _ => GraphScope::PerReplication,
    };
    Ok(Some(Network {
        model,
        word_of_mouth: number("word_of_mouth"),
        graph,
    }))
}

impl Network {
    /// One line for people: `watts-strogatz (k = 10, rewiring 0.1), q_net 0.4,
    /// per-replication graphs`.
    pub fn describe(&self) -> String {
        let model = match &self.model {
            NetworkModel::ErdosRenyi { mean_degree } => {
                format!("erdos-renyi (mean degree {mean_degree})")
            }
            NetworkModel::WattsStrogatz { k, rewiring } => {
                format!("watts-strogatz (k = {k}, rewiring {rewiring})")
            }
            NetworkModel::BarabasiAlbert { m } => format!("barabasi-albert (m = {m})"),
            NetworkModel::File { path, edges } => {
                format!("file {} ({} edges)", path.display(), edges.len())
            }
        };
        let graphs = match (&self.model, self.graph) {
            (NetworkModel::File { .. }, _) => "",
            (_, GraphScope::Fixed) => ", one fixed graph",
            (_, GraphScope::PerReplication) => ", per-replication graphs",
        };
        format!("{model}, q_net {}{graphs}", self.word_of_mouth)
    }
}

/// `mean_degree` as an even integer >= 2 (WS and BA): a TOML integer, or a
/// float with an integral value (as `--vary` and `--param` may write it).
fn even_degree(validator: &Validator<'_>, table: &Table, path: &str) -> Checked<u32> {
    let value = number_of(&table["mean_degree"]).unwrap_or(0.0);
    let model = table
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if value.fract() != 0.0 || value < 2.0 || value > f64::from(u32::MAX) || value % 2.0 != 0.0 {
        return Err(validator.error(
            path,
            format!(
                "expected an even integer >= 2 for model {model:?}, found {}{}",
                describe_found(&table["mean_degree"], true),
                if value.fract() == 0.0 && value % 2.0 != 0.0 && value >= 1.0 {
                    " (odd: each user has k/2 neighbours on either side)"
                } else {
                    ""
                }
            ),
        ));
    }
    Ok(value as u32)
}

fn too_many_edges(validator: &Validator<'_>, path: &str, edges: f64) -> ScenarioError {
    validator.error_among(
        &[path.to_string(), "market.population".to_string()],
        format!(
            "the graph would have about {edges:.3e} edges, {:.3e} half-edges; at most \
             {MAX_HALF_EDGES} half-edges (2^32 − 1) fit",
            2.0 * edges
        ),
    )
}

/// The `file` model: the edge list read (or found in the cache), checked against
/// `population` and against `file_hash` when the resolved scenario recorded one.
fn edge_file(validator: &Validator<'_>, table: &Table, population: u32) -> Checked<NetworkModel> {
    let file_path = Validator::child(PATH, "file");
    let named = table
        .get("file")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let path = Path::new(validator.file)
        .parent()
        .unwrap_or(Path::new(""))
        .join(named);
    let shown = path.display().to_string();
    let list = read_edge_list(&path).map_err(|problem| match problem {
        EdgeFileError::Unreadable(message) => {
            validator.error(&file_path, format!("{shown}: {message}"))
        }
        EdgeFileError::Line { line, message } => ScenarioError {
            file: shown.clone(),
            key_path: String::new(),
            line,
            message,
        },
    })?;
    if let Some(Value::String(expected)) = table.get("file_hash")
        && *expected != list.hash
    {
        return Err(validator.error(
            &Validator::child(PATH, "file_hash"),
            format!(
                "{shown} has changed since this scenario was resolved: its content hash is {}, \
                 expected {expected}; restore the file, or start a new study from the \
                 original scenario",
                list.hash
            ),
        ));
    }
    if let Some(max_user) = list.max_user
        && max_user >= population
    {
        let (line, user) =
            first_line(&path, |a, b| a.max(b) >= population).unwrap_or((None, max_user));
        return Err(ScenarioError {
            file: shown,
            key_path: String::new(),
            line,
            message: format!(
                "user {user} is outside 0..N−1 = 0..{} (N = market.population = {population})",
                i64::from(population) - 1
            ),
        });
    }
    Ok(NetworkModel::File {
        path: list.path.clone(),
        edges: Arc::clone(&list.edges),
    })
}

/// A parsed, checked edge list (without the population check).
#[derive(Debug)]
struct EdgeList {
    /// The file, absolute.
    path: PathBuf,
    edges: Arc<Vec<(u32, u32)>>,
    /// The largest user number listed; `None` without edges.
    max_user: Option<u32>,
    /// `fnv1a64:<hex>` of the file's bytes.
    hash: String,
}

#[derive(Debug)]
enum EdgeFileError {
    /// The file cannot be read (the message says why).
    Unreadable(String),
    /// A bad line of the file.
    Line {
        line: Option<usize>,
        message: String,
    },
}

type EdgeFileCache = HashMap<PathBuf, (u64, Option<SystemTime>, Arc<EdgeList>)>;

static EDGE_FILES: Mutex<Option<EdgeFileCache>> = Mutex::new(None);

/// The edge list at `path`, read once per process while the file keeps its
/// size and modification time.
fn read_edge_list(path: &Path) -> Result<Arc<EdgeList>, EdgeFileError> {
    let unreadable = |error: std::io::Error| {
        EdgeFileError::Unreadable(format!("cannot read the edge-list file (CSV): {error}"))
    };
    let metadata = std::fs::metadata(path).map_err(unreadable)?;
    if metadata.is_dir() {
        return Err(EdgeFileError::Unreadable(
            "is a directory; expected an edge-list file (CSV)".to_string(),
        ));
    }
    let absolute = std::fs::canonicalize(path).map_err(unreadable)?;
    let stamp = (metadata.len(), metadata.modified().ok());
    let mut guard = EDGE_FILES.lock().unwrap_or_else(|p| p.into_inner());
    let cache = guard.get_or_insert_with(HashMap::new);
    if let Some((len, modified, list)) = cache.get(&absolute)
        && (*len, *modified) == stamp
        && modified.is_some()
    {
        return Ok(Arc::clone(list));
    }
    let bytes = std::fs::read(&absolute).map_err(unreadable)?;
    let (edges, max_user) = parse_edges(&bytes)?;
    let list = Arc::new(EdgeList {
        path: absolute.clone(),
        edges: Arc::new(edges),
        max_user,
        hash: fnv1a64_bytes(&bytes),
    });
    cache.insert(absolute, (stamp.0, stamp.1, Arc::clone(&list)));
    Ok(list)
}

/// `fnv1a64:<16 hex digits>` of `bytes` (as `store::fnv1a64` of text).
fn fnv1a64_bytes(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("fnv1a64:{hash:016x}")
}

/// Each data row of an edge-list file as `(line, first, second)` in file order,
/// the columns put in `source,target` order; stops at the first row `visit`
/// refuses. The header is `source,target` in either order; blank lines are
/// skipped.
fn for_each_row(
    bytes: &[u8],
    mut visit: impl FnMut(usize, u32, u32) -> Result<(), EdgeFileError>,
) -> Result<(), EdgeFileError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let mut lines = LineCounter::skipping_spaces();
    let mut swapped: Option<bool> = None;
    let mut record = csv::ByteRecord::new();
    loop {
        let read = reader.read_byte_record(&mut record).map_err(|error| {
            let line = error
                .position()
                .map(|p| LineCounter::skipping_spaces().line_at(bytes, p.byte()));
            EdgeFileError::Line {
                line,
                message: format!("not a readable CSV file: {error}"),
            }
        })?;
        if !read {
            break;
        }
        let line = record
            .position()
            .map_or(0, |p| lines.line_at(bytes, p.byte()));
        if record.iter().all(<[u8]>::is_empty) {
            continue;
        }
        let bad = |message: String| EdgeFileError::Line {
            line: Some(line),
            message,
        };
        let text = |field: &[u8]| String::from_utf8_lossy(field).into_owned();
        let Some(order) = swapped else {
            let header: Vec<String> = record.iter().map(text).collect();
            let names: Vec<&str> = header.iter().map(String::as_str).collect();
            swapped = Some(match names.as_slice() {
                ["source", "target"] => false,
                ["target", "source"] => true,
                _ => {
                    return Err(bad(format!(
                        "expected the header source,target (either order), found {:?}",
                        header.join(",")
                    )));
                }
            });
            continue;
        };
        let columns = if order {
            ["target", "source"]
        } else {
            ["source", "target"]
        };
        if record.len() != 2 {
            return Err(bad(if record.len() < 2 {
                format!(
                    "missing column {} ({}): expected 2 columns, found {}",
                    record.len() + 1,
                    columns[record.len()],
                    record.len()
                )
            } else {
                format!("expected 2 columns (source,target), found {}", record.len())
            }));
        }
        let mut users = [0u32; 2];
        for (i, field) in record.iter().enumerate() {
            if field.is_empty() {
                return Err(bad(format!(
                    "missing column {} ({}): the cell is empty; expected a user number",
                    i + 1,
                    columns[i]
                )));
            }
            let parsed = std::str::from_utf8(field)
                .ok()
                .and_then(|s| s.parse::<u64>().ok());
            users[i] = match parsed {
                Some(user) => u32::try_from(user).map_err(|_| {
                    bad(format!(
                        "column {} ({}): user {user} does not fit a u32 user number",
                        i + 1,
                        columns[i]
                    ))
                })?,
                None => {
                    return Err(bad(format!(
                        "column {} ({}): expected a user number (an integer >= 0), found {:?}",
                        i + 1,
                        columns[i],
                        text(field)
                    )));
                }
            };
        }
        let (source, target) = if order {
            (users[1], users[0])
        } else {
            (users[0], users[1])
        };
        if source == target {
            return Err(bad(format!("self-loop: user {source} to itself")));
        }
        visit(line, source, target)?;
    }
    if swapped.is_none() {
        return Err(EdgeFileError::Line {
            line: None,
            message: "the file is empty; expected the header source,target".to_string(),
        });
    }
    Ok(())
}

/// The edges of a file and its largest user number (`None` without edges).
type ParsedEdges = (Vec<(u32, u32)>, Option<u32>);

/// The edges of an edge-list file and its largest user number, or the first
/// bad line: a malformed row, a self-loop, or a duplicate pair in either order
/// (named at its second line, with the first).
fn parse_edges(bytes: &[u8]) -> Result<ParsedEdges, EdgeFileError> {
    let mut edges = Vec::new();
    let mut max_user = None;
    for_each_row(bytes, |line, source, target| {
        if 2 * (edges.len() as u64 + 1) > MAX_HALF_EDGES {
            return Err(EdgeFileError::Line {
                line: Some(line),
                message: format!(
                    "more than {} edges; at most 2^32 − 1 half-edges fit",
                    MAX_HALF_EDGES / 2
                ),
            });
        }
        edges.push((source, target));
        max_user = max_user.max(Some(source.max(target)));
        Ok(())
    })?;
    let pair = |&(a, b): &(u32, u32)| (u64::from(a.min(b)) << 32) | u64::from(a.max(b));
    let mut keys: Vec<u64> = edges.iter().map(pair).collect();
    keys.sort_unstable();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        drop(keys);
        // Rare: find the first repeat in file order, with its first line.
        let mut first_seen: HashMap<u64, usize> = HashMap::new();
        let mut found = None;
        let _ = for_each_row(bytes, |line, source, target| {
            let key = pair(&(source, target));
            if let Some(&first) = first_seen.get(&key) {
                found = Some((line, first, source, target));
                return Err(EdgeFileError::Unreadable(String::new()));
            }
            first_seen.insert(key, line);
            Ok(())
        });
        let (line, first, source, target) = found.expect("a repeated pair is found again");
        return Err(EdgeFileError::Line {
            line: Some(line),
            message: format!(
                "duplicate pair {source},{target}: the same edge as on line {first} (an edge is \
                 undirected: list each pair once, in either order)"
            ),
        });
    }
    Ok((edges, max_user))
}

/// The line and user of the first row of the file at `path` where `bad(a, b)`
/// holds, to name a user out of range (rare: read again only then).
fn first_line(path: &Path, bad: impl Fn(u32, u32) -> bool) -> Option<(Option<usize>, u32)> {
    let bytes = std::fs::read(path).ok()?;
    let mut found = None;
    let _ = for_each_row(&bytes, |line, a, b| {
        if bad(a, b) {
            let user = if bad(a, a) { a } else { b };
            found = Some((Some(line), user));
            return Err(EdgeFileError::Unreadable(String::new()));
        }
        Ok(())
    });
    found
}

/// Records in the resolved `document` where a file graph's edges came from: the
/// file's absolute path and its content hash (MODEL.md is silent; see
/// docs/MODEL.md), so the stored scenario loads the same graph from anywhere and
/// its hash covers the edges.
pub(super) fn record_edge_file(document: &mut Table, network: Option<&Network>) {
    let Some(Network {
        model: NetworkModel::File { path, .. },
        ..
    }) = network
    else {
        return;
    };
    let Some(table) = document
        .get_mut("market")
        .and_then(Value::as_table_mut)
        .and_then(|market| market.get_mut("network"))
        .and_then(Value::as_table_mut)
    else {
        return;
    };
    let hash = read_edge_list(path).map(|list| list.hash.clone()).ok();
    table.insert(
        "file".to_string(),
        Value::String(path.display().to_string()),
    );
    if let Some(hash) = hash {
        table.insert("file_hash".to_string(), Value::String(hash));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Assignment, load_file, parse_assignment, parse_str};

    const BASS: &str = include_str!("../../scenarios/bass.toml");

    fn with_network(network: &str) -> Result<crate::scenario::Scenario, ScenarioError> {
        parse_str(
            &format!("{BASS}\n[market.network]\n{network}\n"),
            "bass.toml",
        )
    }

    fn with_network_of(
        network: &str,
        population: u32,
    ) -> Result<crate::scenario::Scenario, ScenarioError> {
        let market = BASS.replace(
            "population = 100_000",
            &format!("population = {population}"),
        );
        parse_str(
            &format!("{market}\n[market.network]\n{network}\n"),
            "bass.toml",
        )
    }

    fn error_of(network: &str) -> ScenarioError {
        with_network(network).expect_err("expected an error")
    }

    /// A fresh directory for files of one test.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("brandsim-net-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_network_describes_itself_in_one_line() {
        let ws = with_network(
            "model = \"watts-strogatz\"\nmean_degree = 10\nrewiring = 0.1\nword_of_mouth = 0.4",
        )
        .unwrap();
        assert_eq!(
            ws.market.network.unwrap().describe(),
            "watts-strogatz (k = 10, rewiring 0.1), q_net 0.4, per-replication graphs"
        );
    }

    #[test]
    fn every_model_reads_its_keys() {
        let er = with_network("model = \"erdos-renyi\"\nmean_degree = 7.5\nword_of_mouth = 0.2")
            .unwrap();
        let network = er.market.network.unwrap();
        assert_eq!(network.model, NetworkModel::ErdosRenyi { mean_degree: 7.5 });
        assert_eq!(network.word_of_mouth, 0.2);
        assert_eq!(network.graph, GraphScope::PerReplication);
        let ws = with_network(
            "model = \"watts-strogatz\"\nmean_degree = 10\nrewiring = 0.1\nword_of_mouth = 0.4\ngraph = \"fixed\"",
        )
        .unwrap();
        let network = ws.market.network.unwrap();
        assert_eq!(
            network.model,
            NetworkModel::WattsStrogatz {
                k: 10,
                rewiring: 0.1
            }
        );
        assert_eq!(network.graph, GraphScope::Fixed);
        let ba = with_network("model = \"barabasi-albert\"\nmean_degree = 6.0\nword_of_mouth = 0")
            .unwrap();
        assert_eq!(
            ba.market.network.unwrap().model,
            NetworkModel::BarabasiAlbert { m: 3 }
        );
        assert!(
            parse_str(BASS, "bass.toml")
                .unwrap()
                .market
                .network
                .is_none()
        );
    }

    #[test]
    fn ranges_follow_model_md_exactly() {
        // ER: 0 <= mean_degree <= N - 1, any real.
        assert!(
            with_network_of(
                "model = \"erdos-renyi\"\nmean_degree = 999\nword_of_mouth = 0",
                1000
            )
            .is_ok()
        );
        let error = with_network_of(
            "model = \"erdos-renyi\"\nmean_degree = 999.5\nword_of_mouth = 0",
            1000,
        )
        .unwrap_err();
        assert_eq!(error.key_path, "market.network.mean_degree");
        assert!(error.message.contains("N − 1 = 999"), "{error}");
        // Beyond 2^32 half-edges: refused at validation.
        let error = error_of("model = \"erdos-renyi\"\nmean_degree = 50000\nword_of_mouth = 0");
        assert!(error.message.contains("half-edges"), "{error}");
        assert!(
            with_network("model = \"erdos-renyi\"\nmean_degree = 0\nword_of_mouth = 0").is_ok()
        );
        let error = error_of("model = \"erdos-renyi\"\nmean_degree = 99999.5\nword_of_mouth = 0");
        assert_eq!(error.key_path, "market.network.mean_degree");
        assert!(error.message.contains("N − 1 = 99999"), "{error}");
        let error = error_of("model = \"erdos-renyi\"\nmean_degree = -1\nword_of_mouth = 0");
        assert_eq!(error.key_path, "market.network.mean_degree");
        // WS: even k >= 2, N > k.
        for bad in ["3", "0", "1", "2.5", "-2"] {
            let error = error_of(&format!(
                "model = \"watts-strogatz\"\nmean_degree = {bad}\nrewiring = 0.1\nword_of_mouth = 0"
            ));
            assert_eq!(
                error.key_path, "market.network.mean_degree",
                "{bad}: {error}"
            );
        }
        let odd = error_of(
            "model = \"watts-strogatz\"\nmean_degree = 5\nrewiring = 0.1\nword_of_mouth = 0",
        );
        assert!(
            odd.message.contains("even integer >= 2") && odd.message.contains("odd"),
            "{odd}"
        );
        assert!(odd.line.is_some());
        let error = error_of(
            "model = \"watts-strogatz\"\nmean_degree = 4\nrewiring = 1.5\nword_of_mouth = 0",
        );
        assert_eq!(error.key_path, "market.network.rewiring");
        // BA: even >= 2, N >= m + 1.
        let error = error_of("model = \"barabasi-albert\"\nmean_degree = 7\nword_of_mouth = 0");
        assert_eq!(error.key_path, "market.network.mean_degree");
        // word_of_mouth >= 0, graph per-replication | fixed.
        let error = error_of("model = \"barabasi-albert\"\nmean_degree = 2\nword_of_mouth = -0.1");
        assert_eq!(error.key_path, "market.network.word_of_mouth");
        let error = error_of(
            "model = \"barabasi-albert\"\nmean_degree = 2\nword_of_mouth = 0\ngraph = \"once\"",
        );
        assert_eq!(error.key_path, "market.network.graph");
    }

    #[test]
    fn population_limits_are_checked_on_the_final_scenario() {
        let text = format!(
            "{BASS}\n[market.network]\nmodel = \"watts-strogatz\"\nmean_degree = 10\nrewiring = 0\nword_of_mouth = 0.1\n"
        );
        let dir = scratch("population");
        let file = dir.join("ws.toml");
        std::fs::write(&file, &text).unwrap();
        let set = |text: &str| vec![parse_assignment(text).unwrap()];
        assert!(load_file(&file, &set("market.population=11")).is_ok());
        let error = load_file(&file, &set("market.population=10")).unwrap_err();
        assert_eq!(error.key_path, "market.population");
        assert!(
            error.message.contains("(from --set)") && error.message.contains("N > k"),
            "{error}"
        );
        let ba = text
            .replace("watts-strogatz", "barabasi-albert")
            .replace("rewiring = 0\n", "");
        std::fs::write(&file, &ba).unwrap();
        // m = 5: N = 6 is the clique alone, N = 5 too few.
        assert!(load_file(&file, &set("market.population=6")).is_ok());
        let error = load_file(&file, &set("market.population=5")).unwrap_err();
        assert_eq!(error.key_path, "market.population");
        let both = [
            parse_assignment("market.population=6").unwrap(),
            parse_assignment("market.network.mean_degree=12").unwrap(),
        ];
        let error = load_file(&file, &both).unwrap_err();
        assert_eq!(error.key_path, "market.network.mean_degree", "{error}");
    }

    #[test]
    fn bad_model_names_and_misplaced_keys_name_their_key_path() {
        let error = error_of("model = \"erdos_renyi\"\nmean_degree = 3\nword_of_mouth = 0");
        assert_eq!(error.key_path, "market.network.model");
        assert!(
            error.message.contains("did you mean \"erdos-renyi\""),
            "{error}"
        );
        let error =
            error_of("model = \"erdos-renyi\"\nmean_degree = 3\nrewiring = 0.5\nword_of_mouth = 0");
        assert_eq!(error.key_path, "market.network.rewiring");
        assert!(error.message.contains("does not apply"), "{error}");
        let error = error_of("model = \"watts-strogatz\"\nmean_degree = 4\nword_of_mouth = 0");
        assert_eq!(error.key_path, "market.network.rewiring");
        assert!(error.message.contains("missing required key"), "{error}");
        let error = error_of("model = \"erdos-renyi\"\nmean_degre = 3\nword_of_mouth = 0");
        assert_eq!(error.key_path, "market.network.mean_degre");
        assert!(
            error.message.contains("did you mean \"mean_degree\""),
            "{error}"
        );
        let error = error_of("model = \"erdos-renyi\"\nmean_degree = 3");
        assert_eq!(error.key_path, "market.network.word_of_mouth");
    }

    #[test]
    fn network_keys_can_be_set_and_word_of_mouth_is_uncertain_capable() {
        let text = format!(
            "{BASS}\n[market.network]\nmodel = \"erdos-renyi\"\nmean_degree = 4\nword_of_mouth = 0.1\n"
        );
        let dir = scratch("set");
        std::fs::write(dir.join("n.toml"), &text).unwrap();
        let (_, document) = load_file(&dir.join("n.toml"), &[]).unwrap();
        let set = |key: &str, value: toml::Value| Assignment {
            key: key.to_string(),
            value,
        };
        let (changed, _) = document
            .with_overrides(&[
                set("market.network.word_of_mouth", toml::Value::Float(0.25)),
                set("market.network.mean_degree", toml::Value::Float(6.5)),
            ])
            .unwrap();
        let network = changed.market.network.unwrap();
        assert_eq!(network.word_of_mouth, 0.25);
        assert_eq!(network.model, NetworkModel::ErdosRenyi { mean_degree: 6.5 });
        let error = document
            .with_overrides(&[set("market.network.mean_degre", toml::Value::Float(6.5))])
            .unwrap_err();
        assert!(
            error.message.contains("did you mean \"mean_degree\""),
            "{error}"
        );
        let uncertain = format!(
            "{text}\n[[uncertain]]\nkey = \"market.network.word_of_mouth\"\ndistribution = \"uniform\"\nlow = 0.1\nhigh = 0.3\n"
        );
        let with_draws = parse_str(&uncertain, "u.toml").unwrap();
        let (drawn, _) = with_draws.with_uncertain_draws(3);
        let q = drawn.market.network.unwrap().word_of_mouth;
        assert!((0.1..=0.3).contains(&q) && q != 0.1, "{q}");
        let structure = uncertain.replace(
            "key = \"market.network.word_of_mouth\"",
            "key = \"market.network.mean_degree\"",
        );
        let error = parse_str(&structure, "u.toml").unwrap_err();
        assert!(error.key_path.starts_with("uncertain[0]"), "{error}");
    }

    fn with_file(
        dir: &Path,
        csv: &str,
        population: u32,
    ) -> Result<crate::scenario::Scenario, ScenarioError> {
        std::fs::write(dir.join("friends.csv"), csv).unwrap();
        let text = format!(
            "{}\n[market.network]\nmodel = \"file\"\nfile = \"friends.csv\"\nword_of_mouth = 0.3\n",
            BASS.replace(
                "population = 100_000",
                &format!("population = {population}")
            )
        );
        let scenario_file = dir.join("net.toml");
        std::fs::write(&scenario_file, text).unwrap();
        load_file(&scenario_file, &[]).map(|(scenario, _)| scenario)
    }

    #[test]
    fn an_edge_list_is_read_in_either_column_order_skipping_blank_lines() {
        let dir = scratch("edges-ok");
        let scenario = with_file(&dir, "source,target\n0,1\n\n 2 , 1 \n\n3,0\n", 4).unwrap();
        let NetworkModel::File { path, edges } = scenario.market.network.unwrap().model else {
            panic!("not a file graph");
        };
        assert!(path.is_absolute());
        assert_eq!(*edges, vec![(0, 1), (2, 1), (3, 0)]);
        let swapped = with_file(&dir, "target,source\n1,0\n", 4).unwrap();
        let NetworkModel::File { edges, .. } = swapped.market.network.unwrap().model else {
            panic!("not a file graph");
        };
        assert_eq!(*edges, vec![(0, 1)]);
    }

    #[test]
    fn malformed_edge_lists_name_file_line_and_reason() {
        let dir = scratch("edges-bad");
        let cases: &[(&str, usize, &str)] = &[
            (
                "source,target\n0,1\n1,5\n",
                3,
                "user 5 is outside 0..N−1 = 0..4",
            ),
            ("source,target\n0,1\n\n2,2\n", 4, "self-loop"),
            (
                "source,target\n0,1\n1,2\n1,0\n",
                4,
                "the same edge as on line 2",
            ),
            ("source,target\n0,1\n0,1\n", 3, "the same edge as on line 2"),
            ("source,target\n0,x\n", 2, "expected a user number"),
            ("source,target\n0,1.5\n", 2, "expected a user number"),
            ("source,target\n0,-1\n", 2, "expected a user number"),
            ("source,target\n0\n", 2, "missing column 2 (target)"),
            ("source,target\n0,\n", 2, "missing column 2 (target)"),
            ("source,target\n0,1,2\n", 2, "expected 2 columns"),
            ("from,to\n0,1\n", 1, "expected the header source,target"),
        ];
        for (csv, line, reason) in cases {
            let error = with_file(&dir, csv, 5).unwrap_err();
            assert!(error.file.ends_with("friends.csv"), "{csv:?}: {error}");
            assert_eq!(error.line, Some(*line), "{csv:?}: {error}");
            assert!(error.message.contains(reason), "{csv:?}: {error}");
        }
        // Out of range is judged against the final population.
        assert!(with_file(&dir, "source,target\n0,4\n", 5).is_ok());
        assert!(with_file(&dir, "source,target\n0,4\n", 4).is_err());
        std::fs::remove_file(dir.join("friends.csv")).unwrap();
        let text = std::fs::read_to_string(dir.join("net.toml")).unwrap();
        let error = parse_str(&text, &dir.join("net.toml").display().to_string()).unwrap_err();
        assert_eq!(error.key_path, "market.network.file");
        assert!(
            error.message.contains("cannot read the edge-list file"),
            "{error}"
        );
        assert!(error.line.is_some());
    }

    #[test]
    fn the_resolved_scenario_names_the_file_absolutely_and_hashes_its_content() {
        let dir = scratch("edges-resolved");
        std::fs::write(dir.join("friends.csv"), "source,target\n0,1\n").unwrap();
        let text = format!(
            "{BASS}\n[market.network]\nmodel = \"file\"\nfile = \"friends.csv\"\nword_of_mouth = 0.3\n"
        );
        std::fs::write(dir.join("net.toml"), &text).unwrap();
        let (scenario, source) = load_file(&dir.join("net.toml"), &[]).unwrap();
        let resolved = source.resolved_toml();
        assert!(resolved.contains("file_hash = \"fnv1a64:"), "{resolved}");
        // Loads from anywhere to the same scenario.
        let reloaded = parse_str(&resolved, "/elsewhere/scenario.toml").unwrap();
        assert_eq!(reloaded, scenario);
        let hash = crate::store::scenario_hash(&source);
        // A changed file is refused by the stored scenario, and hashes differently.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(dir.join("friends.csv"), "source,target\n0,2\n").unwrap();
        let error = parse_str(&resolved, "/elsewhere/scenario.toml").unwrap_err();
        assert_eq!(error.key_path, "market.network.file_hash");
        let (_, changed) = load_file(&dir.join("net.toml"), &[]).unwrap();
        assert_ne!(crate::store::scenario_hash(&changed), hash);
    }
}

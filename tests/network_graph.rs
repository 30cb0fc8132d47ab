//! End-to-end tests of `[market.network]` (MODEL.md v2, "Social-network word of
//! mouth"): `network.json` and `degree.svg` of a study, the same graphs on any
//! number of threads and in any shard, and refusals of malformed keys and edge
//! lists (exit 2, naming the key path, or the file and line).

mod common;

use std::path::{Path, PathBuf};

use common::{
    Scratch, assert_refused, assert_refused_writing_nothing, brandsim, merge, path, read_json,
    succeed, text,
};

const BASS: &str = include_str!("../scenarios/bass.toml");

/// The Bass scenario at `population` users with `network` as `[market.network]`,
/// written as `name` in `dir`.
fn scenario_with(dir: &Path, name: &str, population: u32, network: &str) -> PathBuf {
    let text = BASS
        .replace(
            "population = 100_000",
            &format!("population = {population}"),
        )
        .replace("days = 60", "days = 6");
    let file = dir.join(name);
    std::fs::write(&file, format!("{text}\n[market.network]\n{network}\n")).unwrap();
    file
}

fn run(scenario: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec![
        "run",
        path(scenario),
        "-q",
        "--out",
        path(out),
        "--replications",
        "6",
    ];
    args.extend(extra);
    succeed(&args);
}

const WS: &str = "model = \"watts-strogatz\"\nmean_degree = 6\nrewiring = 0.2\nword_of_mouth = 0.3";

#[test]
fn network_json_is_the_same_on_one_or_two_threads_and_after_merging_two_shards() {
    let dir = Scratch::new("shards");
    let scenario = scenario_with(&dir, "ws.toml", 3_000, WS);
    let whole = dir.join("whole");
    run(&scenario, &whole, &["--threads", "2"]);
    let expected = std::fs::read_to_string(whole.join("network.json")).unwrap();
    let one_thread = dir.join("one-thread");
    run(&scenario, &one_thread, &["--threads", "1"]);
    assert_eq!(
        std::fs::read_to_string(one_thread.join("network.json")).unwrap(),
        expected
    );
    let shards: Vec<PathBuf> = (0..2)
        .map(|k| {
            let shard = dir.join(format!("shard-{k}"));
            run(&scenario, &shard, &["--shard", &format!("{k}/2")]);
            shard
        })
        .collect();
    let merged = dir.join("merged");
    let output = merge(&shards, &merged);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        std::fs::read_to_string(merged.join("network.json")).unwrap(),
        expected
    );
    // Per-replication graphs: the first four replication numbers, each its own
    // graph of N·k/2 edges and degree k on average.
    let json = read_json(&whole.join("network.json"));
    assert_eq!(json["graph"], "per-replication");
    assert_eq!(json["model"], "watts-strogatz");
    let graphs = json["graphs"].as_array().unwrap();
    let numbers: Vec<u64> = graphs
        .iter()
        .map(|g| g["replication"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, vec![0, 1, 2, 3]);
    for graph in graphs {
        assert_eq!(graph["edges"], 9_000);
        assert_eq!(graph["mean_degree"], 6.0);
        assert_eq!(graph["users"], 3_000);
    }
    assert_ne!(graphs[0]["triangles"], graphs[1]["triangles"]);
    let svg = std::fs::read_to_string(whole.join("degree.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("degree"),
        "{svg:.200}"
    );
    let report = std::fs::read_to_string(whole.join("report.html")).unwrap();
    assert!(
        report.contains("degree distribution"),
        "the report shows degree.svg"
    );
}

#[test]
fn a_fixed_graph_is_summarised_once_and_a_study_without_network_writes_none() {
    let dir = Scratch::new("fixed");
    let fixed = scenario_with(
        &dir,
        "ba.toml",
        2_000,
        "model = \"barabasi-albert\"\nmean_degree = 4\nword_of_mouth = 0.3\ngraph = \"fixed\"",
    );
    let validated = text(&succeed(&["validate", path(&fixed)]).stdout);
    assert!(
        validated.contains("; network: barabasi-albert (m = 2), q_net 0.3, one fixed graph"),
        "{validated}"
    );
    let out = dir.join("out");
    run(&fixed, &out, &["--no-plots"]);
    let json = read_json(&out.join("network.json"));
    assert_eq!(json["graph"], "fixed");
    let graphs = json["graphs"].as_array().unwrap();
    assert_eq!(graphs.len(), 1);
    assert!(graphs[0].get("replication").is_none());
    // BA: m(m+1)/2 + (N − m − 1)·m edges, minimum degree m.
    assert_eq!(graphs[0]["edges"], 3 + (2_000 - 3) * 2);
    assert_eq!(graphs[0]["degree_quantiles"]["min"], 2);
    assert_eq!(graphs[0]["components"], 1);
    assert!(!out.join("degree.svg").exists(), "--no-plots");
    let plain = dir.join("plain.toml");
    std::fs::write(&plain, BASS.replace("days = 60", "days = 3")).unwrap();
    let out = dir.join("plain");
    run(&plain, &out, &["--set", "market.population=500"]);
    assert!(!out.join("network.json").exists());
    assert!(!out.join("degree.svg").exists());
}

#[test]
fn network_keys_can_be_set_and_varied_and_are_checked_after_overrides() {
    let dir = Scratch::new("set");
    let scenario = scenario_with(
        &dir,
        "er.toml",
        1_000,
        "model = \"erdos-renyi\"\nmean_degree = 4\nword_of_mouth = 0.3",
    );
    let out = dir.join("set");
    run(
        &scenario,
        &out,
        &["--set", "market.network.mean_degree=8.5", "--no-plots"],
    );
    let json = read_json(&out.join("network.json"));
    assert_eq!(json["parameters"]["mean_degree"], 8.5);
    let stored = std::fs::read_to_string(out.join("scenario.toml")).unwrap();
    assert!(
        stored.contains("[market.network]") && stored.contains("mean_degree = 8.5"),
        "{stored}"
    );
    // mean_degree <= N − 1 is judged on the final population.
    let output = brandsim(&[
        "run",
        path(&scenario),
        "-q",
        "--out",
        &dir.arg("refused"),
        "--set",
        "market.population=4",
    ]);
    assert_refused_writing_nothing(
        &output,
        &"population 4",
        &["market.population", "N − 1", "(from --set)"],
        &dir.join("refused"),
    );
    let sweep = dir.join("sweep");
    succeed(&[
        "sweep",
        path(&scenario),
        "-q",
        "--out",
        path(&sweep),
        "--replications",
        "2",
        "--vary",
        "market.network.word_of_mouth=0:0.4:0.2",
        "--vary",
        "market.network.mean_degree=2:4:2",
        "--no-plots",
    ]);
}

/// Each grid point and arm of a sweep or comparison has the `network.json` of
/// its own graphs (the same as a `run` of that scenario), also after merging
/// shards; points that differ only in `q_net` report the same graphs.
#[test]
fn every_grid_point_and_arm_has_the_network_json_of_its_graphs() {
    let dir = Scratch::new("points");
    let scenario = scenario_with(
        &dir,
        "er.toml",
        1_000,
        "model = \"erdos-renyi\"\nmean_degree = 4\nword_of_mouth = 0.3",
    );
    let sweep_args = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "sweep",
            path(&scenario),
            "-q",
            "--out",
            path(out),
            "--replications",
            "3",
            "--vary",
            "market.network.mean_degree=2:4:2",
            "--vary",
            "market.network.word_of_mouth=0.1:0.2:0.1",
            "--no-plots",
        ];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let sweep = dir.join("sweep");
    let args = sweep_args(&sweep, &[]);
    succeed(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let point = |study: &Path, i: usize| read_json(&study.join(format!("points/{i}/network.json")));
    // Grid order: the first axis outermost: (2, 0.1), (2, 0.2), (4, 0.1), (4, 0.2).
    for (i, degree) in [(0, 2.0), (1, 2.0), (2, 4.0), (3, 4.0)] {
        let json = point(&sweep, i);
        assert_eq!(json["parameters"]["mean_degree"], degree, "point {i}");
        assert_eq!(json["replications"], 3);
        assert_eq!(json["graphs"].as_array().unwrap().len(), 3);
    }
    assert_eq!(point(&sweep, 2)["graphs"], point(&sweep, 3)["graphs"]);
    assert_ne!(point(&sweep, 0)["graphs"], point(&sweep, 2)["graphs"]);
    let single = dir.join("single");
    succeed(&[
        "run",
        path(&scenario),
        "-q",
        "--out",
        path(&single),
        "--replications",
        "3",
        "--no-plots",
    ]);
    assert_eq!(
        read_json(&single.join("network.json"))["graphs"],
        point(&sweep, 3)["graphs"]
    );
    let shards: Vec<PathBuf> = (0..2)
        .map(|k| {
            let shard = dir.join(format!("shard-{k}"));
            let args = sweep_args(&shard, &["--shard", &format!("{k}/2")]);
            succeed(&args.iter().map(String::as_str).collect::<Vec<_>>());
            assert!(
                !shard.join("points/0/network.json").exists(),
                "a shard writes none"
            );
            shard
        })
        .collect();
    let merged = dir.join("merged");
    let output = merge(&shards, &merged);
    assert!(output.status.success(), "{}", text(&output.stderr));
    for i in 0..4 {
        assert_eq!(
            std::fs::read_to_string(merged.join(format!("points/{i}/network.json"))).unwrap(),
            std::fs::read_to_string(sweep.join(format!("points/{i}/network.json"))).unwrap(),
            "point {i}"
        );
    }
    let compare = dir.join("compare");
    let denser = dir.join("denser.toml");
    std::fs::write(
        &denser,
        std::fs::read_to_string(&scenario)
            .unwrap()
            .replace("mean_degree = 4", "mean_degree = 6"),
    )
    .unwrap();
    succeed(&[
        "compare",
        path(&scenario),
        path(&denser),
        "-q",
        "--out",
        path(&compare),
        "--replications",
        "2",
        "--no-plots",
    ]);
    for (i, degree) in [(0, 4.0), (1, 6.0)] {
        let json = read_json(&compare.join(format!("arms/{i}/network.json")));
        assert_eq!(json["parameters"]["mean_degree"], degree, "arm {i}");
    }
}

#[test]
fn malformed_network_keys_exit_2_with_their_key_path() {
    let dir = Scratch::new("keys");
    let cases: &[(&str, &[&str])] = &[
        (
            "model = \"watts-strogatz\"\nmean_degree = 5\nrewiring = 0.1\nword_of_mouth = 0.3",
            &[
                "market.network.mean_degree",
                "even integer >= 2",
                "found 5 (odd",
                "bad-0.toml:55:",
            ],
        ),
        (
            "model = \"watts-strogatz\"\nmean_degree = 100\nrewiring = 0.1\nword_of_mouth = 0.3",
            &["market.network.mean_degree", "N > k"],
        ),
        (
            "model = \"erdos-renyi\"\nmean_degree = 100\nword_of_mouth = 0.3",
            &["market.network.mean_degree", "N − 1 = 99"],
        ),
        (
            "model = \"barabasi-albert\"\nmean_degree = 200\nword_of_mouth = 0.3",
            &["market.network.mean_degree", "m + 1 = 101"],
        ),
        (
            "model = \"small-world\"\nmean_degree = 4\nword_of_mouth = 0.3",
            &[
                "market.network.model",
                "unknown network model \"small-world\"",
                "watts-strogatz",
            ],
        ),
        (
            "model = \"file\"\nfile = \"missing.csv\"\nword_of_mouth = 0.3",
            &[
                "market.network.file",
                "missing.csv",
                "cannot read the edge-list file",
            ],
        ),
        (
            "model = \"erdos-renyi\"\nmean_degree = 4\nword_of_mouth = 0.3\ngraph = \"static\"",
            &["market.network.graph", "\"per-replication\", \"fixed\""],
        ),
        (
            "model = \"erdos-renyi\"\nmean_degree = 4\nq_net = 0.3",
            &["market.network.q_net", "unknown key"],
        ),
    ];
    for (i, (network, expected)) in cases.iter().enumerate() {
        let scenario = scenario_with(&dir, &format!("bad-{i}.toml"), 100, network);
        let output = brandsim(&["validate", path(&scenario)]);
        assert_refused(&output, network, expected);
        let out = dir.join(format!("out-{i}"));
        let output = brandsim(&["run", path(&scenario), "-q", "--out", path(&out)]);
        assert_refused_writing_nothing(&output, network, expected, &out);
    }
}

#[test]
fn malformed_edge_lists_exit_2_naming_file_and_line() {
    let dir = Scratch::new("edges");
    let cases: &[(&str, &str, &str)] = &[
        (
            "source,target\n0,1\n1,20\n",
            "friends.csv:3",
            "user 20 is outside 0..N−1 = 0..9",
        ),
        ("source,target\n0,1\n3,3\n", "friends.csv:3", "self-loop"),
        (
            "source,target\n0,1\n2,3\n\n1,0\n",
            "friends.csv:5",
            "the same edge as on line 2",
        ),
        (
            "source,target\n0,1\n0,one\n",
            "friends.csv:3",
            "expected a user number",
        ),
        (
            "source,target\n0,1\n4\n",
            "friends.csv:3",
            "missing column 2 (target)",
        ),
        (
            "user,friend\n0,1\n",
            "friends.csv:1",
            "expected the header source,target",
        ),
    ];
    for (csv, at, reason) in cases {
        std::fs::write(dir.join("friends.csv"), csv).unwrap();
        let scenario = scenario_with(
            &dir,
            "file.toml",
            10,
            "model = \"file\"\nfile = \"friends.csv\"\nword_of_mouth = 0.3",
        );
        let out = dir.join("out");
        let output = brandsim(&["run", path(&scenario), "-q", "--out", path(&out)]);
        assert_refused_writing_nothing(&output, csv, &[at, reason], &out);
    }
    // A good file: run, and the stored scenario names it absolutely with its hash.
    std::fs::write(dir.join("friends.csv"), "target,source\n1,0\n2,1\n").unwrap();
    let scenario = dir.join("file.toml");
    let out = dir.join("good");
    run(&scenario, &out, &["--no-plots"]);
    let stored = std::fs::read_to_string(out.join("scenario.toml")).unwrap();
    let absolute = std::fs::canonicalize(dir.join("friends.csv")).unwrap();
    assert!(
        stored.contains(&format!("file = \"{}\"", absolute.display())),
        "{stored}"
    );
    assert!(stored.contains("file_hash = \"fnv1a64:"), "{stored}");
    let json = read_json(&out.join("network.json"));
    assert_eq!(json["graph"], "file");
    assert_eq!(json["graphs"][0]["edges"], 2);
    assert_eq!(json["graphs"][0]["isolated_users"], 7);
}

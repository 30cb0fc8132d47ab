//! `brandsim sensitivity` end to end (issue 16): a key without effect has a
//! Sobol total index of 0 within its interval and the keys with effect do not;
//! design points are study directories, so shards merge and an interrupted
//! study resumes to the outputs of an uninterrupted one; bad `--param` input
//! is refused before anything runs.

mod common;

use std::path::{Path, PathBuf};

use common::{
    Scratch, assert_refused_writing_nothing, brandsim, interrupt_when, merge, path, read_json,
    succeed, text,
};

const SMALL: [&str; 7] = [
    "-q",
    "--set",
    "market.population=1000",
    "--set",
    "simulation.days=30",
    "-r",
    "2",
];

/// A Sobol study of three keys of the platform scenario on `registrations`.
fn sobol_args<'a>(scenario: &'a str, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "sensitivity",
        scenario,
        "--param",
        "brand.cost_per_day=0:1000",
        "--param",
        "brand.value=0:1",
        "--param",
        "channels.ads.daily_budget=10:60",
        "--method",
        "sobol",
        "--samples",
        "16",
        "--metric",
        "registrations",
        "--out",
        path(out),
    ];
    args.extend(SMALL);
    args.extend(extra);
    args
}

#[test]
fn a_key_without_effect_has_total_index_zero_within_its_interval_and_the_others_do_not() {
    let dir = Scratch::new("no-effect");
    let out = dir.join("study");
    succeed(&sobol_args("scenarios/knowledge_platform.toml", &out, &[]));
    let report = read_json(&out.join("sensitivity.json"));
    assert_eq!(report["design_points"], 16 * 5);
    let indices = report["metrics"]["registrations"].as_array().unwrap();
    let total = |i: usize| {
        let index = &indices[i];
        let interval = index["total_order_ci95"].as_array().unwrap();
        (
            index["total_order"].as_f64().unwrap(),
            interval[0].as_f64().unwrap(),
            interval[1].as_f64().unwrap(),
        )
    };
    // The brand's daily cost is spend only: registrations do not move.
    let (value, low, high) = total(0);
    assert_eq!(indices[0]["key"], "brand.cost_per_day");
    assert!(
        low <= 0.0 && 0.0 <= high && value == 0.0,
        "{value} [{low}, {high}]"
    );
    for i in [1, 2] {
        let (value, low, _) = total(i);
        assert!(
            low > 0.0,
            "{}: {value}, interval from {low}",
            indices[i]["key"]
        );
    }
    let csv = std::fs::read_to_string(out.join("sensitivity.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4);
    assert!(out.join("sensitivity-registrations.svg").is_file());
    assert_eq!(
        std::fs::read_dir(out.join("points")).unwrap().count(),
        16 * 5
    );
}

#[test]
fn morris_screening_ranks_a_key_without_effect_last_with_mu_star_zero() {
    let dir = Scratch::new("morris");
    let out = dir.join("study");
    let mut args = vec![
        "sensitivity",
        "scenarios/knowledge_platform.toml",
        "--param",
        "brand.cost_per_day=0:1000",
        "--param",
        "brand.value=0:1",
        "--method",
        "morris",
        "--samples",
        "5",
        "--metric",
        "registrations",
        "--metric",
        "spend",
        "--out",
        path(&out),
        "--json",
    ];
    args.extend(SMALL);
    let output = succeed(&args);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let registrations = report["metrics"]["registrations"].as_array().unwrap();
    assert_eq!(registrations[0]["mu_star"], 0.0);
    assert!(registrations[1]["mu_star"].as_f64().unwrap() > 0.0);
    // Spend per day is Σ B + κ·V²: κ's elementary effects are 30 days × V²
    // × 1000 over its whole range, so μ* > 0.
    let spend = report["metrics"]["spend"].as_array().unwrap();
    assert!(spend[0]["mu_star"].as_f64().unwrap() > 0.0);
}

/// The design points' outcome files of a sensitivity study.
fn outcome_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Ok(points) = std::fs::read_dir(dir.join("points")) {
        for point in points {
            if let Ok(outcomes) = std::fs::read_dir(point.unwrap().path().join("outcomes")) {
                files.extend(outcomes.map(|e| e.unwrap().path()));
            }
        }
    }
    files
}

#[test]
fn sensitivity_shards_merge_and_interrupted_studies_resume_to_the_one_process_outputs() {
    let dir = Scratch::new("shards");
    let scenario = "scenarios/knowledge_platform.toml";
    let whole = dir.join("whole");
    succeed(&sobol_args(scenario, &whole, &[]));
    let expected = std::fs::read(whole.join("sensitivity.csv")).unwrap();

    let shards: Vec<PathBuf> = (0..2).map(|k| dir.join(format!("shard-{k}"))).collect();
    for (k, shard) in shards.iter().enumerate() {
        let split = format!("{k}/2");
        let output = succeed(&sobol_args(scenario, shard, &["--shard", &split]));
        assert!(text(&output.stdout).contains("design points"));
        assert!(!shard.join("sensitivity.csv").exists());
    }
    let merged = dir.join("merged");
    let output = merge(&shards, &merged);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        std::fs::read(merged.join("sensitivity.csv")).unwrap(),
        expected
    );

    // Ctrl-C after a few replications, then --resume from the stored scenario.
    let interrupted = dir.join("interrupted");
    let output = interrupt_when(
        &sobol_args(scenario, &interrupted, &["--threads", "1"]),
        || outcome_files(&interrupted).len() >= 3,
    );
    let stderr = text(&output.stderr);
    if output.status.code() == Some(130) {
        assert!(stderr.contains("brandsim sensitivity") && stderr.contains("--resume"));
        assert!(!interrupted.join("sensitivity.csv").exists());
    }
    let stored = interrupted.join("scenario.toml");
    succeed(&sobol_args(
        path(&stored),
        &interrupted,
        &["--resume", path(&interrupted)],
    ));
    assert_eq!(
        std::fs::read(interrupted.join("sensitivity.csv")).unwrap(),
        expected
    );
}

#[test]
fn bad_params_are_refused_before_anything_runs() {
    let dir = Scratch::new("bad");
    let out = dir.join("study");
    for (param, expected) in [
        ("brand.value=1:0", "expected LO < HI"),
        ("brand.valu=0:1", "--param brand.valu=0:1"),
        ("channels.tv.cpm=1:2", "no channel named \"tv\""),
        ("market.dormancy=0:2", "market.dormancy"),
    ] {
        let args = [
            "sensitivity",
            "scenarios/knowledge_platform.toml",
            "--param",
            param,
            "--out",
            path(&out),
            "-q",
        ];
        let output = brandsim(&args);
        assert_refused_writing_nothing(&output, &args, &[expected], &out);
    }
}

/// A campaign's window is a `--param` like any value: `campaigns.<name>.start`
/// (a date in the file) takes whole day numbers at the design points.
#[test]
fn a_campaign_start_is_a_sensitivity_param() {
    let dir = Scratch::new("campaign-start");
    let out = dir.join("study");
    let args = [
        "sensitivity",
        "scenarios/campaign_calendar.toml",
        "--param",
        "campaigns.summer-sale.start=140:170",
        "--param",
        "brand.value=0:1",
        "--method",
        "morris",
        "--samples",
        "2",
        "--metric",
        "revenue",
        "--out",
        path(&out),
        "--json",
        "-q",
        "--set",
        "market.population=500",
        "-r",
        "1",
    ];
    let output = succeed(&args);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let revenue = report["metrics"]["revenue"].as_array().unwrap();
    assert_eq!(revenue[0]["key"], "campaigns.summer-sale.start");
    assert!(revenue[0]["mu_star"].as_f64().unwrap().is_finite());
    let points: Vec<PathBuf> = std::fs::read_dir(out.join("points"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(points.len(), 2 * 3);
    for point in points {
        let toml = std::fs::read_to_string(point.join("scenario.toml")).unwrap();
        let table: toml::Table = toml.parse().unwrap();
        let campaigns = table["campaigns"].as_array().unwrap();
        let sale = campaigns
            .iter()
            .find(|c| c["name"].as_str() == Some("summer-sale"))
            .unwrap();
        let start = sale["start"]
            .as_integer()
            .unwrap_or_else(|| panic!("{sale:?}"));
        assert!((140..=170).contains(&start), "{start}");
    }
    assert!(out.join("report.html").exists());
}

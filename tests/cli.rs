//! End-to-end tests of the `brandsim` command: outputs of `run`, `validate`, and
//! malformed input rejected with exit code 2, a key path, and nothing written.

mod common;

use std::path::{Path, PathBuf};

use common::{Scratch, brandsim, json_of, read_json, succeed, text};

const SMALL: [&str; 6] = [
    "--set",
    "market.population=2000",
    "--set",
    "simulation.days=30",
    "--replications",
    "4",
];

#[test]
fn run_writes_summary_replications_daily_and_resolved_scenario() {
    let dir = Scratch::new("run");
    let out = dir.join("study");
    let mut args = vec![
        "run",
        "scenarios/knowledge_platform.toml",
        "--quiet",
        "--out",
    ];
    args.push(out.to_str().unwrap());
    args.extend(SMALL);
    let output = succeed(&args);
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("active_payers") && stdout.contains("user-days/s"),
        "{stdout}"
    );

    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["replications"], 4);
    assert_eq!(summary["population"], 2000);
    assert_eq!(summary["days"], 30);
    for metric in brandsim::metrics::METRIC_NAMES {
        let m = &summary["metrics"][metric];
        for key in ["mean", "sd", "se", "p05", "p50", "p95"] {
            assert!(m[key].is_number(), "{metric}.{key} in {m}");
        }
        assert_eq!(m["ci95"].as_array().unwrap().len(), 2);
    }
    assert!(
        summary["throughput"]["user_days_per_second"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert_eq!(summary["throughput"]["user_days"], 2000.0 * 30.0 * 4.0);
    if cfg!(target_os = "linux") {
        // The memory before simulating is part of the peak, so the users'
        // share of the peak is smaller than the whole peak per user.
        let memory = &summary["throughput"];
        let (peak, start) = (
            memory["peak_memory_bytes"].as_f64().unwrap(),
            memory["start_memory_bytes"].as_f64().unwrap(),
        );
        assert!(0.0 < start && start <= peak, "{memory}");
        let per_user = memory["peak_memory_bytes_per_user"].as_f64().unwrap();
        let above_start = memory["peak_memory_bytes_per_user_above_start"]
            .as_f64()
            .unwrap();
        assert!(above_start <= per_user, "{memory}");
        assert!(stdout.contains("before simulating"), "{stdout}");
    }

    let replications = std::fs::read_to_string(out.join("replications.csv")).unwrap();
    let mut lines = replications.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("replication,exposures,clicks")
    );
    assert_eq!(lines.count(), 4);
    let daily = std::fs::read_to_string(out.join("daily.csv")).unwrap();
    assert!(
        daily.lines().next().unwrap().starts_with(
            "day,exposures_mean,exposures_p05,exposures_p50,exposures_p95,clicks_mean"
        )
    );
    assert_eq!(daily.lines().count(), 31);
    let resolved = std::fs::read_to_string(out.join("scenario.toml")).unwrap();
    assert!(resolved.contains("population = 2000"), "{resolved}");
}

#[test]
fn json_flag_prints_the_summary_and_results_repeat_exactly() {
    let dir = Scratch::new("json");
    let run = |name: &str, threads: &str| {
        let out = dir.join(name);
        let mut args = vec!["run", "scenarios/knowledge_platform.toml", "--json", "-q"];
        args.extend(["--threads", threads, "--out", out.to_str().unwrap()]);
        args.extend(SMALL);
        json_of(&args)["metrics"].clone()
    };
    assert_eq!(run("a", "1"), run("b", "2"));
}

#[test]
fn validate_summarises_each_bundled_scenario() {
    let files: Vec<String> = std::fs::read_dir("scenarios")
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".toml"))
        .collect();
    let mut args = vec!["validate"];
    args.extend(files.iter().map(String::as_str));
    let stdout = text(&succeed(&args).stdout);
    assert_eq!(stdout.lines().count(), files.len());
    assert!(stdout.contains("population 100000"), "{stdout}");
}

/// Writes `scenario` with `edit` applied to the bundled knowledge-platform file.
fn malformed(dir: &Path, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let base = std::fs::read_to_string("scenarios/knowledge_platform.toml").unwrap();
    let edited = edit(base.clone());
    assert_ne!(edited, base, "case {name} must change the file");
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, edited).unwrap();
    path
}

fn replace_first(from: &'static str, to: &'static str) -> impl Fn(String) -> String {
    move |s: String| s.replacen(from, to, 1)
}

#[test]
fn malformed_scenarios_exit_2_with_key_path_and_write_nothing() {
    let dir = Scratch::new("malformed");
    type Edit = Box<dyn Fn(String) -> String>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "unknown_top_key",
            Box::new(|s| format!("colour = \"red\"\n{s}")),
            "colour",
        ),
        (
            "unknown_nested_key",
            Box::new(replace_first("[brand]\n", "[brand]\ncolour = 1\n")),
            "brand.colour",
        ),
        (
            "missing_key",
            Box::new(|s| remove_line(&s, "cost_per_day")),
            "brand.cost_per_day",
        ),
        (
            "population_zero",
            Box::new(|s| set_line(&s, "population", "0")),
            "market.population",
        ),
        (
            "population_float",
            Box::new(|s| set_line(&s, "population", "1000.5")),
            "market.population",
        ),
        (
            "days_string",
            Box::new(|s| set_line(&s, "days", "\"ten\"")),
            "simulation.days",
        ),
        (
            "seed_negative",
            Box::new(|s| set_line(&s, "seed", "-1")),
            "simulation.seed",
        ),
        (
            "dormancy_above_one",
            Box::new(|s| set_line(&s, "dormancy", "1.5")),
            "market.dormancy",
        ),
        (
            "nan_value",
            Box::new(|s| set_line(&s, "word_of_mouth", "nan")),
            "market.word_of_mouth",
        ),
        (
            "infinite_value",
            Box::new(|s| set_line(&s, "value", "inf")),
            "brand.value",
        ),
        (
            "topic_match_negative",
            Box::new(|s| set_line(&s, "topic_match", "-0.1")),
            "brand.topic_match",
        ),
        (
            "cpm_zero",
            Box::new(|s| set_line(&s, "cpm", "0")),
            "channels[0].cpm",
        ),
        (
            "shares_do_not_sum",
            Box::new(|s| set_line(&s, "share", "0.99")),
            "share",
        ),
        (
            "syntax_error",
            Box::new(|s| format!("{s}\n[brand\n")),
            "syntax error",
        ),
    ];
    for (name, edit, expected) in cases {
        let path = malformed(&dir, name, edit);
        let out = dir.join(format!("{name}-out"));
        let output = brandsim(&[
            "run",
            path.to_str().unwrap(),
            "-q",
            "--out",
            out.to_str().unwrap(),
        ]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{name}: expected {expected:?} in {stderr}"
        );
        assert!(
            stderr.contains(&format!("{name}.toml")),
            "{name}: file not named in {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert!(!out.exists(), "{name}: wrote {}", out.display());
        let validate = brandsim(&["validate", path.to_str().unwrap()]);
        assert_eq!(
            validate.status.code(),
            Some(2),
            "{name}: validate accepted it"
        );
    }
}

#[test]
fn bad_set_override_exits_2_and_writes_nothing() {
    let dir = Scratch::new("bad-set");
    for (set, expected) in [
        ("channels.tv.daily_budget=10", "tv"),
        ("brand.colour=1", "brand.colour"),
        ("market.population=-5", "market.population"),
        ("simulation.days=2.5", "simulation.days"),
        ("no-equals-sign", "KEY=VALUE"),
    ] {
        let out = dir.join("out");
        let output = brandsim(&[
            "run",
            "scenarios/knowledge_platform.toml",
            "-q",
            "--set",
            set,
            "--out",
            out.to_str().unwrap(),
        ]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "--set {set}: {stderr}");
        assert!(
            stderr.contains(expected),
            "--set {set}: expected {expected:?} in {stderr}"
        );
        assert!(!out.exists());
    }
    let missing = brandsim(&["run", "no/such/file.toml", "-q"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("no/such/file.toml"));
}

/// Replaces the value of the first line `key = ...`.
fn set_line(s: &str, key: &str, value: &str) -> String {
    let mut done = false;
    s.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if !done
                && (trimmed.starts_with(&format!("{key} "))
                    || trimmed.starts_with(&format!("{key}=")))
            {
                done = true;
                format!("{key} = {value}")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Removes the first line `key = ...`.
fn remove_line(s: &str, key: &str) -> String {
    let mut done = false;
    s.lines()
        .filter(|line| {
            let hit = !done && line.trim_start().starts_with(&format!("{key} "));
            done |= hit;
            !hit
        })
        .collect::<Vec<_>>()
        .join("\n")
}

//! What-if studies end to end: sweeps on common random numbers, paired strategy
//! comparisons, plots, adaptive precision, and bad `--vary` / `[[variants]]` input.

mod common;

use std::path::Path;

use brandsim::scenario::load_file;
use common::{Scratch, assert_refused_writing_nothing, brandsim, json_of, succeed, text};

const SMALL: [&str; 6] = [
    "--set",
    "market.population=2000",
    "--set",
    "simulation.days=30",
    "--replications",
    "6",
];

/// The knowledge-platform scenario with `extra` appended, written to `dir`.
fn with_variants(dir: &Scratch, name: &str, extra: &str) -> String {
    let base = std::fs::read_to_string("scenarios/knowledge_platform.toml").unwrap();
    let path = dir.arg(name);
    std::fs::write(&path, format!("{base}\n{extra}")).unwrap();
    path
}

#[test]
fn sweep_grid_points_share_seeds_so_an_inert_key_gives_identical_metrics() {
    let dir = Scratch::new("inert");
    let out = dir.arg("sweep");
    let mut args = vec!["sweep", "scenarios/knowledge_platform.toml", "-q", "--json"];
    // The optimiser's learning rate does not enter a simulation.
    args.extend(["--vary", "optimize.learning_rate=0.5:2:0.5", "--out", &out]);
    args.extend(SMALL);
    let json = json_of(&args);
    let points = json["points"].as_array().unwrap();
    assert_eq!(points.len(), 4);
    assert_eq!(
        json["axes"][0]["values"],
        serde_json::json!([0.5, 1.0, 1.5, 2.0])
    );
    for point in points {
        assert_eq!(point["metrics"], points[0]["metrics"]);
    }
    let csv = std::fs::read_to_string(Path::new(&out).join("sweep.csv")).unwrap();
    assert!(
        csv.starts_with("optimize.learning_rate,exposures_mean,exposures_ci_low,exposures_ci_high")
    );
    assert_eq!(csv.lines().count(), 5);
}

#[test]
fn a_forced_sweep_replaces_the_old_one_without_leaving_its_extra_points() {
    let dir = Scratch::new("forced");
    let out = dir.arg("sweep");
    let sweep = |values: &str, extra: &[&str]| {
        let mut args = vec![
            "sweep",
            "scenarios/bass.toml",
            "-q",
            "--json",
            "--out",
            &out,
        ];
        args.extend(["--vary", values, "--set", "market.population=500"]);
        args.extend(["--replications", "2"]);
        args.extend(extra);
        json_of(&args)
    };
    sweep("brand.value=0,0.5,1", &[]);
    let points = Path::new(&out).join("points");
    assert!(points.join("2").join("study.json").is_file());
    let json = sweep("brand.value=0,1", &["--force"]);
    assert_eq!(json["points"].as_array().unwrap().len(), 2);
    let mut left: Vec<String> = std::fs::read_dir(&points)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["0", "1"]);
    // The directory holds one study, which resumes as such.
    let resumed = json_of(&[
        "sweep",
        "scenarios/bass.toml",
        "-q",
        "--json",
        "--resume",
        &out,
        "--vary",
        "brand.value=0,1",
        "--set",
        "market.population=500",
        "--replications",
        "2",
    ]);
    assert_eq!(resumed["points"], json["points"]);
}

#[test]
fn sweep_of_an_effective_key_moves_the_metric_and_keeps_integer_keys_integer() {
    let dir = Scratch::new("effective");
    let out = dir.arg("sweep");
    let mut args = vec!["sweep", "scenarios/knowledge_platform.toml", "-q", "--json"];
    args.extend([
        "--vary",
        "brand.value=0,1",
        "--vary",
        "market.population=1000:2000:1000",
    ]);
    args.extend([
        "--out",
        &out,
        "--replications",
        "4",
        "--set",
        "simulation.days=30",
    ]);
    let json = json_of(&args);
    let points = json["points"].as_array().unwrap();
    assert_eq!(points.len(), 4);
    let registrations = |i: usize| {
        points[i]["metrics"]["registrations"]["mean"]
            .as_f64()
            .unwrap()
    };
    // Points are (V, N) = (0, 1000), (0, 2000), (1, 1000), (1, 2000).
    assert!(registrations(2) > registrations(0) && registrations(3) > registrations(1));
    assert!(registrations(1) > registrations(0));
    assert!(Path::new(&out).join("heatmap-profit.svg").exists());
}

#[test]
fn paired_ci_of_a_variant_identical_to_the_base_is_exactly_zero() {
    let dir = Scratch::new("identical");
    let file = with_variants(
        &dir,
        "same.toml",
        "[[variants]]\nname = \"same\"\nset = { \"brand.value\" = 0.0 }\n\n[[variants]]\nname = \"nothing-set\"\nset = {}\n",
    );
    let out = dir.arg("compare");
    let mut args = vec!["compare", &file, "-q", "--json", "--out", &out];
    args.extend(SMALL);
    let json = json_of(&args);
    let arms = json["arms"].as_array().unwrap();
    assert_eq!(arms.len(), 3);
    assert_eq!(arms[0]["name"], "knowledge_platform");
    for arm in &arms[1..] {
        for metric in brandsim::metrics::METRIC_NAMES {
            let d = &arm["metrics"][metric]["paired_difference"];
            assert_eq!(d["mean"], 0.0, "{metric}");
            assert_eq!(d["ci95"], serde_json::json!([0.0, 0.0]), "{metric}");
            assert_eq!(d["se_paired"], 0.0, "{metric}");
        }
    }
}

#[test]
fn pairing_shrinks_the_standard_error_of_a_real_change() {
    let dir = Scratch::new("pairing");
    let out = dir.arg("compare");
    let mut args = vec!["compare", "scenarios/strategies.toml", "-q", "--json"];
    args.extend(["--metric", "active_payers", "--out", &out]);
    args.extend(SMALL);
    let json = json_of(&args);
    assert_eq!(json["ranking_metric"], "active_payers");
    let arms = json["arms"].as_array().unwrap();
    let names: Vec<&str> = arms.iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "strategies",
            "kol-heavy",
            "price-cut",
            "brand-investment",
            "double-ads"
        ]
    );
    let brand = &arms[3]["metrics"];
    for metric in ["active_payers", "revenue", "registrations"] {
        let d = &brand[metric]["paired_difference"];
        let (paired, unpaired) = (
            d["se_paired"].as_f64().unwrap(),
            d["se_unpaired"].as_f64().unwrap(),
        );
        assert!(
            paired > 0.0 && paired < unpaired,
            "{metric}: {paired} vs {unpaired}"
        );
        // V = 0.5 raises them all well beyond the noise.
        assert!(d["ci95"][0].as_f64().unwrap() > 0.0, "{metric}: {d}");
    }
    assert_eq!(json["ranking"][0], "brand-investment");
}

#[test]
fn several_files_are_compared_on_the_first_files_seed() {
    let dir = Scratch::new("files");
    let out = dir.arg("compare");
    let mut args = vec![
        "compare",
        "scenarios/knowledge_platform.toml",
        "scenarios/kol_heavy.toml",
        "scenarios/strategies.toml",
        "-q",
        "--json",
        "--seed",
        "5",
        "--out",
        &out,
    ];
    args.extend(SMALL);
    let json = json_of(&args);
    assert_eq!(json["seed"], 5);
    let arms = json["arms"].as_array().unwrap();
    assert_eq!(arms.len(), 2 + 5);
    // strategies.toml's own scenario is the base market: identical to the first file.
    let d = &arms[2]["metrics"]["profit"]["paired_difference"];
    assert_eq!(d["ci95"], serde_json::json!([0.0, 0.0]));
    // Its kol-heavy variant is kol_heavy.toml: the same outcomes, replication by
    // replication, so the same summaries and differences from the base.
    // Arms of several files say which file they come from.
    assert_eq!(arms[3]["name"], "scenarios/strategies.toml: kol-heavy");
    assert_eq!(arms[3]["metrics"], arms[1]["metrics"]);
}

/// Parses an SVG document; panics if it is not one.
fn assert_valid_svg(path: &Path) -> String {
    let svg = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let options = resvg::usvg::Options::default();
    resvg::usvg::Tree::from_str(&svg, &options)
        .unwrap_or_else(|e| panic!("{} is not valid SVG: {e}", path.display()));
    svg
}

#[test]
fn plots_are_valid_svg_with_titles_and_series_names() {
    let dir = Scratch::new("plots");
    let run = dir.arg("run");
    let mut args = vec![
        "run",
        "scenarios/knowledge_platform.toml",
        "-q",
        "--out",
        &run,
    ];
    args.extend(SMALL);
    succeed(&args);
    for (series, title) in [
        ("active_payers", "active payers"),
        ("registrations", "registrations"),
        ("revenue", "revenue"),
        ("cumulative_profit", "cumulative profit"),
    ] {
        let svg = assert_valid_svg(&Path::new(&run).join(format!("fan-{series}.svg")));
        let expected = format!("knowledge_platform: {title} (mean, 5-95% band, 6 replications)");
        assert!(
            svg.contains(&expected),
            "fan-{series}.svg lacks {expected:?}"
        );
        for label in ["mean", "5-95% band", "day"] {
            assert!(
                svg.contains(&format!(">\n{label}\n<")),
                "fan-{series}.svg lacks {label}"
            );
        }
    }

    let sweep = dir.arg("sweep");
    let mut args = vec![
        "sweep",
        "scenarios/knowledge_platform.toml",
        "-q",
        "--out",
        &sweep,
    ];
    args.extend([
        "--vary",
        "brand.value=0:0.5:0.25",
        "--metric",
        "profit",
        "--metric",
        "funnel",
    ]);
    args.extend(SMALL);
    succeed(&args);
    let svg = assert_valid_svg(&Path::new(&sweep).join("sweep-profit.svg"));
    assert!(
        svg.contains("knowledge_platform: profit vs brand.value (mean, 95% CI, 6 replications)")
    );
    assert!(svg.contains("profit (currency)") && svg.contains("95% CI"));
    assert_valid_svg(&Path::new(&sweep).join("sweep-funnel.svg"));
    assert!(!Path::new(&sweep).join("sweep-revenue.svg").exists());

    let compare = dir.arg("compare");
    let mut args = vec![
        "compare",
        "scenarios/strategies.toml",
        "-q",
        "--out",
        &compare,
    ];
    args.extend(SMALL);
    succeed(&args);
    let svg = assert_valid_svg(&Path::new(&compare).join("compare-profit.svg"));
    assert!(svg.contains("strategies: profit, each strategy minus strategies"));
    for name in [
        "kol-heavy",
        "price-cut",
        "brand-investment",
        "double-ads",
        "paired difference (mean)",
    ] {
        assert!(svg.contains(name), "compare-profit.svg lacks {name}");
    }
}

#[test]
fn png_plots_are_written_on_request_and_no_plots_on_demand() {
    let dir = Scratch::new("png");
    let out = dir.arg("run");
    let mut args = vec![
        "run",
        "scenarios/bass.toml",
        "-q",
        "--plot-format",
        "png",
        "--out",
        &out,
    ];
    args.extend(SMALL);
    succeed(&args);
    let png = std::fs::read(Path::new(&out).join("fan-revenue.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(!Path::new(&out).join("fan-revenue.svg").exists());

    let out = dir.arg("none");
    let mut args = vec![
        "run",
        "scenarios/bass.toml",
        "-q",
        "--no-plots",
        "--out",
        &out,
    ];
    args.extend(SMALL);
    succeed(&args);
    assert!(!Path::new(&out).join("fan-revenue.svg").exists());
    assert!(Path::new(&out).join("summary.json").exists());
}

#[test]
fn precision_run_reports_its_replications_and_equals_a_plain_run() {
    let dir = Scratch::new("precision");
    let precise = dir.arg("precise");
    let args = [
        "run",
        "scenarios/knowledge_platform.toml",
        "-q",
        "--json",
        "--out",
        &precise,
        "--set",
        "market.population=2000",
        "--set",
        "simulation.days=30",
        "--replications",
        "3",
        "--precision",
        "0.01",
        "--max-replications",
        "24",
        "--metric",
        "registrations",
        "--metric",
        "profit",
    ];
    let json = json_of(&args);
    let n = json["replications"].as_u64().unwrap();
    assert_eq!(json["precision"]["replications"], n);
    assert!(json["precision"]["batches"].as_u64().unwrap() >= 2);
    let reached = json["precision"]["reached"].as_bool().unwrap();
    assert!(reached || n == 24, "{}", json["precision"]);
    for m in json["precision"]["metrics"].as_array().unwrap() {
        let relative = m["relative_half_width"].as_f64().unwrap();
        assert_eq!(m["reached"].as_bool().unwrap(), relative < 0.01, "{m}");
    }

    let plain = dir.arg("plain");
    let n = n.to_string();
    let args = [
        "run",
        "scenarios/knowledge_platform.toml",
        "-q",
        "--json",
        "--out",
        &plain,
        "--set",
        "market.population=2000",
        "--set",
        "simulation.days=30",
        "--replications",
        &n,
    ];
    let plain_json = json_of(&args);
    assert_eq!(plain_json["metrics"], json["metrics"]);
    let csv = |dir: &str| std::fs::read_to_string(Path::new(dir).join("replications.csv")).unwrap();
    assert_eq!(csv(&precise), csv(&plain));
}

#[test]
fn variants_load_and_leave_the_base_scenario_unchanged() {
    let (strategies, _) = load_file(Path::new("scenarios/strategies.toml"), &[]).unwrap();
    let (main, _) = load_file(Path::new("scenarios/knowledge_platform.toml"), &[]).unwrap();
    let names: Vec<&str> = strategies
        .variants
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["kol-heavy", "price-cut", "brand-investment", "double-ads"]
    );
    assert_eq!(strategies.variants[2].set[0].key, "brand.value");
    let mut base = strategies.clone();
    base.name = main.name.clone();
    base.variants.clear();
    assert_eq!(base, main);
}

/// Runs a command that must fail with exit code 2 and a message containing every
/// one of `expected`, writing nothing to `out`.
fn assert_rejected(args: &[&str], out: &str, expected: &[&str]) {
    assert_refused_writing_nothing(&brandsim(args), &args, expected, Path::new(out));
}

#[test]
fn bad_vary_keys_and_values_exit_2_with_a_clear_message() {
    let dir = Scratch::new("bad-vary");
    let out = dir.arg("never");
    let sweep = |vary: &'static str| -> Vec<String> {
        let mut args: Vec<String> = ["sweep", "scenarios/knowledge_platform.toml", "-q", "--out"]
            .map(String::from)
            .to_vec();
        args.push(out.clone());
        args.extend(["--vary".to_string(), vary.to_string()]);
        args.extend(SMALL.map(String::from));
        args
    };
    for (vary, expected) in [
        (
            "brand.colour=0:1:0.5",
            &["brand.colour", "unknown key \"colour\""][..],
        ),
        (
            "channels.tv.daily_budget=1,2",
            &["no channel named \"tv\"", "channels are: ads, seo"],
        ),
        (
            "market.population=0,100",
            &[
                "market.population",
                "expected an integer in [1",
                "(from --vary)",
            ],
        ),
        (
            "channels.kol.daily_budget=-10:10:10",
            &[
                "channels.kol.daily_budget",
                "expected a number >= 0",
                "found -10",
            ],
        ),
        (
            "optimize.estimator=1,2",
            &["optimize.estimator", "expected one of"],
        ),
        (
            "brand.value=low,high",
            &[
                "--vary \"brand.value=low,high\"",
                "expected a finite number",
            ],
        ),
        ("brand.value=0:1:0", &["STEP must not be 0"]),
        ("brand.value", &["expected KEY=START:STOP:STEP"]),
    ] {
        let args = sweep(vary);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_rejected(&args, &out, expected);
    }
    let mut args = sweep("brand.value=0,1");
    args.extend(["--vary".into(), "brand.value=2,3".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_rejected(&args, &out, &["varied twice"]);
    let mut args = sweep("brand.value=0,1");
    args.extend(["--metric".into(), "happiness".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_rejected(&args, &out, &["--metric \"happiness\"", "unknown metric"]);
}

#[test]
fn bad_variant_sets_exit_2_naming_the_variant_key_and_line() {
    let dir = Scratch::new("bad-variants");
    let out = dir.arg("never");
    let base_lines = std::fs::read_to_string("scenarios/knowledge_platform.toml")
        .unwrap()
        .lines()
        .count();
    let cases: [(&str, &[&str]); 6] = [
        (
            "[[variants]]\nname = \"tv\"\nset = { \"channels.tv.daily_budget\" = 100.0 }\n",
            &[
                r#"variants[0].set."channels.tv.daily_budget""#,
                "no channel named \"tv\"",
            ],
        ),
        (
            "[[variants]]\nname = \"ok\"\nset = {}\n[[variants]]\nname = \"neg\"\nset = { \"channels.kol.daily_budget\" = -5.0 }\n",
            &[
                r#"variants[1].set."channels.kol.daily_budget""#,
                "expected a number >= 0, found -5.0",
            ],
        ),
        (
            "[[variants]]\nname = \"share\"\nset = { \"market.segments.students.share\" = 0.9 }\n",
            &["variants[0].set", "segment shares sum to"],
        ),
        (
            "[[variants]]\nname = \"a\"\nset = {}\n[[variants]]\nname = \"a\"\nset = {}\n",
            &["variants[1].name", "duplicate variant name \"a\""],
        ),
        (
            "[[variants]]\nname = \"no-set\"\n",
            &["variants[0].set", "missing required key \"set\""],
        ),
        (
            "[[variants]]\nname = \"x\"\nset = {}\ncolour = \"red\"\n",
            &["variants[0].colour", "unknown key \"colour\""],
        ),
    ];
    for (i, (extra, expected)) in cases.iter().enumerate() {
        let file = with_variants(&dir, &format!("bad{i}.toml"), extra);
        let args = ["compare", file.as_str(), "-q", "--out", &out];
        assert_rejected(&args, &out, expected);
        let args = ["validate", file.as_str()];
        assert_rejected(&args, &out, expected);
    }
    // The line of the offending `set` is reported.
    let file = with_variants(
        &dir,
        "line.toml",
        "[[variants]]\nname = \"tv\"\nset = { \"channels.tv.daily_budget\" = 1.0 }\n",
    );
    let stderr = text(&brandsim(&["validate", &file]).stderr);
    assert!(
        stderr.contains(&format!("line.toml:{}:", base_lines + 4)),
        "{stderr}"
    );

    let args = ["compare", "scenarios/bass.toml", "-q", "--out", &out];
    assert_rejected(&args, &out, &["nothing to compare", "no [[variants]]"]);
    let args = [
        "run",
        "scenarios/bass.toml",
        "-q",
        "--out",
        &out,
        "--set",
        "variants.x=1",
    ];
    assert_rejected(&args, &out, &["variants cannot be set with --set"]);
    let args = [
        "run",
        "scenarios/bass.toml",
        "-q",
        "--out",
        &out,
        "--precision",
        "0",
    ];
    assert_rejected(
        &args,
        &out,
        &["--precision 0", "expected a relative CI half-width > 0"],
    );
}

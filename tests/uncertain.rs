//! `[[uncertain]]` end to end (MODEL.md version 2, "Parameter uncertainty";
//! issue 16): a study's spread is the mixture of runs at fixed values, the
//! draws of replication `j` are shared by every arm and sweep point that does
//! not set the key, and `compare`'s probability of beating the base is the
//! share of paired replications.

mod common;

use std::path::Path;
use std::sync::Arc;

use brandsim::engine::simulate;
use brandsim::scenario::parse_str;
use common::{Scratch, read_json, succeed};

const UNCERTAIN_WORD_OF_MOUTH: &str = r#"
[[uncertain]]
key = "market.word_of_mouth"
distribution = "normal"
mean = 0.3
sd = 0.05
"#;

/// Mean and sample sd.
fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

#[test]
fn run_with_uncertain_word_of_mouth_has_the_mean_and_spread_of_the_mixture_of_fixed_runs() {
    let base = std::fs::read_to_string("scenarios/bass.toml").unwrap();
    let mut scenario = parse_str(&format!("{base}{UNCERTAIN_WORD_OF_MOUTH}"), "bass.toml").unwrap();
    // p = 1000·B/cpm/N = 0.01 per day as in the file, on 2000 users.
    scenario.market.population = 2000;
    scenario.channels[0].daily_budget = 0.2;
    scenario.simulation.days = 15;
    let aware = |scenario: &Arc<_>, replications: std::ops::Range<u32>| -> Vec<f64> {
        replications
            .map(|j| simulate(scenario, j).aware as f64)
            .collect()
    };
    let uncertain = Arc::new(scenario.clone());
    let r = 600;
    let (mean, sd) = mean_sd(&aware(&uncertain, 0..r));

    // The mixture by 5-point Gauss–Hermite quadrature over q ~ Normal(0.3,
    // 0.05) (the truncation at 0 is 6 sd away): runs at each fixed node, on
    // replications other than the uncertain run's.
    let nodes = [
        (0.0, 0.945_308_720_482_941_9),
        (0.958_572_464_613_818_5, 0.393_619_323_152_241_2),
        (-0.958_572_464_613_818_5, 0.393_619_323_152_241_2),
        (2.020_182_870_456_085_6, 0.019_953_242_059_045_9),
        (-2.020_182_870_456_085_6, 0.019_953_242_059_045_9),
    ];
    let per_node = 200;
    let (mut mixture_mean, mut mixture_square, mut mean_variance) = (0.0, 0.0, 0.0);
    for (k, (x, w)) in nodes.into_iter().enumerate() {
        let weight = w / std::f64::consts::PI.sqrt();
        let mut fixed = scenario.clone();
        fixed.uncertain.clear();
        fixed.market.word_of_mouth = 0.3 + 0.05 * std::f64::consts::SQRT_2 * x;
        let first = 10_000 + k as u32 * per_node;
        let (m, s) = mean_sd(&aware(&Arc::new(fixed), first..first + per_node));
        mixture_mean += weight * m;
        mixture_square += weight * (s * s + m * m);
        mean_variance += weight * weight * s * s / f64::from(per_node);
    }
    let mixture_sd = (mixture_square - mixture_mean * mixture_mean).sqrt();
    let se_mean = (sd * sd / f64::from(r) + mean_variance).sqrt();
    assert!(
        (mean - mixture_mean).abs() < 5.0 * se_mean,
        "mean aware {mean}, mixture {mixture_mean} ± {}",
        5.0 * se_mean
    );
    // The sd of a sample of r has a relative standard error of about
    // 1/√(2r); the mixture's own estimate adds about as much again.
    let se_sd =
        mixture_sd * (1.0 / (2.0 * f64::from(r)) + 1.0 / (2.0 * f64::from(per_node))).sqrt();
    assert!(
        (sd - mixture_sd).abs() < 5.0 * se_sd,
        "sd of aware {sd}, mixture {mixture_sd} ± {}",
        5.0 * se_sd
    );
    // Parameter uncertainty widens the band well beyond the Monte Carlo noise.
    let mut fixed = scenario.clone();
    fixed.uncertain.clear();
    let (_, sd_fixed) = mean_sd(&aware(&Arc::new(fixed), 0..200));
    assert!(
        sd > 3.0 * sd_fixed,
        "sd {sd} with uncertainty, {sd_fixed} without"
    );
}

/// The drawn `(key, value)` pairs of every outcome file in `outcomes`, in
/// replication order.
fn drawn_values(outcomes: &Path) -> Vec<Vec<(String, f64)>> {
    let mut files: Vec<_> = std::fs::read_dir(outcomes)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|file| {
            // An outcome file holds the outcome under `outcome`, beside its
            // format, scenario hash and checksum.
            let outcome = read_json(file);
            outcome["outcome"]["uncertain"]
                .as_array()
                .map(|pairs| {
                    pairs
                        .iter()
                        .map(|pair| {
                            (
                                pair[0].as_str().unwrap().to_string(),
                                pair[1].as_f64().unwrap(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect()
}

const TWO_UNCERTAIN: &str = r#"
[[uncertain]]
key = "market.word_of_mouth"
distribution = "normal"
mean = 0.3
sd = 0.1

[[uncertain]]
key = "channels.ads.cpm"
distribution = "triangular"
low = 5.0
mode = 10.0
high = 20.0

[[variants]]
name = "brand"
set = { "brand.value" = 0.5 }

[[variants]]
name = "known-wom"
set = { "market.word_of_mouth" = 0.45 }
"#;

const SMALL: [&str; 6] = [
    "-q",
    "--no-plots",
    "--set",
    "market.population=1500",
    "--set",
    "simulation.days=30",
];

fn scenario_file(dir: &Scratch) -> String {
    let base = std::fs::read_to_string("scenarios/knowledge_platform.toml").unwrap();
    let file = dir.arg("u.toml");
    std::fs::write(&file, format!("{base}{TWO_UNCERTAIN}")).unwrap();
    file
}

#[test]
fn replication_j_draws_the_same_values_in_every_arm_and_sweep_point_unless_it_sets_the_key() {
    let dir = Scratch::new("same-draws");
    let file = scenario_file(&dir);
    let compare = dir.join("compare");
    let mut args = vec!["compare", &file, "--out", compare.to_str().unwrap()];
    args.extend(SMALL);
    args.extend(["-r", "5"]);
    succeed(&args);
    let base = drawn_values(&compare.join("arms/0/outcomes"));
    assert_eq!(base.len(), 5);
    assert!(base.iter().all(|values| values.len() == 2));
    // Different replications draw different values.
    assert_ne!(base[0], base[1]);
    assert_eq!(drawn_values(&compare.join("arms/1/outcomes")), base);
    // The arm that sets word_of_mouth fixes it; the cpm draws stay those of
    // the base.
    let known = drawn_values(&compare.join("arms/2/outcomes"));
    let cpm_only: Vec<Vec<(String, f64)>> = base.iter().map(|v| vec![v[1].clone()]).collect();
    assert_eq!(known, cpm_only);
    assert!(
        std::fs::read_to_string(compare.join("arm-2.toml"))
            .unwrap()
            .contains("fixed = true")
    );

    let sweep = dir.join("sweep");
    let mut args = vec![
        "sweep",
        &file,
        "--vary",
        "brand.value=0,0.5,1",
        "--out",
        sweep.to_str().unwrap(),
    ];
    args.extend(SMALL);
    args.extend(["-r", "5"]);
    succeed(&args);
    for point in 0..3 {
        assert_eq!(
            drawn_values(&sweep.join(format!("points/{point}/outcomes"))),
            base,
            "sweep point {point}"
        );
    }
    let sweep = dir.join("sweep-wom");
    let mut args = vec![
        "sweep",
        &file,
        "--vary",
        "market.word_of_mouth=0.1,0.2",
        "--out",
        sweep.to_str().unwrap(),
    ];
    args.extend(SMALL);
    args.extend(["-r", "5"]);
    succeed(&args);
    assert_eq!(drawn_values(&sweep.join("points/1/outcomes")), cpm_only);

    // A --set of the key fixes it in run, and replications.csv records the
    // drawn values of the others.
    let run = dir.join("run");
    let mut args = vec!["run", &file, "--out", run.to_str().unwrap()];
    args.extend(SMALL);
    args.extend(["-r", "5", "--set", "market.word_of_mouth=0.2"]);
    succeed(&args);
    let table = std::fs::read_to_string(run.join("replications.csv")).unwrap();
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header.last(), Some(&"channels.ads.cpm"));
    assert!(!header.contains(&"market.word_of_mouth"));
    for (j, line) in lines.enumerate() {
        let cpm: f64 = line.rsplit(',').next().unwrap().parse().unwrap();
        assert_eq!(cpm, base[j][1].1, "replication {j}");
    }
    // summary.json says what was drawn and what the --set fixed.
    let summary = read_json(&run.join("summary.json"));
    let uncertain = summary["uncertain"].as_array().unwrap();
    assert_eq!(uncertain[0]["key"], "market.word_of_mouth");
    assert_eq!(uncertain[0]["drawn"], false);
    assert_eq!(uncertain[1]["drawn"], true);
    assert_eq!(uncertain[1]["distribution"], "triangular(5, mode 10, 20)");
}

#[test]
fn probability_of_beating_the_base_is_the_share_from_the_arms_replications() {
    let dir = Scratch::new("p-beats");
    let file = scenario_file(&dir);
    let compare = dir.join("compare");
    let mut args = vec![
        "compare",
        &file,
        "--out",
        compare.to_str().unwrap(),
        "--metric",
        "profit",
    ];
    args.extend(SMALL);
    args.extend(["-r", "12"]);
    succeed(&args);
    let report = read_json(&compare.join("compare.json"));
    let profit = |dir: &Path| -> Vec<f64> {
        let table = std::fs::read_to_string(dir.join("replications.csv")).unwrap();
        let mut lines = table.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let column = header.iter().position(|&h| h == "profit").unwrap();
        lines
            .map(|line| line.split(',').nth(column).unwrap().parse().unwrap())
            .collect()
    };
    // Each arm's resolved scenario, run on its own, gives its replications.
    let mut per_arm = Vec::new();
    for arm in 0..3 {
        let out = dir.join(format!("run-{arm}"));
        let toml = compare.join(format!("arm-{arm}.toml"));
        succeed(&[
            "run",
            toml.to_str().unwrap(),
            "-q",
            "--no-plots",
            "--out",
            out.to_str().unwrap(),
        ]);
        per_arm.push(profit(&out));
    }
    for arm in 1..3 {
        let wins = per_arm[arm]
            .iter()
            .zip(&per_arm[0])
            .filter(|(a, b)| a > b)
            .count();
        let share = wins as f64 / per_arm[0].len() as f64;
        let d = &report["arms"][arm]["metrics"]["profit"]["paired_difference"];
        assert_eq!(d["p_beats_base"].as_f64(), Some(share), "arm {arm}");
        let interval = d["p_beats_base_ci95"].as_array().unwrap();
        let (low, high) = (interval[0].as_f64().unwrap(), interval[1].as_f64().unwrap());
        assert!(low <= share && share <= high);
    }
}

/// MODEL.md version 2, "Parameter uncertainty": the draw replaces the base value
/// before day 0, and a campaign that sets the key still wins on its days. So a
/// replication of the uncertain scenario is, bit for bit, the same replication of
/// the scenario with the drawn value written in (campaign kept), and it differs
/// from the run without the campaign from the campaign's first day on only.
#[test]
fn a_campaign_that_sets_an_uncertain_key_wins_on_its_days() {
    let base = std::fs::read_to_string("scenarios/bass.toml").unwrap();
    let campaign = "[[campaigns]]\nname = \"quiet\"\nstart = 10\nend = 19\n\
                    set = { \"market.word_of_mouth\" = 0.0 }\n";
    let parse = |text: &str| {
        let mut scenario = parse_str(text, "bass.toml").unwrap_or_else(|e| panic!("{e}"));
        scenario.market.population = 2000;
        scenario.channels[0].daily_budget = 0.2;
        scenario.simulation.days = 30;
        scenario
    };
    let uncertain = Arc::new(parse(&format!(
        "{base}{UNCERTAIN_WORD_OF_MOUTH}\n{campaign}"
    )));
    let series = |outcome: &brandsim::outcome::Outcome| -> Vec<Vec<f64>> {
        (0..outcome.daily.days())
            .map(|day| {
                brandsim::metrics::SERIES_NAMES
                    .iter()
                    .map(|name| outcome.daily.value(name, day))
                    .collect()
            })
            .collect()
    };
    for j in 0..4 {
        let outcome = simulate(&uncertain, j);
        assert_eq!(outcome.uncertain.len(), 1);
        let drawn = outcome.uncertain[0].1;
        assert!(drawn > 0.0, "replication {j} drew {drawn}");

        let mut at_draw = parse(&format!("{base}\n{campaign}"));
        at_draw.market.word_of_mouth = drawn;
        let at_draw = simulate(&Arc::new(at_draw), j);
        assert_eq!(series(&outcome), series(&at_draw), "replication {j}");
        let bits = |o: &brandsim::outcome::Outcome| -> Vec<u64> {
            o.metrics().0.iter().map(|v| v.to_bits()).collect()
        };
        assert_eq!(bits(&outcome), bits(&at_draw), "replication {j}");

        let mut no_campaign = parse(&base);
        no_campaign.market.word_of_mouth = drawn;
        let no_campaign = series(&simulate(&Arc::new(no_campaign), j));
        let with_campaign = series(&outcome);
        assert_eq!(with_campaign[..10], no_campaign[..10], "replication {j}");
        assert_ne!(
            with_campaign[10..20],
            no_campaign[10..20],
            "replication {j}"
        );
    }
}

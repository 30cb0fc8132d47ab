//! `[[seeding]]` from the command line (MODEL.md v2, "Seeding"): key paths for
//! `--set` and `sweep --vary` (day numbers or dates; `users = 0` is "no seeding"
//! only there), malformed seedings refused with file, line and key path, and a
//! sharded study with seeding merged bit for bit.

mod common;

use common::*;

/// The knowledge platform, small, from 2026-01-01, with one random seeding of
/// 300 students on day 3, at 4.0 each.
fn scenario_file(dir: &Scratch, seeding: &str) -> String {
    let text = include_str!("../scenarios/knowledge_platform.toml")
        .replace("population = 100_000", "population = 5_000")
        .replace("days = 180 ", "days = 20 ")
        .replace("seed = 42", "seed = 42\nstart_date = 2026-01-01");
    let file = dir.arg("seeded.toml");
    std::fs::write(&file, format!("{text}\n[[seeding]]\n{seeding}\n")).unwrap();
    file
}

const KOL_SEED: &str = "name = \"kol-seed\"\nday = 3\nitem = \"tech-pro-monthly\"\nusers = 300\n\
                        rule = \"random\"\nsegment = \"students\"\ncost_per_user = 4.0";

fn seeded_mean(summary: &serde_json::Value) -> f64 {
    summary["metrics"]["seeded"]["mean"].as_f64().unwrap()
}

#[test]
fn sweeping_seeded_users_from_zero_answers_how_many_to_seed() {
    let dir = Scratch::new("sweep-users");
    // A variant is checked on top of each grid point, users = 0 included.
    let file = scenario_file(
        &dir,
        &format!(
            "{KOL_SEED}\n\n[[variants]]\nname = \"cheap\"\nset = {{ \"seeding.kol-seed.cost_per_user\" = 1.0 }}"
        ),
    );
    succeed(&[
        "sweep",
        &file,
        "-q",
        "--no-plots",
        "-r",
        "2",
        "-o",
        &dir.arg("s"),
        "--vary",
        "seeding.kol-seed.users=0:600:300",
    ]);
    let sweep = std::fs::read_to_string(dir.join("s/sweep.csv")).unwrap();
    let header: Vec<&str> = sweep.lines().next().unwrap().split(',').collect();
    let column = |name: &str| -> Vec<f64> {
        let at = header.iter().position(|&h| h == name).unwrap();
        sweep
            .lines()
            .skip(1)
            .map(|line| line.split(',').nth(at).unwrap().parse().unwrap())
            .collect()
    };
    assert_eq!(column("seeded_mean"), vec![0.0, 300.0, 600.0]);
    // The point's resolved scenario (what merge and --resume load) says why it
    // seeds nobody, and loads again.
    let point = dir.arg("s/points/0/scenario.toml");
    assert!(
        std::fs::read_to_string(&point)
            .unwrap()
            .contains("switched_off = true")
    );
    succeed(&["validate", &point]);
    // The spend of the seeding day grows by users · cost_per_user.
    let spend = column("spend_mean");
    assert_eq!(spend[2] - spend[0], 600.0 * 4.0);
    // users = 0 in the file itself is refused: remove the table instead.
    let zero = scenario_file(&dir, &KOL_SEED.replace("users = 300", "users = 0"));
    let output = brandsim(&["validate", &zero]);
    assert_refused(
        &output,
        &"users = 0 in the file",
        &[
            "seeded.toml:",
            "seeding[0].users",
            "expected an integer >= 1",
        ],
    );
    // ... but accepted from --set, where it means no seeding.
    let summary = json_of(&[
        "run",
        &file,
        "-q",
        "--json",
        "--no-plots",
        "-r",
        "1",
        "-o",
        &dir.arg("zero"),
        "--set",
        "seeding.kol-seed.users=0",
    ]);
    assert_eq!(seeded_mean(&summary), 0.0);
}

#[test]
fn a_seeding_day_is_set_and_swept_by_day_number_or_date() {
    let dir = Scratch::new("sweep-day");
    let file = scenario_file(&dir, KOL_SEED);
    let sweep = |out: &str, vary: &str| {
        succeed(&[
            "sweep",
            &file,
            "-q",
            "--no-plots",
            "-r",
            "1",
            "-o",
            &dir.arg(out),
            "--vary",
            vary,
        ]);
        std::fs::read(dir.join(out).join("sweep.csv")).unwrap()
    };
    assert_eq!(
        sweep("numbers", "seeding.kol-seed.day=2:6:2"),
        sweep("dates", "seeding.kol-seed.day=2026-01-03:2026-01-07:2")
    );
    let daily_seeded = |out: &str, set: &str| {
        succeed(&[
            "run",
            &file,
            "-q",
            "--no-plots",
            "-r",
            "1",
            "-o",
            &dir.arg(out),
            "--set",
            set,
        ]);
        let daily = std::fs::read_to_string(dir.join(out).join("daily.csv")).unwrap();
        let header: Vec<&str> = daily.lines().next().unwrap().split(',').collect();
        let column = header.iter().position(|&h| h == "seeded_mean").unwrap();
        daily
            .lines()
            .skip(1)
            .map(|line| line.split(',').nth(column).unwrap().parse::<f64>().unwrap())
            .collect::<Vec<f64>>()
    };
    let by_date = daily_seeded("d", "seeding.kol-seed.day=2026-01-10");
    assert_eq!(by_date, daily_seeded("n", "seeding.kol-seed.day=9"));
    assert_eq!(by_date[9], 300.0);
    assert_eq!(by_date.iter().sum::<f64>(), 300.0);
    // Outside the horizon after the override: refused, naming the override.
    let output = brandsim(&[
        "run",
        &file,
        "-q",
        "-o",
        &dir.arg("late"),
        "--set",
        "seeding.kol-seed.day=2026-03-01",
    ]);
    assert_refused_writing_nothing(
        &output,
        &"a seeding day past the horizon",
        &[
            "seeding.kol-seed.day",
            "outside the horizon",
            "(from --set)",
        ],
        &dir.join("late"),
    );
}

#[test]
fn malformed_seedings_exit_2_with_file_line_and_key_path() {
    let dir = Scratch::new("malformed");
    let cases = [
        (
            KOL_SEED.replace("\"random\"", "\"top-degree\""),
            "seeding[0].rule",
            "needs a network",
        ),
        (
            KOL_SEED.replace("tech-pro-monthly", "tech-pro"),
            "seeding[0].item",
            "no content item named \"tech-pro\"",
        ),
        (
            KOL_SEED.replace("day = 3", "day = 2025-12-31"),
            "seeding[0].day",
            "before simulation.start_date",
        ),
        (
            KOL_SEED.replace("cost_per_user = 4.0", "cost_per_user = nan"),
            "seeding[0].cost_per_user",
            "expected a number >= 0, found nan",
        ),
    ];
    for (seeding, key_path, message) in cases {
        let file = scenario_file(&dir, &seeding);
        let output = brandsim(&["run", &file, "-q", "-o", &dir.arg("out")]);
        assert_refused_writing_nothing(
            &output,
            &seeding,
            &["seeded.toml:", key_path, message],
            &dir.join("out"),
        );
        let stderr = text(&output.stderr);
        let line = stderr
            .split("seeded.toml:")
            .nth(1)
            .and_then(|rest| rest.split(':').next())
            .and_then(|line| line.parse::<usize>().ok());
        assert!(line.is_some_and(|line| line > 150), "{stderr}");
    }
    let file = scenario_file(&dir, KOL_SEED);
    let output = brandsim(&["run", &file, "-q", "--set", "seeding.tv.users=3"]);
    assert_refused(
        &output,
        &"an unknown seeding",
        &["no seeding named \"tv\"; seedings are: kol-seed"],
    );
}

#[test]
fn a_sharded_study_with_seeding_merges_to_the_unsharded_results() {
    let dir = Scratch::new("shards");
    let file = scenario_file(&dir, KOL_SEED);
    let run = |out: &str, shard: Option<&str>| {
        let mut args = vec!["run", &file, "-q", "--no-plots", "-r", "4", "-o"];
        let out = dir.arg(out);
        args.push(&out);
        if let Some(shard) = shard {
            args.extend(["--shard", shard]);
        }
        succeed(&args);
    };
    run("whole", None);
    run("s0", Some("0/2"));
    run("s1", Some("1/2"));
    let merged = merge(&[dir.join("s0"), dir.join("s1")], &dir.join("merged"));
    assert!(merged.status.success(), "{}", text(&merged.stderr));
    assert_eq!(
        study_results(&dir.join("whole")),
        study_results(&dir.join("merged"))
    );
}

#[test]
fn a_network_study_with_top_degree_seeding_is_the_same_on_any_threads_and_in_merged_shards() {
    let dir = Scratch::new("network-shards");
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/network_seeding.toml"
    );
    let run = |out: &str, threads: &str, shard: Option<&str>| {
        let out = dir.arg(out);
        let mut args = vec![
            "run",
            file,
            "-q",
            "--no-plots",
            "-r",
            "4",
            "-t",
            threads,
            "--set",
            "market.population=6000",
            "--set",
            "simulation.days=40",
            "-o",
            &out,
        ];
        if let Some(shard) = shard {
            args.extend(["--shard", shard]);
        }
        succeed(&args);
    };
    run("one", "1", None);
    run("two", "2", None);
    run("s0", "2", Some("0/2"));
    run("s1", "1", Some("1/2"));
    let merged = merge(&[dir.join("s0"), dir.join("s1")], &dir.join("merged"));
    assert!(merged.status.success(), "{}", text(&merged.stderr));
    let one = study_results(&dir.join("one"));
    assert!(one.0.contains("\"seeded\""), "{}", one.0);
    assert_eq!(one, study_results(&dir.join("two")));
    assert_eq!(one, study_results(&dir.join("merged")));
}

/// `optimize` tunes a seeding's size and day (a date in the file) as real numbers
/// and applies them as whole numbers: the answer's scenario holds integers.
#[test]
fn optimize_tunes_seeded_users_and_day_as_whole_numbers() {
    let dir = Scratch::new("optimize-seeding");
    let file = scenario_file(&dir, &KOL_SEED.replace("day = 3", "day = 2026-01-04"));
    succeed(&[
        "optimize",
        &file,
        "-q",
        "-o",
        &dir.arg("o"),
        "--param",
        "seeding.kol-seed.users=0:600",
        "--param",
        "seeding.kol-seed.day=0:19",
        "--set",
        "optimize.iterations=2",
        "--set",
        "optimize.replications_per_step=2",
        "--set",
        "optimize.objective=active_payers",
    ]);
    let answer: toml::Value =
        toml::from_str(&std::fs::read_to_string(dir.join("o/scenario.toml")).unwrap()).unwrap();
    let seeding = &answer["seeding"][0];
    let users = seeding["users"]
        .as_integer()
        .expect("users is a whole number");
    let day = seeding["day"].as_integer().expect("day is a whole number");
    assert!((0..=600).contains(&users), "users {users}");
    assert!((0..=19).contains(&day), "day {day}");
    let optimize: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("o/optimize.json")).unwrap())
            .unwrap();
    assert!(optimize.to_string().contains("seeding.kol-seed.day"));
}

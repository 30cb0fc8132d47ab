//! Campaigns, schedules and the calendar through the command line: every
//! malformed input refused with its key path or line and column, dates in the
//! outputs, `npv` from `daily.csv`, campaign key paths in `--set`, variants and
//! sweeps, and a study directory that holds its schedule.

mod common;

use common::*;

const BASS: &str = include_str!("../scenarios/bass.toml");

/// The Bass scenario on 2000 users and 30 days, starting 2026-01-01, with `extra`.
fn bass_with(extra: &str) -> String {
    let text = BASS
        .replace("population = 100_000", "population = 2_000")
        .replace("days = 60", "days = 30\nstart_date = 2026-01-01");
    format!("{text}\n{extra}")
}

/// Writes `scenario` (and the schedule `csv` as `q.csv`) into `dir`, runs
/// `brandsim run` on it with `args`, and returns the output.
fn run_in(dir: &Scratch, scenario: &str, csv: Option<&str>, args: &[&str]) -> std::process::Output {
    std::fs::write(dir.join("s.toml"), scenario).unwrap();
    if let Some(csv) = csv {
        std::fs::write(dir.join("q.csv"), csv).unwrap();
    }
    let file = dir.arg("s.toml");
    let out = dir.arg("out");
    let mut all = vec!["run", &file, "-q", "-r", "2", "-o", &out];
    all.extend(args);
    brandsim(&all)
}

const SCHEDULE: &str = "[schedule]\nfile = \"q.csv\"\n";

fn campaign(name: &str, start: &str, end: &str, set: &str) -> String {
    format!("[[campaigns]]\nname = \"{name}\"\nstart = {start}\nend = {end}\nset = {{ {set} }}\n")
}

/// What is wrong, the scenario's extra text, the schedule CSV, extra arguments,
/// and what the message must contain.
type Case<'a> = (&'a str, String, Option<&'a str>, Vec<&'a str>, Vec<&'a str>);

#[test]
fn each_malformed_campaign_or_schedule_is_refused_with_its_place() {
    let budget = "\"channels.ads.daily_budget\" = 20.0";
    let cases: Vec<Case> = vec![
        (
            "two campaigns set one key on common days",
            campaign("a", "0", "9", budget) + &campaign("b", "9", "12", budget),
            None,
            vec![],
            vec![
                r#"campaigns[1].set."channels.ads.daily_budget""#,
                r#"campaigns "a" (campaigns[0]) and "b" both set channels.ads.daily_budget"#,
                "day 9 (2026-01-10)",
            ],
        ),
        (
            "a fixed key in a campaign",
            campaign("a", "0", "9", "\"content.the product.renewal_days\" = 3"),
            None,
            vec![],
            vec![
                r#"campaigns[0].set."content.the product.renewal_days""#,
                "is fixed for the whole horizon",
            ],
        ),
        (
            "a date outside the horizon",
            campaign("a", "2026-03-01", "2026-03-05", budget),
            None,
            vec![],
            vec![
                "campaigns[0].start",
                "the date 2026-03-01 (day 59) is outside the horizon",
                "0..=29 (2026-01-01..=2026-01-30)",
            ],
        ),
        (
            "a negative day",
            campaign("a", "-1", "5", budget),
            None,
            vec![],
            vec!["campaigns[0].start", "a negative day (-1)"],
        ),
        (
            "an end before the start",
            campaign("a", "5", "2", budget),
            None,
            vec![],
            vec!["campaigns[0].end", "expected end >= start"],
        ),
        (
            "a duplicate campaign name",
            campaign("a", "0", "1", budget) + &campaign("a", "5", "6", budget),
            None,
            vec![],
            vec!["campaigns[1].name", "duplicate campaign name"],
        ),
        (
            "a campaign value out of range",
            campaign("a", "0", "1", "\"channels.ads.daily_budget\" = -5"),
            None,
            vec![],
            vec![
                r#"campaigns[0].set."channels.ads.daily_budget""#,
                r#"campaign "a": expected a number >= 0, found -5"#,
            ],
        ),
        (
            "an unknown channel",
            campaign("a", "0", "1", "\"channels.tv.daily_budget\" = 5"),
            None,
            vec![],
            vec![r#"campaign "a": no channel named "tv""#],
        ),
        (
            "both spellings of one key path",
            campaign("a", "0", "1", "\"brand.value\" = 1, brand.value = 2"),
            None,
            vec![],
            vec![
                "campaigns[0].set",
                r#"key path "brand.value" is given twice"#,
            ],
        ),
        (
            "a date without start_date",
            campaign("a", "2026-01-02", "2026-01-05", budget),
            None,
            vec![],
            vec!["campaigns[0].start", "needs simulation.start_date"],
        ),
        (
            "a duplicate schedule day",
            SCHEDULE.to_string(),
            Some("day,channels.ads.daily_budget\n3,5\n3,6\n"),
            vec![],
            vec![
                "q.csv:3: column 1 (day)",
                "day 3 (2026-01-04) is also the day of line 2",
            ],
        ),
        (
            "a bad schedule cell",
            SCHEDULE.to_string(),
            Some("day,channels.ads.daily_budget\n0,12\n1,twelve\n"),
            vec![],
            vec![
                "q.csv:3: column 2 (channels.ads.daily_budget)",
                "found \"twelve\"",
            ],
        ),
        (
            "a schedule value out of range",
            SCHEDULE.to_string(),
            Some("date,brand.topic_match\n2026-01-02,1.5\n"),
            vec![],
            vec![
                "q.csv:2: column 2 (brand.topic_match)",
                "expected a number in [0, 1], found 1.5",
            ],
        ),
        (
            "a schedule day outside the horizon",
            SCHEDULE.to_string(),
            Some("day,channels.ads.daily_budget\n0,1\n\n30,2\n"),
            vec![],
            vec!["q.csv:4: column 1 (day)", "day 30 is outside the horizon"],
        ),
        (
            "a key in two schedule columns",
            SCHEDULE.to_string(),
            Some("day,channels.ads.daily_budget,channels[0].daily_budget\n0,1,2\n"),
            vec![],
            vec![
                "q.csv:2: column 3 (channels[0].daily_budget)",
                "name each key once",
            ],
        ),
        (
            "a fixed key in the schedule",
            SCHEDULE.to_string(),
            Some("day,market.population\n0,5\n"),
            vec![],
            vec![
                "q.csv:2: column 2 (market.population)",
                "is fixed for the whole horizon",
            ],
        ),
        (
            "a boolean key with a number",
            SCHEDULE.to_string(),
            Some("day,content.the product.available\n0,1\n"),
            vec![],
            vec![
                "q.csv:2: column 2",
                "expected true or false, found float 1.0",
            ],
        ),
        (
            "a campaign and a schedule cell on one key and day",
            format!(
                "{SCHEDULE}{}",
                campaign("pulse", "2026-01-03", "2026-01-09", budget)
            ),
            Some("day,channels.ads.daily_budget\n1,5\n4,6\n"),
            vec![],
            vec![
                "q.csv:3: column 2 (channels.ads.daily_budget)",
                r#"the schedule sets channels.ads.daily_budget on day 4 (2026-01-05), which campaign "pulse""#,
            ],
        ),
        (
            "a missing schedule file",
            SCHEDULE.replace("q.csv", "nowhere.csv"),
            None,
            vec![],
            vec!["schedule.file", "cannot read the schedule file (CSV)"],
        ),
        (
            "a campaign start moved past the horizon by --set",
            campaign("a", "0", "3", budget),
            None,
            vec!["--set", "campaigns.a.start=40"],
            vec![
                "campaigns.a.start",
                "day 40 is outside the horizon",
                "(from --set)",
            ],
        ),
        (
            "a horizon shortened under a campaign by --set",
            campaign("a", "20", "25", budget),
            None,
            vec!["--set", "simulation.days=10"],
            vec![
                "campaigns[0].start",
                "day 20 is outside the horizon",
                "simulation.days = 10",
            ],
        ),
        (
            "a fixed key set in a campaign by --set",
            campaign("a", "0", "3", budget),
            None,
            vec!["--set", "campaigns.a.market.population=3"],
            vec!["market.population is fixed", "(from --set)"],
        ),
    ];
    for (i, (what, extra, csv, args, expected)) in cases.into_iter().enumerate() {
        let dir = Scratch::new(&format!("malformed-{i}"));
        let mut scenario = bass_with(&extra);
        if what == "a date without start_date" {
            scenario = scenario.replace("start_date = 2026-01-01\n", "");
        }
        let output = run_in(&dir, &scenario, csv, &args);
        assert_refused_writing_nothing(&output, &what, &expected, &dir.join("out"));
        // A problem in the scenario file itself names its line too.
        let stderr = text(&output.stderr);
        if expected[0].starts_with("campaigns[") && args.is_empty() {
            let line = stderr.split("s.toml:").nth(1).unwrap_or_default();
            assert!(
                line.starts_with(|c: char| c.is_ascii_digit()),
                "{what}: a line number in {stderr}"
            );
        }
    }
}

#[test]
fn daily_csv_has_dates_and_npv_is_its_discounted_daily_profit() {
    let dir = Scratch::new("dates");
    let text = bass_with(&campaign(
        "pulse",
        "2026-01-05",
        "2026-01-09",
        "\"channels.ads.daily_budget\" = 30.0",
    ))
    .replace("replications = 8", "replications = 4\ndiscount_rate = 0.5");
    std::fs::write(dir.join("s.toml"), text).unwrap();
    let out = dir.arg("out");
    let summary = json_of(&["run", &dir.arg("s.toml"), "-q", "--json", "-o", &out]);
    let daily = std::fs::read_to_string(dir.join("out/daily.csv")).unwrap();
    let mut lines = daily.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(&header[..2], ["day", "date"]);
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (revenue, spend) = (column("revenue_mean"), column("spend_mean"));
    let mut npv = 0.0;
    for (t, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells[0], t.to_string());
        let expected_date = format!("2026-01-{:02}", t + 1);
        assert_eq!(cells[1], expected_date);
        let value = |i: usize| cells[i].parse::<f64>().unwrap();
        let expected_spend = if (4..=8).contains(&t) { 30.0 } else { 10.0 };
        assert_eq!(value(spend), expected_spend, "day {t}");
        npv += (value(revenue) - value(spend)) / 1.5f64.powf(t as f64 / 365.0);
    }
    let mean_npv = summary["metrics"]["npv"]["mean"].as_f64().unwrap();
    assert!(
        (mean_npv - npv).abs() < 1e-9 * npv.abs(),
        "{mean_npv} vs {npv}"
    );
    let profit = summary["metrics"]["profit"]["mean"].as_f64().unwrap();
    assert!(mean_npv < profit);
    assert!(
        dir.join("out/values.svg").exists(),
        "the budget changes: values.svg is drawn"
    );
    let fan = std::fs::read_to_string(dir.join("out/fan-revenue.svg")).unwrap();
    assert!(
        fan.contains("2026-01-01") && fan.contains("pulse"),
        "dates and the campaign label"
    );
}

#[test]
fn campaign_key_paths_work_in_set_variants_and_sweeps() {
    let dir = Scratch::new("keys");
    let variants = "[[variants]]\nname = \"later\"\nset = { \"campaigns.pulse.start\" = 2026-01-10, \"campaigns.pulse.end\" = 12 }\n\
                    [[variants]]\nname = \"bigger\"\nset = { \"campaigns.pulse.channels.ads.daily_budget\" = 40.0 }\n";
    let scenario = bass_with(
        &(campaign("pulse", "2", "4", "\"channels.ads.daily_budget\" = 30.0") + variants),
    );
    std::fs::write(dir.join("s.toml"), scenario).unwrap();
    let file = dir.arg("s.toml");
    let spend_of =
        |summary: &serde_json::Value| summary["metrics"]["spend"]["mean"].as_f64().unwrap();
    // --set with a date and a campaign value.
    let moved = json_of(&[
        "run",
        &file,
        "-q",
        "--json",
        "-r",
        "1",
        "-o",
        &dir.arg("a"),
        "--set",
        "campaigns.pulse.start=2026-01-02",
        "--set",
        "campaigns.pulse.channels.ads.daily_budget=50",
    ]);
    // Days 1..=4 at 50, 26 days at 10.
    assert_eq!(spend_of(&moved), 4.0 * 50.0 + 26.0 * 10.0);
    let resolved = std::fs::read_to_string(dir.join("a/scenario.toml")).unwrap();
    assert!(resolved.contains("start = 2026-01-02"), "{resolved}");

    let compared = json_of(&[
        "compare",
        &file,
        "-q",
        "--json",
        "-r",
        "2",
        "-o",
        &dir.arg("c"),
    ]);
    let compared = compared.to_string();
    assert!(
        compared.contains("later") && compared.contains("bigger"),
        "{compared}"
    );

    let swept = json_of(&[
        "sweep",
        &file,
        "-q",
        "--json",
        "-r",
        "2",
        "-o",
        &dir.arg("s"),
        "--vary",
        "campaigns.pulse.start=0:4:2",
    ]);
    assert_eq!(swept["points"].as_array().map(Vec::len), Some(3), "{swept}");
    // The table shows each campaign day with its date.
    let table = succeed(&[
        "sweep",
        &file,
        "-q",
        "-r",
        "1",
        "-o",
        &dir.arg("t"),
        "--no-plots",
        "--vary",
        "campaigns.pulse.start=2,3",
    ]);
    let table = text(&table.stdout);
    assert!(
        table.contains(" 2 (2026-01-03) ") && table.contains(" 3 (2026-01-04) "),
        "{table}"
    );
    // --vary takes dates too: the same grid as its day numbers.
    let by_date = json_of(&[
        "sweep",
        &file,
        "-q",
        "--json",
        "-r",
        "2",
        "-o",
        &dir.arg("d"),
        "--vary",
        "campaigns.pulse.start=2026-01-01:2026-01-05:2",
    ]);
    assert_eq!(by_date["points"], swept["points"]);
    assert_eq!(
        std::fs::read(dir.join("d/sweep.csv")).unwrap(),
        std::fs::read(dir.join("s/sweep.csv")).unwrap()
    );
    let before = brandsim(&[
        "sweep",
        &file,
        "-q",
        "-r",
        "1",
        "-o",
        &dir.arg("e"),
        "--vary",
        "campaigns.pulse.start=2025-12-31,2026-01-02",
    ]);
    assert_refused(
        &before,
        &"--vary",
        &["2025-12-31", "before simulation.start_date"],
    );
}

#[test]
fn a_study_holds_its_schedule_and_resume_refuses_a_changed_one() {
    let dir = Scratch::new("selfcontained");
    let text = bass_with(SCHEDULE);
    std::fs::write(dir.join("s.toml"), &text).unwrap();
    std::fs::write(
        dir.join("q.csv"),
        "date,channels.ads.daily_budget\n2026-01-03,25\n",
    )
    .unwrap();
    let out = dir.arg("out");
    succeed(&["run", &dir.arg("s.toml"), "-q", "-r", "2", "-o", &out]);
    let resolved = std::fs::read_to_string(dir.join("out/scenario.toml")).unwrap();
    assert!(
        resolved.contains("\"channels.ads.daily_budget\" = 25.0"),
        "{resolved}"
    );
    // The study directory alone re-runs the same study, with no schedule file.
    std::fs::remove_file(dir.join("q.csv")).unwrap();
    let copy = dir.arg("copy.toml");
    std::fs::write(&copy, &resolved).unwrap();
    succeed(&["run", &copy, "-q", "-r", "2", "-o", &dir.arg("again")]);
    assert_eq!(
        study_results(&dir.join("out")),
        study_results(&dir.join("again"))
    );
    // A changed schedule is a different study.
    std::fs::write(
        dir.join("q.csv"),
        "date,channels.ads.daily_budget\n2026-01-03,26\n",
    )
    .unwrap();
    let output = brandsim(&["run", &dir.arg("s.toml"), "-q", "-r", "2", "--resume", &out]);
    assert_refused(
        &output,
        &"resume with a changed schedule",
        &["not the same study"],
    );
}

#[test]
fn optimize_tunes_a_campaign_start_in_whole_days_and_lr_refuses_a_brand_campaign() {
    let dir = Scratch::new("optimize");
    // With a duration, moving the start moves the whole window.
    let text = bass_with(
        "[[campaigns]]\nname = \"pulse\"\nstart = 2\nduration = 3\n\
         set = { \"channels.ads.daily_budget\" = 30.0 }\n",
    );
    std::fs::write(dir.join("s.toml"), text).unwrap();
    let file = dir.arg("s.toml");
    let out = dir.arg("opt");
    succeed(&[
        "optimize",
        &file,
        "-q",
        "-r",
        "1",
        "-o",
        &out,
        "--objective",
        "npv",
        "--param",
        "campaigns.pulse.start=0:20",
        "--estimator",
        "fd",
        "--iterations",
        "2",
        "--replications-per-step",
        "1",
        "--perturbation",
        "3",
        "--learning-rate",
        "0.001",
        "--regularization",
        "0",
    ]);
    let result = read_json(&dir.join("opt/optimize.json"));
    let start = result["parameters"]["campaigns.pulse.start"]
        .as_f64()
        .unwrap();
    assert!((0.0..=20.0).contains(&start), "{result}");
    let resolved = std::fs::read_to_string(dir.join("opt/scenario.toml")).unwrap();
    assert!(
        resolved.contains(&format!("start = {}\n", start.round() as i64)),
        "the answer is a whole day: {resolved}"
    );

    let brand = bass_with(&campaign("brand", "2", "4", "\"brand.value\" = 1.0"));
    std::fs::write(dir.join("b.toml"), brand).unwrap();
    let output = brandsim(&[
        "optimize",
        &dir.arg("b.toml"),
        "-q",
        "--estimator",
        "lr",
        "-o",
        &dir.arg("lr"),
    ]);
    assert_refused(
        &output,
        &"lr with a brand campaign",
        &["lr estimator", "campaign"],
    );
}

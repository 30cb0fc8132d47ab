//! Scenario files through the public API: the shipped scenarios are valid and
//! round-trip, every rule of MODEL.md's "Scenario file" rejects a bad file with its
//! key path and line, and `--set` overrides address entries by name.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use brandsim::scenario::{
    Assignment, Estimator, ScenarioError, load_file, parse_assignment, parse_str,
};

/// A small valid scenario; each table header names its entry in a comment so that
/// cases can find its line.
const BASE: &str = r#"name = "table-base"

[simulation]
days = 30
seed = 1
replications = 2

[market]
population = 1000
word_of_mouth = 0.3
dormancy = 0.02
price_reference = 99.0
satisfaction_noise = 0.1

[[market.segments]] # students
name = "students"
share = 0.6
topics = { tech = 0.6, career = 0.4 }
price_sensitivity = 1.2
click_heterogeneity = 0.5
churn_alpha = 0.7
churn_beta = 1.2
targeting = { ads = 1.0, kol = 1.5 }

[[market.segments]] # pros
name = "pros"
share = 0.4
topics = { career = 1.0 }
price_sensitivity = 0.5
click_heterogeneity = 0.3
churn_alpha = 1.0
churn_beta = 3.0

[[content]] # course
name = "course"
topic = "tech"
click_rate = 0.05
conversion_rate = 0.1
price = 99.0
quality = 0.8
renewal_days = 0

[[content]] # membership
name = "membership"
topic = "career"
click_rate = 0.04
conversion_rate = 0.1
price = 29.0
quality = 0.7
promotion = 2.0
renewal_days = 30

[[channels]] # ads
name = "ads"
daily_budget = 20.0
cpm = 20.0

[[channels]] # kol
name = "kol"
daily_budget = 10.0
cpm = 40.0

[brand]
value = 0.0
click_effect = 0.8
conversion_effect = 0.5
retention_effect = 0.3
satisfaction_effect = 1.0
topic_match = 0.8
cost_per_day = 500.0

[optimize]
objective = "seed_r"
estimator = "spsa"
iterations = 5
"#;

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

fn scenario_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(scenarios_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    files
}

/// 1-based line of the first occurrence of `marker` in `text`.
fn line_of(text: &str, marker: &str) -> usize {
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("marker {marker:?} not in the text"));
    1 + text[..at].matches('\n').count()
}

fn set(text: &str) -> Assignment {
    parse_assignment(text).unwrap()
}

#[test]
fn base_of_the_error_table_is_valid() {
    let scenario = parse_str(BASE, "base.toml").unwrap();
    assert_eq!(scenario.name, "table-base");
    assert_eq!(scenario.topics, vec!["tech", "career"]);
    assert_eq!(scenario.market.segments[0].topics, vec![(0, 0.6), (1, 0.4)]);
    assert_eq!(scenario.market.segments[0].targeting, vec![1.0, 1.5]);
    assert_eq!(scenario.market.segments[1].targeting, vec![1.0, 1.0]);
    assert_eq!(scenario.content[0].promotion, 1.0);
    assert_eq!(scenario.content[1].renewal_days, 30);
    assert_eq!(scenario.optimize.iterations, 5);
    assert_eq!(scenario.optimize.learning_rate, 0.05);
}

#[test]
fn every_shipped_scenario_is_valid() {
    let files = scenario_files();
    assert!(
        files.len() >= 5,
        "expected the shipped scenarios, found {files:?}"
    );
    for file in files {
        let (scenario, _) = load_file(&file, &[]).unwrap_or_else(|error| panic!("{error}"));
        assert!(!scenario.name.is_empty());
    }
}

#[test]
fn resolved_toml_reloads_to_the_same_scenario() {
    for file in scenario_files() {
        let (scenario, source) = load_file(&file, &[]).unwrap();
        let text = source.resolved_toml();
        let reloaded = parse_str(&text, "elsewhere/resolved.toml")
            .unwrap_or_else(|error| panic!("{}: {error}\n{text}", file.display()));
        assert_eq!(reloaded, scenario, "{}", file.display());
    }
}

#[test]
fn resolved_toml_keeps_overrides_and_the_default_name() {
    let path = scenarios_dir().join("knowledge_platform.toml");
    let overrides = [
        set("channels.kol.daily_budget=40"),
        set("content.annual-vip.price=199"),
        set("optimize.estimator=fd"),
    ];
    let (scenario, source) = load_file(&path, &overrides).unwrap();
    let reloaded = parse_str(&source.resolved_toml(), "other.toml").unwrap();
    assert_eq!(reloaded, scenario);
    assert_eq!(reloaded.optimize.estimator, Estimator::FiniteDifference);

    let (bass, source) = load_file(&scenarios_dir().join("bass.toml"), &[]).unwrap();
    let mut unnamed = source.document.clone();
    unnamed.remove("name");
    let text = toml::to_string(&unnamed).unwrap();
    assert_eq!(parse_str(&text, "dir/stem.toml").unwrap().name, "stem");
    assert_eq!(bass.name, "bass");
}

#[test]
fn what_if_variants_differ_from_the_main_scenario_only_where_they_say() {
    let load = |name: &str| load_file(&scenarios_dir().join(name), &[]).unwrap().0;
    let main = load("knowledge_platform.toml");
    let budget = |s: &brandsim::scenario::Scenario, name: &str| {
        s.channels
            .iter()
            .find(|c| c.name == name)
            .unwrap()
            .daily_budget
    };
    let total = |s: &brandsim::scenario::Scenario| -> f64 {
        s.channels.iter().map(|c| c.daily_budget).sum()
    };

    let kol = load("kol_heavy.toml");
    assert!(budget(&kol, "kol") > budget(&main, "kol"));
    assert!(budget(&kol, "ads") < budget(&main, "ads"));
    assert_eq!(total(&kol), total(&main));
    assert_eq!(kol.content, main.content);

    let cut = load("price_cut.toml");
    for (cheap, full) in cut.content.iter().zip(&main.content) {
        assert!(cheap.price < full.price, "{}", cheap.name);
    }
    assert_eq!(cut.channels, main.channels);

    let quality = load("quality_investment.toml");
    for (better, plain) in quality.content.iter().zip(&main.content) {
        assert!(better.quality > plain.quality, "{}", better.name);
    }
    assert_eq!(quality.market, main.market);
}

/// One malformed scenario: `BASE` with `find` replaced by `replace`.
struct Case {
    rule: &'static str,
    find: &'static str,
    replace: &'static str,
    /// Expected in the message: the key path...
    key_path: &'static str,
    /// ...on the line of the first occurrence of this text in the bad file.
    line_of: &'static str,
    /// ...and this text in the message.
    says: &'static str,
}

const CASES: &[Case] = &[
    Case {
        rule: "unknown top-level key",
        find: "name = \"table-base\"",
        replace: "name = \"table-base\"\ncolour = \"red\"",
        key_path: "colour",
        line_of: "colour",
        says: "unknown key \"colour\"; expected one of: name, simulation",
    },
    Case {
        rule: "unknown key in [simulation]",
        find: "days = 30",
        replace: "days = 30\nspeed = 2",
        key_path: "simulation.speed",
        line_of: "speed",
        says: "unknown key \"speed\"",
    },
    Case {
        rule: "unknown key in [market]",
        find: "population = 1000",
        replace: "population = 1000\nregion = \"eu\"",
        key_path: "market.region",
        line_of: "region",
        says: "unknown key \"region\"",
    },
    Case {
        rule: "unknown key in a segment",
        find: "share = 0.4",
        replace: "share = 0.4\nage = 30",
        key_path: "market.segments[1].age",
        line_of: "age = 30",
        says: "unknown key \"age\"; expected one of: name, share, topics",
    },
    Case {
        rule: "unknown key in a content item",
        find: "renewal_days = 30",
        replace: "renewal_days = 30\ncolour = \"red\"",
        key_path: "content[1].colour",
        line_of: "colour",
        says: "unknown key \"colour\"",
    },
    Case {
        rule: "unknown key in a channel",
        find: "cpm = 40.0",
        replace: "cpm = 40.0\nreach = 5",
        key_path: "channels[1].reach",
        line_of: "reach",
        says: "unknown key \"reach\"; expected one of: name, daily_budget, cpm",
    },
    Case {
        rule: "unknown key in [brand]",
        find: "cost_per_day = 500.0",
        replace: "cost_per_day = 500.0\ncolour = \"red\"",
        key_path: "brand.colour",
        line_of: "colour",
        says: "unknown key \"colour\"",
    },
    Case {
        rule: "unknown key in [optimize]",
        find: "iterations = 5",
        replace: "iterations = 5\nmomentum = 0.9",
        key_path: "optimize.momentum",
        line_of: "momentum",
        says: "unknown key \"momentum\"",
    },
    Case {
        rule: "missing required key in a channel",
        find: "cpm = 40.0\n",
        replace: "",
        key_path: "channels[1].cpm",
        line_of: "# kol",
        says: "missing required key \"cpm\"",
    },
    Case {
        rule: "missing required key in [simulation]",
        find: "seed = 1\n",
        replace: "",
        key_path: "simulation.seed",
        line_of: "[simulation]",
        says: "missing required key \"seed\"",
    },
    Case {
        rule: "missing required key in a segment",
        find: "churn_beta = 3.0\n",
        replace: "",
        key_path: "market.segments[1].churn_beta",
        line_of: "# pros",
        says: "missing required key \"churn_beta\"",
    },
    Case {
        rule: "string for an integer key",
        find: "days = 30",
        replace: "days = \"10\"",
        key_path: "simulation.days",
        line_of: "days",
        says: "expected an integer in [1, 4294967295], found string \"10\"",
    },
    Case {
        rule: "float for an integer key",
        find: "days = 30",
        replace: "days = 1.5",
        key_path: "simulation.days",
        line_of: "days",
        says: "found float 1.5",
    },
    Case {
        rule: "float for renewal_days",
        find: "renewal_days = 30",
        replace: "renewal_days = 30.0",
        key_path: "content[1].renewal_days",
        line_of: "renewal_days = 30.0",
        says: "expected an integer",
    },
    Case {
        rule: "string for a number key",
        find: "price = 29.0",
        replace: "price = \"29\"",
        key_path: "content[1].price",
        line_of: "price = \"29\"",
        says: "expected a number >= 0, found string \"29\"",
    },
    Case {
        rule: "number for a string key",
        find: "name = \"table-base\"",
        replace: "name = 5",
        key_path: "name",
        line_of: "name = 5",
        says: "expected a string, found integer 5",
    },
    Case {
        rule: "string for an inline table",
        find: "targeting = { ads = 1.0, kol = 1.5 }",
        replace: "targeting = \"ads\"",
        key_path: "market.segments[0].targeting",
        line_of: "targeting",
        says: "found string \"ads\"",
    },
    Case {
        rule: "population 0",
        find: "population = 1000",
        replace: "population = 0",
        key_path: "market.population",
        line_of: "population",
        says: "found 0",
    },
    Case {
        rule: "population beyond u32",
        find: "population = 1000",
        replace: "population = 5_000_000_000",
        key_path: "market.population",
        line_of: "population",
        says: "expected an integer in [1, 4294967295], found 5000000000",
    },
    Case {
        rule: "days beyond u32",
        find: "days = 30",
        replace: "days = 4294967296",
        key_path: "simulation.days",
        line_of: "days",
        says: "found 4294967296",
    },
    Case {
        rule: "replications 0",
        find: "replications = 2",
        replace: "replications = 0",
        key_path: "simulation.replications",
        line_of: "replications",
        says: "found 0",
    },
    Case {
        rule: "negative seed",
        find: "seed = 1",
        replace: "seed = -1",
        key_path: "simulation.seed",
        line_of: "seed",
        says: "expected an integer >= 0, found -1",
    },
    Case {
        rule: "seed beyond 64 bits",
        find: "seed = 1",
        replace: "seed = 99999999999999999999",
        key_path: "simulation.seed",
        line_of: "seed",
        says: "integer 99999999999999999999 does not fit in 64 bits",
    },
    Case {
        rule: "negative word of mouth",
        find: "word_of_mouth = 0.3",
        replace: "word_of_mouth = -0.1",
        key_path: "market.word_of_mouth",
        line_of: "word_of_mouth",
        says: "expected a number >= 0, found -0.1",
    },
    Case {
        rule: "dormancy above 1",
        find: "dormancy = 0.02",
        replace: "dormancy = 1.5",
        key_path: "market.dormancy",
        line_of: "dormancy",
        says: "expected a number in [0, 1], found 1.5",
    },
    Case {
        rule: "price_reference 0",
        find: "price_reference = 99.0",
        replace: "price_reference = 0",
        key_path: "market.price_reference",
        line_of: "price_reference",
        says: "expected a number > 0, found 0",
    },
    Case {
        rule: "negative satisfaction noise",
        find: "satisfaction_noise = 0.1",
        replace: "satisfaction_noise = -0.1",
        key_path: "market.satisfaction_noise",
        line_of: "satisfaction_noise",
        says: "found -0.1",
    },
    Case {
        rule: "negative share",
        find: "share = 0.4",
        replace: "share = -0.2",
        key_path: "market.segments[1].share",
        line_of: "share = -0.2",
        says: "expected a number >= 0, found -0.2",
    },
    Case {
        rule: "negative price sensitivity",
        find: "price_sensitivity = 0.5",
        replace: "price_sensitivity = -1",
        key_path: "market.segments[1].price_sensitivity",
        line_of: "price_sensitivity = -1",
        says: "found -1",
    },
    Case {
        rule: "negative click heterogeneity",
        find: "click_heterogeneity = 0.5",
        replace: "click_heterogeneity = -0.5",
        key_path: "market.segments[0].click_heterogeneity",
        line_of: "click_heterogeneity = -0.5",
        says: "found -0.5",
    },
    Case {
        rule: "churn_alpha 0",
        find: "churn_alpha = 0.7",
        replace: "churn_alpha = 0",
        key_path: "market.segments[0].churn_alpha",
        line_of: "churn_alpha = 0",
        says: "expected a number > 0, found 0",
    },
    Case {
        rule: "churn_beta 0",
        find: "churn_beta = 3.0",
        replace: "churn_beta = 0.0",
        key_path: "market.segments[1].churn_beta",
        line_of: "churn_beta = 0.0",
        says: "expected a number > 0",
    },
    Case {
        rule: "negative topic weight",
        find: "tech = 0.6",
        replace: "tech = -0.6",
        key_path: "market.segments[0].topics.tech",
        line_of: "tech = -0.6",
        says: "found -0.6",
    },
    Case {
        rule: "topic weights summing to 0",
        find: "topics = { career = 1.0 }",
        replace: "topics = { career = 0.0 }",
        key_path: "market.segments[1].topics",
        line_of: "career = 0.0",
        says: "expected a positive finite sum",
    },
    Case {
        rule: "negative targeting weight",
        find: "kol = 1.5",
        replace: "kol = -1.5",
        key_path: "market.segments[0].targeting.kol",
        line_of: "kol = -1.5",
        says: "found -1.5",
    },
    Case {
        rule: "click rate above 1",
        find: "click_rate = 0.05",
        replace: "click_rate = 1.2",
        key_path: "content[0].click_rate",
        line_of: "click_rate = 1.2",
        says: "expected a number in [0, 1], found 1.2",
    },
    Case {
        rule: "negative conversion rate",
        find: "conversion_rate = 0.1\nprice = 29.0",
        replace: "conversion_rate = -0.1\nprice = 29.0",
        key_path: "content[1].conversion_rate",
        line_of: "conversion_rate = -0.1",
        says: "found -0.1",
    },
    Case {
        rule: "negative price",
        find: "price = 99.0\nquality",
        replace: "price = -5\nquality",
        key_path: "content[0].price",
        line_of: "price = -5",
        says: "found -5",
    },
    Case {
        rule: "quality above 1",
        find: "quality = 0.8",
        replace: "quality = 2",
        key_path: "content[0].quality",
        line_of: "quality = 2",
        says: "found 2",
    },
    Case {
        rule: "negative promotion",
        find: "promotion = 2.0",
        replace: "promotion = -1.0",
        key_path: "content[1].promotion",
        line_of: "promotion",
        says: "found -1.0",
    },
    Case {
        rule: "negative renewal days",
        find: "renewal_days = 30",
        replace: "renewal_days = -30",
        key_path: "content[1].renewal_days",
        line_of: "renewal_days = -30",
        says: "expected an integer in [0, 4294967295], found -30",
    },
    Case {
        rule: "negative daily budget",
        find: "daily_budget = 10.0",
        replace: "daily_budget = -10.0",
        key_path: "channels[1].daily_budget",
        line_of: "daily_budget = -10.0",
        says: "found -10.0",
    },
    Case {
        rule: "cpm 0",
        find: "cpm = 20.0",
        replace: "cpm = 0",
        key_path: "channels[0].cpm",
        line_of: "cpm = 0",
        says: "expected a number > 0, found 0",
    },
    Case {
        rule: "topic_match above 1",
        find: "topic_match = 0.8",
        replace: "topic_match = 1.1",
        key_path: "brand.topic_match",
        line_of: "topic_match",
        says: "found 1.1",
    },
    Case {
        rule: "negative brand cost",
        find: "cost_per_day = 500.0",
        replace: "cost_per_day = -1",
        key_path: "brand.cost_per_day",
        line_of: "cost_per_day",
        says: "found -1",
    },
    Case {
        rule: "iterations 0",
        find: "iterations = 5",
        replace: "iterations = 0",
        key_path: "optimize.iterations",
        line_of: "iterations",
        says: "expected an integer in [1, 4294967295], found 0",
    },
    Case {
        rule: "learning rate 0",
        find: "iterations = 5",
        replace: "iterations = 5\nlearning_rate = 0.0",
        key_path: "optimize.learning_rate",
        line_of: "learning_rate",
        says: "expected a number > 0",
    },
    Case {
        rule: "negative regularization",
        find: "iterations = 5",
        replace: "iterations = 5\nregularization = -0.01",
        key_path: "optimize.regularization",
        line_of: "regularization",
        says: "found -0.01",
    },
    Case {
        rule: "perturbation 0",
        find: "iterations = 5",
        replace: "iterations = 5\nperturbation = 0",
        key_path: "optimize.perturbation",
        line_of: "perturbation",
        says: "expected a number > 0",
    },
    Case {
        rule: "replications_per_step 0",
        find: "iterations = 5",
        replace: "iterations = 5\nreplications_per_step = 0",
        key_path: "optimize.replications_per_step",
        line_of: "replications_per_step",
        says: "found 0",
    },
    Case {
        rule: "nan",
        find: "value = 0.0",
        replace: "value = nan",
        key_path: "brand.value",
        line_of: "value = nan",
        says: "expected a finite number, found nan",
    },
    Case {
        rule: "nan in a rate",
        find: "click_rate = 0.04",
        replace: "click_rate = nan",
        key_path: "content[1].click_rate",
        line_of: "click_rate = nan",
        says: "found nan",
    },
    Case {
        rule: "inf",
        find: "cpm = 40.0",
        replace: "cpm = inf",
        key_path: "channels[1].cpm",
        line_of: "cpm = inf",
        says: "expected a number > 0, found inf",
    },
    Case {
        rule: "-inf for a brand effect",
        find: "click_effect = 0.8",
        replace: "click_effect = -inf",
        key_path: "brand.click_effect",
        line_of: "click_effect",
        says: "found -inf",
    },
    Case {
        rule: "shares not summing to 1",
        find: "share = 0.4",
        replace: "share = 0.3",
        key_path: "market.segments",
        line_of: "# students",
        says: "segment shares sum to 0.9",
    },
    Case {
        rule: "segment topic that no content item has",
        find: "topics = { career = 1.0 }",
        replace: "topics = { career = 0.5, cooking = 0.5 }",
        key_path: "market.segments[1].topics.cooking",
        line_of: "cooking",
        says: "no content item has topic \"cooking\"; content topics are: tech, career",
    },
    Case {
        rule: "targeting key naming no channel",
        find: "kol = 1.5",
        replace: "tv = 1.5",
        key_path: "market.segments[0].targeting.tv",
        line_of: "tv = 1.5",
        says: "no channel named \"tv\"; channels are: ads, kol",
    },
    Case {
        rule: "duplicate segment name",
        find: "name = \"pros\"",
        replace: "name = \"students\" # again",
        key_path: "market.segments[1].name",
        line_of: "# again",
        says: "duplicate segment name \"students\"",
    },
    Case {
        rule: "duplicate content name",
        find: "name = \"membership\"",
        replace: "name = \"course\" # again",
        key_path: "content[1].name",
        line_of: "# again",
        says: "duplicate content item name \"course\"",
    },
    Case {
        rule: "duplicate channel name",
        find: "name = \"kol\"",
        replace: "name = \"ads\" # again",
        key_path: "channels[1].name",
        line_of: "# again",
        says: "duplicate channel name \"ads\"",
    },
    Case {
        rule: "unknown objective",
        find: "objective = \"seed_r\"",
        replace: "objective = \"happiness\"",
        key_path: "optimize.objective",
        line_of: "objective",
        says: "expected one of \"exposures\", \"clicks\"",
    },
    Case {
        rule: "unknown estimator",
        find: "estimator = \"spsa\"",
        replace: "estimator = \"newton\"",
        key_path: "optimize.estimator",
        line_of: "estimator",
        says: "expected one of \"spsa\", \"fd\", \"lr\", \"lr-whole\", found string \"newton\"",
    },
    Case {
        rule: "a list of tables where a table belongs",
        find: "[brand]",
        replace: "[[brand]]",
        key_path: "brand",
        line_of: "[[brand]]",
        says: "expected a table, found an array",
    },
];

#[test]
fn every_rule_rejects_a_bad_file_with_key_path_and_line() {
    let mut failures = Vec::new();
    for case in CASES {
        assert!(
            BASE.contains(case.find),
            "{}: {:?} not in BASE",
            case.rule,
            case.find
        );
        let text = BASE.replacen(case.find, case.replace, 1);
        let error = match parse_str(&text, "bad.toml") {
            Ok(_) => {
                failures.push(format!("{}: accepted", case.rule));
                continue;
            }
            Err(error) => error,
        };
        let shown = error.to_string();
        println!("{:<45} {shown}", case.rule);
        let line = line_of(&text, case.line_of);
        let prefix = format!("bad.toml:{line}: {}: ", case.key_path);
        if !shown.starts_with(&prefix) || !shown.contains(case.says) {
            failures.push(format!(
                "{}: expected {prefix:?}...{:?}, got {shown:?}",
                case.rule, case.says
            ));
        }
        assert_eq!(error.key_path, case.key_path, "{}", case.rule);
        assert_eq!(error.line, Some(line), "{}", case.rule);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn syntax_errors_carry_the_parser_line_and_no_key_path() {
    for (find, replace, marker) in [
        ("days = 30", "days = = 30", "days"),
        ("seed = 1", "seed = 1\nseed = 2", "seed = 2"),
        ("[brand]", "[brand", "[brand"),
        ("price = 29.0", "price = 29.0.0", "29.0.0"),
    ] {
        let text = BASE.replacen(find, replace, 1);
        let error = parse_str(&text, "bad.toml").unwrap_err();
        assert_eq!(error.key_path, "", "{replace}: {error}");
        assert_eq!(
            error.line,
            Some(line_of(&text, marker)),
            "{replace}: {error}"
        );
        assert!(
            error
                .to_string()
                .starts_with(&format!("bad.toml:{}: ", line_of(&text, marker))),
            "{error}"
        );
    }
}

#[test]
fn the_first_error_in_file_order_is_reported() {
    let text = BASE
        .replacen("days = 30", "days = 0", 1)
        .replacen("cpm = 40.0", "cpm = -1", 1);
    assert_eq!(
        parse_str(&text, "bad.toml").unwrap_err().key_path,
        "simulation.days"
    );
    // Tables in an unusual order: still the first in the file wins.
    let optimize = BASE.find("[optimize]").unwrap();
    let moved = BASE[..optimize]
        .replacen("days = 30", "days = 0", 1)
        .replacen(
            "\n[simulation]",
            "\n[optimize]\niterations = 0\n\n[simulation]",
            1,
        );
    let error = parse_str(&moved, "bad.toml").unwrap_err();
    assert_eq!(error.key_path, "optimize.iterations", "{error}");
}

#[test]
fn empty_and_list_less_files_are_rejected() {
    let error = parse_str("", "empty.toml").unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("empty.toml: simulation: missing required key"),
        "{error}"
    );
    let start = BASE.find("[[content]] # course").unwrap();
    let end = BASE.find("[[channels]] # ads").unwrap();
    let without_content = format!("content = []\n{}{}", &BASE[..start], &BASE[end..]);
    let error = parse_str(&without_content, "bad.toml").unwrap_err();
    assert_eq!(error.key_path, "content", "{error}");
    assert!(error.message.contains("at least one"), "{error}");

    let start = BASE.find("[[market.segments]] # students").unwrap();
    let end = BASE.find("[[content]] # course").unwrap();
    let without_segments = format!("{}{}", &BASE[..start], &BASE[end..]);
    let error = parse_str(&without_segments, "bad.toml").unwrap_err();
    assert_eq!(error.key_path, "market.segments", "{error}");
    assert_eq!(error.line, Some(line_of(BASE, "[market]")), "{error}");
}

#[test]
fn channels_may_be_absent_or_empty() {
    let start = BASE.find("[[channels]] # ads").unwrap();
    let end = BASE.find("[brand]").unwrap();
    let without = format!("{}{}", &BASE[..start], &BASE[end..]).replacen(
        "targeting = { ads = 1.0, kol = 1.5 }\n",
        "",
        1,
    );
    assert!(
        parse_str(&without, "none.toml")
            .unwrap()
            .channels
            .is_empty()
    );
    let empty = format!("channels = []\n{without}");
    assert!(parse_str(&empty, "empty.toml").unwrap().channels.is_empty());
}

#[test]
fn a_missing_top_level_table_is_named() {
    let start = BASE.find("[brand]").unwrap();
    let end = BASE.find("[optimize]").unwrap();
    let text = format!("{}{}", &BASE[..start], &BASE[end..]);
    let error = parse_str(&text, "bad.toml").unwrap_err();
    assert_eq!(
        error.to_string(),
        "bad.toml: brand: missing required key \"brand\" (a table)"
    );
}

/// A file in a fresh directory (tests run in parallel, so never one shared path),
/// removed with its directory when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, bytes: &[u8]) -> TempFile {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "brandsim-scenario-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[test]
fn unreadable_and_non_utf8_files_are_errors() {
    let missing = Path::new("no/such/scenario.toml");
    let error = load_file(missing, &[]).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("no/such/scenario.toml: cannot read"),
        "{error}"
    );

    let mut bytes = b"name = \"x\"\n\n[simulation]\ndays = \"".to_vec();
    bytes.extend_from_slice(&[0xff, 0xfe, b'"', b'\n']);
    let file = TempFile::new("binary.toml", &bytes);
    let path = &file.0;
    let error = load_file(path, &[]).unwrap_err();
    assert_eq!(error.line, Some(4), "{error}");
    assert!(error.message.contains("not valid UTF-8"), "{error}");
    assert_eq!(error.file, path.display().to_string());
}

#[test]
fn garbage_never_panics() {
    let mut inputs: Vec<String> = vec![
        "[".repeat(100_000),
        format!("a = {}{}", "[".repeat(10_000), "]".repeat(10_000)),
        format!("a = {}", "{ b = ".repeat(10_000)),
        format!("[{}]", vec!["a"; 10_000].join(".")),
        format!("{} = 1", vec!["market"; 10_000].join(".")),
        "\0\0\0".to_string(),
        "market = []\nsimulation = 3\ncontent = [1, \"x\"]\nbrand = {}".to_string(),
        "[[market.segments]]\nname = 1\n[[content]]\ntopic = []".to_string(),
        "market.segments = [{}, [], 3]".to_string(),
    ];
    // A fixed pseudo-random walk over bytes and over mutations of BASE.
    let mut state: u64 = 0x9e3779b97f4a7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..200 {
        let bytes: Vec<u8> = (0..(next() % 300)).map(|_| (next() % 256) as u8).collect();
        inputs.push(String::from_utf8_lossy(&bytes).into_owned());
        let mut text = BASE.as_bytes().to_vec();
        for _ in 0..(1 + next() % 4) {
            let at = (next() as usize) % text.len();
            text[at] = b" =[]{}.,\"#\n0-xe"[(next() % 15) as usize];
        }
        inputs.push(String::from_utf8_lossy(&text).into_owned());
    }
    for input in &inputs {
        // Ok or Err, never a panic; an Err always displays.
        if let Err(error) = parse_str(input, "garbage.toml") {
            assert!(!error.to_string().is_empty());
        }
    }
}

fn base_file() -> TempFile {
    TempFile::new("base.toml", BASE.as_bytes())
}

#[test]
fn overrides_address_entries_by_name() {
    let overrides = [
        set("channels.kol.daily_budget=4000"),
        set("market.segments.students.share=0.5"),
        set("market.segments.pros.share=0.5"),
        set("market.segments.students.topics.tech=0.7"),
        set("market.segments.pros.targeting.ads=2"),
        set("content.membership.price=19.5"),
        set("content.course.promotion=3"),
        set("brand.value=0.5"),
        set("optimize.estimator=lr"),
        set("simulation.days=60"),
        set("channels[0].cpm=15"),
        set("name=renamed"),
    ];
    let (scenario, source) = load_file(&base_file().0, &overrides).unwrap();
    assert_eq!(scenario.channels[1].daily_budget, 4000.0);
    assert_eq!(scenario.channels[0].cpm, 15.0);
    assert_eq!(scenario.market.segments[0].share, 0.5);
    let tech = &scenario.market.segments[0].topics[0];
    assert_eq!(tech.0, 0);
    assert!((tech.1 - 0.7 / 1.1).abs() < 1e-12);
    assert_eq!(scenario.market.segments[1].targeting, vec![2.0, 1.0]);
    assert_eq!(scenario.content[1].price, 19.5);
    assert_eq!(scenario.content[0].promotion, 3.0);
    assert_eq!(scenario.brand.value, 0.5);
    assert_eq!(scenario.optimize.estimator, Estimator::LikelihoodRatio);
    assert_eq!(scenario.simulation.days, 60);
    assert_eq!(scenario.name, "renamed");
    assert_eq!(
        parse_str(&source.resolved_toml(), "x.toml").unwrap(),
        scenario
    );
}

#[test]
fn integer_overrides_stay_integers() {
    let (scenario, source) =
        load_file(&base_file().0, &[set("market.population=1000000")]).unwrap();
    assert_eq!(scenario.market.population, 1_000_000);
    assert_eq!(
        source.document["market"]["population"],
        toml::Value::Integer(1_000_000)
    );
    assert!(source.resolved_toml().contains("population = 1000000\n"));
}

#[test]
fn override_of_an_absent_optional_key_is_allowed() {
    let path = scenarios_dir().join("bass.toml");
    let (scenario, _) = load_file(
        &path,
        &[
            set("optimize.iterations=7"),
            set("content.the product.promotion=2"),
        ],
    )
    .unwrap();
    assert_eq!(scenario.optimize.iterations, 7);
    assert_eq!(scenario.content[0].promotion, 2.0);
}

fn override_error(assignment: &str) -> ScenarioError {
    load_file(&base_file().0, &[set(assignment)]).unwrap_err()
}

#[test]
fn override_of_an_unknown_name_lists_the_known_ones() {
    let error = override_error("channels.tv.daily_budget=1");
    assert_eq!(error.key_path, "channels.tv.daily_budget");
    assert_eq!(error.line, None);
    assert!(
        error
            .to_string()
            .ends_with(": channels.tv.daily_budget: no channel named \"tv\"; channels are: ads, kol (from --set)"),
        "{error}"
    );
    let error = override_error("market.segments.hobbyists.share=0.1");
    assert!(
        error.message.contains("segments are: students, pros"),
        "{error}"
    );
    let error = override_error("content.ebook.price=1");
    assert!(
        error.message.contains("no content item named \"ebook\""),
        "{error}"
    );
}

#[test]
fn override_of_a_key_outside_the_model_is_an_error() {
    let error = override_error("brand.colour=1");
    assert_eq!(error.key_path, "brand.colour");
    assert!(
        error
            .message
            .starts_with("unknown key \"colour\"; expected one of: value"),
        "{error}"
    );
    assert!(override_error("colour=1").message.contains("unknown key"));
    assert!(
        override_error("market.segments.students=1")
            .message
            .contains("set one of its keys")
    );
}

#[test]
fn override_values_are_validated_like_file_values() {
    let cases = [
        ("simulation.days=2.5", "found float 2.5"),
        ("market.population=-3", "found -3"),
        ("brand.value=nan", "found nan"),
        ("channels.kol.cpm=zero", "found string \"zero\""),
        (
            "optimize.estimator=newton",
            "expected one of \"spsa\", \"fd\", \"lr\"",
        ),
        (
            "market.segments.students.targeting.tv=1",
            "no channel named \"tv\"",
        ),
    ];
    for (assignment, says) in cases {
        let error = override_error(assignment);
        let key = assignment.split('=').next().unwrap();
        assert_eq!(error.key_path, key, "{error}");
        assert_eq!(error.line, None, "{error}");
        assert!(error.message.contains(says), "{assignment}: {error}");
        assert!(error.message.ends_with("(from --set)"), "{error}");
    }
}

#[test]
fn with_overrides_applies_on_top_of_the_resolved_scenario() {
    let (base, source) = load_file(&base_file().0, &[set("brand.value=1")]).unwrap();
    let (variant, variant_source) = source
        .with_overrides(&[set("channels.ads.cpm=10")])
        .unwrap();
    assert_eq!(variant.brand.value, 1.0);
    assert_eq!(variant.channels[0].cpm, 10.0);
    assert_eq!(base.channels[0].cpm, 20.0);
    assert_eq!(variant_source.file, source.file);
    let error = source
        .with_overrides(&[set("simulation.days=0")])
        .unwrap_err();
    assert_eq!(error.key_path, "simulation.days");
    assert!(error.message.ends_with("(from --set)"), "{error}");
}

#[test]
fn malformed_assignments_are_errors() {
    assert!(parse_assignment("brand.value").is_err());
    assert!(parse_assignment("=3").is_err());
    assert!(parse_assignment("brand.value=").is_err());
    let error = parse_assignment("no-equals").unwrap_err();
    assert!(error.to_string().contains("expected KEY=VALUE"), "{error}");
}

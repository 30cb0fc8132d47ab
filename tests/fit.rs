//! `brandsim fit churn` and `brandsim fit bass` end to end: the published estimates
//! come out of the command, the outputs are written, and bad tables are refused
//! with the file, line and column.

mod common;

use common::{
    Scratch, assert_refused_writing_nothing, brandsim, json_of, path, read_json, succeed, text,
};

const COHORTS: &str = "period,regular,high end\n0,1000,1000\n1,631,869\n2,468,743\n3,382,653\n4,326,593\n5,289,551\n6,262,517\n7,241,491\n";
const SALES: &str = "period,sales\n1,840\n2,1470\n3,2110\n4,4000\n5,7590\n6,10950\n7,10530\n8,9470\n9,7790\n10,5890\n";

#[test]
fn fit_churn_reproduces_fader_hardie_and_writes_its_outputs() {
    let dir = Scratch::new("churn");
    let regular = dir.join("regular.csv");
    let only_regular: String = COHORTS
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n")
        .collect();
    std::fs::write(&regular, only_regular).unwrap();
    let out = dir.join("out");
    let json = json_of(&[
        "fit",
        "churn",
        path(&regular),
        "--json",
        "--out",
        path(&out),
    ]);
    assert_eq!(
        format!("{:.3}", json["alpha"]["estimate"].as_f64().unwrap()),
        "0.704"
    );
    assert_eq!(
        format!("{:.3}", json["beta"]["estimate"].as_f64().unwrap()),
        "1.182"
    );
    assert_eq!(
        json["curve"].as_array().unwrap().len(),
        15,
        "periods 0..=14"
    );
    assert!(
        json["segment_toml"]
            .as_str()
            .unwrap()
            .contains("churn_alpha = 0.704")
    );
    for file in [
        "churn.json",
        "churn.csv",
        "churn-survival.svg",
        "churn-retention.svg",
    ] {
        assert!(out.join(file).exists(), "{file}");
    }
    assert_eq!(read_json(&out.join("churn.json")), json);

    let both = dir.join("both.csv");
    std::fs::write(&both, COHORTS).unwrap();
    let table = text(
        &succeed(&[
            "fit",
            "churn",
            path(&both),
            "--out",
            &dir.arg("both"),
            "--periods",
            "10",
        ])
        .stdout,
    );
    assert!(
        table.contains("2 cohorts") && table.contains("(projected)"),
        "{table}"
    );
}

#[test]
fn fit_bass_offers_both_forms_and_reproduces_published_estimates() {
    let dir = Scratch::new("bass");
    let sales = dir.join("sales.csv");
    std::fs::write(&sales, SALES).unwrap();
    let density = json_of(&[
        "fit",
        "bass",
        path(&sales),
        "--form",
        "density",
        "--json",
        "-o",
        &dir.arg("d"),
    ]);
    assert!((density["m"]["estimate"].as_f64().unwrap() - 67_980.0).abs() < 10.0);
    assert!((density["m"]["se"].as_f64().unwrap() - 3_130.0).abs() < 10.0);
    assert_eq!(
        format!("{:.5}", density["p"]["estimate"].as_f64().unwrap()),
        "0.00659"
    );
    assert_eq!(
        format!("{:.3}", density["q"]["estimate"].as_f64().unwrap()),
        "0.638"
    );
    assert!((density["residual_se"].as_f64().unwrap() - 727.0).abs() < 1.0);
    let period = json_of(&[
        "fit",
        "bass",
        path(&sales),
        "--period-days",
        "365",
        "--json",
        "-o",
        &dir.arg("p"),
    ]);
    assert_eq!(period["form"], "period", "the default form");
    assert_eq!(
        format!("{:.4}", period["p"]["estimate"].as_f64().unwrap()),
        "0.0088"
    );
    assert_eq!(
        format!("{:.3}", period["q"]["estimate"].as_f64().unwrap()),
        "0.642"
    );
    let q = period["q"]["estimate"].as_f64().unwrap();
    let wom = period["scenario_values"]["word_of_mouth"].as_f64().unwrap();
    assert!((wom - q / 365.0).abs() < 1e-12);
    assert!(dir.join("p").join("bass.svg").exists());
}

#[test]
fn bad_tables_are_refused_with_file_line_and_column() {
    let dir = Scratch::new("bad");
    let cases = [
        (
            "churn",
            "period,a\n0,1000\n1,700\n2,750\n",
            "grows.csv:4: column 2 (\"a\"): the cohort grows from 700 to 750",
        ),
        (
            "churn",
            "period,a\n0,1000\n1,7x0\n",
            "cell.csv:3: column 2 (\"a\"): expected a number, found \"7x0\"",
        ),
        (
            "bass",
            "period,sales\n1,5\n2,oops\n3,4\n4,4\n",
            "cell2.csv:3: column 2 (\"sales\"): expected a number",
        ),
        (
            "bass",
            "period,sales\n1,5\n2,6,7\n",
            "ragged.csv:3: expected 2 cells",
        ),
    ];
    let names = ["grows.csv", "cell.csv", "cell2.csv", "ragged.csv"];
    for ((model, table, expected), name) in cases.into_iter().zip(names) {
        let file = dir.join(name);
        std::fs::write(&file, table).unwrap();
        let out = dir.join(format!("out-{name}"));
        let output = brandsim(&["fit", model, path(&file), "--out", path(&out)]);
        let expected = expected.replace(name, path(&file));
        assert_refused_writing_nothing(&output, &(model, table), &[&expected], &out);
    }
    let missing = brandsim(&["fit", "churn", &dir.arg("nope.csv")]);
    assert_refused_writing_nothing(
        &missing,
        &"missing",
        &["nope.csv: cannot read"],
        &dir.join("none"),
    );
    let sales = dir.join("sales.csv");
    std::fs::write(&sales, SALES).unwrap();
    let output = brandsim(&[
        "fit",
        "bass",
        path(&sales),
        "--period-days",
        "0",
        "-o",
        &dir.arg("x"),
    ]);
    assert_refused_writing_nothing(
        &output,
        &"period-days",
        &["--period-days 0: expected a positive number"],
        &dir.join("x"),
    );
}

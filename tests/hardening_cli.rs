//! End-to-end failure paths of `brandsim run`: hostile scenario files, studies
//! too big for the machine, and output directories that must not be clobbered.
//! Each gives a clear message and exit code 2, never a panic or partial output.

mod common;

use std::path::Path;
use std::process::Output;

use common::{Scratch, assert_refused, brandsim, path as s};

const SMALL: [&str; 5] = [
    "--quiet",
    "--set",
    "market.population=500",
    "--replications",
    "2",
];

fn run(scenario: &str, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["run", scenario, "--out", s(out)];
    args.extend(SMALL);
    args.extend(extra);
    brandsim(&args)
}

#[test]
fn scenario_that_is_a_directory_empty_or_huge_is_refused_by_name() {
    let scratch = Scratch::new("files");
    let dir = scratch.join("dir.toml");
    std::fs::create_dir(&dir).unwrap();
    let empty = scratch.join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let huge = scratch.join("huge.toml");
    std::fs::write(&huge, vec![b'#'; 11 << 20]).unwrap();
    let out = scratch.join("out");
    assert_refused(
        &run(s(&dir), &out, &[]),
        &"brandsim run",
        &["dir.toml: is a directory"],
    );
    assert_refused(
        &run(s(&empty), &out, &[]),
        &"brandsim run",
        &["empty.toml", "missing required key"],
    );
    assert_refused(
        &run(s(&huge), &out, &[]),
        &"brandsim run",
        &["huge.toml", "at most 10485760 bytes"],
    );
    assert!(!out.exists(), "nothing is written");
}

#[test]
fn impossible_study_is_refused_with_how_much_it_needs() {
    let scratch = Scratch::new("guard");
    let out = scratch.join("out");
    // Subscriptions: every user may be a subscriber at once.
    let output = run(
        "scenarios/knowledge_platform.toml",
        &out,
        // Longer than the guard's pilot runs (issue 18), so the estimate is
        // the worst case: every user a subscriber.
        &[
            "--set",
            "market.population=4294967295",
            "--set",
            "simulation.days=20000",
        ],
    );
    let per_user = brandsim::guard::PROSPECT_BYTES_PER_USER + brandsim::guard::BYTES_PER_SUBSCRIBER;
    assert_refused(
        &output,
        &"brandsim run",
        &[
            "the study needs about",
            &format!("4294967295 users × {per_user} bytes per user"),
            "--set market.population=",
        ],
    );
    let days = run(
        "scenarios/bass.toml",
        &out,
        &["--set", "simulation.days=4294967295"],
    );
    assert_refused(&days, &"brandsim run", &["4294967295 days", "fewer days"]);
    assert!(!out.exists(), "nothing is written");
}

#[test]
fn overflowing_derived_quantity_is_refused_with_key_path() {
    let scratch = Scratch::new("overflow");
    let output = run(
        "scenarios/bass.toml",
        &scratch.join("out"),
        &[
            "--set",
            "channels.ads.daily_budget=1e300",
            "--set",
            "channels.ads.cpm=1e-300",
        ],
    );
    assert_refused(
        &output,
        &"brandsim run",
        &[
            "channels.ads.daily_budget",
            "overflows",
            "lower daily_budget",
        ],
    );
}

#[test]
fn money_totals_that_could_overflow_are_refused_with_key_path() {
    let scratch = Scratch::new("money");
    let out = scratch.join("out");
    // Finite, and fine for every single product the model computes, but the
    // revenue of 500 users over 60 days could reach 3e310.
    let price = run(
        "scenarios/bass.toml",
        &out,
        &["--set", "content.the product.price=1e307"],
    );
    assert_refused(
        &price,
        &"brandsim run",
        &[
            "content.the product.price",
            "price·population·days",
            "1e100",
        ],
    );
    let spend = run(
        "scenarios/bass.toml",
        &out,
        &["--set", "brand.cost_per_day=1e99", "--set", "brand.value=1"],
    );
    assert_refused(
        &spend,
        &"brandsim run",
        &["brand.cost_per_day", "spend over the horizon", "1e100"],
    );
    assert!(!out.exists(), "nothing is written");
    // Just below the bound, the study runs.
    let dear = run(
        "scenarios/bass.toml",
        &out,
        &["--set", "content.the product.price=1e95"],
    );
    assert!(
        dear.status.success(),
        "{}",
        String::from_utf8_lossy(&dear.stderr)
    );
}

#[test]
fn output_of_a_different_study_is_not_overwritten_without_force() {
    let scratch = Scratch::new("force");
    let out = scratch.join("study");
    let results = || std::fs::read_to_string(out.join("replications.csv")).unwrap();
    assert!(run("scenarios/bass.toml", &out, &[]).status.success());
    // The same study again is not recomputed over its results: it is resumed.
    assert_refused(
        &run("scenarios/bass.toml", &out, &[]),
        &"brandsim run",
        &["already holds a study", "--resume"],
    );
    let first = results();
    let different = run(
        "scenarios/bass.toml",
        &out,
        &["--set", "market.population=400"],
    );
    assert_refused(
        &different,
        &"brandsim run",
        &["already holds the results of a different study", "--force"],
    );
    assert!(results() == first, "the results are left as they were");
    let forced = run(
        "scenarios/bass.toml",
        &out,
        &["--set", "market.population=400", "--force"],
    );
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    assert!(results() != first, "--force overwrites");
    let foreign = scratch.join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("thesis.tex"), "precious").unwrap();
    assert_refused(
        &run("scenarios/bass.toml", &foreign, &[]),
        &"brandsim run",
        &["is not empty and holds no brandsim study"],
    );
    assert_eq!(
        std::fs::read_to_string(foreign.join("thesis.tex")).unwrap(),
        "precious"
    );
    // A refusal leaves the directory as it was: no lock file either.
    let names = |dir: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&foreign), ["thesis.tex"]);
    let empty = scratch.join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert_refused(
        &brandsim(&["run", "scenarios/bass.toml", "-q", "--resume", s(&empty)]),
        &"resume of an empty directory",
        &["no study to resume there"],
    );
    assert!(names(&empty).is_empty(), "{:?}", names(&empty));
}

#[test]
fn unwritable_output_gives_a_clear_error() {
    let scratch = Scratch::new("unwritable");
    let file = scratch.join("a-file");
    std::fs::write(&file, "").unwrap();
    // A path under a regular file, and a directory that cannot be created even by
    // root (tests run as root, where permission bits are not enforced).
    assert_refused(
        &run("scenarios/bass.toml", &file.join("out"), &[]),
        &"brandsim run",
        &["cannot write", "a-file/out"],
    );
    assert_refused(
        &run("scenarios/bass.toml", &file, &[]),
        &"brandsim run",
        &["exists and is not a directory"],
    );
    assert_refused(
        &run("scenarios/bass.toml", Path::new("/proc/brandsim-out"), &[]),
        &"brandsim run",
        &["cannot write /proc/brandsim-out"],
    );

    // A read-only directory, where permissions are enforced (not as root).
    use std::os::unix::fs::PermissionsExt;
    let read_only = scratch.join("read-only");
    std::fs::create_dir(&read_only).unwrap();
    std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(read_only.join("probe"), "").is_ok() {
        eprintln!("skipped: permissions are not enforced for this user (root)");
    } else {
        assert_refused(
            &run("scenarios/bass.toml", &read_only, &[]),
            &"brandsim run",
            &["cannot write", "Permission denied"],
        );
    }
    std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn an_overflow_refusal_names_the_key_the_user_set() {
    let scratch = Scratch::new("overflow-set");
    let out = scratch.join("out");
    let cases: [(&[&str], &str); 3] = [
        (
            &["channels.ads.daily_budget=1e99", "channels.ads.cpm=1e99"],
            "channels.ads.daily_budget",
        ),
        (&["channels.ads.cpm=1e-307"], "channels.ads.cpm"),
        (&["market.price_reference=1e-320"], "market.price_reference"),
    ];
    for (sets, key) in cases {
        let mut extra = Vec::new();
        for set in sets {
            extra.extend(["--set", *set]);
        }
        let output = run("scenarios/bass.toml", &out, &extra);
        assert_refused(
            &output,
            &sets,
            &[&format!("scenarios/bass.toml: {key}: "), "(from --set)"],
        );
        assert!(!out.exists(), "{sets:?}: nothing is written");
    }
}

//! End-to-end tests of studies that outgrow one process: `--shard K/N` shards
//! merged with `brandsim merge` equal a one-process run bit for bit, bad merges are
//! refused naming the shard, and a study stopped by SIGINT resumes to the same
//! outputs without recomputing a finished replication.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{
    Scratch, Stamp, assert_refused_writing_nothing, brandsim, interrupt_when, merge,
    outcome_stamps, path, study_results, succeed, text,
};

const SCENARIO: &str = "scenarios/knowledge_platform.toml";
const SMALL: [&str; 6] = [
    "--set",
    "market.population=1500",
    "--set",
    "simulation.days=25",
    "--replications",
    "8",
];

/// Runs `brandsim run` on the small study with `extra` options; asserts success.
fn run_small(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["run", SCENARIO, "-q", "--out", path(out)];
    args.extend(SMALL);
    args.extend(extra);
    succeed(&args)
}

#[test]
fn merged_shards_equal_one_process_bit_for_bit() {
    let dir = Scratch::new("merge");
    let whole = dir.join("whole");
    run_small(&whole, &[]);
    let expected = study_results(&whole);
    for count in [1u32, 2, 3, 7] {
        // Shards given in reverse order: merging must not depend on it.
        let shards: Vec<PathBuf> = (0..count)
            .rev()
            .map(|k| {
                let shard_dir = dir.join(format!("n{count}-shard-{k}"));
                run_small(&shard_dir, &["--shard", &format!("{k}/{count}")]);
                shard_dir
            })
            .collect();
        let out = dir.join(format!("n{count}-merged"));
        let output = merge(&shards, &out);
        assert!(
            output.status.success(),
            "N = {count}: {}",
            text(&output.stderr)
        );
        assert_eq!(study_results(&out), expected, "N = {count}");
    }
}

#[test]
fn duplicated_missing_or_foreign_shards_are_refused_naming_the_shard() {
    let dir = Scratch::new("refuse");
    let shard = |name: &str, k: u32, extra: &[&str]| {
        let shard_dir = dir.join(name);
        let mut options = vec!["--shard".to_string(), format!("{k}/3")];
        options.extend(extra.iter().map(|s| s.to_string()));
        let options: Vec<&str> = options.iter().map(String::as_str).collect();
        run_small(&shard_dir, &options);
        shard_dir
    };
    let s0 = shard("s0", 0, &[]);
    let s1 = shard("s1", 1, &[]);
    let s2 = shard("s2", 2, &[]);
    let s2_other_value = shard("s2-value", 2, &["--set", "brand.value=0.5"]);
    let s2_other_seed = shard("s2-seed", 2, &["--seed", "7"]);
    let s1_again = shard("s1-again", 1, &[]);
    let not_a_study = dir.join("empty");
    std::fs::create_dir_all(&not_a_study).unwrap();

    let cases: Vec<(Vec<PathBuf>, Vec<&str>)> = vec![
        (
            vec![s0.clone(), s1.clone(), s1_again.clone(), s2.clone()],
            vec!["given twice", "1/3", "s1-again"],
        ),
        (vec![s0.clone(), s2.clone()], vec!["missing", "1/3"]),
        (
            vec![s0.clone(), s1.clone(), s2_other_value.clone()],
            vec!["s2-value", "scenario"],
        ),
        (
            vec![s0.clone(), s1.clone(), s2_other_seed.clone()],
            vec!["s2-seed", "seed"],
        ),
        (
            vec![s0.clone(), s1.clone(), not_a_study.clone()],
            vec!["empty", "not a brandsim study directory"],
        ),
    ];
    for (dirs, expected) in cases {
        let out = dir.join("merged");
        let output = merge(&dirs, &out);
        assert_refused_writing_nothing(&output, &dirs, &expected, &out);
    }
    // An incomplete shard is refused too, with the command that finishes it.
    std::fs::remove_file(s1.join("outcomes").join("000004.json")).unwrap();
    let output = merge(&[s0, s1.clone(), s2], &dir.join("merged"));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("incomplete") && stderr.contains("--resume"),
        "{stderr}"
    );
}

#[test]
fn bad_shard_and_resume_options_exit_2() {
    let dir = Scratch::new("options");
    for (options, expected) in [
        (vec!["--shard", "3/3"], "K/N"),
        (vec!["--shard", "1"], "K/N"),
        (vec!["--resume", "no/such/study"], "no study to resume"),
    ] {
        let mut args = vec!["run", SCENARIO, "-q"];
        args.extend(options.iter().copied());
        let output = brandsim(&args);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{options:?}: {stderr}");
        assert!(stderr.contains(expected), "{options:?}: {stderr}");
    }
    // A finished study is not overwritten, nor resumed with another scenario.
    let study = dir.join("study");
    run_small(&study, &[]);
    let mut args = vec!["run", SCENARIO, "-q", "--out", path(&study)];
    args.extend(SMALL);
    let again = brandsim(&args);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("already holds a study"));
    args.extend(["--resume", path(&study), "--set", "brand.value=1"]);
    let other = brandsim(&args);
    assert_eq!(other.status.code(), Some(2));
    assert!(
        text(&other.stderr).contains("not the same study"),
        "{}",
        text(&other.stderr)
    );
}

/// A study big enough to take a few seconds on one thread.
const SLOW: [&str; 8] = [
    "--set",
    "market.population=20000",
    "--set",
    "simulation.days=60",
    "--replications",
    "40",
    "--threads",
    "1",
];

/// Modification time and inode of each stored outcome: a rewritten file changes both.
fn outcome_files(dir: &Path) -> BTreeMap<String, Stamp> {
    outcome_stamps(&dir.join("outcomes")).unwrap()
}

#[test]
fn sigint_keeps_finished_replications_and_resume_matches_an_uninterrupted_run() {
    let dir = Scratch::new("sigint");
    let interrupted = dir.join("interrupted");
    let mut args = vec!["run", SCENARIO, "-q", "--out", path(&interrupted)];
    args.extend(SLOW);
    let output = interrupt_when(&args, || {
        interrupted
            .join("outcomes")
            .read_dir()
            .map_or(0, |d| d.count())
            >= 3
    });
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    assert!(!interrupted.join("summary.json").exists());
    let kept = outcome_files(&interrupted);
    assert!(
        (3..40).contains(&kept.len()),
        "{} replications kept",
        kept.len()
    );

    let resumed = brandsim(&[
        "run",
        path(&interrupted.join("scenario.toml")),
        "-q",
        "--threads",
        "2",
        "--resume",
        path(&interrupted),
    ]);
    let stderr = text(&resumed.stderr);
    assert!(resumed.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} replications were already done, {} computed now",
            kept.len(),
            40 - kept.len()
        )),
        "{stderr}"
    );
    let after = outcome_files(&interrupted);
    assert_eq!(after.len(), 40);
    for (name, stamp) in &kept {
        assert_eq!(after.get(name), Some(stamp), "{name} was rewritten");
    }

    let uninterrupted = dir.join("uninterrupted");
    let mut args = vec!["run", SCENARIO, "-q", "--out", path(&uninterrupted)];
    args.extend(SLOW);
    succeed(&args);
    assert_eq!(study_results(&interrupted), study_results(&uninterrupted));
}

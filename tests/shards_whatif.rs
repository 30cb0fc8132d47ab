//! End-to-end tests of sharded, interrupted and resumed what-if studies: `sweep`
//! and `compare` shards merged with `brandsim merge` equal one process bit for
//! bit, bad merges are refused naming the shard, and a sweep stopped by SIGINT
//! resumes to the same outputs without recomputing a finished replication.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{
    Scratch, Stamp, assert_refused_writing_nothing, brandsim, interrupt_when, merge,
    outcome_stamps, path, succeed, text,
};

const SMALL: [&str; 7] = [
    "-q",
    "--set",
    "market.population=1500",
    "--set",
    "simulation.days=25",
    "--replications",
    "7",
];

/// `brandsim sweep` of two keys (a 2 x 2 grid) on the small study.
fn sweep_args<'a>(out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["sweep", "scenarios/knowledge_platform.toml"];
    args.extend([
        "--vary",
        "brand.value=0,0.5",
        "--vary",
        "channels.kol.daily_budget=0,40",
    ]);
    args.extend(SMALL);
    args.extend(["--out", path(out)]);
    args.extend(extra);
    args
}

/// `brandsim compare` of the strategies' five arms on the small study.
fn compare_args<'a>(out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "compare",
        "scenarios/strategies.toml",
        "--metric",
        "revenue",
    ];
    args.extend(SMALL);
    args.extend(["--out", path(out)]);
    args.extend(extra);
    args
}

/// The outputs of a what-if study that must not depend on how it was run.
fn results(dir: &Path, files: &[&str]) -> Vec<String> {
    files
        .iter()
        .map(|name| std::fs::read_to_string(dir.join(name)).unwrap())
        .collect()
}

const SWEEP_FILES: [&str; 3] = ["sweep.csv", "sweep.json", "heatmap-profit.svg"];
const COMPARE_FILES: [&str; 4] = [
    "compare.csv",
    "compare.json",
    "compare-revenue.svg",
    "arm-2.toml",
];

#[test]
fn sharded_sweeps_and_comparisons_merge_to_one_process_bit_for_bit() {
    let dir = Scratch::new("merge");
    type Args = for<'a> fn(&'a Path, &[&'a str]) -> Vec<&'a str>;
    let studies: [(&str, Args, &[&str]); 2] = [
        ("sweep", sweep_args, &SWEEP_FILES),
        ("compare", compare_args, &COMPARE_FILES),
    ];
    for (command, args_of, files) in studies {
        let whole = dir.join(format!("{command}-whole"));
        let whole_out = succeed(&args_of(&whole, &["--json"]));
        let expected = results(&whole, files);
        for count in [2u32, 3] {
            // Shards given in reverse order: merging must not depend on it.
            let shards: Vec<PathBuf> = (0..count)
                .rev()
                .map(|k| {
                    let shard_dir = dir.join(format!("{command}-n{count}-shard-{k}"));
                    let shard = format!("{k}/{count}");
                    let output = succeed(&args_of(&shard_dir, &["--shard", &shard]));
                    assert!(text(&output.stdout).contains("brandsim merge"));
                    assert!(
                        !shard_dir.join(files[0]).exists(),
                        "a shard wrote {}",
                        files[0]
                    );
                    shard_dir
                })
                .collect();
            let out = dir.join(format!("{command}-n{count}-merged"));
            let mut args = vec!["merge"];
            args.extend(shards.iter().map(|d| path(d)));
            args.extend(["--out", path(&out), "--json"]);
            let merged = succeed(&args);
            assert_eq!(
                text(&merged.stdout),
                text(&whole_out.stdout),
                "{command}, N = {count}"
            );
            assert_eq!(results(&out, files), expected, "{command}, N = {count}");
        }
    }
}

#[test]
fn bad_whatif_merges_are_refused_naming_the_shard() {
    let dir = Scratch::new("refuse");
    let shard = |name: &str, k: u32, extra: &[&str]| {
        let shard_dir = dir.join(name);
        let shard = format!("{k}/3");
        let mut options = vec!["--shard", shard.as_str()];
        options.extend(extra);
        succeed(&sweep_args(&shard_dir, &options));
        shard_dir
    };
    let s0 = shard("s0", 0, &[]);
    let s1 = shard("s1", 1, &[]);
    let s2 = shard("s2", 2, &[]);
    let s2_other_value = shard("s2-value", 2, &["--set", "channels.ads.daily_budget=10"]);
    let s2_other_seed = shard("s2-seed", 2, &["--seed", "7"]);
    let s1_again = shard("s1-again", 1, &[]);
    let c2 = dir.join("c2");
    succeed(&compare_args(&c2, &["--shard", "2/3"]));
    let run2 = dir.join("run2");
    succeed(&[
        "run",
        "scenarios/knowledge_platform.toml",
        "-q",
        "--set",
        "market.population=1500",
        "--set",
        "simulation.days=25",
        "-r",
        "7",
        "--shard",
        "2/3",
        "--out",
        path(&run2),
    ]);

    let cases: Vec<(Vec<PathBuf>, Vec<&str>)> = vec![
        (
            vec![s0.clone(), s1.clone(), s1_again.clone(), s2.clone()],
            vec!["given twice", "1/3", "s1-again"],
        ),
        (vec![s0.clone(), s2.clone()], vec!["missing", "1/3"]),
        (
            vec![s0.clone(), s1.clone(), s2_other_value.clone()],
            vec!["s2-value", "study"],
        ),
        (
            vec![s0.clone(), s1.clone(), s2_other_seed.clone()],
            vec!["s2-seed", "seed"],
        ),
        (
            vec![s0.clone(), s1.clone(), c2.clone()],
            vec!["c2", "command is compare"],
        ),
        (
            vec![s0.clone(), s1.clone(), run2.clone()],
            vec!["run2", "not a shard of a brandsim sweep", "brandsim run"],
        ),
    ];
    for (dirs, expected) in cases {
        let out = dir.join("merged");
        let output = merge(&dirs, &out);
        assert_refused_writing_nothing(&output, &dirs, &expected, &out);
    }
    // An incomplete shard is refused too, with how to finish it.
    std::fs::remove_file(s1.join("points/3/outcomes/000004.json")).unwrap();
    let output = merge(&[s0.clone(), s1.clone(), s2.clone()], &dir.join("merged"));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("s1 (1/3) is incomplete")
            && stderr.contains("brandsim sweep")
            && stderr.contains("--resume"),
        "{stderr}"
    );
    // Which resuming the shard does; then the merge goes through.
    let resumed = succeed(&sweep_args(&s1, &["--resume", path(&s1)]));
    assert!(
        text(&resumed.stderr).contains("7 replications were already done, 1 computed now"),
        "{}",
        text(&resumed.stderr)
    );
    let output = merge(&[s0, s1.clone(), s2], &dir.join("merged"));
    assert!(output.status.success(), "{}", text(&output.stderr));

    // A finished sweep is not overwritten, nor resumed as another study.
    let again = brandsim(&sweep_args(&s1, &["--shard", "1/3"]));
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again.stderr).contains("already holds a sweep"),
        "{}",
        text(&again.stderr)
    );
    let other = brandsim(&sweep_args(
        &s1,
        &[
            "--resume",
            path(&s1),
            "--set",
            "channels.ads.daily_budget=10",
        ],
    ));
    assert_eq!(other.status.code(), Some(2));
    assert!(
        text(&other.stderr).contains("not the same study"),
        "{}",
        text(&other.stderr)
    );
}

/// A sweep long enough on one thread to be interrupted part-way: 2 grid points x 30.
fn slow_sweep<'a>(scenario: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["sweep", scenario, "-q", "--vary", "brand.value=0,0.5"];
    args.extend(extra);
    args
}

const SLOW: [&str; 8] = [
    "--set",
    "market.population=20000",
    "--set",
    "simulation.days=60",
    "--replications",
    "30",
    "--threads",
    "1",
];

/// Modification time and inode of each stored outcome of every grid point: a
/// rewritten file changes both.
fn outcome_files(dir: &Path) -> BTreeMap<String, Stamp> {
    let mut files = BTreeMap::new();
    for point in ["0", "1"] {
        let outcomes = dir.join("points").join(point).join("outcomes");
        let Some(stamps) = outcome_stamps(&outcomes) else {
            continue;
        };
        files.extend(
            stamps
                .into_iter()
                .map(|(name, stamp)| (format!("{point}/{name}"), stamp)),
        );
    }
    files
}

#[test]
fn sigint_keeps_a_sweeps_finished_replications_and_resume_matches_an_uninterrupted_sweep() {
    let dir = Scratch::new("sigint");
    let interrupted = dir.join("interrupted");
    let mut args = slow_sweep("scenarios/knowledge_platform.toml", &SLOW);
    args.extend(["--out", path(&interrupted)]);
    let output = interrupt_when(&args, || outcome_files(&interrupted).len() >= 3);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("brandsim sweep") && stderr.contains("--resume"),
        "{stderr}"
    );
    assert!(!interrupted.join("sweep.csv").exists());
    let kept = outcome_files(&interrupted);
    assert!(
        (3..60).contains(&kept.len()),
        "{} replications kept",
        kept.len()
    );

    // Resumed from the scenario the sweep stored, as its message says.
    let scenario = interrupted.join("scenario.toml");
    let resumed = succeed(&slow_sweep(
        path(&scenario),
        &["--threads", "2", "--resume", path(&interrupted)],
    ));
    let stderr = text(&resumed.stderr);
    assert!(
        stderr.contains(&format!(
            "{} replications were already done, {} computed now",
            kept.len(),
            60 - kept.len()
        )),
        "{stderr}"
    );
    let after = outcome_files(&interrupted);
    assert_eq!(after.len(), 60);
    for (name, stamp) in &kept {
        assert_eq!(after.get(name), Some(stamp), "{name} was rewritten");
    }

    let uninterrupted = dir.join("uninterrupted");
    let mut args = slow_sweep("scenarios/knowledge_platform.toml", &SLOW);
    args.extend(["--out", path(&uninterrupted)]);
    succeed(&args);
    let files = ["sweep.csv", "sweep.json", "sweep-profit.svg"];
    assert_eq!(
        results(&interrupted, &files),
        results(&uninterrupted, &files)
    );
}

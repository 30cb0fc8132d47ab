//! "Nothing lost, nothing mixed" under misuse (issue 12): study directories are
//! locked, stored outcomes are checked before anything is computed, `--force`
//! deletes only brandsim's own files, failed writes are errors, and undefined
//! figures and user-given names are shown safely everywhere.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Scratch, assert_refused, brandsim, path as s, succeed, text};

/// A tiny study: 300 users, 10 days, quiet.
const TINY: [&str; 5] = [
    "-q",
    "--set",
    "market.population=300",
    "--set",
    "simulation.days=10",
];

/// `brandsim CMD FILE --out OUT` with [`TINY`], `-r R` and `extra`.
fn tiny(cmd: &str, file: &str, out: &Path, r: &str, extra: &[&str]) -> Output {
    let mut args = vec![cmd, file, "--out", s(out), "-r", r];
    args.extend(TINY);
    args.extend(extra);
    brandsim(&args)
}

/// Every file below `dir`, relative, sorted.
fn files_below(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(here) = pending.pop() {
        for entry in std::fs::read_dir(&here).unwrap().map(|e| e.unwrap()) {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                pending.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

// ---------------------------------------------------------------- 1. locking

/// Starts a slow `run` into `out` and waits until it holds the directory's lock
/// (its pid is in `.brandsim-lock`).
fn start_slow_run(out: &Path) -> std::process::Child {
    let child = Command::new(env!("CARGO_BIN_EXE_brandsim"))
        .args([
            "run",
            "scenarios/knowledge_platform.toml",
            "-q",
            "-t",
            "1",
            "-r",
            "400",
            "--set",
            "market.population=200000",
            "--out",
            s(out),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(out.join(".brandsim-lock")).ok() != Some(pid.clone()) {
        assert!(Instant::now() < deadline, "the run never locked {out:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}

#[test]
fn a_second_writer_of_a_study_directory_is_refused_at_once_with_the_pid() {
    let scratch = Scratch::new("lock");
    let out = scratch.join("study");
    let mut first = start_slow_run(&out);
    let pid = first.id().to_string();
    let shard = scratch.join("shard");
    succeed(&[
        "run",
        "scenarios/bass.toml",
        "-q",
        "-r",
        "2",
        "--set",
        "market.population=300",
        "--out",
        s(&shard),
    ]);
    let o = s(&out);
    let bass = "scenarios/bass.toml";
    let cases: Vec<Vec<&str>> = vec![
        vec!["run", bass, "-q", "--out", o],
        vec!["run", bass, "-q", "--force", "--out", o],
        vec![
            "run",
            "scenarios/knowledge_platform.toml",
            "-q",
            "--resume",
            o,
        ],
        vec!["sweep", bass, "-q", "--vary", "brand.value=0,1", "--out", o],
        vec!["compare", "scenarios/strategies.toml", "-q", "--out", o],
        vec!["optimize", bass, "-q", "--iterations", "1", "--out", o],
        vec!["merge", s(&shard), "--out", o],
    ];
    for args in &cases {
        let started = Instant::now();
        let output = brandsim(args);
        assert_refused(
            &output,
            args,
            &[&format!(
                "{o} is in use by another brandsim process (pid {pid})"
            )],
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{args:?} waited"
        );
    }
    // A merge that reads a study directory being written is refused too.
    let merged = scratch.join("merged");
    assert_refused(
        &brandsim(&["merge", o, "--out", s(&merged)]),
        &"merge of a directory in use",
        &["is in use by another brandsim process"],
    );
    // The OS releases the lock when the process dies, however it dies.
    first.kill().unwrap();
    first.wait().unwrap();
    let output = brandsim(&[
        "run",
        "scenarios/knowledge_platform.toml",
        "-q",
        "--resume",
        o,
        "-r",
        "1",
    ]);
    let stderr = text(&output.stderr);
    assert!(
        !stderr.contains("in use"),
        "the lock is released when its holder dies: {stderr}"
    );
}

#[test]
fn default_output_directories_never_collide() {
    let scratch = Scratch::new("default-dirs");
    let binary = env!("CARGO_BIN_EXE_brandsim");
    let bass = std::fs::canonicalize("scenarios/bass.toml").unwrap();
    // Started together, most within the same second: each gets its own directory.
    let run = |_: usize| {
        Command::new(binary)
            .current_dir(&*scratch)
            .args(["run", s(&bass), "-q", "-r", "2", "--no-plots"])
            .args([
                "--set",
                "market.population=300",
                "--set",
                "simulation.days=5",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let children: Vec<_> = (0..4).map(run).collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", text(&output.stderr));
    }
    let dirs: Vec<PathBuf> = std::fs::read_dir(scratch.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 4, "{dirs:?}");
    for dir in &dirs {
        let summary = common::read_json(&dir.join("summary.json"));
        assert_eq!(summary["replications"], 2, "{dir:?} holds one whole study");
        assert_eq!(
            std::fs::read_dir(dir.join("outcomes")).unwrap().count(),
            2,
            "{dir:?}"
        );
    }
}

// ---------------------------------------------------------- 2. outcome files

/// A finished 4-replication study of the Bass scenario in `dir`.
fn finished_study(dir: &Path, extra: &[&str]) {
    let output = tiny("run", "scenarios/bass.toml", dir, "4", extra);
    assert!(output.status.success(), "{}", text(&output.stderr));
}

#[test]
fn resume_and_merge_refuse_outcome_files_that_do_not_belong() {
    let scratch = Scratch::new("outcomes");
    let other = scratch.join("other");
    finished_study(&other, &["--seed", "99"]);
    let reference = scratch.join("reference");
    finished_study(&reference, &[]);
    type Damage = fn(&Path, &Path);
    let cases: [(&str, Damage, &[&str]); 6] = [
        (
            "a copy under a non-canonical name",
            |dir, _| {
                let o = dir.join("outcomes");
                std::fs::copy(o.join("000003.json"), o.join("3.json")).unwrap();
            },
            &["outcomes/3.json", "NNNNNN.json"],
        ),
        (
            "an outcome from another study",
            |dir, other| {
                std::fs::copy(
                    other.join("outcomes/000001.json"),
                    dir.join("outcomes/000001.json"),
                )
                .unwrap();
            },
            &["000001.json", "belongs to another study"],
        ),
        (
            "a number edited by hand",
            |dir, _| {
                let path = dir.join("outcomes/000002.json");
                let text = std::fs::read_to_string(&path).unwrap();
                let edited = text.replacen("\"exposures\":", "\"exposures\":1", 1);
                assert_ne!(text, edited);
                std::fs::write(&path, edited).unwrap();
            },
            &["000002.json", "checksum"],
        ),
        (
            "a renamed outcome",
            |dir, _| {
                let o = dir.join("outcomes");
                std::fs::rename(o.join("000003.json"), o.join("000000.json")).unwrap();
            },
            &[
                "000000.json",
                "holds replication 3",
                "name says replication 0",
            ],
        ),
        (
            "a truncated file",
            |dir, _| {
                let path = dir.join("outcomes/000002.json");
                let bytes = std::fs::read(&path).unwrap();
                std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
            },
            &["000002.json", "not a replication outcome"],
        ),
        (
            "a replication beyond the study",
            |dir, _| {
                let o = dir.join("outcomes");
                std::fs::copy(o.join("000003.json"), o.join("000009.json")).unwrap();
            },
            &[
                "000009.json",
                "not one of shard 0/1 of a 4-replication study",
            ],
        ),
    ];
    for (i, (what, damage, expected)) in cases.iter().enumerate() {
        let dir = scratch.join(format!("study-{i}"));
        finished_study(&dir, &[]);
        // One replication to compute: refused before it is computed.
        std::fs::remove_file(dir.join("outcomes/000001.json")).unwrap();
        damage(&dir, &other);
        let had_000001 = dir.join("outcomes/000001.json").exists();
        let resumed = brandsim(&[
            "run",
            s(&dir.join("scenario.toml")),
            "-q",
            "--resume",
            s(&dir),
        ]);
        assert_refused(&resumed, what, expected);
        assert_eq!(
            dir.join("outcomes/000001.json").exists(),
            had_000001,
            "{what}: nothing is computed before every file is checked"
        );
        if !had_000001 {
            // Put the missing replication back so that only the damage is wrong.
            std::fs::copy(
                reference.join("outcomes/000001.json"),
                dir.join("outcomes/000001.json"),
            )
            .unwrap();
        }
        let merged = scratch.join(format!("merged-{i}"));
        assert_refused(
            &brandsim(&["merge", s(&dir), "--out", s(&merged)]),
            what,
            &["outcomes"],
        );
        assert!(!merged.exists(), "{what}: merge wrote nothing");
    }
}

#[test]
fn a_sweep_is_checked_at_every_point_before_any_point_is_computed() {
    let scratch = Scratch::new("sweep-outcomes");
    let dir = scratch.join("sweep");
    let vary = ["--vary", "brand.value=0,1", "--no-plots"];
    let output = tiny("sweep", "scenarios/bass.toml", &dir, "2", &vary);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let missing = dir.join("points/0/outcomes/000001.json");
    std::fs::remove_file(&missing).unwrap();
    let damaged = dir.join("points/1/outcomes/000000.json");
    let bytes = std::fs::read(&damaged).unwrap();
    std::fs::write(&damaged, &bytes[..bytes.len() - 10]).unwrap();
    let mut args = vec!["sweep", "scenarios/bass.toml", "--resume", s(&dir)];
    args.extend(vary);
    args.extend(TINY);
    args.extend(["-r", "2"]);
    assert_refused(
        &brandsim(&args),
        &"sweep --resume",
        &["points/1/outcomes/000000.json"],
    );
    assert!(
        !missing.exists(),
        "point 0 was computed before point 1 was checked"
    );
}

#[test]
fn a_study_directory_of_the_previous_format_is_refused_with_a_clear_message() {
    let scratch = Scratch::new("old-format");
    let dir = scratch.join("study");
    finished_study(&dir, &[]);
    let meta = dir.join("study.json");
    let text = std::fs::read_to_string(&meta).unwrap();
    std::fs::write(&meta, text.replace("brandsim-study/2", "brandsim-study/1")).unwrap();
    assert_refused(
        &brandsim(&[
            "run",
            s(&dir.join("scenario.toml")),
            "-q",
            "--resume",
            s(&dir),
        ]),
        &"resume of an old study",
        &["brandsim-study/1", "run the study again"],
    );
}

// -------------------------------------------------------------- 3. --force

#[test]
fn force_deletes_only_brandsims_files_and_leaves_nothing_of_the_previous_study() {
    let scratch = Scratch::new("force-own");
    let bass = "scenarios/bass.toml";
    let strategies = "scenarios/strategies.toml";
    let sweep = |out: &Path| {
        let mut args = vec!["sweep", bass, "--out", s(out), "-r", "2", "--vary"];
        args.extend(["brand.value=0,1"]);
        args.extend(TINY);
        succeed(&args);
    };

    // A sweep directory forced into a run: nothing of the sweep is left, and
    // `sweep --resume` no longer accepts the directory.
    let dir = scratch.join("sweep-then-run");
    sweep(&dir);
    let forced = tiny("run", bass, &dir, "2", &["--force", "--no-plots"]);
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    let left = files_below(&dir);
    for gone in [
        "sweep.csv",
        "sweep.json",
        "whatif.json",
        "points/0/study.json",
    ] {
        assert!(!left.iter().any(|f| f == gone), "{gone} left: {left:?}");
    }
    assert!(!dir.join("points").exists(), "{left:?}");
    let mut args = vec![
        "sweep",
        bass,
        "--resume",
        s(&dir),
        "--vary",
        "brand.value=0,1",
    ];
    args.extend(TINY);
    assert_refused(
        &brandsim(&args),
        &"sweep --resume over a run",
        &["no sweep"],
    );

    // A run forced into a comparison: the run's outputs are gone.
    let dir = scratch.join("run-then-compare");
    assert!(tiny("run", bass, &dir, "2", &[]).status.success());
    let forced = tiny("compare", strategies, &dir, "2", &["--force", "--no-plots"]);
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    let left = files_below(&dir);
    for gone in [
        "summary.json",
        "replications.csv",
        "daily.csv",
        "study.json",
    ] {
        assert!(!left.iter().any(|f| f == gone), "{gone} left: {left:?}");
    }
    assert!(!left.iter().any(|f| f.starts_with("fan-")), "{left:?}");
    assert!(!left.iter().any(|f| f.starts_with("outcomes/")), "{left:?}");

    // Files brandsim did not write: refused where --force would delete or
    // overwrite them, kept elsewhere.
    type Plant = (&'static str, &'static str, bool);
    let cases: [Plant; 4] = [
        (
            "outcomes/survey-2024.csv",
            "delete outcomes/survey-2024.csv",
            true,
        ),
        ("summary.json", "overwrite summary.json", true),
        ("points/0/notes.txt", "delete points/0/notes.txt", true),
        ("notes.txt", "", false),
    ];
    for (i, (name, message, refused)) in cases.iter().enumerate() {
        let dir = scratch.join(format!("foreign-{i}"));
        assert!(
            tiny("run", bass, &dir, "2", &["--no-plots"])
                .status
                .success()
        );
        if name.starts_with("summary") {
            // A user's file under an output's name, in a directory of a study that
            // never wrote it (a sweep).
            std::fs::remove_dir_all(&dir).unwrap();
            sweep(&dir);
        }
        let planted = dir.join(name);
        std::fs::create_dir_all(planted.parent().unwrap()).unwrap();
        std::fs::write(&planted, "user data").unwrap();
        let output = tiny(
            "run",
            bass,
            &dir,
            "3",
            &["--force", "--no-plots", "--set", "brand.value=0.5"],
        );
        if *refused {
            assert_refused(&output, name, &[message, "brandsim did not write"]);
        } else {
            assert!(output.status.success(), "{name}: {}", text(&output.stderr));
        }
        assert_eq!(
            std::fs::read_to_string(&planted).unwrap(),
            "user data",
            "{name} is never deleted"
        );
    }
}

#[test]
fn merge_applies_the_rules_of_run_to_its_out() {
    let scratch = Scratch::new("merge-out");
    let shards: Vec<PathBuf> = (0..2).map(|k| scratch.join(format!("shard-{k}"))).collect();
    for (k, shard) in shards.iter().enumerate() {
        let spec = format!("{k}/2");
        let output = tiny(
            "run",
            "scenarios/bass.toml",
            shard,
            "4",
            &["--shard", &spec],
        );
        assert!(output.status.success(), "{}", text(&output.stderr));
    }
    let merge = |out: &Path| common::merge(&shards, out);

    let users = scratch.join("users");
    std::fs::create_dir(&users).unwrap();
    std::fs::write(users.join("summary.json"), "mine").unwrap();
    assert_refused(
        &merge(&users),
        &"merge over a user's files",
        &["holds no brandsim study"],
    );
    assert_eq!(
        std::fs::read_to_string(users.join("summary.json")).unwrap(),
        "mine"
    );
    assert!(
        !users.join(".brandsim-lock").exists(),
        "a refusal leaves no lock file behind"
    );

    let merged = scratch.join("merged");
    assert!(merge(&merged).status.success());
    let again = merge(&merged);
    assert_refused(
        &again,
        &"merge into a merged directory",
        &["already holds this merged study"],
    );
    assert!(
        !text(&again.stderr).contains("--resume"),
        "merge takes no --resume: {}",
        text(&again.stderr)
    );
    let run_dir = scratch.join("run");
    assert!(
        tiny("run", "scenarios/bass.toml", &run_dir, "2", &[])
            .status
            .success()
    );
    assert_refused(
        &merge(&run_dir),
        &"merge over another study",
        &["different study"],
    );
}

// ------------------------------------------------------------ 4. failed writes

/// Runs `brandsim args` with stdout into `/dev/full`.
fn into_dev_full(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_brandsim"))
        .args(args)
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn a_failed_write_to_stdout_is_an_error_not_a_panic() {
    let scratch = Scratch::new("dev-full");
    let shard = scratch.join("shard");
    assert!(
        tiny("run", "scenarios/bass.toml", &shard, "2", &["--no-plots"])
            .status
            .success()
    );
    let out = |name: &str| scratch.arg(name);
    let (a, b, c, d, e, f) = (out("a"), out("b"), out("c"), out("d"), out("e"), out("f"));
    let mut cases: Vec<Vec<&str>> = vec![
        vec!["validate", "scenarios/bass.toml"],
        vec!["run", "scenarios/bass.toml", "--out", &a],
        vec!["run", "scenarios/bass.toml", "--json", "--out", &b],
        vec![
            "sweep",
            "scenarios/bass.toml",
            "--vary",
            "brand.value=0,1",
            "--out",
            &c,
        ],
        vec!["compare", "scenarios/strategies.toml", "--out", &d],
        vec![
            "optimize",
            "scenarios/bass.toml",
            "--iterations",
            "1",
            "--out",
            &e,
        ],
        vec!["merge", s(&shard), "--out", &f],
    ];
    for args in &mut cases {
        if args[0] != "validate" && args[0] != "merge" {
            args.extend(["-r", "2"]);
            args.extend(TINY);
        }
        if matches!(args[0], "run" | "sweep" | "compare") {
            args.push("--no-plots");
        }
        let output = into_dev_full(args);
        assert_refused(&output, args, &["error: cannot write stdout"]);
    }
}

#[test]
fn a_full_disk_during_the_outputs_is_an_error_and_leaves_no_partial_file() {
    let scratch = Scratch::new("file-limit");
    let out = scratch.join("study");
    // A file size limit (ulimit -f, with SIGXFSZ ignored) makes larger writes
    // fail like a full disk: the outcomes fit, daily.csv or the plots do not.
    let script = format!(
        "trap '' XFSZ; ulimit -f 10; exec {} run scenarios/bass.toml -q -r 2 --set market.population=300 --out {}",
        env!("CARGO_BIN_EXE_brandsim"),
        s(&out)
    );
    let output = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert_refused(&output, &script, &["error: cannot write", "File too large"]);
    let files = files_below(&out);
    assert!(
        files.iter().any(|f| f.starts_with("outcomes/")),
        "{files:?}"
    );
    assert!(!files.iter().any(|f| f.ends_with(".partial")), "{files:?}");
}

#[test]
fn a_closed_pipe_stays_quiet() {
    let scratch = Scratch::new("pipe");
    let mut child = Command::new(env!("CARGO_BIN_EXE_brandsim"))
        .args([
            "run",
            "scenarios/bass.toml",
            "--out",
            &scratch.arg("o"),
            "-r",
            "2",
        ])
        .args(TINY)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = text(&output.stderr);
    assert!(
        !stderr.contains("error") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

// --------------------------------------------------------------- 5. throughput

#[test]
fn throughput_counts_only_this_process_and_peak_memory_includes_the_outputs() {
    let scratch = Scratch::new("throughput");
    let dir = scratch.join("study");
    let output = tiny("run", "scenarios/bass.toml", &dir, "8", &["--no-plots"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    for j in 2..8 {
        std::fs::remove_file(dir.join(format!("outcomes/{j:06}.json"))).unwrap();
    }
    let resumed = common::json_of(&[
        "run",
        s(&dir.join("scenario.toml")),
        "-q",
        "--json",
        "--no-plots",
        "--resume",
        s(&dir),
    ]);
    let throughput = &resumed["throughput"];
    assert_eq!(throughput["user_days"], 300.0 * 10.0 * 6.0, "{throughput}");
    let study = common::read_json(&dir.join("study.json"));
    let this_process = throughput["seconds"].as_f64().unwrap();
    assert!(this_process < study["work"]["seconds"].as_f64().unwrap());

    // 10^5 days of one user: the simulation is small, the outputs are not.
    let long = scratch.join("long");
    let summary = common::json_of(&[
        "run",
        "scenarios/bass.toml",
        "-q",
        "--json",
        "--no-plots",
        "-r",
        "1",
        "--set",
        "market.population=1",
        "--set",
        "simulation.days=100000",
        "--out",
        s(&long),
    ]);
    let reported = summary["throughput"]["peak_memory_bytes"].as_f64().unwrap();
    let study = common::read_json(&long.join("study.json"));
    let simulating = study["work"]["peak_memory_bytes"].as_f64().unwrap();
    assert!(
        reported > simulating + 10e6,
        "the output phase ({reported}) peaks above the simulation ({simulating})"
    );
}

// ------------------------------------------------------ 11. undefined figures

#[test]
fn an_undefined_figure_is_empty_in_csv_null_in_json_and_na_in_tables() {
    let scratch = Scratch::new("undefined");
    let compare = scratch.join("compare");
    let output = tiny(
        "compare",
        "scenarios/strategies.toml",
        &compare,
        "1",
        &["--no-plots"],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let table = text(&output.stdout);
    assert!(
        !table.contains("exact"),
        "one replication claims precision:\n{table}"
    );
    assert!(table.contains("n/a"), "{table}");
    let sweep = scratch.join("sweep");
    let output = tiny(
        "sweep",
        "scenarios/bass.toml",
        &sweep,
        "1",
        &["--no-plots", "--vary", "brand.value=0,1"],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let run = scratch.join("run");
    assert!(
        tiny("run", "scenarios/bass.toml", &run, "1", &["--no-plots"])
            .status
            .success()
    );
    for (dir, csv) in [
        (&compare, "compare.csv"),
        (&sweep, "sweep.csv"),
        (&run, "replications.csv"),
        (&run, "daily.csv"),
    ] {
        let text = std::fs::read_to_string(dir.join(csv)).unwrap();
        assert!(!text.to_lowercase().contains("nan"), "{csv} writes NaN");
        assert!(!text.contains("inf"), "{csv} writes inf");
    }
    // The same figure: an empty cell in CSV, null in JSON.
    let csv = std::fs::read_to_string(compare.join("compare.csv")).unwrap();
    let row = csv
        .lines()
        .find(|l| l.starts_with("kol-heavy,profit,"))
        .unwrap();
    let cells: Vec<&str> = row.split(',').collect();
    assert_eq!(cells[3], "", "ci_low of one replication: {row}");
    assert_eq!(cells[8], "", "se_paired of one replication: {row}");
    let json = common::read_json(&compare.join("compare.json"));
    let profit = &json["arms"][1]["metrics"]["profit"];
    assert!(profit["summary"]["ci95"][0].is_null(), "{profit}");
    assert!(
        profit["paired_difference"]["se_paired"].is_null(),
        "{profit}"
    );
    let csv = std::fs::read_to_string(sweep.join("sweep.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let column = header.iter().position(|h| *h == "profit_ci_low").unwrap();
    let first: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(first[column], "");
    let json = common::read_json(&sweep.join("sweep.json"));
    assert!(json["points"][0]["metrics"]["profit"]["ci95"][0].is_null());
}

// ---------------------------------------------------------- 12. sweep grids

#[test]
fn sweep_grids_are_refused_when_they_miss_stop_or_repeat_a_value() {
    let scratch = Scratch::new("grids");
    let cases: [(&str, &[&str]); 5] = [
        ("brand.value=0:1:0.3", &["STOP 1 is not on the grid", "0.9"]),
        ("brand.value=0.1,0.1,0.2", &["0.1 is given twice"]),
        ("brand.value=1,1.0", &["1 is given twice"]),
        (
            "market.population=100:1000:400",
            &["STOP 1000 is not on the grid", "900"],
        ),
        ("brand.value=0.2:0:-0.15", &["STOP 0 is not on the grid"]),
    ];
    for (vary, expected) in cases {
        let out = scratch.join("out");
        let output = tiny("sweep", "scenarios/bass.toml", &out, "1", &["--vary", vary]);
        common::assert_refused_writing_nothing(&output, &vary, expected, &out);
    }
    // Dates are counted as day numbers; the message shows the text as written
    // and which day each date is.
    let vary = "campaigns.summer-sale.start=2026-05-01:2026-07-01:30";
    let out = scratch.join("dates");
    let output = brandsim(&[
        "sweep",
        "scenarios/campaign_calendar.toml",
        "--out",
        s(&out),
        "-r",
        "1",
        "--vary",
        vary,
    ]);
    common::assert_refused_writing_nothing(
        &output,
        &vary,
        &[
            "STOP 181 is not on the grid",
            &format!("--vary \"{vary}\" counts its dates as days"),
            "2026-05-01 is day 120, 2026-07-01 is day 181",
        ],
        &out,
    );
}

#[test]
fn the_sweep_table_tells_every_grid_value_apart() {
    let scratch = Scratch::new("grid-labels");
    for (vary, labels) in [
        (
            "brand.value=0:0.0002:0.00005",
            &["0.00005", "0.0001", "0.00015", "0.0002"][..],
        ),
        (
            "brand.value=0:3e-10:1e-10",
            &["0.0000000001", "0.0000000002", "0.0000000003"][..],
        ),
        ("brand.value=0:1:0.25", &["0.2500", "0.5000", "0.7500"][..]),
    ] {
        let out = scratch.join(format!("s{}", vary.len()));
        let output = tiny(
            "sweep",
            "scenarios/bass.toml",
            &out,
            "1",
            &["--vary", vary, "--no-plots", "--metric", "profit"],
        );
        assert!(output.status.success(), "{}", text(&output.stderr));
        let table = text(&output.stdout);
        let firsts: Vec<&str> = table
            .lines()
            .skip(2)
            .filter_map(|l| l.split_whitespace().next())
            .take_while(|w| w.parse::<f64>().is_ok())
            .collect();
        for label in labels {
            assert!(firsts.contains(label), "{vary}: {label} in {firsts:?}");
        }
        let mut distinct = firsts.clone();
        distinct.dedup();
        assert_eq!(distinct.len(), firsts.len(), "{vary}: {firsts:?}");
    }
}

// -------------------------------------------------------------- 14. names

#[test]
fn names_cannot_break_tables_or_become_spreadsheet_formulas() {
    let scratch = Scratch::new("names");
    let text_of = std::fs::read_to_string("scenarios/strategies.toml").unwrap();
    let hostile = text_of
        .replace(
            "name = \"strategies\"",
            "name = \"=HYPERLINK(\\\"x\\\")\\nfake row\"",
        )
        .replace("name = \"kol-heavy\"", "name = \"-2+3\"")
        .replace("name = \"price-cut\"", "name = \"@SUM(A1)\"")
        .replace("name = \"double-ads\"", "name = \"+1\\u001b[31m\"");
    let file = scratch.join("hostile.toml");
    std::fs::write(&file, hostile).unwrap();
    let out = scratch.join("out");
    let output = tiny("compare", s(&file), &out, "2", &["--no-plots"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let table = text(&output.stdout);
    assert!(!table.contains('\u{1b}'), "an escape reaches the terminal");
    assert!(
        !table.lines().any(|l| l.starts_with("fake row")),
        "a newline in a name breaks the table:\n{table}"
    );
    assert!(table.contains("\\n"), "{table}");
    let mut reader = csv::Reader::from_path(out.join("compare.csv")).unwrap();
    for row in reader.records() {
        let arm = row.unwrap()[0].to_string();
        assert!(
            !arm.starts_with(['=', '+', '-', '@']),
            "a formula in compare.csv: {arm:?}"
        );
    }
    // JSON keeps names as they are.
    let json = common::read_json(&out.join("compare.json"));
    assert_eq!(json["arms"][1]["name"], "-2+3");
}

#[test]
fn arms_of_several_files_are_labelled_with_their_file() {
    let scratch = Scratch::new("labels");
    let out = scratch.join("out");
    let mut args = vec![
        "compare",
        "scenarios/strategies.toml",
        "scenarios/kol_heavy.toml",
        "--out",
        s(&out),
        "-r",
        "2",
        "--no-plots",
        "--json",
    ];
    args.extend(TINY);
    let json = common::json_of(&args);
    let names: Vec<&str> = json["arms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"scenarios/strategies.toml: kol-heavy"),
        "{names:?}"
    );
    assert!(
        names.contains(&"scenarios/strategies.toml: strategies"),
        "{names:?}"
    );
    assert!(
        names.contains(&"scenarios/kol_heavy.toml: kol_heavy"),
        "{names:?}"
    );
    let unique: std::collections::BTreeSet<_> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "{names:?}");
}

// ------------------------------------------------- 15. messages to act on

#[test]
fn messages_point_at_what_to_fix() {
    let scratch = Scratch::new("messages");
    let syntax = scratch.join("syntax.toml");
    std::fs::write(&syntax, "[simulation]\ndays = 10\nseed = = 3\n").unwrap();
    let typo = scratch.join("typo.toml");
    let platform = std::fs::read_to_string("scenarios/knowledge_platform.toml").unwrap();
    std::fs::write(
        &typo,
        platform.replacen("price_sensitivity", "price_sensitivty", 1),
    )
    .unwrap();
    let dangling = scratch.join("dangling");
    std::os::unix::fs::symlink(scratch.join("nowhere"), &dangling).unwrap();
    let cases: [(Vec<&str>, &[&str]); 5] = [
        (
            vec!["validate", s(&syntax)],
            &[
                "syntax.toml:3: TOML syntax error at line 3, column 8",
                "3 | seed = = 3",
                "|        ^",
            ],
        ),
        (
            vec!["validate", s(&typo)],
            &["price_sensitivty", "did you mean \"price_sensitivity\"?"],
        ),
        (
            vec!["run", "scenarios/bass.toml", "--set", "brand.valeu=1"],
            &["did you mean \"value\"?"],
        ),
        (
            vec!["run", "scenarios/bass.toml", "--set", "channels.adz.cpm=3"],
            &["no channel named \"adz\"; did you mean \"ads\"?"],
        ),
        (
            vec!["run", "scenarios/bass.toml", "-q", "--out", s(&dangling)],
            &["is a symbolic link to", "nowhere, which does not exist"],
        ),
    ];
    for (args, expected) in &cases {
        assert_refused(&brandsim(args), args, expected);
    }
    assert!(
        !scratch.join("nowhere").exists(),
        "nothing is created through the link"
    );
}

/// The command printed after `continue with: ` on stderr, as words.
fn continue_command(stderr: &str) -> Vec<String> {
    let line = stderr
        .lines()
        .find_map(|l| l.split_once("continue with: ").map(|(_, c)| c))
        .unwrap_or_else(|| panic!("no command to continue in {stderr}"));
    shlex::split(line).unwrap()
}

#[test]
fn the_command_printed_after_ctrl_c_repeats_every_option() {
    let scratch = Scratch::new("ctrl-c");
    let slow = [
        "-q",
        "-t",
        "1",
        "--no-plots",
        "--set",
        "market.population=20000",
        "--set",
        "simulation.days=60",
        "-r",
        "30",
    ];
    for (command, file, extra, first) in [
        (
            "run",
            "scenarios/knowledge_platform.toml",
            &[][..],
            "outcomes",
        ),
        (
            "sweep",
            "scenarios/knowledge_platform.toml",
            &["--vary", "brand.value=0,0.5"][..],
            "points/0/outcomes",
        ),
    ] {
        let out = scratch.join(command);
        let mut args = vec![command, file, "--out", s(&out)];
        args.extend(slow);
        args.extend(extra);
        let ready = || {
            std::fs::read_dir(out.join(first)).is_ok_and(|mut d| {
                d.any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".json"))
            })
        };
        let interrupted = common::interrupt_when(&args, ready);
        assert_eq!(interrupted.status.code(), Some(130));
        let words = continue_command(&text(&interrupted.stderr));
        for option in ["--no-plots", "-t", "--quiet"] {
            let given = option != "-t" || words.iter().any(|w| w == "--threads");
            assert!(
                given && (option == "-t" || words.iter().any(|w| w == option)),
                "{command}: {option} is not repeated in {words:?}"
            );
        }
        assert_eq!(words[0], "brandsim");
        let words: Vec<&str> = words[1..].iter().map(String::as_str).collect();
        let resumed = brandsim(&words);
        assert!(resumed.status.success(), "{}", text(&resumed.stderr));
        let files = files_below(&out);
        assert!(
            !files.iter().any(|f| f.ends_with(".svg")),
            "{command}: the continued study drew plots: {files:?}"
        );
    }
}

// ------------------------------------------------ 9. compare stays linear

/// Bytes of every file below `dir`.
fn bytes_below(dir: &Path) -> u64 {
    files_below(dir)
        .iter()
        .map(|f| std::fs::metadata(dir.join(f)).unwrap().len())
        .sum()
}

#[test]
fn compare_disk_grows_linearly_with_the_number_of_variants() {
    let scratch = Scratch::new("many-variants");
    let bass = std::fs::read_to_string("scenarios/bass.toml").unwrap();
    let per_arm = |variants: usize| {
        let mut scenario = bass.clone();
        for i in 0..variants {
            scenario.push_str(&format!(
                "\n[[variants]]\nname = \"v{i}\"\nset = {{ \"brand.value\" = {} }}\n",
                i as f64 / variants as f64
            ));
        }
        let file = scratch.join(format!("v{variants}.toml"));
        std::fs::write(&file, scenario).unwrap();
        let out = scratch.join(format!("out-{variants}"));
        let output = brandsim(&[
            "compare",
            s(&file),
            "--out",
            s(&out),
            "-q",
            "-r",
            "1",
            "--no-plots",
            "--set",
            "market.population=10",
            "--set",
            "simulation.days=1",
        ]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        bytes_below(&out) as f64 / (variants + 1) as f64
    };
    let (few, many) = (per_arm(20), per_arm(160));
    assert!(
        many < 1.3 * few,
        "bytes per arm grow with the number of variants: {few:.0} with 20, {many:.0} with 160"
    );
}

// ---------------------------------------------- 8. the guard's memory estimate

/// A scenario of `segments` segments and `items` items (each sold as a
/// subscription of `renewal_days`, 0 for one-off) where everyone is exposed,
/// clicks and buys on day 0: the worst case for the engine's memory.
fn wide_scenario(segments: usize, items: usize, renewal_days: u32, population: u32) -> String {
    let mut out = format!(
        "name = \"wide\"\n[simulation]\ndays = 30\nseed = 1\nreplications = 2\n[market]\n\
         population = {population}\nword_of_mouth = 0.3\ndormancy = 0.0\n\
         price_reference = 10.0\nsatisfaction_noise = 0.0\n"
    );
    for s in 0..segments {
        out += &format!(
            "[[market.segments]]\nname = \"s{s}\"\nshare = {}\ntopics = {{ t = 1.0 }}\n\
             price_sensitivity = 0.0\nclick_heterogeneity = 0.0\nchurn_alpha = 1.0\nchurn_beta = 1.0\n",
            1.0 / segments as f64
        );
    }
    for i in 0..items {
        out += &format!(
            "[[content]]\nname = \"i{i}\"\ntopic = \"t\"\nclick_rate = 1.0\nconversion_rate = 1.0\n\
             price = 10.0\nquality = 1.0\nrenewal_days = {renewal_days}\n"
        );
    }
    out += "[[channels]]\nname = \"ads\"\ndaily_budget = 1000000.0\ncpm = 1.0\n[brand]\nvalue = 0.0\n\
            click_effect = 0.0\nconversion_effect = 0.0\nretention_effect = 0.0\n\
            satisfaction_effect = 0.0\ntopic_match = 0.0\ncost_per_day = 0.0\n";
    out
}

#[test]
fn peak_memory_stays_within_the_guards_estimate() {
    let scratch = Scratch::new("estimate");
    let bass = std::fs::read_to_string("scenarios/bass.toml").unwrap();
    let platform = std::fs::read_to_string("scenarios/knowledge_platform.toml").unwrap();
    let cases: [(&str, String, u32); 5] = [
        ("one-off market, 3·10^6 users", bass, 3_000_000),
        ("platform, 10^6 users", platform, 1_000_000),
        (
            "everyone subscribes on day 0",
            wide_scenario(1, 1, 30, 300_000),
            300_000,
        ),
        (
            "1000 segments × 1000 items",
            wide_scenario(1000, 1000, 30, 2000),
            2000,
        ),
        (
            "one-off, 1000 × 300",
            wide_scenario(1000, 300, 0, 2000),
            2000,
        ),
    ];
    for (i, (what, text, population)) in cases.iter().enumerate() {
        let file = scratch.join(format!("case-{i}.toml"));
        std::fs::write(&file, text).unwrap();
        let population_set = format!("market.population={population}");
        let assignments = [
            brandsim::scenario::parse_assignment(&population_set).unwrap(),
            brandsim::scenario::parse_assignment("simulation.replications=2").unwrap(),
        ];
        let (scenario, _) = brandsim::scenario::load_file(&file, &assignments).unwrap();
        let estimate = brandsim::guard::MemoryEstimate::of(&scenario);
        let summary = common::json_of(&[
            "run",
            s(&file),
            "-q",
            "--json",
            "--no-plots",
            "-t",
            "2",
            "-r",
            "2",
            "--set",
            &population_set,
            "--out",
            &scratch.arg(&format!("out-{i}")),
        ]);
        let throughput = &summary["throughput"];
        let used = throughput["peak_memory_bytes"].as_u64().unwrap()
            - throughput["start_memory_bytes"].as_u64().unwrap();
        // The simulated part against the estimate without the process itself,
        // plus 8 MiB for the second thread's stack and allocator arenas.
        let budget = estimate.total(2, 2) - brandsim::guard::FIXED_BYTES + (8 << 20);
        assert!(
            used <= budget,
            "{what}: peak {used} bytes above the start exceeds the estimate {budget}"
        );
    }
}

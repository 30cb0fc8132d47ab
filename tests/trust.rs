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

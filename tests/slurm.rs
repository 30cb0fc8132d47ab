//! The Slurm example run for real: `examples/slurm/submit.sh` submits a job array
//! of shards and a dependent merge job to the cluster that `.ci/slurm-setup.sh`
//! started, and the merged result must equal a one-process run. Skipped, with a
//! visible message, when no Slurm cluster answers.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{study_results, succeed};

/// Prints past the test harness's capture, so a skip is seen in the test output.
fn say(message: &str) {
    let _ = writeln!(std::io::stderr(), "{message}");
}

/// Why Slurm cannot run jobs here, if it cannot.
fn slurm_unavailable() -> Option<String> {
    match Command::new("sinfo").args(["-h", "-o", "%T"]).output() {
        Err(error) => Some(format!(
            "sinfo cannot run ({error}); run .ci/slurm-setup.sh"
        )),
        Ok(output) if !output.status.success() => Some(format!(
            "no Slurm controller answers: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Ok(output) => {
            let states = String::from_utf8_lossy(&output.stdout).into_owned();
            let usable = states
                .lines()
                .any(|s| ["idle", "mixed", "allocated", "completing"].contains(&s.trim()));
            (!usable).then(|| format!("no usable Slurm node (states: {})", states.trim()))
        }
    }
}

/// Whether Slurm no longer has job `id` pending or running (an unknown id is gone).
fn job_gone(id: &str) -> bool {
    Command::new("squeue")
        .args(["-h", "-j", id])
        .output()
        .is_ok_and(|o| !o.status.success() || o.stdout.iter().all(u8::is_ascii_whitespace))
}

const OPTIONS: [&str; 6] = [
    "--set",
    "market.population=1500",
    "--set",
    "simulation.days=25",
    "--replications",
    "9",
];

#[test]
fn slurm_job_array_and_merge_job_equal_one_process() {
    if let Some(reason) = slurm_unavailable() {
        say(&format!(
            "SKIPPED: slurm_job_array_and_merge_job_equal_one_process: {reason}"
        ));
        return;
    }
    let root = std::env::current_dir().unwrap();
    let dir: PathBuf = std::env::temp_dir().join(format!("brandsim-slurm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = root.join("scenarios/knowledge_platform.toml");

    let whole = dir.join("whole");
    let mut args = vec![
        "run",
        scenario.to_str().unwrap(),
        "-q",
        "--out",
        whole.to_str().unwrap(),
    ];
    args.extend(OPTIONS);
    succeed(&args);

    let study = dir.join("study");
    let submit = Command::new(root.join("examples/slurm/submit.sh"))
        .args(["3", scenario.to_str().unwrap(), study.to_str().unwrap()])
        .args(OPTIONS)
        .env("BRANDSIM", env!("CARGO_BIN_EXE_brandsim"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&submit.stdout).into_owned();
    assert!(
        submit.status.success(),
        "submit.sh failed: {stdout}{}",
        String::from_utf8_lossy(&submit.stderr)
    );
    say(&format!("slurm: {}", stdout.trim()));

    let merge_job = stdout
        .split("merge job ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .expect("submit.sh names the merge job")
        .to_string();
    let merged = study.join("merged");
    let deadline = Instant::now() + Duration::from_secs(300);
    while !merged.join("summary.json").exists() {
        if Instant::now() > deadline
            || job_gone(&merge_job) && !merged.join("summary.json").exists()
        {
            let logs: String = std::fs::read_dir(study.join("logs"))
                .map(|d| {
                    d.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                        .collect()
                })
                .unwrap_or_default();
            let queue = Command::new("squeue")
                .output()
                .map(|o| o.stdout)
                .unwrap_or_default();
            panic!(
                "the merge job {merge_job} wrote no summary; queue:\n{}\nlogs:\n{logs}",
                String::from_utf8_lossy(&queue)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for k in 0..3 {
        assert!(study.join(format!("shard-{k}/study.json")).exists());
    }
    assert_eq!(study_results(&merged), study_results(&whole));
    let _ = std::fs::remove_dir_all(dir);
}

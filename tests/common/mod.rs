//! Helpers shared by the end-to-end tests of the `brandsim` command: running it,
//! scratch directories, reading what a study wrote, and checking a refusal.

// Each test binary compiles this module and uses only some of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::Deref;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs the `brandsim` binary with `args` and waits for it.
pub fn brandsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_brandsim"))
        .args(args)
        .output()
        .expect("brandsim runs")
}

/// Runs `brandsim` with `args`, which must succeed.
pub fn succeed(args: &[&str]) -> Output {
    let output = brandsim(args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        text(&output.stderr)
    );
    output
}

/// Runs a command that must succeed and parses its `--json` output.
pub fn json_of(args: &[&str]) -> serde_json::Value {
    serde_json::from_slice(&succeed(args).stdout).unwrap()
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A path as a command-line argument.
pub fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A fresh scratch directory, removed when dropped; derefs to its path.
pub struct Scratch(PathBuf);

impl Scratch {
    /// `name` must be unique among the tests of one test binary.
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("brandsim-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// The path of `name` inside, as a command-line argument.
    pub fn arg(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Parses the JSON file at `path`.
pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The outputs of a study that must not depend on how it was run: the metrics of
/// `summary.json` (as written: shortest round-trip decimals, so equal text means
/// equal bits), `replications.csv` and `daily.csv`.
pub fn study_results(dir: &Path) -> (String, String, String) {
    let summary = read_json(&dir.join("summary.json"));
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    (
        summary["metrics"].to_string(),
        read("replications.csv"),
        read("daily.csv"),
    )
}

/// Modification time and inode of a file: a rewritten file changes both.
pub type Stamp = (i64, i64, u64);

/// The stamp of each stored outcome (`*.json`) in the directory `outcomes`, by
/// file name; `None` if there is no such directory.
pub fn outcome_stamps(outcomes: &Path) -> Option<BTreeMap<String, Stamp>> {
    let entries = outcomes.read_dir().ok()?;
    let mut stamps = BTreeMap::new();
    for entry in entries.map(|e| e.unwrap()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".json") {
            let m = entry.metadata().unwrap();
            stamps.insert(name, (m.mtime(), m.mtime_nsec(), m.ino()));
        }
    }
    Some(stamps)
}

/// Starts `brandsim` with `args`, sends it SIGINT once `ready()` holds (within
/// 60 s), and waits for it to exit.
pub fn interrupt_when(args: &[&str], ready: impl Fn() -> bool) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_brandsim"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "no replication finished in 60 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    child.wait_with_output().unwrap()
}

/// `brandsim merge` of `dirs` into `out`.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Output {
    let mut args = vec!["merge"];
    args.extend(dirs.iter().map(|d| path(d)));
    args.extend(["--out", path(out)]);
    brandsim(&args)
}

/// Exit code 2, no panic, and stderr containing every one of `expected`;
/// `context` (what was run) heads the failure messages.
pub fn assert_refused(output: &Output, context: &dyn Debug, expected: &[&str]) {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{context:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{context:?}: {stderr}");
    for part in expected {
        assert!(
            stderr.contains(part),
            "{context:?}: expected {part:?} in {stderr}"
        );
    }
}

/// [`assert_refused`], and nothing written at `out`.
pub fn assert_refused_writing_nothing(
    output: &Output,
    context: &dyn Debug,
    expected: &[&str],
    out: &Path,
) {
    assert_refused(output, context, expected);
    assert!(!out.exists(), "{context:?} wrote {}", out.display());
}

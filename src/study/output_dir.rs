//! The output directory of a study: one writer at a time (an exclusive `flock`
//! held for the whole command), which study it holds and which files are
//! brandsim's (the `.brandsim-study` marker), and what `--force` may delete.
//!
//! Must not depend on: the CLI, the engine.
//!
//! **Brandsim's own files** are (see [`is_own`]): the marker and the lock; the
//! store of a study (`study.json`, `scenario.toml`, `whatif.json`,
//! `outcomes/NNNNNN.json`, and the same below `points/<i>/` and `arms/<i>/`);
//! every file recorded in the marker, which `commands::write_output` does as it
//! writes each output (so a new output file needs no list to be updated); and the
//! `*.partial` temporaries of any of these. [`OUTPUT_NAMES`] lists the names an
//! output of any command may have: `--force` refuses to run when a file it does
//! not own has such a name (it would be overwritten), and never deletes one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The marker: which study a directory holds and which files it wrote.
pub const MARKER: &str = ".brandsim-study";
/// The lock file; the lock is an advisory `flock` on it, released by the OS when
/// the process ends, however it ends.
pub const LOCK: &str = ".brandsim-lock";
/// The `format` of a marker this version writes and reads.
pub const MARKER_FORMAT: &str = "brandsim-marker/2";

/// Names (with at most one `*`) of the files any brandsim command writes at the
/// top of its output directory. Add a new output here (and write it with
/// `commands::write_output`, which records it in the marker).
pub const OUTPUT_NAMES: &[&str] = &[
    "summary.json",
    "replications.csv",
    "daily.csv",
    "scenario.toml",
    "study.json",
    "whatif.json",
    "sweep.csv",
    "sweep.json",
    "compare.csv",
    "compare.json",
    "arm-*.toml",
    "fan-*.svg",
    "fan-*.png",
    "sweep-*.svg",
    "sweep-*.png",
    "heatmap-*.svg",
    "heatmap-*.png",
    "compare-*.svg",
    "compare-*.png",
    "trace.csv",
    "trace.svg",
    "optimize.json",
    "report.html",
    "network.json",
    "degree.svg",
    "degree.png",
    "sensitivity.csv",
    "sensitivity.json",
    "sensitivity-*.svg",
    "sensitivity-*.png",
    "calibration.json",
    "calibration.csv",
    "calibration-*.svg",
    "calibration-*.png",
    "evaluations.jsonl",
    "churn.json",
    "churn.csv",
    "churn-*.svg",
    "churn-*.png",
    "bass.json",
    "bass.csv",
    "bass.svg",
    "bass.png",
    "outcomes",
    "points",
    "arms",
];

/// Why an output directory cannot be used. Each message names the path.
#[derive(Debug, thiserror::Error)]
pub enum OutputDirError {
    #[error("{} is in use by another brandsim process (pid {pid}); wait for it to end or choose another --out", dir.display())]
    Busy { dir: PathBuf, pid: String },
    #[error("{flag} {}: {message}", dir.display())]
    Refused {
        flag: &'static str,
        dir: PathBuf,
        message: String,
    },
    #[error("cannot write {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> OutputDirError + '_ {
    move |source| OutputDirError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How [`DirLock::acquire`] finds or makes the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquire {
    /// `--resume DIR`: the directory must exist.
    Existing,
    /// `--out DIR`: created (with its parents) if missing.
    CreateIfMissing,
    /// The default `runs/<name>-<timestamp>`: always a new directory, created
    /// exclusively; `-2`, `-3`, ... is appended when the name is taken.
    Fresh,
}

/// An exclusive lock on an output directory, held until dropped. If this lock
/// created the directory and nothing but the marker was written into it when it
/// is dropped (the command failed early), the directory is removed again; if
/// the directory was there but the lock file was not, and the directory holds
/// no study when it is dropped (a refused `--out` or `--resume`), the lock file
/// is removed again: a refusal leaves a user's directory as it was.
#[derive(Debug)]
pub struct DirLock {
    dir: PathBuf,
    file: Option<File>,
    created: bool,
    /// This lock created `.brandsim-lock`.
    lock_created: bool,
}

impl DirLock {
    /// Takes the lock of `dir` (see [`Acquire`]; `flag` names the option in
    /// messages). Refuses at once, with the other process's pid, when another
    /// brandsim process holds it; refuses a dangling symbolic link or a file in
    /// the way with a clear message.
    pub fn acquire(
        dir: &Path,
        how: Acquire,
        flag: &'static str,
    ) -> Result<DirLock, OutputDirError> {
        let refused = |dir: &Path, message: String| OutputDirError::Refused {
            flag,
            dir: dir.to_path_buf(),
            message,
        };
        if let Ok(link) = fs::symlink_metadata(dir)
            && link.file_type().is_symlink()
            && fs::metadata(dir).is_err()
        {
            let target = fs::read_link(dir).unwrap_or_default();
            return Err(refused(
                dir,
                format!(
                    "is a symbolic link to {}, which does not exist; create that directory or choose another {flag}",
                    target.display()
                ),
            ));
        }
        if dir.exists() && !dir.is_dir() {
            return Err(refused(
                dir,
                "exists and is not a directory; expected a directory for the outputs".into(),
            ));
        }
        let (dir, created) = match how {
            Acquire::Existing => {
                if !dir.is_dir() {
                    return Err(refused(
                        dir,
                        if flag == "--resume" {
                            "no study to resume there (no such directory)".into()
                        } else {
                            "no such directory; expected a study's output directory".into()
                        },
                    ));
                }
                (dir.to_path_buf(), false)
            }
            Acquire::CreateIfMissing => {
                if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                    fs::create_dir_all(parent).map_err(io_error(dir))?;
                }
                match fs::create_dir(dir) {
                    Ok(()) => (dir.to_path_buf(), true),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        (dir.to_path_buf(), false)
                    }
                    Err(e) => return Err(io_error(dir)(e)),
                }
            }
            Acquire::Fresh => (create_fresh(dir)?, true),
        };
        let lock_created = !dir.join(LOCK).exists();
        let mut lock = DirLock {
            dir,
            file: None,
            created,
            lock_created,
        };
        lock.file = Some(lock.lock_file()?);
        Ok(lock)
    }

    /// Opens and locks `DIR/.brandsim-lock`, then writes this process's id in it.
    fn lock_file(&self) -> Result<File, OutputDirError> {
        let path = self.dir.join(LOCK);
        // A process that removed the lock file while ending (see `Drop`) leaves
        // us holding the lock of a file no longer at `path`: try again.
        for _ in 0..16 {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io_error(&path))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => {
                    let mut pid = String::new();
                    let _ = file.read_to_string(&mut pid);
                    let pid = pid.trim();
                    return Err(OutputDirError::Busy {
                        dir: self.dir.clone(),
                        pid: if pid.is_empty() { "unknown" } else { pid }.to_string(),
                    });
                }
                Err(fs::TryLockError::Error(e)) => return Err(io_error(&path)(e)),
            }
            let same = match (file.metadata(), fs::metadata(&path)) {
                (Ok(held), Ok(there)) => held.ino() == there.ino() && held.dev() == there.dev(),
                _ => false,
            };
            if !same {
                continue;
            }
            let pid = std::process::id().to_string();
            file.set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| file.write_all(pid.as_bytes()))
                .map_err(io_error(&path))?;
            return Ok(file);
        }
        Err(OutputDirError::Refused {
            flag: "--out",
            dir: self.dir.clone(),
            message: "its lock file keeps being replaced by other processes".into(),
        })
    }

    /// The locked directory (for [`Acquire::Fresh`], the name finally chosen).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        if !self.created {
            if self.lock_created && !self.dir.join(MARKER).exists() {
                // Removed while still locked (see `lock_file` for a process
                // that opened it meanwhile).
                let _ = fs::remove_file(self.dir.join(LOCK));
            }
            return;
        }
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
        if names.iter().all(|n| n == LOCK || n == MARKER) {
            // Removed while still locked, so no other process can be using it.
            let _ = fs::remove_file(self.dir.join(MARKER));
            let _ = fs::remove_file(self.dir.join(LOCK));
            let _ = fs::remove_dir(&self.dir);
        }
    }
}

/// Creates `base`, or `base-2`, `base-3`, ... if taken; never reuses a directory.
fn create_fresh(base: &Path) -> Result<PathBuf, OutputDirError> {
    if let Some(parent) = base.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(io_error(base))?;
    }
    for n in 1u32.. {
        let candidate = if n == 1 {
            base.to_path_buf()
        } else {
            let mut name = base.as_os_str().to_owned();
            name.push(format!("-{n}"));
            PathBuf::from(name)
        };
        match fs::create_dir(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_error(&candidate)(e)),
        }
    }
    unreachable!("some suffix is free")
}

/// A shared lock on a study directory that this process only reads (a shard
/// given to `merge`): refused while another process writes it. `None` when the
/// directory has no lock file (nothing ever wrote it under a lock).
pub fn lock_shared(dir: &Path) -> Result<Option<File>, OutputDirError> {
    let path = dir.join(LOCK);
    let mut file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(&path)(e)),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(Some(file)),
        Err(fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            Err(OutputDirError::Busy {
                dir: dir.to_path_buf(),
                pid: pid.trim().to_string(),
            })
        }
        Err(fs::TryLockError::Error(e)) => Err(io_error(&path)(e)),
    }
}

/// The marker of an output directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    /// [`MARKER_FORMAT`].
    pub format: String,
    /// What identifies the study: the command, its options, the resolved scenario.
    pub identity: String,
    /// The output files written so far, relative to the directory.
    #[serde(default)]
    pub files: Vec<String>,
}

/// What `DIR/.brandsim-study` holds.
#[derive(Debug, Clone, PartialEq)]
pub enum MarkerState {
    Absent,
    /// A marker of an earlier brandsim (plain text): its files are unknown.
    Old,
    Current(Marker),
}

impl Marker {
    /// Reads the marker of `dir`.
    pub fn read(dir: &Path) -> MarkerState {
        match fs::read(dir.join(MARKER)) {
            Err(_) => MarkerState::Absent,
            Ok(bytes) => match serde_json::from_slice::<Marker>(&bytes) {
                Ok(marker) if marker.format == MARKER_FORMAT => MarkerState::Current(marker),
                _ => MarkerState::Old,
            },
        }
    }

    /// Writes `marker` into `dir` (atomically).
    pub fn write(&self, dir: &Path) -> Result<(), OutputDirError> {
        let path = dir.join(MARKER);
        let json = serde_json::to_vec_pretty(self).expect("plain data");
        crate::report::write_atomically(&path, &json).map_err(io_error(&path))
    }

    /// Records that the output `name` (relative path) of the study in `dir` was
    /// written; nothing if `dir` has no current marker.
    pub fn record(dir: &Path, name: &str) -> Result<(), OutputDirError> {
        if name == MARKER {
            return Ok(());
        }
        if let MarkerState::Current(mut marker) = Marker::read(dir)
            && !marker.files.iter().any(|f| f == name)
        {
            marker.files.push(name.to_string());
            marker.write(dir)?;
        }
        Ok(())
    }
}

/// `true` when the relative path `rel` inside an output directory is a file of
/// brandsim's (see the module documentation); `recorded` is the marker's list.
pub fn is_own(rel: &Path, recorded: &[String]) -> bool {
    let Some(text) = rel.to_str() else {
        return false;
    };
    let text = text.strip_suffix(".partial").unwrap_or(text);
    if recorded.iter().any(|f| f == text) {
        return true;
    }
    let parts: Vec<&str> = Path::new(text)
        .components()
        .map(|c| match c {
            Component::Normal(p) => p.to_str().unwrap_or("\0"),
            _ => "\0",
        })
        .collect();
    let store_file = |parts: &[&str]| match parts {
        ["study.json" | "scenario.toml"] => true,
        ["outcomes", name] => is_outcome_name(name),
        _ => false,
    };
    match parts.as_slice() {
        [MARKER | LOCK | "whatif.json"] => true,
        ["points" | "arms", index, rest @ ..] => is_index(index) && store_file(rest),
        other => store_file(other),
    }
}

fn is_index(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

fn is_outcome_name(name: &str) -> bool {
    name.strip_suffix(".json")
        .is_some_and(|stem| stem.len() >= 6 && is_index(stem))
}

/// Whether a top-level `name` is one an output of some command may have.
pub fn may_write(name: &str) -> bool {
    OUTPUT_NAMES
        .iter()
        .any(|pattern| match pattern.split_once('*') {
            None => *pattern == name,
            Some((head, tail)) => {
                name.len() >= head.len() + tail.len()
                    && name.starts_with(head)
                    && name.ends_with(tail)
            }
        })
}

/// Every file below `dir` (not following symbolic links), relative to it, with
/// the directories in it (deepest last).
fn walk(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>), OutputDirError> {
    let (mut files, mut dirs) = (Vec::new(), Vec::new());
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let here = dir.join(&rel);
        for entry in fs::read_dir(&here).map_err(io_error(&here))? {
            let entry = entry.map_err(io_error(&here))?;
            let rel = rel.join(entry.file_name());
            let kind = entry.file_type().map_err(io_error(&here))?;
            if kind.is_dir() {
                dirs.push(rel.clone());
                pending.push(rel);
            } else {
                files.push(rel);
            }
        }
    }
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    Ok((files, dirs))
}

/// What `--force` would do in `dir`: the files of brandsim's to delete; refuses
/// (with the file's name) when a file brandsim did not write would have to be
/// deleted (it is inside `outcomes/`, `points/` or `arms/`) or could be
/// overwritten (it has an output's name, see [`OUTPUT_NAMES`]).
pub fn plan_force(dir: &Path, flag: &'static str) -> Result<Vec<PathBuf>, OutputDirError> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let recorded = match Marker::read(dir) {
        MarkerState::Current(marker) => marker.files,
        _ => Vec::new(),
    };
    let (files, _) = walk(dir)?;
    let mut own = Vec::new();
    for rel in files {
        if is_own(&rel, &recorded) {
            own.push(rel);
            continue;
        }
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or("");
        let nested = rel.components().count() > 1;
        if nested || may_write(top) {
            return Err(OutputDirError::Refused {
                flag,
                dir: dir.to_path_buf(),
                message: format!(
                    "--force would have to {} {}, which brandsim did not write (it is not recorded in {MARKER}); move it away or choose another {flag}",
                    if nested { "delete" } else { "overwrite" },
                    rel.display()
                ),
            });
        }
    }
    Ok(own)
}

/// `--force`: deletes every file of brandsim's in `dir` (after [`plan_force`]'s
/// checks) but the lock, and the folders of the store left empty, so that
/// nothing of the previous study remains. Files brandsim did not write stay.
pub fn clear_for_force(dir: &Path, flag: &'static str) -> Result<(), OutputDirError> {
    for rel in plan_force(dir, flag)? {
        if rel.as_os_str() == LOCK {
            continue;
        }
        let path = dir.join(&rel);
        fs::remove_file(&path).map_err(io_error(&path))?;
    }
    let (_, dirs) = walk(dir)?;
    for rel in dirs {
        let top = rel.components().next().and_then(|c| c.as_os_str().to_str());
        if matches!(top, Some("outcomes" | "points" | "arms")) {
            // Left in place when it still holds a file of someone else.
            let _ = fs::remove_dir(dir.join(rel));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_files_are_the_store_the_marker_and_what_was_recorded() {
        let recorded = vec!["summary.json".to_string(), "fan-revenue.svg".to_string()];
        for own in [
            ".brandsim-study",
            ".brandsim-lock",
            "study.json",
            "scenario.toml.partial",
            "whatif.json",
            "outcomes/000003.json",
            "outcomes/1234567.json.partial",
            "points/12/study.json",
            "arms/0/outcomes/000000.json",
            "summary.json",
            "fan-revenue.svg",
        ] {
            assert!(is_own(Path::new(own), &recorded), "{own}");
        }
        for foreign in [
            "outcomes/survey-2024.csv",
            "outcomes/3.json",
            "points/x/study.json",
            "points/1/notes.txt",
            "daily.csv",
            "fan-other.svg",
            "../summary.json",
        ] {
            assert!(!is_own(Path::new(foreign), &recorded), "{foreign}");
        }
    }

    #[test]
    fn output_names_match_with_one_wildcard() {
        for name in [
            "summary.json",
            "fan-x.svg",
            "arm-12.toml",
            "sensitivity.csv",
        ] {
            assert!(may_write(name), "{name}");
        }
        for name in ["notes.txt", "fan-.png.bak", "summary.json.bak"] {
            assert!(!may_write(name), "{name}");
        }
    }
}

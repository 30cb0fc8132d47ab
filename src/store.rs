//! A study directory: the metadata of a study (or one shard of it) and one file per
//! finished replication, written as each finishes, so that an interrupted study
//! loses nothing, can be resumed, and shards can be merged bit for bit.
//!
//! Layout of `DIR/`:
//! - `study.json`: [`StudyMeta`] (format, brandsim version, scenario name and hash,
//!   seed, replications, shard, work done);
//! - `scenario.toml`: the resolved scenario;
//! - `outcomes/NNNNNN.json`: the [`Outcome`] of replication `NNNNNN`, written to a
//!   temporary name, synced and renamed, so a file present is always complete.
//!   serde_json writes and reads `f64` exactly, so stored outcomes are lossless.
//!
//! A what-if study (`sweep`, `compare`) is a directory with `whatif.json`
//! ([`WhatIfMeta`]) and one study directory per grid point (`points/<i>/`) or arm
//! (`arms/<i>/`).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::outcome::Outcome;
use crate::scenario::{Scenario, ScenarioSource};
use crate::shard::Shard;

/// The `format` of a study directory this version writes and reads. Format 2
/// stores each outcome in an [`OutcomeFile`] envelope; directories of format 1
/// are refused with a message saying so.
pub const FORMAT: &str = "brandsim-study/2";
/// The `format` of one stored outcome file. Seeding (MODEL.md v2) added the
/// outcome's `seeded`, `seeded_registered` and daily `seeded`, stored only when
/// not zero or empty: an outcome without seeding is byte for byte what earlier
/// versions wrote (same checksum), so the format stays 2 and their study
/// directories still resume and merge.
pub const OUTCOME_FORMAT: &str = "brandsim-outcome/2";
pub const META_FILE: &str = "study.json";
pub const SCENARIO_FILE: &str = "scenario.toml";
pub const OUTCOMES_DIR: &str = "outcomes";

/// Which study a directory holds, and how much work went into it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyMeta {
    pub format: String,
    pub brandsim_version: String,
    pub scenario: String,
    /// [`scenario_hash`] of the resolved scenario.
    pub scenario_hash: String,
    pub seed: u64,
    /// Replications of the whole study (not of this shard).
    pub replications: u32,
    pub shard: Shard,
    #[serde(default)]
    pub work: Work,
}

impl StudyMeta {
    /// The metadata of shard `shard` of a study of `scenario`, before any work.
    pub fn new(scenario: &Scenario, source: &ScenarioSource, shard: Shard) -> Self {
        StudyMeta {
            format: FORMAT.to_string(),
            brandsim_version: env!("CARGO_PKG_VERSION").to_string(),
            scenario: scenario.name.clone(),
            scenario_hash: scenario_hash(source),
            seed: scenario.simulation.seed,
            replications: scenario.simulation.replications,
            shard,
            work: Work::default(),
        }
    }

    /// The replications this directory is to hold.
    pub fn replications_due(&self) -> Vec<u32> {
        self.shard.replications(self.replications)
    }
}

/// Wall time spent computing a study, over every process that worked on it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Work {
    pub seconds: f64,
    /// The most threads a process used.
    pub threads: usize,
    /// The largest peak memory of a process, where the OS reports it.
    pub peak_memory_bytes: Option<u64>,
    /// That process's memory before its first replication.
    #[serde(default)]
    pub start_memory_bytes: Option<u64>,
}

impl Work {
    pub fn add(&mut self, other: &Work) {
        self.seconds += other.seconds;
        self.threads = self.threads.max(other.threads);
        if other.peak_memory_bytes > self.peak_memory_bytes {
            self.peak_memory_bytes = other.peak_memory_bytes;
            self.start_memory_bytes = other.start_memory_bytes;
        }
    }
}

/// `fnv1a64:<16 hex digits>` of the resolved scenario (without the comment header,
/// which names the file), so the same scenario hashes alike whatever file or
/// `--set` produced it, on any machine.
pub fn scenario_hash(source: &ScenarioSource) -> String {
    fnv1a64(&toml::to_string(&source.document).unwrap_or_default())
}

/// `fnv1a64:<16 hex digits>` of `text`: a stable fingerprint, the same on any machine.
pub fn fnv1a64(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("fnv1a64:{hash:016x}")
}

/// The `format` of a what-if study directory this version writes and reads.
pub const WHATIF_FORMAT: &str = "brandsim-whatif/1";
pub const WHATIF_FILE: &str = "whatif.json";

/// What a what-if study compares, and what its outputs are drawn from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "lowercase")]
pub enum WhatIf {
    /// A grid of scenarios: one study per grid point, in `points/<i>/`.
    Sweep {
        /// The `--vary` options as given.
        vary: Vec<String>,
        /// The plotted metrics.
        metrics: Vec<String>,
    },
    /// Arms compared with the first: one study per arm, in `arms/<i>/`.
    Compare {
        /// The ranking metric.
        metric: String,
        /// The arms' names, the base first.
        arms: Vec<String>,
    },
    /// A global sensitivity design: one study per design point, in
    /// `points/<i>/` (the design is recomputed from these and the seed).
    Sensitivity {
        /// `morris` or `sobol`.
        method: String,
        /// The `--param KEY=LO:HI` options as given.
        params: Vec<String>,
        /// Morris trajectories or Sobol base rows.
        samples: u32,
        /// The analysed metrics.
        metrics: Vec<String>,
    },
}

impl WhatIf {
    pub fn command(&self) -> &'static str {
        match self {
            WhatIf::Sweep { .. } => "sweep",
            WhatIf::Compare { .. } => "compare",
            WhatIf::Sensitivity { .. } => "sensitivity",
        }
    }

    /// The study directory of grid point or arm `i` inside the what-if directory `dir`.
    pub fn point_dir(&self, dir: &Path, i: usize) -> PathBuf {
        let folder = match self {
            WhatIf::Sweep { .. } | WhatIf::Sensitivity { .. } => "points",
            WhatIf::Compare { .. } => "arms",
        };
        dir.join(folder).join(i.to_string())
    }
}

/// `whatif.json`: which what-if study (or shard of it) a directory holds. Each
/// grid point or arm is a study directory of its own ([`StudyStore`]) below it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WhatIfMeta {
    pub format: String,
    #[serde(flatten)]
    pub study: WhatIf,
    pub brandsim_version: String,
    /// The base scenario's name.
    pub scenario: String,
    /// [`fnv1a64`] of what identifies the study: the command, its options and
    /// the hash of every point's or arm's resolved scenario.
    pub study_hash: String,
    pub seed: u64,
    /// Replications of each point or arm (of the whole study, not of this shard).
    pub replications: u32,
    pub shard: Shard,
    /// Number of grid points or arms.
    pub points: usize,
    /// `--plot-format`, or `None` with `--no-plots`: the plots `merge` draws.
    pub plot_format: Option<String>,
}

impl WhatIfMeta {
    /// Reads `dir/whatif.json`; `Ok(None)` if there is none.
    pub fn read(dir: &Path) -> Result<Option<Self>, StoreError> {
        read_description(
            &dir.join(WHATIF_FILE),
            "what-if study",
            WHATIF_FORMAT,
            |meta: &WhatIfMeta| (&meta.format, &meta.brandsim_version),
        )
    }

    /// Writes `dir/whatif.json` (atomically).
    pub fn write(&self, dir: &Path) -> Result<(), StoreError> {
        let path = dir.join(WHATIF_FILE);
        let json = serde_json::to_vec_pretty(self).expect("plain data");
        write_synced(&path, &json).map_err(io_error(&path))
    }

    /// The study directory of grid point or arm `i` inside `dir`.
    pub fn point_dir(&self, dir: &Path, i: usize) -> PathBuf {
        self.study.point_dir(dir, i)
    }
}

/// Why a study directory cannot be used. Each message names the path.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "{} is not a brandsim study directory (no {META_FILE}); expected the --out directory of `brandsim run`",
        dir.display()
    )]
    NotAStudy { dir: PathBuf },
    #[error(
        "{} already holds a study ({}); continue it with --resume {}, or choose another --out",
        dir.display(), describe(meta), dir.display()
    )]
    AlreadyAStudy { dir: PathBuf, meta: Box<StudyMeta> },
    #[error("{}: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

fn describe(meta: &StudyMeta) -> String {
    format!(
        "{}, seed {}, {} replications, shard {}",
        meta.scenario, meta.seed, meta.replications, meta.shard
    )
}

/// Reads the JSON description of a `what` at `path` and checks that it is in
/// `format` (`format_of` gives its format and the brandsim version that wrote it);
/// `Ok(None)` if there is none.
fn read_description<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &str,
    format: &str,
    format_of: fn(&T) -> (&String, &String),
) -> Result<Option<T>, StoreError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path)(e)),
    };
    let meta: T = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
        path: path.to_path_buf(),
        message: format!("not a {what} description ({e})"),
    })?;
    let (found, written_by) = format_of(&meta);
    if found != format {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            message: format!(
                "format {found:?}, expected {format:?} (written by brandsim {written_by}); this brandsim cannot resume or merge it: run the study again into a new --out"
            ),
        });
    }
    Ok(Some(meta))
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An open study directory.
#[derive(Debug)]
pub struct StudyStore {
    dir: PathBuf,
    meta: StudyMeta,
}

impl StudyStore {
    /// Starts a study in `dir` (created if needed): writes `study.json` and
    /// `scenario.toml`. Refuses a directory that already holds a study.
    pub fn create(dir: &Path, meta: StudyMeta, resolved_toml: &str) -> Result<Self, StoreError> {
        if dir.join(META_FILE).exists() {
            let existing = StudyStore::open(dir)?;
            return Err(StoreError::AlreadyAStudy {
                dir: dir.to_path_buf(),
                meta: Box::new(existing.meta),
            });
        }
        let outcomes = dir.join(OUTCOMES_DIR);
        fs::create_dir_all(&outcomes).map_err(io_error(&outcomes))?;
        let store = StudyStore {
            dir: dir.to_path_buf(),
            meta,
        };
        let scenario = dir.join(SCENARIO_FILE);
        write_synced(&scenario, resolved_toml.as_bytes()).map_err(io_error(&scenario))?;
        store.write_meta()?;
        Ok(store)
    }

    /// Opens the study in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let meta = read_description(&dir.join(META_FILE), "study", FORMAT, |meta: &StudyMeta| {
            (&meta.format, &meta.brandsim_version)
        })?
        .ok_or_else(|| StoreError::NotAStudy {
            dir: dir.to_path_buf(),
        })?;
        Ok(StudyStore {
            dir: dir.to_path_buf(),
            meta,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn meta(&self) -> &StudyMeta {
        &self.meta
    }

    /// The stored resolved scenario.
    pub fn resolved_toml(&self) -> Result<String, StoreError> {
        let path = self.dir.join(SCENARIO_FILE);
        fs::read_to_string(&path).map_err(io_error(&path))
    }

    fn outcome_path(&self, replication: u32) -> PathBuf {
        self.dir
            .join(OUTCOMES_DIR)
            .join(format!("{replication:06}.json"))
    }

    /// Stores a finished replication: complete on disk when this returns. The file
    /// is an [`OutcomeFile`]: the outcome with the study's scenario hash, its
    /// replication index and a checksum of its content.
    pub fn save(&self, outcome: &Outcome) -> Result<(), StoreError> {
        let path = self.outcome_path(outcome.replication);
        let json = OutcomeFile::new(&self.meta.scenario_hash, outcome).to_json();
        write_synced(&path, &json).map_err(io_error(&path))
    }

    /// The replications stored so far, in order, after checking that every entry
    /// of `outcomes/` is an outcome file of its canonical name (`NNNNNN.json`) for
    /// a replication of this directory's shard. Temporary files of writes that
    /// were cut off (`*.partial`) are not replications and are ignored. Only the
    /// names are checked here; [`StudyStore::load_outcomes`] checks the contents.
    pub fn finished(&self) -> Result<Vec<u32>, StoreError> {
        let dir = self.dir.join(OUTCOMES_DIR);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error(&dir)(e)),
        };
        let mut finished = Vec::new();
        for entry in entries {
            let name = entry.map_err(io_error(&dir))?.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".partial") {
                continue;
            }
            let path = dir.join(name.as_ref());
            let j = outcome_index(&name).ok_or_else(|| StoreError::Corrupt {
                path: path.clone(),
                message: "not a replication outcome: expected only files named NNNNNN.json (the replication index in six or more digits) in outcomes/".into(),
            })?;
            if j >= self.meta.replications || !self.meta.shard.contains(j) {
                return Err(StoreError::Corrupt {
                    path,
                    message: format!(
                        "replication {j} is not one of shard {} of a {}-replication study",
                        self.meta.shard, self.meta.replications
                    ),
                });
            }
            finished.push(j);
        }
        finished.sort_unstable();
        Ok(finished)
    }

    /// Every stored outcome, in replication order, each checked: its file name,
    /// scenario hash, replication index and checksum must match (see
    /// [`OutcomeFile::check`]). Errors name the file and the reason.
    pub fn load_outcomes(&self) -> Result<Vec<Outcome>, StoreError> {
        self.finished()?
            .into_iter()
            .map(|j| {
                let path = self.outcome_path(j);
                let bytes = fs::read(&path).map_err(io_error(&path))?;
                OutcomeFile::check(&bytes, &self.meta.scenario_hash, j).map_err(|message| {
                    StoreError::Corrupt {
                        path: path.clone(),
                        message,
                    }
                })
            })
            .collect()
    }

    /// [`StudyStore::load_outcomes`], which must find every replication this
    /// directory is to hold: the check `--resume` and `merge` make before
    /// computing anything.
    pub fn load_complete(&self) -> Result<Vec<Outcome>, StoreError> {
        let outcomes = self.load_outcomes()?;
        let due = self.meta.replications_due();
        if outcomes.len() != due.len() {
            return Err(StoreError::Corrupt {
                path: self.dir.join(OUTCOMES_DIR),
                message: format!(
                    "holds {} outcomes; the study (shard {}) has {}",
                    outcomes.len(),
                    self.meta.shard,
                    due.len()
                ),
            });
        }
        Ok(outcomes)
    }

    /// Adds the work of one process to `study.json`.
    pub fn record_work(&mut self, work: &Work) -> Result<(), StoreError> {
        self.meta.work.add(work);
        self.write_meta()
    }

    /// Writes `meta` as `study.json` (for a merged study, whose work is summed).
    pub fn replace_meta(&mut self, meta: StudyMeta) -> Result<(), StoreError> {
        self.meta = meta;
        self.write_meta()
    }

    fn write_meta(&self) -> Result<(), StoreError> {
        let path = self.dir.join(META_FILE);
        let json = serde_json::to_vec_pretty(&self.meta).expect("plain data");
        write_synced(&path, &json).map_err(io_error(&path))
    }
}

/// The replication index of an outcome file name in canonical form: six or more
/// digits (`000003.json`, `1234567.json`), no extra leading zeros beyond six.
fn outcome_index(name: &str) -> Option<u32> {
    let stem = name.strip_suffix(".json")?;
    if stem.len() < 6 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let j: u32 = stem.parse().ok()?;
    (format!("{j:06}") == stem).then_some(j)
}

/// One stored outcome (`outcomes/NNNNNN.json`): the outcome with what ties it to
/// its study, so that a file copied from another study, stored under another
/// name or edited by hand is refused rather than summarised.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutcomeFile {
    /// [`OUTCOME_FORMAT`].
    pub format: String,
    /// The [`scenario_hash`] of the study that computed it.
    pub scenario_hash: String,
    /// Its replication index (also in the file name).
    pub replication: u32,
    /// [`fnv1a64`] of the compact JSON of `outcome`: catches edits and damage,
    /// not a deliberate forgery (FNV-1a is no cryptographic hash).
    pub checksum: String,
    pub outcome: Outcome,
}

impl OutcomeFile {
    /// The envelope of `outcome` for a study of scenario hash `scenario_hash`.
    pub fn new(scenario_hash: &str, outcome: &Outcome) -> Self {
        OutcomeFile {
            format: OUTCOME_FORMAT.to_string(),
            scenario_hash: scenario_hash.to_string(),
            replication: outcome.replication,
            checksum: outcome_checksum(outcome),
            outcome: outcome.clone(),
        }
    }

    /// The file's bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an outcome is plain data")
    }

    /// Parses an outcome file that is to hold replication `replication` of the
    /// study of scenario hash `scenario_hash`; the reason it is refused otherwise.
    pub fn check(bytes: &[u8], scenario_hash: &str, replication: u32) -> Result<Outcome, String> {
        let file: OutcomeFile = serde_json::from_slice(bytes).map_err(|e| {
            if serde_json::from_slice::<Outcome>(bytes).is_ok() {
                format!(
                    "an outcome in the format of an earlier brandsim (without scenario hash and checksum); expected {OUTCOME_FORMAT}: run the study again"
                )
            } else {
                format!("not a replication outcome ({e})")
            }
        })?;
        if file.format != OUTCOME_FORMAT {
            return Err(format!(
                "format {:?}, expected {OUTCOME_FORMAT:?}",
                file.format
            ));
        }
        if file.scenario_hash != scenario_hash {
            return Err(format!(
                "belongs to another study: scenario hash {}, this study's is {scenario_hash}",
                file.scenario_hash
            ));
        }
        if file.replication != replication || file.outcome.replication != replication {
            return Err(format!(
                "holds replication {} (outcome of replication {}), but its name says replication {replication}",
                file.replication, file.outcome.replication
            ));
        }
        let checksum = outcome_checksum(&file.outcome);
        if file.checksum != checksum {
            return Err(format!(
                "its content does not match its checksum ({} stored, {checksum} computed): the file was changed after brandsim wrote it",
                file.checksum
            ));
        }
        Ok(file.outcome)
    }
}

/// [`fnv1a64`] of the compact JSON of `outcome` (exact for every `f64`, so equal
/// checksums mean equal numbers as written).
fn outcome_checksum(outcome: &Outcome) -> String {
    let json = serde_json::to_string(outcome).expect("an outcome is plain data");
    fnv1a64(&json)
}

/// Writes `contents` to `path` through a synced temporary file and a rename, so
/// `path` is either absent, its old contents, or complete.
fn write_synced(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".partial");
    let temporary = PathBuf::from(temporary);
    let result = (|| {
        let mut file = fs::File::create(&temporary)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::simulate;
    use std::sync::Arc;

    fn small() -> (Scenario, ScenarioSource) {
        // A file of its own per call: tests run in parallel in one process.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let text = std::fs::read_to_string("scenarios/bass.toml").unwrap();
        let path =
            std::env::temp_dir().join(format!("brandsim-store-{}-{call}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        let overrides = [crate::scenario::parse_assignment("market.population=300").unwrap()];
        let loaded = crate::scenario::load_file(&path, &overrides).unwrap();
        let _ = std::fs::remove_file(path);
        loaded
    }

    #[test]
    fn stored_outcomes_read_back_bit_for_bit() {
        let (scenario, source) = small();
        let scenario = Arc::new(scenario);
        let dir = std::env::temp_dir().join(format!("brandsim-store-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let meta = StudyMeta::new(&scenario, &source, Shard { index: 1, count: 2 });
        let store = StudyStore::create(&dir, meta.clone(), &source.resolved_toml()).unwrap();
        let outcomes: Vec<Outcome> = [3, 1].iter().map(|&j| simulate(&scenario, j)).collect();
        for outcome in &outcomes {
            store.save(outcome).unwrap();
        }
        fs::write(dir.join(OUTCOMES_DIR).join("000005.json.partial"), b"{").unwrap();
        let reopened = StudyStore::open(&dir).unwrap();
        assert_eq!(reopened.meta(), &meta);
        assert_eq!(reopened.finished().unwrap(), vec![1, 3]);
        let loaded = reopened.load_outcomes().unwrap();
        assert_eq!(loaded, vec![outcomes[1].clone(), outcomes[0].clone()]);
        let bits = |o: &Outcome| {
            o.metrics()
                .0
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&loaded[0]), bits(&outcomes[1]));
        assert!(matches!(
            StudyStore::create(&dir, meta, ""),
            Err(StoreError::AlreadyAStudy { .. })
        ));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn scenario_hash_ignores_the_file_name_but_not_values() {
        let (_, source) = small();
        let mut renamed = source.clone();
        renamed.file = "elsewhere.toml".into();
        assert_eq!(scenario_hash(&source), scenario_hash(&renamed));
        let changed = [crate::scenario::parse_assignment("brand.value=0.5").unwrap()];
        let (_, changed) = source.with_overrides(&changed).unwrap();
        assert_ne!(scenario_hash(&source), scenario_hash(&changed));
    }
}

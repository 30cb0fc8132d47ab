//! Splitting a study into shards (`--shard K/N`: the replications `j ≡ K mod N`)
//! and merging the shards' study directories back into the whole study, for
//! `run` ([`merge`]) and for the what-if commands `sweep` and `compare`
//! ([`merge_whatif`]: every grid point or arm merged like a `run`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::outcome::Outcome;
use crate::store::{SCENARIO_FILE, StoreError, StudyMeta, StudyStore, WhatIfMeta, Work};

/// Shard `index` of `count`: the replications `j` with `j % count == index`.
/// Round-robin rather than contiguous blocks, so shards get equal work even when
/// the replication count is not a multiple of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The whole study: shard 0 of 1.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    pub fn is_whole(&self) -> bool {
        self.count == 1
    }

    /// Whether replication `j` belongs to this shard.
    pub fn contains(&self, j: u32) -> bool {
        j % self.count == self.index
    }

    /// This shard's replications of a study of `total` replications, in order.
    pub fn replications(&self, total: u32) -> Vec<u32> {
        (self.index..total).step_by(self.count as usize).collect()
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    /// Parses `K/N` with integers `0 <= K < N`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let expected = || format!("expected K/N with integers 0 <= K < N (e.g. 0/4), got {text:?}");
        let (index, count) = text.split_once('/').ok_or_else(expected)?;
        let index: u32 = index.trim().parse().map_err(|_| expected())?;
        let count: u32 = count.trim().parse().map_err(|_| expected())?;
        if index >= count {
            return Err(expected());
        }
        Ok(Shard { index, count })
    }
}

/// Why shards cannot be merged. Each message names the offending directory.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no shard directories given")]
    NoShards,
    #[error(
        "shard {} ({}) does not belong with {}: its {what} is {found}, theirs is {expected}",
        dir.display(), shard, first.display()
    )]
    Mismatch {
        dir: PathBuf,
        shard: Shard,
        first: PathBuf,
        what: &'static str,
        found: String,
        expected: String,
    },
    #[error("shard {shard} is given twice: {} and {}", first.display(), second.display())]
    Duplicate {
        shard: Shard,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("{} of {count} shards missing: {}", missing.len(), list(missing, *count))]
    Missing { missing: Vec<u32>, count: u32 },
    #[error(
        "shard {} ({shard}) is incomplete: {have} of {expected} replications finished; \
         finish it with: brandsim run {}/scenario.toml --resume {}",
        dir.display(), dir.display(), dir.display()
    )]
    Incomplete {
        dir: PathBuf,
        shard: Shard,
        have: usize,
        expected: usize,
    },
    #[error(
        "{} is not a shard of a brandsim {command} like {} (it has no whatif.json{})",
        dir.display(), first.display(),
        if *is_run { "; it is a shard of brandsim run" } else { "" }
    )]
    NotWhatIf {
        dir: PathBuf,
        first: PathBuf,
        command: &'static str,
        is_run: bool,
    },
    #[error(
        "shard {} ({shard}) is incomplete: {have} of {expected} replications finished; \
         finish it by running its brandsim {command} again with --resume {}",
        dir.display(), dir.display()
    )]
    IncompleteWhatIf {
        command: &'static str,
        dir: PathBuf,
        shard: Shard,
        have: usize,
        expected: usize,
    },
}

fn list(missing: &[u32], count: u32) -> String {
    missing
        .iter()
        .map(|k| format!("{k}/{count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The whole study gathered from its shards.
#[derive(Debug, Clone)]
pub struct Merged {
    /// The metadata of the whole study (shard 0/1), with the shards' work summed.
    pub meta: StudyMeta,
    /// The resolved scenario the shards stored.
    pub resolved_toml: String,
    /// Every replication, in replication order.
    pub outcomes: Vec<Outcome>,
}

/// Entry point of merging: checks that `dirs` are the complete, distinct shards of
/// one study (same scenario, seed, replications, split and brandsim version) and
/// gathers their outcomes in replication order.
pub fn merge(dirs: &[PathBuf]) -> Result<Merged, MergeError> {
    let stores = dirs
        .iter()
        .map(|dir| StudyStore::open(dir))
        .collect::<Result<Vec<_>, _>>()?;
    let first = stores.first().ok_or(MergeError::NoShards)?;
    let reference = first.meta().clone();
    let mut by_index: BTreeMap<u32, &StudyStore> = BTreeMap::new();
    for store in &stores {
        check_same_study(store, first)?;
        let shard = store.meta().shard;
        if let Some(other) = by_index.insert(shard.index, store) {
            return Err(MergeError::Duplicate {
                shard,
                first: other.dir().to_path_buf(),
                second: store.dir().to_path_buf(),
            });
        }
    }
    let count = reference.shard.count;
    let missing: Vec<u32> = (0..count).filter(|k| !by_index.contains_key(k)).collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing { missing, count });
    }

    let mut outcomes = Vec::with_capacity(reference.replications as usize);
    let mut work = Work::default();
    for store in by_index.values() {
        let shard = store.meta().shard;
        let stored = store.load_outcomes()?;
        let expected = shard.replications(reference.replications).len();
        if stored.len() != expected {
            return Err(MergeError::Incomplete {
                dir: store.dir().to_path_buf(),
                shard,
                have: stored.len(),
                expected,
            });
        }
        work.add(&store.meta().work);
        outcomes.extend(stored);
    }
    outcomes.sort_by_key(|o| o.replication);
    let resolved_toml = first.resolved_toml()?;
    Ok(Merged {
        meta: StudyMeta {
            shard: Shard::WHOLE,
            work,
            ..reference
        },
        resolved_toml,
        outcomes,
    })
}

/// A what-if study (`sweep`, `compare`) gathered from its shards.
#[derive(Debug, Clone)]
pub struct MergedWhatIf {
    /// The metadata of the whole study (shard 0/1).
    pub meta: WhatIfMeta,
    /// The base scenario the shards stored.
    pub base_toml: String,
    /// Every grid point or arm, merged, in order.
    pub points: Vec<Merged>,
}

/// Entry point of merging the shards of a what-if study: checks that `dirs` are
/// the complete, distinct shards of one sweep or comparison (same command,
/// options, scenarios, seed, replications, split and brandsim version), then
/// merges each grid point or arm like the shards of a `run`.
pub fn merge_whatif(dirs: &[PathBuf]) -> Result<MergedWhatIf, MergeError> {
    let first_dir = dirs.first().ok_or(MergeError::NoShards)?;
    let first = WhatIfMeta::read(first_dir)?.ok_or_else(|| StoreError::NotAStudy {
        dir: first_dir.clone(),
    })?;
    let command = first.study.command();
    let mut by_index: BTreeMap<u32, &PathBuf> = BTreeMap::new();
    for dir in dirs {
        let meta = WhatIfMeta::read(dir)?.ok_or_else(|| MergeError::NotWhatIf {
            dir: dir.clone(),
            first: first_dir.clone(),
            command,
            is_run: dir.join(crate::store::META_FILE).exists(),
        })?;
        check_same_whatif(dir, &meta, first_dir, &first)?;
        if let Some(other) = by_index.insert(meta.shard.index, dir) {
            return Err(MergeError::Duplicate {
                shard: meta.shard,
                first: other.clone(),
                second: dir.clone(),
            });
        }
    }
    let count = first.shard.count;
    let missing: Vec<u32> = (0..count).filter(|k| !by_index.contains_key(k)).collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing { missing, count });
    }
    for (&index, dir) in &by_index {
        let (mut have, mut expected) = (0, 0);
        for i in 0..first.points {
            let point_dir = first.point_dir(dir, i);
            match StudyStore::open(&point_dir) {
                Ok(store) => {
                    have += store.finished()?.len();
                    expected += store.meta().replications_due().len();
                }
                // A point an interrupted shard had not reached.
                Err(StoreError::NotAStudy { .. }) => {
                    expected += Shard { index, count }
                        .replications(first.replications)
                        .len();
                }
                Err(other) => return Err(other.into()),
            }
        }
        if have < expected {
            return Err(MergeError::IncompleteWhatIf {
                command,
                dir: dir.to_path_buf(),
                shard: Shard { index, count },
                have,
                expected,
            });
        }
    }
    let points = (0..first.points)
        .map(|i| {
            let point_dirs: Vec<PathBuf> = by_index
                .values()
                .map(|dir| first.point_dir(dir, i))
                .collect();
            merge(&point_dirs)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let scenario_path = first_dir.join(SCENARIO_FILE);
    let base_toml = std::fs::read_to_string(&scenario_path).map_err(|source| StoreError::Io {
        path: scenario_path,
        source,
    })?;
    Ok(MergedWhatIf {
        meta: WhatIfMeta {
            shard: Shard::WHOLE,
            ..first
        },
        base_toml,
        points,
    })
}

/// Checks that the what-if shard `meta` in `dir` belongs with `first`.
fn check_same_whatif(
    dir: &std::path::Path,
    meta: &WhatIfMeta,
    first_dir: &std::path::Path,
    first: &WhatIfMeta,
) -> Result<(), MergeError> {
    let checks: [(&'static str, String, String); 7] = [
        (
            "command",
            meta.study.command().to_string(),
            first.study.command().to_string(),
        ),
        (
            "brandsim version",
            meta.brandsim_version.clone(),
            first.brandsim_version.clone(),
        ),
        ("seed", meta.seed.to_string(), first.seed.to_string()),
        (
            "replication count",
            meta.replications.to_string(),
            first.replications.to_string(),
        ),
        (
            "shard count",
            meta.shard.count.to_string(),
            first.shard.count.to_string(),
        ),
        (
            "number of grid points or arms",
            meta.points.to_string(),
            first.points.to_string(),
        ),
        (
            "study (hash of its options and scenarios)",
            format!("{} {}", meta.scenario, meta.study_hash),
            format!("{} {}", first.scenario, first.study_hash),
        ),
    ];
    for (what, found, expected) in checks {
        if found != expected {
            return Err(MergeError::Mismatch {
                dir: dir.to_path_buf(),
                shard: meta.shard,
                first: first_dir.to_path_buf(),
                what,
                found,
                expected,
            });
        }
    }
    Ok(())
}

/// Checks that `store` is a shard of the same study as `first`.
fn check_same_study(store: &StudyStore, first: &StudyStore) -> Result<(), MergeError> {
    let (meta, reference) = (store.meta(), first.meta());
    let checks: [(&'static str, String, String); 5] = [
        (
            "brandsim version",
            meta.brandsim_version.clone(),
            reference.brandsim_version.clone(),
        ),
        ("seed", meta.seed.to_string(), reference.seed.to_string()),
        (
            "replication count",
            meta.replications.to_string(),
            reference.replications.to_string(),
        ),
        (
            "shard count",
            meta.shard.count.to_string(),
            reference.shard.count.to_string(),
        ),
        (
            "scenario (hash of the resolved scenario.toml)",
            format!("{} {}", meta.scenario, meta.scenario_hash),
            format!("{} {}", reference.scenario, reference.scenario_hash),
        ),
    ];
    for (what, found, expected) in checks {
        if found != expected {
            return Err(MergeError::Mismatch {
                dir: store.dir().to_path_buf(),
                shard: meta.shard,
                first: first.dir().to_path_buf(),
                what,
                found,
                expected,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_replications() {
        for count in [1, 2, 3, 7, 40] {
            let mut all: Vec<u32> = (0..count)
                .flat_map(|index| Shard { index, count }.replications(23))
                .collect();
            all.sort();
            assert_eq!(all, (0..23).collect::<Vec<_>>(), "N = {count}");
        }
        assert_eq!(Shard { index: 1, count: 3 }.replications(8), vec![1, 4, 7]);
    }

    #[test]
    fn shard_text_is_k_slash_n_with_k_below_n() {
        assert_eq!("2/7".parse(), Ok(Shard { index: 2, count: 7 }));
        assert_eq!("0/1".parse(), Ok(Shard::WHOLE));
        for bad in ["3/3", "1/0", "-1/2", "1", "a/b", "1/2/3", ""] {
            let error = bad.parse::<Shard>().unwrap_err();
            assert!(error.contains("K/N"), "{bad}: {error}");
        }
        assert_eq!(Shard { index: 4, count: 9 }.to_string(), "4/9");
    }
}

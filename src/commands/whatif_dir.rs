//! The directory of a what-if study (`sweep`, `compare`): `whatif.json` and one
//! study directory per grid point or arm, filled replication by replication, so
//! that a what-if study is sharded, interrupted, resumed and merged like `run`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::ValueEnum;

use super::study_dir::{Filled, Opening, check_same_study, fill_store, open_store};
use super::{CliError, progress_bar, write_output};
use crate::cli::{PlotArgs, StudyArgs};
use crate::guard::StudyPlan;
use crate::outcome::Outcome;
use crate::plots::PlotFormat;
use crate::scenario::{Scenario, ScenarioSource};
use crate::shard::Shard;
use crate::store::{
    StudyMeta, StudyStore, WHATIF_FORMAT, WhatIf, WhatIfMeta, fnv1a64, scenario_hash,
};
use crate::study::output_dir::DirLock;

/// One grid point or arm of a what-if study.
pub struct WhatIfPoint<'a> {
    pub scenario: &'a Arc<Scenario>,
    pub source: &'a ScenarioSource,
    /// Replications of the whole study at this point.
    pub replications: u32,
}

impl WhatIfPoint<'_> {
    fn meta(&self, shard: Shard) -> StudyMeta {
        StudyMeta {
            replications: self.replications,
            ..StudyMeta::new(self.scenario, self.source, shard)
        }
    }
}

/// An open what-if study directory: its metadata and one store per point.
pub struct WhatIfStudy {
    pub dir: PathBuf,
    pub meta: WhatIfMeta,
    pub stores: Vec<StudyStore>,
}

impl WhatIfStudy {
    /// Wall time spent on every point, over every process that worked on it.
    pub fn seconds(&self) -> f64 {
        self.stores.iter().map(|s| s.meta().work.seconds).sum()
    }
}

/// The metadata of a what-if study of `points` (the base first), before any work.
pub fn whatif_meta(
    study: WhatIf,
    points: &[WhatIfPoint],
    shard: Shard,
    plot_args: &PlotArgs,
) -> WhatIfMeta {
    let base = points[0].scenario;
    let hashes: Vec<String> = points.iter().map(|p| scenario_hash(p.source)).collect();
    let key = format!(
        "{}\n{}",
        serde_json::to_string(&study).expect("plain data"),
        hashes.join("\n")
    );
    WhatIfMeta {
        format: WHATIF_FORMAT.to_string(),
        study,
        brandsim_version: env!("CARGO_PKG_VERSION").to_string(),
        scenario: base.name.clone(),
        study_hash: fnv1a64(&key),
        seed: base.simulation.seed,
        replications: points[0].replications,
        shard,
        points: points.len(),
        plot_format: (!plot_args.no_plots).then(|| {
            plot_args
                .plot_format
                .to_possible_value()
                .expect("no skipped formats")
                .get_name()
                .to_string()
        }),
    }
}

/// The plot options stored in `meta` (what `merge` draws).
pub fn stored_plot_args(meta: &WhatIfMeta) -> PlotArgs {
    let format = meta
        .plot_format
        .as_deref()
        .and_then(|name| PlotFormat::from_str(name, true).ok());
    PlotArgs {
        plot_format: format.unwrap_or_default(),
        no_plots: format.is_none(),
    }
}

/// A what-if study ready to run: its output directory locked for the whole
/// command, the study opened there (new or resumed), each point's plan within
/// the available memory, and the thread pool the plans are for.
pub struct StartedWhatIf {
    pub lock: DirLock,
    pub study: WhatIfStudy,
    pub plans: Vec<StudyPlan>,
    pub pool: rayon::ThreadPool,
}

/// The start every what-if command (`sweep`, `compare`, `sensitivity`) shares:
/// the study's meta for `kind` and `--shard`, the memory plans of its points,
/// the lock on the output directory, and [`open_whatif`] there.
pub fn start_whatif(
    kind: WhatIf,
    points: &[WhatIfPoint],
    base: &Scenario,
    base_toml: &str,
    identity: &str,
    args: &StudyArgs,
    plot_args: &PlotArgs,
) -> Result<StartedWhatIf, CliError> {
    let shard = args.shard.unwrap_or(Shard::WHOLE);
    let wanted = whatif_meta(kind, points, shard, plot_args);
    let pool = crate::study::thread_pool(args.threads);
    let plans = plan_points(points, shard, &pool)?;
    let lock = super::lock_output(args, base)?;
    let study = open_whatif(lock.dir(), wanted, identity, base_toml, points, args)?;
    Ok(StartedWhatIf {
        lock,
        study,
        plans,
        pool,
    })
}

/// Plans every point within the available memory (see `crate::guard`), for the
/// replications of `shard`; prints the first note of a reduced plan.
pub fn plan_points(
    points: &[WhatIfPoint],
    shard: Shard,
    pool: &rayon::ThreadPool,
) -> Result<Vec<StudyPlan>, CliError> {
    let available = crate::guard::available_memory();
    let plans = points
        .iter()
        .map(|point| {
            crate::guard::plan_study(
                point.scenario,
                shard.replications(point.replications).len(),
                pool.current_num_threads(),
                available,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(note) = plans.iter().find_map(StudyPlan::note) {
        eprintln!("{note}");
    }
    Ok(plans)
}

/// Entry point of a what-if command's directory `dir`: with `--resume`, the study
/// there, checked to be the same (`wanted`, up to its shard when `--shard` is not
/// given); otherwise a new one: the output directory checked and marked with
/// `identity` once, `whatif.json`, the base scenario and a store per point.
pub fn open_whatif(
    dir: &Path,
    wanted: WhatIfMeta,
    identity: &str,
    base_toml: &str,
    points: &[WhatIfPoint],
    args: &StudyArgs,
) -> Result<WhatIfStudy, CliError> {
    let command = wanted.study.command();
    if args.resume.is_none() {
        let existing = if args.force {
            None
        } else {
            WhatIfMeta::read(dir)?
        };
        if let Some(existing) = existing {
            return Err(CliError::Usage(format!(
                "--out {}: already holds a {} of {} (shard {}); continue it with --resume {}, or choose another --out",
                dir.display(),
                existing.study.command(),
                existing.scenario,
                existing.shard,
                dir.display()
            )));
        }
        super::create_output_dir(dir, identity, args.force, super::Reuse::Resume)?;
        wanted.write(dir)?;
        write_output(dir, crate::store::SCENARIO_FILE, base_toml.as_bytes())?;
        let stores = points
            .iter()
            .enumerate()
            .map(|(i, point)| {
                open_store(
                    &wanted.point_dir(dir, i),
                    point.meta(wanted.shard),
                    &point.source.resolved_toml(),
                    Opening::New,
                    "",
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(WhatIfStudy {
            dir: dir.to_path_buf(),
            meta: wanted,
            stores,
        });
    }

    let stored = WhatIfMeta::read(dir)?.ok_or_else(|| {
        CliError::Usage(format!(
            "--resume {}: no {command} to resume there (no {}/{})",
            dir.display(),
            dir.display(),
            crate::store::WHATIF_FILE
        ))
    })?;
    let shard = args.shard.unwrap_or(stored.shard);
    check_same_study(
        dir,
        vec![
            (
                "command",
                stored.study.command().to_string(),
                command.to_string(),
            ),
            (
                "brandsim version",
                stored.brandsim_version.clone(),
                wanted.brandsim_version.clone(),
            ),
            (
                "study (hash of its options and scenarios)",
                format!("{} {}", stored.scenario, stored.study_hash),
                format!("{} {}", wanted.scenario, wanted.study_hash),
            ),
            ("shard", stored.shard.to_string(), shard.to_string()),
        ],
        &format!("resume it with the {command} command, scenario and options it was started with"),
    )?;
    let stores = points
        .iter()
        .enumerate()
        .map(|(i, point)| {
            open_store(
                &stored.point_dir(dir, i),
                point.meta(shard),
                &point.source.resolved_toml(),
                Opening::ResumeOrNew,
                "start a new study with another --out",
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(WhatIfStudy {
        dir: dir.to_path_buf(),
        meta: stored,
        stores,
    })
}

/// Runs the replications of every point that are not stored yet, point after
/// point, saving each as it finishes. On Ctrl-C, returns
/// [`CliError::Interrupted`] once running replications are saved, after telling
/// how to continue (`resume_command`).
pub fn run_whatif(
    study: &mut WhatIfStudy,
    points: &[WhatIfPoint],
    plans: &[StudyPlan],
    pool: &rayon::ThreadPool,
    quiet: bool,
    resume_command: &str,
) -> Result<Filled, CliError> {
    let stop: &AtomicBool = super::study_dir::interrupt_flag();
    let due: usize = study
        .stores
        .iter()
        .map(|s| s.meta().replications_due().len())
        .sum();
    // Every point's stored outcomes are checked before any point is computed.
    for store in &study.stores {
        store.load_outcomes()?;
    }
    let bar = progress_bar(due as u64, "replications", quiet);
    let mut total = Filled::default();
    let mut result = Ok(());
    for ((store, point), plan) in study.stores.iter_mut().zip(points).zip(plans) {
        match fill_store(store, point.scenario, pool, stop, plan, &bar) {
            Ok(filled) => total.add(filled),
            Err(error) => {
                result = Err(error);
                break;
            }
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
    }
    bar.finish_and_clear();
    result?;
    if total.due < due || !total.is_complete() {
        eprintln!(
            "interrupted: {} of {due} replications of the {} are saved in {}; continue with: {resume_command}",
            total.reused + total.computed,
            study.meta.study.command(),
            study.dir.display(),
        );
        return Err(CliError::Interrupted);
    }
    if total.reused > 0 {
        eprintln!(
            "resumed {}: {} replications were already done, {} computed now",
            study.dir.display(),
            total.reused,
            total.computed
        );
    }
    if study.meta.shard.is_whole() {
        let scenarios: Vec<&Scenario> = points.iter().map(|p| &**p.scenario).collect();
        write_point_network_outputs(
            &study.dir,
            &study.meta,
            &scenarios,
            pool.current_num_threads(),
        )?;
    }
    Ok(total)
}

/// Writes `network.json` (see `output::network`) into the directory of each
/// point or arm of the whole what-if study in `dir` (`points/<i>/`, `arms/<i>/`)
/// whose scenario, `scenarios[i]`, has a social network; no degree plot (a
/// run's). Points on the same graphs (a sweep of seeding, say) share one
/// summary per graph, remembered from the run where it summarised them.
pub fn write_point_network_outputs(
    dir: &Path,
    meta: &WhatIfMeta,
    scenarios: &[&Scenario],
    threads: usize,
) -> Result<(), CliError> {
    let replications: Vec<u32> = (0..meta.replications).collect();
    for (i, scenario) in scenarios.iter().enumerate() {
        let Some(outputs) =
            crate::output::network::network_outputs(scenario, &replications, threads, None)?
        else {
            continue;
        };
        let point = meta.point_dir(dir, i);
        let relative = point
            .strip_prefix(dir)
            .expect("a point's directory is below its study's")
            .join("network.json");
        write_output(dir, &relative.to_string_lossy(), outputs.json.as_bytes())?;
    }
    Ok(())
}

/// Prints where a shard's replications are and how to merge them.
pub fn print_shard_done(study: &WhatIfStudy, filled: &Filled) -> Result<(), CliError> {
    let meta = &study.meta;
    outln!(
        "shard {} of the {} of {}: {} replications of {} {} saved in {}; merge all {} shards with: brandsim merge DIR... --out DIR",
        meta.shard,
        meta.study.command(),
        meta.scenario,
        filled.due,
        meta.points,
        match meta.study {
            WhatIf::Sweep { .. } => "grid points",
            WhatIf::Compare { .. } => "arms",
            WhatIf::Sensitivity { .. } => "design points",
        },
        study.dir.display(),
        meta.shard.count
    );
    Ok(())
}

/// Every outcome of point `i`, in replication order.
pub fn point_outcomes(study: &WhatIfStudy, i: usize) -> Result<Vec<Outcome>, CliError> {
    Ok(study.stores[i].load_complete()?)
}

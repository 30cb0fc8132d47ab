//! What every simulating command shares to run a study that loses nothing: the
//! study directory (new, or resumed with `--resume`), `--shard`, Ctrl-C, and the
//! outputs and printout of a whole study.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use indicatif::ProgressBar;

use super::{CliError, progress_bar, write_output};
use crate::cli::StudyArgs;
use crate::guard::StudyPlan;
use crate::memory;
use crate::outcome::Outcome;
use crate::report::{self, Throughput};
use crate::scenario::{Scenario, ScenarioSource};
use crate::shard::Shard;
use crate::store::{StoreError, StudyMeta, StudyStore, Work};
use crate::study::{StudyRun, StudySummary, run_replications_until, summarize_study};

/// The stop flag of a program that embeds the commands (see [`embedded_interrupt_flag`]).
static EMBEDDED_STOP: AtomicBool = AtomicBool::new(false);

/// Whether [`embedded_interrupt_flag`] was called: the process's signals belong to
/// its host (the Python interpreter), so [`interrupt_flag`] installs no handler.
static EMBEDDED: AtomicBool = AtomicBool::new(false);

/// For a program that embeds the commands (the Python package): from now on,
/// [`interrupt_flag`] installs no SIGINT/SIGTERM handler (the host handles its
/// signals; a second Ctrl-C must not end it) and returns this flag, which the
/// host sets to stop every running study as Ctrl-C would, and clears before
/// starting a new one.
pub fn embedded_interrupt_flag() -> &'static AtomicBool {
    EMBEDDED.store(true, Ordering::SeqCst);
    &EMBEDDED_STOP
}

/// Set by the first SIGINT or SIGTERM: no new replication starts. A second one
/// ends the process at once (exit 130). In a host program that called
/// [`embedded_interrupt_flag`], that flag, and no signal handler.
pub fn interrupt_flag() -> &'static AtomicBool {
    static INTERRUPTED: AtomicBool = AtomicBool::new(false);
    static INSTALLED: OnceLock<()> = OnceLock::new();
    if EMBEDDED.load(Ordering::SeqCst) {
        return &EMBEDDED_STOP;
    }
    INSTALLED.get_or_init(|| {
        use signal_hook::consts::{SIGINT, SIGTERM};
        for signal in [SIGINT, SIGTERM] {
            // The shutdown must be registered first: it fires only once the flag is set.
            let installed =
                signal_hook::flag::register_conditional_shutdown(signal, 130, &INTERRUPTED)
                    .and_then(|_| signal_hook::flag::register(signal, &INTERRUPTED));
            if let Err(error) = installed {
                eprintln!("warning: cannot handle signal {signal}: {error}");
            }
        }
    });
    &INTERRUPTED
}

/// Opens the study directory `dir` for `scenario`: with `--resume`, the study
/// there, checked to be the same study; otherwise a new one (refusing a directory
/// that already holds a study).
pub fn open_study(
    dir: &Path,
    scenario: &Scenario,
    source: &ScenarioSource,
    args: &StudyArgs,
) -> Result<StudyStore, CliError> {
    let opening = if args.resume.is_none() {
        let study = format!("brandsim run\n{}", source.resolved_toml());
        super::create_output_dir(dir, &study, args.force, super::Reuse::Resume)?;
        Opening::New
    } else {
        Opening::Resume
    };
    // Resumed without --shard: whichever shard the directory holds.
    let shard = args
        .shard
        .or_else(|| {
            let stored = args
                .resume
                .as_ref()
                .and_then(|_| StudyStore::open(dir).ok());
            stored.map(|store| store.meta().shard)
        })
        .unwrap_or(Shard::WHOLE);
    let hint = format!(
        "resume it with the scenario it stored: brandsim run {}/scenario.toml --resume {}",
        dir.display(),
        dir.display()
    );
    open_store(
        dir,
        StudyMeta::new(scenario, source, shard),
        &source.resolved_toml(),
        opening,
        &hint,
    )
}

/// How [`open_store`] treats a study directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// A new study (with `--force`, the directory was cleared before).
    New,
    /// The study there, which must exist.
    Resume,
    /// The study there if there is one, else a new one (a grid point or arm that
    /// an interrupted what-if study had not reached).
    ResumeOrNew,
}

/// Opens the study store in `dir` for the study `wanted` (its shard included):
/// creates it, or opens the one there and checks that it is the same study
/// (`hint` says what to do if not).
pub fn open_store(
    dir: &Path,
    wanted: StudyMeta,
    resolved_toml: &str,
    opening: Opening,
    hint: &str,
) -> Result<StudyStore, CliError> {
    let opened = match opening {
        Opening::New => return Ok(StudyStore::create(dir, wanted, resolved_toml)?),
        Opening::Resume | Opening::ResumeOrNew => StudyStore::open(dir),
    };
    let store = match opened {
        Ok(store) => store,
        Err(StoreError::NotAStudy { .. }) if opening == Opening::ResumeOrNew => {
            return Ok(StudyStore::create(dir, wanted, resolved_toml)?);
        }
        Err(StoreError::NotAStudy { dir }) => {
            return Err(CliError::Usage(format!(
                "--resume {}: no study to resume there (no {}/study.json)",
                dir.display(),
                dir.display()
            )));
        }
        Err(other) => return Err(other.into()),
    };
    let stored = store.meta();
    check_same_study(
        dir,
        vec![
            (
                "brandsim version",
                stored.brandsim_version.clone(),
                wanted.brandsim_version.clone(),
            ),
            (
                "scenario",
                stored.scenario_hash.clone(),
                wanted.scenario_hash.clone(),
            ),
            ("shard", stored.shard.to_string(), wanted.shard.to_string()),
        ],
        hint,
    )?;
    Ok(store)
}

/// Refuses to resume the study in `dir` unless it is the one asked for: every
/// `(what, found there, asked)` must agree. `hint` says what to do if not.
pub fn check_same_study(
    dir: &Path,
    checks: Vec<(&str, String, String)>,
    hint: &str,
) -> Result<(), CliError> {
    let differences: Vec<String> = checks
        .into_iter()
        .filter(|(_, there, asked)| there != asked)
        .map(|(what, there, asked)| format!("{what} {there} there, {asked} asked"))
        .collect();
    if differences.is_empty() {
        return Ok(());
    }
    Err(CliError::Usage(format!(
        "--resume {}: not the same study ({}); {hint}",
        dir.display(),
        differences.join("; "),
    )))
}

/// A study directory brought as far as this process could.
pub struct StoredStudy {
    /// Every outcome in the directory, in replication order.
    pub outcomes: Vec<Outcome>,
    /// Replications found already finished in the directory.
    pub reused: usize,
    /// Replications computed by this process.
    pub computed: usize,
    /// The work of this process alone (its throughput counts only this).
    pub work: Work,
}

/// How far [`fill_store`] brought a study directory.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Filled {
    /// Replications found already finished.
    pub reused: usize,
    /// Replications computed by this process.
    pub computed: usize,
    /// Replications the directory is to hold.
    pub due: usize,
    /// The work of this process.
    pub work: Work,
}

impl Filled {
    pub fn is_complete(&self) -> bool {
        self.reused + self.computed == self.due
    }

    pub fn add(&mut self, other: Filled) {
        self.reused += other.reused;
        self.computed += other.computed;
        self.due += other.due;
        self.work.add(&other.work);
    }
}

/// Runs the replications of `store`'s shard that are not stored yet, saving each
/// as it finishes and counting it on `bar`. If `stop` is set (Ctrl-C), returns
/// once running replications have finished and been saved: the result is then
/// not complete.
pub fn fill_store(
    store: &mut StudyStore,
    scenario: &Arc<Scenario>,
    pool: &rayon::ThreadPool,
    stop: &AtomicBool,
    plan: &StudyPlan,
    bar: &ProgressBar,
) -> Result<Filled, CliError> {
    // Every stored outcome is checked (name, study, index, checksum) before
    // anything is computed, so a bad file is refused at once, not after hours.
    let finished: Vec<u32> = store
        .load_outcomes()?
        .iter()
        .map(|o| o.replication)
        .collect();
    let due = store.meta().replications_due();
    let todo: Vec<u32> = due
        .iter()
        .copied()
        .filter(|j| finished.binary_search(j).is_err())
        .collect();
    let reused = due.len() - todo.len();
    bar.inc(reused as u64);
    // The graphs the whole study's network.json reports are summarised as they
    // are built, not generated again for the outputs.
    let study: Vec<u32> = (0..store.meta().replications).collect();
    crate::output::network::request_summaries(scenario, &study);

    let save_error: Mutex<Option<StoreError>> = Mutex::new(None);
    let saver: &StudyStore = store;
    let save = |outcome: &Outcome| {
        if let Err(error) = saver.save(outcome) {
            save_error
                .lock()
                .expect("not poisoned")
                .get_or_insert(error);
            stop.store(true, Ordering::SeqCst);
        }
        bar.inc(1);
    };
    // The resource guard may allow fewer replications in memory at once.
    let mut study = StudyRun {
        outcomes: Vec::new(),
        seconds: 0.0,
    };
    for batch in todo.chunks(plan.concurrent_replications.max(1)) {
        let run = run_replications_until(scenario, batch, pool, stop, &save);
        study.outcomes.extend(run.outcomes);
        study.seconds += run.seconds;
    }
    let work = Work {
        seconds: study.seconds,
        threads: pool.current_num_threads(),
        peak_memory_bytes: memory::peak_bytes(),
        start_memory_bytes: memory::at_start_bytes(),
    };
    store.record_work(&work)?;
    if let Some(error) = save_error.into_inner().expect("not poisoned") {
        return Err(error.into());
    }
    Ok(Filled {
        reused,
        computed: study.outcomes.len(),
        due: due.len(),
        work,
    })
}

/// Runs the replications of `store`'s shard that are not stored yet, saving each
/// as it finishes, and returns every outcome of the shard. If `stop` is set
/// (Ctrl-C), returns [`CliError::Interrupted`] once running replications have
/// finished and been saved, after telling how to resume.
pub fn run_stored(
    store: &mut StudyStore,
    scenario: &Arc<Scenario>,
    pool: &rayon::ThreadPool,
    stop: &AtomicBool,
    quiet: bool,
    plan: &StudyPlan,
    resume_command: &str,
) -> Result<StoredStudy, CliError> {
    let due = store.meta().replications_due().len();
    let bar = progress_bar(due as u64, "replications", quiet);
    let filled = fill_store(store, scenario, pool, stop, plan, &bar);
    bar.finish_and_clear();
    let filled = filled?;
    if !filled.is_complete() {
        let dir = store.dir().display();
        eprintln!(
            "interrupted: {} of {} replications are saved in {dir}; continue with: {resume_command}",
            filled.reused + filled.computed,
            filled.due,
        );
        return Err(CliError::Interrupted);
    }
    Ok(StoredStudy {
        outcomes: store.load_complete()?,
        reused: filled.reused,
        computed: filled.computed,
        work: filled.work,
    })
}

/// The throughput of this process: the replications it computed (not those a
/// resumed study found done) in its own wall time.
pub fn process_throughput(scenario: &Scenario, stored: &StoredStudy) -> Throughput {
    Throughput {
        peak_memory_bytes: stored.work.peak_memory_bytes,
        start_memory_bytes: stored.work.start_memory_bytes,
        ..Throughput::new(
            scenario,
            stored.computed,
            stored.work.seconds,
            stored.work.threads.max(1),
        )
    }
}

/// The throughput of the whole study in `store`, from the work recorded there
/// (`merge`: the shards' summed wall time over every replication).
pub fn stored_throughput(scenario: &Scenario, replications: usize, work: &Work) -> Throughput {
    Throughput {
        peak_memory_bytes: work.peak_memory_bytes,
        start_memory_bytes: work.start_memory_bytes,
        ..Throughput::new(scenario, replications, work.seconds, work.threads)
    }
}

/// Writes `replications.csv`, `daily.csv`, `summary.json` and the fan charts
/// (unless `plot_args` says no plots) of a whole study into `dir` (`summary.json`
/// with `precision` under its key, for `run --precision`); returns the summary
/// and the JSON text. Every output is made in memory first, so the peak memory
/// reported in `throughput` includes the output phase.
pub fn write_study_outputs(
    dir: &Path,
    scenario: &Scenario,
    outcomes: &[Outcome],
    throughput: &mut Throughput,
    precision: Option<serde_json::Value>,
    plot_args: Option<&crate::cli::PlotArgs>,
) -> Result<(StudySummary, String), CliError> {
    let summary = summarize_study(outcomes);
    let replications_csv = report::replications_csv(outcomes);
    let daily_csv = report::daily_csv(&summary, &scenario.calendar);
    let plots = match plot_args {
        Some(args) => super::run::run_plots(scenario, outcomes, args)?,
        None => Vec::new(),
    };
    throughput.peak_memory_bytes = throughput.peak_memory_bytes.max(memory::peak_bytes());
    let mut json = report::summary_json(scenario, outcomes.len(), &summary, throughput);
    if let Some(precision) = precision {
        json["precision"] = precision;
    }
    let json_text = serde_json::to_string_pretty(&json).expect("plain JSON");
    write_output(dir, "replications.csv", &replications_csv)?;
    write_output(dir, "daily.csv", &daily_csv)?;
    super::write_plots(dir, &plots)?;
    write_output(dir, "summary.json", json_text.as_bytes())?;
    write_network_outputs(dir, scenario, outcomes, throughput.threads, plot_args)?;
    Ok((summary, json_text))
}

/// `network.json` (and `degree.svg` unless plots are off) of a study with a
/// social network; nothing without one. After the study's own outputs, so its
/// peak memory is not the summary's.
fn write_network_outputs(
    dir: &Path,
    scenario: &Scenario,
    outcomes: &[Outcome],
    threads: usize,
    plot_args: Option<&crate::cli::PlotArgs>,
) -> Result<(), CliError> {
    let replications: Vec<u32> = outcomes.iter().map(|o| o.replication).collect();
    let format = plot_args.filter(|a| !a.no_plots).map(|a| a.plot_format);
    let outputs =
        crate::output::network::network_outputs(scenario, &replications, threads, format)?;
    if let Some(outputs) = outputs {
        write_output(dir, "network.json", outputs.json.as_bytes())?;
        if let Some(plot) = outputs.plot {
            write_output(dir, &plot.name, &plot.bytes)?;
        }
    }
    Ok(())
}

/// Prints a whole study: the JSON summary with `--json`, else the table and the
/// throughput.
pub fn print_study(
    scenario: &Scenario,
    replications: usize,
    summary: &StudySummary,
    throughput: &Throughput,
    json_text: &str,
    json: bool,
    dir: &Path,
) -> Result<(), CliError> {
    if json {
        outln!("{json_text}");
        return Ok(());
    }
    out!("{}", report::metrics_table(scenario, replications, summary));
    outln!(
        "throughput: {:.3e} user-days in {:.2} s = {:.3e} user-days/s on {} threads; peak memory {}",
        throughput.user_days,
        throughput.seconds,
        throughput.user_days_per_second(),
        throughput.threads,
        throughput.peak_memory_text()
    );
    outln!("wrote {}", dir.display());
    Ok(())
}

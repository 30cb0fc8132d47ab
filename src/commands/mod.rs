//! One module per subcommand, plus what they share: loading a scenario with the
//! common options, the output directory, the progress bar and the CLI error.

pub mod calibrate;
pub mod compare;
pub mod fit;
pub mod merge;
pub mod optimize;
pub mod run;
pub mod study_dir;
pub mod sweep;
pub mod validate;
pub mod whatif_dir;

use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::StudyArgs;
use crate::scenario::{self, Assignment, Scenario, ScenarioError, ScenarioSource};

/// Why a command failed; each kind has its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Scenario(#[from] ScenarioError),
    #[error("{0}")]
    Usage(String),
    #[error("cannot write {}: {source}", path.display())]
    Output { path: PathBuf, source: io::Error },
    #[error("interrupted")]
    Interrupted,
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Merge(#[from] crate::shard::MergeError),
    #[error("{0}")]
    Plot(#[from] crate::plots::PlotError),
    #[error("{0}")]
    Resources(#[from] crate::guard::GuardError),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Interrupted => 130,
            _ => 2,
        }
    }
}

/// The `--set` assignments plus `--seed` and `--replications`, in that order.
pub fn assignments(file: &Path, args: &StudyArgs) -> Result<Vec<Assignment>, CliError> {
    let mut assignments = args
        .set
        .iter()
        .map(|text| scenario::parse_assignment(text).map_err(|e| with_file(e, file)))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(seed) = args.seed {
        let seed = i64::try_from(seed).map_err(|_| {
            CliError::Usage(format!("--seed {seed}: expected an integer in [0, 2^63)"))
        })?;
        assignments.push(Assignment {
            key: "simulation.seed".into(),
            value: toml::Value::Integer(seed),
        });
    }
    if let Some(replications) = args.replications {
        assignments.push(Assignment {
            key: "simulation.replications".into(),
            value: toml::Value::Integer(i64::from(replications)),
        });
    }
    Ok(assignments)
}

fn with_file(mut error: ScenarioError, file: &Path) -> ScenarioError {
    if error.file.is_empty() {
        error.file = file.display().to_string();
    }
    error
}

/// Refuses `--shard` and `--resume` for a command that does not store its studies
/// (`optimize`; `run`, `sweep` and `compare` do).
pub fn refuse_store_options(command: &str, args: &StudyArgs) -> Result<(), CliError> {
    if args.shard.is_some() || args.resume.is_some() {
        return Err(CliError::Usage(format!(
            "brandsim {command} does not take --shard or --resume yet: shard or resume each study with brandsim run"
        )));
    }
    Ok(())
}

/// Loads `file` with the study options applied.
pub fn load_scenario(
    file: &Path,
    args: &StudyArgs,
) -> Result<(Scenario, ScenarioSource), CliError> {
    let assignments = assignments(file, args)?;
    Ok(scenario::load_file(file, &assignments)?)
}

/// The output directory: `--out`, or `runs/<scenario>-<UTC timestamp>/`.
pub fn output_dir(args: &StudyArgs, scenario: &Scenario) -> PathBuf {
    named_output_dir(args.out.as_deref(), &scenario.name)
}

/// The output directory: `out`, or `runs/<name>-<UTC timestamp>/`.
pub fn named_output_dir(out: Option<&Path>, name: &str) -> PathBuf {
    if let Some(dir) = out {
        return dir.to_path_buf();
    }
    let base = format!("runs/{}-{}", file_safe(name), utc_timestamp());
    let mut dir = PathBuf::from(&base);
    let mut n = 2;
    while dir.exists() {
        dir = PathBuf::from(format!("{base}-{n}"));
        n += 1;
    }
    dir
}

/// The file in an output directory that says which study wrote it.
pub const STUDY_MARKER: &str = ".brandsim-study";

/// The text that identifies a study in its output directory's marker: the
/// command, what it varies or tunes, and the resolved scenario.
pub fn study_identity(command: &str, details: &str, source: &ScenarioSource) -> String {
    format!("brandsim {command}\n{details}\n{}", source.resolved_toml())
}

/// Checks, without writing, that `dir` may receive the outputs of `study` (a
/// text that identifies the study, e.g. the command and its resolved scenario):
/// it is absent, empty, or holds the same study, or `force` is set. Commands call
/// it before simulating, so that a long study is not run for nothing.
pub fn check_output_dir(dir: &Path, study: &str, force: bool) -> Result<(), CliError> {
    let usage = |what: String| CliError::Usage(format!("--out {}: {what}", dir.display()));
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(_) if dir.exists() && !dir.is_dir() => {
            return Err(usage(
                "exists and is not a directory; expected a directory for the outputs".into(),
            ));
        }
        Err(source) => {
            return Err(CliError::Output {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    if force || entries.count() == 0 {
        return Ok(());
    }
    match std::fs::read_to_string(dir.join(STUDY_MARKER)) {
        Ok(marker) if marker == study => Ok(()),
        Ok(_) => Err(usage(
            "already holds the results of a different study; choose another --out, or pass --force to overwrite them".into(),
        )),
        Err(_) => Err(usage(
            "is not empty and holds no brandsim study; choose another --out, or pass --force to write into it".into(),
        )),
    }
}

/// Creates the output directory (and parents) for `study` after
/// [`check_output_dir`], and marks it as holding that study.
pub fn create_output_dir(dir: &Path, study: &str, force: bool) -> Result<(), CliError> {
    check_output_dir(dir, study, force)?;
    std::fs::create_dir_all(dir).map_err(|source| CliError::Output {
        path: dir.to_path_buf(),
        source,
    })?;
    write_output(dir, STUDY_MARKER, study.as_bytes())
}

/// Plans a study within the available memory (see `crate::guard`): fewer
/// replications at a time if needed, with a note on stderr, or an error.
pub fn plan_study(
    scenario: &Scenario,
    replications: usize,
    pool: &rayon::ThreadPool,
) -> Result<crate::guard::StudyPlan, CliError> {
    let plan = crate::guard::plan_study(
        scenario,
        replications,
        pool.current_num_threads(),
        crate::guard::available_memory(),
    )?;
    if let Some(note) = plan.note() {
        eprintln!("{note}");
    }
    Ok(plan)
}

/// Writes one output file atomically.
pub fn write_output(dir: &Path, name: &str, contents: &[u8]) -> Result<(), CliError> {
    let path = dir.join(name);
    crate::report::write_atomically(&path, contents)
        .map_err(|source| CliError::Output { path, source })
}

fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `YYYYMMDD-HHMMSS` in UTC.
fn utc_timestamp() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// Checks that `name` (given with `flag`) is a metric.
pub fn metric_name(flag: &str, name: &str) -> Result<&'static str, CliError> {
    crate::metrics::METRIC_NAMES
        .iter()
        .find(|&&m| m == name)
        .copied()
        .ok_or_else(|| {
            CliError::Usage(format!(
                "{flag} {name:?}: unknown metric; expected one of: {}",
                crate::metrics::METRIC_NAMES.join(", ")
            ))
        })
}

/// Writes drawn plots into the output directory.
pub fn write_plots(dir: &Path, plots: &[crate::plots::PlotFile]) -> Result<(), CliError> {
    for plot in plots {
        write_output(dir, &plot.name, &plot.bytes)?;
    }
    Ok(())
}

/// A progress bar on stderr, hidden with `--quiet` or when stderr is no terminal.
pub fn progress_bar(len: u64, what: &str, quiet: bool) -> ProgressBar {
    if quiet || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(&format!(
        "{{spinner}} {what} {{bar:40}} {{pos}}/{{len}} [{{elapsed_precise}}, eta {{eta}}]"
    ))
    .expect("valid template");
    bar.set_style(style);
    bar
}

//! One module per subcommand, plus what they share: loading a scenario with the
//! common options, the output directory, the progress bar and the CLI error.

/// `print!` that returns `CliError::Output` (`cannot write stdout: ...`) from
/// the enclosing function when stdout cannot be written (a full disk, `/dev/full`).
/// A closed pipe ends the process quietly (SIGPIPE, see `main`).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::commands::print_out(&format!($($arg)*))?
    };
}

/// `println!` that returns `CliError::Output` when stdout cannot be written.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::commands::print_out(&format!("{}\n", format_args!($($arg)*)))?
    };
}

pub mod calibrate;
pub mod compare;
pub mod fit;
pub mod merge;
pub mod optimize;
pub mod report;
pub mod run;
pub mod sensitivity;
pub mod study_dir;
pub mod sweep;
pub mod validate;
pub mod whatif_dir;

use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{Command, StudyArgs};
use crate::scenario::{self, Assignment, Scenario, ScenarioError, ScenarioSource};
use crate::study::output_dir::{self, Acquire, DirLock, Marker, MarkerState};

/// Runs one parsed command: the `brandsim` binary and the Python package both call
/// this, so a command means the same wherever it is started from.
///
/// # Errors
/// The command's [`CliError`] (its [`CliError::exit_code`] is the process's exit
/// code in the CLI).
pub fn dispatch(command: Command) -> Result<(), CliError> {
    match command {
        Command::Validate { files } => validate::run(&files),
        Command::Run {
            file,
            study,
            precision,
            plots,
        } => run::run(&file, &study, &precision, &plots),
        Command::Sweep {
            file,
            vary,
            metrics,
            study,
            plots,
        } => sweep::run(&file, &vary, &metrics, &study, &plots),
        Command::Compare {
            files,
            metric,
            study,
            plots,
        } => compare::run(&files, &metric, &study, &plots),
        Command::Sensitivity {
            file,
            params,
            method,
            samples,
            metrics,
            study,
            plots,
        } => sensitivity::run(&file, &params, method, samples, &metrics, &study, &plots),
        Command::Merge { dirs, out, json } => merge::run(&dirs, &out, json),
        Command::Optimize {
            file,
            tuning,
            study,
        } => optimize::run(&file, &tuning, &study),
        Command::Report { dir } => report::run(&dir),
        Command::Fit { model } => fit::run(&model),
        Command::Calibrate {
            file,
            calibration,
            study,
            plots,
        } => calibrate::run(&file, &calibration, &study, &plots),
    }
}

std::thread_local! {
    /// The printout of the command running on this thread, when a program that
    /// embeds the commands (the Python package) asked for it with [`capture_stdout`].
    static CAPTURED_STDOUT: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Runs `command` with everything it would print on stdout (through [`print_out`])
/// collected instead, and returns its result with that text. For programs that embed
/// the commands (the Python package keeps the printout as the result's `text`).
pub fn capture_stdout<R>(command: impl FnOnce() -> R) -> (R, String) {
    let previous = CAPTURED_STDOUT.with(|c| c.replace(Some(String::new())));
    let result = command();
    let text = CAPTURED_STDOUT
        .with(|c| c.replace(previous))
        .unwrap_or_default();
    (result, text)
}

/// Writes `text` to stdout and flushes it; a failed write is an error naming
/// stdout (exit code 2), never a panic. Under [`capture_stdout`], collects it instead.
pub fn print_out(text: &str) -> Result<(), CliError> {
    use std::io::Write;
    let captured = CAPTURED_STDOUT.with(|c| match c.borrow_mut().as_mut() {
        Some(buffer) => {
            buffer.push_str(text);
            true
        }
        None => false,
    });
    if captured {
        return Ok(());
    }
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|source| CliError::Output {
            path: PathBuf::from("stdout"),
            source,
        })
}

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
    #[error("{0}")]
    OutputDir(#[from] crate::study::output_dir::OutputDirError),
    #[error("{0}")]
    Report(#[from] crate::output::html_report::ReportError),
    /// A bad data file of `fit` or `calibrate` (file, line, column).
    #[error("{0}")]
    Data(#[from] crate::fit::DataError),
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

/// Loads `file` with the study options applied.
pub fn load_scenario(
    file: &Path,
    args: &StudyArgs,
) -> Result<(Scenario, ScenarioSource), CliError> {
    let assignments = assignments(file, args)?;
    Ok(scenario::load_file(file, &assignments)?)
}

/// The output directory of a command that writes a study, locked for the whole
/// command (see `crate::study::output_dir`): `--resume DIR`, `--out DIR`
/// (created if missing), or a new `runs/<scenario>-<UTC timestamp>/` (created
/// exclusively, with `-2`, `-3`, ... appended if the name is taken).
pub fn lock_output(args: &StudyArgs, scenario: &Scenario) -> Result<DirLock, CliError> {
    let lock = match (&args.resume, &args.out) {
        (Some(resume), Some(out)) if resume != out => {
            return Err(CliError::Usage(format!(
                "--out {} and --resume {} name different directories; --resume continues the study in its own directory",
                out.display(),
                resume.display()
            )));
        }
        (Some(resume), _) => DirLock::acquire(resume, Acquire::Existing, "--resume")?,
        (None, Some(out)) => DirLock::acquire(out, Acquire::CreateIfMissing, "--out")?,
        (None, None) => return lock_named_output(None, &scenario.name),
    };
    Ok(lock)
}

/// The output directory of a command without a study store (`fit`), locked
/// like [`lock_output`]'s: `out` (created if missing), or a new
/// `runs/<name>-<UTC timestamp>/` created exclusively.
pub fn lock_named_output(out: Option<&Path>, name: &str) -> Result<DirLock, CliError> {
    let lock = match out {
        Some(out) => DirLock::acquire(out, Acquire::CreateIfMissing, "--out")?,
        None => DirLock::acquire(&default_dir(name), Acquire::Fresh, "--out")?,
    };
    Ok(lock)
}

/// `runs/<name>-<UTC timestamp>`.
fn default_dir(name: &str) -> PathBuf {
    PathBuf::from(format!("runs/{}-{}", file_safe(name), utc_timestamp()))
}

/// The file in an output directory that says which study wrote it.
pub const STUDY_MARKER: &str = output_dir::MARKER;

/// The text that identifies a study in its output directory's marker: the
/// command, what it varies or tunes, and the resolved scenario.
pub fn study_identity(command: &str, details: &str, source: &ScenarioSource) -> String {
    format!("brandsim {command}\n{details}\n{}", source.resolved_toml())
}

/// What a command does with an output directory that already holds its study.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// Continue it (`run`, `sweep`, `compare`: the store decides, with `--resume`).
    Resume,
    /// Write it again (`optimize`, `run --precision`: they keep no per-replication results).
    Rewrite,
    /// Refuse (`merge`, which writes a whole study and takes no `--resume`).
    Never,
}

/// Checks, without writing, that `dir` may receive the outputs of `study` (a
/// text that identifies the study, e.g. the command and its resolved scenario):
/// it is absent, empty, or holds the same study (see [`Reuse`]), or `force` is set
/// and no file brandsim did not write would be deleted or overwritten. Commands
/// call it before simulating, so that a long study is not run for nothing.
pub fn check_output_dir(
    dir: &Path,
    study: &str,
    force: bool,
    reuse: Reuse,
) -> Result<(), CliError> {
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
    let empty = entries.flatten().all(|e| e.file_name() == output_dir::LOCK);
    if empty {
        return Ok(());
    }
    let or_force = if reuse == Reuse::Never {
        ""
    } else {
        ", or pass --force to replace it"
    };
    match Marker::read(dir) {
        MarkerState::Current(marker) if marker.identity == study && !force => match reuse {
            Reuse::Never => Err(usage(
                "already holds this merged study; merge into a new, empty directory (merge writes a whole study; it does not continue one)".into(),
            )),
            Reuse::Resume | Reuse::Rewrite => Ok(()),
        },
        _ if force => {
            output_dir::plan_force(dir, "--out")?;
            Ok(())
        }
        MarkerState::Current(_) => Err(usage(format!(
            "already holds the results of a different study; choose another --out{or_force}"
        ))),
        MarkerState::Old => Err(usage(format!(
            "holds a study written by an earlier brandsim (its {STUDY_MARKER} is in an older format); choose another --out{or_force}"
        ))),
        MarkerState::Absent => Err(usage(format!(
            "is not empty and holds no brandsim study; choose another --out{}",
            if reuse == Reuse::Never {
                ""
            } else {
                ", or pass --force to write into it (files brandsim did not write are kept, and refused if in the way)"
            }
        ))),
    }
}

/// Prepares the output directory `dir` (already created and locked) for `study`
/// after [`check_output_dir`]: with `force`, deletes the previous study's files
/// (only brandsim's own); marks it as holding `study`.
pub fn create_output_dir(
    dir: &Path,
    study: &str,
    force: bool,
    reuse: Reuse,
) -> Result<(), CliError> {
    check_output_dir(dir, study, force, reuse)?;
    std::fs::create_dir_all(dir).map_err(|source| CliError::Output {
        path: dir.to_path_buf(),
        source,
    })?;
    if force {
        output_dir::clear_for_force(dir, "--out")?;
    }
    if let MarkerState::Current(marker) = Marker::read(dir)
        && marker.identity == study
    {
        return Ok(());
    }
    Marker {
        format: output_dir::MARKER_FORMAT.to_string(),
        identity: study.to_string(),
        files: Vec::new(),
    }
    .write(dir)?;
    Ok(())
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

/// Writes one output file atomically and records it in the directory's marker
/// as brandsim's (what `--force` may later delete). Refuses to replace a file
/// that brandsim did not write.
pub fn write_output(dir: &Path, name: &str, contents: &[u8]) -> Result<(), CliError> {
    let path = dir.join(name);
    if path.exists()
        && let MarkerState::Current(marker) = Marker::read(dir)
        && !output_dir::is_own(Path::new(name), &marker.files)
    {
        return Err(CliError::Usage(format!(
            "cannot write {}: the file exists and brandsim did not write it; move it away",
            path.display()
        )));
    }
    crate::report::write_atomically(&path, contents)
        .map_err(|source| CliError::Output { path, source })?;
    Marker::record(dir, name)?;
    Ok(())
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

/// A command line as a user would type it, each word quoted for a POSIX shell
/// where needed (shlex).
pub fn command_line(words: &[String]) -> String {
    shlex::try_join(words.iter().map(String::as_str)).unwrap_or_else(|_| words.join(" "))
}

/// The options a study was started with that its continuation must repeat, since
/// the stored scenario does not hold them: `--threads`, `--json`, `--quiet` and
/// the plot options.
pub fn repeated_options(args: &StudyArgs, plots: Option<&crate::cli::PlotArgs>) -> Vec<String> {
    let mut words = Vec::new();
    if args.threads != 0 {
        words.extend(["--threads".to_string(), args.threads.to_string()]);
    }
    if args.json {
        words.push("--json".into());
    }
    if args.quiet {
        words.push("--quiet".into());
    }
    if let Some(plots) = plots {
        if plots.no_plots {
            words.push("--no-plots".into());
        } else if plots.plot_format != crate::plots::PlotFormat::default() {
            use clap::ValueEnum;
            if let Some(value) = plots.plot_format.to_possible_value() {
                words.extend(["--plot-format".to_string(), value.get_name().to_string()]);
            }
        }
    }
    words
}

/// The `--set`, `--seed` and `--replications` options as given.
pub fn scenario_options(args: &StudyArgs) -> Vec<String> {
    let mut words = Vec::new();
    for set in &args.set {
        words.extend(["--set".to_string(), set.clone()]);
    }
    if let Some(seed) = args.seed {
        words.extend(["--seed".to_string(), seed.to_string()]);
    }
    if let Some(replications) = args.replications {
        words.extend(["--replications".to_string(), replications.to_string()]);
    }
    words
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_stdout_collects_the_printout_and_restores_the_outer_capture() {
        let ((inner, inner_text), outer_text) = capture_stdout(|| {
            print_out("outer ").unwrap();
            let inner = capture_stdout(|| print_out("inner"));
            print_out("again").unwrap();
            inner
        });
        assert!(inner.is_ok());
        assert_eq!(inner_text, "inner");
        assert_eq!(outer_text, "outer again");
    }
}

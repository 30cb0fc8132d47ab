//! `brandsim._core`: the native half of the Python package. It runs the CLI's
//! commands themselves (parsed by the CLI's clap definitions, dispatched to the same
//! `brandsim::commands` functions), so every result is the CLI's bit for bit; the
//! Python half (`brandsim/__init__.py`) builds the arguments and reads the study
//! directory back.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use clap::Parser;
use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use brandsim::cli::Cli;
use brandsim::commands::{self, CliError, study_dir};
use brandsim::scenario::{self, Assignment, ScenarioError};
use brandsim::study::output_dir::OutputDirError;

pyo3::create_exception!(
    _core,
    CommandError,
    PyException,
    "A command refused its input or failed. args: (kind, message, file, key_path, line, \
     column, exit_code); kind is one of scenario, data, usage, study, interrupted, internal. \
     The Python package turns it into ScenarioError or StudyError."
);

/// How often a running command lets Python look for Ctrl-C.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// Stack of the thread that runs a command: the size of a main thread's, which is
/// what the CLI runs on.
const COMMAND_STACK_BYTES: usize = 8 << 20;

/// Commands running in this process; the shared stop flag is cleared when a
/// command starts while none runs (a Ctrl-C stops every running study).
static RUNNING: Mutex<usize> = Mutex::new(0);

/// Counts a running command for as long as it lives.
struct Running;

impl Running {
    fn start() -> Self {
        let stop = study_dir::embedded_interrupt_flag();
        let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        if *running == 0 {
            stop.store(false, Ordering::SeqCst);
        }
        *running += 1;
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        *running -= 1;
    }
}

/// The fields of a [`CommandError`].
struct Failure {
    kind: &'static str,
    message: String,
    file: Option<String>,
    key_path: Option<String>,
    line: Option<u64>,
    column: Option<u64>,
    exit_code: i32,
}

impl Failure {
    fn new(kind: &'static str, message: String, exit_code: i32) -> Self {
        Failure {
            kind,
            message,
            file: None,
            key_path: None,
            line: None,
            column: None,
            exit_code,
        }
    }

    fn into_py(self) -> PyErr {
        CommandError::new_err((
            self.kind,
            self.message,
            self.file,
            self.key_path,
            self.line,
            self.column,
            self.exit_code,
        ))
    }
}

impl From<ScenarioError> for Failure {
    fn from(error: ScenarioError) -> Self {
        Failure {
            kind: "scenario",
            message: error.to_string(),
            file: Some(error.file.clone()).filter(|f| !f.is_empty()),
            key_path: Some(error.key_path.clone()).filter(|k| !k.is_empty()),
            line: error.line.map(|l| l as u64),
            column: None,
            exit_code: 2,
        }
    }
}

impl From<CliError> for Failure {
    fn from(error: CliError) -> Self {
        let exit_code = error.exit_code();
        match error {
            CliError::Scenario(error) => error.into(),
            CliError::Data(error) => Failure {
                kind: "data",
                message: error.to_string(),
                file: Some(error.file.clone()),
                key_path: None,
                line: error.line,
                // `3 ("conversions")`: the number before the header.
                column: error
                    .column
                    .as_deref()
                    .and_then(|c| c.split_whitespace().next())
                    .and_then(|n| n.parse().ok()),
                exit_code,
            },
            CliError::Usage(message) => Failure::new("usage", message, exit_code),
            // A directory refused as --out or --resume is bad input; one in use or
            // that cannot be written is a failure of the study.
            CliError::OutputDir(error @ OutputDirError::Refused { .. }) => {
                Failure::new("usage", error.to_string(), exit_code)
            }
            // Shard directories that do not make one study are bad input too.
            CliError::Merge(error) => Failure::new("usage", error.to_string(), exit_code),
            CliError::Interrupted => Failure::new("interrupted", error.to_string(), exit_code),
            other => Failure::new("study", other.to_string(), exit_code),
        }
    }
}

/// A refused command line: clap's first paragraph without its `error: ` prefix.
fn clap_failure(error: &clap::Error) -> Failure {
    let text = error.render().to_string();
    let first = text.split("\n\n").next().unwrap_or(&text).trim();
    let message = first.strip_prefix("error: ").unwrap_or(first).to_string();
    Failure::new("usage", message, 2)
}

/// Runs `brandsim ARGV...` (ARGV without the program name) in this process and
/// returns what the command printed on stdout.
///
/// The command runs on its own thread with the GIL released; this thread wakes
/// every 100 ms to let Python handle signals. On `KeyboardInterrupt` the running
/// study is stopped as Ctrl-C stops the CLI (running replications finish and are
/// saved in the output directory), then the `KeyboardInterrupt` is raised.
///
/// Errors: `CommandError` with the CLI's message and, where known, the file, key
/// path, line and column.
#[pyfunction]
fn run_command(py: Python<'_>, argv: Vec<String>) -> PyResult<String> {
    let cli = Cli::try_parse_from(std::iter::once("brandsim".to_string()).chain(argv))
        .map_err(|e| clap_failure(&e).into_py())?;
    let running = Running::start();
    let (sender, receiver) = mpsc::channel();
    let worker = std::thread::Builder::new()
        .name("brandsim-command".to_string())
        .stack_size(COMMAND_STACK_BYTES)
        .spawn(move || {
            let result = catch_unwind(AssertUnwindSafe(|| {
                commands::capture_stdout(|| commands::dispatch(cli.command))
            }));
            // The receiver is gone only if the Python side itself failed.
            let _ = sender.send(result);
        })
        .map_err(|e| {
            Failure::new("internal", format!("cannot start a thread: {e}"), 2).into_py()
        })?;
    // The wait runs without the GIL; every 100 ms it takes the GIL briefly to let
    // Python run its signal handlers.
    let waited = py.detach(move || {
        loop {
            match receiver.recv_timeout(SIGNAL_POLL) {
                Ok(outcome) => return Ok(outcome),
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(interrupt) = Python::attach(|py| py.check_signals()) {
                        study_dir::embedded_interrupt_flag().store(true, Ordering::SeqCst);
                        // Wait for the study to save what it finished, as the CLI does.
                        let _ = receiver.recv();
                        return Err(interrupt);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let lost: Box<dyn std::any::Any + Send> =
                        Box::new("the command's thread ended without a result");
                    return Ok(Err(lost));
                }
            }
        }
    });
    let _ = worker.join();
    drop(running);
    let outcome = waited?;
    match outcome {
        Ok((Ok(()), printed)) => Ok(printed),
        Ok((Err(error), _)) => Err(Failure::from(error).into_py()),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(Failure::new(
                "internal",
                format!("internal error (a bug in brandsim): {what}"),
                2,
            )
            .into_py())
        }
    }
}

/// Loads a scenario as `brandsim validate` and `--set` do, and returns the resolved
/// scenario as TOML (the `scenario.toml` a study of it writes). `path` is read,
/// or, when `text` is given, `text` is loaded as if it were the file `path` (a
/// relative `[schedule] file` is read from `path`'s directory). `sets` are
/// `KEY=VALUE` overrides, applied in order.
///
/// Errors: `CommandError` of kind `scenario`, with file, key path and line.
#[pyfunction]
#[pyo3(signature = (path, sets, text=None))]
fn load_scenario(path: String, sets: Vec<String>, text: Option<String>) -> PyResult<String> {
    let assignments = sets
        .iter()
        .map(|s| scenario::parse_assignment(s))
        .collect::<Result<Vec<Assignment>, _>>()
        .map_err(|e| Failure::from(e).into_py())?;
    let loaded = match text {
        Some(text) => scenario::load_str(&text, &path, &assignments),
        None => scenario::load_file(std::path::Path::new(&path), &assignments),
    };
    let (_, source) = loaded.map_err(|e| Failure::from(e).into_py())?;
    Ok(source.resolved_toml())
}

/// A TOML document as a Python dict (tables as dicts, arrays as lists, dates as
/// `datetime.date`, other date-times as ISO strings).
///
/// Errors: `ValueError` for text that is not TOML.
#[pyfunction]
fn toml_to_dict(py: Python<'_>, text: &str) -> PyResult<Py<PyAny>> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| PyValueError::new_err(e.to_string()))?;
    toml_to_py(py, &toml::Value::Table(table))
}

/// A Python dict as a TOML document (keys in the dict's order).
///
/// Errors: `TypeError` for a value TOML cannot hold (None, objects), `ValueError`
/// for an integer beyond 64 bits.
#[pyfunction]
fn dict_to_toml(document: &Bound<'_, PyAny>) -> PyResult<String> {
    match py_to_toml(document)? {
        toml::Value::Table(table) => {
            toml::to_string_pretty(&table).map_err(|e| PyValueError::new_err(e.to_string()))
        }
        _ => Err(PyTypeError::new_err(
            "expected a dict of the scenario's tables",
        )),
    }
}

/// A Python value as the TOML text of `--set KEY=VALUE`'s VALUE (strings quoted).
///
/// Errors: as `dict_to_toml`.
#[pyfunction]
fn value_literal(value: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(py_to_toml(value)?.to_string())
}

fn toml_to_py(py: Python<'_>, value: &toml::Value) -> PyResult<Py<PyAny>> {
    Ok(match value {
        toml::Value::String(s) => PyString::new(py, s).into_any().unbind(),
        toml::Value::Integer(i) => i.into_pyobject(py)?.into_any().unbind(),
        toml::Value::Float(f) => PyFloat::new(py, *f).into_any().unbind(),
        toml::Value::Boolean(b) => PyBool::new(py, *b).to_owned().into_any().unbind(),
        toml::Value::Datetime(d) => {
            let text = d.to_string();
            if d.date.is_some() && d.time.is_none() {
                py.import("datetime")?
                    .getattr("date")?
                    .call_method1("fromisoformat", (text,))?
                    .unbind()
            } else {
                PyString::new(py, &text).into_any().unbind()
            }
        }
        toml::Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(toml_to_py(py, item)?)?;
            }
            list.into_any().unbind()
        }
        toml::Value::Table(table) => {
            let dict = PyDict::new(py);
            for (key, item) in table {
                dict.set_item(key, toml_to_py(py, item)?)?;
            }
            dict.into_any().unbind()
        }
    })
}

fn py_to_toml(value: &Bound<'_, PyAny>) -> PyResult<toml::Value> {
    if let Ok(b) = value.cast::<PyBool>() {
        return Ok(toml::Value::Boolean(b.is_true()));
    }
    if value.is_instance_of::<PyInt>() {
        let i: i64 = value.extract().map_err(|_| {
            PyValueError::new_err(format!("{value}: expected an integer of at most 64 bits"))
        })?;
        return Ok(toml::Value::Integer(i));
    }
    if let Ok(f) = value.cast::<PyFloat>() {
        return Ok(toml::Value::Float(f.value()));
    }
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(toml::Value::String(s.to_str()?.to_string()));
    }
    if let Ok(dict) = value.cast::<PyDict>() {
        let mut table = toml::Table::new();
        for (key, item) in dict.iter() {
            let key: String = key
                .extract()
                .map_err(|_| PyTypeError::new_err(format!("{key}: expected string keys")))?;
            table.insert(key, py_to_toml(&item)?);
        }
        return Ok(toml::Value::Table(table));
    }
    if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        let items = value
            .try_iter()?
            .map(|item| py_to_toml(&item?))
            .collect::<PyResult<Vec<_>>>()?;
        return Ok(toml::Value::Array(items));
    }
    let type_name = value.get_type().name()?.to_string();
    if type_name == "date" || type_name == "datetime" {
        let text: String = value.call_method0("isoformat")?.extract()?;
        let datetime: toml::value::Datetime = text
            .parse()
            .map_err(|e| PyValueError::new_err(format!("{text}: {e}")))?;
        return Ok(toml::Value::Datetime(datetime));
    }
    // numpy and pandas scalars (a value read from a DataFrame) have `item()`.
    if value.hasattr("item")? && !value.hasattr("__len__")? {
        return py_to_toml(&value.call_method0("item")?);
    }
    if value.is_instance_of::<pyo3::types::PyMapping>() {
        let dict = value.py().get_type::<PyDict>().call1((value,))?;
        return py_to_toml(&dict);
    }
    Err(PyTypeError::new_err(format!(
        "{type_name} {value}: TOML cannot hold it; expected a bool, int, float, str, date, list or dict"
    )))
}

/// The `replications.csv` of the study stored in `dir` (a grid point or arm of a
/// sweep or comparison, which keeps only its outcomes): what `run` writes for the
/// same outcomes, made by the same function.
///
/// Errors: `CommandError` of kind `study` when the directory holds no complete
/// study.
#[pyfunction]
fn stored_replications_csv(py: Python<'_>, dir: std::path::PathBuf) -> PyResult<String> {
    let outcomes = py
        .detach(|| brandsim::store::StudyStore::open(&dir).and_then(|s| s.load_complete()))
        .map_err(|e| Failure::from(CliError::from(e)).into_py())?;
    String::from_utf8(brandsim::report::replications_csv(&outcomes))
        .map_err(|e| Failure::new("internal", e.to_string(), 2).into_py())
}

/// Where `key_path` (empty: a TOML syntax error) is written in the scenario text
/// `text`: `(line, column)`, both 1-based, of its value (or of the syntax error), or
/// `None` when the key is not in the text.
#[pyfunction]
fn key_position(text: &str, key_path: &str) -> Option<(usize, usize)> {
    scenario::position_in_text(text, key_path)
}

/// The native module `brandsim._core`.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("CommandError", m.py().get_type::<CommandError>())?;
    m.add("METRIC_NAMES", brandsim::metrics::METRIC_NAMES.to_vec())?;
    m.add("SERIES_NAMES", brandsim::metrics::SERIES_NAMES.to_vec())?;
    m.add_function(wrap_pyfunction!(run_command, m)?)?;
    m.add_function(wrap_pyfunction!(load_scenario, m)?)?;
    m.add_function(wrap_pyfunction!(toml_to_dict, m)?)?;
    m.add_function(wrap_pyfunction!(dict_to_toml, m)?)?;
    m.add_function(wrap_pyfunction!(value_literal, m)?)?;
    m.add_function(wrap_pyfunction!(stored_replications_csv, m)?)?;
    m.add_function(wrap_pyfunction!(key_position, m)?)?;
    Ok(())
}

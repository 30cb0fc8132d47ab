//! `brandsim report DIR`: (re)builds `report.html` for an existing study
//! directory of any kind, from its files, by the same code the study commands
//! use (`output::html_report`).

use std::path::Path;

use super::{CliError, write_output};
use crate::output::html_report::{self, REPORT_FILE};
use crate::study::output_dir::{Acquire, DirLock};

/// Entry point of `brandsim report`.
pub fn run(dir: &Path) -> Result<(), CliError> {
    // A missing directory is reported by the report's own checks.
    let _lock = if dir.is_dir() {
        Some(DirLock::acquire(dir, Acquire::Existing, "DIR")?)
    } else {
        None
    };
    let report = html_report::build_report(dir)?;
    write_output(dir, REPORT_FILE, report.html.as_bytes())?;
    if let Some(partial) = &report.partial {
        eprintln!("note: partial report: {}", partial.replace('`', ""));
    }
    outln!(
        "wrote {} ({} report, {} plots)",
        dir.join(REPORT_FILE).display(),
        report.kind.command(),
        report.plots
    );
    Ok(())
}

/// Writes the report of a study a command has just written into `dir` (which
/// the command holds locked), recorded in the marker as brandsim's own file.
pub fn write_for_study(dir: &Path) -> Result<(), CliError> {
    let report = html_report::build_report(dir).map_err(|error| {
        CliError::Usage(format!(
            "{error}; the study's results are written; rebuild the report with: brandsim report {}",
            dir.display()
        ))
    })?;
    write_output(dir, REPORT_FILE, report.html.as_bytes())
}

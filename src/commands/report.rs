//! `brandsim report DIR`: (re)builds `report.html` for an existing study
//! directory of any kind, from its files, by the same code the study commands
//! use (`output::html_report`).

use std::path::Path;

use super::CliError;
use crate::output::html_report::{self, REPORT_FILE};

/// Entry point of `brandsim report`.
pub fn run(dir: &Path) -> Result<(), CliError> {
    let report = html_report::write_report(dir)?;
    if let Some(partial) = &report.partial {
        eprintln!("note: partial report: {}", partial.replace('`', ""));
    }
    println!(
        "wrote {} ({} report, {} plots)",
        dir.join(REPORT_FILE).display(),
        report.kind.command(),
        report.plots
    );
    Ok(())
}

/// Writes the report of a study a command has just written into `dir`.
pub fn write_for_study(dir: &Path) -> Result<(), CliError> {
    html_report::write_report(dir).map(|_| ()).map_err(|error| {
        CliError::Usage(format!(
            "{error}; the study's results are written; rebuild the report with: brandsim report {}",
            dir.display()
        ))
    })
}

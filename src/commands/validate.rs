//! `brandsim validate FILE...`: check scenario files.

use std::path::PathBuf;

use super::CliError;
use crate::scenario;

/// Entry point of `brandsim validate`: a one-line summary of each valid file and
/// the error of each invalid one; fails if any file is invalid.
pub fn run(files: &[PathBuf]) -> Result<(), CliError> {
    let mut errors = Vec::new();
    for file in files {
        match scenario::load_file(file, &[]) {
            Ok((s, _)) => outln!(
                "{}: ok: \"{}\", population {}, {} days, {} segments, {} items, {} channels{}",
                file.display(),
                s.name,
                s.market.population,
                s.simulation.days,
                s.market.segments.len(),
                s.content.len(),
                s.channels.len(),
                s.market
                    .network
                    .as_ref()
                    .map_or(String::new(), |n| format!("; network: {}", n.describe()))
            ),
            Err(error) => errors.push(error),
        }
    }
    let invalid = errors.len();
    let mut errors = errors.into_iter();
    match errors.next() {
        None => Ok(()),
        // One error is the command's error, printed once by main.
        Some(error) if invalid == 1 => Err(CliError::Scenario(error)),
        Some(first) => {
            for error in std::iter::once(first).chain(errors) {
                eprintln!("error: {error}");
            }
            Err(CliError::Usage(format!(
                "{invalid} of {} scenario files are invalid",
                files.len()
            )))
        }
    }
}

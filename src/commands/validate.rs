//! `brandsim validate FILE...`: check scenario files.

use std::path::PathBuf;

use super::CliError;
use crate::scenario;

/// Entry point of `brandsim validate`: a one-line summary of each valid file; the
/// first invalid file's error fails the command (after checking all of them).
pub fn run(files: &[PathBuf]) -> Result<(), CliError> {
    let mut first_error = None;
    for file in files {
        match scenario::load_file(file, &[]) {
            Ok((s, _)) => println!(
                "{}: ok: \"{}\", population {}, {} days, {} segments, {} items, {} channels",
                file.display(),
                s.name,
                s.market.population,
                s.simulation.days,
                s.market.segments.len(),
                s.content.len(),
                s.channels.len()
            ),
            Err(error) => {
                eprintln!("error: {error}");
                first_error.get_or_insert(error);
            }
        }
    }
    match first_error {
        None => Ok(()),
        Some(_) if files.len() == 1 => Err(CliError::Scenario(first_error.unwrap())),
        Some(_) => Err(CliError::Usage("some scenario files are invalid".into())),
    }
}

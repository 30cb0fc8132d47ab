//! `brandsim merge DIR... --out DIR`: the shards of a study merged into the outputs
//! of the whole study, exactly as one process would have written them.

use std::path::{Path, PathBuf};

use super::CliError;
use super::study_dir::{print_study, stored_throughput, write_study_outputs};
use crate::scenario;
use crate::shard::merge;
use crate::store::{SCENARIO_FILE, StudyStore};

/// Entry point of `brandsim merge`.
pub fn run(dirs: &[PathBuf], out: &Path, json: bool) -> Result<(), CliError> {
    if let Some(dir) = dirs.iter().find(|dir| same_dir(dir, out)) {
        return Err(CliError::Usage(format!(
            "--out {} is one of the shards ({}); merge into a new directory",
            out.display(),
            dir.display()
        )));
    }
    let merged = merge(dirs)?;
    let stored_scenario = dirs[0].join(SCENARIO_FILE);
    let scenario = scenario::parse_str(
        &merged.resolved_toml,
        &stored_scenario.display().to_string(),
    )?;

    let mut store = StudyStore::create(out, merged.meta.clone(), &merged.resolved_toml)?;
    for outcome in &merged.outcomes {
        store.save(outcome)?;
    }
    store.replace_meta(merged.meta.clone())?;
    let throughput = stored_throughput(&scenario, merged.outcomes.len(), &merged.meta.work);
    let (summary, json_text) = write_study_outputs(out, &scenario, &merged.outcomes, &throughput)?;
    if !json {
        println!(
            "merged {} shards of {}: {} replications",
            dirs.len(),
            scenario.name,
            merged.outcomes.len()
        );
    }
    print_study(
        &scenario,
        merged.outcomes.len(),
        &summary,
        &throughput,
        &json_text,
        json,
        out,
    );
    Ok(())
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

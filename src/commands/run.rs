//! `brandsim run FILE`: a Monte Carlo study of one scenario, saved replication by
//! replication in its study directory (`--shard K/N` runs one shard of it,
//! `--resume DIR` continues an interrupted one).

use std::path::Path;
use std::sync::Arc;

use super::study_dir::{
    interrupt_flag, open_study, print_study, run_stored, stored_throughput, study_dir,
    write_study_outputs,
};
use super::{CliError, load_scenario, output_dir};
use crate::cli::StudyArgs;
use crate::study::thread_pool;

/// Entry point of `brandsim run`.
pub fn run(file: &Path, args: &StudyArgs) -> Result<(), CliError> {
    let (scenario, source) = load_scenario(file, args)?;
    let scenario = Arc::new(scenario);
    let dir = study_dir(args, || output_dir(args, &scenario))?;
    let mut store = open_study(&dir, &scenario, &source, args)?;
    let pool = thread_pool(args.threads);
    let stored = run_stored(&mut store, &scenario, &pool, interrupt_flag(), args.quiet)?;
    if stored.reused > 0 {
        eprintln!(
            "resumed {}: {} replications were already done, {} computed now",
            dir.display(),
            stored.reused,
            stored.computed
        );
    }

    let shard = store.meta().shard;
    if !shard.is_whole() {
        println!(
            "shard {shard} of {}: {} of {} replications saved in {}; merge all {} shards with: brandsim merge DIR... --out DIR",
            scenario.name,
            stored.outcomes.len(),
            scenario.simulation.replications,
            dir.display(),
            shard.count
        );
        return Ok(());
    }
    let throughput = stored_throughput(&scenario, stored.outcomes.len(), &store.meta().work);
    let (summary, json_text) = write_study_outputs(&dir, &scenario, &stored.outcomes, &throughput)?;
    print_study(
        &scenario,
        stored.outcomes.len(),
        &summary,
        &throughput,
        &json_text,
        args.json,
        &dir,
    );
    Ok(())
}

//! `brandsim run FILE`: a Monte Carlo study of one scenario.

use std::path::Path;
use std::sync::Arc;

use super::{
    CliError, check_output_dir, create_output_dir, load_scenario, output_dir, plan_study,
    progress_bar, write_output,
};
use crate::cli::StudyArgs;
use crate::guard::run_planned;
use crate::report::{self, Throughput};
use crate::study::{summarize_study, thread_pool};

/// Entry point of `brandsim run`.
pub fn run(file: &Path, args: &StudyArgs) -> Result<(), CliError> {
    let (scenario, source) = load_scenario(file, args)?;
    let scenario = Arc::new(scenario);
    let replications: Vec<u32> = (0..scenario.simulation.replications).collect();
    let dir = output_dir(args, &scenario);
    // The same resolved scenario from any path is the same study.
    let resolved = toml::to_string(&source.document).unwrap_or_default();
    let study_id = format!("brandsim run\n{resolved}");
    check_output_dir(&dir, &study_id, args.force)?;
    let pool = thread_pool(args.threads);
    let plan = plan_study(&scenario, replications.len(), &pool)?;
    let bar = progress_bar(replications.len() as u64, "replications", args.quiet);
    let study = run_planned(&scenario, &replications, &pool, &plan, &|_| bar.inc(1));
    bar.finish_and_clear();

    let summary = summarize_study(&study.outcomes);
    let throughput = Throughput::new(
        &scenario,
        study.outcomes.len(),
        study.seconds,
        pool.current_num_threads(),
    );
    let json = report::summary_json(&scenario, study.outcomes.len(), &summary, &throughput);
    let json_text = serde_json::to_string_pretty(&json).expect("plain JSON");
    create_output_dir(&dir, &study_id, args.force)?;
    write_output(&dir, "scenario.toml", source.resolved_toml().as_bytes())?;
    write_output(
        &dir,
        "replications.csv",
        &report::replications_csv(&study.outcomes),
    )?;
    write_output(&dir, "daily.csv", &report::daily_csv(&summary))?;
    write_output(&dir, "summary.json", json_text.as_bytes())?;

    if args.json {
        println!("{json_text}");
    } else {
        print!(
            "{}",
            report::metrics_table(&scenario, study.outcomes.len(), &summary)
        );
        println!(
            "throughput: {:.3e} user-days in {:.2} s = {:.3e} user-days/s on {} threads; peak memory {}",
            throughput.user_days,
            throughput.seconds,
            throughput.user_days_per_second(),
            throughput.threads,
            throughput
                .peak_memory_bytes
                .map_or("n/a".into(), |b| format!(
                    "{:.1} MiB ({:.1} bytes/user)",
                    b as f64 / 1048576.0,
                    b as f64 / f64::from(scenario.market.population)
                ))
        );
        println!("wrote {}", dir.display());
    }
    Ok(())
}

//! The `brandsim` command: parse arguments, run one command, turn any error into
//! a message on stderr and an exit code (0 ok, 2 bad input or failure,
//! 130 interrupted).

use clap::Parser;

use brandsim::cli::{Cli, Command};
use brandsim::commands;

fn main() {
    restore_default_sigpipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate { files } => commands::validate::run(&files),
        Command::Run {
            file,
            study,
            precision,
            plots,
        } => commands::run::run(&file, &study, &precision, &plots),
        Command::Sweep {
            file,
            vary,
            metrics,
            study,
            plots,
        } => commands::sweep::run(&file, &vary, &metrics, &study, &plots),
        Command::Compare {
            files,
            metric,
            study,
            plots,
        } => commands::compare::run(&files, &metric, &study, &plots),
        Command::Sensitivity {
            file,
            params,
            method,
            samples,
            metrics,
            study,
            plots,
        } => commands::sensitivity::run(&file, &params, method, samples, &metrics, &study, &plots),
        Command::Merge { dirs, out, json } => commands::merge::run(&dirs, &out, json),
        Command::Optimize {
            file,
            tuning,
            study,
        } => commands::optimize::run(&file, &tuning, &study),
        Command::Report { dir } => commands::report::run(&dir),
        Command::Fit { model } => commands::fit::run(&model),
        Command::Calibrate {
            file,
            calibration,
            study,
            plots,
        } => commands::calibrate::run(&file, &calibration, &study, &plots),
    };
    if let Err(error) = result {
        eprintln!("error: {error}");
        std::process::exit(error.exit_code());
    }
}

/// Rust ignores SIGPIPE, so printing into a closed pipe (`brandsim run ... | head`)
/// would panic. Restore the default, so the process ends quietly as other
/// command-line tools do.
fn restore_default_sigpipe() {
    // SAFETY: called first thing in main, before any thread exists; resetting a
    // signal's disposition to its default touches no memory of this program.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

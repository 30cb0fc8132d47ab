//! Command-line arguments (clap derive): one subcommand per job, and the options
//! shared by every command that runs simulations.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "brandsim",
    version,
    about = "Agent-based market simulation for knowledge platforms: Monte Carlo what-if studies and brand-value tuning"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check scenario files and print a one-line summary of each valid one.
    Validate {
        /// Scenario files (TOML).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run a Monte Carlo study of a scenario and write its results.
    Run {
        /// Scenario file (TOML).
        file: PathBuf,
        #[command(flatten)]
        study: StudyArgs,
    },
}

/// Options of every command that runs simulations.
#[derive(Debug, Clone, Args)]
pub struct StudyArgs {
    /// Number of replications (overrides simulation.replications).
    #[arg(long, short = 'r', value_name = "R")]
    pub replications: Option<u32>,
    /// Master seed (overrides simulation.seed).
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Worker threads (default: one per core).
    #[arg(long, short = 't', value_name = "T", default_value_t = 0)]
    pub threads: usize,
    /// Output directory (default: runs/<scenario>-<timestamp>/).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print the JSON summary on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Override a scenario value by key path, e.g. brand.value=0.5,
    /// channels.kol.daily_budget=4000, market.segments.students.share=0.4.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Write into --out even if it holds files of a different study.
    #[arg(long)]
    pub force: bool,
}

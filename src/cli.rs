//! Command-line arguments (clap derive): one subcommand per job, and the options
//! shared by every command that runs simulations.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::shard::Shard;

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
        #[command(flatten)]
        precision: PrecisionArgs,
        #[command(flatten)]
        plots: PlotArgs,
    },
    /// Merge the shard directories of a study (from `--shard K/N`) into the outputs
    /// of the whole study, identical to a one-process run.
    Merge {
        /// Shard directories, one per shard, in any order.
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// Output directory of the merged study.
        #[arg(long, short = 'o', value_name = "DIR")]
        out: PathBuf,
        /// Print the JSON summary on stdout instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Sweep scenario values over a grid, every point on the same replications.
    Sweep {
        /// Scenario file (TOML).
        file: PathBuf,
        /// A key path and its values: KEY=START:STOP:STEP or KEY=v1,v2,...
        /// (repeatable; several make a grid).
        #[arg(long = "vary", value_name = "KEY=VALUES", required = true)]
        vary: Vec<String>,
        /// Metrics to plot (repeatable; default: profit, revenue, active_payers, registrations).
        #[arg(long = "metric", value_name = "M")]
        metrics: Vec<String>,
        #[command(flatten)]
        study: StudyArgs,
        #[command(flatten)]
        plots: PlotArgs,
    },
    /// Compare a scenario with its [[variants]] (or several scenario files) on the
    /// same replications: paired differences from the first, and a ranking.
    Compare {
        /// Scenario files (TOML); the first one is the base.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Metric to rank by and plot.
        #[arg(long, value_name = "M", default_value = "profit")]
        metric: String,
        #[command(flatten)]
        study: StudyArgs,
        #[command(flatten)]
        plots: PlotArgs,
    },
    /// Global sensitivity of metrics to scenario values: Morris screening or
    /// Sobol indices, every design point a study on the same replications.
    Sensitivity {
        /// Scenario file (TOML).
        file: PathBuf,
        /// A key path and its range: KEY=LO:HI (repeatable, at least one).
        #[arg(long = "param", value_name = "KEY=LO:HI", required = true)]
        params: Vec<String>,
        /// morris (elementary effects, for screening many keys) or sobol
        /// (first- and total-order indices).
        #[arg(long, value_enum, default_value_t = SensitivityMethod::Morris)]
        method: SensitivityMethod,
        /// Morris trajectories (default 10) or Sobol base rows (default 64).
        #[arg(long, value_name = "N")]
        samples: Option<u32>,
        /// Metrics to analyse (repeatable; default: profit).
        #[arg(long = "metric", value_name = "M")]
        metrics: Vec<String>,
        #[command(flatten)]
        study: StudyArgs,
        #[command(flatten)]
        plots: PlotArgs,
    },
    /// Tune the brand value (and other numeric scenario values) by stochastic
    /// gradient steps on a simulated objective.
    Optimize {
        /// Scenario file (TOML).
        file: PathBuf,
        #[command(flatten)]
        tuning: OptimizeArgs,
        /// Options of the confirmation study (--replications) and of every run.
        #[command(flatten)]
        study: StudyArgs,
    },
    /// (Re)build report.html, the self-contained HTML report, for an existing
    /// study directory (of run, sweep, compare, sensitivity, optimize or merge).
    Report {
        /// The study's output directory.
        dir: PathBuf,
    },
    /// Fit a model of customer behaviour to data: churn (shifted-beta-geometric)
    /// from cohort survival tables, or Bass diffusion from adoptions per period.
    Fit {
        #[command(subcommand)]
        model: FitModel,
    },
    /// Calibrate scenario values so that simulated daily series match observed
    /// ones (simulated moments on common random numbers), with standard errors.
    Calibrate {
        /// Scenario file (TOML).
        file: PathBuf,
        #[command(flatten)]
        calibration: CalibrateArgs,
        /// Options of every simulation (--replications R: replications per evaluation).
        #[command(flatten)]
        study: StudyArgs,
        #[command(flatten)]
        plots: PlotArgs,
    },
}

/// The method of `brandsim sensitivity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SensitivityMethod {
    Morris,
    Sobol,
}

impl SensitivityMethod {
    pub fn name(self) -> &'static str {
        match self {
            SensitivityMethod::Morris => "morris",
            SensitivityMethod::Sobol => "sobol",
        }
    }
}

/// Plot options of `run`, `sweep` and `compare`.
#[derive(Debug, Clone, Args)]
pub struct PlotArgs {
    /// File format of the plots.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = crate::plots::PlotFormat::Svg)]
    pub plot_format: crate::plots::PlotFormat,
    /// Write no plots.
    #[arg(long)]
    pub no_plots: bool,
}

/// Adaptive precision of `run`.
#[derive(Debug, Clone, Args)]
pub struct PrecisionArgs {
    /// Run replications in batches until every --metric's 95% CI half-width is
    /// below REL x |mean| (e.g. 0.01 for 1%).
    #[arg(long, value_name = "REL")]
    pub precision: Option<f64>,
    /// Most replications --precision may run.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_replications: u32,
    /// Metrics --precision watches (repeatable; default: registrations, active_payers, revenue).
    #[arg(long = "metric", value_name = "M")]
    pub metrics: Vec<String>,
}

/// Options of `optimize`; each overrides its key of the scenario's `[optimize]` table.
#[derive(Debug, Clone, Args)]
pub struct OptimizeArgs {
    /// Objective metric M to maximise (J = E[M] - λ/2·|θ|²), e.g. seed_r, profit.
    #[arg(long, value_name = "METRIC")]
    pub objective: Option<String>,
    /// Gradient estimator.
    #[arg(long, value_parser = ["spsa", "fd", "lr", "lr-whole"])]
    pub estimator: Option<String>,
    /// Number of gradient steps K.
    #[arg(long, value_name = "K")]
    pub iterations: Option<u32>,
    /// Learning rate η.
    #[arg(long, value_name = "ETA", allow_negative_numbers = true)]
    pub learning_rate: Option<f64>,
    /// Regularization λ (weight decay on the tuned values).
    #[arg(long, value_name = "LAMBDA", allow_negative_numbers = true)]
    pub regularization: Option<f64>,
    /// Perturbation c of fd and spsa.
    #[arg(long, value_name = "C", allow_negative_numbers = true)]
    pub perturbation: Option<f64>,
    /// Replications per gradient estimate.
    #[arg(long, value_name = "R")]
    pub replications_per_step: Option<u32>,
    /// A scenario value to tune, by key path, with optional bounds, e.g.
    /// channels.kol.daily_budget=0:5000 (repeatable; default brand.value).
    #[arg(long = "param", value_name = "KEY[=LO:HI]")]
    pub params: Vec<String>,
    /// Budget allocation: the listed tuned values sum to TOTAL, each within its
    /// bounds (default >= 0), e.g. channels.ads.daily_budget,channels.kol.daily_budget=7000
    /// (repeatable, one group each; keys not given by --param are tuned too).
    #[arg(long = "budget", value_name = "KEY,KEY,...=TOTAL")]
    pub budgets: Vec<String>,
    /// Adaptive effort: replications per step grow when the gradient is noisy
    /// against its size, and the search stops once converged (the default when
    /// [optimize] does not give replications_per_step).
    #[arg(long)]
    pub adaptive: bool,
    /// Stop the search after this many simulated user-days.
    #[arg(long, value_name = "USER_DAYS")]
    pub budget_user_days: Option<f64>,
    /// Standard error of the answer that counts as converged, relative to
    /// max(1, |value|) (default 0.01).
    #[arg(long, value_name = "REL")]
    pub tolerance: Option<f64>,
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
    /// Run only shard K of N: the replications j with j mod N = K (merge the
    /// shard directories with `brandsim merge`).
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
    /// Continue the interrupted study in DIR (finished replications are kept).
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// Write into --out even if it holds files of a different study.
    #[arg(long)]
    pub force: bool,
}

/// The models of `brandsim fit`.
#[derive(Debug, Subcommand)]
pub enum FitModel {
    /// Maximum-likelihood fit of the shifted-beta-geometric churn model (Fader &
    /// Hardie 2007) to cohorts: CSV with a `period` column (0, 1, 2, ...; period 0
    /// holds each cohort's size), then one column of active customers per cohort.
    Churn {
        /// Cohort table (CSV).
        file: PathBuf,
        /// Periods of the projected curves (default: twice the longest cohort's).
        #[arg(long, value_name = "N")]
        periods: Option<u32>,
        #[command(flatten)]
        output: FitOutputArgs,
    },
    /// Nonlinear least-squares fit of the Bass diffusion model (m, p, q) to
    /// adoptions per period: CSV with a `period` column (1, 2, 3, ...), then the
    /// adoptions of each period.
    Bass {
        /// Adoption table (CSV).
        file: PathBuf,
        /// What the adoptions of period t are fitted to: m·(F(t) − F(t−1)) (period)
        /// or the density m·f(t) (density).
        #[arg(long, value_enum, default_value_t = crate::fit::bass::BassForm::Period)]
        form: crate::fit::bass::BassForm,
        /// Days in one period of the data (365 for years, 7 for weeks), to turn p
        /// and q into the scenario's daily rates.
        #[arg(long, value_name = "D", default_value_t = 1.0)]
        period_days: f64,
        /// Cost per 1000 impressions of the channel that carries p.
        #[arg(long, value_name = "C", default_value_t = 10.0)]
        cpm: f64,
        /// Mean satisfaction of payers (q = word_of_mouth · satisfaction).
        #[arg(long, value_name = "S", default_value_t = 1.0)]
        satisfaction: f64,
        #[command(flatten)]
        output: FitOutputArgs,
    },
}

/// Output options of `brandsim fit`.
#[derive(Debug, Clone, Args)]
pub struct FitOutputArgs {
    /// Output directory (default: runs/<data file>-<model>-<timestamp>/).
    #[arg(long, short = 'o', value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print the JSON result on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
    /// No progress output (a fit takes well under a second).
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Write into --out even if it holds files of a different study.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub plots: PlotArgs,
}

/// Options of `brandsim calibrate`.
#[derive(Debug, Clone, Args)]
pub struct CalibrateArgs {
    /// Observed daily series (CSV): a `day` column, then any of the daily series
    /// (registrations, conversions, active_payers, revenue, ...); empty cells are missing.
    #[arg(long, value_name = "OBSERVED.csv")]
    pub data: PathBuf,
    /// A scenario value to fit, by key path, with optional bounds, e.g.
    /// market.word_of_mouth=0:1 (repeatable, at least one).
    #[arg(long = "param", value_name = "KEY[=LO:HI]", required = true)]
    pub params: Vec<String>,
    /// Nelder–Mead starts: the scenario's values, then points spread inside the bounds.
    #[arg(long, value_name = "K", default_value_t = 3)]
    pub starts: u32,
    /// Most Nelder–Mead iterations per start.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub max_iterations: u32,
    /// Parametric bootstrap: refit on B data sets simulated at the answer.
    #[arg(long, value_name = "B", default_value_t = 0)]
    pub bootstrap: u32,
    /// Replications for the weights and, at the answer, the Jacobian, the
    /// covariance of the series and the bands (at least the -r of the search):
    /// with few, the standard errors of weakly identified values come out too small.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub se_replications: u32,
}

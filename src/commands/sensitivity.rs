//! `brandsim sensitivity FILE --param KEY=LO:HI... --method morris|sobol`:
//! global sensitivity of metrics to scenario values. Every design point is a
//! study directory (`OUT/points/<i>/`) on replications 0..R-1 of the seed, as
//! a sweep's grid points are, so `--shard`, `merge`, Ctrl-C and `--resume`
//! work; outputs `sensitivity.csv`, `sensitivity.json` and bar charts.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};

use super::whatif_dir::{
    StartedWhatIf, WhatIfPoint, point_outcomes, print_shard_done, run_whatif, start_whatif,
};
use super::{CliError, load_scenario, metric_name, write_output, write_plots};
use crate::cli::{PlotArgs, SensitivityMethod, StudyArgs};
use crate::outcome::Outcome;
use crate::plots::{self, DifferenceBar};
use crate::report::number;
use crate::scenario::{Assignment, Scenario, ScenarioSource};
use crate::store::WhatIf;
use crate::whatif::sensitivity::{
    MAX_PARAMETERS, MorrisIndex, SobolIndex, morris_design, morris_indices, saltelli_design,
    sobol_indices,
};

/// Morris trajectories when `--samples` is not given.
const DEFAULT_TRAJECTORIES: u32 = 10;
/// Sobol base rows when `--samples` is not given.
const DEFAULT_BASE_ROWS: u32 = 64;
/// The most Sobol base rows: `sobol_burley` has 2^16 points.
const MAX_BASE_ROWS: u32 = 1 << 16;

/// One `--param KEY=LO:HI`.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub key: String,
    pub low: f64,
    pub high: f64,
}

/// Parses `KEY=LO:HI` with finite `LO < HI`.
pub fn parse_param(text: &str) -> Result<Param, CliError> {
    let usage = |message: String| CliError::Usage(format!("--param {text}: {message}"));
    let (key, range) = text
        .split_once('=')
        .ok_or_else(|| usage("expected KEY=LO:HI".to_string()))?;
    let (low, high) = range
        .split_once(':')
        .ok_or_else(|| usage(format!("expected a range LO:HI after '=', found {range:?}")))?;
    let number = |s: &str| {
        s.trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| usage(format!("expected a finite number, found {s:?}")))
    };
    let (low, high) = (number(low)?, number(high)?);
    if low >= high {
        return Err(usage(format!("expected LO < HI, found {low} and {high}")));
    }
    Ok(Param {
        key: key.trim().to_string(),
        low,
        high,
    })
}

/// The parameters, checked: at least one, each key once, at most
/// [`MAX_PARAMETERS`].
fn parse_params(texts: &[String]) -> Result<Vec<Param>, CliError> {
    let params = texts
        .iter()
        .map(|t| parse_param(t))
        .collect::<Result<Vec<_>, _>>()?;
    if params.len() > MAX_PARAMETERS {
        return Err(CliError::Usage(format!(
            "--param: {} keys; at most {MAX_PARAMETERS} are allowed",
            params.len()
        )));
    }
    for (i, param) in params.iter().enumerate() {
        if params[..i].iter().any(|other| other.key == param.key) {
            return Err(CliError::Usage(format!(
                "--param {}: the key is given twice",
                param.key
            )));
        }
    }
    Ok(params)
}

/// `--samples`, checked for the method: Morris needs 2 trajectories for `σ`,
/// Sobol 2 base rows for a variance, and at most 2^16.
fn samples_of(method: SensitivityMethod, samples: Option<u32>) -> Result<u32, CliError> {
    let samples = samples.unwrap_or(match method {
        SensitivityMethod::Morris => DEFAULT_TRAJECTORIES,
        SensitivityMethod::Sobol => DEFAULT_BASE_ROWS,
    });
    if samples < 2 || (method == SensitivityMethod::Sobol && samples > MAX_BASE_ROWS) {
        return Err(CliError::Usage(format!(
            "--samples {samples}: expected at least 2{}",
            if method == SensitivityMethod::Sobol {
                format!(" and at most {MAX_BASE_ROWS} Sobol base rows")
            } else {
                " Morris trajectories".to_string()
            }
        )));
    }
    Ok(samples)
}

/// The design in the unit cube: Morris trajectories or Saltelli's matrices.
fn design(method: SensitivityMethod, params: usize, samples: u32, seed: u64) -> Vec<Vec<f64>> {
    match method {
        SensitivityMethod::Morris => morris_design(params, samples as usize, seed),
        SensitivityMethod::Sobol => saltelli_design(params, samples as usize, seed),
    }
}

/// The `--set` assignments of one design row: `LO + u·(HI − LO)`, rounded for
/// a key the scenario holds as an integer or as a date (a campaign's `start` or
/// `end`, then a day number).
fn assignments(
    source: &ScenarioSource,
    params: &[Param],
    row: &[f64],
) -> Result<Vec<Assignment>, CliError> {
    params
        .iter()
        .zip(row)
        .map(|(param, u)| {
            let x = param.low + u * (param.high - param.low);
            let integer = matches!(
                source.value_at(&param.key),
                Ok(Some(toml::Value::Integer(_) | toml::Value::Datetime(_)))
            );
            let value = if integer {
                toml::Value::Integer(x.round() as i64)
            } else {
                toml::Value::Float(x)
            };
            Ok(Assignment {
                key: param.key.clone(),
                value,
            })
        })
        .collect()
}

/// Entry point of `brandsim sensitivity`.
pub fn run(
    file: &Path,
    param_texts: &[String],
    method: SensitivityMethod,
    samples: Option<u32>,
    metric_texts: &[String],
    args: &StudyArgs,
    plot_args: &PlotArgs,
) -> Result<(), CliError> {
    let params = parse_params(param_texts)?;
    let samples = samples_of(method, samples)?;
    let metrics = metric_names(metric_texts)?;
    let points = match method {
        SensitivityMethod::Morris => samples as usize * (params.len() + 1),
        SensitivityMethod::Sobol => samples as usize * (params.len() + 2),
    };
    if points > crate::sweep::MAX_GRID_POINTS {
        return Err(CliError::Usage(format!(
            "the design has {points} points; at most {} are allowed: fewer --samples or --param",
            crate::sweep::MAX_GRID_POINTS
        )));
    }
    let (base, source) = load_scenario(file, args)?;
    // Each key at both ends of its range, alone, so that a bad key or range
    // is named before anything runs.
    for (param, text) in params.iter().zip(param_texts) {
        for end in [param.low, param.high] {
            let one = std::slice::from_ref(param);
            let unit = [(end - param.low) / (param.high - param.low)];
            source
                .with_overrides(&assignments(&source, one, &unit)?)
                .map_err(|error| CliError::Usage(format!("--param {text}: {error}")))?;
        }
    }
    let rows = design(method, params.len(), samples, base.simulation.seed);
    let scenarios = rows
        .iter()
        .map(|row| {
            let (scenario, point_source) = source
                .with_overrides(&assignments(&source, &params, row)?)
                .map_err(|error| {
                    CliError::Usage(format!("a design point of the --param ranges: {error}"))
                })?;
            Ok((Arc::new(scenario), point_source))
        })
        .collect::<Result<Vec<_>, CliError>>()?;
    let details = format!("{} {param_texts:?} {samples} {metrics:?}", method.name());
    let study = super::study_identity("sensitivity", &details, &source);
    let whatif_points: Vec<WhatIfPoint> = scenarios
        .iter()
        .map(|(scenario, point_source)| WhatIfPoint {
            scenario,
            source: point_source,
            replications: scenario.simulation.replications,
        })
        .collect();
    let kind = WhatIf::Sensitivity {
        method: method.name().to_string(),
        params: param_texts.to_vec(),
        samples,
        metrics: metrics.iter().map(|m| m.to_string()).collect(),
    };
    let StartedWhatIf {
        lock,
        study: mut stored,
        plans,
        pool,
    } = start_whatif(
        kind,
        &whatif_points,
        &base,
        &source.resolved_toml(),
        &study,
        args,
        plot_args,
    )?;
    let dir = lock.dir().to_path_buf();
    let mut words = vec![
        "brandsim".to_string(),
        "sensitivity".to_string(),
        dir.join("scenario.toml").display().to_string(),
    ];
    for text in param_texts {
        words.extend(["--param".to_string(), text.clone()]);
    }
    words.extend([
        "--method".to_string(),
        method.name().to_string(),
        "--samples".to_string(),
        samples.to_string(),
    ]);
    for metric in &metrics {
        words.extend(["--metric".to_string(), metric.to_string()]);
    }
    words.extend(super::repeated_options(args, Some(plot_args)));
    words.extend(["--resume".to_string(), dir.display().to_string()]);
    let resume = super::command_line(&words);
    let filled = run_whatif(
        &mut stored,
        &whatif_points,
        &plans,
        &pool,
        args.quiet,
        &resume,
    )?;
    if !stored.meta.shard.is_whole() {
        print_shard_done(&stored, &filled)?;
        return Ok(());
    }
    let outcomes = (0..scenarios.len())
        .map(|i| point_outcomes(&stored, i))
        .collect::<Result<Vec<_>, _>>()?;
    let analysis = Analysis {
        base: &base,
        method,
        params: &params,
        samples,
        metrics: &metrics,
        rows: &rows,
        outcomes: &outcomes,
        seconds: stored.seconds(),
    };
    write_outputs(&dir, &analysis, plot_args, args.json)
}

/// Writes the outputs of a sensitivity study merged from shards (`merge`):
/// the design is recomputed from the stored options and the seed.
pub fn write_merged(
    dir: &Path,
    base: &Scenario,
    (method, param_texts, samples, metric_texts): (&str, &[String], u32, &[String]),
    outcomes: &[Vec<Outcome>],
    seconds: f64,
    plot_args: &PlotArgs,
    json: bool,
) -> Result<(), CliError> {
    let method = match method {
        "sobol" => SensitivityMethod::Sobol,
        _ => SensitivityMethod::Morris,
    };
    let params = parse_params(param_texts)?;
    let metrics = metric_names(metric_texts)?;
    let rows = design(method, params.len(), samples, base.simulation.seed);
    let analysis = Analysis {
        base,
        method,
        params: &params,
        samples,
        metrics: &metrics,
        rows: &rows,
        outcomes,
        seconds,
    };
    write_outputs(dir, &analysis, plot_args, json)
}

fn metric_names(texts: &[String]) -> Result<Vec<&'static str>, CliError> {
    if texts.is_empty() {
        return Ok(vec!["profit"]);
    }
    texts.iter().map(|m| metric_name("--metric", m)).collect()
}

/// What the outputs are computed from.
struct Analysis<'a> {
    base: &'a Scenario,
    method: SensitivityMethod,
    params: &'a [Param],
    samples: u32,
    metrics: &'a [&'static str],
    /// The design in the unit cube, one row per point.
    rows: &'a [Vec<f64>],
    /// `outcomes[point]`: its replications in order.
    outcomes: &'a [Vec<Outcome>],
    seconds: f64,
}

/// The indices of one metric.
enum Indices {
    Morris(Vec<MorrisIndex>),
    Sobol(Vec<SobolIndex>),
}

impl Analysis<'_> {
    /// The model output of every design point: the metric's mean over the
    /// point's replications.
    fn outputs(&self, metric: &str) -> Vec<f64> {
        self.outcomes
            .iter()
            .map(|outcomes| {
                let values: Vec<f64> = outcomes
                    .iter()
                    .map(|o| o.metrics().get(metric).unwrap_or(f64::NAN))
                    .collect();
                values.iter().sum::<f64>() / values.len() as f64
            })
            .collect()
    }

    fn indices(&self, metric: &str) -> Indices {
        let y = self.outputs(metric);
        let seed = self.base.simulation.seed;
        match self.method {
            SensitivityMethod::Morris => Indices::Morris(morris_indices(self.rows, &y, seed)),
            SensitivityMethod::Sobol => {
                Indices::Sobol(sobol_indices(&y, self.samples as usize, seed))
            }
        }
    }
}

/// `sensitivity.csv`, `sensitivity.json`, one bar chart per metric, and the
/// table on stdout (or the JSON with `--json`).
fn write_outputs(
    dir: &Path,
    analysis: &Analysis,
    plot_args: &PlotArgs,
    json: bool,
) -> Result<(), CliError> {
    let indices: Vec<(&str, Indices)> = analysis
        .metrics
        .iter()
        .map(|&metric| (metric, analysis.indices(metric)))
        .collect();
    let mut csv = csv::Writer::from_writer(Vec::new());
    let header: &[&str] = match analysis.method {
        SensitivityMethod::Morris => &[
            "metric",
            "key",
            "low",
            "high",
            "mu_star",
            "mu_star_ci_low",
            "mu_star_ci_high",
            "mu",
            "sigma",
        ],
        SensitivityMethod::Sobol => &[
            "metric",
            "key",
            "low",
            "high",
            "first_order",
            "first_order_ci_low",
            "first_order_ci_high",
            "total_order",
            "total_order_ci_low",
            "total_order_ci_high",
        ],
    };
    csv.write_record(header).expect("write to memory");
    let mut json_metrics = serde_json::Map::new();
    let mut table = String::new();
    let _ = writeln!(
        table,
        "{}: {} sensitivity, {} design points x {} replications (common random numbers)",
        analysis.base.name,
        analysis.method.name(),
        analysis.rows.len(),
        analysis.base.simulation.replications
    );
    let mut plot_files = Vec::new();
    for (metric, indices) in &indices {
        let mut entries = Vec::new();
        let mut bars = Vec::new();
        let _ = writeln!(table, "\n{metric}:");
        match indices {
            Indices::Morris(list) => {
                let _ = writeln!(
                    table,
                    "{:<36} {:>36} {:>14} {:>14}",
                    "key", "mu* [95% interval]", "mu", "sigma"
                );
                for (param, index) in analysis.params.iter().zip(list) {
                    let mut row = vec![metric.to_string(), param.key.clone()];
                    row.extend(
                        [
                            param.low,
                            param.high,
                            index.mu_star,
                            index.mu_star_ci95[0],
                            index.mu_star_ci95[1],
                            index.mu,
                            index.sigma,
                        ]
                        .iter()
                        .map(|v| cell(*v)),
                    );
                    csv.write_record(&row).expect("write to memory");
                    let _ = writeln!(
                        table,
                        "{:<36} {:>36} {:>14} {:>14}",
                        param.key,
                        interval(index.mu_star, index.mu_star_ci95),
                        number(index.mu),
                        number(index.sigma)
                    );
                    entries.push(json!({
                        "key": param.key, "low": param.low, "high": param.high,
                        "mu_star": finite(index.mu_star), "mu_star_ci95": index.mu_star_ci95.map(finite),
                        "mu": finite(index.mu), "sigma": finite(index.sigma),
                    }));
                    bars.push(DifferenceBar {
                        arm: param.key.clone(),
                        difference: index.mu_star,
                        ci95: index.mu_star_ci95,
                    });
                }
            }
            Indices::Sobol(list) => {
                let _ = writeln!(
                    table,
                    "{:<36} {:>32} {:>32}",
                    "key", "first order [95% interval]", "total order [95% interval]"
                );
                for (param, index) in analysis.params.iter().zip(list) {
                    let mut row = vec![metric.to_string(), param.key.clone()];
                    row.extend(
                        [
                            param.low,
                            param.high,
                            index.first_order,
                            index.first_order_ci95[0],
                            index.first_order_ci95[1],
                            index.total_order,
                            index.total_order_ci95[0],
                            index.total_order_ci95[1],
                        ]
                        .iter()
                        .map(|v| cell(*v)),
                    );
                    csv.write_record(&row).expect("write to memory");
                    let _ = writeln!(
                        table,
                        "{:<36} {:>32} {:>32}",
                        param.key,
                        interval(index.first_order, index.first_order_ci95),
                        interval(index.total_order, index.total_order_ci95)
                    );
                    entries.push(json!({
                        "key": param.key, "low": param.low, "high": param.high,
                        "first_order": finite(index.first_order),
                        "first_order_ci95": index.first_order_ci95.map(finite),
                        "total_order": finite(index.total_order),
                        "total_order_ci95": index.total_order_ci95.map(finite),
                    }));
                    bars.push(DifferenceBar {
                        arm: param.key.clone(),
                        difference: index.total_order,
                        ci95: index.total_order_ci95,
                    });
                }
            }
        }
        json_metrics.insert(metric.to_string(), Value::Array(entries));
        if !plot_args.no_plots {
            let index_name = match analysis.method {
                SensitivityMethod::Morris => "Morris mu*",
                SensitivityMethod::Sobol => "Sobol total-order index",
            };
            plot_files.push(plots::sensitivity_bars(
                &analysis.base.name,
                metric,
                index_name,
                &bars,
                plot_args.plot_format,
            )?);
        }
    }
    let json_value = json!({
        "scenario": analysis.base.name,
        "method": analysis.method.name(),
        "seed": analysis.base.simulation.seed,
        "replications": analysis.base.simulation.replications,
        "samples": analysis.samples,
        "design_points": analysis.rows.len(),
        "params": analysis.params.iter().map(|p| json!({"key": p.key, "low": p.low, "high": p.high})).collect::<Vec<_>>(),
        "common_random_numbers": "every design point runs replications 0..R-1 of the same seed",
        "metrics": json_metrics,
    });
    let json_text = serde_json::to_string_pretty(&json_value).expect("plain JSON");
    write_output(
        dir,
        "sensitivity.csv",
        &csv.into_inner().expect("write to memory"),
    )?;
    write_output(dir, "sensitivity.json", json_text.as_bytes())?;
    write_plots(dir, &plot_files)?;
    super::report::write_for_study(dir)?;
    if json {
        outln!("{json_text}");
    } else {
        out!("{table}");
        outln!(
            "{} design points in {:.2} s",
            analysis.rows.len(),
            analysis.seconds
        );
        outln!("wrote {}", dir.display());
    }
    Ok(())
}

/// A CSV cell: empty for an undefined figure.
fn cell(value: f64) -> String {
    if value.is_finite() {
        value.to_string()
    } else {
        String::new()
    }
}

/// `null` in JSON for an undefined figure.
fn finite(value: f64) -> Option<f64> {
    value.is_finite().then_some(value)
}

fn interval(value: f64, ci95: [f64; 2]) -> String {
    if ci95[0].is_finite() {
        format!(
            "{} [{}, {}]",
            number(value),
            number(ci95[0]),
            number(ci95[1])
        )
    } else {
        number(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_parsed_and_bad_ones_named() {
        assert_eq!(
            parse_param("brand.value=0:1.5").unwrap(),
            Param {
                key: "brand.value".into(),
                low: 0.0,
                high: 1.5
            }
        );
        for (text, expected) in [
            ("brand.value", "expected KEY=LO:HI"),
            ("brand.value=1", "expected a range LO:HI"),
            ("brand.value=1:0", "expected LO < HI"),
            ("brand.value=0:inf", "expected a finite number"),
            ("brand.value=x:1", "expected a finite number"),
        ] {
            let error = parse_param(text).unwrap_err().to_string();
            assert!(error.contains(expected) && error.contains(text), "{error}");
        }
        let twice = parse_params(&["brand.value=0:1".into(), "brand.value=1:2".into()]);
        assert!(twice.unwrap_err().to_string().contains("given twice"));
    }
}

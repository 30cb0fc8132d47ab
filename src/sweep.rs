//! Parameter sweeps: a grid of scenarios that differ only in the `--vary` keys,
//! every grid point run on the same replications 0..R-1 (common random numbers),
//! so neighbouring points differ by the parameter, not by noise.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::metrics::METRIC_NAMES;
use crate::outcome::Outcome;
use crate::report::{csv_number, csv_text};
use crate::scenario::{Assignment, Scenario, ScenarioError, ScenarioSource};
use crate::stats::Summary;
use crate::study::{by_name, metric_columns, summarize_metrics};

/// More grid points than this is almost surely a typo in a step.
pub const MAX_GRID_POINTS: usize = 10_000;

/// A malformed `--vary`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("--vary {text:?}: {message}")]
pub struct VaryError {
    pub text: String,
    pub message: String,
}

/// One varied key and the values it takes, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub key: String,
    /// TOML values to set: integers when the user wrote integers (so integer keys
    /// like `market.population` can be varied), floats otherwise.
    pub values: Vec<toml::Value>,
}

impl Axis {
    /// The values as numbers, for tables and plots.
    pub fn numbers(&self) -> Vec<f64> {
        self.values.iter().map(number).collect()
    }
}

fn number(value: &toml::Value) -> f64 {
    match value {
        toml::Value::Integer(i) => *i as f64,
        toml::Value::Float(x) => *x,
        _ => f64::NAN,
    }
}

/// Parses `KEY=START:STOP:STEP` (STOP included when the steps reach it) or
/// `KEY=v1,v2,v3`. Whether the key exists and the values fit it is checked when
/// the grid is applied to the scenario.
pub fn parse_vary(text: &str) -> Result<Axis, VaryError> {
    let error = |message: String| VaryError {
        text: text.to_string(),
        message,
    };
    let Some((key, spec)) = text.split_once('=') else {
        return Err(error(
            "expected KEY=START:STOP:STEP or KEY=v1,v2,...".to_string(),
        ));
    };
    let (key, spec) = (key.trim(), spec.trim());
    if key.is_empty() {
        return Err(error("expected a key path before '='".to_string()));
    }
    let parse = |part: &str| -> Result<toml::Value, VaryError> {
        match part.trim().parse::<toml::Value>() {
            Ok(value @ toml::Value::Integer(_)) => Ok(value),
            Ok(toml::Value::Float(x)) if x.is_finite() => Ok(toml::Value::Float(x)),
            _ => Err(error(format!(
                "expected a finite number, found {:?}",
                part.trim()
            ))),
        }
    };
    let values = if spec.contains(':') {
        let parts: Vec<&str> = spec.split(':').collect();
        let [start, stop, step] = parts[..] else {
            return Err(error(format!(
                "expected START:STOP:STEP (three numbers), found {spec:?}"
            )));
        };
        range(parse(start)?, parse(stop)?, parse(step)?).map_err(error)?
    } else {
        spec.split(',').map(parse).collect::<Result<Vec<_>, _>>()?
    };
    for (i, value) in values.iter().enumerate() {
        if values[..i].iter().any(|v| number(v) == number(value)) {
            return Err(error(format!(
                "the value {} is given twice; give each grid value once",
                number(value)
            )));
        }
    }
    Ok(Axis {
        key: key.to_string(),
        values,
    })
}

/// `start, start + step, ...` up to `stop` (included within rounding).
fn range(
    start: toml::Value,
    stop: toml::Value,
    step: toml::Value,
) -> Result<Vec<toml::Value>, String> {
    let integers = [&start, &stop, &step]
        .iter()
        .all(|v| matches!(v, toml::Value::Integer(_)));
    let (a, b, s) = (number(&start), number(&stop), number(&step));
    if s == 0.0 {
        return Err("STEP must not be 0".to_string());
    }
    if (b - a) * s < 0.0 {
        return Err(format!(
            "STEP {s} goes away from STOP {b}; use a {} step",
            if s > 0.0 { "negative" } else { "positive" }
        ));
    }
    let steps = ((b - a) / s + 1e-9).floor();
    if steps + 1.0 > MAX_GRID_POINTS as f64 {
        return Err(format!(
            "{} values; at most {MAX_GRID_POINTS} are allowed",
            steps + 1.0
        ));
    }
    // STOP is included: a STEP that jumps over it is a mistake, not a shorter grid.
    let last = a + steps * s;
    if ((b - a) / s - steps).abs() > 1e-9 {
        return Err(format!(
            "STOP {b} is not on the grid: steps of {s} from {a} end at {} before it; \
             choose a STOP of START + k·STEP (here {}) or a STEP that divides STOP − START",
            round_to_step(last, s),
            round_to_step(last, s)
        ));
    }
    Ok((0..=steps as usize)
        .map(|i| {
            if integers {
                toml::Value::Integer(number(&start) as i64 + i as i64 * number(&step) as i64)
            } else {
                toml::Value::Float(round_to_step(a + i as f64 * s, s))
            }
        })
        .collect())
}

/// `x` (a grid value `START + i·STEP`) rounded so that 0.1 steps give 0.3, not
/// 0.30000000000000004: to 12 significant digits at the scale of the step
/// (more digits when `x` is much larger than the step, so 1e-13 steps stay apart).
fn round_to_step(x: f64, step: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let magnitude = |v: f64| v.abs().log10().floor() as i64;
    let digits = (12 + magnitude(x) - magnitude(step)).clamp(12, 17) as usize;
    format!("{:.*e}", digits - 1, x).parse().unwrap_or(x)
}

/// One point of the grid: the value index on each axis, and its scenario.
pub struct GridPoint {
    /// `indices[a]` indexes `axes[a].values`.
    pub indices: Vec<usize>,
    pub scenario: Arc<Scenario>,
    /// The point's resolved scenario, as stored in its study directory.
    pub source: ScenarioSource,
}

/// The value index on each axis of every grid point, in grid order (the first
/// axis varies slowest).
pub fn grid_indices(axes: &[Axis]) -> Vec<Vec<usize>> {
    let total: usize = axes.iter().map(|a| a.values.len()).product();
    (0..total)
        .map(|n| {
            let mut rest = n;
            let mut indices = vec![0; axes.len()];
            for (a, axis) in axes.iter().enumerate().rev() {
                indices[a] = rest % axis.values.len();
                rest /= axis.values.len();
            }
            indices
        })
        .collect()
}

/// The varied values of the grid point at `indices`, one number per axis.
pub fn point_values(axes: &[Axis], indices: &[usize]) -> Vec<f64> {
    axes.iter()
        .zip(indices)
        .map(|(axis, &i)| number(&axis.values[i]))
        .collect()
}

/// Every combination of the axes' values (the first axis varies slowest), each
/// applied to `base` like `--set` and validated. A bad key or value is an error
/// naming it, before anything runs.
pub fn grid(base: &ScenarioSource, axes: &[Axis]) -> Result<Vec<GridPoint>, ScenarioError> {
    grid_indices(axes)
        .into_iter()
        .map(|indices| {
            let assignments: Vec<Assignment> = axes
                .iter()
                .zip(&indices)
                .map(|(axis, &i)| Assignment {
                    key: axis.key.clone(),
                    value: axis.values[i].clone(),
                })
                .collect();
            let (scenario, source) = base.with_overrides(&assignments).map_err(|mut error| {
                error.message = error.message.replace("(from --set)", "(from --vary)");
                error
            })?;
            Ok(GridPoint {
                indices,
                scenario: Arc::new(scenario),
                source,
            })
        })
        .collect()
}

/// The summary of every metric at one grid point.
#[derive(Debug, Clone, PartialEq)]
pub struct PointSummary {
    /// The varied values, one per axis.
    pub values: Vec<f64>,
    pub replications: usize,
    /// In `METRIC_NAMES` order.
    pub metrics: Vec<(&'static str, Summary)>,
}

impl PointSummary {
    pub fn metric(&self, name: &str) -> Option<&Summary> {
        by_name(&self.metrics, name)
    }
}

/// Summarises the outcomes of one grid point.
pub fn summarize_point(values: Vec<f64>, outcomes: &[Outcome]) -> PointSummary {
    PointSummary {
        values,
        replications: outcomes.len(),
        metrics: summarize_metrics(&metric_columns(outcomes)),
    }
}

/// `sweep.csv`: one row per grid point: the varied values, then for every metric
/// `<metric>_mean`, `<metric>_ci_low`, `<metric>_ci_high`.
pub fn sweep_csv(axes: &[Axis], points: &[PointSummary]) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = axes.iter().map(|a| csv_text(&a.key)).collect();
    for metric in METRIC_NAMES {
        for stat in ["mean", "ci_low", "ci_high"] {
            header.push(format!("{metric}_{stat}"));
        }
    }
    writer.write_record(&header).expect("write to memory");
    for point in points {
        let mut row: Vec<String> = point.values.iter().map(|&v| csv_number(v)).collect();
        for (_, s) in &point.metrics {
            for v in [s.mean, s.ci95[0], s.ci95[1]] {
                row.push(csv_number(v));
            }
        }
        writer.write_record(&row).expect("write to memory");
    }
    writer.into_inner().expect("write to memory")
}

/// `sweep.json`: the scenario, seed, axes and, per grid point, its values and
/// the summary of every metric.
pub fn sweep_json(base: &Scenario, axes: &[Axis], points: &[PointSummary]) -> Value {
    let points: Vec<Value> = points
        .iter()
        .map(|point| {
            let values: serde_json::Map<String, Value> = axes
                .iter()
                .zip(&point.values)
                .map(|(axis, v)| (axis.key.clone(), json!(v)))
                .collect();
            let metrics: serde_json::Map<String, Value> = point
                .metrics
                .iter()
                .map(|(name, s)| (name.to_string(), serde_json::to_value(s).expect("numbers")))
                .collect();
            json!({
                "values": values,
                "replications": point.replications,
                "metrics": metrics,
            })
        })
        .collect();
    json!({
        "scenario": base.name,
        "seed": base.simulation.seed,
        "replications": base.simulation.replications,
        "common_random_numbers": "every grid point runs replications 0..R-1 of the same seed",
        "axes": axes
            .iter()
            .map(|a| json!({ "key": a.key, "values": a.numbers() }))
            .collect::<Vec<_>>(),
        "points": points,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Vec<f64> {
        parse_vary(text).unwrap().numbers()
    }

    #[test]
    fn ranges_include_stop_and_round_float_steps() {
        assert_eq!(values("brand.value=0:1:0.25"), [0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(values("brand.value=0:0.3:0.1"), [0.0, 0.1, 0.2, 0.3]);
        assert_eq!(values("x=10:0:-5"), [10.0, 5.0, 0.0]);
        assert_eq!(values("x=1:9:4"), [1.0, 5.0, 9.0]);
        assert_eq!(values("x=3,1.5,2"), [3.0, 1.5, 2.0]);
        assert_eq!(values("x=0:3e-13:1e-13"), [0.0, 1e-13, 2e-13, 3e-13]);
    }

    #[test]
    fn a_stop_off_the_grid_or_a_repeated_value_is_refused() {
        for (text, expected) in [
            ("x=1:10:4", "STOP 10 is not on the grid"),
            ("x=0:1:0.3", "end at 0.9"),
            ("x=0.1,0.1,0.2", "0.1 is given twice"),
            ("x=2,2.0", "2 is given twice"),
        ] {
            let message = parse_vary(text).unwrap_err().to_string();
            assert!(message.contains(expected), "{text}: {message}");
        }
    }

    #[test]
    fn integer_ranges_stay_integers() {
        let axis = parse_vary("market.population=1000:3000:1000").unwrap();
        assert!(
            axis.values
                .iter()
                .all(|v| matches!(v, toml::Value::Integer(_)))
        );
        let axis = parse_vary("market.population=1000:3000:500.0").unwrap();
        assert!(matches!(axis.values[1], toml::Value::Float(_)));
    }

    #[test]
    fn malformed_vary_is_explained() {
        for (text, expected) in [
            ("brand.value", "expected KEY=START:STOP:STEP"),
            ("=1,2", "expected a key path"),
            ("brand.value=0:1", "three numbers"),
            ("brand.value=0:1:0", "STEP must not be 0"),
            ("brand.value=0:1:-0.5", "goes away from STOP"),
            ("brand.value=a,b", "expected a finite number, found \"a\""),
            ("brand.value=1,,2", "expected a finite number"),
            ("brand.value=nan", "expected a finite number"),
            ("brand.value=0:1000000:1", "at most 10000"),
        ] {
            let error = parse_vary(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
            assert!(error.starts_with("--vary"), "{error}");
        }
    }
}

//! `brandsim fit churn FILE` and `brandsim fit bass FILE`: fit the sBG churn model
//! to cohorts or the Bass model to adoptions, print the estimates and the scenario
//! values they imply, and write `churn.json`/`bass.json`, a CSV of the curves and
//! a plot of observed against fitted.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Value, json};

use super::{CliError, Reuse, create_output_dir, lock_named_output, write_output, write_plots};
use crate::cli::{FitModel, FitOutputArgs};
use crate::fit::Estimate;
use crate::fit::bass::{self, BassForm, ScenarioMapping};
use crate::fit::churn::{self, Cohort};
use crate::fit::data::Table;
use crate::plots::{FitCurve, FitPoints, fit_chart};
use crate::report;

/// Entry point of `brandsim fit`.
pub fn run(model: &FitModel) -> Result<(), CliError> {
    match model {
        FitModel::Churn {
            file,
            periods,
            output,
        } => fit_churn(file, *periods, output),
        FitModel::Bass {
            file,
            form,
            period_days,
            cpm,
            satisfaction,
            output,
        } => {
            let mapping = ScenarioMapping {
                period_days: *period_days,
                cpm: *cpm,
                satisfaction: *satisfaction,
            };
            fit_bass(file, *form, &mapping, output)
        }
    }
}

/// The study marker of a fit: the command, its options and the data it read.
fn identity(command: &str, options: &str, data: &[u8]) -> String {
    format!(
        "brandsim fit {command}\n{options}\n{}",
        String::from_utf8_lossy(data)
    )
}

fn data_stem(file: &Path) -> String {
    file.file_stem()
        .map_or("data".to_string(), |s| s.to_string_lossy().into_owned())
}

fn estimate_row(out: &mut String, name: &str, e: &Estimate) {
    let _ = writeln!(
        out,
        "{name:<10} {:>14} {:>12}   [{}, {}]",
        significant(e.estimate),
        significant(e.se),
        significant(e.ci95[0]),
        significant(e.ci95[1])
    );
}

/// Four significant digits (more for large numbers), for estimates and TOML lines.
fn significant(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".to_string();
    }
    if x == 0.0 {
        return "0".to_string();
    }
    let digits = (3 - x.abs().log10().floor() as i32).max(0) as usize;
    format!("{x:.digits$}")
}

fn fit_churn(file: &Path, periods: Option<u32>, output: &FitOutputArgs) -> Result<(), CliError> {
    let table = Table::read(file)?;
    let cohorts = churn::read_cohorts(&table)?;
    let longest = cohorts
        .iter()
        .map(|c| c.active.len() - 1)
        .max()
        .unwrap_or(0) as u32;
    let periods = periods.unwrap_or(2 * longest).max(longest);
    let fit =
        churn::fit(&cohorts).map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
    let (alpha, beta) = (fit.alpha.estimate, fit.beta.estimate);
    let curve = churn::curve(alpha, beta, periods);

    let data = std::fs::read(file).unwrap_or_default();
    let study = identity("churn", &format!("periods {periods}"), &data);
    let lock = lock_named_output(output.out.as_deref(), &format!("{}-churn", data_stem(file)))?;
    let dir = lock.dir().to_path_buf();
    super::check_output_dir(&dir, &study, output.force, Reuse::Rewrite)?;

    let toml_lines = format!(
        "churn_alpha = {}\nchurn_beta = {}\n",
        significant(alpha),
        significant(beta)
    );
    let json = json!({
        "model": "shifted-beta-geometric (Fader & Hardie 2007)",
        "data": file.display().to_string(),
        "cohorts": cohorts.iter().map(|c| json!({"name": c.name, "active": c.active})).collect::<Vec<_>>(),
        "alpha": fit.alpha,
        "beta": fit.beta,
        "correlation": finite(fit.correlation),
        "log_likelihood": fit.log_likelihood,
        "interval_method": "observed information; 95% interval exp(ln x ± 1.96·se/x)",
        "curve": curve,
        "segment_toml": toml_lines,
    });
    let json_text = serde_json::to_string_pretty(&json).expect("plain JSON");

    create_output_dir(&dir, &study, output.force, Reuse::Rewrite)?;
    write_output(&dir, "churn.json", json_text.as_bytes())?;
    write_output(&dir, "churn.csv", &churn_csv(&cohorts, &curve))?;
    if !output.plots.no_plots {
        write_plots(&dir, &churn_plots(&cohorts, &curve, output)?)?;
    }
    if output.json {
        println!("{json_text}");
        return Ok(());
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "churn: shifted-beta-geometric fit of {} cohort{} ({} renewal periods at most) from {}, by maximum likelihood",
        cohorts.len(),
        if cohorts.len() == 1 { "" } else { "s" },
        longest,
        file.display()
    );
    let _ = writeln!(
        out,
        "{:<10} {:>14} {:>12}   95% interval",
        "parameter", "estimate", "se"
    );
    estimate_row(&mut out, "alpha", &fit.alpha);
    estimate_row(&mut out, "beta", &fit.beta);
    let _ = writeln!(
        out,
        "log-likelihood {:.3}; correlation of alpha and beta {:.3}; mean churn probability alpha/(alpha+beta) = {:.4}",
        fit.log_likelihood,
        fit.correlation,
        alpha / (alpha + beta)
    );
    let _ = writeln!(
        out,
        "{:>6} {:>10} {:>10}",
        "period", "survival", "retention"
    );
    for point in &curve {
        let projected = if point.period > longest {
            "  (projected)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{:>6} {:>10.4} {:>10}{projected}",
            point.period,
            point.survival,
            point.retention.map_or(String::new(), |r| format!("{r:.4}"))
        );
    }
    let _ = writeln!(
        out,
        "paste into a segment ([[market.segments]]):\n{toml_lines}"
    );
    let _ = writeln!(
        out,
        "(these are the churn probabilities at a renewal as the cohorts saw them; in the scenario the brand value and \
         satisfaction shift their logits, so they hold as is at brand.value = 0 and satisfaction 0.5, or with \
         retention_effect = satisfaction_effect = 0)"
    );
    print!("{out}");
    println!("wrote {}", dir.display());
    Ok(())
}

fn finite(x: f64) -> Value {
    if x.is_finite() { json!(x) } else { Value::Null }
}

/// `churn.csv`: `period`, fitted `survival` and `retention`, then each cohort's
/// observed survival share `n_t/n_0`.
fn churn_csv(cohorts: &[Cohort], curve: &[churn::CurvePoint]) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["period".to_string(), "survival".into(), "retention".into()];
    header.extend(cohorts.iter().map(|c| format!("observed_{}", c.name)));
    writer.write_record(&header).expect("write to memory");
    for point in curve {
        let mut row = vec![
            point.period.to_string(),
            point.survival.to_string(),
            point.retention.map_or(String::new(), |r| r.to_string()),
        ];
        row.extend(cohorts.iter().map(|c| {
            c.active
                .get(point.period as usize)
                .map_or(String::new(), |n| (n / c.active[0]).to_string())
        }));
        writer.write_record(&row).expect("write to memory");
    }
    writer.into_inner().expect("write to memory")
}

fn churn_plots(
    cohorts: &[Cohort],
    curve: &[churn::CurvePoint],
    output: &FitOutputArgs,
) -> Result<Vec<crate::plots::PlotFile>, CliError> {
    let format = output.plots.plot_format;
    let survival = FitCurve {
        label: "fitted sBG survival".into(),
        line: curve
            .iter()
            .map(|p| (f64::from(p.period), p.survival))
            .collect(),
        band: Vec::new(),
    };
    let observed: Vec<FitPoints> = cohorts
        .iter()
        .map(|c| FitPoints {
            label: format!("observed: {}", c.name),
            points: c
                .active
                .iter()
                .enumerate()
                .map(|(t, n)| (t as f64, n / c.active[0]))
                .collect(),
        })
        .collect();
    let retention = FitCurve {
        label: "fitted sBG retention".into(),
        line: curve
            .iter()
            .filter_map(|p| p.retention.map(|r| (f64::from(p.period), r)))
            .collect(),
        band: Vec::new(),
    };
    let observed_retention: Vec<FitPoints> = cohorts
        .iter()
        .map(|c| FitPoints {
            label: format!("observed: {}", c.name),
            points: c
                .active
                .windows(2)
                .enumerate()
                .filter(|(_, w)| w[0] > 0.0)
                .map(|(t, w)| ((t + 1) as f64, w[1] / w[0]))
                .collect(),
        })
        .collect();
    Ok(vec![
        fit_chart(
            "churn-survival",
            "survival: observed cohorts vs fitted sBG (projected beyond the data)",
            ("renewal period", "share still active"),
            &[survival],
            &observed,
            format,
        )?,
        fit_chart(
            "churn-retention",
            "retention r(t) = S(t)/S(t-1): observed vs fitted sBG",
            ("renewal period", "retention"),
            &[retention],
            &observed_retention,
            format,
        )?,
    ])
}

fn fit_bass(
    file: &Path,
    form: BassForm,
    mapping: &ScenarioMapping,
    output: &FitOutputArgs,
) -> Result<(), CliError> {
    for (flag, value) in [
        ("--period-days", mapping.period_days),
        ("--cpm", mapping.cpm),
        ("--satisfaction", mapping.satisfaction),
    ] {
        if !(value.is_finite() && value > 0.0) {
            return Err(CliError::Usage(format!(
                "{flag} {value}: expected a positive number"
            )));
        }
    }
    if mapping.satisfaction > 1.0 {
        return Err(CliError::Usage(format!(
            "--satisfaction {}: expected a mean satisfaction in (0, 1]",
            mapping.satisfaction
        )));
    }
    let table = Table::read(file)?;
    let data = bass::read_adoptions(&table)?;
    let fit =
        bass::fit(&data, form).map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
    let values = bass::scenario_values(&fit, mapping);

    let bytes = std::fs::read(file).unwrap_or_default();
    let study = identity("bass", &format!("{form:?} {mapping:?}"), &bytes);
    let lock = lock_named_output(output.out.as_deref(), &format!("{}-bass", data_stem(file)))?;
    let dir = lock.dir().to_path_buf();
    super::check_output_dir(&dir, &study, output.force, Reuse::Rewrite)?;
    let last = data.points.last().map_or(0.0, |p| p.0);
    let fitted: Vec<(f64, f64)> = (1..=last as u32)
        .map(|t| {
            (
                f64::from(t),
                fit.m.estimate * form.shape(fit.p.estimate, fit.q.estimate, f64::from(t)),
            )
        })
        .collect();
    let scenario_toml = format!(
        "[market]\npopulation = {}\nword_of_mouth = {}\n\n[[channels]]\nname = \"paid\"\ndaily_budget = {}\ncpm = {}\n",
        values.population,
        significant(values.word_of_mouth),
        significant(values.daily_budget),
        mapping.cpm
    );
    let json = json!({
        "model": "Bass (1969), nonlinear least squares",
        "data": file.display().to_string(),
        "form": form,
        "m": fit.m,
        "p": fit.p,
        "q": fit.q,
        "residual_se": fit.residual_se,
        "sse": fit.sse,
        "periods": fit.periods,
        "mapping": mapping,
        "scenario_values": values,
        "scenario_toml": scenario_toml,
        "assumptions": ASSUMPTIONS,
    });
    let json_text = serde_json::to_string_pretty(&json).expect("plain JSON");

    create_output_dir(&dir, &study, output.force, Reuse::Rewrite)?;
    write_output(&dir, "bass.json", json_text.as_bytes())?;
    write_output(&dir, "bass.csv", &bass_csv(&data, &fitted))?;
    if !output.plots.no_plots {
        let plot = fit_chart(
            "bass",
            &format!(
                "adoptions per period: observed vs Bass fit ({} form)",
                form.name()
            ),
            ("period", &data.name),
            &[FitCurve {
                label: "fitted".into(),
                line: fitted.clone(),
                band: Vec::new(),
            }],
            &[FitPoints {
                label: "observed".into(),
                points: data.points.clone(),
            }],
            output.plots.plot_format,
        )?;
        write_plots(&dir, &[plot])?;
    }
    if output.json {
        println!("{json_text}");
        return Ok(());
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "bass: nonlinear least squares of {} on {} periods of {:?} from {}",
        match form {
            BassForm::Period => "m·(F(t) − F(t−1))",
            BassForm::Density => "m·f(t)",
        },
        fit.periods,
        data.name,
        file.display()
    );
    let _ = writeln!(
        out,
        "{:<10} {:>14} {:>12}   95% interval",
        "parameter", "estimate", "se"
    );
    estimate_row(&mut out, "m", &fit.m);
    estimate_row(&mut out, "p", &fit.p);
    estimate_row(&mut out, "q", &fit.q);
    let _ = writeln!(out, "residual se {}", report::number(fit.residual_se));
    let _ = writeln!(
        out,
        "scenario values (one period = {} days, payers' mean satisfaction {}, a channel of cpm {}):\n{scenario_toml}",
        mapping.period_days, mapping.satisfaction, mapping.cpm
    );
    let _ = writeln!(out, "assumptions: {ASSUMPTIONS}");
    print!("{out}");
    println!("wrote {}", dir.display());
    Ok(())
}

/// What the mapping from a Bass fit to scenario values assumes.
const ASSUMPTIONS: &str = "every exposure adopts at once (click_rate = conversion_rate = 1, price_sensitivity = 0, brand.value = 0), \
adoption is a one-off purchase (renewal_days = 0), nobody goes dormant (dormancy = 0), one segment, and daily rates are the \
period's rates divided by --period-days; with a funnel that buys on a share a of exposures, divide daily_budget and \
word_of_mouth by a";

/// `bass.csv`: `period`, `observed` (empty where missing), `fitted`.
fn bass_csv(data: &bass::Adoptions, fitted: &[(f64, f64)]) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record(["period", "observed", "fitted"])
        .expect("write to memory");
    for &(t, value) in fitted {
        let observed = data
            .points
            .iter()
            .find(|p| p.0 == t)
            .map_or(String::new(), |p| p.1.to_string());
        writer
            .write_record([t.to_string(), observed, value.to_string()])
            .expect("write to memory");
    }
    writer.into_inner().expect("write to memory")
}

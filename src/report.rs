//! Study outputs: `summary.json`, `replications.csv`, `daily.csv`, the resolved
//! scenario, and the table printed on stdout. Every file is written to a
//! temporary name and renamed, so none is ever left half-written.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::memory;
use crate::metrics::{METRIC_NAMES, SERIES_NAMES};
use crate::outcome::Outcome;
use crate::scenario::{Calendar, Scenario};
use crate::study::StudySummary;

/// Simulation work and wall time of a study.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throughput {
    pub user_days: f64,
    pub seconds: f64,
    pub threads: usize,
    /// Users in memory at once: the population times the replications running
    /// at once (one per thread at most).
    pub users_in_memory: f64,
    /// Peak resident memory of the process, when the OS reports it.
    pub peak_memory_bytes: Option<u64>,
    /// Resident memory before the first replication began: the process
    /// without the simulated users.
    pub start_memory_bytes: Option<u64>,
}

impl Throughput {
    pub fn new(scenario: &Scenario, replications: usize, seconds: f64, threads: usize) -> Self {
        let population = f64::from(scenario.market.population);
        Throughput {
            user_days: population * f64::from(scenario.simulation.days) * replications as f64,
            seconds,
            threads,
            users_in_memory: population * threads.min(replications).max(1) as f64,
            peak_memory_bytes: memory::peak_bytes(),
            start_memory_bytes: memory::at_start_bytes(),
        }
    }

    /// Peak memory per user in memory at once.
    pub fn peak_bytes_per_user(&self) -> Option<f64> {
        self.peak_memory_bytes
            .map(|b| b as f64 / self.users_in_memory.max(1.0))
    }

    /// The part of the peak above the memory before the first replication,
    /// per user in memory at once: what a simulated user costs.
    pub fn peak_bytes_per_user_above_start(&self) -> Option<f64> {
        let (peak, start) = (self.peak_memory_bytes?, self.start_memory_bytes?);
        Some(peak.saturating_sub(start) as f64 / self.users_in_memory.max(1.0))
    }

    /// `X MiB (Y bytes per user in memory; Z above the W MiB before
    /// simulating)`, for the printout.
    pub fn peak_memory_text(&self) -> String {
        let mib = |bytes: u64| bytes as f64 / 1048576.0;
        let (Some(bytes), Some(per_user)) = (self.peak_memory_bytes, self.peak_bytes_per_user())
        else {
            return "n/a".to_string();
        };
        let mut text = format!(
            "{:.1} MiB ({per_user:.1} bytes per user in memory",
            mib(bytes)
        );
        if let (Some(start), Some(above)) = (
            self.start_memory_bytes,
            self.peak_bytes_per_user_above_start(),
        ) {
            let _ = write!(
                text,
                "; {above:.1} above the {:.1} MiB before simulating",
                mib(start)
            );
        }
        text + ")"
    }

    pub fn user_days_per_second(&self) -> f64 {
        self.user_days / self.seconds.max(1e-9)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "user_days": self.user_days,
            "seconds": self.seconds,
            "user_days_per_second": self.user_days_per_second(),
            "threads": self.threads,
            "users_in_memory": self.users_in_memory,
            "peak_memory_bytes": self.peak_memory_bytes,
            "peak_memory_bytes_per_user": self.peak_bytes_per_user(),
            "start_memory_bytes": self.start_memory_bytes,
            "peak_memory_bytes_per_user_above_start": self.peak_bytes_per_user_above_start(),
            // How the funnel drew 64 users at once: AVX-512, or the portable
            // path (no AVX-512, or `BRANDSIM_PORTABLE=1`).
            "draws": if crate::rng::WideDraws::detect().is_wide() { "avx512" } else { "portable" },
        })
    }
}

/// `summary.json` of a study.
pub fn summary_json(
    scenario: &Scenario,
    replications: usize,
    summary: &StudySummary,
    throughput: &Throughput,
) -> Value {
    let metrics: serde_json::Map<String, Value> = summary
        .metrics
        .iter()
        .map(|(name, s)| {
            (
                name.to_string(),
                serde_json::to_value(s).expect("plain numbers"),
            )
        })
        .collect();
    let mut summary = json!({
        "scenario": scenario.name,
        "seed": scenario.simulation.seed,
        "replications": replications,
        "population": scenario.market.population,
        "days": scenario.simulation.days,
        "brand_value": scenario.brand.value,
        "metrics": metrics,
        "throughput": throughput.to_json(),
    });
    // Only with `[[uncertain]]`: what each replication drew its values from.
    if !scenario.uncertain.is_empty() {
        let uncertain: Vec<Value> = scenario
            .uncertain
            .iter()
            .map(|u| json!({ "key": u.key, "drawn": !u.fixed, "distribution": u.describe_distribution() }))
            .collect();
        summary["uncertain"] = Value::Array(uncertain);
    }
    summary
}

/// `replications.csv`: `replication`, then every metric, then each drawn
/// `[[uncertain]]` value (MODEL.md version 2, "Parameter uncertainty").
pub fn replications_csv(outcomes: &[Outcome]) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["replication"];
    header.extend(METRIC_NAMES);
    // Then the drawn values of `[[uncertain]]` keys, one column per key.
    let uncertain = outcomes.first().map_or(&[][..], |o| o.uncertain.as_slice());
    header.extend(uncertain.iter().map(|(key, _)| key.as_str()));
    writer.write_record(&header).expect("write to memory");
    for outcome in outcomes {
        let mut row = vec![outcome.replication.to_string()];
        row.extend(outcome.metrics().0.iter().map(|&v| csv_number(v)));
        row.extend(outcome.uncertain.iter().map(|&(_, v)| csv_number(v)));
        writer.write_record(&row).expect("write to memory");
    }
    writer.into_inner().expect("write to memory")
}

/// `daily.csv`: `day` (and `date` when the scenario has a start date, MODEL.md
/// v2), then `<series>_mean`, `_p05`, `_p50`, `_p95` per series.
pub fn daily_csv(summary: &StudySummary, calendar: &Calendar) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["day".to_string()];
    let dated = calendar.start_date.is_some();
    if dated {
        header.push("date".to_string());
    }
    for series in SERIES_NAMES {
        for stat in ["mean", "p05", "p50", "p95"] {
            header.push(format!("{series}_{stat}"));
        }
    }
    writer.write_record(&header).expect("write to memory");
    let days = summary.daily.first().map_or(0, Vec::len);
    for day in 0..days {
        let mut row = vec![day.to_string()];
        if dated {
            row.push(calendar.date_text(day as u32).unwrap_or_default());
        }
        for series in &summary.daily {
            let band = series[day];
            for v in [band.mean, band.p05, band.p50, band.p95] {
                row.push(csv_number(v));
            }
        }
        writer.write_record(&row).expect("write to memory");
    }
    writer.into_inner().expect("write to memory")
}

/// Writes `contents` to `path` through a temporary file in the same directory
/// (`path.partial`), renamed into place; if any step fails (a full disk, a file
/// size limit), the temporary file is removed, so none is left behind.
pub fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".partial");
    let temporary = PathBuf::from(temporary);
    fs::write(&temporary, contents)
        .and_then(|()| fs::rename(&temporary, path))
        .inspect_err(|_| {
            let _ = fs::remove_file(&temporary);
        })
}

/// The human-readable table of the main metrics.
pub fn metrics_table(scenario: &Scenario, replications: usize, summary: &StudySummary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} users, {} days, {} replications, seed {}, brand value {}",
        table_text(&scenario.name),
        scenario.market.population,
        scenario.simulation.days,
        replications,
        scenario.simulation.seed,
        scenario.brand.value
    );
    for uncertain in &scenario.uncertain {
        let _ = writeln!(out, "uncertain: {}", uncertain.describe());
    }
    let _ = writeln!(
        out,
        "{:<18} {:>14} {:>31} {:>14} {:>14}",
        "metric", "mean", "95% CI", "p05", "p95"
    );
    for (name, s) in &summary.metrics {
        // `seeded` is always 0 without `[[seeding]]`: the files keep it, the table
        // does not.
        if *name == "seeded" && scenario.seeding.is_empty() {
            continue;
        }
        let ci = if s.ci95[0].is_nan() {
            "n/a".to_string()
        } else {
            format!("[{}, {}]", number(s.ci95[0]), number(s.ci95[1]))
        };
        let _ = writeln!(
            out,
            "{:<18} {:>14} {:>31} {:>14} {:>14}",
            name,
            number(s.mean),
            ci,
            number(s.p05),
            number(s.p95)
        );
    }
    out
}

/// A number for a CSV cell: the shortest text that reads back to the same
/// `f64`, or an empty cell when the figure is undefined (NaN, infinite), as JSON
/// writes `null` and tables `n/a`.
pub fn csv_number(value: f64) -> String {
    if value.is_finite() {
        value.to_string()
    } else {
        String::new()
    }
}

/// A text for a CSV cell (a name): one that a spreadsheet would read as a
/// formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a
/// leading `'`, which spreadsheets show as text (OWASP's CSV-injection advice).
pub fn csv_text(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

/// A name for a terminal table: control characters (a newline, an escape
/// sequence) are shown escaped (`\n`, `\u{1b}`), so a name cannot break the
/// table's lines or drive the terminal.
pub fn table_text(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A number for a table: integers without decimals, counts and money with one
/// decimal, rates with four; `n/a` when undefined (NaN, infinite).
pub fn number(value: f64) -> String {
    if !value.is_finite() {
        "n/a".to_string()
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else if value.abs() >= 100.0 {
        format!("{value:.1}")
    } else if value.abs() >= 1.0 {
        format!("{value:.3}")
    } else {
        format!("{value:.4}")
    }
}

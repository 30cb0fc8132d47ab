//! `report.html`: one self-contained page about a study directory (no scripts,
//! fonts, styles or images from anywhere else), readable on a phone and printed
//! on A4. It is built from the directory's files only, so every study command
//! and `brandsim report DIR` share this one code path.
//!
//! The page: the headline table with 95% intervals, every plot of the study
//! inline, the scenario in brief, the campaign calendar, what was held uncertain
//! (`[[uncertain]]`), and how the study was run. Campaigns, seedings and
//! uncertain keys are read generically from the resolved `scenario.toml`.
//!
//! Adding a kind of study (`sensitivity` and `calibrate` were added so) is one step in
//! three places: a variant of [`StudyKind`] with its command and result file,
//! its recognition in `detect` (its result file, or a `whatif.json` command),
//! its plot file names in `is_plot_of`, and its headline in `results_section`
//! (and title in `title_and_lede`). Its plots (the `*.svg` or `*.png` files it
//! writes at the top of its directory), the scenario, calendar, uncertainty and
//! run details need nothing more.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use base64::Engine as _;
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
use serde_json::Value as Json;

use super::calendar::{
    CalendarEntry, calendar_entries, calendar_svg, flatten_set, scalar_text, utc_text,
};
use crate::metrics::METRIC_NAMES;
use crate::plots::{self, PlotFormat};
use crate::report::number;
use crate::store::{
    META_FILE, SCENARIO_FILE, StoreError, StudyMeta, StudyStore, WHATIF_FILE, WhatIf, WhatIfMeta,
};

/// The report's file name in a study directory.
pub const REPORT_FILE: &str = "report.html";

/// The journal of a calibration's evaluations, written from its first one: a
/// calibration directory without `calibration.json` is an interrupted one.
const CALIBRATION_JOURNAL: &str = "evaluations.jsonl";

/// The metrics shown first (and as cards) wherever a study reports every metric.
const HEADLINE_METRICS: [&str; 4] = ["profit", "revenue", "active_payers", "registrations"];

/// Why a report could not be built or written. Each message names the path.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(
        "{}: holds no brandsim study (none of study.json, whatif.json, summary.json, optimize.json, calibration.json); expected the output directory of run, sweep, compare, sensitivity, optimize, calibrate or merge",
        dir.display()
    )]
    NotAStudy { dir: PathBuf },
    #[error("{}: not a directory; expected a study's output directory", dir.display())]
    NotADirectory { dir: PathBuf },
    #[error("cannot read {}: {message}", path.display())]
    Read { path: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// The kinds of study directory a report is built for (a merged directory is
/// of the kind of its shards).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StudyKind {
    /// `run`: `summary.json`, `replications.csv`, `daily.csv`, fan charts.
    Run,
    /// `sweep`: `sweep.json` and `whatif.json`, one study per grid point.
    Sweep,
    /// `compare`: `compare.json` and `whatif.json`, one study per arm.
    Compare,
    /// `optimize`: `optimize.json`, `trace.csv`, `trace.svg`.
    Optimize,
    /// `sensitivity`: `sensitivity.json` and `whatif.json`, one study per design
    /// point, and a bar chart per metric.
    Sensitivity,
    /// `calibrate`: `calibration.json`, `calibration.csv`, `calibration-<series>.svg`,
    /// the calibrated `scenario.toml` and the journal `evaluations.jsonl`.
    Calibrate,
}

impl StudyKind {
    /// The command that writes this kind of directory.
    pub fn command(self) -> &'static str {
        match self {
            StudyKind::Run => "run",
            StudyKind::Sweep => "sweep",
            StudyKind::Compare => "compare",
            StudyKind::Optimize => "optimize",
            StudyKind::Sensitivity => "sensitivity",
            StudyKind::Calibrate => "calibrate",
        }
    }

    /// The file holding the results of a finished study of this kind.
    pub fn result_file(self) -> &'static str {
        match self {
            StudyKind::Run => "summary.json",
            StudyKind::Sweep => "sweep.json",
            StudyKind::Compare => "compare.json",
            StudyKind::Optimize => "optimize.json",
            StudyKind::Sensitivity => "sensitivity.json",
            StudyKind::Calibrate => "calibration.json",
        }
    }
}

/// A built report.
#[derive(Debug, Clone)]
pub struct Report {
    pub kind: StudyKind,
    /// The page.
    pub html: String,
    /// Why the report is partial (a shard, an interrupted study), if it is.
    pub partial: Option<String>,
    /// How many plots the page holds.
    pub plots: usize,
}

/// Builds the report of the study directory `dir` from its files.
pub fn build_report(dir: &Path) -> Result<Report, ReportError> {
    let study = detect(dir)?;
    let figures = if study.partial.is_some() {
        Vec::new()
    } else {
        figures(&study)?
    };
    let html = page(&study, &figures);
    Ok(Report {
        kind: study.kind,
        html,
        partial: study.partial,
        plots: figures.len(),
    })
}

/// What the directory holds, as far as the report needs it.
struct Study {
    dir: PathBuf,
    kind: StudyKind,
    /// Why there are no results, if there are none.
    partial: Option<String>,
    /// The resolved `scenario.toml`, read as plain TOML.
    scenario: toml::Table,
    /// The result file of [`StudyKind::result_file`] (absent if partial).
    results: Option<Json>,
    whatif: Option<WhatIfMeta>,
    meta: Option<StudyMeta>,
}

/// The file that says which study a directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Described {
    WhatIf,
    Optimize,
    Calibrate,
    Run,
}

/// Recognises the kind of study in `dir` and reads what the report shows.
fn detect(dir: &Path) -> Result<Study, ReportError> {
    if !dir.is_dir() {
        return Err(if dir.exists() {
            ReportError::NotADirectory {
                dir: dir.to_path_buf(),
            }
        } else {
            ReportError::Read {
                path: dir.to_path_buf(),
                message: "no such directory".into(),
            }
        });
    }
    let mut study = Study {
        dir: dir.to_path_buf(),
        kind: StudyKind::Run,
        partial: None,
        scenario: toml::Table::new(),
        results: None,
        whatif: None,
        meta: None,
    };
    // A directory reused with --force may still hold another kind's files: the
    // study is the one whose description was written last.
    let modified = |name: &str| {
        std::fs::metadata(dir.join(name))
            .and_then(|m| m.modified())
            .ok()
    };
    let written = [
        (Described::WhatIf, modified(WHATIF_FILE)),
        (
            Described::Optimize,
            modified(StudyKind::Optimize.result_file()),
        ),
        (
            Described::Calibrate,
            modified(StudyKind::Calibrate.result_file()).max(modified(CALIBRATION_JOURNAL)),
        ),
        (
            Described::Run,
            modified(META_FILE).max(modified(StudyKind::Run.result_file())),
        ),
    ];
    let newest = written
        .iter()
        .filter_map(|(what, time)| time.map(|t| (t, *what)))
        .max_by_key(|(t, _)| *t)
        .map(|(_, what)| what);
    let whatif = if newest == Some(Described::WhatIf) {
        WhatIfMeta::read(dir)?
    } else {
        None
    };
    if let Some(whatif) = whatif {
        study.kind = match whatif.study {
            WhatIf::Sweep { .. } => StudyKind::Sweep,
            WhatIf::Compare { .. } => StudyKind::Compare,
            WhatIf::Sensitivity { .. } => StudyKind::Sensitivity,
        };
        let what = match whatif.study {
            WhatIf::Sweep { .. } => "grid point",
            WhatIf::Compare { .. } => "arm",
            WhatIf::Sensitivity { .. } => "design point",
        };
        if !whatif.shard.is_whole() {
            study.partial = Some(format!(
                "This directory holds shard {} of a {}: replications j with j mod {} = {} of each of its {} {what}s. A shard has no results of its own: merge all {} shards with `brandsim merge DIR... --out DIR`, which writes the report of the whole study.",
                whatif.shard,
                whatif.study.command(),
                whatif.shard.count,
                whatif.shard.index,
                whatif.points,
                whatif.shard.count
            ));
        }
        study.whatif = Some(whatif);
    } else if newest == Some(Described::Optimize) {
        study.kind = StudyKind::Optimize;
    } else if newest == Some(Described::Calibrate) {
        study.kind = StudyKind::Calibrate;
    } else if dir.join(META_FILE).exists() {
        let store = StudyStore::open(dir)?;
        let meta = store.meta().clone();
        if !meta.shard.is_whole() {
            let due = meta.replications_due().len();
            let saved = store.finished()?.len();
            study.partial = Some(format!(
                "This directory holds shard {} of a study: {saved} of its {due} replications (j mod {} = {} of {}) are saved. A shard has no results of its own: merge all {} shards with `brandsim merge DIR... --out DIR`, which writes the report of the whole study.",
                meta.shard, meta.shard.count, meta.shard.index, meta.replications, meta.shard.count
            ));
        }
        study.meta = Some(meta);
    } else if !dir.join(StudyKind::Run.result_file()).exists() {
        return Err(ReportError::NotAStudy {
            dir: dir.to_path_buf(),
        });
    }
    if study.partial.is_none()
        && let Some(whatif_dir) = enclosing_whatif(dir)
    {
        study.partial = Some(format!(
            "This directory is one grid point or arm of the what-if study in `{}`, whose `report.html` shows it beside the others.",
            whatif_dir.display()
        ));
    }
    let result_path = dir.join(study.kind.result_file());
    if study.partial.is_none() && !result_path.exists() {
        let again = if study.kind == StudyKind::Calibrate {
            format!(
                "the command line that started it (the same scenario, data, `--param` and search options) with `--resume {}`: its saved evaluations are replayed",
                dir.display()
            )
        } else {
            format!("`--resume {}`", dir.display())
        };
        study.partial = Some(format!(
            "This {} has no results yet ({} is missing): it was interrupted or is still running. Continue it with {again}; its report is written when it finishes.",
            study.kind.command(),
            study.kind.result_file(),
        ));
    }
    if study.partial.is_none() {
        study.results = Some(read_json(&result_path)?);
    }
    let scenario_path = dir.join(SCENARIO_FILE);
    if scenario_path.exists() {
        let source = read_text(&scenario_path)?;
        study.scenario = source
            .parse()
            .map_err(|e: toml::de::Error| ReportError::Invalid {
                path: scenario_path.clone(),
                message: format!("not a scenario file: {}", e.to_string().trim_end()),
            })?;
    }
    Ok(study)
}

/// The what-if study directory that holds `dir` as its grid point
/// (`points/<i>`) or arm (`arms/<i>`), if it is one.
fn enclosing_whatif(dir: &Path) -> Option<PathBuf> {
    let folder = dir.parent()?;
    let name = folder.file_name()?.to_str()?;
    let whatif_dir = folder.parent()?;
    ((name == "points" || name == "arms") && whatif_dir.join(WHATIF_FILE).exists())
        .then(|| whatif_dir.to_path_buf())
}

fn read_text(path: &Path) -> Result<String, ReportError> {
    std::fs::read_to_string(path).map_err(|e| ReportError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn read_json(path: &Path) -> Result<Json, ReportError> {
    let source = read_text(path)?;
    serde_json::from_str(&source).map_err(|e| ReportError::Invalid {
        path: path.to_path_buf(),
        message: format!("not valid JSON: {e}"),
    })
}

/// One plot of the page: its file name, caption and markup (an inline `<svg>`,
/// or an `<img>` holding a PNG as a `data:` URL).
struct Figure {
    name: String,
    caption: String,
    markup: String,
}

/// Every plot of the study: the SVG files at the top of its directory, inline;
/// if it has none, the fan charts drawn from the stored replications of a `run`
/// (a merged run, or one with `--no-plots`); else its PNG files, embedded.
fn figures(study: &Study) -> Result<Vec<Figure>, ReportError> {
    let mut svgs = Vec::new();
    let mut pngs = Vec::new();
    let entries = std::fs::read_dir(&study.dir).map_err(|e| ReportError::Read {
        path: study.dir.clone(),
        message: e.to_string(),
    })?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !entry.path().is_file() {
            continue;
        }
        let Some((stem, extension)) = name.rsplit_once('.') else {
            continue;
        };
        if !is_plot_of(study, stem) {
            continue;
        }
        match extension {
            "svg" => svgs.push(name),
            "png" => pngs.push(name),
            _ => {}
        }
    }
    svgs.sort();
    pngs.sort();
    let mut figures = Vec::new();
    for name in &svgs {
        let path = study.dir.join(name);
        let svg = read_text(&path)?;
        let markup = inline_svg(&svg, &caption(name)).ok_or_else(|| ReportError::Invalid {
            path: path.clone(),
            message: "not an SVG image (no <svg> element), or one with a script".into(),
        })?;
        figures.push(Figure {
            name: name.clone(),
            caption: caption(name),
            markup,
        });
    }
    if figures.is_empty() && study.kind == StudyKind::Run && study.meta.is_some() {
        let outcomes = StudyStore::open(&study.dir)?.load_outcomes()?;
        let name = study
            .scenario
            .get("name")
            .and_then(toml::Value::as_str)
            .unwrap_or("study");
        if !outcomes.is_empty() {
            let drawn = plots::fan_charts(
                name,
                &outcomes,
                &plots::TimeAxis::default(),
                PlotFormat::Svg,
            )
            .map_err(|e| ReportError::Invalid {
                path: study.dir.clone(),
                message: e.to_string(),
            })?;
            for plot in drawn {
                let svg = String::from_utf8_lossy(&plot.bytes);
                if let Some(markup) = inline_svg(&svg, &caption(&plot.name)) {
                    figures.push(Figure {
                        caption: format!("{} (drawn for this report)", caption(&plot.name)),
                        name: plot.name,
                        markup,
                    });
                }
            }
        }
    }
    if figures.is_empty() {
        for name in &pngs {
            let path = study.dir.join(name);
            let bytes = std::fs::read(&path).map_err(|e| ReportError::Read {
                path: path.clone(),
                message: e.to_string(),
            })?;
            let data = base64::engine::general_purpose::STANDARD.encode(bytes);
            figures.push(Figure {
                name: name.clone(),
                caption: caption(name),
                markup: format!(
                    r#"<img class="plot" alt="{}" src="data:image/png;base64,{data}">"#,
                    attr(&caption(name))
                ),
            });
        }
    }
    Ok(figures)
}

/// Whether a file named `stem` (`.svg` or `.png`) is a plot of `study`, by the
/// names its command gives its plots; files of an earlier study left in a
/// directory reused with `--force` are not.
fn is_plot_of(study: &Study, stem: &str) -> bool {
    match (study.kind, study.whatif.as_ref().map(|w| &w.study)) {
        (StudyKind::Run, _) => stem.starts_with("fan-") || stem == "degree",
        (StudyKind::Optimize, _) => stem == "trace",
        (StudyKind::Calibrate, _) => stem.starts_with("calibration-"),
        (StudyKind::Sweep, Some(WhatIf::Sweep { vary, metrics })) => {
            let prefix = match vary.len() {
                1 => "sweep-",
                2 => "heatmap-",
                _ => return false,
            };
            stem.strip_prefix(prefix)
                .is_some_and(|metric| metrics.iter().any(|m| m == metric))
        }
        (StudyKind::Compare, Some(WhatIf::Compare { metric, .. })) => {
            stem.strip_prefix("compare-") == Some(metric.as_str())
        }
        (StudyKind::Sensitivity, Some(WhatIf::Sensitivity { metrics, .. })) => stem
            .strip_prefix("sensitivity-")
            .is_some_and(|metric| metrics.iter().any(|m| m == metric)),
        _ => false,
    }
}

/// The caption of a plot file, from its name.
fn caption(file: &str) -> String {
    let stem = file.rsplit_once('.').map_or(file, |(stem, _)| stem);
    let words = |s: &str| s.replace('_', " ");
    if let Some(series) = stem.strip_prefix("fan-") {
        format!(
            "{} by day: mean over replications and the 5–95% band",
            words(series)
        )
    } else if let Some(metric) = stem.strip_prefix("sweep-") {
        format!(
            "{} against the varied key: mean with its 95% confidence interval",
            words(metric)
        )
    } else if let Some(metric) = stem.strip_prefix("heatmap-") {
        format!("{}: mean at each grid point", words(metric))
    } else if let Some(metric) = stem.strip_prefix("compare-") {
        format!(
            "{}: each arm's paired difference from the base, with its 95% confidence interval",
            words(metric)
        )
    } else if let Some(metric) = stem.strip_prefix("sensitivity-") {
        format!(
            "{}: the sensitivity index of each key, with its bootstrap 95% interval",
            words(metric)
        )
    } else if let Some(series) = stem.strip_prefix("calibration-") {
        format!(
            "{} by day: observed against the simulated mean and 5–95% band at the fitted values",
            words(series)
        )
    } else if stem == "degree" {
        "the social network's degree distribution (log–log; network.json has its summary)"
            .to_string()
    } else if stem == "trace" {
        "the search: J with its 95% confidence interval, and each tuned value, step by step"
            .to_string()
    } else {
        words(stem)
    }
}

/// An SVG document as an element of the page: the `<svg>` element scaled to the
/// width of the page (its fixed `width`/`height` dropped in favour of its
/// `viewBox`), labelled with `label`. `None` if it has no `<svg>` element or
/// holds a script.
fn inline_svg(svg: &str, label: &str) -> Option<String> {
    if svg.to_ascii_lowercase().contains("<script") {
        return None;
    }
    let start = svg.find("<svg")?;
    let svg = svg[start..].trim_end();
    let tag_end = svg.find('>')?;
    let (tag, rest) = svg.split_at(tag_end);
    let mut tag = tag.to_string();
    if tag.contains("viewBox") {
        for attribute in ["width", "height"] {
            tag = drop_attribute(&tag, attribute);
        }
    }
    Some(format!(
        r#"{tag} class="plot" role="img" aria-label="{}" preserveAspectRatio="xMidYMid meet"{rest}"#,
        attr(label)
    ))
}

/// `tag` without its attribute `name="..."`.
fn drop_attribute(tag: &str, name: &str) -> String {
    let pattern = format!(" {name}=\"");
    let Some(at) = tag.find(&pattern) else {
        return tag.to_string();
    };
    let value_start = at + pattern.len();
    let Some(len) = tag[value_start..].find('"') else {
        return tag.to_string();
    };
    format!("{}{}", &tag[..at], &tag[value_start + len + 1..])
}

/// The whole page.
fn page(study: &Study, figures: &[Figure]) -> String {
    let (title, lede) = title_and_lede(study);
    let mut body = String::new();
    let _ = write!(
        body,
        "<header><p class=\"kicker\">brandsim · {} report</p><h1>{}</h1><p class=\"lede\">{}</p></header>",
        text(study.kind.command()),
        text(&title),
        text(&lede)
    );
    if let Some(partial) = &study.partial {
        let _ = write!(
            body,
            "<div class=\"notice\" role=\"note\"><strong>Partial report.</strong> {}</div>",
            code_spans(partial)
        );
    }
    if let Some(results) = &study.results {
        body.push_str(&section(
            "results",
            "Headline results",
            &results_section(study, results),
        ));
    }
    if !figures.is_empty() {
        let mut html = String::new();
        for figure in figures {
            let _ = write!(
                html,
                "<figure id=\"plot-{}\"><div class=\"plot-frame\">{}</div><figcaption>{} <span class=\"file\">{}</span></figcaption></figure>",
                attr(&figure.name),
                figure.markup,
                text(&figure.caption),
                text(&figure.name)
            );
        }
        body.push_str(&section("plots", "Plots", &html));
    }
    body.push_str(&section(
        "scenario",
        "The scenario in brief",
        &scenario_section(study),
    ));
    let entries = calendar_entries(&study.scenario);
    if !entries.is_empty() {
        body.push_str(&section(
            "calendar",
            "Campaign calendar",
            &calendar_section(&study.scenario, &entries),
        ));
    }
    body.push_str(&section(
        "uncertain",
        "Held uncertain",
        &uncertain_section(&study.scenario),
    ));
    body.push_str(&section(
        "how",
        "How the study was run",
        &how_section(study),
    ));
    let now = utc_text(SystemTime::now()).unwrap_or_else(|| "an unknown time".to_string());
    let _ = write!(
        body,
        "<footer>Built by brandsim {} at {now} from the files of <code>{}</code>. This page is self-contained: it loads nothing from anywhere.</footer>",
        env!("CARGO_PKG_VERSION"),
        text(&study.dir.display().to_string())
    );
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>{body}</main>\n</body>\n</html>\n",
        text(&title)
    )
}

/// The page's styles: a readable column on screens, full width on phones, and
/// A4 pages in print (no figure or table row split across pages).
const STYLE: &str = r#"
:root { color-scheme: light; --ink: #1b1f24; --muted: #57606a; --rule: #d0d7de; --accent: #1f5f99; --soft: #f3f6f9; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink); background: #fff; line-height: 1.45; }
main { max-width: 980px; margin: 0 auto; padding: 1.5rem 1.25rem 3rem; }
header { border-bottom: 3px solid var(--accent); margin-bottom: 1.25rem; }
.kicker { margin: 0; color: var(--accent); font-weight: 600; text-transform: uppercase; letter-spacing: .06em; font-size: .8rem; }
h1 { font-size: 1.7rem; margin: .2rem 0 .4rem; overflow-wrap: anywhere; }
h2 { font-size: 1.25rem; margin: 2rem 0 .6rem; padding-bottom: .2rem; border-bottom: 1px solid var(--rule); }
h3 { font-size: 1rem; margin: 1.2rem 0 .4rem; }
.lede { color: var(--muted); margin: 0 0 .9rem; }
.notice { background: #fff4d6; border: 1px solid #e3b341; border-radius: 6px; padding: .75rem 1rem; margin: 1rem 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: .75rem; margin: .5rem 0 1rem; }
.card { background: var(--soft); border: 1px solid var(--rule); border-radius: 8px; padding: .6rem .8rem; }
.card .label { color: var(--muted); font-size: .85rem; }
.card .value { font-size: 1.35rem; font-weight: 650; font-variant-numeric: tabular-nums; }
.card .ci { color: var(--muted); font-size: .85rem; font-variant-numeric: tabular-nums; }
.table-wrap { overflow-x: auto; margin: .4rem 0 1rem;
  /* Shadows at an edge that hides more of the table: a hint to scroll. */
  background: linear-gradient(to right, #fff 30%, rgba(255,255,255,0)), linear-gradient(to left, #fff 30%, rgba(255,255,255,0)) 100% 0,
    radial-gradient(farthest-side at 0 50%, rgba(0,0,0,.18), rgba(0,0,0,0)), radial-gradient(farthest-side at 100% 50%, rgba(0,0,0,.18), rgba(0,0,0,0)) 100% 0;
  background-repeat: no-repeat; background-size: 40px 100%, 40px 100%, 14px 100%, 14px 100%; background-attachment: local, local, scroll, scroll; }
table { border-collapse: collapse; width: 100%; font-size: .92rem; }
th, td { text-align: left; padding: .35rem .55rem; border-bottom: 1px solid var(--rule); vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.ci-line { display: block; color: var(--muted); font-size: .88em; }
tr.base td { font-style: italic; }
code, .file { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .88em; overflow-wrap: anywhere; }
.file { color: var(--muted); }
figure { margin: 1rem 0 1.5rem; }
.plot-frame { overflow-x: auto; border: 1px solid var(--rule); border-radius: 6px; background: #fff; }
svg.plot, img.plot { display: block; width: 100%; height: auto; }
svg.calendar { min-width: 640px; }
figcaption { color: var(--muted); font-size: .88rem; margin-top: .35rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: .4rem 0 1rem; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
footer { margin-top: 2.5rem; padding-top: .6rem; border-top: 1px solid var(--rule); color: var(--muted); font-size: .82rem; }
@media (max-width: 600px) {
  main { padding: 1rem .75rem 2rem; }
  h1 { font-size: 1.35rem; }
  table { font-size: .85rem; }
  th, td { padding: .3rem .4rem; }
  dl.facts { grid-template-columns: 1fr; gap: 0; }
  dl.facts dd { margin-bottom: .4rem; }
  .wide-only { display: none; }
  table.stack thead { display: none; }
  table.stack tr { display: block; padding: .4rem 0; border-bottom: 1px solid var(--rule); }
  table.stack td { display: block; border: none; padding: .1rem 0; text-align: left; white-space: normal; }
  table.stack td[data-label]::before { content: attr(data-label) ": "; color: var(--muted); font-family: system-ui, sans-serif; }
  .card .value { font-size: 1.15rem; }
}
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { font-size: 10pt; }
  main { max-width: none; padding: 0; }
  h2 { break-after: avoid; }
  figure, .card, tr, dl.facts { break-inside: avoid; }
  .plot-frame, .table-wrap { overflow: visible; border: none; }
  svg.plot, img.plot { max-height: 120mm; }
  svg.calendar { min-width: 0; }
  thead { display: table-header-group; }
  table { font-size: 8.5pt; }
  th, td { padding: .25rem .35rem; }
  td.num, th.num { white-space: normal; }
  .notice, th, .card { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"#;

fn section(id: &str, title: &str, html: &str) -> String {
    format!(
        "<section id=\"{id}\"><h2>{}</h2>{html}</section>",
        text(title)
    )
}

/// Text with `backquoted` spans set as code, escaped.
fn code_spans(message: &str) -> String {
    message
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{}</code>", text(part))
            } else {
                text(part).into_owned()
            }
        })
        .collect()
}

/// A value of the scenario by key path (`market.population`).
fn scenario_value<'a>(scenario: &'a toml::Table, path: &str) -> Option<&'a toml::Value> {
    let mut parts = path.split('.');
    let mut value = scenario.get(parts.next()?)?;
    for part in parts {
        value = value.get(part)?;
    }
    Some(value)
}

fn scenario_name(study: &Study) -> String {
    study
        .scenario
        .get("name")
        .and_then(toml::Value::as_str)
        .map(str::to_string)
        .or_else(|| study.whatif.as_ref().map(|w| w.scenario.clone()))
        .or_else(|| study.meta.as_ref().map(|m| m.scenario.clone()))
        .or_else(|| {
            study
                .results
                .as_ref()
                .and_then(|r| r.get("scenario"))
                .and_then(Json::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "study".to_string())
}

fn json_f64(value: &Json, path: &[&str]) -> Option<f64> {
    let mut value = value;
    for key in path {
        value = value.get(key)?;
    }
    value.as_f64()
}

fn json_ci(value: &Json) -> Option<[f64; 2]> {
    let ci = value.get("ci95")?.as_array()?;
    Some([ci.first()?.as_f64()?, ci.get(1)?.as_f64()?])
}

fn ci_text(ci: Option<[f64; 2]>) -> String {
    ci.map_or_else(
        || "—".to_string(),
        |[lo, hi]| format!("[{}, {}]", number(lo), number(hi)),
    )
}

fn num_text(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_string(), number)
}

/// The title and the sentence under it.
fn title_and_lede(study: &Study) -> (String, String) {
    let name = scenario_name(study);
    let replications = study
        .whatif
        .as_ref()
        .map(|w| u64::from(w.replications))
        .or_else(|| study.meta.as_ref().map(|m| u64::from(m.replications)))
        .or_else(|| {
            study
                .results
                .as_ref()
                .and_then(|r| r.get("replications"))
                .and_then(Json::as_u64)
        })
        .or_else(|| {
            scenario_value(&study.scenario, "simulation.replications")
                .and_then(toml::Value::as_integer)
                .and_then(|r| u64::try_from(r).ok())
        });
    let population = scenario_value(&study.scenario, "market.population")
        .and_then(toml::Value::as_integer)
        .map_or_else(|| "?".to_string(), |p| p.to_string());
    let days = scenario_value(&study.scenario, "simulation.days")
        .and_then(toml::Value::as_integer)
        .map_or_else(|| "?".to_string(), |d| d.to_string());
    let seed = scenario_value(&study.scenario, "simulation.seed")
        .map(|s| scalar_text(Some(s)))
        .unwrap_or_else(|| "?".to_string());
    let reps = replications.map_or_else(|| "?".to_string(), |r| r.to_string());
    let market = format!("{population} users over {days} days");
    match study.kind {
        StudyKind::Run => (
            format!("{name}: Monte Carlo study"),
            format!(
                "{reps} replications of {market}, seed {seed}. Means over replications with 95% confidence intervals (Student's t)."
            ),
        ),
        StudyKind::Sweep => {
            let keys = match study.whatif.as_ref().map(|w| &w.study) {
                Some(WhatIf::Sweep { vary, .. }) => vary
                    .iter()
                    .map(|v| v.split_once('=').map_or(v.as_str(), |(k, _)| k))
                    .collect::<Vec<_>>()
                    .join(" × "),
                _ => "?".to_string(),
            };
            let points = study.whatif.as_ref().map_or(0, |w| w.points);
            (
                format!("{name}: sweep of {keys}"),
                format!(
                    "{points} grid points of {market}, each on replications 0..{} of seed {seed} (common random numbers).",
                    replications
                        .map_or_else(|| "R−1".to_string(), |r| r.saturating_sub(1).to_string())
                ),
            )
        }
        StudyKind::Compare => {
            let (arms, metric) = match study.whatif.as_ref().map(|w| &w.study) {
                Some(WhatIf::Compare { arms, metric }) => (arms.len(), metric.clone()),
                _ => (0, "?".to_string()),
            };
            (
                format!("{name}: comparison of {arms} arms"),
                format!(
                    "{market}; every arm on the same {reps} replications of seed {seed} (common random numbers), ranked by {metric}: paired differences from the base with 95% confidence intervals."
                ),
            )
        }
        StudyKind::Sensitivity => {
            let (method, keys) = match study.whatif.as_ref().map(|w| &w.study) {
                Some(WhatIf::Sensitivity { method, params, .. }) => (
                    method.clone(),
                    params
                        .iter()
                        .map(|p| p.split_once('=').map_or(p.as_str(), |(k, _)| k))
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                _ => ("?".to_string(), "?".to_string()),
            };
            let points = study.whatif.as_ref().map_or(0, |w| w.points);
            (
                format!("{name}: {method} sensitivity of {keys}"),
                format!(
                    "{points} design points of {market}, each on replications 0..{} of seed {seed} (common random numbers).",
                    replications
                        .map_or_else(|| "R−1".to_string(), |r| r.saturating_sub(1).to_string())
                ),
            )
        }
        StudyKind::Optimize => {
            let results = study.results.as_ref();
            let objective = results
                .and_then(|r| r.get("objective"))
                .and_then(Json::as_str)
                .unwrap_or("?");
            let estimator = results
                .and_then(|r| r.get("estimator"))
                .and_then(Json::as_str)
                .unwrap_or("?");
            let iterations = results
                .and_then(|r| r.get("iterations"))
                .map_or_else(|| "?".to_string(), Json::to_string);
            (
                format!("{name}: tuning for {objective}"),
                format!(
                    "{market}; {iterations} {estimator} gradient steps from seed {seed}, the answer confirmed on fresh replications."
                ),
            )
        }
        StudyKind::Calibrate => {
            let results = study.results.as_ref();
            let values = results
                .and_then(|r| r.get("keys"))
                .and_then(Json::as_array)
                .map_or(0, Vec::len);
            let series = results
                .and_then(|r| r.get("fit"))
                .and_then(Json::as_array)
                .map_or(0, Vec::len);
            let cells = results
                .and_then(|r| r.get("cells"))
                .map_or_else(|| "?".to_string(), Json::to_string);
            let data = results
                .and_then(|r| r.get("data"))
                .and_then(Json::as_str)
                .unwrap_or("the observed data");
            let per_evaluation = results
                .and_then(|r| r.get("replications_per_evaluation"))
                .map_or(reps, Json::to_string);
            (
                format!(
                    "{name}: calibration of {values} value{} to observed data",
                    if values == 1 { "" } else { "s" }
                ),
                format!(
                    "{market}, fitted to {series} daily series ({cells} observed cells) of {data} by simulated moments; every evaluation on replications 0..{} of seed {seed} (common random numbers). Estimates with standard errors and 95% intervals.",
                    per_evaluation
                        .parse::<u64>()
                        .map_or_else(|_| "R−1".to_string(), |r| r.saturating_sub(1).to_string())
                ),
            )
        }
    }
}

/// The headline of each kind of study.
fn results_section(study: &Study, results: &Json) -> String {
    match study.kind {
        StudyKind::Run => run_results(results),
        StudyKind::Sweep => sweep_results(study, results),
        StudyKind::Compare => compare_results(results),
        StudyKind::Optimize => optimize_results(results),
        StudyKind::Sensitivity => sensitivity_results(results),
        StudyKind::Calibrate => calibrate_results(results),
    }
}

/// Every metric name of a `metrics` object: the headline ones, then the
/// model's order, then any others.
fn ordered_metrics(metrics: &serde_json::Map<String, Json>) -> Vec<String> {
    let mut kept = std::collections::HashSet::new();
    HEADLINE_METRICS
        .iter()
        .chain(METRIC_NAMES)
        .map(|m| m.to_string())
        .filter(|m| metrics.contains_key(m))
        .chain(metrics.keys().cloned())
        .filter(|m| kept.insert(m.clone()))
        .collect()
}

fn cards(metrics: &Json, field: &[&str], label_suffix: &str) -> String {
    let mut html = String::from("<div class=\"cards\">");
    for metric in HEADLINE_METRICS {
        let Some(value) = field
            .iter()
            .try_fold(metrics.get(metric), |v, key| v.map(|v| v.get(*key)))
            .flatten()
        else {
            continue;
        };
        let _ = write!(
            html,
            "<div class=\"card\"><div class=\"label\">{}{}</div><div class=\"value\">{}</div><div class=\"ci\">95% CI {}</div></div>",
            text(&metric.replace('_', " ")),
            text(label_suffix),
            num_text(value.get("mean").and_then(Json::as_f64)),
            ci_text(json_ci(value))
        );
    }
    html.push_str("</div>");
    html
}

fn run_results(summary: &Json) -> String {
    let Some(metrics) = summary.get("metrics").and_then(Json::as_object) else {
        return "<p>summary.json holds no metrics.</p>".to_string();
    };
    let mut html = cards(&summary["metrics"], &[], "");
    if let Some(precision) = summary.get("precision") {
        let reached = precision.get("reached").and_then(Json::as_bool) == Some(true);
        let _ = write!(
            html,
            "<p>Adaptive precision: {} after {} replications in {} batches (target: 95% CI half-width below {} × |mean|, at most {} replications).</p>",
            if reached {
                "reached"
            } else {
                "<strong>not reached</strong>"
            },
            num_text(json_f64(precision, &["replications"])),
            num_text(json_f64(precision, &["batches"])),
            num_text(json_f64(precision, &["relative"])),
            num_text(json_f64(precision, &["max_replications"]))
        );
    }
    html.push_str("<div class=\"table-wrap\"><table><thead><tr><th>metric</th><th class=\"num\">mean<span class=\"ci-line\">95% CI of the mean</span></th><th class=\"num\">5–95% of replications</th><th class=\"num wide-only\">sd</th></tr></thead><tbody>");
    for name in ordered_metrics(metrics) {
        let m = &metrics[&name];
        let range = match (json_f64(m, &["p05"]), json_f64(m, &["p95"])) {
            (Some(lo), Some(hi)) => ci_text(Some([lo, hi])),
            _ => "—".to_string(),
        };
        let _ = write!(
            html,
            "<tr><td>{}</td><td class=\"num\">{}<span class=\"ci-line\">{}</span></td><td class=\"num\">{range}</td><td class=\"num wide-only\">{}</td></tr>",
            text(&name),
            num_text(json_f64(m, &["mean"])),
            ci_text(json_ci(m)),
            num_text(json_f64(m, &["sd"]))
        );
    }
    html.push_str("</tbody></table></div>");
    html
}

fn sweep_results(study: &Study, sweep: &Json) -> String {
    let keys: Vec<String> = sweep
        .get("axes")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| a.get("key").and_then(Json::as_str).map(str::to_string))
        .collect();
    let mut metrics: Vec<String> = match study.whatif.as_ref().map(|w| &w.study) {
        Some(WhatIf::Sweep { metrics, .. }) => metrics.clone(),
        _ => Vec::new(),
    };
    if metrics.is_empty() {
        metrics = HEADLINE_METRICS.iter().map(|m| m.to_string()).collect();
    }
    let points = sweep
        .get("points")
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default();
    let mut html = String::from(
        "<p>Each cell: the mean over replications, and its 95% confidence interval below it.</p><div class=\"table-wrap\"><table><thead><tr>",
    );
    for key in &keys {
        let _ = write!(html, "<th class=\"num\"><code>{}</code></th>", text(key));
    }
    for metric in &metrics {
        let _ = write!(html, "<th class=\"num\">{}</th>", text(metric));
    }
    html.push_str("</tr></thead><tbody>");
    for point in &points {
        html.push_str("<tr>");
        for key in &keys {
            let _ = write!(
                html,
                "<td class=\"num\">{}</td>",
                num_text(json_f64(point, &["values", key]))
            );
        }
        for metric in &metrics {
            let m = point.get("metrics").and_then(|m| m.get(metric));
            let _ = write!(
                html,
                "<td class=\"num\">{}<span class=\"ci-line\">{}</span></td>",
                num_text(m.and_then(|m| json_f64(m, &["mean"]))),
                ci_text(m.and_then(json_ci))
            );
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table></div>");
    html
}

/// The indices of `sensitivity.json`: per metric, one row per key, Morris
/// `μ*`, `μ`, `σ` or Sobol first- and total-order indices with their intervals.
fn sensitivity_results(sensitivity: &Json) -> String {
    let sobol = sensitivity.get("method").and_then(Json::as_str) == Some("sobol");
    let Some(metrics) = sensitivity.get("metrics").and_then(Json::as_object) else {
        return "<p>sensitivity.json holds no metrics.</p>".to_string();
    };
    let mut html = String::from(if sobol {
        "<p>Sobol indices: the share of the variance of the metric's mean due to each key alone (first order) and with its interactions (total order), with bootstrap 95% intervals.</p>"
    } else {
        "<p>Morris screening: μ* is the mean absolute elementary effect of each key over its range (bootstrap 95% interval), μ its signed mean, σ their spread (interactions or nonlinearity).</p>"
    });
    for (metric, entries) in metrics {
        let _ = write!(
            html,
            "<h3>{}</h3><div class=\"table-wrap\"><table><thead><tr><th>key</th><th class=\"num\">range</th>",
            text(metric)
        );
        if sobol {
            html.push_str("<th class=\"num\">first order<span class=\"ci-line\">95% interval</span></th><th class=\"num\">total order<span class=\"ci-line\">95% interval</span></th>");
        } else {
            html.push_str("<th class=\"num\">μ*<span class=\"ci-line\">95% interval</span></th><th class=\"num\">μ</th><th class=\"num\">σ</th>");
        }
        html.push_str("</tr></thead><tbody>");
        let interval = |entry: &Json, key: &str| {
            entry
                .get(key)
                .and_then(Json::as_array)
                .and_then(|a| Some([a.first()?.as_f64()?, a.get(1)?.as_f64()?]))
        };
        for entry in entries.as_array().into_iter().flatten() {
            let _ = write!(
                html,
                "<tr><td><code>{}</code></td><td class=\"num\">{}</td>",
                text(entry.get("key").and_then(Json::as_str).unwrap_or("?")),
                ci_text(
                    json_f64(entry, &["low"])
                        .zip(json_f64(entry, &["high"]))
                        .map(|(l, h)| [l, h])
                )
            );
            let cells: Vec<(&str, Option<&str>)> = if sobol {
                vec![
                    ("first_order", Some("first_order_ci95")),
                    ("total_order", Some("total_order_ci95")),
                ]
            } else {
                vec![
                    ("mu_star", Some("mu_star_ci95")),
                    ("mu", None),
                    ("sigma", None),
                ]
            };
            for (value, ci) in cells {
                let _ = write!(
                    html,
                    "<td class=\"num\">{}{}</td>",
                    num_text(json_f64(entry, &[value])),
                    ci.map_or_else(String::new, |ci| format!(
                        "<span class=\"ci-line\">{}</span>",
                        ci_text(interval(entry, ci))
                    ))
                );
            }
            html.push_str("</tr>");
        }
        html.push_str("</tbody></table></div>");
    }
    html
}

fn compare_results(compare: &Json) -> String {
    let metric = compare
        .get("ranking_metric")
        .and_then(Json::as_str)
        .unwrap_or("profit");
    let base = compare.get("base").and_then(Json::as_str).unwrap_or("");
    let arms: Vec<&Json> = compare
        .get("arms")
        .and_then(Json::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let arm = |name: &str| {
        arms.iter()
            .find(|a| a.get("name").and_then(Json::as_str) == Some(name))
            .copied()
    };
    let ranking: Vec<String> = compare
        .get("ranking")
        .and_then(Json::as_array)
        .map(|r| {
            r.iter()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_else(|| {
            arms.iter()
                .filter_map(|a| a.get("name").and_then(Json::as_str).map(str::to_string))
                .collect()
        });
    let mut html = format!(
        "<h3>Ranking by {}</h3><div class=\"table-wrap\"><table><thead><tr><th class=\"num\">rank</th><th>arm</th><th class=\"num\">difference from base<span class=\"ci-line\">95% CI</span></th><th class=\"num\">mean<span class=\"ci-line\">95% CI</span></th><th class=\"num wide-only\">paired SE</th><th class=\"num wide-only\">unpaired SE</th><th class=\"num wide-only\">SE ratio</th></tr></thead><tbody>",
        text(metric)
    );
    for (rank, name) in ranking.iter().enumerate() {
        let m = arm(name)
            .and_then(|a| a.get("metrics"))
            .and_then(|m| m.get(metric));
        let summary = m.and_then(|m| m.get("summary"));
        let diff = m.and_then(|m| m.get("paired_difference"));
        let is_base = name == base;
        let (paired, unpaired) = (
            diff.and_then(|d| json_f64(d, &["se_paired"])),
            diff.and_then(|d| json_f64(d, &["se_unpaired"])),
        );
        let ratio = match (paired, unpaired) {
            (Some(p), Some(u)) if p > 0.0 => format!("{:.1}×", u / p),
            _ => "—".to_string(),
        };
        let _ = write!(
            html,
            "<tr{}><td class=\"num\">{}</td><td>{}</td>",
            if is_base { " class=\"base\"" } else { "" },
            rank + 1,
            text(name),
        );
        if is_base {
            html.push_str("<td class=\"num\">(base)</td>");
        } else {
            let _ = write!(
                html,
                "<td class=\"num\"><strong>{}</strong><span class=\"ci-line\">{}</span></td>",
                num_text(diff.and_then(|d| json_f64(d, &["mean"]))),
                ci_text(diff.and_then(json_ci)),
            );
        }
        let _ = write!(
            html,
            "<td class=\"num\">{}<span class=\"ci-line\">{}</span></td>",
            num_text(summary.and_then(|s| json_f64(s, &["mean"]))),
            ci_text(summary.and_then(json_ci))
        );
        if is_base {
            html.push_str("<td class=\"wide-only\"></td><td class=\"wide-only\"></td><td class=\"wide-only\"></td></tr>");
        } else {
            let _ = write!(
                html,
                "<td class=\"num wide-only\">{}</td><td class=\"num wide-only\">{}</td><td class=\"num wide-only\">{ratio}</td></tr>",
                num_text(paired),
                num_text(unpaired)
            );
        }
    }
    html.push_str("</tbody></table></div>");
    let others: Vec<&str> = HEADLINE_METRICS
        .iter()
        .copied()
        .filter(|m| *m != metric)
        .collect();
    let _ = write!(
        html,
        "<h3>Other metrics: paired difference from the base ({})</h3><div class=\"table-wrap\"><table><thead><tr><th>arm</th>",
        text(base)
    );
    for m in &others {
        let _ = write!(html, "<th class=\"num\">{}</th>", text(m));
    }
    html.push_str("</tr></thead><tbody>");
    for name in ranking.iter().filter(|n| *n != base) {
        let _ = write!(html, "<tr><td>{}</td>", text(name));
        for m in &others {
            let diff = arm(name)
                .and_then(|a| a.get("metrics"))
                .and_then(|x| x.get(*m))
                .and_then(|x| x.get("paired_difference"));
            let _ = write!(
                html,
                "<td class=\"num\">{}<span class=\"ci-line\">{}</span></td>",
                num_text(diff.and_then(|d| json_f64(d, &["mean"]))),
                ci_text(diff.and_then(json_ci))
            );
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table></div><p>Every metric of every arm is in <code>compare.csv</code> and <code>compare.json</code>.</p>");
    html
}

fn optimize_results(optimize: &Json) -> String {
    let objective = optimize
        .get("objective")
        .and_then(Json::as_str)
        .unwrap_or("objective");
    let confirmation = optimize.get("confirmation").cloned().unwrap_or(Json::Null);
    let mut html = String::from("<div class=\"cards\">");
    for (label, value) in [
        (
            format!("{objective} at the answer"),
            confirmation.get("objective"),
        ),
        ("J at the answer".to_string(), confirmation.get("j")),
    ] {
        if let Some(value) = value {
            let _ = write!(
                html,
                "<div class=\"card\"><div class=\"label\">{}</div><div class=\"value\">{}</div><div class=\"ci\">95% CI {}</div></div>",
                text(&label),
                num_text(json_f64(value, &["mean"])),
                ci_text(json_ci(value))
            );
        }
    }
    html.push_str("</div>");
    let _ = write!(
        html,
        "<p>Confirmed on {} fresh replications (from replication {}); J = E[{}] − (λ/2)·|θ|², penalty {}.</p>",
        num_text(json_f64(&confirmation, &["replications"])),
        num_text(json_f64(&confirmation, &["first_replication"])),
        text(objective),
        num_text(json_f64(&confirmation, &["penalty"]))
    );
    html.push_str("<div class=\"table-wrap\"><table><thead><tr><th>tuned value</th><th class=\"num\">start</th><th class=\"num\">answer</th><th class=\"num\">last iterate</th><th class=\"num\">bounds</th></tr></thead><tbody>");
    if let Some(parameters) = optimize.get("parameters").and_then(Json::as_object) {
        for (key, answer) in parameters {
            let bound = |i: usize| {
                optimize
                    .get("bounds")
                    .and_then(|b| b.get(key))
                    .and_then(|b| b.get(i))
                    .and_then(Json::as_f64)
                    .map_or_else(|| "∞".to_string(), number)
            };
            let _ = write!(
                html,
                "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\"><strong>{}</strong></td><td class=\"num\">{}</td><td class=\"num\">[{}, {}]</td></tr>",
                text(key),
                num_text(json_f64(optimize, &["start", key])),
                num_text(answer.as_f64()),
                num_text(json_f64(optimize, &["last_iterate", key])),
                bound(0).replace('∞', "−∞"),
                bound(1)
            );
        }
    }
    html.push_str("</tbody></table></div>");
    html
}

/// The headline of a calibration: each fitted value with its standard error and
/// interval (and bootstrap), what the series cannot tell apart, the correlations
/// of the estimates and the fit per series.
fn calibrate_results(calibration: &Json) -> String {
    let keys: Vec<String> = calibration
        .get("keys")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect();
    let parameters = calibration.get("parameters").cloned().unwrap_or(Json::Null);
    let bootstrapped = keys
        .iter()
        .any(|k| parameters.get(k).and_then(|p| p.get("bootstrap")).is_some());
    let mut html = String::from("<div class=\"cards\">");
    for key in &keys {
        let p = parameters.get(key).cloned().unwrap_or(Json::Null);
        let _ = write!(
            html,
            "<div class=\"card\"><div class=\"label\"><code>{}</code></div><div class=\"value\">{}</div><div class=\"ci\">95% interval {}</div></div>",
            text(key),
            num_text(json_f64(&p, &["estimate"])),
            ci_text(json_ci(&p))
        );
    }
    html.push_str("</div>");
    let _ = write!(
        html,
        "<div class=\"table-wrap\"><table><thead><tr><th>fitted value</th><th class=\"num\">start</th><th class=\"num\">estimate</th><th class=\"num\">se</th><th class=\"num\">95% interval</th><th class=\"num\">bounds</th>{}</tr></thead><tbody>",
        if bootstrapped {
            "<th class=\"num\">bootstrap sd</th><th class=\"num\">bootstrap 95%</th>"
        } else {
            ""
        }
    );
    for key in &keys {
        let p = parameters.get(key).cloned().unwrap_or(Json::Null);
        let bound = |i: usize| {
            p.get("bounds")
                .and_then(|b| b.get(i))
                .and_then(Json::as_f64)
                .map_or_else(|| if i == 0 { "−∞" } else { "∞" }.to_string(), number)
        };
        let se = json_f64(&p, &["se"]);
        let interval = if se.is_some() {
            ci_text(json_ci(&p))
        } else {
            "n/a (not identifiable)".to_string()
        };
        let _ = write!(
            html,
            "<tr><td><code>{}</code></td><td class=\"num\">{}</td><td class=\"num\"><strong>{}</strong></td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">[{}, {}]</td>",
            text(key),
            num_text(json_f64(&p, &["start"])),
            num_text(json_f64(&p, &["estimate"])),
            num_text(se),
            text(&interval),
            bound(0),
            bound(1)
        );
        if bootstrapped {
            let boot = p.get("bootstrap").cloned().unwrap_or(Json::Null);
            let _ = write!(
                html,
                "<td class=\"num\">{}</td><td class=\"num\">{}</td>",
                num_text(json_f64(&boot, &["sd"])),
                ci_text(json_ci(&boot))
            );
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table></div>");
    html.push_str("<p>Standard errors from the simulated-moments sandwich (1 + 1/R)·A⁻¹BA⁻¹; intervals x ± 1.96·se cut to the bounds. The calibrated scenario is <code>scenario.toml</code> in this directory, ready for <code>run</code>, <code>compare</code>, <code>sweep</code> and <code>optimize</code>.</p>");
    let mut warnings = Vec::new();
    for key in calibration
        .get("inert")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
    {
        warnings.push(format!(
            "<code>{}</code> does not move the simulated series at the answer: it is not identifiable from these series.",
            text(key)
        ));
    }
    for pair in calibration
        .get("unidentified")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let key = |i: usize| {
            pair.get("keys")
                .and_then(|k| k.get(i))
                .and_then(Json::as_str)
                .unwrap_or("?")
                .to_string()
        };
        warnings.push(format!(
            "<code>{}</code> and <code>{}</code> are correlated {}: not identifiable from these series (they move them only together); fix one with <code>--set</code>, or observe a series that tells them apart.",
            text(&key(0)),
            text(&key(1)),
            num_text(json_f64(pair, &["correlation"]))
        ));
    }
    if !warnings.is_empty() {
        let _ = write!(
            html,
            "<div class=\"notice\" role=\"note\"><strong>Not identifiable.</strong> {}</div>",
            warnings.join(" ")
        );
    }
    if keys.len() > 1
        && let Some(rows) = calibration.get("correlation").and_then(Json::as_array)
    {
        html.push_str("<h3>Correlations of the estimates</h3><div class=\"table-wrap\"><table><thead><tr><th></th>");
        for key in &keys {
            let _ = write!(html, "<th class=\"num\"><code>{}</code></th>", text(key));
        }
        html.push_str("</tr></thead><tbody>");
        for (key, row) in keys.iter().zip(rows) {
            let _ = write!(html, "<tr><td><code>{}</code></td>", text(key));
            for cell in row.as_array().into_iter().flatten() {
                let _ = write!(html, "<td class=\"num\">{}</td>", num_text(cell.as_f64()));
            }
            html.push_str("</tr>");
        }
        html.push_str("</tbody></table></div>");
    }
    html.push_str("<h3>Fit at the answer</h3><div class=\"table-wrap\"><table><thead><tr><th>series</th><th class=\"num\">RMSE</th><th class=\"num\">observed days</th><th class=\"num\">observed mean</th></tr></thead><tbody>");
    for fit in calibration
        .get("fit")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let _ = write!(
            html,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            text(fit.get("series").and_then(Json::as_str).unwrap_or("?")),
            num_text(json_f64(fit, &["rmse"])),
            num_text(json_f64(fit, &["cells"])),
            num_text(json_f64(fit, &["observed_mean"]))
        );
    }
    html.push_str("</tbody></table></div>");
    let _ = write!(
        html,
        "<p>Objective Σ w·(observed − simulated mean)² = {} over {} observed cells (about the number of cells when the misfit is noise).</p>",
        num_text(json_f64(calibration, &["objective"])),
        num_text(json_f64(calibration, &["cells"]))
    );
    html
}

/// The scenario's market, segments, items, channels, brand and variants, read
/// generically from `scenario.toml`.
fn scenario_section(study: &Study) -> String {
    let scenario = &study.scenario;
    if scenario.is_empty() {
        return "<p>The directory holds no <code>scenario.toml</code>.</p>".to_string();
    }
    let mut facts = Vec::new();
    for (path, label) in [
        ("market.population", "population (users)"),
        ("simulation.days", "horizon (days)"),
        ("simulation.start_date", "first day"),
        ("market.word_of_mouth", "word of mouth q"),
        ("market.dormancy", "dormancy per day"),
        ("market.price_reference", "reference price"),
        ("brand.value", "brand value V"),
        ("brand.cost_per_day", "brand cost per day (κ)"),
        ("simulation.discount_rate", "discount rate (per year)"),
        ("market.network.model", "social network"),
        ("schedule.file", "schedule"),
    ] {
        if let Some(value) = scenario_value(scenario, path) {
            facts.push((label, scalar_text(Some(value)), path));
        }
    }
    let mut html = String::from("<dl class=\"facts\">");
    for (label, value, path) in facts {
        let _ = write!(
            html,
            "<dt>{}</dt><dd>{} <span class=\"file\">{}</span></dd>",
            text(label),
            text(&value),
            text(path)
        );
    }
    html.push_str("</dl>");
    let rows = |key: &str| -> Vec<&toml::Table> {
        let value = scenario_value(scenario, key);
        value
            .and_then(toml::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(toml::Value::as_table)
            .collect()
    };
    html.push_str(&toml_table(
        "Segments",
        &rows("market.segments"),
        &[
            ("name", "segment"),
            ("share", "share"),
            ("price_sensitivity", "price sensitivity"),
            ("click_heterogeneity", "click heterogeneity"),
            ("churn_alpha", "churn α"),
            ("churn_beta", "churn β"),
        ],
    ));
    html.push_str(&toml_table(
        "Items",
        &rows("content"),
        &[
            ("name", "item"),
            ("topic", "topic"),
            ("price", "price"),
            ("renewal_days", "billing"),
            ("click_rate", "click rate"),
            ("conversion_rate", "conversion rate"),
            ("quality", "quality"),
        ],
    ));
    html.push_str(&toml_table(
        "Channels",
        &rows("channels"),
        &[
            ("name", "channel"),
            ("daily_budget", "daily budget"),
            ("cpm", "cost per 1000 impressions"),
        ],
    ));
    let variants = rows("variants");
    if !variants.is_empty() {
        html.push_str("<h3>Variants</h3><div class=\"table-wrap\"><table class=\"stack\"><thead><tr><th>variant</th><th>sets</th></tr></thead><tbody>");
        for variant in variants {
            let mut sets = Vec::new();
            if let Some(toml::Value::Table(set)) = variant.get("set") {
                flatten_set("", set, &mut sets);
            }
            let _ = write!(
                html,
                "<tr><td>{}</td><td><code>{}</code></td></tr>",
                text(&scalar_text(variant.get("name"))),
                sets.iter()
                    .map(|s| text(s).into_owned())
                    .collect::<Vec<_>>()
                    .join("<br>")
            );
        }
        html.push_str("</tbody></table></div>");
    }
    if study.kind == StudyKind::Compare {
        html.push_str("<p>The base scenario is shown; each arm as run is in <code>arm-&lt;i&gt;.toml</code>.</p>");
    }
    if study.kind == StudyKind::Calibrate {
        html.push_str("<p>The calibrated scenario is shown: the scenario file with the fitted values in place of its guesses.</p>");
    }
    html.push_str("<p>The full resolved scenario is in <code>scenario.toml</code>.</p>");
    html
}

/// A table of the TOML tables `rows`, one column per `(key, header)` that any
/// row has.
fn toml_table(title: &str, rows: &[&toml::Table], columns: &[(&str, &str)]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let columns: Vec<_> = columns
        .iter()
        .filter(|(key, _)| rows.iter().any(|r| r.contains_key(*key)))
        .collect();
    let mut html = format!(
        "<h3>{}</h3><div class=\"table-wrap\"><table><thead><tr>",
        text(title)
    );
    for (key, header) in &columns {
        let class = if *key == "name" || *key == "topic" {
            ""
        } else {
            " class=\"num\""
        };
        let _ = write!(html, "<th{class}>{}</th>", text(header));
    }
    html.push_str("</tr></thead><tbody>");
    for row in rows {
        html.push_str("<tr>");
        for (key, _) in &columns {
            let class = if *key == "name" || *key == "topic" {
                ""
            } else {
                " class=\"num\""
            };
            let value = match (*key, row.get(*key)) {
                ("renewal_days", Some(toml::Value::Integer(0))) => "one-off".to_string(),
                ("renewal_days", Some(toml::Value::Integer(days))) => {
                    format!("renews every {days} days")
                }
                (_, value) => scalar_text(value),
            };
            let _ = write!(html, "<td{class}>{}</td>", text(&value));
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table></div>");
    html
}

fn calendar_section(scenario: &toml::Table, entries: &[CalendarEntry]) -> String {
    let mut html = String::new();
    if let Some(svg) = calendar_svg(scenario, entries) {
        let _ = write!(
            html,
            "<figure id=\"plot-calendar\"><div class=\"plot-frame\">{svg}</div><figcaption>Campaign windows (bars; an arrow where one runs past the horizon) and seeding days (diamonds).</figcaption></figure>"
        );
    }
    html.push_str("<div class=\"table-wrap\"><table class=\"stack\"><thead><tr><th>kind</th><th>name</th><th>when</th><th>what</th></tr></thead><tbody>");
    for entry in entries {
        let _ = write!(
            html,
            "<tr><td data-label=\"kind\">{}</td><td data-label=\"name\">{}</td><td data-label=\"when\">{}</td><td><code>{}</code></td></tr>",
            entry.kind,
            text(&entry.name),
            text(&entry.when),
            entry
                .what
                .iter()
                .map(|w| text(w).into_owned())
                .collect::<Vec<_>>()
                .join("<br>")
        );
    }
    html.push_str("</tbody></table></div>");
    html
}

/// The `[[uncertain]]` entries: key, distribution and its parameters.
fn uncertain_section(scenario: &toml::Table) -> String {
    let entries: Vec<&toml::Table> = scenario
        .get("uncertain")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(toml::Value::as_table)
        .collect();
    if entries.is_empty() {
        return "<p>Nothing: every replication runs at the scenario's values (no <code>[[uncertain]]</code> entries). The intervals reflect the randomness of the simulated market only.</p>".to_string();
    }
    let mut html = String::from(
        "<p>Each replication draws every key below once, before day 0, and runs at those values (MODEL.md, “Parameter uncertainty”), so the intervals above include what is not known about them. A comparison's arms and a sweep's points draw the same values in the same replication, unless they set the key themselves.</p><div class=\"table-wrap\"><table class=\"stack\"><thead><tr><th>key</th><th>distribution</th><th>parameters</th></tr></thead><tbody>",
    );
    for entry in entries {
        let parameters: Vec<String> = entry
            .iter()
            .filter(|(k, _)| *k != "key" && *k != "distribution")
            .map(|(k, v)| format!("{k} = {}", scalar_text(Some(v))))
            .collect();
        let _ = write!(
            html,
            "<tr><td><code>{}</code></td><td data-label=\"distribution\">{}</td><td data-label=\"parameters\">{}</td></tr>",
            text(&scalar_text(entry.get("key"))),
            text(&scalar_text(entry.get("distribution"))),
            text(&parameters.join(", "))
        );
    }
    html.push_str("</tbody></table></div>");
    html
}

/// Seed, replications, shard, versions, time and work.
fn how_section(study: &Study) -> String {
    let mut facts: Vec<(&str, String)> =
        vec![("command", format!("brandsim {}", study.kind.command()))];
    let seed = scenario_value(&study.scenario, "simulation.seed").map(|s| scalar_text(Some(s)));
    let results = study.results.as_ref();
    let mut version = None;
    let mut seconds = None;
    let mut threads = None;
    if let Some(whatif) = &study.whatif {
        facts.push(("seed", whatif.seed.to_string()));
        facts.push((
            "replications",
            format!(
                "{} per {}",
                whatif.replications,
                match whatif.study {
                    WhatIf::Sweep { .. } => "grid point",
                    WhatIf::Compare { .. } => "arm",
                    WhatIf::Sensitivity { .. } => "design point",
                }
            ),
        ));
        if !whatif.shard.is_whole() {
            facts.push(("shard", whatif.shard.to_string()));
        }
        match &whatif.study {
            WhatIf::Sweep { vary, metrics } => {
                facts.push(("--vary", vary.join("  ")));
                if !metrics.is_empty() {
                    facts.push(("--metric", metrics.join(", ")));
                }
            }
            WhatIf::Compare { metric, arms } => {
                facts.push(("arms", arms.join(", ")));
                facts.push(("--metric", metric.clone()));
            }
            WhatIf::Sensitivity {
                method,
                params,
                samples,
                metrics,
            } => {
                facts.push(("--method", method.clone()));
                facts.push(("--param", params.join("  ")));
                facts.push(("--samples", samples.to_string()));
                facts.push(("--metric", metrics.join(", ")));
            }
        }
        version = Some(whatif.brandsim_version.clone());
        let mut total = 0.0;
        let mut found = false;
        for i in 0..whatif.points {
            if let Ok(store) = StudyStore::open(&whatif.point_dir(&study.dir, i)) {
                total += store.meta().work.seconds;
                threads = Some(store.meta().work.threads);
                found = true;
            }
        }
        if found {
            seconds = Some(total);
        }
    } else if let Some(meta) = &study.meta {
        facts.push(("seed", meta.seed.to_string()));
        facts.push(("replications", meta.replications.to_string()));
        if !meta.shard.is_whole() {
            facts.push(("shard", meta.shard.to_string()));
        }
        facts.push(("scenario hash", meta.scenario_hash.clone()));
        version = Some(meta.brandsim_version.clone());
        seconds = Some(meta.work.seconds);
        threads = Some(meta.work.threads);
    } else if let Some(results) = results {
        if let Some(seed) = results.get("seed") {
            facts.push(("seed", seed.to_string()));
        }
        if study.kind == StudyKind::Optimize {
            for (key, label) in [
                ("estimator", "estimator"),
                ("iterations", "gradient steps"),
                ("replications_per_step", "replications per step"),
                ("learning_rate", "learning rate η"),
                ("regularization", "regularization λ"),
                ("perturbation", "perturbation c"),
                ("simulations", "replications simulated"),
            ] {
                if let Some(value) = results.get(key) {
                    facts.push((label, value.to_string().trim_matches('"').to_string()));
                }
            }
            seconds = json_f64(results, &["seconds"]);
        } else if study.kind == StudyKind::Calibrate {
            for (path, label) in [
                (&["data"][..], "observed data"),
                (
                    &["replications_per_evaluation"][..],
                    "replications per evaluation",
                ),
                (&["settings", "starts"][..], "Nelder–Mead starts"),
                (&["settings", "max_iterations"][..], "iterations per search"),
                (&["settings", "bootstrap"][..], "bootstrap refits"),
                (&["evaluations", "simulated"][..], "evaluations simulated"),
                (&["evaluations", "cached"][..], "points found in the cache"),
                (
                    &["evaluations", "from_journal"][..],
                    "evaluations replayed (--resume)",
                ),
            ] {
                if let Some(value) = path.iter().try_fold(results, |v, k| v.get(*k)) {
                    facts.push((label, value.to_string().trim_matches('"').to_string()));
                }
            }
            seconds = json_f64(results, &["seconds"]);
        } else {
            if let Some(r) = results.get("replications") {
                facts.push(("replications", r.to_string()));
            }
            seconds = json_f64(results, &["throughput", "seconds"]);
        }
        threads = json_f64(results, &["threads"])
            .or_else(|| json_f64(results, &["throughput", "threads"]))
            .map(|t| t as usize);
    } else if let Some(seed) = seed {
        facts.push(("seed", seed));
    }
    if let Some(user_days) = results.and_then(|r| {
        json_f64(r, &["user_days"]).or_else(|| json_f64(r, &["throughput", "user_days"]))
    }) {
        facts.push(("simulated user-days", format!("{user_days:.3e}")));
    }
    if let Some(seconds) = seconds {
        facts.push((
            "simulation time",
            format!(
                "{seconds:.2} s{}",
                threads.map_or(String::new(), |t| format!(" on {t} threads"))
            ),
        ));
    }
    facts.push((
        "brandsim version",
        version.unwrap_or_else(|| {
            format!(
                "{} (of this report; the study does not record it)",
                env!("CARGO_PKG_VERSION")
            )
        }),
    ));
    let finished_file = if study.partial.is_none() {
        study.kind.result_file()
    } else if study.whatif.is_some() {
        WHATIF_FILE
    } else {
        META_FILE
    };
    let modified = std::fs::metadata(study.dir.join(finished_file)).and_then(|m| m.modified());
    if let Some(written) = modified.ok().and_then(utc_text) {
        facts.push((
            "results written",
            format!("{written} (UTC, {finished_file})"),
        ));
    }
    facts.push(("directory", study.dir.display().to_string()));
    let mut html = String::from("<dl class=\"facts\">");
    for (label, value) in facts {
        let _ = write!(html, "<dt>{}</dt><dd>{}</dd>", text(label), text(&value));
    }
    html.push_str("</dl>");
    if let Some(command) = rerun_command(study) {
        let _ = write!(
            html,
            "<p>The same results again (the resolved scenario holds the seed and the replications): <code>{}</code></p>",
            text(&command)
        );
    }
    html.push_str("<p>Replication <var>j</var> depends only on the seed and <var>j</var>: results are the same on any machine and number of threads.</p>");
    html
}

/// The command line that reruns the study from its directory, where the
/// directory holds all that it takes.
fn rerun_command(study: &Study) -> Option<String> {
    if study.partial.is_some() {
        return None;
    }
    let scenario = format!("{}/{SCENARIO_FILE}", study.dir.display());
    match (&study.kind, study.whatif.as_ref().map(|w| &w.study)) {
        (StudyKind::Run, _) if study.results.as_ref()?.get("precision").is_none() => {
            Some(format!("brandsim run {scenario} --out NEW_DIR"))
        }
        (StudyKind::Sweep, Some(WhatIf::Sweep { vary, metrics })) => {
            let mut command = format!("brandsim sweep {scenario}");
            for v in vary {
                command.push_str(&format!(" --vary {v}"));
            }
            for m in metrics {
                command.push_str(&format!(" --metric {m}"));
            }
            command.push_str(" --out NEW_DIR");
            Some(command)
        }
        (
            StudyKind::Sensitivity,
            Some(WhatIf::Sensitivity {
                method,
                params,
                samples,
                metrics,
            }),
        ) => {
            let mut command = format!("brandsim sensitivity {scenario}");
            for p in params {
                command.push_str(&format!(" --param {p}"));
            }
            command.push_str(&format!(" --method {method} --samples {samples}"));
            for m in metrics {
                command.push_str(&format!(" --metric {m}"));
            }
            command.push_str(" --out NEW_DIR");
            Some(command)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_svg_scales_to_the_page_by_its_view_box() {
        let svg = r#"<?xml version="1.0"?><svg width="900" height="540" viewBox="0 0 900 540" xmlns="http://www.w3.org/2000/svg"><rect/></svg>"#;
        let inlined = inline_svg(svg, "a <b> plot").unwrap();
        assert!(
            inlined.starts_with(
                r#"<svg viewBox="0 0 900 540" xmlns="http://www.w3.org/2000/svg" class="plot""#
            ),
            "{inlined}"
        );
        assert!(
            inlined.contains(r#"aria-label="a &lt;b&gt; plot""#),
            "{inlined}"
        );
        assert!(inlined.ends_with("<rect/></svg>"));
        assert!(inline_svg("<svg><script>alert(1)</script></svg>", "x").is_none());
        assert!(inline_svg("no image", "x").is_none());
    }

    #[test]
    fn captions_name_what_each_plot_shows() {
        assert_eq!(
            caption("fan-active_payers.svg"),
            "active payers by day: mean over replications and the 5–95% band"
        );
        assert!(caption("compare-profit.svg").starts_with("profit: each arm's paired difference"));
        assert_eq!(caption("other.png"), "other");
    }

    #[test]
    fn code_spans_are_escaped() {
        assert_eq!(
            code_spans("merge with `a <b>` & go"),
            "merge with <code>a &lt;b&gt;</code> &amp; go"
        );
    }

    #[test]
    fn uncertain_entries_are_listed_with_their_parameters() {
        let scenario: toml::Table = r#"
            [[uncertain]]
            key = "market.word_of_mouth"
            distribution = "normal"
            mean = 0.3
            sd = 0.05
        "#
        .parse()
        .unwrap();
        let html = uncertain_section(&scenario);
        assert!(html.contains("<code>market.word_of_mouth</code>"), "{html}");
        assert!(
            html.contains(">normal</td><td data-label=\"parameters\">mean = 0.3, sd = 0.05</td>"),
            "{html}"
        );
        assert!(uncertain_section(&toml::Table::new()).contains("Nothing"));
    }

    #[test]
    fn every_metric_is_listed_once_headline_first() {
        let metrics: serde_json::Map<String, Json> = ["clicks", "profit", "npv", "revenue"]
            .iter()
            .map(|m| (m.to_string(), Json::Null))
            .collect();
        assert_eq!(
            ordered_metrics(&metrics),
            ["profit", "revenue", "clicks", "npv"]
        );
    }

    #[test]
    fn a_directory_without_a_study_is_refused_naming_it() {
        let dir =
            std::env::temp_dir().join(format!("brandsim-report-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let error = build_report(&dir).unwrap_err().to_string();
        assert!(
            error.contains(&dir.display().to_string()) && error.contains("holds no brandsim study"),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! Every plot of brandsim (plotters, SVG; PNG by rasterising the SVG with resvg):
//! fan charts of the daily series for `run`, metric-vs-parameter lines and heat
//! maps for `sweep`, bars of paired differences for `compare`, the social
//! network's degree distribution.

use std::sync::{Arc, OnceLock};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::outcome::Outcome;
use crate::stats::quantile;

/// The file format of plots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PlotFormat {
    #[default]
    Svg,
    Png,
}

impl PlotFormat {
    pub fn extension(self) -> &'static str {
        match self {
            PlotFormat::Svg => "svg",
            PlotFormat::Png => "png",
        }
    }
}

/// A plot that could not be drawn or encoded.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw the plot {name}: {message}")]
pub struct PlotError {
    pub name: String,
    pub message: String,
}

/// One plot, drawn and encoded: its file name and bytes.
pub struct PlotFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

const SIZE: (u32, u32) = (900, 540);
const BAND: RGBColor = RGBColor(70, 130, 180);
const MEAN: RGBColor = RGBColor(20, 60, 120);
const FONT: &str = "sans-serif";

/// Draws with `draw` on an SVG canvas and encodes it as `format`; `stem` names the file.
fn render(
    stem: &str,
    format: PlotFormat,
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), String>,
) -> Result<PlotFile, PlotError> {
    render_sized(stem, format, SIZE, draw)
}

/// [`render`] on a canvas of `size` pixels.
fn render_sized(
    stem: &str,
    format: PlotFormat,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), String>,
) -> Result<PlotFile, PlotError> {
    let name = format!("{stem}.{}", format.extension());
    let error = |message: String| PlotError {
        name: name.clone(),
        message,
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| error(e.to_string()))?;
        draw(&root).map_err(error)?;
        root.present().map_err(|e| error(e.to_string()))?;
    }
    let bytes = match format {
        PlotFormat::Svg => svg.into_bytes(),
        PlotFormat::Png => svg_to_png(&svg).map_err(error)?,
    };
    Ok(PlotFile { name, bytes })
}

fn text_error(error: impl std::fmt::Display) -> String {
    error.to_string()
}

/// The system fonts, loaded once, with `sans-serif` mapped to one that exists.
fn font_database() -> Arc<resvg::usvg::fontdb::Database> {
    static FONTS: OnceLock<Arc<resvg::usvg::fontdb::Database>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            let mut fonts = resvg::usvg::fontdb::Database::new();
            fonts.load_system_fonts();
            let families: Vec<String> = fonts
                .faces()
                .flat_map(|face| face.families.iter().map(|(name, _)| name.clone()))
                .collect();
            let preferred = ["DejaVu Sans", "Liberation Sans", "Noto Sans", "FreeSans"];
            let chosen = preferred
                .iter()
                .find(|p| families.iter().any(|f| f == *p))
                .map(|p| p.to_string())
                .or_else(|| families.first().cloned());
            match chosen {
                Some(family) => fonts.set_sans_serif_family(family),
                None => eprintln!(
                    "warning: no system fonts found; PNG plots are drawn without text (SVG plots keep it)"
                ),
            }
            Arc::new(fonts)
        })
        .clone()
}

/// Rasterises an SVG document to PNG at its own size.
fn svg_to_png(svg: &str) -> Result<Vec<u8>, String> {
    use resvg::{tiny_skia, usvg};
    let options = usvg::Options {
        fontdb: font_database(),
        font_family: FONT.to_string(),
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(svg, &options).map_err(text_error)?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| "the plot has no area".to_string())?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(text_error)
}

/// The unit of a metric or daily series, for axis labels.
pub fn unit(metric: &str) -> &'static str {
    match metric {
        "revenue" | "spend" | "profit" | "npv" | "cumulative_profit" => "currency",
        "exposures" | "clicks" => "events",
        "registrations" | "conversions" | "renewals" => "events",
        "churned" | "dormant" | "aware" | "active_payers" => "users",
        "satisfaction" => "score, 0-1",
        _ => "share, 0-1",
    }
}

/// `lo..hi` widened a little (and made non-empty) so that lines do not touch the frame.
fn padded(lo: f64, hi: f64) -> std::ops::Range<f64> {
    let (lo, hi) = if lo.is_finite() && hi.is_finite() {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    let span = hi - lo;
    let pad = if span > 0.0 {
        span * 0.06
    } else {
        lo.abs().max(1.0) * 0.1
    };
    (lo - pad)..(hi + pad)
}

/// The series labels of a chart, upper left on a white box.
fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> Result<(), String> {
    draw_legend_at(chart, SeriesLabelPosition::UpperLeft)
}

/// The legend of `chart` at `position`, on a white, framed background.
fn draw_legend_at<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(position)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(text_error)
}

/// A 95% CI as an error bar at `x`: a vertical line from `ci95[0]` to `ci95[1]`,
/// capped at both ends by a bar `cap` wide on either side.
fn error_bar(x: f64, cap: f64, ci95: [f64; 2], style: ShapeStyle) -> PathElement<(f64, f64)> {
    PathElement::new(
        vec![
            (x - cap, ci95[0]),
            (x + cap, ci95[0]),
            (x, ci95[0]),
            (x, ci95[1]),
            (x - cap, ci95[1]),
            (x + cap, ci95[1]),
        ],
        style,
    )
}

/// The legend mark of [`error_bar`]s.
fn error_bar_legend((x, y): (i32, i32), style: ShapeStyle) -> PathElement<(i32, i32)> {
    PathElement::new(vec![(x + 8, y - 6), (x + 8, y + 6)], style)
}

/// A daily series for fan charts: its file stem, title words and per-day values.
struct FanSeries {
    key: &'static str,
    label: &'static str,
    unit: &'static str,
    /// `values[replication][day]`.
    values: Vec<Vec<f64>>,
}

fn daily_values(outcomes: &[Outcome], series: &str) -> Vec<Vec<f64>> {
    outcomes
        .iter()
        .map(|o| {
            (0..o.daily.days())
                .map(|d| o.daily.value(series, d))
                .collect()
        })
        .collect()
}

/// The time axis of a study's plots: dates instead of day numbers when the
/// scenario has a start date, and the campaign windows to shade (MODEL.md v2).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimeAxis {
    /// Day 0, if the scenario has a `start_date`.
    pub start_date: Option<chrono::NaiveDate>,
    /// Each campaign: its name and first and last day (inclusive; may lie past the
    /// horizon).
    pub windows: Vec<(String, u32, u32)>,
}

impl TimeAxis {
    /// The label of day `day` on the x axis: its date (`2026-06-01`), or the number.
    fn label(&self, day: &f64) -> String {
        match self.start_date {
            Some(start) if day.fract() == 0.0 && *day >= 0.0 => start
                .checked_add_days(chrono::Days::new(*day as u64))
                .map_or_else(|| tick(day), |date| date.format("%Y-%m-%d").to_string()),
            _ => tick(day),
        }
    }

    fn description(&self) -> &'static str {
        if self.start_date.is_some() {
            "date"
        } else {
            "day"
        }
    }

    /// Shades each campaign window over `y` (of a chart of `days` days) and labels it
    /// at the top, each campaign in its own colour.
    fn shade_windows<DB: DrawingBackend>(
        &self,
        chart: &mut ChartContext<
            '_,
            DB,
            Cartesian2d<
                plotters::coord::types::RangedCoordf64,
                plotters::coord::types::RangedCoordf64,
            >,
        >,
        days: usize,
        y: std::ops::Range<f64>,
    ) -> Result<(), String> {
        let last_day = days.max(1) as f64 - 1.0;
        for (i, (name, start, end)) in self.windows.iter().enumerate() {
            let colour = Palette99::pick(i + 1).to_rgba();
            let x0 = (f64::from(*start) - 0.5).max(0.0);
            let x1 = (f64::from(*end) + 0.5).min(last_day);
            if x0 > last_day {
                continue;
            }
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x0, y.start), (x1, y.end)],
                    colour.mix(0.15).filled(),
                )))
                .map_err(text_error)?;
            let label_y = y.end - (y.end - y.start) * (0.04 + 0.05 * (i % 3) as f64);
            chart
                .draw_series(std::iter::once(Text::new(
                    name.clone(),
                    (x0, label_y),
                    (FONT, 12).into_font().color(&RGBColor(
                        colour.0 / 2,
                        colour.1 / 2,
                        colour.2 / 2,
                    )),
                )))
                .map_err(text_error)?;
        }
        Ok(())
    }
}

/// Fan charts of `run`: for active payers, registrations, revenue and cumulative
/// profit, the mean over replications and the 5–95% band, day by day; x axes in
/// dates and campaign windows shaded when `axis` says so.
pub fn fan_charts(
    scenario_name: &str,
    outcomes: &[Outcome],
    axis: &TimeAxis,
    format: PlotFormat,
) -> Result<Vec<PlotFile>, PlotError> {
    let cumulative_profit = outcomes
        .iter()
        .map(|o| {
            o.daily
                .revenue
                .iter()
                .zip(&o.daily.spend)
                .scan(0.0, |total, (revenue, spend)| {
                    *total += revenue - spend;
                    Some(*total)
                })
                .collect()
        })
        .collect();
    let series = [
        FanSeries {
            key: "active_payers",
            label: "active payers",
            unit: "users at end of day",
            values: daily_values(outcomes, "active_payers"),
        },
        FanSeries {
            key: "registrations",
            label: "registrations",
            unit: "registrations per day",
            values: daily_values(outcomes, "registrations"),
        },
        FanSeries {
            key: "revenue",
            label: "revenue",
            unit: "currency per day",
            values: daily_values(outcomes, "revenue"),
        },
        FanSeries {
            key: "cumulative_profit",
            label: "cumulative profit",
            unit: "currency",
            values: cumulative_profit,
        },
    ];
    series
        .iter()
        .map(|s| fan_chart(scenario_name, s, outcomes.len(), axis, format))
        .collect()
}

fn fan_chart(
    scenario_name: &str,
    series: &FanSeries,
    replications: usize,
    axis: &TimeAxis,
    format: PlotFormat,
) -> Result<PlotFile, PlotError> {
    let days = series.values.first().map_or(0, Vec::len);
    let bands: Vec<(f64, f64, f64)> = (0..days)
        .map(|day| {
            let mut values: Vec<f64> = series.values.iter().map(|v| v[day]).collect();
            values.sort_by(f64::total_cmp);
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            (quantile(&values, 0.05), mean, quantile(&values, 0.95))
        })
        .collect();
    let lo = bands.iter().map(|b| b.0).fold(f64::INFINITY, f64::min);
    let hi = bands.iter().map(|b| b.2).fold(f64::NEG_INFINITY, f64::max);
    let title = format!(
        "{scenario_name}: {} (mean, 5-95% band, {replications} replications)",
        series.label
    );
    render(&format!("fan-{}", series.key), format, |root| {
        let y = padded(lo, hi);
        let mut chart = ChartBuilder::on(root)
            .caption(&title, (FONT, 20))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..(days.max(2) - 1) as f64, y.clone())
            .map_err(text_error)?;
        chart
            .configure_mesh()
            .x_desc(axis.description())
            .y_desc(series.unit)
            .x_label_formatter(&|day| axis.label(day))
            .y_label_formatter(&tick)
            .draw()
            .map_err(text_error)?;
        axis.shade_windows(&mut chart, days, y)?;
        let mut outline: Vec<(f64, f64)> = bands
            .iter()
            .enumerate()
            .map(|(d, b)| (d as f64, b.2))
            .collect();
        outline.extend(bands.iter().enumerate().rev().map(|(d, b)| (d as f64, b.0)));
        chart
            .draw_series(std::iter::once(Polygon::new(outline, BAND.mix(0.3))))
            .map_err(text_error)?
            .label("5-95% band")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], BAND.mix(0.3).filled()));
        chart
            .draw_series(LineSeries::new(
                bands.iter().enumerate().map(|(d, b)| (d as f64, b.1)),
                MEAN.stroke_width(2),
            ))
            .map_err(text_error)?
            .label("mean")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], MEAN.stroke_width(2)));
        draw_legend(&mut chart)
    })
}

/// The resolved daily value of each time-varying key that changes over the
/// horizon (MODEL.md v2; spend by channel, prices, ...): one panel per key, in
/// `values.svg`, with the campaign windows shaded. `keys` holds each key path and
/// its value on each day. `None` when no key changes.
pub fn time_varying_values(
    scenario_name: &str,
    keys: &[(String, Vec<f64>)],
    axis: &TimeAxis,
    format: PlotFormat,
) -> Result<Option<PlotFile>, PlotError> {
    if keys.is_empty() {
        return Ok(None);
    }
    let panel_height = 170u32;
    let size = (SIZE.0, 60 + panel_height * keys.len() as u32);
    let file = render_sized("values", format, size, |root| {
        let title =
            format!("{scenario_name}: the daily value of each time-varying key that changes");
        let root = root.titled(&title, (FONT, 20)).map_err(text_error)?;
        let panels = root.split_evenly((keys.len(), 1));
        for ((key, values), panel) in keys.iter().zip(&panels) {
            let days = values.len();
            let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let y = padded(lo.min(0.0), hi);
            let mut chart = ChartBuilder::on(panel)
                .caption(key, (FONT, 14))
                .margin(8)
                .x_label_area_size(30)
                .y_label_area_size(80)
                .build_cartesian_2d(0.0..(days.max(2) - 1) as f64, y.clone())
                .map_err(text_error)?;
            chart
                .configure_mesh()
                .x_labels(8)
                .y_labels(4)
                .x_label_formatter(&|day| axis.label(day))
                .y_label_formatter(&tick)
                .draw()
                .map_err(text_error)?;
            axis.shade_windows(&mut chart, days, y)?;
            // A value holds for its whole day: a step line.
            let steps = values.iter().enumerate().flat_map(|(d, &v)| {
                let d = d as f64;
                [
                    ((d - 0.5).max(0.0), v),
                    ((d + 0.5).min(days as f64 - 1.0), v),
                ]
            });
            chart
                .draw_series(LineSeries::new(steps, MEAN.stroke_width(2)))
                .map_err(text_error)?;
        }
        Ok(())
    })?;
    Ok(Some(file))
}

/// One point of a line with a confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointCi {
    pub x: f64,
    pub mean: f64,
    pub ci95: [f64; 2],
}

/// A sweep's metric against the varied key: the mean with 95% CI bars.
pub fn sweep_line(
    scenario_name: &str,
    key: &str,
    metric: &str,
    replications: usize,
    points: &[PointCi],
    format: PlotFormat,
) -> Result<PlotFile, PlotError> {
    let finite = |x: f64| x.is_finite().then_some(x);
    let lo = points
        .iter()
        .filter_map(|p| finite(p.ci95[0]).or(finite(p.mean)))
        .fold(f64::INFINITY, f64::min);
    let hi = points
        .iter()
        .filter_map(|p| finite(p.ci95[1]).or(finite(p.mean)))
        .fold(f64::NEG_INFINITY, f64::max);
    let x_lo = points.iter().map(|p| p.x).fold(f64::INFINITY, f64::min);
    let x_hi = points.iter().map(|p| p.x).fold(f64::NEG_INFINITY, f64::max);
    let title =
        format!("{scenario_name}: {metric} vs {key} (mean, 95% CI, {replications} replications)");
    render(&format!("sweep-{metric}"), format, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(&title, (FONT, 20))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(80)
            .build_cartesian_2d(padded(x_lo, x_hi), padded(lo, hi))
            .map_err(text_error)?;
        chart
            .configure_mesh()
            .x_desc(key)
            .y_desc(format!("{metric} ({})", unit(metric)))
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .draw()
            .map_err(text_error)?;
        let cap = (x_hi - x_lo).abs().max(1e-9) * 0.01;
        chart
            .draw_series(
                points
                    .iter()
                    .filter(|p| p.ci95[0].is_finite())
                    .map(|p| error_bar(p.x, cap, p.ci95, BAND.stroke_width(2))),
            )
            .map_err(text_error)?
            .label("95% CI")
            .legend(|at| error_bar_legend(at, BAND.stroke_width(2)));
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (p.x, p.mean)),
                MEAN.stroke_width(2),
            ))
            .map_err(text_error)?
            .label("mean")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], MEAN.stroke_width(2)));
        chart
            .draw_series(
                points
                    .iter()
                    .map(|p| Circle::new((p.x, p.mean), 4, MEAN.filled())),
            )
            .map_err(text_error)?;
        draw_legend(&mut chart)
    })
}

/// An axis tick: whole numbers without decimals, others with at most three.
fn tick(value: &f64) -> String {
    if value.abs() >= 1000.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        let text = format!("{value:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A short label for a parameter value or a cell of a heat map.
fn short(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e9 {
        format!("{value:.0}")
    } else if value.abs() >= 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}

/// The label of category `i` on an axis of categories at 0, 1, 2, ...
fn category(labels: &[String], x: f64) -> String {
    let i = x.round();
    if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
        labels[i as usize].clone()
    } else {
        String::new()
    }
}

/// A sweep over two keys: the mean of `metric` at each grid point as a heat map,
/// `means[i][j]` at `x_values[i]`, `y_values[j]`.
#[allow(clippy::too_many_arguments)]
pub fn sweep_heat_map(
    scenario_name: &str,
    (x_key, x_values): (&str, &[f64]),
    (y_key, y_values): (&str, &[f64]),
    metric: &str,
    replications: usize,
    means: &[Vec<f64>],
    format: PlotFormat,
) -> Result<PlotFile, PlotError> {
    let all = means.iter().flatten().copied().filter(|m| m.is_finite());
    let lo = all.clone().fold(f64::INFINITY, f64::min);
    let hi = all.fold(f64::NEG_INFINITY, f64::max);
    let x_labels: Vec<String> = x_values.iter().map(|&v| short(v)).collect();
    let y_labels: Vec<String> = y_values.iter().map(|&v| short(v)).collect();
    let title = format!(
        "{scenario_name}: mean {metric} ({}) by {x_key} and {y_key}, {replications} replications",
        unit(metric)
    );
    render(&format!("heatmap-{metric}"), format, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(&title, (FONT, 18))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(80)
            .build_cartesian_2d(
                -0.5..x_values.len() as f64 - 0.5,
                -0.5..y_values.len() as f64 - 0.5,
            )
            .map_err(text_error)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(x_values.len() * 2 + 1)
            .y_labels(y_values.len() * 2 + 1)
            .x_label_formatter(&|x| category(&x_labels, *x))
            .y_label_formatter(&|y| category(&y_labels, *y))
            .x_desc(x_key)
            .y_desc(y_key)
            .draw()
            .map_err(text_error)?;
        let show_values = x_values.len() * y_values.len() <= 144;
        for (i, column) in means.iter().enumerate() {
            for (j, &mean) in column.iter().enumerate() {
                let t = if hi > lo {
                    (mean - lo) / (hi - lo)
                } else {
                    0.5
                };
                let color = heat(t);
                let (x, y) = (i as f64, j as f64);
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)],
                        color.filled(),
                    )))
                    .map_err(text_error)?;
                if show_values {
                    let ink = if t > 0.55 { WHITE } else { BLACK };
                    chart
                        .draw_series(std::iter::once(Text::new(
                            short(mean),
                            (x - 0.3, y),
                            (FONT, 13).into_font().color(&ink),
                        )))
                        .map_err(text_error)?;
                }
            }
        }
        Ok(())
    })
}

/// Light yellow (t = 0) to dark blue (t = 1).
fn heat(t: f64) -> RGBColor {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * t).round() as u8;
    RGBColor(mix(255, 8), mix(247, 48), mix(188, 107))
}

/// One bar of a comparison: an arm's paired difference from the base with its CI.
#[derive(Debug, Clone, PartialEq)]
pub struct DifferenceBar {
    pub arm: String,
    pub difference: f64,
    pub ci95: [f64; 2],
}

/// `compare`: each arm's paired difference from the base in `metric`, as bars
/// with 95% CI whiskers.
pub fn compare_bars(
    scenario_name: &str,
    base: &str,
    metric: &str,
    replications: usize,
    bars: &[DifferenceBar],
    format: PlotFormat,
) -> Result<PlotFile, PlotError> {
    let title = format!(
        "{scenario_name}: {metric}, each strategy minus {base} (paired on common random numbers, 95% CI, {replications} replications)"
    );
    let labels = BarLabels {
        file_stem: format!("compare-{metric}"),
        title,
        x_desc: "strategy".to_string(),
        y_desc: format!("difference in {metric} ({})", unit(metric)),
        legend: "paired difference (mean)".to_string(),
    };
    bar_chart(&labels, bars, format)
}

/// `sensitivity`: each key's index (Morris `μ*` or a Sobol index) as a bar
/// with its bootstrap 95% interval; `bars[i].arm` is the key.
pub fn sensitivity_bars(
    scenario_name: &str,
    metric: &str,
    index: &str,
    bars: &[DifferenceBar],
    format: PlotFormat,
) -> Result<PlotFile, PlotError> {
    let labels = BarLabels {
        file_stem: format!("sensitivity-{metric}"),
        title: format!(
            "{scenario_name}: sensitivity of {metric}, {index} per key (bootstrap 95% interval)"
        ),
        x_desc: "key".to_string(),
        y_desc: index.to_string(),
        legend: index.to_string(),
    };
    bar_chart(&labels, bars, format)
}

/// The texts of a bar chart.
struct BarLabels {
    file_stem: String,
    title: String,
    x_desc: String,
    y_desc: String,
    legend: String,
}

/// Bars with 95% whiskers around a zero line.
fn bar_chart(
    labels_text: &BarLabels,
    bars: &[DifferenceBar],
    format: PlotFormat,
) -> Result<PlotFile, PlotError> {
    let values = bars
        .iter()
        .flat_map(|b| [b.difference, b.ci95[0], b.ci95[1], 0.0])
        .filter(|v| v.is_finite());
    let lo = values.clone().fold(0.0, f64::min);
    let hi = values.fold(0.0, f64::max);
    let labels: Vec<String> = bars.iter().map(|b| b.arm.clone()).collect();
    let title = &labels_text.title;
    render(&labels_text.file_stem, format, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 16))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(80)
            .build_cartesian_2d(-0.5..bars.len() as f64 - 0.5, padded(lo, hi))
            .map_err(text_error)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(bars.len() * 2 + 1)
            .x_label_formatter(&|x| category(&labels, *x))
            .y_label_formatter(&tick)
            .x_desc(labels_text.x_desc.as_str())
            .y_desc(labels_text.y_desc.as_str())
            .draw()
            .map_err(text_error)?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                let x = i as f64;
                Rectangle::new(
                    [(x - 0.3, 0.0), (x + 0.3, b.difference)],
                    BAND.mix(0.7).filled(),
                )
            }))
            .map_err(text_error)?
            .label(labels_text.legend.as_str())
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], BAND.mix(0.7).filled()));
        chart
            .draw_series(
                bars.iter()
                    .enumerate()
                    .filter(|(_, b)| b.ci95[0].is_finite())
                    .map(|(i, b)| error_bar(i as f64, 0.08, b.ci95, BLACK.stroke_width(2))),
            )
            .map_err(text_error)?
            .label("95% CI")
            .legend(|at| error_bar_legend(at, BLACK.stroke_width(2)));
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(-0.5, 0.0), (bars.len() as f64 - 0.5, 0.0)],
                BLACK,
            )))
            .map_err(text_error)?;
        draw_legend(&mut chart)
    })
}

/// A fitted or simulated curve of [`fit_chart`]: a line, with an optional band.
pub struct FitCurve {
    pub label: String,
    /// `(x, y)` points of the line.
    pub line: Vec<(f64, f64)>,
    /// `(x, low, high)` of a band around it (empty: no band).
    pub band: Vec<(f64, f64, f64)>,
}

/// Observed points of [`fit_chart`]: one marker series.
pub struct FitPoints {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// Observed data against a fitted model (`fit churn`, `fit bass`) or simulated
/// bands (`calibrate`): lines with optional shaded bands, and markers for the data.
pub fn fit_chart(
    stem: &str,
    title: &str,
    axes: (&str, &str),
    curves: &[FitCurve],
    observed: &[FitPoints],
    format: PlotFormat,
) -> Result<PlotFile, PlotError> {
    let xs = curves
        .iter()
        .flat_map(|c| c.line.iter().map(|p| p.0))
        .chain(observed.iter().flat_map(|o| o.points.iter().map(|p| p.0)));
    let (x_lo, x_hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    let ys = curves
        .iter()
        .flat_map(|c| {
            c.line
                .iter()
                .map(|p| p.1)
                .chain(c.band.iter().flat_map(|b| [b.1, b.2]))
        })
        .chain(observed.iter().flat_map(|o| o.points.iter().map(|p| p.1)));
    let (y_lo, y_hi) = ys
        .filter(|y| y.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| {
            (lo.min(y), hi.max(y))
        });
    const COLORS: [RGBColor; 6] = [
        RGBColor(20, 60, 120),
        RGBColor(200, 80, 20),
        RGBColor(30, 130, 60),
        RGBColor(150, 40, 140),
        RGBColor(120, 120, 20),
        RGBColor(20, 140, 150),
    ];
    render(stem, format, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 20))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(80)
            .build_cartesian_2d(padded(x_lo, x_hi), padded(y_lo, y_hi))
            .map_err(text_error)?;
        chart
            .configure_mesh()
            .x_desc(axes.0)
            .y_desc(axes.1)
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .draw()
            .map_err(text_error)?;
        for (i, curve) in curves.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            if !curve.band.is_empty() {
                let mut outline: Vec<(f64, f64)> = curve.band.iter().map(|b| (b.0, b.2)).collect();
                outline.extend(curve.band.iter().rev().map(|b| (b.0, b.1)));
                chart
                    .draw_series(std::iter::once(Polygon::new(outline, color.mix(0.25))))
                    .map_err(text_error)?;
            }
            chart
                .draw_series(LineSeries::new(
                    curve.line.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(text_error)?
                .label(curve.label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
        }
        for (i, series) in observed.iter().enumerate() {
            let color = COLORS[(i + 1) % COLORS.len()];
            chart
                .draw_series(
                    series
                        .points
                        .iter()
                        .map(|&p| Circle::new(p, 3, color.filled())),
                )
                .map_err(text_error)?
                .label(series.label.as_str())
                .legend(move |(x, y)| Circle::new((x + 8, y), 3, color.filled()));
        }
        draw_legend(&mut chart)
    })
}

/// The degree distribution of a social network on log–log axes (`degree.svg`):
/// the share of users `P(k)` of each degree `k >= 1`, one series of points per
/// entry of `series` (a label and `[degree, users]` counts). Users of degree 0
/// have no place on a log axis: `isolated` (their share) goes in the title.
pub fn degree_distribution(
    title: &str,
    series: &[(String, Vec<[u64; 2]>)],
    isolated: f64,
    format: PlotFormat,
) -> Result<PlotFile, PlotError> {
    let shares: Vec<(&str, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(label, counts)| {
            let users: u64 = counts.iter().map(|&[_, c]| c).sum();
            let points = counts
                .iter()
                .filter(|&&[k, c]| k >= 1 && c > 0)
                .map(|&[k, c]| (k as f64, c as f64 / users.max(1) as f64))
                .collect();
            (label.as_str(), points)
        })
        .collect();
    let all = shares.iter().flat_map(|(_, points)| points.iter());
    let max_k = all.clone().map(|p| p.0).fold(1.0, f64::max);
    let min_p = all.map(|p| p.1).fold(1.0, f64::min);
    let title = format!("{title} (isolated users: {:.3}%)", 100.0 * isolated);
    render("degree", format, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(&title, (FONT, 16))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(80)
            .build_cartesian_2d(
                (0.8..max_k * 1.25).log_scale(),
                (min_p * 0.5..1.0).log_scale(),
            )
            .map_err(text_error)?;
        chart
            .configure_mesh()
            .x_desc("degree k (log scale)")
            .y_desc("share of users with degree k (log scale)")
            .x_label_formatter(&|k| short(*k))
            .y_label_formatter(&|p| format!("{p:.0e}"))
            .draw()
            .map_err(text_error)?;
        let palette = [
            MEAN,
            RGBColor(200, 90, 40),
            RGBColor(60, 150, 60),
            RGBColor(150, 60, 150),
        ];
        for (i, (label, points)) in shares.iter().enumerate() {
            let color = palette[i % palette.len()];
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|&point| Circle::new(point, 3, color.mix(0.8).filled())),
                )
                .map_err(text_error)?
                .label(*label)
                .legend(move |(x, y)| Circle::new((x + 8, y), 3, color.filled()));
        }
        // Upper right: a degree distribution starts at the upper left.
        draw_legend_at(&mut chart, SeriesLabelPosition::UpperRight)
    })
}

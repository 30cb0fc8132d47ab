//! `trace.svg`: the objective `J` (with its 95% CI) and each tuned value over the
//! optimiser's steps, one panel each, drawn with plotters.

use plotters::prelude::*;

use super::Step;

/// The SVG text of the trace plot. `keys` names the tuned values in order.
pub fn trace_svg(steps: &[Step], keys: &[String], objective: &str) -> Result<String, String> {
    let mut svg = String::new();
    let panels = 1 + keys.len();
    {
        let root =
            SVGBackend::with_string(&mut svg, (900, 260 * panels as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let areas = root.split_evenly((panels, 1));
        let j = |s: &Step, x: f64| x - s.penalty;
        let lines = [
            steps
                .iter()
                .map(|s| (f64::from(s.step), j(s, s.objective.mean)))
                .collect::<Vec<_>>(),
            steps
                .iter()
                .map(|s| (f64::from(s.step), j(s, s.objective.ci95[0])))
                .collect(),
            steps
                .iter()
                .map(|s| (f64::from(s.step), j(s, s.objective.ci95[1])))
                .collect(),
        ];
        panel(
            &areas[0],
            &format!("J = {objective} - (λ/2)|θ|², mean and 95% CI per step"),
            &lines,
        )?;
        for (i, key) in keys.iter().enumerate() {
            let values: Vec<(f64, f64)> = steps
                .iter()
                .map(|s| (f64::from(s.step), s.parameters[i]))
                .collect();
            panel(&areas[i + 1], key, std::slice::from_ref(&values))?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// One panel: the first line solid blue, the others (a CI) thin grey.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    lines: &[Vec<(f64, f64)>],
) -> Result<(), String> {
    let finite = lines
        .iter()
        .flatten()
        .map(|&(_, y)| y)
        .filter(|y| y.is_finite());
    let (low, high) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), y| {
        (l.min(y), h.max(y))
    });
    let (low, high) = if low > high {
        (0.0, 1.0)
    } else {
        let pad = ((high - low) * 0.05).max(1e-9 * high.abs().max(1.0));
        (low - pad, high + pad)
    };
    let last = lines.iter().flatten().map(|&(x, _)| x).fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..last, low..high)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("step")
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, line) in lines.iter().enumerate() {
        let points = line.iter().copied().filter(|(_, y)| y.is_finite());
        let style = if i == 0 {
            BLUE.stroke_width(2)
        } else {
            RGBColor(150, 150, 150).stroke_width(1)
        };
        chart
            .draw_series(LineSeries::new(points, style))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

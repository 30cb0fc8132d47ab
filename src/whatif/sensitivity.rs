//! Global sensitivity analysis as pure functions over plain arrays (after
//! SALib's `sample/` and `analyze/`): Morris elementary effects and Sobol
//! indices by Saltelli sampling with Jansen's estimators, with bootstrap 95%
//! intervals. Designs live in the unit cube `[0, 1]^k`; the caller maps them
//! to key ranges and fills in one model output per design point.

use crate::rng::{DrawRng, Event, INITIAL_DAY, ReplicationKey};

/// The most parameters a design takes: the Sobol points have `2k` dimensions
/// and `sobol_burley` has 256.
pub const MAX_PARAMETERS: usize = 128;

/// Bootstrap resamples behind each 95% interval.
pub const BOOTSTRAP_RESAMPLES: u32 = 1000;

/// Levels of the Morris grid: `{0, 1/3, 2/3, 1}`, steps of `Δ = 2/3`
/// (Morris 1991, `p = 4`, `Δ = p / (2(p − 1))`).
const MORRIS_LEVELS: u32 = 4;

/// The random draws of a design, keyed by the study's seed and a purpose
/// (`Event::Design` streams, never those of the model).
fn design_rng(seed: u64, purpose: u32, index: u32) -> DrawRng {
    ReplicationKey::new(seed, purpose)
        .stream(INITIAL_DAY, Event::Design)
        .generator(index)
}

/// `r` Morris trajectories of `k + 1` points each, `r·(k + 1)` rows of `k`
/// coordinates in `[0, 1]`, trajectory after trajectory. Each starts at a
/// random grid level per parameter and moves one parameter at a time, in a
/// random order, by `±Δ` (`+` from the lower half of the grid, `−` from the
/// upper).
pub fn morris_design(parameters: usize, trajectories: usize, seed: u64) -> Vec<Vec<f64>> {
    let step = f64::from(MORRIS_LEVELS) / (2.0 * f64::from(MORRIS_LEVELS - 1));
    let top = f64::from(MORRIS_LEVELS - 1);
    let mut rows = Vec::with_capacity(trajectories * (parameters + 1));
    for t in 0..trajectories {
        let mut rng = design_rng(seed, 1, t as u32);
        let mut point: Vec<f64> = (0..parameters)
            .map(|_| (rng.uniform() * f64::from(MORRIS_LEVELS)).floor().min(top) / top)
            .collect();
        // A random order: Fisher–Yates.
        let mut order: Vec<usize> = (0..parameters).collect();
        for i in (1..parameters).rev() {
            let j = ((rng.uniform() * (i + 1) as f64) as usize).min(i);
            order.swap(i, j);
        }
        rows.push(point.clone());
        for &i in &order {
            point[i] = if point[i] + step <= 1.0 + 1e-12 {
                point[i] + step
            } else {
                point[i] - step
            };
            rows.push(point.clone());
        }
    }
    rows
}

/// One parameter's Morris measures (Morris 1991; `μ*` by Campolongo, Cariboni
/// and Saltelli 2007), from elementary effects `EE = Δy / Δu` in unit-cube
/// units (so a linear `y = Σ c_i·x_i` over ranges `[lo_i, hi_i]` has
/// `EE_i = c_i·(hi_i − lo_i)` exactly).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MorrisIndex {
    /// Mean of the elementary effects.
    pub mu: f64,
    /// Mean of their absolute values: the importance.
    pub mu_star: f64,
    /// Their standard deviation: non-linearity and interactions.
    pub sigma: f64,
    /// Bootstrap (over trajectories) 95% interval of `mu_star`.
    pub mu_star_ci95: [f64; 2],
}

/// The Morris measures of each parameter from the rows of [`morris_design`]
/// and the model output `y` of each row.
pub fn morris_indices(design: &[Vec<f64>], y: &[f64], seed: u64) -> Vec<MorrisIndex> {
    let parameters = design.first().map_or(0, Vec::len);
    let trajectories = design.len() / (parameters + 1);
    // effects[i][t]: parameter i's elementary effect in trajectory t.
    let mut effects = vec![vec![0.0; trajectories]; parameters];
    let chunks = design.chunks(parameters + 1).zip(y.chunks(parameters + 1));
    for (t, (points, outputs)) in chunks.take(trajectories).enumerate() {
        for (pair, output) in points.windows(2).zip(outputs.windows(2)) {
            let (before, after) = (&pair[0], &pair[1]);
            let Some(i) = (0..parameters).find(|&i| before[i] != after[i]) else {
                continue;
            };
            effects[i][t] = (output[1] - output[0]) / (after[i] - before[i]);
        }
    }
    effects
        .iter()
        .enumerate()
        .map(|(i, ee)| {
            let n = ee.len() as f64;
            let mu = ee.iter().sum::<f64>() / n;
            let mu_star = ee.iter().map(|e| e.abs()).sum::<f64>() / n;
            let sigma = if ee.len() > 1 {
                (ee.iter().map(|e| (e - mu).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
            } else {
                f64::NAN
            };
            let mu_star_ci95 = bootstrap(ee.len(), seed, 2 + i as u32, |rows| {
                rows.iter().map(|&t| ee[t].abs()).sum::<f64>() / rows.len() as f64
            });
            MorrisIndex {
                mu,
                mu_star,
                sigma,
                mu_star_ci95,
            }
        })
        .collect()
}

/// Saltelli's design for `k` parameters and `n` base rows (Saltelli 2002;
/// Saltelli et al. 2010): matrices `A` and `B` from the first and last `k`
/// dimensions of `n` scrambled Sobol points of dimension `2k`
/// (`sobol_burley`), then for each parameter `i` the matrix `AB_i`: `A` with
/// column `i` from `B`. Rows in the order `A`, `B`, `AB_0`, ..., `AB_{k−1}`:
/// `n·(k + 2)` rows.
pub fn saltelli_design(parameters: usize, n: usize, seed: u64) -> Vec<Vec<f64>> {
    let scramble = (seed ^ (seed >> 32)) as u32;
    let point = |row: usize, offset: usize| -> Vec<f64> {
        (0..parameters)
            .map(|d| {
                f64::from(sobol_burley::sample(
                    row as u32,
                    (offset + d) as u32,
                    scramble,
                ))
            })
            .collect()
    };
    let a: Vec<Vec<f64>> = (0..n).map(|row| point(row, 0)).collect();
    let b: Vec<Vec<f64>> = (0..n).map(|row| point(row, parameters)).collect();
    let mut rows = Vec::with_capacity(n * (parameters + 2));
    rows.extend(a.iter().cloned());
    rows.extend(b.iter().cloned());
    for i in 0..parameters {
        for (a_row, b_row) in a.iter().zip(&b) {
            let mut row = a_row.clone();
            row[i] = b_row[i];
            rows.push(row);
        }
    }
    rows
}

/// One parameter's Sobol indices with their bootstrap 95% intervals.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SobolIndex {
    /// First-order index `S_i`.
    pub first_order: f64,
    pub first_order_ci95: [f64; 2],
    /// Total-order index `S_Ti`.
    pub total_order: f64,
    pub total_order_ci95: [f64; 2],
}

/// Jansen's estimators (Jansen 1999; Saltelli et al. 2010, Table 2) from the
/// outputs `y` of the rows of [`saltelli_design`] with `n` base rows:
/// `V = Var(y_A ∪ y_B)`, `S_i = 1 − mean((y_B − y_ABi)²) / 2V`,
/// `S_Ti = mean((y_A − y_ABi)²) / 2V`. Intervals: percentiles of
/// [`BOOTSTRAP_RESAMPLES`] resamples of the base rows. With `V = 0` (an output
/// that does not vary) every index is 0.
pub fn sobol_indices(y: &[f64], n: usize, seed: u64) -> Vec<SobolIndex> {
    let parameters = y.len() / n - 2;
    let (ya, yb) = (&y[..n], &y[n..2 * n]);
    let estimate = |rows: &[usize], i: usize| -> (f64, f64) {
        let yab = &y[(2 + i) * n..(3 + i) * n];
        let m = rows.len() as f64;
        let mean = rows.iter().map(|&j| ya[j] + yb[j]).sum::<f64>() / (2.0 * m);
        let variance = rows
            .iter()
            .map(|&j| (ya[j] - mean).powi(2) + (yb[j] - mean).powi(2))
            .sum::<f64>()
            / (2.0 * m - 1.0);
        if variance <= 0.0 {
            return (0.0, 0.0);
        }
        let first = rows.iter().map(|&j| (yb[j] - yab[j]).powi(2)).sum::<f64>() / m;
        let total = rows.iter().map(|&j| (ya[j] - yab[j]).powi(2)).sum::<f64>() / m;
        (1.0 - first / (2.0 * variance), total / (2.0 * variance))
    };
    let all: Vec<usize> = (0..n).collect();
    (0..parameters)
        .map(|i| {
            let (first_order, total_order) = estimate(&all, i);
            let first_order_ci95 = bootstrap(n, seed, 1000 + i as u32, |rows| estimate(rows, i).0);
            let total_order_ci95 = bootstrap(n, seed, 1000 + i as u32, |rows| estimate(rows, i).1);
            SobolIndex {
                first_order,
                first_order_ci95,
                total_order,
                total_order_ci95,
            }
        })
        .collect()
}

/// The 2.5% and 97.5% percentiles of `statistic` over
/// [`BOOTSTRAP_RESAMPLES`] resamples (with replacement) of the row indices
/// `0..rows`, drawn from a design stream keyed by `(seed, purpose)`.
fn bootstrap(
    rows: usize,
    seed: u64,
    purpose: u32,
    statistic: impl Fn(&[usize]) -> f64,
) -> [f64; 2] {
    if rows == 0 {
        return [f64::NAN, f64::NAN];
    }
    let mut values: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|b| {
            let mut rng = design_rng(seed, purpose, b);
            let sample: Vec<usize> = (0..rows)
                .map(|_| ((rng.uniform() * rows as f64) as usize).min(rows - 1))
                .collect();
            statistic(&sample)
        })
        .collect();
    values.sort_by(f64::total_cmp);
    [
        crate::stats::quantile(&values, 0.025),
        crate::stats::quantile(&values, 0.975),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Ishigami function on `[−π, π]³` (Ishigami and Homma 1990).
    fn ishigami(u: &[f64], a: f64, b: f64) -> f64 {
        let x: Vec<f64> = u
            .iter()
            .map(|u| -std::f64::consts::PI + 2.0 * std::f64::consts::PI * u)
            .collect();
        x[0].sin() + a * x[1].sin().powi(2) + b * x[2].powi(4) * x[0].sin()
    }

    #[test]
    fn sobol_indices_of_the_ishigami_function_hold_the_closed_forms_in_their_intervals() {
        // a = 7, b = 0.1: V = a²/8 + bπ⁴/5 + b²π⁸/18 + 1/2, V1 = (1 + bπ⁴/5)²/2,
        // V2 = a²/8, V3 = 0, VT1 = V1 + 8b²π⁸/225, VT3 = 8b²π⁸/225.
        let (a, b) = (7.0, 0.1);
        let pi4 = std::f64::consts::PI.powi(4);
        let v = a * a / 8.0 + b * pi4 / 5.0 + b * b * pi4 * pi4 / 18.0 + 0.5;
        let v1 = (1.0 + b * pi4 / 5.0).powi(2) / 2.0;
        let v2 = a * a / 8.0;
        let v13 = 8.0 * b * b * pi4 * pi4 / 225.0;
        let first = [v1 / v, v2 / v, 0.0];
        let total = [(v1 + v13) / v, v2 / v, v13 / v];
        assert!((first[0] - 0.3139).abs() < 1e-4 && (total[2] - 0.2437).abs() < 1e-4);
        let n = 4096;
        let design = saltelli_design(3, n, 5);
        assert_eq!(design.len(), n * 5);
        let y: Vec<f64> = design.iter().map(|u| ishigami(u, a, b)).collect();
        let indices = sobol_indices(&y, n, 5);
        for (i, index) in indices.iter().enumerate() {
            let [lo, hi] = index.first_order_ci95;
            assert!(
                lo <= first[i] && first[i] <= hi,
                "S_{}: {} [{lo}, {hi}], exact {}",
                i + 1,
                index.first_order,
                first[i]
            );
            let [lo, hi] = index.total_order_ci95;
            assert!(
                lo <= total[i] && total[i] <= hi,
                "S_T{}: {} [{lo}, {hi}], exact {}",
                i + 1,
                index.total_order,
                total[i]
            );
            // The intervals are informative, not the whole unit interval.
            assert!(hi - lo < 0.1, "S_T{} interval [{lo}, {hi}]", i + 1);
        }
    }

    #[test]
    fn morris_mu_star_of_a_linear_function_is_its_coefficient_times_the_range() {
        let coefficients = [3.0, -2.0, 0.0, 0.5];
        let ranges = [(0.0, 1.0), (10.0, 20.0), (-5.0, 5.0), (100.0, 400.0)];
        let design = morris_design(4, 12, 9);
        assert_eq!(design.len(), 12 * 5);
        let y: Vec<f64> = design
            .iter()
            .map(|u| {
                u.iter()
                    .zip(coefficients.iter().zip(&ranges))
                    .map(|(u, (c, (lo, hi)))| c * (lo + u * (hi - lo)))
                    .sum()
            })
            .collect();
        let indices = morris_indices(&design, &y, 9);
        for (i, index) in indices.iter().enumerate() {
            let expected = coefficients[i] * (ranges[i].1 - ranges[i].0);
            assert!((index.mu_star - expected.abs()).abs() < 1e-9 * expected.abs().max(1.0));
            assert!((index.mu - expected).abs() < 1e-9 * expected.abs().max(1.0));
            // A linear function has the same effect everywhere.
            assert!(index.sigma.abs() < 1e-9 * expected.abs().max(1.0));
        }
    }

    #[test]
    fn morris_trajectories_move_one_parameter_at_a_time_inside_the_cube() {
        let design = morris_design(5, 7, 3);
        for t in 0..7 {
            let rows = &design[t * 6..(t + 1) * 6];
            let mut moved = [false; 5];
            for pair in rows.windows(2) {
                let changed: Vec<usize> = (0..5).filter(|&i| pair[0][i] != pair[1][i]).collect();
                assert_eq!(changed.len(), 1);
                let i = changed[0];
                assert!(!moved[i]);
                moved[i] = true;
                assert!(((pair[1][i] - pair[0][i]).abs() - 2.0 / 3.0).abs() < 1e-12);
            }
            assert!(rows.iter().flatten().all(|u| (0.0..=1.0).contains(u)));
        }
    }

    #[test]
    fn an_output_that_does_not_vary_has_zero_indices() {
        let n = 64;
        let design = saltelli_design(2, n, 1);
        let y = vec![5.0; design.len()];
        for index in sobol_indices(&y, n, 1) {
            assert_eq!((index.first_order, index.total_order), (0.0, 0.0));
        }
    }
}

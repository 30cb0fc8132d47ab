//! Budget allocation (`optimize --budget KEY,KEY,...=TOTAL`): groups of tuned values
//! that must sum to a total, each within its bounds, and the Euclidean projection
//! onto that bounded simplex.

use super::OptimizeError;

/// One `--budget` group: the indices of its values among the tuned values, and
/// the total they must sum to.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetGroup {
    /// The key paths, as given.
    pub keys: Vec<String>,
    /// Their indices among the problem's tuned values.
    pub indices: Vec<usize>,
    pub total: f64,
}

/// Parses `KEY,KEY,...=TOTAL`: at least two distinct keys and a finite total.
pub fn parse_budget(text: &str) -> Result<(Vec<String>, f64), OptimizeError> {
    let error = |message: String| OptimizeError::BadBudget {
        text: text.to_string(),
        message,
    };
    let Some((keys, total)) = text.rsplit_once('=') else {
        return Err(error("expected KEY,KEY,...=TOTAL".to_string()));
    };
    let total = match total.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => x,
        _ => {
            return Err(error(format!(
                "expected a finite number as the total after '=', found {:?}",
                total.trim()
            )));
        }
    };
    let keys: Vec<String> = keys.split(',').map(|k| k.trim().to_string()).collect();
    if keys.iter().any(String::is_empty) {
        return Err(error(
            "expected key paths separated by commas, found an empty one".into(),
        ));
    }
    if keys.len() < 2 {
        return Err(error(
            "a budget needs at least two keys to allocate between".to_string(),
        ));
    }
    for (i, key) in keys.iter().enumerate() {
        if keys[..i].contains(key) {
            return Err(error(format!("{key} is listed twice")));
        }
    }
    Ok((keys, total))
}

/// The Euclidean projection of `x` onto `{y : Σ y = total, lower ≤ y ≤ upper}`
/// (each bound may be infinite; the set must not be empty): `y_i =
/// clamp(x_i − τ, lower_i, upper_i)` with the `τ` that makes the sum right, found
/// by bisection (the sum falls as `τ` grows). The remaining rounding error of the
/// sum is put on a value with room, so `Σ y = total` to the last bits.
pub fn project_onto_simplex(x: &mut [f64], lower: &[f64], upper: &[f64], total: f64) {
    let sum_at = |tau: f64| -> f64 {
        x.iter()
            .zip(lower.iter().zip(upper))
            .map(|(&v, (&l, &u))| (v - tau).clamp(l, u))
            .sum()
    };
    // A bracket: the sum is >= total at `low` and <= total at `high`.
    let spread = x.iter().map(|v| v.abs()).fold(total.abs(), f64::max)
        + lower
            .iter()
            .chain(upper)
            .filter(|b| b.is_finite())
            .map(|b| b.abs())
            .fold(0.0, f64::max);
    let (mut low, mut high) = (-2.0 * spread - 1.0, 2.0 * spread + 1.0);
    for _ in 0..200 {
        let mid = 0.5 * (low + high);
        if sum_at(mid) > total {
            low = mid;
        } else {
            high = mid;
        }
        if high - low <= f64::EPSILON * spread.max(1.0) {
            break;
        }
    }
    let tau = 0.5 * (low + high);
    for (v, (&l, &u)) in x.iter_mut().zip(lower.iter().zip(upper)) {
        *v = (*v - tau).clamp(l, u);
    }
    // Put the rounding residue where it fits, a few times over.
    for _ in 0..4 {
        let residue = total - x.iter().sum::<f64>();
        if residue == 0.0 {
            break;
        }
        let room = |i: usize| {
            if residue > 0.0 {
                upper[i] - x[i]
            } else {
                x[i] - lower[i]
            }
        };
        if let Some(i) = (0..x.len()).max_by(|&a, &b| room(a).total_cmp(&room(b))) {
            x[i] = (x[i] + residue).clamp(lower[i], upper[i]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_parse_keys_and_total() {
        let (keys, total) =
            parse_budget("channels.a.daily_budget, channels.b.daily_budget=7000").unwrap();
        assert_eq!(keys, ["channels.a.daily_budget", "channels.b.daily_budget"]);
        assert_eq!(total, 7000.0);
        for bad in ["a,b", "a=1", "a,a=1", "a,,b=1", "a,b=x", "a,b=inf"] {
            assert!(parse_budget(bad).is_err(), "{bad}");
        }
    }

    /// Brute force: the nearest point of the set on a fine grid of one free
    /// coordinate (three values, the third fixed by the sum).
    /// A point, its lower and upper bounds, and the total.
    type Case = ([f64; 3], [f64; 3], [f64; 3], f64);

    #[test]
    fn projection_is_the_nearest_feasible_point() {
        let cases: [Case; 4] = [
            ([1.0, 2.0, 3.0], [0.0; 3], [f64::INFINITY; 3], 3.0),
            ([-5.0, 10.0, 0.5], [0.0; 3], [f64::INFINITY; 3], 4.0),
            ([0.2, 0.2, 0.2], [0.0, 0.5, 0.0], [1.0, 1.0, 0.3], 1.2),
            (
                [7000.0, -300.0, 2.0],
                [0.0; 3],
                [5000.0, 5000.0, 5000.0],
                7000.0,
            ),
        ];
        for (x, lower, upper, total) in cases {
            let mut y = x;
            project_onto_simplex(&mut y, &lower, &upper, total);
            assert!(
                (y.iter().sum::<f64>() - total).abs() <= 1e-12 * total.abs().max(1.0),
                "{y:?}"
            );
            for i in 0..3 {
                assert!(lower[i] <= y[i] && y[i] <= upper[i], "{y:?}");
            }
            let distance =
                |z: &[f64; 3]| -> f64 { z.iter().zip(&x).map(|(a, b)| (a - b) * (a - b)).sum() };
            // Grid over (y0, y1); y2 follows.
            let steps = 400;
            let span = |i: usize| (lower[i].max(-1e4), upper[i].min(1e4));
            let mut best = f64::INFINITY;
            for a in 0..=steps {
                for b in 0..=steps {
                    let (l0, u0) = span(0);
                    let (l1, u1) = span(1);
                    let z0 = l0 + (u0 - l0) * a as f64 / steps as f64;
                    let z1 = l1 + (u1 - l1) * b as f64 / steps as f64;
                    let z2 = total - z0 - z1;
                    if z2 < lower[2] || z2 > upper[2] {
                        continue;
                    }
                    best = best.min(distance(&[z0, z1, z2]));
                }
            }
            assert!(
                distance(&y) <= best + 1e-9 * best.max(1.0),
                "{y:?}: {} vs grid {best}",
                distance(&y)
            );
        }
    }
}

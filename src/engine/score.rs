//! Per-user score tracking for the per-user likelihood-ratio gradient (`optimize
//! --estimator lr`): each user's running score `Σ β·(x − p)` over its own draws
//! that `V` enters, and every additive count of the outcome weighted by the score
//! of the user it counts, taken when it is counted (README, "The lr estimator").
//!
//! Only [`simulate_with_scores`](super::simulate_with_scores) inserts
//! [`UserScores`]; without it the systems skip all of this, so no other result
//! changes.

use bevy_ecs::prelude::*;

/// The score-weighted counterpart of each additive count of an
/// [`Outcome`](crate::outcome::Outcome): for a count `X = Σ_u x_u`, the sum
/// `Σ_u x_u · s_u` with `s_u` the user's score up to the event counted (for
/// end-of-horizon counts, up to the end). Without word of mouth each is an
/// unbiased estimate of `∂E[X]/∂V` (MODEL.md, "The outer loop", score function,
/// taken user by user).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScoreWeighted {
    /// Per item: exposures, clicks, conversions and renewals.
    pub exposures: Vec<f64>,
    pub clicks: Vec<f64>,
    pub conversions: Vec<f64>,
    pub renewals: Vec<f64>,
    pub registrations: f64,
    pub churned: f64,
    pub dormant: f64,
    /// Users ever aware, weighted by the score before their first exposure.
    pub aware: f64,
    /// Users in `Paying` at the end, weighted by their score at the end.
    pub active_payers: f64,
    /// `Σ sat_u · s_u` over users in `Paying` at the end.
    pub satisfaction_sum: f64,
    /// `Σ price · s_u` over conversions and renewals.
    pub revenue: f64,
}

impl ScoreWeighted {
    /// All zero, for a catalogue of `items` items.
    pub fn new(items: usize) -> Self {
        ScoreWeighted {
            exposures: vec![0.0; items],
            clicks: vec![0.0; items],
            conversions: vec![0.0; items],
            renewals: vec![0.0; items],
            ..ScoreWeighted::default()
        }
    }

    /// Adds `other` into `self` (both of the same catalogue).
    pub fn add(&mut self, other: &ScoreWeighted) {
        let add = |a: &mut Vec<f64>, b: &Vec<f64>| a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
        add(&mut self.exposures, &other.exposures);
        add(&mut self.clicks, &other.clicks);
        add(&mut self.conversions, &other.conversions);
        add(&mut self.renewals, &other.renewals);
        self.registrations += other.registrations;
        self.churned += other.churned;
        self.dormant += other.dormant;
        self.aware += other.aware;
        self.active_payers += other.active_payers;
        self.satisfaction_sum += other.satisfaction_sum;
        self.revenue += other.revenue;
    }

    /// Back to zero, keeping the catalogue size.
    pub fn clear(&mut self) {
        for v in [
            &mut self.exposures,
            &mut self.clicks,
            &mut self.conversions,
            &mut self.renewals,
        ] {
            v.fill(0.0);
        }
        for x in [
            &mut self.registrations,
            &mut self.churned,
            &mut self.dormant,
            &mut self.aware,
            &mut self.active_payers,
            &mut self.satisfaction_sum,
            &mut self.revenue,
        ] {
            *x = 0.0;
        }
    }
}

/// Present only when the per-user score is wanted: every user's running score,
/// by user number (8 bytes per user), and the weighted counts so far.
#[derive(Resource, Debug, Clone)]
pub struct UserScores {
    /// `s_u`, the sum of `β·(x − p)` over user `u`'s draws so far.
    pub running: Vec<f64>,
    pub weighted: ScoreWeighted,
}

impl UserScores {
    pub fn new(population: u32, items: usize) -> Self {
        UserScores {
            running: vec![0.0; population as usize],
            weighted: ScoreWeighted::new(items),
        }
    }
}

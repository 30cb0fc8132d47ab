//! Local word of mouth on the social network (MODEL.md v2, "Social-network word
//! of mouth"): each user's start-of-day sum of its paying neighbours'
//! satisfaction, step 1's exposure with `ω^net_{u,t}`, and the day's changes to
//! the sums, applied after the day.
//!
//! Per user the engine keeps one `u64`: `Σ_{v ∈ N(u), v Paying} sat_v` in the
//! fixed-point units of `Aggregates::satisfaction_sum` (2^-32), so sums are exact
//! integers whatever the order of the updates or the number of threads. Users
//! whose sum is zero keep the 64-lane draw of step 1 at their segment's
//! probability; the others draw from the same key with their own probability.

use std::sync::Arc;

use bevy_ecs::prelude::*;

use super::resources::SATISFACTION_UNIT;
use crate::model;
use crate::network::Graph;
use crate::rng::{Chance, EventStream};

/// The network of one replication and each user's neighbour sum.
#[derive(Resource, Debug)]
pub struct NetworkState {
    pub graph: Arc<Graph>,
    /// Per user: `Σ sat_v` over its neighbours `v` in `Paying` at the start of the
    /// day, in units of 2^-32. Only read for users still in the funnel.
    pub neighbour_sums: Vec<u64>,
    /// `(user, satisfaction units)` of the users who started paying today (the
    /// funnel's conversions), applied to their neighbours' sums after the day.
    pub started: Vec<(u32, u64)>,
    /// The same for the users who stopped paying today (churn).
    pub stopped: Vec<(u32, u64)>,
}

impl NetworkState {
    /// Every user's sum zero: nobody pays at the start.
    pub fn new(graph: Arc<Graph>) -> Self {
        NetworkState {
            neighbour_sums: vec![0; graph.users() as usize],
            graph,
            started: Vec::new(),
            stopped: Vec::new(),
        }
    }

    /// `user` starts paying with `units` of satisfaction: each neighbour's sum
    /// grows by them (at once: for a seeded user, before the day's aggregates).
    pub fn add_payer(&mut self, user: u32, units: u64) {
        for &v in self.graph.neighbours(user) {
            self.neighbour_sums[v as usize] += units;
        }
    }

    /// `user`, paying with `units` of satisfaction, stops.
    pub fn remove_payer(&mut self, user: u32, units: u64) {
        for &v in self.graph.neighbours(user) {
            self.neighbour_sums[v as usize] -= units;
        }
    }

    /// The day's changes, applied to the sums: what the next day starts from.
    pub fn apply_day_changes(&mut self) {
        let started = std::mem::take(&mut self.started);
        let stopped = std::mem::take(&mut self.stopped);
        for &(user, units) in &started {
            self.add_payer(user, units);
        }
        for &(user, units) in &stopped {
            self.remove_payer(user, units);
        }
        // Keep the allocations for tomorrow.
        self.started = started;
        self.started.clear();
        self.stopped = stopped;
        self.stopped.clear();
    }

    /// Bytes this state holds beyond the graph: one `u64` per user.
    pub fn heap_bytes(&self) -> usize {
        8 * self.neighbour_sums.capacity()
            + 12 * (self.started.capacity() + self.stopped.capacity())
    }
}

/// End of day, after churn: the day's new and lost payers change their
/// neighbours' sums, so the next day's step 1 sees start-of-day values.
pub fn update_neighbour_sums(network: Option<ResMut<NetworkState>>) {
    if let Some(mut network) = network {
        network.apply_day_changes();
    }
}

/// What step 1 needs of the network on one day, shared by every block.
#[derive(Debug, Clone, Copy)]
pub struct NetworkDay<'a> {
    pub graph: &'a Graph,
    pub neighbour_sums: &'a [u64],
    /// `q_net` of the day.
    pub word_of_mouth: f64,
    /// `ω_t`, the mean-field rate of the day.
    pub mean_field_rate: f64,
    /// `λ_s` per segment.
    pub channel_rates: &'a [f64],
    /// Step 1's probability per segment without the network (`1 − exp(−(λ_s + ω_t))`).
    pub segment_probabilities: &'a [f64],
}

impl NetworkDay<'_> {
    /// Step 1 for the users `first_user + i` whose bit `i` is set in `among`, of
    /// segment `segment`, given `base`: their draws at the segment's probability
    /// (the users with a zero neighbour sum keep them). A user with a positive
    /// sum is exposed iff its draw (the same key) falls below its own
    /// probability `1 − exp(−(λ_s + ω_t + ω^net_{u,t}))`. That probability is at
    /// least the segment's (the rate only grows, and `exp`, float addition and
    /// [`Chance::new`] are monotone), so a user `base` exposes stays exposed, and
    /// only the others draw again.
    #[inline]
    pub fn exposed(
        &self,
        stream: EventStream,
        first_user: u32,
        among: u64,
        base: u64,
        segment: usize,
    ) -> u64 {
        let start = first_user as usize;
        let end = (start + 64).min(self.neighbour_sums.len());
        let mut with_friends = 0u64;
        for (i, &sum) in self.neighbour_sums[start..end].iter().enumerate() {
            with_friends |= u64::from(sum != 0) << i;
        }
        let mut left = among & !base & with_friends;
        let mut hits = base;
        while left != 0 {
            let bit = left.trailing_zeros();
            left &= left - 1;
            let user = first_user + bit;
            if self.exposed_with_friends(stream, user, segment) {
                hits |= 1 << bit;
            }
        }
        hits
    }

    /// The draw of step 1 for `user` (of `segment`, with a positive neighbour
    /// sum) at its own probability.
    #[inline]
    fn exposed_with_friends(&self, stream: EventStream, user: u32, segment: usize) -> bool {
        let sum = self.neighbour_sums[user as usize] as f64 / SATISFACTION_UNIT;
        let local =
            model::network_word_of_mouth_rate(self.word_of_mouth, sum, self.graph.degree(user));
        // The probability exceeds the segment's by at most `local` (since
        // `1 − e^{−(a+x)} − (1 − e^{−a}) = e^{−a}(1 − e^{−x}) ≤ x`): a draw
        // above that bound is no exposure, without computing `exp`. The margin
        // covers the rounding of the exact probability (far below 1e-12).
        let bound = self.segment_probabilities[segment] + local + 1e-12;
        if !stream.happens(user, Chance::new(bound)) {
            return false;
        }
        let probability =
            model::exposure_probability(self.channel_rates[segment], self.mean_field_rate + local);
        stream.happens(user, Chance::new(probability))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::resources::satisfaction_units;
    use crate::rng::ReplicationKey;

    /// The star on `n` users with centre 0; the path 0 – 1 – … – n−1.
    fn star(n: u32) -> Arc<Graph> {
        Arc::new(Graph::from_edges(
            n,
            &(1..n).map(|v| (0, v)).collect::<Vec<_>>(),
        ))
    }
    fn path(n: u32) -> Arc<Graph> {
        Arc::new(Graph::from_edges(
            n,
            &(1..n).map(|v| (v - 1, v)).collect::<Vec<_>>(),
        ))
    }

    /// `ω^net_{u,t}` of every user from the state's sums.
    fn rates(state: &NetworkState, q_net: f64) -> Vec<f64> {
        (0..state.graph.users())
            .map(|u| {
                model::network_word_of_mouth_rate(
                    q_net,
                    state.neighbour_sums[u as usize] as f64 / SATISFACTION_UNIT,
                    state.graph.degree(u),
                )
            })
            .collect()
    }

    #[test]
    fn neighbour_sums_change_only_after_the_day_and_follow_payers_and_churners() {
        let mut state = NetworkState::new(star(5));
        let half = satisfaction_units(0.5);
        // The centre starts paying on day 0: nobody's rate changes that day.
        state.started.push((0, half));
        assert_eq!(rates(&state, 0.4), vec![0.0; 5]);
        state.apply_day_changes();
        // Day 1: each leaf's only neighbour pays with sat 0.5: ω = 0.4·0.5/1.
        assert_eq!(rates(&state, 0.4), vec![0.0, 0.2, 0.2, 0.2, 0.2]);
        // Two leaves start paying (sat 0.5 and 1.0): the centre's share is
        // (0.5 + 1.0)/4 from day 2 on.
        state.started.push((1, half));
        state.started.push((2, satisfaction_units(1.0)));
        state.apply_day_changes();
        let day2 = rates(&state, 0.4);
        assert!((day2[0] - 0.4 * 1.5 / 4.0).abs() < 1e-15, "{day2:?}");
        assert_eq!(&day2[1..], &[0.2, 0.2, 0.2, 0.2]);
        // The centre churns: the leaves' sums return to exactly zero.
        state.stopped.push((0, half));
        state.apply_day_changes();
        assert_eq!(&state.neighbour_sums[1..], &[0, 0, 0, 0]);
        assert_eq!(state.neighbour_sums[0], half + satisfaction_units(1.0));
        assert!(state.started.is_empty() && state.stopped.is_empty());
    }

    #[test]
    fn on_a_path_a_payer_reaches_its_two_neighbours_and_isolated_users_none() {
        let mut state = NetworkState::new(path(4));
        state.add_payer(1, satisfaction_units(1.0));
        // Users 0 and 2 see 1 paying: deg 1 and deg 2.
        assert_eq!(rates(&state, 0.3), vec![0.3, 0.0, 0.15, 0.0]);
        let mut empty = NetworkState::new(Arc::new(Graph::from_edges(3, &[])));
        empty.add_payer(1, satisfaction_units(1.0));
        assert_eq!(rates(&empty, 0.3), vec![0.0; 3]);
    }

    /// Users without paying friends keep the segment's draw, bit for bit; those
    /// with paying friends are exposed exactly when their own probability says,
    /// from the same key.
    #[test]
    fn step_one_draws_each_user_with_friends_at_its_own_probability() {
        let users = 128u32;
        let graph = star(users);
        let mut sums = vec![0u64; users as usize];
        for (u, sum) in sums.iter_mut().enumerate().skip(1) {
            if u % 3 == 0 {
                *sum = satisfaction_units((u % 7) as f32 / 7.0);
            }
        }
        let channel_rates = [0.05];
        let mean_field_rate = 0.02;
        let probability = model::exposure_probability(0.05, 0.02);
        let day = NetworkDay {
            graph: &graph,
            neighbour_sums: &sums,
            word_of_mouth: 2.5,
            mean_field_rate,
            channel_rates: &channel_rates,
            segment_probabilities: &[probability],
        };
        let mut seen_friend_exposures = 0;
        for t in 0..50 {
            let stream = ReplicationKey::new(3, 1).stream(t, crate::rng::Event::Exposure);
            for first in [0u32, 64] {
                let among = u64::MAX;
                let base = (0..64).fold(0u64, |mask, i| {
                    mask | u64::from(stream.happens(first + i, Chance::new(probability))) << i
                });
                let hits = day.exposed(stream, first, among, base, 0);
                for i in 0..64 {
                    let user = first + i;
                    let own = model::exposure_probability(
                        0.05,
                        mean_field_rate
                            + model::network_word_of_mouth_rate(
                                2.5,
                                sums[user as usize] as f64 / SATISFACTION_UNIT,
                                graph.degree(user),
                            ),
                    );
                    let expected = stream.happens(user, Chance::new(own));
                    assert_eq!(hits >> i & 1 == 1, expected, "day {t}, user {user}");
                    if sums[user as usize] != 0 && expected && base >> i & 1 == 0 {
                        seen_friend_exposures += 1;
                    }
                }
            }
        }
        assert!(seen_friend_exposures > 100, "{seen_friend_exposures}");
    }
}

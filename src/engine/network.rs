//! Local word of mouth on the social network (MODEL.md v2, "Social-network word
//! of mouth"): each user's start-of-day sum of its paying neighbours'
//! satisfaction, step 1's exposure with `ω^net_{u,t}`, and the day's changes to
//! the sums, applied after the day.
//!
//! Per user the engine keeps 12 bytes and a bit: `Σ_{v ∈ N(u), v Paying} sat_v`
//! (`u64`) in the fixed-point units of `Aggregates::satisfaction_sum` (2^-32), so
//! sums are exact integers whatever the order of the updates or the number of
//! threads; an upper bound of `ω^net_{u,t}` in units of 2^-32 (`u32`), refreshed
//! when the sum changes, so the funnel scan bounds users' probabilities with
//! integer additions; and whether the sum is positive (one bit), so a day's scan
//! reads only the bits of users without paying friends, who keep the 64-lane
//! draw of step 1 at their segment's probability. The others draw from the same
//! key with their own probability.

use std::sync::Arc;

use bevy_ecs::prelude::*;

use super::resources::SATISFACTION_UNIT;
use crate::model;
use crate::network::Graph;
use crate::rng::{Chance, EventStream, WideDraws};

/// The network of one replication and each user's neighbour sum.
#[derive(Resource, Debug)]
pub struct NetworkState {
    pub graph: Arc<Graph>,
    /// Per user: `Σ sat_v` over its neighbours `v` in `Paying` at the start of the
    /// day, in units of 2^-32. Only read for users still in the funnel.
    pub neighbour_sums: Vec<u64>,
    /// Per user: 0 where the sum is 0, else at least `ω^net_{u,t}·2^32` (see
    /// [`bound_increment`]): shifted 32 bits up and added to the threshold of the
    /// segment's probability it bounds the user's own.
    pub bound_increments: Vec<u32>,
    /// Bit `u % 64` of word `u / 64` set where user `u`'s sum is positive: the
    /// funnel scan finds the users with paying friends among 64 with one or two
    /// loads.
    pub with_friends: Vec<u64>,
    /// `q_net` of this replication (fixed over the horizon).
    pub word_of_mouth: f64,
    /// `(user, satisfaction units)` of the users who started paying today (the
    /// funnel's conversions), applied to their neighbours' sums after the day.
    pub started: Vec<(u32, u64)>,
    /// The same for the users who stopped paying today (churn).
    pub stopped: Vec<(u32, u64)>,
}

impl NetworkState {
    /// Every user's sum zero: nobody pays at the start; `word_of_mouth` is `q_net`.
    pub fn new(graph: Arc<Graph>, word_of_mouth: f64) -> Self {
        NetworkState {
            neighbour_sums: vec![0; graph.users() as usize],
            bound_increments: vec![0; graph.users() as usize],
            with_friends: vec![0; graph.users().div_ceil(64) as usize],
            word_of_mouth,
            graph,
            started: Vec::new(),
            stopped: Vec::new(),
        }
    }

    /// `user` starts paying with `units` of satisfaction: each neighbour's sum
    /// grows by them (at once: for a seeded user, before the day's aggregates).
    pub fn add_payer(&mut self, user: u32, units: u64) {
        let graph = Arc::clone(&self.graph);
        for &v in graph.neighbours(user) {
            self.neighbour_sums[v as usize] += units;
            self.refresh(v);
        }
    }

    /// The bound and the friends bit of `user` from its sum.
    #[inline]
    fn refresh(&mut self, user: u32) {
        let sum = self.neighbour_sums[user as usize];
        self.bound_increments[user as usize] =
            bound_increment(self.word_of_mouth, sum, self.graph.degree(user));
        let word = &mut self.with_friends[user as usize / 64];
        let bit = 1u64 << (user % 64);
        if sum == 0 {
            *word &= !bit;
        } else {
            *word |= bit;
        }
    }

    /// `user`, paying with `units` of satisfaction, stops.
    pub fn remove_payer(&mut self, user: u32, units: u64) {
        let graph = Arc::clone(&self.graph);
        for &v in graph.neighbours(user) {
            self.neighbour_sums[v as usize] -= units;
            self.refresh(v);
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

    /// Bytes this state holds beyond the graph: two `u64` per user, and the
    /// day's change lists.
    pub fn heap_bytes(&self) -> usize {
        8 * (self.neighbour_sums.capacity() + self.with_friends.capacity())
            + 4 * self.bound_increments.capacity()
            + 12 * (self.started.capacity() + self.stopped.capacity())
    }
}

/// `b` such that `b·2^32` added to the threshold of the segment's probability
/// `p_s` (a [`Chance`]) bounds the threshold of a user's own probability
/// `p_u = 1 − exp(−(λ_s + ω_t + x))`, `x = ω^net_{u,t}` (from the neighbour sum
/// `sum` in units of 2^-32 and the degree): `p_u − p_s = e^{−(λ_s+ω_t)}(1 − e^{−x})
/// ≤ x`, so `⌊p_u·2^64⌋ ≤ ⌊p_s·2^64⌋ + ⌈(x + 1e-12)·2^64⌉ + 1 ≤ ⌊p_s·2^64⌋ + b·2^32`
/// with `b = ⌈(x + 1e-12)·2^32⌉ + 1` (the `1e-12` covers the rounding of both
/// probabilities, far below it). 0 for a zero sum (the user keeps the segment's
/// draw); `u32::MAX` (always above) when the bound nears 1.
pub fn bound_increment(word_of_mouth: f64, sum: u64, degree: u32) -> u32 {
    if sum == 0 {
        return 0;
    }
    let x =
        model::network_word_of_mouth_rate(word_of_mouth, sum as f64 / SATISFACTION_UNIT, degree);
    let scaled = ((x + 1e-12) * 4_294_967_296.0).ceil() + 1.0;
    if scaled >= f64::from(u32::MAX) {
        u32::MAX
    } else {
        scaled as u32
    }
}

/// The threshold of a user's bound: the segment's `threshold` plus its
/// [`bound_increment`] `b·2^32` (always, `u64::MAX`, for `b = u32::MAX`).
#[inline]
fn bound_threshold(segment_threshold: u64, increment: u32) -> u64 {
    if increment == u32::MAX {
        u64::MAX
    } else {
        segment_threshold.saturating_add(u64::from(increment) << 32)
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
    /// [`NetworkState::bound_increments`].
    pub bound_increments: &'a [u32],
    /// [`NetworkState::with_friends`].
    pub with_friends: &'a [u64],
    /// `q_net` of the day.
    pub word_of_mouth: f64,
    /// `ω_t`, the mean-field rate of the day.
    pub mean_field_rate: f64,
    /// `λ_s` per segment.
    pub channel_rates: &'a [f64],
    /// Step 1's chance per segment without the network (`1 − exp(−(λ_s + ω_t))`),
    /// as the 64-lane draw uses it.
    pub segment_chances: &'a [Chance],
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
        wide: WideDraws,
        first_user: u32,
        among: u64,
        base: u64,
        segment: usize,
    ) -> u64 {
        let undecided = among & !base & self.friends_among(first_user);
        if undecided == 0 {
            return base;
        }
        // First each one's bound (see [`bound_increment`]): a draw above it is
        // no exposure, without computing `exp`. Many at once (AVX-512 where the
        // CPU has it), or few one by one.
        let segment_threshold = self.segment_chances[segment].threshold();
        let bound =
            |user: u32| bound_threshold(segment_threshold, self.bound_increments[user as usize]);
        let mut left = if undecided.count_ones() >= 8 {
            // Branch-free over the 64 users (the draw leaves out all but the
            // undecided ones).
            let start = first_user as usize;
            let increments =
                &self.bound_increments[start..(start + 64).min(self.bound_increments.len())];
            let bounds: [Chance; 64] = match <&[u32; 64]>::try_from(increments) {
                Ok(increments) => std::array::from_fn(|i| {
                    Chance::from_threshold(bound_threshold(segment_threshold, increments[i]))
                }),
                Err(_) => std::array::from_fn(|i| {
                    Chance::from_threshold(increments.get(i).map_or(0, |&increment| {
                        bound_threshold(segment_threshold, increment)
                    }))
                }),
            };
            stream.happens_each(wide, first_user, undecided, &bounds)
        } else {
            let mut below = 0;
            let mut lanes = undecided;
            while lanes != 0 {
                let bit = lanes.trailing_zeros();
                lanes &= lanes - 1;
                let user = first_user + bit;
                if stream.happens(user, Chance::from_threshold(bound(user))) {
                    below |= 1 << bit;
                }
            }
            below
        };
        let mut hits = base;
        while left != 0 {
            let bit = left.trailing_zeros();
            left &= left - 1;
            let user = first_user + bit;
            let local = self.local_rate(user, self.neighbour_sums[user as usize]);
            let probability = model::exposure_probability(
                self.channel_rates[segment],
                self.mean_field_rate + local,
            );
            if stream.happens(user, Chance::new(probability)) {
                hits |= 1 << bit;
            }
        }
        hits
    }

    /// Bit `i` set where user `first_user + i` has a positive neighbour sum.
    #[inline]
    fn friends_among(&self, first_user: u32) -> u64 {
        let word = first_user as usize / 64;
        let offset = first_user % 64;
        let low = self
            .with_friends
            .get(word)
            .map_or(0, |&bits| bits >> offset);
        if offset == 0 {
            return low;
        }
        let high = self
            .with_friends
            .get(word + 1)
            .map_or(0, |&bits| bits << (64 - offset));
        low | high
    }

    /// `ω^net_{u,t}` of `user`, whose neighbour sum is `sum` (in units of 2^-32).
    #[inline]
    fn local_rate(&self, user: u32, sum: u64) -> f64 {
        model::network_word_of_mouth_rate(
            self.word_of_mouth,
            sum as f64 / SATISFACTION_UNIT,
            self.graph.degree(user),
        )
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
        let mut state = NetworkState::new(star(5), 0.4);
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
        let mut state = NetworkState::new(path(4), 0.3);
        state.add_payer(1, satisfaction_units(1.0));
        // Users 0 and 2 see 1 paying: deg 1 and deg 2.
        assert_eq!(rates(&state, 0.3), vec![0.3, 0.0, 0.15, 0.0]);
        let mut empty = NetworkState::new(Arc::new(Graph::from_edges(3, &[])), 0.3);
        empty.add_payer(1, satisfaction_units(1.0));
        assert_eq!(rates(&empty, 0.3), vec![0.0; 3]);
    }

    /// Users without paying friends keep the segment's draw, bit for bit; those
    /// with paying friends are exposed exactly when their own probability says,
    /// from the same key.
    #[test]
    fn step_one_draws_each_user_with_friends_at_its_own_probability() {
        let users = 128u32;
        let graph = path(users);
        let mut state = NetworkState::new(Arc::clone(&graph), 2.5);
        // Every fifth user pays: its two neighbours have paying friends, the
        // others none. One stops again: its neighbours' sums return to zero.
        for payer in (0..users).step_by(5) {
            state.add_payer(payer, satisfaction_units((payer % 7) as f32 / 7.0 + 0.1));
        }
        state.remove_payer(50, satisfaction_units((50 % 7) as f32 / 7.0 + 0.1));
        assert_eq!(
            (state.neighbour_sums[49], state.bound_increments[51]),
            (0, 0)
        );
        let with_friends = state.neighbour_sums.iter().filter(|&&sum| sum > 0).count();
        assert!((40..60).contains(&with_friends), "{with_friends}");
        let sums = state.neighbour_sums.clone();
        let channel_rates = [0.05];
        let mean_field_rate = 0.02;
        let probability = model::exposure_probability(0.05, 0.02);
        let day = NetworkDay {
            graph: &graph,
            neighbour_sums: &sums,
            bound_increments: &state.bound_increments,
            with_friends: &state.with_friends,
            word_of_mouth: 2.5,
            mean_field_rate,
            channel_rates: &channel_rates,
            segment_chances: &[Chance::new(probability)],
        };
        let mut seen_friend_exposures = 0;
        for t in 0..50 {
            let stream = ReplicationKey::new(3, 1).stream(t, crate::rng::Event::Exposure);
            for (first, wide) in [0u32, 64].into_iter().flat_map(|first| {
                [
                    (first, WideDraws::detect()),
                    (first, WideDraws::one_by_one()),
                ]
            }) {
                let among = u64::MAX;
                let base = (0..64).fold(0u64, |mask, i| {
                    mask | u64::from(stream.happens(first + i, Chance::new(probability))) << i
                });
                let hits = day.exposed(stream, wide, first, among, base, 0);
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

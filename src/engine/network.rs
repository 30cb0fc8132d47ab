//! Local word of mouth on the social network (MODEL.md v2, "Social-network word
//! of mouth"): each user's start-of-day sum of its paying neighbours'
//! satisfaction, step 1's exposure with `ω^net_{u,t}`, and the day's changes to
//! the sums, applied after the day.
//!
//! Per user the engine keeps 10 bytes and a bit: `Σ_{v ∈ N(u), v Paying} sat_v`
//! (`u64`) in the fixed-point units of `Aggregates::satisfaction_sum` (2^-32), so
//! sums are exact integers whatever the order of the updates or the number of
//! threads; the [`Headroom`] of `ω^net_{u,t}` (`u16`: the rate rounded up to a
//! multiple of 2^-16), computed from the sum when it changes; and whether the
//! sum is positive (one bit), so a day's scan reads only the bits of users
//! without paying friends, who keep the 64-lane draw of step 1 at their
//! segment's probability. For the others the same draws are compared with
//! their headroom above it in the same pass. A draw within it (a few in a
//! hundred) is decided by a lower bound of the user's probability from the
//! headroom alone, and only the few left between the bounds compute
//! `ω^net_{u,t}` and the exact probability.

use std::sync::Arc;

use bevy_ecs::prelude::*;

use super::resources::SATISFACTION_UNIT;
use crate::model;
use crate::network::Graph;
use crate::rng::{Chance, EventStream, Headroom, WideDraws};

/// The network of one replication and each user's neighbour sum.
#[derive(Resource, Debug)]
pub struct NetworkState {
    pub graph: Arc<Graph>,
    /// Per user: `Σ sat_v` over its neighbours `v` in `Paying` at the start of the
    /// day, in units of 2^-32. Only read for users still in the funnel.
    pub neighbour_sums: Vec<u64>,
    /// Per user: `Headroom::at_least(ω^net_{u,t})`, with `ω^net_{u,t}` from
    /// its neighbour sum and degree ([`local_rate`]), refreshed when the sum
    /// changes: step 1 reads it 64 consecutive users at once.
    pub headrooms: Vec<Headroom>,
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
            headrooms: vec![Headroom::NONE; graph.users() as usize],
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

    /// The headroom and the friends bit of `user` from its sum.
    #[inline]
    fn refresh(&mut self, user: u32) {
        let sum = self.neighbour_sums[user as usize];
        self.headrooms[user as usize] =
            Headroom::at_least(local_rate(self.word_of_mouth, &self.graph, sum, user));
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

    /// Bytes this state holds beyond the graph: 10 bytes and a bit per user,
    /// and the day's change lists.
    pub fn heap_bytes(&self) -> usize {
        8 * (self.neighbour_sums.capacity() + self.with_friends.capacity())
            + 2 * self.headrooms.capacity()
            + 12 * (self.started.capacity() + self.stopped.capacity())
    }
}

/// `ω^net_{u,t}` of `user` with neighbour sum `sum` (units of 2^-32) on
/// `graph`: [`model::network_word_of_mouth_rate`], 0 where the sum is 0.
#[inline]
fn local_rate(word_of_mouth: f64, graph: &Graph, sum: u64, user: u32) -> f64 {
    if sum == 0 {
        0.0
    } else {
        model::network_word_of_mouth_rate(
            word_of_mouth,
            sum as f64 / SATISFACTION_UNIT,
            graph.degree(user),
        )
    }
}

/// Up to this many users with paying friends among a word's 64 are checked
/// one by one after the word's 64-lane draw; more, in the same 64-lane pass as
/// it ([`EventStream::happens_among_within`]). Measured (BENCHMARKS.md, issue
/// 15's fourth session): 1 is fastest, 6 clearly slower.
const FEW_FRIENDS: u32 = 1;

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
    /// [`NetworkState::neighbour_sums`].
    pub neighbour_sums: &'a [u64],
    /// [`NetworkState::headrooms`].
    pub headrooms: &'a [Headroom],
    /// [`NetworkState::graph`].
    pub graph: &'a Graph,
    /// `q_net`.
    pub word_of_mouth: f64,
    /// [`NetworkState::with_friends`].
    pub with_friends: &'a [u64],
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
    /// segment `segment`: which of them are exposed. A user with a zero
    /// neighbour sum is exposed iff its draw falls below the segment's
    /// probability (the 64-lane draw of the model without a network); a user
    /// with a positive sum iff it falls below its own probability
    /// `p_u = 1 − exp(−(λ_s + ω_t + ω^net_{u,t}))`. Both from the same key. Each
    /// draw is hashed once and compared with the segment's threshold and with
    /// the user's headroom above it. `p_u` is at least `p_s` (the rate only
    /// grows, and `exp`, float addition and [`Chance::new`] are monotone), and at
    /// most `ω^net_{u,t}` above it: `p_u − p_s = e^{−(λ_s+ω_t)}(1 − e^{−x}) <= x`
    /// with `x = ω^net_{u,t}`, and the floating-point `p_u`, `p_s` and their
    /// truncations to thresholds ([`Chance::new`]) are off by far less than
    /// 2^-40, inside the 2^-17 that [`Headroom::at_least`] keeps. So only the
    /// users with paying friends whose draw the headroom admits need more: a
    /// lower bound from the headroom ([`Headroom::lower_chance`]) decides
    /// most, `p_u` itself the rest.
    #[inline]
    pub fn exposed(
        &self,
        stream: EventStream,
        wide: WideDraws,
        first_user: u32,
        among: u64,
        segment: usize,
    ) -> u64 {
        let chance = self.segment_chances[segment];
        let friends = among & self.friends_among(first_user);
        if friends == 0 {
            return stream.happens_among(wide, first_user, among, chance);
        }
        let start = first_user as usize;
        // A user whose draw its headroom admitted: exposed iff below its own
        // probability. Most such draws fall below a lower bound from the
        // headroom alone (`Headroom::lower_chance`): exposed without
        // computing `ω^net_{u,t}` or `exp`.
        let exact = |user: u32| {
            let index = user as usize;
            if stream.happens(user, self.headrooms[index].lower_chance(chance)) {
                return true;
            }
            let local = local_rate(
                self.word_of_mouth,
                self.graph,
                self.neighbour_sums[index],
                user,
            );
            stream.happens(
                user,
                Chance::new(model::exposure_probability(
                    self.channel_rates[segment],
                    self.mean_field_rate + local,
                )),
            )
        };
        if friends.count_ones() <= FEW_FRIENDS {
            // Few: the 64-lane draw at the segment's chance, then each of them
            // against its bound, one by one.
            let mut hits = stream.happens_among(wide, first_user, among, chance);
            let mut left = friends & !hits;
            while left != 0 {
                let bit = left.trailing_zeros();
                left &= left - 1;
                let user = first_user + bit;
                if self.headrooms[start + bit as usize].admits(stream, user, chance) && exact(user)
                {
                    hits |= 1 << bit;
                }
            }
            return hits;
        }
        let rooms = &self.headrooms[start..(start + 64).min(self.headrooms.len())];
        let padded: [Headroom; 64];
        let headrooms = match <&[Headroom; 64]>::try_from(rooms) {
            Ok(headrooms) => headrooms,
            Err(_) => {
                padded = std::array::from_fn(|i| rooms.get(i).copied().unwrap_or(Headroom::NONE));
                &padded
            }
        };
        let (mut hits, between) =
            stream.happens_among_within(wide, first_user, among, chance, headrooms);
        let mut left = between & friends;
        while left != 0 {
            let bit = left.trailing_zeros();
            left &= left - 1;
            if exact(first_user + bit) {
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

    /// The headroom and its lower chance enclose a user's threshold, for rates from 0 to where the
    /// probability nears 1, at tiny and large `x`: below the lower bound is
    /// always an exposure, beyond the headroom never.
    #[test]
    fn the_lower_and_upper_bounds_enclose_the_exact_threshold() {
        let mut numbers = ReplicationKey::new(1, 2)
            .stream(0, crate::rng::Event::Topic)
            .generator(0);
        let two_64 = 18_446_744_073_709_551_616.0;
        for round in 0..200_000 {
            let scale = [1e-9, 1e-4, 0.01, 0.3, 3.0, 40.0][round % 6];
            let lambda = numbers.uniform() * scale;
            let omega = numbers.uniform() * scale * 0.5;
            let x = match round % 7 {
                0 => 0.0,
                1 => f64::MIN_POSITIVE,
                _ => numbers.uniform() * [1e-12, 1e-6, 0.05, 1.0, 30.0][round % 5],
            };
            let segment = Chance::new(model::exposure_probability(lambda, omega));
            let own = Chance::new(model::exposure_probability(lambda, omega + x)).threshold();
            assert!(
                Headroom::at_least(x).lower_chance(segment).threshold() <= own,
                "λ {lambda} ω {omega} x {x}"
            );
            // Within 2^-40 of `p_s + x`: far inside the 2^-17 of room that
            // `Headroom::at_least(x)` keeps above it (tested in `rng`).
            let upper =
                u128::from(segment.threshold()) + ((x * two_64).min(two_64) as u128) + (1 << 24);
            assert!(u128::from(own) <= upper, "λ {lambda} ω {omega} x {x}");
        }
    }

    /// Users without paying friends keep the segment's draw, bit for bit; those
    /// with paying friends are exposed exactly when their own probability says,
    /// from the same key.
    #[test]
    fn step_one_draws_each_user_with_friends_at_its_own_probability() {
        // Not a multiple of 64: the last word has two users.
        let users = 130u32;
        let graph = path(users);
        let mut state = NetworkState::new(Arc::clone(&graph), 2.5);
        // Every fifth user of the first word pays: its two neighbours have
        // paying friends, the others none (many in the word: the 64-lane
        // pass with headrooms); in the second word three (the same pass) and
        // in the third one (checked after the plain 64-lane draw). One stops
        // again: its neighbours' sums return to zero.
        for payer in (0..64).step_by(5).chain([64, 100, 129]) {
            state.add_payer(payer, satisfaction_units((payer % 7) as f32 / 7.0 + 0.1));
        }
        state.remove_payer(50, satisfaction_units((50 % 7) as f32 / 7.0 + 0.1));
        assert_eq!(
            (state.neighbour_sums[49], state.headrooms[51]),
            (0, Headroom::NONE)
        );
        let with_friends = state.neighbour_sums.iter().filter(|&&sum| sum > 0).count();
        // User 0 has one neighbour; 49 and 51 lost theirs; 63 and 65 hear of 64.
        assert_eq!(with_friends, 13 * 2 - 1 - 2 + 2 + 2 + 1);
        let friends_in = |word: usize| state.with_friends[word].count_ones();
        assert_eq!(
            (friends_in(0), friends_in(1), friends_in(2)),
            (24, 3, 1),
            "two words of several (the 64-lane pass with headrooms) and one of one"
        );
        assert!(friends_in(2) <= FEW_FRIENDS && friends_in(1) > FEW_FRIENDS);
        let sums = state.neighbour_sums.clone();
        let channel_rates = [0.05];
        let mean_field_rate = 0.02;
        let probability = model::exposure_probability(0.05, 0.02);
        let day = NetworkDay {
            neighbour_sums: &state.neighbour_sums,
            headrooms: &state.headrooms,
            graph: &state.graph,
            word_of_mouth: state.word_of_mouth,
            with_friends: &state.with_friends,
            mean_field_rate,
            channel_rates: &channel_rates,
            segment_chances: &[Chance::new(probability)],
        };
        let mut seen_friend_exposures = 0;
        for t in 0..50 {
            let stream = ReplicationKey::new(3, 1).stream(t, crate::rng::Event::Exposure);
            for (first, wide) in [0u32, 64, 128].into_iter().flat_map(|first| {
                [
                    (first, WideDraws::detect()),
                    (first, WideDraws::one_by_one()),
                ]
            }) {
                let count = (users - first).min(64);
                let among = u64::MAX >> (64 - count);
                let hits = day.exposed(stream, wide, first, among, 0);
                for i in 0..count {
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
                    if sums[user as usize] != 0
                        && expected
                        && !stream.happens(user, Chance::new(probability))
                    {
                        seen_friend_exposures += 1;
                    }
                }
                assert_eq!(hits & !among, 0);
            }
        }
        assert!(seen_friend_exposures > 100, "{seen_friend_exposures}");
    }
}

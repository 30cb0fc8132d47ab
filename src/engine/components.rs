//! Components of users and content items: small plain data, one concern each.
//!
//! A user's stage decides where it lives. `Unaware` and `Aware` users have no
//! state but two bits (still a prospect, ever exposed): they live in
//! [`ProspectBlock`]s, one bit pair each, until they register. From
//! registration on a user is an entity of its own: [`Profile`] plus
//! [`Registered`], then [`Subscription`] if it subscribes. A user who can
//! never act again (`Dormant`, `Churned`, or a one-off buyer, who stays
//! `Paying` to the end) is counted in the aggregates and despawned, which
//! frees its memory. So each system visits only the users who can act in its
//! step, and a market of millions in which few register costs little more
//! than its bits.

use bevy_ecs::prelude::*;

/// Who a user is: its number and its segment. Immutable. The traits a user
/// draws at the start (MODEL.md, "The population": favourite topic, click
/// propensity, churn probability) are pure functions of their keys and are drawn
/// when first needed (see `traits`): most users never need them, and memory and
/// start-up time per user are what limit a study.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
#[component(immutable)]
pub struct Profile {
    /// The user's number `u` in 0..N-1 (segment by segment, in file order): the
    /// user part of every random-draw key.
    pub user: u32,
    /// Index of the user's segment in the scenario.
    pub segment: u16,
}

/// Users of one segment with consecutive numbers who have not registered yet
/// (`Unaware` or `Aware`). Such users differ only by their number (their traits
/// are drawn from it when needed), so a block keeps two bits per user: whether
/// it is still here, and whether it was ever exposed. A user leaves the block
/// when it registers and becomes an entity of its own.
#[derive(Component, Debug, Clone, PartialEq, Eq)]
pub struct ProspectBlock {
    segment: u16,
    first_user: u32,
    /// Bit `i` of word `i / 64` stands for user `first_user + i`.
    words: Box<[ProspectWord]>,
}

/// Sixty-four users of a block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ProspectWord {
    /// Still a prospect (not registered).
    present: u64,
    /// Ever exposed (`Aware`); meaningful only where `present`.
    aware: u64,
}

impl ProspectBlock {
    /// Users `first_user..first_user + len` of `segment`, all `Unaware`.
    pub fn new(segment: u16, first_user: u32, len: u32) -> Self {
        let words = (0..len.div_ceil(64))
            .map(|w| {
                let in_word = (len - 64 * w).min(64);
                ProspectWord {
                    present: u64::MAX >> (64 - in_word),
                    aware: 0,
                }
            })
            .collect();
        ProspectBlock {
            segment,
            first_user,
            words,
        }
    }

    pub fn segment(&self) -> u16 {
        self.segment
    }

    /// Prospects still in the block.
    pub fn len(&self) -> usize {
        self.words
            .iter()
            .map(|w| w.present.count_ones() as usize)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|w| w.present == 0)
    }

    /// Whether `user` is in the block and was ever exposed.
    pub fn is_aware(&self, user: u32) -> bool {
        let (word, bit) = self.position(user);
        self.words
            .get(word)
            .is_some_and(|w| w.present & w.aware & bit != 0)
    }

    /// Step 1 for every prospect in the block, in user order, 64 users at a
    /// time: `exposed(first_user, among)` returns which of the users
    /// `first_user + i` whose bit `i` is set in `among` are exposed. Each
    /// exposed user becomes `Aware` and is passed to `on_exposed`. Returns how
    /// many were `Unaware` before.
    #[inline]
    pub fn expose(
        &mut self,
        mut exposed: impl FnMut(u32, u64) -> u64,
        mut on_exposed: impl FnMut(u32),
    ) -> u64 {
        let mut newly_aware = 0;
        for (w, word) in self.words.iter_mut().enumerate() {
            if word.present == 0 {
                continue;
            }
            let first_user = self.first_user + 64 * w as u32;
            let hits = exposed(first_user, word.present) & word.present;
            newly_aware += u64::from((hits & !word.aware).count_ones());
            word.aware |= hits;
            let mut left = hits;
            while left != 0 {
                on_exposed(first_user + left.trailing_zeros());
                left &= left - 1;
            }
        }
        newly_aware
    }

    /// Takes `user` out of the block (it registered).
    pub fn remove(&mut self, user: u32) {
        let (word, bit) = self.position(user);
        if let Some(word) = self.words.get_mut(word) {
            word.present &= !bit;
        }
    }

    fn position(&self, user: u32) -> (usize, u64) {
        let offset = user.wrapping_sub(self.first_user) as usize;
        (offset / 64, 1 << (offset % 64))
    }
}

/// A user in `Registered`: a prospect with an entity of its own, exposed like
/// any other and subject to dormancy. (Users who register today get it at the
/// end of the conversion step, so the next day's scans are the first to see
/// them.)
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered;

/// A subscriber: a user in `Paying` whose item renews. (A one-off buyer never
/// acts again; it counts in the aggregates and has no entity.) Its next
/// renewal day is booked in the `RenewalCalendar`.
#[derive(Component, Debug, Clone, Copy, PartialEq)]
pub struct Subscription {
    /// Index of the item in the scenario's `content`.
    pub item: u16,
    /// `sat_u` in [0, 1].
    pub satisfaction: f32,
    /// `h`, the churn probability at each renewal. It depends only on `π_u`,
    /// `V` and `sat_u`, none of which changes while the user subscribes, so
    /// it is computed once, when the user subscribes.
    pub churn_probability: f64,
}

/// A content item: its index in the scenario's `content`.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
#[component(immutable)]
pub struct ContentIndex(pub u16);

/// What happened to one content item over the horizon so far.
#[derive(Component, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ItemTally {
    pub exposures: u64,
    pub clicks: u64,
    pub conversions: u64,
    pub renewals: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The users `block.expose` passes on when `exposed` says yes to `chosen`.
    fn expose(block: &mut ProspectBlock, chosen: &[u32]) -> (Vec<u32>, u64) {
        let mut seen = Vec::new();
        let newly_aware = block.expose(
            |first, among| {
                (0..64)
                    .filter(|&i| among >> i & 1 == 1 && chosen.contains(&(first + i)))
                    .fold(0, |mask, i| mask | 1 << i)
            },
            |user| seen.push(user),
        );
        (seen, newly_aware)
    }

    #[test]
    fn a_new_block_holds_its_users_unaware() {
        let mut block = ProspectBlock::new(2, 1000, 130);
        assert_eq!((block.segment(), block.len()), (2, 130));
        assert!(!block.is_aware(1000));
        // Every user, and only them, is asked about.
        let mut asked = Vec::new();
        block.expose(
            |first, among| {
                asked.extend((0..64).filter(|&i| among >> i & 1 == 1).map(|i| first + i));
                0
            },
            |_| {},
        );
        assert_eq!(asked, (1000..1130).collect::<Vec<_>>());
    }

    #[test]
    fn exposure_makes_users_aware_once() {
        let mut block = ProspectBlock::new(0, 0, 200);
        assert_eq!(expose(&mut block, &[3, 64, 199]), (vec![3, 64, 199], 3));
        assert!(block.is_aware(64) && !block.is_aware(65));
        // Exposed again: passed on again, but not newly aware.
        assert_eq!(expose(&mut block, &[3, 5]), (vec![3, 5], 1));
        assert_eq!(block.len(), 200);
    }

    #[test]
    fn a_registered_user_leaves_the_block() {
        let mut block = ProspectBlock::new(0, 64, 100);
        expose(&mut block, &[70]);
        block.remove(70);
        block.remove(5); // not in this block: ignored
        assert_eq!(block.len(), 99);
        assert!(!block.is_aware(70));
        assert_eq!(expose(&mut block, &[70, 71]), (vec![71], 1));
        for user in 64..164 {
            block.remove(user);
        }
        assert!(block.is_empty());
    }
}

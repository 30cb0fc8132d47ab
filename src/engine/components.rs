//! Components of users and content items: small plain data, one concern each.
//!
//! A user's stage decides where it lives. `Unaware`, `Aware` and `Registered`
//! users have no state but three bits (still in the funnel, ever exposed,
//! registered): they live in [`ProspectBlock`]s until they pay or turn
//! `Dormant`. A subscriber is a place in the `Subscribers` resource's table:
//! its [`Profile`] and [`Subscription`], which never change while it
//! subscribes. A user who can never act again (`Dormant`, `Churned`, or a
//! one-off buyer, who stays `Paying` to the end) is only counted in the
//! aggregates. So each system visits only the users who can act in its step,
//! and a market of millions costs little more than its bits.

use bevy_ecs::prelude::*;

/// Who a user is: its number and its segment. Immutable. The traits a user
/// draws at the start (MODEL.md, "The population": favourite topic, click
/// propensity, churn probability) are pure functions of their keys and are drawn
/// when first needed (see `traits`): most users never need them, and memory and
/// start-up time per user are what limit a study.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// The user's number `u` in 0..N-1 (segment by segment, in file order): the
    /// user part of every random-draw key.
    pub user: u32,
    /// Index of the user's segment in the scenario.
    pub segment: u16,
}

/// Users of one segment with consecutive numbers who have not paid
/// (`Unaware`, `Aware` or `Registered`). Such users differ only by their number
/// (their traits are drawn from it when needed) and their stage, so a block
/// keeps three bits per user: still here, ever exposed, registered. A user
/// leaves the block when it pays (a subscriber joins the `Subscribers`) or
/// turns `Dormant`.
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
    /// Still in the funnel (has not paid, is not dormant).
    present: u64,
    /// Ever exposed (`Aware`); meaningful only where `present`.
    aware: u64,
    /// `Registered` (clicked once); only where `present`.
    registered: u64,
}

/// The stage of a user of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProspectStage {
    Unaware,
    Aware,
    Registered,
}

/// What an exposed user does with the item it is shown (steps 2–4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    /// Does not click.
    Ignores,
    /// Clicks and does not convert: it is (or stays) `Registered`.
    Registers,
    /// Clicks and converts: it leaves the block for `Paying`.
    Pays,
}

/// What one day did to a block's users, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockChanges {
    /// `Unaware` users exposed.
    pub newly_aware: u64,
    /// Users who clicked for the first time (whether they paid or not).
    pub registrations: u64,
    /// Users who turned `Dormant`.
    pub dormant: u64,
}

impl ProspectBlock {
    /// Users `first_user..first_user + len` of `segment`, all `Unaware`.
    pub fn new(segment: u16, first_user: u32, len: u32) -> Self {
        let words = (0..len.div_ceil(64))
            .map(|w| {
                let in_word = (len - 64 * w).min(64);
                ProspectWord {
                    present: u64::MAX >> (64 - in_word),
                    ..ProspectWord::default()
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

    /// The number of the block's first user.
    pub fn first_user(&self) -> u32 {
        self.first_user
    }

    /// Users still in the block, registered or not.
    pub fn len(&self) -> usize {
        self.count(|w| w.present)
    }

    /// `Registered` users in the block.
    pub fn registered_len(&self) -> usize {
        self.count(|w| w.registered)
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|w| w.present == 0)
    }

    fn count(&self, bits: impl Fn(&ProspectWord) -> u64) -> usize {
        self.words
            .iter()
            .map(|w| bits(w).count_ones() as usize)
            .sum()
    }

    /// The stage of `user`, if it is in the block.
    pub fn stage(&self, user: u32) -> Option<ProspectStage> {
        let offset = user.wrapping_sub(self.first_user) as usize;
        let word = self.words.get(offset / 64)?;
        let bit = 1 << (offset % 64);
        if word.present & bit == 0 {
            None
        } else if word.registered & bit != 0 {
            Some(ProspectStage::Registered)
        } else if word.aware & bit != 0 {
            Some(ProspectStage::Aware)
        } else {
            Some(ProspectStage::Unaware)
        }
    }

    /// The users still in the block, in user order.
    pub fn users(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(move |(w, word)| {
            let first = self.first_user + 64 * w as u32;
            let mut left = word.present;
            std::iter::from_fn(move || {
                (left != 0).then(|| {
                    let bit = left.trailing_zeros();
                    left &= left - 1;
                    first + bit
                })
            })
        })
    }

    /// Takes `user` out of the block (it starts paying without the funnel: a
    /// seeded user); its stage until now, or `None` if it was not in the block.
    pub fn take(&mut self, user: u32) -> Option<ProspectStage> {
        let stage = self.stage(user)?;
        let offset = (user - self.first_user) as usize;
        let word = &mut self.words[offset / 64];
        let bit = 1u64 << (offset % 64);
        word.present &= !bit;
        word.aware &= !bit;
        word.registered &= !bit;
        Some(stage)
    }

    /// Steps 1–5 of the day for every user of the block, in user order, 64
    /// users at a time.
    ///
    /// `exposed(first_user, among)` returns which of the users `first_user + i`
    /// whose bit `i` is set in `among` are exposed (step 1), and
    /// `drew_dormancy(first_user, among)` which of them drew dormancy (step 5),
    /// asked only about users registered at the start of the day. An exposed
    /// user becomes `Aware`. In a word with at least `triage_from` exposed
    /// users, `triage(first_user, hits)` may settle their steps 2–3 together
    /// and returns those who need more (the others ignore the exposure);
    /// `respond(user, word)` says what each of those does (steps 2–4; `word`
    /// is the user's word, and whether it was triaged): it becomes
    /// `Registered`, or leaves the block if it pays. A user registered at the
    /// start of the day who drew dormancy and did not pay leaves the block as
    /// `Dormant`.
    #[inline]
    pub fn live_day(
        &mut self,
        mut exposed: impl FnMut(u32, u64) -> u64,
        mut drew_dormancy: impl FnMut(u32, u64) -> u64,
        triage_from: u32,
        mut triage: impl FnMut(u32, u64) -> u64,
        mut respond: impl FnMut(u32, ExposedWord) -> Response,
    ) -> BlockChanges {
        let mut changes = BlockChanges::default();
        for (w, word) in self.words.iter_mut().enumerate() {
            if word.present == 0 {
                continue;
            }
            let first_user = self.first_user + 64 * w as u32;
            let dormancy = match word.registered {
                0 => 0,
                registered => drew_dormancy(first_user, registered) & registered,
            };
            let hits = exposed(first_user, word.present) & word.present;
            changes.newly_aware += u64::from((hits & !word.aware).count_ones());
            word.aware |= hits;
            let triaged = hits != 0 && hits.count_ones() >= triage_from;
            let exposed_word = ExposedWord {
                first_user,
                triaged,
            };
            let mut left = if triaged {
                triage(first_user, hits) & hits
            } else {
                hits
            };
            while left != 0 {
                let bit = left & left.wrapping_neg();
                let response = respond(first_user + left.trailing_zeros(), exposed_word);
                if response != Response::Ignores && word.registered & bit == 0 {
                    changes.registrations += 1;
                    word.registered |= bit;
                }
                if response == Response::Pays {
                    word.present &= !bit;
                    word.registered &= !bit;
                }
                left &= left - 1;
            }
            // Those who paid have left already.
            let lost = dormancy & word.present;
            word.present &= !lost;
            word.registered &= !lost;
            changes.dormant += u64::from(lost.count_ones());
        }
        changes
    }
}

/// The word of 64 of a user who responds to an exposure: its first user, and
/// whether its exposed users went through the triage of `live_day`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExposedWord {
    pub first_user: u32,
    pub triaged: bool,
}

/// A subscriber: a user in `Paying` whose item renews. (A one-off buyer never
/// acts again; it only counts in the aggregates.) It lives, with its
/// [`Profile`], in the `Subscribers` resource, which books its renewals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Subscription {
    /// Index of the item in the scenario's `content`.
    pub item: u16,
    /// `sat_u` in [0, 1].
    pub satisfaction: f32,
    /// `h`, the churn probability at each renewal, at the base scenario's `V`.
    /// It depends only on `π_u`, `V` and `sat_u`, so it is computed once, when
    /// the user subscribes; a renewal on a day whose `V_t` differs (a campaign
    /// or schedule sets `brand.value`) recomputes it at `V_t`. NaN for a
    /// subscriber whose first renewal lies past the horizon: it is never read,
    /// so it is not drawn.
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

    /// The bits of `among` (users `first + i`) that stand for one of `users`.
    fn mask(first: u32, among: u64, users: &[u32]) -> u64 {
        (0..64)
            .filter(|&i| among >> i & 1 == 1 && users.contains(&(first + i)))
            .fold(0, |mask, i| mask | 1 << i)
    }

    /// What a test day decides: who is exposed, who of them responds how
    /// (everyone else ignores), who draws dormancy.
    #[derive(Default)]
    struct Day<'a> {
        exposed: &'a [u32],
        registers: &'a [u32],
        pays: &'a [u32],
        dormant: &'a [u32],
    }

    /// Runs `day` on `block`: the changes, the users asked about exposure,
    /// those asked about dormancy, and those who responded.
    fn live(block: &mut ProspectBlock, day: Day) -> (BlockChanges, [Vec<u32>; 3]) {
        let mut asked = [Vec::new(), Vec::new(), Vec::new()];
        let [exposure, dormancy, responded] = &mut asked;
        let users = |first: u32, among: u64| {
            (0..64)
                .filter(move |&i| among >> i & 1 == 1)
                .map(move |i| first + i)
        };
        let changes = block.live_day(
            |first, among| {
                exposure.extend(users(first, among));
                mask(first, among, day.exposed)
            },
            |first, among| {
                dormancy.extend(users(first, among));
                mask(first, among, day.dormant)
            },
            // Words of 2 or more exposed users go through the triage, which
            // sends all of them on.
            2,
            |first, hits| {
                assert!(hits.count_ones() >= 2 && first % 64 == 0);
                hits
            },
            |user, word| {
                // The word handed over is the user's.
                assert!(user - word.first_user < 64);
                responded.push(user);
                if day.pays.contains(&user) {
                    Response::Pays
                } else if day.registers.contains(&user) {
                    Response::Registers
                } else {
                    Response::Ignores
                }
            },
        );
        (changes, asked)
    }

    #[test]
    fn a_new_block_holds_its_users_unaware() {
        let mut block = ProspectBlock::new(2, 1000, 130);
        assert_eq!(
            (block.segment(), block.len(), block.registered_len()),
            (2, 130, 0)
        );
        assert_eq!(block.stage(1000), Some(ProspectStage::Unaware));
        assert_eq!((block.stage(999), block.stage(1130)), (None, None));
        // Every user, and only them, is asked about exposure; nobody about
        // dormancy.
        let (changes, [exposure, dormancy, _]) = live(&mut block, Day::default());
        assert_eq!(exposure, (1000..1130).collect::<Vec<_>>());
        assert!(dormancy.is_empty());
        assert_eq!(changes, BlockChanges::default());
    }

    #[test]
    fn exposure_makes_users_aware_once() {
        let mut block = ProspectBlock::new(0, 0, 200);
        let day = Day {
            exposed: &[3, 64, 199],
            ..Day::default()
        };
        let (changes, [_, _, responded]) = live(&mut block, day);
        assert_eq!((changes.newly_aware, responded), (3, vec![3, 64, 199]));
        assert_eq!(block.stage(64), Some(ProspectStage::Aware));
        assert_eq!(block.stage(65), Some(ProspectStage::Unaware));
        // Exposed again: responds again, but is not newly aware.
        let day = Day {
            exposed: &[3, 5],
            ..Day::default()
        };
        let (changes, [_, _, responded]) = live(&mut block, day);
        assert_eq!((changes.newly_aware, responded), (1, vec![3, 5]));
        assert_eq!(block.len(), 200);
    }

    #[test]
    fn a_user_who_clicks_registers_once_and_stays() {
        let mut block = ProspectBlock::new(0, 64, 100);
        let day = Day {
            exposed: &[70, 71],
            registers: &[70],
            ..Day::default()
        };
        let (changes, _) = live(&mut block, day);
        assert_eq!(changes.registrations, 1);
        assert_eq!(block.stage(70), Some(ProspectStage::Registered));
        assert_eq!((block.len(), block.registered_len()), (100, 1));
        // Clicking again is not a new registration.
        let day = Day {
            exposed: &[70],
            registers: &[70],
            ..Day::default()
        };
        assert_eq!(live(&mut block, day).0.registrations, 0);
        assert_eq!(block.registered_len(), 1);
    }

    #[test]
    fn a_payer_leaves_the_block() {
        let mut block = ProspectBlock::new(0, 0, 100);
        let day = Day {
            exposed: &[1, 2],
            registers: &[2],
            ..Day::default()
        };
        live(&mut block, day);
        // 1 registers and pays the same day; 2 was registered already.
        let day = Day {
            exposed: &[1, 2],
            pays: &[1, 2],
            ..Day::default()
        };
        let (changes, _) = live(&mut block, day);
        assert_eq!(changes.registrations, 1);
        assert_eq!((block.stage(1), block.stage(2)), (None, None));
        assert_eq!((block.len(), block.registered_len()), (98, 0));
        // Gone users are asked about nothing.
        let day = Day {
            exposed: &[1, 2],
            pays: &[1, 2],
            ..Day::default()
        };
        let (_, [exposure, _, responded]) = live(&mut block, day);
        assert!(!exposure.contains(&1) && responded.is_empty());
    }

    #[test]
    fn only_users_registered_at_the_start_of_the_day_turn_dormant_and_not_if_they_pay() {
        let mut block = ProspectBlock::new(0, 0, 64);
        let day = Day {
            exposed: &[1, 2, 3, 4],
            registers: &[1, 2, 3, 4],
            ..Day::default()
        };
        live(&mut block, day);
        // 1 drew dormancy; 2 drew it and clicks again; 3 drew it and pays;
        // 4 did not draw it; 5 registers today and is not asked.
        let day = Day {
            exposed: &[2, 3, 5],
            registers: &[2, 5],
            pays: &[3],
            dormant: &[1, 2, 3, 5],
        };
        let (changes, [_, dormancy, _]) = live(&mut block, day);
        assert_eq!(dormancy, vec![1, 2, 3, 4]);
        assert_eq!((changes.dormant, changes.registrations), (2, 1));
        assert_eq!(
            (block.stage(1), block.stage(2), block.stage(3)),
            (None, None, None)
        );
        assert_eq!(block.stage(4), Some(ProspectStage::Registered));
        assert_eq!(block.stage(5), Some(ProspectStage::Registered));
        assert_eq!((block.len(), block.registered_len()), (61, 2));
    }
}

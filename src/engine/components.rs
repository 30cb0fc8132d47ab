//! Components of users and content items: small plain data, one concern each.
//!
//! A user's stage is its archetype: prospects (`Unaware`, `Aware`, `Registered`)
//! carry [`Funnel`], payers carry [`Purchase`] (and [`Subscription`] when the
//! item renews). A user who reaches a final stage (`Dormant`, `Churned`) can
//! never act again: it is counted and despawned, which frees its memory. So each
//! system's query visits only the users who can act in its step.

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

/// Where a not-yet-paying user is in the funnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunnelStage {
    Unaware,
    Aware,
    /// Registered on the given day: dormancy applies only to users registered at
    /// the start of a day.
    Registered(u32),
}

/// A prospect: a user in `Unaware`, `Aware` or `Registered`. Packed in four
/// bytes (0 unaware, 1 aware, 2 + d registered on day d) because every user
/// carries one.
#[derive(Component, Clone, Copy, PartialEq, Eq)]
pub struct Funnel(u32);

impl Funnel {
    pub const UNAWARE: Funnel = Funnel(0);
    pub const AWARE: Funnel = Funnel(1);

    pub fn registered_on(day: u32) -> Funnel {
        Funnel(day.saturating_add(2))
    }

    #[inline]
    pub fn stage(self) -> FunnelStage {
        match self.0 {
            0 => FunnelStage::Unaware,
            1 => FunnelStage::Aware,
            code => FunnelStage::Registered(code - 2),
        }
    }
}

impl std::fmt::Debug for Funnel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.stage().fmt(f)
    }
}

/// Marks a prospect in `Registered`, so that the dormancy step visits only them.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registered;

/// A paying user (`Paying`): the item bought and the satisfaction with it.
#[derive(Component, Debug, Clone, Copy, PartialEq)]
pub struct Purchase {
    /// Index of the item in the scenario's `content`.
    pub item: u16,
    /// `sat_u` in [0, 1].
    pub satisfaction: f32,
}

/// A paying user whose item renews.
#[derive(Component, Debug, Clone, Copy, PartialEq)]
pub struct Subscription {
    /// The day of the next renewal.
    pub renewal_day: u32,
    /// `π_u ~ Beta(α_s, β_s)`, kept in f64: near 0 or 1 its logit matters.
    pub churn_propensity: f64,
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

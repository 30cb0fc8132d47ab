//! Components of users and content items: small plain data, one concern each.
//!
//! A user's stage is its archetype: prospects (`Unaware`, `Aware`, `Registered`)
//! carry [`Funnel`], payers carry [`Purchase`] (and [`Subscription`] when the
//! item renews), and the final stages are the markers [`Dormant`] and [`Churned`].
//! So each system's query visits only the users who can act in its step.

use bevy_ecs::prelude::*;

/// The user's number `u` in 0..N-1 (segment by segment, in file order): the user
/// part of every random-draw key.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
#[component(immutable)]
pub struct UserId(pub u32);

/// What a user draws at the start (MODEL.md, "The population") and never changes.
#[derive(Component, Debug, Clone, Copy, PartialEq)]
#[component(immutable)]
pub struct Traits {
    /// Index of the user's segment in the scenario.
    pub segment: u16,
    /// Index of the user's favourite topic in `Scenario::topics`.
    pub topic: u16,
    /// `ε_u ~ Normal(0, σ_s)`.
    pub click_propensity: f32,
}

/// Where a not-yet-paying user is in the funnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum FunnelStage {
    Unaware,
    Aware,
    Registered,
}

/// A prospect: a user in `Unaware`, `Aware` or `Registered`.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Funnel {
    pub stage: FunnelStage,
    /// The day the user registered (meaningful in `Registered` only): dormancy
    /// applies only to users registered at the start of a day.
    pub registered_on: u32,
}

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

/// Final stage: a registered non-payer who was lost.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dormant;

/// Final stage: a subscriber who did not renew.
#[derive(Component, Debug, Clone, Copy, PartialEq, Eq)]
pub struct Churned;

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

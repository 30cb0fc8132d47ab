//! brandsim: an agent-based market simulation engine for knowledge platforms.
//! See ARCHITECTURE.md for the code map.

pub mod cli;
pub mod commands;
pub mod compare;
pub mod engine;
pub mod guard;
pub mod metrics;
pub mod model;
pub mod optimize;
pub mod outcome;
pub mod plots;
pub mod precision;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod shard;
pub mod stats;
pub mod store;
pub mod study;
pub mod sweep;

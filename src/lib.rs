//! brandsim: an agent-based market simulation engine for knowledge platforms.
//! See ARCHITECTURE.md for the code map.

pub mod cli;
pub mod commands;
pub mod engine;
pub mod guard;
pub mod metrics;
pub mod model;
pub mod outcome;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod stats;
pub mod study;

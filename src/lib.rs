//! brandsim: an agent-based market simulation engine for knowledge platforms.

pub mod metrics;
pub mod scenario;

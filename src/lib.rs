//! brandsim: an agent-based market simulation engine for knowledge platforms.
//! See ARCHITECTURE.md for the code map.
//!
//! As a library: load a scenario, simulate replications, read their metrics.
//!
//! ```
//! use std::sync::Arc;
//!
//! let text = include_str!("../scenarios/bass.toml");
//! let mut scenario = brandsim::scenario::parse_str(text, "bass.toml").unwrap();
//! scenario.market.population = 2_000;
//! scenario.simulation.days = 10;
//! let scenario = Arc::new(scenario);
//! let outcome = brandsim::engine::simulate(&scenario, 0);
//! let awareness = outcome.metrics().get("awareness").unwrap();
//! assert!(awareness > 0.0 && awareness <= 1.0);
//! // Replication 0 of seed 7 is always the same, on any number of threads.
//! assert_eq!(outcome, brandsim::engine::simulate(&scenario, 0));
//! ```

pub mod cli;
pub mod commands;
pub mod compare;
mod csv_lines;
pub mod distributions;
pub mod engine;
pub mod fit;
pub mod guard;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod network;
pub mod optimize;
pub mod outcome;
pub mod output;
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
pub mod whatif;

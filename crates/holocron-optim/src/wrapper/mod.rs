//! Wrappers that run any Burn [`Optimizer`](burn::optim::Optimizer) as the "fast"
//! optimizer and periodically pull the weights back towards a "slow" copy.

mod config;
mod lookahead;
mod scout;
mod slow;
#[cfg(feature = "collective")]
mod zero;

pub use config::{LookaheadConfig, ScoutConfig};
pub use lookahead::{Lookahead, LookaheadRecord};
pub use scout::{Scout, ScoutRecord};
#[cfg(feature = "collective")]
pub use zero::{GradientReduction, ShardState, ZeroRedundancy, ZeroRedundancyConfig};

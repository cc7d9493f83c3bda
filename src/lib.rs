//! Support shared by holocron-optim's integration tests and examples. Not published.

pub mod backend;
pub mod shapes;

//! The subcommands of the `shadertrain` program.

pub mod bench;
pub mod devices;
pub mod eval;
pub mod paths;
pub mod plot;
pub mod predict;
pub mod train;
pub mod train_outputs;

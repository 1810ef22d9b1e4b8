//! The subcommands of the `shadertrain` program.

pub mod devices;
pub mod eval;
pub mod predict;
pub mod train;

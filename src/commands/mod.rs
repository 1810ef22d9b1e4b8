//! The subcommands of the `shadertrain` program.

pub mod devices;
pub mod train;

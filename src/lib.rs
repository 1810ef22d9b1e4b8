//! shadertrain: train small multilayer perceptrons for regression on any GPU,
//! with WGSL compute shaders through wgpu, next to a CPU reference trainer
//! with identical semantics.

pub mod cpu;
pub mod data;
pub mod loss;
pub mod model;
pub mod optim;
pub mod prepare;
pub mod report;
pub mod schedule;
pub mod train;

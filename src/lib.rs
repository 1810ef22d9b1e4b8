//! shadertrain: train small multilayer perceptrons for regression on any GPU,
//! with WGSL compute shaders through wgpu, next to a CPU reference trainer
//! with identical semantics.

pub mod data;

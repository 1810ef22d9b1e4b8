//! shadertrain: train small multilayer perceptrons for regression on any GPU,
//! with WGSL compute shaders through wgpu, next to a CPU reference trainer
//! with identical semantics.
//!
//! The modules follow the data flow: [`data`] loads CSV files, [`model`]
//! defines the network and its PyTorch-identical initialization, [`train`]
//! drives a run through a [`train::Backend`] ([`cpu`] or [`gpu`]), and
//! [`report`] writes what a run produced.

pub mod cpu;
pub mod data;
pub mod gpu;
pub mod loss;
pub mod model;
pub mod optim;
pub mod plot;
pub mod prepare;
pub mod report;
pub mod schedule;
pub mod train;

//! Placeholder for the general kernel path.
use std::fmt;

use super::GpuContext;
use super::fused::FusedPlan;
use crate::schedule::Chunk;
use crate::train::{Backend, ChunkOutcome, TrainError, TrainSpec, TrainingData};

#[derive(Clone, Debug)]
pub struct GeneralPlan;

impl fmt::Display for GeneralPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "placeholder")
    }
}

pub fn prefers_fused(_context: &GpuContext, _spec: &TrainSpec, _data: TrainingData<'_>, _plan: &FusedPlan) -> bool {
    true
}

pub fn plan(_context: &GpuContext, _spec: &TrainSpec, _data: TrainingData<'_>) -> Result<GeneralPlan, TrainError> {
    Err(TrainError::Invalid("general path not implemented".into()))
}

pub struct GeneralBackend;

impl GeneralBackend {
    pub fn new(
        _context: &GpuContext,
        _spec: &TrainSpec,
        _data: TrainingData<'_>,
        _initial: &[f32],
        _plan: GeneralPlan,
    ) -> Result<Self, TrainError> {
        Err(TrainError::Invalid("general path not implemented".into()))
    }
}

impl Backend for GeneralBackend {
    fn run_chunk(&mut self, _chunk: &Chunk) -> Result<ChunkOutcome, TrainError> {
        unimplemented!()
    }
    fn parameters(&mut self) -> Result<Vec<f32>, TrainError> {
        unimplemented!()
    }
    fn restore_best(&mut self) -> Result<(), TrainError> {
        unimplemented!()
    }
}

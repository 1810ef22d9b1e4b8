//! The step schedule that every backend executes.
//!
//! The training driver turns epochs, mini-batches and logging into a flat list
//! of [`Step`]s, chunk by chunk. The CPU reference walks the list in plain
//! Rust; the GPU uploads it as a storage buffer and its kernels walk the same
//! list. Keeping the schedule on the host means both backends agree on the
//! batch order, the optimizer's per-step factors and when metrics are taken.
//!
//! Within one step the order is: evaluate (training metrics), validate
//! (validation metrics), monitor (early stopping), update (forward, backward
//! and the optimizer on the step's batch). Once a backend halts, it skips
//! monitor and update steps but still evaluates, so the final evaluation
//! after a halt works like any other.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::optim::StepFactors;

/// Record training metrics of the current parameters in the step's log slot.
/// With [`UPDATE`] on a full batch, the update's own forward pass provides them.
pub const EVALUATE: u32 = 1;
/// Record validation metrics in the step's log slot, and run the
/// early-stopping monitor when it is enabled.
pub const VALIDATE: u32 = 2;
/// Forward, backward and optimizer update on the step's batch.
pub const UPDATE: u32 = 4;
/// After [`VALIDATE`], compare the validation loss with the best so far:
/// keep a copy of the parameters when it improved, halt when it has not
/// improved for the patience.
pub const MONITOR: u32 = 8;

/// One entry of the schedule, in the layout the shaders read (48 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Step {
    /// Bit set of [`EVALUATE`], [`VALIDATE`], [`MONITOR`] and [`UPDATE`].
    pub flags: u32,
    /// Epoch this step belongs to (0-based).
    pub epoch: u32,
    /// First entry of the batch in the chunk's row order; unused for full batches.
    pub batch_start: u32,
    /// Rows in the batch.
    pub batch_rows: u32,
    /// Log slot that [`EVALUATE`] and [`VALIDATE`] write.
    pub log_slot: u32,
    /// 1 when the batch is all rows in their natural order (no row order lookup).
    pub full_batch: u32,
    /// Factor of the loss gradient for this batch: see [`crate::loss::Loss::gradient_scale`].
    pub loss_scale: f32,
    pub _pad: u32,
    pub factors: StepFactors,
}

/// Grouping of rows into optimizer steps.
#[derive(Clone, Debug, PartialEq)]
pub enum Batching {
    /// One step per epoch over all rows.
    Full,
    /// Mini-batches of `size` rows, reshuffled every epoch from `seed`. The
    /// last batch of an epoch keeps the remainder (like PyTorch's
    /// `DataLoader(drop_last=False)`).
    Shuffled { size: usize, seed: u64 },
    /// Mini-batches in a given order per epoch; epoch `e` uses `orders[e % orders.len()]`.
    Fixed { size: usize, orders: Vec<Vec<u32>> },
}

impl Batching {
    /// Rows per batch, or `None` for full batches.
    pub fn batch_size(&self) -> Option<usize> {
        match self {
            Batching::Full => None,
            Batching::Shuffled { size, .. } | Batching::Fixed { size, .. } => Some(*size),
        }
    }

    /// Optimizer steps per epoch for `rows` training rows.
    pub fn steps_per_epoch(&self, rows: usize) -> usize {
        match self.batch_size() {
            None => 1,
            Some(size) => rows.div_ceil(size.min(rows).max(1)),
        }
    }

    /// Row order of `epoch`, or `None` for full batches.
    pub fn epoch_order(&self, epoch: u64, rows: usize) -> Option<Vec<u32>> {
        match self {
            Batching::Full => None,
            Batching::Shuffled { seed, .. } => {
                // One independent stream per epoch, so a resumed or chunked run
                // draws the same order as an uninterrupted one.
                let mut generator = ChaCha8Rng::seed_from_u64(*seed);
                generator.set_stream(epoch);
                let mut order: Vec<u32> = (0..rows as u32).collect();
                order.shuffle(&mut generator);
                Some(order)
            }
            Batching::Fixed { orders, .. } => Some(orders[(epoch as usize) % orders.len()].clone()),
        }
    }
}

/// A run of steps executed between two host read-backs.
#[derive(Clone, Debug, Default)]
pub struct Chunk {
    pub steps: Vec<Step>,
    /// Concatenated row orders of the chunk's epochs (empty for full batches).
    pub order: Vec<u32>,
    /// Epoch recorded in each log slot.
    pub log_epochs: Vec<u64>,
}

impl Chunk {
    /// Adds a log slot for `epoch` and returns its index.
    pub fn add_log_slot(&mut self, epoch: u64) -> u32 {
        self.log_epochs.push(epoch);
        (self.log_epochs.len() - 1) as u32
    }
}

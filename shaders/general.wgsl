// Definitions shared by the general path's kernels (linear.wgsl,
// reduce.wgsl, optimizer.wgsl).

// Per-dispatch values, set as immediates (src/gpu/general.rs `Dispatch`, 80 bytes).
struct Dispatch {
    step: Step,
    // Position of the block's first row in the batch, for rows gathered through `order`.
    batch_offset: u32,
    // Row of the bound data buffers where the block starts, without gathering.
    data_row: u32,
    // Rows in the block.
    rows: u32,
    // First partial-sum slot this dispatch writes.
    slot: u32,
    flags: u32,
    // head: first gradient slot (`slot` is then the first loss-sum slot).
    grad_slot: u32,
    pad1: u32,
    pad2: u32,
}

// Dispatch flags.
const GATHER_ROWS: u32 = 1u;    // layer 0's inputs and the targets come through `order`
const WANT_GRADIENT: u32 = 2u;  // the output layer writes dZ (a training pass)

var<immediate> dispatch: Dispatch;

// Run state shared with the host (src/gpu/general.rs `RunState`).
struct RunState {
    updates: u32,
    halt: u32,
    halt_epoch: u32,
    has_best: u32,
    best_epoch: u32,
    best_loss: f32,
    // 1 when the parameters of this step are the best so far: the optimizer copies them first.
    snapshot: u32,
    // 1 when this step's update goes ahead.
    apply: u32,
    // NONFINITE_GRADIENT and NONFINITE_PARAMETER bits, set by
    // reduce_gradients and update; control and commit clear them.
    nonfinite: atomic<u32>,
    patience: u32,
    // 1 when the run diverged after an update: the host restores `previous`.
    rejected: u32,
    pad0: u32,
}

const NONFINITE_GRADIENT: u32 = 1u;
const NONFINITE_PARAMETER: u32 = 2u;

fn is_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

// Fused training loop for small problems: one workgroup runs whole
// optimizer steps (forward, loss, backward, gradient reduction, update) for
// many steps of the schedule per dispatch, without leaving the GPU.
//
// Every lane keeps a private copy of all P parameters, their gradients and
// the optimizer state. Lane j processes rows j, j + LANES, j + 2 LANES, ...
// of the batch, adds its rows' gradients privately, and the lanes then sum
// their gradients with subgroupAdd (one subgroup per workgroup) or through
// workgroup memory. Every lane receives the same sums, applies the same
// update and so holds the same parameters, with no further communication.
//
// Per row, with `a[0] = x`:
//   z_l = W_l a_l + b_l,  a_{l+1} = f_l(z_l)                   (forward)
//   da_L = dLoss/dy
//   dz_l = da_{l+1} * f_l'(z_l)                                (backward)
//   dW_l += dz_l a_l^T,  db_l += dz_l,  da_l = W_l^T dz_l
//
// The generated header (src/gpu/fused/) defines the problem's constants:
//   LANES, LAYERS, INPUTS, OUTPUTS, PARAMS, UNITS, SUMS, STATE_SLOTS,
//   BEST_OFFSET, PREVIOUS_OFFSET, LAYER_IN, LAYER_OUT, WEIGHT_OFFSET, BIAS_OFFSET,
//   UNIT_OFFSET, ACTIVATION, SLOPE, LOSS, LOSS_DELTA, OPTIMIZER.
// common.wgsl provides the element-wise functions and the Step struct.
//
// The per-row and per-parameter functions called by `main` (load_model,
// forward_row, loss_row, backward_row, reduce_sums, reduce_gradients,
// apply_update, ...) come in two forms with the same meaning:
// - generated straight-line code with constant indices
//   (src/gpu/fused/unrolled.rs), so the driver keeps every parameter in a
//   register; for small models, and much faster;
// - loops over the header's shape arrays (fused_loops.wgsl, with
//   fused_subgroup.wgsl or fused_workgroup.wgsl for the cross-lane sums).
//
// Loop budget: llvmpipe stops an invocation after 65,535 loop iterations in
// one dispatch, so the host sizes `steps_per_dispatch` from a count of every
// loop iteration below, and the kernel proves it finished by advancing
// `run.next_step` and by a final canary loop (see `main`).

// Run state shared with the host (src/gpu/fused.rs `RunState`).
struct RunState {
    // Schedule index of the next step; each dispatch advances it.
    next_step: u32,
    // Optimizer steps applied in the whole run.
    updates: u32,
    halt: u32,
    halt_epoch: u32,
    has_best: u32,
    best_epoch: u32,
    best_loss: f32,
    // Dispatches whose canary loop came up short: must stay 0.
    loop_faults: u32,
    // 1 when the run diverged after an update: the host restores the
    // parameters from before it.
    restore: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

// Per-chunk configuration (src/gpu/fused.rs `FusedConfig`).
struct Config {
    train_rows: u32,
    val_rows: u32,
    // Offsets into `data` of each [rows][width] block.
    train_features: u32,
    train_targets: u32,
    val_features: u32,
    val_targets: u32,
    step_count: u32,
    steps_per_dispatch: u32,
    // Iterations of the canary loop; it is a uniform so the compiler cannot unroll it.
    canary_iterations: u32,
    patience: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<storage, read> data: array<f32>;
@group(0) @binding(1) var<storage, read> steps: array<Step>;
@group(0) @binding(2) var<storage, read> order: array<u32>;
// [parameters P | optimizer state STATE_SLOTS * P | best parameters P |
//  parameters before the last update P]
@group(0) @binding(3) var<storage, read_write> model: array<f32>;
// Per log slot: training sums then validation sums, SUMS values each.
@group(0) @binding(4) var<storage, read_write> logs: array<f32>;
@group(0) @binding(5) var<storage, read_write> run: RunState;
@group(0) @binding(6) var<uniform> config: Config;

var<private> theta: array<f32, PARAMS>;
var<private> grad: array<f32, PARAMS>;
var<private> s0: array<f32, PARAMS>;
var<private> s1: array<f32, PARAMS>;
// Per-row pre-activations, activations and their gradients, indexed by
// UNIT_OFFSET[l] + unit; the first INPUTS entries of `a` hold the features.
var<private> z: array<f32, UNITS>;
var<private> a: array<f32, UNITS>;
var<private> da: array<f32, UNITS>;
// Loss sum, squared errors per output, absolute errors per output.
var<private> sums: array<f32, SUMS>;

fn is_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

@compute @workgroup_size(LANES)
fn main(@builtin(local_invocation_index) lane: u32) {
    load_model();
    var updates = run.updates;
    var halt = run.halt;
    var halt_epoch = run.halt_epoch;
    var has_best = run.has_best;
    var best_epoch = run.best_epoch;
    var best_loss = run.best_loss;
    var restore = run.restore;

    let first = run.next_step;
    let count = min(config.steps_per_dispatch, config.step_count - min(first, config.step_count));
    var done = 0u;
    for (var s = 0u; s < count; s++) {
        let step = steps[first + s];
        let update = (step.flags & STEP_UPDATE) != 0u && halt == HALT_NONE;
        let evaluate = (step.flags & STEP_EVALUATE) != 0u;
        var batch_loss = 0.0;

        // Training rows: the batch for an update (its forward pass also
        // gives the metrics of a full batch), or all rows for metrics only.
        if update || evaluate {
            let rows = select(config.train_rows, step.batch_rows, update);
            let natural_order = !update || step.full_batch != 0u;
            let scale = select(0.0, step.loss_scale, update);
            clear_sums();
            if update {
                zero_gradients();
            }
            for (var k = lane; k < rows; k += LANES) {
                // An if, not select(): select would load `order` for every row.
                var r = k;
                if !natural_order {
                    r = order[step.batch_start + k];
                }
                forward_row(config.train_features + r * INPUTS);
                loss_row(config.train_targets + r * OUTPUTS, scale);
                if update {
                    backward_row();
                }
            }
            reduce_sums(lane);
            if update {
                reduce_gradients(lane);
            }
            batch_loss = sums[0];
            if evaluate && lane == 0u {
                write_sums(step.log_slot * 2u * SUMS);
            }
        }

        // Validation rows, then the early-stopping monitor.
        if (step.flags & STEP_VALIDATE) != 0u && config.val_rows > 0u {
            clear_sums();
            for (var k = lane; k < config.val_rows; k += LANES) {
                forward_row(config.val_features + k * INPUTS);
                loss_row(config.val_targets + k * OUTPUTS, 0.0);
            }
            reduce_sums(lane);
            if lane == 0u {
                write_sums(step.log_slot * 2u * SUMS + SUMS);
            }
            if (step.flags & STEP_MONITOR) != 0u && halt == HALT_NONE {
                let loss = sums[0] / f32(config.val_rows * OUTPUTS);
                if (has_best == 0u && is_finite(loss)) || loss < best_loss {
                    has_best = 1u;
                    best_loss = loss;
                    best_epoch = step.epoch;
                    copy_best(lane);
                } else if step.epoch - best_epoch >= config.patience {
                    halt = HALT_EARLY_STOPPED;
                    halt_epoch = step.epoch;
                }
            }
        }

        // The update. A non-finite batch loss or gradient halts the run and
        // sends it back to the parameters before the last update, the last
        // ones with a finite loss; an update that would make a parameter
        // non-finite is not applied and halts the run as well.
        if update && halt == HALT_NONE {
            if is_finite(batch_loss) && gradients_finite() {
                if apply_update(step, lane) {
                    updates += 1u;
                } else {
                    halt = HALT_DIVERGED;
                    halt_epoch = step.epoch;
                }
            } else {
                halt = HALT_DIVERGED;
                halt_epoch = step.epoch;
                if updates > 0u {
                    updates -= 1u;
                    restore = 1u;
                }
            }
        }
        done += 1u;
    }

    // Canary: once llvmpipe's loop limit is exhausted, every later loop runs
    // exactly once, so fewer than `canary_iterations` iterations here mean
    // some loop above was cut short.
    var canary = 0u;
    for (var k = 0u; k < config.canary_iterations; k++) {
        canary += 1u;
    }

    store_model(lane);
    if lane == 0u {
        run.next_step = first + done;
        run.updates = updates;
        run.halt = halt;
        run.halt_epoch = halt_epoch;
        run.has_best = has_best;
        run.best_epoch = best_epoch;
        run.best_loss = best_loss;
        run.restore = restore;
        if canary != config.canary_iterations || done != count {
            run.loop_faults += 1u;
        }
    }
}

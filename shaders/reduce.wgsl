// Reductions and step control of the general path.
//
//   reduce_gradients: grads[p] = sum over slots s < dispatch.slot of
//                     partials[s][p]; flags any non-finite gradient
//   reduce_sums:      sums[set][k] = sum over slots s < dispatch.slot of
//                     sum_partials[s][k], for set = dispatch.flags
//                     (0 training, 1 validation)
//   control:          one invocation per step: records logged sums, runs
//                     the early-stopping monitor and decides whether the
//                     step's update is applied (`run.apply`)
//   commit:           one invocation after the update: rejects it when a
//                     parameter became non-finite
// After `run.rejected` is set, the host restores the parameters from before
// the last update.
//
// The generated header defines WG, PARAMS, SUMS and OUTPUTS; general.wgsl
// the immediates and the run state, common.wgsl the Step struct and flags.

@group(0) @binding(0) var<storage, read> grad_partials: array<f32>;
@group(0) @binding(1) var<storage, read_write> grads: array<f32>;
@group(0) @binding(2) var<storage, read> sum_partials: array<f32>;
// [2][SUMS]: training sums, then validation sums.
@group(0) @binding(3) var<storage, read_write> sums: array<f32>;
@group(0) @binding(4) var<storage, read_write> run: RunState;
// Per log slot: training sums then validation sums, SUMS values each.
@group(0) @binding(5) var<storage, read_write> logs: array<f32>;

var<workgroup> partial_tile: array<f32, WG>;

@compute @workgroup_size(WG)
fn reduce_gradients(
    @builtin(local_invocation_index) local: u32,
    @builtin(workgroup_id) id: vec3<u32>,
    @builtin(num_workgroups) count: vec3<u32>,
) {
    let p = (id.y * count.x + id.x) * WG + local;
    if p >= PARAMS {
        return;
    }
    var total = 0.0;
    for (var s = 0u; s < dispatch.slot; s++) {
        total += grad_partials[s * PARAMS + p];
    }
    grads[p] = total;
    if !is_finite(total) {
        atomicOr(&run.nonfinite, NONFINITE_GRADIENT);
    }
}

// One workgroup per sum k: lanes stride over the slots, then a tree
// reduction in workgroup memory. Every lane reaches every barrier.
@compute @workgroup_size(WG)
fn reduce_sums(
    @builtin(local_invocation_index) local: u32,
    @builtin(workgroup_id) id: vec3<u32>,
    @builtin(num_workgroups) count: vec3<u32>,
) {
    let k = id.y * count.x + id.x;
    if k >= SUMS {
        return;
    }
    var total = 0.0;
    for (var s = local; s < dispatch.slot; s += WG) {
        total += sum_partials[s * SUMS + k];
    }
    partial_tile[local] = total;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
        if local < stride {
            partial_tile[local] += partial_tile[local + stride];
        }
        workgroupBarrier();
    }
    if local == 0u {
        sums[dispatch.flags * SUMS + k] = partial_tile[0];
    }
}

// dispatch.rows holds the number of validation rows.
@compute @workgroup_size(1)
fn control() {
    let step = dispatch.step;
    let base = step.log_slot * 2u * SUMS;
    if (step.flags & STEP_EVALUATE) != 0u {
        for (var k = 0u; k < SUMS; k++) {
            logs[base + k] = sums[k];
        }
    }
    if (step.flags & STEP_VALIDATE) != 0u {
        for (var k = 0u; k < SUMS; k++) {
            logs[base + SUMS + k] = sums[SUMS + k];
        }
    }

    run.snapshot = 0u;
    run.apply = 0u;
    if (step.flags & STEP_MONITOR) != 0u && run.halt == HALT_NONE {
        let loss = sums[SUMS] / f32(dispatch.rows * OUTPUTS);
        if (run.has_best == 0u && is_finite(loss)) || loss < run.best_loss {
            run.has_best = 1u;
            run.best_loss = loss;
            run.best_epoch = step.epoch;
            run.snapshot = 1u;
        } else if step.epoch - run.best_epoch >= run.patience {
            run.halt = HALT_EARLY_STOPPED;
            run.halt_epoch = step.epoch;
        }
    }
    if (step.flags & STEP_UPDATE) != 0u && run.halt == HALT_NONE {
        if is_finite(sums[0]) && atomicLoad(&run.nonfinite) == 0u {
            run.apply = 1u;
            run.updates += 1u;
        } else {
            // Back to the parameters before the last update (the host copies
            // them), the last ones with a finite loss.
            run.halt = HALT_DIVERGED;
            run.halt_epoch = step.epoch;
            if run.updates > 0u {
                run.updates -= 1u;
                run.rejected = 1u;
            }
        }
    }
    atomicStore(&run.nonfinite, 0u);
}

@compute @workgroup_size(1)
fn commit() {
    if run.apply != 0u && (atomicLoad(&run.nonfinite) & NONFINITE_PARAMETER) != 0u {
        run.halt = HALT_DIVERGED;
        run.halt_epoch = dispatch.step.epoch;
        run.updates -= 1u;
        run.rejected = 1u;
    }
    atomicStore(&run.nonfinite, 0u);
}

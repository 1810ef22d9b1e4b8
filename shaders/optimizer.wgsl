// The optimizer step of the general path: one invocation per parameter,
// all P parameters of every layer in one dispatch.
//
// Applies `optimizer_update` (common.wgsl) when the control kernel set
// `run.apply`, after copying the parameter to `best` when `run.snapshot`
// marks it as the best so far. The old value goes to `previous` and a
// non-finite new value sets bit 2 of `run.nonfinite`, so `commit` can
// reject the whole step. The generated header defines WG, PARAMS,
// STATE_SLOTS and OPTIMIZER; general.wgsl the immediates and RunState.

@group(0) @binding(0) var<storage, read_write> params: array<f32>;
@group(0) @binding(1) var<storage, read> grads: array<f32>;
// [STATE_SLOTS][PARAMS]: Adam's m and v, or SGD's momentum buffer.
@group(0) @binding(2) var<storage, read_write> state: array<f32>;
@group(0) @binding(3) var<storage, read_write> best: array<f32>;
@group(0) @binding(4) var<storage, read_write> run: RunState;
@group(0) @binding(5) var<storage, read_write> previous: array<f32>;

@compute @workgroup_size(WG)
fn update(
    @builtin(local_invocation_index) local: u32,
    @builtin(workgroup_id) id: vec3<u32>,
    @builtin(num_workgroups) count: vec3<u32>,
) {
    let p = (id.y * count.x + id.x) * WG + local;
    if p >= PARAMS {
        return;
    }
    if run.snapshot != 0u {
        best[p] = params[p];
    }
    if run.apply == 0u {
        return;
    }
    var s1 = 0.0;
    if STATE_SLOTS > 1u {
        s1 = state[PARAMS + p];
    }
    let updated = optimizer_update(OPTIMIZER, dispatch.step, params[p], grads[p], state[p], s1);
    previous[p] = params[p];
    if !is_finite(updated.p) {
        atomicOr(&run.nonfinite, NONFINITE_PARAMETER);
    }
    params[p] = updated.p;
    state[p] = updated.s0;
    if STATE_SLOTS > 1u {
        state[PARAMS + p] = updated.s1;
    }
}

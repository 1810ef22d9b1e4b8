// Per-row and per-parameter functions of fused.wgsl as loops over the
// header's shape arrays, for models too large to unroll. Private arrays
// indexed by loop variables live in memory rather than registers, so this
// form is several times slower than the generated straight-line form.

fn load_model() {
    for (var p = 0u; p < PARAMS; p++) {
        theta[p] = model[p];
        s0[p] = model[PARAMS + p];
        if STATE_SLOTS > 1u {
            s1[p] = model[2u * PARAMS + p];
        }
    }
}

fn store_model(lane: u32) {
    for (var p = lane; p < PARAMS; p += LANES) {
        model[p] = theta[p];
        model[PARAMS + p] = s0[p];
        if STATE_SLOTS > 1u {
            model[2u * PARAMS + p] = s1[p];
        }
    }
}

fn copy_best(lane: u32) {
    for (var p = lane; p < PARAMS; p += LANES) {
        model[BEST_OFFSET + p] = theta[p];
    }
}

fn zero_gradients() {
    for (var p = 0u; p < PARAMS; p++) {
        grad[p] = 0.0;
    }
}

fn gradients_finite() -> bool {
    var finite = true;
    for (var p = 0u; p < PARAMS; p++) {
        finite = finite && is_finite(grad[p]);
    }
    return finite;
}

// Applies the optimizer step unless a parameter would become non-finite;
// returns whether it was applied. The check runs the update once without
// storing it, so a rejected step leaves everything as it was. Lane 0 keeps
// the old parameters at PREVIOUS_OFFSET.
fn apply_update(step: Step, lane: u32) -> bool {
    var finite = true;
    for (var p = 0u; p < PARAMS; p++) {
        let updated = optimizer_update(OPTIMIZER, step, theta[p], grad[p], s0[p], s1[p]);
        finite = finite && is_finite(updated.p);
    }
    if finite {
        for (var p = 0u; p < PARAMS; p++) {
            let updated = optimizer_update(OPTIMIZER, step, theta[p], grad[p], s0[p], s1[p]);
            if lane == 0u {
                model[PREVIOUS_OFFSET + p] = theta[p];
            }
            theta[p] = updated.p;
            s0[p] = updated.s0;
            s1[p] = updated.s1;
        }
    }
    return finite;
}

// Fills a[] and z[] for the row whose features start at data[offset].
fn forward_row(offset: u32) {
    for (var i = 0u; i < INPUTS; i++) {
        a[i] = data[offset + i];
    }
    for (var l = 0u; l < LAYERS; l++) {
        let n_in = LAYER_IN[l];
        let n_out = LAYER_OUT[l];
        let w = WEIGHT_OFFSET[l];
        let b = BIAS_OFFSET[l];
        let u_in = UNIT_OFFSET[l];
        let u_out = UNIT_OFFSET[l + 1u];
        for (var o = 0u; o < n_out; o++) {
            var sum = 0.0;
            for (var i = 0u; i < n_in; i++) {
                sum += theta[w + o * n_in + i] * a[u_in + i];
            }
            let pre = sum + theta[b + o];
            z[u_out + o] = pre;
            a[u_out + o] = activation_forward(ACTIVATION[l], SLOPE[l], pre);
        }
    }
}

// Adds the row's loss terms to sums[] and, with `scale` > 0, writes the loss
// gradient into da[] of the output layer.
fn loss_row(offset: u32, scale: f32) {
    let u_out = UNIT_OFFSET[LAYERS];
    for (var o = 0u; o < OUTPUTS; o++) {
        let d = a[u_out + o] - data[offset + o];
        sums[0] += loss_value(LOSS, LOSS_DELTA, d);
        sums[1u + o] += d * d;
        sums[1u + OUTPUTS + o] += abs(d);
        da[u_out + o] = loss_gradient(LOSS, LOSS_DELTA, d, scale);
    }
}

// Back-propagates da[] of the output layer and adds the row's gradients to grad[].
fn backward_row() {
    for (var k = 0u; k < LAYERS; k++) {
        let l = LAYERS - 1u - k;
        let n_in = LAYER_IN[l];
        let n_out = LAYER_OUT[l];
        let w = WEIGHT_OFFSET[l];
        let b = BIAS_OFFSET[l];
        let u_in = UNIT_OFFSET[l];
        let u_out = UNIT_OFFSET[l + 1u];
        for (var o = 0u; o < n_out; o++) {
            let dz = activation_backward(ACTIVATION[l], SLOPE[l], z[u_out + o], a[u_out + o], da[u_out + o]);
            da[u_out + o] = dz;
            grad[b + o] += dz;
            for (var i = 0u; i < n_in; i++) {
                grad[w + o * n_in + i] += dz * a[u_in + i];
            }
        }
        if l > 0u {
            for (var i = 0u; i < n_in; i++) {
                var sum = 0.0;
                for (var o = 0u; o < n_out; o++) {
                    sum += theta[w + o * n_in + i] * da[u_out + o];
                }
                da[u_in + i] = sum;
            }
        }
    }
}

fn clear_sums() {
    for (var k = 0u; k < SUMS; k++) {
        sums[k] = 0.0;
    }
}

fn write_sums(index: u32) {
    for (var k = 0u; k < SUMS; k++) {
        logs[index + k] = sums[k];
    }
}

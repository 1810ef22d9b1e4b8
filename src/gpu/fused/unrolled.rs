//! Straight-line WGSL for the per-row and per-parameter functions of
//! `shaders/fused.wgsl`.
//!
//! `fused_loops.wgsl` computes the same functions with loops over the
//! header's shape arrays. Here every loop over units and parameters is
//! written out with constant indices, so the driver can keep the private
//! arrays (parameters, gradients, optimizer state, activations) in registers
//! instead of memory: about ten times faster on llvmpipe. Only the row and
//! step loops remain, which also keeps the loop count per step small.
//!
//! The arithmetic order matches the CPU reference: each pre-activation is
//! `((w0 x0 + w1 x1) + ...) + b`, each input gradient `(w0 dz0 + w1 dz1) + ...`.

use std::fmt::Write as _;

use super::Shape;
use crate::gpu::shaders::{activation_code, wgsl_f32};
use crate::model::Architecture;

/// Largest parameter count generated as straight-line code. Compile time
/// grows faster than the code: on llvmpipe (Mesa 22.3, cold shader cache)
/// 21 parameters compile in 0.1 s, 61 in 1 s, 97 in 2 s, 193 in 7 s and
/// 385 in 30 s.
pub const MAX_UNROLLED_PARAMS: usize = 160;

/// Generates every function `fused.wgsl` calls, for one problem shape.
pub fn functions(architecture: &Architecture, shape: &Shape, lanes: u32, subgroups: bool, exchange: usize) -> String {
    let mut out = String::new();
    let p = shape.params;

    // Parameters and optimizer state in and out of registers.
    let _ = writeln!(out, "fn load_model() {{");
    for i in 0..p {
        let _ = writeln!(out, "    theta[{i}] = model[{i}u];");
    }
    for i in 0..p {
        let _ = writeln!(out, "    s0[{i}] = model[{}u];", p + i);
    }
    if shape.state_slots > 1 {
        for i in 0..p {
            let _ = writeln!(out, "    s1[{i}] = model[{}u];", 2 * p + i);
        }
    }
    let _ = writeln!(out, "}}\n");

    let _ = writeln!(out, "fn store_model(lane: u32) {{\n    if lane == 0u {{");
    for i in 0..p {
        let _ = writeln!(out, "        model[{i}u] = theta[{i}];");
    }
    for i in 0..p {
        let _ = writeln!(out, "        model[{}u] = s0[{i}];", p + i);
    }
    if shape.state_slots > 1 {
        for i in 0..p {
            let _ = writeln!(out, "        model[{}u] = s1[{i}];", 2 * p + i);
        }
    }
    let _ = writeln!(out, "    }}\n}}\n");

    let best = (1 + shape.state_slots) * p;
    let _ = writeln!(out, "fn copy_best(lane: u32) {{\n    if lane == 0u {{");
    for i in 0..p {
        let _ = writeln!(out, "        model[{}u] = theta[{i}];", best + i);
    }
    let _ = writeln!(out, "    }}\n}}\n");

    // Gradients and the update.
    let _ = writeln!(out, "fn zero_gradients() {{");
    for i in 0..p {
        let _ = writeln!(out, "    grad[{i}] = 0.0;");
    }
    let _ = writeln!(out, "}}\n");

    let _ = writeln!(out, "fn gradients_finite() -> bool {{\n    var finite = true;");
    for i in 0..p {
        let _ = writeln!(out, "    finite = finite && is_finite(grad[{i}]);");
    }
    let _ = writeln!(out, "    return finite;\n}}\n");

    // The step is applied only when every updated parameter is finite; lane
    // 0 keeps the old parameters at PREVIOUS_OFFSET.
    let _ = writeln!(
        out,
        "fn apply_update(step: Step, lane: u32) -> bool {{\n    var finite = true;"
    );
    for i in 0..p {
        let _ = writeln!(
            out,
            "    let u{i} = optimizer_update(OPTIMIZER, step, theta[{i}], grad[{i}], s0[{i}], s1[{i}]);\n    finite = finite && is_finite(u{i}.p);"
        );
    }
    let previous = (2 + shape.state_slots) * p;
    let _ = writeln!(out, "    if finite && lane == 0u {{");
    for i in 0..p {
        let _ = writeln!(out, "        model[{}u] = theta[{i}];", previous + i);
    }
    let _ = writeln!(out, "    }}\n    if finite {{");
    for i in 0..p {
        let _ = writeln!(
            out,
            "        theta[{i}] = u{i}.p;\n        s0[{i}] = u{i}.s0;\n        s1[{i}] = u{i}.s1;"
        );
    }
    let _ = writeln!(out, "    }}\n    return finite;\n}}\n");

    // Metrics sums.
    let _ = writeln!(out, "fn clear_sums() {{");
    for k in 0..shape.sums {
        let _ = writeln!(out, "    sums[{k}] = 0.0;");
    }
    let _ = writeln!(out, "}}\n");

    let _ = writeln!(out, "fn write_sums(index: u32) {{");
    for k in 0..shape.sums {
        let _ = writeln!(out, "    logs[index + {k}u] = sums[{k}];");
    }
    let _ = writeln!(out, "}}\n");

    forward(&mut out, architecture, shape);
    loss(&mut out, architecture, shape);
    backward(&mut out, architecture, shape);

    if subgroups {
        reduce_subgroup(&mut out, "reduce_sums", "sums", shape.sums);
        reduce_subgroup(&mut out, "reduce_gradients", "grad", p);
    } else {
        let _ = writeln!(out, "var<workgroup> exchange: array<f32, {exchange}>;\n");
        reduce_workgroup(&mut out, "reduce_sums", "sums", shape.sums, lanes as usize, exchange);
        reduce_workgroup(&mut out, "reduce_gradients", "grad", p, lanes as usize, exchange);
    }
    out
}

/// `z_l = W_l a_l + b_l`, `a_{l+1} = f_l(z_l)` for every layer.
fn forward(out: &mut String, architecture: &Architecture, shape: &Shape) {
    let _ = writeln!(out, "fn forward_row(offset: u32) {{");
    for i in 0..architecture.inputs() {
        let _ = writeln!(out, "    a[{i}] = data[offset + {i}u];");
    }
    for l in 0..architecture.layer_count() {
        let (n_in, n_out) = (shape.layer_in[l], shape.layer_out[l]);
        let (w, b) = (shape.weight_offset[l], shape.bias_offset[l]);
        let (u_in, u_out) = (shape.unit_offset[l], shape.unit_offset[l + 1]);
        let (kind, slope) = activation_code(architecture.activation(l));
        let _ = writeln!(
            out,
            "    // layer {l}: {n_in} -> {n_out} ({})",
            architecture.activation(l)
        );
        for o in 0..n_out {
            let terms: Vec<String> = (0..n_in)
                .map(|i| format!("theta[{}] * a[{}]", w + o * n_in + i, u_in + i))
                .collect();
            let _ = writeln!(out, "    z[{}] = {} + theta[{}];", u_out + o, terms.join(" + "), b + o);
            let _ = writeln!(
                out,
                "    a[{0}] = activation_forward({kind}u, {1}, z[{0}]);",
                u_out + o,
                wgsl_f32(slope)
            );
        }
    }
    let _ = writeln!(out, "}}\n");
}

/// Loss terms and the output gradient.
fn loss(out: &mut String, architecture: &Architecture, shape: &Shape) {
    let outputs = architecture.outputs();
    let u_out = shape.unit_offset[architecture.layer_count()];
    let _ = writeln!(out, "fn loss_row(offset: u32, scale: f32) {{");
    for o in 0..outputs {
        let _ = writeln!(out, "    {{\n        let d = a[{}] - data[offset + {o}u];", u_out + o);
        let _ = writeln!(out, "        sums[0] += loss_value(LOSS, LOSS_DELTA, d);");
        let _ = writeln!(out, "        sums[{}] += d * d;", 1 + o);
        let _ = writeln!(out, "        sums[{}] += abs(d);", 1 + outputs + o);
        let _ = writeln!(
            out,
            "        da[{}] = loss_gradient(LOSS, LOSS_DELTA, d, scale);\n    }}",
            u_out + o
        );
    }
    let _ = writeln!(out, "}}\n");
}

/// `dz_l = da_{l+1} f_l'(z_l)`, `dW_l += dz_l a_l^T`, `db_l += dz_l`, `da_l = W_l^T dz_l`.
fn backward(out: &mut String, architecture: &Architecture, shape: &Shape) {
    let _ = writeln!(out, "fn backward_row() {{");
    for l in (0..architecture.layer_count()).rev() {
        let (n_in, n_out) = (shape.layer_in[l], shape.layer_out[l]);
        let (w, b) = (shape.weight_offset[l], shape.bias_offset[l]);
        let (u_in, u_out) = (shape.unit_offset[l], shape.unit_offset[l + 1]);
        let (kind, slope) = activation_code(architecture.activation(l));
        let _ = writeln!(
            out,
            "    // layer {l}: {n_in} -> {n_out} ({})",
            architecture.activation(l)
        );
        for o in 0..n_out {
            let u = u_out + o;
            let _ = writeln!(
                out,
                "    da[{u}] = activation_backward({kind}u, {}, z[{u}], a[{u}], da[{u}]);",
                wgsl_f32(slope)
            );
            let _ = writeln!(out, "    grad[{}] += da[{u}];", b + o);
            for i in 0..n_in {
                let _ = writeln!(out, "    grad[{}] += da[{u}] * a[{}];", w + o * n_in + i, u_in + i);
            }
        }
        if l > 0 {
            for i in 0..n_in {
                let terms: Vec<String> = (0..n_out)
                    .map(|o| format!("theta[{}] * da[{}]", w + o * n_in + i, u_out + o))
                    .collect();
                let _ = writeln!(out, "    da[{}] = {};", u_in + i, terms.join(" + "));
            }
        }
    }
    let _ = writeln!(out, "}}\n");
}

fn reduce_subgroup(out: &mut String, name: &str, array: &str, count: usize) {
    let _ = writeln!(out, "fn {name}(lane: u32) {{");
    for k in 0..count {
        let _ = writeln!(out, "    {array}[{k}] = subgroupAdd({array}[{k}]);");
    }
    let _ = writeln!(out, "}}\n");
}

/// Generates a reduction in which every lane writes a block of its values,
/// then adds up all lanes' copies in the same order, so every lane gets
/// identical totals.
fn reduce_workgroup(out: &mut String, name: &str, array: &str, count: usize, lanes: usize, exchange: usize) {
    let block = (exchange / lanes).max(1);
    let _ = writeln!(out, "fn {name}(lane: u32) {{");
    for start in (0..count).step_by(block) {
        let n = block.min(count - start);
        for j in 0..n {
            let _ = writeln!(out, "    exchange[lane * {block}u + {j}u] = {array}[{}];", start + j);
        }
        let _ = writeln!(out, "    workgroupBarrier();");
        for j in 0..n {
            let terms: Vec<String> = (0..lanes).map(|k| format!("exchange[{}u]", k * block + j)).collect();
            let _ = writeln!(out, "    {array}[{}] = {};", start + j, terms.join(" + "));
        }
        let _ = writeln!(out, "    workgroupBarrier();");
    }
    let _ = writeln!(out, "}}\n");
}

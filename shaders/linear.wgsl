// One fully connected layer of the general path: forward, the input
// gradient and the weight gradient, for a block of rows.
//
// Shapes: A[N][IN] is the layer's input, Z and Y[N][OUT] its pre-activation
// and output, W[OUT][IN] and b[OUT] its parameters.
//   forward:          Z = A W^T + b,  Y = f(Z)
//                     (output layer: also the loss terms and dZ = dLoss/dY)
//   backward_input:   dA = dZ W,  dZ_prev = dA * f_prev'(Z_prev)
//   weight_gradient:  dW = dZ^T A,  db = column sums of dZ, per row split
//
// Layout: every row of A, Y, Z and dZ, and every row of W, is padded with
// zeros to a multiple of 4 values and read as vec4 (IN4 = ceil(IN / 4)
// vectors per input row, OUT4 per output row). W starts at vector W4 and b
// at value B of `params`, which the host keeps in this padded layout.
//
// Sharing an operand across lanes: each kernel multiplies a value that
// differs per lane (its row, or its output) by a tile that all lanes need.
// With SHUFFLE, lane s of each subgroup loads vector s of the tile and
// subgroupShuffle hands it to the others (KT == subgroup size): llvmpipe
// turns a load whose address is equal across lanes into a full gather, so
// this is several times faster there. Without SHUFFLE, the workgroup
// stages the tile in workgroup memory between barriers, the usual layout
// for GPUs.
//
// general.wgsl provides the immediates, common.wgsl the element-wise
// functions; the generated header (src/gpu/general.rs) defines per layer:
//   WG, SG, SHUFFLE, LAYER, IN, IN4, OUT, OUT4, W4, B, PARAMS4, SUMS, KT,
//   TO, RPL, TR, TILE_SIZE, ACT, SLOPE, PREV_ACT, PREV_SLOPE, STORE_PRE,
//   PREV_PRE, OUTPUT_LAYER, LOSS, LOSS_DELTA, GRAD_ROWS,
//   LANES_OVER_OUTPUTS, GRADIENT_GROUPS_PER_SPLIT, and `spread(v, k)` and
//   `spread1(v, k)`, which are subgroupShuffle(v, k) with SHUFFLE. SHUFFLE takes lane
//   `local % SG` as the subgroup invocation id: subgroups are consecutive
//   blocks of SG invocations in the 1D workgroups here.

@group(0) @binding(0) var<storage, read> params: array<vec4<f32>>;
// Layer 0: the data's features; later layers: the previous layer's output for the block.
@group(0) @binding(1) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> output: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> pre: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> targets: array<f32>;
// forward (output layer): dZ of this layer; backward_input: dZ of the previous layer.
@group(0) @binding(5) var<storage, read_write> grad_out: array<vec4<f32>>;
// forward (output layer): [slot][SUMS] loss sums.
@group(0) @binding(6) var<storage, read_write> sum_partials: array<f32>;
@group(0) @binding(7) var<storage, read> order: array<u32>;
// dZ of this layer.
@group(0) @binding(8) var<storage, read> grad_in: array<vec4<f32>>;
// Z of the previous layer, when its activation's derivative needs it.
@group(0) @binding(9) var<storage, read> prev_pre: array<vec4<f32>>;
// weight_gradient: [slot][PARAMS4] partial gradients in the padded layout.
@group(0) @binding(10) var<storage, read_write> grad_partials: array<vec4<f32>>;
// weight_gradient: the same buffer as grad_in, read one value at a time.
@group(0) @binding(11) var<storage, read> grad_in_values: array<f32>;
// head: dZ of the previous layer.
@group(0) @binding(12) var<storage, read_write> prev_grad: array<vec4<f32>>;

var<workgroup> tile: array<vec4<f32>, TILE_SIZE>;
var<workgroup> head_tile: array<vec4<f32>, HEAD_TILE>;
var<workgroup> sums_tile: array<f32, WG * SUMS>;

// Lane layouts of weight_gradient.
const GRADIENT_INPUT_LANES: u32 = 0u;
const GRADIENT_TILES: u32 = 1u;
const GRADIENT_OUTPUT_LANES: u32 = 2u;

fn workgroup_index(id: vec3<u32>, count: vec3<u32>) -> u32 {
    return id.y * count.x + id.x;
}

// Row of the data buffers (features and targets) for row `r` of the block.
fn data_row(r: u32) -> u32 {
    var row = dispatch.data_row + r;
    if (dispatch.flags & GATHER_ROWS) != 0u {
        row = order[dispatch.step.batch_start + dispatch.batch_offset + r];
    }
    return row;
}

// Row of `input` for row `r` of the block: layer 0 reads the data.
fn input_row(r: u32) -> u32 {
    var row = r;
    if LAYER == 0u {
        row = data_row(r);
    }
    return row;
}

// Vector k4 of row o of W, zero outside the matrix.
fn weight4(o: u32, k4: u32) -> vec4<f32> {
    var w = vec4<f32>(0.0);
    if o < OUT && k4 < IN4 {
        w = params[W4 + o * IN4 + k4];
    }
    return w;
}

// Component-wise activation and its derivative for vector k4 of a row:
// padding components (index >= width) are zero.
fn activate4(z: vec4<f32>, k4: u32, width: u32) -> vec4<f32> {
    var y = vec4<f32>(0.0);
    for (var c = 0u; c < 4u; c++) {
        if k4 * 4u + c < width {
            y[c] = activation_forward(ACT, SLOPE, z[c]);
        }
    }
    return y;
}

// Workgroup (row block, output tile of TO outputs): lane `local` computes
// the outputs o0..o0+TO of its RPL rows block * WG * RPL + q * WG + local.
// The output layer has a single output tile, so each workgroup holds whole
// rows for the loss.
@compute @workgroup_size(WG)
fn forward(
    @builtin(local_invocation_index) local: u32,
    @builtin(workgroup_id) id: vec3<u32>,
    @builtin(num_workgroups) count: vec3<u32>,
) {
    let lane = local % SG;
    let o_tiles = (OUT + TO - 1u) / TO;
    let g = workgroup_index(id, count);
    let row_block = g / o_tiles;
    let o0 = (g % o_tiles) * TO;

    var rows: array<u32, RPL>;
    var in_rows: array<u32, RPL>;
    for (var q = 0u; q < RPL; q++) {
        rows[q] = row_block * WG * RPL + q * WG + local;
        in_rows[q] = input_row(min(rows[q], dispatch.rows - 1u));
    }

    var acc: array<array<f32, TO>, RPL>;
    for (var k0 = 0u; k0 < IN4; k0 += KT) {
        // Without SHUFFLE, the tile W[o0..o0+TO][k0..k0+KT] goes to workgroup memory.
        if !SHUFFLE {
            for (var i = local; i < TO * KT; i += WG) {
                tile[i] = weight4(o0 + i / KT, k0 + i % KT);
            }
            workgroupBarrier();
        }

        var x: array<array<vec4<f32>, KT>, RPL>;
        for (var q = 0u; q < RPL; q++) {
            for (var kt = 0u; kt < KT_USED; kt++) {
                if k0 + kt < IN4 {
                    x[q][kt] = input[in_rows[q] * IN4 + k0 + kt];
                }
            }
        }
        for (var j = 0u; j < TO; j++) {
            // With SHUFFLE, lane s loads vector k0 + s of W's row o0 + j for the subgroup.
            var mine = vec4<f32>(0.0);
            if SHUFFLE {
                mine = weight4(o0 + j, k0 + lane);
            }
            var partial: array<vec4<f32>, RPL>;
            for (var kt = 0u; kt < KT_USED; kt++) {
                var w: vec4<f32>;
                if SHUFFLE {
                    w = spread(mine, kt);
                } else {
                    w = tile[j * KT + kt];
                }
                for (var q = 0u; q < RPL; q++) {
                    partial[q] += w * x[q][kt];
                }
            }
            for (var q = 0u; q < RPL; q++) {
                acc[q][j] += (partial[q].x + partial[q].y) + (partial[q].z + partial[q].w);
            }
        }
        if !SHUFFLE {
            workgroupBarrier();
        }
    }

    // Tiles start at multiples of 4 outputs, or cover all outputs (TO < 4).
    let o4_begin = o0 / 4u;
    let o4_end = min((o0 + TO + 3u) / 4u, OUT4);
    var sums: array<f32, SUMS>;
    for (var o4 = o4_begin; o4 < o4_end; o4++) {
        let bias = params[B / 4u + o4];
        for (var q = 0u; q < RPL; q++) {
            let r = rows[q];
            if r >= dispatch.rows {
                continue;
            }
            var z = vec4<f32>(0.0);
            for (var c = 0u; c < 4u; c++) {
                let o = o4 * 4u + c;
                if o < OUT && o >= o0 && o < o0 + TO {
                    z[c] = acc[q][o - o0] + bias[c];
                }
            }
            let y = activate4(z, o4, OUT);
            output[r * OUT4 + o4] = y;
            if STORE_PRE {
                pre[r * OUT4 + o4] = z;
            }
            if OUTPUT_LAYER {
                var dz = vec4<f32>(0.0);
                for (var c = 0u; c < 4u; c++) {
                    let o = o4 * 4u + c;
                    if o < OUT {
                        let d = y[c] - targets[data_row(r) * OUT + o];
                        sums[0] += loss_value(LOSS, LOSS_DELTA, d);
                        sums[1u + o] += d * d;
                        sums[1u + OUT + o] += abs(d);
                        dz[c] = loss_gradient(LOSS, LOSS_DELTA, d, dispatch.step.loss_scale);
                    }
                }
                if (dispatch.flags & WANT_GRADIENT) != 0u {
                    grad_out[r * OUT4 + o4] = dz;
                }
            }
        }
    }

    // The output layer adds up its rows' loss terms in the workgroup and
    // writes one partial per workgroup.
    if OUTPUT_LAYER {
        for (var k = 0u; k < SUMS; k++) {
            sums_tile[local * SUMS + k] = sums[k];
        }
        workgroupBarrier();
        for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
            if local < stride {
                for (var k = 0u; k < SUMS; k++) {
                    sums_tile[local * SUMS + k] += sums_tile[(local + stride) * SUMS + k];
                }
            }
            workgroupBarrier();
        }
        if local == 0u {
            let slot = dispatch.slot + g;
            for (var k = 0u; k < SUMS; k++) {
                sum_partials[slot * SUMS + k] = sums_tile[k];
            }
        }
    }
}

// Workgroup (row block, input tile of KT vectors): lane `local` computes
// dA[r][k0..k0+KT] = sum_o dZ[r][o] W[o][k] for its RPL rows, then
// multiplies by the previous layer's activation derivative.
@compute @workgroup_size(WG)
fn backward_input(
    @builtin(local_invocation_index) local: u32,
    @builtin(workgroup_id) id: vec3<u32>,
    @builtin(num_workgroups) count: vec3<u32>,
) {
    let lane = local % SG;
    let k_tiles = (IN4 + KT - 1u) / KT;
    let g = workgroup_index(id, count);
    let row_block = g / k_tiles;
    let k0 = (g % k_tiles) * KT;

    var rows: array<u32, RPL>;
    for (var q = 0u; q < RPL; q++) {
        rows[q] = min(row_block * WG * RPL + q * WG + local, dispatch.rows - 1u);
    }

    var acc: array<array<vec4<f32>, KT>, RPL>;
    for (var o4 = 0u; o4 < OUT4; o4++) {
        // Without SHUFFLE, rows 4 o4 .. 4 o4 + 3 of the tile W[o][k0..k0+KT] go to workgroup memory.
        if !SHUFFLE {
            for (var i = local; i < 4u * KT; i += WG) {
                tile[i] = weight4(o4 * 4u + i / KT, k0 + i % KT);
            }
            workgroupBarrier();
        }

        var dz: array<vec4<f32>, RPL>;
        for (var q = 0u; q < RPL; q++) {
            dz[q] = grad_in[rows[q] * OUT4 + o4];
        }
        for (var c = 0u; c < 4u; c++) {
            if o4 * 4u + c >= OUT {
                continue;
            }
            var mine = vec4<f32>(0.0);
            if SHUFFLE {
                mine = weight4(o4 * 4u + c, k0 + lane);
            }
            for (var kt = 0u; kt < KT; kt++) {
                var w: vec4<f32>;
                if SHUFFLE {
                    w = spread(mine, kt);
                } else {
                    w = tile[c * KT + kt];
                }
                for (var q = 0u; q < RPL; q++) {
                    acc[q][kt] += dz[q][c] * w;
                }
            }
        }
        if !SHUFFLE {
            workgroupBarrier();
        }
    }

    for (var q = 0u; q < RPL; q++) {
        let r = row_block * WG * RPL + q * WG + local;
        if r >= dispatch.rows {
            continue;
        }
        for (var kt = 0u; kt < KT; kt++) {
            let k4 = k0 + kt;
            if k4 >= IN4 {
                continue;
            }
            let y = input[r * IN4 + k4];
            var x = y;
            if PREV_PRE {
                x = prev_pre[r * IN4 + k4];
            }
            var dz_prev = vec4<f32>(0.0);
            for (var c = 0u; c < 4u; c++) {
                if k4 * 4u + c < IN {
                    dz_prev[c] = activation_backward(PREV_ACT, PREV_SLOPE, x[c], y[c], acc[q][kt][c]);
                }
            }
            grad_out[r * IN4 + k4] = dz_prev;
        }
    }
}

// Partial dW = dZ^T A and db over one split of GRAD_ROWS rows, written to
// slot dispatch.slot + split.
//
// GRADIENT_MODE picks the lane layout:
// - GRADIENT_TILES (many inputs and outputs): workgroup (split, WG / SG
//   tiles); each subgroup accumulates a tile of SG outputs by SG input
//   vectors.
// - GRADIENT_OUTPUT_LANES (few inputs, many outputs): workgroup (split,
//   output block); lane owns one output for all input vectors.
// - GRADIENT_INPUT_LANES (few outputs): workgroup (split, input block); lane
//   owns input vector k4 = block * WG + local for every output, and lane
//   k4 == IN4 accumulates the bias.
@compute @workgroup_size(WG)
fn weight_gradient(
    @builtin(local_invocation_index) local: u32,
    @builtin(workgroup_id) id: vec3<u32>,
    @builtin(num_workgroups) count: vec3<u32>,
) {
    let lane = local % SG;
    let g = workgroup_index(id, count);
    let splits = (dispatch.rows + GRAD_ROWS - 1u) / GRAD_ROWS;
    let slot = dispatch.slot + g / GRADIENT_GROUPS_PER_SPLIT;
    let split = g / GRADIENT_GROUPS_PER_SPLIT;
    let within = g % GRADIENT_GROUPS_PER_SPLIT;
    let r_begin = min(split * GRAD_ROWS, dispatch.rows);
    let r_end = min(r_begin + GRAD_ROWS, dispatch.rows);

    if GRADIENT_MODE == GRADIENT_OUTPUT_LANES {
        // Lane `local` owns output o for every input vector (IN4 <= SG); the
        // rows of A are shared across the subgroup.
        let o = within * WG + local;
        var acc: array<vec4<f32>, KT_USED>;
        var bias = 0.0;
        for (var r = r_begin; r < r_end; r++) {
            var mine = vec4<f32>(0.0);
            if SHUFFLE && lane < IN4 {
                mine = input[input_row(r) * IN4 + lane];
            }
            let dz = grad_in_values[r * OUT4 * 4u + min(o, OUT - 1u)];
            bias += dz;
            for (var k4 = 0u; k4 < KT_USED; k4++) {
                var a: vec4<f32>;
                if SHUFFLE {
                    a = spread(mine, k4);
                } else {
                    a = input[input_row(r) * IN4 + k4];
                }
                acc[k4] += dz * a;
            }
        }
        // Four consecutive outputs share a bias vector (B and the block start
        // are multiples of 4), so their lanes pass the sums to the first one.
        sums_tile[local] = bias;
        workgroupBarrier();
        if split < splits && o < OUT {
            for (var k4 = 0u; k4 < KT_USED; k4++) {
                if k4 < IN4 {
                    grad_partials[slot * PARAMS4 + W4 + o * IN4 + k4] = acc[k4];
                }
            }
            if o % 4u == 0u {
                var v = vec4<f32>(0.0);
                for (var c = 0u; c < 4u; c++) {
                    if o + c < OUT {
                        v[c] = sums_tile[local + c];
                    }
                }
                grad_partials[slot * PARAMS4 + (B + o) / 4u] = v;
            }
        }
    } else if GRADIENT_MODE == GRADIENT_TILES {
        // Each subgroup owns a tile of SG outputs by SG input vectors, lane
        // `lane` its vector k4; the subgroups of the first input tile also add
        // up the bias. dZ values of the tile's outputs are shared across the
        // subgroup.
        let k_tiles = (IN4 + SG - 1u) / SG;
        let tile_index = within * (WG / SG) + local / SG;
        let o0 = (tile_index / k_tiles) * SG;
        let k4 = (tile_index % k_tiles) * SG + lane;
        if o0 >= OUT {
            return;
        }
        var acc: array<vec4<f32>, SG>;
        var bias: array<f32, SG>;
        for (var r = r_begin; r < r_end; r++) {
            var a = vec4<f32>(0.0);
            if k4 < IN4 {
                a = input[input_row(r) * IN4 + k4];
            }
            var mine = 0.0;
            if SHUFFLE && o0 + lane < OUT {
                mine = grad_in_values[r * OUT4 * 4u + o0 + lane];
            }
            for (var j = 0u; j < SG; j++) {
                var dz: f32;
                if SHUFFLE {
                    dz = spread1(mine, j);
                } else {
                    dz = grad_in_values[r * OUT4 * 4u + min(o0 + j, OUT - 1u)];
                }
                acc[j] += dz * a;
                bias[j] += dz;
            }
        }
        if split < splits {
            if k4 < IN4 {
                for (var j = 0u; j < SG; j++) {
                    if o0 + j < OUT {
                        grad_partials[slot * PARAMS4 + W4 + (o0 + j) * IN4 + k4] = acc[j];
                    }
                }
            }
            if k4 == 0u {
                for (var j4 = 0u; j4 < SG / 4u; j4++) {
                    let o4 = o0 / 4u + j4;
                    if o4 < OUT4 {
                        var v = vec4<f32>(0.0);
                        for (var c = 0u; c < 4u; c++) {
                            if o4 * 4u + c < OUT {
                                v[c] = bias[j4 * 4u + c];
                            }
                        }
                        grad_partials[slot * PARAMS4 + B / 4u + o4] = v;
                    }
                }
            }
        }
    } else {
        // GRADIENT_INPUT_LANES
        let k4 = within * WG + local;
        var acc: array<vec4<f32>, OUT>;
        // Rows go in groups of SG: with SHUFFLE, lane s loads dZ of row r0 + s
        // for the whole subgroup.
        for (var r0 = r_begin; r0 < r_end; r0 += SG) {
            for (var o4 = 0u; o4 < OUT4; o4++) {
                var mine = vec4<f32>(0.0);
                if SHUFFLE && r0 + lane < r_end {
                    mine = grad_in[(r0 + lane) * OUT4 + o4];
                }
                for (var i = 0u; i < SG; i++) {
                    let r = r0 + i;
                    var dz: vec4<f32>;
                    if SHUFFLE {
                        dz = spread(mine, i);
                    } else if r < r_end {
                        dz = grad_in[r * OUT4 + o4];
                    }
                    if r >= r_end {
                        break;
                    }
                    var a = vec4<f32>(1.0, 0.0, 0.0, 0.0);
                    if k4 < IN4 {
                        a = input[input_row(r) * IN4 + k4];
                    }
                    for (var c = 0u; c < 4u; c++) {
                        let o = o4 * 4u + c;
                        if o < OUT {
                            acc[o] += dz[c] * a;
                        }
                    }
                }
            }
        }
        if split < splits {
            if k4 < IN4 {
                for (var o = 0u; o < OUT; o++) {
                    grad_partials[slot * PARAMS4 + W4 + o * IN4 + k4] = acc[o];
                }
            } else if k4 == IN4 {
                for (var o4 = 0u; o4 < OUT4; o4++) {
                    var v = vec4<f32>(0.0);
                    for (var c = 0u; c < 4u; c++) {
                        if o4 * 4u + c < OUT {
                            v[c] = acc[o4 * 4u + c].x;
                        }
                    }
                    grad_partials[slot * PARAMS4 + B / 4u + o4] = v;
                }
            }
        }
    }
}

// The output layer's whole training step for a split of GRAD_ROWS rows,
// when it has few outputs (OUT * IN4 <= HEAD_MAX): forward, loss terms,
// dZ_prev = (dZ W) * f_prev'(Z_prev) for the previous layer, and the
// partial dW, db. It replaces forward, backward_input and weight_gradient
// of this layer in training passes, and reads each input row once instead
// of three times. Every lane keeps all of W; lane `local` takes rows
// r_begin + local, r_begin + local + WG, ...; the workgroup then sums its
// lanes' partials and writes loss sums to slot dispatch.slot + g and the
// gradient to slot dispatch.grad_slot + g.
@compute @workgroup_size(WG)
fn head(
    @builtin(local_invocation_index) local: u32,
    @builtin(workgroup_id) id: vec3<u32>,
    @builtin(num_workgroups) count: vec3<u32>,
) {
    let g = workgroup_index(id, count);
    let splits = (dispatch.rows + GRAD_ROWS - 1u) / GRAD_ROWS;
    let r_begin = min(g * GRAD_ROWS, dispatch.rows);
    let r_end = min(r_begin + GRAD_ROWS, dispatch.rows);

    var w: array<array<vec4<f32>, IN4>, OUT>;
    for (var o = 0u; o < OUT; o++) {
        for (var k4 = 0u; k4 < IN4; k4++) {
            w[o][k4] = params[W4 + o * IN4 + k4];
        }
    }
    let bias = params[B / 4u];

    var acc: array<array<vec4<f32>, IN4>, OUT>;
    var bias_acc = vec4<f32>(0.0);
    var sums: array<f32, SUMS>;
    for (var r = r_begin + local; r < r_end; r += WG) {
        var h: array<vec4<f32>, IN4>;
        for (var k4 = 0u; k4 < IN4; k4++) {
            h[k4] = input[r * IN4 + k4];
        }

        // Forward and loss; the output layer's activation is the identity.
        var dz = vec4<f32>(0.0);
        for (var o = 0u; o < OUT; o++) {
            var partial = vec4<f32>(0.0);
            for (var k4 = 0u; k4 < IN4; k4++) {
                partial += w[o][k4] * h[k4];
            }
            let y = ((partial.x + partial.y) + (partial.z + partial.w)) + bias[o];
            let d = y - targets[data_row(r) * OUT + o];
            sums[0] += loss_value(LOSS, LOSS_DELTA, d);
            sums[1u + o] += d * d;
            sums[1u + OUT + o] += abs(d);
            dz[o] = loss_gradient(LOSS, LOSS_DELTA, d, dispatch.step.loss_scale);
        }
        bias_acc += dz;

        // dZ of the previous layer, and this layer's weight gradient.
        for (var k4 = 0u; k4 < IN4; k4++) {
            var da = vec4<f32>(0.0);
            for (var o = 0u; o < OUT; o++) {
                da += dz[o] * w[o][k4];
                acc[o][k4] += dz[o] * h[k4];
            }
            let y = h[k4];
            var x = y;
            if PREV_PRE {
                x = prev_pre[r * IN4 + k4];
            }
            var dz_prev = vec4<f32>(0.0);
            for (var c = 0u; c < 4u; c++) {
                if k4 * 4u + c < IN {
                    dz_prev[c] = activation_backward(PREV_ACT, PREV_SLOPE, x[c], y[c], da[c]);
                }
            }
            prev_grad[r * IN4 + k4] = dz_prev;
        }
    }

    // Workgroup sums, HEAD_CHUNK vectors at a time: lanes write theirs, then
    // lane j adds up entry j of every lane. Entries are the gradient
    // (OUT * IN4 vectors), the bias and the loss sums.
    let entries = OUT * IN4 + 1u + (SUMS + 3u) / 4u;
    for (var start = 0u; start < entries; start += HEAD_CHUNK) {
        for (var j = 0u; j < HEAD_CHUNK; j++) {
            let e = start + j;
            var v = vec4<f32>(0.0);
            if e < OUT * IN4 {
                v = acc[e / IN4][e % IN4];
            } else if e == OUT * IN4 {
                v = bias_acc;
            } else if e < entries {
                let k = (e - OUT * IN4 - 1u) * 4u;
                for (var c = 0u; c < 4u; c++) {
                    if k + c < SUMS {
                        v[c] = sums[k + c];
                    }
                }
            }
            head_tile[local * HEAD_CHUNK + j] = v;
        }
        workgroupBarrier();
        if local < HEAD_CHUNK && start + local < entries && g < splits {
            var total = vec4<f32>(0.0);
            for (var lane_index = 0u; lane_index < WG; lane_index++) {
                total += head_tile[lane_index * HEAD_CHUNK + local];
            }
            let e = start + local;
            let grad_slot = dispatch.grad_slot + g;
            if e < OUT * IN4 {
                grad_partials[grad_slot * PARAMS4 + W4 + e] = total;
            } else if e == OUT * IN4 {
                grad_partials[grad_slot * PARAMS4 + B / 4u] = total;
            } else {
                let k = (e - OUT * IN4 - 1u) * 4u;
                for (var c = 0u; c < 4u; c++) {
                    if k + c < SUMS {
                        sum_partials[(dispatch.slot + g) * SUMS + k + c] = total[c];
                    }
                }
            }
        }
        workgroupBarrier();
    }
}

// Cross-lane sums for fused_loops.wgsl through workgroup memory, for
// adapters without subgroup operations or with a variable subgroup size.
//
// The header defines EXCHANGE, the number of f32 in the exchange buffer (a
// multiple of LANES). Values go in blocks of EXCHANGE / LANES: each lane
// writes its block, then every lane adds up all lanes' copies in the same
// order, so every lane gets bit-identical totals.

var<workgroup> exchange: array<f32, EXCHANGE>;

fn reduce_sums(lane: u32) {
    let block = EXCHANGE / LANES;
    for (var start = 0u; start < SUMS; start += block) {
        let n = min(block, SUMS - start);
        for (var j = 0u; j < n; j++) {
            exchange[lane * block + j] = sums[start + j];
        }
        workgroupBarrier();
        for (var j = 0u; j < n; j++) {
            var total = 0.0;
            for (var k = 0u; k < LANES; k++) {
                total += exchange[k * block + j];
            }
            sums[start + j] = total;
        }
        workgroupBarrier();
    }
}

fn reduce_gradients(lane: u32) {
    let block = EXCHANGE / LANES;
    for (var start = 0u; start < PARAMS; start += block) {
        let n = min(block, PARAMS - start);
        for (var j = 0u; j < n; j++) {
            exchange[lane * block + j] = grad[start + j];
        }
        workgroupBarrier();
        for (var j = 0u; j < n; j++) {
            var total = 0.0;
            for (var k = 0u; k < LANES; k++) {
                total += exchange[k * block + j];
            }
            grad[start + j] = total;
        }
        workgroupBarrier();
    }
}

// Cross-lane sums for fused_loops.wgsl when the workgroup is exactly one
// subgroup: every lane receives the same totals.

fn reduce_sums(lane: u32) {
    for (var k = 0u; k < SUMS; k++) {
        sums[k] = subgroupAdd(sums[k]);
    }
}

fn reduce_gradients(lane: u32) {
    for (var p = 0u; p < PARAMS; p++) {
        grad[p] = subgroupAdd(grad[p]);
    }
}

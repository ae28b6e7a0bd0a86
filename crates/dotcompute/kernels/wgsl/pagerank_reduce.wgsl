// pagerank_reduce: one workgroup folds the partial triples of `blocks`
// workgroups into totals = (L1, L∞, dangling mass): invocation t sums
// partials t, t + block, ... in order, then the tree. Appended to
// pagerank_common.wgsl.
@group(0) @binding(0) var<storage, read> partials: array<f64>;
@group(0) @binding(1) var<storage, read_write> totals: array<f64>;
@group(0) @binding(2) var<uniform> blocks: u32;

@compute @workgroup_size(block_x)
fn pagerank_reduce(@builtin(local_invocation_index) tid: u32) {
    var l1 = f64(0.0);
    var linf = f64(0.0);
    var mass = f64(0.0);
    for (var i = tid; i < blocks; i += block_x) {
        l1 = l1 + partials[i];
        linf = max(linf, partials[blocks + i]);
        mass = mass + partials[2u * blocks + i];
    }
    pr_tree(tid, l1, linf, mass);
    if (tid == 0u) {
        totals[0] = s_l1[0];
        totals[1] = s_linf[0];
        totals[2] = s_mass[0];
    }
}

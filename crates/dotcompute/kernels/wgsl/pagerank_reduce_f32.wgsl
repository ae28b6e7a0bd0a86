// pagerank_reduce, f32 variant (see pagerank_common_f32.wgsl).
@group(0) @binding(0) var<storage, read> partials: array<vec2<u32>>;
@group(0) @binding(1) var<storage, read_write> totals: array<vec2<u32>>;
@group(0) @binding(2) var<uniform> blocks: u32;

@compute @workgroup_size(block_x)
fn pagerank_reduce(@builtin(local_invocation_index) tid: u32) {
    var l1 = 0.0;
    var linf = 0.0;
    var mass = 0.0;
    for (var i = tid; i < blocks; i += block_x) {
        l1 = l1 + pr_load(partials[i]);
        linf = max(linf, pr_load(partials[blocks + i]));
        mass = mass + pr_load(partials[2u * blocks + i]);
    }
    pr_tree(tid, l1, linf, mass);
    if (tid == 0u) {
        totals[0] = pr_store(s_l1[0]);
        totals[1] = pr_store(s_linf[0]);
        totals[2] = pr_store(s_mass[0]);
    }
}

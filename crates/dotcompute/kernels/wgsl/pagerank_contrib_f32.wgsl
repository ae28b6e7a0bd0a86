// pagerank_contrib, f32 variant (see pagerank_common_f32.wgsl).
@group(0) @binding(0) var<storage, read> rank: array<vec2<u32>>;
@group(0) @binding(1) var<storage, read> outdeg: array<u32>;
@group(0) @binding(2) var<storage, read_write> contrib: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read_write> partials: array<vec2<u32>>;
@group(0) @binding(4) var<uniform> damping_bits: vec2<u32>;
@group(0) @binding(5) var<uniform> n: u32;

@compute @workgroup_size(block_x)
fn pagerank_contrib(
    @builtin(local_invocation_index) tid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let damping = pr_load(damping_bits);
    let stride = block_x * groups.x;
    var mass = 0.0;
    var u = wid.x * block_x + tid;
    loop {
        if (u >= n) { break; }
        let k = outdeg[u];
        let r = pr_load(rank[u]);
        if (k != 0u) {
            contrib[u] = pr_store(pr_weight(damping, k) * r);
        } else {
            contrib[u] = vec2<u32>(0u, 0u);
            mass = mass + r;
        }
        if (stride > n - u) { break; }
        u += stride;
    }
    pr_tree(tid, 0.0, 0.0, mass);
    if (tid == 0u) {
        let g = groups.x;
        partials[wid.x] = pr_store(s_l1[0]);
        partials[g + wid.x] = pr_store(s_linf[0]);
        partials[2u * g + wid.x] = pr_store(s_mass[0]);
    }
}

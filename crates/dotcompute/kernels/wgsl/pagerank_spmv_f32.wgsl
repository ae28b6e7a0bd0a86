// pagerank_spmv, f32 variant (see pagerank_common_f32.wgsl).
@group(0) @binding(0) var<storage, read> offsets: array<vec2<u32>>;
@group(0) @binding(1) var<storage, read> sources: array<u32>;
@group(0) @binding(2) var<storage, read> contrib: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read> rank: array<vec2<u32>>;
@group(0) @binding(4) var<storage, read> outdeg: array<u32>;
@group(0) @binding(5) var<storage, read_write> next: array<vec2<u32>>;
@group(0) @binding(6) var<storage, read_write> contrib_next: array<vec2<u32>>;
@group(0) @binding(7) var<storage, read_write> partials: array<vec2<u32>>;
@group(0) @binding(8) var<uniform> base_bits: vec2<u32>;
@group(0) @binding(9) var<uniform> damping_bits: vec2<u32>;
@group(0) @binding(10) var<uniform> n: u32;

@compute @workgroup_size(block_x)
fn pagerank_spmv(
    @builtin(local_invocation_index) tid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let base = pr_load(base_bits);
    let damping = pr_load(damping_bits);
    let stride = block_x * groups.x;
    var l1 = 0.0;
    var linf = 0.0;
    var mass = 0.0;
    var v = wid.x * block_x + tid;
    loop {
        if (v >= n) { break; }
        var sum = 0.0;
        let end = offsets[v + 1u].x;
        for (var e = offsets[v].x; e < end; e++) {
            sum = sum + pr_load(contrib[sources[e]]);
        }
        let value = base + sum;
        let diff = abs(value - pr_load(rank[v]));
        l1 = l1 + diff;
        linf = max(linf, diff);
        next[v] = pr_store(value);
        let k = outdeg[v];
        if (k != 0u) {
            contrib_next[v] = pr_store(pr_weight(damping, k) * value);
        } else {
            contrib_next[v] = vec2<u32>(0u, 0u);
            mass = mass + value;
        }
        if (stride > n - v) { break; }
        v += stride;
    }
    pr_tree(tid, l1, linf, mass);
    if (tid == 0u) {
        let g = groups.x;
        partials[wid.x] = pr_store(s_l1[0]);
        partials[g + wid.x] = pr_store(s_linf[0]);
        partials[2u * g + wid.x] = pr_store(s_mass[0]);
    }
}

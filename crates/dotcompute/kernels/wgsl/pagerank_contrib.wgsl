// pagerank_contrib: contrib[u] = d · (1/outdeg[u]) · rank[u] (0 for a
// dangling node, whose rank goes to the dangling mass); partial triples
// (0, 0, mass). Appended to pagerank_common.wgsl.
@group(0) @binding(0) var<storage, read> rank: array<f64>;
@group(0) @binding(1) var<storage, read> outdeg: array<u32>;
@group(0) @binding(2) var<storage, read_write> contrib: array<f64>;
@group(0) @binding(3) var<storage, read_write> partials: array<f64>;
@group(0) @binding(4) var<uniform> damping: f64;
@group(0) @binding(5) var<uniform> n: u32;

@compute @workgroup_size(block_x)
fn pagerank_contrib(
    @builtin(local_invocation_index) tid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let stride = block_x * groups.x;
    var mass = f64(0.0);
    var u = wid.x * block_x + tid;
    loop {
        if (u >= n) { break; }
        let k = outdeg[u];
        if (k != 0u) {
            contrib[u] = pr_weight(damping, k) * rank[u];
        } else {
            contrib[u] = f64(0.0);
            mass = mass + rank[u];
        }
        if (stride > n - u) { break; }
        u += stride;
    }
    pr_tree(tid, f64(0.0), f64(0.0), mass);
    if (tid == 0u) {
        let g = groups.x;
        partials[wid.x] = s_l1[0];
        partials[g + wid.x] = s_linf[0];
        partials[2u * g + wid.x] = s_mass[0];
    }
}

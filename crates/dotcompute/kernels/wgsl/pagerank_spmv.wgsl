// pagerank_spmv: one power-iteration step. next[v] = base + Σ contrib[u]
// over v's in-edges (CSR order, from 0.0); the residual |next[v] − rank[v]|
// into L1 and L∞; contrib_next and the dangling mass from next. offsets are
// u64 on the host: read here as vec2<u32> (low word first; the graph has
// fewer than 2^32 edges, as any storage binding can hold). Appended to
// pagerank_common.wgsl.
@group(0) @binding(0) var<storage, read> offsets: array<vec2<u32>>;
@group(0) @binding(1) var<storage, read> sources: array<u32>;
@group(0) @binding(2) var<storage, read> contrib: array<f64>;
@group(0) @binding(3) var<storage, read> rank: array<f64>;
@group(0) @binding(4) var<storage, read> outdeg: array<u32>;
@group(0) @binding(5) var<storage, read_write> next: array<f64>;
@group(0) @binding(6) var<storage, read_write> contrib_next: array<f64>;
@group(0) @binding(7) var<storage, read_write> partials: array<f64>;
@group(0) @binding(8) var<uniform> base: f64;
@group(0) @binding(9) var<uniform> damping: f64;
@group(0) @binding(10) var<uniform> n: u32;

@compute @workgroup_size(block_x)
fn pagerank_spmv(
    @builtin(local_invocation_index) tid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let stride = block_x * groups.x;
    var l1 = f64(0.0);
    var linf = f64(0.0);
    var mass = f64(0.0);
    var v = wid.x * block_x + tid;
    loop {
        if (v >= n) { break; }
        var sum = f64(0.0);
        let end = offsets[v + 1u].x;
        for (var e = offsets[v].x; e < end; e++) {
            sum = sum + contrib[sources[e]];
        }
        let value = base + sum;
        let diff = abs(value - rank[v]);
        l1 = l1 + diff;
        linf = max(linf, diff);
        next[v] = value;
        let k = outdeg[v];
        if (k != 0u) {
            contrib_next[v] = pr_weight(damping, k) * value;
        } else {
            contrib_next[v] = f64(0.0);
            mass = mass + value;
        }
        if (stride > n - v) { break; }
        v += stride;
    }
    pr_tree(tid, l1, linf, mass);
    if (tid == 0u) {
        let g = groups.x;
        partials[wid.x] = s_l1[0];
        partials[g + wid.x] = s_linf[0];
        partials[2u * g + wid.x] = s_mass[0];
    }
}

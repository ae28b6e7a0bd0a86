// dotcompute PageRank kernels in WGSL, f64 (needs SHADER_F64): the prelude
// the three entry points share. Formulas and floating-point order are those
// of pagerank.cu (see its header) and of the CPU twins in kernels.rs:
// rows sum their sources in CSR order from 0.0 and add the constant term;
// weights are damping · (1 / outdeg); each workgroup folds its invocations'
// (L1, L∞, dangling mass) triples in a tree (strides block/2, ..., 1) and
// stores them at partials[w], partials[G + w], partials[2G + w] for
// workgroup w of G.
override block_x: u32 = 256u;

var<workgroup> s_l1: array<f64, block_x>;
var<workgroup> s_linf: array<f64, block_x>;
var<workgroup> s_mass: array<f64, block_x>;

// Folds the workgroup's triples; the result ends in slot 0 of each array.
fn pr_tree(tid: u32, l1: f64, linf: f64, mass: f64) {
    s_l1[tid] = l1;
    s_linf[tid] = linf;
    s_mass[tid] = mass;
    workgroupBarrier();
    var s = block_x / 2u;
    loop {
        if (s == 0u) { break; }
        if (tid < s) {
            s_l1[tid] = s_l1[tid] + s_l1[tid + s];
            s_linf[tid] = max(s_linf[tid], s_linf[tid + s]);
            s_mass[tid] = s_mass[tid] + s_mass[tid + s];
        }
        workgroupBarrier();
        s = s / 2u;
    }
}

fn pr_weight(damping: f64, k: u32) -> f64 {
    return damping * (f64(1.0) / f64(k));
}

// dotcompute PageRank kernels in WGSL, f32 variant for adapters without
// SHADER_F64 (Metal, many mobile and some desktop GPUs): the host's buffers
// stay f64, read here as their bits (vec2<u32>, low word first) and
// converted to f32 on load (rounded to nearest even) and back to f64 on
// store (exactly), so the same driver runs unchanged. Arithmetic is f32,
// in the order of the f64 kernels. Precision: ranks and residuals carry f32
// rounding (relative error ~1e-6 per operation); the tests state the
// tolerance they meet against the f64 CPU solver.
override block_x: u32 = 256u;

var<workgroup> s_l1: array<f32, block_x>;
var<workgroup> s_linf: array<f32, block_x>;
var<workgroup> s_mass: array<f32, block_x>;

// f64 bits -> f32, round to nearest even; f32 subnormals flush to zero.
fn pr_load(bits: vec2<u32>) -> f32 {
    let hi = bits.y;
    let lo = bits.x;
    let sign = hi & 0x80000000u;
    let e = (hi >> 20u) & 0x7ffu;
    if (e == 0x7ffu) {
        let nan = ((hi & 0xfffffu) | lo) != 0u;
        return bitcast<f32>(sign | 0x7f800000u | select(0u, 0x400000u, nan));
    }
    let e32 = i32(e) - 1023 + 127;
    if (e == 0u || e32 <= 0) {
        return bitcast<f32>(sign);
    }
    // 52-bit mantissa: 20 bits in hi, 32 in lo. Keep 23, round on the other 29.
    var m = ((hi & 0xfffffu) << 3u) | (lo >> 29u);
    let rest = lo & 0x1fffffffu;
    var out_e = u32(e32);
    if (rest > 0x10000000u || (rest == 0x10000000u && (m & 1u) == 1u)) {
        m = m + 1u;
        if (m == 0x800000u) {
            m = 0u;
            out_e = out_e + 1u;
        }
    }
    if (out_e >= 255u) {
        return bitcast<f32>(sign | 0x7f800000u);
    }
    return bitcast<f32>(sign | (out_e << 23u) | m);
}

// f32 -> f64 bits (exact; f32 subnormals become zero).
fn pr_store(x: f32) -> vec2<u32> {
    let b = bitcast<u32>(x);
    let sign = b & 0x80000000u;
    let e = (b >> 23u) & 0xffu;
    let m = b & 0x7fffffu;
    if (e == 0u) {
        return vec2<u32>(0u, sign);
    }
    var e64 = e + 1023u - 127u;
    if (e == 0xffu) {
        e64 = 0x7ffu;
    }
    return vec2<u32>(m << 29u, sign | (e64 << 20u) | (m >> 3u));
}

fn pr_tree(tid: u32, l1: f32, linf: f32, mass: f32) {
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

fn pr_weight(damping: f32, k: u32) -> f32 {
    return damping * (1.0 / f32(k));
}

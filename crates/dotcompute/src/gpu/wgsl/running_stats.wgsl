// Example WGSL handler: running statistics kept in the state across
// messages: count, mean and variance of every value (Welford, f64) and the
// mean, min and max of the last 16 values (f32 ring buffer). Stateful and
// order-dependent: serial. The formulas and their order are those of the
// Rust twin dotcompute::gpu::handlers::running_stats; u64 fields are
// vec2<u32> (low word first). Needs SHADER_F64.
struct Sample {
    seq: vec2<u32>,
    value: f32,
    channel: u32,
}

struct Stats {
    seq: vec2<u32>,
    count: vec2<u32>,
    mean: f64,
    variance: f64,
    window_mean: f32,
    window_min: f32,
    window_max: f32,
    window_len: u32,
}

struct StatsState {
    count: vec2<u32>,
    mean: f64,
    m2: f64,
    window: array<f32, 16>,
    next: u32,
    len: u32,
}

fn dc_u64_inc(x: vec2<u32>) -> vec2<u32> {
    let lo = x.x + 1u;
    return vec2<u32>(lo, x.y + select(0u, 1u, lo == 0u));
}

fn dc_u64_to_f64(x: vec2<u32>) -> f64 {
    return f64(x.y) * f64(4294967296.0) + f64(x.x);
}

fn running_stats(input: Sample, out: ptr<function, Stats>, s: ptr<function, StatsState>) -> u32 {
    let x = f64(input.value);
    (*s).count = dc_u64_inc((*s).count);
    let n = dc_u64_to_f64((*s).count);
    let delta = x - (*s).mean;
    (*s).mean = (*s).mean + delta / n;
    (*s).m2 = (*s).m2 + delta * (x - (*s).mean);
    (*s).window[(*s).next % 16u] = input.value;
    (*s).next = ((*s).next + 1u) % 16u;
    if ((*s).len < 16u) {
        (*s).len = (*s).len + 1u;
    }
    var sum = 0.0;
    var lo = (*s).window[0];
    var hi = (*s).window[0];
    for (var i = 0u; i < (*s).len; i++) {
        let v = (*s).window[i];
        sum = sum + v;
        lo = min(lo, v);
        hi = max(hi, v);
    }
    (*out).seq = input.seq;
    (*out).count = (*s).count;
    (*out).mean = (*s).mean;
    if (n > f64(1.0)) {
        (*out).variance = (*s).m2 / (n - f64(1.0));
    } else {
        (*out).variance = f64(0.0);
    }
    (*out).window_mean = sum / f32((*s).len);
    (*out).window_min = lo;
    (*out).window_max = hi;
    (*out).window_len = (*s).len;
    return 0u;
}

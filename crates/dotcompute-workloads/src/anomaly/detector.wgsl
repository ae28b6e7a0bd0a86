// dotcompute anomaly detector as a WGSL ring-kernel handler: Detector::score
// (workloads/anomaly/mod.rs), operation for operation, in f64 (needs
// SHADER_F64): the deviation saturated to ±f64::MAX, a deviation beyond B
// standard deviations (the clip, measured with the variance before the
// point) folded into the statistics as exactly B of them, the mean
// saturated, the variance capped at f64::MAX, and the score 0 for a zero
// deviation and at most f64::MAX. One message is a block of up to 32 consecutive points; the
// state persists on the device. A block out of order (first_index != seen)
// or with a bad length is refused with code 1 and the state is untouched.
// u64 fields are vec2<u32> (low word first).
struct DcPointBlock {
    first_index: vec2<u32>,
    len: u32,
    reserved: u32,
    values: array<f64, 32>,
}

struct DcBlockVerdict {
    first_index: vec2<u32>,
    seen: vec2<u32>,
    mean: f64,
    variance: f64,
    len: u32,
    flagged: u32,
    scores: array<f64, 32>,
}

struct DcDetectorState {
    alpha: f64,
    one_minus_alpha: f64,
    threshold: f64,
    epsilon: f64,
    clip: f64,
    clip_sq: f64,
    mean: f64,
    variance: f64,
    seen: vec2<u32>,
}

fn dc_u64_inc(x: vec2<u32>) -> vec2<u32> {
    let lo = x.x + 1u;
    return vec2<u32>(lo, x.y + select(0u, 1u, lo == 0u));
}

const DC_F64_MAX: f64 = 1.7976931348623157e308;

fn dc_sat(v: f64) -> f64 {
    return min(max(v, -DC_F64_MAX), DC_F64_MAX);
}

fn dc_anomaly_detect(input: DcPointBlock, out: ptr<function, DcBlockVerdict>, s: ptr<function, DcDetectorState>) -> u32 {
    (*out).first_index = input.first_index;
    if (any(input.first_index != (*s).seen) || input.len == 0u || input.len > 32u) {
        (*out).len = 0u;
        (*out).seen = (*s).seen;
        (*out).mean = (*s).mean;
        (*out).variance = (*s).variance;
        return 1u;
    }
    var values = input.values;
    var flagged = 0u;
    for (var k = 0u; k < 32u; k++) {
        var score = f64(0.0);
        if (k < input.len) {
            let x = values[k];
            let delta = dc_sat(x - (*s).mean);
            let spread = (*s).variance + (*s).epsilon;
            var folded = delta;
            if (delta * delta > (*s).clip_sq * spread && spread > f64(0.0)) {
                let bound = (*s).clip * sqrt(spread);
                folded = select(bound, -bound, delta < f64(0.0));
            }
            (*s).mean = dc_sat((*s).mean + (*s).alpha * folded);
            (*s).variance = (*s).one_minus_alpha * min((*s).variance + (*s).alpha * folded * folded, DC_F64_MAX);
            (*s).seen = dc_u64_inc((*s).seen);
            if (delta != f64(0.0)) {
                score = min(abs(delta) / sqrt((*s).variance + (*s).epsilon), DC_F64_MAX);
            }
            if (score > (*s).threshold) {
                flagged = flagged | (1u << k);
            }
        }
        (*out).scores[k] = score;
    }
    (*out).len = input.len;
    (*out).flagged = flagged;
    (*out).seen = (*s).seen;
    (*out).mean = (*s).mean;
    (*out).variance = (*s).variance;
    return 0u;
}

// Example WGSL handler: the reply is the request (stateless; parallel).
// Rust twin: dotcompute::gpu::handlers::echo. Sample's u64 `seq` is a
// vec2<u32> here (low word first), so the layout is the Rust struct's.
struct Sample {
    seq: vec2<u32>,
    value: f32,
    channel: u32,
}

struct NoState {
    unused: u32,
}

fn echo(input: Sample, out: ptr<function, Sample>, state: ptr<function, NoState>) -> u32 {
    *out = input;
    return 0u;
}

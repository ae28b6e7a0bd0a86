use dotcompute::GpuMessage;

#[derive(Clone, Copy, GpuMessage)]
struct Reading {
    seq: u64,
    value: f32,
}

fn main() {}

use dotcompute::GpuMessage;

#[derive(Clone, Copy, GpuMessage)]
#[repr(C)]
struct Batch {
    values: Vec<f32>,
}

fn main() {}

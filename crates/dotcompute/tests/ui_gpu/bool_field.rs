use dotcompute::GpuMessage;

#[derive(Clone, Copy, GpuMessage)]
#[repr(C)]
struct Flagged {
    value: f32,
    valid: bool,
}

fn main() {}

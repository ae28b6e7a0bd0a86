use dotcompute::GpuMessage;

#[derive(Clone, Copy, GpuMessage)]
#[repr(C)]
struct Gappy {
    tag: u8,
    value: u64,
}

fn main() {}

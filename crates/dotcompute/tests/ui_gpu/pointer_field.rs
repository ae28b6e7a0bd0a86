use dotcompute::GpuMessage;

#[derive(Clone, Copy, GpuMessage)]
#[repr(C)]
struct Linked {
    next: *const u8,
}

fn main() {}

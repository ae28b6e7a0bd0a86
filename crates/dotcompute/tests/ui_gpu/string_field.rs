use dotcompute::GpuMessage;

#[derive(Clone, Copy, GpuMessage)]
#[repr(C)]
struct Named {
    id: u64,
    name: String,
}

fn main() {}

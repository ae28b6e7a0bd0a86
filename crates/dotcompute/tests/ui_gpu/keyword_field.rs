use dotcompute::GpuMessage;

#[derive(Clone, Copy, GpuMessage)]
#[repr(C)]
struct Shape {
    r#class: u32,
}

fn main() {}

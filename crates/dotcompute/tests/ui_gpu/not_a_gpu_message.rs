use dotcompute::GpuMessage;

#[derive(Clone, Copy)]
#[repr(C)]
struct Plain {
    x: u32,
}

#[derive(Clone, Copy, GpuMessage)]
#[repr(C)]
struct Outer {
    inner: Plain,
}

fn main() {}

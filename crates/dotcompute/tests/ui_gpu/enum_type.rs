use dotcompute::GpuMessage;

#[derive(Clone, Copy, GpuMessage)]
#[repr(C)]
enum Command {
    Start,
    Stop,
}

fn main() {}

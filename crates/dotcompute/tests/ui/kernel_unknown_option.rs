use dotcompute::{ring_kernel, KernelContext, Message, MessageHeader};

#[derive(Message)]
struct Num {
    header: MessageHeader,
}

#[ring_kernel(id = "opt", grid_size = 4)]
async fn opt(_ctx: KernelContext<Num, Num>) {}

fn main() {}

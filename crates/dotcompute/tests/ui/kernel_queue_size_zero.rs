use dotcompute::{ring_kernel, KernelContext, Message, MessageHeader};

#[derive(Message)]
struct Num {
    header: MessageHeader,
}

#[ring_kernel(id = "zero", queue_size = 0)]
async fn zero(_ctx: KernelContext<Num, Num>) {}

fn main() {}

use dotcompute::{ring_kernel, KernelContext, Message, MessageHeader};

#[derive(Message)]
struct Num {
    header: MessageHeader,
}

#[ring_kernel(id = "a", queue_size = 8, queue_size = 16)]
async fn dup(_ctx: KernelContext<Num, Num>) {}

fn main() {}

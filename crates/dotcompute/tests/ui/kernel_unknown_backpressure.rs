use dotcompute::{ring_kernel, KernelContext, Message, MessageHeader};

#[derive(Message)]
struct Num {
    header: MessageHeader,
}

#[ring_kernel(id = "bp", backpressure = "sometimes")]
async fn bp(_ctx: KernelContext<Num, Num>) {}

fn main() {}

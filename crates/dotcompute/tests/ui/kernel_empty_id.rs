use dotcompute::{ring_kernel, KernelContext, Message, MessageHeader};

#[derive(Message)]
struct Num {
    header: MessageHeader,
}

#[ring_kernel(id = "")]
async fn empty(_ctx: KernelContext<Num, Num>) {}

fn main() {}

use dotcompute::{ring_kernel, KernelContext, Message, MessageHeader};

#[derive(Message)]
struct Num {
    header: MessageHeader,
}

#[ring_kernel(id = "two")]
async fn two(_ctx: KernelContext<Num, Num>, _extra: u32) {}

fn main() {}

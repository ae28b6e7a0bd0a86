use dotcompute::{ring_kernel, KernelContext, Message, MessageHeader};

#[derive(Message)]
struct Num {
    header: MessageHeader,
}

#[ring_kernel(id = "sync")]
fn not_async(_ctx: KernelContext<Num, Num>) {}

fn main() {}

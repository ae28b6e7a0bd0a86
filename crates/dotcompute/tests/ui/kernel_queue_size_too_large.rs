use dotcompute::{ring_kernel, KernelContext, Message, MessageHeader};

#[derive(Message)]
struct Num {
    header: MessageHeader,
}

#[ring_kernel(id = "huge", input_queue_size = 100000000)]
async fn huge(_ctx: KernelContext<Num, Num>) {}

fn main() {}

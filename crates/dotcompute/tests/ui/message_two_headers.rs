use dotcompute::{Message, MessageHeader};

#[derive(Message)]
struct Twice {
    #[message(header)]
    a: MessageHeader,
    #[message(header)]
    b: MessageHeader,
}

fn main() {}

use dotcompute::Message;

#[derive(Message)]
struct Wrong {
    header: String,
}

fn main() {}

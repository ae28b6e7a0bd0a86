use dotcompute::Message;

#[derive(Message)]
struct Reading {
    value: f64,
}

fn main() {}

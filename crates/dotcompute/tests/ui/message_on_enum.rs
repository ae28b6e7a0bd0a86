use dotcompute::Message;

#[derive(Message)]
enum Command {
    Start,
    Stop,
}

fn main() {}

use gcptr::{Gc, Trace};

#[derive(Trace)]
struct Node {
    #[gc = "skip"]
    next: Option<Gc<Node>>,
}

fn main() {}

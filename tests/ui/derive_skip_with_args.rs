use gcptr::{Gc, Trace};

#[derive(Trace)]
struct Node {
    #[gc(skip = true)]
    id: u64,
    #[gc(skip(always))]
    next: Option<Gc<Node>>,
}

fn main() {}

use gcptr::{Gc, Trace};

#[derive(Trace)]
#[gc(bound = "T Trace")]
struct Node<T> {
    value: T,
    next: Option<Gc<Node<T>>>,
}

fn main() {}

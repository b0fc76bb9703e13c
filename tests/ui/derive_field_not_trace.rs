use gcptr::{Gc, Trace};

struct Socket(u32);

#[derive(Trace)]
struct Connection {
    peer: Option<Gc<Connection>>,
    socket: Socket,
}

fn main() {}

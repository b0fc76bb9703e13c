// `gc` attributes in a wrong form: each error says how to write it.
use gcptr::{Gc, Trace};

#[derive(Trace)]
#[gc]
struct Bare(u8);

#[derive(Trace)]
#[gc()]
struct Empty(u8);

#[derive(Trace)]
#[gc(bound)]
struct BoundWithoutValue<T>(T);

#[derive(Trace)]
#[gc(crate = gcptr)]
struct CrateNotAString(u8);

#[derive(Trace)]
struct Fields {
    #[gc]
    bare: u8,
    #[gc()]
    empty: Gc<u8>,
}

fn main() {}

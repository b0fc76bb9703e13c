// `gc` attributes in the wrong place, or given twice: each error says
// where the attribute goes, or which one repeats. All are reported at
// once.
use gcptr::{Gc, Trace};

#[derive(Trace)]
#[gc(skip)]
struct SkipOnType(u8);

#[derive(Trace)]
struct TypeItemsOnFields {
    #[gc(finalize)]
    a: u8,
    #[gc(bound = "")]
    b: u8,
    #[gc(skip)]
    #[gc(skip)]
    c: u8,
}

#[derive(Trace)]
enum OnVariant {
    #[gc(skip)]
    Leaf(u8),
    Node(Gc<u8>),
}

#[derive(Trace)]
#[gc(finalize, finalize)]
#[gc(bound = "", bound = "")]
#[gc(crate = "::gcptr", crate = "::gcptr")]
struct Repeated(u8);

#[derive(Trace)]
#[gc(crate = "not a path")]
struct CrateNotAPath(u8);

fn main() {}

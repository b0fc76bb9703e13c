//! The derive in a crate that `forbid`s lints its expansion used to
//! `allow` (`drop_bounds` on the `Drop` probe, `non_snake_case` on the
//! check functions named after CamelCase variants): E0453.
#![forbid(drop_bounds, non_snake_case)]

use gcptr::{Gc, Trace};

#[derive(Trace)]
enum Shape {
    Leaf(Gc<u32>),
    Node { x: u32 },
}

#[test]
fn derive_compiles_under_forbid() {
    assert!(<Shape as Trace>::__may_own_gc(0));
    assert!(gcptr::referents(&Shape::Node { x: 1 }).is_empty());
    let g = Gc::new(1);
    assert_eq!(gcptr::referents(&Shape::Leaf(g)).len(), 1);
}

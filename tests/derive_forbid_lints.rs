//! The derive in a crate that `forbid`s lints its expansion used to
//! `allow` (`drop_bounds` on the `Drop` probe, `non_snake_case` on the
//! check functions named after CamelCase variants): E0453. And
//! `unsafe_trace_leaf!` on an unsized type, whose impl has methods that
//! need `Self: Sized` and can never be called: `dead_code` would say so,
//! but not of a macro from another crate.
#![forbid(drop_bounds, non_snake_case, dead_code)]

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

/// An unsized type from elsewhere, as a leaf.
#[repr(transparent)]
pub struct Bytes(pub [u8]);

// SAFETY: bytes own no `Gc`.
gcptr::unsafe_trace_leaf!(Bytes);

#[test]
fn unsized_leaf_compiles_under_forbid() {
    let bytes: Box<[u8]> = Box::new(*b"abc");
    // SAFETY: `Bytes` is a `repr(transparent)` wrapper of `[u8]`.
    let bytes = unsafe { Box::from_raw(Box::into_raw(bytes) as *mut Bytes) };
    assert!(gcptr::referents(&*bytes).is_empty());
    assert_eq!(&bytes.0, b"abc");
}

//! `#[derive(Trace)]` in a 2015-edition crate. The derive's output once
//! spelled `::core` paths with a field's span, which this edition looks up
//! in the crate root: "cannot find `core` in the crate root" (E0433),
//! unless the crate said `extern crate core;`.
extern crate gcptr;

use gcptr::{Finalize, Gc, Trace};

#[derive(Trace)]
pub struct S<T> {
    pub a: Gc<u32>,
    pub t: T,
    #[gc(skip)]
    pub s: String,
}

#[derive(Trace)]
#[gc(finalize)]
pub enum E<T> {
    A(Gc<u32>),
    B {
        t: T,
        #[gc(skip)]
        s: String,
    },
    C,
}

impl<T> Finalize for E<T> {
    fn finalize(&self) {}
}

#[test]
fn derive_works_in_edition_2015() {
    let g = Gc::new(1u32);
    let s = S {
        a: g.clone(),
        t: 0u8,
        s: String::new(),
    };
    assert_eq!(gcptr::referents(&s).len(), 1);
    assert!(!<S<u8> as Trace>::__drop_only_releases_gcs());
    assert!(<E<u8> as Trace>::__has_finalizer());
}

/// A type from elsewhere, given its impl by the declarative macros, whose
/// expansions name `::core` too.
pub struct Foreign<T: ?Sized, const N: usize> {
    pub items: [Option<Gc<u32>>; N],
    pub marker: std::marker::PhantomData<T>,
}

// SAFETY: `marker` owns nothing.
gcptr::unsafe_trace_fields!(impl<T: ?Sized, const N: usize> Foreign<T, N> { items });
// SAFETY: a `Tag` is a number.
gcptr::unsafe_trace_leaf!(impl<'a> Tag<'a>);

pub struct Tag<'a>(pub &'a u8);

#[test]
fn trace_macros_work_in_edition_2015() {
    let g = Gc::new(2u32);
    let foreign: Foreign<str, 2> = Foreign {
        items: [None, Some(g)],
        marker: std::marker::PhantomData,
    };
    assert_eq!(gcptr::referents(&foreign).len(), 1);
    assert!(gcptr::referents(&Tag(&1)).is_empty());
}

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

//! With the `nightly` feature, `Gc<T>` coerces to `Gc<dyn Trait>` as `Rc`
//! does. Run with `cargo +nightly test --features nightly --test nightly_coerce`.
#![cfg(feature = "nightly")]

use std::cell::RefCell;

use gcptr::{Gc, Trace, Weak};

trait Named: Trace {
    fn name(&self) -> &str;
}

#[derive(Trace)]
struct Item {
    name: String,
    next: RefCell<Option<Gc<dyn Named>>>,
}

impl Named for Item {
    fn name(&self) -> &str {
        &self.name
    }
}

#[test]
fn gc_and_weak_coerce_implicitly_and_cycles_are_collected() {
    let a = Gc::new(Item {
        name: "a".into(),
        next: RefCell::new(None),
    });
    let b = Gc::new(Item {
        name: "b".into(),
        next: RefCell::new(Some(a.clone())),
    });
    *a.next.borrow_mut() = Some(b.clone()); // a cycle through `Gc<dyn Named>`
    let weak_b = Gc::downgrade(&b);
    let weak: Weak<dyn Named> = weak_b;
    assert_eq!(weak.upgrade().unwrap().name(), "b");
    let b_dyn: Gc<dyn Named> = b;
    assert_eq!(b_dyn.name(), "b");
    drop((a, b_dyn));
    assert!(weak.upgrade().is_some(), "the cycle holds itself");
    assert_eq!(gcptr::collect(), 2);
    assert!(weak.upgrade().is_none());
}

//! Finalizers that meddle, as the `meddling_traces` fuzz target's do: a
//! finalizer may resurrect its object, and the program may then go on
//! using it. Each case below was found by that target; the tests assert
//! what a program can see.

use std::cell::RefCell;

use gcptr::{Finalize, Gc, Trace, Weak};

// A finalizer that resurrects its object (by count: it upgrades a `Weak`
// to itself while it runs) has run, and must not run again (PEP 442).
// `Gc::make_mut` with a `Weak` alive moves the value into a fresh
// allocation; that allocation must not forget that the value's finalizer
// has run, or the value is finalized a second time when it dies.

thread_local! {
    static FINALIZED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    static ITSELF: RefCell<Option<Weak<Phoenix>>> = const { RefCell::new(None) };
    static RESURRECTED: RefCell<Option<Gc<Phoenix>>> = const { RefCell::new(None) };
}

#[derive(Trace, Clone)]
#[gc(finalize)]
struct Phoenix {
    id: u32,
}

impl Finalize for Phoenix {
    fn finalize(&self) {
        FINALIZED.with(|f| f.borrow_mut().push(self.id));
        let me = ITSELF
            .with(|w| w.borrow_mut().take())
            .and_then(|w| w.upgrade());
        RESURRECTED.with(|r| *r.borrow_mut() = me);
    }
}

fn finalized() -> Vec<u32> {
    FINALIZED.with(|f| std::mem::take(&mut *f.borrow_mut()))
}

#[test]
fn make_mut_does_not_finalize_a_resurrected_value_again() {
    let phoenix = Gc::new(Phoenix { id: 1 });
    let weak = Gc::downgrade(&phoenix);
    ITSELF.with(|w| *w.borrow_mut() = Some(weak.clone()));
    drop(phoenix);
    assert_eq!(finalized(), [1], "finalized when its count reached zero");
    let mut phoenix = RESURRECTED
        .with(|r| r.borrow_mut().take())
        .expect("the finalizer resurrected it");
    // A `Weak` is alive: the value moves to a fresh allocation.
    Gc::make_mut(&mut phoenix).id = 2;
    drop(phoenix);
    drop(weak);
    gcptr::collect();
    assert_eq!(finalized(), [0u32; 0], "its finalizer has run already");
}

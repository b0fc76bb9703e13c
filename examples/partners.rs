//! Two partners that refer to each other, each with a finalizer (Python's
//! `__del__`). Reference counting alone never frees them; the collector
//! runs both finalizers while the pair is intact, then drops both.
//!
//! Run it with `cargo run --example partners`.

use std::cell::{Cell, RefCell};

use gcptr::{Finalize, Gc, Trace};

thread_local!(static FINALIZED: Cell<u32> = const { Cell::new(0) });
thread_local!(static DROPPED: Cell<u32> = const { Cell::new(0) });

#[derive(Trace)]
#[gc(finalize)]
struct Partner {
    name: String,
    partner: RefCell<Option<Gc<Partner>>>,
}

impl Finalize for Partner {
    fn finalize(&self) {
        // Safe: in a garbage cycle, finalizers run before any value is dropped.
        let partner = self.partner.borrow();
        let name = partner.as_ref().map_or("nobody", |p| p.name.as_str());
        println!("  finalize {}: saying goodbye to {}", self.name, name);
        FINALIZED.with(|n| n.set(n.get() + 1));
    }
}

impl Drop for Partner {
    fn drop(&mut self) {
        // A Drop must not read its partner: it may be dropped already.
        println!("  drop {}", self.name);
        DROPPED.with(|n| n.set(n.get() + 1));
    }
}

fn main() {
    gcptr::disable();
    let alice = Gc::new(Partner {
        name: "Alice".into(),
        partner: RefCell::new(None),
    });
    let bob = Gc::new(Partner {
        name: "Bob".into(),
        partner: RefCell::new(Some(alice.clone())),
    });
    *alice.partner.borrow_mut() = Some(bob.clone());
    println!(
        "Alice and Bob are partners; strong counts {} and {}",
        Gc::strong_count(&alice),
        Gc::strong_count(&bob)
    );

    drop((alice, bob));
    println!("Dropped both names: nothing happens, the pair holds itself.");
    assert_eq!(FINALIZED.with(Cell::get), 0);

    println!("gcptr::collect():");
    let freed = gcptr::collect();
    println!("collected {freed} objects");
    assert_eq!(freed, 2);
    assert_eq!(FINALIZED.with(Cell::get), 2);
    assert_eq!(DROPPED.with(Cell::get), 2);
}

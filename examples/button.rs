//! A button whose click handler captures the button itself: in Python a
//! cycle through a closure, which the collector frees. `gc_closure!` lists
//! the captures so the collector can see them.
//!
//! Run it with `cargo run --example button`.

use std::cell::{Cell, RefCell};

use gcptr::{gc_closure, Gc, GcFn, Trace};

thread_local!(static DROPPED: Cell<bool> = const { Cell::new(false) });

#[derive(Trace)]
struct Button {
    label: String,
    clicks: Cell<u32>,
    on_click: RefCell<Option<Box<dyn GcFn>>>,
}

impl Button {
    fn click(&self) {
        if let Some(handler) = self.on_click.borrow().as_ref() {
            handler.call(());
        }
    }
}

impl Drop for Button {
    fn drop(&mut self) {
        println!("  button {:?} dropped", self.label);
        DROPPED.with(|d| d.set(true));
    }
}

fn main() {
    gcptr::disable();
    let button = Gc::new(Button {
        label: "OK".into(),
        clicks: Cell::new(0),
        on_click: RefCell::new(None),
    });
    let handler = gc_closure!([button] move || {
        button.clicks.set(button.clicks.get() + 1);
        println!("  {:?} clicked {} times", button.label, button.clicks.get());
    });
    *button.on_click.borrow_mut() = Some(Box::new(handler));
    button.click();
    button.click();
    assert_eq!(button.clicks.get(), 2);

    drop(button);
    println!("dropped the last name: the handler still holds the button");
    assert!(!DROPPED.with(Cell::get));
    let freed = gcptr::collect();
    println!("gcptr::collect() freed {freed}");
    assert_eq!(freed, 1);
    assert!(DROPPED.with(Cell::get));
}

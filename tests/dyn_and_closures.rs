//! `Gc<dyn Trait>` (through `gc_coerce!`) and closures that capture `Gc`s
//! behave as sized values do: dropped at count zero, collected in cycles.

mod support;

use std::cell::{Cell, RefCell};

use gcptr::{gc_closure, gc_coerce, Gc, GcFn, Trace, Weak, WeakSet};
use support::{take_drops, DropLog};

trait Observer: Trace {
    fn notify(&self, event: u32);
    fn id(&self) -> u32;
}

#[derive(Trace)]
struct Watcher {
    #[gc(skip)]
    log: DropLog,
    seen: Cell<u32>,
    subject: RefCell<Option<Gc<Subject>>>,
}

impl Observer for Watcher {
    fn notify(&self, event: u32) {
        self.seen.set(self.seen.get() + event);
    }
    fn id(&self) -> u32 {
        self.log.0
    }
}

#[derive(Trace)]
struct Subject {
    #[gc(skip)]
    _log: DropLog,
    observers: RefCell<Vec<Gc<dyn Observer>>>,
}

fn watcher(id: u32) -> Gc<Watcher> {
    Gc::new(Watcher {
        log: DropLog(id),
        seen: Cell::new(0),
        subject: RefCell::new(None),
    })
}

#[test]
fn dyn_trait_object_dies_at_count_zero() {
    take_drops();
    let w = watcher(1);
    let as_dyn: Gc<dyn Observer> = gc_coerce!(w.clone() => dyn Observer);
    assert_eq!(Gc::strong_count(&as_dyn), 2);
    assert_eq!(
        Gc::as_ptr(&as_dyn).cast::<()>(),
        Gc::as_ptr(&w).cast::<()>()
    );
    as_dyn.notify(3);
    assert_eq!(w.seen.get(), 3);
    drop(w);
    assert!(take_drops().is_empty());
    drop(as_dyn);
    assert_eq!(take_drops(), [1]);
}

#[test]
fn cycle_through_dyn_trait_objects_is_collected() {
    take_drops();
    let subject = Gc::new(Subject {
        _log: DropLog(10),
        observers: RefCell::new(Vec::new()),
    });
    for id in 1..=3 {
        let w = watcher(id);
        *w.subject.borrow_mut() = Some(subject.clone());
        subject
            .observers
            .borrow_mut()
            .push(gc_coerce!(w => dyn Observer));
    }
    for o in subject.observers.borrow().iter() {
        o.notify(o.id());
    }
    let weak = Gc::downgrade(&subject);
    drop(subject);
    assert!(take_drops().is_empty());
    assert_eq!(gcptr::collect(), 4);
    assert_eq!(take_drops(), [1, 2, 3, 10]);
    assert!(weak.upgrade().is_none());
}

#[test]
fn weak_dyn_upgrades_while_alive_and_weak_set_of_dyn_observers_empties() {
    take_drops();
    let w = watcher(5);
    let weak: Weak<dyn Observer> = gc_coerce!(Gc::downgrade(&w) => dyn Observer);
    assert_eq!(weak.upgrade().unwrap().id(), 5);
    let empty: Weak<dyn Observer> = gc_coerce!(Weak::<Watcher>::new() => dyn Observer);
    assert!(empty.upgrade().is_none());
    let mut set: WeakSet<dyn Observer> = WeakSet::new();
    set.insert(&gc_coerce!(w.clone() => dyn Observer));
    assert_eq!(set.len(), 1);
    drop(w);
    assert!(weak.upgrade().is_none());
    assert_eq!(set.len(), 0);
    assert_eq!(take_drops(), [5]);
}

#[derive(Trace)]
struct Button {
    #[gc(skip)]
    log: DropLog,
    clicks: Cell<u32>,
    on_click: RefCell<Option<Box<dyn GcFn>>>,
}

#[test]
fn button_whose_handler_captures_the_button_is_collected() {
    take_drops();
    let button = Gc::new(Button {
        log: DropLog(7),
        clicks: Cell::new(0),
        on_click: RefCell::new(None),
    });
    let handler = gc_closure!([button] move || button.clicks.set(button.clicks.get() + 1));
    assert_eq!(Gc::strong_count(&button), 2, "the handler holds a clone");
    *button.on_click.borrow_mut() = Some(Box::new(handler));
    for _ in 0..3 {
        button.on_click.borrow().as_ref().unwrap().call(());
    }
    assert_eq!(button.clicks.get(), 3);
    let _ = &button.log;
    drop(button);
    assert!(
        take_drops().is_empty(),
        "the handler keeps the button alive"
    );
    assert_eq!(gcptr::collect(), 1);
    assert_eq!(take_drops(), [7]);
}

#[test]
fn closure_stored_as_gc_dyn_gc_fn_takes_arguments() {
    let total = Gc::new(Cell::new(0u64));
    let add = gc_closure!([total] move |a: u64, b| total.set(total.get() + a * b));
    let shared: Gc<dyn GcFn<(u64, u64)>> = gc_coerce!(Gc::new(add) => dyn GcFn<(u64, u64)>);
    shared.call((2, 3));
    shared.call((1, 4));
    assert_eq!(total.get(), 10);
    let none = gc_closure!([] move || 42);
    assert_eq!(none.call(()), 42);
    assert!(gcptr::referents(none.captures()).is_empty());
}

#[test]
fn closure_captures_are_traced() {
    let a = Gc::new(1u8);
    let b = Gc::new(String::from("b"));
    let f = gc_closure!([a, b] move || format!("{a}{b}"));
    assert_eq!(f.call(()), "1b");
    assert_eq!(
        gcptr::referents(&f),
        [Gc::as_ptr(&a).cast::<()>(), Gc::as_ptr(&b).cast::<()>()]
    );
}

//! Finalizers (PEP 442): once per object, before the value is dropped,
//! with the whole garbage cycle intact; resurrection is noticed.

mod support;

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};

use gcptr::{Finalize, Gc, Trace, Weak};
use support::take_drops;
use support::DropLog;

thread_local! {
    static EVENTS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    static SAVED: RefCell<Vec<Gc<Partner>>> = const { RefCell::new(Vec::new()) };
    static MODE: Cell<Mode> = const { Cell::new(Mode::Read) };
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Read,
    ResurrectSelf,
    Panic,
    Collect,
    DropPeer,
}

fn events() -> Vec<String> {
    let mut e = EVENTS.with(|e| std::mem::take(&mut *e.borrow_mut()));
    e.sort();
    e
}

fn log(event: String) {
    let _ = EVENTS.try_with(|e| e.borrow_mut().push(event));
}

#[derive(Trace)]
#[gc(finalize)]
struct Partner {
    #[gc(skip)]
    name: &'static str,
    #[gc(skip)]
    _log: DropLog,
    partner: RefCell<Option<Gc<Partner>>>,
    me: RefCell<Weak<Partner>>,
}

impl Finalize for Partner {
    fn finalize(&self) {
        let peer = self.partner.borrow().as_ref().map_or("none", |p| p.name);
        log(format!("finalize {} (partner {peer})", self.name));
        match MODE.with(Cell::get) {
            Mode::Read => {}
            Mode::ResurrectSelf => {
                let me = self.me.borrow().upgrade().or_else(|| {
                    // In a cycle weak references are already cleared; a
                    // peer's strong edge reaches us instead.
                    let peer = self.partner.borrow().clone()?;
                    let back = peer.partner.borrow().clone();
                    back
                });
                if let Some(me) = me {
                    SAVED.with(|s| s.borrow_mut().push(me));
                }
            }
            Mode::Panic => panic!("finalizer of {} failed", self.name),
            Mode::Collect => {
                log(format!("nested collect {}", gcptr::collect()));
                let fresh = Gc::new(RefCell::new(Vec::<Gc<u8>>::new()));
                drop(fresh);
            }
            Mode::DropPeer => drop(self.partner.borrow_mut().take()),
        }
    }
}

fn partner(name: &'static str, id: u32) -> Gc<Partner> {
    Gc::new_cyclic(|me| Partner {
        name,
        _log: DropLog(id),
        partner: RefCell::new(None),
        me: RefCell::new(me.clone()),
    })
}

fn pair() -> (Weak<Partner>, Weak<Partner>) {
    let a = partner("a", 1);
    let b = partner("b", 2);
    *a.partner.borrow_mut() = Some(b.clone());
    *b.partner.borrow_mut() = Some(a.clone());
    (Gc::downgrade(&a), Gc::downgrade(&b))
}

fn reset(mode: Mode) {
    MODE.with(|m| m.set(mode));
    events();
    take_drops();
}

#[test]
fn each_finalizer_reads_its_partner_in_a_garbage_cycle() {
    reset(Mode::Read);
    let (wa, _) = pair();
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(
        events(),
        ["finalize a (partner b)", "finalize b (partner a)"]
    );
    assert_eq!(take_drops(), [1, 2]);
    assert!(wa.upgrade().is_none());
}

#[test]
fn finalizer_runs_once_at_count_zero_before_the_drop() {
    reset(Mode::Read);
    let a = partner("solo", 5);
    drop(a);
    assert_eq!(events(), ["finalize solo (partner none)"]);
    assert_eq!(take_drops(), [5]);
    assert_eq!(gcptr::collect(), 0);
    assert!(events().is_empty());
}

#[test]
fn finalizer_that_stores_self_resurrects_without_drop_or_second_finalize() {
    reset(Mode::ResurrectSelf);
    let a = partner("phoenix", 9);
    let weak = Gc::downgrade(&a);
    drop(a);
    assert_eq!(events(), ["finalize phoenix (partner none)"]);
    assert!(take_drops().is_empty(), "resurrected: no Drop yet");
    let saved = SAVED.with(|s| s.borrow_mut().pop().unwrap());
    assert!(Gc::ptr_eq(&saved, &weak.upgrade().unwrap()));
    assert_eq!(saved.name, "phoenix");
    MODE.with(|m| m.set(Mode::Read));
    drop(saved);
    assert!(events().is_empty(), "never finalized twice");
    assert_eq!(take_drops(), [9], "dropped when released");
}

#[test]
fn resurrection_in_a_cycle_keeps_everything_it_reaches_alive() {
    reset(Mode::ResurrectSelf);
    let before = gcptr::stats()[2];
    let (wa, wb) = pair();
    assert_eq!(gcptr::collect(), 0, "resurrected objects are not counted");
    let after = gcptr::stats()[2];
    assert_eq!(after.resurrected - before.resurrected, 2);
    assert_eq!(events().len(), 2);
    assert!(take_drops().is_empty());
    assert!(
        wa.upgrade().is_none(),
        "weak references stay cleared, as in CPython"
    );
    let saved = SAVED.with(|s| std::mem::take(&mut *s.borrow_mut()));
    assert_eq!(saved.len(), 2);
    // Unlike CPython, new weak references to them never upgrade either.
    assert!(Gc::downgrade(&saved[0]).upgrade().is_none());
    let mut map = gcptr::WeakValueMap::new();
    map.insert(0, &saved[0]);
    assert!(map.is_empty() && map.get(&0).is_none());
    assert_eq!(
        saved[0]
            .partner
            .borrow()
            .as_ref()
            .unwrap()
            .partner
            .borrow()
            .as_ref()
            .unwrap()
            .name
            .len(),
        1
    );
    drop(saved);
    let _ = wb;
    MODE.with(|m| m.set(Mode::Read));
    assert_eq!(gcptr::collect(), 2);
    assert!(events().is_empty(), "never finalized again");
    assert_eq!(take_drops(), [1, 2]);
}

#[test]
fn panicking_finalizer_completes_the_collection_then_propagates() {
    reset(Mode::Panic);
    let (wa, wb) = pair();
    let result = catch_unwind(gcptr::collect);
    assert!(result.is_err());
    assert_eq!(events().len(), 2, "both finalizers ran");
    assert_eq!(take_drops(), [1, 2]);
    assert!(wa.upgrade().is_none() && wb.upgrade().is_none());
    MODE.with(|m| m.set(Mode::Read));
    assert_eq!(gcptr::collect(), 0);
}

#[test]
fn panicking_finalizer_at_count_zero_still_drops_the_value() {
    reset(Mode::Panic);
    let a = partner("p", 4);
    assert!(catch_unwind(AssertUnwindSafe(move || drop(a))).is_err());
    assert_eq!(take_drops(), [4]);
    MODE.with(|m| m.set(Mode::Read));
}

#[test]
fn finalizer_that_allocates_and_collects_is_safe() {
    reset(Mode::Collect);
    let _ = pair();
    assert_eq!(gcptr::collect(), 2);
    let e = events();
    assert!(e.contains(&"nested collect 0".to_string()), "{e:?}");
    assert_eq!(take_drops(), [1, 2]);
    MODE.with(|m| m.set(Mode::Read));
}

#[test]
fn finalizer_that_drops_a_peer_handle_is_safe() {
    reset(Mode::DropPeer);
    let _ = pair();
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(events().len(), 2);
    assert_eq!(take_drops(), [1, 2]);
    MODE.with(|m| m.set(Mode::Read));
}

/// A finalizer runs for the value of a `Gc` only: a finalizable value held
/// inside another object (an element of a `Vec` or of a `Gc<[T]>`, a
/// field) is dropped with it, not finalized; by count or by a collection.
#[test]
fn values_held_inside_another_object_are_dropped_not_finalized() {
    #[derive(Trace)]
    struct Holder {
        inner: Partner,
        me: RefCell<Option<Gc<Holder>>>,
    }
    fn loose(name: &'static str, id: u32) -> Partner {
        Partner {
            name,
            _log: DropLog(id),
            partner: RefCell::new(None),
            me: RefCell::new(Weak::new()),
        }
    }
    fn holder(inner: Partner) -> Gc<Holder> {
        Gc::new(Holder {
            inner,
            me: RefCell::new(None),
        })
    }
    reset(Mode::Read);
    drop(Gc::new(vec![loose("in a vec", 1)]));
    drop(Gc::<[Partner]>::from(vec![loose("in a slice", 2)]));
    drop(holder(loose("a field", 3)));
    assert_eq!(events(), Vec::<String>::new());
    assert_eq!(take_drops(), [1, 2, 3]);
    // A holder in a cycle with itself, whose field holds an object.
    let held = holder(loose("held", 4));
    *held.inner.partner.borrow_mut() = Some(partner("peer", 5));
    *held.me.borrow_mut() = Some(held.clone());
    drop(held);
    assert_eq!(gcptr::collect(), 2, "the holder and the object it reaches");
    assert_eq!(events(), ["finalize peer (partner none)"]);
    assert_eq!(take_drops(), [4, 5]);
}

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
        wa.upgrade().is_none() && wb.upgrade().is_none(),
        "weak references stay cleared, as in CPython"
    );
    let saved = SAVED.with(|s| std::mem::take(&mut *s.borrow_mut()));
    assert_eq!(saved.len(), 2);
    assert!(saved[0].me.borrow().upgrade().is_none(), "made before");
    // As in CPython, the weak references made after the resurrection work,
    // and so do the weak containers.
    let fresh = Gc::downgrade(&saved[0]);
    assert!(Gc::ptr_eq(&fresh.upgrade().unwrap(), &saved[0]));
    assert_eq!(fresh.strong_count(), 2, "`saved`'s and its partner's");
    assert!(Weak::ptr_eq(&fresh, &wa) || Weak::ptr_eq(&fresh, &wb));
    let mut map = gcptr::WeakValueMap::new();
    map.insert(0, &saved[0]);
    assert_eq!(map.len(), 1);
    assert!(Gc::ptr_eq(&map.get(&0).unwrap(), &saved[0]));
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
    MODE.with(|m| m.set(Mode::Read));
    assert_eq!(gcptr::collect(), 2);
    assert!(events().is_empty(), "never finalized again");
    assert_eq!(take_drops(), [1, 2]);
    assert!(fresh.upgrade().is_none() && map.is_empty());
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

thread_local! {
    static RESCUED: RefCell<Vec<Gc<Phoenix>>> = const { RefCell::new(Vec::new()) };
    static MADE_IN_FINALIZER: RefCell<Vec<Weak<Phoenix>>> = const { RefCell::new(Vec::new()) };
}

trait Bird: Trace {}

/// A node whose finalizer, if it `rescues`, resurrects its peer (and with
/// it whatever the peer reaches), and makes a `Weak` to it on the way.
#[derive(Trace)]
#[gc(finalize)]
struct Phoenix {
    peer: RefCell<Option<Gc<Phoenix>>>,
    #[gc(skip)]
    rescues: bool,
}

impl Bird for Phoenix {}

impl Finalize for Phoenix {
    fn finalize(&self) {
        if !self.rescues {
            return;
        }
        if let Some(peer) = self.peer.borrow().clone() {
            MADE_IN_FINALIZER.with(|m| m.borrow_mut().push(Gc::downgrade(&peer)));
            RESCUED.with(|r| r.borrow_mut().push(peer));
        }
    }
}

/// Drops a cycle of `a` and a new rescuer that holds it, and collects: the
/// rescuer's finalizer resurrects `a`, and `a` the rescuer.
fn resurrect_through_a_rescuer(a: Gc<Phoenix>) -> Gc<Phoenix> {
    let rescuer = Gc::new(Phoenix {
        peer: RefCell::new(Some(a.clone())),
        rescues: true,
    });
    *a.peer.borrow_mut() = Some(rescuer);
    drop(a);
    assert_eq!(gcptr::collect(), 0, "both resurrected");
    let mut rescued = RESCUED.with(|r| std::mem::take(&mut *r.borrow_mut()));
    assert_eq!(rescued.len(), 1);
    rescued.pop().unwrap()
}

/// CPython clears the weak references to garbage before finalizers run,
/// and a finalizer that resurrects the object leaves them cleared; those
/// made after work. gcptr keeps an epoch per object and per `Weak`, which
/// allows one resurrection of this kind: after a second, no weak reference
/// to the object upgrades again.
#[test]
fn weak_references_made_after_a_resurrection_upgrade_once() {
    let a = Gc::new(Phoenix {
        peer: RefCell::new(None),
        rescues: false,
    });
    let before = Gc::downgrade(&a);
    let a = resurrect_through_a_rescuer(a);
    assert!(before.upgrade().is_none(), "cleared by the collection");
    assert_eq!((before.strong_count(), before.weak_count()), (0, 0));
    let in_finalizer = MADE_IN_FINALIZER.with(|m| m.borrow_mut().pop().unwrap());
    assert!(
        in_finalizer.upgrade().is_none(),
        "made while the object stood condemned"
    );
    let after = Gc::downgrade(&a);
    assert!(Gc::ptr_eq(&after.upgrade().unwrap(), &a));
    assert!(Weak::ptr_eq(&before, &after));
    // The epoch survives a coercion and a clone.
    let bird: Weak<dyn Bird> = gcptr::gc_coerce!(after.clone() => dyn Bird);
    assert!(bird.upgrade().is_some());
    // So does a referrer's handle: the rescuer refers to `a`.
    let referrer = gcptr::referrers(&a);
    assert_eq!(referrer.len(), 1);
    assert!(referrer[0].downcast::<Phoenix>().is_some());
    let mut set = gcptr::WeakSet::new();
    assert!(set.insert(&a));

    // A second resurrection, by another rescuer.
    let rescuer = a.peer.borrow_mut().take().unwrap();
    assert!(
        Gc::downgrade(&rescuer).upgrade().is_some(),
        "resurrected once"
    );
    drop(rescuer); // its last handle: it dies by count, finalized already
    let a = resurrect_through_a_rescuer(a);
    assert!(after.upgrade().is_none() && bird.upgrade().is_none());
    assert_eq!(referrer[0].strong_count(), 0);
    assert!(set.is_empty());
    assert!(
        Gc::downgrade(&a).upgrade().is_none(),
        "a second resurrection leaves the weak references cleared for good"
    );
    set.insert(&a);
    assert!(set.is_empty() && !set.contains(&a));
    let second_rescuer = a.peer.borrow().clone().unwrap();
    assert!(
        Gc::downgrade(&second_rescuer).upgrade().is_some(),
        "the new rescuer was resurrected for the first time"
    );
    drop((second_rescuer, referrer));

    drop(a);
    MADE_IN_FINALIZER.with(|m| m.borrow_mut().clear());
    assert_eq!(gcptr::collect(), 2, "finalized already: no third rescue");
    assert!(RESCUED.with(|r| r.borrow().is_empty()));
}

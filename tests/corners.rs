//! Corners of the API that a coverage run found no other test taking,
//! each with what DESIGN.md promises there: half-made objects, moving
//! values out of garbage, finalizers that resurrect and panic, traces that
//! drop members of their set, handles to dead objects, `freeze` during a
//! collection, the std collections' traces, the API after the collector's
//! thread-local is gone, and the plain trait impls.

#![allow(dead_code)] // the `DropLog` fields exist to log their drops, not to be read

mod support;

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};

use gcptr::{Finalize, Gc, Trace, Tracer, Weak, WeakWithCallback};
use support::{panic_message, take_drops, DropLog};

/// A node with a logged drop and one edge.
#[derive(Trace)]
struct Link {
    #[gc(skip)]
    log: DropLog,
    next: RefCell<Option<Gc<Link>>>,
}

fn link(id: u32) -> Gc<Link> {
    Gc::new(Link {
        log: DropLog(id),
        next: RefCell::new(None),
    })
}

// ---------------------------------------------------------------------
// `Gc::new_cyclic` whose closure panics after cloning the
// `Weak` it was given. The object must never upgrade, never be traced
// (its value slot is uninitialized) and its memory must go with the last
// `Weak` (Miri reports a leak or a read of the uninitialized slot).

thread_local! {
    static KEPT_WEAK: RefCell<Option<Weak<Link>>> = const { RefCell::new(None) };
}

#[test]
fn new_cyclic_whose_closure_panics_leaves_a_weak_that_never_upgrades() {
    let result = catch_unwind(|| {
        Gc::new_cyclic(|me: &Weak<Link>| {
            KEPT_WEAK.with(|k| *k.borrow_mut() = Some(me.clone()));
            // Allocations and a collection while the object is half made.
            let other = link(1);
            *other.next.borrow_mut() = Some(other.clone());
            drop(other);
            assert_eq!(gcptr::collect(), 1);
            panic!("closure failed");
        })
    });
    let payload = result.err().expect("the closure's panic propagates");
    assert_eq!(panic_message(&payload), "closure failed");
    assert_eq!(take_drops(), [1]);
    let weak = KEPT_WEAK.with(|k| k.borrow_mut().take()).unwrap();
    assert!(weak.upgrade().is_none());
    assert_eq!(weak.strong_count(), 0);
    assert_eq!(weak.weak_count(), 0);
    // Nothing half made is in the collector's lists.
    assert_eq!(gcptr::collect(), 0);
    let clone = weak.clone();
    drop(weak);
    assert!(clone.upgrade().is_none());
    drop(clone);
    assert_eq!(
        take_drops(),
        Vec::<u32>::new(),
        "the never-written value is never dropped"
    );
}

// ---------------------------------------------------------------------
// `try_unwrap` and `into_inner` refuse a dead object: a `Drop` run by a collection holds the only `Gc` to a
// garbage peer, whose value is (or is about to be) dropped by the
// collector. Moving it out would drop it twice.

thread_local! {
    static UNWRAPPED: RefCell<Vec<&'static str>> = const { RefCell::new(Vec::new()) };
}

struct Unwrapper {
    log: DropLog,
    peer: RefCell<Option<Gc<Unwrapper>>>,
    use_into_inner: bool,
}

// SAFETY: visits exactly the one `Gc` it owns.
unsafe impl Trace for Unwrapper {
    fn trace(&self, tracer: &mut Tracer) {
        self.peer.trace(tracer);
    }
}

impl Drop for Unwrapper {
    fn drop(&mut self) {
        if let Some(peer) = self.peer.get_mut().take() {
            let outcome = if self.use_into_inner {
                match Gc::into_inner(peer) {
                    Some(value) => {
                        std::mem::forget(value);
                        "moved out"
                    }
                    None => "refused",
                }
            } else {
                match Gc::try_unwrap(peer) {
                    Ok(value) => {
                        std::mem::forget(value);
                        "moved out"
                    }
                    Err(_still) => "refused",
                }
            };
            UNWRAPPED.with(|u| u.borrow_mut().push(outcome));
        }
    }
}

#[test]
fn try_unwrap_and_into_inner_refuse_a_garbage_peer_in_a_drop() {
    for use_into_inner in [false, true] {
        let a = Gc::new(Unwrapper {
            log: DropLog(1),
            peer: RefCell::new(None),
            use_into_inner,
        });
        let b = Gc::new(Unwrapper {
            log: DropLog(2),
            peer: RefCell::new(Some(a.clone())),
            use_into_inner,
        });
        *a.peer.borrow_mut() = Some(b);
        drop(a);
        assert_eq!(gcptr::collect(), 2);
        assert_eq!(take_drops(), [1, 2], "each value dropped once");
        let outcomes = UNWRAPPED.with(|u| std::mem::take(&mut *u.borrow_mut()));
        // The first `Drop` run holds the only `Gc` to a peer the collector
        // condemned; the second finds its field taken already or a
        // refusal too.
        assert!(!outcomes.is_empty());
        assert!(
            outcomes.iter().all(|&o| o == "refused"),
            "into_inner: {use_into_inner}: {outcomes:?}"
        );
    }
}

// ---------------------------------------------------------------------
// `try_unwrap` from a finalizer that a collection runs: a finalizer
// holding the only `Gc` to a condemned peer moves its value out. The
// value escapes (as with `Rc`), the peer's memory is released once, every
// value is dropped exactly once, and what the escaped value holds is
// resurrected.

thread_local! {
    static STOLEN: RefCell<Vec<Thief>> = const { RefCell::new(Vec::new()) };
    static STEAL_OUTCOMES: RefCell<Vec<&'static str>> = const { RefCell::new(Vec::new()) };
}

#[derive(Trace)]
#[gc(finalize)]
struct Thief {
    #[gc(skip)]
    log: DropLog,
    #[gc(skip)]
    steals: bool,
    peer: RefCell<Option<Gc<Thief>>>,
}

impl Finalize for Thief {
    fn finalize(&self) {
        if !self.steals {
            return;
        }
        let Some(peer) = self.peer.borrow_mut().take() else {
            return;
        };
        let outcome = match Gc::try_unwrap(peer) {
            Ok(value) => {
                STOLEN.with(|s| s.borrow_mut().push(value));
                "moved out"
            }
            Err(_peer) => "refused",
        };
        STEAL_OUTCOMES.with(|o| o.borrow_mut().push(outcome));
    }
}

#[test]
fn a_finalizer_unwrapping_a_condemned_peer() {
    for with_callback_weak in [false, true] {
        let keep = Gc::new(0u8);
        let cb = with_callback_weak.then(|| Gc::downgrade_with(&keep, || {}));
        let a = Gc::new(Thief {
            log: DropLog(1),
            steals: false,
            peer: RefCell::new(None),
        });
        let b = Gc::new(Thief {
            log: DropLog(2),
            steals: true,
            peer: RefCell::new(Some(a.clone())),
        });
        *a.peer.borrow_mut() = Some(b.clone());
        let (wa, wb) = (Gc::downgrade(&a), Gc::downgrade(&b));
        drop((a, b));
        let found = gcptr::collect();
        let outcomes = STEAL_OUTCOMES.with(|o| std::mem::take(&mut *o.borrow_mut()));
        let stolen = STOLEN.with(|s| std::mem::take(&mut *s.borrow_mut()));
        assert!(wa.upgrade().is_none());
        match outcomes.as_slice() {
            ["moved out"] => {
                // A's value escaped, with its `Gc` to B: B is resurrected,
                // A's memory is released, nothing was dropped.
                assert_eq!(stolen.len(), 1);
                assert_eq!(
                    take_drops(),
                    Vec::<u32>::new(),
                    "callback weak: {with_callback_weak}"
                );
                // B's weak references stay cleared (as in CPython), but the
                // escaped value reaches it, alive.
                let b = stolen[0].peer.borrow().clone().expect("A's edge to B");
                assert_eq!(b.log.0, 2);
                assert!(b.peer.borrow().is_none(), "B's finalizer took A");
                drop(b);
                assert_eq!(found, 1);
                drop(stolen);
                assert_eq!(take_drops(), [1, 2]);
            }
            ["refused"] => {
                assert_eq!(found, 2);
                drop(stolen);
                assert_eq!(take_drops(), [1, 2]);
            }
            other => panic!("{other:?}"),
        }
        assert!(wb.upgrade().is_none());
        assert_eq!(gcptr::collect(), 0);
        drop(cb);
    }
}

// ---------------------------------------------------------------------
// `try_unwrap` whose death callback panics, outside any
// unwinding: the value is dropped (once) and the panic resumed.

#[test]
fn try_unwrap_whose_death_callback_panics_drops_the_value_then_panics() {
    let fired = std::rc::Rc::new(Cell::new(0));
    let x = link(7);
    let f = fired.clone();
    let _callback = Gc::on_death(&x, move || {
        f.set(f.get() + 1);
        panic!("callback failed");
    });
    let weak = Gc::downgrade(&x);
    let result = catch_unwind(AssertUnwindSafe(|| Gc::try_unwrap(x).is_ok()));
    let payload = result.expect_err("the callback's panic propagates");
    assert_eq!(panic_message(&payload), "callback failed");
    assert_eq!(fired.get(), 1);
    assert_eq!(take_drops(), [7], "the value was dropped, once");
    assert!(weak.upgrade().is_none());
    drop(weak);
    assert_eq!(gcptr::collect(), 0);
}

// ---------------------------------------------------------------------
// `make_mut` with a `Weak` alive moves a tracked value into a
// fresh allocation, which must be tracked: a cycle through it is found.

#[derive(Trace, Clone)]
struct Cloneable {
    #[gc(skip)]
    id: u32,
    #[gc(skip)]
    drops: std::rc::Rc<Cell<u32>>,
    next: RefCell<Option<Gc<Cloneable>>>,
}

impl Drop for Cloneable {
    fn drop(&mut self) {
        self.drops.set(self.drops.get() + self.id);
    }
}

#[test]
fn make_mut_with_a_weak_alive_keeps_the_fresh_object_tracked() {
    let drops = std::rc::Rc::new(Cell::new(0));
    let mut a = Gc::new(Cloneable {
        id: 1,
        drops: drops.clone(),
        next: RefCell::new(None),
    });
    let weak = Gc::downgrade(&a);
    Gc::make_mut(&mut a).id = 10;
    assert!(
        weak.upgrade().is_none(),
        "weak references are disassociated"
    );
    assert_eq!(drops.get(), 0, "moved, not dropped");
    assert!(gcptr::is_tracked(&a));
    let fresh = Gc::downgrade(&a);
    *a.next.borrow_mut() = Some(a.clone());
    drop(a);
    assert!(fresh.upgrade().is_some(), "a self-cycle");
    assert_eq!(
        gcptr::collect(),
        1,
        "the fresh object is in the collector's care"
    );
    assert!(fresh.upgrade().is_none());
    assert_eq!(drops.get(), 10);

    // `unwrap_or_clone`: cloned while shared, moved when not.
    let b = Gc::new(Cloneable {
        id: 100,
        drops: drops.clone(),
        next: RefCell::new(None),
    });
    let c = b.clone();
    let cloned = Gc::unwrap_or_clone(b);
    let moved = Gc::unwrap_or_clone(c);
    assert_eq!((cloned.id, moved.id), (100, 100));
    drop((cloned, moved));
    assert_eq!(drops.get(), 210);
}

// ---------------------------------------------------------------------
// A finalizer run by a death by count resurrects its object
// and panics. The panic propagates, the object lives on, its value is not
// dropped, and the finalizer never runs again.

thread_local! {
    static PHOENIX_SAVED: RefCell<Option<Gc<Phoenix>>> = const { RefCell::new(None) };
    static PHOENIX_FINALIZED: Cell<u32> = const { Cell::new(0) };
}

#[derive(Trace)]
#[gc(finalize)]
struct Phoenix {
    #[gc(skip)]
    log: DropLog,
    me: RefCell<Weak<Phoenix>>,
}

impl Finalize for Phoenix {
    fn finalize(&self) {
        PHOENIX_FINALIZED.with(|f| f.set(f.get() + 1));
        let me = self
            .me
            .borrow()
            .upgrade()
            .expect("upgradable in a death by count");
        PHOENIX_SAVED.with(|s| *s.borrow_mut() = Some(me));
        panic!("finalizer failed");
    }
}

#[test]
fn a_finalizer_that_resurrects_then_panics_by_count() {
    let p = Gc::new_cyclic(|me| Phoenix {
        log: DropLog(5),
        me: RefCell::new(me.clone()),
    });
    let result = catch_unwind(AssertUnwindSafe(|| drop(p)));
    let payload = result.expect_err("the finalizer's panic propagates");
    assert_eq!(panic_message(&payload), "finalizer failed");
    assert_eq!(PHOENIX_FINALIZED.with(Cell::get), 1);
    assert_eq!(take_drops(), Vec::<u32>::new(), "resurrected: not dropped");
    let saved = PHOENIX_SAVED.with(|s| s.borrow_mut().take()).unwrap();
    assert_eq!(Gc::strong_count(&saved), 1);
    assert_eq!(saved.log.0, 5);
    drop(saved);
    assert_eq!(PHOENIX_FINALIZED.with(Cell::get), 1, "once per object");
    assert_eq!(take_drops(), [5]);
    assert_eq!(gcptr::collect(), 0);
}

// ---------------------------------------------------------------------
// During a full collection's gathering
// pass, a trace drops the last reference to a member of the set (held in
// another member's `RefCell`, which trace contract point 2 allows: not
// `self`'s). The member's condemnation is provisional, so its count
// reaching zero leaves the strong references' share with it; it is then
// found garbage, its death is queued, the collection drops it, and the
// queue finds it DEAD and releases only that share.

thread_local! {
    /// A strong reference from outside the set, which the trace drops too.
    static EXTERNAL: RefCell<Option<Gc<Killer>>> = const { RefCell::new(None) };
    static VICTIM_HOLDER: RefCell<Weak<Killer>> = const { RefCell::new(Weak::new()) };
    static KILL_IN_TRACE: Cell<bool> = const { Cell::new(false) };
}

struct Killer {
    log: DropLog,
    next: RefCell<Option<Gc<Killer>>>,
    /// Held by one other member: the edge a trace drops.
    held: RefCell<Option<Gc<Killer>>>,
    live: RefCell<Option<Gc<Link>>>,
}

// SAFETY: visits each `Gc` it owns once; the code it runs mutably borrows
// only another object's `RefCell` (point 2 of the contract).
unsafe impl Trace for Killer {
    fn trace(&self, tracer: &mut Tracer) {
        self.next.trace(tracer);
        self.held.trace(tracer);
        self.live.trace(tracer);
        if KILL_IN_TRACE.with(Cell::get) {
            let holder = VICTIM_HOLDER.with(|v| v.borrow().upgrade());
            if let Some(holder) = holder {
                if !std::ptr::eq(&*holder, self) {
                    if let Ok(mut held) = holder.held.try_borrow_mut() {
                        if let Some(victim) = held.as_ref() {
                            if std::ptr::eq(&**victim, self) {
                                KILL_IN_TRACE.with(|k| k.set(false));
                                drop(held.take());
                                drop(EXTERNAL.with(|e| e.borrow_mut().take()));
                            }
                        }
                    }
                }
            }
        }
    }
}

fn killer(id: u32) -> Gc<Killer> {
    Gc::new(Killer {
        log: DropLog(id),
        next: RefCell::new(None),
        held: RefCell::new(None),
        live: RefCell::new(None),
    })
}

/// A -> B -(held)-> X -> A, all old; X's trace drops B's edge to X, the
/// last reference to X. `with_live` adds an edge from A to a live object
/// (so the set is not all garbage and is not dropped early); `with_callback`
/// keeps a weak reference with a callback alive elsewhere (which also
/// turns off early drops).
fn trace_drops_last_reference_to_a_member(with_live: bool, with_callback: bool) {
    let a = killer(1);
    let b = killer(2);
    let x = killer(3);
    *a.next.borrow_mut() = Some(b.clone());
    *b.held.borrow_mut() = Some(x.clone());
    *x.next.borrow_mut() = Some(a.clone());
    let live = link(9);
    if with_live {
        *a.live.borrow_mut() = Some(live.clone());
    }
    let unrelated = link(8);
    let fired = std::rc::Rc::new(Cell::new(false));
    let f = fired.clone();
    let callback: Option<WeakWithCallback<Link>> =
        with_callback.then(|| Gc::downgrade_with(&unrelated, move || f.set(true)));
    // Make them old, so that the next full collection gathers from the
    // one that reports a lost reference.
    gcptr::collect();
    gcptr::collect();
    VICTIM_HOLDER.with(|v| *v.borrow_mut() = Gc::downgrade(&b));
    let wx = Gc::downgrade(&x);
    drop((b, x));
    drop(a);
    KILL_IN_TRACE.with(|k| k.set(true));
    let found = gcptr::collect();
    let killed = !KILL_IN_TRACE.with(|k| k.replace(false));
    assert!(killed, "the trace ran and dropped the edge");
    assert_eq!(found, 3, "live: {with_live}, callback: {with_callback}");
    assert_eq!(take_drops(), [1, 2, 3], "each once");
    assert!(wx.upgrade().is_none());
    assert_eq!(Gc::strong_count(&live), 1);
    drop(callback);
    drop((live, unrelated));
    assert!(!fired.get());
    assert_eq!(take_drops(), [8, 9]);
    assert_eq!(gcptr::collect(), 0);
    VICTIM_HOLDER.with(|v| *v.borrow_mut() = Weak::new());
}

// The same, but the member was also held from outside
// when the pass took it in (so it is found reachable: acquitted) and the
// trace dropped that reference too. Its count is zero: its death is
// queued, and runs once the collection ends, with the objects it held.
#[test]
fn a_trace_drops_every_reference_to_a_member_found_reachable() {
    gcptr::disable();
    let a = killer(1);
    let b = killer(2);
    let x = killer(3);
    *a.next.borrow_mut() = Some(b.clone());
    *b.held.borrow_mut() = Some(x.clone());
    *x.next.borrow_mut() = Some(a.clone());
    gcptr::collect();
    gcptr::collect();
    VICTIM_HOLDER.with(|v| *v.borrow_mut() = Gc::downgrade(&b));
    let (wa, wx) = (Gc::downgrade(&a), Gc::downgrade(&x));
    EXTERNAL.with(|e| *e.borrow_mut() = Some(x));
    drop(b);
    drop(a);
    KILL_IN_TRACE.with(|k| k.set(true));
    let found = gcptr::collect();
    assert!(
        !KILL_IN_TRACE.with(|k| k.replace(false)),
        "the trace dropped both"
    );
    assert_eq!(found, 0, "reachable when the pass took it in");
    assert_eq!(
        take_drops(),
        [1, 2, 3],
        "each once, when the collection ended"
    );
    assert!(wx.upgrade().is_none() && wa.upgrade().is_none());
    assert_eq!(gcptr::collect(), 0);
    assert_eq!(take_drops(), Vec::<u32>::new());
    VICTIM_HOLDER.with(|v| *v.borrow_mut() = Weak::new());
    gcptr::enable();
}

#[test]
fn a_trace_drops_the_last_reference_to_a_garbage_member() {
    gcptr::disable();
    for (with_live, with_callback) in [(false, false), (true, false), (false, true), (true, true)] {
        trace_drops_last_reference_to_a_member(with_live, with_callback);
    }
    gcptr::enable();
}

// ---------------------------------------------------------------------
// An `ObjectRef` kept past its object's death, or
// read while a collection condemns the object: `downcast` gives `None`
// and `strong_count` 0; it is never a way back to a dropped value.

thread_local! {
    static REFS: RefCell<Vec<gcptr::ObjectRef>> = const { RefCell::new(Vec::new()) };
    static SEEN_IN_FINALIZER: RefCell<Vec<(bool, usize)>> = const { RefCell::new(Vec::new()) };
}

#[derive(Trace)]
#[gc(finalize)]
struct Looker {
    #[gc(skip)]
    log: DropLog,
    peer: RefCell<Option<Gc<Looker>>>,
}

impl Finalize for Looker {
    fn finalize(&self) {
        REFS.with(|r| {
            for obj in r.borrow().iter() {
                let back = obj.downcast::<Looker>();
                SEEN_IN_FINALIZER
                    .with(|s| s.borrow_mut().push((back.is_some(), obj.strong_count())));
            }
        });
    }
}

#[test]
fn object_refs_to_dead_or_condemned_objects_do_not_downcast() {
    // By count.
    let leaf = Gc::new(0u8);
    let holder = link(1);
    let holder2 = Gc::new(RefCell::new(vec![leaf.clone()]));
    let found = gcptr::referrers(&leaf);
    assert_eq!(found.len(), 1);
    assert!(found[0].type_name().contains("RefCell"));
    assert_eq!(found[0].strong_count(), 1);
    assert!(format!("{:?}", found[0]).contains("ObjectRef"));
    drop(holder2);
    assert_eq!(found[0].strong_count(), 0);
    assert!(found[0].downcast::<RefCell<Vec<Gc<u8>>>>().is_none());
    drop(found);
    drop(holder);
    assert_eq!(take_drops(), [1]);

    // In a collection: the finalizers see their peers condemned.
    let a = Gc::new(Looker {
        log: DropLog(2),
        peer: RefCell::new(None),
    });
    let b = Gc::new(Looker {
        log: DropLog(3),
        peer: RefCell::new(Some(a.clone())),
    });
    *a.peer.borrow_mut() = Some(b.clone());
    let mut refs = gcptr::referrers(&a);
    refs.extend(gcptr::referrers(&b));
    assert_eq!(refs.len(), 2);
    REFS.with(|r| *r.borrow_mut() = refs);
    drop((a, b));
    assert_eq!(gcptr::collect(), 2);
    let seen = SEEN_IN_FINALIZER.with(|s| std::mem::take(&mut *s.borrow_mut()));
    assert_eq!(seen, [(false, 0); 4], "no condemned object is handed back");
    let refs = REFS.with(|r| std::mem::take(&mut *r.borrow_mut()));
    assert!(refs
        .iter()
        .all(|r| r.downcast::<Looker>().is_none() && r.strong_count() == 0));
    drop(refs);
    assert_eq!(take_drops(), [2, 3]);
}

// ---------------------------------------------------------------------
// `freeze` (and `unfreeze`) run by a `Drop` during a
// collection does nothing, and the collection completes.

struct Freezer {
    log: DropLog,
    peer: RefCell<Option<Gc<Freezer>>>,
}

// SAFETY: visits exactly the one `Gc` it owns.
unsafe impl Trace for Freezer {
    fn trace(&self, tracer: &mut Tracer) {
        self.peer.trace(tracer);
    }
}

impl Drop for Freezer {
    fn drop(&mut self) {
        gcptr::freeze();
        gcptr::unfreeze();
        gcptr::freeze();
    }
}

#[test]
fn freeze_during_a_collection_does_nothing() {
    let keep = link(10);
    let a = Gc::new(Freezer {
        log: DropLog(1),
        peer: RefCell::new(None),
    });
    *a.peer.borrow_mut() = Some(a.clone());
    drop(a);
    assert_eq!(gcptr::collect(), 1);
    assert_eq!(take_drops(), [1]);
    assert_eq!(
        gcptr::freeze_count(),
        0,
        "nothing was frozen during the collection"
    );
    // The lists are whole: a new cycle is still found.
    let b = link(2);
    *b.next.borrow_mut() = Some(b.clone());
    drop(b);
    assert_eq!(gcptr::collect(), 1);
    assert_eq!(take_drops(), [2]);
    drop(keep);
    assert_eq!(take_drops(), [10]);
}

// ---------------------------------------------------------------------
// A `WeakValueMap` traces its keys. A
// cycle through a key that a map owns is found.

#[derive(Trace)]
struct Registry {
    #[gc(skip)]
    log: DropLog,
    map: RefCell<gcptr::WeakValueMap<RKey, Registry>>,
}

/// A `Gc` key that compares by address.
#[derive(Trace)]
struct RKey(Gc<Registry>);

impl PartialEq for RKey {
    fn eq(&self, other: &Self) -> bool {
        Gc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for RKey {}
impl std::hash::Hash for RKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        Gc::as_ptr(&self.0).hash(state);
    }
}

#[test]
fn a_cycle_through_a_weak_value_maps_key_is_collected() {
    let r = Gc::new(Registry {
        log: DropLog(1),
        map: RefCell::new(gcptr::WeakValueMap::new()),
    });
    let value = Gc::new(Registry {
        log: DropLog(2),
        map: RefCell::new(gcptr::WeakValueMap::new()),
    });
    // The map owns a `Gc` to its own object as a key: a cycle.
    r.map.borrow_mut().insert(RKey(r.clone()), &value);
    assert_eq!(gcptr::referents(&*r).len(), 1);
    let wr = Gc::downgrade(&r);
    drop(r);
    assert!(wr.upgrade().is_some());
    assert_eq!(gcptr::collect(), 1);
    assert!(wr.upgrade().is_none());
    assert_eq!(take_drops(), [1]);
    drop(value);
    assert_eq!(take_drops(), [2]);
}

// ---------------------------------------------------------------------
// The std collections' traces. A self-cycle
// through each is found (one that visited nothing would leak; one that
// visited an edge twice would free live objects).

#[derive(Trace)]
struct Holder {
    #[gc(skip)]
    log: DropLog,
    deque: RefCell<std::collections::VecDeque<Gc<Holder>>>,
    list: RefCell<std::collections::LinkedList<Gc<Holder>>>,
    set: RefCell<std::collections::HashSet<Key>>,
    bset: RefCell<std::collections::BTreeSet<Key>>,
    bmap: RefCell<std::collections::BTreeMap<Key, Gc<Holder>>>,
    heap: RefCell<std::collections::BinaryHeap<Key>>,
}

/// A `Gc` that compares by address, for the sets and the heap.
#[derive(Trace, Clone)]
struct Key(Gc<Holder>);

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        Gc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for Key {}
impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        Gc::as_ptr(&self.0).hash(state);
    }
}
impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        Gc::as_ptr(&self.0).cmp(&Gc::as_ptr(&other.0))
    }
}

fn holder(id: u32) -> Gc<Holder> {
    Gc::new(Holder {
        log: DropLog(id),
        deque: RefCell::default(),
        list: RefCell::default(),
        set: RefCell::default(),
        bset: RefCell::default(),
        bmap: RefCell::default(),
        heap: RefCell::default(),
    })
}

#[test]
fn cycles_through_each_std_collection_are_found() {
    for which in 0..6 {
        let h = holder(which);
        let other = holder(100 + which);
        let k = || Key(h.clone());
        match which {
            0 => h.deque.borrow_mut().push_back(h.clone()),
            1 => h.list.borrow_mut().push_back(h.clone()),
            2 => drop(h.set.borrow_mut().insert(k())),
            3 => drop(h.bset.borrow_mut().insert(k())),
            4 => drop(h.bmap.borrow_mut().insert(Key(other.clone()), h.clone())),
            _ => h.heap.borrow_mut().push(k()),
        }
        let expected_refs = if which == 4 { 2 } else { 1 };
        assert_eq!(
            gcptr::referents(&*h).len(),
            expected_refs,
            "collection {which}"
        );
        let w = Gc::downgrade(&h);
        drop(h);
        assert!(w.upgrade().is_some());
        assert_eq!(gcptr::collect(), 1, "collection {which}");
        assert!(w.upgrade().is_none());
        assert_eq!(take_drops(), [which]);
        assert_eq!(
            Gc::strong_count(&other),
            1,
            "a live object reached from garbage lives"
        );
        drop(other);
        assert_eq!(take_drops(), [100 + which]);
    }
}

// ---------------------------------------------------------------------
// `Gc`s made, unwrapped,
// lent out and dropped by a thread-local's destructor that runs after the
// collector is gone (other thread-locals' destructors used up its exit
// guards). No crash, and values are dropped when their count reaches zero.

struct LateUser(std::sync::mpsc::Sender<String>);

/// A tracked node that reports its drop over a channel (the tests' drop
/// log may be gone this late in thread exit).
#[derive(Trace)]
struct LateLink {
    #[gc(skip)]
    id: u32,
    #[gc(skip)]
    tx: std::sync::mpsc::Sender<String>,
    next: RefCell<Option<Gc<LateLink>>>,
}

impl Drop for LateLink {
    fn drop(&mut self) {
        let _ = self.tx.send(format!("dropped {}", self.id));
    }
}

impl Drop for LateUser {
    fn drop(&mut self) {
        let tx = self.0.clone();
        let send = |s: String| {
            let _ = tx.send(s);
        };
        let late = |id| {
            Gc::new(LateLink {
                id,
                tx: tx.clone(),
                next: RefCell::new(None),
            })
        };
        gcptr::set_threshold([1, 1, 1]);
        send(format!("threshold {:?}", gcptr::threshold()));
        let mut a = late(1);
        send(format!("tracked {}", gcptr::is_tracked(&a)));
        // `get_mut` (set aside) and `try_unwrap` (untrack) with no state.
        if let Some(l) = Gc::get_mut(&mut a) {
            l.id = 11;
        }
        let value = Gc::try_unwrap(a).ok().expect("unique");
        send(format!("unwrapped {}", value.id));
        drop(value);
        // A tracked object dies by count, and its child with it.
        let b = late(2);
        let c = late(3);
        *b.next.borrow_mut() = Some(c);
        let wb = Gc::downgrade(&b);
        drop(b);
        send(format!("upgrade {}", wb.upgrade().is_some()));
        send(format!("collect {}", gcptr::collect()));
        send("done".to_string());
    }
}

thread_local! {
    static LATE: RefCell<Option<LateUser>> = const { RefCell::new(None) };
}

#[test]
fn gcs_used_by_a_thread_local_destructor_after_the_collector_is_gone() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Registered first, so destroyed after the collector's guards
        // (destructors run in the reverse order of registration), and after
        // the fillers, which use up the guards.
        LATE.with(|l| *l.borrow_mut() = Some(LateUser(tx)));
        support::touch_exit_guard_fillers();
        let keep = link(50);
        drop(keep);
        support::fill_exit_guard_fillers(1000);
        take_drops();
    })
    .join()
    .unwrap();
    let events: Vec<String> = rx.try_iter().collect();
    let expected = [
        // No state: the thresholds read as zeros, and an object made now has
        // its links (it is of a tracked type) but is in no list.
        "threshold [0, 0, 0]",
        "tracked true",
        "unwrapped 11",
        "dropped 11",
        "dropped 2",
        "dropped 3",
        "upgrade false",
        "collect 0",
        "done",
    ];
    assert_eq!(events, expected);
}

// ---------------------------------------------------------------------
// `Weak`'s counts and addresses. `weak_count` is
// documented as 0 "once it is dead"; read from a `Drop` that a collection
// runs, for a peer the collection already dropped, it must say so too,
// as `strong_count` does.

thread_local! {
    static COUNTS_SEEN: RefCell<Vec<(usize, usize)>> = const { RefCell::new(Vec::new()) };
}

struct Counter {
    log: DropLog,
    peer: RefCell<Option<Gc<Counter>>>,
    peer_weak: RefCell<Weak<Counter>>,
}

// SAFETY: visits exactly the one `Gc` it owns.
unsafe impl Trace for Counter {
    fn trace(&self, tracer: &mut Tracer) {
        self.peer.trace(tracer);
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        let w = self.peer_weak.borrow();
        COUNTS_SEEN.with(|c| c.borrow_mut().push((w.strong_count(), w.weak_count())));
    }
}

#[test]
fn weak_counts_and_addresses() {
    let a = Gc::new(5u32);
    let w1 = Gc::downgrade(&a);
    let w2 = w1.clone();
    assert_eq!(w1.weak_count(), 2);
    assert!(Weak::ptr_eq(&w1, &w2));
    assert_eq!(w1.as_ptr(), Gc::as_ptr(&a));
    assert!(format!("{w1:?}").contains("Weak"));
    assert_eq!(format!("{w1:p}"), format!("{:p}", Gc::as_ptr(&a)));
    let empty: Weak<u32> = Weak::default();
    assert!(!Weak::ptr_eq(&w1, &empty));
    assert!(Weak::ptr_eq(&empty, &Weak::new()));
    assert_eq!(empty.weak_count(), 0);
    assert!(!empty.as_ptr().is_null());
    drop(a);
    assert_eq!(w1.weak_count(), 0);
    assert_eq!(w1.strong_count(), 0);
    drop((w1, w2));
}

/// `Weak::weak_count` of a peer the running collection condemned is 0, as
/// `Weak::strong_count` is (it counted the collector's unit before).
#[test]
fn weak_count_of_a_condemned_peer_is_zero_as_documented() {
    let a = Gc::new(Counter {
        log: DropLog(1),
        peer: RefCell::new(None),
        peer_weak: RefCell::new(Weak::new()),
    });
    let b = Gc::new(Counter {
        log: DropLog(2),
        peer: RefCell::new(Some(a.clone())),
        peer_weak: RefCell::new(Gc::downgrade(&a)),
    });
    *a.peer_weak.borrow_mut() = Gc::downgrade(&b);
    *a.peer.borrow_mut() = Some(b);
    drop(a);
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(take_drops(), [1, 2]);
    let seen = COUNTS_SEEN.with(|c| std::mem::take(&mut *c.borrow_mut()));
    assert_eq!(seen.len(), 2);
    for (strong, weak) in seen {
        assert_eq!(strong, 0);
        assert_eq!(weak, 0, "weak_count of a dead peer: {weak}");
    }
}

// ---------------------------------------------------------------------
// Plain trait impls (of `Gc`, the closures, the weak containers and
// callbacks): each behaves as its `Rc` or std counterpart.

#[test]
fn plain_trait_impls() {
    use std::collections::hash_map::DefaultHasher;
    use std::hash::{Hash, Hasher};
    let a: Gc<u32> = Gc::from(3);
    let b: Gc<u32> = Gc::default();
    assert_eq!(a.cmp(&b), std::cmp::Ordering::Greater);
    assert_eq!(a.partial_cmp(&b), Some(std::cmp::Ordering::Greater));
    let hash = |v: &dyn Fn(&mut DefaultHasher)| {
        let mut h = DefaultHasher::new();
        v(&mut h);
        h.finish()
    };
    assert_eq!(hash(&|h| a.hash(h)), hash(&|h| 3u32.hash(h)));
    assert_eq!(format!("{a:p}"), format!("{:p}", Gc::as_ptr(&a)));
    assert_eq!(*AsRef::<u32>::as_ref(&a), 3);
    assert_eq!(*std::borrow::Borrow::<u32>::borrow(&a), 3);

    let n = Gc::new(1u32);
    let set: gcptr::WeakSet<u32> = [n.clone()].into_iter().collect();
    assert_eq!(set.len(), 1);
    assert!(format!("{set:?}").starts_with('{'));
    let mut set2 = gcptr::WeakSet::default();
    set2.extend([n.clone()]);
    assert!(set2.contains(&n));
    let km: gcptr::WeakKeyMap<u32, u8> = [(n.clone(), 4u8)].into_iter().collect();
    assert_eq!(km.get(&n), Some(&4));
    assert!(format!("{km:?}").starts_with('{'));
    let mut km2 = gcptr::WeakKeyMap::default();
    km2.extend([(n.clone(), 5u8)]);
    assert_eq!(km2.len(), 1);
    let vm: gcptr::WeakValueMap<u8, u32> = [(1u8, n.clone())].into_iter().collect();
    assert_eq!(vm.keys().copied().collect::<Vec<_>>(), [1]);
    let mut vm2 = gcptr::WeakValueMap::default();
    vm2.extend([(2u8, &n)]);
    assert_eq!(vm2.len(), 1);
    let cb = Gc::on_death(&n, || {});
    assert!(format!("{cb:?}").contains("pending: true"));
    let wc = Gc::downgrade_with(&n, || {});
    assert!(format!("{wc:?}").contains("pending: true"));
    assert!(Weak::ptr_eq(wc.weak(), &Gc::downgrade(&n)));
    drop(n);
    assert!(set.is_empty() && set2.is_empty() && km.is_empty() && km2.is_empty());
    assert!(vm.is_empty() && vm2.is_empty());
    assert!(!cb.is_pending() && !wc.is_pending());
}

// A `Drop` that the gathering pass runs early (its garbage was met before
// anything alive) while a root waits in the reporters' buffer: it may
// take the root's last handle, `get_mut` it, list referrers, allocate,
// freeze, collect and unwrap it, and the waiting root is then let go of
// once.

/// A root that holds two objects.
type Root = Gc<RefCell<Vec<Gc<u8>>>>;

thread_local! {
    static WAITING: RefCell<Option<Root>> = const { RefCell::new(None) };
    static EARLY: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

struct EarlyDropper {
    me: RefCell<Option<Gc<EarlyDropper>>>,
}

// SAFETY: visits the one `Gc` it owns.
unsafe impl Trace for EarlyDropper {
    fn trace(&self, tracer: &mut Tracer) {
        self.me.trace(tracer);
    }
}

impl Drop for EarlyDropper {
    fn drop(&mut self) {
        let mut log = Vec::new();
        if let Some(mut root) = WAITING.with(|w| w.borrow_mut().take()) {
            log.push(format!("get_mut {}", Gc::get_mut(&mut root).is_some()));
            let found = gcptr::referrers(&Gc::new(0u8));
            log.push(format!("referrers {}", found.len()));
            let fresh = Gc::new(RefCell::new(vec![Gc::new(1u8)]));
            *fresh.borrow_mut() = Vec::new();
            gcptr::freeze();
            gcptr::unfreeze();
            log.push(format!("collect {}", gcptr::collect()));
            match Gc::try_unwrap(root) {
                Ok(value) => log.push(format!("unwrapped {}", value.borrow().len())),
                Err(_) => log.push("kept".into()),
            }
        }
        EARLY.with(|e| e.borrow_mut().extend(log));
    }
}

#[test]
fn a_drop_run_early_by_the_gathering_pass_may_unwrap_a_root_that_waits() {
    gcptr::disable();
    gcptr::collect();
    let dropper = Gc::new(EarlyDropper {
        me: RefCell::new(None),
    });
    *dropper.me.borrow_mut() = Some(dropper.clone());
    let root = Gc::new(RefCell::new(vec![Gc::new(7u8), Gc::new(8u8)]));
    // Both old; then the dropper reports first, the root second: the
    // gathering pass takes the dropper alone, finds it garbage and drops
    // it while the root waits in the reporters' buffer.
    gcptr::collect();
    drop(dropper.clone());
    drop(dropper);
    drop(root.clone());
    WAITING.with(|w| *w.borrow_mut() = Some(root));
    assert_eq!(gcptr::collect(), 1);
    let log = EARLY.with(|e| std::mem::take(&mut *e.borrow_mut()));
    assert_eq!(
        log,
        ["get_mut true", "referrers 0", "collect 0", "unwrapped 2"],
        "the Drop ran early, with the root still waiting"
    );
    assert_eq!(gcptr::collect(), 0);
    let cycle = support::Node::new(9);
    cycle.link(&cycle);
    drop(cycle);
    assert_eq!(gcptr::collect(), 1);
    assert_eq!(take_drops(), [9]);
    gcptr::enable();
}

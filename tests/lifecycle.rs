//! The per-object state lifecycle on the paths that move a value into a
//! fresh allocation or change an object's kind: `Gc::make_mut` (its clone
//! and its move), `Gc::get_mut`, `Gc::try_unwrap`, `Gc::new_cyclic`,
//! `freeze`, and thread exit. Each test says what state must carry over
//! (or must not) and asserts the outcome a wrong transition would break:
//! finalizer and drop counts, weak upgrades, watchers told, `count()`,
//! `freeze_count()`, `is_tracked` and what `collect()` returns.

mod support;

use std::cell::{Cell, RefCell};

use gcptr::{Finalize, Gc, Trace, Weak, WeakSet, WeakValueMap};

thread_local! {
    /// The ids of the values whose finalizer ran, in order.
    static FINALIZED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    /// The ids of the values dropped, in order.
    static DROPPED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    /// What the finalizers do besides logging.
    static MODE: Cell<Mode> = const { Cell::new(Mode::Log) };
    /// Objects a finalizer resurrected or made.
    static KEPT: RefCell<Vec<Gc<Fin>>> = const { RefCell::new(Vec::new()) };
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Log,
    /// Store a strong reference to the object itself (through its `Weak`
    /// if it upgrades, else through its `next` edge, a self-loop).
    Resurrect,
    /// If the peer's finalizer ran already, take the peer's last `Gc` out
    /// of `next` and `make_mut` it (a move: the collector holds a unit of
    /// weak count on garbage), keeping the result.
    MakeMutFinalizedPeer,
    /// As `MakeMutFinalizedPeer`, with `try_unwrap`: the value is the
    /// finalizer's from then on.
    UnwrapFinalizedPeer,
}

fn finalized() -> Vec<u32> {
    FINALIZED.with(|f| std::mem::take(&mut *f.borrow_mut()))
}

fn dropped() -> Vec<u32> {
    let mut d = DROPPED.with(|d| std::mem::take(&mut *d.borrow_mut()));
    d.sort_unstable();
    d
}

fn kept() -> Vec<Gc<Fin>> {
    KEPT.with(|k| std::mem::take(&mut *k.borrow_mut()))
}

/// A tracked value with a finalizer, a `Weak` to its own object and one
/// edge. Cloning it gives the clone another id (`id + 100`), so that the
/// logs tell a value from its clone.
#[derive(Trace)]
#[gc(finalize)]
struct Fin {
    #[gc(skip)]
    id: u32,
    me: RefCell<Weak<Fin>>,
    next: RefCell<Option<Gc<Fin>>>,
}

impl Clone for Fin {
    fn clone(&self) -> Fin {
        Fin {
            id: self.id + 100,
            me: RefCell::new(Weak::new()),
            next: RefCell::new(self.next.borrow().clone()),
        }
    }
}

impl Drop for Fin {
    fn drop(&mut self) {
        let _ = DROPPED.try_with(|d| d.borrow_mut().push(self.id));
    }
}

impl Finalize for Fin {
    fn finalize(&self) {
        let _ = FINALIZED.try_with(|f| f.borrow_mut().push(self.id));
        match MODE.with(Cell::get) {
            Mode::Log => {}
            Mode::Resurrect => {
                // In a garbage cycle `Weak`s no longer upgrade: a
                // self-loop reaches the object instead.
                let me = self.me.borrow().upgrade().or_else(|| {
                    let next = self.next.borrow().clone()?;
                    core::ptr::eq(Gc::as_ptr(&next), self).then_some(next)
                });
                KEPT.with(|k| k.borrow_mut().extend(me));
            }
            Mode::MakeMutFinalizedPeer | Mode::UnwrapFinalizedPeer => {
                let Some(peer_id) = self.next.borrow().as_ref().map(|p| p.id) else {
                    return;
                };
                if !FINALIZED.with(|f| f.borrow().contains(&peer_id)) {
                    return;
                }
                let mut peer = self.next.borrow_mut().take().unwrap();
                assert_eq!(Gc::strong_count(&peer), 1, "the peer's last reference");
                if MODE.with(Cell::get) == Mode::MakeMutFinalizedPeer {
                    Gc::make_mut(&mut peer).id += 1000;
                    KEPT.with(|k| k.borrow_mut().push(peer));
                } else {
                    let value = Gc::try_unwrap(peer).ok().expect("the only reference");
                    drop(value);
                }
            }
        }
    }
}

fn fin(id: u32) -> Gc<Fin> {
    let gc = Gc::new(Fin {
        id,
        me: RefCell::new(Weak::new()),
        next: RefCell::new(None),
    });
    *gc.me.borrow_mut() = Gc::downgrade(&gc);
    gc
}

/// Resets the thread's logs and mode (each test runs on a thread of its
/// own, but a failed assertion leaves them as they were).
fn fresh_logs() {
    MODE.with(|m| m.set(Mode::Log));
    finalized();
    dropped();
    kept();
}

// ---------------------------------------------------------------------
// `make_mut` that moves a value whose finalizer already ran (the object
// was resurrected): the value must not be finalized again when the fresh
// object dies. The fuzzer's finding, on both ways a finalizer runs.

#[test]
fn make_mut_moving_a_value_finalized_by_count_does_not_finalize_it_again() {
    fresh_logs();
    let x = fin(1);
    MODE.with(|m| m.set(Mode::Resurrect));
    drop(x);
    MODE.with(|m| m.set(Mode::Log));
    assert_eq!(finalized(), [1]);
    let mut x = kept().pop().expect("resurrected by its finalizer");
    let old = Gc::downgrade(&x);
    // One strong reference and `Weak`s: the value moves.
    Gc::make_mut(&mut x).id = 2;
    assert!(
        old.upgrade().is_none(),
        "the old object's `Weak`s are cut off"
    );
    assert_eq!(dropped(), Vec::<u32>::new(), "moved, not dropped");
    drop(x);
    assert_eq!(finalized(), Vec::<u32>::new(), "finalized twice");
    assert_eq!(dropped(), [2]);
}

#[test]
fn make_mut_moving_a_value_finalized_by_a_collection_does_not_finalize_it_again() {
    fresh_logs();
    let x = fin(1);
    *x.next.borrow_mut() = Some(x.clone());
    drop(x);
    MODE.with(|m| m.set(Mode::Resurrect));
    assert_eq!(gcptr::collect(), 0, "resurrected: not counted");
    MODE.with(|m| m.set(Mode::Log));
    assert_eq!(finalized(), [1]);
    let mut x = kept().pop().expect("resurrected by its finalizer");
    // Break the self-loop: `x` is the only strong reference, and the
    // `Weak` in the value keeps the weak count up.
    drop(x.next.borrow_mut().take());
    assert_eq!(Gc::strong_count(&x), 1);
    Gc::make_mut(&mut x).id = 2;
    drop(x);
    assert_eq!(finalized(), Vec::<u32>::new(), "finalized twice");
    assert_eq!(dropped(), [2]);
    assert_eq!(gcptr::collect(), 0);
}

/// The same for an untracked type (plain data and a `Weak`), whose death
/// takes `Rc`'s path once it is finalized.
#[derive(Trace, Clone)]
#[gc(finalize)]
struct PlainFin {
    #[gc(skip)]
    id: u32,
    me: RefCell<Weak<PlainFin>>,
}

thread_local! {
    static PLAIN_KEPT: RefCell<Option<Gc<PlainFin>>> = const { RefCell::new(None) };
}

impl Finalize for PlainFin {
    fn finalize(&self) {
        let _ = FINALIZED.try_with(|f| f.borrow_mut().push(self.id));
        PLAIN_KEPT.with(|k| *k.borrow_mut() = self.me.borrow().upgrade());
    }
}

#[test]
fn make_mut_moving_an_untracked_finalized_value_does_not_finalize_it_again() {
    fresh_logs();
    let x = Gc::new(PlainFin {
        id: 1,
        me: RefCell::new(Weak::new()),
    });
    assert!(!gcptr::is_tracked(&x));
    *x.me.borrow_mut() = Gc::downgrade(&x);
    drop(x);
    assert_eq!(finalized(), [1]);
    let mut x = PLAIN_KEPT
        .with(|k| k.borrow_mut().take())
        .expect("resurrected");
    Gc::make_mut(&mut x).id = 2;
    assert!(!gcptr::is_tracked(&x));
    drop(x);
    assert_eq!(finalized(), Vec::<u32>::new(), "finalized twice");
    assert!(PLAIN_KEPT.with(|k| k.borrow().is_none()));
}

/// A finalizer that takes the last reference to a garbage peer whose
/// finalizer already ran in the same collection, and `make_mut`s it: the
/// collector's unit of weak count makes that a move, into an object
/// outside the garbage. The peer's value is finalized once in all.
#[test]
fn make_mut_of_a_finalized_garbage_peer_from_a_finalizer() {
    fresh_logs();
    let a = fin(1);
    let b = fin(2);
    *a.next.borrow_mut() = Some(b.clone());
    *b.next.borrow_mut() = Some(a.clone());
    drop((a, b));
    MODE.with(|m| m.set(Mode::MakeMutFinalizedPeer));
    let reclaimed = gcptr::collect();
    MODE.with(|m| m.set(Mode::Log));
    let mut order = finalized();
    assert_eq!(order.len(), 2, "each finalized once: {order:?}");
    let (first, second) = (order[0], order[1]);
    // The second finalizer moved the first's value into a fresh object,
    // which holds the second: that one was resurrected, and the first's
    // old object is gone (its value lives on).
    assert_eq!(reclaimed, 1);
    let fresh = kept().pop().expect("made by the second finalizer");
    assert_eq!(fresh.id, first + 1000);
    assert_eq!(fresh.next.borrow().as_ref().map(|n| n.id), Some(second));
    assert_eq!(dropped(), Vec::<u32>::new());
    drop(fresh);
    order.clear();
    assert_eq!(finalized(), order, "a value finalized twice");
    assert_eq!(dropped(), {
        let mut d = vec![first + 1000, second];
        d.sort_unstable();
        d
    });
    assert_eq!(gcptr::collect(), 0);
}

/// The same with `try_unwrap`: the value leaves gcptr's care and is
/// dropped by the finalizer; the peer's finalizer, which ran already,
/// does not run again, and the object left behind is reclaimed once.
#[test]
fn try_unwrap_of_a_finalized_garbage_peer_from_a_finalizer() {
    fresh_logs();
    let a = fin(1);
    let b = fin(2);
    *a.next.borrow_mut() = Some(b.clone());
    *b.next.borrow_mut() = Some(a.clone());
    let (wa, wb) = (Gc::downgrade(&a), Gc::downgrade(&b));
    drop((a, b));
    MODE.with(|m| m.set(Mode::UnwrapFinalizedPeer));
    let reclaimed = gcptr::collect();
    MODE.with(|m| m.set(Mode::Log));
    assert_eq!(finalized().len(), 2);
    assert_eq!(reclaimed, 2);
    assert_eq!(dropped(), [1, 2]);
    assert!(wa.upgrade().is_none() && wb.upgrade().is_none());
    assert_eq!(finalized(), Vec::<u32>::new());
    assert_eq!(gcptr::collect(), 0);
}

// ---------------------------------------------------------------------
// `make_mut` that moves the value of a watched object: the old object
// dies to its watchers (as it does to its `Weak`s), once, and the fresh
// one starts with none. The value is not finalized by the move.

#[test]
fn make_mut_moving_a_watched_value_tells_each_watcher_once() {
    fresh_logs();
    let mut x = fin(1);
    let mut map = WeakValueMap::new();
    map.insert("x", &x);
    let mut set = WeakSet::new();
    set.insert(&x);
    let mut keys = gcptr::WeakKeyMap::new();
    keys.insert(&x, "value");
    let fired = std::rc::Rc::new(Cell::new(0));
    let on_death = Gc::on_death(&x, {
        let fired = fired.clone();
        move || fired.set(fired.get() + 1)
    });
    let with_callback = Gc::downgrade_with(&x, {
        let fired = fired.clone();
        move || fired.set(fired.get() + 10)
    });
    Gc::make_mut(&mut x).id = 2;
    assert_eq!(fired.get(), 11, "each callback once");
    assert!(!on_death.is_pending() && !with_callback.is_pending());
    assert!(with_callback.upgrade().is_none());
    assert_eq!((map.len(), set.len(), keys.len()), (0, 0, 0));
    assert!(map.get("x").is_none() && !set.contains(&x) && !keys.contains_key(&x));
    assert_eq!(finalized(), Vec::<u32>::new(), "a move finalizes nothing");
    // The fresh object is watched afresh, and dies once.
    map.insert("x", &x);
    let again = Gc::on_death(&x, {
        let fired = fired.clone();
        move || fired.set(fired.get() + 100)
    });
    assert_eq!(map.len(), 1);
    drop(x);
    assert_eq!(fired.get(), 111);
    assert!(!again.is_pending());
    assert_eq!(map.len(), 0);
    assert_eq!(finalized(), [2]);
    assert_eq!(dropped(), [2]);
}

// ---------------------------------------------------------------------
// `make_mut` and `try_unwrap` on objects in the collector's other states:
// frozen, waiting in the reporters' buffer (old, having lost a
// reference), acyclic. The old object leaves every count it was in; the
// fresh one is a young, tracked object that collections find.

/// Makes `x` (a `fin`) the only member of a garbage self-loop.
fn into_garbage_loop(x: Gc<Fin>) {
    *x.next.borrow_mut() = Some(x.clone());
}

#[test]
fn make_mut_moving_a_frozen_value() {
    fresh_logs();
    let other = fin(9);
    let mut x = fin(1);
    gcptr::collect();
    gcptr::freeze();
    let frozen = gcptr::freeze_count();
    assert!(frozen >= 2);
    assert_eq!(gcptr::count()[0], 0);
    Gc::make_mut(&mut x).id = 2;
    assert_eq!(gcptr::freeze_count(), frozen - 1, "the old object left");
    assert_eq!(gcptr::count()[0], 1, "the fresh object is young");
    assert!(gcptr::is_tracked(&x));
    into_garbage_loop(x);
    // Frozen objects are left alone; the fresh one is found.
    assert_eq!(gcptr::collect(), 1);
    assert_eq!(finalized(), [2]);
    assert_eq!(dropped(), [2]);
    assert_eq!(gcptr::freeze_count(), frozen - 1);
    gcptr::unfreeze();
    assert_eq!(gcptr::freeze_count(), 0);
    drop(other);
    assert_eq!(gcptr::collect(), 0);
    assert_eq!(finalized(), [9]);
}

#[test]
fn try_unwrap_of_a_frozen_object_leaves_the_permanent_generation() {
    fresh_logs();
    let x = fin(1);
    gcptr::collect();
    gcptr::freeze();
    let frozen = gcptr::freeze_count();
    let value = Gc::try_unwrap(x).ok().expect("the only reference");
    assert_eq!(gcptr::freeze_count(), frozen - 1);
    assert_eq!(value.id, 1);
    drop(value);
    assert_eq!(finalized(), Vec::<u32>::new(), "out of gcptr's care");
    assert_eq!(dropped(), [1]);
    gcptr::unfreeze();
    assert_eq!(gcptr::collect(), 0);
}

#[test]
fn make_mut_moving_a_value_that_waits_in_the_reporters_buffer() {
    fresh_logs();
    let mut x = fin(1);
    let old = Gc::downgrade(&x);
    gcptr::collect();
    // Old now; losing a reference buffers it as a reporter.
    drop(x.clone());
    Gc::make_mut(&mut x).id = 2;
    assert!(old.upgrade().is_none());
    into_garbage_loop(x);
    // The full collection starts from the buffer, where the old object
    // waits dead: it is let go of, and the fresh one is found.
    assert_eq!(gcptr::collect(), 1);
    assert_eq!(finalized(), [2]);
    assert_eq!(dropped(), [2]);
    drop(old);
    assert_eq!(gcptr::collect(), 0);
}

#[test]
fn try_unwrap_of_a_value_that_waits_in_the_reporters_buffer() {
    fresh_logs();
    let x = fin(1);
    let old = Gc::downgrade(&x);
    gcptr::collect();
    drop(x.clone());
    let value = Gc::into_inner(x).expect("the only reference");
    assert!(old.upgrade().is_none());
    assert_eq!(gcptr::collect(), 0);
    drop(old);
    drop(value);
    assert_eq!(dropped(), [1]);
    assert_eq!(finalized(), Vec::<u32>::new());
    assert_eq!(gcptr::collect(), 0);
}

/// An acyclic value: no interior mutability, and it owns only an
/// untracked object.
#[derive(Trace, Clone)]
struct Leafy {
    child: Option<Gc<u64>>,
}

#[test]
fn make_mut_and_get_mut_make_an_acyclic_object_tracked_and_counted() {
    gcptr::collect();
    // Moved (a `Weak` is alive), cloned (another `Gc`), in place.
    for case in ["move", "clone", "in place"] {
        let mut x = Gc::new(Leafy {
            child: Some(Gc::new(5)),
        });
        assert!(!gcptr::is_tracked(&x), "{case}");
        assert_eq!(
            gcptr::count()[0],
            0,
            "{case}: acyclic objects are not counted"
        );
        let weak = (case == "move").then(|| Gc::downgrade(&x));
        let other = (case == "clone").then(|| x.clone());
        Gc::make_mut(&mut x).child = None;
        assert!(gcptr::is_tracked(&x), "{case}");
        assert_eq!(gcptr::count()[0], 1, "{case}: counted once tracked");
        if let Some(weak) = weak {
            assert!(weak.upgrade().is_none(), "{case}");
        }
        if let Some(other) = &other {
            assert_eq!(other.child.as_deref(), Some(&5), "{case}");
            assert!(
                !gcptr::is_tracked(other),
                "{case}: the original stays acyclic"
            );
        }
        drop(x);
        drop(other);
        assert_eq!(gcptr::count()[0], 0, "{case}: its death is counted");
    }
}

#[test]
fn get_mut_of_a_frozen_object_brings_it_back_to_the_collections() {
    fresh_logs();
    let mut x = fin(1);
    // No `Weak`, so that `get_mut` lends the value.
    *x.me.borrow_mut() = Weak::new();
    gcptr::collect();
    gcptr::freeze();
    let frozen = gcptr::freeze_count();
    Gc::get_mut(&mut x).expect("unique").id = 2;
    assert_eq!(gcptr::freeze_count(), frozen - 1, "set aside");
    // Its next lost reference brings it back, into generation 0.
    into_garbage_loop(x);
    assert_eq!(gcptr::collect(), 1);
    assert_eq!(finalized(), [2]);
    gcptr::unfreeze();
}

// ---------------------------------------------------------------------
// `make_mut` and `try_unwrap` from a `Drop` that a full collection runs
// early (the gathering pass drops a garbage set as soon as it has traced
// it), on an object that waits its turn as a root in the reporters'
// buffer: it leaves the lists while the collection takes roots from them.

thread_local! {
    /// The object the `Dropper`s' drop works on, and what it got.
    static TARGET: RefCell<Option<Gc<Fin>>> = const { RefCell::new(None) };
    static TARGET_MODE: Cell<&'static str> = const { Cell::new("") };
}

/// A garbage node whose drop moves `TARGET`'s value (by `make_mut` or
/// `try_unwrap`) once.
#[derive(Trace)]
struct Dropper {
    next: RefCell<Option<Gc<Dropper>>>,
}

impl Drop for Dropper {
    fn drop(&mut self) {
        let Some(mut target) = TARGET.with(|t| t.borrow_mut().take()) else {
            return;
        };
        match TARGET_MODE.with(Cell::get) {
            "make_mut" => {
                Gc::make_mut(&mut target).id = 2;
                TARGET.with(|t| *t.borrow_mut() = Some(target));
            }
            "try_unwrap" => {
                let value = Gc::try_unwrap(target).ok().expect("the only reference");
                drop(value);
            }
            mode => unreachable!("{mode}"),
        }
    }
}

#[test]
fn make_mut_and_try_unwrap_of_a_waiting_root_from_an_early_drop() {
    for mode in ["make_mut", "try_unwrap"] {
        fresh_logs();
        TARGET_MODE.with(|m| m.set(mode));
        let a = Gc::new(Dropper {
            next: RefCell::new(None),
        });
        let b = Gc::new(Dropper {
            next: RefCell::new(Some(a.clone())),
        });
        *a.next.borrow_mut() = Some(b.clone());
        let target = fin(1);
        let old = Gc::downgrade(&target);
        gcptr::collect();
        // Reports, in this order: the garbage cycle first, then the
        // target, which waits behind it.
        drop(b);
        drop(a);
        drop(target.clone());
        TARGET.with(|t| *t.borrow_mut() = Some(target));
        assert_eq!(gcptr::collect(), 2, "{mode}");
        assert!(old.upgrade().is_none(), "{mode}");
        let moved = TARGET.with(|t| t.borrow_mut().take());
        match mode {
            "make_mut" => {
                let moved = moved.expect("kept by the drop");
                assert_eq!(moved.id, 2);
                into_garbage_loop(moved);
                assert_eq!(gcptr::collect(), 1, "{mode}: the fresh object is found");
                assert_eq!(finalized(), [2]);
                assert_eq!(dropped(), [2]);
            }
            _ => {
                assert!(moved.is_none());
                assert_eq!(finalized(), Vec::<u32>::new());
                assert_eq!(dropped(), [1]);
            }
        }
        drop(old);
        assert_eq!(gcptr::collect(), 0, "{mode}");
    }
}

// ---------------------------------------------------------------------
// `make_mut`'s move links the fresh object with the automatic collection
// that an allocation may start. If that collection panics, the panic
// leaves `make_mut`, and the fresh object, in no list yet, must still be
// found by later collections.

#[derive(Trace)]
#[gc(finalize)]
struct Panicky {
    next: RefCell<Option<Gc<Panicky>>>,
}

impl Finalize for Panicky {
    fn finalize(&self) {
        panic!("finalizer failed");
    }
}

#[test]
fn make_mut_whose_automatic_collection_panics_leaves_the_fresh_object_collectable() {
    fresh_logs();
    let mut x = fin(1);
    gcptr::collect();
    gcptr::set_threshold([1, 10, 10]);
    // Garbage in generation 0 whose finalizer panics, and enough
    // allocations that the next one collects (the move takes the old
    // object's count off before it adds the fresh one's).
    gcptr::disable();
    let p = Gc::new(Panicky {
        next: RefCell::new(None),
    });
    *p.next.borrow_mut() = Some(p.clone());
    drop(p);
    let filler = fin(7);
    gcptr::enable();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Gc::make_mut(&mut x).id = 2;
    }));
    gcptr::set_threshold([700, 10, 10]);
    let payload = result.expect_err("the automatic collection's panic");
    assert_eq!(support::panic_message(&payload), "finalizer failed");
    assert_eq!(x.id, 1, "`make_mut` did not return: the value is unchanged");
    assert_eq!(Gc::strong_count(&x), 1);
    assert_eq!(Gc::weak_count(&x), 0, "the fresh object");
    into_garbage_loop(x);
    assert_eq!(gcptr::collect(), 1);
    assert_eq!(finalized(), [1]);
    drop(filler);
    assert_eq!(gcptr::collect(), 0);
}

// ---------------------------------------------------------------------
// `new_cyclic`: the half-made object is in no list and no count while its
// closure runs, whatever the closure does (freeze, collect, allocate,
// panic), and it is linked once, young, when the closure returns.

#[test]
fn new_cyclic_whose_closure_freezes_and_collects_makes_a_young_object() {
    fresh_logs();
    let frozen_before = {
        let keep = fin(9);
        gcptr::collect();
        (keep, gcptr::freeze_count())
    };
    assert_eq!(frozen_before.1, 0);
    let x = Gc::new_cyclic(|me: &Weak<Fin>| {
        assert!(me.upgrade().is_none());
        gcptr::freeze();
        // A garbage loop made and collected while the object is half made.
        into_garbage_loop(fin(3));
        assert_eq!(gcptr::collect(), 1);
        Fin {
            id: 1,
            me: RefCell::new(me.clone()),
            next: RefCell::new(None),
        }
    });
    assert_eq!(finalized(), [3]);
    assert_eq!(gcptr::freeze_count(), 1, "only the object frozen before");
    assert_eq!(gcptr::count()[0], 1, "the new object is young");
    assert!(Gc::ptr_eq(&x.me.borrow().upgrade().unwrap(), &x));
    into_garbage_loop(x);
    assert_eq!(gcptr::collect(), 1, "found, frozen objects or not");
    assert_eq!(finalized(), [1]);
    gcptr::unfreeze();
    drop(frozen_before);
    assert_eq!(finalized(), [9]);
}

#[test]
fn new_cyclic_whose_closure_freezes_and_panics_leaves_nothing_linked() {
    fresh_logs();
    let kept_weak: RefCell<Option<Weak<Fin>>> = RefCell::new(None);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Gc::new_cyclic(|me: &Weak<Fin>| {
            *kept_weak.borrow_mut() = Some(me.clone());
            gcptr::freeze();
            panic!("closure failed")
        })
    }));
    assert!(result.is_err());
    assert_eq!(gcptr::freeze_count(), 0);
    assert_eq!(gcptr::count()[0], 0);
    gcptr::unfreeze();
    assert_eq!(gcptr::collect(), 0);
    let weak = kept_weak.take().unwrap();
    assert!(weak.upgrade().is_none());
    drop(weak);
    assert_eq!(
        finalized(),
        Vec::<u32>::new(),
        "never made, never finalized"
    );
    assert_eq!(dropped(), Vec::<u32>::new());
}

/// An acyclic type that refers to itself weakly.
#[derive(Trace)]
struct SelfAware {
    me: Weak<SelfAware>,
    child: Option<Gc<u64>>,
}

#[test]
fn new_cyclic_of_an_acyclic_value() {
    let x = Gc::new_cyclic(|me| SelfAware {
        me: me.clone(),
        child: Some(Gc::new(4)),
    });
    assert!(!gcptr::is_tracked(&x));
    assert_eq!(gcptr::count()[0], 0);
    let again = x.me.upgrade().expect("alive");
    assert!(Gc::ptr_eq(&again, &x));
    drop(again);
    assert_eq!(gcptr::collect(), 0);
    let weak = x.me.clone();
    drop(x);
    assert!(weak.upgrade().is_none());
}

// ---------------------------------------------------------------------
// Thread exit: the same moves in a thread-local's destructor that runs
// after the collector is gone (other thread-locals' destructors used up its
// exit guards). A value resurrected by
// its finalizer and then moved is finalized once, and its drop comes once.

struct LateMover(std::sync::mpsc::Sender<String>);

/// A finalized type that reports over a channel (the tests' logs may be
/// gone this late in thread exit).
#[derive(Trace)]
#[gc(finalize)]
struct Late {
    #[gc(skip)]
    id: u32,
    #[gc(skip)]
    tx: std::sync::mpsc::Sender<String>,
    me: RefCell<Weak<Late>>,
    next: RefCell<Option<Gc<Late>>>,
}

thread_local! {
    static LATE_KEPT: RefCell<Option<Gc<Late>>> = const { RefCell::new(None) };
    static LATE: RefCell<Option<LateMover>> = const { RefCell::new(None) };
}

impl Clone for Late {
    fn clone(&self) -> Late {
        unreachable!("a move, not a clone")
    }
}

impl Finalize for Late {
    fn finalize(&self) {
        let _ = self.tx.send(format!("finalize {}", self.id));
        if let Some(me) = self.me.borrow().upgrade() {
            let _ = LATE_KEPT.try_with(|k| *k.borrow_mut() = Some(me));
        }
    }
}

impl Drop for Late {
    fn drop(&mut self) {
        let _ = self.tx.send(format!("drop {}", self.id));
    }
}

impl Drop for LateMover {
    fn drop(&mut self) {
        let send = |s: String| {
            let _ = self.0.send(s);
        };
        send(format!("threshold {:?}", gcptr::threshold()));
        let x = Gc::new(Late {
            id: 1,
            tx: self.0.clone(),
            me: RefCell::new(Weak::new()),
            next: RefCell::new(None),
        });
        *x.me.borrow_mut() = Gc::downgrade(&x);
        drop(x);
        let Some(mut x) = LATE_KEPT.try_with(|k| k.borrow_mut().take()).ok().flatten() else {
            send("not resurrected".into());
            return;
        };
        Gc::make_mut(&mut x).id = 2;
        send(format!("moved, tracked {}", gcptr::is_tracked(&x)));
        drop(x);
        send("done".into());
    }
}

#[test]
fn make_mut_of_a_resurrected_value_after_the_collector_is_gone() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Registered first, so destroyed after the collector's guards,
        // and after the fillers, which use up the guards.
        LATE_KEPT.with(|_| ());
        LATE.with(|l| *l.borrow_mut() = Some(LateMover(tx)));
        support::touch_exit_guard_fillers();
        drop(fin(0));
        support::fill_exit_guard_fillers(1000);
    })
    .join()
    .unwrap();
    let events: Vec<String> = rx.try_iter().collect();
    assert_eq!(
        events,
        [
            "threshold [0, 0, 0]",
            "finalize 1",
            "moved, tracked true",
            "drop 2",
            "done"
        ]
    );
}

// ---------------------------------------------------------------------
// A hand-written trace that runs code (within `Trace`'s contract: it
// leaves `self` alone) and calls `make_mut` or `try_unwrap` on a `Gc` it
// finds elsewhere, while an analysis runs. The collector reports that as
// a misuse, with a panic; the panic must change nothing else: no memory
// left behind (Miri's leak check), no object leaked with its value
// undropped, no reference lost or made.

thread_local! {
    /// What `Misuser`'s next trace does: "make_mut", "try_unwrap" or "".
    static MISUSE_IN_TRACE: Cell<&'static str> = const { Cell::new("") };
    /// The object it does it to.
    static MISUSE_TARGET: RefCell<Option<Gc<Fin>>> = const { RefCell::new(None) };
}

struct Misuser {
    next: RefCell<Option<Gc<Misuser>>>,
}

// SAFETY: visits the one `Gc` it owns, and changes nothing of `self`.
unsafe impl Trace for Misuser {
    fn trace(&self, tracer: &mut gcptr::Tracer) {
        match MISUSE_IN_TRACE.with(|m| m.replace("")) {
            "make_mut" => MISUSE_TARGET.with(|t| {
                if let Some(target) = t.borrow_mut().as_mut() {
                    Gc::make_mut(target).id += 1;
                }
            }),
            "try_unwrap" => {
                let target = MISUSE_TARGET.with(|t| t.borrow_mut().take());
                drop(target.and_then(Gc::into_inner));
            }
            _ => {}
        }
        self.next.trace(tracer);
    }
}

/// A tracked `Misuser` that reported a lost reference, so that the next
/// full collection traces it; and a `Weak` to `MISUSE_TARGET`'s object.
fn misuse_setup(mode: &'static str) -> (Gc<Misuser>, Weak<Fin>) {
    fresh_logs();
    let target = fin(1);
    let weak = Gc::downgrade(&target);
    MISUSE_TARGET.with(|t| *t.borrow_mut() = Some(target));
    let misuser = Gc::new(Misuser {
        next: RefCell::new(None),
    });
    drop(misuser.clone());
    MISUSE_IN_TRACE.with(|m| m.set(mode));
    (misuser, weak)
}

fn collect_expecting_the_misuse_panic() {
    let payload = std::panic::catch_unwind(gcptr::collect).expect_err("the misuse is reported");
    let message = support::panic_message(&payload);
    assert!(message.contains("move a value out"), "{message}");
}

#[test]
fn make_mut_from_a_trace_changes_nothing_and_leaks_nothing() {
    let (misuser, weak) = misuse_setup("make_mut");
    collect_expecting_the_misuse_panic();
    let target = MISUSE_TARGET.with(|t| t.borrow_mut().take()).unwrap();
    assert!(Gc::ptr_eq(&weak.upgrade().unwrap(), &target), "not moved");
    assert_eq!(target.id, 1);
    assert_eq!((Gc::strong_count(&target), Gc::weak_count(&target)), (1, 2));
    drop(target);
    drop(misuser);
    assert_eq!(finalized(), [1]);
    assert_eq!(dropped(), [1]);
    assert_eq!(gcptr::collect(), 0);
}

/// The same with `try_unwrap`: the trace gave its `Gc` up, so the object
/// dies by count (once the analysis is over), as if the trace had dropped
/// it; it is not leaked with its value undropped.
#[test]
fn try_unwrap_from_a_trace_drops_the_reference_it_was_given() {
    let (misuser, weak) = misuse_setup("try_unwrap");
    collect_expecting_the_misuse_panic();
    assert!(weak.upgrade().is_none(), "its last reference is gone");
    assert_eq!(finalized(), [1], "it died by count");
    assert_eq!(dropped(), [1]);
    drop(misuser);
    assert_eq!(gcptr::collect(), 0);
}

// ---------------------------------------------------------------------
// `freeze` from a finalizer that a death by count runs (no collection
// under way, so it acts): the dying object is frozen with the rest, and
// leaves the permanent generation as it dies, or, resurrected, stays
// frozen until `make_mut` moves its value out.

#[derive(Trace)]
#[gc(finalize)]
struct FreezingFin {
    me: RefCell<Weak<FreezingFin>>,
    #[gc(skip)]
    resurrect: bool,
    edge: RefCell<Option<Gc<FreezingFin>>>,
}

impl Clone for FreezingFin {
    fn clone(&self) -> Self {
        unreachable!("a move, not a clone")
    }
}

thread_local! {
    static FROZEN_KEPT: RefCell<Option<Gc<FreezingFin>>> = const { RefCell::new(None) };
    static FREEZING_FINALIZED: Cell<u32> = const { Cell::new(0) };
}

impl Finalize for FreezingFin {
    fn finalize(&self) {
        FREEZING_FINALIZED.with(|f| f.set(f.get() + 1));
        gcptr::freeze();
        if self.resurrect {
            FROZEN_KEPT.with(|k| *k.borrow_mut() = self.me.borrow().upgrade());
        }
    }
}

#[test]
fn freeze_from_a_finalizer_run_by_count() {
    for resurrect in [false, true] {
        gcptr::unfreeze();
        let other = fin(9);
        let x = Gc::new(FreezingFin {
            me: RefCell::new(Weak::new()),
            resurrect,
            edge: RefCell::new(None),
        });
        *x.me.borrow_mut() = Gc::downgrade(&x);
        drop(x);
        assert_eq!(FREEZING_FINALIZED.with(|f| f.replace(0)), 1);
        let kept = FROZEN_KEPT.with(|k| k.borrow_mut().take());
        assert_eq!(kept.is_some(), resurrect);
        // `other`, and the resurrected object.
        assert_eq!(gcptr::freeze_count(), 1 + usize::from(resurrect));
        if let Some(mut kept) = kept {
            Gc::make_mut(&mut kept);
            assert_eq!(gcptr::freeze_count(), 1, "the old object left");
            *kept.edge.borrow_mut() = Some(kept.clone());
            drop(kept);
            assert_eq!(gcptr::collect(), 1);
            assert_eq!(
                FREEZING_FINALIZED.with(|f| f.replace(0)),
                0,
                "finalized once"
            );
        }
        gcptr::unfreeze();
        drop(other);
        assert_eq!(gcptr::collect(), 0);
    }
}

//! Thread exit, and the thread-locals destroyed after the collector's first
//! exit guard.
//!
//! Thread-locals are destroyed in the reverse order of their first use. One
//! first used before the thread's first tracked `Gc` is destroyed after the
//! collector's first exit collection, and may hold objects that collection
//! found alive. The collector keeps its state for them (parked), or frees
//! it if none is left, and each later destructor that uses it brings it
//! back (or gets a new one), with a guard that collects as soon as that
//! destructor returns (`gcptr/src/collector/state.rs`).
//!
//! Each test runs in a thread of its own and reports over a channel: the
//! test's own thread-locals may be gone by the time the objects die. Under
//! Miri, the leak check also sees that every object, and every buffer of
//! the state (which lives in thread-local memory), is freed in the end. The second half, from a review of the change, meets the state
//! parked, freed (and unset), or gone on more paths: objects set aside by
//! `get_mut`, callback weak references, weak maps, `freeze`, `make_mut`,
//! panics.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::{self, LocalKey};

use gcptr::{Finalize, Gc, Trace, WeakValueMap, WeakWithCallback};

/// A tracked node that reports its finalizer and its drop.
#[derive(Trace, Clone)]
#[gc(finalize)]
struct Node {
    #[gc(skip)]
    id: u32,
    #[gc(skip)]
    tx: Sender<String>,
    edges: RefCell<Vec<Gc<Node>>>,
    /// Where the finalizer puts the node's first edge, if anywhere (the
    /// node itself, in a self-loop: its weak references are cleared by
    /// then).
    #[gc(skip)]
    resurrect_into: Option<&'static LocalKey<RefCell<Vec<Gc<Node>>>>>,
    /// Touched by the finalizer, if set: a thread-local that may be gone
    /// (`with` panics then: a panic the collection must survive).
    #[gc(skip)]
    touch_in_finalize: Option<&'static LocalKey<RefCell<Option<Late>>>>,
}

impl Finalize for Node {
    fn finalize(&self) {
        let _ = self.tx.send(format!("finalize {}", self.id));
        if let (Some(key), Some(edge)) = (self.resurrect_into, self.edges.borrow().first()) {
            let _ = key.try_with(|kept| kept.borrow_mut().push(edge.clone()));
        }
        if let Some(key) = self.touch_in_finalize {
            key.with(|_| ());
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.tx.send(format!("drop {}", self.id));
    }
}

fn node(id: u32, tx: &Sender<String>) -> Gc<Node> {
    Gc::new(Node {
        id,
        tx: tx.clone(),
        edges: RefCell::new(Vec::new()),
        resurrect_into: None,
        touch_in_finalize: None,
    })
}

fn link(from: &Gc<Node>, to: &Gc<Node>) {
    from.edges.borrow_mut().push(to.clone());
}

/// A two-node cycle, `a -> b -> a`; returns `a`.
fn cycle(a: u32, b: u32, tx: &Sender<String>) -> Gc<Node> {
    let (a, b) = (node(a, tx), node(b, tx));
    link(&a, &b);
    link(&b, &a);
    a
}

/// Runs `body` on a thread of its own, joins it, and returns what its
/// objects reported, in order.
fn on_a_thread(body: impl FnOnce(Sender<String>) + Send + 'static) -> Vec<String> {
    let (tx, rx): (Sender<String>, Receiver<String>) = channel();
    thread::spawn(move || body(tx)).join().unwrap();
    rx.try_iter().collect()
}

fn sorted(mut events: Vec<String>) -> Vec<String> {
    events.sort();
    events
}

thread_local! {
    static HELD_A: RefCell<Vec<Gc<Node>>> = const { RefCell::new(Vec::new()) };
    static HELD_B: RefCell<Vec<Gc<Node>>> = const { RefCell::new(Vec::new()) };
}

/// Touches `key` now, so that it is destroyed after the collector's first
/// exit guard (this must come before the thread's first `Gc`).
fn touch_early(key: &'static LocalKey<RefCell<Vec<Gc<Node>>>>) {
    key.with(|held| assert!(held.borrow().is_empty()));
}

#[test]
fn a_cycle_held_by_a_thread_local_destroyed_after_the_first_guard_is_reclaimed() {
    let events = on_a_thread(|tx| {
        touch_early(&HELD_A);
        let a = node(1, &tx);
        let b = node(2, &tx);
        link(&a, &b);
        link(&b, &a);
        HELD_A.with(|held| held.borrow_mut().push(a));
    });
    // Both finalizers run before either drop: the late guard's collection
    // found the cycle whole.
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(
        sorted(events[..2].to_vec()),
        ["finalize 1", "finalize 2"],
        "{events:?}"
    );
    assert_eq!(
        sorted(events[2..].to_vec()),
        ["drop 1", "drop 2"],
        "{events:?}"
    );
}

#[test]
fn a_cycle_held_by_two_thread_locals_is_reclaimed_when_the_second_goes() {
    let events = on_a_thread(|tx| {
        // HELD_A first, so destroyed last.
        touch_early(&HELD_A);
        touch_early(&HELD_B);
        let a = node(1, &tx);
        let b = node(2, &tx);
        link(&a, &b);
        link(&b, &a);
        HELD_A.with(|held| held.borrow_mut().push(a));
        HELD_B.with(|held| held.borrow_mut().push(b));
        let _ = tx.send("thread done".into());
    });
    // HELD_B's loss alone leaves the cycle reachable from HELD_A: the guard
    // after it finds nothing, and parks the state again; the guard after
    // HELD_A's reclaims the cycle.
    assert_eq!(events[0], "thread done");
    assert_eq!(sorted(events[1..3].to_vec()), ["finalize 1", "finalize 2"]);
    assert_eq!(sorted(events[3..].to_vec()), ["drop 1", "drop 2"]);
}

#[test]
fn objects_a_late_thread_local_frees_by_count_free_the_parked_state() {
    let events = on_a_thread(|tx| {
        touch_early(&HELD_A);
        // A chain, no cycle: it dies by count when HELD_A goes, and with it
        // the last object the parked state waits for: the guard after that
        // drops the state (Miri's leak check sees its buffers freed).
        let head = node(1, &tx);
        let mut last = head.clone();
        for id in 2..=4 {
            let next = node(id, &tx);
            link(&last, &next);
            last = next;
        }
        drop(last);
        HELD_A.with(|held| held.borrow_mut().push(head));
    });
    assert_eq!(
        events,
        [
            "finalize 1",
            "drop 1",
            "finalize 2",
            "drop 2",
            "finalize 3",
            "drop 3",
            "finalize 4",
            "drop 4"
        ]
    );
}

/// A thread-local value whose destructor uses gcptr: drops what it holds,
/// makes a new cycle and lets it go, and collects.
struct LateWorker {
    tx: Sender<String>,
    held: Vec<Gc<Node>>,
}

impl Drop for LateWorker {
    fn drop(&mut self) {
        // The state is parked: the question reads it where it lies, and
        // the first object made brings it back.
        let _ = self.tx.send(format!("enabled {}", gcptr::is_enabled()));
        let x = node(10, &self.tx);
        let y = node(11, &self.tx);
        link(&x, &y);
        link(&y, &x);
        drop((x, y));
        self.held.clear();
        let _ = self.tx.send(format!("collected {}", gcptr::collect()));
        // Another cycle, left to the guard that runs after this destructor.
        let z = node(20, &self.tx);
        link(&z, &z);
        let _ = self.tx.send("worker done".into());
    }
}

thread_local! {
    static WORKER: RefCell<Option<LateWorker>> = const { RefCell::new(None) };
}

#[test]
fn a_late_destructor_collects_and_its_last_cycle_is_reclaimed_after_it() {
    let events = on_a_thread(|tx| {
        WORKER.with(|w| assert!(w.borrow().is_none()));
        let a = node(1, &tx);
        let b = node(2, &tx);
        link(&a, &b);
        link(&b, &a);
        WORKER.with(|w| {
            *w.borrow_mut() = Some(LateWorker {
                tx: tx.clone(),
                held: vec![a],
            })
        });
    });
    assert_eq!(events[0], "enabled true", "{events:?}");
    // `collect()` in the destructor finds both cycles: {10, 11} and the
    // one it held, {1, 2}.
    let collected = events
        .iter()
        .position(|e| e.starts_with("collected"))
        .unwrap();
    assert_eq!(events[collected], "collected 4", "{events:?}");
    assert_eq!(
        sorted(events[1..collected].to_vec()),
        [
            "drop 1",
            "drop 10",
            "drop 11",
            "drop 2",
            "finalize 1",
            "finalize 10",
            "finalize 11",
            "finalize 2"
        ]
    );
    // The self-loop it made last is reclaimed by the guard after it.
    assert_eq!(
        events[collected + 1..],
        ["worker done", "finalize 20", "drop 20"]
    );
}

/// A thread-local value with no `Gc` of its own whose destructor makes a
/// cycle and lets it go.
struct CycleMaker(Sender<String>);

impl Drop for CycleMaker {
    fn drop(&mut self) {
        // The first guard found nothing left to wait for and freed the
        // state: a new one tracks these.
        let a = node(30, &self.0);
        let b = node(31, &self.0);
        link(&a, &b);
        link(&b, &a);
        let _ = self.0.send(format!("tracked {}", gcptr::is_tracked(&a)));
    }
}

thread_local! {
    static CYCLE_MAKER: RefCell<Option<CycleMaker>> = const { RefCell::new(None) };
}

#[test]
fn a_cycle_made_by_a_destructor_after_the_state_was_freed_is_reclaimed() {
    let events = on_a_thread(|tx| {
        CYCLE_MAKER.with(|m| assert!(m.borrow().is_none()));
        // A tracked object, dead before the thread ends: the first guard
        // has a state to free, and nothing to wait for.
        drop(node(1, &tx));
        CYCLE_MAKER.with(|m| *m.borrow_mut() = Some(CycleMaker(tx.clone())));
    });
    assert_eq!(events[..3], ["finalize 1", "drop 1", "tracked true"]);
    assert_eq!(
        sorted(events[3..5].to_vec()),
        ["finalize 30", "finalize 31"]
    );
    assert_eq!(sorted(events[5..].to_vec()), ["drop 30", "drop 31"]);
}

thread_local! {
    static RESURRECTED: RefCell<Vec<Gc<Node>>> = const { RefCell::new(Vec::new()) };
}

#[test]
fn a_cycle_a_late_guard_resurrects_is_finalized_once_and_dropped_later() {
    let events = on_a_thread(|tx| {
        // RESURRECTED first: destroyed after HELD_A, so the finalizer that
        // runs after HELD_A's destructor can put the node there.
        touch_early(&RESURRECTED);
        touch_early(&HELD_A);
        let a = Gc::new(Node {
            id: 1,
            tx: tx.clone(),
            edges: RefCell::new(Vec::new()),
            resurrect_into: Some(&RESURRECTED),
            touch_in_finalize: None,
        });
        link(&a, &a);
        HELD_A.with(|held| held.borrow_mut().push(a));
    });
    // Finalized by the guard after HELD_A's destructor, and resurrected;
    // dropped when RESURRECTED goes, by the guard after it, and not
    // finalized again.
    assert_eq!(events, ["finalize 1", "drop 1"]);
}

macro_rules! many_thread_locals {
    ($($key:ident)*) => {
        thread_local! {
            $(static $key: RefCell<Vec<Gc<Node>>> = const { RefCell::new(Vec::new()) };)*
        }
        const MANY: &[&LocalKey<RefCell<Vec<Gc<Node>>>>] = &[$(&$key),*];
    };
}

many_thread_locals!(L0 L1 L2 L3 L4 L5 L6 L7 L8 L9 L10 L11 L12 L13 L14 L15 L16 L17 L18 L19);

#[test]
fn more_late_destructors_than_guards_still_free_every_object() {
    let events = on_a_thread(|tx| {
        for key in MANY {
            touch_early(key);
        }
        // Each thread-local holds one node of a chain, which the next one
        // holds too: every destructor after the first guard lets go of an
        // object, using a guard each, until the guards run out and the
        // survivors become plain reference-counted objects.
        let nodes: Vec<_> = (0..MANY.len() as u32).map(|id| node(id, &tx)).collect();
        for pair in nodes.windows(2) {
            link(&pair[0], &pair[1]);
        }
        for (key, n) in MANY.iter().zip(nodes) {
            key.with(|held| held.borrow_mut().push(n));
        }
    });
    // The last-touched thread-local goes first, but its node is held by the
    // one before: the chain dies from its head, L0's node, when L0 goes.
    let expected: Vec<String> = (0..MANY.len())
        .flat_map(|id| [format!("finalize {id}"), format!("drop {id}")])
        .collect();
    assert_eq!(events, expected);
}

#[test]
fn a_cycle_the_first_of_many_late_destructors_lets_go_is_reclaimed() {
    // The first late destructor lets go of a cycle, which the guard after
    // it reclaims; then more destructors than there are guards let go of
    // objects that die by count, with or without a state. (A cycle let go
    // after the guards run out would leak, which a leak checker reports.)
    let events = on_a_thread(|tx| {
        for key in MANY {
            touch_early(key);
        }
        let a = node(100, &tx);
        link(&a, &a);
        // The last key is destroyed first.
        MANY[MANY.len() - 1].with(|held| held.borrow_mut().push(a));
        // Every other key holds a lone node, dying by count.
        for (id, key) in MANY[..MANY.len() - 1].iter().enumerate() {
            let n = node(id as u32, &tx);
            key.with(|held| held.borrow_mut().push(n));
        }
    });
    assert_eq!(events[..2], ["finalize 100", "drop 100"], "{events:?}");
    assert_eq!(events.len(), 2 + 2 * (MANY.len() - 1));
}

/// A late destructor: runs its closure when its thread-local is destroyed.
struct Late(Option<Box<dyn FnOnce()>>);

impl Drop for Late {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

thread_local! {
    static LATE_1: RefCell<Option<Late>> = const { RefCell::new(None) };
    static LATE_2: RefCell<Option<Late>> = const { RefCell::new(None) };
    /// Touched after the thread's first `Gc`: destroyed before the first
    /// exit guard runs.
    static EARLY: RefCell<Option<Late>> = const { RefCell::new(None) };
}

/// Touches `key` now: call before the thread's first use of gcptr, so that
/// it is destroyed after the collector's first exit guard (keys touched
/// later are destroyed earlier).
fn touch(key: &'static LocalKey<RefCell<Option<Late>>>) {
    key.with(|late| assert!(late.borrow().is_none()));
}

/// Has `f` run when `key` is destroyed.
fn at_destruction(key: &'static LocalKey<RefCell<Option<Late>>>, f: impl FnOnce() + 'static) {
    key.with(|late| *late.borrow_mut() = Some(Late(Some(Box::new(f)))));
}

// ---------------------------------------------------------------------
// A review of the above, with late destructors as closures (`Late`). The
// holes it found: each failed before its fix.

/// An object that `Gc::get_mut` set aside is in no list: the first exit
/// guard sees no survivor and frees the state. The object's next lost
/// reference, from a later destructor, must bring a collector back (a new
/// state and a guard): it closes a cycle that nothing else would reclaim.
#[test]
fn a_set_aside_object_left_when_the_state_was_freed_is_collected_later() {
    let events = on_a_thread(|tx| {
        touch(&LATE_1);
        let mut a = node(1, &tx);
        // Set aside (unlinked); it comes back only at its next lost
        // reference. The self-loop below loses none.
        Gc::get_mut(&mut a).unwrap();
        let again = a.clone();
        a.edges.borrow_mut().push(again);
        at_destruction(&LATE_1, move || drop(a));
    });
    assert_eq!(events, ["finalize 1", "drop 1"]);
}

/// A `WeakWithCallback` made before the state was freed (at the first
/// exit guard, which found no survivor), and that dies later in garbage
/// with its object: its callback must not run (the type's docs, CPython's
/// rule), whichever state the garbage is collected by.
#[test]
fn a_callback_weak_in_garbage_made_after_the_state_was_freed_is_cancelled() {
    let events = on_a_thread(|tx| {
        touch(&LATE_1);
        let x = Gc::new(String::from("target"));
        let called = tx.clone();
        let weak = Gc::downgrade_with(&x, move || {
            let _ = called.send("callback".into());
        });
        at_destruction(&LATE_1, move || {
            // A new state: the first guard freed the old one.
            let holder = Gc::new(Holder {
                x,
                weak,
                next: RefCell::new(None),
                tx: tx.clone(),
            });
            *holder.next.borrow_mut() = Some(holder.clone());
        });
    });
    assert_eq!(events, ["holder dropped"]);
}

/// `x` first: its drop kills the watched object while `weak` still lives,
/// so only the cancellation keeps the callback from running.
#[derive(Trace)]
struct Holder {
    x: Gc<String>,
    weak: WeakWithCallback<String>,
    next: RefCell<Option<Gc<Holder>>>,
    #[gc(skip)]
    tx: Sender<String>,
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.tx.send("holder dropped".into());
    }
}

/// The same garbage, collected while the thread runs: the rule the test
/// above expects at thread exit.
#[test]
fn a_callback_weak_in_garbage_with_its_object_is_cancelled() {
    let events = on_a_thread(|tx| {
        let x = Gc::new(String::from("target"));
        let called = tx.clone();
        let weak = Gc::downgrade_with(&x, move || {
            let _ = called.send("callback".into());
        });
        let holder = Gc::new(Holder {
            x,
            weak,
            next: RefCell::new(None),
            tx: tx.clone(),
        });
        *holder.next.borrow_mut() = Some(holder.clone());
        drop(holder);
        assert_eq!(gcptr::collect(), 1);
    });
    assert_eq!(events, ["holder dropped"]);
}

// Paths the other tests did not take: regression tests.

/// `freeze` from a late destructor, after it let go of a cycle: the frozen
/// garbage is reclaimed by the guard that follows.
#[test]
fn a_cycle_frozen_by_a_late_destructor_is_reclaimed() {
    let events = on_a_thread(|tx| {
        touch(&LATE_1);
        let c = cycle(1, 2, &tx);
        let kept = node(3, &tx);
        let done = tx.clone();
        at_destruction(&LATE_1, move || {
            drop(c);
            gcptr::freeze();
            let _ = done.send(format!("frozen {}", gcptr::freeze_count()));
            drop(kept);
        });
    });
    assert_eq!(events[0], "frozen 3", "{events:?}");
    // `kept` dies by count, then the guard finds the cycle whole.
    assert_eq!(events[1..3], ["finalize 3", "drop 3"], "{events:?}");
    assert_eq!(
        sorted(events[3..].to_vec()),
        ["drop 1", "drop 2", "finalize 1", "finalize 2"],
        "{events:?}"
    );
    assert_eq!(sorted(events[3..5].to_vec()), ["finalize 1", "finalize 2"]);
}

/// A `freeze` with nothing to collect, then nothing else: the guard after
/// it thaws the frozen survivor and parks again; the survivor dies by count
/// from a later destructor.
#[test]
fn a_survivor_frozen_by_a_late_destructor_still_dies_once() {
    let events = on_a_thread(|tx| {
        touch(&LATE_2);
        touch(&LATE_1);
        let c = cycle(1, 2, &tx);
        at_destruction(&LATE_1, gcptr::freeze);
        at_destruction(&LATE_2, move || drop(c));
    });
    assert_eq!(
        sorted(events),
        ["drop 1", "drop 2", "finalize 1", "finalize 2"]
    );
}

/// A `WeakValueMap` held by a later thread-local than the cycle its values
/// are in: the entries go when the guard after the cycle's destructor
/// reclaims it, and the map's `len()` says so.
#[test]
fn a_weak_value_map_held_by_a_late_thread_local_loses_the_collected_entries() {
    let events = on_a_thread(|tx| {
        touch(&LATE_2);
        touch(&LATE_1);
        let c = cycle(1, 2, &tx);
        let alive = node(3, &tx);
        let mut map = WeakValueMap::new();
        map.insert(1, &c);
        map.insert(2, &c.edges.borrow()[0]);
        map.insert(3, &alive);
        at_destruction(&LATE_1, move || drop(c));
        let report = tx.clone();
        at_destruction(&LATE_2, move || {
            let _ = report.send(format!(
                "map {} {} {}",
                map.len(),
                map.contains_key(&1),
                map.contains_key(&3)
            ));
            drop(map);
            drop(alive);
        });
    });
    assert_eq!(
        sorted(events[..4].to_vec()),
        ["drop 1", "drop 2", "finalize 1", "finalize 2"],
        "{events:?}"
    );
    assert_eq!(events[4..], ["map 1 false true", "finalize 3", "drop 3"]);
}

/// A `WeakWithCallback` held by a later thread-local than the cycle it
/// watches: the callback runs once, when the late guard reclaims the
/// cycle, and the handle no longer upgrades.
#[test]
fn a_callback_weak_held_by_a_late_thread_local_is_called_once() {
    let events = on_a_thread(|tx| {
        touch(&LATE_2);
        touch(&LATE_1);
        let c = cycle(1, 2, &tx);
        let called = tx.clone();
        let weak = Gc::downgrade_with(&c, move || {
            let _ = called.send("callback".into());
        });
        at_destruction(&LATE_1, move || drop(c));
        let report = tx.clone();
        at_destruction(&LATE_2, move || {
            let _ = report.send(format!(
                "pending {} upgrades {}",
                weak.is_pending(),
                weak.upgrade().is_some()
            ));
        });
    });
    assert_eq!(events[0], "callback", "{events:?}");
    assert_eq!(
        sorted(events[1..5].to_vec()),
        ["drop 1", "drop 2", "finalize 1", "finalize 2"]
    );
    assert_eq!(events[5..], ["pending false upgrades false"]);
}

/// `Gc::get_mut` on a survivor of the parked state, which the late
/// destructor then closes into a cycle: the guard after it reclaims it.
#[test]
fn get_mut_on_a_parked_survivor_then_a_cycle_is_reclaimed() {
    let events = on_a_thread(|tx| {
        touch(&LATE_1);
        let mut a = node(1, &tx);
        let done = tx.clone();
        at_destruction(&LATE_1, move || {
            let edges = Gc::get_mut(&mut a).unwrap().edges.get_mut();
            assert!(edges.is_empty());
            link(&a, &a);
            drop(a);
            let _ = done.send("dropped".into());
        });
    });
    assert_eq!(events, ["dropped", "finalize 1", "drop 1"]);
}

/// `Gc::make_mut` on a survivor of the parked state that a `Weak` watches
/// (the value moves to a fresh object), then a cycle through the fresh
/// object: the guard reclaims it, once; the `Weak` stays with the old one.
#[test]
fn make_mut_on_a_parked_survivor_then_a_cycle_is_reclaimed() {
    let events = on_a_thread(|tx| {
        touch(&LATE_1);
        let mut a = node(1, &tx);
        let weak = Gc::downgrade(&a);
        let done = tx.clone();
        at_destruction(&LATE_1, move || {
            Gc::make_mut(&mut a).id = 2;
            assert!(weak.upgrade().is_none());
            link(&a, &a);
            drop(a);
            let _ = done.send("dropped".into());
        });
    });
    assert_eq!(events, ["dropped", "finalize 2", "drop 2"]);
}

/// A `Drop` that panics in a late destructor, after that destructor let go
/// of a cycle (which woke the state): the destructor catches the panic,
/// and the guard after it still reclaims the cycle; the panicking object
/// is dropped once.
#[test]
fn a_panic_in_a_late_destructor_after_it_woke_the_state_loses_nothing() {
    #[derive(Trace)]
    struct Panicky {
        #[gc(skip)]
        tx: Sender<String>,
        next: RefCell<Option<Gc<Node>>>,
    }
    impl Drop for Panicky {
        fn drop(&mut self) {
            let _ = self.tx.send("panicky dropped".into());
            panic!("a late drop panics");
        }
    }
    let events = on_a_thread(|tx| {
        touch(&LATE_1);
        let c = cycle(1, 2, &tx);
        let p = Gc::new(Panicky {
            tx: tx.clone(),
            next: RefCell::new(Some(node(3, &tx))),
        });
        let done = tx.clone();
        at_destruction(&LATE_1, move || {
            drop(c);
            let caught = panic::catch_unwind(AssertUnwindSafe(|| drop(p)));
            assert!(caught.is_err());
            let _ = done.send("caught".into());
        });
    });
    assert_eq!(
        events[..4],
        ["panicky dropped", "finalize 3", "drop 3", "caught"],
        "{events:?}"
    );
    assert_eq!(
        sorted(events[4..].to_vec()),
        ["drop 1", "drop 2", "finalize 1", "finalize 2"],
        "{events:?}"
    );
}

/// A finalizer that a late guard runs, and that touches a thread-local
/// destroyed already: its panic is dropped (thread exit), and the cycle is
/// still reclaimed whole, each object finalized and dropped once.
#[test]
fn a_finalizer_run_by_a_late_guard_that_touches_a_destroyed_thread_local() {
    let events = on_a_thread(|tx| {
        touch(&LATE_1);
        let a = Gc::new(Node {
            id: 1,
            tx: tx.clone(),
            edges: RefCell::new(Vec::new()),
            resurrect_into: None,
            touch_in_finalize: Some(&EARLY),
        });
        let b = node(2, &tx);
        link(&a, &b);
        link(&b, &a);
        // After the first `Gc`: destroyed before the first guard, and so
        // before LATE_1 and the guard that follows it.
        EARLY.with(|early| assert!(early.borrow().is_none()));
        at_destruction(&LATE_1, move || drop((a, b)));
    });
    assert_eq!(
        sorted(events),
        ["drop 1", "drop 2", "finalize 1", "finalize 2"]
    );
}

/// A thread that leaks a tracked object (`mem::forget`): the state waits
/// for it for ever (the thread's end frees the state's memory:
/// `thread_exit_pthread_key.rs`), but the thread still exits, and a cycle
/// a late destructor lets go is still reclaimed. Natively only: Miri and
/// the leak sanitizer report the leaked object.
#[test]
#[cfg_attr(miri, ignore = "leaks on purpose")]
fn a_thread_that_forgets_a_tracked_object_still_reclaims_late_cycles() {
    if std::env::var_os("LSAN_OPTIONS").is_some() {
        return;
    }
    let events = on_a_thread(|tx| {
        touch(&LATE_1);
        std::mem::forget(cycle(1, 2, &tx));
        let c = cycle(3, 4, &tx);
        at_destruction(&LATE_1, move || drop(c));
    });
    assert_eq!(
        sorted(events),
        ["drop 3", "drop 4", "finalize 3", "finalize 4"]
    );
}

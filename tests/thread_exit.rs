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
//! Miri, the leak check also sees that the parked state is freed in the
//! end.

use std::cell::RefCell;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::{self, LocalKey};

use gcptr::{Finalize, Gc, Trace};

/// A tracked node that reports its finalizer and its drop.
#[derive(Trace)]
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
}

impl Finalize for Node {
    fn finalize(&self) {
        let _ = self.tx.send(format!("finalize {}", self.id));
        if let (Some(key), Some(edge)) = (self.resurrect_into, self.edges.borrow().first()) {
            let _ = key.try_with(|kept| kept.borrow_mut().push(edge.clone()));
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
    })
}

fn link(from: &Gc<Node>, to: &Gc<Node>) {
    from.edges.borrow_mut().push(to.clone());
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
        // the last object the parked state waits for (Miri's leak check
        // sees the state freed).
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
        // The state is parked: the first use brings it back.
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

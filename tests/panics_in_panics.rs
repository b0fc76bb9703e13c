//! Panics on top of panics: a second panic in one collection, panics in
//! deaths the trashcan deferred (during a collection, after it, and at
//! thread exit), panic payloads whose own `Drop` panics, a trace that
//! panics at each point of a collection with finalizers and of one that
//! cancels callbacks, and user code
//! (keys, `Clone`) that panics inside the weak maps and `make_mut`.
//! Afterwards every value has been dropped once, the first panic is the one
//! that propagated, nothing aborts, and the collector still works.
//!
//! Each test runs on a thread of its own, so that its collector starts
//! empty and its thread exit is part of the test.

mod support;

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};

use gcptr::{Finalize, Gc, Trace, Tracer, Weak};
use support::{panic_message, take_drops, DropLog};

// ----------------------------- a chain whose nodes may panic in Drop ---

struct Chain {
    log: DropLog,
    panics: bool,
    next: RefCell<Option<Gc<Chain>>>,
}

// SAFETY: visits its one Gc.
unsafe impl Trace for Chain {
    fn trace(&self, tracer: &mut Tracer) {
        self.next.trace(tracer);
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        if self.panics {
            panic!("chain node {} panics", self.log.0);
        }
    }
}

/// A chain `ids`, head first, whose nodes in `panicking` panic when dropped.
fn chain(ids: std::ops::Range<u32>, panicking: &[u32]) -> Gc<Chain> {
    let mut next = None;
    for id in ids.rev() {
        next = Some(Gc::new(Chain {
            log: DropLog(id),
            panics: panicking.contains(&id),
            next: RefCell::new(next),
        }));
    }
    next.unwrap()
}

/// A deep chain dropped by count, with a panic in a node whose death the
/// trashcan deferred: every node is still dropped exactly once, the rest
/// of the queue at the next death.
#[test]
fn trashcan_panic_in_a_deferred_node_drops_every_node_once() {
    std::thread::spawn(|| {
        take_drops();
        let head = chain(0..300, &[150]);
        let result = catch_unwind(AssertUnwindSafe(move || drop(head)));
        assert_eq!(panic_message(&result.unwrap_err()), "chain node 150 panics");
        // Something else dies at depth zero: the queue resumes.
        drop(Gc::new(RefCell::new(None::<Gc<u8>>)));
        gcptr::collect();
        let drops = take_drops();
        assert_eq!(drops, (0..300).collect::<Vec<_>>());
    })
    .join()
    .unwrap();
}

/// Two panicking nodes deep in a chain dropped by count: the first panic
/// propagates from the drop, the second from the next collection, which
/// runs the queue.
#[test]
fn trashcan_two_panics_in_deferred_nodes() {
    std::thread::spawn(|| {
        take_drops();
        let head = chain(0..300, &[100, 200]);
        let result = catch_unwind(AssertUnwindSafe(move || drop(head)));
        assert_eq!(panic_message(&result.unwrap_err()), "chain node 100 panics");
        let second = catch_unwind(gcptr::collect);
        assert_eq!(panic_message(&second.unwrap_err()), "chain node 200 panics");
        assert_eq!(gcptr::collect(), 0);
        let drops = take_drops();
        assert_eq!(drops, (0..300).collect::<Vec<_>>());
    })
    .join()
    .unwrap();
}

// ------------------------------- a finalizer and a Drop that both panic ---

thread_local! {
    static DEFUSED: Cell<bool> = const { Cell::new(false) };
}

/// A panic payload whose `Drop` panics until `DEFUSED` is set.
struct Armed;

impl Drop for Armed {
    fn drop(&mut self) {
        if !DEFUSED.with(Cell::get) {
            panic!("an armed payload was dropped");
        }
    }
}

/// Its finalizer panics (with an `Armed` payload, if `armed`), then its
/// `Drop` panics too.
#[derive(Trace)]
#[gc(finalize)]
struct FinalizerThenDrop {
    log: DropLog,
    #[gc(skip)]
    armed: bool,
}

impl Finalize for FinalizerThenDrop {
    fn finalize(&self) {
        if self.armed {
            std::panic::panic_any(Armed);
        }
        panic!("finalizer");
    }
}

impl Drop for FinalizerThenDrop {
    fn drop(&mut self) {
        panic!("drop");
    }
}

#[test]
fn when_a_finalizer_and_the_drop_after_it_panic_the_finalizers_panic_propagates() {
    std::thread::spawn(|| {
        take_drops();
        let a = Gc::new(FinalizerThenDrop {
            log: DropLog(80),
            armed: false,
        });
        let panic = catch_unwind(AssertUnwindSafe(move || drop(a))).unwrap_err();
        assert_eq!(panic_message(&panic), "finalizer");
        assert_eq!(take_drops(), [80]);
    })
    .join()
    .unwrap();
}

#[test]
fn a_finalizers_payload_is_not_dropped_by_the_unwinding_of_a_panicking_drop() {
    // Dropped by the unwinding, the armed payload's panic would abort.
    std::thread::spawn(|| {
        take_drops();
        let a = Gc::new(FinalizerThenDrop {
            log: DropLog(81),
            armed: true,
        });
        let panic = catch_unwind(AssertUnwindSafe(move || drop(a))).unwrap_err();
        assert!(panic.is::<Armed>(), "the finalizer's panic propagates");
        DEFUSED.with(|d| d.set(true));
        drop(panic);
        assert_eq!(take_drops(), [81]);
    })
    .join()
    .unwrap();
}

// -------------------------------------- a ring with an acyclic tail ---

/// An immutable chain node: acyclic (untracked by the collector), so it
/// dies by count, through the trashcan, when its holder's value drops.
#[derive(Trace)]
struct Imm {
    log: DropLog,
    #[gc(skip)]
    panics: bool,
    next: Option<Gc<Imm>>,
}

impl Drop for Imm {
    fn drop(&mut self) {
        if self.log.0 >= EXIT_IDS {
            EXIT_DROPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        if self.panics {
            panic!("imm node {} panics", self.log.0);
        }
    }
}

fn imm_chain(ids: std::ops::Range<u32>, panicking: &[u32]) -> Gc<Imm> {
    let mut next = None;
    for id in ids.rev() {
        next = Some(Gc::new(Imm {
            log: DropLog(id),
            panics: panicking.contains(&id),
            next,
        }));
    }
    next.unwrap()
}

#[derive(Trace)]
struct Holder {
    log: DropLog,
    #[gc(skip)]
    panics: bool,
    tail: Option<Gc<Imm>>,
    next: RefCell<Option<Gc<Holder>>>,
}

impl Drop for Holder {
    fn drop(&mut self) {
        if self.panics {
            panic!("holder {} panics", self.log.0);
        }
    }
}

/// A two-node garbage ring (1 and 2); node 1's Drop panics if
/// `first_panics`, node 2 holds an acyclic chain of the nodes `tail`, in
/// which the nodes of `panicking` panic.
fn ring_with_tail(
    first_panics: bool,
    tail: std::ops::Range<u32>,
    panicking: &[u32],
) -> Weak<Holder> {
    let a = Gc::new(Holder {
        log: DropLog(1),
        panics: first_panics,
        tail: None,
        next: RefCell::new(None),
    });
    let b = Gc::new(Holder {
        log: DropLog(2),
        panics: false,
        tail: Some(imm_chain(tail, panicking)),
        next: RefCell::new(Some(a.clone())),
    });
    *a.next.borrow_mut() = Some(b);
    Gc::downgrade(&a)
}

/// A collection whose garbage's drops panic, and then the trashcan queue
/// (run after the collection) panics too: the collection's first panic is
/// the one that propagates, and the whole queue runs.
#[test]
fn the_first_panic_of_a_collection_propagates_even_when_its_queue_panics() {
    std::thread::spawn(|| {
        take_drops();
        let weak = ring_with_tail(true, 1000..1200, &[1150]);
        let result = catch_unwind(gcptr::collect);
        let msg = panic_message(&result.unwrap_err());
        let drops = take_drops();
        assert!(weak.upgrade().is_none());
        let mut expected = vec![1, 2];
        expected.extend(1000..1200);
        expected.sort_unstable();
        assert_eq!(drops, expected);
        assert_eq!(msg, "holder 1 panics", "the first panic propagates");
    })
    .join()
    .unwrap();
}

/// Drops of the chain nodes numbered from `EXIT_IDS`, on any thread.
static EXIT_DROPS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
const EXIT_IDS: u32 = 5000;

/// Thread exit: a garbage ring left behind holds a deep acyclic chain with
/// two panicking nodes past the trashcan's depth. The collection at exit
/// propagates nothing (a panic escaping a thread-local's destructor would
/// abort the process), and every node is dropped.
#[test]
fn two_panics_in_the_trashcan_queue_at_thread_exit_do_not_abort() {
    let ids = EXIT_IDS..EXIT_IDS + 300;
    let panicking = [EXIT_IDS + 100, EXIT_IDS + 200];
    let joined = std::thread::spawn(move || {
        let _weak = ring_with_tail(false, ids, &panicking);
        // Thread exit reclaims the ring.
    })
    .join();
    assert!(joined.is_ok());
    assert_eq!(EXIT_DROPS.load(std::sync::atomic::Ordering::Relaxed), 300);
}

// ---------------------------- a panic payload whose own Drop panics ---

/// A panic payload that panics when dropped (outside of unwinding),
/// unless defused.
struct Bomb {
    id: u32,
    defused: bool,
}

impl Bomb {
    fn new(id: u32) -> Bomb {
        Bomb { id, defused: false }
    }

    /// Defuses the `Bomb` that `payload` holds, and drops it.
    fn defuse(payload: Box<dyn std::any::Any + Send>) {
        let mut bomb = payload.downcast::<Bomb>().expect("a Bomb");
        bomb.defused = true;
    }
}

impl Drop for Bomb {
    fn drop(&mut self) {
        if !self.defused && !std::thread::panicking() {
            panic!("payload {} dropped", self.id);
        }
    }
}

struct BombOnDrop {
    log: DropLog,
    next: RefCell<Option<Gc<BombOnDrop>>>,
}

// SAFETY: visits its one Gc.
unsafe impl Trace for BombOnDrop {
    fn trace(&self, tracer: &mut Tracer) {
        self.next.trace(tracer);
    }
}

impl Drop for BombOnDrop {
    fn drop(&mut self) {
        std::panic::panic_any(Bomb::new(self.log.0));
    }
}

/// Two `Drop`s of one collection panic with payloads whose `Drop` panics:
/// the collector drops the second payload, and that panic must not escape
/// the collection half-way (which left it "collecting" for good, so that
/// it never reclaimed a cycle again).
#[test]
fn a_second_panic_payload_that_panics_when_dropped_leaves_the_collector_working() {
    std::thread::spawn(|| {
        take_drops();
        let a = Gc::new(BombOnDrop {
            log: DropLog(1),
            next: RefCell::new(None),
        });
        let b = Gc::new(BombOnDrop {
            log: DropLog(2),
            next: RefCell::new(Some(a.clone())),
        });
        *a.next.borrow_mut() = Some(b);
        drop(a);
        let result = catch_unwind(gcptr::collect);
        Bomb::defuse(result.expect_err("the first Drop's panic propagates"));
        assert_eq!(take_drops(), [1, 2]);
        // A plain ring is collected.
        let ids = 10..14;
        let nodes: Vec<_> = ids.clone().map(support::Node::new).collect();
        for (i, n) in nodes.iter().enumerate() {
            n.edges
                .borrow_mut()
                .push(nodes[(i + 1) % nodes.len()].clone());
        }
        let w = Gc::downgrade(&nodes[0]);
        drop(nodes);
        assert_eq!(gcptr::collect(), 4);
        assert!(w.upgrade().is_none());
        assert_eq!(take_drops(), [10, 11, 12, 13]);
    })
    .join()
    .unwrap();
}

/// A tracked object whose trace panics (with a `Bomb` payload) while
/// `TRACE_BOMBS` is above zero; the contract allows a trace to panic.
struct BombTrace {
    next: RefCell<Option<Gc<BombTrace>>>,
}

thread_local! {
    static TRACE_BOMBS: Cell<u32> = const { Cell::new(0) };
}

// SAFETY: visits its one Gc, or panics before visiting anything (point 5
// of the contract: a panicking trace is allowed).
unsafe impl Trace for BombTrace {
    fn trace(&self, tracer: &mut Tracer) {
        let n = TRACE_BOMBS.with(Cell::get);
        if n > 0 {
            TRACE_BOMBS.with(|c| c.set(n - 1));
            std::panic::panic_any(Bomb::new(n));
        }
        self.next.trace(tracer);
    }
}

/// Two traces of one analysis panic with payloads whose `Drop` panics: the
/// second payload's panic must not unwind out of the analysis. It did,
/// leaving the set's links holding the analysis' scratch values and the
/// collector "collecting" for good; an object of that set whose last
/// handle a thread-local dropped after the collector was gone then
/// followed those links: a wild write (UB under Miri, an abort on a
/// misaligned pointer natively).
#[test]
fn a_trace_panic_payload_that_panics_when_dropped_leaves_the_lists_intact() {
    thread_local! {
        static LATE: RefCell<Option<Gc<BombTrace>>> = const { RefCell::new(None) };
    }
    std::thread::spawn(|| {
        // Registered before the collector's exit guard: destroyed after it.
        LATE.with(|l| drop(l.borrow()));
        let kept = Gc::new(BombTrace {
            next: RefCell::new(None),
        });
        let _other = Gc::new(BombTrace {
            next: RefCell::new(None),
        });
        TRACE_BOMBS.with(|c| c.set(2));
        let result = catch_unwind(|| gcptr::collect_generation(0));
        TRACE_BOMBS.with(|c| c.set(0));
        Bomb::defuse(result.expect_err("the first trace's panic propagates"));
        // The collector still works: a ring is found.
        let ring: Vec<_> = (20..23).map(support::Node::new).collect();
        for (i, n) in ring.iter().enumerate() {
            n.edges
                .borrow_mut()
                .push(ring[(i + 1) % ring.len()].clone());
        }
        drop(ring);
        assert_eq!(gcptr::collect(), 3);
        // `kept` dies when the thread-local goes, after the collector.
        LATE.with(|l| *l.borrow_mut() = Some(kept));
    })
    .join()
    .unwrap();
}

// ---------- user code that panics inside the weak maps and make_mut ----------

#[derive(PartialEq, Eq)]
struct HostileKey(u32);

thread_local! {
    static HOSTILE: Cell<bool> = const { Cell::new(false) };
}

impl std::hash::Hash for HostileKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        if HOSTILE.with(Cell::get) && self.0 % 2 == 1 {
            panic!("hostile hash");
        }
        self.0.hash(state);
    }
}

impl std::borrow::Borrow<u32> for HostileKey {
    fn borrow(&self) -> &u32 {
        &self.0
    }
}

impl Drop for HostileKey {
    fn drop(&mut self) {
        if HOSTILE.with(Cell::get) && self.0 == 4 && !std::thread::panicking() {
            panic!("hostile key drop");
        }
    }
}

#[test]
fn weak_value_map_with_hostile_keys_stays_consistent() {
    std::thread::spawn(|| {
        let mut map = gcptr::WeakValueMap::<HostileKey, support::Node>::new();
        let nodes: Vec<_> = (0..8).map(support::Node::new).collect();
        for (i, n) in nodes.iter().enumerate() {
            map.insert(HostileKey(i as u32), n);
        }
        HOSTILE.with(|h| h.set(true));
        assert!(catch_unwind(AssertUnwindSafe(|| map.insert(HostileKey(9), &nodes[0]))).is_err());
        assert!(catch_unwind(AssertUnwindSafe(|| map.get(&HostileKey(3)))).is_err());
        assert!(catch_unwind(AssertUnwindSafe(|| map.remove(&HostileKey(5)))).is_err());
        // The key dropped by remove panics after the entry left.
        assert!(catch_unwind(AssertUnwindSafe(|| map.remove(&HostileKey(4)))).is_err());
        assert_eq!(map.len(), 7);
        // Objects die; the purge (and the dead keys' drops) run later.
        let mut nodes = nodes;
        nodes.truncate(2);
        assert_eq!(map.len(), 2);
        // purge on next &mut call: key 4 is gone already, key 2 fine.
        assert!(catch_unwind(AssertUnwindSafe(|| map.retain(|_, _| panic!("keep")))).is_err());
        HOSTILE.with(|h| h.set(false));
        assert_eq!(map.len(), 2);
        map.insert(HostileKey(20), &nodes[0]);
        assert_eq!(map.len(), 3);
        drop(nodes);
        assert_eq!(map.len(), 0);
        map.clear();
        gcptr::collect();
    })
    .join()
    .unwrap();
}

#[derive(Trace)]
struct CloneBomb {
    log: DropLog,
    #[gc(skip)]
    boom: bool,
    next: RefCell<Option<Gc<CloneBomb>>>,
}

impl Clone for CloneBomb {
    fn clone(&self) -> Self {
        if self.boom {
            panic!("clone");
        }
        CloneBomb {
            log: DropLog(self.log.0 + 100),
            boom: false,
            next: RefCell::new(self.next.borrow().clone()),
        }
    }
}

#[test]
fn make_mut_with_a_panicking_clone_changes_nothing() {
    std::thread::spawn(|| {
        take_drops();
        let mut a = Gc::new(CloneBomb {
            log: DropLog(1),
            boom: true,
            next: RefCell::new(None),
        });
        let b = a.clone();
        assert!(catch_unwind(AssertUnwindSafe(|| {
            Gc::make_mut(&mut a);
        }))
        .is_err());
        assert!(Gc::ptr_eq(&a, &b));
        assert_eq!(Gc::strong_count(&a), 2);
        drop((a, b));
        assert_eq!(take_drops(), [1]);
    })
    .join()
    .unwrap();
}

#[derive(Trace)]
#[gc(finalize)]
struct Both {
    log: DropLog,
    #[gc(skip)]
    fin_panics: bool,
    #[gc(skip)]
    drop_panics: bool,
    next: RefCell<Option<Gc<Both>>>,
}

impl Finalize for Both {
    fn finalize(&self) {
        if self.fin_panics {
            panic!("finalize {}", self.log.0);
        }
    }
}

impl Drop for Both {
    fn drop(&mut self) {
        // A nested collect, under catch_unwind, from inside a collection.
        assert_eq!(catch_unwind(gcptr::collect).unwrap(), 0);
        if self.drop_panics {
            panic!("drop {}", self.log.0);
        }
    }
}

#[test]
fn finalizer_and_drop_panics_in_one_collection() {
    std::thread::spawn(|| {
        take_drops();
        let ids = [1u32, 2, 3, 4];
        let nodes: Vec<_> = ids
            .iter()
            .map(|&i| {
                Gc::new(Both {
                    log: DropLog(i),
                    fin_panics: i == 2,
                    drop_panics: i >= 3,
                    next: RefCell::new(None),
                })
            })
            .collect();
        for (i, n) in nodes.iter().enumerate() {
            *n.next.borrow_mut() = Some(nodes[(i + 1) % 4].clone());
        }
        let weaks: Vec<_> = nodes.iter().map(Gc::downgrade).collect();
        drop(nodes);
        let r = catch_unwind(gcptr::collect);
        assert_eq!(panic_message(&r.unwrap_err()), "finalize 2");
        assert!(weaks.iter().all(|w| w.upgrade().is_none()));
        assert_eq!(take_drops(), [1, 2, 3, 4]);
        assert_eq!(gcptr::collect(), 0);
        assert_eq!(gcptr::count(), [0, 0, 0]);
    })
    .join()
    .unwrap();
}

// -------------- a trace panic at each point of a finalizing collection ---

thread_local! {
    static FINALIZED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    static RESURRECT_ON: Cell<bool> = const { Cell::new(false) };
    static RESURRECTED: RefCell<Option<Gc<FlakyFin>>> = const { RefCell::new(None) };
}

struct FlakyFin {
    log: DropLog,
    next: RefCell<Option<Gc<FlakyFin>>>,
}

// SAFETY: visits its one Gc, or panics before visiting anything.
unsafe impl Trace for FlakyFin {
    fn trace(&self, tracer: &mut Tracer) {
        support::trace_countdown();
        self.next.trace(tracer);
    }
    fn __has_finalizer() -> bool {
        true
    }
    fn __finalize(&self) {
        FINALIZED.with(|f| f.borrow_mut().push(self.log.0));
        // A peer read while intact
        let next = self.next.borrow().as_ref().map(|n| n.clone());
        if self.log.0 == 0 && RESURRECT_ON.with(Cell::get) {
            // Resurrect the whole ring through the peer.
            RESURRECTED.with(|r| *r.borrow_mut() = next);
        }
    }
}

#[test]
fn a_trace_panic_at_every_point_of_a_finalizing_collection() {
    run_finalizing(false, false);
}

#[test]
fn a_trace_panic_at_every_point_of_a_finalizing_collection_with_callbacks_and_resurrection() {
    run_finalizing(true, true);
}

fn run_finalizing(callbacks: bool, resurrect: bool) {
    std::thread::spawn(move || {
        let anchor = Gc::new(FlakyFin {
            log: DropLog(99),
            next: RefCell::new(None),
        });
        let _cb = callbacks.then(|| Gc::downgrade_with(&anchor, || {}));
        for panic_at in 1..=24 {
            RESURRECT_ON.with(|c| c.set(resurrect));
            take_drops();
            FINALIZED.with(|f| f.borrow_mut().clear());
            gcptr::collect();
            let nodes: Vec<_> = (0..3)
                .map(|i| {
                    Gc::new(FlakyFin {
                        log: DropLog(i),
                        next: RefCell::new(None),
                    })
                })
                .collect();
            for (i, n) in nodes.iter().enumerate() {
                *n.next.borrow_mut() = Some(nodes[(i + 1) % 3].clone());
            }
            let weaks: Vec<_> = nodes.iter().map(Gc::downgrade).collect();
            drop(nodes);
            support::panic_in_nth_trace(panic_at);
            let _ = catch_unwind(gcptr::collect);
            support::panic_in_nth_trace(0);
            RESURRECT_ON.with(|c| c.set(false));
            let back = RESURRECTED.with(|r| r.borrow_mut().take());
            if let Some(back) = &back {
                // Resurrected objects may be read (their values live).
                let _ = back.log.0;
            }
            drop(back);
            let _ = catch_unwind(gcptr::collect);
            let _ = catch_unwind(gcptr::collect);
            assert!(weaks.iter().all(|w| w.upgrade().is_none()), "at {panic_at}");
            assert_eq!(take_drops(), [0, 1, 2], "at {panic_at}");
            let mut fin = FINALIZED.with(|f| f.borrow().clone());
            fin.sort_unstable();
            assert_eq!(fin, [0, 1, 2], "at {panic_at}");
        }
    })
    .join()
    .unwrap();
}

// ------ a trace panic at each point of the pass that cancels callbacks ---

thread_local! {
    static CALLBACKS_RUN: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// A ring node that owns a weak reference with a callback to its peer: the
/// collection traces the garbage once more, outside the analysis, to
/// cancel such callbacks, and this trace may panic in that pass too.
struct Watcher {
    _log: DropLog,
    next: RefCell<Option<Gc<Watcher>>>,
    watch: RefCell<Option<gcptr::WeakWithCallback<Watcher>>>,
}

// SAFETY: visits its one Gc (and its weak reference's callback), or panics
// before visiting anything.
unsafe impl Trace for Watcher {
    fn trace(&self, tracer: &mut Tracer) {
        support::trace_countdown();
        self.next.trace(tracer);
        self.watch.trace(tracer);
    }
}

#[test]
fn a_trace_panic_at_every_point_of_a_collection_that_cancels_callbacks() {
    std::thread::spawn(|| {
        // A collection of the ring runs six traces: three to analyse it,
        // three to cancel the callbacks its nodes own.
        for panic_at in 1..=8 {
            take_drops();
            CALLBACKS_RUN.with(|r| r.borrow_mut().clear());
            let nodes: Vec<_> = (0..3)
                .map(|i| {
                    Gc::new(Watcher {
                        _log: DropLog(i),
                        next: RefCell::new(None),
                        watch: RefCell::new(None),
                    })
                })
                .collect();
            for (i, n) in (0u32..).zip(&nodes) {
                let peer = &nodes[(i as usize + 1) % 3];
                *n.next.borrow_mut() = Some(peer.clone());
                let captured = DropLog(10 + i);
                let callback = Gc::downgrade_with(peer, move || {
                    CALLBACKS_RUN.with(|r| r.borrow_mut().push(captured.0));
                });
                *n.watch.borrow_mut() = Some(callback);
            }
            let weaks: Vec<_> = nodes.iter().map(Gc::downgrade).collect();
            drop(nodes);
            support::panic_in_nth_trace(panic_at);
            let first = catch_unwind(gcptr::collect);
            support::panic_in_nth_trace(0);
            assert_eq!(first.is_err(), panic_at <= 6, "at {panic_at}");
            // A panic in the analysis stops the collection; one after it
            // waits until the collection has reclaimed the ring.
            let left = if panic_at <= 3 { 3 } else { 0 };
            assert_eq!(gcptr::collect(), left, "at {panic_at}");
            assert!(weaks.iter().all(|w| w.upgrade().is_none()), "at {panic_at}");
            // Every value and every callback's captures dropped, once.
            let mut drops = take_drops();
            drops.sort_unstable();
            assert_eq!(drops, [0, 1, 2, 10, 11, 12], "at {panic_at}");
            // Cancelled callbacks never run. The one whose owner's trace
            // panicked in the cancelling pass was never shown, and runs.
            let ran = CALLBACKS_RUN.with(|r| r.borrow().len());
            assert_eq!(
                ran,
                usize::from((4..=6).contains(&panic_at)),
                "at {panic_at}"
            );
            assert_eq!(gcptr::count(), [0, 0, 0], "at {panic_at}");
        }
    })
    .join()
    .unwrap();
}

/// `WeakValueMap::remove` upgrades the removed entry's value, then drops
/// the entry (its key: user code). If the key's `Drop` panics, a return
/// value already built would be leaked (rust-lang/rust#47949), and with it
/// the object and all it owns: its `Drop` would never run.
#[test]
fn weak_value_map_remove_with_a_panicking_key_drop_leaks_nothing() {
    std::thread::spawn(|| {
        take_drops();
        let mut map = gcptr::WeakValueMap::<HostileKey, support::Node>::new();
        let node = support::Node::new(7);
        map.insert(HostileKey(4), &node);
        let weak = Gc::downgrade(&node);
        HOSTILE.with(|h| h.set(true));
        // Looked up by `u32` (`Borrow`): only the stored key's Drop panics.
        let removed = catch_unwind(AssertUnwindSafe(|| map.remove(&4u32)));
        assert!(removed.is_err(), "the key's Drop panics");
        HOSTILE.with(|h| h.set(false));
        drop(node);
        assert!(weak.upgrade().is_none(), "the upgraded value leaked");
        assert_eq!(take_drops(), [7]);
    })
    .join()
    .unwrap();
}

/// A value whose edges are fixed: `Gc::new` traces it to decide whether it
/// is acyclic, and that trace panics.
struct FixedPanics {
    _log: DropLog,
    child: Gc<support::Node>,
}

thread_local! {
    static FIXED_PANICS: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: visits its one Gc, or panics before visiting it.
unsafe impl Trace for FixedPanics {
    fn trace(&self, tracer: &mut Tracer) {
        if FIXED_PANICS.with(Cell::get) {
            panic!("fixed trace");
        }
        self.child.trace(tracer);
    }
    fn __edges_fixed(_depth: u32) -> bool {
        true
    }
}

#[test]
fn a_panic_in_the_trace_that_gc_new_runs_drops_the_new_object_once() {
    std::thread::spawn(|| {
        take_drops();
        gcptr::disable();
        let kept = support::Node::new(3);
        let child = support::Node::new(2);
        let weak_child = Gc::downgrade(&child);
        FIXED_PANICS.with(|c| c.set(true));
        let r = catch_unwind(AssertUnwindSafe(|| {
            Gc::new(FixedPanics {
                _log: DropLog(1),
                child,
            })
        }));
        FIXED_PANICS.with(|c| c.set(false));
        assert!(r.is_err());
        assert_eq!(take_drops(), [1, 2]);
        assert!(weak_child.upgrade().is_none());
        // The new object was never counted, nor counted out: generation 0
        // holds `kept` alone.
        assert_eq!(gcptr::count(), [1, 0, 0]);
        assert_eq!(gcptr::collect(), 0);
        assert_eq!(gcptr::count(), [0, 0, 0]);
        drop(kept);
        gcptr::enable();
    })
    .join()
    .unwrap();
}

/// The automatic collection that a new slice object's tracking starts
/// finds garbage whose `Drop` panics: the panic propagates out of
/// `Gc::from`, and the new object, never returned, dies with its elements.
#[test]
fn a_panic_in_the_collection_that_a_new_slice_starts_drops_the_slice() {
    std::thread::spawn(|| {
        take_drops();
        gcptr::disable();
        drop(ring_with_tail(true, 10..11, &[]));
        let element = support::Node::new(3);
        let weak_element = Gc::downgrade(&element);
        // The next tracked allocation collects generation 0, the ring's.
        gcptr::set_threshold([1, 100, 100]);
        gcptr::enable();
        let made = catch_unwind(AssertUnwindSafe(|| {
            Gc::<[Gc<support::Node>]>::from(vec![element])
        }));
        gcptr::disable();
        let Err(payload) = made else {
            panic!("the collection's panic did not propagate");
        };
        assert_eq!(panic_message(&payload), "holder 1 panics");
        let mut dropped = take_drops();
        dropped.sort_unstable();
        assert_eq!(
            dropped,
            [1, 2, 3, 10],
            "the ring, its tail and the slice's element"
        );
        assert!(weak_element.upgrade().is_none());
        assert_eq!(gcptr::collect(), 0);
    })
    .join()
    .unwrap();
}

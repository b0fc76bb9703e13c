//! The soundness rules of DESIGN.md: dead values are never read, memory is
//! never freed while a handle can reach it, panics leave the collector
//! consistent, re-entrant calls are safe.

mod support;

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread;

use gcptr::{Gc, Trace, Tracer, Weak};
use support::{panic_message, take_drops, DropLog, Node, Reporter};

/// A node whose `Drop` runs a test-chosen action with its peer.
struct Peer {
    log: DropLog,
    peer: RefCell<Option<Gc<Peer>>>,
    on_drop: fn(&Peer),
}

// SAFETY: visits the one Gc it owns.
unsafe impl Trace for Peer {
    fn trace(&self, tracer: &mut Tracer) {
        self.peer.trace(tracer);
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        (self.on_drop)(self);
    }
}

fn peer_cycle(on_drop: fn(&Peer)) -> (Weak<Peer>, Weak<Peer>) {
    let a = Gc::new(Peer {
        log: DropLog(1),
        peer: RefCell::new(None),
        on_drop,
    });
    let b = Gc::new(Peer {
        log: DropLog(2),
        peer: RefCell::new(Some(a.clone())),
        on_drop,
    });
    *a.peer.borrow_mut() = Some(b.clone());
    (Gc::downgrade(&a), Gc::downgrade(&b))
}

#[test]
fn drop_that_reads_a_dead_peer_panics_naming_finalize_and_nothing_is_freed_twice() {
    take_drops();
    thread_local!(static READS: Cell<u32> = const { Cell::new(0) });
    let (wa, wb) = peer_cycle(|this| {
        // Reading the peer's value: it is condemned (maybe dropped already).
        let peer = this.peer.borrow();
        let id = peer.as_ref().unwrap().log.0;
        READS.with(|r| r.set(r.get() + id));
    });
    let result = catch_unwind(gcptr::collect);
    let message = panic_message(&result.expect_err("the Drop must panic"));
    assert!(
        message.contains("already dropped by the cycle collector"),
        "{message}"
    );
    assert!(message.contains("Finalize"), "{message}");
    assert_eq!(READS.with(Cell::get), 0, "no dead value was read");
    // Both objects died exactly once, and the collector is still usable.
    assert_eq!(take_drops(), [1, 2]);
    assert!(wa.upgrade().is_none() && wb.upgrade().is_none());
    assert_eq!(gcptr::collect(), 0);
    let c = Node::new(3);
    c.link(&c);
    drop(c);
    assert_eq!(gcptr::collect(), 1);
    assert_eq!(take_drops(), [3]);
}

thread_local!(static RESCUED: RefCell<Vec<Gc<Peer>>> = const { RefCell::new(Vec::new()) });

#[test]
fn drop_that_resurrects_a_peer_gets_a_handle_that_panics_instead_of_reading_freed_memory() {
    take_drops();
    let (wa, _wb) = peer_cycle(|this| {
        // Cloning a handle is allowed (no value is read) and keeps the
        // memory, but not the value, alive.
        if let Some(peer) = this.peer.borrow().as_ref() {
            RESCUED.with(|r| r.borrow_mut().push(peer.clone()));
        }
    });
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(take_drops(), [1, 2]);
    let rescued = RESCUED.with(|r| r.borrow_mut().pop().unwrap());
    assert!(wa.upgrade().is_none(), "a dead object never upgrades");
    assert_eq!(Gc::strong_count(&rescued), 1);
    let read = catch_unwind(AssertUnwindSafe(|| rescued.log.0));
    let message = panic_message(&read.expect_err("deref of a dead value must panic"));
    assert!(message.contains("already dropped"), "{message}");
    // Dropping the last handle frees the memory without dropping again.
    RESCUED.with(|r| r.borrow_mut().clear());
    drop(rescued);
    assert!(take_drops().is_empty());
}

#[test]
fn panic_in_drop_during_collection_completes_the_collection_then_propagates() {
    take_drops();
    let (wa, wb) = peer_cycle(|this| {
        if this.log.0 == 1 {
            panic!("boom in drop");
        }
    });
    let other = Node::new(9);
    other.link(&other);
    drop(other);
    let result = catch_unwind(gcptr::collect);
    assert_eq!(panic_message(&result.unwrap_err()), "boom in drop");
    assert_eq!(
        take_drops(),
        [1, 2, 9],
        "every garbage object was still dropped"
    );
    assert!(wa.upgrade().is_none() && wb.upgrade().is_none());
    assert_eq!(gcptr::collect(), 0);
}

#[test]
fn two_panics_in_one_collection_propagate_the_first_only() {
    take_drops();
    let _weaks = peer_cycle(|this| panic!("drop {}", this.log.0));
    let result = catch_unwind(gcptr::collect);
    let message = panic_message(&result.unwrap_err());
    assert!(message == "drop 1" || message == "drop 2", "{message}");
    assert_eq!(take_drops(), [1, 2]);
}

#[test]
fn nested_collect_from_a_drop_returns_zero() {
    thread_local!(static NESTED: Cell<Option<usize>> = const { Cell::new(None) });
    take_drops();
    let _weaks = peer_cycle(|_| NESTED.with(|n| n.set(Some(gcptr::collect()))));
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(NESTED.with(Cell::get), Some(0));
    take_drops();
}

#[test]
fn drop_that_allocates_and_drops_gcs_during_a_collection_is_safe() {
    take_drops();
    let _weaks = peer_cycle(|this| {
        // A new cycle, made and abandoned from inside a collection.
        let fresh = Node::new(100 + this.log.0);
        fresh.link(&fresh);
        let plain = Gc::new(5u8);
        drop(plain);
    });
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(take_drops(), [1, 2]);
    assert_eq!(gcptr::collect(), 2, "the cycles made by the Drops");
    assert_eq!(take_drops(), [101, 102]);
}

#[test]
fn gc_in_a_thread_local_is_dropped_at_thread_exit() {
    thread_local!(static HELD: RefCell<Option<Gc<Reporter>>> = const { RefCell::new(None) });
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let child = Gc::new(Reporter(2, tx.clone(), RefCell::new(None)));
        let node = Gc::new(Reporter(1, tx, RefCell::new(Some(child))));
        HELD.with(|h| *h.borrow_mut() = Some(node));
        gcptr::collect();
    })
    .join()
    .unwrap();
    let mut dropped: Vec<u32> = rx.try_iter().collect();
    dropped.sort_unstable();
    assert_eq!(dropped, [1, 2]);
}

#[test]
fn cycle_left_unreachable_at_thread_exit_is_reclaimed_before_join() {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        gcptr::disable();
        let a = Gc::new(Reporter(1, tx.clone(), RefCell::new(None)));
        let b = Gc::new(Reporter(2, tx, RefCell::new(Some(a.clone()))));
        *a.2.borrow_mut() = Some(b);
    })
    .join()
    .unwrap();
    let mut dropped: Vec<u32> = rx.try_iter().collect();
    dropped.sort_unstable();
    assert_eq!(dropped, [1, 2], "both Drops ran before join returned");
}

#[test]
fn a_frozen_cycle_left_unreachable_at_thread_exit_is_reclaimed_too() {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        gcptr::disable();
        let a = Gc::new(Reporter(1, tx.clone(), RefCell::new(None)));
        *a.2.borrow_mut() = Some(a.clone());
        drop(a);
        gcptr::freeze();
        let b = Gc::new(Reporter(2, tx, RefCell::new(None)));
        *b.2.borrow_mut() = Some(b.clone());
    })
    .join()
    .unwrap();
    let mut dropped: Vec<u32> = rx.try_iter().collect();
    dropped.sort_unstable();
    assert_eq!(dropped, [1, 2], "the frozen cycle's Drop ran as well");
}

/// A `Drop` run at thread exit once one of the exit's collections is over
/// (a death the trashcan queued) makes a garbage cycle and freezes it: the
/// next collection thaws it again.
#[test]
fn a_cycle_frozen_by_a_drop_at_thread_exit_is_reclaimed_too() {
    #[derive(Trace)]
    struct Link {
        next: Option<Gc<Link>>,
        #[gc(skip)]
        last: RefCell<Option<std::sync::mpsc::Sender<u32>>>,
    }
    impl Drop for Link {
        fn drop(&mut self) {
            if let Some(tx) = self.last.borrow_mut().take() {
                let a = Gc::new(Reporter(10, tx.clone(), RefCell::new(None)));
                let b = Gc::new(Reporter(11, tx, RefCell::new(Some(a.clone()))));
                *a.2.borrow_mut() = Some(b);
                drop(a);
                gcptr::freeze();
            }
        }
    }
    #[derive(Trace)]
    struct Top {
        me: RefCell<Option<Gc<Top>>>,
        chain: Gc<Link>,
    }
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        // A chain deeper than the trashcan's limit, held by a garbage
        // cycle: its last link dies from the queue, after the collection.
        let mut chain = Gc::new(Link {
            next: None,
            last: RefCell::new(Some(tx)),
        });
        for _ in 0..100 {
            chain = Gc::new(Link {
                next: Some(chain),
                last: RefCell::new(None),
            });
        }
        let top = Gc::new(Top {
            me: RefCell::new(None),
            chain,
        });
        *top.me.borrow_mut() = Some(top.clone());
    })
    .join()
    .unwrap();
    let mut dropped: Vec<u32> = rx.try_iter().collect();
    dropped.sort_unstable();
    assert_eq!(
        dropped,
        [10, 11],
        "the cycle made and frozen at exit was dropped"
    );
}

/// At thread exit the collector collects again while the last collection
/// left new garbage possible, even when it reclaimed nothing or panicked:
/// here a garbage cycle's `Drop` releases the last outside handle of
/// another cycle, then panics.
#[test]
fn garbage_left_by_a_panicking_drop_at_thread_exit_is_reclaimed() {
    struct Holder {
        peer: RefCell<Option<Gc<Holder>>>,
        // Not traced: holds the other cycle from outside any analysis.
        hidden: RefCell<Option<Gc<Reporter>>>,
    }
    // SAFETY: visits `peer`; `hidden` is left out, which only delays.
    unsafe impl Trace for Holder {
        fn trace(&self, tracer: &mut Tracer) {
            self.peer.trace(tracer);
        }
    }
    impl Drop for Holder {
        fn drop(&mut self) {
            if self.hidden.borrow_mut().take().is_some() {
                panic!("a Drop that panics at thread exit");
            }
        }
    }
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        gcptr::disable();
        let c = Gc::new(Reporter(3, tx.clone(), RefCell::new(None)));
        let d = Gc::new(Reporter(4, tx, RefCell::new(Some(c.clone()))));
        *c.2.borrow_mut() = Some(d);
        let a = Gc::new(Holder {
            peer: RefCell::new(None),
            hidden: RefCell::new(Some(c)),
        });
        let b = Gc::new(Holder {
            peer: RefCell::new(Some(a.clone())),
            hidden: RefCell::new(None),
        });
        *a.peer.borrow_mut() = Some(b);
    })
    .join()
    .unwrap();
    let mut dropped: Vec<u32> = rx.try_iter().collect();
    dropped.sort_unstable();
    assert_eq!(dropped, [3, 4], "the second cycle was reclaimed");
}

/// As above, with a collection at thread exit that reclaims nothing: a
/// finalizer resurrects its cycle by linking it from another cycle, then
/// drops that cycle's last outside handle, so both are garbage together.
#[test]
fn garbage_left_by_a_resurrecting_finalizer_at_thread_exit_is_reclaimed() {
    use gcptr::Finalize;
    type Sender = std::sync::mpsc::Sender<&'static str>;
    #[derive(Trace)]
    #[gc(finalize)]
    struct Owner {
        peer: RefCell<Option<Gc<Owner>>>,
        // Not traced: holds the other cycle from outside any analysis.
        #[gc(skip)]
        hidden: RefCell<Option<Gc<Inner>>>,
        #[gc(skip)]
        tx: Sender,
    }
    impl Finalize for Owner {
        fn finalize(&self) {
            if let Some(inner) = self.hidden.borrow_mut().take() {
                *inner.slot.borrow_mut() = self.peer.borrow().clone();
            }
        }
    }
    impl Drop for Owner {
        fn drop(&mut self) {
            self.tx.send("owner").unwrap();
        }
    }
    #[derive(Trace)]
    struct Inner {
        peer: RefCell<Option<Gc<Inner>>>,
        slot: RefCell<Option<Gc<Owner>>>,
        #[gc(skip)]
        tx: Sender,
    }
    impl Drop for Inner {
        fn drop(&mut self) {
            self.tx.send("inner").unwrap();
        }
    }
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        gcptr::disable();
        let inner = |peer| {
            Gc::new(Inner {
                peer: RefCell::new(peer),
                slot: RefCell::new(None),
                tx: tx.clone(),
            })
        };
        let c = inner(None);
        let d = inner(Some(c.clone()));
        *c.peer.borrow_mut() = Some(d);
        let owner = |peer, hidden| {
            Gc::new(Owner {
                peer: RefCell::new(peer),
                hidden: RefCell::new(hidden),
                tx: tx.clone(),
            })
        };
        let a = owner(None, Some(c));
        let b = owner(Some(a.clone()), None);
        *a.peer.borrow_mut() = Some(b);
    })
    .join()
    .unwrap();
    let mut dropped: Vec<&str> = rx.try_iter().collect();
    dropped.sort_unstable();
    assert_eq!(dropped, ["inner", "inner", "owner", "owner"]);
}

#[test]
fn gc_dropped_by_a_thread_local_destroyed_after_the_collector_is_still_dropped() {
    // The guard's order against other thread-locals is unspecified; make
    // both orders happen by touching the holder before and after gcptr.
    thread_local!(static EARLY: RefCell<Vec<Gc<Node>>> = const { RefCell::new(Vec::new()) });
    thread_local!(static LATE: RefCell<Vec<Gc<Node>>> = const { RefCell::new(Vec::new()) });
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u32>>();
    thread::spawn(move || {
        EARLY.with(|e| e.borrow_mut().push(Node::new(1)));
        let n = Node::new(2);
        n.link(&Node::new(3));
        LATE.with(|l| l.borrow_mut().push(n));
        // Allocate from a destructor that runs at exit, too.
        struct AtExit(std::sync::mpsc::Sender<Vec<u32>>);
        impl Drop for AtExit {
            fn drop(&mut self) {
                let late = Node::new(4);
                late.link(&late); // a cycle with maybe no collector: leaks, never crashes
                self.0.send(vec![late.id()]).unwrap();
            }
        }
        thread_local!(static EXIT: RefCell<Option<AtExit>> = const { RefCell::new(None) });
        EXIT.with(|e| *e.borrow_mut() = Some(AtExit(tx)));
    })
    .join()
    .unwrap();
    assert_eq!(rx.recv().unwrap(), [4]);
}

#[test]
fn get_mut_value_is_never_traced_and_the_object_comes_back_to_the_collector() {
    take_drops();
    let mut a = Node::new(1);
    {
        let node = Gc::get_mut(&mut a).expect("unique");
        node.edges.get_mut().clear();
        // A collection while the value is mutably borrowed must not trace it.
        assert_eq!(gcptr::collect(), 0);
        node.log.0 = 10;
    }
    let b = Node::new(2);
    b.link(&a);
    a.link(&b);
    drop((a, b));
    // `a` was out of the lists; `b`'s trace brings it back, and the next
    // collection reclaims both.
    gcptr::collect();
    gcptr::collect();
    assert_eq!(take_drops(), [2, 10]);
}

#[test]
fn under_reporting_trace_leaks_but_never_frees_a_live_object() {
    struct Liar {
        log: DropLog,
        hidden: RefCell<Option<Gc<Liar>>>,
    }
    // SAFETY: reports fewer edges than it owns (none), which is allowed.
    unsafe impl Trace for Liar {
        fn trace(&self, _: &mut Tracer) {}
    }
    take_drops();
    let a = Gc::new(Liar {
        log: DropLog(1),
        hidden: RefCell::new(None),
    });
    let b = Gc::new(Liar {
        log: DropLog(2),
        hidden: RefCell::new(Some(a.clone())),
    });
    *a.hidden.borrow_mut() = Some(b.clone());
    let weak = Gc::downgrade(&a);
    drop((a, b));
    assert_eq!(gcptr::collect(), 0);
    assert!(take_drops().is_empty());
    let a = weak.upgrade().expect("still alive: leaked, not freed");
    assert_eq!(a.log.0, 1);
    // Break the cycle by hand to clean up.
    a.hidden.borrow_mut().take();
    drop(a);
    assert_eq!(take_drops(), [1, 2]);
}

#[test]
fn weak_upgrade_fails_inside_drops_run_by_the_collection() {
    thread_local!(static SEEN: Cell<(u32, u32)> = const { Cell::new((0, 0)) });
    thread_local!(static WEAKS: RefCell<Vec<Weak<Peer>>> = const { RefCell::new(Vec::new()) });
    take_drops();
    let (wa, wb) = peer_cycle(|_| {
        WEAKS.with(|w| {
            for weak in w.borrow().iter() {
                let (ok, none) = SEEN.with(Cell::get);
                SEEN.with(|s| match weak.upgrade() {
                    Some(_) => s.set((ok + 1, none)),
                    None => s.set((ok, none + 1)),
                });
            }
        })
    });
    WEAKS.with(|w| w.borrow_mut().extend([wa, wb]));
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(SEEN.with(Cell::get), (0, 4));
    WEAKS.with(|w| w.borrow_mut().clear());
    take_drops();
}

// ---- make_mut when a death callback panics; deaths queued during a re-check ----

#[derive(Trace, Clone)]
#[gc(finalize)]
struct Finalized(Vec<u8>);

thread_local!(static FINALIZED: Cell<usize> = const { Cell::new(0) });

impl gcptr::Finalize for Finalized {
    fn finalize(&self) {
        assert_eq!(self.0, [1, 2, 3], "finalized with its value");
        FINALIZED.with(|f| f.set(f.get() + 1));
    }
}

#[test]
fn make_mut_leaves_a_valid_gc_when_a_death_callback_panics() {
    let mut a = Gc::new(Finalized(vec![1, 2, 3]));
    let weak = Gc::downgrade(&a);
    let _callback = Gc::on_death(&a, || panic!("callback failed"));
    let result = catch_unwind(AssertUnwindSafe(|| {
        Gc::make_mut(&mut a);
    }));
    assert!(result.is_err(), "the callback's panic propagates");
    assert!(
        weak.upgrade().is_none(),
        "the Weak stays with the old allocation"
    );
    assert_eq!(
        a.0,
        [1, 2, 3],
        "`a` holds the value, in the fresh allocation"
    );
    assert_eq!(Gc::strong_count(&a), 1);
    assert_eq!(
        FINALIZED.with(Cell::get),
        0,
        "a moved value is not finalized"
    );
    drop(a);
    assert_eq!(FINALIZED.with(Cell::get), 1);
}

/// A list node that may collect when dropped.
#[derive(Trace)]
struct Deep {
    next: Option<Gc<Deep>>,
    collect_here: bool,
}

impl Drop for Deep {
    fn drop(&mut self) {
        if self.collect_here {
            gcptr::collect();
        }
    }
}

/// Drops a list whose 48th death collects: deaths in that collection are
/// queued, as the trashcan's depth is reached.
fn collect_at_the_trashcans_limit() {
    let mut head: Option<Gc<Deep>> = None;
    for i in 0..60 {
        head = Some(Gc::new(Deep {
            next: head,
            collect_here: i == 60 - 48,
        }));
    }
    drop(head);
}

#[derive(Trace)]
#[gc(finalize)]
struct FinalizedPeer {
    log: DropLog,
    back: RefCell<Option<Gc<DropsFinalizedPeer>>>,
}

thread_local!(static PEER_FINALIZED: Cell<usize> = const { Cell::new(0) });

impl gcptr::Finalize for FinalizedPeer {
    fn finalize(&self) {
        PEER_FINALIZED.with(|f| f.set(f.get() + 1));
    }
}

#[derive(Trace)]
#[gc(finalize)]
struct DropsFinalizedPeer {
    log: DropLog,
    peer: RefCell<Option<Gc<FinalizedPeer>>>,
}

impl gcptr::Finalize for DropsFinalizedPeer {
    fn finalize(&self) {
        drop(self.peer.borrow_mut().take());
    }
}

#[test]
fn a_queued_death_whose_object_also_has_a_finalizer_happens_once() {
    // The collection runs deep in a chain of drops: the first finalizer
    // drops the peer's last reference, which queues its death; the peer's
    // own finalizer then runs, and its death must stay queued, once.
    for keep_weak in [false, true] {
        take_drops();
        PEER_FINALIZED.with(|f| f.set(0));
        let a = Gc::new(DropsFinalizedPeer {
            log: DropLog(911),
            peer: RefCell::new(None),
        });
        let b = Gc::new(FinalizedPeer {
            log: DropLog(912),
            back: RefCell::new(Some(a.clone())),
        });
        let weak = keep_weak.then(|| Gc::downgrade(&b));
        *a.peer.borrow_mut() = Some(b);
        drop(a);
        collect_at_the_trashcans_limit();
        gcptr::collect();
        assert_eq!(take_drops(), [911, 912], "each dropped once");
        assert_eq!(PEER_FINALIZED.with(Cell::get), 1, "finalized once");
        if let Some(weak) = weak {
            // Its unit of the weak count kept the memory (Miri checks it).
            assert!(weak.upgrade().is_none());
            drop(weak);
        }
    }
}

// ---- a queued death whose object's finalizer the collector is running ----

#[derive(Trace)]
#[gc(finalize)]
struct ChainOwner {
    log: DropLog,
    chain: RefCell<Option<Gc<ChainLink>>>,
}

impl gcptr::Finalize for ChainOwner {
    fn finalize(&self) {
        // The chain dies, which queues the death 48 deep (of `Watched`);
        // then the head's finalizer panic unwinds out of the outermost
        // death, before it runs the queue.
        drop(self.chain.borrow_mut().take());
    }
}

#[derive(Trace)]
#[gc(finalize)]
struct ChainLink {
    log: DropLog,
    next: Option<Gc<ChainLink>>,
    target: Option<Gc<Watched>>,
    panics: bool,
}

impl gcptr::Finalize for ChainLink {
    fn finalize(&self) {
        assert!(!self.panics, "the chain's head fails to finalize");
    }
}

#[derive(Trace)]
#[gc(finalize)]
struct Watched {
    log: DropLog,
    name: String,
    back: RefCell<Option<Gc<ChainOwner>>>,
}

thread_local!(static WATCHED_FINALIZED: Cell<usize> = const { Cell::new(0) });

impl gcptr::Finalize for Watched {
    fn finalize(&self) {
        // A death here runs the queue, which holds this very object.
        drop(Node::new(999));
        assert_eq!(self.name, "watched", "the value outlives its finalizer");
        WATCHED_FINALIZED.with(|f| f.set(f.get() + 1));
    }
}

#[test]
fn the_queue_never_drops_a_value_whose_finalizer_is_running() {
    take_drops();
    let owner = Gc::new(ChainOwner {
        log: DropLog(1000),
        chain: RefCell::new(None),
    });
    let watched = Gc::new(Watched {
        log: DropLog(1001),
        name: "watched".into(),
        back: RefCell::new(Some(owner.clone())),
    });
    // Link `k` (from the head, 0-based) dies `k + 1` deaths deep; the one
    // that dies at depth 48 holds the only other reference to `watched`.
    let mut chain = None;
    for k in (0..60u32).rev() {
        chain = Some(Gc::new(ChainLink {
            log: DropLog(2000 + k),
            next: chain,
            target: (k == 47).then(|| watched.clone()),
            panics: k == 0,
        }));
    }
    *owner.chain.borrow_mut() = chain;
    drop((owner, watched));
    let collected = catch_unwind(AssertUnwindSafe(gcptr::collect));
    assert!(
        collected.is_err(),
        "the head's panic propagates, once the collection is done"
    );
    gcptr::collect();
    assert_eq!(WATCHED_FINALIZED.with(Cell::get), 1);
    let mut expected: Vec<u32> = vec![999, 1000, 1001];
    expected.extend(2000..2060);
    expected.sort_unstable();
    assert_eq!(take_drops(), expected, "each dropped once");
}

/// The holder side of a cycle through a value with no drop glue.
#[derive(Trace)]
struct Holder {
    plain: RefCell<Option<Gc<std::mem::ManuallyDrop<Plain>>>>,
}

/// Held in a `ManuallyDrop`, which has no drop glue: the collector's drop
/// of it changes nothing, so a `Drop` may still read it.
#[derive(Trace)]
struct Plain {
    back: RefCell<Option<Gc<Holder>>>,
}

thread_local! {
    static READ_AFTER_COLLECTION: Cell<bool> = const { Cell::new(false) };
}

impl Drop for Holder {
    fn drop(&mut self) {
        if let Some(plain) = self.plain.borrow_mut().take() {
            // A condemned peer, but one whose drop does nothing: readable.
            let back = plain.back.borrow_mut().take();
            READ_AFTER_COLLECTION.set(back.is_some());
        }
    }
}

#[test]
fn a_condemned_value_with_no_drop_glue_stays_readable() {
    let holder = Gc::new(Holder {
        plain: RefCell::new(None),
    });
    let plain = Gc::new(std::mem::ManuallyDrop::new(Plain {
        back: RefCell::new(Some(holder.clone())),
    }));
    *holder.plain.borrow_mut() = Some(plain);
    drop(holder);
    assert_eq!(gcptr::collect(), 2);
    assert!(
        READ_AFTER_COLLECTION.get(),
        "the Drop read its peer, and took back the handle the peer's ManuallyDrop would leak"
    );
}

/// A `trace` that drops the last handle to an object (abusive, but safe
/// code) kills it in the middle of an analysis, whose set may hold it: its
/// death waits for the analysis to end, and happens once, whether the
/// collection condemned it meanwhile or not.
#[test]
fn a_death_during_an_analysis_waits_for_the_analysis_and_happens_once() {
    thread_local! {
        static STASH: RefCell<Vec<Gc<Node>>> = const { RefCell::new(Vec::new()) };
    }
    struct DropsWhileTracing;
    // SAFETY: owns no Gc; drops one from the stash while tracing.
    unsafe impl Trace for DropsWhileTracing {
        fn trace(&self, _: &mut Tracer) {
            STASH.with(|stash| drop(stash.borrow_mut().pop()));
        }
    }
    take_drops();
    for generation in [0, 2] {
        let abuser = Gc::new(RefCell::new(Some(DropsWhileTracing)));
        let victim = Node::new(3);
        // Lost references: both are roots of a full collection's set, and
        // young, in a young one's.
        drop(abuser.clone());
        drop(victim.clone());
        STASH.with(|stash| stash.borrow_mut().push(victim));
        let collected = gcptr::collect_generation(generation);
        assert!(collected <= 1, "generation {generation}: {collected}");
        assert_eq!(take_drops(), [3], "generation {generation}");
        assert!(STASH.with(|stash| stash.borrow().is_empty()));
        drop(abuser);
        // The collector's lists came through whole.
        let cycle = Node::new(4);
        cycle.link(&cycle);
        drop(cycle);
        assert_eq!(gcptr::collect(), 1, "generation {generation}");
        assert_eq!(take_drops(), [4], "generation {generation}");
    }
}

// ---- the provisional marks of a full collection's analysis ----

/// A full collection marks what its first pass takes in `DEAD` at once,
/// provisionally, and acquits what the mark pass finds reachable. User code
/// running in a trace meanwhile must see none of it: reading a member of
/// the set, or upgrading a weak reference to one, works as at any time.
#[test]
fn a_trace_reads_and_upgrades_members_of_a_full_collections_set() {
    thread_local! {
        static SEEN: RefCell<Vec<(u32, Option<u32>)>> = const { RefCell::new(Vec::new()) };
    }
    struct Reader {
        child: Gc<Node>,
        weak_child: Weak<Node>,
        back: RefCell<Option<Gc<Reader>>>,
    }
    // SAFETY: visits the two Gcs it owns; the reads own nothing.
    unsafe impl Trace for Reader {
        fn trace(&self, tracer: &mut Tracer) {
            self.child.trace(tracer);
            self.back.trace(tracer);
            // The child was taken into the set by the visit just above.
            let upgraded = self.weak_child.upgrade().map(|child| child.id());
            SEEN.with(|seen| seen.borrow_mut().push((self.child.id(), upgraded)));
        }
    }
    fn reader(id: u32) -> Gc<Reader> {
        let child = Node::new(id);
        let reader = Gc::new(Reader {
            weak_child: Gc::downgrade(&child),
            child,
            back: RefCell::new(None),
        });
        // Lost references: both are roots of the next full collection.
        drop(reader.clone());
        drop(reader.child.clone());
        reader
    }
    take_drops();
    // Reachable: everything is acquitted.
    let live = reader(1);
    assert_eq!(gcptr::collect(), 0);
    assert_eq!(take_drops(), []);
    let seen = SEEN.with(|seen| std::mem::take(&mut *seen.borrow_mut()));
    assert!(!seen.is_empty(), "the trace ran");
    assert!(seen.iter().all(|&read| read == (1, Some(1))), "{seen:?}");
    assert_eq!(live.child.id(), 1);
    // Garbage: a reader in a cycle with itself, and its child.
    let dead = reader(2);
    *dead.back.borrow_mut() = Some(dead.clone());
    let weak_child = dead.weak_child.clone();
    drop(dead);
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(take_drops(), [2]);
    let seen = SEEN.with(|seen| std::mem::take(&mut *seen.borrow_mut()));
    assert!(!seen.is_empty(), "the trace ran");
    assert!(seen.iter().all(|&read| read == (2, Some(2))), "{seen:?}");
    assert!(weak_child.upgrade().is_none());
    drop(live);
}

/// A trace that cuts an edge between two members of a full collection's
/// set, after the analysis counted it, kills the edge's target by count
/// in the middle of the analysis, though the analysis finds it garbage.
/// With finalizers to run first, the collection re-checks its garbage,
/// and must find that object held by its queued death, not freed: each
/// object is finalized once, dropped once, and freed once.
#[test]
fn a_trace_that_cuts_an_edge_inside_a_full_collections_set_kills_its_target_once() {
    thread_local! {
        static CUT_FROM: RefCell<Option<Weak<Linked>>> = const { RefCell::new(None) };
        static FINALIZED_IDS: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    }
    #[derive(Trace)]
    #[gc(finalize)]
    struct Linked {
        log: DropLog,
        next: RefCell<Option<Gc<Linked>>>,
    }
    impl gcptr::Finalize for Linked {
        fn finalize(&self) {
            FINALIZED_IDS.with(|ids| ids.borrow_mut().push(self.log.0));
        }
    }
    struct Cutter;
    // SAFETY: owns no Gc. Its trace cuts another object's edge (abusive,
    // but safe code).
    unsafe impl Trace for Cutter {
        fn trace(&self, _: &mut Tracer) {
            let from = CUT_FROM.with(|from| from.borrow().as_ref().and_then(Weak::upgrade));
            if let Some(from) = from {
                drop(from.next.borrow_mut().take());
            }
        }
    }
    take_drops();
    // x -> v -> x, in allocation order x, v, then the cutter: x and the
    // cutter are the roots (each lost a reference), x traced first.
    let x = Gc::new(Linked {
        log: DropLog(1),
        next: RefCell::new(None),
    });
    let v = Gc::new(Linked {
        log: DropLog(2),
        next: RefCell::new(Some(x.clone())),
    });
    *x.next.borrow_mut() = Some(v.clone());
    drop(v);
    let cutter = Gc::new(RefCell::new(Some(Cutter)));
    drop(cutter.clone());
    CUT_FROM.with(|from| *from.borrow_mut() = Some(Gc::downgrade(&x)));
    drop(x);
    gcptr::collect();
    CUT_FROM.with(|from| from.borrow_mut().take());
    assert_eq!(take_drops(), [1, 2]);
    let mut finalized = FINALIZED_IDS.with(|ids| std::mem::take(&mut *ids.borrow_mut()));
    finalized.sort_unstable();
    assert_eq!(finalized, [1, 2]);
    // The collector's lists came through whole.
    assert_eq!(gcptr::collect(), 0);
    drop(cutter);
    let cycle = Node::new(3);
    cycle.link(&cycle);
    drop(cycle);
    assert_eq!(gcptr::collect(), 1);
    assert_eq!(take_drops(), [3]);
}

// `Gc::new_cyclic` makes its object's count 1, then tracks it, which may
// run user code first: an automatic collection, or the value's trace (to
// test whether it is acyclic). That code can reach the new object through
// a `Weak` that the closure kept. Losing a reference to it there brings it
// into generation 0 (as an object set aside); tracking must not link it a
// second time, which would leave the list pointing at freed memory once
// it dies.

thread_local! {
    static KEPT_BY_CLOSURE: RefCell<Weak<Node>> = const { RefCell::new(Weak::new()) };
}

/// Upgrades and drops the `Weak` that `new_cyclic`'s closure kept: a lost
/// reference to the new object, from inside the collection.
fn touch_kept_object() {
    drop(KEPT_BY_CLOSURE.with(|k| k.borrow().upgrade()));
}

#[derive(Trace)]
struct TouchesOnDrop {
    me: RefCell<Option<Gc<TouchesOnDrop>>>,
}

impl Drop for TouchesOnDrop {
    fn drop(&mut self) {
        touch_kept_object();
    }
}

#[derive(Trace)]
#[gc(finalize)]
struct TouchesOnFinalize {
    me: RefCell<Option<Gc<TouchesOnFinalize>>>,
}

impl gcptr::Finalize for TouchesOnFinalize {
    fn finalize(&self) {
        touch_kept_object();
    }
}

#[test]
fn an_object_reached_while_new_cyclic_tracks_it_is_linked_once() {
    thread::spawn(|| {
        for finalizer in [false, true] {
            gcptr::enable();
            gcptr::set_threshold([1, 10, 10]);
            // Garbage whose drop (or finalizer) runs in the next automatic
            // collection, which the next allocation starts.
            if finalizer {
                let g = Gc::new(TouchesOnFinalize {
                    me: RefCell::new(None),
                });
                *g.me.borrow_mut() = Some(g.clone());
            } else {
                let g = Gc::new(TouchesOnDrop {
                    me: RefCell::new(None),
                });
                *g.me.borrow_mut() = Some(g.clone());
            }
            let node = Gc::new_cyclic(|me| {
                KEPT_BY_CLOSURE.with(|k| *k.borrow_mut() = me.clone());
                Node {
                    log: DropLog(77),
                    edges: RefCell::new(Vec::new()),
                }
            });
            gcptr::disable();
            assert!(gcptr::is_tracked(&node));
            drop(node);
            KEPT_BY_CLOSURE.with(|k| *k.borrow_mut() = Weak::new());
            // The lists are walked: a second link would reach freed memory.
            gcptr::collect_generation(0);
            gcptr::collect();
            assert_eq!(take_drops(), [77], "the new object died once");
        }
    })
    .join()
    .unwrap();
}

thread_local! {
    static KEPT_FOR_TRACE: RefCell<Weak<FixedEdges>> = const { RefCell::new(Weak::new()) };
}

/// Owns no `Gc`; its trace upgrades and drops the `Weak` that
/// `new_cyclic`'s closure kept, a lost reference to the new object.
struct TouchesOnTrace;

// SAFETY: owns no `Gc`, so it visits none; it changes nothing it is in.
unsafe impl Trace for TouchesOnTrace {
    fn trace(&self, _tracer: &mut Tracer) {
        drop(KEPT_FOR_TRACE.with(|k| k.borrow().upgrade()));
    }

    fn __may_own_gc(_depth: u32) -> bool {
        false
    }
}

/// Its edges never change, so tracking traces it to see whether it owns
/// only acyclic objects; it owns a tracked one, so it is tracked.
#[derive(Trace)]
struct FixedEdges {
    hook: TouchesOnTrace,
    tracked: Gc<RefCell<Vec<Gc<u8>>>>,
    log: DropLog,
}

#[test]
fn an_object_reached_by_the_trace_that_tracking_runs_is_linked_once() {
    thread::spawn(|| {
        gcptr::disable();
        gcptr::collect();
        let tracked = Gc::new(RefCell::new(Vec::new()));
        let object = Gc::new_cyclic(|me| {
            KEPT_FOR_TRACE.with(|k| *k.borrow_mut() = me.clone());
            FixedEdges {
                hook: TouchesOnTrace,
                tracked: tracked.clone(),
                log: DropLog(78),
            }
        });
        KEPT_FOR_TRACE.with(|k| *k.borrow_mut() = Weak::new());
        assert!(gcptr::is_tracked(&object));
        assert_eq!(
            gcptr::count()[0],
            2,
            "each new object is in generation 0 once"
        );
        drop(object);
        assert_eq!(take_drops(), [78]);
        // The list is walked: a second link would reach freed memory.
        assert_eq!(gcptr::collect_generation(0), 0);
        assert_eq!(gcptr::collect(), 0);
    })
    .join()
    .unwrap();
}

// ------------------------------------ addresses from the inspection API ---

#[test]
fn the_addresses_referents_gives_can_be_read_as_gc_as_ptr_s() {
    // Documented to be `Gc::as_ptr`'s, with the same provenance: under
    // Stacked Borrows (Miri), a read through one made from a `&Header`
    // was undefined behaviour.
    let (a, b) = (Gc::new(7u32), Gc::new(8u32));
    let pair = RefCell::new(vec![a.clone(), b.clone()]);
    let seen = gcptr::referents(&pair);
    assert_eq!(seen, [Gc::as_ptr(&a).cast::<()>(), Gc::as_ptr(&b).cast()]);
    // SAFETY: `a` and `b` keep the values alive, and the addresses are
    // `Gc::as_ptr`'s.
    let read = unsafe { [*seen[0].cast::<u32>(), *seen[1].cast::<u32>()] };
    assert_eq!(read, [7, 8]);
}

#[test]
fn the_address_of_an_object_ref_can_be_read_as_gc_as_ptr_s() {
    let leaf = Gc::new(5u64);
    let holder = Gc::new(RefCell::new((Some(leaf.clone()), 42u64)));
    let found = gcptr::referrers(&leaf);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].address(), Gc::as_ptr(&holder).cast::<()>());
    let value = found[0].address().cast::<RefCell<(Option<Gc<u64>>, u64)>>();
    // SAFETY: `holder` keeps the value alive, and the address is
    // `Gc::as_ptr`'s.
    assert_eq!(unsafe { (*value).borrow().1 }, 42);
}

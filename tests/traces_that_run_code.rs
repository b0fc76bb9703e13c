//! A hand-written `Trace` may run code: its contract forbids only changing
//! what it traces. It may clone a `Gc`, upgrade a `Weak`, drop references,
//! begin to watch an object, or run a collection, and the collector must
//! stay sound whatever it does. Reviews of the collector found each case
//! below; the memory errors they caused show under Miri, which CI runs
//! over this file, and the tests assert what a program can see.

mod support;

use std::cell::{Cell, RefCell};

use gcptr::{Gc, Trace, Tracer, WeakWithCallback};
use support::{take_drops, DropLog};

// A hand-written trace may begin to watch a member of the set it is traced
// in (the member still upgrades while the full collection analyses it).
// The gathering pass read whether its set needs events as it took each
// member in, so that answer is stale: the set must not be freed without
// telling the new watcher.

thread_local! {
    static WATCH_FROM_TRACE: Cell<u8> = const { Cell::new(0) };
    static DEATHS_SEEN: Cell<usize> = const { Cell::new(0) };
    static CALLBACKS: RefCell<Vec<gcptr::DeathCallback>> = const { RefCell::new(Vec::new()) };
    static WATCHING_SET: RefCell<gcptr::WeakSet<Watcher>> = RefCell::new(gcptr::WeakSet::new());
}

const BY_CALLBACK: u8 = 1;
const BY_WEAK_SET: u8 = 2;

struct Watcher {
    next: RefCell<Option<Gc<Watcher>>>,
    aside: RefCell<Option<Gc<Watcher>>>,
}

// SAFETY: visits both of its `Gc`s once, and changes nothing of `self`.
unsafe impl Trace for Watcher {
    fn trace(&self, tracer: &mut Tracer) {
        self.next.trace(tracer);
        self.aside.trace(tracer);
        let how = WATCH_FROM_TRACE.with(|w| w.replace(0));
        if let Some(next) = &*self.next.borrow() {
            match how {
                BY_CALLBACK => {
                    let seen = || DEATHS_SEEN.with(|d| d.set(d.get() + 1));
                    let callback = Gc::on_death(next, seen);
                    CALLBACKS.with(|c| c.borrow_mut().push(callback));
                }
                BY_WEAK_SET => {
                    WATCHING_SET.with(|s| s.borrow_mut().insert(next));
                }
                _ => {}
            }
        }
    }
}

fn watcher() -> Gc<Watcher> {
    Gc::new(Watcher {
        next: RefCell::new(None),
        aside: RefCell::new(None),
    })
}

/// Drops a two-object cycle; with `aside`, one of them also holds an
/// object set aside by `Gc::get_mut`, which keeps the set from being
/// dropped before the end of the pass.
fn drop_watcher_pair(aside: bool) {
    let (a, b) = (watcher(), watcher());
    *a.next.borrow_mut() = Some(b.clone());
    *b.next.borrow_mut() = Some(a.clone());
    if aside {
        let mut set_aside = watcher();
        assert!(Gc::get_mut(&mut set_aside).is_some());
        *a.aside.borrow_mut() = Some(set_aside);
    }
}

#[test]
fn a_death_callback_registered_by_a_trace_runs_when_its_object_dies() {
    gcptr::disable();
    for aside in [false, true] {
        DEATHS_SEEN.with(|d| d.set(0));
        drop_watcher_pair(aside);
        WATCH_FROM_TRACE.with(|w| w.set(BY_CALLBACK));
        gcptr::collect();
        assert_eq!(
            DEATHS_SEEN.with(Cell::get),
            1,
            "the watched object died (set aside: {aside}); its callback must run"
        );
        // Its object is gone: cancelling touches nothing of it.
        for callback in CALLBACKS.with(|c| std::mem::take(&mut *c.borrow_mut())) {
            assert!(!callback.is_pending());
            assert!(!callback.cancel(), "nothing left to cancel");
        }
    }
    gcptr::enable();
}

#[test]
fn a_weak_set_entry_made_by_a_trace_leaves_with_its_object() {
    gcptr::disable();
    drop_watcher_pair(false);
    WATCH_FROM_TRACE.with(|w| w.set(BY_WEAK_SET));
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(
        WATCHING_SET.with(|s| s.borrow().len()),
        0,
        "len() is exact: the entry's object died"
    );
    gcptr::enable();
}

// The collection cancels the callbacks that garbage owns, tracing each
// object in turn and dropping what it cancelled: user code, which may kill
// an object of the set not traced yet, by count, through `Gc`s that a
// trace kept. That object's value is gone, and must not be traced.

thread_local! {
    /// What each object's trace kept: a clone of its peer.
    static KEPT_PEERS: RefCell<[Option<Gc<Cancelling>>; 2]> = const { RefCell::new([None, None]) };
    static SURVIVOR: RefCell<Option<Gc<Cancelling>>> = const { RefCell::new(None) };
    static TRAP_SPRUNG: Cell<bool> = const { Cell::new(false) };
}

struct Cancelling {
    log: DropLog,
    peer: RefCell<Option<Gc<Cancelling>>>,
    leaves: Vec<Gc<u32>>,
    callback: Option<WeakWithCallback<u32>>,
}

// SAFETY: visits every `Gc` it owns and shows its callback; it also keeps
// a clone of its peer in a thread-local, which changes nothing of `self`.
unsafe impl Trace for Cancelling {
    fn trace(&self, tracer: &mut Tracer) {
        self.peer.trace(tracer);
        self.leaves.trace(tracer);
        self.callback.trace(tracer);
        if !TRAP_SPRUNG.with(Cell::get) {
            let peer = self.peer.borrow().clone();
            KEPT_PEERS.with(|k| k.borrow_mut()[self.log.0 as usize] = peer);
        }
    }
}

/// Captured by each callback, so dropped when the collection cancels it:
/// kills object 1 by count (cutting 0's edge to it and dropping the clone
/// kept of it), and keeps object 0.
struct Trap;

impl Drop for Trap {
    fn drop(&mut self) {
        if TRAP_SPRUNG.with(|t| t.replace(true)) {
            return;
        }
        let [one, zero] = KEPT_PEERS.with(|k| {
            let mut k = k.borrow_mut();
            [k[0].take(), k[1].take()]
        });
        let (Some(one), Some(zero)) = (one, zero) else {
            return;
        };
        drop(zero.peer.borrow_mut().take());
        drop(one);
        SURVIVOR.with(|s| *s.borrow_mut() = Some(zero));
    }
}

#[test]
fn a_cancelled_callback_that_kills_an_object_of_the_set_is_survived() {
    gcptr::disable();
    let watched = Gc::new(0u32);
    let cancelling = |id| {
        let trap = Trap;
        Gc::new(Cancelling {
            log: DropLog(id),
            peer: RefCell::new(None),
            leaves: (0..4).map(Gc::new).collect(),
            callback: Some(Gc::downgrade_with(&watched, move || {
                let _ = &trap;
            })),
        })
    };
    let (a, b) = (cancelling(0), cancelling(1));
    *a.peer.borrow_mut() = Some(b.clone());
    *b.peer.borrow_mut() = Some(a.clone());
    drop((a, b));
    assert_eq!(gcptr::collect(), 2);
    assert!(
        TRAP_SPRUNG.with(Cell::get),
        "a cancelled callback was dropped"
    );
    // Object 1 died by count, object 0 with the garbage: the handle that
    // the trap kept of it keeps its memory, not its value.
    assert_eq!(take_drops(), [0, 1], "each died once");
    let kept = SURVIVOR.with(|s| s.borrow_mut().take()).expect("kept");
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| kept.leaves.len()));
    assert!(read.is_err(), "its value was dropped");
    drop(kept);
    assert_eq!(gcptr::collect(), 0);
    assert!(take_drops().is_empty());
    gcptr::enable();
}

// `gcptr::referrers` runs the trace of every listed object: a trace that
// drops the last reference to an object listed after it, or collects,
// leaves it dead before its turn.

#[derive(Trace)]
struct Plain {
    log: DropLog,
    next: RefCell<Option<Gc<Plain>>>,
}

thread_local! {
    static HELD: RefCell<Option<Gc<Plain>>> = const { RefCell::new(None) };
}

/// Drops what `HELD` holds, or (`Collects`) runs a collection.
enum Meddler {
    Drops,
    Collects,
}

// SAFETY: owns no `Gc`, visits none, changes nothing of `self`.
unsafe impl Trace for Meddler {
    fn trace(&self, _: &mut Tracer) {
        match self {
            Meddler::Drops => drop(HELD.with(|h| h.borrow_mut().take())),
            Meddler::Collects => drop(gcptr::collect()),
        }
    }
}

#[test]
fn referrers_survives_traces_that_kill_objects_listed_after_them() {
    gcptr::disable();
    let target = Gc::new(7u32);
    for meddler in [Meddler::Drops, Meddler::Collects] {
        let meddler = Gc::new(meddler); // listed before what it kills
        let a = Gc::new(Plain {
            log: DropLog(1),
            next: RefCell::new(None),
        });
        let b = Gc::new(Plain {
            log: DropLog(2),
            next: RefCell::new(Some(a.clone())),
        });
        *a.next.borrow_mut() = Some(b.clone());
        if matches!(*meddler, Meddler::Drops) {
            drop(b);
            *a.next.borrow_mut() = None;
            HELD.with(|h| *h.borrow_mut() = Some(a));
        } else {
            drop((a, b)); // a garbage cycle
        }
        let holder = Gc::new(RefCell::new(vec![target.clone()]));
        let found = gcptr::referrers(&target);
        assert_eq!(found.len(), 1, "only the holder refers to the target");
        assert!(Gc::ptr_eq(&found[0].downcast().unwrap(), &holder));
        assert_eq!(take_drops(), [1, 2], "what the trace killed died once");
    }
    gcptr::enable();
}

thread_local! {
    /// The id of the object whose trace is running (0: none).
    static TRACING: Cell<u32> = const { Cell::new(0) };
    /// Ids of the objects whose value was dropped while their own trace ran.
    static DROPPED_WHILE_TRACED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    /// What each trace that meddled read of its own value afterwards.
    static READ_AFTER: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
    /// What the next trace that counts down to 1 does.
    static MEDDLE: Cell<Meddle> = const { Cell::new(Meddle::Nothing) };
    /// Traces left before the one that meddles (0: none).
    static COUNTDOWN: Cell<u32> = const { Cell::new(0) };
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Meddle {
    Nothing,
    /// `gcptr::collect()`.
    Collects,
    /// Allocates tracked objects past generation 0's threshold.
    Allocates,
    /// Takes the peer's edge to `self` out of the peer (the peer's
    /// `RefCell`, which neither contains `self` nor is contained by it)
    /// and drops it.
    CutsPeersEdgeToMe,
}

/// A node of a two-object cycle whose trace may meddle (see `Meddle`).
struct MeddlingNode {
    log: DropLog,
    payload: Vec<u64>,
    peer: RefCell<Option<Gc<MeddlingNode>>>,
}

fn meddling_node(id: u32) -> Gc<MeddlingNode> {
    Gc::new(MeddlingNode {
        log: DropLog(id),
        payload: vec![1, 2, 3],
        peer: RefCell::new(None),
    })
}

/// Two meddlers in a cycle, with no handle left: garbage.
fn garbage_pair() {
    let (a, b) = (meddling_node(1), meddling_node(2));
    *a.peer.borrow_mut() = Some(b.clone());
    *b.peer.borrow_mut() = Some(a.clone());
}

fn should_meddle() -> bool {
    let n = COUNTDOWN.with(Cell::get);
    if n == 0 {
        return false;
    }
    COUNTDOWN.with(|c| c.set(n - 1));
    n == 1
}

// SAFETY: visits the one `Gc` it owns. What it runs changes nothing of
// `self` and borrows none of its `RefCell`s mutably.
unsafe impl Trace for MeddlingNode {
    fn trace(&self, tracer: &mut Tracer) {
        let outer = TRACING.with(|t| t.replace(self.log.0));
        if should_meddle() {
            match MEDDLE.with(Cell::get) {
                Meddle::Nothing => {}
                Meddle::Collects => drop(gcptr::collect()),
                Meddle::Allocates => {
                    for _ in 0..4 {
                        drop(Gc::new(RefCell::new(None::<Gc<u8>>)));
                    }
                }
                Meddle::CutsPeersEdgeToMe => {
                    // A shared borrow of our own cell; a mutable one of
                    // the peer's.
                    let peer = self.peer.borrow().clone();
                    if let Some(peer) = peer {
                        let to_me = peer.peer.borrow_mut().take();
                        drop(peer);
                        drop(to_me);
                    }
                }
            }
            // Our value must still be there.
            let sum = self.payload.iter().sum::<u64>();
            READ_AFTER.with(|r| r.borrow_mut().push(sum));
        }
        self.peer.trace(tracer);
        TRACING.with(|t| t.set(outer));
    }
}

impl Drop for MeddlingNode {
    fn drop(&mut self) {
        if TRACING.with(Cell::get) == self.log.0 {
            DROPPED_WHILE_TRACED.with(|d| d.borrow_mut().push(self.log.0));
        }
    }
}

fn reset() {
    TRACING.with(|t| t.set(0));
    COUNTDOWN.with(|c| c.set(0));
    MEDDLE.with(|m| m.set(Meddle::Nothing));
    take_drops();
    DROPPED_WHILE_TRACED.with(|d| d.borrow_mut().clear());
    READ_AFTER.with(|r| r.borrow_mut().clear());
}

fn dropped_while_traced() -> Vec<u32> {
    DROPPED_WHILE_TRACED.with(|d| std::mem::take(&mut *d.borrow_mut()))
}

fn read_after() -> Vec<u64> {
    READ_AFTER.with(|r| std::mem::take(&mut *r.borrow_mut()))
}

// `referrers` runs every listed object's trace, and the collector runs
// garbage objects' traces once more, outside the analysis, to cancel the
// callbacks they own. There a trace that collects (or allocates, and so
// collects automatically) while its own object is garbage, or that kills
// its own object by count, must not have its value dropped under it: each
// object is held by a strong reference while its trace runs.

fn referrers_with(meddle: Meddle) {
    gcptr::disable();
    gcptr::collect();
    reset();
    let target = Gc::new(0u32);
    garbage_pair();
    MEDDLE.with(|m| m.set(meddle));
    COUNTDOWN.with(|c| c.set(1)); // the first trace `referrers` runs
    if meddle == Meddle::Allocates {
        gcptr::enable();
        gcptr::set_threshold([1, 10, 10]);
    }
    let found = gcptr::referrers(&target);
    gcptr::disable();
    gcptr::set_threshold([700, 10, 10]);
    assert!(found.is_empty());
    drop(found);
    assert_eq!(
        dropped_while_traced(),
        [0u32; 0],
        "{meddle:?}: a value was dropped while its own trace ran"
    );
    assert_eq!(
        read_after(),
        [6],
        "{meddle:?}: the trace read its own value"
    );
    gcptr::collect();
    assert_eq!(take_drops(), [1, 2], "{meddle:?}: each object died once");
    gcptr::enable();
}

#[test]
fn referrers_with_a_trace_that_collects_keeps_the_traced_value_alive() {
    referrers_with(Meddle::Collects);
}

#[test]
fn referrers_with_a_trace_that_allocates_keeps_the_traced_value_alive() {
    referrers_with(Meddle::Allocates);
}

#[test]
fn referrers_with_a_trace_that_kills_its_own_object_keeps_the_value_until_it_returns() {
    referrers_with(Meddle::CutsPeersEdgeToMe);
}

// A collection that has weak references with callbacks traces each
// garbage object once more, to cancel the callbacks the garbage owns. A
// trace that cuts its peer's edge to its own object kills it then.

#[test]
fn a_trace_that_kills_its_own_object_while_callbacks_are_cancelled_keeps_its_value() {
    gcptr::disable();
    let watched = Gc::new(0u32);
    // A weak reference with a callback: collections cancel callbacks.
    let _with_callback = Gc::downgrade_with(&watched, || ());
    for generation in [0, 2] {
        // Each trace count, in a young collection and a full one: two
        // traces of the analysis, then the two that cancel callbacks.
        for n in 1..=4 {
            gcptr::collect();
            reset();
            garbage_pair();
            MEDDLE.with(|m| m.set(Meddle::CutsPeersEdgeToMe));
            COUNTDOWN.with(|c| c.set(n));
            gcptr::collect_generation(generation);
            COUNTDOWN.with(|c| c.set(0));
            gcptr::collect();
            assert_eq!(
                dropped_while_traced(),
                [0u32; 0],
                "generation {generation}, trace {n}: a value was dropped while its own trace ran"
            );
            assert_eq!(
                read_after(),
                [6],
                "generation {generation}, trace {n}: the trace that meddled read its own value"
            );
            assert_eq!(
                take_drops(),
                [1, 2],
                "generation {generation}, trace {n}: each object died once"
            );
        }
    }
    gcptr::enable();
}

// A trace may drop a reference while an analysis runs. The object it
// pointed to is quiet then (it reported an earlier loss, or a full
// collection took it in condemned in advance), so the loss goes
// unreported, and the analysis counted the reference. Had it been a
// cycle's last handle from outside, the cycle would be garbage that no
// object reports, missed by every collection that starts from reports.
// So an analysis that leaves such an object alive reports the loss for
// it. `thread_exit_fuzz_found.rs` has the first analysis of a full
// collection, as the fuzzer found it; here is the second look at garbage
// whose finalizer resurrected it, in a young collection and a full one.

thread_local! {
    /// Where a finalizer puts its peer, and where an armed trace drops it.
    static KEPT: RefCell<Option<Gc<Keeper>>> = const { RefCell::new(None) };
}

/// Drops the handle in `KEPT` from its trace, if armed.
struct KeptDropper {
    armed: bool,
}

// SAFETY: owns no `Gc`; what it drops is held by `KEPT`.
unsafe impl Trace for KeptDropper {
    fn trace(&self, _: &mut Tracer) {
        if self.armed {
            // (`try_with`: a failing test leaves it to thread exit.)
            drop(KEPT.try_with(|kept| kept.borrow_mut().take()));
        }
    }
}

#[derive(Trace)]
#[gc(finalize)]
struct Keeper {
    log: DropLog,
    trap: KeptDropper,
    peer: RefCell<Option<Gc<Keeper>>>,
}

impl gcptr::Finalize for Keeper {
    fn finalize(&self) {
        // The armed one resurrects its peer.
        if self.trap.armed {
            KEPT.with(|kept| *kept.borrow_mut() = self.peer.borrow().clone());
        }
    }
}

#[test]
fn a_cycle_whose_resurrecting_handle_a_trace_drops_in_the_second_look_is_collected_next() {
    gcptr::disable();
    for generation in [0, 2] {
        take_drops();
        let keeper = |id, armed| {
            Gc::new(Keeper {
                log: DropLog(id),
                trap: KeptDropper { armed },
                peer: RefCell::new(None),
            })
        };
        let (a, b) = (keeper(1, true), keeper(2, false));
        *a.peer.borrow_mut() = Some(b.clone());
        *b.peer.borrow_mut() = Some(a.clone());
        drop((a, b));
        // The cycle is garbage; `a`'s finalizer puts `b` in `KEPT`. The
        // second look finds `b` held from there, while `a`'s trace drops
        // that handle: garbage again, with no finalizer left to run.
        assert_eq!(
            gcptr::collect_generation(generation),
            0,
            "generation {generation}"
        );
        assert!(KEPT.with(|kept| kept.borrow().is_none()));
        assert_eq!(take_drops(), [0u32; 0], "generation {generation}");
        assert_eq!(gcptr::collect(), 2, "generation {generation}");
        assert_eq!(take_drops(), [1, 2], "generation {generation}");
    }
    gcptr::enable();
}

// A trace may drop the last reference to an object of the set it is
// traced in, after the analysis counted that reference as internal: the
// object is garbage with a count of zero, and its death waits for the
// analysis to end. A watcher's callback, run before the garbage's
// finalizers, can then let that death run: the object's finalizer runs
// there, and may resurrect its peers. No finalizer is left for the
// collection's own loop to run, yet the garbage must be looked at again.

thread_local! {
    /// The object outside the garbage whose edge a trace cuts.
    static HOLDER: RefCell<Option<Gc<Link>>> = const { RefCell::new(None) };
    /// Where the finalizer puts the peer it resurrects.
    static RESCUED: RefCell<Option<Gc<Link>>> = const { RefCell::new(None) };
}

/// Takes `HOLDER`'s edge out from its trace, once armed.
struct EdgeCutter {
    armed: Cell<bool>,
}

// SAFETY: owns no `Gc`; what it drops is held by `HOLDER`'s object, whose
// `RefCell` does not hold this value.
unsafe impl Trace for EdgeCutter {
    fn trace(&self, _: &mut Tracer) {
        if self.armed.replace(false) {
            let holder = HOLDER.with(|h| h.borrow().clone());
            let cut = holder.and_then(|h| h.rescuer.borrow_mut().take());
            drop(cut);
        }
    }
}

#[derive(Trace)]
struct Link {
    log: DropLog,
    rescuer: RefCell<Option<Gc<Rescuer>>>,
    next: RefCell<Option<Gc<Link>>>,
    cutter: EdgeCutter,
}

#[derive(Trace)]
#[gc(finalize)]
struct Rescuer {
    log: DropLog,
    next: RefCell<Option<Gc<Link>>>,
}

impl gcptr::Finalize for Rescuer {
    fn finalize(&self) {
        RESCUED.with(|r| *r.borrow_mut() = self.next.borrow().clone());
    }
}

fn link(id: u32, armed: bool) -> Gc<Link> {
    Gc::new(Link {
        log: DropLog(id),
        rescuer: RefCell::new(None),
        next: RefCell::new(None),
        cutter: EdgeCutter {
            armed: Cell::new(armed),
        },
    })
}

#[test]
fn a_finalizer_that_a_callback_lets_run_before_the_finalizers_resurrects() {
    gcptr::disable();
    take_drops();
    // In generation 0, traced in this order: holder, rescuer, peer,
    // watched (whose trace cuts holder -> rescuer).
    let holder = link(1, false);
    let rescuer = Gc::new(Rescuer {
        log: DropLog(2),
        next: RefCell::new(None),
    });
    let (peer, watched) = (link(3, false), link(4, true));
    *holder.rescuer.borrow_mut() = Some(rescuer.clone());
    *rescuer.next.borrow_mut() = Some(peer.clone());
    *peer.next.borrow_mut() = Some(watched.clone());
    // The callback lets go of a tracked object: its death runs the deaths
    // that waited, the rescuer's among them.
    let callback = Gc::on_death(&watched, || drop(link(5, false)));
    HOLDER.with(|h| *h.borrow_mut() = Some(holder.clone()));
    drop((rescuer, peer, watched));

    // The rescuer died by count; the peer, and `watched` through it, live
    // on (`watched`'s callback ran: it had been found to be garbage).
    assert_eq!(gcptr::collect_generation(0), 1);
    let peer = RESCUED
        .with(|r| r.borrow_mut().take())
        .expect("the finalizer ran");
    assert_eq!(
        take_drops(),
        [2, 5],
        "the rescuer and the callback's object"
    );
    assert!(!callback.is_pending());
    let watched = peer.next.borrow().clone().expect("intact");
    assert!(watched.next.borrow().is_none());
    drop((peer, watched));
    assert_eq!(take_drops(), [3, 4]);
    HOLDER.with(|h| h.borrow_mut().take());
    drop(holder);
    assert_eq!(take_drops(), [1]);
    gcptr::enable();
}

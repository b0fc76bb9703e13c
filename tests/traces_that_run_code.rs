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

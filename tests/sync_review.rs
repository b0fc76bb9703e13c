//! What a review of `gcptr::sync` checked: panics and re-entrancy of the
//! drops that a home thread releases (from `release_returned`, `collect`,
//! `ThreadBound::new`, the automatic collection of `Gc::new`,
//! `Gc::new_cyclic` and a slice's `Gc::from`, a finalizer, a trace during
//! an analysis, thread exit), the order of the home thread's thread-local
//! destructors, and depth. It found two faults, both fixed: a list a
//! million deep linked through `ThreadBound`s overflowed the stack when
//! dropped (its holders were untracked, and died recursively), and
//! `ThreadBound::new` aborted when a released drop panicked and its own
//! argument's drop panicked too (it was dropped by the unwinding).

use std::cell::RefCell;
use std::panic;
use std::sync::mpsc::{channel, Sender};
use std::thread::{self, ThreadId};

use gcptr::sync::{release_returned, ThreadBound};
use gcptr::{Finalize, Gc, Trace, Tracer};

mod support;

use support::{drop_elsewhere, dropped_on, runs_here};

type Drops = Sender<(u32, ThreadId)>;

/// What a `Probe` does in its `Drop`.
#[derive(Clone, Copy, PartialEq)]
enum OnDrop {
    Nothing,
    Panic,
    /// Calls `release_returned`, `collect`, makes a `ThreadBound` and
    /// drops it, and panics.
    Meddle,
}

struct Probe {
    id: u32,
    drops: Drops,
    on_drop: OnDrop,
    /// Dropped with the probe: handles of this or other threads.
    held: Vec<ThreadBound<Probe>>,
    gc: Option<Gc<Cyc>>,
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = self.drops.send((self.id, thread::current().id()));
        match self.on_drop {
            OnDrop::Nothing => {}
            OnDrop::Panic => panic!("probe {} panics in its drop", self.id),
            OnDrop::Meddle => {
                release_returned();
                gcptr::collect();
                let inner = ThreadBound::new(probe(self.id + 1000, &self.drops));
                drop(inner.clone());
                drop(inner);
                drop(std::mem::take(&mut self.held));
                let _ = Gc::new(Cyc {
                    id: 0,
                    next: RefCell::new(None),
                });
                panic!("probe {} meddles and panics", self.id);
            }
        }
    }
}

fn probe(id: u32, drops: &Drops) -> Probe {
    probe_with(id, drops, OnDrop::Nothing)
}

fn probe_with(id: u32, drops: &Drops, on_drop: OnDrop) -> Probe {
    Probe {
        id,
        drops: drops.clone(),
        on_drop,
        held: Vec::new(),
        gc: None,
    }
}

#[derive(Trace)]
struct Cyc {
    #[gc(skip)]
    id: u32,
    next: RefCell<Option<Gc<Cyc>>>,
}

/// Every `Cyc` dropped, with its thread: ids are unique to their test.
static CYC_LOG: std::sync::Mutex<Vec<(u32, ThreadId)>> = std::sync::Mutex::new(Vec::new());

impl Drop for Cyc {
    fn drop(&mut self) {
        CYC_LOG
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((self.id, thread::current().id()));
    }
}

/// The `Cyc`s of ids in `ids` dropped so far, each on `home`.
fn cycs_dropped(ids: std::ops::Range<u32>, home: ThreadId) -> Vec<u32> {
    let log = CYC_LOG.lock().unwrap_or_else(|e| e.into_inner());
    let mut seen: Vec<u32> = log
        .iter()
        .filter(|(id, _)| ids.contains(id))
        .map(|&(id, on)| {
            assert_eq!(on, home, "cyc {id} dropped off its home thread");
            id
        })
        .collect();
    seen.sort_unstable();
    seen
}

fn cyc_pair(a: u32, b: u32) -> Gc<Cyc> {
    let x = Gc::new(Cyc {
        id: a,
        next: RefCell::new(None),
    });
    let y = Gc::new(Cyc {
        id: b,
        next: RefCell::new(Some(x.clone())),
    });
    *x.next.borrow_mut() = Some(y);
    x
}

// ---------------------------------------------------------------------
// Panics from releases that an allocation's automatic collection runs.

/// The new object of each allocating constructor, when the automatic
/// collection that its tracking starts releases a value whose drop panics.
fn automatic_collection_releases_a_panicking_drop(base: u32, make: fn(u32) -> usize) {
    let (tx, rx) = channel();
    let home = thread::current().id();
    let warm = cyc_pair(base + 1, base + 2);
    let handle = ThreadBound::new(probe_with(1, &tx, OnDrop::Panic));
    drop_elsewhere(handle);
    // The next tracked allocation collects.
    gcptr::set_threshold([gcptr::count()[0], 10, 10]);
    let caught = panic::catch_unwind(|| make(base));
    gcptr::set_threshold([700, 10, 10]);
    let payload = caught.unwrap_err();
    assert_eq!(
        support::panic_message(&payload),
        "probe 1 panics in its drop"
    );
    assert_eq!(dropped_on(&rx, home), [1]);
    // The new object died with the unwinding, once.
    assert_eq!(cycs_dropped(base..base + 10, home), [base]);
    assert_eq!(gcptr::collect(), 0);
    drop(warm);
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(
        cycs_dropped(base..base + 10, home),
        [base, base + 1, base + 2]
    );
}

#[test]
fn gc_new_whose_automatic_collection_releases_a_panicking_drop() {
    automatic_collection_releases_a_panicking_drop(100, |id| {
        let new = Gc::new(Cyc {
            id,
            next: RefCell::new(None),
        });
        Gc::strong_count(&new)
    });
}

#[test]
fn gc_new_cyclic_whose_automatic_collection_releases_a_panicking_drop() {
    automatic_collection_releases_a_panicking_drop(200, |id| {
        #[derive(Trace)]
        struct Me {
            me: gcptr::Weak<Me>,
            c: Cyc,
        }
        let new = Gc::new_cyclic(|me| Me {
            me: me.clone(),
            c: Cyc {
                id,
                next: RefCell::new(None),
            },
        });
        Gc::strong_count(&new)
    });
}

#[test]
fn gc_slice_whose_automatic_collection_releases_a_panicking_drop() {
    automatic_collection_releases_a_panicking_drop(300, |id| {
        let new: Gc<[Cyc]> = Gc::from(vec![Cyc {
            id,
            next: RefCell::new(None),
        }]);
        new.len()
    });
}

// ---------------------------------------------------------------------
// Re-entrancy of a released drop.

#[test]
fn a_released_drop_that_meddles_and_panics() {
    let (tx, rx) = channel();
    let home = thread::current().id();
    let mut meddler = probe_with(1, &tx, OnDrop::Meddle);
    // A handle of this thread (dropped at home), and one of another
    // thread (sent there).
    meddler.held.push(ThreadBound::new(probe(2, &tx)));
    meddler.gc = Some(cyc_pair(400, 401));
    let (other_tx, other_rx) = channel();
    let (go_tx, go_rx) = channel::<()>();
    let other = thread::spawn(move || {
        let (tx, rx) = channel();
        other_tx.send(ThreadBound::new(probe(3, &tx))).unwrap();
        go_rx.recv().unwrap();
        let dropped = release_returned();
        (dropped, dropped_on(&rx, thread::current().id()))
    });
    meddler.held.push(other_rx.recv().unwrap());
    // Two handles sent home, one meddles.
    let handles = (ThreadBound::new(meddler), ThreadBound::new(probe(4, &tx)));
    drop_elsewhere(handles);
    let payload = panic::catch_unwind(release_returned).unwrap_err();
    assert_eq!(
        support::panic_message(&payload),
        "probe 1 meddles and panics"
    );
    assert_eq!(dropped_on(&rx, home), [1, 2, 4, 1001]);
    go_tx.send(()).unwrap();
    assert_eq!(other.join().unwrap(), (1, vec![3]));
    gcptr::collect();
    assert_eq!(cycs_dropped(400..410, home), [400, 401]);
}

#[test]
fn a_meddling_drop_released_by_collect_and_by_new() {
    for via_new in [false, true] {
        let (tx, rx) = channel();
        let home = thread::current().id();
        let mut meddler = probe_with(1, &tx, OnDrop::Meddle);
        let base = if via_new { 500 } else { 510 };
        meddler.gc = Some(cyc_pair(base, base + 1));
        drop_elsewhere(ThreadBound::new(meddler));
        let payload = if via_new {
            panic::catch_unwind(|| drop(ThreadBound::new(probe(5, &tx)))).unwrap_err()
        } else {
            panic::catch_unwind(gcptr::collect).unwrap_err()
        };
        assert_eq!(
            support::panic_message(&payload),
            "probe 1 meddles and panics"
        );
        gcptr::collect();
        assert_eq!(
            dropped_on(&rx, home),
            if via_new {
                vec![1, 5, 1001]
            } else {
                vec![1, 1001]
            }
        );
        assert_eq!(cycs_dropped(base..base + 2, home), [base, base + 1]);
    }
}

// ---------------------------------------------------------------------
// Releases from inside a collection.

#[derive(Trace)]
#[gc(finalize)]
struct Releaser {
    #[gc(skip)]
    drops: Drops,
    next: RefCell<Option<Gc<Releaser>>>,
}

impl Finalize for Releaser {
    fn finalize(&self) {
        // Releases what was sent home, mid-collection.
        let _ = ThreadBound::new(probe(50, &self.drops));
    }
}

#[test]
fn a_finalizer_that_makes_a_thread_bound_releases_mid_collection() {
    let (tx, rx) = channel();
    let home = thread::current().id();
    let a = Gc::new(Releaser {
        drops: tx.clone(),
        next: RefCell::new(None),
    });
    let b = Gc::new(Releaser {
        drops: tx.clone(),
        next: RefCell::new(Some(a.clone())),
    });
    *a.next.borrow_mut() = Some(b);
    let mut meddler = probe_with(1, &tx, OnDrop::Meddle);
    meddler.gc = Some(cyc_pair(600, 601));
    drop_elsewhere(ThreadBound::new(meddler));
    drop(a);
    gcptr::disable();
    let caught = panic::catch_unwind(gcptr::collect);
    gcptr::enable();
    let payload = caught.unwrap_err();
    assert_eq!(
        support::panic_message(&payload),
        "probe 1 meddles and panics"
    );
    gcptr::collect();
    let mut seen = dropped_on(&rx, home);
    seen.dedup();
    assert_eq!(seen, [1, 50, 1001]);
    assert_eq!(cycs_dropped(600..602, home), [600, 601]);
}

/// A trace that, once armed, has a handle dropped on another thread and
/// releases it: drops run mid-analysis.
struct TraceReleaser {
    id: u32,
    next: RefCell<Option<Gc<TraceReleaser>>>,
}

thread_local! {
    static PENDING: RefCell<Vec<ThreadBound<Vec<Gc<TraceReleaser>>>>> =
        const { RefCell::new(Vec::new()) };
}

impl Drop for TraceReleaser {
    fn drop(&mut self) {
        CYC_LOG
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((self.id, thread::current().id()));
    }
}

unsafe impl Trace for TraceReleaser {
    fn trace(&self, tracer: &mut Tracer) {
        let pending = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
        if !pending.is_empty() {
            drop_elsewhere(pending);
            release_returned();
        }
        self.next.trace(tracer);
    }
}

fn trace_releaser_pair(a: u32, b: u32) -> Gc<TraceReleaser> {
    let x = Gc::new(TraceReleaser {
        id: a,
        next: RefCell::new(None),
    });
    let y = Gc::new(TraceReleaser {
        id: b,
        next: RefCell::new(Some(x.clone())),
    });
    *x.next.borrow_mut() = Some(y);
    x
}

#[test]
fn a_trace_that_releases_values_that_hold_the_set() {
    let home = thread::current().id();
    for (round, via_referrers) in [(0, false), (1, true)] {
        let base = 1200 + 10 * round;
        // A pair held from outside only by a value sent home from the
        // pair's own trace, mid-analysis; and a garbage pair whose trace
        // does it.
        let held = trace_releaser_pair(base, base + 1);
        let other = trace_releaser_pair(base + 2, base + 3);
        let weak_held = Gc::downgrade(&held);
        PENDING.with(|p| {
            p.borrow_mut()
                .push(ThreadBound::new(vec![held, other.clone()]))
        });
        let weak_other = Gc::downgrade(&other);
        let target = other.clone();
        drop(other);
        if via_referrers {
            let _ = gcptr::referrers(&target);
        }
        drop(target);
        for _ in 0..3 {
            gcptr::collect();
        }
        assert!(weak_held.upgrade().is_none());
        assert!(weak_other.upgrade().is_none());
        assert_eq!(
            cycs_dropped(base..base + 4, home),
            [base, base + 1, base + 2, base + 3]
        );
        assert!(PENDING.with(|p| p.borrow().is_empty()));
    }
}

// ---------------------------------------------------------------------
// Thread exit.

/// A thread whose only exit work is its inbox's closer: a value whose drop
/// panics is released there; the process must not abort.
#[test]
fn a_panicking_drop_released_at_thread_exit_does_not_abort() {
    for use_gc in [false, true] {
        let (tx, rx) = channel();
        let (handles_tx, handles_rx) = channel();
        let (dropped_tx, dropped_rx) = channel::<()>();
        let home = thread::spawn(move || {
            if use_gc {
                drop(Gc::new(Cyc {
                    id: 0,
                    next: RefCell::new(None),
                }));
            }
            let mut p = probe_with(1, &tx, OnDrop::Meddle);
            let base = if use_gc { 800 } else { 810 };
            p.gc = Some(cyc_pair(base, base + 1));
            handles_tx.send(ThreadBound::new(p)).unwrap();
            handles_tx
                .send(ThreadBound::new(probe_with(2, &tx, OnDrop::Panic)))
                .unwrap();
            dropped_rx.recv().unwrap();
            thread::current().id()
        });
        // Both made before either goes (`new` releases too).
        let first = handles_rx.recv().unwrap();
        let second = handles_rx.recv().unwrap();
        drop((first, second));
        dropped_tx.send(()).unwrap();
        let home = home.join().unwrap();
        assert_eq!(dropped_on(&rx, home), [1, 2, 1001]);
        let base = if use_gc { 800 } else { 810 };
        assert_eq!(
            cycs_dropped(base..base + 2, home),
            [base, base + 1],
            "use_gc: {use_gc}"
        );
    }
}

thread_local! {
    /// Runs its closure when destroyed.
    static AT_EXIT_A: AtExit = const { AtExit(RefCell::new(None)) };
    static AT_EXIT_B: AtExit = const { AtExit(RefCell::new(None)) };
}

struct AtExit(RefCell<Option<Box<dyn FnOnce()>>>);

impl Drop for AtExit {
    fn drop(&mut self) {
        if let Some(f) = self.0.borrow_mut().take() {
            f();
        }
    }
}

/// A value sent home while its home thread runs its thread-local
/// destructors, after the collector's first exit guard and before the
/// inbox's closer: its cycle must be reclaimed before the join.
#[test]
fn a_cycle_sent_home_between_the_exit_guard_and_the_closer_is_reclaimed() {
    let (tx, rx) = channel::<(u32, ThreadId)>();
    let (handles_tx, handles_rx) = channel();
    let (please_drop_tx, please_drop_rx) = channel::<()>();
    let (dropped_tx, dropped_rx) = channel::<()>();
    let home = thread::spawn(move || {
        // Destroyed last: the closer, then this, then the guard.
        drop(ThreadBound::new(()));
        AT_EXIT_B.with(|b| {
            *b.0.borrow_mut() = Some(Box::new(move || {
                please_drop_tx.send(()).unwrap();
                dropped_rx.recv().unwrap();
            }));
        });
        let mut p = probe(1, &tx);
        p.gc = Some(cyc_pair(900, 901));
        handles_tx.send(ThreadBound::new(p)).unwrap();
        thread::current().id()
    });
    let handle = handles_rx.recv().unwrap();
    please_drop_rx.recv().unwrap();
    drop(handle);
    dropped_tx.send(()).unwrap();
    let home = home.join().unwrap();
    assert_eq!(dropped_on(&rx, home), [1]);
    assert_eq!(cycs_dropped(900..902, home), [900, 901]);
}

/// A handle made by a thread-local destructor after the closer ran, and
/// dropped on another thread: leaked, never dropped there.
#[cfg_attr(miri, ignore)]
#[test]
fn a_handle_made_after_the_closer_and_dropped_elsewhere_is_leaked() {
    if support::leak_checker_watches() {
        return;
    }
    let (tx, rx) = channel::<(u32, ThreadId)>();
    let (handles_tx, handles_rx) = channel();
    let home = thread::spawn(move || {
        // Registered first: destroyed after the closer.
        AT_EXIT_A.with(|a| {
            *a.0.borrow_mut() = Some(Box::new(move || {
                // The closer ran: `new` must not panic, and its inbox refuses.
                assert_eq!(release_returned(), 0);
                let here = ThreadBound::new(probe(1, &tx));
                assert!(here.is_home());
                handles_tx.send(here.clone()).unwrap();
                drop(here);
                // Dropped at home, at once.
                drop(ThreadBound::new(probe(2, &tx)));
            }));
        });
        drop(ThreadBound::new(()));
        thread::current().id()
    });
    let home = home.join().unwrap();
    let handle = handles_rx.recv().unwrap();
    assert!(!handle.is_home());
    drop(handle);
    assert_eq!(dropped_on(&rx, home), [2]);
}

// ---------------------------------------------------------------------
// `ThreadBound::new` drops its argument while unwinding.

/// `ThreadBound::new(value)` releases first; when a released drop panics,
/// the panic leaves `new`, which drops `value` itself first: dropped by
/// the unwinding, a `value` whose own drop panics would abort the process.
#[test]
fn thread_bound_new_does_not_abort_when_its_argument_drop_panics_after_a_released_drop_panicked() {
    if !runs_here(
        "thread_bound_new_does_not_abort_when_its_argument_drop_panics_after_a_released_drop_panicked",
    ) {
        return;
    }
    let (tx, rx) = channel();
    let home = thread::current().id();
    drop_elsewhere(ThreadBound::new(probe_with(1, &tx, OnDrop::Panic)));
    let caught = panic::catch_unwind(|| drop(ThreadBound::new(probe_with(2, &tx, OnDrop::Panic))));
    assert_eq!(
        support::panic_message(&caught.unwrap_err()),
        "probe 1 panics in its drop"
    );
    assert_eq!(dropped_on(&rx, home), [1, 2]);
}

// ---------------------------------------------------------------------
// Depth.

#[derive(Trace)]
struct Link {
    next: Option<ThreadBound<Gc<Link>>>,
}

/// A list of `Gc` nodes a million deep whose links are `ThreadBound`s,
/// dropped at home and sent home from elsewhere.
#[test]
fn a_deep_list_linked_through_thread_bounds_drops_without_overflow() {
    // A stack overflow aborts: in a child process.
    if !runs_here("a_deep_list_linked_through_thread_bounds_drops_without_overflow") {
        return;
    }
    for elsewhere in [false, true] {
        let mut head = Gc::new(Link { next: None });
        for _ in 0..support::scaled(1_000_000) {
            head = Gc::new(Link {
                next: Some(ThreadBound::new(head)),
            });
        }
        let handle = ThreadBound::new(head);
        if elsewhere {
            drop_elsewhere(handle);
            assert_eq!(release_returned(), 1);
        } else {
            drop(handle);
        }
    }
}

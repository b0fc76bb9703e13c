//! Fault injection: a panic in `Trace`, in a weak callback, in `Drop` or
//! in `finalize`, at each phase of a collection. Afterwards the collector
//! still works, nothing is freed twice, and nothing is freed while live.

mod support;

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use gcptr::{Gc, Trace, Tracer};
use support::{take_drops, DropLog};

struct Flaky {
    _log: DropLog,
    next: RefCell<Option<Gc<Flaky>>>,
}

// SAFETY: visits its one Gc (or panics before visiting anything).
unsafe impl Trace for Flaky {
    fn trace(&self, tracer: &mut Tracer) {
        support::trace_countdown();
        self.next.trace(tracer);
    }
}

fn flaky_ring(ids: std::ops::Range<u32>) -> Vec<gcptr::Weak<Flaky>> {
    let nodes: Vec<_> = ids
        .map(|id| {
            Gc::new(Flaky {
                _log: DropLog(id),
                next: RefCell::new(None),
            })
        })
        .collect();
    for (i, node) in nodes.iter().enumerate() {
        *node.next.borrow_mut() = Some(nodes[(i + 1) % nodes.len()].clone());
    }
    nodes.iter().map(Gc::downgrade).collect()
}

#[test]
fn a_panic_in_trace_at_every_point_of_the_analysis_frees_nothing_live_and_leaves_the_collector_working(
) {
    // 8 objects: the analysis traces each once to subtract internal
    // references, then the 4 reachable ones again to mark them: 12 points.
    for panic_at in 1..=12 {
        take_drops();
        gcptr::collect();
        let live = flaky_ring(0..4);
        let keep = live[0].upgrade().unwrap(); // the ring is reachable
        let garbage = flaky_ring(10..14);
        support::panic_in_nth_trace(panic_at);
        let result = catch_unwind(gcptr::collect);
        support::panic_in_nth_trace(0);
        assert!(result.is_err(), "trace {panic_at} panicked");
        // Nothing reachable died, whatever the trace missed.
        assert!(live.iter().all(|w| w.upgrade().is_some()));
        let dropped = take_drops();
        assert!(dropped.iter().all(|&id| id >= 10), "{dropped:?}");
        // The next collection, with honest traces, finishes the job.
        gcptr::collect();
        assert!(garbage.iter().all(|w| w.upgrade().is_none()));
        let mut all = dropped;
        all.extend(take_drops());
        all.sort_unstable();
        assert_eq!(
            all,
            [10, 11, 12, 13],
            "each garbage object dropped exactly once"
        );
        drop(keep);
        assert_eq!(gcptr::collect(), 4);
        assert_eq!(take_drops(), [0, 1, 2, 3]);
    }
}

#[test]
fn a_panic_in_a_death_callback_during_a_collection_propagates_after_it() {
    take_drops();
    let weaks = flaky_ring(20..22);
    let node = weaks[0].upgrade().unwrap();
    let callback = Gc::on_death(&node, || panic!("callback failed"));
    drop(node);
    let result = catch_unwind(gcptr::collect);
    assert!(result.is_err());
    assert!(!callback.is_pending());
    assert_eq!(take_drops(), [20, 21]);
    assert_eq!(gcptr::collect(), 0);
}

#[test]
fn a_panic_in_a_death_callback_at_count_zero_still_frees_the_object() {
    take_drops();
    let node = Gc::new(Flaky {
        _log: DropLog(30),
        next: RefCell::new(None),
    });
    let _callback = Gc::on_death(&node, || panic!("callback failed"));
    let weak = Gc::downgrade(&node);
    let result = catch_unwind(AssertUnwindSafe(move || drop(node)));
    assert!(result.is_err());
    assert_eq!(take_drops(), [30]);
    assert!(weak.upgrade().is_none());
}

// ------------------------------------- a second panic while unwinding ---

thread_local! {
    static FINALIZED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// Its finalizer takes its peer into a local and panics: the unwinding
/// drops the local, the peer dies by count, and the peer's finalizer
/// panics too, while the first panic unwinds.
#[derive(Trace)]
#[gc(finalize)]
struct Volatile {
    log: DropLog,
    peer: RefCell<Option<Gc<Volatile>>>,
}

impl gcptr::Finalize for Volatile {
    fn finalize(&self) {
        FINALIZED.with(|f| f.borrow_mut().push(self.log.0));
        let _peer = self.peer.borrow_mut().take();
        panic!("finalizer {} failed", self.log.0);
    }
}

fn volatile(id: u32, peer: Option<Gc<Volatile>>) -> Gc<Volatile> {
    Gc::new(Volatile {
        log: DropLog(id),
        peer: RefCell::new(peer),
    })
}

#[test]
fn a_finalizer_that_panics_while_another_unwinds_does_not_abort() {
    // a <-> b, garbage. The collection finalizes one of them (say a);
    // its panic drops the `Gc` to b that it took, b dies by count, and
    // b's finalizer panics during that unwinding: its panic is dropped
    // (a second one would abort the process), and a's propagates once the
    // collection is complete.
    take_drops();
    let a = volatile(40, None);
    let b = volatile(41, Some(a.clone()));
    *a.peer.borrow_mut() = Some(b);
    drop(a);
    let panic = catch_unwind(gcptr::collect).expect_err("the first panic propagates");
    let message = panic.downcast_ref::<String>().unwrap();
    let mut finalized = FINALIZED.with(|f| f.take());
    assert_eq!(
        *message,
        format!("finalizer {} failed", finalized[0]),
        "the panic that propagates is the first finalizer's"
    );
    finalized.sort_unstable();
    assert_eq!(finalized, [40, 41]);
    assert_eq!(take_drops(), [40, 41]);
    assert_eq!(gcptr::collect(), 0);
}

/// Runs its closure when dropped: here, while a panic unwinds.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// Runs `during` in a `Drop` while a panic unwinds; that panic comes back.
fn while_unwinding(during: impl FnMut()) {
    let result = catch_unwind(AssertUnwindSafe(|| {
        let _guard = OnDrop(during);
        panic!("first");
    }));
    let payload = result.expect_err("the first panic propagates");
    assert_eq!(*payload.downcast_ref::<&str>().unwrap(), "first");
}

#[test]
fn unwrapping_during_unwinding_keeps_the_value_when_a_death_callback_panics() {
    // `try_unwrap` runs the death callback, which panics: a second panic
    // would abort the process, so it is dropped and the value returned.
    take_drops();
    let mut target = Some(Gc::new(DropLog(50)));
    let callback = Gc::on_death(target.as_ref().unwrap(), || panic!("callback failed"));
    let mut unwrapped = None;
    while_unwinding(|| {
        let value = Gc::try_unwrap(target.take().unwrap()).ok();
        unwrapped = value.map(|log| log.0);
    });
    assert_eq!(unwrapped, Some(50));
    assert!(!callback.is_pending());
    assert_eq!(take_drops(), [50]);
}

#[test]
fn make_mut_during_unwinding_moves_the_value_when_a_death_callback_panics() {
    // With a `Weak` outstanding, `make_mut` moves the value to a fresh
    // object and the old one dies: its callback panics, and is dropped.
    let mut target = Gc::new(7u32);
    let weak = Gc::downgrade(&target);
    let callback = Gc::on_death(&target, || panic!("callback failed"));
    while_unwinding(|| *Gc::make_mut(&mut target) += 1);
    assert_eq!(*target, 8);
    assert!(weak.upgrade().is_none());
    assert!(!callback.is_pending());
}

/// A garbage cycle whose finalizer panics.
#[derive(Trace)]
#[gc(finalize)]
struct PanickingFinalizer {
    log: DropLog,
    me: RefCell<Option<Gc<PanickingFinalizer>>>,
}

impl gcptr::Finalize for PanickingFinalizer {
    fn finalize(&self) {
        panic!("finalizer {} failed", self.log.0);
    }
}

fn panicking_garbage(id: u32) {
    let a = Gc::new(PanickingFinalizer {
        log: DropLog(id),
        me: RefCell::new(None),
    });
    *a.me.borrow_mut() = Some(a.clone());
}

#[test]
fn a_collection_during_unwinding_drops_its_panic_rather_than_abort() {
    take_drops();
    panicking_garbage(70);
    let mut reclaimed = None;
    while_unwinding(|| reclaimed = Some(gcptr::collect()));
    assert_eq!(reclaimed, Some(1));
    assert_eq!(take_drops(), [70]);
}

#[test]
fn an_automatic_collection_during_unwinding_drops_its_panic_rather_than_abort() {
    take_drops();
    gcptr::collect();
    panicking_garbage(71);
    gcptr::set_threshold([1, 0, 0]);
    while_unwinding(|| {
        for _ in 0..4 {
            drop(Gc::new(RefCell::new(None::<Gc<u32>>)));
        }
    });
    gcptr::set_threshold([700, 10, 10]);
    assert_eq!(take_drops(), [71]);
}

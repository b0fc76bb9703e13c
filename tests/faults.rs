//! Fault injection: a panic in `Trace`, in a weak callback, in `Drop` or
//! in `finalize`, at each phase of a collection. Afterwards the collector
//! still works, nothing is freed twice, and nothing is freed while live.

mod support;

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};

use gcptr::{Gc, Trace, Tracer};
use support::{take_drops, DropLog};

thread_local! {
    /// Panic in the n-th call to `trace` from now (0: never).
    static TRACE_PANIC_IN: Cell<u32> = const { Cell::new(0) };
}

struct Flaky {
    _log: DropLog,
    next: RefCell<Option<Gc<Flaky>>>,
}

// SAFETY: visits its one Gc (or panics before visiting anything).
unsafe impl Trace for Flaky {
    fn trace(&self, tracer: &mut Tracer) {
        let n = TRACE_PANIC_IN.with(Cell::get);
        if n > 0 {
            TRACE_PANIC_IN.with(|c| c.set(n - 1));
            if n == 1 {
                panic!("trace failed");
            }
        }
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
        TRACE_PANIC_IN.with(|c| c.set(panic_at));
        let result = catch_unwind(gcptr::collect);
        TRACE_PANIC_IN.with(|c| c.set(0));
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

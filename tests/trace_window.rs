//! What runs while a trace runs. The collector reads the `RefCell`s of the
//! traced value without borrowing them, so no code of the program that
//! could borrow one mutably may run until the trace returns: not the
//! global allocator (the tracer keeps what does not fit in its buffers in
//! memory from the system allocator), and not the drop of a callback that
//! a collection cancels (dropped once the trace has returned).

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};

use gcptr::{Gc, Trace, Tracer, WeakWithCallback};
use support::{take_drops, DropLog};

/// The system allocator, counting the allocations made while a `Hub` or
/// `Watcher` trace runs.
struct Counting;

thread_local! {
    static IN_TRACE: Cell<bool> = const { Cell::new(false) };
    static ALLOCATED_IN_TRACE: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the count is a thread-local
// `Cell` with a `const` initialiser, which allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if IN_TRACE.try_with(Cell::get).unwrap_or(false) {
            ALLOCATED_IN_TRACE.with(|n| n.set(n.get() + 1));
        }
        // SAFETY: as the caller promised.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as the caller promised.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `trace` with `IN_TRACE` set.
fn in_trace(trace: impl FnOnce()) {
    IN_TRACE.with(|t| t.set(true));
    trace();
    IN_TRACE.with(|t| t.set(false));
}

fn allocated_in_trace() -> usize {
    ALLOCATED_IN_TRACE.with(Cell::get)
}

/// A node that can show the tracer many edges in one trace.
struct Hub {
    _log: DropLog,
    edges: RefCell<Vec<Gc<Hub>>>,
}

thread_local! {
    /// Makes the next `Hub` trace panic once it has shown its edges.
    static PANIC_AFTER_EDGES: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: visits exactly the Gcs in `edges`.
unsafe impl Trace for Hub {
    fn trace(&self, tracer: &mut Tracer) {
        in_trace(|| self.edges.trace(tracer));
        if PANIC_AFTER_EDGES.with(|p| p.replace(false)) {
            panic!("trace failed after showing its edges");
        }
    }
}

fn hub(id: u32) -> Gc<Hub> {
    Gc::new(Hub {
        _log: DropLog(id),
        edges: RefCell::new(Vec::new()),
    })
}

/// More edges than any buffer of the tracer has room for at first.
const WIDE: u32 = if cfg!(miri) { 300 } else { 20_000 };

/// A hub and WIDE spokes, each pointing back: one cycle of WIDE + 1,
/// built without losing a reference, so that the collections until the
/// first loss analyse nothing and leave the collector's buffers empty.
fn wheel() -> Gc<Hub> {
    let centre = hub(0);
    for id in 1..=WIDE {
        let spoke = hub(id);
        spoke.edges.borrow_mut().push(centre.clone());
        centre.edges.borrow_mut().push(spoke);
    }
    centre
}

#[test]
fn the_tracer_calls_no_allocator_while_a_trace_runs() {
    let centre = wheel();
    let addresses: Vec<*const ()> = centre
        .edges
        .borrow()
        .iter()
        .map(|s| Gc::as_ptr(s).cast())
        .collect();

    // Recorded edges: all of them, in the order the trace showed them.
    assert_eq!(gcptr::referents(&*centre), addresses);
    assert_eq!(allocated_in_trace(), 0, "while recording edges");

    // Into the oldest generation, with no analysis.
    assert_eq!(gcptr::collect(), 0);
    // The centre reports a loss: the next full collection starts from it,
    // its trace takes every spoke into the set, and, held from outside,
    // it marks every spoke reachable.
    drop(centre.clone());
    assert_eq!(gcptr::collect(), 0);
    assert_eq!(allocated_in_trace(), 0, "while gathering and marking");
    assert!(take_drops().is_empty());

    drop(centre);
    assert_eq!(gcptr::collect(), WIDE as usize + 1);
    assert_eq!(allocated_in_trace(), 0, "while gathering garbage");
    assert_eq!(take_drops(), (0..=WIDE).collect::<Vec<_>>());
}

#[test]
fn a_trace_that_panics_after_spilling_loses_none_of_what_it_took_in() {
    let centre = wheel();
    assert_eq!(gcptr::collect(), 0);
    // The centre's trace takes every spoke into the set, past the room
    // the set had, then panics.
    drop(centre.clone());
    PANIC_AFTER_EDGES.with(|p| p.set(true));
    let result = std::panic::catch_unwind(gcptr::collect);
    assert!(result.is_err());
    assert!(take_drops().is_empty());
    // Every spoke is in the collector's lists again, and whole: the next
    // collection finds them all.
    drop(centre);
    assert_eq!(gcptr::collect(), WIDE as usize + 1);
    assert_eq!(take_drops(), (0..=WIDE).collect::<Vec<_>>());
}

thread_local! {
    /// Whether a trace ran when the probe was dropped; `None` until then.
    static PROBE_DROPPED_IN_TRACE: Cell<Option<bool>> = const { Cell::new(None) };
    static CALLBACK_RAN: Cell<bool> = const { Cell::new(false) };
}

struct Probe;

impl Drop for Probe {
    fn drop(&mut self) {
        PROBE_DROPPED_IN_TRACE.with(|p| p.set(Some(IN_TRACE.with(Cell::get))));
    }
}

/// Owns a weak reference with a callback, and itself.
struct Watcher {
    _log: DropLog,
    watching: WeakWithCallback<u32>,
    me: RefCell<Option<Gc<Watcher>>>,
}

// SAFETY: visits its one Gc, and shows the tracer its weak reference.
unsafe impl Trace for Watcher {
    fn trace(&self, tracer: &mut Tracer) {
        in_trace(|| {
            self.watching.trace(tracer);
            self.me.trace(tracer);
        });
    }
}

#[test]
fn a_callback_cancelled_by_a_collection_is_dropped_after_the_trace_that_showed_it() {
    let watched = Gc::new(7u32);
    let probe = Probe;
    let watcher = Gc::new(Watcher {
        _log: DropLog(1),
        watching: Gc::downgrade_with(&watched, move || {
            let _probe = &probe;
            CALLBACK_RAN.with(|r| r.set(true));
        }),
        me: RefCell::new(None),
    });
    *watcher.me.borrow_mut() = Some(watcher.clone());
    drop(watcher);

    // The watcher is garbage: its callback dies with it (CPython's rule),
    // dropped once its trace has returned.
    assert_eq!(gcptr::collect(), 1);
    assert_eq!(take_drops(), [1]);
    assert_eq!(PROBE_DROPPED_IN_TRACE.with(Cell::get), Some(false));
    drop(watched);
    assert!(!CALLBACK_RAN.with(Cell::get));
}

//! What `fuzz/fuzz_targets/meddling_traces.rs` found in its late mode
//! (the program handed over to thread-locals destroyed after the
//! collector's first exit guard, meddling left on through thread exit).
//! Both failed the same way on eacd231^, before the parking of the state:
//! not new with it.
//!
//! First (fixed): at thread exit, finalizers that each make a new garbage
//! cycle with a finalizer of its own. The exit collection
//! (`collect_at_exit` in `gcptr/src/collector/state.rs`) went around again
//! while a collection left new garbage possible, but at most eight times;
//! the garbage the eighth round's finalizers made was left alive, never
//! finalized nor dropped. Now its rounds go on while they reclaim
//! something.
//!
//! Second (fixed): a reference that a trace drops while a collection
//! analyses its object went unreported.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};

use gcptr::{Finalize, Gc, Trace};

static FINALIZED: AtomicUsize = AtomicUsize::new(0);
static DROPPED: AtomicUsize = AtomicUsize::new(0);

/// How many generations of garbage: the first, and one made by each
/// finalizer but the last.
const CHAIN: u32 = 12;

#[derive(Trace)]
#[gc(finalize)]
struct Node {
    #[gc(skip)]
    generation: u32,
    me: RefCell<Option<Gc<Node>>>,
}

/// A self-loop, let go at once: garbage.
fn garbage(generation: u32) {
    let n = Gc::new(Node {
        generation,
        me: RefCell::new(None),
    });
    *n.me.borrow_mut() = Some(n.clone());
}

impl Finalize for Node {
    fn finalize(&self) {
        FINALIZED.fetch_add(1, Ordering::Relaxed);
        if self.generation + 1 < CHAIN {
            garbage(self.generation + 1);
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn garbage_that_exit_finalizers_make_generation_after_generation_is_all_reclaimed() {
    std::thread::spawn(|| {
        // No collection runs on the thread: thread exit finds the first
        // generation, and each finalizer it runs makes the next.
        gcptr::disable();
        garbage(0);
    })
    .join()
    .unwrap();
    assert_eq!(
        (
            FINALIZED.load(Ordering::Relaxed),
            DROPPED.load(Ordering::Relaxed)
        ),
        (CHAIN as usize, CHAIN as usize),
        "(finalized, dropped) by the time the thread is joined"
    );
}

// ---------------------------------------------------------------------
// A reference lost while an analysis runs was forgotten.
//
// Found by the same mode after 4 minutes (42,575 runs on one worker,
// with the cap above in place; input minimised by `cargo fuzz tmin` to 21
// bytes: `f2 01a4e493 e4e4ffff e4e40600 0d0defaf d2efaff2`, which fails
// with `ORACLE FAILED: node 1 never dropped after thread exit`). There a
// trace, run by the first exit guard's analysis, took the one handle to a
// young ring of nodes out of a late holder and dropped it. A trace that drops
// the one outside handle of a cycle, whose members are `QUIET` (they
// reported losses since they were last analysed), while a collection
// analyses that cycle. `Header::dec_strong` reports no loss for a quiet
// object, and the analysis then found the member reachable (it counted
// the handle) and acquitted it, loud: the loss was forgotten. The cycle
// was garbage that no object reported, so no later collection that starts
// from the quiet objects found it, and no collection at all if this was
// the thread's exit collection: it saw no new garbage possible, parked the
// state with the cycle in it, and nothing woke it again. Now the analysis
// keeps each object's strong count from when it took the object in, and
// the acquittal (`Header::acquit`) reports the loss of an object whose
// count changed since.

type Outside = std::thread::LocalKey<RefCell<Option<Gc<Member>>>>;

thread_local! {
    /// The one handle to the cycle from outside; the armed trace drops it.
    static OUTSIDE: RefCell<Option<Gc<Member>>> = const { RefCell::new(None) };
    /// As `OUTSIDE`, for the exit test.
    static EXIT_OUTSIDE: RefCell<Option<Gc<Member>>> = const { RefCell::new(None) };
}

static MEMBERS_DROPPED: AtomicUsize = AtomicUsize::new(0);
static EXIT_DROPPED: AtomicUsize = AtomicUsize::new(0);

/// A cycle member; the armed one's trace drops the handle in `outside` (a
/// trace may run code that drops a `Gc` it does not own: `Trace`'s
/// contract forbids only changing the traced value).
struct Member {
    armed: bool,
    outside: &'static Outside,
    dropped: &'static AtomicUsize,
    next: RefCell<Option<Gc<Member>>>,
}

// SAFETY: visits exactly the one `Gc` it owns; what it drops is held by
// `outside`, not by a `RefCell` that it contains or that contains it.
unsafe impl Trace for Member {
    fn trace(&self, tracer: &mut gcptr::Tracer) {
        if self.armed {
            let handle = self
                .outside
                .try_with(|o| o.borrow_mut().take())
                .ok()
                .flatten();
            drop(handle);
        }
        self.next.trace(tracer);
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// A two-member cycle whose only outside handle is in `outside`; its
/// members went quiet as their other handles were dropped.
fn quiet_cycle_held_in(outside: &'static Outside, dropped: &'static AtomicUsize) {
    let member = |armed| {
        Gc::new(Member {
            armed,
            outside,
            dropped,
            next: RefCell::new(None),
        })
    };
    let (a, b) = (member(true), member(false));
    *a.next.borrow_mut() = Some(b.clone());
    *b.next.borrow_mut() = Some(a.clone());
    outside.with(|o| *o.borrow_mut() = Some(a.clone()));
    drop((a, b));
}

#[test]
fn a_cycle_whose_last_outside_handle_a_trace_drops_is_collected_next_time() {
    let collected = std::thread::spawn(|| {
        gcptr::disable();
        quiet_cycle_held_in(&OUTSIDE, &MEMBERS_DROPPED);
        // The trace drops the handle while this collection analyses the
        // cycle: it is reachable then, garbage afterwards.
        let first = gcptr::collect();
        assert!(OUTSIDE.with(|o| o.borrow().is_none()));
        let second = gcptr::collect();
        (first, second)
    })
    .join()
    .unwrap();
    // (It used to be missed by the second `collect()` too, and reclaimed
    // only at thread exit, whose collection analyses everything.)
    assert_eq!(
        (collected, MEMBERS_DROPPED.load(Ordering::Relaxed)),
        ((0, 2), 2),
        "((first collect, second collect), dropped by join)"
    );
}

#[test]
fn a_cycle_whose_last_outside_handle_a_trace_drops_at_thread_exit_is_reclaimed() {
    std::thread::spawn(|| {
        // First used before the collector: destroyed after its first exit
        // guard, so the handle is still there when that guard's analysis
        // runs the trace. No collection runs before.
        EXIT_OUTSIDE.with(|o| assert!(o.borrow().is_none()));
        gcptr::disable();
        quiet_cycle_held_in(&EXIT_OUTSIDE, &EXIT_DROPPED);
    })
    .join()
    .unwrap();
    assert_eq!(
        EXIT_DROPPED.load(Ordering::Relaxed),
        2,
        "members dropped by the time the thread is joined"
    );
}

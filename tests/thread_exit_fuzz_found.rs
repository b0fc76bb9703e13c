//! Found by `fuzz/fuzz_targets/meddling_traces.rs` in its late mode
//! (meddling left on through thread exit): at thread exit, finalizers that
//! each make a new garbage cycle with a finalizer of its own. The exit
//! collection (`collect_at_exit` in `gcptr/src/collector/state.rs`) goes
//! around again while a collection leaves new garbage possible, but at most
//! eight times; the garbage the eighth round's finalizers make is left
//! alive. Nothing later uses the (parked) state, so it is never collected:
//! no finalizer, no `Drop`, memory leaked. The crate docs ("Threads") name
//! two limits of thread exit, not this one.
//!
//! Not new with the parking of the state (eacd231): on eacd231^ it fails
//! the same way, `(8, 8)` of `(12, 12)`, where the teardown after the
//! eighth round left the last generation as plain counted objects. This
//! test fails until the exit collection reclaims such garbage (or the
//! limit is documented, and the test changed to say so).

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

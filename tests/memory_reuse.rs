//! The memory of freed tracked objects, which a thread keeps for its next
//! objects (`gcptr/src/collector/blocks.rs`): bounded, and all of it given
//! back to the global allocator when the thread exits; and the memory of
//! objects whose `Drop` panics, freed all the same; also when the
//! collector waits for a thread-local destroyed after it. The only test of its
//! binary, so that the count of live bytes is the thread's own, give or
//! take what the test harness allocates meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use gcptr::{Finalize, Gc, Trace};

/// The system allocator, counting the bytes allocated and not yet freed.
struct Counting;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; the count is an atomic, which
// allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size(), Relaxed);
        // SAFETY: as the caller promised.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), Relaxed);
        // SAFETY: as the caller promised.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A tracked node: it may own a `Gc`.
type Node = Gc<RefCell<Option<Gc<u64>>>>;

fn live_bytes() -> usize {
    LIVE_BYTES.load(Relaxed)
}

/// Its `Drop` panics. Untracked: it cannot own a `Gc`.
struct Loud(#[allow(dead_code)] [u64; 4]);

gcptr::unsafe_trace_leaf!(Loud);

impl Drop for Loud {
    fn drop(&mut self) {
        panic!("loud");
    }
}

/// Tracked, and its `Drop` panics.
#[derive(Trace)]
struct LoudNode {
    next: RefCell<Option<Gc<LoudNode>>>,
}

impl Drop for LoudNode {
    fn drop(&mut self) {
        panic!("loud node");
    }
}

/// With a finalizer (the general path of a death), and its `Drop` panics.
#[derive(Trace)]
#[gc(finalize)]
struct LoudFinalized(RefCell<Option<Gc<u64>>>);

impl Finalize for LoudFinalized {
    fn finalize(&self) {}
}

impl Drop for LoudFinalized {
    fn drop(&mut self) {
        panic!("loud finalized");
    }
}

/// Drops `value` and swallows its panic.
fn drop_loudly<T>(value: T) {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(value)));
    assert!(result.is_err(), "the Drop panics");
}

#[test]
fn kept_memory_is_bounded_and_given_back_when_the_thread_exits() {
    const KEPT_AT_MOST: usize = 512 * 1024;
    // What the harness and the collector's own buffers may add.
    const SLACK: usize = 256 * 1024;
    let objects = if cfg!(miri) { 2_000 } else { 200_000 };
    let before = live_bytes();
    /// Holds a node, and notes the bytes allocated when it goes.
    struct Holder(#[allow(dead_code)] Node);
    impl Drop for Holder {
        fn drop(&mut self) {
            HELD_BYTES.store(live_bytes(), Relaxed);
        }
    }
    static HELD_BYTES: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        /// First used before the thread's first `Gc`: destroyed after the
        /// collector's exit collection, which finds its node alive and
        /// waits for it, having given back the blocks it kept.
        static HELD: RefCell<Option<Holder>> = const { RefCell::new(None) };
    }
    std::thread::spawn(move || {
        HELD.with(|held| assert!(held.borrow().is_none()));
        let start = live_bytes();
        // Far more than the thread keeps: several megabytes.
        let nodes: Vec<Node> = (0..objects).map(|_| Gc::new(RefCell::new(None))).collect();
        let built = live_bytes() - start;
        drop(nodes);
        gcptr::collect();
        let kept = live_bytes().saturating_sub(start);
        assert!(
            kept <= KEPT_AT_MOST + SLACK,
            "{kept} bytes still allocated after {built} were freed"
        );
        // The kept blocks serve the next objects of the same layout.
        let again: Vec<Node> = (0..objects).map(|_| Gc::new(RefCell::new(None))).collect();
        assert!(live_bytes() - start <= built + SLACK);
        drop(again);
        // Objects whose `Drop` panics, on each path of a death by count:
        // their memory is freed (kept or given back) all the same, several
        // megabytes that would otherwise be left at the thread's exit.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        for _ in 0..objects / 4 {
            drop_loudly(Gc::new(Loud([0; 4])));
            drop_loudly(Gc::new(LoudNode {
                next: RefCell::new(None),
            }));
            drop_loudly(Gc::new(LoudFinalized(RefCell::new(None))));
        }
        std::panic::set_hook(hook);
        HELD.with(|held| *held.borrow_mut() = Some(Holder(Gc::new(RefCell::new(None)))));
    })
    .join()
    .unwrap();
    let waiting = HELD_BYTES.load(Relaxed).saturating_sub(before);
    assert!(
        waiting <= SLACK,
        "{waiting} bytes still allocated while the collector waited for a thread-local"
    );
    let after = live_bytes().saturating_sub(before);
    assert!(
        after <= SLACK,
        "{after} bytes still allocated after the thread exited"
    );
}

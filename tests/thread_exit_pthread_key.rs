//! What a thread leaves allocated at its exit. A destructor of a POSIX
//! thread key (glibc runs them after every thread-local destructor) that
//! wakes the collector's parked state, or makes a new one: the exit guard
//! it arms is registered too late to run, so the state is never dropped,
//! and it must not keep the memory of the objects freed after that
//! (`State::blocks`). And a thread that leaks a tracked object: the state
//! that waits for it must not be leaked with it.
//!
//! Native glibc only, and not under Miri (which runs the destructors of
//! thread-locals from a key's): its own global allocator counts what each
//! test's threads leave allocated.

#![cfg(all(target_os = "linux", target_env = "gnu", not(miri)))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::sync::atomic::{AtomicIsize, Ordering};

use gcptr::{Gc, Trace};

thread_local! {
    /// Where the thread counts the bytes it allocates minus those it frees,
    /// if anywhere (`left_by_thread`).
    static COUNTER: Cell<Option<&'static AtomicIsize>> = const { Cell::new(None) };
}

/// Counts into `counter` what the calling thread allocates and frees from
/// now on.
fn count_into(counter: &'static AtomicIsize) {
    COUNTER.with(|c| c.set(Some(counter)));
}

struct Counting;

// SAFETY: forwards to `System`, and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if let Some(net) = COUNTER.with(Cell::get) {
            net.fetch_add(layout.size() as isize, Ordering::SeqCst);
        }
        // SAFETY: as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(net) = COUNTER.with(Cell::get) {
            net.fetch_sub(layout.size() as isize, Ordering::SeqCst);
        }
        // SAFETY: as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

extern "C" {
    fn pthread_key_create(key: *mut u32, dtor: Option<unsafe extern "C" fn(*mut c_void)>) -> i32;
    fn pthread_setspecific(key: u32, value: *const c_void) -> i32;
}

#[derive(Trace)]
struct Node {
    next: RefCell<Option<Gc<Node>>>,
}

/// Makes a thousand tracked objects at once, and frees them.
fn make_and_free_a_thousand() {
    let many: Vec<Gc<Node>> = (0..1000)
        .map(|_| {
            Gc::new(Node {
                next: RefCell::new(None),
            })
        })
        .collect();
    drop(many);
}

/// The key's destructor: lets go of a self-loop (which wakes the parked
/// state), then makes and frees a thousand tracked objects.
unsafe extern "C" fn key_destructor(value: *mut c_void) {
    // SAFETY: the `Box` the test stored.
    drop(unsafe { Box::from_raw(value.cast::<Gc<Node>>()) });
    make_and_free_a_thousand();
}

/// A second key's destructor, in a thread that left the collector nothing
/// to wait for: makes a new state, and a thousand tracked objects.
unsafe extern "C" fn late_maker(value: *mut c_void) {
    // SAFETY: the `Box` the test stored.
    drop(unsafe { Box::from_raw(value.cast::<u32>()) });
    make_and_free_a_thousand();
}

#[test]
fn a_state_woken_by_a_key_destructor_keeps_no_freed_blocks() {
    if std::env::var_os("LSAN_OPTIONS").is_some() {
        return; // the self-loop leaks (the limit tested here)
    }
    let leaked = left_by_thread(|| {
        let mut key = 0;
        // SAFETY: a valid out-pointer and an `extern "C"` destructor.
        assert_eq!(
            unsafe { pthread_key_create(&mut key, Some(key_destructor)) },
            0
        );
        let node = Gc::new(Node {
            next: RefCell::new(None),
        });
        *node.next.borrow_mut() = Some(node.clone());
        // Held by the key: a survivor of the first exit guard, which parks.
        let value = Box::into_raw(Box::new(node));
        // SAFETY: the key was just created.
        assert_eq!(unsafe { pthread_setspecific(key, value.cast()) }, 0);
    });
    // The self-loop (a cycle let go that late leaks: the guard never
    // runs), not the thousand objects' blocks (about 48 KiB).
    assert!(leaked < 8 * 1024, "{leaked} bytes left by the thread");

    // The same for a state made new by the key's destructor (the first
    // guard dropped the one before: no survivor).
    let leaked = left_by_thread(|| {
        let mut key = 0;
        // SAFETY: a valid out-pointer and an `extern "C"` destructor.
        assert_eq!(unsafe { pthread_key_create(&mut key, Some(late_maker)) }, 0);
        drop(Gc::new(Node {
            next: RefCell::new(None),
        }));
        let value = Box::into_raw(Box::new(7u32));
        // SAFETY: the key was just created.
        assert_eq!(unsafe { pthread_setspecific(key, value.cast()) }, 0);
    });
    assert!(
        leaked < 8 * 1024,
        "{leaked} bytes left by the second thread"
    );
}

/// The bytes that a new thread running `body` leaves allocated once it is
/// joined. One such thread at a time, whichever test runs it.
fn left_by_thread(body: fn()) -> isize {
    static NET: AtomicIsize = AtomicIsize::new(0);
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap();
    NET.store(0, Ordering::SeqCst);
    std::thread::spawn(move || {
        count_into(&NET);
        body();
    })
    .join()
    .unwrap();
    NET.load(Ordering::SeqCst)
}

/// A thread that leaks a tracked object (`mem::forget`) leaves that object
/// allocated, and nothing more: the collector's state, which waits at
/// thread exit for the object to go, lives in thread-local memory, freed
/// with the thread.
#[test]
fn a_thread_that_forgets_a_tracked_object_leaves_only_that_object() {
    if std::env::var_os("LSAN_OPTIONS").is_some() {
        return; // the object leaks (on purpose)
    }
    fn node() -> Gc<Node> {
        Gc::new(Node {
            next: RefCell::new(None),
        })
    }
    // (The spawn's own allocations, made by the parent and freed by the
    // thread, count the same in both.)
    let dropped = left_by_thread(|| drop(node()));
    let forgotten = left_by_thread(|| std::mem::forget(node()));
    // Links, header and value: 16 bytes each. (Before the state lived in
    // thread-local memory, its heap block was left too: 784 bytes.)
    assert_eq!(
        forgotten - dropped,
        48,
        "bytes left by a thread that forgot its object, beyond one that dropped it"
    );
}

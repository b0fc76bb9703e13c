//! What a review of the written contract (`API.md`, `DESIGN.md`, the
//! README and the rustdoc) checked where no doc test can: memory counted
//! by a global allocator, and what happens at thread exit. Most of the
//! review's findings were in the docs themselves, now pinned by their
//! doc tests (`cargo test --doc`).
//!
//! This file installs a global allocator that counts, per thread, the
//! bytes allocated and not yet freed: each test runs its measured part on
//! a thread of its own, so tests running in parallel do not disturb it.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use gcptr::{Gc, Trace};

/// The system allocator, counting the calling thread's live bytes.
struct PerThreadCounting;

thread_local! {
    static LIVE_BYTES: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // `try_with`: the thread's own destructors may allocate after the
    // counter is gone; those go uncounted.
    let _ = LIVE_BYTES.try_with(|live| live.set(live.get() + delta));
}

// SAFETY: every call goes straight to `System`, with the caller's layout
// and pointer; the counting beside it touches no allocator.
unsafe impl GlobalAlloc for PerThreadCounting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: the caller's contract is `alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: the caller's contract is `dealloc`'s.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: the caller's contract is `alloc_zeroed`'s.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        // SAFETY: the caller's contract is `realloc`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: PerThreadCounting = PerThreadCounting;

fn live_bytes() -> isize {
    LIVE_BYTES.with(Cell::get)
}

/// A value whose `Drop` panics, large enough that a leaked one shows. It
/// panics with `resume_unwind`, which runs no panic hook: the test
/// harness's hook keeps each message it prints, which would count as
/// growth.
struct Boom([u8; 1024]);

impl Drop for Boom {
    fn drop(&mut self) {
        assert!(self.0[0] > 0);
        panic::resume_unwind(Box::new("Boom's drop"));
    }
}

// SAFETY: plain data: `trace` visits nothing.
unsafe impl Trace for Boom {
    fn trace(&self, _: &mut gcptr::Tracer) {}
}

/// As `Boom`, in a traced type that can close a cycle: its objects are
/// tracked.
#[derive(Trace)]
struct TrackedBoom {
    _boom: Boom,
    next: RefCell<Option<Gc<TrackedBoom>>>,
}

fn tracked_boom(fill: u8) -> Gc<TrackedBoom> {
    Gc::new(TrackedBoom {
        _boom: Boom([fill; 1024]),
        next: RefCell::new(None),
    })
}

/// The bytes still allocated after `rounds` values made and dropped by
/// `make_and_drop`, each drop caught, after one round to warm up (the
/// panic machinery's first allocations, gcptr's cache of freed blocks).
fn growth_over(rounds: usize, make_and_drop: impl Fn()) -> isize {
    let round = || {
        let caught = panic::catch_unwind(AssertUnwindSafe(&make_and_drop));
        let payload = caught.expect_err("the drop panics");
        assert_eq!(support::panic_message(&payload), "Boom's drop");
    };
    round();
    let before = live_bytes();
    for _ in 0..rounds {
        round();
    }
    live_bytes() - before
}

/// The README says a `Drop` that panics still frees its object's memory,
/// as `Rc`'s does. It said "where `Rc` leaks it", which has been false
/// since std's `Rc` deallocates when its value's drop unwinds
/// (rust-lang/rust#132231): both free every object here, `Rc` on the
/// pinned toolchain as gcptr on every path of a death by count (untracked,
/// tracked, and a `Gc` in a garbage cycle's `Drop`, by a collection).
#[test]
fn a_panicking_drop_frees_its_memory_as_rcs_does() {
    let rounds = if cfg!(miri) { 3 } else { 50 };
    thread::spawn(move || {
        let rc = growth_over(rounds, || drop(Rc::new(Boom([1; 1024]))));
        assert_eq!(rc, 0, "Rc leaked a panicking value's memory");
        let untracked = growth_over(rounds, || drop(Gc::new(Boom([2; 1024]))));
        assert_eq!(untracked, 0, "an untracked Gc leaked it");
        let tracked = growth_over(rounds, || drop(tracked_boom(3)));
        assert_eq!(tracked, 0, "a tracked Gc leaked it");
        let in_a_cycle = growth_over(rounds, || {
            let object = tracked_boom(4);
            *object.next.borrow_mut() = Some(object.clone());
            drop(object);
            gcptr::collect(); // completes, then resumes the drop's panic
        });
        assert_eq!(in_a_cycle, 0, "a collection leaked it");
    })
    .join()
    .unwrap();
}

/// `Gc::on_death`'s docs and the README's Python table say that a death
/// callback runs when its object dies, where Python's `weakref.finalize`
/// also calls the pending ones at exit: objects that a thread leaves in a
/// thread-local, or in a garbage cycle, die as the thread exits, so their
/// callbacks have run when `join` returns, each once, though their
/// `DeathCallback` handles were dropped at once (the registry keeps them).
#[test]
fn death_callbacks_of_what_a_thread_leaves_run_before_join_returns() {
    thread_local! {
        static HELD: RefCell<Option<Gc<String>>> = const { RefCell::new(None) };
    }
    let runs = Arc::new(AtomicUsize::new(0));
    let seen = runs.clone();
    thread::spawn(move || {
        let held = Gc::new(String::from("held by a thread-local"));
        let ring = support::Node::new(1);
        ring.link(&ring);
        let seen_ring = seen.clone();
        drop(Gc::on_death(&ring, move || {
            seen_ring.fetch_add(1, Ordering::SeqCst);
        }));
        let seen_held = seen.clone();
        drop(Gc::on_death(&held, move || {
            seen_held.fetch_add(10, Ordering::SeqCst);
        }));
        HELD.with(|slot| *slot.borrow_mut() = Some(held));
        drop(ring); // garbage, left for the thread's exit
        assert_eq!(seen.load(Ordering::SeqCst), 0);
    })
    .join()
    .unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 11);
}

/// The other half of that difference from `weakref.finalize`: an object
/// that never dies (leaked with `mem::forget`) never runs its callback,
/// not even when its thread exits. Natively only: it leaks on purpose.
#[test]
#[cfg_attr(miri, ignore = "leaks on purpose")]
fn death_callback_of_a_leaked_object_never_runs() {
    if support::leak_checker_watches() {
        return;
    }
    let runs = Arc::new(AtomicUsize::new(0));
    let seen = runs.clone();
    thread::spawn(move || {
        let leaked = Gc::new(String::from("leaked"));
        let callback = Gc::on_death(&leaked, move || {
            seen.fetch_add(1, Ordering::SeqCst);
        });
        std::mem::forget(leaked);
        assert!(callback.is_pending());
    })
    .join()
    .unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

/// `API.md`: every collector function acts on the calling thread's
/// collector, and thresholds, the enabled state, counts and stats are per
/// thread. A thread that changes all of them, freezes an object and leaves
/// a garbage cycle changes nothing another thread sees meanwhile: that one
/// has the defaults, counts and collects only its own objects, and its
/// `collect()` leaves the first thread's cycle alone, which the first
/// thread's own `collect()` then reclaims, its settings intact.
#[test]
fn collector_settings_counts_and_garbage_are_per_thread() {
    use std::sync::mpsc;
    let (to_other, other_waits) = mpsc::channel::<()>();
    let (to_first, first_waits) = mpsc::channel::<()>();
    let first = thread::spawn(move || {
        gcptr::set_threshold([5_000, 3, 4]);
        gcptr::disable();
        let frozen = support::Node::new(100);
        gcptr::freeze();
        let (a, b) = (support::Node::new(1), support::Node::new(2));
        a.link(&b);
        b.link(&a);
        drop((a, b)); // a garbage cycle, on this thread
        let _kept = support::Node::new(3);
        assert_eq!(gcptr::count(), [3, 0, 0]);
        to_other.send(()).unwrap();
        first_waits.recv().unwrap(); // the other thread has looked and collected
        assert_eq!(gcptr::threshold(), [5_000, 3, 4]);
        assert!(!gcptr::is_enabled());
        assert_eq!(gcptr::freeze_count(), 1);
        assert_eq!(gcptr::count(), [3, 0, 0]);
        assert!(support::take_drops().is_empty());
        assert_eq!(gcptr::collect(), 2);
        assert_eq!(support::take_drops(), [1, 2]);
        assert_eq!(gcptr::stats()[2].collections, 1);
        assert_eq!(gcptr::stats()[2].collected, 2);
        drop(frozen);
    });
    let other = thread::spawn(move || {
        other_waits.recv().unwrap(); // the first thread has changed everything
        assert_eq!(gcptr::threshold(), [700, 10, 10]);
        assert!(gcptr::is_enabled());
        assert_eq!(gcptr::freeze_count(), 0);
        assert_eq!(gcptr::count(), [0, 0, 0]);
        let own = support::Node::new(7);
        own.link(&own);
        assert_eq!(gcptr::count(), [1, 0, 0]);
        drop(own);
        assert_eq!(gcptr::collect(), 1, "its own cycle only");
        assert_eq!(support::take_drops(), [7]);
        assert_eq!(gcptr::stats()[2].collected, 1);
        to_first.send(()).unwrap();
    });
    other.join().unwrap();
    first.join().unwrap();
}

/// `Weak`'s docs said it "keeps only the allocation's header, never the
/// value", which reads as if the value's memory went with the value: it
/// does not, here as with `rc::Weak`. The value is dropped when the last
/// `Gc` goes, and its bytes stay allocated until the last `Weak` goes (the
/// docs now say so); nothing stays after that. DESIGN.md's "never holds
/// its memory longer than needed for its own bookkeeping" is about how
/// long, and holds: not a byte past the last `Weak`.
#[test]
fn a_weak_keeps_the_values_memory_until_it_goes_not_the_value() {
    thread::spawn(|| {
        const SIZE: usize = 1 << 16;
        let before = live_bytes();
        let logged = Gc::new(support::DropLog(9));
        let bytes = Gc::new([7u8; SIZE]);
        let weak = Gc::downgrade(&logged);
        let weak_bytes = Gc::downgrade(&bytes);
        drop((logged, bytes));
        assert_eq!(support::take_drops(), [9], "the value is dropped at once");
        assert!(live_bytes() - before >= SIZE as isize, "its memory stays");
        assert!(weak.upgrade().is_none() && weak_bytes.upgrade().is_none());
        drop((weak, weak_bytes));
        assert_eq!(live_bytes() - before, 0, "and goes with the last Weak");
    })
    .join()
    .unwrap();
}

/// The weak containers' docs now say what a probe showed: a dead entry
/// holds its object's memory (through its `Weak`) until the container's
/// next `&mut self` call, though its value is dropped at its death, and
/// `len()` no longer counts it; `retain` that keeps everything lets the
/// memory go. (DESIGN.md: a weak reference holds memory no longer than its
/// own bookkeeping needs; a dead entry is bookkeeping until it is taken
/// out, and its address must not be reused meanwhile.)
#[test]
fn a_dead_entry_holds_its_objects_memory_until_the_next_mut_call() {
    thread::spawn(|| {
        const SIZE: isize = 1 << 16;
        let mut values = gcptr::WeakValueMap::new();
        let mut keys = gcptr::WeakKeyMap::new();
        let mut members = gcptr::WeakSet::new();
        let before = live_bytes();
        let (value, key, member) = (
            Gc::new([1u8; SIZE as usize]),
            Gc::new([2u8; SIZE as usize]),
            Gc::new([3u8; SIZE as usize]),
        );
        values.insert(1, &value);
        keys.insert(&key, String::from("attached"));
        members.insert(&member);
        let full = live_bytes() - before;
        assert!(full >= 3 * SIZE);
        drop((value, key, member));
        assert_eq!((values.len(), keys.len(), members.len()), (0, 0, 0));
        assert!(values.iter().next().is_none() && members.iter().next().is_none());
        assert_eq!(
            live_bytes() - before,
            full,
            "all held (the key map's value too)"
        );
        values.retain(|_, _| true);
        let after_values = live_bytes() - before;
        assert!(after_values <= full - SIZE && after_values > full - 2 * SIZE);
        keys.retain(|_, _| true);
        members.retain(|_| true);
        assert!(live_bytes() - before <= full - 3 * SIZE, "all of it");
    })
    .join()
    .unwrap();
}

thread_local! {
    static RESCUED: RefCell<Vec<Gc<Phoenix>>> = const { RefCell::new(Vec::new()) };
}

/// Resurrects itself the first time it is finalized.
#[derive(Trace)]
#[gc(finalize)]
struct Phoenix {
    finalized: Cell<u32>,
    _log: support::DropLog,
}

impl gcptr::Finalize for Phoenix {
    fn finalize(&self) {
        self.finalized.set(self.finalized.get() + 1);
        // The count reached zero: a `Weak` made before still upgrades here
        // (nothing cleared it), and gives the finalizer a handle to keep.
        let me = WEAK_PHOENIX.with(|w| w.borrow().upgrade());
        if let Some(me) = me {
            RESCUED.with(|r| r.borrow_mut().push(me));
        }
    }
}

thread_local! {
    static WEAK_PHOENIX: RefCell<gcptr::Weak<Phoenix>> = const { RefCell::new(gcptr::Weak::new()) };
}

/// `Finalize`'s docs: an object resurrected by the finalizer that its
/// count reaching zero ran keeps its weak references, as nothing cleared
/// them (CPython clears them only after `__del__` in a deallocation); and
/// `on_death`'s: a callback runs after the finalizer, if that did not
/// resurrect the object. So the weak containers keep their entries and the
/// callback stays pending through the resurrection, and all of them see
/// the object's one real death, once, with no second finalizer.
#[test]
fn a_resurrection_by_count_keeps_weak_references_entries_and_callbacks() {
    let phoenix = Gc::new(Phoenix {
        finalized: Cell::new(0),
        _log: support::DropLog(42),
    });
    WEAK_PHOENIX.with(|w| *w.borrow_mut() = Gc::downgrade(&phoenix));
    let weak = Gc::downgrade(&phoenix);
    let mut by_name = gcptr::WeakValueMap::new();
    by_name.insert("phoenix", &phoenix);
    let mut members = gcptr::WeakSet::new();
    members.insert(&phoenix);
    let calls = Rc::new(Cell::new(0));
    let seen = calls.clone();
    let callback = Gc::on_death(&phoenix, move || seen.set(seen.get() + 1));
    drop(phoenix); // count zero: finalized, and resurrected
    let rescued = RESCUED.with(|r| r.borrow_mut().pop()).expect("resurrected");
    assert_eq!(rescued.finalized.get(), 1);
    assert!(support::take_drops().is_empty());
    assert!(Gc::ptr_eq(&weak.upgrade().unwrap(), &rescued));
    assert_eq!((by_name.len(), members.len()), (1, 1));
    assert!(Gc::ptr_eq(&by_name.get("phoenix").unwrap(), &rescued));
    assert!(members.contains(&rescued));
    assert!(callback.is_pending());
    assert_eq!(calls.get(), 0);
    WEAK_PHOENIX.with(|w| *w.borrow_mut() = gcptr::Weak::new());
    drop(rescued); // the real death
    assert_eq!(support::take_drops(), [42]);
    assert!(weak.upgrade().is_none());
    assert_eq!((by_name.len(), members.len()), (0, 0));
    assert!(!callback.is_pending());
    assert_eq!(calls.get(), 1);
}

/// Logs its id when dropped, and panics if asked to.
#[derive(Trace)]
struct Bomb {
    log: support::DropLog,
    #[gc(skip)]
    panics: bool,
    next: RefCell<Option<Gc<Bomb>>>,
}

impl Drop for Bomb {
    fn drop(&mut self) {
        if self.panics {
            panic::resume_unwind(Box::new("a garbage Bomb's drop"));
        }
    }
}

/// `Gc::new`'s new `# Panics` section: the automatic collection that a
/// tracked allocation may start runs the `Drop`s of the garbage it finds,
/// and a panic there comes out of `Gc::new` once the collection is done;
/// the new object, never returned, dies with its value (its `Drop` runs
/// once), and the collector keeps working. The same for `new_cyclic`.
#[test]
fn a_panic_in_the_automatic_collection_comes_out_of_gc_new() {
    thread::spawn(|| {
        for cyclic in [false, true] {
            gcptr::disable();
            let bomb = |id, panics| {
                Gc::new(Bomb {
                    log: support::DropLog(id),
                    panics,
                    next: RefCell::new(None),
                })
            };
            let (a, b) = (bomb(1, true), bomb(2, false));
            *a.next.borrow_mut() = Some(b.clone());
            *b.next.borrow_mut() = Some(a.clone());
            drop((a, b));
            gcptr::set_threshold([1, 100, 100]);
            gcptr::enable();
            let made = panic::catch_unwind(|| {
                let value = |_: &gcptr::Weak<Bomb>| Bomb {
                    log: support::DropLog(3),
                    panics: false,
                    next: RefCell::new(None),
                };
                if cyclic {
                    Gc::new_cyclic(value)
                } else {
                    Gc::new(value(&gcptr::Weak::new()))
                }
            });
            gcptr::disable();
            let payload = made.err().expect("the collection's panic comes out");
            assert_eq!(support::panic_message(&payload), "a garbage Bomb's drop");
            assert_eq!(support::take_drops(), [1, 2, 3], "cyclic: {cyclic}");
            assert_eq!(gcptr::collect(), 0);
            gcptr::set_threshold([700, 10, 10]);
        }
    })
    .join()
    .unwrap();
}

//! What a review of memory reuse, slices and unsized values checked: the
//! freed blocks a thread keeps (`collector/blocks.rs`) go only to requests
//! of their exact layout (a slice's block to a sized object of the same
//! size, never an 8-aligned block to an over-aligned object), never while
//! a `Weak` or a weak container's dead entry still points at them, and not
//! under a collection that is still dropping its garbage; `Gc<[T]>` built
//! from iterators that lie about their length, meddle (collect, allocate,
//! drop) or overflow `Vec`'s capacity, with elements dropped once; traces
//! of slice elements that allocate slices during an analysis, or panic;
//! the counts of slices, `dyn` values and closures; a deep list linked
//! through slices, dropped and collected; a `Weak<[T]>` that outlives the
//! collector at thread exit. Miri checks each block's layout when it goes
//! back to the allocator, with reuse on (`--cfg gcptr_miri_block_reuse`)
//! and off.

mod support;

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::thread;

use gcptr::{gc_closure, gc_coerce, Gc, GcFn, Trace, Tracer, Weak, WeakKeyMap, WeakSet};
use support::{panic_message, scaled, take_drops, DropLog};

/// Whether this build keeps freed blocks for reuse (`blocks.rs`: off under
/// Miri unless `gcptr_miri_block_reuse`, and off with
/// `gcptr_no_block_reuse`). The tests that pin an address reused hold only
/// then; every other assertion holds in every build.
#[allow(unexpected_cfgs)]
const REUSE: bool = cfg!(all(
    not(gcptr_no_block_reuse),
    any(not(miri), gcptr_miri_block_reuse)
));

/// Runs `f` on a thread of its own: a collector, and kept blocks, of its
/// own, whatever other tests do. A panic in `f` fails the test.
fn on_fresh_thread(f: impl FnOnce() + Send + 'static) {
    thread::spawn(f).join().unwrap();
}

/// A tracked object of 48 bytes in all (links, header, a `RefCell`).
type Node = Gc<NodeValue>;
type NodeValue = RefCell<Option<Gc<u64>>>;

fn node() -> Node {
    Gc::new(RefCell::new(None))
}

fn address<T: ?Sized>(gc: &Gc<T>) -> usize {
    Gc::as_ptr(gc).cast::<()>().addr()
}

/// A tracked node that logs its drop (`support::Node`).
type Logged = support::Node;

fn logged(id: u32) -> Gc<Logged> {
    Gc::new(support::Node {
        log: DropLog(id),
        edges: RefCell::new(Vec::new()),
    })
}

/// Calls `f`, which must panic; returns its message.
fn panics(f: impl FnOnce()) -> String {
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    panic::set_hook(hook);
    panic_message(&result.expect_err("it panics"))
}

// ---------------------------------------------------------------------
// Which requests a freed block serves, and when.

/// A `Weak` to a dead object keeps its block: the objects of the same
/// layout made meanwhile get other memory, and the `Weak` never upgrades
/// to one of them. Once the `Weak` goes, the block serves the next object.
#[test]
fn a_weak_keeps_its_dead_object_s_block_from_reuse() {
    on_fresh_thread(|| {
        let first = node();
        let freed = address(&first);
        let weak = Gc::downgrade(&first);
        drop(first);
        let mut made = Vec::new();
        for i in 0..64 {
            let n = node();
            assert_ne!(address(&n), freed, "a block still held by a Weak");
            // Free every other one: blocks come and go meanwhile.
            if i % 2 == 0 {
                made.push(n);
            }
        }
        assert!(weak.upgrade().is_none());
        assert_eq!((weak.strong_count(), weak.weak_count()), (0, 0));
        drop(made);
        // The last block freed is the first reused.
        drop(weak);
        let next = node();
        if REUSE {
            assert_eq!(address(&next), freed);
        }
        assert!(next.borrow().is_none());
    });
}

/// A weak container's entry for a dead object keeps its `Weak`, and so the
/// block, until the container's next `&mut` call drops it: no object made
/// meanwhile takes the dead key's address, and none made afterwards, at
/// that address, is taken for the dead key.
#[test]
fn a_dead_entry_of_a_weak_container_keeps_the_block_until_purged() {
    on_fresh_thread(|| {
        let mut set = WeakSet::new();
        let mut map = WeakKeyMap::new();
        let key = node();
        let freed = address(&key);
        set.insert(&key);
        map.insert(&key, "dead key's value");
        drop(key);
        assert_eq!((set.len(), map.len()), (0, 0));
        let other = node();
        assert_ne!(address(&other), freed);
        assert!(!set.contains(&other));
        assert_eq!(map.get(&other), None);
        // `&mut` calls purge the dead entries and drop their `Weak`s: the
        // map's last, so the block is freed then.
        assert!(set.insert(&other));
        assert!(set.remove(&other));
        assert_eq!(map.insert(&other, "other"), None);
        assert_eq!(map.remove(&other), Some("other"));
        let reborn = node();
        if REUSE {
            assert_eq!(address(&reborn), freed);
        }
        assert!(!set.contains(&reborn));
        assert!(!map.contains_key(&reborn));
        assert_eq!(map.get(&reborn), None);
        assert_eq!((set.len(), map.len()), (0, 0));
    });
}

/// A tracked slice's 56-byte block, once freed, serves a sized object of
/// that same layout (and goes back to the allocator with it, which Miri
/// checks); the slice's elements were each dropped once before.
#[test]
fn a_freed_slice_s_block_serves_a_sized_object_of_the_same_layout() {
    /// 24 bytes: with links and header, 56, as a slice of two `Gc`s (a
    /// length word, links, header, two pointers).
    type Sized24 = (RefCell<Option<Gc<u64>>>, u64);
    type Cell24 = Gc<RefCell<Option<Gc<u64>>>>;
    on_fresh_thread(|| {
        gcptr::disable();
        // A tracked element: a slice of `Gc`s to untracked objects only
        // would be acyclic, never counted.
        let elements = [
            Gc::new(RefCell::new(None::<Gc<u64>>)),
            Gc::new(RefCell::new(None)),
        ];
        let slice: Gc<[Cell24]> = Gc::from(elements.to_vec());
        assert!(gcptr::is_tracked(&slice));
        assert_eq!(gcptr::count()[0], 3);
        let slice_value = address(&slice);
        drop(slice);
        assert_eq!(gcptr::count()[0], 2);
        assert_eq!(elements.each_ref().map(Gc::strong_count), [1, 1]);
        let sized: Gc<Sized24> = Gc::new((RefCell::new(Some(Gc::new(3))), 4));
        if REUSE {
            // The slice's value starts 40 bytes into the block, the sized
            // object's 32.
            assert_eq!(address(&sized) + 8, slice_value);
        }
        assert_eq!((**sized.0.borrow().as_ref().unwrap(), sized.1), (3, 4));
        assert_eq!(gcptr::count()[0], 3);
        drop(sized);
        assert_eq!(gcptr::count()[0], 2);
    });
}

/// A tracked value aligned to 16 or 64 takes a 48-byte allocation like an
/// 8-aligned node's, and is never handed one of the nodes' kept blocks:
/// each is aligned for its type, whatever was freed before.
#[test]
fn over_aligned_objects_are_never_handed_an_8_aligned_block() {
    #[derive(Trace)]
    #[repr(align(16))]
    struct Align16(RefCell<Option<Gc<u64>>>);
    #[derive(Trace)]
    #[repr(align(64))]
    struct Align64(RefCell<Option<Gc<u64>>>);
    on_fresh_thread(|| {
        for round in 0..4 {
            // Blocks of 48 bytes, 8-aligned, kept.
            drop((0..64).map(|_| node()).collect::<Vec<_>>());
            let sixteens: Vec<Gc<Align16>> = (0..64)
                .map(|i| Gc::new(Align16(RefCell::new(Some(Gc::new(i))))))
                .collect();
            let sixty_fours: Vec<Gc<Align64>> = (0..16)
                .map(|i| Gc::new(Align64(RefCell::new(Some(Gc::new(i))))))
                .collect();
            type Wide = Gc<RefCell<(u128, Option<Gc<u64>>)>>;
            let wide: Vec<Wide> = (0..64)
                .map(|i| Gc::new(RefCell::new((u128::from(i as u32) << 64, None))))
                .collect();
            for (i, gc) in sixteens.iter().enumerate() {
                assert_eq!(address(gc) % 16, 0, "round {round}");
                assert_eq!(**gc.0.borrow().as_ref().unwrap(), i as u64);
            }
            for gc in &sixty_fours {
                assert_eq!(address(gc) % 64, 0, "round {round}");
            }
            for (i, gc) in wide.iter().enumerate() {
                assert_eq!(address(gc) % align_of::<u128>(), 0, "round {round}");
                assert_eq!(gc.borrow().0, (i as u128) << 64);
            }
        }
    });
}

/// A zero-sized value that may own a `Gc` (a hand-written trace keeps the
/// default) is a tracked object of its own: counted, distinct while alive,
/// dropped once, and its block reused; a slice of a thousand of them, and
/// an empty slice of `Gc`s, are one tracked object each.
#[test]
fn zero_sized_tracked_values_and_empty_tracked_slices() {
    struct Unit;
    impl Drop for Unit {
        fn drop(&mut self) {
            UNITS_DROPPED.with(|d| d.set(d.get() + 1));
        }
    }
    // SAFETY: owns no `Gc` (the default answers that it may: tracked).
    unsafe impl Trace for Unit {
        fn trace(&self, _: &mut Tracer) {}
    }
    #[derive(Trace)]
    struct Empty;
    thread_local!(static UNITS_DROPPED: Cell<usize> = const { Cell::new(0) });
    on_fresh_thread(|| {
        gcptr::disable();
        let units: Vec<Gc<Unit>> = (0..10).map(|_| Gc::new(Unit)).collect();
        assert!(units.iter().all(gcptr::is_tracked));
        assert_eq!(gcptr::count()[0], 10);
        let mut addresses: Vec<usize> = units.iter().map(address).collect();
        addresses.sort_unstable();
        addresses.dedup();
        assert_eq!(addresses.len(), 10);
        let last = address(&units[9]);
        drop(units);
        assert_eq!(UNITS_DROPPED.with(Cell::get), 10);
        assert_eq!(gcptr::count()[0], 0);
        let again = Gc::new(Unit);
        if REUSE {
            assert_eq!(address(&again), last);
        }
        drop(again);
        // A derived unit struct owns no `Gc`: untracked.
        assert!(!gcptr::is_tracked(&Gc::new(Empty)));

        let many: Gc<[Unit]> = (0..1000).map(|_| Unit).collect();
        let none: Gc<[RefCell<Option<Gc<u64>>>]> = Gc::from(Vec::new());
        assert!(gcptr::is_tracked(&many) && gcptr::is_tracked(&none));
        // Fixed edges and nothing tracked: acyclic, as a `Gc<Vec<_>>` of it.
        let fixed: Gc<[Gc<u64>]> = Gc::from(Vec::new());
        assert!(!gcptr::is_tracked(&fixed));
        assert_eq!((many.len(), none.len()), (1000, 0));
        assert_eq!(gcptr::count()[0], 2);
        assert_eq!(gcptr::collect(), 0);
        UNITS_DROPPED.with(|d| d.set(0));
        drop((many, none));
        assert_eq!(UNITS_DROPPED.with(Cell::get), 1000);
        assert_eq!(gcptr::count(), [0, 0, 0]);
    });
}

// ---------------------------------------------------------------------
// Building a slice from iterators that lie, meddle or overflow.

/// A garbage cycle of two tracked nodes, made and let go.
fn make_garbage_cycle(id: u32) {
    let a = logged(id);
    let b = logged(id + 1);
    a.edges.borrow_mut().push(b.clone());
    b.edges.borrow_mut().push(a);
}

/// An iterator whose `next` collects, makes garbage cycles, and makes and
/// drops objects of its elements' layout, and whose `size_hint` says it is
/// done: the slice holds what it yielded, in order, each element dropped
/// once with it, the counts right, and the garbage collected.
#[test]
fn an_iterator_that_meddles_and_lies_builds_the_slice_it_yields() {
    struct Meddler(u32);
    impl Iterator for Meddler {
        type Item = Gc<Logged>;
        fn next(&mut self) -> Option<Gc<Logged>> {
            if self.0 == 20 {
                return None;
            }
            self.0 += 1;
            gcptr::collect();
            make_garbage_cycle(1000 + 2 * self.0);
            drop(logged(2000 + self.0));
            Some(logged(self.0))
        }
        fn size_hint(&self) -> (usize, Option<usize>) {
            (0, Some(0))
        }
    }
    on_fresh_thread(|| {
        gcptr::disable();
        let slice: Gc<[Gc<Logged>]> = Meddler(0).collect();
        assert_eq!(
            slice.iter().map(|n| n.log.0).collect::<Vec<_>>(),
            (1..=20).collect::<Vec<_>>()
        );
        // The ones dropped at once, and the cycles collected by the calls
        // after theirs.
        let mut expected: Vec<u32> = (2001..=2020).collect();
        expected.extend((1..20).flat_map(|i| [1000 + 2 * i, 1001 + 2 * i]));
        expected.sort_unstable();
        assert_eq!(take_drops(), expected);
        // Since the last call's collection: its cycle, its element, and
        // the slice.
        assert_eq!(gcptr::count()[0], 2 + 1 + 1);
        assert_eq!(gcptr::collect(), 2);
        assert_eq!(take_drops(), [1040, 1041]);
        drop(slice);
        assert_eq!(take_drops(), (1..=20).collect::<Vec<_>>());
        assert_eq!(gcptr::count(), [0, 0, 0]);
    });
}

/// An iterator whose `size_hint` claims `usize::MAX` elements makes the
/// `Vec` it is collected into panic ("capacity overflow", as for
/// `Rc<[T]>`) after the first `next`: that element is dropped once, and
/// nothing else is yielded or leaked. Zero-sized elements need no
/// capacity: the same lie then builds the slice.
#[test]
fn a_size_hint_past_any_capacity_panics_and_drops_the_first_element_once() {
    struct Boastful<T> {
        made: u32,
        make: fn(u32) -> T,
    }
    impl<T> Iterator for Boastful<T> {
        type Item = T;
        fn next(&mut self) -> Option<T> {
            (self.made < 3).then(|| {
                self.made += 1;
                (self.make)(self.made)
            })
        }
        fn size_hint(&self) -> (usize, Option<usize>) {
            (usize::MAX, None)
        }
    }
    on_fresh_thread(|| {
        let mut iter = Boastful {
            made: 0,
            make: logged,
        };
        let message = panics(|| drop(Gc::<[Gc<Logged>]>::from_iter(&mut iter)));
        assert_eq!(message, "capacity overflow");
        assert_eq!(iter.made, 1);
        assert_eq!(take_drops(), [1]);
        assert_eq!(gcptr::count()[0], 0);

        #[derive(Trace)]
        struct Zst;
        let zsts: Gc<[Zst]> = Boastful {
            made: 0,
            make: |_| Zst,
        }
        .collect();
        assert_eq!(zsts.len(), 3);
    });
}

/// A panicking iterator, after it yielded nodes in garbage cycles: what it
/// yielded is dropped once by the unwinding (the cycles then collected),
/// and no slice object was made or counted.
#[test]
fn an_iterator_that_panics_after_yielding_cycle_members_leaks_nothing() {
    on_fresh_thread(|| {
        gcptr::disable();
        let mut yielded = 0;
        let message = panics(|| {
            let _: Gc<[Gc<Logged>]> = std::iter::from_fn(|| {
                yielded += 1;
                if yielded == 4 {
                    panic!("the iterator fails");
                }
                let member = logged(yielded);
                let peer = logged(100 + yielded);
                member.edges.borrow_mut().push(peer.clone());
                peer.edges.borrow_mut().push(member.clone());
                Some(member)
            })
            .collect();
        });
        assert_eq!(message, "the iterator fails");
        assert_eq!(take_drops(), [0u32; 0]);
        assert_eq!(gcptr::count()[0], 6);
        assert_eq!(gcptr::collect(), 6);
        assert_eq!(take_drops(), [1, 2, 3, 101, 102, 103]);
        assert_eq!(gcptr::count(), [0, 0, 0]);
    });
}

// ---------------------------------------------------------------------
// Collections that free slices, and traces that meddle.

/// Dropped by a collection: panics for one element, and makes new nodes
/// and slices of the garbage's own layouts for the others, while the
/// collection is still dropping its garbage.
struct Churner {
    id: u32,
    next: RefCell<Option<Gc<[Churner]>>>,
}

// SAFETY: visits the one `Gc` it owns.
unsafe impl Trace for Churner {
    fn trace(&self, tracer: &mut Tracer) {
        self.next.trace(tracer);
    }
}

/// 72 bytes: with links and header, 104, as a tracked slice of two
/// `Churner`s (32 bytes each).
type Fresh = Gc<(RefCell<Option<Gc<u64>>>, [u64; 5])>;

/// What a `Churner`'s drop made: its id, and the objects.
type Made = (u32, Fresh, Gc<[Churner]>);

thread_local! {
    static MADE_IN_DROPS: RefCell<Vec<Made>> =
        const { RefCell::new(Vec::new()) };
}

impl Drop for Churner {
    fn drop(&mut self) {
        CHURNED.with(|c| c.borrow_mut().push(self.id));
        if self.id == 13 {
            panic!("churner 13 fails");
        }
        if self.id >= 1000 {
            return;
        }
        let id = u64::from(self.id);
        let fresh = Gc::new((RefCell::new(Some(Gc::new(id))), [id; 5]));
        let slice: Gc<[Churner]> = Gc::from(vec![Churner {
            id: 1000 + self.id,
            next: RefCell::new(None),
        }]);
        let _ = MADE_IN_DROPS.try_with(|m| m.borrow_mut().push((self.id, fresh, slice)));
    }
}

thread_local!(static CHURNED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) });

fn churned() -> Vec<u32> {
    let mut ids = CHURNED.with(|c| c.take());
    ids.sort_unstable();
    ids
}

/// A ring of tracked slices whose elements' `Drop`s make new objects of
/// the garbage's layouts (taking blocks freed in the same collection, when
/// memory is reused) and one of which panics: every element is dropped
/// once, the first panic comes out of `collect` after the collection is
/// done, the new objects hold what was written into them, and the counts
/// and memory (Miri's checks) come out right.
#[test]
fn a_collection_whose_slice_drops_panic_and_allocate_frees_each_block_once() {
    on_fresh_thread(|| {
        gcptr::disable();
        const RING: u32 = 20;
        let slices: Vec<Gc<[Churner]>> = (0..RING)
            .map(|i| {
                Gc::from(vec![
                    Churner {
                        id: 2 * i,
                        next: RefCell::new(None),
                    },
                    Churner {
                        id: 2 * i + 1,
                        next: RefCell::new(None),
                    },
                ])
            })
            .collect();
        for (i, slice) in slices.iter().enumerate() {
            *slice[1].next.borrow_mut() = Some(slices[(i + 1) % slices.len()].clone());
        }
        drop(slices);
        assert_eq!(gcptr::count()[0], RING as usize);
        let message = panics(|| {
            gcptr::collect();
        });
        assert_eq!(message, "churner 13 fails");
        assert_eq!(churned(), (0..2 * RING).collect::<Vec<_>>());
        let made = MADE_IN_DROPS.with(|m| m.take());
        assert_eq!(made.len(), 2 * RING as usize - 1);
        for (id, fresh, slice) in &made {
            let id64 = u64::from(*id);
            assert_eq!(**fresh.0.borrow().as_ref().unwrap(), id64);
            assert_eq!(fresh.1, [id64; 5]);
            assert_eq!(slice[0].id, 1000 + id);
            assert!(slice[0].next.borrow().is_none());
        }
        assert_eq!(gcptr::collect(), 0);
        drop(made);
        assert_eq!(churned().len(), 2 * RING as usize - 1);
        assert_eq!(gcptr::count(), [0, 0, 0]);
    });
}

/// A slice element whose trace builds slices while a collection analyses
/// it (allocating is within `Trace`'s contract), keeps one of each pair
/// and drops the other: the kept ones are whole and tracked, the dropped
/// ones die once (after the analysis), and the slice's own cycle is
/// reclaimed.
#[test]
fn a_trace_that_builds_and_drops_slices_during_an_analysis() {
    struct Builder {
        _log: DropLog,
        peer: RefCell<Option<Gc<[Builder]>>>,
    }
    thread_local!(static BUILT: RefCell<Vec<Gc<[Gc<Logged>]>>> = const { RefCell::new(Vec::new()) });
    thread_local!(static NEXT_ID: Cell<u32> = const { Cell::new(100) });
    fn built(id: u32) -> Gc<[Gc<Logged>]> {
        Gc::from(vec![logged(id)])
    }
    // SAFETY: visits the one `Gc` it owns; the slices it makes are not
    // its own.
    unsafe impl Trace for Builder {
        fn trace(&self, tracer: &mut Tracer) {
            let id = NEXT_ID.with(|n| n.replace(n.get() + 2));
            BUILT.with(|b| b.borrow_mut().push(built(id)));
            drop(built(id + 1));
            self.peer.trace(tracer);
        }
    }
    on_fresh_thread(|| {
        gcptr::disable();
        let ring: Gc<[Builder]> = Gc::from(vec![
            Builder {
                _log: DropLog(1),
                peer: RefCell::new(None),
            },
            Builder {
                _log: DropLog(2),
                peer: RefCell::new(None),
            },
        ]);
        *ring[0].peer.borrow_mut() = Some(ring.clone());
        drop(ring);
        assert_eq!(gcptr::collect(), 1);
        let mut drops = take_drops();
        let kept: Vec<u32> = BUILT.with(|b| b.borrow().iter().map(|s| s[0].log.0).collect());
        assert!(!kept.is_empty());
        // Each trace's dropped slice died, with its node, and the ring's
        // two elements.
        let mut expected: Vec<u32> = kept.iter().map(|id| id + 1).collect();
        expected.extend([1, 2]);
        expected.sort_unstable();
        drops.sort_unstable();
        assert_eq!(drops, expected);
        assert!(BUILT.with(|b| b.borrow().iter().all(gcptr::is_tracked)));
        assert_eq!(gcptr::collect(), 0);
        BUILT.with(|b| b.borrow_mut().clear());
        assert_eq!(take_drops(), kept);
    });
}

/// A slice element's trace that panics while the collection analyses the
/// slice's cycle: `collect` panics with the trace's message and frees
/// nothing; once the trace behaves, the cycle is collected, each element
/// dropped once.
#[test]
fn a_slice_element_trace_that_panics_frees_nothing_early() {
    struct Touchy {
        log: DropLog,
        peer: RefCell<Option<Gc<[Touchy]>>>,
    }
    // SAFETY: visits the one `Gc` it owns.
    unsafe impl Trace for Touchy {
        fn trace(&self, tracer: &mut Tracer) {
            support::trace_countdown();
            self.peer.trace(tracer);
        }
    }
    on_fresh_thread(|| {
        gcptr::disable();
        let ring: Gc<[Touchy]> = (1..=3)
            .map(|id| Touchy {
                log: DropLog(id),
                peer: RefCell::new(None),
            })
            .collect();
        *ring[2].peer.borrow_mut() = Some(ring.clone());
        let weak = Gc::downgrade(&ring);
        drop(ring);
        for n in 1..=3 {
            support::panic_in_nth_trace(n);
            let message = panics(|| {
                gcptr::collect();
            });
            assert_eq!(message, "trace failed");
            assert_eq!(take_drops(), [0u32; 0]);
            let ring = weak.upgrade().expect("not freed");
            assert_eq!(ring.iter().map(|t| t.log.0).collect::<Vec<_>>(), [1, 2, 3]);
        }
        support::panic_in_nth_trace(0);
        assert_eq!(gcptr::collect(), 1);
        assert_eq!(take_drops(), [1, 2, 3]);
        assert!(weak.upgrade().is_none());
        assert_eq!(gcptr::count(), [0, 0, 0]);
    });
}

// ---------------------------------------------------------------------
// Counts of unsized values.

/// `count()` follows tracked objects only, whatever their shape: a slice
/// of plain data, a `Gc<str>` and a closure over untracked captures count
/// nothing; a slice of `Gc`s counts one, even one whose `Vec` would be
/// acyclic (a slice is always tracked: a missed chance to untrack it, not
/// an error); a coercion to `dyn` changes nothing; each death counts out
/// exactly what was counted in.
#[test]
fn counts_of_slices_strings_dyn_values_and_closures() {
    trait Shape: Trace {
        fn id(&self) -> u64;
    }
    #[derive(Trace)]
    struct Square(RefCell<Option<Gc<u64>>>, #[gc(skip)] u64);
    impl Shape for Square {
        fn id(&self) -> u64 {
            self.1
        }
    }
    on_fresh_thread(|| {
        gcptr::disable();
        let plain: Gc<[u64]> = Gc::from(vec![1, 2, 3]);
        let text: Gc<str> = Gc::from(String::from("text"));
        let empty_text: Gc<str> = Gc::from("");
        assert!(!gcptr::is_tracked(&plain) && !gcptr::is_tracked(&text));
        assert_eq!((&*empty_text, &*text), ("", "text"));
        assert_eq!(gcptr::count()[0], 0);

        let leaf = Gc::new(7u64);
        let as_vec = Gc::new(vec![leaf.clone()]);
        let as_slice: Gc<[Gc<u64>]> = Gc::from(vec![leaf.clone()]);
        assert!(!gcptr::is_tracked(&as_vec));
        // Acyclic too: fixed edges to an untracked object.
        assert!(!gcptr::is_tracked(&as_slice));
        let cells: Gc<[RefCell<Option<Gc<u64>>>]> = Gc::from(vec![RefCell::new(None)]);
        assert!(gcptr::is_tracked(&cells));
        assert_eq!(gcptr::count()[0], 1);

        let square = Gc::new(Square(RefCell::new(None), 9));
        assert_eq!(gcptr::count()[0], 2);
        let shape: Gc<dyn Shape> = gc_coerce!(square => dyn Shape);
        let weak_shape: Weak<dyn Shape> = gc_coerce!(Gc::downgrade(&shape) => dyn Shape);
        assert_eq!(gcptr::count()[0], 2);
        assert_eq!(weak_shape.upgrade().unwrap().id(), 9);

        let over_leaf = gc_closure!([leaf] move || **leaf);
        let untracked: Gc<dyn GcFn<(), u64>> = gc_coerce!(Gc::new(over_leaf) => dyn GcFn<(), u64>);
        assert_eq!(untracked.call(()), 7);
        let shape_for_closure = shape.clone();
        let over_shape = gc_closure!([shape_for_closure] move || shape_for_closure.id());
        let tracked: Gc<dyn GcFn<(), u64>> = gc_coerce!(Gc::new(over_shape) => dyn GcFn<(), u64>);
        drop(shape_for_closure);
        assert_eq!(tracked.call(()), 9);
        assert!(!gcptr::is_tracked(&untracked));
        assert!(gcptr::is_tracked(&tracked));
        assert_eq!(gcptr::count()[0], 3);

        drop((plain, text, empty_text, untracked, as_vec));
        assert_eq!(gcptr::count()[0], 3);
        drop((as_slice, cells));
        assert_eq!(gcptr::count()[0], 2);
        drop(shape);
        assert_eq!(gcptr::count()[0], 2, "the closure holds the shape");
        drop(tracked);
        assert_eq!(gcptr::count()[0], 0);
        assert!(weak_shape.upgrade().is_none());
        assert_eq!(Gc::strong_count(&leaf), 1);
    });
}

// ---------------------------------------------------------------------
// Depth, and thread exit.

/// A list linked through one-element slices.
#[derive(Trace)]
struct SliceLink {
    next: RefCell<Option<Gc<[SliceLink]>>>,
}

thread_local!(static LINKS_DROPPED: Cell<usize> = const { Cell::new(0) });

impl Drop for SliceLink {
    fn drop(&mut self) {
        let _ = LINKS_DROPPED.try_with(|d| d.set(d.get() + 1));
    }
}

/// A list a million deep (a thousand under Miri) linked through tracked
/// slices, on a 256 KiB stack: dropped by count, and collected once its
/// tail points back at its head, with no recursion that follows the
/// list, each link dropped once.
#[test]
fn a_deep_list_of_slices_drops_and_is_collected_on_a_small_stack() {
    fn chain(n: usize) -> (Gc<[SliceLink]>, Gc<[SliceLink]>) {
        let tail: Gc<[SliceLink]> = Gc::from(vec![SliceLink {
            next: RefCell::new(None),
        }]);
        let mut head = tail.clone();
        for _ in 1..n {
            head = Gc::from(vec![SliceLink {
                next: RefCell::new(Some(head)),
            }]);
        }
        (head, tail)
    }
    let n = scaled(1_000_000);
    thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            gcptr::disable();
            let (head, tail) = chain(n);
            drop(tail);
            drop(head);
            assert_eq!(LINKS_DROPPED.with(|d| d.replace(0)), n);
            assert_eq!(gcptr::count(), [0, 0, 0]);

            let (head, tail) = chain(n);
            *tail[0].next.borrow_mut() = Some(head);
            drop(tail);
            assert_eq!(gcptr::collect(), n);
            assert_eq!(LINKS_DROPPED.with(|d| d.replace(0)), n);
            assert_eq!(gcptr::count(), [0, 0, 0]);
        })
        .unwrap()
        .join()
        .unwrap();
}

/// A `Weak<[T]>` to a tracked slice, held by a thread-local destroyed after
/// the collector's exit collection: the slice died by count, the cycle its
/// elements make is reclaimed by the exit collection (each dropped once),
/// the `Weak` never upgrades, and its late drop frees the block with the
/// slice's own layout, to the allocator rather than to a state that is
/// gone (Miri checks the layout, and that nothing leaks).
#[test]
fn a_weak_slice_outliving_the_collector_frees_its_block_at_thread_exit() {
    use std::sync::mpsc::{channel, Sender};
    use support::Reporter;
    struct Late(Weak<[Gc<Reporter>]>, Sender<u32>);
    impl Drop for Late {
        fn drop(&mut self) {
            // 0: it does not upgrade.
            let _ = self.1.send(u32::from(self.0.upgrade().is_some()));
        }
    }
    thread_local! {
        static LATE: RefCell<Option<Late>> = const { RefCell::new(None) };
    }
    let (tx, rx) = channel();
    thread::spawn(move || {
        // First used before any `Gc`: destroyed after the collector's
        // first exit guard.
        LATE.with(|late| assert!(late.borrow().is_none()));
        let reporter = |id| Gc::new(Reporter(id, tx.clone(), RefCell::new(None)));
        let slice: Gc<[Gc<Reporter>]> = Gc::from(vec![reporter(1), reporter(2)]);
        *slice[0].2.borrow_mut() = Some(slice[1].clone());
        *slice[1].2.borrow_mut() = Some(slice[0].clone());
        LATE.with(|late| *late.borrow_mut() = Some(Late(Gc::downgrade(&slice), tx.clone())));
        drop(slice);
    })
    .join()
    .unwrap();
    let mut reported: Vec<u32> = rx.iter().collect();
    // The late `Weak`'s report comes last: after the exit collection.
    assert_eq!(reported.pop(), Some(0));
    reported.sort_unstable();
    assert_eq!(reported, [1, 2]);
}

// ---------------------------------------------------------------------
// Blocks of objects that lose their value without dying as usual.

/// A `new_cyclic` whose closure panics after keeping a clone of its `Weak`:
/// the object is never counted or given a value, the `Weak` never upgrades
/// and keeps the block from the objects made meanwhile; once it goes, the
/// block serves the next object of the layout.
#[test]
fn a_failed_new_cyclic_s_block_waits_for_the_weak_its_closure_kept() {
    thread_local! {
        static KEPT: RefCell<Option<Weak<NodeValue>>> = const { RefCell::new(None) };
    }
    on_fresh_thread(|| {
        gcptr::disable();
        let message = panics(|| {
            let _ = Gc::new_cyclic(|me: &Weak<NodeValue>| {
                KEPT.with(|k| *k.borrow_mut() = Some(me.clone()));
                panic!("the closure fails")
            });
        });
        assert_eq!(message, "the closure fails");
        assert_eq!(gcptr::count()[0], 0);
        let weak = KEPT.with(|k| k.take()).unwrap();
        let freed = weak.as_ptr().addr();
        let made: Vec<Node> = (0..16).map(|_| node()).collect();
        assert!(made.iter().all(|n| address(n) != freed));
        assert!(weak.upgrade().is_none());
        assert_eq!(gcptr::count()[0], 16);
        drop(made);
        drop(weak);
        let next = node();
        if REUSE {
            assert_eq!(address(&next), freed);
        }
        assert_eq!(gcptr::count()[0], 1);
    });
}

/// `make_mut` with a `Weak` alive moves the value to a new object, and
/// `try_unwrap` moves it out: each leaves the old block to the `Weak`s,
/// which never upgrade to whatever is made meanwhile, and the counts say
/// one tracked object then none.
#[test]
fn make_mut_and_try_unwrap_leave_the_old_block_to_its_weaks() {
    on_fresh_thread(|| {
        gcptr::disable();
        let mut moved: Node = Gc::new(RefCell::new(Some(Gc::new(1))));
        let old = address(&moved);
        let weak = Gc::downgrade(&moved);
        *Gc::make_mut(&mut moved).get_mut() = Some(Gc::new(2));
        assert_ne!(address(&moved), old);
        assert_eq!(gcptr::count()[0], 1);
        let unwrapped: Node = Gc::new(RefCell::new(Some(Gc::new(3))));
        let unwrapped_at = address(&unwrapped);
        let weak_unwrapped = Gc::downgrade(&unwrapped);
        let value = Gc::try_unwrap(unwrapped).unwrap();
        assert_eq!(**value.borrow().as_ref().unwrap(), 3);
        assert_eq!(gcptr::count()[0], 1);
        let made: Vec<Node> = (0..16).map(|_| node()).collect();
        for n in &made {
            assert!(address(n) != old && address(n) != unwrapped_at);
        }
        assert!(weak.upgrade().is_none() && weak_unwrapped.upgrade().is_none());
        assert_eq!(**moved.borrow().as_ref().unwrap(), 2);
        drop((made, weak, weak_unwrapped, moved));
        assert_eq!(gcptr::count()[0], 0);
    });
}

/// A chain a million deep (a thousand under Miri) of closures, each
/// capturing the one before as a `Gc<dyn GcFn>`: acyclic (a closure's
/// captures are fixed), so untracked and uncounted, and dropped on a
/// 256 KiB stack with no recursion that follows the chain.
#[test]
fn a_deep_chain_of_dyn_closures_is_acyclic_and_drops_on_a_small_stack() {
    type Step = Gc<dyn GcFn<(), usize>>;
    let n = scaled(1_000_000);
    thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let first = gc_closure!([] move || 0usize);
            let mut head: Step = gc_coerce!(Gc::new(first) => dyn GcFn<(), usize>);
            for _ in 1..n {
                let next = head;
                let step = gc_closure!([next] move || next.call(()).min(1) + 1);
                head = gc_coerce!(Gc::new(step) => dyn GcFn<(), usize>);
            }
            assert!(!gcptr::is_tracked(&head));
            assert_eq!(gcptr::count()[0], 0);
            let weak = Gc::downgrade(&head);
            drop(head);
            assert!(weak.upgrade().is_none());
            assert_eq!(gcptr::collect(), 0);
        })
        .unwrap()
        .join()
        .unwrap();
}

/// The automatic collection that tracking a new slice starts (at a
/// threshold of 1) runs while the slice is linked nowhere: the cycle its elements make,
/// held by nothing but the slice, is not taken for garbage then; it is
/// reclaimed with the slice once that goes.
#[test]
fn elements_of_a_new_slice_survive_the_collection_its_tracking_starts() {
    on_fresh_thread(|| {
        gcptr::set_threshold([1, 10, 10]);
        for round in 0..3 {
            let (a, b) = (logged(1), logged(2));
            a.edges.borrow_mut().push(b.clone());
            b.edges.borrow_mut().push(a.clone());
            let slice: Gc<[Gc<Logged>]> = Gc::from(vec![a, b]);
            assert_eq!(take_drops(), [0u32; 0], "round {round}");
            assert_eq!(slice[0].edges.borrow()[0].log.0, 2);
            assert_eq!(slice[1].edges.borrow()[0].log.0, 1);
            drop(slice);
            gcptr::collect();
            assert_eq!(take_drops(), [1, 2], "round {round}");
        }
    });
}

/// `Gc::get_mut` on unsized values keeps the counts exact: a `dyn`
/// closure that was acyclic (uncounted) becomes tracked and counted, as a
/// sized acyclic object does, and its death counts it out; a slice, set
/// aside while it lends its elements, stays counted once, and comes back
/// on its next lost reference, to be collected in a cycle through a slice
/// made with the `&mut`.
#[test]
fn get_mut_on_unsized_values_keeps_the_counts_exact() {
    #[derive(Trace)]
    struct Cellar {
        _log: DropLog,
        next: RefCell<Option<Gc<[Cellar]>>>,
    }
    type Step = Gc<dyn GcFn<(), usize>>;
    on_fresh_thread(|| {
        gcptr::disable();
        let leaf = Gc::new(5usize);
        let closure = gc_closure!([leaf] move || **leaf);
        let mut step: Step = gc_coerce!(Gc::new(closure) => dyn GcFn<(), usize>);
        assert!(!gcptr::is_tracked(&step));
        assert_eq!(gcptr::count()[0], 0);
        assert!(Gc::get_mut(&mut step).is_some());
        assert!(gcptr::is_tracked(&step));
        assert_eq!(gcptr::count()[0], 1);
        assert_eq!(step.call(()), 5);
        drop(step);
        assert_eq!(gcptr::count()[0], 0);

        let cellar = |id| Cellar {
            _log: DropLog(id),
            next: RefCell::new(None),
        };
        let mut slice: Gc<[Cellar]> = Gc::from(vec![cellar(1), cellar(2)]);
        assert_eq!(gcptr::count()[0], 1);
        let inner = {
            let elements = Gc::get_mut(&mut slice).unwrap();
            *elements[0].next.get_mut() = Some(Gc::from(vec![cellar(3)]));
            elements[0].next.get_mut().clone().unwrap()
        };
        assert_eq!(gcptr::count()[0], 2);
        // The inner slice points back at the outer one: a cycle.
        *inner[0].next.borrow_mut() = Some(slice.clone());
        drop(inner);
        let weak = Gc::downgrade(&slice);
        drop(slice);
        assert_eq!(take_drops(), [0u32; 0]);
        assert_eq!(gcptr::count()[0], 2);
        assert_eq!(gcptr::collect(), 2);
        assert_eq!(take_drops(), [1, 2, 3]);
        assert!(weak.upgrade().is_none());
        assert_eq!(gcptr::count(), [0, 0, 0]);
    });
}

/// A death callback keeps no hold on its object's memory, so the block of
/// an object whose callback ran serves the next object; the old handle
/// then forgets the address: cancelling it returns false and leaves the
/// new object's own callback (at the same address, when memory is reused)
/// to run at its death, once.
#[test]
fn a_spent_death_callback_leaves_the_next_object_at_its_address_alone() {
    on_fresh_thread(|| {
        let fired = std::rc::Rc::new(Cell::new(0));
        let first = node();
        let freed = address(&first);
        let count = fired.clone();
        let spent = Gc::on_death(&first, move || count.set(count.get() + 1));
        drop(first);
        assert_eq!(fired.get(), 1);
        assert!(!spent.is_pending());
        let next = node();
        if REUSE {
            assert_eq!(address(&next), freed);
        }
        let count = fired.clone();
        let pending = Gc::on_death(&next, move || count.set(count.get() + 10));
        assert!(!spent.cancel());
        drop(spent);
        assert!(pending.is_pending());
        drop(next);
        assert_eq!(fired.get(), 11);
        assert!(!pending.is_pending() && !pending.cancel());
    });
}

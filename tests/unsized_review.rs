//! A review of the unsized and type-erased paths: `Gc<dyn Trait>` and
//! `Weak<dyn Trait>` (through `gc_coerce!`), `Gc<[T]>` and `Gc<str>`,
//! closures, at the corners of layout (over-aligned values, zero-sized
//! values, empty slices, slices of zero-sized values), of partial
//! construction (iterators and `Clone`s that panic or lie about their
//! length, element drops that panic) and of weak references that outlive
//! the value (dangling ones from `Weak::new`, and ones to objects whose
//! header points at watchers). Run under Miri, which checks every
//! allocation's alignment, the layout each is freed with, and leaks.

mod support;

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use gcptr::{gc_closure, gc_coerce, Gc, GcFn, Trace, Weak, WeakSet};
use support::{panic_message, take_drops, DropLog};

trait Shape: Trace {
    fn id(&self) -> u32;
}

/// A shape that knows more: for upcasting `dyn Solid` to `dyn Shape`.
trait Solid: Shape {
    fn volume(&self) -> u32;
}

/// A tracked, page-aligned value: its links and header sit a page in
/// front of the value.
#[derive(Trace)]
#[repr(align(4096))]
struct Page {
    #[gc(skip)]
    log: DropLog,
    next: RefCell<Option<Gc<dyn Shape>>>,
}

impl Shape for Page {
    fn id(&self) -> u32 {
        self.log.0
    }
}

impl Solid for Page {
    fn volume(&self) -> u32 {
        10 * self.log.0
    }
}

fn page(id: u32) -> Gc<Page> {
    Gc::new(Page {
        log: DropLog(id),
        next: RefCell::new(None),
    })
}

/// An untracked, page-aligned value.
#[derive(Trace)]
#[repr(align(4096))]
struct Stamp(#[gc(skip)] DropLog);

impl Shape for Stamp {
    fn id(&self) -> u32 {
        self.0 .0
    }
}

thread_local! {
    static TICKS: Cell<usize> = const { Cell::new(0) };
}

fn take_ticks() -> usize {
    TICKS.with(|t| t.replace(0))
}

/// A zero-sized value whose drop counts.
#[derive(Trace, Clone)]
struct Tick;

impl Drop for Tick {
    fn drop(&mut self) {
        TICKS.with(|t| t.set(t.get() + 1));
    }
}

impl Shape for Tick {
    fn id(&self) -> u32 {
        0
    }
}

/// A zero-sized, page-aligned value whose drop counts.
#[derive(Trace, Clone)]
#[repr(align(4096))]
struct AlignedTick;

impl Drop for AlignedTick {
    fn drop(&mut self) {
        TICKS.with(|t| t.set(t.get() + 1));
    }
}

impl Shape for AlignedTick {
    fn id(&self) -> u32 {
        1
    }
}

fn address<T: ?Sized>(gc: &Gc<T>) -> usize {
    Gc::as_ptr(gc).cast::<()>() as usize
}

// Sound: pinned. A page-aligned value keeps its alignment through the
// coercion, the cycle through `dyn` edges is collected, and a `Weak<dyn>`
// that outlives it frees the allocation with the concrete type's layout
// (Miri checks the layout given to `dealloc`).
#[test]
fn over_aligned_dyn_objects_keep_their_layout_through_cycles_and_weaks() {
    take_drops();
    let a = page(1);
    let b = page(2);
    assert_eq!(address(&a) % 4096, 0);
    assert_eq!(address(&b) % 4096, 0);
    let a_dyn: Gc<dyn Shape> = gc_coerce!(a.clone() => dyn Shape);
    assert_eq!(address(&a_dyn), address(&a));
    assert_eq!(a_dyn.id(), 1);
    *a.next.borrow_mut() = Some(gc_coerce!(b.clone() => dyn Shape));
    *b.next.borrow_mut() = Some(a_dyn);
    let weak: Weak<dyn Shape> = gc_coerce!(Gc::downgrade(&a) => dyn Shape);
    let weak_b: Weak<dyn Shape> = gc_coerce!(Gc::downgrade(&b) => dyn Shape);
    assert_eq!(weak.as_ptr().cast::<()>() as usize, address(&a));
    drop((a, b));
    assert!(take_drops().is_empty());
    assert_eq!(weak.upgrade().unwrap().id(), 1, "the cycle holds itself");
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(take_drops(), [1, 2]);
    for w in [&weak, &weak_b] {
        assert!(w.upgrade().is_none());
        assert_eq!((w.strong_count(), w.weak_count()), (0, 0));
    }
    let clone = weak.clone();
    assert!(Weak::ptr_eq(&clone, &weak));
    drop((weak, weak_b));
    drop(clone);

    // Untracked and page-aligned: dies at count zero.
    let stamp: Gc<dyn Shape> = gc_coerce!(Gc::new(Stamp(DropLog(3))) => dyn Shape);
    assert_eq!(address(&stamp) % 4096, 0);
    let weak = Gc::downgrade(&stamp);
    drop(stamp);
    assert_eq!(take_drops(), [3]);
    assert!(weak.upgrade().is_none());
}

// Sound: pinned. Trait upcasting (`dyn Solid` to `dyn Shape`) changes the
// pointer's vtable, never the header's: the object is dropped and
// collected as the concrete type it was made as.
#[test]
fn upcasting_a_gc_dyn_keeps_the_concrete_type() {
    take_drops();
    let a = page(4);
    let solid: Gc<dyn Solid> = gc_coerce!(a.clone() => dyn Solid);
    assert_eq!(solid.volume(), 40);
    let shape: Gc<dyn Shape> = gc_coerce!(solid => dyn Shape);
    assert_eq!((shape.id(), address(&shape)), (4, address(&a)));
    *a.next.borrow_mut() = Some(shape);
    let weak: Weak<dyn Solid> = gc_coerce!(Gc::downgrade(&a) => dyn Solid);
    let weak: Weak<dyn Shape> = gc_coerce!(weak => dyn Shape);
    drop(a);
    assert_eq!(weak.upgrade().map(|s| s.id()), Some(4));
    assert_eq!(gcptr::collect(), 1);
    assert_eq!(take_drops(), [4]);
    assert!(weak.upgrade().is_none());
}

// Sound: pinned. Zero-sized values each have an object of their own, so
// their addresses differ (Python's `id`) and `ptr_eq` tells them apart;
// a page-aligned one keeps its alignment.
#[test]
fn zero_sized_values_have_distinct_addresses_and_drop_once() {
    take_ticks();
    let a = Gc::new(Tick);
    let b = Gc::new(Tick);
    assert!(!Gc::ptr_eq(&a, &b));
    assert_ne!(address(&a), address(&b));
    assert!(!Weak::ptr_eq(&Gc::downgrade(&a), &Gc::downgrade(&b)));
    let a_dyn: Gc<dyn Shape> = gc_coerce!(a.clone() => dyn Shape);
    let b_dyn: Gc<dyn Shape> = gc_coerce!(b.clone() => dyn Shape);
    assert!(!Gc::ptr_eq(&a_dyn, &b_dyn));
    assert_eq!(address(&a_dyn), address(&a));
    let aligned: Gc<dyn Shape> = gc_coerce!(Gc::new(AlignedTick) => dyn Shape);
    assert_eq!(address(&aligned) % 4096, 0);
    assert_eq!(aligned.id(), 1);
    let weak = Gc::downgrade(&aligned);
    drop((a, b, a_dyn));
    assert_eq!(take_ticks(), 1);
    drop(b_dyn);
    assert_eq!(take_ticks(), 1);
    drop(aligned);
    assert_eq!(take_ticks(), 1);
    assert!(weak.upgrade().is_none());
}

// Sound: pinned. Slices of zero-sized values, page-aligned ones, and empty
// slices: each element dropped once, the data aligned, the allocation
// freed with the layout it was made with.
#[test]
fn slices_of_zero_sized_values_and_empty_slices() {
    take_ticks();
    let ticks: Gc<[Tick]> = Gc::from(vec![Tick, Tick, Tick, Tick, Tick]);
    assert_eq!(take_ticks(), 0, "moved in, not dropped");
    assert_eq!(ticks.len(), 5);
    let weak = Gc::downgrade(&ticks);
    drop(ticks);
    assert_eq!(take_ticks(), 5);
    assert!(weak.upgrade().is_none());
    drop(weak);

    let aligned: Gc<[AlignedTick]> = (0..3).map(|_| AlignedTick).collect();
    assert_eq!(address(&aligned) % 4096, 0);
    assert_eq!(aligned.len(), 3);
    let copy: Gc<[AlignedTick]> = Gc::from(&aligned[..]);
    assert_eq!(take_ticks(), 0);
    drop(aligned);
    assert_eq!(take_ticks(), 3);
    drop(copy);
    assert_eq!(take_ticks(), 3);

    let empty: Gc<[AlignedTick]> = Gc::from(Vec::new());
    assert!(empty.is_empty());
    assert_eq!(address(&empty) % 4096, 0);
    let empty_pages: Gc<[Page]> = std::iter::empty().collect();
    assert!(empty_pages.is_empty());
    assert_eq!(address(&empty_pages) % 4096, 0);
    let empty_str: Gc<str> = Gc::from(String::new());
    let weak = Gc::downgrade(&empty_str);
    drop((empty, empty_pages, empty_str));
    assert_eq!(take_ticks(), 0);
    assert!(weak.upgrade().is_none());
    assert_eq!((weak.as_ptr() as *const [u8]).len(), 0);
}

/// A tracked, page-aligned slice element that can point back at its
/// slice.
#[derive(Trace)]
#[repr(align(4096))]
struct BigSlot {
    #[gc(skip)]
    log: DropLog,
    back: RefCell<Option<Gc<[BigSlot]>>>,
}

// Sound: pinned. A tracked slice of page-aligned elements (its length,
// links and header sit in the page in front of the data) in a cycle with
// itself: collected, each element dropped once.
#[test]
fn over_aligned_tracked_slice_in_a_cycle_is_collected() {
    take_drops();
    let slots: Gc<[BigSlot]> = (1..=3)
        .map(|id| BigSlot {
            log: DropLog(id),
            back: RefCell::new(None),
        })
        .collect();
    assert_eq!(address(&slots) % 4096, 0);
    assert_eq!(slots[2].log.0, 3);
    assert!(gcptr::is_tracked(&slots));
    *slots[1].back.borrow_mut() = Some(slots.clone());
    let weak = Gc::downgrade(&slots);
    let watched = Rc::new(Cell::new(false));
    let flag = watched.clone();
    let _callback = Gc::on_death(&slots, move || flag.set(true));
    drop(slots);
    assert!(take_drops().is_empty());
    assert_eq!(gcptr::collect(), 1);
    assert_eq!(take_drops(), [1, 2, 3]);
    assert!(watched.get());
    assert!(weak.upgrade().is_none());
    assert_eq!(weak.as_ptr().len(), 3);
}

/// An `ExactSizeIterator` that claims a length it does not yield.
struct Liar {
    next: u32,
    last: u32,
    claims: usize,
}

impl Iterator for Liar {
    type Item = DropLog;

    fn next(&mut self) -> Option<DropLog> {
        (self.next <= self.last).then(|| {
            self.next += 1;
            DropLog(self.next - 1)
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.claims, Some(self.claims))
    }
}

impl ExactSizeIterator for Liar {}

// Sound: pinned. `Gc<[T]>: FromIterator` trusts no length: the slice
// holds what the iterator yielded.
#[test]
fn an_exact_size_iterator_that_lies_builds_the_slice_it_yields() {
    take_drops();
    for claims in [0, 1, 2, 1000] {
        let logs: Gc<[DropLog]> = Liar {
            next: 1,
            last: 3,
            claims,
        }
        .collect();
        assert_eq!(logs.len(), 3, "claimed {claims}");
        assert_eq!(logs.iter().map(|l| l.0).collect::<Vec<_>>(), [1, 2, 3]);
        drop(logs);
        assert_eq!(take_drops(), [1, 2, 3]);
    }
    let empty: Gc<[DropLog]> = Liar {
        next: 1,
        last: 0,
        claims: 5,
    }
    .collect();
    assert!(empty.is_empty());
}

// Sound: pinned. An iterator that panics half-way: what it yielded is
// dropped once, nothing is allocated for the object, nothing leaks (Miri).
#[test]
fn an_iterator_that_panics_half_way_drops_what_it_yielded() {
    take_drops();
    let result = catch_unwind(|| {
        (1..=5u32)
            .map(|id| {
                assert!(id != 3, "iterator failed at 3");
                DropLog(id)
            })
            .collect::<Gc<[DropLog]>>()
    });
    let payload = result.err().expect("the iterator panicked");
    assert_eq!(panic_message(&payload), "iterator failed at 3");
    assert_eq!(take_drops(), [1, 2]);
}

/// A slice element whose `Clone` fails on the third element.
#[derive(Trace)]
struct Fragile {
    id: u32,
    #[gc(skip)]
    log: DropLog,
}

impl Clone for Fragile {
    fn clone(&self) -> Fragile {
        assert!(self.id != 3, "clone of 3 failed");
        Fragile {
            id: self.id,
            log: DropLog(self.log.0 + 100),
        }
    }
}

// Sound: pinned. `Gc::from(&[T])` whose `Clone` panics: the clones made
// are dropped once, the source is untouched.
#[test]
fn a_clone_that_panics_in_from_slice_drops_the_clones_made() {
    take_drops();
    let source: Vec<Fragile> = (1..=4)
        .map(|id| Fragile {
            id,
            log: DropLog(id),
        })
        .collect();
    let payload = catch_unwind(AssertUnwindSafe(|| Gc::<[Fragile]>::from(&source[..])))
        .err()
        .expect("the clone panicked");
    assert_eq!(panic_message(&payload), "clone of 3 failed");
    assert_eq!(take_drops(), [101, 102]);
    assert_eq!(source.iter().map(|f| f.id).sum::<u32>(), 10);
    let fine: Gc<[Fragile]> = Gc::from(&source[..2]);
    assert_eq!(fine[1].log.0, 102);
    drop(source);
    assert_eq!(take_drops(), [1, 2, 3, 4]);
    drop(fine);
    assert_eq!(take_drops(), [101, 102]);
}

/// Logs its drop, then panics if its id is 2.
struct Grenade(u32);

impl Drop for Grenade {
    fn drop(&mut self) {
        drop(DropLog(self.0));
        assert!(self.0 != 2, "element 2 exploded");
    }
}

// SAFETY: owns no Gc.
unsafe impl Trace for Grenade {
    fn trace(&self, _: &mut gcptr::Tracer) {}
    fn __may_own_gc(_depth: u32) -> bool {
        false
    }
}

/// A tracked slice element that holds a `Grenade` and can point back at
/// its slice.
#[derive(Trace)]
struct Cell2 {
    #[gc(skip)]
    grenade: Grenade,
    back: RefCell<Option<Gc<[Cell2]>>>,
}

// Sound: pinned. An element whose drop panics: the others are dropped all
// the same (slice drop glue goes on), the panic propagates with its
// message, and the allocation is freed (Miri checks for leaks). By count
// and by the collector.
#[test]
fn an_element_drop_that_panics_drops_the_rest_and_frees_the_slice() {
    take_drops();
    let grenades: Gc<[Grenade]> = Gc::from(vec![Grenade(1), Grenade(2), Grenade(3)]);
    let weak = Gc::downgrade(&grenades);
    let payload = catch_unwind(AssertUnwindSafe(|| drop(grenades))).expect_err("the drop panicked");
    assert_eq!(panic_message(&payload), "element 2 exploded");
    assert_eq!(take_drops(), [1, 2, 3]);
    assert!(weak.upgrade().is_none());
    drop(weak);

    let cells: Gc<[Cell2]> = (1..=3)
        .map(|id| Cell2 {
            grenade: Grenade(id),
            back: RefCell::new(None),
        })
        .collect();
    assert_eq!(cells[2].grenade.0, 3);
    *cells[0].back.borrow_mut() = Some(cells.clone());
    let weak = Gc::downgrade(&cells);
    drop(cells);
    let payload = catch_unwind(gcptr::collect).expect_err("the collection's drop panicked");
    assert_eq!(panic_message(&payload), "element 2 exploded");
    assert_eq!(take_drops(), [1, 2, 3]);
    assert!(weak.upgrade().is_none());
    assert_eq!(gcptr::collect(), 0);
}

// Sound: pinned. `Weak::new` has no unsized form, but a dangling `Weak`
// coerces to one: it keeps the metadata, never upgrades, counts nothing,
// and equals only other dangling `Weak`s.
#[test]
fn dangling_weaks_of_unsized_types_never_upgrade() {
    let live = Gc::new(Tick);
    let live_dyn: Weak<dyn Shape> = gc_coerce!(Gc::downgrade(&live) => dyn Shape);
    let d: Weak<dyn Shape> = gc_coerce!(Weak::<Tick>::new() => dyn Shape);
    let e: Weak<dyn Shape> = gc_coerce!(Weak::<AlignedTick>::new() => dyn Shape);
    assert!(d.upgrade().is_none());
    assert_eq!((d.strong_count(), d.weak_count()), (0, 0));
    assert!(Weak::ptr_eq(&d, &d.clone()));
    assert!(Weak::ptr_eq(&d, &e));
    assert!(!Weak::ptr_eq(&d, &live_dyn));
    assert_ne!(d.as_ptr().cast::<()>() as usize, address(&live));

    let s: Weak<[u64]> = gc_coerce!(Weak::<[u64; 4]>::new() => [u64]);
    assert!(s.upgrade().is_none());
    assert_eq!(s.as_ptr().len(), 4);
    assert_eq!((s.strong_count(), s.weak_count()), (0, 0));
    let t: Weak<[u64]> = gc_coerce!(Weak::<[u64; 0]>::new() => [u64]);
    assert!(Weak::ptr_eq(&s, &t));
    assert_eq!(format!("{:?}", s.clone()), "(Weak)");
    // `live` had one `Weak` and still has.
    assert_eq!(Gc::weak_count(&live), 1);
}

// Sound: pinned. `Weak<dyn>` and `Weak<[T]>` that outlive their value,
// also while the object is watched (its header then points at a watcher
// node, which holds the vtable): the value is dropped once, the weaks
// stop upgrading and counting, and the last one frees the allocation.
#[test]
fn weaks_to_unsized_objects_outlive_their_values() {
    take_drops();
    let page = page(7);
    let shape: Gc<dyn Shape> = gc_coerce!(page.clone() => dyn Shape);
    let weaks: Vec<Weak<dyn Shape>> = (0..3).map(|_| Gc::downgrade(&shape)).collect();
    let mut set: WeakSet<dyn Shape> = WeakSet::new();
    set.insert(&shape);
    let fired = Rc::new(Cell::new(0));
    let flag = fired.clone();
    let _callback = Gc::on_death(&shape, move || flag.set(flag.get() + 1));
    let with_callback = Gc::downgrade_with(&shape, || ());
    // Three `Weak`s, the set's entry and the callback's `Weak`.
    assert_eq!(weaks[0].weak_count(), 5);
    drop((page, shape));
    assert_eq!(take_drops(), [7]);
    assert_eq!((fired.get(), set.len()), (1, 0));
    for w in &weaks {
        assert!(w.upgrade().is_none());
        assert_eq!((w.strong_count(), w.weak_count()), (0, 0));
    }
    assert!(with_callback.upgrade().is_none());
    drop(with_callback);
    drop(weaks);

    let slice: Gc<[DropLog]> = Gc::from(vec![DropLog(8), DropLog(9)]);
    let addr = address(&slice);
    let weak = Gc::downgrade(&slice);
    let mut set: WeakSet<[DropLog]> = WeakSet::new();
    set.insert(&slice);
    assert_eq!(weak.as_ptr().cast::<()>() as usize, addr);
    drop(slice);
    assert_eq!(take_drops(), [8, 9]);
    assert_eq!(set.len(), 0);
    assert_eq!(weak.as_ptr().cast::<()>() as usize, addr);
    assert_eq!(weak.as_ptr().len(), 2);
    let clone = weak.clone();
    drop(weak);
    assert!(clone.upgrade().is_none());
    drop(clone);

    let text: Gc<str> = Gc::from("watched");
    let fired = Rc::new(Cell::new(false));
    let flag = fired.clone();
    let _callback = Gc::on_death(&text, move || flag.set(true));
    let weak = Gc::downgrade(&text);
    drop(text);
    assert!(fired.get());
    assert!(weak.upgrade().is_none());
}

/// A page-aligned value made by `new_cyclic`.
#[derive(Trace)]
#[repr(align(4096))]
struct Cyclic {
    me: Weak<Cyclic>,
}

impl Shape for Cyclic {
    fn id(&self) -> u32 {
        9
    }
}

// Sound: pinned. A `Weak<dyn>` made in a `new_cyclic` closure that then
// panics: it points at an object that never had a value; it never
// upgrades, and the last `Weak` frees it with the concrete layout.
#[test]
fn a_weak_dyn_from_a_failed_new_cyclic_stays_dead() {
    let kept: RefCell<Vec<Weak<dyn Shape>>> = RefCell::new(Vec::new());
    let payload = catch_unwind(AssertUnwindSafe(|| {
        Gc::new_cyclic(|me: &Weak<Cyclic>| {
            kept.borrow_mut().push(gc_coerce!(me.clone() => dyn Shape));
            assert!(kept.borrow()[0].upgrade().is_none());
            panic!("no value after all");
        })
    }))
    .err()
    .expect("the closure panicked");
    assert_eq!(panic_message(&payload), "no value after all");
    let kept = kept.into_inner();
    assert!(kept[0].upgrade().is_none());
    assert_eq!((kept[0].strong_count(), kept[0].weak_count()), (0, 0));
    drop(kept);

    let fine = Gc::new_cyclic(|me: &Weak<Cyclic>| Cyclic { me: me.clone() });
    assert_eq!(address(&fine) % 4096, 0);
    let as_dyn: Weak<dyn Shape> = gc_coerce!(fine.me.clone() => dyn Shape);
    assert_eq!(as_dyn.upgrade().map(|s| s.id()), Some(9));
}

// Sound: pinned. A `Gc<[T; N]>` coerced to `Gc<[T]>` keeps the array's
// vtable: its length is the pointer's, the collector sees an array, and
// `referrers` downcasts it back to the array it was made as.
#[test]
fn an_array_coerced_to_a_slice_keeps_its_array_vtable() {
    take_drops();
    let logs: Gc<[DropLog]> =
        gc_coerce!(Gc::new([DropLog(1), DropLog(2), DropLog(3)]) => [DropLog]);
    assert_eq!(logs.len(), 3);
    let weak = Gc::downgrade(&logs);
    drop(logs);
    assert_eq!(take_drops(), [1, 2, 3]);
    assert_eq!(weak.as_ptr().len(), 3);
    drop(weak);

    type Slot = RefCell<Option<Gc<[Slot2]>>>;
    #[derive(Trace)]
    struct Slot2(Slot, #[gc(skip)] DropLog);
    let array = Gc::new([
        Slot2(RefCell::new(None), DropLog(4)),
        Slot2(RefCell::new(None), DropLog(5)),
    ]);
    let slice: Gc<[Slot2]> = gc_coerce!(array.clone() => [Slot2]);
    assert_eq!((slice.len(), slice[1].1 .0), (2, 5));
    *slice[1].0.borrow_mut() = Some(slice.clone());
    let found = gcptr::referrers(&array);
    assert_eq!(found.len(), 1);
    let back = found[0].downcast::<[Slot2; 2]>().expect("made as an array");
    assert!(Gc::ptr_eq(&back, &array));
    drop((found, back, array, slice));
    assert!(take_drops().is_empty());
    assert_eq!(gcptr::collect(), 1);
    assert_eq!(take_drops(), [4, 5]);
}

/// A tracked slice element.
#[derive(Trace)]
struct Link(RefCell<Option<Gc<[Link]>>>);

// Sound: pinned. `Gc::get_mut` on unsized values: `None` while shared,
// and a tracked slice it set aside comes back to the collector, which
// then collects the cycle made through it.
#[test]
fn get_mut_on_unsized_values() {
    let mut numbers: Gc<[u32]> = Gc::from(vec![1, 2, 3]);
    Gc::get_mut(&mut numbers).unwrap()[1] = 20;
    assert_eq!(&*numbers, [1, 20, 3]);
    let other = numbers.clone();
    assert!(Gc::get_mut(&mut numbers).is_none());
    drop(other);
    let weak = Gc::downgrade(&numbers);
    assert!(Gc::get_mut(&mut numbers).is_none());
    drop(weak);

    take_drops();
    let mut shape: Gc<dyn Shape> = gc_coerce!(page(11) => dyn Shape);
    assert!(Gc::get_mut(&mut shape).is_some());
    drop(shape);
    assert_eq!(take_drops(), [11]);

    let mut links: Gc<[Link]> = Gc::from(vec![Link(RefCell::new(None)), Link(RefCell::new(None))]);
    let slot = &mut Gc::get_mut(&mut links).unwrap()[0];
    *slot = Link(RefCell::new(None));
    *links[0].0.borrow_mut() = Some(links.clone());
    let weak = Gc::downgrade(&links);
    drop(links);
    assert!(weak.upgrade().is_some());
    assert_eq!(gcptr::collect(), 1);
    assert!(weak.upgrade().is_none());
}

/// A handler that the collector traces.
type Handler = Gc<dyn GcFn<(u32,), u32>>;

#[derive(Trace)]
struct Button {
    #[gc(skip)]
    log: DropLog,
    handler: RefCell<Option<Handler>>,
}

// Sound: pinned. A closure in a `Gc<dyn GcFn>` that captures the object
// that holds it: a cycle the collector sees and collects.
#[test]
fn a_gc_dyn_closure_in_a_cycle_is_collected() {
    take_drops();
    let button = Gc::new(Button {
        log: DropLog(12),
        handler: RefCell::new(None),
    });
    let closure = Gc::new(gc_closure!([button] move |x: u32| button.log.0 + x));
    assert!(gcptr::is_tracked(&closure));
    *button.handler.borrow_mut() = Some(gc_coerce!(closure => dyn GcFn<(u32,), u32>));
    let handler = button.handler.borrow().clone().unwrap();
    assert_eq!(handler.call((30,)), 42);
    let weak: Weak<dyn GcFn<(u32,), u32>> = Gc::downgrade(&handler);
    drop((button, handler));
    assert!(take_drops().is_empty());
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(take_drops(), [12]);
    assert!(weak.upgrade().is_none());
}

/// A custom dynamically sized type: a head and an unsized tail.
#[derive(Trace)]
struct Tail<R: ?Sized> {
    #[gc(skip)]
    log: DropLog,
    rest: R,
}

// Sound: pinned. Custom DSTs made by coercion (`Tail<[T; N]>` to
// `Tail<[T]>`, `Tail<Page>` to `Tail<dyn Shape>`, whose tail's offset
// follows the page alignment the vtable gives): the header keeps the
// sized type's vtable, so drops and collections see the value it was made
// as, and the value's address is the same through every pointer.
#[test]
fn custom_dsts_made_by_coercion_drop_and_collect_as_made() {
    take_drops();
    let nodes = Gc::new(Tail {
        log: DropLog(1),
        rest: [RefCell::new(None::<Gc<Tail<[Link]>>>), RefCell::new(None)],
    });
    type Edge = RefCell<Option<Gc<Tail<[Link]>>>>;
    let unsized_nodes: Gc<Tail<[Edge]>> = gc_coerce!(nodes.clone() => Tail<[Edge]>);
    assert_eq!(unsized_nodes.rest.len(), 2);
    assert_eq!(address(&unsized_nodes), address(&nodes));
    assert_eq!(unsized_nodes.log.0, 1);
    drop(nodes);
    drop(unsized_nodes);
    assert_eq!(take_drops(), [1]);

    let paged = Gc::new(Tail {
        log: DropLog(2),
        rest: Page {
            log: DropLog(3),
            next: RefCell::new(None),
        },
    });
    assert_eq!(Gc::as_ptr(&paged) as *const u8 as usize % 4096, 0);
    let tail: Gc<Tail<dyn Shape>> = gc_coerce!(paged.clone() => Tail<dyn Shape>);
    assert_eq!(address(&tail), address(&paged));
    assert_eq!(
        std::ptr::addr_of!(tail.rest).cast::<()>() as usize,
        std::ptr::addr_of!(paged.rest).cast::<()>() as usize
    );
    assert_eq!(tail.rest.id(), 3);
    // A cycle: the page inside points back at its own object, as a
    // `Gc<dyn Shape>` of the whole.
    #[derive(Trace)]
    struct Whole(Gc<Tail<dyn Shape>>);
    impl Shape for Whole {
        fn id(&self) -> u32 {
            self.0.rest.id()
        }
    }
    *paged.rest.next.borrow_mut() = Some(gc_coerce!(Gc::new(Whole(tail)) => dyn Shape));
    let weak: Weak<Tail<dyn Shape>> = gc_coerce!(Gc::downgrade(&paged) => Tail<dyn Shape>);
    drop(paged);
    assert!(take_drops().is_empty());
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(take_drops(), [2, 3]);
    assert!(weak.upgrade().is_none());
}

// Sound: pinned. A slice with more edges than the tracer's buffers hold
// spills into its `System`-allocated stack mid-trace (`crate::spill`):
// `referents` sees every edge, in order, and a collection of a slice whose
// hundred elements all point back at it frees it.
#[test]
fn a_slice_with_many_edges_spills_and_is_traced_whole() {
    let leaves: Vec<Gc<Link>> = (0..100)
        .map(|_| Gc::new(Link(RefCell::new(None))))
        .collect();
    let slice: Gc<[Gc<Link>]> = Gc::from(leaves.clone());
    let seen = gcptr::referents(&*slice);
    assert_eq!(seen.len(), 100);
    for (seen, leaf) in seen.iter().zip(&leaves) {
        assert_eq!(*seen, Gc::as_ptr(leaf).cast::<()>());
    }
    drop(slice);
    assert!(leaves.iter().all(|leaf| Gc::strong_count(leaf) == 1));

    let links: Gc<[Link]> = (0..100).map(|_| Link(RefCell::new(None))).collect();
    for link in links.iter() {
        *link.0.borrow_mut() = Some(links.clone());
    }
    let seen = gcptr::referents(&*links);
    assert_eq!(seen.len(), 100);
    assert!(seen.iter().all(|&a| a == Gc::as_ptr(&links).cast::<()>()));
    let weak = Gc::downgrade(&links);
    drop(links);
    assert_eq!(weak.strong_count(), 100);
    assert_eq!(gcptr::collect(), 1);
    assert!(weak.upgrade().is_none());
}

thread_local! {
    static RESURRECTED: RefCell<Vec<Gc<[Phoenix]>>> = const { RefCell::new(Vec::new()) };
    static RESURRECTED_DYN: RefCell<Vec<Gc<dyn Shape>>> = const { RefCell::new(Vec::new()) };
}

/// A slice element whose `Drop` keeps a handle to its own (garbage)
/// slice, and to a `dyn` peer.
#[derive(Trace)]
struct Phoenix {
    back: RefCell<Option<Gc<[Phoenix]>>>,
    peer: RefCell<Option<Gc<dyn Shape>>>,
}

impl Drop for Phoenix {
    fn drop(&mut self) {
        if let Some(back) = self.back.borrow_mut().take() {
            RESURRECTED.with(|r| r.borrow_mut().push(back));
        }
        if let Some(peer) = self.peer.borrow_mut().take() {
            RESURRECTED_DYN.with(|r| r.borrow_mut().push(peer));
        }
    }
}

// Sound: pinned. A `Drop` run by the collector that keeps handles to a
// garbage slice and a garbage `dyn` object: dereferencing them panics
// with the collector's message (never a read of dropped elements), and
// the memory lives until the last handle goes (Miri).
#[test]
fn handles_kept_by_a_drop_to_dead_unsized_objects_panic_on_deref() {
    take_drops();
    let slice: Gc<[Phoenix]> = Gc::from(vec![Phoenix {
        back: RefCell::new(None),
        peer: RefCell::new(None),
    }]);
    let a = page(21);
    *slice[0].back.borrow_mut() = Some(slice.clone());
    *slice[0].peer.borrow_mut() = Some(gc_coerce!(a.clone() => dyn Shape));
    *a.next.borrow_mut() = Some(gc_coerce!(Gc::new(Whole2(slice)) => dyn Shape));
    drop(a);
    assert_eq!(gcptr::collect(), 3);
    assert_eq!(take_drops(), [21]);
    let dead = RESURRECTED
        .with(|r| r.borrow_mut().pop())
        .expect("kept by the drop");
    let dead_dyn = RESURRECTED_DYN
        .with(|r| r.borrow_mut().pop())
        .expect("kept by the drop");
    assert_eq!(Gc::strong_count(&dead), 1);
    let payload = catch_unwind(AssertUnwindSafe(|| dead.len())).unwrap_err();
    assert!(panic_message(&payload).contains("already dropped by the cycle collector"));
    let payload = catch_unwind(AssertUnwindSafe(|| dead_dyn.id())).unwrap_err();
    assert!(panic_message(&payload).contains("already dropped by the cycle collector"));
    let weak = Gc::downgrade(&dead);
    assert!(weak.upgrade().is_none());
    drop((dead, dead_dyn));
    assert!(weak.upgrade().is_none());
}

#[derive(Trace)]
struct Whole2(Gc<[Phoenix]>);

impl Shape for Whole2 {
    fn id(&self) -> u32 {
        0
    }
}

// Sound: pinned. A tracked slice counts in generation 0 as a sized object
// does, from birth to death, and an untracked one (or a `Gc<str>`) not at
// all.
#[test]
fn tracked_slices_count_in_generation_zero_from_birth_to_death() {
    gcptr::collect();
    let before = gcptr::count()[0];
    let links: Gc<[Link]> = Gc::from(vec![Link(RefCell::new(None))]);
    let empty: Gc<[Link]> = Gc::from(Vec::new());
    assert!(gcptr::is_tracked(&links) && gcptr::is_tracked(&empty));
    assert_eq!(gcptr::count()[0], before + 2);
    let plain: Gc<[u64]> = Gc::from(vec![1, 2]);
    let text: Gc<str> = Gc::from("text");
    assert!(!gcptr::is_tracked(&plain) && !gcptr::is_tracked(&text));
    assert_eq!(gcptr::count()[0], before + 2);
    drop((links, empty, plain, text));
    assert_eq!(gcptr::count()[0], before);
}

// Sound: pinned. `Gc::get_mut` on an old slice whose lost reference put
// it in the reporters' buffer: collections, `referrers` and a trace of a
// holder run while the `&mut [T]` lives, and none reads the elements
// (Miri would report the read racing the unique borrow); the slice comes
// back to the collector after.
#[test]
fn collections_while_get_mut_lends_an_old_buffered_slice_leave_it_alone() {
    let mut links: Gc<[Link]> = Gc::from(vec![Link(RefCell::new(None)), Link(RefCell::new(None))]);
    gcptr::collect();
    gcptr::collect();
    drop(links.clone()); // a lost reference: into the reporters' buffer
    let leaf = Gc::new(Link(RefCell::new(None)));
    let elements = Gc::get_mut(&mut links).expect("unique");
    elements[1] = Link(RefCell::new(Some(Gc::from(vec![Link(RefCell::new(None))]))));
    assert_eq!(gcptr::collect(), 0);
    assert_eq!(gcptr::collect_generation(0), 0);
    assert!(gcptr::referrers(&leaf).is_empty());
    *elements[0].0.borrow_mut() = Some(Gc::from(vec![Link(RefCell::new(None))]));
    // Shared again: a cycle through it is found.
    *links[1].0.borrow().as_ref().unwrap()[0].0.borrow_mut() = Some(links.clone());
    let weak = Gc::downgrade(&links);
    drop(links);
    assert!(weak.upgrade().is_some());
    assert_eq!(gcptr::collect(), 3, "the slice and the two inside it");
    assert!(weak.upgrade().is_none());
}

/// A zero-sized, page-aligned value with no drop glue.
#[derive(Trace, Clone, Copy)]
#[repr(align(4096))]
struct AlignedUnit;

// Sound: pinned. A slice of `usize::MAX` zero-sized elements: the length
// takes no memory, so the layout arithmetic must not multiply it into an
// overflow, and the object is made, read and freed like any other.
#[test]
// Zero-sized elements: nothing is left uninitialised, and nothing safe
// makes such a `Vec` without a loop of `usize::MAX` steps.
#[allow(clippy::uninit_vec)]
fn a_slice_of_usize_max_zero_sized_elements() {
    let mut units: Vec<()> = Vec::new();
    // SAFETY: a `Vec` of a zero-sized type has capacity `usize::MAX`, and
    // `()` needs no initialisation.
    unsafe { units.set_len(usize::MAX) };
    let units: Gc<[()]> = Gc::from(units);
    assert!(!gcptr::is_tracked(&units));
    assert_eq!(units.len(), usize::MAX);
    assert_eq!(units[usize::MAX - 1], ());
    let weak = Gc::downgrade(&units);
    assert_eq!(weak.as_ptr().len(), usize::MAX);
    drop(units);
    assert!(weak.upgrade().is_none());

    let mut aligned: Vec<AlignedUnit> = Vec::new();
    // SAFETY: as above; `AlignedUnit` has no fields to initialise.
    unsafe { aligned.set_len(usize::MAX) };
    let aligned: Gc<[AlignedUnit]> = Gc::from(aligned);
    assert_eq!((aligned.len(), address(&aligned) % 4096), (usize::MAX, 0));
}

trait Bare: Trace {}

/// Drops nothing but its `Gc`s: a garbage set of these alone is freed
/// without drops (`skipped_drops.rs`).
#[derive(Trace)]
struct BareNode {
    next: RefCell<Option<Gc<dyn Bare>>>,
}

impl Bare for BareNode {}

// Sound: pinned. A garbage cycle through `Gc<dyn Bare>` edges whose
// members drop nothing but `Gc`s is freed without its drops; `Weak<dyn>`s
// to its members stop upgrading and keep the memory until they go (Miri
// checks the frees). With a slice in the cycle (slices always run their
// drops) the same cycle is dropped the usual way.
#[test]
fn garbage_freed_without_drops_through_dyn_edges_leaves_weaks_dead() {
    let a = Gc::new(BareNode {
        next: RefCell::new(None),
    });
    let b = Gc::new(BareNode {
        next: RefCell::new(Some(gc_coerce!(a.clone() => dyn Bare))),
    });
    *a.next.borrow_mut() = Some(gc_coerce!(b.clone() => dyn Bare));
    let weak_a: Weak<dyn Bare> = gc_coerce!(Gc::downgrade(&a) => dyn Bare);
    let weak_b: Weak<dyn Bare> = gc_coerce!(Gc::downgrade(&b) => dyn Bare);
    drop((a, b));
    assert!(weak_a.upgrade().is_some());
    assert_eq!(gcptr::collect(), 2);
    assert!(weak_a.upgrade().is_none() && weak_b.upgrade().is_none());
    assert_eq!((weak_a.strong_count(), weak_b.weak_count()), (0, 0));
    drop(weak_a);
    drop(weak_b);

    #[derive(Trace)]
    struct BareSlot(Gc<dyn Bare>);
    let c = Gc::new(BareNode {
        next: RefCell::new(None),
    });
    let slots: Gc<[BareSlot]> = Gc::from(vec![BareSlot(gc_coerce!(c.clone() => dyn Bare))]);
    #[derive(Trace)]
    struct Holder(Gc<[BareSlot]>);
    impl Bare for Holder {}
    *c.next.borrow_mut() = Some(gc_coerce!(Gc::new(Holder(slots)) => dyn Bare));
    let weak: Weak<dyn Bare> = gc_coerce!(Gc::downgrade(&c) => dyn Bare);
    drop(c);
    assert_eq!(gcptr::collect(), 3);
    assert!(weak.upgrade().is_none());
}

/// The same corners through the nightly `CoerceUnsized` impls: run with
/// `cargo +nightly test --features nightly --test unsized_review`.
#[cfg(feature = "nightly")]
mod nightly {
    use super::*;

    // Sound: pinned. Implicit coercion keeps the header's vtable as
    // `gc_coerce!` does: page-aligned values, arrays to slices, a dangling
    // `Weak` to `Weak<dyn>` (which stays dangling), and `Cell`s of them.
    #[test]
    fn implicit_coercions_keep_layout_and_dangling_weaks() {
        take_drops();
        let a = page(31);
        let shape: Gc<dyn Shape> = a.clone();
        assert_eq!((address(&shape), address(&shape) % 4096), (address(&a), 0));
        let weak: Weak<Page> = Gc::downgrade(&a);
        let weak: Weak<dyn Shape> = weak;
        let dangling: Weak<dyn Shape> = Weak::<AlignedTick>::new();
        assert!(dangling.upgrade().is_none());
        assert_eq!(dangling.weak_count(), 0);
        let cell: Cell<Option<Gc<dyn Shape>>> = Cell::new(None);
        cell.set(Some(shape));
        *a.next.borrow_mut() = cell.take();
        drop(a);
        assert_eq!(gcptr::collect(), 1);
        assert_eq!(take_drops(), [31]);
        assert!(weak.upgrade().is_none());

        let logs: Gc<[DropLog]> = Gc::new([DropLog(32), DropLog(33)]);
        let weak: Weak<[DropLog]> = Gc::downgrade(&logs);
        assert_eq!(logs.len(), 2);
        drop(logs);
        assert_eq!(take_drops(), [32, 33]);
        assert_eq!(weak.as_ptr().len(), 2);
    }
}

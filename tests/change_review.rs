//! What a review of the change `4049564..HEAD` checked: the new `false`
//! answers of `__may_own_gc` (`Box`, `Rc`, `Arc`, the hashers of
//! `HashMap` and `HashSet`), acyclic `Gc<[T]>` built `From<Vec<T>>`, and
//! the generic parameters of `unsafe_trace_leaf!` and
//! `unsafe_trace_fields!`.
//!
//! It found one fault, with tests that fail without its fix: `Box<T>`,
//! `Rc<T>` and `Arc<T>` answered `__may_own_gc` with
//! `needs_drop::<T>()`, but a value without drop glue may still own a `Gc`
//! (in a `ManuallyDrop`), which a `Drop` impl can take out and release in
//! safe code (`ManuallyDrop::into_inner`, `Rc::into_inner`). The holders
//! of such boxes were untracked, so a list of `Gc` nodes linked through
//! them died recursively: 200,000 nodes overflowed a 256 KiB stack. Now
//! they answer `true` (their holders are tracked, dies under the trashcan)
//! and keep their holders acyclic when the pointee has no drop glue, so a
//! `Gc<Box<u64>>` is still never counted nor analysed.
#![allow(dead_code)]

mod support;

use std::cell::{Cell, RefCell};
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;

use gcptr::{Gc, Trace, Tracer};
use support::{fixed, may_own, on_small_stack, runs_here, DropLog};

thread_local!(static LINKS_DROPPED: Cell<usize> = const { Cell::new(0) });

fn links_dropped() -> usize {
    LINKS_DROPPED.with(|n| n.replace(0))
}

// ---------------------------------------------------------------------
// The fault: a value without drop glue may own a `Gc`.

/// A list node linked through a box of a `ManuallyDrop`, which its `Drop`
/// impl takes out and releases: all safe code.
#[derive(Trace)]
struct BoxLink {
    next: Option<Box<ManuallyDrop<Gc<BoxLink>>>>,
}

impl Drop for BoxLink {
    fn drop(&mut self) {
        if let Some(next) = self.next.take() {
            drop(ManuallyDrop::into_inner(*next));
        }
        LINKS_DROPPED.with(|n| n.set(n.get() + 1));
    }
}

/// The same through a boxed slice, whose pointee is unsized.
#[derive(Trace)]
struct SliceLink {
    next: Box<[ManuallyDrop<Gc<SliceLink>>]>,
}

impl Drop for SliceLink {
    fn drop(&mut self) {
        for next in std::mem::take(&mut self.next).into_vec() {
            drop(ManuallyDrop::into_inner(next));
        }
        LINKS_DROPPED.with(|n| n.set(n.get() + 1));
    }
}

/// `Box<T>` answered `__may_own_gc` with `needs_drop::<T>()`, `false` for
/// a `ManuallyDrop<Gc<_>>` or a `[ManuallyDrop<Gc<_>>]`, which own a
/// `Gc` all the same: the nodes were untracked, and dropping the head of
/// 200,000 of them, each releasing the next from its `Drop`, recursed
/// once per node and overflowed a 256 KiB stack (an abort: the test runs
/// in a child process). A box now always may own a `Gc`; its holder is
/// acyclic (never counted nor analysed) and dies under the trashcan.
#[test]
fn a_list_linked_through_boxed_manually_drops_dies_under_the_trashcan() {
    if !runs_here("a_list_linked_through_boxed_manually_drops_dies_under_the_trashcan") {
        return;
    }
    let n = support::scaled(200_000);
    let dropped = on_small_stack(move || {
        let before = gcptr::count();
        let mut head = Gc::new(BoxLink { next: None });
        for _ in 1..n {
            head = Gc::new(BoxLink {
                next: Some(Box::new(ManuallyDrop::new(head))),
            });
        }
        assert!(!gcptr::is_tracked(&head), "acyclic");
        assert_eq!(gcptr::count(), before, "acyclic objects are not counted");
        drop(head);
        let boxes = links_dropped();
        let mut head = Gc::new(SliceLink { next: Box::new([]) });
        for _ in 1..n {
            head = Gc::new(SliceLink {
                next: Box::new([ManuallyDrop::new(head)]),
            });
        }
        drop(head);
        (boxes, links_dropped())
    });
    assert_eq!(dropped, (n, n));
    assert!(may_own::<Box<ManuallyDrop<Gc<u8>>>>());
    assert!(fixed::<Box<ManuallyDrop<Gc<u8>>>>());
}

/// A list node linked through an `Rc` of a `ManuallyDrop`.
#[derive(Trace)]
struct RcLink {
    next: Option<Rc<ManuallyDrop<Gc<RcLink>>>>,
}

impl Drop for RcLink {
    fn drop(&mut self) {
        if let Some(next) = self.next.take().and_then(Rc::into_inner) {
            drop(ManuallyDrop::into_inner(next));
        }
        LINKS_DROPPED.with(|n| n.set(n.get() + 1));
    }
}

/// The same through an `Arc`.
#[derive(Trace)]
struct ArcLink {
    next: Option<Arc<ManuallyDrop<Gc<ArcLink>>>>,
}

impl Drop for ArcLink {
    fn drop(&mut self) {
        if let Some(next) = self.next.take().and_then(Arc::into_inner) {
            drop(ManuallyDrop::into_inner(next));
        }
        LINKS_DROPPED.with(|n| n.set(n.get() + 1));
    }
}

/// `Rc<T>` and `Arc<T>` answered `needs_drop::<T>()` too (the change made
/// them ask it; they were leaves before): a list linked through
/// `Rc<ManuallyDrop<Gc<_>>>`, released by `Rc::into_inner` in a `Drop`,
/// overflowed the stack the same way. They now always may own a `Gc`
/// (their holders are acyclic: they show no edges).
#[test]
// An `Arc` of a `Gc` is what the test is about, though it cannot cross
// threads.
#[allow(clippy::arc_with_non_send_sync)]
fn a_list_linked_through_shared_manually_drops_dies_under_the_trashcan() {
    if !runs_here("a_list_linked_through_shared_manually_drops_dies_under_the_trashcan") {
        return;
    }
    let n = support::scaled(200_000);
    let dropped = on_small_stack(move || {
        let mut head = Gc::new(RcLink { next: None });
        for _ in 1..n {
            head = Gc::new(RcLink {
                next: Some(Rc::new(ManuallyDrop::new(head))),
            });
        }
        assert!(!gcptr::is_tracked(&head), "acyclic");
        drop(head);
        let rcs = links_dropped();
        let mut head = Gc::new(ArcLink { next: None });
        for _ in 1..n {
            head = Gc::new(ArcLink {
                next: Some(Arc::new(ManuallyDrop::new(head))),
            });
        }
        drop(head);
        (rcs, links_dropped())
    });
    assert_eq!(dropped, (n, n));
    assert!(may_own::<Rc<ManuallyDrop<Gc<u8>>>>() && fixed::<Rc<u64>>());
    assert!(may_own::<Arc<ManuallyDrop<Gc<u8>>>>() && fixed::<Arc<str>>());
}

/// What the fix costs, and what it keeps: a box, `Rc` or `Arc` of plain
/// data (sized or not, also as a slice's elements) makes its holder
/// acyclic, never counted nor analysed, as the change meant; a box whose
/// pointee has drop glue has no fixed edges (a `Box<dyn Trait>` may hide a
/// `RefCell`), so its holder is tracked if it may own a `Gc`.
#[test]
fn boxes_and_shared_pointers_of_plain_data_stay_out_of_the_collectors_sight() {
    gcptr::disable();
    gcptr::collect();
    let before = gcptr::count();
    let boxed = Gc::new(Box::new(5u64));
    let text = Gc::new(Box::<str>::from("text"));
    let bytes = Gc::new(Box::<[u8]>::from(&b"bytes"[..]));
    let rc = Gc::new(Rc::new(7u64));
    let arc = Gc::new(Arc::<str>::from("shared"));
    let slice: Gc<[Box<u8>]> = Gc::from(vec![Box::new(1u8), Box::new(2)]);
    for tracked in [
        gcptr::is_tracked(&boxed),
        gcptr::is_tracked(&text),
        gcptr::is_tracked(&bytes),
        gcptr::is_tracked(&rc),
        gcptr::is_tracked(&arc),
        gcptr::is_tracked(&slice),
    ] {
        assert!(!tracked);
    }
    assert_eq!(gcptr::count(), before);
    assert_eq!(gcptr::collect(), 0);
    assert_eq!(
        (**boxed, &**text, &bytes[..], **rc),
        (5, "text", &b"bytes"[..], 7)
    );
    assert_eq!((&**arc, *slice[1]), ("shared", 2));
    drop((boxed, text, bytes, rc, arc, slice));
    assert_eq!(gcptr::count(), before);

    assert!(!fixed::<Box<String>>() && !fixed::<Box<dyn Trace>>());
    let cell = Gc::new(Box::new(RefCell::new(Option::<Gc<u8>>::None)));
    assert!(gcptr::is_tracked(&cell));
    drop(cell);
    gcptr::enable();
}

/// Types without drop glue that own no `Gc` (a `&'static`, a
/// `PhantomData`, an empty array, a `Cell` of plain data, `Infallible`)
/// still answer `false` and keep their holders untracked. A
/// `ManuallyDrop<Gc<_>>` has no drop glue either, yet owns a `Gc` and
/// answers `true`: that is why `needs_drop` cannot stand for
/// `__may_own_gc`.
#[test]
fn types_without_drop_glue_own_no_gc_but_manually_drop() {
    type Empty = [Gc<u8>; 0];
    assert!(!std::mem::needs_drop::<&'static Gc<u8>>() && !may_own::<&'static Gc<u8>>());
    assert!(!std::mem::needs_drop::<std::marker::PhantomData<Gc<u8>>>());
    assert!(!may_own::<std::marker::PhantomData<Gc<u8>>>());
    assert!(!std::mem::needs_drop::<Empty>() && !may_own::<Empty>());
    assert!(!may_own::<Cell<u64>>() && !may_own::<std::convert::Infallible>());
    let raw = Box::into_raw(Box::new(Gc::new(3u8)));
    // SAFETY: `raw` is a live box, freed only below, after its last use.
    let leaked: &'static Gc<u8> = unsafe { &*raw };
    let holder = Gc::new((leaked, std::marker::PhantomData::<Gc<u8>>, Empty::default()));
    assert!(!gcptr::is_tracked(&holder));
    assert!(gcptr::referents(&*holder).is_empty());
    assert_eq!(**holder.0, 3);
    drop(holder);

    assert!(!std::mem::needs_drop::<ManuallyDrop<Gc<u8>>>());
    assert!(may_own::<ManuallyDrop<Gc<u8>>>());
    let inner = Gc::new(4u8);
    let md = Gc::new(ManuallyDrop::new(inner.clone()));
    assert_eq!(gcptr::referents(&*md), [Gc::as_ptr(&inner).cast::<()>()]);
    assert_eq!(Gc::strong_count(&inner), 2);
    let taken = Gc::try_unwrap(md).expect("the only handle");
    drop(ManuallyDrop::into_inner(taken));
    assert_eq!(Gc::strong_count(&inner), 1);
    // SAFETY: `raw` came from `Box::into_raw` above, and `leaked`, its only
    // borrow, is used no more.
    drop(unsafe { Box::from_raw(raw) });
}

/// A node whose only edge is a boxed `ManuallyDrop` in a `RefCell`, which
/// its `Drop` impl may take out and release.
#[derive(Trace)]
struct Hidden {
    next: RefCell<Option<Box<ManuallyDrop<Gc<Hidden>>>>>,
    release: bool,
    log: DropLog,
}

impl Drop for Hidden {
    fn drop(&mut self) {
        if self.release {
            if let Some(next) = self.next.get_mut().take() {
                drop(ManuallyDrop::into_inner(*next));
            }
        }
    }
}

/// A cycle closed through a boxed `ManuallyDrop<Gc<_>>` (now tracked) is
/// collected: every value dropped once, its `Weak`s dead; a `Drop` that
/// releases the hidden handle to its already condemned peer is safe (no
/// use-after-free, which Miri would see, and nothing left allocated).
/// Natively, the same cycle whose `Drop` leaves the handle in the
/// `ManuallyDrop` is collected too, and its memory leaks, as the handle
/// is never given back (a leak, which leak checkers would report: not run
/// under them).
#[test]
fn a_cycle_through_a_boxed_manually_drop_is_collected() {
    let hidden = |id, release| {
        Gc::new(Hidden {
            next: RefCell::new(None),
            release,
            log: DropLog(id),
        })
    };
    let link = |from: &Gc<Hidden>, to: &Gc<Hidden>| {
        *from.next.borrow_mut() = Some(Box::new(ManuallyDrop::new(to.clone())));
    };
    let (a, b) = (hidden(6, true), hidden(7, true));
    assert!(gcptr::is_tracked(&a));
    link(&a, &b);
    link(&b, &a);
    let weak = Gc::downgrade(&a);
    drop((a, b));
    assert_eq!(gcptr::collect(), 2);
    assert!(weak.upgrade().is_none());
    assert_eq!(support::take_drops(), [6, 7]);

    // Leaks on purpose: not where a leak checker watches (Miri, LSan,
    // valgrind).
    if cfg!(not(miri)) && !support::leak_checker_watches() {
        let a = hidden(8, false);
        link(&a, &a);
        let weak = Gc::downgrade(&a);
        drop(a);
        assert_eq!(gcptr::collect(), 1);
        assert!(weak.upgrade().is_none());
        assert_eq!(support::take_drops(), [8]);
    }
}

/// A hasher with a `Drop` of its own, and no `Gc`.
struct LoudHasher(Option<DropLog>);

impl std::hash::BuildHasher for LoudHasher {
    type Hasher = std::hash::DefaultHasher;
    fn build_hasher(&self) -> Self::Hasher {
        std::hash::DefaultHasher::new()
    }
}

#[derive(Trace)]
struct Mapped {
    peers: RefCell<std::collections::HashMap<u8, Gc<Mapped>, LoudHasher>>,
}

/// A hasher with drop glue makes its map answer that it may own a `Gc`
/// (it is not traced): a map of plain data with such a hasher makes its
/// holder acyclic, and a garbage cycle through a map keeps the map off
/// the path that frees garbage without its drops, so the hasher's `Drop`
/// runs, once, when the cycle is collected.
#[test]
fn a_hashers_drop_runs_when_its_maps_cycle_is_collected() {
    type Plain = std::collections::HashMap<u8, u8, LoudHasher>;
    assert!(may_own::<Plain>() && fixed::<Plain>());
    let plain = Gc::new(Plain::with_hasher(LoudHasher(Some(DropLog(9)))));
    assert!(!gcptr::is_tracked(&plain));
    drop(plain);
    assert_eq!(support::take_drops(), [9]);

    let node = Gc::new(Mapped {
        peers: RefCell::new(std::collections::HashMap::with_hasher(LoudHasher(Some(
            DropLog(10),
        )))),
    });
    assert!(gcptr::is_tracked(&node));
    node.peers.borrow_mut().insert(0, node.clone());
    drop(node);
    assert_eq!(gcptr::collect(), 1);
    assert_eq!(support::take_drops(), [10]);
}

// ---------------------------------------------------------------------
// Acyclic slices.

/// Boxed cells whose pointee has no drop glue: their edges count as fixed,
/// though a `Gc` can be put in them through `&`, inside the
/// `ManuallyDrop`.
type HiddenSlots = Gc<[Box<RefCell<ManuallyDrop<Option<Gc<Peer>>>>>]>;

#[derive(Trace)]
struct Peer {
    back: RefCell<Option<HiddenSlots>>,
    log: DropLog,
}

/// An acyclic slice whose elements' answer to `__edges_fixed` misses an
/// edge (a `Gc` put through `&` into a boxed `RefCell<ManuallyDrop<_>>`)
/// can gain that edge and close a cycle: the collector, which never looks
/// at the slice, sees the edge as a reference from outside and frees
/// nothing (a leak, never an early free); taken out by hand, the cycle
/// dies by count, each value once.
#[test]
fn an_edge_an_acyclic_slice_gains_unseen_only_leaks() {
    assert!(fixed::<Box<RefCell<ManuallyDrop<Option<Gc<Peer>>>>>>());
    let slots: HiddenSlots = Gc::from(vec![Box::new(RefCell::new(ManuallyDrop::new(None)))]);
    assert!(!gcptr::is_tracked(&slots), "acyclic, as the box answers");
    let peer = Gc::new(Peer {
        back: RefCell::new(Some(slots.clone())),
        log: DropLog(1),
    });
    assert!(gcptr::is_tracked(&peer));
    **slots[0].borrow_mut() = Some(peer.clone()); // slots -> peer -> slots
    let (weak_slots, weak_peer) = (Gc::downgrade(&slots), Gc::downgrade(&peer));
    drop((slots, peer));
    assert_eq!(gcptr::collect(), 0);
    assert!(weak_slots.upgrade().is_some() && weak_peer.upgrade().is_some());
    assert_eq!(weak_peer.upgrade().unwrap().log.0, 1);
    assert!(support::take_drops().is_empty());

    let slots = weak_slots.upgrade().unwrap();
    let taken = std::mem::replace(&mut *slots[0].borrow_mut(), ManuallyDrop::new(None));
    drop(slots);
    drop(ManuallyDrop::into_inner(taken));
    assert!(weak_slots.upgrade().is_none() && weak_peer.upgrade().is_none());
    assert_eq!(support::take_drops(), [1]);
}

/// A slice of optional handles to `Back`.
type BackSlots = Gc<[Option<Gc<Back>>]>;

#[derive(Trace)]
struct Back {
    to: RefCell<Option<BackSlots>>,
    log: DropLog,
}

/// `get_mut` on an acyclic slice makes it tracked, counted again, so that
/// a cycle it then joins (an element set through the `&mut`, which points
/// back at the slice) is collected; a slice made over it meanwhile is
/// tracked, not acyclic.
#[test]
fn an_acyclic_slice_changed_through_get_mut_joins_a_collectable_cycle() {
    gcptr::disable();
    gcptr::collect();
    let before = gcptr::count()[0];
    let mut slice: BackSlots = Gc::from(vec![None, None]);
    assert!(!gcptr::is_tracked(&slice));
    assert_eq!(gcptr::count()[0], before);
    let back = Gc::new(Back {
        to: RefCell::new(None),
        log: DropLog(2),
    });
    Gc::get_mut(&mut slice).expect("the only handle")[1] = Some(back.clone());
    assert!(gcptr::is_tracked(&slice));
    assert_eq!(gcptr::count()[0], before + 2, "the slice and `back`");
    // A slice made over an object set aside by `get_mut` is tracked too.
    let over: Gc<[BackSlots]> = Gc::from(vec![slice.clone()]);
    assert!(gcptr::is_tracked(&over));
    drop(over);
    *back.to.borrow_mut() = Some(slice.clone());
    let weak = Gc::downgrade(&slice);
    drop((slice, back));
    assert_eq!(gcptr::collect(), 2);
    assert!(weak.upgrade().is_none());
    assert_eq!(support::take_drops(), [2]);
    gcptr::enable();
}

/// An element whose trace panics when told to, and whose edges are fixed
/// (a hand-written impl may say so).
struct Panicky(DropLog);

// SAFETY: owns no `Gc` (visits none); its edges never change.
unsafe impl Trace for Panicky {
    fn trace(&self, _: &mut Tracer) {
        support::trace_countdown();
    }
    fn __edges_fixed(_depth: u32) -> bool {
        true
    }
}

/// A slice's acyclic check traces its elements. An element trace that
/// panics there unwinds out of `Gc::from`, which drops the new slice:
/// each element once, nothing counted or left for the collector. Without
/// the panic the same slice is acyclic and not counted.
#[test]
fn a_trace_panicking_in_a_slices_acyclic_check_drops_it_once() {
    gcptr::disable();
    gcptr::collect();
    let before = gcptr::count();
    let make = || {
        vec![
            Panicky(DropLog(3)),
            Panicky(DropLog(4)),
            Panicky(DropLog(5)),
        ]
    };
    support::panic_in_nth_trace(2);
    let result = catch_unwind(AssertUnwindSafe(|| Gc::<[Panicky]>::from(make())));
    support::panic_in_nth_trace(0);
    let payload = result.err().expect("the second element's trace panicked");
    assert_eq!(support::panic_message(&payload), "trace failed");
    assert_eq!(support::take_drops(), [3, 4, 5]);
    assert_eq!(gcptr::count(), before);
    assert_eq!(gcptr::collect(), 0);

    let slice = Gc::<[Panicky]>::from(make());
    assert!(!gcptr::is_tracked(&slice));
    assert_eq!(gcptr::count(), before);
    drop(slice);
    assert_eq!(support::take_drops(), [3, 4, 5]);
    assert_eq!(gcptr::count(), before);
    gcptr::enable();
}

type Cell8 = RefCell<Option<Gc<u8>>>;

/// A slice of `Gc`s is acyclic exactly when every element points at an
/// untracked or acyclic object (also an acyclic slice), and counted in
/// generation 0 only when tracked; the counts come back when each dies.
#[test]
fn slices_are_counted_only_when_tracked() {
    gcptr::disable();
    gcptr::collect();
    let before = gcptr::count()[0];
    let plain: Gc<[Gc<u8>]> = Gc::from(vec![Gc::new(1), Gc::new(2)]);
    let nested: Gc<[Gc<[Gc<u8>]>]> = Gc::from(vec![plain.clone()]);
    assert!(!gcptr::is_tracked(&plain) && !gcptr::is_tracked(&nested));
    assert_eq!(gcptr::count()[0], before);
    let cell = Gc::new(RefCell::new(Option::<Gc<u8>>::None));
    let over: Gc<[Gc<Cell8>]> = Gc::from(vec![cell.clone()]);
    assert!(gcptr::is_tracked(&over));
    assert_eq!(gcptr::count()[0], before + 2, "`cell` and `over`");
    let holder = Gc::new((nested.clone(), over.clone()));
    assert!(gcptr::is_tracked(&holder), "it reaches a tracked slice");
    assert_eq!(gcptr::count()[0], before + 3);
    drop((holder, over, cell));
    assert_eq!(gcptr::count()[0], before);
    drop((plain, nested));
    assert_eq!(gcptr::count()[0], before);
    assert_eq!(gcptr::collect(), 0);
    gcptr::enable();
}

// ---------------------------------------------------------------------
// The macros' generic parameters.

mod foreign {
    pub struct Empty(pub u8);
    pub struct Two<'a, 'b>(pub &'a u8, pub &'b str);
    pub struct Tail<T: ?Sized> {
        pub len: usize,
        pub data: Box<T>,
    }
}

// SAFETY: a byte.
gcptr::unsafe_trace_leaf!(impl<> foreign::Empty);
// SAFETY: two borrows.
gcptr::unsafe_trace_leaf!(impl<'a, 'b,> foreign::Two<'a, 'b>);
// SAFETY: `len` is a number.
gcptr::unsafe_trace_fields!(impl<T:?Sized> foreign::Tail<T> { data, });

/// Parameters named as the macros' own metavariables and locals, in a
/// module without the prelude.
#[no_implicit_prelude]
#[allow(non_camel_case_types)]
mod bare {
    pub struct Odd<
        callback: ?::core::marker::Sized,
        generics,
        param,
        field,
        depth,
        S,
        const N: usize,
    > {
        pub this: ::core::marker::PhantomData<(generics, param, S)>,
        pub field: [field; N],
        pub depth: depth,
        pub tracer: ::std::boxed::Box<callback>,
    }

    // SAFETY: `this` is a marker.
    ::gcptr::unsafe_trace_fields!(
        impl<callback: ?Sized, generics, param, field, depth, S, const N: usize>
            Odd<callback, generics, param, field, depth, S, N> { field, depth, tracer }
    );

    pub struct Leaf<'a, T: ?::core::marker::Sized>(pub &'a T);
    // SAFETY: a borrow.
    ::gcptr::unsafe_trace_leaf!(impl<'a, T: ?Sized> Leaf<'a, T>);
}

/// `unsafe_trace_leaf!` and `unsafe_trace_fields!` take an empty list
/// (`impl<>`), a list of lifetimes only, a trailing comma, `T:?Sized`
/// without spaces, a trailing comma after the fields, parameters named as
/// the macros' own metavariables and locals (`callback`, `generics`,
/// `param`, `field`, `depth`, `S`), and work without the prelude. Each
/// type parameter is bounded by `Trace`, and each listed field traced.
#[test]
fn trace_macros_take_odd_parameter_lists() {
    assert!(!may_own::<foreign::Empty>() && !may_own::<foreign::Two<'static, 'static>>());
    assert!(gcptr::referents(&foreign::Two(&1, "two")).is_empty());
    assert_eq!(foreign::Empty(9).0, 9);

    let g = Gc::new(1u8);
    let tail = foreign::Tail::<[Gc<u8>]> {
        len: 2,
        data: Box::new([g.clone(), g.clone()]),
    };
    assert_eq!(gcptr::referents(&tail).len(), 2);
    assert_eq!(tail.len, 2);
    assert!(may_own::<foreign::Tail<str>>());

    let odd = bare::Odd::<dyn Trace, u8, u16, Gc<u8>, Option<Gc<u8>>, u32, 2> {
        this: std::marker::PhantomData,
        field: [g.clone(), g.clone()],
        depth: Some(g.clone()),
        tracer: Box::new(Some(g.clone())),
    };
    assert_eq!(gcptr::referents(&odd).len(), 4);
    assert!(fixed::<bare::Odd<u8, u8, u8, Gc<u8>, u8, u8, 1>>());
    let leaf = bare::Leaf::<str>("leaf");
    assert!(gcptr::referents(&leaf).is_empty());
    assert!(!may_own::<bare::Leaf<'static, [Gc<u8>]>>());
    assert_eq!(leaf.0, "leaf");
}

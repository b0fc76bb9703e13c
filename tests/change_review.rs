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
//!
//! Its last section reviews the change after 729dac4 (forty-first
//! session): set-aside objects taken into an analysis, the derive's check
//! of a `Finalize` impl without `#[gc(finalize)]`, and `gc_closure!`'s
//! captures cloned by method call. It found one fault, fixed: a capture
//! cloned as `a.clone()` was ambiguous with another trait in scope that
//! has a `clone` method (E0034), and an inherent `clone` captured
//! something else than `Clone` makes.
//!
//! Its section "Review of the forty-second session's change" (after
//! 338c4d2) tries `Gc`'s invariance, the rewritten `gc_closure!` and the
//! new `WeakSet` operations, `weak_keys`, `weak_values` and
//! `remove_entry`. It found no fault; the docs now say what invariance
//! rejects and that `gc_coerce!` converts a higher-ranked handler, and
//! that `gc_closure!`'s `|s: &str|` no longer compiles where the body
//! keeps `s` in a `'static` place (it did before the rewrite; write
//! `&'static str` or no type).
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

// ---------------------------------------------------------------------
// The change after 729dac4 (forty-first session): an analysis takes in
// the objects `Gc::get_mut` set aside that its edges meet; the derive's
// check of `Finalize` without `#[gc(finalize)]`; `gc_closure!`'s captures
// cloned by method call.

thread_local! {
    static FINALIZED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    static STASH: RefCell<Vec<Gc<Mortal>>> = const { RefCell::new(Vec::new()) };
    static RESURRECTS: Cell<bool> = const { Cell::new(false) };
}

fn take_finalized() -> Vec<u32> {
    let mut ids = FINALIZED.with(|f| std::mem::take(&mut *f.borrow_mut()));
    ids.sort_unstable();
    ids
}

/// A node with a finalizer that logs its id and, while `RESURRECTS` is
/// set, stashes a clone of each of its edges (resurrecting its peers).
#[derive(Trace)]
#[gc(finalize)]
struct Mortal {
    #[gc(skip)]
    log: DropLog,
    edges: RefCell<Vec<Gc<Mortal>>>,
}

impl gcptr::Finalize for Mortal {
    fn finalize(&self) {
        FINALIZED.with(|f| f.borrow_mut().push(self.log.0));
        if RESURRECTS.with(Cell::get) {
            STASH.with(|s| s.borrow_mut().extend(self.edges.borrow().iter().cloned()));
        }
    }
}

fn mortal(id: u32) -> Gc<Mortal> {
    Gc::new(Mortal {
        log: DropLog(id),
        edges: RefCell::new(Vec::new()),
    })
}

/// Makes garbage for young collections to find: a self-cycle.
fn self_cycle(id: u32) {
    let n = support::Node::new(id);
    n.link(&n);
}

/// Two `&mut`s from `get_mut` live at once, the inner one through a `Vec`
/// inside the outer's value, the outer's handle in a mutably borrowed
/// `RefCell` of a young traced object; automatic, young and full
/// collections run meanwhile (threshold 1). None takes either object in
/// (Miri would report a read under the `&mut`s, written after); once the
/// borrows end, the cycle closed through both is found by one collection.
#[test]
fn nested_get_mut_borrows_stay_untraced_while_collections_run() {
    let rounds = if cfg!(miri) { 3 } else { 50 };
    support::take_drops();
    let root = support::Node::new(1);
    let outer = support::Node::new(2);
    let inner = support::Node::new(3);
    outer.link(&inner);
    drop(inner);
    root.link(&outer);
    drop(outer);
    gcptr::set_threshold([1, 1, 1]);
    {
        let mut edges = root.edges.borrow_mut();
        let outer_value = Gc::get_mut(&mut edges[0]).expect("the only handle");
        let inner_edges = outer_value.edges.get_mut();
        let inner_value = Gc::get_mut(&mut inner_edges[0]).expect("the only handle");
        for i in 0..rounds {
            self_cycle(100 + i);
            gcptr::collect_generation(0);
            self_cycle(200 + i);
            gcptr::collect_generation(1);
            self_cycle(300 + i);
            gcptr::collect();
            // Writes after every collection: a read of either value by
            // the collections would be a read under a live `&mut`.
            inner_value
                .edges
                .get_mut()
                .push(support::Node::new(1000 + i));
            inner_value.edges.get_mut().pop();
            outer_value.log.0 = 2;
        }
    }
    gcptr::set_threshold([700, 10, 10]);
    gcptr::collect();
    assert!(support::take_drops().iter().all(|&id| id >= 100));
    // inner -> root closes root -> outer -> inner.
    let inner = root.edges.borrow()[0].edges.borrow()[0].clone();
    inner.link(&root);
    drop(inner);
    drop(root);
    assert_eq!(gcptr::collect(), 3);
    assert_eq!(support::take_drops(), [1, 2, 3]);
}

/// A finalizer run while a `get_mut` borrow lives (by the collection
/// that a `Gc::new` in the borrow's scope starts) asks `referrers` of a
/// leaf that the borrowed object holds: a listed holder is among them,
/// the set-aside holder is not (an `ObjectRef` to it would downcast to a second handle), and the
/// borrow is written after.
#[test]
fn a_finalizer_run_under_a_get_mut_borrow_cannot_find_the_borrowed_object() {
    thread_local!(static LEAF: RefCell<Option<Gc<Mortal>>> = const { RefCell::new(None) });
    thread_local!(static FOUND: RefCell<Vec<*const ()>> = const { RefCell::new(Vec::new()) });
    #[derive(Trace)]
    #[gc(finalize)]
    struct Asker(RefCell<Option<Gc<Asker>>>);
    impl gcptr::Finalize for Asker {
        fn finalize(&self) {
            if let Some(leaf) = LEAF.with(|l| l.borrow().clone()) {
                let found = gcptr::referrers(&leaf);
                FOUND.with(|f| f.borrow_mut().extend(found.iter().map(|r| r.address())));
            }
        }
    }
    take_finalized();
    let leaf = mortal(7);
    let mut holder = mortal(8);
    holder.edges.borrow_mut().push(leaf.clone());
    let listed = mortal(11);
    listed.edges.borrow_mut().push(leaf.clone());
    let listed_address = Gc::as_ptr(&listed).cast::<()>();
    LEAF.with(|l| *l.borrow_mut() = Some(leaf));
    let holder_address = Gc::as_ptr(&holder).cast::<()>();
    gcptr::set_threshold([1, 1, 1]);
    {
        let value = Gc::get_mut(&mut holder).expect("the only handle");
        let asker = Gc::new(Asker(RefCell::new(None)));
        *asker.0.borrow_mut() = Some(asker.clone());
        drop(asker);
        for _ in 0..3 {
            self_cycle(50);
        }
        gcptr::collect();
        value.log.0 = 9;
        value.edges.get_mut().push(mortal(10));
    }
    gcptr::set_threshold([700, 10, 10]);
    let found = FOUND.with(|f| f.borrow().clone());
    assert!(
        found.contains(&listed_address),
        "the listed holder is found"
    );
    assert!(
        !found.contains(&holder_address),
        "a set-aside object was found"
    );
    assert_eq!(holder.log.0, 9);
    LEAF.with(|l| l.borrow_mut().take());
}

/// Clears the logs, then makes `mortal(1)` and `mortal(2)` a cycle closed
/// through 1 while `get_mut` has set 1 aside (its last handle moves into
/// 2, with no reference lost) and drops 2's handle: garbage that only a
/// collection taking 1 in can find. Returns the stats from before.
fn cycle_closed_through_a_set_aside_object() -> [gcptr::GenerationStats; 3] {
    take_finalized();
    support::take_drops();
    gcptr::collect();
    let before = gcptr::stats();
    let mut n = mortal(1);
    let a = mortal(2);
    Gc::get_mut(&mut n).unwrap().edges.get_mut().push(a.clone());
    a.edges.borrow_mut().push(n);
    drop(a);
    before
}

/// A cycle closed through a set-aside object, found by a young collection
/// that takes it in, whose finalizers resurrect both: each finalizer runs
/// once, the collection reclaims nothing and counts the two resurrected;
/// let go again, both die once each, with no second finalizer.
#[test]
fn a_taken_in_object_is_finalized_once_and_may_be_resurrected() {
    let before = cycle_closed_through_a_set_aside_object();
    RESURRECTS.with(|r| r.set(true));
    assert_eq!(gcptr::collect_generation(0), 0, "both resurrected");
    RESURRECTS.with(|r| r.set(false));
    assert_eq!(take_finalized(), [1, 2]);
    assert_eq!(support::take_drops(), Vec::<u32>::new());
    let after = gcptr::stats();
    assert_eq!(after[0].resurrected - before[0].resurrected, 2);
    assert_eq!(after[0].collected, before[0].collected);
    assert_eq!(STASH.with(|s| s.borrow().len()), 2);
    STASH.with(|s| s.borrow_mut().clear());
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(support::take_drops(), [1, 2]);
    assert_eq!(take_finalized(), Vec::<u32>::new(), "finalized once only");
}

/// The same cycle without resurrection: the young collection that takes
/// the set-aside object in reclaims both, counts them in its stats, and
/// leaves the counts of a young collection.
#[test]
fn a_young_collection_reclaims_a_cycle_closed_through_a_set_aside_object() {
    let before = cycle_closed_through_a_set_aside_object();
    assert_eq!(gcptr::collect_generation(0), 2);
    assert_eq!(take_finalized(), [1, 2]);
    assert_eq!(support::take_drops(), [1, 2]);
    let after = gcptr::stats();
    assert_eq!(after[0].collected - before[0].collected, 2);
    assert_eq!(gcptr::count()[0], 0);
}

/// A set-aside object taken in by a young collection while its cycle is
/// alive survives it with the rest (into generation 1, counted), and the
/// cycle is found once let go.
#[test]
fn a_taken_in_survivor_is_found_later() {
    support::take_drops();
    gcptr::collect();
    let mut n = support::Node::new(1);
    let a = support::Node::new(2);
    Gc::get_mut(&mut n).unwrap().edges.get_mut().push(a.clone());
    a.edges.borrow_mut().push(n);
    assert_eq!(gcptr::collect_generation(0), 0);
    assert_eq!(gcptr::collect_generation(1), 0);
    assert_eq!(gcptr::collect(), 0);
    assert!(gcptr::is_tracked(&a.edges.borrow()[0]));
    assert_eq!(support::take_drops(), Vec::<u32>::new());
    drop(a);
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(support::take_drops(), [1, 2]);
}

/// With objects frozen, a full collection analyses a set given whole: it
/// takes in the set-aside object of a cycle closed through it, and leaves
/// the frozen object frozen. An object frozen and then set aside leaves
/// the permanent generation.
#[test]
fn frozen_objects_and_set_aside_objects() {
    support::take_drops();
    gcptr::collect();
    let frozen = support::Node::new(10);
    let mut thawed = support::Node::new(11);
    gcptr::freeze();
    assert_eq!(gcptr::freeze_count(), 2);
    Gc::get_mut(&mut thawed).unwrap();
    assert_eq!(gcptr::freeze_count(), 1);
    let mut n = support::Node::new(1);
    let a = support::Node::new(2);
    Gc::get_mut(&mut n).unwrap().edges.get_mut().push(a.clone());
    a.edges.borrow_mut().push(n);
    drop(a);
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(support::take_drops(), [1, 2]);
    assert_eq!(gcptr::freeze_count(), 1);
    gcptr::unfreeze();
    assert_eq!(gcptr::freeze_count(), 0);
    drop((frozen, thawed));
    assert_eq!(support::take_drops(), [10, 11]);
}

/// A cycle closed through a set-aside object that a thread leaves is
/// dropped once per object at its exit.
#[test]
fn a_cycle_closed_through_a_set_aside_object_dies_at_thread_exit() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut n = Gc::new(support::Reporter(1, tx.clone(), RefCell::new(None)));
        let a = Gc::new(support::Reporter(2, tx, RefCell::new(None)));
        *Gc::get_mut(&mut n).unwrap().2.get_mut() = Some(a.clone());
        *a.2.borrow_mut() = Some(n);
    })
    .join()
    .unwrap();
    let mut ids: Vec<u32> = rx.iter().collect();
    ids.sort_unstable();
    assert_eq!(ids, [1, 2]);
}

/// A finalizer run by a collection sets aside a fresh object (through
/// `get_mut`) that it links from its resurrected self: the second look
/// does not take it in, it comes back, and everything dies once later.
#[test]
fn an_object_set_aside_by_a_finalizer_comes_back_after_the_second_look() {
    thread_local!(static KEEP: RefCell<Vec<Gc<Maker>>> = const { RefCell::new(Vec::new()) });
    #[derive(Trace)]
    #[gc(finalize)]
    struct Maker {
        me: RefCell<Option<Gc<Maker>>>,
        made: RefCell<Vec<Gc<support::Node>>>,
    }
    impl gcptr::Finalize for Maker {
        fn finalize(&self) {
            let mut fresh = support::Node::new(5);
            let keep = self.me.borrow().clone().unwrap();
            Gc::get_mut(&mut fresh)
                .unwrap()
                .edges
                .get_mut()
                .push(support::Node::new(6));
            self.made.borrow_mut().push(fresh);
            KEEP.with(|k| k.borrow_mut().push(keep));
        }
    }
    support::take_drops();
    let m = Gc::new(Maker {
        me: RefCell::new(None),
        made: RefCell::new(Vec::new()),
    });
    *m.me.borrow_mut() = Some(m.clone());
    drop(m);
    assert_eq!(gcptr::collect(), 0, "resurrected");
    assert_eq!(support::take_drops(), Vec::<u32>::new());
    let m = KEEP.with(|k| k.borrow_mut().pop()).unwrap();
    assert!(gcptr::is_tracked(&m.made.borrow()[0]));
    m.me.borrow_mut().take();
    drop(m);
    assert_eq!(support::take_drops(), [5, 6]);
    assert_eq!(gcptr::collect(), 0);
}

/// A generic type with a lifetime, a `?Sized` parameter and a where
/// clause, for the derive's `Finalize` check.
#[derive(Trace)]
struct Checked<'a, T: Trace + ?Sized + 'static>
where
    T: std::fmt::Debug,
{
    #[gc(skip)]
    name: &'a str,
    value: Box<T>,
}

/// An unsized tail.
#[derive(Trace)]
struct CheckedTail {
    head: Gc<u8>,
    rest: [Gc<u8>],
}

macro_rules! checked_by_macro {
    ($name:ident) => {
        #[derive(Trace)]
        struct $name(Gc<u8>);
    };
}
checked_by_macro!(CheckedByMacro);

/// A `Finalize` impl that holds only for some arguments (the documented
/// false negative: it compiles).
#[derive(Trace)]
struct CheckedSome<T: 'static>(Option<Gc<T>>);

impl gcptr::Finalize for CheckedSome<u32> {
    fn finalize(&self) {}
}

/// A type with a method named as the check's probe.
#[derive(Trace)]
struct CheckedProbeName(RefCell<Vec<Gc<CheckedProbeName>>>);

impl CheckedProbeName {
    fn __gcptr_finalize_attribute(&self) -> u8 {
        0
    }
}

mod checked_without_prelude {
    #![no_implicit_prelude]
    #[derive(::gcptr::Trace)]
    pub(super) struct Plain<T: 'static>(pub(super) ::std::option::Option<::gcptr::Gc<T>>);
}

/// The derive's check of a `Finalize` impl without `#[gc(finalize)]`
/// accepts the types without one (generic with a lifetime, `?Sized` and
/// a where clause; an unsized tail; made by `macro_rules!`; with a method
/// named as its probe; under `no_implicit_prelude`) and one whose impl
/// holds for some arguments only; their traces still show their edges.
#[test]
fn the_finalize_check_accepts_types_without_a_finalizer() {
    let g = Gc::new(1u8);
    let checked: Checked<'_, Option<Gc<u8>>> = Checked {
        name: "n",
        value: Box::new(Some(g.clone())),
    };
    assert_eq!(gcptr::referents(&checked).len(), 1);
    assert_eq!(checked.name, "n");
    assert_eq!(gcptr::referents(&CheckedByMacro(g.clone())).len(), 1);
    assert_eq!(gcptr::referents(&CheckedSome(Some(Gc::new(2u32)))).len(), 1);
    let probe = CheckedProbeName(RefCell::new(vec![]));
    assert_eq!(probe.__gcptr_finalize_attribute(), 0);
    assert_eq!(
        gcptr::referents(&checked_without_prelude::Plain(Some(g.clone()))).len(),
        1
    );
    assert!(may_own::<CheckedByMacro>());
    let _: Option<&CheckedTail> = None;
}

/// A trait of the program's own with a `clone` method, in scope.
mod duplicate {
    pub trait Duplicate {
        fn clone(&self) -> Self;
    }

    impl<T: Clone> Duplicate for T {
        fn clone(&self) -> Self {
            Clone::clone(self)
        }
    }
}

/// A capture whose type has an inherent `clone` unlike its `Clone`.
#[derive(Clone, Trace)]
struct Tag(u32);

impl Tag {
    /// Not `Clone::clone`: a different tag.
    #[allow(clippy::should_implement_trait)]
    fn clone(&self) -> Tag {
        Tag(self.0 + 100)
    }
}

/// `gc_closure!` clones each capture by `Clone`: with another trait that
/// has a `clone` method in scope, the macro compiles (a method call
/// `a.clone()` was ambiguous, E0034), and a type's inherent `clone` is not
/// what captures it (it was: the closure saw tag 101). A reference to a
/// `Gc` still captures the `Gc`, an `&Rc` the `Rc`, a `Copy` value itself.
#[test]
fn gc_closure_captures_by_clone_whatever_else_is_named_clone() {
    #[allow(unused_imports)]
    use duplicate::Duplicate as _;
    let counter = Gc::new(Cell::new(0u32));
    let by_ref = &counter;
    let tag = Tag(1);
    let shared = Rc::new(5u32);
    let shared_ref = &shared;
    let plain = 7u32;
    let f = gcptr::gc_closure!([by_ref, tag, shared_ref, plain] move || {
        by_ref.set(by_ref.get() + 1);
        tag.0 + **shared_ref + *plain
    });
    assert_eq!(f.call(()), 13);
    assert_eq!(counter.get(), 1);
    assert_eq!(Gc::strong_count(&counter), 2, "the closure holds a Gc");
    assert_eq!(Rc::strong_count(&shared), 2, "and an Rc");
    assert_eq!(tag.clone().0, 101, "the inherent clone exists");
}

/// A `Drop` run early by a full collection's gathering pass (garbage with
/// no finalizer, dropped as soon as traced) sets aside a listed object
/// with `get_mut` and closes a cycle through it with no reference lost:
/// the pass goes on, and the cycle is found by the next collection at
/// the latest; every object is dropped once.
#[test]
fn an_early_drop_that_sets_aside_and_closes_a_cycle() {
    thread_local!(static SPARE: RefCell<Option<Gc<support::Node>>> = const { RefCell::new(None) });
    struct Closer;
    impl Drop for Closer {
        fn drop(&mut self) {
            if let Some(mut x) = SPARE.with(|s| s.borrow_mut().take()) {
                let w = support::Node::new(31);
                Gc::get_mut(&mut x)
                    .expect("the only handle")
                    .edges
                    .get_mut()
                    .push(w.clone());
                // x's last handle moves into w.
                w.edges.borrow_mut().push(x);
            }
        }
    }
    #[derive(Trace)]
    struct Early {
        me: RefCell<Option<Gc<Early>>>,
        #[gc(skip)]
        _closer: Closer,
    }
    support::take_drops();
    gcptr::collect();
    SPARE.with(|s| *s.borrow_mut() = Some(support::Node::new(30)));
    let keep = support::Node::new(40);
    let e = Gc::new(Early {
        me: RefCell::new(None),
        _closer: Closer,
    });
    *e.me.borrow_mut() = Some(e.clone());
    drop(e);
    let first = gcptr::collect();
    let second = gcptr::collect();
    assert_eq!(first + second, 3, "Early, then x and w");
    assert_eq!(support::take_drops(), [30, 31]);
    assert_eq!(gcptr::collect(), 0);
    drop(keep);
    assert_eq!(support::take_drops(), [40]);
}

// ---------------------------------------------------------------------
// Review of the forty-second session's change (after 338c4d2): `Gc` and
// `Weak` invariant in `T`, `gc_closure!`'s patterns, return types and
// borrowed arguments, `WeakSet`'s comparisons and algebra, `weak_keys`,
// `weak_values` and `remove_entry`.

mod forty_second {
    use std::cell::{Cell, RefCell};
    use std::collections::HashMap;

    use gcptr::{gc_closure, gc_coerce, Gc, GcFn, Trace, WeakSet, WeakValueMap};

    use crate::support::DropLog;

    /// An event that a handler borrows.
    struct Event {
        x: i32,
    }

    /// A handler of borrowed events, written by hand, so that
    /// `ObjectRef::downcast` can name its type.
    #[derive(Trace)]
    struct Counter {
        total: Cell<i32>,
        link: RefCell<Option<Gc<u8>>>,
    }

    impl<'a> GcFn<(&'a Event,)> for Counter {
        fn call(&self, (event,): (&'a Event,)) {
            self.total.set(self.total.get() + event.x);
        }
    }

    /// What invariance costs a handler of borrowed events, and the way
    /// round it that the docs give: a `Gc<dyn for<'a> GcFn<(&'a E,)>>` no
    /// longer passes as a `Gc<dyn GcFn<(&'static E,)>>` by subtyping, but
    /// `gc_coerce!` converts it (an unsizing, not a subtyping). The
    /// converted handle calls the object, and `downcast` still gives back
    /// the made type, which takes the borrow of a local (Miri).
    #[test]
    fn a_higher_ranked_handler_becomes_a_static_one_by_gc_coerce() {
        static STATIC_EVENT: Event = Event { x: 1 };
        let target = Gc::new(0u8);
        let counter = Gc::new(Counter {
            total: Cell::new(0),
            link: RefCell::new(Some(target.clone())),
        });
        let general: Gc<dyn for<'a> GcFn<(&'a Event,)>> =
            gc_coerce!(counter => dyn for<'a> GcFn<(&'a Event,)>);
        let only_static: Gc<dyn GcFn<(&'static Event,)>> =
            gc_coerce!(general.clone() => dyn GcFn<(&'static Event,)>);
        only_static.call((&STATIC_EVENT,));
        let holders = gcptr::referrers(&target);
        assert_eq!(holders.len(), 1);
        let back: Gc<Counter> = holders[0].downcast::<Counter>().expect("made as a Counter");
        drop(holders);
        {
            let local = Event { x: 10 };
            back.call((&local,));
            general.call((&local,));
        }
        assert_eq!(back.total.get(), 21);
        assert!(core::ptr::addr_eq(
            Gc::as_ptr(&back),
            Gc::as_ptr(&only_static)
        ));
        drop((back, general, only_static));
        assert_eq!(Gc::strong_count(&target), 1, "the counter died by count");
    }

    /// A value that a trait object can change in place.
    trait Store: Trace {
        fn store(&mut self, text: &str);
    }

    #[derive(Trace)]
    struct Holder {
        text: String,
        link: RefCell<Option<Gc<u8>>>,
    }

    impl Store for Holder {
        fn store(&mut self, text: &str) {
            self.text = text.to_owned();
        }
    }

    /// The one coercion that still shortens a lifetime in a handle's type:
    /// `dyn Store + 'static` to `dyn Store + 'a` (an unsizing). Through it,
    /// `get_mut` reaches the value only by the made type's own methods, so
    /// `downcast` finds a valid `Holder` after the local is gone (Miri).
    #[test]
    fn a_shortened_trait_object_bound_stores_only_what_the_made_type_allows() {
        let target = Gc::new(0u8);
        let made: Gc<dyn Store> = gc_coerce!(Gc::new(Holder {
            text: String::from("made"),
            link: RefCell::new(Some(target.clone())),
        }) => dyn Store);
        {
            let local = String::from("a local, gone at the end of the block");
            let mut short: Gc<dyn Store + '_> = gc_coerce!(made => dyn Store + '_);
            Gc::get_mut(&mut short)
                .expect("the only handle")
                .store(&local);
            drop(short.clone());
            let back = gcptr::referrers(&target)[0]
                .downcast::<Holder>()
                .expect("a Holder");
            drop(short);
            drop(local);
            assert_eq!(back.text, "a local, gone at the end of the block");
        }
        assert_eq!(Gc::strong_count(&target), 1);
    }

    /// `gc_closure!` forms that users write, each called and its result
    /// checked: an untyped argument used arithmetically, types with commas
    /// and `->` inside brackets, a boxed closure argument, an early
    /// `return`, `?` under a return type, a path pattern, a closure that
    /// returns a closure, `| |`, a trailing comma, captures and arguments
    /// named as the expansion's own variables (`captures`, `captures_of`,
    /// `function`, `arguments`), and an unlisted `Copy` variable named
    /// `captures` (the user's, not the expansion's tuple).
    #[test]
    fn gc_closure_forms_that_users_write_keep_their_meaning() {
        let k = Gc::new(3i32);
        let plus_one = gc_closure!([k] move |x| x + 1);
        assert_eq!(plus_one.call((2,)), 3);
        let sizes = gc_closure!([k] move |v: Vec<(u8, u8)>, m: HashMap<u8, u8>| v.len() + m.len());
        assert_eq!(
            sizes.call((vec![(1, 2)], HashMap::from([(1, 1), (2, 2)]))),
            3
        );
        let apply = gc_closure!([k] move |f: Box<dyn Fn(i32) -> i32>| f(**k));
        assert_eq!(apply.call((Box::new(|n| n * 2),)), 6);
        let early = gc_closure!([k] move |x: i32| {
            if x > 0 {
                return x;
            }
            **k
        });
        assert_eq!((early.call((5,)), early.call((-5,))), (5, 3));
        let parse = gc_closure!([k] move |s: &str| -> Result<i32, std::num::ParseIntError> {
            Ok(s.parse::<i32>()? + **k)
        });
        assert_eq!(parse.call(("4",)), Ok(7));
        assert!(parse.call(("four",)).is_err());
        let unwrap = gc_closure!([k] move |std::num::Wrapping(x): std::num::Wrapping<i32>| x * **k);
        assert_eq!(unwrap.call((std::num::Wrapping(2),)), 6);
        let adder = gc_closure!([k] move |x: i32| move |y: i32| x + y);
        assert_eq!(adder.call((1,))(2), 3);
        let spaced = gc_closure!([k] move | | **k);
        assert_eq!(spaced.call(()), 3);
        let trailing = gc_closure!([k,] move |x: i32,| x + **k);
        assert_eq!(trailing.call((1,)), 4);
        let (captures, captures_of, function, arguments) = (
            Gc::new(1i32),
            Gc::new(10i32),
            Gc::new(100i32),
            Gc::new(1000i32),
        );
        let named = gc_closure!([captures, captures_of, function, arguments] move || {
            **captures + **captures_of + **function + **arguments
        });
        assert_eq!(named.call(()), 1111);
        let as_arguments = gc_closure!([k] move |captures: i32, function, arguments: i32| {
            captures + function + arguments + **k
        });
        assert_eq!(as_arguments.call((1, 10, 100)), 114);
        {
            let captures = 7;
            let user = gc_closure!([k] move || captures + **k);
            assert_eq!(user.call(()), 10);
        }
        drop((
            plus_one, sizes, apply, early, parse, unwrap, adder, spaced, trailing,
        ));
        drop((named, as_arguments));
        assert_eq!(Gc::strong_count(&k), 1, "every capture released");
    }

    /// A body that keeps a borrowed argument past the call: `|s: &str|`
    /// no longer compiles (the argument is higher-ranked; the crate docs
    /// hold it as a `compile_fail` example), and the two forms the docs
    /// give instead, `&'static str` written out or no type, keep what
    /// they are given.
    #[test]
    fn a_kept_borrowed_argument_names_its_lifetime() {
        let log: Gc<RefCell<Vec<&'static str>>> = Gc::new(RefCell::new(Vec::new()));
        let typed = gc_closure!([log] move |s: &'static str| log.borrow_mut().push(s));
        let untyped = gc_closure!([log] move |s| log.borrow_mut().push(s));
        typed.call(("typed",));
        untyped.call(("untyped",));
        assert_eq!(*log.borrow(), ["typed", "untyped"]);
        drop((typed, untyped));
        assert_eq!(Gc::strong_count(&log), 1);
    }

    fn set_of<T: ?Sized + Trace>(members: &[&Gc<T>]) -> WeakSet<T> {
        members.iter().map(|m| (*m).clone()).collect()
    }

    /// A set against itself: `==`, subset and superset hold, `is_disjoint`
    /// holds only when it has no live member (Python's), `|` and `&` give
    /// its live members, `-` and `^` none; also once members died. No
    /// operation keeps a member alive: each dies by count at its drop.
    #[test]
    fn a_weak_set_against_itself() {
        crate::support::take_drops();
        let mut members = vec![Gc::new(DropLog(1)), Gc::new(DropLog(2))];
        let set = set_of(&[&members[0], &members[1]]);
        for live in [2, 1, 0] {
            assert_eq!(set.len(), live);
            assert!(set == set && set.is_subset(&set) && set.is_superset(&set));
            assert_eq!(set.is_disjoint(&set), live == 0);
            assert_eq!(((&set | &set).len(), (&set & &set).len()), (live, live));
            assert_eq!(((&set - &set).len(), (&set ^ &set).len()), (0, 0));
            assert_eq!(set.union(&set).count(), live);
            assert_eq!(set.symmetric_difference(&set).count(), 0);
            if let Some(member) = members.pop() {
                let id = member.0;
                drop(member);
                assert_eq!(crate::support::take_drops(), [id]);
            }
        }
    }

    /// The members of a union die as it is walked: each handle the walk
    /// gave is the only one left when the body drops it, so the member
    /// dies there, and the members that died before their turn are
    /// skipped (the iterator hands out no handle to a dead object).
    #[test]
    fn members_die_while_a_union_is_walked() {
        crate::support::take_drops();
        let left_members: Vec<_> = (1..=3).map(|i| Gc::new(DropLog(i))).collect();
        let right_members: Vec<_> = (4..=6).map(|i| Gc::new(DropLog(i))).collect();
        let left = left_members.iter().cloned().collect::<WeakSet<_>>();
        let right = right_members.iter().cloned().collect::<WeakSet<_>>();
        let mut owners: Vec<Option<Gc<DropLog>>> = left_members
            .into_iter()
            .chain(right_members)
            .map(Some)
            .collect();
        let mut seen = Vec::new();
        for member in left.union(&right) {
            let id = member.0;
            seen.push(id);
            // Its owner goes, then the walk's handle: it dies here.
            owners[id as usize - 1] = None;
            drop(member);
            assert_eq!(crate::support::take_drops(), [id]);
            // And one member not reached yet, if any, dies before its turn.
            if let Some(other) = owners.iter_mut().rev().find(|o| o.is_some()) {
                let other_id = other.as_ref().map(|o| o.0);
                *other = None;
                assert_eq!(crate::support::take_drops(), [other_id.unwrap()]);
            }
        }
        assert_eq!(seen.len(), 3, "every other member died before its turn");
        assert!(left.is_empty() && right.is_empty());
    }

    /// Sets of trait objects and of slices compare and combine by
    /// identity, as sets of sized members do: equal values are still
    /// other members.
    #[test]
    fn sets_of_unsized_members() {
        trait Shape: Trace {}
        impl Shape for DropLog {}
        let a: Gc<dyn Shape> = gc_coerce!(Gc::new(DropLog(1)) => dyn Shape);
        let b: Gc<dyn Shape> = gc_coerce!(Gc::new(DropLog(1)) => dyn Shape);
        let (ab, b_only) = (set_of(&[&a, &b]), set_of(&[&b]));
        assert!(b_only.is_subset(&ab) && ab != b_only);
        let rest = &ab - &b_only;
        assert!(rest.len() == 1 && rest.contains(&a) && !rest.contains(&b));
        let s: Gc<[u8]> = Gc::from(vec![1, 2]);
        let t: Gc<[u8]> = Gc::from(vec![1, 2]);
        let (st, t_only) = (set_of(&[&s, &t]), set_of(&[&t]));
        assert_eq!(
            (&st ^ &t_only).iter().next().map(|m| Gc::ptr_eq(&m, &s)),
            Some(true)
        );
        drop(s);
        assert!(st == t_only);
        let text: Gc<str> = Gc::from("same");
        let other: Gc<str> = Gc::from("same");
        assert!(set_of(&[&text]).is_disjoint(&set_of(&[&other])));
        crate::support::take_drops();
    }

    /// `remove_entry` and `weak_values` on a value that another entry
    /// shares: removing one entry leaves the other's `Weak` upgrading,
    /// and neither keeps the value alive.
    #[test]
    fn remove_entry_of_a_shared_value() {
        crate::support::take_drops();
        let v = Gc::new(DropLog(5));
        let mut map = WeakValueMap::new();
        map.insert(String::from("a"), &v);
        map.insert(String::from("b"), &v);
        let refs: Vec<_> = map.weak_values().collect();
        let (key, value) = map.remove_entry("a").expect("alive");
        assert_eq!(key, "a");
        assert!(Gc::ptr_eq(&value, &v));
        assert_eq!((map.len(), refs.len()), (1, 2));
        drop((value, v));
        assert_eq!(crate::support::take_drops(), [5]);
        assert!(refs.iter().all(|r| r.upgrade().is_none()));
        assert!(map.remove_entry("b").is_none());
        assert!(map.is_empty());
    }
}

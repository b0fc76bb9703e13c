//! What a review of the type facts that `Trace` impls give the collector
//! checked (`__may_own_gc`, `__edges_fixed`, `__drop_only_releases_gcs`,
//! `__has_finalizer`), for the impls of std types (`trace_impls.rs`), the
//! weak containers, `GcClosure` and the `unsafe_trace_*` macros.
//! The collector trusts each answer to skip work: an untracked object dies
//! without the trashcan and is never analysed, an object with fixed edges
//! that owns only untracked or acyclic objects is never analysed, garbage
//! whose types all say their drop only releases `Gc`s is freed without its
//! drops. Each answer is observed through what it decides: which drops run,
//! what a collection finds, what a weak reference or count says after it,
//! and (under Miri) that no memory is left behind.
//!
//! It found one kind of wrong answer, `__may_own_gc` = `false` for types
//! that do own a `Gc` (`Rc<Gc<_>>`, `Arc<Gc<_>>`, a `HashMap` or `HashSet`
//! whose hasher holds one): their holders were untracked, so a list of
//! `Gc` nodes linked through them died recursively, and a long one
//! overflowed the stack.
#![allow(dead_code)]

mod support;

use std::cell::{Cell, OnceCell, RefCell};
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, DefaultHasher};
use std::mem::ManuallyDrop;
use std::num::Wrapping;
use std::rc::Rc;
use std::sync::Arc;

use gcptr::{Finalize, Gc, GcClosure, GcFn, Trace, Weak, WeakKeyMap, WeakSet, WeakValueMap};
use support::{fixed, may_own, on_small_stack, releases, runs_here};

thread_local!(static DROPPED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) });

/// The ids dropped since the last call, sorted.
fn dropped() -> Vec<u32> {
    let mut ids = DROPPED.with(|d| std::mem::take(&mut *d.borrow_mut()));
    ids.sort_unstable();
    ids
}

/// A derived type with a `Drop` impl of its own: it answers `false` to
/// `__drop_only_releases_gcs` (the derive's probe), and every wrapper that
/// holds one must pass that on.
#[derive(Trace, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Loud(u32);

impl Drop for Loud {
    fn drop(&mut self) {
        let _ = DROPPED.try_with(|d| d.borrow_mut().push(self.0));
    }
}

/// A node of a two-object cycle that carries a payload.
#[derive(Trace)]
struct Carrier<P: 'static> {
    next: RefCell<Option<Gc<Carrier<P>>>>,
    payload: P,
}

/// Makes `a -> b -> a` with payloads `pa` and `pb`, drops both, and
/// returns what `collect()` found.
fn collect_pair<P: Trace + 'static>(pa: P, pb: P) -> usize {
    let a = Gc::new(Carrier {
        next: RefCell::new(None),
        payload: pa,
    });
    let b = Gc::new(Carrier {
        next: RefCell::new(Some(a.clone())),
        payload: pb,
    });
    *a.next.borrow_mut() = Some(b);
    drop(a);
    gcptr::collect()
}

// ---------------------------------------------------------------------
// `__may_own_gc`: a type that owns a `Gc` where the collector cannot see it.

/// A list node linked through an `Rc`, whose contents are not traced.
#[derive(Trace)]
struct RcLink {
    next: Option<Rc<Gc<RcLink>>>,
    log: Loud,
}

/// The same through an `Arc`.
#[derive(Trace)]
struct ArcLink {
    next: Option<Arc<Gc<ArcLink>>>,
    log: Loud,
}

/// `Rc<T>` and `Arc<T>` are not traced (their value has owners the
/// collector cannot see), but they may own a `Gc`: a holder of one is
/// tracked and acyclic (never analysed), so that a list of `Gc` nodes
/// linked through them dies under the trashcan. They answered `false`,
/// which left the nodes untracked: dropping the list's head recursed once
/// per node, and the 200,000 nodes here overflowed a 256 KiB stack. An
/// `Rc` of plain data answers `true` as well since `change_review.rs`
/// (its holder is acyclic all the same).
#[test]
// An `Arc` of a `Gc` is what the test is about (`Arc<T>` is `Trace` for
// any `T`), though it cannot cross threads.
#[allow(clippy::arc_with_non_send_sync)]
fn a_list_linked_through_rc_and_arc_handles_drops_under_the_trashcan() {
    // A stack overflow aborts: in a child process.
    if !runs_here("a_list_linked_through_rc_and_arc_handles_drops_under_the_trashcan") {
        return;
    }
    let n = support::scaled(200_000) as u32;
    let counts = on_small_stack(move || {
        let mut head = Gc::new(RcLink {
            next: None,
            log: Loud(0),
        });
        assert!(!gcptr::is_tracked(&head), "acyclic: never analysed");
        for id in 1..n {
            head = Gc::new(RcLink {
                next: Some(Rc::new(head)),
                log: Loud(id),
            });
        }
        let before = gcptr::count()[0];
        drop(head);
        let rc_dropped = dropped().len();
        let mut head = Gc::new(ArcLink {
            next: None,
            log: Loud(0),
        });
        for id in 1..n {
            head = Gc::new(ArcLink {
                next: Some(Arc::new(head)),
                log: Loud(id),
            });
        }
        drop(head);
        (before, rc_dropped, dropped().len())
    });
    assert_eq!(counts, (0, n as usize, n as usize));
    assert!(may_own::<Rc<Gc<u8>>>() && fixed::<Rc<Gc<u8>>>());
    assert!(may_own::<Arc<RefCell<Option<Gc<u8>>>>>() && fixed::<Arc<Gc<u8>>>());
    // An `Rc` of plain data may own a `Gc` too (an `Rc<ManuallyDrop<Gc<_>>>`
    // has no drop glue either: `change_review.rs`); its holder is acyclic.
    assert!(may_own::<Rc<u64>>() && fixed::<Arc<str>>());
    assert!(!gcptr::is_tracked(&Gc::new(Rc::new(0u64))));
    assert!(!releases::<Rc<u64>>(), "its drop frees the Rc's memory");
}

/// A hasher that holds a `Gc` (a per-table salt, say).
#[derive(Clone)]
struct SaltedState(Gc<u64>);

impl BuildHasher for SaltedState {
    type Hasher = DefaultHasher;
    fn build_hasher(&self) -> DefaultHasher {
        DefaultHasher::new()
    }
}

/// A list node linked through a hash table's hasher.
#[derive(Trace)]
struct HashLink {
    table: HashMap<u32, u32, LinkState>,
    set: HashSet<u32, LinkState>,
    log: Loud,
}

struct LinkState(Option<Gc<HashLink>>);

impl BuildHasher for LinkState {
    type Hasher = DefaultHasher;
    fn build_hasher(&self) -> DefaultHasher {
        DefaultHasher::new()
    }
}

/// `HashMap<K, V, S>` and `HashSet<T, S>` do not trace their hasher `S`,
/// which need not implement `Trace`, but a hasher with drop glue may own a
/// `Gc`: its holder is tracked and acyclic, so that a list linked through
/// hashers dies under the trashcan. They answered from `K` and `V` alone:
/// `false`, and the list's drop overflowed the stack. `RandomState` has no
/// drop glue: such tables of plain data stay untracked.
#[test]
fn a_list_linked_through_hashers_drops_under_the_trashcan() {
    if !runs_here("a_list_linked_through_hashers_drops_under_the_trashcan") {
        return;
    }
    let n = support::scaled(200_000) as u32;
    let dropped_count = on_small_stack(move || {
        let mut head: Option<Gc<HashLink>> = None;
        for id in 0..n {
            let link = Gc::new(HashLink {
                table: HashMap::with_hasher(LinkState(head.take())),
                set: HashSet::with_hasher(LinkState(None)),
                log: Loud(id),
            });
            assert!(!gcptr::is_tracked(&link));
            head = Some(link);
        }
        drop(head);
        dropped().len()
    });
    assert_eq!(dropped_count, n as usize);
    assert!(may_own::<HashMap<u32, u32, SaltedState>>());
    assert!(may_own::<HashSet<u32, SaltedState>>());
    assert!(fixed::<HashMap<u32, u32, SaltedState>>());
    assert!(!may_own::<HashMap<u32, String>>() && !may_own::<HashSet<u64>>());
    assert!(!gcptr::is_tracked(&Gc::new(HashMap::<u32, u32>::new())));
}

/// A cycle closed through an `Rc` is invisible to the collector: it
/// leaks (the documented limit of untraced containers), and no object of
/// it is freed while the `Rc` holds it. Its holder is acyclic, never
/// analysed, and `count()` never counted it.
#[test]
fn a_cycle_through_an_rc_is_never_freed_early() {
    #[derive(Trace)]
    struct Hidden {
        back: Rc<RefCell<Option<Gc<Hidden>>>>,
        log: Loud,
    }
    let cell = Rc::new(RefCell::new(None));
    let before = gcptr::count()[0];
    let a = Gc::new(Hidden {
        back: cell.clone(),
        log: Loud(1),
    });
    assert!(!gcptr::is_tracked(&a));
    assert_eq!(gcptr::count()[0], before);
    *cell.borrow_mut() = Some(a.clone());
    let weak = Gc::downgrade(&a);
    drop(a);
    assert_eq!(gcptr::collect(), 0);
    assert_eq!(weak.upgrade().unwrap().log.0, 1, "held through the Rc");
    assert!(dropped().is_empty());
    // Broken by hand, it dies by count.
    let taken = cell.borrow_mut().take();
    drop(taken);
    assert!(weak.upgrade().is_none());
    assert_eq!(dropped(), [1]);
}

/// The weak handles own no `Gc`: their holders are untracked (a `Weak`'s
/// drop lowers a weak count, never runs a value's drop, so nothing
/// recurses), except `WeakWithCallback`, whose holder is tracked so that
/// garbage cancels its callback. A weak map is as tracked as its strong
/// side: `WeakValueMap`'s keys, `WeakKeyMap`'s values.
#[test]
fn weak_handles_and_containers_answer_for_their_strong_side_only() {
    assert!(!may_own::<Weak<RefCell<Option<Gc<u8>>>>>());
    assert!(!may_own::<WeakSet<u8>>());
    assert!(!may_own::<WeakKeyMap<u8, u32>>() && may_own::<WeakKeyMap<u8, Gc<u8>>>());
    assert!(!may_own::<WeakValueMap<u32, u8>>() && may_own::<WeakValueMap<Gc<u8>, u8>>());
    assert!(may_own::<gcptr::WeakWithCallback<u8>>());
    assert!(!fixed::<gcptr::WeakWithCallback<u8>>());
    for answer in [
        releases::<Weak<u8>>(),
        releases::<WeakSet<u8>>(),
        releases::<WeakKeyMap<u8, Gc<u8>>>(),
        releases::<WeakValueMap<Gc<u8>, u8>>(),
    ] {
        assert!(!answer, "their drops free memory and lower weak counts");
    }
    let target = Gc::new(5u8);
    let mut set = WeakSet::new();
    set.insert(&target);
    let holder = Gc::new((Gc::downgrade(&target), set));
    assert!(!gcptr::is_tracked(&holder));
    assert_eq!(Gc::weak_count(&target), 2);
    drop(holder);
    assert_eq!(Gc::weak_count(&target), 0);
}

// ---------------------------------------------------------------------
// `__drop_only_releases_gcs`: a drop that does more is never skipped.

/// Every wrapper that owns a value with a `Drop` passes on `false`, and a
/// garbage cycle whose objects hold one in it runs each drop once: `Option`,
/// `Result`, arrays, tuples, `RefCell`, `Wrapping`, `Reverse`, `Range`,
/// `GcClosure`'s captures, and the containers that answer `false` for
/// themselves (`Vec`, `VecDeque`, `Box`, `Rc`, maps), or pass on their
/// contents' (`OnceCell`).
#[test]
fn a_drop_nested_in_any_wrapper_runs_when_its_cycle_is_collected() {
    macro_rules! case {
        ($ty:ty, $make:expr) => {{
            let make: fn(u32) -> $ty = $make;
            assert!(!releases::<$ty>(), "{}", stringify!($ty));
            assert_eq!(collect_pair(make(1), make(2)), 2, "{}", stringify!($ty));
            assert_eq!(dropped(), [1, 2], "{}", stringify!($ty));
        }};
    }
    assert!(!releases::<Loud>(), "a type with a Drop impl of its own");
    case!(Loud, Loud);
    case!(Option<Loud>, |id| Some(Loud(id)));
    case!(Result<Gc<u8>, Loud>, |id| Err(Loud(id)));
    case!(Result<Loud, ()>, |id| Ok(Loud(id)));
    case!([Option<Loud>; 2], |id| [None, Some(Loud(id))]);
    case!((u8, Gc<u8>, Loud), |id| (0, Gc::new(0), Loud(id)));
    case!(RefCell<Loud>, |id| RefCell::new(Loud(id)));
    case!(Wrapping<Loud>, |id| Wrapping(Loud(id)));
    case!(Reverse<Loud>, |id| Reverse(Loud(id)));
    case!(std::ops::Range<Option<Loud>>, |id| None..Some(Loud(id)));
    case!(GcClosure<(Loud,), fn(&(Loud,), ())>, |id| {
        GcClosure::new((Loud(id),), (|_, ()| ()) as fn(&(Loud,), ()))
    });
    case!(Vec<Loud>, |id| vec![Loud(id)]);
    case!(VecDeque<Loud>, |id| VecDeque::from([Loud(id)]));
    case!(Box<Loud>, |id| Box::new(Loud(id)));
    case!(OnceCell<Loud>, |id| OnceCell::from(Loud(id)));
    case!(Rc<Loud>, |id| Rc::new(Loud(id)));
    case!(HashMap<Loud, ()>, |id| HashMap::from([(Loud(id), ())]));
    case!(BTreeMap<u8, Loud>, |id| BTreeMap::from([(0, Loud(id))]));
}

/// `String`, `Vec` and `Box` free memory when dropped, and `Weak` lowers a
/// weak count (which frees a dead object's memory): all answer `false`,
/// alone and wrapped, and garbage holding them gives back what they held.
/// The weak counts show it here; Miri's leak check shows the memory.
#[test]
fn garbage_holding_memory_or_weak_references_gives_them_back() {
    assert!(!releases::<String>() && !releases::<Option<String>>());
    assert!(!releases::<(Gc<u8>, Box<u8>)>() && !releases::<[Vec<u8>; 1]>());
    assert!(!releases::<RefCell<Option<Weak<u8>>>>());
    let target = Gc::new(7u8);
    let make = |s: &str| (s.to_string(), RefCell::new(Some(Gc::downgrade(&target))));
    assert_eq!(collect_pair(make("a"), make("b")), 2);
    assert_eq!(
        Gc::weak_count(&target),
        0,
        "the garbage's Weaks were dropped"
    );
    // A dead object that only the garbage's `Weak` kept allocated.
    let dead = Gc::new(3u32);
    let (first, second) = (Some(Gc::downgrade(&dead)), Some(Gc::downgrade(&dead)));
    drop(dead);
    assert_eq!(collect_pair(first, second), 2);
}

/// The leaves, `Gc`, and the wrappers of nothing else answer `true`: plain
/// data without drop glue, `Cell` of `Copy` data, `&'static`, function
/// pointers, `PhantomData`, and `Option`, `Result`, arrays, tuples,
/// `RefCell`, `OnceCell`, `Wrapping`, `Reverse`, `Range`, `ManuallyDrop`
/// and `GcClosure` of them. A ring of such nodes is freed without its drops:
/// its weak references fail, and Miri sees no memory left behind.
#[test]
fn garbage_of_plain_data_and_gcs_is_freed_without_drops() {
    type Plain = (
        Wrapping<u8>,
        Reverse<[Option<char>; 2]>,
        std::ops::Range<u32>,
        Result<(), bool>,
        Cell<u64>,
        &'static str,
        fn(u8) -> u8,
        std::marker::PhantomData<String>,
    );
    type Edges = (
        Option<Gc<Ring>>,
        [Option<Gc<Ring>>; 2],
        ManuallyDrop<Option<Gc<u8>>>,
        GcClosure<(Option<Gc<Ring>>,), fn(&(Option<Gc<Ring>>,), ())>,
        OnceCell<Gc<Ring>>,
    );
    #[derive(Trace)]
    struct Ring {
        plain: Plain,
        edges: RefCell<Edges>,
    }
    assert!(releases::<Plain>() && releases::<Edges>() && releases::<Ring>());
    let plain = || -> Plain {
        (
            Wrapping(1),
            Reverse([None, Some('x')]),
            0..1,
            Ok(()),
            Cell::new(2),
            "static",
            |x| x,
            std::marker::PhantomData,
        )
    };
    let no_call: fn(&(Option<Gc<Ring>>,), ()) = |_, ()| ();
    let nodes: Vec<Gc<Ring>> = (0..3)
        .map(|_| {
            Gc::new(Ring {
                plain: plain(),
                edges: RefCell::new((
                    None,
                    [None, None],
                    ManuallyDrop::new(None),
                    GcClosure::new((None,), no_call),
                    OnceCell::new(),
                )),
            })
        })
        .collect();
    // Each node reaches the next through every kind of edge.
    for (i, node) in nodes.iter().enumerate() {
        let next = || Some(nodes[(i + 1) % 3].clone());
        *node.edges.borrow_mut() = (
            next(),
            [next(), None],
            ManuallyDrop::new(None),
            GcClosure::new((next(),), no_call),
            OnceCell::from(next().unwrap()),
        );
    }
    assert_eq!(gcptr::referents(&*nodes[0]).len(), 4);
    let weaks: Vec<Weak<Ring>> = nodes.iter().map(Gc::downgrade).collect();
    drop(nodes);
    assert_eq!(gcptr::collect(), 3);
    assert!(weaks.iter().all(|w| w.upgrade().is_none()));
}

/// A node whose only edge is a `ManuallyDrop<Gc>`: dropping it never
/// releases the `Gc`.
#[derive(Trace)]
struct Forgetful {
    next: RefCell<Option<ManuallyDrop<Gc<Forgetful>>>>,
}

/// `ManuallyDrop<Gc<_>>` answers `true` (its drop releases a subset of
/// what its trace shows: none), and a garbage ring closed through such
/// edges is freed whole, without drops: the drops would have left every
/// count at one and the memory allocated. Miri's leak check sees that.
#[test]
fn a_ring_closed_through_manually_drop_handles_is_freed() {
    assert!(releases::<Forgetful>());
    let nodes: Vec<Gc<Forgetful>> = (0..3)
        .map(|_| {
            Gc::new(Forgetful {
                next: RefCell::new(None),
            })
        })
        .collect();
    for (i, node) in nodes.iter().enumerate() {
        *node.next.borrow_mut() = Some(ManuallyDrop::new(nodes[(i + 1) % 3].clone()));
    }
    let weaks: Vec<Weak<Forgetful>> = nodes.iter().map(Gc::downgrade).collect();
    drop(nodes);
    assert_eq!(gcptr::collect(), 3);
    assert!(weaks
        .iter()
        .all(|w| w.upgrade().is_none() && w.strong_count() == 0));
}

thread_local!(static FINALIZED: Cell<u32> = const { Cell::new(0) });

/// A type with a finalizer whose drop does nothing but drop `Gc`s.
#[derive(Trace)]
#[gc(finalize)]
struct Finalized {
    next: RefCell<Option<Gc<Finalized>>>,
}

impl Finalize for Finalized {
    fn finalize(&self) {
        FINALIZED.with(|n| n.set(n.get() + 1));
    }
}

/// A finalizer is not a drop: `Finalized` answers `true` to
/// `__drop_only_releases_gcs` and `true` to `__has_finalizer`, and its
/// garbage is finalized all the same (a pending finalizer keeps the set
/// off the path without drops), once per object, by count and in a cycle.
/// A wrapper does not pass the finalizer on: the value held in it is
/// dropped, not finalized (`Finalize`'s docs).
#[test]
fn a_finalizer_runs_although_the_drop_only_releases_gcs() {
    assert!(releases::<Finalized>());
    assert!(<Finalized as Trace>::__has_finalizer());
    assert!(!<Option<Finalized> as Trace>::__has_finalizer());
    assert!(!<(Finalized,) as Trace>::__has_finalizer());
    let a = Gc::new(Finalized {
        next: RefCell::new(None),
    });
    let b = Gc::new(Finalized {
        next: RefCell::new(Some(a.clone())),
    });
    *a.next.borrow_mut() = Some(b);
    let weak = Gc::downgrade(&a);
    drop(a);
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(FINALIZED.with(Cell::get), 2);
    assert!(weak.upgrade().is_none());
    drop(Gc::new(Finalized {
        next: RefCell::new(None),
    }));
    assert_eq!(FINALIZED.with(Cell::get), 3);
    drop(Gc::new((Finalized {
        next: RefCell::new(None),
    },)));
    assert_eq!(
        FINALIZED.with(Cell::get),
        3,
        "held in a tuple: dropped only"
    );
}

/// A generic type's answer follows its parameter: `Carrier<u32>` drops
/// only `Gc`s, `Carrier<String>` and `Carrier<Loud>` do more, and each is
/// collected with exactly its drops.
#[test]
fn a_generic_answer_follows_the_parameter() {
    assert!(releases::<Carrier<u32>>());
    assert!(releases::<Carrier<Option<Gc<u8>>>>());
    assert!(!releases::<Carrier<String>>());
    assert!(!releases::<Carrier<Loud>>());
    assert_eq!(collect_pair(1u32, 2u32), 2);
    assert_eq!(collect_pair(String::from("a"), String::from("b")), 2);
    assert_eq!(collect_pair(Loud(5), Loud(6)), 2);
    assert_eq!(dropped(), [5, 6]);
}

// ---------------------------------------------------------------------
// `__edges_fixed`: interior mutability anywhere keeps an object tracked.

trait Shape: Trace {
    fn link(&self, to: Gc<Boxed>);
}

/// An object whose payload is a `Box<dyn Shape>`.
type Boxed = Carrier<Box<dyn Shape>>;

#[derive(Trace)]
struct Mutable {
    next: RefCell<Option<Gc<Boxed>>>,
    log: Loud,
}

impl Shape for Mutable {
    fn link(&self, to: Gc<Boxed>) {
        *self.next.borrow_mut() = Some(to);
    }
}

/// Interior mutability around a `Gc` anywhere in a type, directly or
/// through a parameter, a `Box<dyn Trait>`, an `OnceCell` or a closure's
/// captures, makes its edges unfixed, and its objects tracked; a value
/// whose edges are fixed and that owns only untracked objects is acyclic
/// (`is_tracked` is `false`), also with a `Cell` of plain data and a
/// `RefCell<Weak<_>>` in it (neither can come to hold a `Gc`).
#[test]
fn interior_mutability_anywhere_keeps_an_object_tracked() {
    fn tracked<T: Trace + 'static>(value: T) -> bool {
        gcptr::is_tracked(&Gc::new(value))
    }
    let plain = || Gc::new(1u8);
    let mutable = || Gc::new(RefCell::new(Option::<Gc<u8>>::None));
    // Fixed, over untracked objects: acyclic.
    assert!(!tracked((
        plain(),
        Cell::new(3u32),
        RefCell::new(Weak::<u8>::new())
    )));
    assert!(!tracked(vec![Some(plain())]));
    assert!(!tracked(GcClosure::new((plain(),), |_: &(Gc<u8>,), ()| ())));
    assert!(!tracked(Rc::new(RefCell::new(Some(plain())))));
    // Fixed, over a tracked object: tracked.
    assert!(tracked((mutable(),)));
    assert!(tracked(GcClosure::new((mutable(),), |_: &(Gc<_>,), ()| ())));
    // Not fixed.
    assert!(!fixed::<Option<RefCell<Option<Gc<u8>>>>>());
    assert!(tracked(Some(RefCell::new(Some(plain())))));
    assert!(tracked([OnceCell::from(plain())]));
    assert!(tracked(vec![RefCell::new(Some(plain()))]));
    assert!(tracked(HashMap::from([(0u8, RefCell::new(plain()))])));
    let capture = (RefCell::new(Some(plain())),);
    assert!(tracked(GcClosure::new(capture, |_: &(RefCell<_>,), ()| ())));
    // `Box<T>` cannot ask its pointee (it may be unsized), only whether it
    // has drop glue: it always may own a `Gc` (a `ManuallyDrop<Gc<_>>` has
    // no drop glue: `change_review.rs`), its edges are fixed when the
    // pointee has no drop glue, and a box of plain data is acyclic.
    assert!(may_own::<Box<String>>() && !fixed::<Box<String>>());
    assert!(may_own::<Box<u64>>() && fixed::<Box<u64>>());
    assert!(fixed::<Box<str>>() && fixed::<Box<[u8]>>());
    assert!(tracked(Box::new(plain())));
    assert!(!tracked(Box::new(0u64)));
    assert!(!tracked(Box::<[u8]>::from(&b"bytes"[..])));
    assert!(!tracked(Box::<str>::from("text")));
    let boxed: Box<dyn Shape> = Box::new(Mutable {
        next: RefCell::new(None),
        log: Loud(9),
    });
    assert!(tracked(boxed));
    assert_eq!(dropped(), [9]);
}

/// Cycles closed through the mutable shapes that the answers above keep
/// tracked are collected: an `OnceCell`, a `Box<dyn Trait>` whose
/// concrete type holds the `RefCell`, and a `GcClosure` stored as
/// `Box<dyn GcFn>` that captures its owner.
#[test]
fn cycles_through_once_cells_boxed_traits_and_closures_are_collected() {
    #[derive(Trace)]
    struct Once {
        me: OnceCell<Gc<Once>>,
        log: Loud,
    }
    let once = Gc::new(Once {
        me: OnceCell::new(),
        log: Loud(1),
    });
    assert!(gcptr::is_tracked(&once));
    once.me.set(once.clone()).ok().unwrap();
    drop(once);
    assert_eq!(gcptr::collect(), 1);
    assert_eq!(dropped(), [1]);

    let shape: Box<dyn Shape> = Box::new(Mutable {
        next: RefCell::new(None),
        log: Loud(2),
    });
    let outer = Gc::new(Carrier {
        next: RefCell::new(None),
        payload: shape,
    });
    assert!(gcptr::is_tracked(&outer));
    // `outer -> outer`, through the `RefCell` of the concrete type behind
    // the box: the only edge.
    outer.payload.link(outer.clone());
    assert_eq!(gcptr::referents(&*outer).len(), 1);
    drop(outer);
    assert_eq!(gcptr::collect(), 1);
    assert_eq!(dropped(), [2]);

    cycle_through_a_closure();
}

/// A button whose handler captures the button (`closure.rs`'s example, with
/// drops counted).
fn cycle_through_a_closure() {
    #[derive(Trace)]
    struct Button {
        on_click: RefCell<Option<Box<dyn GcFn>>>,
        log: Loud,
    }
    let button = Gc::new(Button {
        on_click: RefCell::new(None),
        log: Loud(4),
    });
    let handler = gcptr::gc_closure!([button] move || assert_eq!(button.log.0, 4));
    *button.on_click.borrow_mut() = Some(Box::new(handler));
    button.on_click.borrow().as_ref().unwrap().call(());
    drop(button);
    assert_eq!(gcptr::collect(), 1);
    assert_eq!(dropped(), [4]);
}

// ---------------------------------------------------------------------
// Traces: every edge once.

/// A node with a deque, a map keyed by `Gc`, and a range of `Gc`s.
#[derive(Trace)]
struct Many {
    deque: RefCell<VecDeque<Gc<Many>>>,
    map: RefCell<HashMap<Gc<Many>, Gc<Many>>>,
    range: RefCell<Option<std::ops::Range<Gc<Many>>>>,
    id: u32,
    log: Loud,
}

impl PartialEq for Many {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}
impl Eq for Many {}
impl std::hash::Hash for Many {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

fn many(id: u32) -> Gc<Many> {
    Gc::new(Many {
        deque: RefCell::default(),
        map: RefCell::default(),
        range: RefCell::default(),
        id,
        log: Loud(id),
    })
}

/// A `VecDeque` whose contents wrap around its buffer, a `HashMap` whose
/// key and value are both `Gc`s (the same object for one entry), and a
/// `Range` whose ends are two handles of one object each show every edge
/// once: `referents` lists one entry per handle, a collection frees the
/// cycle they close and nothing the stack still holds, and the survivors'
/// counts are those of their handles.
#[test]
fn wrapped_deques_gc_keys_and_ranges_show_each_handle_once() {
    let live = many(100);
    let a = many(1);
    {
        let mut deque = a.deque.borrow_mut();
        // Wrap: pop from the front after filling, then push at the back.
        for _ in 0..deque.capacity().max(4) {
            deque.push_back(live.clone());
        }
        let capacity = deque.capacity();
        for _ in 0..capacity - 1 {
            deque.pop_front();
        }
        for _ in 0..capacity - 2 {
            deque.push_back(a.clone());
        }
        let (front, back) = deque.as_slices();
        assert!(!front.is_empty() && !back.is_empty(), "the deque wraps");
    }
    let deque_len = a.deque.borrow().len();
    a.map.borrow_mut().insert(a.clone(), a.clone());
    a.map.borrow_mut().insert(live.clone(), a.clone());
    *a.range.borrow_mut() = Some(a.clone()..live.clone());
    assert_eq!(gcptr::referents(&*a).len(), deque_len + 4 + 2);
    assert_eq!(Gc::strong_count(&live), 1 + 1 + 1 + 1);
    let weak = Gc::downgrade(&a);
    drop(a);
    assert_eq!(gcptr::collect(), 1);
    assert!(weak.upgrade().is_none());
    assert_eq!(dropped(), [1]);
    assert_eq!(Gc::strong_count(&live), 1, "only the stack's handle left");
    assert_eq!(live.log.0, 100);
}

/// Weak containers trace their strong side only: a cycle through a
/// `WeakValueMap`'s key or a `WeakKeyMap`'s value is collected, and the
/// weak side (a `WeakSet` member, a map's weak value) keeps nothing alive.
#[test]
fn cycles_through_the_strong_side_of_weak_maps_are_collected() {
    #[derive(Trace)]
    struct Registry {
        by_key: RefCell<WeakValueMap<Gc<u32>, Registry>>,
        keyed: RefCell<WeakKeyMap<u32, Gc<Registry>>>,
        members: RefCell<WeakSet<Registry>>,
        log: Loud,
    }
    let registry = || {
        Gc::new(Registry {
            by_key: RefCell::new(WeakValueMap::new()),
            keyed: RefCell::new(WeakKeyMap::new()),
            members: RefCell::new(WeakSet::new()),
            log: Loud(1),
        })
    };
    let r = registry();
    let key = Gc::new(7u32);
    // The weak sides: no edge.
    r.by_key.borrow_mut().insert(key.clone(), &r);
    r.members.borrow_mut().insert(&r);
    assert_eq!(gcptr::referents(&*r).len(), 1, "the WeakValueMap's key");
    // The strong side: `r -> r` through the `WeakKeyMap`'s value.
    r.keyed.borrow_mut().insert(&key, r.clone());
    assert_eq!(gcptr::referents(&*r).len(), 2);
    let weak = Gc::downgrade(&r);
    drop(r);
    assert_eq!(gcptr::collect(), 1);
    assert!(weak.upgrade().is_none());
    assert_eq!(dropped(), [1]);
    assert_eq!(Gc::strong_count(&key), 1, "the WeakValueMap's key went too");
}

// ---------------------------------------------------------------------
// Depth.

/// A type that contains itself through a `Vec`, with no `Gc` anywhere.
#[derive(Trace)]
struct Tree {
    kids: Vec<Tree>,
    log: Loud,
}

/// A type that may own a `Gc` only at the bottom of a mutual recursion.
#[derive(Trace)]
struct Even {
    odd: Vec<Odd>,
}
#[derive(Trace)]
struct Odd {
    even: Option<Box<Even>>,
    leaf: RefCell<Option<Gc<Even>>>,
}

/// A recursive type asks itself until the depth limit, where the answers
/// are the conservative ones (`__may_own_gc` `true`, `__edges_fixed`
/// `false`): a `Tree` of plain data is tracked, though it can own no `Gc`,
/// and still dies by count with every drop, and a collection finds nothing
/// in it. Its drop frees memory (`Vec`): `false`, asked without recursion.
/// A mutual recursion that reaches a `RefCell<Option<Gc>>` answers as it
/// must.
#[test]
fn recursive_types_answer_conservatively_at_the_depth_limit() {
    assert!(may_own::<Tree>() && !fixed::<Tree>() && !releases::<Tree>());
    assert!(may_own::<Even>() && may_own::<Odd>());
    assert!(!fixed::<Even>() && !fixed::<Odd>());
    let tree = Gc::new(Tree {
        kids: vec![
            Tree {
                kids: vec![],
                log: Loud(2),
            },
            Tree {
                kids: vec![Tree {
                    kids: vec![],
                    log: Loud(4),
                }],
                log: Loud(3),
            },
        ],
        log: Loud(1),
    });
    assert!(gcptr::is_tracked(&tree));
    assert_eq!(gcptr::collect(), 0);
    assert!(gcptr::referents(&*tree).is_empty());
    drop(tree);
    assert_eq!(dropped(), [1, 2, 3, 4]);
    // A cycle at the bottom of the mutual recursion.
    let even = Gc::new(Even {
        odd: vec![Odd {
            even: Some(Box::new(Even { odd: vec![] })),
            leaf: RefCell::new(None),
        }],
    });
    *even.odd[0].leaf.borrow_mut() = Some(even.clone());
    drop(even);
    assert_eq!(gcptr::collect(), 1);
}

// ---------------------------------------------------------------------
// The `unsafe_trace_*` macros.

mod foreign {
    pub struct Plain(pub u64);
    pub struct Noisy(pub u32);
    impl Drop for Noisy {
        fn drop(&mut self) {
            let _ = super::DROPPED.try_with(|d| d.borrow_mut().push(self.0));
        }
    }
    pub struct Tagged<T> {
        pub label: String,
        pub value: T,
        pub more: Vec<Tagged<T>>,
    }
}

// SAFETY: plain data, and a type whose `Drop` touches a thread-local only.
gcptr::unsafe_trace_leaf!(foreign::Plain, foreign::Noisy);
// SAFETY: `label` is a `String`, which owns no `Gc`.
gcptr::unsafe_trace_fields!(impl<T> foreign::Tagged<T> { value, more });

/// `unsafe_trace_leaf!` answers `__drop_only_releases_gcs` by the type's
/// drop glue (a `Drop` impl makes it `false`), and `unsafe_trace_fields!`
/// keeps the default `false` (an unlisted field may have drop glue): the
/// drops of both run when garbage holding them is collected. A type that
/// contains itself through a listed field asks itself up to the depth
/// limit, and answers conservatively.
#[test]
fn the_macros_answer_for_drops_and_recursion() {
    assert!(releases::<foreign::Plain>() && !may_own::<foreign::Plain>());
    assert!(!releases::<foreign::Noisy>() && !may_own::<foreign::Noisy>());
    assert!(!releases::<foreign::Tagged<u8>>());
    assert!(may_own::<foreign::Tagged<u8>>() && !fixed::<foreign::Tagged<u8>>());
    let tagged = |id| foreign::Tagged {
        label: format!("tag {id}"),
        value: (foreign::Plain(0), foreign::Noisy(id)),
        more: vec![foreign::Tagged {
            label: String::from("inner"),
            value: (foreign::Plain(1), foreign::Noisy(10 + id)),
            more: Vec::new(),
        }],
    };
    assert_eq!(collect_pair(tagged(1), tagged(2)), 2);
    assert_eq!(dropped(), [1, 2, 11, 12]);
    // A cycle through the listed field, under the recursion.
    #[derive(Trace)]
    struct Slot(RefCell<Option<Gc<foreign::Tagged<Slot>>>>);
    let node = Gc::new(foreign::Tagged {
        label: String::from("outer"),
        value: Slot(RefCell::new(None)),
        more: vec![foreign::Tagged {
            label: String::from("inner"),
            value: Slot(RefCell::new(None)),
            more: Vec::new(),
        }],
    });
    let weak = Gc::downgrade(&node);
    *node.more[0].value.0.borrow_mut() = Some(node.clone());
    drop(node);
    assert_eq!(gcptr::collect(), 1);
    assert!(weak.upgrade().is_none());
}

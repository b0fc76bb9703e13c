//! `#[derive(Trace)]` and the `unsafe_trace_*` macros: what the generated
//! code visits (through `gcptr::referents`), what it tells the collector
//! (`__may_own_gc`, `count`), and that derived types in cycles are collected.

#![allow(dead_code)] // fields exist to be traced, not read

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;

use gcptr::{Finalize, Gc, Trace};

/// The address `referents` reports for `gc`.
fn addr<T: ?Sized>(gc: &Gc<T>) -> *const () {
    Gc::as_ptr(gc).cast::<()>()
}

fn may_own_gc<T: Trace>() -> bool {
    <T as Trace>::__may_own_gc(0)
}

/// A type without a `Trace` impl, for skipped fields.
struct NotTrace(u32);

// ---------------------------------------------------------------- shapes ---

#[derive(Trace)]
struct Named {
    first: Gc<u32>,
    number: u64,
    second: Gc<u32>,
    list: Vec<Gc<u32>>,
}

#[test]
fn named_struct_visits_every_gc_field_in_declaration_order() {
    let (a, b, c, d) = (Gc::new(1), Gc::new(2), Gc::new(3), Gc::new(4));
    let value = Named {
        first: a.clone(),
        number: 9,
        second: b.clone(),
        list: vec![c.clone(), d.clone()],
    };
    assert_eq!(
        gcptr::referents(&value),
        [addr(&a), addr(&b), addr(&c), addr(&d)]
    );
}

#[derive(Trace)]
struct Tuple(Gc<u32>, String, Option<Gc<u32>>);

#[test]
fn tuple_struct_visits_its_fields_by_position() {
    let (a, b) = (Gc::new(1), Gc::new(2));
    assert_eq!(
        gcptr::referents(&Tuple(a.clone(), "x".into(), Some(b.clone()))),
        [addr(&a), addr(&b)]
    );
    assert_eq!(
        gcptr::referents(&Tuple(a.clone(), "x".into(), None)),
        [addr(&a)]
    );
}

#[derive(Trace)]
struct Unit;

#[derive(Trace)]
struct EmptyBraces {}

#[test]
fn unit_struct_visits_nothing_and_owns_no_gc() {
    assert!(gcptr::referents(&Unit).is_empty());
    assert!(gcptr::referents(&EmptyBraces {}).is_empty());
    assert!(!may_own_gc::<Unit>());
    assert!(!may_own_gc::<EmptyBraces>());
}

#[derive(Trace)]
enum Shape {
    Empty,
    Pair(Gc<u32>, Gc<u32>),
    Labelled { label: String, target: Gc<u32> },
}

#[test]
fn enum_visits_the_fields_of_the_variant_it_holds() {
    let (a, b) = (Gc::new(1), Gc::new(2));
    assert!(gcptr::referents(&Shape::Empty).is_empty());
    assert_eq!(
        gcptr::referents(&Shape::Pair(b.clone(), a.clone())),
        [addr(&b), addr(&a)]
    );
    let labelled = Shape::Labelled {
        label: "l".into(),
        target: a.clone(),
    };
    assert_eq!(gcptr::referents(&labelled), [addr(&a)]);
    assert!(may_own_gc::<Shape>());
}

#[derive(Trace)]
enum Never {}

#[derive(Trace)]
enum Flag {
    On,
    Off(u8),
    Custom { name: String },
}

#[test]
fn enums_of_plain_data_own_no_gc() {
    assert!(!may_own_gc::<Never>());
    assert!(!may_own_gc::<Flag>());
    assert!(gcptr::referents(&Flag::Custom { name: "f".into() }).is_empty());
}

#[derive(Trace)]
struct Node<T> {
    value: T,
    next: RefCell<Option<Gc<Node<T>>>>,
}

impl<T> Node<T> {
    fn new(value: T) -> Self {
        Node {
            value,
            next: RefCell::new(None),
        }
    }
}

#[test]
fn generic_type_traces_its_parameter() {
    let (a, b) = (Gc::new(1u32), Gc::new(2u32));
    let node = Node::new(vec![a.clone(), b.clone()]);
    assert_eq!(gcptr::referents(&node), [addr(&a), addr(&b)]);

    let tail = Gc::new(Node::new(7u8));
    *node.next.borrow_mut() = Some(Gc::new(Node::new(vec![])));
    let node = Node::new(5u8);
    *node.next.borrow_mut() = Some(tail.clone());
    assert_eq!(gcptr::referents(&node), [addr(&tail)]);
    assert!(may_own_gc::<Node<u8>>());
}

/// Lifetimes, a lifetime bound on a parameter, a `where` clause and a const
/// generic, all at once.
#[derive(Trace)]
struct Borrowing<'a, T: 'a, const N: usize>
where
    T: Clone,
{
    #[gc(skip)]
    name: &'a str,
    fixed: [T; N],
    shared: &'static str,
}

#[test]
fn lifetimes_where_clauses_and_const_generics_are_kept() {
    let name = String::from("local");
    let (a, b) = (Gc::new(1u32), Gc::new(2u32));
    let value = Borrowing {
        name: &name,
        fixed: [a.clone(), b.clone()],
        shared: "static",
    };
    assert_eq!(gcptr::referents(&value), [addr(&a), addr(&b)]);
    assert!(!may_own_gc::<Borrowing<'_, u8, 4>>());
}

trait Family {
    type Member;
}

struct Gcs;

impl Family for Gcs {
    type Member = Gc<u32>;
}

#[derive(Trace)]
struct Projection<F: Family> {
    member: F::Member,
    #[gc(skip)]
    marker: PhantomData<F>,
}

#[test]
fn associated_type_fields_are_bounded_and_traced() {
    let a = Gc::new(1);
    let value = Projection::<Gcs> {
        member: a.clone(),
        marker: PhantomData,
    };
    assert_eq!(gcptr::referents(&value), [addr(&a)]);
}

#[derive(Trace)]
struct Tail<T: ?Sized> {
    len: usize,
    items: T,
}

#[test]
fn unsized_last_field_is_traced() {
    let (a, b) = (Gc::new(1u32), Gc::new(2u32));
    let boxed: Box<Tail<[Gc<u32>]>> = Box::new(Tail {
        len: 2,
        items: [a.clone(), b.clone()],
    });
    assert_eq!(gcptr::referents(&*boxed), [addr(&a), addr(&b)]);
}

// ------------------------------------------------------------ attributes ---

#[derive(Trace)]
struct WithSkipped {
    kept: Gc<u32>,
    #[gc(skip)]
    handle: NotTrace,
    #[gc(skip)]
    hidden: Gc<u32>,
    also_kept: Gc<u32>,
}

#[test]
fn skipped_fields_are_not_visited_and_need_no_trace_impl() {
    let (a, b, c) = (Gc::new(1), Gc::new(2), Gc::new(3));
    let value = WithSkipped {
        kept: a.clone(),
        handle: NotTrace(0),
        hidden: b.clone(),
        also_kept: c.clone(),
    };
    assert_eq!(gcptr::referents(&value), [addr(&a), addr(&c)]);
}

#[derive(Trace)]
struct OnlySkippedGc {
    count: u32,
    #[gc(skip)]
    cache: Option<Gc<u32>>,
}

#[derive(Trace)]
struct SkippedParameter<T> {
    #[gc(skip)]
    payload: T,
    id: u32,
}

#[test]
fn a_parameter_used_only_by_skipped_fields_needs_no_bound() {
    fn is_trace<T: Trace>() {}
    is_trace::<SkippedParameter<NotTrace>>();
    assert!(!may_own_gc::<SkippedParameter<NotTrace>>());
    // A skipped `Gc` is not reported: the type says it owns none.
    assert!(!may_own_gc::<OnlySkippedGc>());
}

#[derive(Trace)]
#[gc(bound = "")]
struct Typed<T> {
    index: u32,
    marker: PhantomData<T>,
}

#[derive(Trace)]
#[gc(bound = "T: Trace + Clone")]
struct Cloning<T> {
    items: Vec<T>,
}

#[test]
fn bound_attribute_replaces_the_inferred_bounds() {
    fn is_trace<T: Trace>() {}
    is_trace::<Typed<NotTrace>>();
    let a = Gc::new(1);
    let value = Cloning {
        items: vec![a.clone(), a.clone()],
    };
    assert_eq!(gcptr::referents(&value), [addr(&a), addr(&a)]);
}

mod runtime {
    pub use gcptr as collector;
}

#[derive(runtime::collector::Trace)]
#[gc(crate = "runtime::collector")]
struct Renamed {
    inner: Gc<u32>,
}

#[test]
fn crate_attribute_finds_gcptr_through_a_reexport() {
    let a = Gc::new(1);
    assert_eq!(gcptr::referents(&Renamed { inner: a.clone() }), [addr(&a)]);
}

/// A crate path that re-exports the real traits but could hand the derive
/// its own helpers: the derive takes nothing from it but the traits (and
/// the markers of its check for a forgotten `#[gc(finalize)]`).
mod lookalike {
    pub use gcptr::{Finalize, Trace, Tracer};

    pub mod __private {
        pub use gcptr::__private::{
            FinalizeAttribute, FinalizeNeverRuns, NoFinalizer, MAX_MAY_OWN_DEPTH,
        };

        /// Answers "no `Drop` impl" for every type, were it asked.
        pub struct DropImplProbe<T: ?Sized>(core::marker::PhantomData<T>);

        impl<T: ?Sized> DropImplProbe<T> {
            pub const HAS_DROP_IMPL: bool = false;
        }

        pub trait NoDropImpl {}
    }
}

#[derive(Trace)]
#[gc(crate = "lookalike")]
struct ThroughLookalike {
    next: RefCell<Option<Gc<ThroughLookalike>>>,
}

impl Drop for ThroughLookalike {
    fn drop(&mut self) {
        DROPPED_NAMES.with(|names| names.borrow_mut().push("lookalike".into()));
    }
}

#[test]
fn a_crate_path_cannot_make_the_collector_skip_a_drop_impl() {
    assert!(!<ThroughLookalike as Trace>::__drop_only_releases_gcs());
    let a = Gc::new(ThroughLookalike {
        next: RefCell::new(None),
    });
    *a.next.borrow_mut() = Some(a.clone());
    drop(a);
    assert_eq!(gcptr::collect(), 1);
    assert_eq!(DROPPED_NAMES.with(|names| names.take()), ["lookalike"]);
}

/// Variant `a_field_b`'s field `c` and variant `a`'s field `b_field_c`
/// would name the same check function.
#[allow(non_camel_case_types)]
#[derive(Trace)]
enum LookalikeFieldNames {
    a_field_b { c: Gc<u32> },
    a { b_field_c: Gc<u32> },
}

#[test]
fn variant_and_field_names_that_spell_the_same_check_both_trace() {
    let (x, y) = (Gc::new(1), Gc::new(2));
    let first = LookalikeFieldNames::a_field_b { c: x.clone() };
    let second = LookalikeFieldNames::a {
        b_field_c: y.clone(),
    };
    assert_eq!(gcptr::referents(&first), [addr(&x)]);
    assert_eq!(gcptr::referents(&second), [addr(&y)]);
}

/// The derive must not pick up the user's own names.
mod shadowing {
    #![allow(non_camel_case_types)]

    pub trait Trace {}
    pub struct Tracer;
    pub struct Option;
    pub struct PhantomData;
    pub struct bool;
    pub trait Finalize {}

    /// Methods named as the hidden ones of `gcptr::Trace`, in scope for
    /// every type.
    #[allow(dead_code)]
    pub trait HiddenNames {
        fn __may_own_gc(&self, _: u32) -> ::core::primitive::bool {
            false
        }
        fn __edges_fixed(&self, _: u32) -> ::core::primitive::bool {
            true
        }
        fn __drop_only_releases_gcs(&self) -> ::core::primitive::bool {
            true
        }
        fn __trace_field<T: ?Sized>(&self, _: &T, _: &mut gcptr::Tracer) {}
    }

    impl<X: ?Sized> HiddenNames for X {}

    #[derive(gcptr::Trace)]
    #[gc(finalize)]
    pub struct Shadowed {
        pub inner: gcptr::Gc<u32>,
        pub items: Vec<gcptr::Gc<u32>>,
    }

    impl gcptr::Finalize for Shadowed {
        fn finalize(&self) {}
    }
}

#[test]
fn expansion_is_hygienic_when_user_names_shadow_std_and_gcptr() {
    let (a, b) = (Gc::new(1), Gc::new(2));
    let value = shadowing::Shadowed {
        inner: a.clone(),
        items: vec![b.clone()],
    };
    assert_eq!(gcptr::referents(&value), [addr(&a), addr(&b)]);
    assert!(<shadowing::Shadowed as Trace>::__has_finalizer());
}

mod no_prelude {
    #![no_implicit_prelude]

    #[derive(::gcptr::Trace)]
    pub struct Bare {
        pub inner: ::gcptr::Gc<u32>,
        pub list: ::std::vec::Vec<::std::option::Option<::gcptr::Gc<u32>>>,
        #[gc(skip)]
        pub skipped: u8,
    }

    #[derive(::gcptr::Trace)]
    pub enum BareEnum {
        Leaf(u32),
        Branch { child: ::gcptr::Gc<u32> },
    }
}

#[test]
fn expansion_works_without_the_implicit_prelude() {
    let (a, b) = (Gc::new(1), Gc::new(2));
    let value = no_prelude::Bare {
        inner: a.clone(),
        list: vec![None, Some(b.clone())],
        skipped: 0,
    };
    assert_eq!(gcptr::referents(&value), [addr(&a), addr(&b)]);
    let branch = no_prelude::BareEnum::Branch { child: b.clone() };
    assert_eq!(gcptr::referents(&branch), [addr(&b)]);
    assert!(gcptr::referents(&no_prelude::BareEnum::Leaf(1)).is_empty());
}

// ------------------------------------------------------ untracked types ---

#[derive(Trace)]
struct Tree {
    children: Vec<Tree>,
}

#[derive(Trace)]
struct Expr {
    args: Vec<Stmt>,
}

#[derive(Trace)]
struct Stmt {
    body: Vec<Expr>,
}

#[derive(Trace)]
struct Wrap<T>(T);

#[test]
fn recursive_types_answer_without_recursing_forever() {
    // Asking `Vec<Tree>` asks `Tree` again; the guard answers `true`
    // (tracked: always sound) instead of overflowing the stack.
    assert!(may_own_gc::<Tree>());
    assert!(may_own_gc::<Expr>());
    assert!(may_own_gc::<Stmt>());
    // Nesting one generic derive in itself is not recursion.
    assert!(!may_own_gc::<Wrap<Wrap<Wrap<u32>>>>());
    assert!(may_own_gc::<Wrap<Wrap<Wrap<Gc<u32>>>>>());
    let tree = Tree {
        children: vec![Tree { children: vec![] }],
    };
    assert!(gcptr::referents(&tree).is_empty());
}

// A type whose drop does nothing but drop `Gc`s says so, and a garbage set
// of such objects is freed without its drops (`tests/skipped_drops.rs`);
// anything else in the drop (a `Drop` impl of the type's own, memory it
// owns, a `Weak`, a skipped field with drop glue) says otherwise.

fn drop_only_releases_gcs<T: Trace>() -> bool {
    <T as Trace>::__drop_only_releases_gcs()
}

#[derive(Trace)]
struct ReleasesOnly {
    id: u64,
    next: RefCell<Option<Gc<ReleasesOnly>>>,
    pair: (Option<Gc<u8>>, [Gc<u8>; 2]),
    #[gc(skip)]
    tag: NotTrace,
}

#[derive(Trace)]
struct WithDropImpl {
    next: RefCell<Option<Gc<WithDropImpl>>>,
}

impl Drop for WithDropImpl {
    fn drop(&mut self) {}
}

#[derive(Trace)]
struct GenericWithDropImpl<'a, T: Clone, const N: usize> {
    values: [T; N],
    name: &'static str,
    _borrow: PhantomData<&'a ()>,
}

impl<T: Clone, const N: usize> Drop for GenericWithDropImpl<'_, T, N> {
    fn drop(&mut self) {}
}

#[derive(Trace)]
enum ReleasesOnlyEnum {
    Leaf,
    Node(Gc<ReleasesOnlyEnum>, Option<Gc<ReleasesOnlyEnum>>),
}

#[derive(Trace)]
enum OwnsAString {
    Leaf(String),
    Node(Gc<OwnsAString>),
}

#[derive(Trace)]
struct SkippedWithGlue {
    next: Option<Gc<SkippedWithGlue>>,
    #[gc(skip)]
    cache: Vec<u8>,
}

#[derive(Trace)]
struct WeakBack {
    parent: gcptr::Weak<WeakBack>,
}

/// Plain data with a hand-written `Trace`: its trace could run any code,
/// so it answers `false`, and so does whatever holds it.
struct HandTraced(u32);

// SAFETY: owns no `Gc`.
unsafe impl Trace for HandTraced {
    fn trace(&self, _: &mut gcptr::Tracer) {}
}

#[derive(Trace)]
struct HoldsHandTraced {
    next: RefCell<Option<Gc<HoldsHandTraced>>>,
    data: HandTraced,
}

/// Plain data declared a leaf: its trace does nothing.
struct DeclaredLeaf(#[allow(dead_code)] u32);
gcptr::unsafe_trace_leaf!(DeclaredLeaf);

#[test]
fn a_type_says_whether_its_drop_only_releases_gcs() {
    assert!(drop_only_releases_gcs::<ReleasesOnly>());
    assert!(drop_only_releases_gcs::<ReleasesOnlyEnum>());
    assert!(drop_only_releases_gcs::<Wrap<Gc<String>>>());
    assert!(drop_only_releases_gcs::<Wrap<Wrap<u32>>>());
    assert!(drop_only_releases_gcs::<Option<Gc<Vec<u8>>>>());
    assert!(!drop_only_releases_gcs::<WithDropImpl>());
    assert!(!drop_only_releases_gcs::<GenericWithDropImpl<'static, u8, 2>>());
    assert!(!drop_only_releases_gcs::<OwnsAString>());
    assert!(!drop_only_releases_gcs::<SkippedWithGlue>());
    assert!(!drop_only_releases_gcs::<WeakBack>());
    assert!(!drop_only_releases_gcs::<Wrap<String>>());
    assert!(!drop_only_releases_gcs::<Vec<Gc<u8>>>());
    assert!(!drop_only_releases_gcs::<Box<u8>>());
    // Hand-written traces, leaves and wrappers.
    assert!(!drop_only_releases_gcs::<HandTraced>());
    assert!(!drop_only_releases_gcs::<HoldsHandTraced>());
    assert!(drop_only_releases_gcs::<DeclaredLeaf>());
    assert!(drop_only_releases_gcs::<std::mem::ManuallyDrop<Gc<u8>>>());
    assert!(!drop_only_releases_gcs::<std::mem::ManuallyDrop<HandTraced>>());
    fn answer_of<T: Trace>(_: &T) -> bool {
        T::__drop_only_releases_gcs()
    }
    let target = Gc::new(String::from("x"));
    assert!(answer_of(
        &gcptr::gc_closure!([target] move || target.len())
    ));
    let name = String::from("y");
    assert!(!answer_of(&gcptr::gc_closure!([name] move || name.len())));
}

#[derive(Trace)]
struct Plain {
    id: u64,
    name: String,
    scores: Vec<f64>,
    flags: (bool, char),
    nested: Option<Vec<(u8, String)>>,
    on_tick: fn(u64) -> u64,
    // A function of a reference is higher-ranked (`for<'a> fn(&'a str)`),
    // which no `Trace` impl covers on stable Rust: skipped.
    #[gc(skip)]
    on_change: fn(u64, &str) -> bool,
}

fn next_tick(tick: u64) -> u64 {
    tick + 1
}

fn ignore_change(_: u64, _: &str) -> bool {
    false
}

#[derive(Trace)]
struct Owner {
    id: u64,
    child: Option<Gc<u32>>,
}

#[derive(Trace)]
struct MutableOwner {
    child: RefCell<Option<Gc<u32>>>,
}

#[test]
fn plain_data_struct_owns_no_gc_and_a_gc_field_owns_one() {
    assert!(!may_own_gc::<Plain>());
    assert!(may_own_gc::<Owner>());
    assert!(may_own_gc::<Named>());
    assert!(may_own_gc::<Node<u8>>());
}

#[test]
fn plain_data_struct_is_not_tracked_by_the_collector() {
    gcptr::disable(); // keep automatic collections from resetting counts
    let before = gcptr::count();
    let plain = Gc::new(Plain {
        id: 1,
        name: "p".into(),
        scores: vec![],
        flags: (true, 'x'),
        nested: Some(vec![]),
        on_tick: next_tick,
        on_change: ignore_change,
    });
    assert_eq!(gcptr::count(), before, "a plain struct is untracked");
    let owner = Gc::new(Owner { id: 2, child: None });
    assert_eq!(
        gcptr::count(),
        before,
        "an owner of untracked objects, which cannot change, is acyclic"
    );
    let mutable = Gc::new(MutableOwner {
        child: RefCell::new(None),
    });
    assert_eq!(
        gcptr::count()[0],
        before[0] + 1,
        "an owner that can gain a Gc is tracked"
    );
    drop((plain, owner, mutable));
    gcptr::enable();
}

// ---------------------------------------------------- cycles and drops ---

thread_local! {
    static DROPS: Cell<usize> = const { Cell::new(0) };
    static DROPPED_NAMES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn drops() -> usize {
    DROPS.with(Cell::get)
}

/// Counts its drops; put one in a type to see when its value is dropped.
struct DropCounter;

impl Drop for DropCounter {
    fn drop(&mut self) {
        DROPS.with(|n| n.set(n.get() + 1));
    }
}

#[derive(Trace)]
struct Partner {
    #[gc(skip)]
    counter: DropCounter,
    partner: RefCell<Option<Gc<Partner>>>,
}

impl Partner {
    fn new() -> Gc<Self> {
        Gc::new(Partner {
            counter: DropCounter,
            partner: RefCell::new(None),
        })
    }
}

#[test]
fn struct_cycle_is_reclaimed_by_collect() {
    let a = Partner::new();
    let b = Partner::new();
    *a.partner.borrow_mut() = Some(b.clone());
    *b.partner.borrow_mut() = Some(a.clone());
    let weak = Gc::downgrade(&a);
    drop((a, b));
    assert_eq!(drops(), 0, "a cycle outlives its last outside reference");
    assert!(weak.upgrade().is_some());
    assert_eq!(gcptr::collect(), 2);
    assert_eq!(drops(), 2);
    assert!(weak.upgrade().is_none());
}

#[derive(Trace)]
enum Link {
    End(#[gc(skip)] DropCounter),
    To(#[gc(skip)] DropCounter, RefCell<Option<Gc<Link>>>),
    Both {
        #[gc(skip)]
        counter: DropCounter,
        left: RefCell<Option<Gc<Link>>>,
        right: RefCell<Option<Gc<Link>>>,
    },
}

#[test]
fn enum_cycle_is_reclaimed_by_collect() {
    let end = Gc::new(Link::End(DropCounter));
    let to = Gc::new(Link::To(DropCounter, RefCell::new(None)));
    let both = Gc::new(Link::Both {
        counter: DropCounter,
        left: RefCell::new(Some(to.clone())),
        right: RefCell::new(Some(end.clone())),
    });
    let Link::To(_, next) = &*to else {
        unreachable!()
    };
    *next.borrow_mut() = Some(both.clone()); // both -> to -> both
    drop((end, to, both));
    assert_eq!(drops(), 0, "end stays alive through the cycle");
    assert_eq!(gcptr::collect(), 3);
    assert_eq!(drops(), 3);
}

#[test]
fn generic_node_cycle_is_reclaimed_by_collect() {
    let a = Gc::new(Node::new((DropCounterTrace, 1u32)));
    let b = Gc::new(Node::new((DropCounterTrace, 2u32)));
    let c = Gc::new(Node::new((DropCounterTrace, 3u32)));
    *a.next.borrow_mut() = Some(b.clone());
    *b.next.borrow_mut() = Some(c.clone());
    *c.next.borrow_mut() = Some(a.clone());
    drop((a, b));
    assert_eq!(gcptr::collect(), 0, "c still holds the ring");
    assert_eq!(drops(), 0);
    drop(c);
    assert_eq!(gcptr::collect(), 3);
    assert_eq!(drops(), 3);
}

/// A `DropCounter` that is itself `Trace` (a leaf), to sit in a generic
/// parameter.
#[derive(Trace)]
struct DropCounterTrace;

impl Drop for DropCounterTrace {
    fn drop(&mut self) {
        DROPS.with(|n| n.set(n.get() + 1));
    }
}

#[derive(Trace)]
struct Holder {
    #[gc(skip)]
    handle: NotTrace,
    #[gc(skip)]
    counter: DropCounter,
    other: RefCell<Option<Gc<Holder>>>,
}

#[test]
fn cycle_of_type_with_skipped_field_is_reclaimed() {
    let a = Gc::new(Holder {
        handle: NotTrace(1),
        counter: DropCounter,
        other: RefCell::new(None),
    });
    *a.other.borrow_mut() = Some(a.clone()); // a self-cycle
    drop(a);
    assert_eq!(gcptr::collect(), 1);
    assert_eq!(drops(), 1);
}

#[derive(Trace)]
struct HiddenEdge {
    #[gc(skip)]
    counter: DropCounter,
    #[gc(skip)]
    hidden: RefCell<Option<Gc<HiddenEdge>>>,
}

#[test]
fn cycle_through_a_skipped_field_leaks_instead_of_being_freed() {
    let a = Gc::new(HiddenEdge {
        counter: DropCounter,
        hidden: RefCell::new(None),
    });
    *a.hidden.borrow_mut() = Some(a.clone()); // a self-cycle the collector cannot see
    let weak = Gc::downgrade(&a);
    drop(a);
    assert_eq!(gcptr::collect(), 0, "an untraced edge can only leak");
    assert_eq!(drops(), 0);
    // Break the cycle by hand: the object is then freed by its count.
    let a = weak.upgrade().expect("still alive");
    drop(a.hidden.borrow_mut().take());
    drop(a);
    assert!(weak.upgrade().is_none());
    assert_eq!(drops(), 1);
}

#[derive(Trace)]
struct Named2 {
    #[gc(skip)]
    name: String,
    #[gc(skip)]
    counter: DropCounter,
    peer: RefCell<Option<Gc<Named2>>>,
}

impl Drop for Named2 {
    fn drop(&mut self) {
        // Only the object's own, non-`Gc` fields: allowed in a dead cycle.
        let name = std::mem::take(&mut self.name);
        DROPPED_NAMES.with(|names| names.borrow_mut().push(name));
    }
}

#[test]
fn user_drop_beside_the_derive_runs_in_a_dead_cycle() {
    let a = Gc::new(Named2 {
        name: "a".into(),
        counter: DropCounter,
        peer: RefCell::new(None),
    });
    let b = Gc::new(Named2 {
        name: "b".into(),
        counter: DropCounter,
        peer: RefCell::new(Some(a.clone())),
    });
    *a.peer.borrow_mut() = Some(b.clone());
    drop((a, b));
    assert_eq!(gcptr::collect(), 2);
    let mut names = DROPPED_NAMES.with(|names| names.take());
    names.sort();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(drops(), 2);
}

#[test]
fn user_drop_beside_the_derive_runs_when_the_count_reaches_zero() {
    let lone = Gc::new(Named2 {
        name: "lone".into(),
        counter: DropCounter,
        peer: RefCell::new(None),
    });
    drop(lone);
    assert_eq!(DROPPED_NAMES.with(|names| names.take()), ["lone"]);
    assert_eq!(drops(), 1);
}

thread_local! {
    static FINALIZED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

#[derive(Trace)]
#[gc(finalize)]
struct Finalized {
    id: u32,
    peer: RefCell<Option<Gc<Finalized>>>,
}

impl Finalize for Finalized {
    fn finalize(&self) {
        // The peer is intact here, even in a dead cycle.
        let peer_id = self.peer.borrow().as_ref().map_or(0, |peer| peer.id);
        FINALIZED.with(|log| log.borrow_mut().push(self.id * 10 + peer_id));
    }
}

#[test]
fn finalize_attribute_runs_finalize_once_per_object_in_a_cycle() {
    assert!(<Finalized as Trace>::__has_finalizer());
    assert!(!<Named as Trace>::__has_finalizer());
    let a = Gc::new(Finalized {
        id: 1,
        peer: RefCell::new(None),
    });
    let b = Gc::new(Finalized {
        id: 2,
        peer: RefCell::new(Some(a.clone())),
    });
    *a.peer.borrow_mut() = Some(b.clone());
    drop((a, b));
    assert_eq!(gcptr::collect(), 2);
    let mut log = FINALIZED.with(|log| log.take());
    log.sort();
    assert_eq!(log, [12, 21]);
    assert_eq!(gcptr::collect(), 0);
    assert!(FINALIZED.with(|log| log.borrow().is_empty()));
}

// --------------------------------------------------- declarative macros ---

mod foreign {
    pub struct Uuid(pub u128);

    pub struct Handle<T>(pub u32, pub std::marker::PhantomData<T>);

    pub struct Pair<T> {
        pub left: T,
        pub label: String,
        pub right: T,
    }

    pub struct Wrapper(pub u32, pub super::Gc<u32>);
}

gcptr::unsafe_trace_leaf!(foreign::Uuid);
gcptr::unsafe_trace_leaf!(impl<T> foreign::Handle<T>);
gcptr::unsafe_trace_fields!(impl<T> foreign::Pair<T> { right, left });
gcptr::unsafe_trace_fields!(foreign::Wrapper { 1 });

#[test]
fn trace_leaf_macro_declares_types_that_own_no_gc() {
    assert!(!may_own_gc::<foreign::Uuid>());
    assert!(!may_own_gc::<foreign::Handle<NotTrace>>());
    assert!(gcptr::referents(&foreign::Uuid(1)).is_empty());
}

#[test]
fn trace_fields_macro_visits_the_listed_fields_in_order() {
    let (a, b) = (Gc::new(1u32), Gc::new(2u32));
    let pair = foreign::Pair {
        left: a.clone(),
        label: "pair".into(),
        right: b.clone(),
    };
    assert_eq!(gcptr::referents(&pair), [addr(&b), addr(&a)]);
    assert!(may_own_gc::<foreign::Pair<Gc<u32>>>());
    assert!(!may_own_gc::<foreign::Pair<u32>>());

    let wrapper = foreign::Wrapper(0, a.clone());
    assert_eq!(gcptr::referents(&wrapper), [addr(&a)]);
}

// The derive's expansion must not depend on the hygiene of the field
// types' spans: here the fields are written inside a `macro_rules!` and the
// derive attribute comes from its caller, so the two differ.
macro_rules! define_nodes {
    ($(#[$attr:meta])*) => {
        $(#[$attr])*
        struct MacroNode {
            next: std::cell::RefCell<Option<gcptr::Gc<MacroNode>>>,
        }

        $(#[$attr])*
        struct MacroLeaf {
            value: u64,
        }
    };
}

define_nodes!(#[derive(gcptr::Trace)]);

#[test]
fn derive_inside_macro_rules_traces_and_classifies() {
    assert!(<MacroNode as gcptr::Trace>::__may_own_gc(0));
    assert!(!<MacroLeaf as gcptr::Trace>::__may_own_gc(0));
    let a = gcptr::Gc::new(MacroNode {
        next: std::cell::RefCell::new(None),
    });
    *a.next.borrow_mut() = Some(a.clone());
    assert_eq!(gcptr::referents(&*a), [gcptr::Gc::as_ptr(&a).cast::<()>()]);
    drop(a);
    assert_eq!(gcptr::collect(), 1);
    assert_eq!(MacroLeaf { value: 3 }.value, 3);
}

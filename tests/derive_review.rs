//! What a review of `#[derive(Trace)]`, `unsafe_trace_leaf!` and
//! `unsafe_trace_fields!` checked: the type facts the collector relies on
//! (`Drop` impls of generic types, skipped fields with drop glue or
//! interior mutability, `?Sized` tails, associated types, recursion),
//! hygiene (odd field and variant names, `no_implicit_prelude`,
//! `cfg_attr`-wrapped attributes), and valid input the derive used to
//! reject, each fixed: `#[gc(finalize)]` forwarded through a
//! `macro_rules!` (E0424), a field type that is a qualified path whose
//! trait mentions a parameter (no bound was inferred: E0277). Two more live
//! in crates of their own: `derive_forbid_lints.rs` (a crate that `forbid`s
//! a lint the expansion allowed: E0453) and `tests/edition2015` (a
//! 2015-edition crate: E0433).
#![allow(dead_code)]

mod support;

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;

use gcptr::{Finalize, Gc, Trace};
use support::{fixed, may_own, releases};

// ------------------------------------------ Drop impls of generic types ---

thread_local!(static DROPS: Cell<u32> = const { Cell::new(0) });
fn drops() -> u32 {
    DROPS.with(Cell::get)
}

#[derive(Trace)]
struct GenDrop<T> {
    next: RefCell<Option<Gc<GenDrop<T>>>>,
    value: T,
}
impl<T> Drop for GenDrop<T> {
    fn drop(&mut self) {
        DROPS.with(|n| n.set(n.get() + 1));
    }
}

mod elsewhere {
    use super::*;
    #[derive(Trace)]
    pub enum DropEnum<'a, T: Clone + 'static, const N: usize> {
        Node(RefCell<Option<Gc<DropEnum<'static, T, N>>>>),
        Leaf([T; N], PhantomData<&'a ()>),
    }
}
mod elsewhere2 {
    impl<'a, T: Clone + 'static, const N: usize> Drop for super::elsewhere::DropEnum<'a, T, N> {
        fn drop(&mut self) {
            super::DROPS.with(|n| n.set(n.get() + 1));
        }
    }
}

#[test]
fn drop_impls_of_generic_types_are_seen() {
    assert!(!releases::<GenDrop<u8>>());
    assert!(!releases::<GenDrop<Gc<u8>>>());
    assert!(!releases::<elsewhere::DropEnum<'static, u8, 2>>());
    let before = drops();
    {
        let a = Gc::new(GenDrop {
            next: RefCell::new(None),
            value: 1u8,
        });
        let b = Gc::new(GenDrop {
            next: RefCell::new(Some(a.clone())),
            value: 2u8,
        });
        *a.next.borrow_mut() = Some(b);
    }
    {
        let a = Gc::new(elsewhere::DropEnum::<u8, 2>::Node(RefCell::new(None)));
        if let elsewhere::DropEnum::Node(n) = &*a {
            *n.borrow_mut() = Some(a.clone());
        }
    }
    assert_eq!(gcptr::collect(), 3);
    assert_eq!(drops() - before, 3);
}

// ------------------------------------------------- skipped interior cell ---

#[derive(Trace)]
struct SkippedCell {
    id: u32,
    #[gc(skip)]
    back: RefCell<Option<Gc<SkippedCell>>>,
}

#[test]
fn skipped_cell_answers() {
    assert!(!may_own::<SkippedCell>());
    assert!(!releases::<SkippedCell>());
}

// ----------------------------------------------- finalize on plain data ---

thread_local!(static PLAIN_FIN: Cell<u32> = const { Cell::new(0) });

#[derive(Trace)]
#[gc(finalize)]
struct PlainFin(u32);
impl Finalize for PlainFin {
    fn finalize(&self) {
        PLAIN_FIN.with(|n| n.set(n.get() + 1));
    }
}

#[test]
fn finalizer_of_an_untracked_type_runs() {
    assert!(!may_own::<PlainFin>());
    assert!(<PlainFin as Trace>::__has_finalizer());
    drop(Gc::new(PlainFin(1)));
    assert_eq!(PLAIN_FIN.with(Cell::get), 1);
}

// --------------------------------------------------------- ?Sized tails ---

#[derive(Trace)]
struct Tail<T: ?Sized> {
    head: Gc<u32>,
    tail: T,
}

#[test]
fn sized_instance_of_a_maybe_unsized_tail() {
    // Conservative answers are fine; check they are not *wrong*.
    let _ = (
        may_own::<Tail<u32>>(),
        fixed::<Tail<u32>>(),
        releases::<Tail<u32>>(),
    );
    let _ = (
        may_own::<Tail<String>>(),
        fixed::<Tail<String>>(),
        releases::<Tail<String>>(),
    );
    assert!(!releases::<Tail<String>>());
    let v: Box<Tail<[Gc<u8>]>> = Box::new(Tail {
        head: Gc::new(1),
        tail: [Gc::new(2u8), Gc::new(3u8)],
    });
    assert_eq!(gcptr::referents(&*v).len(), 3);
}

// -------------------------------------------------- associated types ---

#[derive(Trace)]
struct Assoc<I: Iterator> {
    item: Option<I::Item>,
    #[gc(skip)]
    iter: I,
}

#[test]
fn associated_types() {
    assert!(may_own::<Assoc<std::vec::IntoIter<Gc<u8>>>>());
    assert!(!may_own::<Assoc<std::vec::IntoIter<u8>>>());
    assert!(!releases::<Assoc<std::vec::IntoIter<u8>>>());
}

// ------------------------------------------------ skipped unsized tails ---

#[derive(Trace)]
struct DynTail {
    head: Gc<u32>,
    #[gc(skip)]
    tail: dyn std::fmt::Debug,
}

#[derive(Trace)]
struct SliceTail {
    head: Gc<u32>,
    #[gc(skip)]
    tail: [u8],
}

#[test]
fn skipped_unsized_tails_compile_and_trace_the_head() {
    // (Building one needs an unsizing coercion from a generic twin; the
    // point is that the derive accepts and traces it.)
    fn head_only(d: &DynTail) -> usize {
        gcptr::referents(d).len()
    }
    let _ = head_only;
}

// ------------------------------------------- no prelude, every feature ---

mod bare {
    #![no_implicit_prelude]

    #[derive(::gcptr::Trace)]
    #[gc(finalize)]
    pub enum Full<'a, T: ?::core::marker::Sized, U = u8, const N: usize = 2>
    where
        U: ::core::clone::Clone,
    {
        Empty,
        Items([::gcptr::Gc<U>; N], #[gc(skip)] ::std::string::String),
        Named {
            r#type: ::std::vec::Vec<::gcptr::Gc<u32>>,
            #[gc(skip)]
            borrowed: &'a u8,
            cell: ::core::cell::RefCell<::std::option::Option<::gcptr::Gc<u32>>>,
            marker: ::core::marker::PhantomData<::std::boxed::Box<T>>,
        },
    }

    impl<'a, T: ?::core::marker::Sized, U: ::core::clone::Clone, const N: usize> ::gcptr::Finalize
        for Full<'a, T, U, N>
    {
        fn finalize(&self) {}
    }

    impl<'a, T: ?::core::marker::Sized, U, const N: usize> ::core::ops::Drop for Full<'a, T, U, N>
    where
        U: ::core::clone::Clone,
    {
        fn drop(&mut self) {}
    }
}

#[test]
fn no_prelude_generic_finalizable_enum_with_a_drop_impl() {
    type F = bare::Full<'static, str, u32, 2>;
    assert!(may_own::<F>());
    assert!(!fixed::<F>());
    assert!(!releases::<F>());
    assert!(<F as Trace>::__has_finalizer());
    let g = Gc::new(7u32);
    let v: F = bare::Full::Named {
        r#type: vec![g.clone()],
        borrowed: &3,
        cell: RefCell::new(Some(g.clone())),
        marker: PhantomData,
    };
    assert_eq!(gcptr::referents(&v).len(), 2);
}

// ------------------------- skipped drop glue in collected garbage (observable) ---

use std::rc::Rc;

#[derive(Trace)]
struct GenSkip<T> {
    next: RefCell<Option<Gc<GenSkip<T>>>>,
    #[gc(skip)]
    token: T,
}

#[derive(Trace)]
enum EnumSkip {
    Plain(u32),
    Link(RefCell<Option<Gc<EnumSkip>>>, #[gc(skip)] Rc<()>),
}

#[derive(Trace)]
#[gc(finalize)]
struct FinSkip<T: 'static> {
    next: RefCell<Option<Gc<FinSkip<T>>>>,
    #[gc(skip)]
    token: T,
}
impl<T> Finalize for FinSkip<T> {
    fn finalize(&self) {}
}

#[test]
fn drop_glue_of_skipped_fields_runs_when_garbage_is_collected() {
    let token = Rc::new(());
    assert!(releases::<GenSkip<u32>>());
    assert!(!releases::<GenSkip<Rc<()>>>());
    assert!(!releases::<EnumSkip>());
    {
        let a = Gc::new(GenSkip {
            next: RefCell::new(None),
            token: token.clone(),
        });
        let b = Gc::new(GenSkip {
            next: RefCell::new(Some(a.clone())),
            token: token.clone(),
        });
        *a.next.borrow_mut() = Some(b);
        let c = Gc::new(EnumSkip::Link(RefCell::new(None), token.clone()));
        if let EnumSkip::Link(n, _) = &*c {
            *n.borrow_mut() = Some(c.clone());
        }
        let d = Gc::new(FinSkip {
            next: RefCell::new(None),
            token: token.clone(),
        });
        *d.next.borrow_mut() = Some(d.clone());
    }
    assert_eq!(Rc::strong_count(&token), 5);
    gcptr::collect();
    gcptr::collect();
    assert_eq!(Rc::strong_count(&token), 1);
}

// --------------------------------------------- cfg_attr-wrapped gc attributes ---

#[derive(Trace)]
#[cfg_attr(all(), gc(finalize))]
struct CfgFin {
    a: Gc<u32>,
    #[cfg_attr(all(), gc(skip))]
    b: std::fs::File,
}
impl Finalize for CfgFin {
    fn finalize(&self) {}
}

#[test]
fn cfg_attr_wrapped_gc_attributes_apply() {
    assert!(<CfgFin as Trace>::__has_finalizer());
    assert!(!releases::<CfgFin>());
}

// ------------------------------------------------------- field names ---

mod names {
    #![allow(non_snake_case, non_camel_case_types)]
    use gcptr::Trace;

    /// A `Gc` of the user's own, and `T` / `Tracer` / `Trace` names.
    pub type Gc<T> = gcptr::Gc<T>;
    pub struct T;

    #[derive(Trace)]
    pub struct Odd {
        pub __tracer: Gc<u32>,
        pub __field0: Gc<u32>,
        pub __gcptr_depth: Gc<u32>,
        pub tracer: Gc<u32>,
        pub self_: Gc<u32>,
        pub r#type: Gc<u32>,
        pub r#self_2: Option<Gc<u32>>,
        #[gc(skip)]
        pub t: T,
    }

    #[derive(Trace)]
    pub enum Variants {
        __field0 {
            __field0: Gc<u32>,
            __field1: Gc<u32>,
        },
        r#Self2(Gc<u32>, #[gc(skip)] T, Gc<u32>),
        Unit,
    }
}

#[test]
fn odd_field_and_variant_names_trace_each_field_once() {
    let g: Vec<Gc<u32>> = (0..8).map(Gc::new).collect();
    let o = names::Odd {
        __tracer: g[0].clone(),
        __field0: g[1].clone(),
        __gcptr_depth: g[2].clone(),
        tracer: g[3].clone(),
        self_: g[4].clone(),
        r#type: g[5].clone(),
        r#self_2: Some(g[6].clone()),
        t: names::T,
    };
    let want: Vec<*const ()> = g[..7].iter().map(|x| Gc::as_ptr(x).cast::<()>()).collect();
    assert_eq!(gcptr::referents(&o), want);
    let v = names::Variants::r#Self2(g[0].clone(), names::T, g[1].clone());
    assert_eq!(gcptr::referents(&v).len(), 2);
    let v = names::Variants::__field0 {
        __field0: g[2].clone(),
        __field1: g[3].clone(),
    };
    assert_eq!(gcptr::referents(&v).len(), 2);
    assert!(gcptr::referents(&names::Variants::Unit).is_empty());
}

// --------------------------------------------------------- empty enums ---

#[derive(Trace)]
#[gc(finalize)]
enum Never<T> {
    #[allow(dead_code)]
    _Phantom(#[gc(skip)] std::convert::Infallible, PhantomData<T>),
}
impl<T> Finalize for Never<T> {
    fn finalize(&self) {}
}
#[derive(Trace)]
enum Void {}
impl Drop for Void {
    fn drop(&mut self) {}
}

#[test]
fn empty_and_uninhabited_enums() {
    assert!(!may_own::<Void>());
    assert!(fixed::<Void>());
    assert!(!releases::<Void>());
    assert!(<Never<u8> as Trace>::__has_finalizer());
}

// ------------------------------------------------------ dyn supertrait ---

trait Observer: Trace {
    fn id(&self) -> u32;
}

#[derive(Trace)]
struct Obs(Gc<u32>);
impl Observer for Obs {
    fn id(&self) -> u32 {
        *self.0
    }
}

#[derive(Trace)]
struct Subject {
    observers: Vec<Box<dyn Observer>>,
    last: Option<Box<dyn Observer>>,
}

#[test]
fn dyn_supertrait_fields() {
    let g = Gc::new(5u32);
    let s = Subject {
        observers: vec![Box::new(Obs(g.clone()))],
        last: Some(Box::new(Obs(g.clone()))),
    };
    assert_eq!(gcptr::referents(&s).len(), 2);
    assert!(may_own::<Subject>());
    assert!(!fixed::<Subject>());
    assert!(!releases::<Subject>());
    assert_eq!(s.observers[0].id(), 5);
}

// ------------------------------------------------ finalize inside macros ---

thread_local!(static FIN: Cell<u32> = const { Cell::new(0) });

macro_rules! finalizable {
    ($(#[$m:meta])* $name:ident) => {
        #[derive(gcptr::Trace)]
        $(#[$m])*
        struct $name {
            next: RefCell<Option<Gc<$name>>>,
        }
        impl Finalize for $name {
            fn finalize(&self) {
                FIN.with(|n| n.set(n.get() + 1));
            }
        }
    };
}

finalizable!(
    #[gc(finalize)]
    FinFromCaller
);

#[test]
fn finalize_attribute_passed_into_a_macro_rules() {
    assert!(<FinFromCaller as Trace>::__has_finalizer());
    let a = Gc::new(FinFromCaller {
        next: RefCell::new(None),
    });
    *a.next.borrow_mut() = Some(a.clone());
    drop(a);
    gcptr::collect();
    assert_eq!(FIN.with(Cell::get), 1);
}

// The other way round: the derive from the caller, `#[gc(finalize)]` written
// inside the macro.
macro_rules! finalizable_inside {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[gc(finalize)]
        struct $name {
            next: RefCell<Option<Gc<$name>>>,
        }
        impl Finalize for $name {
            fn finalize(&self) {
                FIN2.with(|n| n.set(n.get() + 1));
            }
        }
    };
}

thread_local!(static FIN2: Cell<u32> = const { Cell::new(0) });

finalizable_inside!(
    #[derive(gcptr::Trace)]
    FinInside
);

#[test]
fn finalize_attribute_written_inside_a_macro_rules() {
    assert!(<FinInside as Trace>::__has_finalizer());
    let a = Gc::new(FinInside {
        next: RefCell::new(None),
    });
    *a.next.borrow_mut() = Some(a.clone());
    drop(a);
    gcptr::collect();
    assert_eq!(FIN2.with(Cell::get), 1);
}

// ------------------------------------- qualified paths with parameters ---

trait Pick<T> {
    type Out;
}
struct Identity;
impl<T> Pick<T> for Identity {
    type Out = T;
}

trait Family {
    type Of<T>;
}
struct OptionFamily;
impl Family for OptionFamily {
    type Of<T> = Option<T>;
}

#[derive(Trace)]
struct Picked<T> {
    value: <Identity as Pick<T>>::Out,
}

#[derive(Trace)]
struct Gat<T> {
    value: <OptionFamily as Family>::Of<T>,
}

#[test]
fn qualified_paths_whose_trait_mentions_a_parameter_are_bounded() {
    let g = Gc::new(1u32);
    let p = Picked::<Gc<u32>> { value: g.clone() };
    assert_eq!(gcptr::referents(&p).len(), 1);
    assert!(<Picked<Gc<u32>> as Trace>::__may_own_gc(0));
    assert!(!<Picked<u32> as Trace>::__may_own_gc(0));
    let q = Gat::<Gc<u32>> { value: Some(g) };
    assert_eq!(gcptr::referents(&q).len(), 1);
}

// ------------------ the review's nits, since fixed: generic parameters of ---
// ----------------- every kind in `unsafe_trace_*!`, `Infallible` traced ---

mod foreign_generic {
    use std::cell::RefCell;
    use std::marker::PhantomData;

    /// A leaf with every kind of parameter and drop glue of its own.
    pub struct Slot<'a, T: ?Sized, const N: usize> {
        pub label: String,
        pub borrowed: PhantomData<&'a T>,
    }

    /// A fixed-size ring of optional elements: the fields macro with a
    /// const parameter.
    pub struct Ring<T, const N: usize> {
        pub name: &'static str,
        pub slots: [RefCell<Option<T>>; N],
    }

    /// A struct generic over an unsized tail behind a `Box`.
    pub struct Boxed<T: ?Sized> {
        pub len: usize,
        pub items: Box<T>,
    }

    /// An unsized foreign type.
    #[repr(transparent)]
    pub struct Bytes(pub [u8]);
}
use foreign_generic::{Boxed, Bytes, Ring, Slot};

// SAFETY: a `Slot` holds a `String` and a marker.
gcptr::unsafe_trace_leaf!(impl<'a, T: ?Sized, const N: usize,> Slot<'a, T, N>);
// SAFETY: `name` is a `&'static str`.
gcptr::unsafe_trace_fields!(impl<T, const N: usize> Ring<T, N> { slots });
// SAFETY: `len` is a `usize`.
gcptr::unsafe_trace_fields!(impl<T: ?Sized> Boxed<T> { items });
// SAFETY: bytes.
gcptr::unsafe_trace_leaf!(Bytes);

#[derive(Trace)]
struct RingNode {
    ring: Ring<Gc<RingNode>, 3>,
    tail: Boxed<[RefCell<Option<Gc<RingNode>>>]>,
    slot: Slot<'static, str, 2>,
    bytes: Box<Bytes>,
}

thread_local!(static RING_NODES: Cell<u32> = const { Cell::new(0) });

impl Drop for RingNode {
    fn drop(&mut self) {
        RING_NODES.with(|n| n.set(n.get() + 1));
    }
}

fn ring_node(label: &str) -> Gc<RingNode> {
    let bytes: Box<[u8]> = label.as_bytes().into();
    // SAFETY: `Bytes` is a `repr(transparent)` wrapper of `[u8]`, so the
    // pointer keeps its metadata and the box its layout.
    let bytes = unsafe { Box::from_raw(Box::into_raw(bytes) as *mut Bytes) };
    Gc::new(RingNode {
        ring: Ring {
            name: "ring",
            slots: Default::default(),
        },
        tail: Boxed {
            len: 2,
            items: vec![RefCell::new(None), RefCell::new(None)].into_boxed_slice(),
        },
        slot: Slot {
            label: label.to_string(),
            borrowed: PhantomData,
        },
        bytes,
    })
}

/// `unsafe_trace_leaf!` takes lifetimes, `?Sized` type parameters and const
/// parameters (a trailing comma too): a leaf, untracked, nothing traced,
/// its drop glue seen. (An unsized leaf is in `derive_forbid_lints.rs`.)
#[test]
fn leaf_macro_takes_every_kind_of_parameter() {
    assert!(!may_own::<Slot<'static, str, 4>>());
    assert!(
        !releases::<Slot<'static, str, 4>>(),
        "its String must be freed"
    );
    assert_eq!(
        releases::<Slot<'static, (), 0>>(),
        !std::mem::needs_drop::<Slot<'static, (), 0>>()
    );
    let slot = Gc::new(Slot::<'static, [u64], 7> {
        label: "seven".into(),
        borrowed: PhantomData,
    });
    assert!(!gcptr::is_tracked(&slot));
    assert!(gcptr::referents(&*slot).is_empty());
    assert_eq!(slot.label, "seven");
}

/// `unsafe_trace_fields!` with a const parameter and with a `?Sized` one
/// bounds each type parameter by `Trace` and traces the listed fields: a
/// cycle through a `Ring` slot and one through a boxed slice's element are
/// both seen, and a full collection reclaims them.
#[test]
fn fields_macro_takes_const_and_unsized_parameters() {
    assert!(may_own::<Ring<Gc<u8>, 2>>());
    assert!(!may_own::<Ring<u8, 2>>());
    assert!(!fixed::<Ring<Gc<u8>, 2>>(), "the slots are RefCells");
    assert!(may_own::<Boxed<[Gc<u8>]>>());
    // A `Box` cannot ask its pointee, which may be unsized, only whether it
    // has drop glue, which says whether its edges are fixed.
    assert!(may_own::<Boxed<[u8]>>() && fixed::<Boxed<[u8]>>());
    assert!(may_own::<Boxed<[String]>>() && !fixed::<Boxed<[String]>>());

    gcptr::collect();
    let before = RING_NODES.with(Cell::get);
    let a = ring_node("a");
    let b = ring_node("b");
    assert!(gcptr::is_tracked(&a));
    *a.ring.slots[1].borrow_mut() = Some(b.clone());
    *b.tail.items[1].borrow_mut() = Some(a.clone());
    let (pa, pb) = (Gc::as_ptr(&a).cast::<()>(), Gc::as_ptr(&b).cast::<()>());
    assert_eq!(gcptr::referents(&*a), [pb]);
    assert_eq!(gcptr::referents(&*b), [pa]);
    assert_eq!(&b.bytes.0, b"b");
    let weak = Gc::downgrade(&a);
    drop((a, b));
    assert!(weak.upgrade().is_some(), "the cycle holds itself");
    assert_eq!(gcptr::collect(), 2);
    assert!(weak.upgrade().is_none());
    assert_eq!(RING_NODES.with(Cell::get) - before, 2);
}

/// `Infallible` is a leaf: a `Result` that cannot fail, and a derived enum
/// with an uninhabited variant, are untracked.
#[test]
fn infallible_is_a_leaf() {
    #[derive(Trace)]
    enum Reply {
        Text(String),
        Never(std::convert::Infallible),
    }
    assert!(!may_own::<std::convert::Infallible>());
    assert!(releases::<std::convert::Infallible>());
    let ok = Gc::new(Ok::<u32, std::convert::Infallible>(5));
    assert!(!gcptr::is_tracked(&ok));
    let reply = Gc::new(Reply::Text("hi".into()));
    assert!(!gcptr::is_tracked(&reply));
    assert!(matches!(&*reply, Reply::Text(t) if t == "hi"));
    assert_eq!(*ok, Ok(5));
}

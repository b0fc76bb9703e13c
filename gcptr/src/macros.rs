//! Declarative macros that write [`Trace`](crate::Trace) impls for types the
//! derive cannot be put on: types from other crates.
//!
//! Both are `unsafe_`: the compiler cannot check what they claim, and each
//! states its contract under "Safety". A call expands to an
//! `unsafe impl Trace`, so it carries that impl's obligations even though
//! no `unsafe` keyword is written at the call, and `#![forbid(unsafe_code)]`
//! does not see it (the impl comes from this crate's macro); put a
//! `// SAFETY:` comment above it, as the examples do. For your own types,
//! use `#[derive(Trace)]` instead, which is safe.
//!
//! A wrong claim in either can only hide edges from the collector, which
//! leaks the cycles through them; it never frees a live object, since
//! every listed field is traced once, by its own `Trace` impl.

/// Declares types that can never own a [`Gc`](crate::Gc): their `Trace`
/// impl visits nothing, and the collector never tracks a `Gc` of them.
///
/// Takes a comma-separated list of types, or one generic type written as
/// `impl<'a, T, U: ?Sized, const N: usize> Type<'a, T, U, N>`: lifetimes,
/// type parameters (each may be `?Sized`) and const parameters, which get
/// no bounds (see [`unsafe_trace_fields!`](crate::unsafe_trace_fields) for
/// what else a parameter list may not hold).
///
/// # Safety
///
/// No value of a listed type may own a `Gc` or a `Weak`, directly or through
/// anything it owns (a `Box<dyn Any>`, a callback, a type parameter). A
/// type that does breaks [`Trace`](crate::Trace)'s contract: cycles through
/// it are invisible to the collector, and the collector is told it need not
/// track such objects at all.
///
/// # Examples
///
/// ```
/// use gcptr::{Gc, Trace};
///
/// mod other_crate {
///     pub struct Uuid(pub u128);
///     pub struct Handle<T: ?Sized, const KIND: u8>(pub u32, pub std::marker::PhantomData<T>);
/// }
/// use other_crate::{Handle, Uuid};
///
/// // SAFETY: a `Uuid` is 16 bytes of plain data, and a `Handle` is an index.
/// gcptr::unsafe_trace_leaf!(Uuid);
/// gcptr::unsafe_trace_leaf!(impl<T: ?Sized, const KIND: u8> Handle<T, KIND>);
///
/// #[derive(Trace)]
/// struct Session {
///     id: Uuid,
///     file: Handle<std::path::Path, 1>,
/// }
///
/// let session = Gc::new(Session { id: Uuid(7), file: Handle(3, std::marker::PhantomData) });
/// assert!(gcptr::referents(&*session).is_empty());
/// assert!(!gcptr::is_tracked(&session));
/// assert_eq!(session.id.0 + u128::from(session.file.0), 10);
/// ```
#[macro_export]
macro_rules! unsafe_trace_leaf {
    (impl < $($generics_and_type:tt)*) => {
        $crate::__trace_generics! {
            [$crate::__trace_leaf_impl] [] [] $($generics_and_type)*
        }
    };
    ($($ty:ty),+ $(,)?) => {$(
        $crate::__trace_leaf_impl! { [] [] $ty }
    )+};
}

/// The impl `unsafe_trace_leaf!` writes, from the generics that
/// [`__trace_generics!`](crate::__trace_generics) parsed. The crate's own
/// leaf types use it too, with bounds that the public macro does not take.
#[doc(hidden)]
#[macro_export]
macro_rules! __trace_leaf_impl {
    ([$($generics:tt)*] [$($param:ident)*] $ty:ty) => {
        // SAFETY: the caller of `unsafe_trace_leaf!` promises that this type
        // owns no `Gc`.
        unsafe impl<$($generics)*> $crate::Trace for $ty {
            #[inline(always)]
            fn trace(&self, _: &mut $crate::Tracer) {}

            #[inline(always)]
            fn __may_own_gc(_depth: ::core::primitive::u32) -> ::core::primitive::bool {
                false
            }

            #[inline(always)]
            fn __drop_only_releases_gcs() -> ::core::primitive::bool {
                !::core::mem::needs_drop::<Self>()
            }
        }
    };
}

/// Writes the `Trace` impl of a struct from another crate by listing the
/// fields that may own a [`Gc`](crate::Gc): `trace` visits them in the order
/// given.
///
/// Write `Type { field, other }`; for a tuple struct name the fields by
/// index, `Type { 0, 1 }`; for a generic type, `impl<T> Type<T> { field }`,
/// which adds `T: Trace` for each type parameter. The parameters may be
/// lifetimes, type parameters (`T`, or `T: ?Sized`) and const parameters
/// (`const N: usize`); any other bound is a compile error that names the
/// forms taken, since the impl's bounds are the macro's to choose (a
/// `where` clause the type itself needs is not taken either: such a type's
/// impl is hand-written). A `?Sized` parameter may stand behind a pointer
/// in a listed field (`Box<T>`), not as the type of one (an unsized tail,
/// `data: T`): the impl asks each listed field's type facts, which need a
/// sized type, so that is a compile error (E0277); such a type's impl is
/// hand-written too. The fields must be visible
/// (`pub`) where the macro is used. Fields are reached by destructuring
/// `Self`, never through `Deref`, so each name is a field of the type
/// itself, and each field listed must implement `Trace`. A field listed
/// twice is a compile error. For structs only: an enum's impl is the
/// derive's, or hand-written.
///
/// # Safety
///
/// Every field that is *not* listed must own no `Gc`, directly or through
/// anything it owns: the impl tells the collector that the type can own a
/// `Gc` only if a listed field can, and an untracked object that does own
/// one breaks [`Trace`](crate::Trace)'s contract.
///
/// # Examples
///
/// ```
/// use std::cell::RefCell;
/// use gcptr::{Gc, Trace};
///
/// mod other_crate {
///     // A generic container we cannot derive `Trace` on.
///     pub struct Labelled<T> {
///         pub label: String,
///         pub value: T,
///     }
/// }
/// use other_crate::Labelled;
///
/// // SAFETY: `label` is a `String`, which owns no `Gc`.
/// gcptr::unsafe_trace_fields!(impl<T> Labelled<T> { value });
///
/// #[derive(Trace)]
/// struct Node {
///     next: RefCell<Option<Gc<Labelled<Node>>>>,
/// }
///
/// let node = Gc::new(Labelled {
///     label: "a".to_string(),
///     value: Node { next: RefCell::new(None) },
/// });
/// *node.value.next.borrow_mut() = Some(node.clone()); // a cycle
/// let seen = gcptr::referents(&*node);
/// assert_eq!(seen, [Gc::as_ptr(&node).cast::<()>()]);
/// drop(node);
/// assert_eq!(gcptr::collect(), 1);
/// ```
#[macro_export]
macro_rules! unsafe_trace_fields {
    (impl < $($generics_type_and_fields:tt)*) => {
        $crate::__trace_generics! {
            [$crate::__trace_fields_impl] [] [] $($generics_type_and_fields)*
        }
    };
    ($ty:ty { $($field:tt),* $(,)? }) => {
        $crate::__trace_fields_impl! { [] [] $ty { $($field),* } }
    };
}

/// The impl `unsafe_trace_fields!` writes, from the generics that
/// [`__trace_generics!`](crate::__trace_generics) parsed.
#[doc(hidden)]
#[macro_export]
macro_rules! __trace_fields_impl {
    ([$($generics:tt)*] [$($param:ident)*] $ty:ty { $($field:tt),* $(,)? }) => {
        // SAFETY: the caller of `unsafe_trace_fields!` promises that the
        // fields not listed own no `Gc`; the listed ones are traced through
        // their own `Trace` impls.
        unsafe impl<$($generics)*> $crate::Trace for $ty
        where
            $($param: $crate::Trace,)*
        {
            $crate::__trace_fields_body!($($field),*);
        }
    };
}

/// Parses the generic parameters of an `unsafe_trace_*!` call, one at a
/// time, up to the `>` that closes them, then calls back
/// `$callback! { [generics] [type parameters] rest }`: the parameters as
/// written (each followed by a comma), the type parameters' names (for
/// bounds), and what followed the `>`. A `macro_rules!` pattern cannot
/// take a list of parameters of three shapes ending in `>` in one match,
/// so they are taken in turn; each shape comes with a rule for a comma
/// after it and one for the closing `>`.
#[doc(hidden)]
#[macro_export]
macro_rules! __trace_generics {
    // `const` first: it would also match a type parameter's `$name:ident`.
    ([$($callback:tt)*] [$($generics:tt)*] [$($param:ident)*]
        const $name:ident : $ty:ty , $($rest:tt)*) => {
        $crate::__trace_generics! {
            [$($callback)*] [$($generics)* const $name: $ty,] [$($param)*] $($rest)*
        }
    };
    ([$($callback:tt)*] [$($generics:tt)*] [$($param:ident)*]
        const $name:ident : $ty:ty > $($rest:tt)*) => {
        $crate::__trace_generics! {
            [$($callback)*] [$($generics)* const $name: $ty,] [$($param)*] > $($rest)*
        }
    };
    ([$($callback:tt)*] [$($generics:tt)*] [$($param:ident)*]
        $lifetime:lifetime $(, $($rest:tt)*)?) => {
        $crate::__trace_generics! {
            [$($callback)*] [$($generics)* $lifetime,] [$($param)*] $($($rest)*)?
        }
    };
    ([$($callback:tt)*] [$($generics:tt)*] [$($param:ident)*]
        $lifetime:lifetime > $($rest:tt)*) => {
        $crate::__trace_generics! {
            [$($callback)*] [$($generics)* $lifetime,] [$($param)*] > $($rest)*
        }
    };
    ([$($callback:tt)*] [$($generics:tt)*] [$($param:ident)*]
        $name:ident : ?Sized $(, $($rest:tt)*)?) => {
        $crate::__trace_generics! {
            [$($callback)*] [$($generics)* $name: ?::core::marker::Sized,]
            [$($param)* $name] $($($rest)*)?
        }
    };
    ([$($callback:tt)*] [$($generics:tt)*] [$($param:ident)*]
        $name:ident : ?Sized > $($rest:tt)*) => {
        $crate::__trace_generics! {
            [$($callback)*] [$($generics)* $name: ?::core::marker::Sized,]
            [$($param)* $name] > $($rest)*
        }
    };
    ([$($callback:tt)*] [$($generics:tt)*] [$($param:ident)*]
        $name:ident $(, $($rest:tt)*)?) => {
        $crate::__trace_generics! {
            [$($callback)*] [$($generics)* $name,] [$($param)* $name] $($($rest)*)?
        }
    };
    ([$($callback:tt)*] [$($generics:tt)*] [$($param:ident)*]
        $name:ident > $($rest:tt)*) => {
        $crate::__trace_generics! {
            [$($callback)*] [$($generics)* $name,] [$($param)* $name] > $($rest)*
        }
    };
    ([$($callback:tt)*] [$($generics:tt)*] [$($param:ident)*] > $($rest:tt)+) => {
        $($callback)*! { [$($generics)*] [$($param)*] $($rest)+ }
    };
    ([$($callback:tt)*] [$($generics:tt)*] [$($param:ident)*]
        $name:ident : $($bound:tt)*) => {
        ::core::compile_error!(::core::concat!(
            "`unsafe_trace_leaf!` and `unsafe_trace_fields!` take no bound on `",
            ::core::stringify!($name),
            "` but `?Sized` (`unsafe_trace_fields!` adds `",
            ::core::stringify!($name),
            ": Trace` itself); write the impl by hand for a type that needs more"
        ));
    };
    ([$($callback:tt)*] [$($generics:tt)*] [$($param:ident)*]
        $lifetime:lifetime : $($bound:tt)*) => {
        ::core::compile_error!(::core::concat!(
            "`unsafe_trace_leaf!` and `unsafe_trace_fields!` take no bound on `",
            ::core::stringify!($lifetime),
            "`; write the impl by hand for a type that needs one"
        ));
    };
    // Anything else: name the token, and the one after it, which is where
    // a valid parameter (`T = u8`, `T U`) went wrong.
    ([$($callback:tt)*] [$($generics:tt)*] [$($param:ident)*]
        $unexpected:tt $($next:tt $($rest:tt)*)?) => {
        ::core::compile_error!(::core::concat!(
            "a generic parameter of `unsafe_trace_leaf!` or `unsafe_trace_fields!` ",
            "is a lifetime, `T`, `T: ?Sized` or `const N: Type`, followed by `,` or `>`; found `",
            ::core::stringify!($unexpected $($next)?),
            "`"
        ));
    };
}

/// The methods of an `unsafe_trace_fields!` impl.
#[doc(hidden)]
#[macro_export]
macro_rules! __trace_fields_body {
    // One type fact (`__may_own_gc` or `__edges_fixed`): the `$op` of the
    // listed fields' answers, one level deeper; `$past_limit`, the
    // conservative answer, past the depth limit.
    (@fact $method:ident, $past_limit:literal, $op:tt, $($field:tt),*) => {
        #[inline]
        fn $method(depth: ::core::primitive::u32) -> ::core::primitive::bool {
            // A field's type is named by a function that borrows it, so the
            // caller need not spell the types out.
            #[inline(always)]
            fn ask<S, T: $crate::Trace>(
                _: fn(&S) -> &T,
                depth: ::core::primitive::u32,
            ) -> ::core::primitive::bool {
                <T as $crate::Trace>::$method(depth)
            }
            if depth >= $crate::__private::MAX_MAY_OWN_DEPTH {
                return $past_limit;
            }
            !$past_limit $($op ask::<Self, _>(|this| {
                let Self { $field: field, .. } = this;
                field
            }, depth + 1))*
        }
    };
    ($($field:tt),*) => {
        #[inline]
        fn trace(&self, tracer: &mut $crate::Tracer) {
            // Each field once: a field listed twice would visit its `Gc`s
            // twice, and make the collector free a live object. Here it
            // is a compile error instead (E0025, "field bound multiple
            // times in the pattern").
            let Self { $($field: _,)* .. } = self;
            $({
                let Self { $field: field, .. } = self;
                $crate::Trace::trace(field, tracer);
            })*
        }

        $crate::__trace_fields_body!(@fact __may_own_gc, true, ||, $($field),*);
        $crate::__trace_fields_body!(@fact __edges_fixed, false, &&, $($field),*);
    };
}

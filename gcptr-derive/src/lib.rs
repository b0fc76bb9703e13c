//! `#[derive(Trace)]` for `gcptr`.
//!
//! Use it through the re-export, `gcptr::Trace`; its documentation lists the
//! attributes. This crate is split as serde_derive and thiserror are:
//! `model` parses the input and checks the `#[gc(...)]` attributes into
//! plain data (every mistake becomes a [`syn::Error`] spanned at the token at
//! fault), and `expand` writes the impl from that model.

mod expand;
mod model;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

/// Derives `gcptr::Trace`: lets the collector see the `Gc`s a type owns.
///
/// Works on structs (named, tuple, unit) and enums with any kind of
/// variant. The generated `trace` visits every field in declaration order,
/// except the ones marked `#[gc(skip)]`. Each type parameter that appears in
/// a traced field gets a `T: Trace` bound.
///
/// The derive also tells the collector, at compile time, whether the type
/// can own a `Gc` at all: a type whose traced fields are all plain data
/// (numbers, strings, collections of them, ...) is never tracked by the
/// cycle collector and costs what an `Rc` costs.
///
/// A `Drop` impl beside the derive is allowed. In a garbage cycle, `drop`
/// must not reach the other members of the cycle through its `Gc`s (that
/// panics, it is never undefined behaviour); use `#[gc(finalize)]` for
/// clean-up that needs them.
///
/// ```
/// use std::cell::RefCell;
/// use gcptr::{Gc, Trace};
///
/// #[derive(Trace)]
/// struct Node {
///     value: u32,
///     next: RefCell<Option<Gc<Node>>>,
/// }
///
/// #[derive(Trace)]
/// enum Tree<T> {
///     Leaf(T),
///     Branch { left: Gc<Tree<T>>, right: Gc<Tree<T>> },
/// }
///
/// let a = Gc::new(Node { value: 1, next: RefCell::new(None) });
/// *a.next.borrow_mut() = Some(a.clone()); // a cycle
/// assert_eq!(a.value, 1);
/// drop(a);
/// assert_eq!(gcptr::collect(), 1);
///
/// let leaf = |n| Gc::new(Tree::Leaf(n));
/// let tree = Tree::Branch { left: leaf(1u8), right: leaf(2) };
/// assert_eq!(gcptr::referents(&tree).len(), 2); // generics get `T: Trace`
/// ```
///
/// # Attributes
///
/// ## `#[gc(skip)]` on a field
///
/// The field is not traced and its type needs no `Trace` impl. This is
/// always safe: if the field does own a `Gc` after all, cycles through it
/// are never collected (they leak), but nothing is freed early. Nor are
/// deaths through it queued: a type whose `Gc`s are all in skipped fields
/// is untracked, and a long list linked through such fields drops
/// recursively, as a list of `Rc`s does (200,000 nodes overflow a 256 KiB
/// stack), where traced links die under the trashcan.
///
/// ```
/// use gcptr::{Gc, Trace};
///
/// struct Handle(u64); // a foreign type without a `Trace` impl
///
/// #[derive(Trace)]
/// struct File {
///     name: Gc<String>,
///     #[gc(skip)]
///     handle: Handle,
/// }
///
/// let name = Gc::new(String::from("notes.txt"));
/// let file = File { name: name.clone(), handle: Handle(3) };
/// // Only `name` is traced.
/// assert_eq!(gcptr::referents(&file), [Gc::as_ptr(&name).cast::<()>()]);
/// assert_eq!(file.handle.0, 3);
/// ```
///
/// A function pointer that takes a reference, such as `fn(&Event)`, needs
/// it too. `Trace` covers `fn(A, B, ..) -> R` (up to six arguments), but
/// `fn(&Event)` is higher-ranked, `for<'a> fn(&'a Event)`, a type no
/// generic impl names on stable Rust; rustc then reports that "the
/// implementation of `Trace` is not general enough". A function pointer
/// owns nothing, so skipping it loses nothing.
///
/// ## `#[gc(finalize)]` on the type
///
/// The type implements `gcptr::Finalize`; its `finalize` runs exactly
/// once before the value is dropped, also in a garbage cycle, where every
/// member of the cycle is still intact (Python's `__del__`, PEP 442).
///
/// ```
/// use std::cell::{Cell, RefCell};
/// use gcptr::{Finalize, Gc, Trace};
///
/// thread_local!(static PEERS_SEEN: Cell<u32> = const { Cell::new(0) });
///
/// #[derive(Trace)]
/// #[gc(finalize)]
/// struct Peer {
///     other: RefCell<Option<Gc<Peer>>>,
/// }
///
/// impl Finalize for Peer {
///     fn finalize(&self) {
///         // May read `self.other`, even in a dead cycle.
///         if self.other.borrow().as_ref().is_some_and(|o| o.other.borrow().is_some()) {
///             PEERS_SEEN.with(|n| n.set(n.get() + 1));
///         }
///     }
/// }
///
/// let a = Gc::new(Peer { other: RefCell::new(None) });
/// let b = Gc::new(Peer { other: RefCell::new(Some(a.clone())) });
/// *a.other.borrow_mut() = Some(b);
/// drop(a);
/// assert_eq!(gcptr::collect(), 2);
/// assert_eq!(PEERS_SEEN.with(Cell::get), 2); // each saw its peer intact
/// ```
///
/// ## `#[gc(bound = "...")]` on the type
///
/// Replaces the inferred `T: Trace` bounds with the given where-predicates
/// (`bound = ""` for none). The type's own `where` clause is always kept.
///
/// ```
/// use std::marker::PhantomData;
/// use gcptr::Trace;
///
/// // `PhantomData<T>` owns no `T`, so `Id<T>` is `Trace` whatever `T` is.
/// #[derive(Trace)]
/// #[gc(bound = "")]
/// struct Id<T> {
///     index: u32,
///     marker: PhantomData<T>,
/// }
///
/// struct NotTrace;
/// fn is_trace<T: Trace>() {}
/// is_trace::<Id<NotTrace>>();
/// ```
///
/// ## `#[gc(crate = "path")]` on the type
///
/// The path under which the generated code finds `gcptr`, when it is
/// re-exported or renamed (default `::gcptr`).
///
/// ```
/// mod runtime {
///     pub use gcptr as gc;
/// }
///
/// #[derive(runtime::gc::Trace)]
/// #[gc(crate = "runtime::gc")]
/// struct Counter(u64);
///
/// let counter = runtime::gc::Gc::new(Counter(1));
/// assert!(!runtime::gc::is_tracked(&counter)); // the derive saw plain data
/// assert_eq!(counter.0, 1);
/// ```
///
/// # Errors
///
/// The derive rejects unions, `#[repr(packed)]` types (a packed field can
/// not be borrowed to trace it), unknown or malformed `gc` attributes, and
/// `#[gc(skip)]` with arguments. A traced field whose type does not
/// implement `Trace` is an error at that field, suggesting `#[gc(skip)]`.
/// A type that implements `Finalize` without `#[gc(finalize)]` (whose
/// `finalize` would never run) is an error at its name, suggesting the
/// attribute; but not a generic type whose `Finalize` impl holds only for
/// some of its arguments (`impl Finalize for Node<u32>`).
#[proc_macro_derive(Trace, attributes(gc))]
pub fn derive_trace(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match model::Input::from_syn(&input) {
        Ok(model) => expand::derive(&model).into(),
        Err(error) => error.to_compile_error().into(),
    }
}

//! Python's memory model for Rust: reference counting plus a cycle
//! collector.
//!
//! [`Gc<T>`] is used where you would use `Rc<T>`. Every `Gc` is reference
//! counted, so an object dies the moment its last `Gc` goes, as with `Rc`:
//! deterministically, in the thread that dropped it. What `Rc` cannot do is
//! free objects that refer to each other in a cycle (a parent and its
//! children, an observer and its subject, a button and its click handler).
//! gcptr finds such cycles with a per-thread, generational collector
//! modelled on CPython's `gc` module, and reclaims them.
//!
//! ```
//! use std::cell::RefCell;
//! use gcptr::{Gc, Trace};
//!
//! #[derive(Trace)]
//! struct Node {
//!     name: String,
//!     next: RefCell<Option<Gc<Node>>>,
//! }
//!
//! let a = Gc::new(Node { name: "a".into(), next: RefCell::new(None) });
//! let b = Gc::new(Node { name: "b".into(), next: RefCell::new(Some(a.clone())) });
//! *a.next.borrow_mut() = Some(b.clone()); // a -> b -> a
//! drop((a, b));                           // still alive: they hold each other
//! assert_eq!(gcptr::collect(), 2);        // found and freed
//! ```
//!
//! # The model
//!
//! * **Reference counts** decide when an object dies, as in CPython and
//!   `Rc`. When the count reaches zero, the object's finalizer (if its type
//!   has one, see [`Finalize`]) runs, then its value is dropped.
//! * **Tracing** tells the collector which `Gc`s an object owns:
//!   `#[derive(Trace)]` writes the [`Trace`] impl. Types that can never own
//!   a `Gc` (plain data: numbers, strings, vectors of them) are not
//!   *tracked*: the collector never sees them, and they cost what `Rc`
//!   costs. Neither are *acyclic* objects, whose value cannot gain a `Gc`
//!   once shared and owned only untracked objects when made: an immutable
//!   tree is never scanned (see [`is_tracked`]).
//! * **The collector** finds garbage cycles by trial deletion: for each
//!   tracked object it subtracts, from its strong count, the references
//!   that come from other tracked objects. An object with references left
//!   over is held from outside (a local variable, a static, an untracked
//!   owner) and so is everything it reaches; the rest is garbage. It runs
//!   automatically as tracked objects are allocated (see [`threshold`]), or
//!   when you call [`collect`].
//! * **Generations.** Tracked objects start in generation 0; those that
//!   survive a collection move up, to 1, then 2. Young generations are
//!   collected often and old ones rarely, with CPython's thresholds
//!   `[700, 10, 10]`, so the cost of collecting stays proportional to the
//!   work the program does. Garbage only comes to be when some object
//!   loses a reference and keeps others; until one does, automatic
//!   collections skip their analysis (see [`set_threshold`]), and a program
//!   that only builds its data pays nothing for them. A young collection
//!   also skips while none of its objects has lost a reference.
//! * **Weak references** ([`Weak`]) never keep an object alive, and stop
//!   upgrading as soon as the object is dead or condemned by a collection.
//! * **Memory.** A freed tracked object's memory stays with its thread (up
//!   to 512 KiB in all) for the next object of the same layout, as
//!   CPython's `pymalloc` keeps its pools; it goes back to the global
//!   allocator when the thread exits. Building with
//!   `--cfg gcptr_no_block_reuse` turns this off, for memory checkers.
//!
//! # Drop and dead cycles
//!
//! When the collector frees a cycle, it drops the members' values one after
//! the other. A `Drop` impl that reaches a peer through a `Gc` may find that
//! peer already dropped: such an access panics with a message naming the
//! cause; it is never a use-after-free. (A type with no drop glue, such as
//! a `ManuallyDrop`, skips that test: dropping it leaves its value as it
//! was, so reading it is harmless.) Code that needs its peers belongs
//! in a finalizer ([`Finalize`]), which runs while the whole cycle is
//! intact.
//!
//! # Threads
//!
//! `Gc` and `Weak` are neither `Send` nor `Sync`. Each thread has its own
//! collector, and every function of this crate's root acts on the calling
//! thread's. When a thread exits, the cycles it left unreachable are
//! collected (their finalizers and `Drop`s run) before it is joined. What
//! crosses threads is a [`sync::ThreadBound`]: a handle that every thread
//! may hold and drop, and only its home thread may open, which drops its
//! value at home.
//!
//! That collection runs in the destructor of a thread-local of the
//! collector's, which the thread's first use of the collector (its first
//! tracked `Gc`, say) registers. Thread-locals are destroyed in the reverse
//! order of their first use, so those first used before that are destroyed
//! after the collection: they may hold objects it found alive, and their
//! destructors may let go of cycles or make new ones. The collector waits
//! for them: the first use of gcptr by a later thread-local destructor (a
//! lost reference, a death, a new object, a call) brings it back, and
//! another collection follows as soon as that destructor returns. So the
//! cycles that thread-locals let go at thread exit are reclaimed,
//! whichever thread-local was first.
//!
//! The limits. Fifteen late destructors that use gcptr's objects get a
//! collection after them (one that only asks `count()`, `threshold()`,
//! `is_enabled()`, `stats()` or `freeze_count()` uses none of the fifteen);
//! a cycle let go or made after those is leaked (no finalizer,
//! no `Drop`), as is one let go by code that runs after all thread-local
//! destructors (a `pthread` key's destructor, on Linux). (A thread that
//! leaks tracked objects, by `mem::forget` or in a thread-local never
//! destroyed, leaks those objects, and nothing of the collector's: its
//! state lives in thread-local memory, freed with the thread.)
//!
//! ```
//! use std::cell::RefCell;
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use gcptr::{Gc, Trace};
//!
//! static DROPPED: AtomicBool = AtomicBool::new(false);
//!
//! #[derive(Trace)]
//! struct Node(RefCell<Option<Gc<Node>>>);
//!
//! impl Drop for Node {
//!     fn drop(&mut self) {
//!         DROPPED.store(true, Ordering::Relaxed);
//!     }
//! }
//!
//! thread_local!(static ROOT: RefCell<Option<Gc<Node>>> = const { RefCell::new(None) });
//!
//! std::thread::spawn(|| {
//!     ROOT.with(|root| assert!(root.borrow().is_none())); // first use: destroyed last
//!     let node = Gc::new(Node(RefCell::new(None)));
//!     *node.0.borrow_mut() = Some(node.clone());
//!     ROOT.with(|root| *root.borrow_mut() = Some(node));
//! })
//! .join()
//! .unwrap();
//! assert!(DROPPED.load(Ordering::Relaxed), "reclaimed at thread exit");
//! ```
//!
//! # Python to gcptr
//!
//! | Python | gcptr |
//! |---|---|
//! | `x = Obj()` | `let x = Gc::new(Obj { .. })` |
//! | `a is b` | `Gc::ptr_eq(&a, &b)` |
//! | `id(x)` | `Gc::as_ptr(&x)` |
//! | `sys.getrefcount(x) - 1` | `Gc::strong_count(&x)` |
//! | `gc.collect()` | [`collect()`] |
//! | `gc.collect(1)` | [`collect_generation(1)`](collect_generation) |
//! | `gc.enable()`, `gc.disable()`, `gc.isenabled()` | [`enable`], [`disable`], [`is_enabled`] |
//! | `gc.get_count()` | [`count()`] |
//! | `gc.get_threshold()`, `gc.set_threshold()` | [`threshold`], [`set_threshold`] |
//! | `gc.get_stats()` | [`stats()`] |
//! | `gc.freeze()`, `gc.unfreeze()`, `gc.get_freeze_count()` | [`freeze`], [`unfreeze`], [`freeze_count`] |
//! | `gc.get_referents(x)` | [`referents(&*x)`](referents) |
//! | `gc.get_referrers(x)` | [`referrers(&x)`](referrers) |
//! | `gc.is_tracked(x)` | [`is_tracked(&x)`](is_tracked) |
//! | `__del__` | [`Finalize`] with `#[gc(finalize)]` |
//! | a closure that captures objects (`button.on_click = lambda: button.press()`) | [`gc_closure!`]`([button] move \|\| button.press())`, stored as `Box<dyn GcFn>` or `Gc<dyn GcFn>` ([`GcFn`]) |
//! | duck typing, `list[Observer]` | `Vec<Gc<dyn Observer>>` with `trait Observer: Trace`, each made by [`gc_coerce!`]`(gc => dyn Observer)` |
//! | `weakref.ref(x)` | [`Gc::downgrade(&x)`](Gc::downgrade) |
//! | `weakref.ref(x, callback)` | [`Gc::downgrade_with(&x, callback)`](Gc::downgrade_with) |
//! | `weakref.finalize(x, f)` | [`Gc::on_death(&x, f)`](Gc::on_death) |
//! | its `f()`, `f.detach()`, `f.alive` | [`DeathCallback::run_now`], [`DeathCallback::cancel`], [`DeathCallback::is_pending`] |
//! | `WeakValueDictionary`, `WeakKeyDictionary`, `WeakSet` | [`WeakValueMap`], [`WeakKeyMap`], [`WeakSet`] |
//! | a `WeakSet`'s `<=`, `>=`, `isdisjoint`, `==` | [`WeakSet::is_subset`], [`WeakSet::is_superset`], [`WeakSet::is_disjoint`], `==` (live members, by identity) |
//! | a `WeakSet`'s `copy()` | `set.clone()` (the live members, held weakly) |
//! | a `WeakSet`'s `\|`, `&`, `-`, `^` | `&a \| &b`, `&a & &b`, `&a - &b`, `&a ^ &b`, or [`WeakSet::union`], [`WeakSet::intersection`], [`WeakSet::difference`], [`WeakSet::symmetric_difference`] |
//! | `keyrefs()`, `valuerefs()` | [`WeakKeyMap::weak_keys`], [`WeakValueMap::weak_values`] |
//! | `pop(k)`, `pop(k, default)` | [`WeakValueMap::remove`] (`.unwrap_or(default)`), [`WeakValueMap::remove_entry`] for the key too; [`WeakKeyMap::remove`] |
//! | `weakref.ref(x, callback)`'s `callback(ref)` | the callback gets nothing: capture a [`Gc::downgrade`] made before ([`Weak::ptr_eq`] still works) |
//! | `finalize.peek()` | none: [`DeathCallback::is_pending`], and a [`Weak`] kept beside it for the object |
//! | an object shared with another thread | [`sync::ThreadBound`] |

#![cfg_attr(feature = "nightly", feature(coerce_unsized, unsize))]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

#[macro_use]
mod macros;

mod closure;
mod coerce;
mod collector;
mod gc;
mod header;
mod inspect;
mod slice;
mod spill;
pub mod sync;
mod trace;
mod trace_impls;
mod weak;
mod weak_maps;

pub use closure::{GcClosure, GcFn};
pub use collector::{
    collect, collect_generation, count, disable, enable, freeze, freeze_count, is_enabled,
    set_threshold, stats, threshold, unfreeze, GenerationStats,
};
pub use gc::Gc;
pub use inspect::{is_tracked, referents, referrers, ObjectRef};
pub use trace::{Finalize, Trace, Tracer};
pub use weak::Weak;
pub use weak_maps::{DeathCallback, WeakKeyMap, WeakSet, WeakValueMap, WeakWithCallback};

// The README's examples run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

/// Items the macros expand to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::closure::{
        __listed as gc_closure_listed, CaptureClone, CapturesListed, CapturesOf,
    };
    pub use crate::coerce::{from_raw_box, into_raw_box, CoercePointer};
    pub use crate::header::GcBox;
    pub use crate::trace::MAX_MAY_OWN_DEPTH;

    /// The derive's check that a type with no `#[gc(finalize)]` does not
    /// implement `Finalize` (whose `finalize` would then never run): its
    /// probe answers [`FinalizeNeverRuns`] for such a type, [`NoFinalizer`]
    /// otherwise, and the check demands `FinalizeAttribute<T>` of it.
    #[diagnostic::on_unimplemented(
        message = "`{T}` implements `Finalize`, but its `#[derive(Trace)]` has no \
                   `#[gc(finalize)]`: its `finalize` would never run",
        label = "add `#[gc(finalize)]` to this type",
        note = "a finalizer runs only for a type that opts in with `#[gc(finalize)]` \
                beside `#[derive(Trace)]`"
    )]
    pub trait FinalizeAttribute<T: ?Sized> {}

    /// The probe's answer for a type without `Finalize`: nothing to run.
    pub struct NoFinalizer;

    impl<T: ?Sized> FinalizeAttribute<T> for NoFinalizer {}

    /// The probe's answer for a type that implements `Finalize` with no
    /// `#[gc(finalize)]`: it satisfies no `FinalizeAttribute`.
    pub struct FinalizeNeverRuns;
}

/// Derives [`Trace`]; see the `gcptr-derive` crate for the attributes.
pub use gcptr_derive::Trace;

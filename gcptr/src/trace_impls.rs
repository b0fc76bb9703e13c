//! [`Trace`] for the standard library's types.
//!
//! Leaves (types that can own no `Gc`) say so through `__may_own_gc`, and
//! containers pass on their elements' answer, so that a `Gc<u64>` or a
//! `Gc<Vec<String>>` is never tracked. Pointers to unsized types (`Box<T>`
//! for `T: ?Sized`) cannot ask their pointee, which may be a trait object,
//! and answer `true`, as `Rc` and `Arc` do, whose contents are not traced:
//! a pointee without drop glue may still own a `Gc` in a `ManuallyDrop`.
//! Their edges are fixed when the pointee has no drop glue (`Rc` and `Arc`
//! show none), so that their holders are acyclic. The hashers of `HashMap`
//! and `HashSet` may own a `Gc` if they have drop glue (none can be taken
//! out of the map to be released by hand).

use core::cell::{Cell, OnceCell, RefCell};
use core::marker::{PhantomData, PhantomPinned};
use core::num::{
    NonZeroI128, NonZeroI16, NonZeroI32, NonZeroI64, NonZeroI8, NonZeroIsize, NonZeroU128,
    NonZeroU16, NonZeroU32, NonZeroU64, NonZeroU8, NonZeroUsize, Wrapping,
};
use core::sync::atomic;
use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet, LinkedList, VecDeque};
use std::ffi::{CStr, CString, OsStr, OsString};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use crate::trace::{Trace, Tracer};

macro_rules! leaf {
    ($(impl[$($gen:tt)*] $ty:ty;)*) => {$(
        // SAFETY: this type owns no `Gc` (or hides it from the collector,
        // which can only leak; see below), as `unsafe_trace_leaf!` needs.
        crate::__trace_leaf_impl! { [$($gen)*] [] $ty }
    )*};
    ($($ty:ty),* $(,)?) => {
        leaf! { $(impl[] $ty;)* }
    };
}

leaf!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    NonZeroU8,
    NonZeroU16,
    NonZeroU32,
    NonZeroU64,
    NonZeroU128,
    NonZeroUsize,
    NonZeroI8,
    NonZeroI16,
    NonZeroI32,
    NonZeroI64,
    NonZeroI128,
    NonZeroIsize,
    String,
    Duration,
    std::time::Instant,
    std::time::SystemTime,
    CString,
    OsString,
    PathBuf,
    PhantomPinned,
    atomic::AtomicBool,
    atomic::AtomicU8,
    atomic::AtomicU16,
    atomic::AtomicU32,
    atomic::AtomicU64,
    atomic::AtomicUsize,
    atomic::AtomicI8,
    atomic::AtomicI16,
    atomic::AtomicI32,
    atomic::AtomicI64,
    atomic::AtomicIsize,
    core::any::TypeId,
    core::cmp::Ordering,
    std::net::IpAddr,
    std::net::SocketAddr,
    core::ops::RangeFull,
    core::convert::Infallible,
);

// Unsized leaves: their `__may_own_gc` is never asked (it needs `Sized`).
macro_rules! unsized_leaf {
    ($($ty:ty),*) => {$(
        // SAFETY: this type owns no `Gc`.
        unsafe impl Trace for $ty {
            #[inline(always)]
            fn trace(&self, _: &mut Tracer) {}
        }
    )*};
}

unsized_leaf!(str, CStr, OsStr, Path);

// `&'static T` and `PhantomData` own nothing; `Cell<T: Copy>` cannot hold a
// `Gc` (`Gc` is not `Copy`).
leaf! {
    impl[T: ?Sized] &'static T;
    impl[T: ?Sized] PhantomData<T>;
    impl[T: Copy] Cell<T>;
}

// `Rc` and `Arc` share their value with owners the collector cannot see, so
// their contents are not traced: a `Gc` inside them only looks held from
// outside (a leak if it closes a cycle, never an early free), as with
// `ThreadBound`. Prefer `Gc` to `Rc` inside collected graphs. They may own a
// `Gc` all the same, whatever their value: then their holders are tracked,
// so that a list of `Gc` nodes linked through them dies under the trashcan
// rather than recursively, and acyclic (the edges shown, none, never
// change), so never analysed. Whether the value has drop glue does not
// tell: an `Rc<ManuallyDrop<Gc<_>>>` has none, and a `Drop` impl that takes
// the `Gc` out (`Rc::into_inner`, `ManuallyDrop::into_inner`) releases it.
macro_rules! shared {
    ($($ty:ident),*) => {$(
        // SAFETY: visits nothing (see above); `__may_own_gc` keeps its
        // default, `true`.
        unsafe impl<T: ?Sized> Trace for $ty<T> {
            #[inline(always)]
            fn trace(&self, _: &mut Tracer) {}
            #[inline(always)]
            fn __edges_fixed(_depth: u32) -> bool {
                true
            }
        }
    )*};
}

shared!(Rc, Arc);

// The value is read without a borrow: taking and giving back a shared
// borrow cost five of the eight instructions it takes to trace a
// `RefCell<Option<Gc<_>>>` in a collection. No `borrow_mut` can happen
// while the trace runs, since only code the trace runs could make one: the
// traces of this crate and of the derive run none but the tracer's and
// those of what the value owns; the tracer runs no code of the program,
// not even the global allocator (`crate::spill`); and a hand-written trace
// promises it (`Trace`'s contract, point 2).
//
// SAFETY: visits the value unless it is mutably borrowed. While it is, the
// edges go unreported, which can only make objects look held from outside
// (a leak for this collection, never an early free); see `Trace`'s
// contract, point 1.
unsafe impl<T: Trace> Trace for RefCell<T> {
    #[inline(always)]
    fn trace(&self, tracer: &mut Tracer) {
        // SAFETY: no `&mut T` exists (checked), and none is made while
        // `value` lives (see above: no `borrow_mut` during a trace).
        if let Ok(value) = unsafe { self.try_borrow_unguarded() } {
            value.trace(tracer);
        } else {
            tracer.note_unreported_edges();
        }
    }
    #[inline(always)]
    fn __may_own_gc(depth: u32) -> bool {
        T::__may_own_gc(depth)
    }
    #[inline(always)]
    fn __drop_only_releases_gcs() -> bool {
        T::__drop_only_releases_gcs()
    }
}

// A container's edges are fixed when its elements' are: none of these
// changes its contents through `&self`, except `OnceCell`, which keeps the
// default (fixed only if it can own no `Gc`).
//
// The traces of containers, `RefCell` and `Gc` are `inline(always)`: a type
// with two fields of one container type (`next` and `prev`) otherwise gets
// one out-of-line copy of the edge code, called once per edge with its
// registers saved and restored each time.
// A `Vec`'s loop is the exception, out of line (`trace_elements`).
// Those that own their contents inline (no allocation of their own) also
// pass on whether dropping them drops nothing but `Gc`s (`drop_releases`).
macro_rules! forward {
    ($(impl[$($gen:tt)*] $ty:ty => |$this:ident, $tracer:ident| $body:expr,
        may_own($depth:ident): $may:expr $(, fixed: $fixed:expr)?
        $(, drop_releases: $releases:expr)?;)*) => {$(
        // SAFETY: visits every element the container owns, once.
        unsafe impl<$($gen)*> Trace for $ty {
            #[inline(always)]
            fn trace(&self, $tracer: &mut Tracer) {
                let $this = self;
                $body
            }
            #[inline(always)]
            fn __may_own_gc($depth: u32) -> bool {
                $may
            }
            $(
                #[inline(always)]
                fn __edges_fixed($depth: u32) -> bool {
                    $fixed
                }
            )?
            $(
                #[inline(always)]
                fn __drop_only_releases_gcs() -> bool {
                    $releases
                }
            )?
        }
    )*};
}

forward! {
    impl[T: Trace] Option<T> => |this, tracer| if let Some(value) = this {
        value.trace(tracer)
    }, may_own(depth): T::__may_own_gc(depth),
        fixed: T::__edges_fixed(depth),
        drop_releases: T::__drop_only_releases_gcs();
    impl[T: Trace, E: Trace] Result<T, E> => |this, tracer| match this {
        Ok(value) => value.trace(tracer),
        Err(error) => error.trace(tracer),
    }, may_own(depth): T::__may_own_gc(depth) || E::__may_own_gc(depth),
        fixed: T::__edges_fixed(depth) && E::__edges_fixed(depth),
        drop_releases: T::__drop_only_releases_gcs() && E::__drop_only_releases_gcs();
    impl[T: Trace] Vec<T> => |this, tracer| if let [first, rest @ ..] = this.as_slice() {
        trace_elements(first, rest, tracer)
    },
        may_own(depth): T::__may_own_gc(depth),
        fixed: T::__edges_fixed(depth);
    impl[T: Trace] VecDeque<T> => |this, tracer| this.iter().for_each(|v| v.trace(tracer)),
        may_own(depth): T::__may_own_gc(depth),
        fixed: T::__edges_fixed(depth);
    impl[T: Trace] LinkedList<T> => |this, tracer| this.iter().for_each(|v| v.trace(tracer)),
        may_own(depth): T::__may_own_gc(depth),
        fixed: T::__edges_fixed(depth);
    impl[T: Trace] BinaryHeap<T> => |this, tracer| this.iter().for_each(|v| v.trace(tracer)),
        may_own(depth): T::__may_own_gc(depth),
        fixed: T::__edges_fixed(depth);
    impl[T: Trace, const N: usize] [T; N] => |this, tracer| this.iter().for_each(|v| v.trace(tracer)),
        may_own(depth): N > 0 && T::__may_own_gc(depth),
        fixed: N == 0 || T::__edges_fixed(depth),
        drop_releases: N == 0 || T::__drop_only_releases_gcs();
    // The hasher `S` is not traced (it need not implement `Trace`): a `Gc`
    // it owns only looks held from outside, as in an `Rc`, and makes its
    // holder tracked and acyclic if nothing else does (see `Rc`'s impl).
    impl[T: Trace, S: 'static] HashSet<T, S> => |this, tracer| this.iter().for_each(|v| v.trace(tracer)),
        may_own(depth): T::__may_own_gc(depth) || core::mem::needs_drop::<S>(),
        fixed: T::__edges_fixed(depth);
    impl[T: Trace] BTreeSet<T> => |this, tracer| this.iter().for_each(|v| v.trace(tracer)),
        may_own(depth): T::__may_own_gc(depth),
        fixed: T::__edges_fixed(depth);
    impl[K: Trace, V: Trace, S: 'static] HashMap<K, V, S> => |this, tracer| this.iter().for_each(|(k, v)| {
        k.trace(tracer);
        v.trace(tracer);
    }), may_own(depth): K::__may_own_gc(depth) || V::__may_own_gc(depth)
            || core::mem::needs_drop::<S>(),
        fixed: K::__edges_fixed(depth) && V::__edges_fixed(depth);
    impl[K: Trace, V: Trace] BTreeMap<K, V> => |this, tracer| this.iter().for_each(|(k, v)| {
        k.trace(tracer);
        v.trace(tracer);
    }), may_own(depth): K::__may_own_gc(depth) || V::__may_own_gc(depth),
        fixed: K::__edges_fixed(depth) && V::__edges_fixed(depth);
    impl[T: Trace] OnceCell<T> => |this, tracer| if let Some(value) = this.get() {
        value.trace(tracer)
    }, may_own(depth): T::__may_own_gc(depth),
        drop_releases: T::__drop_only_releases_gcs();
    impl[T: Trace] Wrapping<T> => |this, tracer| this.0.trace(tracer),
        may_own(depth): T::__may_own_gc(depth),
        fixed: T::__edges_fixed(depth),
        drop_releases: T::__drop_only_releases_gcs();
    impl[T: Trace] core::cmp::Reverse<T> => |this, tracer| this.0.trace(tracer),
        may_own(depth): T::__may_own_gc(depth),
        fixed: T::__edges_fixed(depth),
        drop_releases: T::__drop_only_releases_gcs();
    impl[T: Trace] core::mem::ManuallyDrop<T> => |this, tracer| (**this).trace(tracer),
        may_own(depth): T::__may_own_gc(depth),
        fixed: T::__edges_fixed(depth),
        // Its drop does nothing; its trace is `T`'s (`false` for a `T`
        // with drop glue: conservative).
        drop_releases: T::__drop_only_releases_gcs();
    impl[T: Trace] core::ops::Range<T> => |this, tracer| {
        this.start.trace(tracer);
        this.end.trace(tracer);
    }, may_own(depth): T::__may_own_gc(depth),
        fixed: T::__edges_fixed(depth),
        drop_releases: T::__drop_only_releases_gcs();
}

/// Traces the elements of a non-empty `Vec`, `first` and the `rest`, out
/// of line: the call is per `Vec`, not per edge. Inlined, the loop made
/// every trace of the value save and restore the six registers it uses,
/// also when the `Vec` was empty (a leaf of a graph: rust-cc's stress test
/// traces about 154,000 of them); now such a trace saves none. The split
/// into `first` and `rest` is the caller's test for an empty `Vec`, which
/// the loop would otherwise repeat.
#[inline(never)]
fn trace_elements<T: Trace>(first: &T, rest: &[T], tracer: &mut Tracer) {
    first.trace(tracer);
    rest.iter().for_each(|v| v.trace(tracer));
}

// SAFETY: visits every element once.
unsafe impl<T: Trace> Trace for [T] {
    #[inline]
    fn trace(&self, tracer: &mut Tracer) {
        self.iter().for_each(|v| v.trace(tracer));
    }
}

// SAFETY: visits the boxed value; `__may_own_gc` keeps its default, `true`.
unsafe impl<T: ?Sized + Trace> Trace for Box<T> {
    #[inline]
    fn trace(&self, tracer: &mut Tracer) {
        (**self).trace(tracer);
    }

    /// The pointee may be unsized, and cannot be asked. Whether it has
    /// drop glue can be, but does not tell whether it owns a `Gc`: a
    /// `ManuallyDrop<Gc<_>>` has none, and a `Drop` impl that takes the
    /// `Gc` out (`ManuallyDrop::into_inner`) releases it, so a box always
    /// may own one (its holder is tracked and dies under the trashcan).
    /// A pointee without drop glue can gain a `Gc` through `&` only inside
    /// a `ManuallyDrop` (a `RefCell<ManuallyDrop<Gc<_>>>`), which this
    /// answer misses; that can only leak (`Trace`'s point 4). So a
    /// `Gc<Box<u64>>` or `Gc<Box<str>>` is acyclic: never analysed.
    #[inline(always)]
    fn __edges_fixed(_depth: u32) -> bool {
        !core::mem::needs_drop::<T>()
    }
}

macro_rules! tuples {
    ($(($($name:ident),+))*) => {$(
        // SAFETY: visits every field once.
        unsafe impl<$($name: Trace),+> Trace for ($($name,)+) {
            #[inline]
            #[allow(non_snake_case)]
            fn trace(&self, tracer: &mut Tracer) {
                let ($($name,)+) = self;
                $($name.trace(tracer);)+
            }
            #[inline(always)]
            fn __may_own_gc(depth: u32) -> bool {
                false $(|| $name::__may_own_gc(depth))+
            }
            #[inline(always)]
            fn __edges_fixed(depth: u32) -> bool {
                true $(&& $name::__edges_fixed(depth))+
            }
            #[inline(always)]
            fn __drop_only_releases_gcs() -> bool {
                true $(&& $name::__drop_only_releases_gcs())+
            }
        }
    )*};
}

tuples! {
    (A) (A, B) (A, B, C) (A, B, C, D) (A, B, C, D, E) (A, B, C, D, E, F) (A, B, C, D, E, F, G)
    (A, B, C, D, E, F, G, H) (A, B, C, D, E, F, G, H, I) (A, B, C, D, E, F, G, H, I, J)
    (A, B, C, D, E, F, G, H, I, J, K) (A, B, C, D, E, F, G, H, I, J, K, L)
}

/// Function pointers own nothing: leaves.
macro_rules! fn_pointers {
    ($(($($arg:ident),*))*) => {
        leaf! { $(impl[R $(, $arg)*] fn($($arg),*) -> R;)* }
    };
}

fn_pointers! { () (A) (A, B) (A, B, C) (A, B, C, D) (A, B, C, D, E) (A, B, C, D, E, F) }

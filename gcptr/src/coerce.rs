//! `Gc<dyn Trait>` on stable Rust: the [`gc_coerce!`](crate::gc_coerce)
//! macro, and `CoerceUnsized` behind the `nightly` feature.
//!
//! Stable Rust cannot name "`T` unsizes to `U`" in a bound, but it coerces
//! a raw pointer `*mut GcBox<T>` to `*mut GcBox<dyn Trait>` wherever the
//! concrete types are known. The macro takes the pointer out of a `Gc` (or
//! `Weak`), lets the compiler coerce it, which it only does when `T`
//! implements the trait, and puts it back. The header keeps the concrete
//! type's vtable, so the collector treats the object exactly as before.

use core::marker::PhantomData;
use core::ptr::NonNull;

use crate::gc::Gc;
use crate::header::GcBox;
use crate::weak::Weak;

/// A pointer type that `gc_coerce!` can take apart and rebuild: `Gc` and
/// `Weak`, and nothing else. The trait is sealed: the macro trusts
/// `into_raw_box` to hand back the pointer it rebuilds, so no other crate
/// may implement it.
pub trait CoercePointer: Sized + sealed::Sealed {
    /// What it points at.
    type Pointee: ?Sized;
    /// The same pointer type, pointing at `U`.
    type With<U: ?Sized>;
    /// Gives up the pointer, keeping its counts.
    fn into_raw_box(self) -> *mut GcBox<Self::Pointee>;
    /// Rebuilds the pointer.
    ///
    /// # Safety
    /// `raw` comes from `into_raw_box` on the same pointer type, changed
    /// only by an unsizing coercion.
    unsafe fn from_raw_box<U: ?Sized>(raw: *mut GcBox<U>) -> Self::With<U>;
}

mod sealed {
    /// Implemented only here, for `Gc` and `Weak`.
    pub trait Sealed {}

    impl<T: ?Sized> Sealed for crate::gc::Gc<T> {}
    impl<T: ?Sized> Sealed for crate::weak::Weak<T> {}
}

impl<T: ?Sized> CoercePointer for Gc<T> {
    type Pointee = T;
    type With<U: ?Sized> = Gc<U>;

    fn into_raw_box(self) -> *mut GcBox<T> {
        let raw = self.inner().as_ptr();
        core::mem::forget(self);
        raw
    }

    unsafe fn from_raw_box<U: ?Sized>(raw: *mut GcBox<U>) -> Gc<U> {
        // SAFETY: per the contract, `raw` is the non-null pointer a `Gc` gave
        // up, with its strong reference.
        unsafe { Gc::from_inner(NonNull::new_unchecked(raw)) }
    }
}

impl<T: ?Sized> CoercePointer for Weak<T> {
    type Pointee = T;
    type With<U: ?Sized> = Weak<U>;

    fn into_raw_box(self) -> *mut GcBox<T> {
        // With the `Weak`'s epoch in its low bit: coercion keeps the
        // address, and nothing reads through it before `from_raw_box`.
        self.into_tagged()
    }

    unsafe fn from_raw_box<U: ?Sized>(raw: *mut GcBox<U>) -> Weak<U> {
        // SAFETY: per the contract, the pointer a `Weak` gave up (the
        // dangling address of `Weak::new` included: coercion keeps it).
        Weak::from_tagged(unsafe { NonNull::new_unchecked(raw) })
    }
}

/// Takes `pointer` apart for `gc_coerce!`; the marker remembers its type.
pub fn into_raw_box<P: CoercePointer>(pointer: P) -> (*mut GcBox<P::Pointee>, PhantomData<P>) {
    (pointer.into_raw_box(), PhantomData)
}

/// Rebuilds a pointer for `gc_coerce!`.
///
/// # Safety
/// As [`CoercePointer::from_raw_box`].
pub unsafe fn from_raw_box<P: CoercePointer, U: ?Sized>(
    _: PhantomData<P>,
    raw: *mut GcBox<U>,
) -> P::With<U> {
    // SAFETY: per the contract.
    unsafe { P::from_raw_box(raw) }
}

/// Converts a `Gc<T>` into a `Gc<dyn Trait>` (or a `Weak<T>` into a
/// `Weak<dyn Trait>`) on stable Rust, for any trait that `T` implements.
/// The conversion is checked at compile time and costs nothing at run time;
/// the object keeps its counts, and is dropped and collected as before.
///
/// With the `nightly` feature, plain coercion works too:
/// `let g: Gc<dyn Trait> = Gc::new(x);`.
///
/// # Examples
///
/// ```
/// use std::cell::RefCell;
/// use gcptr::{gc_coerce, Gc, Trace, Weak};
///
/// trait Shape: Trace {
///     fn area(&self) -> f64;
/// }
///
/// #[derive(Trace)]
/// struct Square(f64);
///
/// impl Shape for Square {
///     fn area(&self) -> f64 {
///         self.0 * self.0
///     }
/// }
///
/// let square = Gc::new(Square(2.0));
/// let weak: Weak<dyn Shape> = gc_coerce!(Gc::downgrade(&square) => dyn Shape);
/// let shapes: Vec<Gc<dyn Shape>> = vec![gc_coerce!(square => dyn Shape)];
/// assert_eq!(shapes[0].area(), 4.0);
/// assert_eq!(weak.upgrade().unwrap().area(), 4.0);
/// ```
///
/// A type that does not implement the trait is rejected:
///
/// ```compile_fail
/// use gcptr::{gc_coerce, Gc, Trace};
/// trait Shape: Trace {}
/// let not_a_shape = Gc::new(5u32);
/// let _: Gc<dyn Shape> = gc_coerce!(not_a_shape => dyn Shape);
/// ```
#[macro_export]
macro_rules! gc_coerce {
    ($pointer:expr => $target:ty) => {{
        let (raw, kind) = $crate::__private::into_raw_box($pointer);
        // An implicit coercion, not an `as` cast: it only unsizes, and only
        // to a trait the pointee implements.
        let raw: *mut $crate::__private::GcBox<$target> = raw;
        // SAFETY: `raw` comes from `into_raw_box` of the same pointer type
        // and was only unsized.
        unsafe { $crate::__private::from_raw_box(kind, raw) }
    }};
}

#[cfg(feature = "nightly")]
mod nightly {
    use core::marker::Unsize;
    use core::ops::CoerceUnsized;

    use crate::gc::Gc;
    use crate::weak::Weak;

    impl<T: ?Sized + Unsize<U>, U: ?Sized> CoerceUnsized<Gc<U>> for Gc<T> {}
    impl<T: ?Sized + Unsize<U>, U: ?Sized> CoerceUnsized<Weak<U>> for Weak<T> {}
}

//! [`Weak<T>`]: the weak pointer.

use core::fmt;
use core::marker::PhantomData;
use core::ptr::{self, NonNull};

use crate::collector::death;
use crate::gc::Gc;
use crate::header::{GcBox, Header, WeakEpoch};
use crate::trace::{Trace, Tracer};

/// A reference that does not keep its object alive: Python's
/// `weakref.ref`, in place of `rc::Weak<T>`.
///
/// [`upgrade`](Weak::upgrade) returns a [`Gc`] while the object lives, and
/// `None` once it is dead, including as soon as a collection has found it
/// to be garbage, before its finalizer runs (as CPython clears weak
/// references first); it stays `None` if the finalizer resurrects the
/// object, while the `Weak`s made after that upgrade (see
/// [`Finalize`](crate::Finalize)). A `Weak` keeps the allocation, never
/// the value: the value is dropped when the object dies, but its memory
/// (the header and the value's bytes, in one block) is freed with the last
/// `Weak`, as with `rc::Weak`; hold a `Weak` to a large value only as long
/// as you need it. The collector does not count a `Weak` as a reference: a
/// cycle of `Weak`s is no cycle at all.
///
/// # Examples
///
/// ```
/// use std::cell::RefCell;
/// use gcptr::{Gc, Trace, Weak};
///
/// #[derive(Trace)]
/// struct TreeNode {
///     parent: RefCell<Weak<TreeNode>>,
///     children: RefCell<Vec<Gc<TreeNode>>>,
/// }
///
/// let root = Gc::new(TreeNode { parent: RefCell::default(), children: RefCell::default() });
/// let leaf = Gc::new(TreeNode {
///     parent: RefCell::new(Gc::downgrade(&root)),
///     children: RefCell::default(),
/// });
/// root.children.borrow_mut().push(leaf.clone());
/// assert!(Gc::ptr_eq(&leaf.parent.borrow().upgrade().unwrap(), &root));
/// drop(root); // no cycle: the parent link is weak
/// assert!(leaf.parent.borrow().upgrade().is_none());
/// ```
pub struct Weak<T: ?Sized> {
    // The allocation, with the object's weak epoch when the `Weak` was made
    // (`Header::weak_epoch`) in the address's lowest bit, which a
    // `GcBox`'s alignment leaves free; `usize::MAX` (never a valid address
    // for a `GcBox`, tagged or not) for `Weak::new`.
    ptr: NonNull<GcBox<T>>,
    // Invariant in `T`, as `Gc` is (see its docs: `ObjectRef::downcast`
    // would otherwise undo a subtyping, through the `Gc` an `upgrade`
    // gives).
    _invariant: PhantomData<fn(*mut T)>,
}

/// Keeps `Weak` out of other threads, as `Gc` (the tests in `tests/ui`
/// show it is not `Send`); this one shows it is not `Sync` either: its
/// counts are plain integers, shared with the object's `Gc`s.
///
/// ```compile_fail
/// fn assert_sync<T: Sync>() {}
/// assert_sync::<gcptr::Weak<u32>>();
/// ```
///
/// ```
/// fn assert_sync<T: Sync>() {}
/// assert_sync::<u32>(); // the same program compiles for a `Sync` type
/// ```
const _WEAK_IS_NOT_SYNC: () = ();

const DANGLING: usize = usize::MAX;

/// The bit of a `Weak`'s address that holds its epoch.
const EPOCH_TAG: usize = 1;

impl<T> Weak<T> {
    /// A `Weak` that points at nothing and never upgrades.
    ///
    /// # Examples
    ///
    /// ```
    /// let empty: gcptr::Weak<i64> = gcptr::Weak::new();
    /// assert!(empty.upgrade().is_none());
    /// assert_eq!(empty.strong_count(), 0);
    /// ```
    ///
    /// An unsized `Weak` (`Weak<dyn Trait>`, `Weak<[T]>`) that points at
    /// nothing is a sized one, coerced: it stays dangling.
    ///
    /// ```
    /// use gcptr::{gc_coerce, Trace, Weak};
    ///
    /// trait Shape: Trace {}
    /// #[derive(Trace)]
    /// struct Square;
    /// impl Shape for Square {}
    ///
    /// let no_shape: Weak<dyn Shape> = gc_coerce!(Weak::<Square>::new() => dyn Shape);
    /// assert!(no_shape.upgrade().is_none());
    /// let no_bytes: Weak<[u8]> = gc_coerce!(Weak::<[u8; 0]>::new() => [u8]);
    /// assert!(Weak::ptr_eq(&no_bytes, &gc_coerce!(Weak::<[u8; 4]>::new() => [u8])));
    /// ```
    pub const fn new() -> Weak<T> {
        Weak {
            // SAFETY: `usize::MAX` is not null.
            ptr: unsafe { NonNull::new_unchecked(ptr::without_provenance_mut(DANGLING)) },
            _invariant: PhantomData,
        }
    }
}

impl<T: ?Sized> Weak<T> {
    /// A `Weak` to the object at `ptr`, made now (in the object's current
    /// weak epoch), which owns the unit of the weak count that the caller
    /// took for it.
    #[inline]
    pub(crate) fn made_now(ptr: NonNull<GcBox<T>>) -> Weak<T> {
        // SAFETY: the caller's unit of the weak count keeps the header
        // allocated.
        let epoch = unsafe { ptr.cast::<Header>().as_ref() }.weak_epoch();
        let tagged = ptr.as_ptr().map_addr(|a| a | epoch.number());
        Weak {
            // SAFETY: an allocation's address, with a low bit maybe set,
            // is not null.
            ptr: unsafe { NonNull::new_unchecked(tagged) },
            _invariant: PhantomData,
        }
    }

    /// Gives up the pointer as it is, epoch included, with its unit of the
    /// weak count: for `from_tagged`, after an unsizing coercion.
    pub(crate) fn into_tagged(self) -> *mut GcBox<T> {
        let tagged = self.ptr.as_ptr();
        core::mem::forget(self);
        tagged
    }

    /// Takes back a pointer that `into_tagged` gave up.
    pub(crate) fn from_tagged(ptr: NonNull<GcBox<T>>) -> Weak<T> {
        Weak {
            ptr,
            _invariant: PhantomData,
        }
    }

    /// The allocation, without the epoch. Not for `Weak::new`'s.
    #[inline]
    pub(crate) fn inner(&self) -> NonNull<GcBox<T>> {
        let untagged = self.ptr.as_ptr().map_addr(|a| a & !EPOCH_TAG);
        // SAFETY: an allocation's address, which is not null.
        unsafe { NonNull::new_unchecked(untagged) }
    }

    /// The weak epoch the `Weak` was made in.
    #[inline]
    pub(crate) fn epoch(&self) -> WeakEpoch {
        WeakEpoch::from_low_bit(self.ptr.as_ptr().cast::<u8>().addr())
    }

    /// The header, unless this `Weak` came from `Weak::new`.
    #[inline]
    pub(crate) fn header(&self) -> Option<&Header> {
        if self.ptr.as_ptr().cast::<u8>().addr() == DANGLING {
            None
        } else {
            // SAFETY: a `Weak` owns a unit of the weak count, which keeps
            // the header allocated.
            Some(unsafe { self.inner().cast::<Header>().as_ref() })
        }
    }

    /// A strong reference to the object, if it is alive and not condemned
    /// by the collector.
    ///
    /// # Examples
    ///
    /// ```
    /// use gcptr::Gc;
    ///
    /// let five = Gc::new(5);
    /// let weak = Gc::downgrade(&five);
    /// assert_eq!(*weak.upgrade().unwrap(), 5);
    /// drop(five);
    /// assert!(weak.upgrade().is_none());
    /// ```
    pub fn upgrade(&self) -> Option<Gc<T>> {
        let header = self.header()?;
        if !header.is_upgradable_from(self.epoch()) {
            return None;
        }
        header.inc_strong();
        // SAFETY: the strong count now includes the new `Gc`.
        Some(unsafe { Gc::from_inner(self.inner()) })
    }

    /// The number of strong references, or 0 if [`upgrade`](Weak::upgrade)
    /// would return `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// use gcptr::Gc;
    ///
    /// let five = Gc::new(5);
    /// let weak = Gc::downgrade(&five);
    /// assert_eq!(weak.strong_count(), 1);
    /// drop(five);
    /// assert_eq!(weak.strong_count(), 0);
    /// ```
    pub fn strong_count(&self) -> usize {
        self.header()
            .filter(|h| h.is_upgradable_from(self.epoch()))
            .map_or(0, Header::strong)
    }

    /// The number of `Weak`s to the object, or 0 if
    /// [`upgrade`](Weak::upgrade) would return `None` (as
    /// [`strong_count`](Weak::strong_count)): once the object is dead or
    /// condemned, for `Weak::new`, and for a `Weak` made before a finalizer
    /// resurrected the object (see [`Finalize`](crate::Finalize)). Asked
    /// of a `Weak` that upgrades, it counts, as [`Gc::weak_count`], those
    /// made before the resurrection too, and the live
    /// [`ObjectRef`](crate::ObjectRef)s to the object.
    ///
    /// # Examples
    ///
    /// ```
    /// use gcptr::Gc;
    ///
    /// let five = Gc::new(5);
    /// let weak = Gc::downgrade(&five);
    /// let _weak2 = weak.clone();
    /// assert_eq!(weak.weak_count(), 2);
    /// ```
    pub fn weak_count(&self) -> usize {
        // As `strong_count`: 0 whenever `upgrade` would fail, also for an
        // object that the running collection condemned (whose weak count
        // holds the collector's unit).
        self.header()
            .filter(|h| h.is_upgradable_from(self.epoch()))
            .map_or(0, |h| h.weak() - 1)
    }

    /// Whether two `Weak`s point at the same allocation (or both at none),
    /// as [`rc::Weak::ptr_eq`](std::rc::Weak::ptr_eq).
    ///
    /// # Examples
    ///
    /// ```
    /// use gcptr::{Gc, Weak};
    ///
    /// let a = Gc::new(1);
    /// assert!(Weak::ptr_eq(&Gc::downgrade(&a), &Gc::downgrade(&a)));
    /// assert!(Weak::ptr_eq(&Weak::<i32>::new(), &Weak::new()));
    /// ```
    pub fn ptr_eq(this: &Weak<T>, other: &Weak<T>) -> bool {
        // Whatever their epochs (and `Weak::new`'s address has the bit).
        let address = |weak: &Weak<T>| weak.ptr.as_ptr().cast::<u8>().addr() | EPOCH_TAG;
        address(this) == address(other)
    }

    /// The address of the value (which may be dropped), as
    /// [`Gc::as_ptr`] gives it; dangling for `Weak::new`.
    ///
    /// # Examples
    ///
    /// ```
    /// use gcptr::Gc;
    ///
    /// let a = Gc::new(1);
    /// assert_eq!(Gc::downgrade(&a).as_ptr(), Gc::as_ptr(&a));
    /// ```
    pub fn as_ptr(&self) -> *const T {
        if self.header().is_none() {
            return self.ptr.as_ptr() as *const T;
        }
        // SAFETY: a projection within the allocation; nothing is read.
        unsafe { ptr::addr_of!((*self.inner().as_ptr()).value) }
    }
}

impl<T: ?Sized> Clone for Weak<T> {
    /// Another `Weak` to the same object.
    ///
    /// ```
    /// let a = gcptr::Gc::new(1);
    /// let w = gcptr::Gc::downgrade(&a);
    /// assert!(gcptr::Weak::ptr_eq(&w, &w.clone()));
    /// ```
    fn clone(&self) -> Weak<T> {
        if let Some(header) = self.header() {
            header.inc_weak();
        }
        Weak {
            ptr: self.ptr,
            _invariant: PhantomData,
        }
    }
}

impl<T: ?Sized> Drop for Weak<T> {
    /// Gives up this weak reference. The object's memory goes with the
    /// last one, if its value is already dropped; the value itself never
    /// waits for a `Weak`.
    ///
    /// ```
    /// use gcptr::Gc;
    ///
    /// let object = Gc::new(5);
    /// let weak = Gc::downgrade(&object);
    /// let other = weak.clone();
    /// drop(weak);
    /// assert_eq!(Gc::weak_count(&object), 1);
    /// drop(object); // the value is dropped here; `other` keeps the header
    /// assert!(other.upgrade().is_none());
    /// ```
    fn drop(&mut self) {
        if self.header().is_some() {
            // SAFETY: this `Weak`'s unit of the weak count; if it is the
            // last one, the value is long gone (the strong references hold
            // a unit until it is dropped).
            unsafe { death::release_weak(self.inner().cast()) };
        }
    }
}

impl<T> Default for Weak<T> {
    /// `Weak::new()`.
    ///
    /// ```
    /// let w: gcptr::Weak<u8> = Default::default();
    /// assert!(w.upgrade().is_none());
    /// ```
    fn default() -> Weak<T> {
        Weak::new()
    }
}

impl<T: ?Sized> fmt::Debug for Weak<T> {
    /// `(Weak)`, as `rc::Weak`'s: the object may be gone.
    ///
    /// ```
    /// let weak = gcptr::Gc::downgrade(&gcptr::Gc::new(5));
    /// assert_eq!(format!("{weak:?}"), "(Weak)");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(Weak)")
    }
}

impl<T: ?Sized> fmt::Pointer for Weak<T> {
    /// The address that [`Weak::as_ptr`] gives.
    ///
    /// ```
    /// let object = gcptr::Gc::new(5);
    /// let weak = gcptr::Gc::downgrade(&object);
    /// assert_eq!(format!("{weak:p}"), format!("{object:p}"));
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Pointer::fmt(&self.as_ptr(), f)
    }
}

// SAFETY: a weak edge is not an edge for the collector: it owns no strong
// reference, so there is nothing to visit.
unsafe impl<T: ?Sized> Trace for Weak<T> {
    #[inline(always)]
    fn trace(&self, _: &mut Tracer) {}

    #[inline(always)]
    fn __may_own_gc(_depth: u32) -> bool {
        false
    }
}

//! Looking at the object graph: what an object refers to, and what refers
//! to it (Python's `gc.get_referents` and `gc.get_referrers`).

use core::fmt;
use core::ptr::NonNull;
use std::panic::{self, AssertUnwindSafe};

use crate::collector::{self, death};
use crate::gc::Gc;
use crate::header::{GcBox, Header, Links, WeakEpoch};
use crate::trace::{Action, Trace, Tracer};

/// The addresses of the `Gc`s that `value`'s [`Trace`] impl visits, in
/// visiting order, as [`Gc::as_ptr`] gives them: Python's
/// `gc.get_referents`.
///
/// Useful to check a hand-written `Trace` impl, or to see what an object
/// keeps alive.
///
/// # Examples
///
/// ```
/// use gcptr::{Gc, Trace};
///
/// #[derive(Trace)]
/// struct Pair(Gc<u32>, Gc<u32>, #[gc(skip)] u64);
///
/// let (a, b) = (Gc::new(1), Gc::new(2));
/// let pair = Pair(a.clone(), b.clone(), 3);
/// let seen = gcptr::referents(&pair);
/// assert_eq!(seen, [Gc::as_ptr(&a).cast::<()>(), Gc::as_ptr(&b).cast::<()>()]);
/// ```
pub fn referents<T: Trace + ?Sized>(value: &T) -> Vec<*const ()> {
    edges(|tracer| value.trace(tracer))
        .into_iter()
        // SAFETY: each header came from a `Gc` that `value` owns and is
        // therefore allocated.
        .map(|header| unsafe { Header::value_address(header) })
        .collect()
}

fn edges(trace: impl FnOnce(&mut Tracer)) -> Vec<NonNull<Header>> {
    let mut tracer = Tracer::new(Action::Record);
    trace(&mut tracer);
    tracer.settle(usize::MAX);
    tracer.into_pending()
}

/// Whether the collector tracks `this` object: Python's `gc.is_tracked`.
///
/// Untracked objects can be in no reference cycle, so no collection looks
/// at them, and they do not count toward [`count`](crate::count). Two
/// kinds of object are untracked:
///
/// * objects of a type that can own no `Gc` (`Gc<u64>`, `Gc<String>`, a
///   derived struct of plain data);
/// * *acyclic* objects: of a type whose value cannot come to own a `Gc`
///   once it is shared (no `RefCell`, `OnceCell` or other interior
///   mutability around one), that owned only untracked objects when they
///   were made. A cycle needs some object to come to point at one made
///   after it, which such an object cannot do, so an immutable tree is
///   untracked from the leaves up (CPython untracks tuples of atomic
///   values in the same spirit). A `Box<T>` field whose pointee has drop
///   glue keeps its type from being found so, since a `Box` cannot ask its
///   possibly unsized pointee: give such trees `Gc<T>` children (a box of
///   plain data, `Box<str>` or `Box<[u8]>`, is fine). A `Gc<[T]>` made
///   from a `Vec<T>` is acyclic on the same terms as a `Gc<Vec<T>>`.
///   [`Gc::get_mut`] and [`Gc::make_mut`],
///   which can change the value, make the object tracked for good (and
///   counted from then on).
///
/// An object that holds a [`WeakWithCallback`](crate::WeakWithCallback)
/// is tracked even if it owns no `Gc`, as CPython tracks its weak
/// reference objects: when only garbage holds it, the collection must find
/// it, to cancel its callback.
///
/// Once the thread's collector is gone (in the destructor of another
/// thread-local, at thread exit), no object is collected any more; this
/// still answers for the object's kind.
///
/// # Examples
///
/// ```
/// use std::cell::RefCell;
/// use gcptr::{Gc, Trace};
///
/// #[derive(Trace)]
/// struct Leaf(u32);
/// #[derive(Trace)]
/// struct Branch(Vec<Gc<Leaf>>);
/// #[derive(Trace)]
/// struct Slot(RefCell<Option<Gc<Branch>>>);
///
/// let branch = Gc::new(Branch(vec![Gc::new(Leaf(1)), Gc::new(Leaf(2))]));
/// assert!(!gcptr::is_tracked(&branch), "immutable, and owns untracked leaves");
/// let slot = Gc::new(Slot(RefCell::new(None)));
/// assert!(gcptr::is_tracked(&slot), "a RefCell can come to hold a Gc");
/// ```
pub fn is_tracked<T: ?Sized>(this: &Gc<T>) -> bool {
    Header::links(this.header()).is_some_and(|links| !Links::is_acyclic(links))
}

/// The tracked objects that hold a strong reference to `target`: Python's
/// `gc.get_referrers`. Use it to find what keeps an object alive.
///
/// Only objects the collector tracks are searched (see [`is_tracked`]: an
/// untracked object cannot be in a cycle, though an acyclic one can keep
/// others alive); references from the stack, statics or `Rc`s are not
/// objects and do not show. A value that is mutably borrowed (a `RefCell`
/// borrowed with `borrow_mut`) cannot be searched, nor can an object
/// whose value [`Gc::get_mut`] or [`Gc::make_mut`] lent, until it next
/// loses a strong reference or a collection meets an edge to it: the
/// `&mut` may live until then, so it is out of the collector's lists (where
/// CPython's `gc.get_referrers` finds every referrer). Called from a trace
/// while a collection analyses its objects, it returns nothing.
///
/// # Examples
///
/// ```
/// use std::cell::RefCell;
/// use gcptr::{Gc, Trace};
///
/// #[derive(Trace)]
/// struct Holder(RefCell<Vec<Gc<String>>>);
///
/// let leaked = Gc::new(String::from("who holds me?"));
/// let holder = Gc::new(Holder(RefCell::new(vec![leaked.clone()])));
/// let found = gcptr::referrers(&leaked);
/// assert_eq!(found.len(), 1);
/// assert!(found[0].type_name().ends_with("Holder"));
/// assert!(Gc::ptr_eq(&found[0].downcast::<Holder>().unwrap(), &holder));
/// ```
pub fn referrers<T: ?Sized>(target: &Gc<T>) -> Vec<ObjectRef> {
    let target = target.header();
    // Each trace is user code, which may drop references or collect: every
    // object is held (a unit of weak count) until its turn, and passed
    // over once its value is gone.
    let objects: Vec<ObjectRef> = collector::tracked_objects()
        .into_iter()
        .map(ObjectRef::new)
        .collect();
    objects
        .into_iter()
        .filter(|object| {
            let h = object.header();
            if h.strong() == 0 || h.is_dead() {
                return false;
            }
            let trace = h.vtable().trace;
            // The trace may collect (the object may be garbage, held by
            // nothing but its cycle) or drop the object's last reference
            // while it borrows the value.
            // SAFETY: allocated (the handle's unit), and its value alive:
            // a strong reference exists and it is not `DEAD`.
            let hold = unsafe { death::Hold::new(object.header) };
            let traced = panic::catch_unwind(AssertUnwindSafe(|| {
                // SAFETY: as above; the hold keeps the value alive.
                edges(|tracer| unsafe { trace(object.header, tracer) })
            }));
            // Let go outside any unwinding: it may run the object's death,
            // and a `Drop` that panics.
            drop(hold);
            traced
                .unwrap_or_else(|payload| panic::resume_unwind(payload))
                .contains(&target)
        })
        .collect()
}

/// A weak, type-erased handle to an object found by [`referrers`]: its
/// type, its address, and a typed [`Gc`] if you know the type.
///
/// It is weak so that asking what holds an object changes nothing: the
/// objects it names die as they would have (as a `Weak`, it counts in
/// [`Gc::weak_count`], and keeps the allocation, never the value).
///
/// # Examples
///
/// ```
/// use std::cell::RefCell;
/// use gcptr::Gc;
///
/// let leaf = Gc::new(7u8);
/// let holder = Gc::new(RefCell::new(vec![leaf.clone()]));
/// let found = gcptr::referrers(&leaf);
/// assert_eq!(found.len(), 1);
/// assert_eq!(Gc::weak_count(&holder), 1); // the `ObjectRef`
/// println!("{:?}", found[0]); // type name, address and strong count
/// drop(holder); // dies: the `ObjectRef` does not hold it
/// assert_eq!(found[0].strong_count(), 0);
/// assert!(found[0].downcast::<RefCell<Vec<Gc<u8>>>>().is_none());
/// ```
pub struct ObjectRef {
    header: NonNull<Header>,
    /// As a `Weak`'s: it upgrades only in the weak epoch it was made in.
    epoch: WeakEpoch,
}

impl ObjectRef {
    fn new(header: NonNull<Header>) -> ObjectRef {
        // SAFETY: allocated (a tracked object in a list, when `referrers`
        // listed them); the unit taken here keeps it so until `drop`.
        let h = unsafe { header.as_ref() };
        h.inc_weak();
        ObjectRef {
            header,
            epoch: h.weak_epoch(),
        }
    }

    fn header(&self) -> &Header {
        // SAFETY: this handle owns a unit of the weak count.
        unsafe { self.header.as_ref() }
    }

    /// The object's type, as `std::any::type_name` spells it.
    ///
    /// ```
    /// use gcptr::Gc;
    /// use std::cell::RefCell;
    ///
    /// let leaf = Gc::new(0u8);
    /// let holder = Gc::new(RefCell::new(vec![leaf.clone()]));
    /// let found = gcptr::referrers(&leaf);
    /// assert!(found[0].type_name().contains("RefCell"));
    /// # drop(holder);
    /// ```
    pub fn type_name(&self) -> &'static str {
        (self.header().vtable().type_name)()
    }

    /// The value's address, as [`Gc::as_ptr`] gives it.
    ///
    /// ```
    /// use gcptr::Gc;
    /// use std::cell::RefCell;
    ///
    /// let leaf = Gc::new(0u8);
    /// let holder = Gc::new(RefCell::new(vec![leaf.clone()]));
    /// let found = gcptr::referrers(&leaf);
    /// assert_eq!(found[0].address(), Gc::as_ptr(&holder).cast::<()>());
    /// ```
    pub fn address(&self) -> *const () {
        // SAFETY: the weak unit this holds keeps the header allocated.
        unsafe { Header::value_address(self.header) }
    }

    /// The object's strong count, or 0 once it is dead.
    ///
    /// ```
    /// use gcptr::Gc;
    /// use std::cell::RefCell;
    ///
    /// let leaf = Gc::new(0u8);
    /// let holder = Gc::new(RefCell::new(vec![leaf.clone()]));
    /// let found = gcptr::referrers(&leaf);
    /// assert_eq!(found[0].strong_count(), 1);
    /// drop(holder);
    /// assert_eq!(found[0].strong_count(), 0);
    /// ```
    pub fn strong_count(&self) -> usize {
        if self.header().is_upgradable_from(self.epoch) {
            self.header().strong()
        } else {
            0
        }
    }

    /// A strong reference to the object, if it is a `T` and alive.
    ///
    /// ```
    /// use gcptr::Gc;
    /// use std::cell::RefCell;
    ///
    /// let leaf = Gc::new(0u8);
    /// let holder = Gc::new(RefCell::new(vec![leaf.clone()]));
    /// let found = gcptr::referrers(&leaf);
    /// assert!(found[0].downcast::<String>().is_none());
    /// let back = found[0].downcast::<RefCell<Vec<Gc<u8>>>>().unwrap();
    /// assert!(Gc::ptr_eq(&back, &holder));
    /// ```
    pub fn downcast<T: 'static>(&self) -> Option<Gc<T>> {
        let header = self.header();
        if (header.vtable().type_id)() != core::any::TypeId::of::<T>()
            || !header.is_upgradable_from(self.epoch)
        {
            return None;
        }
        header.inc_strong();
        // Its value is still a `T`: every handle to it has the type it was
        // made with, up to unsizing (`Gc` and `Weak` are invariant, so no
        // subtyping let `Gc::get_mut` store in it what only a supertype of
        // `T` allows; `TypeId` does not see lifetimes, so its check alone
        // could not tell).
        // SAFETY: the object was allocated as a `GcBox<T>` (its vtable is
        // `T`'s) and holds a `T` (above); the strong count now includes the
        // new `Gc`.
        Some(unsafe { Gc::from_inner(self.header.cast::<GcBox<T>>()) })
    }
}

impl Drop for ObjectRef {
    fn drop(&mut self) {
        // SAFETY: the unit taken in `new`.
        unsafe { death::release_weak(self.header) };
    }
}

impl fmt::Debug for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectRef")
            .field("type_name", &self.type_name())
            .field("address", &self.address())
            .field("strong_count", &self.strong_count())
            .finish()
    }
}

//! [`Gc<T>`]: the strong pointer.

use core::borrow::Borrow;
use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::marker::PhantomData;
use core::mem::{ManuallyDrop, MaybeUninit};
use core::ops::Deref;
use core::ptr::{self, NonNull};
use std::alloc::{alloc, handle_alloc_error};

use crate::collector::{self, death};
use crate::header::{flags, GcBox, Header, Links, VTables};
use crate::trace::{Trace, Tracer};
use crate::weak::Weak;

/// A reference-counted pointer whose cycles the collector reclaims: Python's
/// object reference, in place of `Rc<T>`.
///
/// `Gc<T>` behaves like [`std::rc::Rc<T>`]: `clone` makes another strong
/// reference to the same object, the value is shared (and so immutable;
/// use `Cell` or `RefCell` inside for mutation), and the value is dropped
/// as soon as the last strong reference goes. On top of that, objects that
/// keep each other alive in a cycle, unreachable from anywhere else, are
/// found and reclaimed by the thread's cycle collector: automatically as
/// objects are allocated, or at once with [`collect`](crate::collect).
///
/// `T` must implement [`Trace`], normally with `#[derive(Trace)]`, so the
/// collector can see the `Gc`s it owns. Types that can own no `Gc` are not
/// tracked by the collector at all and cost the same as with `Rc`.
///
/// `Gc` is neither `Send` nor `Sync`: each thread has its own collector.
///
/// Unlike `Rc`, `Gc<T>` is invariant in `T`, as [`Weak<T>`] is: a
/// `Gc<Holder<'static>>` cannot be used as a `Gc<Holder<'a>>`, nor a
/// `Gc<Wrap<for<'a> fn(&'a str)>>` as a `Gc<Wrap<fn(&'static str)>>`.
/// [`ObjectRef::downcast`](crate::ObjectRef::downcast) knows an object by
/// the type it was made with, and hands out handles of that type; through
/// a handle whose type a subtyping changed, `Gc::get_mut` could otherwise
/// store what the made type does not allow (data that lives for `'a`
/// only, a function that keeps its `'static` argument), and a handle from
/// `downcast` would then read it as the made type. Unsizing coercions
/// ([`gc_coerce!`](crate::gc_coerce)) are not subtyping, and still work.
///
/// What this rejects, and the ways round it: as [`Gc::new`] takes only
/// `'static` types, a handle's lifetimes are `'static` (or higher-ranked),
/// and a function generic over `'a` that takes a `Gc<&'a str>` infers
/// `'static` for it; only a signature that ties `'a` to a shorter borrow
/// (`fn f<'a>(g: &Gc<&'a str>, s: &'a str)`, with a local `s`) no longer
/// accepts a `Gc<&'static str>`: clone the value out (`*g`) or write the
/// function for `Gc<&'static str>`. A handler of borrowed arguments, a
/// `Gc<dyn for<'a> GcFn<(&'a E,)>>`, no longer passes as a
/// `Gc<dyn GcFn<(&'static E,)>>`; `gc_coerce!` converts it (trait objects
/// convert by unsizing), and so shortens a trait object's lifetime bound
/// (`dyn Trait` to `dyn Trait + 'a`):
///
/// ```
/// use gcptr::{gc_closure, gc_coerce, Gc, GcFn};
///
/// struct Event(i32);
/// static STARTED: Event = Event(1);
///
/// let any: Gc<dyn for<'a> GcFn<(&'a Event,), i32>> =
///     gc_coerce!(Gc::new(gc_closure!([] move |e: &Event| e.0)) => dyn for<'a> GcFn<(&'a Event,), i32>);
/// // let only_static: Gc<dyn GcFn<(&'static Event,), i32>> = any.clone(); // E0308
/// let only_static = gc_coerce!(any.clone() => dyn GcFn<(&'static Event,), i32>);
/// assert_eq!(only_static.call((&STARTED,)), 1);
/// assert_eq!(any.call((&Event(2),)), 2);
/// ```
///
/// # Examples
///
/// ```
/// use std::cell::RefCell;
/// use gcptr::{Gc, Trace};
///
/// #[derive(Trace)]
/// struct Person {
///     name: String,
///     friends: RefCell<Vec<Gc<Person>>>,
/// }
///
/// let alice = Gc::new(Person { name: "Alice".into(), friends: RefCell::new(vec![]) });
/// let bob = Gc::new(Person { name: "Bob".into(), friends: RefCell::new(vec![alice.clone()]) });
/// alice.friends.borrow_mut().push(bob.clone()); // a cycle
///
/// assert_eq!(alice.friends.borrow()[0].name, "Bob");
/// drop((alice, bob));
/// assert_eq!(gcptr::collect(), 2); // Rc would have leaked both
/// ```
pub struct Gc<T: ?Sized> {
    ptr: NonNull<GcBox<T>>,
    // Owns a `GcBox<T>` for the drop checker, as `Rc` does.
    _owns: PhantomData<GcBox<T>>,
    // Invariant in `T` (see the type's docs); a function pointer is `Send`
    // and `Sync`, so this changes no auto trait.
    _invariant: PhantomData<fn(*mut T)>,
}

/// Keeps `Gc` out of other threads: `NonNull` already makes it `!Send` and
/// `!Sync`; this test makes sure it stays so.
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<gcptr::Gc<u32>>();
/// ```
const _GC_IS_NOT_SEND: () = ();

/// `Gc<T>` is invariant in `T` (see its docs). Were it covariant, as `Rc`
/// is, each of these programs would compile and read freed memory: a
/// `Gc<Holder<'static>>` used as a `Gc<Holder<'_>>` stores a borrow of a
/// local through `get_mut`, and `ObjectRef::downcast` gives the object
/// back as a `Gc<Holder<'static>>` that outlives the local:
///
/// ```compile_fail,E0597
/// use std::cell::RefCell;
/// use gcptr::Gc;
///
/// type Holder<'a> = (RefCell<Option<Gc<u8>>>, &'a str);
///
/// let target = Gc::new(0u8);
/// let object: Gc<Holder<'static>> = Gc::new((RefCell::new(Some(target.clone())), "static"));
/// let lengthened: Gc<Holder<'static>> = {
///     let local = String::from("freed at the end of this block");
///     let mut short: Gc<Holder<'_>> = object;
///     Gc::get_mut(&mut short).unwrap().1 = &local; // `local` does not live long enough
///     drop(short.clone()); // a lost reference: back in the collector's lists
///     let holder = gcptr::referrers(&target).into_iter().next().unwrap();
///     holder.downcast::<Holder<'static>>().unwrap()
/// };
/// println!("{}", lengthened.1);
/// ```
///
/// And with no lifetime shortened: a `Gc<F<for<'a> fn(&'a str)>>` used as
/// a `Gc<F<fn(&'static str)>>` takes a function that keeps its argument,
/// which `downcast` then hands out as one that takes any borrow:
///
/// ```compile_fail,E0308
/// use std::cell::{Cell, RefCell};
/// use gcptr::{Gc, Trace};
///
/// #[derive(Trace)]
/// struct F<T: 'static> {
///     #[gc(skip)]
///     f: T,
///     link: RefCell<Option<Gc<u8>>>,
/// }
///
/// thread_local!(static KEPT: Cell<&'static str> = const { Cell::new("") });
/// fn keep(s: &'static str) {
///     KEPT.with(|k| k.set(s));
/// }
/// fn ignore(_: &str) {}
///
/// let target = Gc::new(0u8);
/// let object: Gc<F<for<'a> fn(&'a str)>> =
///     Gc::new(F { f: ignore, link: RefCell::new(Some(target.clone())) });
/// let mut general: Gc<F<fn(&'static str)>> = object; // one type is more general than the other
/// Gc::get_mut(&mut general).unwrap().f = keep;
/// drop(general.clone());
/// let back = gcptr::referrers(&target)[0].downcast::<F<for<'a> fn(&'a str)>>().unwrap();
/// drop(general);
/// (back.f)(&String::from("freed at once"));
/// println!("{}", KEPT.with(Cell::get));
/// ```
///
/// A `Weak` would do as well, through the `Gc` its `upgrade` gives, so it
/// is invariant too:
///
/// ```compile_fail,E0308
/// use gcptr::{Gc, Trace, Weak};
///
/// #[derive(Trace)]
/// struct F<T: 'static> {
///     #[gc(skip)]
///     f: T,
/// }
///
/// fn ignore(_: &str) {}
/// let object: Gc<F<for<'a> fn(&'a str)>> = Gc::new(F { f: ignore });
/// let weak: Weak<F<for<'a> fn(&'a str)>> = Gc::downgrade(&object);
/// let general: Weak<F<fn(&'static str)>> = weak;
/// ```
const _GC_IS_INVARIANT: () = ();

impl<T: Trace + 'static> Gc<T> {
    /// Allocates `value` and returns the first strong reference to it.
    ///
    /// If `T` can own a `Gc`, the object is tracked by the collector, and
    /// the allocation may first run an automatic collection (see
    /// [`threshold`](crate::threshold)), unless the object is acyclic
    /// (see [`is_tracked`](crate::is_tracked)): to find out, a value whose
    /// type cannot gain a `Gc` once shared is traced once, here.
    ///
    /// # Panics
    ///
    /// If that automatic collection panics (a finalizer, `Drop` or trace of
    /// the garbage it found panicked: see [`collect`](crate::collect)),
    /// once it is complete. The new object, never returned, dies then as by
    /// count: its finalizer, if its type has one, runs, then its value is
    /// dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let five = gcptr::Gc::new(5);
    /// assert_eq!(*five, 5);
    /// ```
    #[inline(always)]
    pub fn new(value: T) -> Gc<T> {
        // SAFETY: a fresh allocation's value slot is uninitialized and
        // unshared.
        let this = unsafe { Gc::allocate(1).assume_init(value) };
        this.track(false);
        this
    }

    /// Puts a new object in the collector's care: into generation 0, or,
    /// if it is acyclic ([`Trace::__edges_fixed`], and it owns only
    /// untracked or acyclic objects), out of its sight for good.
    ///
    /// `reachable` says whether user code may hold a `Weak` to the object
    /// already: one that `new_cyclic`'s closure kept
    /// ([`collector::track_new`]).
    #[inline(always)]
    fn track(&self, reachable: bool) {
        self.track_with_edges(T::__edges_fixed(0), reachable);
    }

    /// Allocates a `T` that refers to itself through the `Weak` that `f`
    /// receives, as [`Rc::new_cyclic`](std::rc::Rc::new_cyclic) does.
    /// Upgrading that `Weak` inside `f` returns `None`.
    ///
    /// # Panics
    ///
    /// If `f` panics (the `Weak`s it made never upgrade); and as
    /// [`Gc::new`], if the automatic collection the new object may start
    /// panics.
    ///
    /// # Examples
    ///
    /// ```
    /// use gcptr::{Gc, Trace, Weak};
    ///
    /// #[derive(Trace)]
    /// struct Window {
    ///     me: Weak<Window>,
    /// }
    ///
    /// let window = Gc::new_cyclic(|me| Window { me: me.clone() });
    /// assert!(Gc::ptr_eq(&window, &window.me.upgrade().unwrap()));
    /// ```
    pub fn new_cyclic(f: impl FnOnce(&Weak<T>) -> T) -> Gc<T> {
        // Strong count 0 while `f` runs, so its `Weak` cannot upgrade.
        let uninit = ManuallyDrop::new(Gc::allocate(0));
        let header = uninit.header();
        // If `f` panics, `Weak`s it cloned may outlive this call: mark the
        // object DEAD (never upgraded, never dropped) and give up the
        // strong references' share of the weak count.
        struct Abandon(NonNull<Header>);
        impl Drop for Abandon {
            fn drop(&mut self) {
                // SAFETY: the allocation is alive: this guard owns the
                // strong references' share of the weak count.
                unsafe {
                    self.0.as_ref().set(flags::DEAD);
                    death::release_weak(self.0);
                }
            }
        }
        let abandon = Abandon(header);
        // SAFETY: the header is initialized; the new `Weak` owns the unit
        // added here.
        unsafe { header.as_ref() }.inc_weak();
        let weak = Weak::made_now(uninit.ptr.cast::<GcBox<T>>());
        let value = f(&weak);
        core::mem::forget(abandon);
        drop(weak);
        // SAFETY: the value slot is uninitialized, and no strong reference
        // existed to read it; the strong count becomes 1 for `this`.
        let this = unsafe {
            header.as_ref().set_strong(1);
            ManuallyDrop::into_inner(uninit).assume_init(value)
        };
        this.track(true);
        this
    }

    /// Allocates an object whose value is yet to be written, with `strong`
    /// as its strong count, linked into no list. The result must go
    /// through `assume_init` (or be forgotten): dropping it would drop an
    /// uninitialized `T`.
    fn allocate(strong: usize) -> Gc<MaybeUninit<T>> {
        let tracked = T::__may_own_gc(0);
        let vtable = VTables::<T>::get(tracked);
        let mut flag_bits = 0;
        if tracked {
            flag_bits |= flags::TRACKED;
        }
        if !T::__has_finalizer() {
            flag_bits |= flags::FINALIZED;
        }
        let memory = if tracked {
            collector::allocate_tracked(vtable.layout)
        } else {
            // SAFETY: the layout has a non-zero size (it holds the header).
            let memory = unsafe { alloc(vtable.layout) };
            NonNull::new(memory).unwrap_or_else(|| handle_alloc_error(vtable.layout))
        };
        // SAFETY: `header_offset` is within the allocation (`VTables`).
        let ptr = unsafe { memory.add(vtable.header_offset) }.cast::<GcBox<MaybeUninit<T>>>();
        // SAFETY: `ptr` is the allocation's `GcBox`, properly aligned; the
        // `GcBox<MaybeUninit<T>>` and `GcBox<T>` layouts are the same.
        unsafe {
            ptr::addr_of_mut!((*ptr.as_ptr()).header).write(Header::new(
                vtable,
                flag_bits,
                T::__drop_only_releases_gcs(),
            ));
            ptr.cast::<Header>().as_ref().set_strong(strong);
        }
        if let Some(links) = Header::links(ptr.cast()) {
            // SAFETY: the links slot is allocated (TRACKED layout).
            unsafe { links.as_ptr().write(Links::new()) };
            Links::link_to_self(links);
        }
        Gc {
            ptr,
            _owns: PhantomData,
            _invariant: PhantomData,
        }
    }

    /// Returns the value if `this` is its only strong reference, as
    /// [`Rc::try_unwrap`](std::rc::Rc::try_unwrap); otherwise gives `this`
    /// back. `Weak`s to the object stop upgrading.
    ///
    /// The value leaves gcptr's care: its finalizer (if any) does not run,
    /// and that holds for an object of a garbage cycle too. A finalizer
    /// that takes a peer's last reference out of its own value and unwraps
    /// it owns the peer's value from then on, and the peer's finalizer, if
    /// it has not run yet, never does.
    ///
    /// # Panics
    ///
    /// If a death callback ([`Gc::on_death`]) of the object panics, once the
    /// value is out and dropped; unless the thread is already panicking,
    /// when the panic is dropped and the value returned (as
    /// [`collect`](crate::collect) does). If called from a `Trace` impl
    /// while a collection traces it (a misuse: `trace` must only visit
    /// edges), having changed nothing but dropping `this`.
    ///
    /// # Examples
    ///
    /// ```
    /// use gcptr::Gc;
    ///
    /// let x = Gc::new(3);
    /// assert_eq!(Gc::try_unwrap(x), Ok(3));
    ///
    /// let x = Gc::new(4);
    /// let _y = x.clone();
    /// assert_eq!(*Gc::try_unwrap(x).unwrap_err(), 4);
    /// ```
    #[track_caller]
    pub fn try_unwrap(this: Gc<T>) -> Result<T, Gc<T>> {
        Gc::try_unwrap_as(this, "Gc::try_unwrap")
    }

    /// [`Gc::try_unwrap`], called by the program as `caller` (for the
    /// message of the misuse that `collector::untrack` reports).
    #[track_caller]
    fn try_unwrap_as(this: Gc<T>, caller: &str) -> Result<T, Gc<T>> {
        let h = this.header_ref();
        if h.strong() != 1 || h.is_dead() {
            return Err(this);
        }
        // First, as it may panic (in a misused `Trace`): nothing is changed
        // yet, and the unwinding drops `this`, which the caller gave up, as
        // it drops any reference a trace lets go of.
        collector::untrack(this.header(), caller);
        // SAFETY: the only strong reference, the value is alive, and the
        // object is out of the collector's care.
        let (value, callback_panic) = unsafe { Gc::take_value(this) };
        if let Some(payload) = callback_panic {
            if std::thread::panicking() {
                // A second panic would abort: see `resume_unless_unwinding`.
                collector::panics::drop_payload(payload);
            } else {
                // The value goes first: a panic in its `Drop` during the
                // unwinding would abort the process.
                drop(value);
                std::panic::resume_unwind(payload);
            }
        }
        Ok(value)
    }

    /// Returns the value if `this` is its last strong reference, as
    /// [`Rc::into_inner`](std::rc::Rc::into_inner); otherwise drops `this`
    /// and returns `None`.
    ///
    /// # Examples
    ///
    /// ```
    /// use gcptr::Gc;
    ///
    /// let x = Gc::new(String::from("hi"));
    /// let y = x.clone();
    /// assert_eq!(Gc::into_inner(x), None);
    /// assert_eq!(Gc::into_inner(y).as_deref(), Some("hi"));
    /// ```
    #[track_caller]
    pub fn into_inner(this: Gc<T>) -> Option<T> {
        Gc::try_unwrap_as(this, "Gc::into_inner").ok()
    }

    /// Moves the value out of `this`, leaving the allocation to its `Weak`s.
    /// Returns it with the first panic of a death callback, for the caller
    /// to resume once its own state is in order.
    ///
    /// Cannot unwind: a death callback's panic is returned.
    ///
    /// # Safety
    /// `this` is the only strong reference, the value is alive, and the
    /// caller has taken the object out of the collector's care
    /// ([`collector::untrack`], which may panic, so it comes first).
    unsafe fn take_value(this: Gc<T>) -> (T, Option<collector::panics::Panic>) {
        let this = ManuallyDrop::new(this);
        let header = this.ptr.cast::<Header>();
        let h = this.header_ref();
        h.set_strong(0);
        h.set(flags::DEAD);
        let callback_panic = crate::weak_maps::notify_death(header);
        // SAFETY: alive, per the contract; DEAD now, so nothing reads or
        // drops it again.
        let value = unsafe { ptr::read(ptr::addr_of!((*this.ptr.as_ptr()).value)) };
        // SAFETY: the strong references' share of the weak count; the value
        // is moved out, so freeing the memory drops nothing.
        unsafe { death::release_weak(header) };
        (value, callback_panic)
    }
}

impl<T: Trace + Clone + 'static> Gc<T> {
    /// Returns the value, cloning it if other strong references exist, as
    /// [`Rc::unwrap_or_clone`](std::rc::Rc::unwrap_or_clone).
    ///
    /// # Examples
    ///
    /// ```
    /// use gcptr::Gc;
    ///
    /// let a = Gc::new(vec![1, 2]);
    /// let b = a.clone();
    /// assert_eq!(Gc::unwrap_or_clone(a), [1, 2]); // cloned: `b` still has it
    /// assert_eq!(Gc::unwrap_or_clone(b), [1, 2]); // moved out
    /// ```
    #[track_caller]
    pub fn unwrap_or_clone(this: Gc<T>) -> T {
        Gc::try_unwrap_as(this, "Gc::unwrap_or_clone").unwrap_or_else(|shared| (*shared).clone())
    }

    /// Returns a mutable reference to the value, first cloning it into a
    /// new object if other strong references exist, as
    /// [`Rc::make_mut`](std::rc::Rc::make_mut). `Weak`s to the old object
    /// are disassociated if this is its only strong reference: the value
    /// moves to a fresh object, as it also does, though no `Weak` exists,
    /// whenever [`get_mut`](Gc::get_mut) would refuse for a weak
    /// reference of another kind (an [`ObjectRef`](crate::ObjectRef), or
    /// the collector's own during a collection).
    ///
    /// # Panics
    ///
    /// If `T::clone` panics (nothing has changed then); if a death callback
    /// of the old object panics, once `this` holds the new one, unless the
    /// thread is already panicking (as [`Gc::try_unwrap`]); as [`Gc::new`],
    /// if the automatic collection the new object may start panics. If
    /// called from a `Trace` impl while a collection traces it (a misuse:
    /// `trace` must only visit edges), having changed nothing (or, when the
    /// value was shared, once `this` holds its clone, as with no misuse).
    ///
    /// # Examples
    ///
    /// ```
    /// use gcptr::Gc;
    ///
    /// let mut data = Gc::new(5);
    /// *Gc::make_mut(&mut data) += 1; // no clone
    /// let other = data.clone();
    /// *Gc::make_mut(&mut data) += 1; // clones the value
    /// assert_eq!((*data, *other), (7, 6));
    /// ```
    #[track_caller]
    pub fn make_mut(this: &mut Gc<T>) -> &mut T {
        let h = this.header_ref();
        if h.strong() != 1 || h.is_dead() {
            *this = Gc::new((**this).clone());
        } else if h.weak() != 1 {
            // Move the value to a fresh allocation, leaving the `Weak`s with
            // the old one. A death callback may panic: its panic waits
            // until `*this` holds the fresh object. The fresh allocation is
            // a `Gc<MaybeUninit<T>>` with `T`'s vtable: it must never drop.
            // Untracking may panic (in a misused `Trace`), so it comes
            // first, with nothing changed or allocated yet; from there to
            // `ptr::write`, nothing can unwind.
            collector::untrack(this.header(), "Gc::make_mut");
            let fresh = ManuallyDrop::new(Gc::allocate(1));
            // The value's own state goes with it: a finalizer that ran (the
            // object was resurrected) must not run again for the fresh one.
            if h.has(flags::FINALIZED) {
                fresh.header_ref().set(flags::FINALIZED);
            }
            // SAFETY: `this` is the only strong reference (checked above),
            // its value alive and the object untracked; `ptr::read` hands
            // it over, `ptr::write` replaces it.
            let callback_panic = unsafe {
                let (value, callback_panic) = Gc::take_value(ptr::read(this));
                ptr::write(this, ManuallyDrop::into_inner(fresh).assume_init(value));
                callback_panic
            };
            if let Some(links) = Header::links(this.header()) {
                collector::track_new(links, false);
            }
            if let Some(payload) = callback_panic {
                collector::panics::resume_unless_unwinding(payload);
            }
        }
        Gc::get_mut_as(this, "Gc::make_mut").expect("a fresh or unique Gc is uniquely owned")
    }
}

impl<T> Gc<MaybeUninit<T>> {
    /// Writes the value of an object made by `Gc::allocate`.
    ///
    /// # Safety
    /// The value slot is uninitialized and unshared.
    unsafe fn assume_init(self, value: T) -> Gc<T> {
        let this = ManuallyDrop::new(self);
        // SAFETY: per the contract; `MaybeUninit<T>` and `T` have the same
        // layout, so the box is a `GcBox<T>` once written.
        unsafe {
            ptr::addr_of_mut!((*this.ptr.as_ptr()).value).write(MaybeUninit::new(value));
        }
        Gc {
            ptr: this.ptr.cast(),
            _owns: PhantomData,
            _invariant: PhantomData,
        }
    }
}

impl<T: ?Sized> Gc<T> {
    #[inline(always)]
    pub(crate) fn header_ref(&self) -> &Header {
        // SAFETY: a `Gc` keeps its allocation, and so the header, alive.
        unsafe { self.ptr.cast::<Header>().as_ref() }
    }

    pub(crate) fn header(&self) -> NonNull<Header> {
        self.ptr.cast()
    }

    pub(crate) fn inner(&self) -> NonNull<GcBox<T>> {
        self.ptr
    }

    /// Makes a `Gc` from a pointer whose strong count already includes it.
    pub(crate) unsafe fn from_inner(ptr: NonNull<GcBox<T>>) -> Gc<T> {
        Gc {
            ptr,
            _owns: PhantomData,
            _invariant: PhantomData,
        }
    }

    /// Makes a new [`Weak`] reference to the object.
    ///
    /// # Aborts
    ///
    /// As `Rc` does on a count that would wrap, but sooner: the weak count
    /// shares its word with the collector's flags, so one object can have
    /// at most 2^26 - 3 `Weak`s (weak map entries and [`ObjectRef`]s
    /// included), and 2^32 - 1 `Gc`s.
    ///
    /// [`ObjectRef`]: crate::ObjectRef
    ///
    /// # Examples
    ///
    /// ```
    /// use gcptr::Gc;
    ///
    /// let five = Gc::new(5);
    /// let weak_five = Gc::downgrade(&five);
    /// assert_eq!(weak_five.upgrade().as_deref(), Some(&5));
    /// drop(five);
    /// assert!(weak_five.upgrade().is_none());
    /// ```
    pub fn downgrade(this: &Gc<T>) -> Weak<T> {
        this.header_ref().inc_weak();
        Weak::made_now(this.ptr)
    }

    /// Whether two `Gc`s point at the same object: Python's `is`.
    ///
    /// # Examples
    ///
    /// ```
    /// use gcptr::Gc;
    ///
    /// let a = Gc::new(5);
    /// let b = a.clone();
    /// let c = Gc::new(5);
    /// assert!(Gc::ptr_eq(&a, &b));
    /// assert!(!Gc::ptr_eq(&a, &c)); // equal values, different objects
    /// assert_eq!(a, c);
    /// ```
    #[inline]
    pub fn ptr_eq(this: &Gc<T>, other: &Gc<T>) -> bool {
        ptr::addr_eq(this.ptr.as_ptr(), other.ptr.as_ptr())
    }

    /// The address of the value: Python's `id()`. Stable for the object's
    /// life.
    ///
    /// # Examples
    ///
    /// ```
    /// use gcptr::Gc;
    ///
    /// let x = Gc::new("hello");
    /// let y = x.clone();
    /// assert_eq!(Gc::as_ptr(&x), Gc::as_ptr(&y));
    /// // SAFETY: `x` keeps the value alive while the pointer is read.
    /// assert_eq!(unsafe { *Gc::as_ptr(&x) }, "hello");
    /// ```
    #[inline]
    pub fn as_ptr(this: &Gc<T>) -> *const T {
        // SAFETY: a projection within the live allocation; nothing is read.
        unsafe { ptr::addr_of!((*this.ptr.as_ptr()).value) }
    }

    /// The number of strong references: Python's `sys.getrefcount(x) - 1`.
    ///
    /// Read from the finalizer that the count reaching zero runs (through
    /// a `Weak` it upgrades), it counts one more: the reference held for
    /// the finalizer's `&self`, as CPython holds one for `__del__`.
    ///
    /// # Examples
    ///
    /// ```
    /// use gcptr::Gc;
    ///
    /// let five = Gc::new(5);
    /// let _also_five = five.clone();
    /// assert_eq!(Gc::strong_count(&five), 2);
    /// ```
    #[inline]
    pub fn strong_count(this: &Gc<T>) -> usize {
        this.header_ref().strong()
    }

    /// The number of [`Weak`] references, and of the
    /// [`ObjectRef`](crate::ObjectRef)s that [`referrers`](crate::referrers)
    /// returned, which are weak references too.
    ///
    /// Read from a finalizer or a `Drop` that a collection runs, it counts
    /// one more for an object the collector holds meanwhile: one it is
    /// reclaiming, or one set aside by [`get_mut`](Gc::get_mut) that waits
    /// to come back. For an object that a finalizer resurrected, it counts
    /// the `Weak`s made before too, which no longer upgrade (see
    /// [`Finalize`](crate::Finalize)).
    ///
    /// # Examples
    ///
    /// ```
    /// use gcptr::Gc;
    ///
    /// let five = Gc::new(5);
    /// let _weak_five = Gc::downgrade(&five);
    /// assert_eq!(Gc::weak_count(&five), 1);
    /// ```
    #[inline]
    pub fn weak_count(this: &Gc<T>) -> usize {
        this.header_ref().weak() - 1
    }

    /// A mutable reference to the value if no other `Gc`, `Weak` or
    /// [`ObjectRef`](crate::ObjectRef) points at it, as
    /// [`Rc::get_mut`](std::rc::Rc::get_mut).
    ///
    /// While the reference lives, the collector must not trace the value,
    /// so the object leaves the collector's lists. It comes back the next
    /// time it loses a reference (proof that the `&mut` is gone), or when a
    /// collection finds an edge to it (a second handle, or one that a
    /// traced value holds: the `&mut` is gone too), which then analyses it
    /// with the rest: a cycle closed through it is found by that
    /// collection.
    ///
    /// Like `Rc::get_mut` with a `Weak` alive, this returns `None` while
    /// the collector itself holds the object: during a collection, for the
    /// objects it is reclaiming and those waiting to come back.
    ///
    /// # Panics
    ///
    /// If called from a `Trace` impl while a collection traces it (a
    /// misuse: `trace` must only visit edges), having changed nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use gcptr::Gc;
    ///
    /// let mut x = Gc::new(3);
    /// *Gc::get_mut(&mut x).unwrap() = 4;
    /// assert_eq!(*x, 4);
    ///
    /// let _y = x.clone();
    /// assert!(Gc::get_mut(&mut x).is_none());
    /// ```
    #[track_caller]
    pub fn get_mut(this: &mut Gc<T>) -> Option<&mut T> {
        Gc::get_mut_as(this, "Gc::get_mut")
    }

    /// [`Gc::get_mut`], called by the program as `caller` (for the message
    /// of the misuse that `collector::set_aside` reports).
    #[track_caller]
    fn get_mut_as<'a>(this: &'a mut Gc<T>, caller: &str) -> Option<&'a mut T> {
        let h = this.header_ref();
        if h.strong() != 1 || h.weak() != 1 || h.is_dead() {
            return None;
        }
        collector::set_aside(this.header(), caller);
        // SAFETY: no other reference to the value exists: one strong, no
        // weak, and the collector no longer traces it (set aside).
        Some(unsafe { &mut (*this.ptr.as_ptr()).value })
    }
}

/// The deref of an object marked `DEAD`: a panic, unless the mark is a
/// collection's provisional one and its analysis still running (a trace
/// may read what it traces).
#[cold]
#[inline(never)]
#[track_caller]
fn check_not_dead(header: &Header) {
    if header.is_dead() {
        dead_object_accessed();
    }
}

#[cold]
#[inline(never)]
#[track_caller]
fn dead_object_accessed() -> ! {
    panic!(
        "gcptr: this object's value was already dropped by the cycle collector. \
         A `Drop` impl (or code it called) reached a peer in a garbage cycle, \
         whose members are dropped in no particular order. \
         Read peers in `gcptr::Finalize::finalize` instead: finalizers run \
         while the whole cycle is still intact"
    )
}

impl<T: ?Sized + Trace> Gc<T> {
    /// [`track`](Gc::track) for any value, whose type's answer to
    /// [`Trace::__edges_fixed`] is `edges_fixed` (a slice's is its
    /// element's).
    #[inline(always)]
    pub(crate) fn track_with_edges(&self, edges_fixed: bool, reachable: bool) {
        if let Some(links) = Header::links(self.header()) {
            if edges_fixed && owns_only_acyclic_or_unwinds_uncounted(self, links) {
                if Links::is_set_aside(links) {
                    Links::mark_acyclic(links);
                    // No collection looks at it: it need not report losses.
                    self.header_ref().set_quiet(true);
                }
            } else {
                collector::track_new(links, reachable);
            }
        }
    }
}

/// Whether the new object `this`, whose edges are fixed, owns only
/// untracked and acyclic objects, by a trace of its value
/// ([`crate::trace::owns_only_acyclic`]). A hand-written trace may panic,
/// and the panic unwinds out of `Gc::new`, which drops the object before
/// it was counted in generation 0: it is marked acyclic first (`links`
/// are its links), so that its death does not count it out.
#[inline(always)]
fn owns_only_acyclic_or_unwinds_uncounted<T: ?Sized + Trace>(
    this: &Gc<T>,
    links: NonNull<Links>,
) -> bool {
    struct UncountedOnUnwind(NonNull<Links>);
    impl Drop for UncountedOnUnwind {
        #[cold]
        fn drop(&mut self) {
            // Still set aside, unless the trace linked it (by dropping a
            // handle it made through `new_cyclic`'s `Weak`): then it is in
            // generation 0, and its death unlinks it.
            if Links::is_set_aside(self.0) {
                Links::mark_acyclic(self.0);
            }
        }
    }
    let uncounted = UncountedOnUnwind(links);
    let acyclic = crate::trace::owns_only_acyclic::<T>(this);
    core::mem::forget(uncounted);
    acyclic
}

impl<T: ?Sized> Deref for Gc<T> {
    type Target = T;

    /// Panics if the cycle collector has dropped the value (see
    /// [`Finalize`](crate::Finalize)). A type with no drop glue (plain
    /// data, or a `ManuallyDrop`) skips that test, at compile time:
    /// dropping such a value changes none of its bytes, so reading it
    /// afterwards is harmless, and the test would cost every deref.
    ///
    /// ```
    /// let name = gcptr::Gc::new(String::from("gc"));
    /// assert_eq!(name.len(), 2); // `String::len`, through `Deref`
    /// ```
    #[inline(always)]
    #[track_caller]
    fn deref(&self) -> &T {
        if core::mem::needs_drop::<T>() && self.header_ref().has(flags::DEAD) {
            check_not_dead(self.header_ref());
        }
        // SAFETY: the value is shared (`Gc` never hands out `&mut T` while
        // another reference exists) and valid: not DEAD, or of a type whose
        // drop does nothing, in memory that this `Gc` keeps allocated.
        unsafe { &(*self.ptr.as_ptr()).value }
    }
}

impl<T: ?Sized> Clone for Gc<T> {
    /// Makes another strong reference to the same object.
    ///
    /// ```
    /// use gcptr::Gc;
    ///
    /// let five = Gc::new(5);
    /// let same_five = five.clone();
    /// assert!(Gc::ptr_eq(&five, &same_five));
    /// ```
    #[inline]
    fn clone(&self) -> Gc<T> {
        self.header_ref().inc_strong();
        Gc {
            ptr: self.ptr,
            _owns: PhantomData,
            _invariant: PhantomData,
        }
    }
}

impl<T: ?Sized> Gc<T> {
    /// The death of the object, once the last strong reference is gone.
    ///
    /// Out of line, as `Rc`'s `drop_slow`, so that dropping a `Gc` that is
    /// not the last one inlines to a decrement and a test. The two common
    /// deaths are inlined here, with the value's drop and the allocation's
    /// layout known: an untracked object's (exactly `Rc`'s,
    /// [`death::untracked_reached_zero`]), and a tracked one's with no
    /// finalizer and no watcher ([`death::tracked_reached_zero`]). So is
    /// the last edge to a garbage object as the collector drops its peers.
    ///
    /// # Safety
    /// The strong count just reached zero.
    #[inline(never)]
    unsafe fn drop_slow(&mut self) {
        let h = self.header_ref();
        let header = self.ptr.cast::<Header>();
        let slow = flags::TRACKED | flags::FINALIZED | flags::DEAD | flags::WATCHED;
        if h.flags() & slow == flags::FINALIZED {
            // SAFETY: the strong count just reached zero; the flags say
            // untracked, not DEAD, not WATCHED, finalized (or no finalizer).
            unsafe { death::untracked_reached_zero(self.ptr) };
        } else if h.has(flags::DEAD) {
            // SAFETY: the strong count of this DEAD object just reached
            // zero.
            unsafe { death::dead_reached_zero(header) };
        } else if h.flags() & slow == flags::TRACKED | flags::FINALIZED {
            // SAFETY: the strong count just reached zero; the flags say
            // tracked, not DEAD, not WATCHED, finalized (or no finalizer).
            unsafe { death::tracked_reached_zero(self.ptr) };
        } else {
            // SAFETY: the strong count just reached zero.
            unsafe { death::strong_count_reached_zero(header) };
        }
    }
}

impl<T: ?Sized> Drop for Gc<T> {
    /// Drops a strong reference; the last one kills the object at once:
    /// its finalizer runs, then its value is dropped.
    ///
    /// ```
    /// use std::cell::Cell;
    /// use gcptr::{Gc, Trace};
    ///
    /// thread_local!(static DROPS: Cell<u32> = const { Cell::new(0) });
    ///
    /// #[derive(Trace)]
    /// struct Loud;
    /// impl Drop for Loud {
    ///     fn drop(&mut self) {
    ///         DROPS.with(|d| d.set(d.get() + 1));
    ///     }
    /// }
    ///
    /// let a = Gc::new(Loud);
    /// let b = a.clone();
    /// drop(a);
    /// assert_eq!(DROPS.with(Cell::get), 0); // `b` still holds it
    /// drop(b);
    /// assert_eq!(DROPS.with(Cell::get), 1); // at once, as with `Rc`
    /// ```
    #[inline]
    fn drop(&mut self) {
        if Header::dec_strong(self.header()) == 0 {
            // SAFETY: the strong count just reached zero.
            unsafe { self.drop_slow() };
        }
    }
}

// SAFETY: a `Gc` owns exactly one strong edge: itself.
unsafe impl<T: ?Sized + Trace> Trace for Gc<T> {
    #[inline(always)]
    fn trace(&self, tracer: &mut Tracer) {
        tracer.edge(self.header());
    }

    /// The edge is fixed whatever `T` does; whether a cycle can pass
    /// through the object it points at is decided when that object is made.
    #[inline(always)]
    fn __edges_fixed(_depth: u32) -> bool {
        true
    }

    /// Its drop lowers one count: the one a collection skips.
    #[inline(always)]
    fn __drop_only_releases_gcs() -> bool {
        true
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Gc<T> {
    /// The value's `Debug`, as `Rc`'s: the pointer does not show.
    ///
    /// ```
    /// assert_eq!(format!("{:?}", gcptr::Gc::new(Some(1))), "Some(1)");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for Gc<T> {
    /// The value's `Display`.
    ///
    /// ```
    /// assert_eq!(gcptr::Gc::new(5).to_string(), "5");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl<T: ?Sized> fmt::Pointer for Gc<T> {
    /// The address of the value, as [`Gc::as_ptr`] gives it.
    ///
    /// ```
    /// let x = gcptr::Gc::new(5);
    /// assert_eq!(format!("{x:p}"), format!("{:p}", gcptr::Gc::as_ptr(&x)));
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Pointer::fmt(&Gc::as_ptr(self), f)
    }
}

impl<T: ?Sized + PartialEq> PartialEq for Gc<T> {
    /// Equality of the values, as `Rc`'s. For identity, use
    /// [`Gc::ptr_eq`].
    ///
    /// Unlike `Rc`'s for a `T: Eq`, it does not take two handles to one
    /// object as equal without asking `T::eq` (that needs specialization,
    /// which only std may use): `T::eq` always runs, and on a value the
    /// collector dropped it panics as [`Deref`] does.
    ///
    /// ```
    /// use gcptr::Gc;
    ///
    /// let (a, b) = (Gc::new(5), Gc::new(5));
    /// assert!(a == b); // equal values
    /// assert!(!Gc::ptr_eq(&a, &b)); // two objects
    /// assert!(a != Gc::new(6));
    /// ```
    #[inline]
    fn eq(&self, other: &Gc<T>) -> bool {
        **self == **other
    }
}

impl<T: ?Sized + Eq> Eq for Gc<T> {}

impl<T: ?Sized + PartialOrd> PartialOrd for Gc<T> {
    /// Compares the values, as `Rc`'s does.
    ///
    /// ```
    /// use std::cmp::Ordering;
    /// use gcptr::Gc;
    ///
    /// assert_eq!(Gc::new(1.0).partial_cmp(&Gc::new(2.0)), Some(Ordering::Less));
    /// assert_eq!(Gc::new(f64::NAN).partial_cmp(&Gc::new(0.0)), None);
    /// assert!(Gc::new(3) > Gc::new(2));
    /// ```
    fn partial_cmp(&self, other: &Gc<T>) -> Option<Ordering> {
        (**self).partial_cmp(&**other)
    }
}

impl<T: ?Sized + Ord> Ord for Gc<T> {
    /// Compares the values, as `Rc`'s does.
    ///
    /// ```
    /// use gcptr::Gc;
    ///
    /// let mut words = vec![Gc::new("pear"), Gc::new("apple"), Gc::new("fig")];
    /// words.sort();
    /// assert_eq!(words, [Gc::new("apple"), Gc::new("fig"), Gc::new("pear")]);
    /// ```
    fn cmp(&self, other: &Gc<T>) -> Ordering {
        (**self).cmp(&**other)
    }
}

impl<T: ?Sized + Hash> Hash for Gc<T> {
    /// Hashes the value, as `Rc`'s does: equal values hash alike, so a
    /// `Gc` key is found by an equal value in another object. (For keys by
    /// identity, see [`WeakKeyMap`](crate::WeakKeyMap).)
    ///
    /// ```
    /// use std::collections::HashSet;
    /// use gcptr::Gc;
    ///
    /// let mut seen = HashSet::new();
    /// seen.insert(Gc::new(String::from("a")));
    /// assert!(seen.contains(&Gc::new(String::from("a"))));
    /// assert!(seen.contains(&String::from("a"))); // through `Borrow`
    /// ```
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl<T: Default + Trace + 'static> Default for Gc<T> {
    /// A `Gc` of `T::default()`.
    ///
    /// ```
    /// let x: gcptr::Gc<i32> = Default::default();
    /// assert_eq!(*x, 0);
    /// ```
    fn default() -> Gc<T> {
        Gc::new(T::default())
    }
}

impl<T: Trace + 'static> From<T> for Gc<T> {
    /// Moves `value` into a new `Gc`.
    ///
    /// ```
    /// let x = gcptr::Gc::from(7);
    /// assert_eq!(*x, 7);
    /// ```
    fn from(value: T) -> Gc<T> {
        Gc::new(value)
    }
}

impl<T: ?Sized> AsRef<T> for Gc<T> {
    /// The value, as `Deref` gives it.
    ///
    /// ```
    /// fn shout(text: impl AsRef<str>) -> String {
    ///     text.as_ref().to_uppercase()
    /// }
    /// let text: gcptr::Gc<str> = gcptr::Gc::from("hi");
    /// assert_eq!(shout(text), "HI");
    /// ```
    fn as_ref(&self) -> &T {
        self
    }
}

impl<T: ?Sized> Borrow<T> for Gc<T> {
    /// The value, so that a map keyed by `Gc<T>` can be searched by `&T`
    /// (`Gc`'s `Eq`, `Ord` and `Hash` are the value's, as `Borrow` asks).
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use gcptr::Gc;
    ///
    /// let mut ages = BTreeMap::new();
    /// ages.insert(Gc::new(String::from("ada")), 36);
    /// assert_eq!(ages.get(&String::from("ada")), Some(&36));
    /// ```
    fn borrow(&self) -> &T {
        self
    }
}

impl<T: ?Sized> Unpin for Gc<T> {}

// As `Rc` (both impls): the counts are the pointer's own business, not
// shared state a panic could leave half-updated. Without the second, the
// header's `Cell`s made `&Gc<T>` unwind-unsafe where `&Rc<T>` is not: a
// closure that borrows a `Gc` could not go to `catch_unwind`.
impl<T: ?Sized + std::panic::RefUnwindSafe> std::panic::UnwindSafe for Gc<T> {}
impl<T: ?Sized + std::panic::RefUnwindSafe> std::panic::RefUnwindSafe for Gc<T> {}

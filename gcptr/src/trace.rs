//! [`Trace`], [`Tracer`] and [`Finalize`]: how the collector sees the edges
//! between objects.

use core::ptr::NonNull;
use std::rc::Rc;

use crate::header::{flags, Header, Links, Mark};
use crate::spill::SpillStack;
use crate::weak_maps::CallbackState;

/// A type whose strong edges (the [`Gc`](crate::Gc)s it owns) the collector
/// can enumerate.
///
/// Derive it with `#[derive(Trace)]`; write it by hand only for types the
/// derive cannot see into.
///
/// # Safety
///
/// An implementation promises six things. Breaking any of the first three,
/// or the second half of the sixth, is undefined behaviour; the
/// collector's soundness rests on them. The others are promises of
/// behaviour: breaking them is safe, and costs what each says.
///
/// 1. `trace` visits (calls [`Trace::trace`] on) only `Gc`s that `self`
///    owns, each at most once per call. Visiting a `Gc` that `self` does not
///    own would let the collector discount a reference that is really held
///    from elsewhere and free a live object. Visiting *fewer* than `self`
///    owns is allowed: the missed objects only look held from outside, so
///    they may leak but are never freed early.
/// 2. `trace` reports the same edges on every call as long as no `Gc` is
///    added to or removed from `self`, and it does not change `self`:
///    neither it nor any code it runs (the `Drop` of something it drops,
///    say) mutably borrows a `RefCell` that `self` contains or that
///    contains `self`, until it returns. The collector reads those
///    `RefCell`s without borrowing them while the trace runs.
/// 3. If `__may_own_gc` returns `false`, no value of the type ever owns a
///    `Gc` (directly, or through anything it owns). The defaults are
///    conservative; only the derive and this crate's own impls lower it.
/// 4. If `__edges_fixed` returns `true`, a value of the type never comes
///    to own a `Gc` while it is shared. (Breaking this one can only leak
///    the cycles that pass through objects of the type.)
/// 5. `trace` does not panic. (A panic is contained by the collector, but
///    the object whose trace panicked may then leak. A panic in the trace
///    that `Gc::new` runs on a value whose edges are fixed unwinds out of
///    `Gc::new`, which drops the new object.)
/// 6. If `__drop_only_releases_gcs` returns `true`, dropping a value of the
///    type does nothing but drop `Gc`s that `trace` visits, and `trace`
///    runs no code but the traces of what the value owns, each of which
///    answers `true` too. (Breaking the first half can only skip a drop, a
///    leak; breaking the second can free memory that a reference the trace
///    made still points to.) The default is `false`, which is always
///    sound; the derive, the leaf types and the std wrappers of this crate
///    answer for themselves.
///
/// A trace may run other code within those promises (log, allocate, drop
/// a `Gc` held elsewhere). A `Gc` that such code drops while a collection
/// analyses the object it points to is reported as lost when the analysis
/// ends, so a cycle whose last handle from outside it was is collected
/// next time, at thread exit too.
///
/// # Examples
///
/// ```
/// use std::cell::RefCell;
/// use gcptr::{Gc, Trace, Tracer};
///
/// struct Node {
///     label: u32,
///     next: RefCell<Option<Gc<Node>>>,
/// }
///
/// // SAFETY: `trace` visits exactly the one `Gc` that `Node` owns.
/// unsafe impl Trace for Node {
///     fn trace(&self, tracer: &mut Tracer) {
///         self.next.trace(tracer);
///     }
/// }
///
/// let a = Gc::new(Node { label: 1, next: RefCell::new(None) });
/// *a.next.borrow_mut() = Some(a.clone()); // a self-cycle
/// drop(a);
/// assert_eq!(gcptr::collect(), 1);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `gcptr::Trace`",
    label = "this type must implement `Trace` to be owned by a `Gc` or traced",
    note = "add `#[derive(Trace)]` to its definition, or mark the field `#[gc(skip)]` if it owns no `Gc`"
)]
pub unsafe trait Trace {
    /// Visits every `Gc` that `self` owns by calling its `trace`.
    ///
    /// ```
    /// use gcptr::{Gc, Trace, Tracer};
    ///
    /// struct Pair(Gc<u8>, Gc<u8>);
    ///
    /// // SAFETY: visits exactly the two Gcs it owns.
    /// unsafe impl Trace for Pair {
    ///     fn trace(&self, tracer: &mut Tracer) {
    ///         self.0.trace(tracer);
    ///         self.1.trace(tracer);
    ///     }
    /// }
    ///
    /// let pair = Pair(Gc::new(1), Gc::new(2));
    /// assert_eq!(gcptr::referents(&pair).len(), 2);
    /// ```
    fn trace(&self, tracer: &mut Tracer);

    /// Whether a value of this type can own a `Gc`, and so take part in a
    /// reference cycle. Objects of types that answer `false` are not
    /// tracked by the collector at all and cost what an `Rc` costs.
    ///
    /// This is a function rather than an associated constant so that
    /// `Trace` stays dyn-compatible; it inlines to a constant. `depth`
    /// counts the derived types asked on the way down: a type that contains
    /// itself (`children: Vec<Self>`) would otherwise ask itself forever, so
    /// past `MAX_MAY_OWN_DEPTH` (32) the
    /// answer is `true`. Containers pass `depth` on unchanged.
    #[doc(hidden)]
    #[inline(always)]
    fn __may_own_gc(depth: u32) -> bool
    where
        Self: Sized,
    {
        let _ = depth;
        true
    }

    /// Whether a value of this type, once shared (behind `&`), can never
    /// come to own a `Gc` it did not own before: nothing in it can be
    /// changed through `&self` in a way that adds a `Gc` (no `RefCell`,
    /// `OnceCell` or other interior mutability around one).
    ///
    /// A new object of such a type that owns only untracked or acyclic
    /// objects is acyclic: no cycle can ever pass through it (a cycle needs
    /// some object to come to point at one made after it), so the collector
    /// never looks at it, as CPython untracks tuples of atomic values.
    ///
    /// The default is `true` only for types that can own no `Gc` at all.
    /// The derive answers the `&&` of the fields' answers; containers pass
    /// on their elements' (but `Box<T>`, whose pointee may be unsized and
    /// cannot be asked, answers whether the pointee has no drop glue, which
    /// misses only a `Gc` gained inside a `ManuallyDrop`: a leak at worst);
    /// `Gc<T>` answers `true` (the edge
    /// itself is fixed, whatever `T` does). `depth` works as in
    /// `__may_own_gc`; past the limit the answer is `false`.
    #[doc(hidden)]
    #[inline(always)]
    fn __edges_fixed(depth: u32) -> bool
    where
        Self: Sized,
    {
        !Self::__may_own_gc(depth)
    }

    /// Whether dropping a value of this type does nothing but drop the
    /// `Gc`s it owns, each of which `trace` visits: no `Drop` impl runs, no
    /// memory is freed, no `Weak` is given up. Then a garbage set whose
    /// objects are all of such types, and whose edges all lead to each
    /// other, needs no drops at all: each drop would only lower the count
    /// of an object that is freed with it, and the collector frees the set
    /// without them (`cycle::release_without_drops`).
    ///
    /// The set is freed on the strength of the counts its gathering pass
    /// took, so no trace of a member may make a strong reference that
    /// outlives the pass (a `Weak` upgraded, a `Gc` cloned): that is why
    /// the default is `false`, though a hand-written trace may otherwise
    /// do both. The derive answers the `&&` of its fields' answers (a
    /// skipped field's, which is never traced: whether it has no drop
    /// glue), and `false` for a type with a `Drop` impl of its own; the
    /// leaf types (and `unsafe_trace_leaf!`), whose traces do nothing,
    /// answer whether they have no drop glue; `Option`, `Result`,
    /// `RefCell`, arrays, tuples, `ManuallyDrop`, `GcClosure` and other
    /// wrappers that own their contents inline pass on their elements';
    /// `Gc<T>` answers `true` (its drop is the one that is skipped,
    /// whatever `T` is); `Vec`, `Box` and `Weak` answer `false`. No type
    /// contains itself but through such a pointer, so the question never
    /// comes back to the type that asks it.
    #[doc(hidden)]
    #[inline(always)]
    fn __drop_only_releases_gcs() -> bool
    where
        Self: Sized,
    {
        false
    }

    /// Whether this type has a finalizer (`#[gc(finalize)]`).
    #[doc(hidden)]
    #[inline(always)]
    fn __has_finalizer() -> bool
    where
        Self: Sized,
    {
        false
    }

    /// Runs the type's [`Finalize::finalize`]; the derive overrides it for
    /// types marked `#[gc(finalize)]`.
    #[doc(hidden)]
    #[inline(always)]
    fn __finalize(&self) {}
}

/// Code that runs once per object, before its value is dropped: Python's
/// `__del__` ([PEP 442]).
///
/// A type opts in with `#[derive(Trace)]` and `#[gc(finalize)]`. Then
/// `finalize` runs exactly once per object, whether the object dies because
/// its strong count reached zero or because the collector found it in a
/// garbage cycle. In a cycle, every member's finalizer runs while the whole
/// cycle is still intact, so a finalizer may read its peers, which a `Drop`
/// impl must not (see the crate docs, "Drop and dead cycles").
///
/// A finalizer may resurrect its object or its peers by storing a `Gc` to
/// them somewhere reachable; the collector notices and frees none of what
/// was resurrected. The finalizer does not run again for those objects.
/// The weak references to objects that a collection found to be garbage
/// are cleared before any finalizer runs, as in CPython, and stay so if
/// they are resurrected; the weak map entries for them are gone. The
/// `Weak`s made after the resurrection upgrade, as new `weakref.ref`s do in
/// CPython, and the weak maps take the object again. Two limits: a `Weak`
/// (or weak map entry) made while the object stands condemned, from a
/// finalizer or a death callback of the collection that condemned it,
/// stays cleared too; and only the first such resurrection of an object
/// starts a new epoch of weak references: after a second, no `Weak` to it
/// upgrades again (each `Weak` keeps its epoch in one bit of its address),
/// no weak map takes it, and a death callback registered on it
/// ([`Gc::on_death`](crate::Gc::on_death),
/// [`Gc::downgrade_with`](crate::Gc::downgrade_with)) is dropped without
/// running.
/// A death by count clears nothing before the finalizer, as in CPython:
/// while it runs, the object's `Weak`s still upgrade and weak maps still
/// return it (a `WeakValueMap` cache that the finalizer reads finds the
/// dying object; a handle so obtained and dropped before the finalizer
/// returns does not run it again). An object that such a finalizer
/// resurrects keeps its weak references, as nothing cleared them.
///
/// ```
/// use std::cell::RefCell;
/// use gcptr::{Finalize, Gc, Trace};
///
/// thread_local! {
///     static POOL: RefCell<Vec<Gc<Conn>>> = const { RefCell::new(Vec::new()) };
/// }
///
/// #[derive(Trace)]
/// #[gc(finalize)]
/// struct Conn {
///     peer: RefCell<Option<Gc<Conn>>>,
/// }
///
/// impl Finalize for Conn {
///     fn finalize(&self) {
///         // Back to the pool, and the peer with it.
///         if let Some(peer) = self.peer.borrow().clone() {
///             POOL.with(|p| p.borrow_mut().push(peer));
///         }
///     }
/// }
///
/// let a = Gc::new(Conn { peer: RefCell::new(None) });
/// let b = Gc::new(Conn { peer: RefCell::new(Some(a.clone())) });
/// *a.peer.borrow_mut() = Some(b);
/// let before = Gc::downgrade(&a);
/// drop(a);
/// assert_eq!(gcptr::collect(), 0); // both resurrected
/// assert!(before.upgrade().is_none()); // cleared, as in CPython
/// let a = POOL.with(|p| p.borrow_mut().pop()).unwrap();
/// let after = Gc::downgrade(&a);
/// assert!(Gc::ptr_eq(&after.upgrade().unwrap(), &a)); // a new one works
/// # *a.peer.borrow_mut() = None;
/// ```
///
/// A finalizer runs where its object dies: where its last handle goes, or
/// inside a collection, explicit or automatic, and an automatic one may
/// start at any `Gc::new` (or `new_cyclic`, `make_mut`, ...) of a tracked
/// object. So it may run while the code that allocates holds a `RefCell`
/// borrowed: a finalizer that borrows the same cell (a cache it updates, a
/// log) panics with "already mutably borrowed", and the panic comes out of
/// that `Gc::new`. Allocate before taking the borrow, or have the finalizer
/// use `try_borrow` and skip what it cannot reach. (A `Drop` that a
/// collection runs meets the same.)
///
/// An object is the value of one `Gc`: a finalizable value held some other
/// way (a field of another type, an element of a `Vec` or of a `Gc<[T]>`)
/// is not one, and only its `Drop` runs, as an attribute's `__del__` waits
/// for its own object in Python. A value moved out with
/// [`Gc::try_unwrap`](crate::Gc::try_unwrap) leaves without its finalizer;
/// one that [`Gc::make_mut`](crate::Gc::make_mut) moves to a fresh
/// allocation keeps its verdict (a finalizer that ran does not run again).
///
/// [PEP 442]: https://peps.python.org/pep-0442/
///
/// # Examples
///
/// ```
/// use std::cell::{Cell, RefCell};
/// use gcptr::{Finalize, Gc, Trace};
///
/// thread_local!(static FINALIZED: Cell<u32> = const { Cell::new(0) });
///
/// #[derive(Trace)]
/// #[gc(finalize)]
/// struct Partner {
///     name: &'static str,
///     partner: RefCell<Option<Gc<Partner>>>,
/// }
///
/// impl Finalize for Partner {
///     fn finalize(&self) {
///         // The peer is still intact here, even in a garbage cycle.
///         let partner = self.partner.borrow();
///         assert!(partner.as_ref().unwrap().name.len() > 0);
///         FINALIZED.with(|n| n.set(n.get() + 1));
///     }
/// }
///
/// let a = Gc::new(Partner { name: "a", partner: RefCell::new(None) });
/// let b = Gc::new(Partner { name: "b", partner: RefCell::new(Some(a.clone())) });
/// *a.partner.borrow_mut() = Some(b.clone());
/// drop((a, b));
/// assert_eq!(gcptr::collect(), 2);
/// assert_eq!(FINALIZED.with(Cell::get), 2);
/// ```
pub trait Finalize {
    /// Runs once, before the value is dropped. See the trait's example.
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use gcptr::{Finalize, Gc, Trace};
    ///
    /// thread_local!(static LOG: RefCell<Vec<&'static str>> = const { RefCell::new(Vec::new()) });
    ///
    /// #[derive(Trace)]
    /// #[gc(finalize)]
    /// struct Logged(&'static str);
    ///
    /// impl Finalize for Logged {
    ///     fn finalize(&self) {
    ///         LOG.with(|log| log.borrow_mut().push(self.0));
    ///     }
    /// }
    ///
    /// impl Drop for Logged {
    ///     fn drop(&mut self) {
    ///         LOG.with(|log| log.borrow_mut().push("dropped"));
    ///     }
    /// }
    ///
    /// let first = Gc::new(Logged("finalized"));
    /// let second = first.clone();
    /// drop(first); // not the last reference: nothing runs
    /// assert!(LOG.with(|log| log.borrow().is_empty()));
    /// drop(second);
    /// assert_eq!(LOG.with(|log| log.take()), ["finalized", "dropped"]);
    /// ```
    fn finalize(&self);
}

/// How deep `Trace::__may_own_gc` asks before it answers `true`.
pub const MAX_MAY_OWN_DEPTH: u32 = 32;

/// What a [`Tracer`] does with each edge it is shown.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Action {
    /// Trial deletion: one reference to a member of the collected set comes
    /// from inside the set.
    SubtractInternal,
    /// As `SubtractInternal`, for a set that grows to hold all that its
    /// first members reach: an edge to an object in a list takes the
    /// object into the set.
    Gather,
    /// Reachability: a member of the set is reachable from outside.
    MarkReachable,
    /// Diagnostics: record every strong edge.
    Record,
    /// Garbage found: cancel the callbacks of the weak references it owns.
    CancelCallbacks,
    /// A new object: does it own a tracked object (one neither untracked
    /// nor acyclic)?
    SeekTracked,
}

/// The visitor that [`Trace::trace`] hands each owned `Gc` to.
///
/// Only the collector creates tracers; user code passes them on, by calling
/// `trace(tracer)` on each field that may own a `Gc`. A tracer has no
/// methods of its own: what it does with an edge (count it, mark what it
/// leads to, list it for [`referents`](crate::referents)) is the
/// collector's business, so the one `Trace` impl serves every purpose.
///
/// # Examples
///
/// ```
/// use std::cell::RefCell;
/// use gcptr::{Gc, Trace, Tracer};
///
/// // A foreign type the derive cannot see into: a slot that may hold a
/// // `Gc`, and a name that owns none.
/// struct Slot {
///     name: String,
///     held: RefCell<Option<Gc<Slot>>>,
/// }
///
/// // SAFETY: `trace` shows the tracer the one `Gc` a `Slot` can own, and
/// // changes nothing; `name` owns no `Gc`.
/// unsafe impl Trace for Slot {
///     fn trace(&self, tracer: &mut Tracer) {
///         self.held.trace(tracer);
///     }
/// }
///
/// let slot = Gc::new(Slot { name: "self".into(), held: RefCell::new(None) });
/// assert!(gcptr::referents(&*slot).is_empty());
/// *slot.held.borrow_mut() = Some(slot.clone());
/// // The same tracer call lists the edge and lets the collector free the cycle.
/// assert_eq!(gcptr::referents(&*slot), [Gc::as_ptr(&slot).cast::<()>()]);
/// assert_eq!(slot.name, "self");
/// drop(slot);
/// assert_eq!(gcptr::collect(), 1);
/// ```
pub struct Tracer {
    action: Action,
    /// Objects marked reachable whose own edges are still to be followed
    /// (`MarkReachable`), every edge seen (`Record`), or the set being
    /// traced (`SubtractInternal`, `Gather`).
    pending: Vec<NonNull<Header>>,
    /// What did not fit in `pending`'s spare room during a trace, to be
    /// appended to it once the trace returns ([`Tracer::settle`]): a trace
    /// calls no allocator of the program (see `crate::spill`).
    spilled: SpillStack<NonNull<Header>>,
    /// Objects seen outside every list, set aside by `Gc::get_mut`, to be
    /// taken back into generation 0.
    set_aside: SpillStack<NonNull<Header>>,
    /// The callbacks to cancel (`CancelCallbacks`) once the trace returns,
    /// each a reference from `Rc::into_raw` ([`Tracer::take_cancelled`]).
    cancelled: SpillStack<*const CallbackState>,
    /// `SeekTracked`'s answer.
    found_tracked: bool,
    /// How many members of the set have had all their references
    /// accounted for (`SubtractInternal`, `Gather`).
    internal_only: usize,
    /// The pending events of every object taken into the set
    /// (`Gather`): see [`Tracer::needs_events`].
    taken_events: usize,
    /// Whether an object's drop may do more than release the set's own
    /// members: a member's type says so
    /// ([`Trace::__drop_only_releases_gcs`]), an edge left the set (to an
    /// untracked, acyclic or set-aside object), or a trace left edges
    /// unreported (a `RefCell` mutably borrowed). See [`Tracer::drops_only_release_members`].
    drops_needed: bool,
    /// Whether an edge to an object that `Gc::get_mut` set aside takes it
    /// into the set (`SubtractInternal`, `Gather`): in a collection's
    /// first analysis, not in its second look at its garbage, whose set
    /// must stay what the first one condemned. See
    /// [`Tracer::take_set_aside_objects`].
    takes_set_aside: bool,
    /// How many set-aside objects the set took in.
    taken_aside: usize,
}

/// Whether `value`, the value of a new object, owns only untracked and
/// acyclic objects. If its type's edges are also fixed
/// ([`Trace::__edges_fixed`]), the new object is acyclic: no cycle can pass
/// through it, now or later.
#[inline(always)]
pub(crate) fn owns_only_acyclic<T: Trace + ?Sized>(value: &T) -> bool {
    let mut tracer = Tracer::new(Action::SeekTracked);
    value.trace(&mut tracer);
    let found_tracked = tracer.found_tracked;
    // It holds no memory (`SeekTracked` keeps nothing), and the optimizer
    // does not see that its drop does nothing: on every tracked `Gc::new`.
    core::mem::forget(tracer);
    !found_tracked
}

impl Tracer {
    pub(crate) fn new(action: Action) -> Self {
        Tracer {
            action,
            pending: Vec::new(),
            spilled: SpillStack::new(),
            set_aside: SpillStack::new(),
            cancelled: SpillStack::new(),
            found_tracked: false,
            internal_only: 0,
            taken_events: 0,
            drops_needed: false,
            takes_set_aside: false,
            taken_aside: 0,
        }
    }

    /// Makes an edge to an object that `Gc::get_mut` set aside take it
    /// into the set, as an edge to a listed object does for `Gather`.
    ///
    /// Such an object is in no list, and it comes back into one only at
    /// its next lost reference, or when an analysis meets an edge to it.
    /// Its last handle may have moved into a cycle with no loss (a cycle
    /// closed through it: `n.next = a; a.next = n.clone(); drop(n)`), and
    /// left out of the set it would hold its peers from outside: the
    /// collection would find the cycle alive, and only the next one would
    /// find it garbage. An edge to it is a second handle, or its only one
    /// held by a traced value, so the `&mut` that `get_mut` lent is gone
    /// (a value mutably borrowed shows no edges), and its value may be
    /// traced like any other.
    pub(crate) fn take_set_aside_objects(&mut self) {
        debug_assert!(matches!(
            self.action,
            Action::SubtractInternal | Action::Gather
        ));
        self.takes_set_aside = true;
    }

    /// How many objects set aside by `Gc::get_mut` the set took in
    /// ([`Tracer::take_set_aside_objects`]).
    pub(crate) fn taken_aside(&self) -> usize {
        self.taken_aside
    }

    /// A tracer whose `pending` list starts as `set` (for `Gather`, an
    /// empty buffer: the roots come one by one, [`Tracer::push_root`]).
    pub(crate) fn over(action: Action, set: Vec<NonNull<Header>>) -> Self {
        debug_assert!(action != Action::Gather || set.is_empty());
        let mut tracer = Tracer::new(action);
        tracer.pending = set;
        tracer
    }

    #[inline(always)]
    fn note_taken(&mut self, header: NonNull<Header>) {
        // SAFETY: a member of the set is allocated.
        let h = unsafe { header.as_ref() };
        self.taken_events |= h.pending_events();
        self.drops_needed |= !h.drop_only_releases_gcs();
    }

    /// Whether the set gathered so far (`Gather`) could be freed without
    /// the drops of its values: each member's type drops nothing but `Gc`s
    /// ([`Trace::__drop_only_releases_gcs`]), and every edge the traces
    /// showed led to a member. Then the drops would only lower the counts
    /// of members.
    pub(crate) fn drops_only_release_members(&self) -> bool {
        !self.drops_needed
    }

    /// Tells the tracer that the value traced holds edges it did not show
    /// (a `RefCell` that is mutably borrowed): its drop must run.
    #[cold]
    #[inline(never)]
    pub(crate) fn note_unreported_edges(&mut self) {
        self.drops_needed = true;
    }

    /// Whether an object taken into the set so far (`Gather`) has a
    /// finalizer still to run or something watching for its death: if
    /// none has, garbage among them needs nothing but its drop.
    pub(crate) fn needs_events(&self) -> bool {
        self.taken_events != 0
    }

    pub(crate) fn pending_len(&self) -> usize {
        self.pending.len()
    }

    pub(crate) fn pending_at(&self, index: usize) -> Option<NonNull<Header>> {
        self.pending.get(index).copied()
    }

    /// Exchanges two places of `pending` (the gathering pass's order).
    pub(crate) fn swap_pending(&mut self, a: usize, b: usize) {
        self.pending.swap(a, b);
    }

    pub(crate) fn pop_pending(&mut self) -> Option<NonNull<Header>> {
        self.pending.pop()
    }

    pub(crate) fn pending(&self) -> &[NonNull<Header>] {
        &self.pending
    }

    /// Whether the set gathered so far (`Gather`), all traced, is garbage
    /// that needs nothing but its drops: every reference to every member
    /// came from a member, and none has an event pending. Then nothing
    /// outside the set reaches it, and no object gathered later can refer
    /// to it.
    pub(crate) fn gathered_all_internal(&self) -> bool {
        debug_assert!(self.spilled.is_empty(), "asked before `settle`");
        !self.pending.is_empty()
            && self.internal_only == self.pending.len()
            && self.taken_events == 0
    }

    /// Empties the set (`Gather`) once its objects are dropped, to gather
    /// the next one into the same buffer.
    pub(crate) fn restart(&mut self) {
        debug_assert!(self.gathered_all_internal());
        self.pending.clear();
        self.internal_only = 0;
        self.drops_needed = false;
    }

    pub(crate) fn into_pending(self) -> Vec<NonNull<Header>> {
        self.pending
    }

    /// How many members of the set have no reference from outside it:
    /// every one of their references came from a member traced so far.
    pub(crate) fn internal_only(&self) -> usize {
        self.internal_only
    }

    pub(crate) fn take_set_aside(&mut self) -> Vec<NonNull<Header>> {
        self.set_aside.take()
    }

    /// Adds a root, taken into the set already, to `pending`, between
    /// traces (so it may allocate).
    pub(crate) fn push_root(&mut self, header: NonNull<Header>) {
        self.note_taken(header);
        self.pending.push(header);
    }

    /// Appends to `pending` what spilled from it during the last trace, in
    /// the order the trace showed it. Called after each trace whose
    /// `pending` is read in order, before it is read.
    ///
    /// `pending` grows by doubling, as a `Vec` does, but to no more than
    /// `room` entries while that suffices: the most it is expected to
    /// hold. A set that comes to most of the heap would otherwise take up
    /// to twice the memory it needs, which the collector keeps for the
    /// next one (`cycle::collect_locked`).
    #[inline]
    pub(crate) fn settle(&mut self, room: usize) {
        if !self.spilled.is_empty() {
            self.settle_spilled(room);
        }
    }

    #[cold]
    #[inline(never)]
    fn settle_spilled(&mut self, room: usize) {
        let needed = self.pending.len() + self.spilled.as_slice().len();
        if needed > self.pending.capacity() {
            let doubled = 2 * self.pending.capacity();
            let capped = if needed <= room {
                doubled.min(room)
            } else {
                doubled
            };
            self.pending
                .reserve_exact(capped.max(needed) - self.pending.len());
        }
        self.pending.extend_from_slice(self.spilled.as_slice());
        self.spilled.clear();
    }

    /// Adds `header` to `pending` without calling the global allocator:
    /// into its spare room (`Vec` guarantees that `push` does not allocate
    /// when the capacity suffices), or past that into `spilled`.
    #[inline(always)]
    fn push_pending(&mut self, header: NonNull<Header>) {
        if self.pending.len() < self.pending.capacity() {
            self.pending.push(header);
        } else {
            self.rare_edge(header, None);
        }
    }

    /// The rare cases of an edge, in one function so that the loops over a
    /// container's edges hold one call target, not three: an edge to an
    /// object in no list, `set_aside` its links (a collection's first
    /// pass: [`Tracer::edge_to_set_aside`]); `header` did not fit in
    /// `pending` (a collection's actions); or an edge of a diagnostic
    /// action. The compiler keeps each call target of a loop in a register
    /// of its own, saved and restored on every trace that has the loop.
    #[cold]
    #[inline(never)]
    fn rare_edge(&mut self, header: NonNull<Header>, set_aside: Option<NonNull<Links>>) {
        if let Some(node) = set_aside {
            self.edge_to_set_aside(node, header);
            return;
        }
        match self.action {
            Action::SubtractInternal | Action::Gather | Action::MarkReachable => {
                self.spilled.push(header);
            }
            Action::Record => {
                if self.pending.len() < self.pending.capacity() {
                    self.pending.push(header);
                } else {
                    self.spilled.push(header);
                }
            }
            Action::CancelCallbacks | Action::SeekTracked => {}
        }
    }

    /// Shows the tracer a weak reference's callback owned by the traced
    /// value.
    pub(crate) fn weak_callback(&mut self, callback: &Rc<CallbackState>) {
        if self.action == Action::CancelCallbacks {
            self.cancelled.push(Rc::into_raw(Rc::clone(callback)));
        }
    }

    /// A callback to cancel (`CancelCallbacks`) that a trace showed. Taken
    /// once the trace has returned: a cancel drops the callback, which runs
    /// code of the program.
    pub(crate) fn take_cancelled(&mut self) -> Option<Rc<CallbackState>> {
        // SAFETY: `cancelled` holds pointers from `Rc::into_raw`, each
        // owning one reference, which this takes back once.
        self.cancelled.pop().map(|raw| unsafe { Rc::from_raw(raw) })
    }

    /// Shows the tracer one strong edge, to the object whose header is `to`.
    ///
    /// Inlined into every type's trace: a collection calls it once per
    /// edge per pass, and the common cases are a few instructions. The
    /// actions are told apart by a chain of tests, the collector's first
    /// pass's first, rather than by a `match`, which compiles to a jump
    /// through a table on every edge.
    #[inline(always)]
    pub(crate) fn edge(&mut self, to: NonNull<Header>) {
        // `to` comes from a live `Gc` owned by the traced value (Trace's
        // contract), so its header is allocated.
        let action = self.action;
        if matches!(action, Action::SubtractInternal | Action::Gather) {
            // Untracked: never part of a cycle, but its count is the drop's
            // to lower.
            let Some(node) = Header::links(to) else {
                self.drops_needed = true;
                return;
            };
            // SAFETY: the links of a tracked, allocated object.
            let links = unsafe { node.as_ref() };
            match links.mark() {
                Mark::InSet { .. } => self.internal_only += usize::from(links.decrement_refs()),
                Mark::Outside if action == Action::Gather && Links::is_listed(node) => {
                    self.push_pending(Links::take_listed(node));
                    self.note_taken(to);
                    self.internal_only += usize::from(links.decrement_refs());
                }
                // In no list: maybe set aside by `Gc::get_mut`.
                Mark::Outside if Links::is_set_aside(node) => self.rare_edge(to, Some(node)),
                // In a list (an edge out of the set), or acyclic.
                Mark::Outside => self.drops_needed = true,
            }
        } else if action == Action::MarkReachable {
            let Some(node) = Header::links(to) else {
                return;
            };
            // SAFETY: the links of a tracked, allocated object.
            let links = unsafe { node.as_ref() };
            if links.mark() == (Mark::InSet { reachable: false }) {
                links.set_mark_reachable();
                self.push_pending(to);
            }
        } else if action == Action::SeekTracked {
            if let Some(node) = Header::links(to) {
                self.found_tracked |= !Links::is_acyclic(node);
            }
        } else {
            // Recorded, or ignored.
            self.rare_edge(to, None);
        }
    }

    /// An edge to an object in no list, `node` its links: one that
    /// `Gc::get_mut` set aside, unless it is dead. Taken into the set if
    /// the tracer takes such objects ([`Tracer::take_set_aside_objects`]),
    /// otherwise noted, to be taken back into generation 0 when the
    /// analysis ends.
    #[inline(always)]
    fn edge_to_set_aside(&mut self, node: NonNull<Links>, to: NonNull<Header>) {
        // SAFETY: allocated, as in `edge`.
        if unsafe { to.as_ref() }.has(flags::DEAD) {
            self.drops_needed = true;
        } else if self.takes_set_aside {
            let provisional = self.action == Action::Gather;
            self.push_pending(Links::take_set_aside(node, provisional));
            self.note_taken(to);
            self.taken_aside += 1;
            // SAFETY: the links of a tracked, allocated object.
            let links = unsafe { node.as_ref() };
            self.internal_only += usize::from(links.decrement_refs());
        } else {
            self.drops_needed = true;
            self.set_aside.push(to);
        }
    }
}

//! Death by reference count: what happens when an object's strong count
//! reaches zero, outside the cycle collector.
//!
//! The finalizer runs (once), the value is dropped, the memory is released
//! when no `Weak` is left. Two things make this more than `Rc`'s drop:
//!
//! * **No recursion that follows the data** (CPython's "trashcan"). Dropping
//!   the head of a million-node list would otherwise drop the next node from
//!   inside the first one's drop, and so on down the stack. Past
//!   `MAX_DROP_DEPTH` nested deaths, a death is queued in
//!   `State::deferred` instead, and the outermost death runs the queue.
//! * **Analyses in progress.** While the collector has scratch in the links
//!   of the objects it analyses, a death (only a `Trace` impl could cause
//!   one) is queued, as above, and run when the collection is done.

use core::ptr::{self, NonNull};
use std::panic::{self, AssertUnwindSafe};

use super::panics::{keep_first, resume_unless_unwinding, Panic};
use super::state::{self, State};
use crate::header::{flags, Allocation, GcBox, Header, Links};

/// How many deaths may nest on the stack before they are queued.
const MAX_DROP_DEPTH: usize = 48;
const _: () = assert!(MAX_DROP_DEPTH <= state::ANALYSIS_DEPTH);

/// Called when a `Gc` drop takes the strong count of a tracked object, or
/// of one with a finalizer, to zero.
///
/// # Safety
/// `header` is an allocated object whose strong count just became zero.
#[cold]
#[inline(never)]
pub(crate) unsafe fn strong_count_reached_zero(header: NonNull<Header>) {
    // SAFETY: allocated, per the contract.
    if unsafe { header.as_ref() }.has(flags::DEAD) {
        // SAFETY: per the contract, and DEAD.
        unsafe { dead_reached_zero(header) };
        return;
    }
    let Some(st) = state::current() else {
        // Thread exit: no queue any more; die on the spot.
        // SAFETY: per the contract.
        unsafe { die(header, None) };
        return;
    };
    if st.drop_depth.get() >= MAX_DROP_DEPTH {
        // Too deep, or an analysis is under way (`ANALYSIS_DEPTH`).
        st.defer(header);
        return;
    }
    let outermost = st.drop_depth.get() == 0;
    let _depth = DropDepth::enter(st);
    // SAFETY: per the contract.
    unsafe { die(header, Some(st)) };
    if outermost {
        run_deferred_at_depth(st);
    }
}

/// Called when the strong count of a `DEAD` object reaches zero: the
/// collector dropped (or is about to drop) the value, and this was an edge
/// between garbage objects, or a handle that a `Drop` or finalizer made to
/// a dead object. Only the strong references' unit of weak count is left
/// to give up, unless the mark is provisional
/// (`Header::condemn_provisionally`): then the share stays, for the
/// collection to take over, whether it drops the object as garbage or
/// queues its death on acquitting it (a trace dropped its last reference).
///
/// # Safety
/// `header` is an allocated, `DEAD` object whose strong count just became
/// zero.
#[cold]
#[inline(never)]
pub(crate) unsafe fn dead_reached_zero(header: NonNull<Header>) {
    // SAFETY: allocated, per the contract.
    if unsafe { header.as_ref() }.is_provisional() {
        return;
    }
    // SAFETY: the strong references' share of the weak count is released
    // exactly once, here, when the count reaches zero.
    unsafe { release_weak(header) };
}

/// The death of an untracked object with no finalizer and no watcher,
/// inlined into each type's `Gc::drop_slow`: exactly `Rc`'s, the value
/// dropped and the memory freed with its layout known at compile time
/// where the type is `Sized`.
///
/// # Safety
/// `this` is an allocated, untracked object whose strong count just became
/// zero, with the flags `FINALIZED` set and `DEAD` and `WATCHED` clear.
#[inline]
pub(crate) unsafe fn untracked_reached_zero<T: ?Sized>(this: NonNull<GcBox<T>>) {
    // SAFETY: allocated by `Gc::allocate` (or as a slice, for which this
    // is `None`), untracked, and the value alive.
    let known = unsafe { this.as_ref().known_allocation(false) };
    // SAFETY: the strong references' share of the weak count, if the drop
    // below unwinds.
    let unwinding = unsafe { ReleaseOnUnwind::new(this.cast()) };
    // SAFETY: the last strong reference: the value is alive and nothing
    // else can reach it.
    unsafe { ptr::drop_in_place(ptr::addr_of_mut!((*this.as_ptr()).value)) };
    core::mem::forget(unwinding);
    // SAFETY: the strong references' share of the weak count; `known` is
    // this object's allocation (above).
    unsafe { release_weak_of(this.cast(), known) };
}

/// The common death, inlined into each type's `Gc::drop_slow` (with that
/// type's drop, and its allocation's layout as constants where the type is
/// `Sized`): a tracked object with no finalizer and no watcher, outside an
/// analysis and below the trashcan's depth. Anything else takes the
/// general path.
///
/// # Safety
/// `this` is an allocated, tracked object whose strong count just became
/// zero, with the flags `FINALIZED` set and `DEAD` and `WATCHED` clear.
#[inline]
pub(crate) unsafe fn tracked_reached_zero<T: ?Sized>(this: NonNull<GcBox<T>>) {
    let header = this.cast::<Header>();
    let Some(st) = state::current_if_created() else {
        // SAFETY: per the contract.
        return unsafe { strong_count_reached_zero(header) };
    };
    let depth = st.drop_depth.get();
    if depth >= MAX_DROP_DEPTH {
        // Too deep, or an analysis is under way (`ANALYSIS_DEPTH`).
        // SAFETY: per the contract.
        return unsafe { strong_count_reached_zero(header) };
    }
    // SAFETY: allocated, per the contract.
    let h = unsafe { header.as_ref() };
    h.set(flags::DEAD);
    if let Some(links) = Header::links(header) {
        // `note_leaving`, with the list test that the unlink makes anyway:
        // an object in a list is never acyclic.
        if Links::unlink_dying(links) || !Links::is_acyclic(links) {
            st.note_death(header);
        }
    }
    // SAFETY: allocated by `Gc::allocate`, tracked, and the value alive
    // (not DEAD until just now).
    let known = unsafe { this.as_ref().known_allocation(true) };
    {
        let _depth = DropDepth::enter(st);
        // SAFETY: the strong references' share of the weak count, if the
        // drop below unwinds.
        let unwinding = unsafe { ReleaseOnUnwind::new(header) };
        // SAFETY: the value is alive and nothing can reach it any more:
        // the strong count is zero and `Weak::upgrade` fails on DEAD
        // objects.
        unsafe { ptr::drop_in_place(ptr::addr_of_mut!((*this.as_ptr()).value)) };
        core::mem::forget(unwinding);
    }
    // SAFETY: the strong references' share of the weak count; `known` is
    // this object's allocation (above).
    unsafe { release_weak_of(header, known) };
    if depth == 0 {
        run_deferred_at_depth_zero(st);
    }
}

/// Runs the deaths the trashcan queued, once the outermost drop is done.
#[inline]
fn run_deferred_at_depth_zero(st: &State) {
    if !st.deferred_is_empty() {
        run_deferred(st);
    }
}

/// Runs the queued deaths (after a collection, or at thread exit).
pub(crate) fn run_deferred(st: &State) {
    // Not from inside a drop, nor an analysis (`ANALYSIS_DEPTH`).
    if st.drop_depth.get() == 0 {
        let _depth = DropDepth::enter(st);
        run_deferred_at_depth(st);
    }
}

/// [`run_deferred`], to the end of the queue even if deaths panic: keeps
/// the first panic in `first_panic` (if it holds none yet).
pub(crate) fn run_deferred_catching(st: &State, first_panic: &mut Option<Panic>) {
    // Each panic takes a death off the queue, so this ends.
    while let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| run_deferred(st))) {
        keep_first(first_panic, payload);
    }
}

fn run_deferred_at_depth(st: &State) {
    if st.deferred_is_empty() {
        return;
    }
    // Deaths that must wait for the collection under way (see below): back
    // on the queue when this ends, even if a death below panics.
    struct Requeue<'a> {
        st: &'a State,
        waiting: Vec<NonNull<Header>>,
    }
    impl Drop for Requeue<'_> {
        fn drop(&mut self) {
            for header in self.waiting.drain(..) {
                self.st.defer(header);
            }
        }
    }
    let mut requeue = Requeue {
        st,
        waiting: Vec::new(),
    };
    while let Some(header) = st.next_deferred() {
        // SAFETY: queued objects are allocated: their memory is held by the
        // strong references' share of the weak count until `die` (or the
        // release below) gives it up.
        let h = unsafe { header.as_ref() };
        if h.has(flags::DEAD) {
            // A collection dropped it meanwhile: only that share is left.
            // SAFETY: as above; released once, here.
            unsafe { release_weak(header) };
        } else if h.strong() != 0 {
            // Nothing can make a `Gc` to an object whose count is zero, but
            // a collection holds one ([`Hold`]) while it runs the object's
            // finalizer or trace (and this runs from inside it): the value
            // must outlive that. The collection runs the queue again when
            // it ends.
            requeue.waiting.push(header);
        } else {
            // SAFETY: as above, with a count of zero, and not DEAD.
            unsafe { die(header, Some(st)) };
        }
    }
    drop(requeue);
}

/// A strong reference held on an object while user code borrows its
/// value outside a death: a finalizer run by a collection, or a trace run
/// to cancel callbacks or by `referrers`. That code may drop the object's
/// last references, or collect it, and the value must outlive the borrow.
/// Dropping the hold gives the reference up, and the object dies then if
/// it was the last; unless its count was zero when the hold began: its
/// death is queued, and the queue leaves it alone while it is held
/// ([`run_deferred_at_depth`]).
pub(crate) struct Hold {
    header: NonNull<Header>,
    queued: bool,
    /// [`collections_so_far`] when the hold began.
    collections: usize,
}

/// How many collections the calling thread has run (0 with no collector).
fn collections_so_far() -> usize {
    state::current_if_created().map_or(0, |st| st.stats.iter().map(|s| s.get().collections).sum())
}

impl Hold {
    /// # Safety
    /// The object stays allocated until the hold is dropped (the caller
    /// holds a unit of its weak count), and its value is alive: not `DEAD`.
    /// A count of zero means that its death is queued.
    pub(crate) unsafe fn new(header: NonNull<Header>) -> Hold {
        // SAFETY: allocated, per the contract.
        let h = unsafe { header.as_ref() };
        let queued = h.strong() == 0;
        h.inc_strong();
        Hold {
            header,
            queued,
            collections: collections_so_far(),
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        // Giving the hold up is a lost reference only to a collection that
        // ran meanwhile and took it for one from outside: then it reports,
        // as `Gc::drop` does. Otherwise it loses nothing, and reporting
        // would send the next full collection over every object that
        // `referrers` held. Other references lost meanwhile reported
        // themselves: the hold kept the count above zero.
        let strong = if collections_so_far() == self.collections {
            // SAFETY: allocated, per `new`'s contract.
            let h = unsafe { self.header.as_ref() };
            let strong = h.strong() - 1;
            h.set_strong(strong);
            strong
        } else {
            Header::dec_strong(self.header)
        };
        if strong == 0 && !self.queued {
            // SAFETY: allocated (per `new`'s contract), and the count just
            // reached zero.
            unsafe { strong_count_reached_zero(self.header) };
        }
    }
}

/// Keeps `State::drop_depth` right, even when a `Drop` unwinds.
struct DropDepth<'a>(&'a State);

impl<'a> DropDepth<'a> {
    fn enter(st: &'a State) -> Self {
        st.drop_depth.set(st.drop_depth.get() + 1);
        DropDepth(st)
    }
}

impl Drop for DropDepth<'_> {
    fn drop(&mut self) {
        self.0.drop_depth.set(self.0.drop_depth.get() - 1);
    }
}

/// Finalizes, drops and (if no `Weak` is left) frees an object whose
/// strong count is zero.
///
/// The user code it runs (the finalizer, death callbacks, the value's
/// `Drop`) is caught, so that the object dies and its memory is released
/// whatever panics; then the first panic is resumed (see
/// [`resume_unless_unwinding`]).
///
/// # Safety
/// As `strong_count_reached_zero`, and the object is not `DEAD`.
unsafe fn die(header: NonNull<Header>, st: Option<&State>) {
    // SAFETY: allocated, per the contract.
    let h = unsafe { header.as_ref() };
    let mut finalizer_panic = None;
    if !h.has(flags::FINALIZED) {
        h.set(flags::FINALIZED);
        if let Some(st) = st {
            st.finalized_by_count
                .set(st.finalized_by_count.get().wrapping_add(1));
        }
        // The finalizer borrows the value; hold a strong reference for it so
        // that a `Gc` it makes (from a `Weak`) and drops again cannot kill
        // the object under it.
        h.set_strong(1);
        let finalize = h.vtable().finalize;
        // SAFETY: the value is alive (not DEAD).
        finalizer_panic =
            panic::catch_unwind(AssertUnwindSafe(|| unsafe { finalize(header) })).err();
        if Header::dec_strong(header) > 0 {
            // Resurrected: the finalizer stored a new strong reference.
            if let Some(payload) = finalizer_panic {
                resume_unless_unwinding(payload);
            }
            return;
        }
    }
    h.set(flags::DEAD);
    if let Some(links) = Header::links(header) {
        if let Some(st) = st {
            st.note_leaving(links);
        }
        Links::unlink(links);
    }
    let mut first_panic = finalizer_panic;
    if let Some(payload) = crate::weak_maps::notify_death(header) {
        keep_first(&mut first_panic, payload);
    }
    let drop_value = h.vtable().drop_value;
    // Caught, so that a finalizer's panic (held in `first_panic`) is not
    // dropped by the unwinding, and stays the first.
    // SAFETY: the value is alive and nothing can reach it any more: the
    // strong count is zero and `Weak::upgrade` fails on DEAD objects.
    let dropped = panic::catch_unwind(AssertUnwindSafe(|| unsafe { drop_value(header) }));
    // SAFETY: the strong references' share of the weak count; the value
    // is dropped (as far as its drop glue goes, if it panicked).
    unsafe { release_weak(header) };
    if let Err(payload) = dropped {
        keep_first(&mut first_panic, payload);
    }
    if let Some(payload) = first_panic {
        resume_unless_unwinding(payload);
    }
}

/// Gives up the strong references' share of a dying object's weak count
/// if the drop of its value unwinds: unwinding out of `drop_in_place` has
/// dropped every field it had not reached, so the value is as dropped as
/// it will ever be, and its memory may go (as `Rc`'s does). The
/// caller forgets this once the drop has returned, and gives up the share
/// itself, which keeps the drop glue of this type off the common path.
struct ReleaseOnUnwind(NonNull<Header>);

impl ReleaseOnUnwind {
    /// # Safety
    /// The caller hands over the share for the unwinding case, and drops
    /// the value before this is dropped.
    #[inline(always)]
    unsafe fn new(header: NonNull<Header>) -> Self {
        ReleaseOnUnwind(header)
    }
}

impl Drop for ReleaseOnUnwind {
    #[cold]
    #[inline(never)]
    fn drop(&mut self) {
        // SAFETY: the share, handed over to `new`, after the value's drop.
        unsafe { release_weak(self.0) }
    }
}

/// Drops one unit of the weak count, and frees the allocation when none is
/// left.
///
/// # Safety
/// The caller owns that unit, and the value has been dropped, moved out,
/// or forgotten (it owns nothing that must be dropped:
/// `cycle::release_without_drops`) if this frees the memory.
#[inline]
pub(crate) unsafe fn release_weak(header: NonNull<Header>) {
    // SAFETY: per the contract.
    unsafe { release_weak_of(header, None) }
}

/// As [`release_weak`], for an object whose allocation the caller knows
/// ([`GcBox::known_allocation`]), or `None` to read it from the vtable.
///
/// # Safety
/// As `release_weak`; `known`, if given, is the object's allocation.
#[inline(always)]
pub(crate) unsafe fn release_weak_of(header: NonNull<Header>, known: Option<Allocation>) {
    // SAFETY: the unit the caller owns keeps the header allocated.
    let h = unsafe { header.as_ref() };
    if h.dec_weak() != 0 || h.is_buffered() {
        // Still referred to; or only by the buffer of reporters (or of a
        // collection's roots), which frees it when it lets go
        // (`collector::let_go`).
        return;
    }
    // SAFETY: per the contract.
    unsafe { free(header, known) }
}

/// Frees the allocation of the object at `header`: into the thread's kept
/// blocks ([`super::blocks`]) if it is a tracked object's and there is
/// room, otherwise back to the global allocator.
///
/// # Safety
/// No strong or weak reference to it is left, nor the reporters' buffer;
/// its value has been dropped, moved out or forgotten (as
/// [`release_weak`]); `known`, if given, is its allocation.
#[inline(always)]
pub(crate) unsafe fn free(header: NonNull<Header>, known: Option<Allocation>) {
    // No strong or weak reference is left, and the collector holds a unit
    // of its own while it uses an object, so nothing can reach the memory.
    debug_assert!(known.is_none_or(|allocation| {
        allocation.layout == Header::allocation_layout(header)
            && allocation.header_offset
                == header.addr().get() - Header::allocation(header).addr().get()
    }));
    let (start, layout) = match known {
        Some(allocation) => {
            // SAFETY: the header lies `header_offset` bytes into the
            // allocation that `known` describes.
            let start = unsafe { header.cast::<u8>().byte_sub(allocation.header_offset) };
            (start, allocation.layout)
        }
        None => (
            Header::allocation(header),
            Header::allocation_layout(header),
        ),
    };
    // SAFETY: the header is allocated (per the contract).
    if unsafe { header.as_ref() }.has(flags::TRACKED) {
        if let Some(st) = state::current_if_created() {
            // SAFETY: allocated by the global allocator with this layout
            // (`gc.rs`, `slice.rs`), and unused: per the contract.
            if unsafe { st.blocks.keep(start, layout) } {
                return;
            }
        }
    }
    // SAFETY: the allocation was made with this layout (`gc.rs`, `slice.rs`).
    unsafe { std::alloc::dealloc(start.as_ptr(), layout) };
}

//! Weak containers ([`WeakValueMap`], [`WeakKeyMap`], [`WeakSet`]) and
//! death callbacks ([`Gc::on_death`](crate::Gc::on_death),
//! [`Gc::downgrade_with`](crate::Gc::downgrade_with)), with the
//! death notifications they share.
//!
//! An object that something watches carries the `WATCHED` flag, and its
//! watchers form an intrusive, doubly linked list of [`WatchNode`]s that
//! the header itself heads: while `WATCHED` is set, the header's vtable
//! word points at the first node, which holds the vtable in its place
//! (`Header::vtable` follows it). So watching an object, unwatching it and
//! telling its watchers of its death cost O(1) per watcher, with no table
//! to look up; objects nobody watches pay one flag test when they die.
//!
//! Telling a container entry's node of its object's death only decrements
//! the container's live count and moves the node to the container's list
//! of dead entries (`table::EntrySlab`), so `len()` is exact at once and a
//! death never touches a container's hash table, which may be borrowed or
//! iterated. The container's next `&mut self` call removes each dead
//! entry from its table by the hash its node kept: O(1) per death, with no
//! scan.

mod callback;
mod key_map;
mod set;
mod table;
mod value_map;

use core::cell::Cell;
use core::ptr::{self, NonNull};
use std::panic::AssertUnwindSafe;

pub(crate) use callback::CallbackState;
pub use callback::{DeathCallback, WeakWithCallback};
pub use key_map::WeakKeyMap;
pub use set::WeakSet;
pub use value_map::WeakValueMap;

use crate::collector::panics::{keep_first, Panic};
use crate::header::{flags, Header, VTable};
use table::SlabShared;

/// One watcher of one object's death, in that object's list of watchers:
/// a container entry (in the container's `EntrySlab`) or a death callback
/// (the first field of a `CallbackState`). 32 bytes, 32-aligned.
///
/// While a node is linked, its object is allocated: every way an object
/// dies tells its watchers, which unlinks them, before its memory can go.
#[repr(C, align(32))]
pub(crate) struct WatchNode {
    /// The watched object's vtable, set when the node is linked (every
    /// node of a list holds the same one). Whichever node heads the list
    /// stands in for the vtable in the header (`Header::vtable`), so it
    /// must be the first field. A container's node that was told of its
    /// object's death holds the object's header here instead.
    vtable: Cell<*const VTable>,
    /// The next node; on a slab's free or dead list, the next node there.
    next: Cell<*const WatchNode>,
    /// The previous node; null for the head, which the header points at.
    prev: Cell<*const WatchNode>,
    /// 0 for a death callback; a container entry's state and key hash
    /// otherwise (`table::tag`).
    tag: Cell<u64>,
}

impl WatchNode {
    /// An unlinked node with `tag` (see the field).
    #[inline]
    pub(crate) fn new(tag: u64) -> WatchNode {
        WatchNode {
            vtable: Cell::new(ptr::null()),
            next: Cell::new(ptr::null()),
            prev: Cell::new(ptr::null()),
            tag: Cell::new(tag),
        }
    }

    #[inline]
    fn is_callback(&self) -> bool {
        self.tag.get() == 0
    }

    /// Puts `node` (unlinked) at the head of the watchers of `object`.
    ///
    /// # Safety
    /// `object` is allocated and alive (the caller holds a `Gc` to it);
    /// `node` stays at its address until it is unlinked.
    #[inline]
    pub(crate) unsafe fn link(node: NonNull<WatchNode>, object: NonNull<Header>) {
        // SAFETY: per the contract.
        let (n, h) = unsafe { (node.as_ref(), object.as_ref()) };
        n.vtable.set(h.vtable());
        n.prev.set(ptr::null());
        n.next.set(if h.has(flags::WATCHED) {
            let first = h.tagged_pointer().cast::<WatchNode>();
            // SAFETY: a WATCHED header points at its first, live node.
            unsafe { (*first).prev.set(node.as_ptr()) };
            first
        } else {
            ptr::null()
        });
        h.set_tagged_pointer(node.as_ptr().cast());
        h.set(flags::WATCHED);
        if h.is_provisional() {
            // Watched from a trace: see `State::watched_in_analysis`.
            if let Some(st) = crate::collector::state::current_if_created() {
                st.watched_in_analysis.set(true);
            }
        }
    }

    /// Takes `node` out of the watchers of `object`.
    ///
    /// # Safety
    /// `node` is linked into the watchers of `object`, which is allocated.
    #[inline]
    pub(crate) unsafe fn unlink(node: NonNull<WatchNode>, object: &Header) {
        // SAFETY: per the contract; the neighbours of a linked node are
        // linked nodes.
        unsafe {
            let n = node.as_ref();
            let (next, prev) = (n.next.get(), n.prev.get());
            if !next.is_null() {
                (*next).prev.set(prev);
            }
            if !prev.is_null() {
                (*prev).next.set(next);
            } else if !next.is_null() {
                object.set_tagged_pointer(next.cast());
            } else {
                object.set_tagged_pointer(n.vtable.get().cast());
                object.clear(flags::WATCHED);
            }
        }
    }
}

/// Tells the watchers of a dying object, if any: first the containers,
/// then the callbacks ([`tell_containers`], [`run_callbacks`]). Returns the
/// first panic of a callback, after running all of them.
#[inline]
pub(crate) fn notify_death(header: NonNull<Header>) -> Option<Panic> {
    tell_containers(header);
    run_callbacks(header)
}

/// Tells the containers watching a dying object (which runs no user code),
/// so that every `len()` is exact before any callback runs. A collection
/// does this for all of its garbage before it runs any callback.
#[inline]
pub(crate) fn tell_containers(header: NonNull<Header>) {
    // SAFETY: the caller keeps the object allocated.
    if unsafe { header.as_ref() }.has(flags::WATCHED) {
        release_container_nodes(header);
    }
}

#[cold]
#[inline(never)]
fn release_container_nodes(header: NonNull<Header>) {
    // SAFETY: the caller keeps the object allocated.
    let h = unsafe { header.as_ref() };
    let mut node = h.tagged_pointer().cast::<WatchNode>();
    // SAFETY: a WATCHED header points at its first node, and each node at
    // the next; all are live while linked.
    while let Some(n) = unsafe { node.as_ref() }.filter(|_| h.has(flags::WATCHED)) {
        let next = n.next.get();
        if !n.is_callback() {
            // SAFETY: a slab's node, linked to this object; `died` reuses
            // `next`, read above.
            unsafe {
                let n = NonNull::new_unchecked(node.cast_mut());
                WatchNode::unlink(n, h);
                SlabShared::died(n, header);
            }
        }
        node = next;
    }
}

/// Runs the death callbacks of a dying object, one at a time from the head
/// of its list, so that the list is whole whenever one runs (it may unlink
/// others). Returns the first panic, after running all of them.
#[inline]
pub(crate) fn run_callbacks(header: NonNull<Header>) -> Option<Panic> {
    // SAFETY: the caller keeps the object allocated.
    if unsafe { header.as_ref() }.has(flags::WATCHED) {
        run_callbacks_now(header)
    } else {
        None
    }
}

#[cold]
#[inline(never)]
fn run_callbacks_now(header: NonNull<Header>) -> Option<Panic> {
    // SAFETY: the caller keeps the object allocated.
    let h = unsafe { header.as_ref() };
    let mut first_panic = None;
    while h.has(flags::WATCHED) {
        // Nothing new is linked to an object that no longer upgrades
        // (`watch`), so these are callbacks (container nodes went first);
        // `callback_or_entry_died` handles either kind anyway.
        let head = h.tagged_pointer().cast_mut().cast::<WatchNode>();
        // SAFETY: a WATCHED header points at its first, live node.
        let node = unsafe { NonNull::new_unchecked(head) };
        // SAFETY: the head of the object's watchers; then unlinked.
        unsafe { WatchNode::unlink(node, h) };
        // SAFETY: as above.
        let told = std::panic::catch_unwind(AssertUnwindSafe(|| unsafe {
            callback_or_entry_died(node, header)
        }));
        if let Err(payload) = told {
            keep_first(&mut first_panic, payload);
        }
    }
    first_panic
}

/// Tells the owner of `node` that its object died.
///
/// # Safety
/// `node` is live and just unlinked from its object, `header`.
unsafe fn callback_or_entry_died(node: NonNull<WatchNode>, header: NonNull<Header>) {
    // SAFETY: per the contract; a node with no slab is a `CallbackState`'s.
    unsafe {
        if node.as_ref().is_callback() {
            callback::died(node);
        } else {
            SlabShared::died(node, header);
        }
    }
}

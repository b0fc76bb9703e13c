//! Weak containers ([`WeakValueMap`], [`WeakKeyMap`], [`WeakSet`]) and
//! death callbacks ([`Gc::on_death`], [`Gc::downgrade_with`]), with the
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
//! Telling a container entry's node only decrements the container's live
//! count and puts the node back on the container's free list
//! ([`EntrySlab`]), so `len()` is exact at once and a death never mutates a
//! container that is being iterated or borrowed. The dead entries' slots
//! in the container's hash table (a key and a `Weak`) are swept out by its
//! next mutating call once they outnumber the live ones, which keeps the
//! sweep amortized O(1) per death.

mod callback;
mod key_map;
mod set;
mod value_map;

use core::alloc::Layout;
use core::cell::Cell;
use core::ptr::{self, NonNull};
use std::alloc;
use std::panic::AssertUnwindSafe;

pub(crate) use callback::CallbackState;
pub use callback::{DeathCallback, WeakWithCallback};
pub use key_map::WeakKeyMap;
pub use set::WeakSet;
pub use value_map::WeakValueMap;

use crate::gc::Gc;
use crate::header::{flags, Header, VTable};
use crate::weak::Weak;

/// One watcher of one object's death, in that object's list of watchers:
/// a container entry (in the container's [`EntrySlab`]) or a death
/// callback (the first field of a `CallbackState`). 32 bytes, 32-aligned.
///
/// While a node is linked, its object is allocated: every way an object
/// dies tells its watchers, which unlinks them, before its memory can go.
#[repr(C, align(32))]
pub(crate) struct WatchNode {
    /// The watched object's vtable. Whichever node heads the list stands
    /// in for the vtable in the header (`Header::vtable`), so it must be
    /// the first field.
    vtable: Cell<*const VTable>,
    /// The next node; on a slab's free list, the next free node.
    next: Cell<*const WatchNode>,
    /// The previous node; null for the head, which the header points at.
    prev: Cell<*const WatchNode>,
    /// The container slab the node belongs to (`SlabShared`), or null for
    /// a death callback.
    owner: *const (),
}

impl WatchNode {
    /// An unlinked node of `owner` (see the field).
    #[inline]
    pub(crate) fn new(owner: *const ()) -> WatchNode {
        WatchNode {
            vtable: Cell::new(ptr::null()),
            next: Cell::new(ptr::null()),
            prev: Cell::new(ptr::null()),
            owner,
        }
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
pub(crate) fn notify_death(header: NonNull<Header>) -> Option<Box<dyn std::any::Any + Send>> {
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
        if !n.owner.is_null() {
            // SAFETY: a slab's node, linked to this object; `release`
            // reuses `next`, read above.
            unsafe {
                let n = NonNull::new_unchecked(node.cast_mut());
                WatchNode::unlink(n, h);
                SlabShared::release(n);
            }
        }
        node = next;
    }
}

/// Runs the death callbacks of a dying object, one at a time from the head
/// of its list, so that the list is whole whenever one runs (it may unlink
/// others). Returns the first panic, after running all of them.
#[inline]
pub(crate) fn run_callbacks(header: NonNull<Header>) -> Option<Box<dyn std::any::Any + Send>> {
    // SAFETY: the caller keeps the object allocated.
    if unsafe { header.as_ref() }.has(flags::WATCHED) {
        run_callbacks_now(header)
    } else {
        None
    }
}

#[cold]
#[inline(never)]
fn run_callbacks_now(header: NonNull<Header>) -> Option<Box<dyn std::any::Any + Send>> {
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
        let told =
            std::panic::catch_unwind(AssertUnwindSafe(|| unsafe { callback_or_entry_died(node) }));
        if let Err(payload) = told {
            first_panic.get_or_insert(payload);
        }
    }
    first_panic
}

/// Tells the owner of `node` that its object died.
///
/// # Safety
/// `node` is live and just unlinked from its object.
unsafe fn callback_or_entry_died(node: NonNull<WatchNode>) {
    // SAFETY: per the contract; a node with no slab is a `CallbackState`'s.
    unsafe {
        if node.as_ref().owner.is_null() {
            callback::died(node);
        } else {
            SlabShared::release(node);
        }
    }
}

/// A container entry's weak reference. Its node in the object's watchers
/// is found through the object when the entry leaves
/// ([`EntrySlab::forget`]), so the entry is no bigger than a `Weak`.
pub(crate) struct WeakSlot<T: ?Sized> {
    weak: Weak<T>,
}

impl<T: ?Sized> WeakSlot<T> {
    /// A live entry for `gc`, counted in `slab`'s live entries.
    #[inline]
    pub(crate) fn new(gc: &Gc<T>, slab: &EntrySlab) -> WeakSlot<T> {
        slab.watch(gc.header());
        WeakSlot {
            weak: Gc::downgrade(gc),
        }
    }

    /// Whether the object is alive. (Every way an object dies makes it
    /// fail to upgrade before its watchers are told.)
    #[inline]
    pub(crate) fn is_live(&self) -> bool {
        self.weak.strong_count() > 0
    }

    #[inline]
    pub(crate) fn upgrade(&self) -> Option<Gc<T>> {
        self.weak.upgrade()
    }
}

/// Nodes in the first chunk of an [`EntrySlab`]; each further chunk
/// doubles the slab's capacity.
const FIRST_CHUNK: usize = 16;

/// A container's count of live entries, and the nodes that keep it: one
/// linked into its object's watchers per live entry. A death unlinks the
/// node, decrements the count and frees the node; so does an entry leaving
/// the container while its object lives ([`EntrySlab::forget`]).
///
/// Nodes are 32-aligned (they stand in for the vtable in a header, beside
/// the flag bits), which `malloc` does slowly: so they come in chunks that
/// double the capacity each time (a few large allocations, as a growing
/// `Vec` makes), and freed ones are reused. The container must `forget`
/// every entry before its slab is dropped.
pub(crate) struct EntrySlab {
    /// From `Box::leak`; freed by `Drop`. Raw: deaths reach it while the
    /// container may be borrowed.
    shared: NonNull<SlabShared>,
}

struct SlabShared {
    live: Cell<usize>,
    /// Freed nodes, linked through their `next`.
    free: Cell<*mut WatchNode>,
    /// The next never-used node of the newest chunk, and how many are left.
    fresh: Cell<(*mut WatchNode, usize)>,
    /// Each chunk's first node and length.
    chunks: Cell<Vec<(NonNull<WatchNode>, usize)>>,
    capacity: Cell<usize>,
}

impl EntrySlab {
    pub(crate) fn new() -> EntrySlab {
        let shared = Box::new(SlabShared {
            live: Cell::new(0),
            free: Cell::new(ptr::null_mut()),
            fresh: Cell::new((ptr::null_mut(), 0)),
            chunks: Cell::new(Vec::new()),
            capacity: Cell::new(0),
        });
        EntrySlab {
            shared: NonNull::from(Box::leak(shared)),
        }
    }

    #[inline]
    fn shared(&self) -> &SlabShared {
        // SAFETY: alive until `Drop`.
        unsafe { self.shared.as_ref() }
    }

    /// The number of live entries.
    #[inline]
    pub(crate) fn live(&self) -> usize {
        self.shared().live.get()
    }

    /// Counts a new live entry for the object at `header`, and links a node
    /// into its watchers; unless the object no longer upgrades (a
    /// finalizer or a `Drop` can hold a `Gc` to an object that a
    /// collection condemned): then the entry is dead from the start, and
    /// nothing will tell it.
    #[inline]
    fn watch(&self, header: NonNull<Header>) {
        // SAFETY: the caller holds a `Gc` to the object.
        if !unsafe { header.as_ref() }.is_upgradable() {
            return;
        }
        let shared = self.shared();
        let free = shared.free.get();
        let node = if !free.is_null() {
            // SAFETY: a freed node: its `next` links the free list.
            shared.free.set(unsafe { (*free).next.get() }.cast_mut());
            free
        } else {
            self.fresh_node()
        };
        // SAFETY: `node` is an unused node of one of our chunks.
        unsafe { node.write(WatchNode::new(self.shared.as_ptr().cast_const().cast())) };
        shared.live.set(shared.live.get() + 1);
        // SAFETY: the caller holds a `Gc` to the object; the node stays in
        // its chunk until it is freed, after it is unlinked. Within a
        // chunk, the pointer is not null.
        unsafe { WatchNode::link(NonNull::new_unchecked(node), header) };
    }

    fn fresh_node(&self) -> *mut WatchNode {
        let shared = self.shared();
        let (mut fresh, mut left) = shared.fresh.get();
        if left == 0 {
            let len = shared.capacity.get().max(FIRST_CHUNK);
            let layout = Layout::array::<WatchNode>(len).expect("gcptr: too many weak entries");
            // SAFETY: not zero-sized (`len` > 0, nodes are 32 bytes).
            let Some(chunk) = NonNull::new(unsafe { alloc::alloc(layout) }.cast::<WatchNode>())
            else {
                alloc::handle_alloc_error(layout)
            };
            let mut chunks = shared.chunks.take();
            chunks.push((chunk, len));
            shared.chunks.set(chunks);
            shared.capacity.set(shared.capacity.get() + len);
            (fresh, left) = (chunk.as_ptr(), len);
        }
        // SAFETY: `left` nodes remain in the chunk from `fresh` on.
        shared.fresh.set((unsafe { fresh.add(1) }, left - 1));
        fresh
    }

    /// The entry `slot` leaves the container (removed, replaced, swept, or
    /// the container dropped): if its object has not died yet, unlink one
    /// node of this slab from its watchers and stop counting it.
    #[inline]
    pub(crate) fn forget<T: ?Sized>(&self, slot: &WeakSlot<T>) {
        let Some(header) = slot.weak.header() else {
            return;
        };
        if !header.has(flags::WATCHED) {
            return;
        }
        let mut node = header.tagged_pointer().cast::<WatchNode>();
        let owner = self.shared.as_ptr().cast_const().cast::<()>();
        // SAFETY: a WATCHED header points at its first node; the list's
        // nodes are live while linked.
        while let Some(n) = unsafe { node.as_ref() } {
            if ptr::eq(n.owner, owner) {
                // SAFETY: not null; the raw pointer keeps the chunk's
                // provenance, which the free list needs.
                let n = unsafe { NonNull::new_unchecked(node.cast_mut()) };
                // SAFETY: `n` is in the object's watchers; then unlinked.
                unsafe {
                    WatchNode::unlink(n, header);
                    SlabShared::release(n);
                }
                return;
            }
            node = n.next.get();
        }
    }
}

impl SlabShared {
    /// Uncounts and frees a node of a slab, unlinked now: its object died,
    /// or its entry left the container.
    ///
    /// # Safety
    /// `node` came from `EntrySlab::watch`, is unlinked, and is not used
    /// again.
    #[inline]
    unsafe fn release(node: NonNull<WatchNode>) {
        // SAFETY: per the contract; the slab outlives its linked nodes
        // (the container forgets every entry before dropping it).
        unsafe {
            let shared = &*node.as_ref().owner.cast::<SlabShared>();
            shared.live.set(shared.live.get() - 1);
            node.as_ref().next.set(shared.free.get());
            shared.free.set(node.as_ptr());
        }
    }
}

impl Drop for EntrySlab {
    fn drop(&mut self) {
        if self.live() != 0 {
            // A container failed to forget an entry (a bug): some node may
            // still be linked to an object that will tell it of its death.
            // Leak the slab rather than free memory an object points into.
            if cfg!(debug_assertions) && !std::thread::panicking() {
                panic!("gcptr bug: a weak container dropped its slab with live entries");
            }
            return;
        }
        // SAFETY: from `Box::leak` in `new`; no entry is live, so no node is
        // linked (a linked node is a live entry).
        let shared = unsafe { Box::from_raw(self.shared.as_ptr()) };
        for (chunk, len) in shared.chunks.take() {
            let layout = Layout::array::<WatchNode>(len).expect("allocated with this layout");
            // SAFETY: allocated in `fresh_node` with this layout; nodes have
            // no drop glue.
            unsafe { alloc::dealloc(chunk.as_ptr().cast(), layout) };
        }
    }
}

/// Whether a container holding `entries` entries, of which `live` are
/// alive, should sweep out its dead ones now.
#[inline]
pub(crate) fn should_sweep(entries: usize, live: usize) -> bool {
    entries.saturating_sub(live) > live.max(8)
}

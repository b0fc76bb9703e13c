//! What the weak containers share: a hash table of entries that each hold
//! a [`WeakSlot`], and the [`EntrySlab`] of the watcher nodes that keep
//! those entries' count of live ones exact ([`WeakTable`]).

use core::alloc::Layout;
use core::cell::Cell;
use core::mem::size_of;
use core::ptr::{self, NonNull};
use std::alloc;

use hashbrown::HashTable;

use super::WatchNode;
use crate::gc::Gc;
use crate::header::Header;
use crate::weak::Weak;

/// The `tag` of a container entry's node: these bits, and the low 32 bits
/// of the entry's key hash (`WatchNode::tag`; a callback's tag is 0).
pub(crate) mod tag {
    /// A container entry's node.
    pub const ENTRY: u64 = 1 << 32;
    /// On its slab's dead list: its object died.
    pub const DEAD: u64 = 1 << 33;
    /// Its entry left the container while the node was on the dead list.
    pub const ORPHAN: u64 = 1 << 34;
}

/// A container entry's weak reference, and its node in the object's
/// watchers (until the object dies; then on the slab's dead list).
pub(crate) struct WeakSlot<T: ?Sized> {
    weak: Weak<T>,
    node: NonNull<WatchNode>,
}

impl<T: ?Sized> WeakSlot<T> {
    /// An entry for `gc` whose key hash is `key_hash`, watched by `slab`: a
    /// live entry, unless the object no longer upgrades (see
    /// [`EntrySlab::watch`]). The container must let `slab` `forget` it.
    #[inline]
    pub(crate) fn new(gc: &Gc<T>, slab: &EntrySlab, key_hash: u32) -> WeakSlot<T> {
        WeakSlot {
            // SAFETY: `gc` is a live handle to the object.
            node: unsafe { slab.watch(gc.header(), key_hash) },
            weak: Gc::downgrade(gc),
        }
    }

    /// Whether the object is alive: whether the slot's `Weak` upgrades.
    /// (Its watchers are told once it dies or a collection clears its weak
    /// references. `WEAK_CLEARED` is never taken back; `DEAD` is, but only
    /// where a collection set it provisionally. If a finalizer resurrects the
    /// object, the `Weak`s of its next epoch, made after the telling,
    /// upgrade, but not the slot's of an entry made before it, told or put
    /// straight on the dead list.)
    #[inline]
    pub(crate) fn is_live(&self) -> bool {
        self.header().is_upgradable_from(self.weak.epoch())
    }

    /// As `Weak::upgrade`, less the test for `Weak::new`'s dangling
    /// pointer, which a slot never holds: `get` is mostly this.
    #[inline]
    pub(crate) fn upgrade(&self) -> Option<Gc<T>> {
        let header = self.header();
        if !header.is_upgradable_from(self.weak.epoch()) {
            return None;
        }
        header.inc_strong();
        // SAFETY: the strong count now includes the new `Gc`.
        Some(unsafe { Gc::from_inner(self.weak.inner()) })
    }

    /// A new `Weak` to the object if the entry is live: it upgrades
    /// exactly while the entry counts (the slot's own, cloned, so of the
    /// same epoch), and holds only the memory, as any `Weak` does.
    #[inline]
    pub(crate) fn downgrade(&self) -> Option<Weak<T>> {
        self.is_live().then(|| self.weak.clone())
    }

    /// Whether this is an entry for the object whose header is at
    /// `object`.
    #[inline]
    pub(crate) fn is(&self, object: *const Header) -> bool {
        ptr::eq(self.address(), object)
    }

    /// The object's header, as an address (reads nothing).
    #[inline]
    pub(crate) fn address(&self) -> *const Header {
        self.header()
    }

    #[inline]
    fn header(&self) -> &Header {
        // SAFETY: the slot's `Weak` came from a `Gc` (`new`), so it is not
        // `Weak::new`'s dangling one, and its unit of the weak count keeps
        // the header allocated.
        unsafe { self.weak.inner().cast::<Header>().as_ref() }
    }
}

/// An entry of a [`WeakTable`]: how to hash it without user code (so that
/// growing the table and removing dead entries run none), and its slot.
pub(crate) trait TableEntry {
    type Object: ?Sized;

    /// The entry's hash in the table.
    fn hash(&self) -> u64;

    /// The hash in the table of an entry for `object` whose node kept
    /// `key_hash` (the `key_hash` given to [`WeakSlot::new`]).
    fn hash_of(key_hash: u32, object: *const Header) -> u64;

    fn slot(&self) -> &WeakSlot<Self::Object>;
}

/// The hash table of a weak container, and its [`EntrySlab`].
///
/// Each entry owns one node of the slab: linked into its object's watchers
/// while the object is alive, then on the slab's dead list, until the
/// entry leaves the table ([`remove_dead`](WeakTable::remove_dead) takes
/// out the entries of the nodes on the dead list). The table is changed
/// only through `&mut self`; deaths change only the slab.
pub(crate) struct WeakTable<E: TableEntry> {
    pub(crate) entries: HashTable<E>,
    /// After `entries`: they go first.
    pub(crate) slab: EntrySlab,
}

impl<E: TableEntry> WeakTable<E> {
    pub(crate) fn new() -> Self {
        WeakTable {
            entries: HashTable::new(),
            slab: EntrySlab::new(),
        }
    }

    /// The number of entries whose object is alive.
    #[inline]
    pub(crate) fn live(&self) -> usize {
        self.slab.live()
    }

    /// The entry that hashes to `hash` and satisfies `eq`, dead or alive.
    #[inline]
    pub(crate) fn find(&self, hash: u64, eq: impl FnMut(&E) -> bool) -> Option<&E> {
        self.entries.find(hash, eq)
    }

    /// The entries whose objects are alive, each tested as the iteration
    /// reaches it (an object that dies meanwhile is skipped), as `len()`
    /// counts them. Runs no user code and makes no strong reference.
    #[inline]
    pub(crate) fn live_entries(&self) -> impl Iterator<Item = &E> + '_ {
        self.entries.iter().filter(|e| e.slot().is_live())
    }

    /// Takes out the entries whose objects died since the last call, and
    /// drops them (which runs the keys' and values' `Drop`). Each is found
    /// by the hash its node kept, and by its node: O(1) per death.
    #[inline]
    pub(crate) fn remove_dead(&mut self) {
        if self.slab.has_dead() {
            self.remove_dead_now();
        }
    }

    #[cold]
    fn remove_dead_now(&mut self) {
        // One at a time: dropping an entry may kill other objects, whose
        // nodes join the dead list meanwhile.
        while let Some((node, node_tag, object)) = self.slab.take_dead() {
            let removed = if node_tag & tag::ORPHAN != 0 {
                None
            } else {
                let hash = E::hash_of(node_tag as u32, object);
                let found = self.entries.find_entry(hash, |e| e.slot().node == node);
                let Ok(found) = found else {
                    // Left as it is (not freed: an entry may point at it).
                    unreachable!("gcptr bug: a dead node's entry left the table");
                };
                Some(found.remove().0)
            };
            // SAFETY: taken off the dead list, and its entry (if any) is
            // out of the table: nothing refers to it.
            unsafe { self.slab.free(node) };
            drop(removed);
        }
    }

    /// Removes the entry that hashes to `hash` and satisfies `eq`, and
    /// returns it, for the caller to drop once the table is consistent.
    pub(crate) fn remove(&mut self, hash: u64, eq: impl FnMut(&E) -> bool) -> Option<E> {
        self.remove_dead();
        let (entry, _) = self.entries.find_entry(hash, eq).ok()?.remove();
        // SAFETY: an entry of this table, leaving it now.
        unsafe { self.slab.forget(entry.slot()) };
        Some(entry)
    }

    /// Keeps the live entries for which `keep` returns `true`, and no dead
    /// one: also none whose object died while `retain` ran.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&mut E) -> bool) {
        self.remove_dead();
        let slab = &self.slab;
        self.entries.retain(|entry| {
            let kept = entry.slot().is_live() && keep(entry);
            if !kept {
                // SAFETY: an entry of this table, which `retain` drops.
                unsafe { slab.forget(entry.slot()) };
            }
            kept
        });
        // `keep`, and the drops of the entries let go, run user code, which
        // may have killed the objects of entries already kept.
        self.remove_dead();
    }

    /// Removes every entry.
    pub(crate) fn clear(&mut self) {
        // SAFETY: then cleared.
        unsafe { self.forget_all() };
        self.entries.clear();
        self.slab.discard_dead();
    }

    /// # Safety
    /// Every entry leaves the table next (`clear`, or the table dropped).
    unsafe fn forget_all(&self) {
        for entry in &self.entries {
            // SAFETY: an entry of this table, about to leave it.
            unsafe { self.slab.forget(entry.slot()) };
        }
    }
}

impl<E: TableEntry> Drop for WeakTable<E> {
    fn drop(&mut self) {
        // SAFETY: the entries are dropped next, with the table.
        unsafe { self.forget_all() };
    }
}

/// Nodes come in blocks of this many slots, aligned to their size, whose
/// first slot holds the slab they belong to: a node finds its slab by
/// rounding its address down, so it need not keep a pointer to it.
const BLOCK_SLOTS: usize = 16;
const BLOCK_BYTES: usize = BLOCK_SLOTS * size_of::<WatchNode>();

/// A container's count of live entries, and the nodes that keep it: one
/// per entry, linked into its object's watchers while the object lives. A
/// death unlinks the node, decrements the count and puts the node on the
/// dead list, for the container to remove the entry; an entry leaving the
/// container while its object lives ([`EntrySlab::forget`]) unlinks its
/// node and frees it.
///
/// Chunks of blocks double the capacity each time (a few large
/// allocations, as a growing `Vec` makes), and freed nodes are reused. The
/// container must `forget` every entry before its slab is dropped.
pub(crate) struct EntrySlab {
    /// From `Box::leak`; freed by `Drop`. Raw: deaths reach it while the
    /// container may be borrowed.
    shared: NonNull<SlabShared>,
}

pub(super) struct SlabShared {
    live: Cell<usize>,
    /// Freed nodes, linked through their `next`.
    free: Cell<*mut WatchNode>,
    /// Nodes whose objects died, linked through their `next`; each keeps
    /// its object's header in its `vtable` field.
    dead: Cell<*mut WatchNode>,
    /// The next never-used slot of the newest chunk, and how many are left.
    fresh: Cell<(*mut WatchNode, usize)>,
    /// Each chunk's first slot and length in slots.
    chunks: Cell<Vec<(NonNull<WatchNode>, usize)>>,
    capacity: Cell<usize>,
}

impl EntrySlab {
    pub(crate) fn new() -> EntrySlab {
        let shared = Box::new(SlabShared {
            live: Cell::new(0),
            free: Cell::new(ptr::null_mut()),
            dead: Cell::new(ptr::null_mut()),
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

    /// Gives a new entry for the object at `header` a node that keeps
    /// `key_hash`: linked into the object's watchers and counted live; or,
    /// if the object no longer upgrades (a finalizer or a `Drop` can hold
    /// a `Gc` to an object that a collection condemned), put straight on
    /// the dead list, since nothing will ever tell it.
    ///
    /// # Safety
    /// The caller holds a `Gc` to the object.
    #[inline]
    unsafe fn watch(&self, header: NonNull<Header>, key_hash: u32) -> NonNull<WatchNode> {
        let node = self.alloc_node();
        // SAFETY: an unused node of one of our chunks.
        unsafe { node.write(WatchNode::new(tag::ENTRY | u64::from(key_hash))) };
        // SAFETY: the caller holds a `Gc` to the object.
        if unsafe { header.as_ref() }.is_upgradable() {
            let shared = self.shared();
            shared.live.set(shared.live.get() + 1);
            // SAFETY: the caller holds a `Gc` to the object; the node stays
            // in its chunk until it is freed, after it is unlinked.
            unsafe { WatchNode::link(node, header) };
        } else {
            // SAFETY: as above; the node is unlinked, and counted nowhere.
            unsafe { self.shared().push_dead(node, header) };
        }
        node
    }

    #[inline]
    fn alloc_node(&self) -> NonNull<WatchNode> {
        let shared = self.shared();
        match NonNull::new(shared.free.get()) {
            Some(free) => {
                // SAFETY: a freed node: its `next` links the free list.
                let next = unsafe { free.as_ref() }.next.get();
                shared.free.set(next.cast_mut());
                free
            }
            None => self.fresh_node(),
        }
    }

    fn fresh_node(&self) -> NonNull<WatchNode> {
        let shared = self.shared();
        loop {
            let (mut fresh, mut left) = shared.fresh.get();
            if left == 0 {
                (fresh, left) = self.new_chunk();
            }
            // SAFETY: `left` slots remain in the chunk from `fresh` on.
            shared.fresh.set((unsafe { fresh.add(1) }, left - 1));
            if fresh.addr() % BLOCK_BYTES != 0 {
                // SAFETY: within a chunk, so not null.
                return unsafe { NonNull::new_unchecked(fresh) };
            }
            // The first slot of a block: it names the slab.
            // SAFETY: an unused, aligned slot of our chunk, big enough.
            unsafe {
                fresh
                    .cast::<*const SlabShared>()
                    .write(self.shared.as_ptr())
            };
        }
    }

    #[cold]
    fn new_chunk(&self) -> (*mut WatchNode, usize) {
        let shared = self.shared();
        let len = shared.capacity.get().max(BLOCK_SLOTS);
        let layout = chunk_layout(len);
        // SAFETY: not zero-sized (`len` > 0, nodes are 32 bytes).
        let Some(chunk) = NonNull::new(unsafe { alloc::alloc(layout) }.cast::<WatchNode>()) else {
            alloc::handle_alloc_error(layout)
        };
        let mut chunks = shared.chunks.take();
        chunks.push((chunk, len));
        shared.chunks.set(chunks);
        shared.capacity.set(shared.capacity.get() + len);
        (chunk.as_ptr(), len)
    }

    /// The entry `slot` leaves the container (removed, replaced, dropped
    /// by `retain`, `clear`, or with the container): if its object has not
    /// died, unlink its node from the object's watchers, stop counting it
    /// and free it; if it has, mark the node on the dead list an orphan,
    /// for `remove_dead` to free.
    ///
    /// # Safety
    /// `slot` was made with this slab, and is forgotten once: its node is
    /// never used again.
    #[inline]
    pub(crate) unsafe fn forget<T: ?Sized>(&self, slot: &WeakSlot<T>) {
        // SAFETY: the entry's own node, which is freed only after the
        // entry leaves: live.
        let n = unsafe { slot.node.as_ref() };
        let node_tag = n.tag.get();
        if node_tag & tag::DEAD != 0 {
            n.tag.set(node_tag | tag::ORPHAN);
            return;
        }
        // SAFETY: not on the dead list, so linked into the watchers of the
        // slot's object (allocated: the slot holds a `Weak`) and counted.
        unsafe {
            WatchNode::unlink(slot.node, slot.header());
            let shared = self.shared();
            shared.live.set(shared.live.get() - 1);
            self.free(slot.node);
        }
    }

    /// Whether some entry's object died since the last `take_dead`.
    #[inline]
    fn has_dead(&self) -> bool {
        !self.shared().dead.get().is_null()
    }

    /// A node off the dead list, with its tag and object; the caller frees
    /// it once its entry is gone.
    fn take_dead(&self) -> Option<(NonNull<WatchNode>, u64, *const Header)> {
        let shared = self.shared();
        let node = NonNull::new(shared.dead.get())?;
        // SAFETY: a node on the dead list (see `push_dead`).
        let n = unsafe { node.as_ref() };
        shared.dead.set(n.next.get().cast_mut());
        Some((node, n.tag.get(), n.vtable.get().cast()))
    }

    /// Frees every node on the dead list, once the table is empty.
    fn discard_dead(&self) {
        while let Some((node, _, _)) = self.take_dead() {
            // SAFETY: off the dead list, and no entry is left.
            unsafe { self.free(node) };
        }
    }

    /// # Safety
    /// `node` is a node of this slab, on no list, that no entry will use
    /// again.
    #[inline]
    unsafe fn free(&self, node: NonNull<WatchNode>) {
        let shared = self.shared();
        // SAFETY: per the contract.
        unsafe { node.as_ref() }.next.set(shared.free.get());
        shared.free.set(node.as_ptr());
    }
}

impl SlabShared {
    /// Uncounts a slab's node whose object, `header`, died, and puts it on
    /// the dead list.
    ///
    /// # Safety
    /// `node` came from `EntrySlab::watch`, was linked, and was unlinked
    /// just now.
    #[inline]
    pub(super) unsafe fn died(node: NonNull<WatchNode>, header: NonNull<Header>) {
        // SAFETY: per the contract. The node's block names its slab, which
        // is alive: a linked node is counted live, and a slab with live
        // entries is never freed (`EntrySlab::drop`).
        unsafe {
            let block = node
                .as_ptr()
                .map_addr(|addr| addr & !(BLOCK_BYTES - 1))
                .cast::<*const SlabShared>();
            let shared = &**block;
            shared.live.set(shared.live.get() - 1);
            shared.push_dead(node, header);
        }
    }

    /// # Safety
    /// `node` is a node of this slab, unlinked, uncounted and unlisted.
    #[inline]
    unsafe fn push_dead(&self, node: NonNull<WatchNode>, header: NonNull<Header>) {
        // SAFETY: per the contract.
        let n = unsafe { node.as_ref() };
        n.vtable.set(header.as_ptr().cast_const().cast());
        n.tag.set(n.tag.get() | tag::DEAD);
        n.next.set(self.dead.get());
        self.dead.set(node.as_ptr());
    }
}

/// A chunk of `len` slots (a whole number of blocks), aligned to a block.
fn chunk_layout(len: usize) -> Layout {
    Layout::array::<WatchNode>(len)
        .and_then(|layout| layout.align_to(BLOCK_BYTES))
        .expect("gcptr: too many weak entries")
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
            // SAFETY: allocated in `new_chunk` with this layout; nodes have
            // no drop glue.
            unsafe { alloc::dealloc(chunk.as_ptr().cast(), chunk_layout(len)) };
        }
    }
}

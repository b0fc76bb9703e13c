//! What the weak containers share: a hash table of entries that each hold
//! a [`WeakSlot`], and the [`EntrySlab`] of the watcher nodes that keep
//! those entries' count of live ones exact ([`WeakTable`]).

use core::alloc::Layout;
use core::cell::Cell;
use core::ptr::{self, NonNull};
use std::alloc;

use hashbrown::HashTable;

use super::WatchNode;
use crate::gc::Gc;
use crate::header::{flags, Header};
use crate::weak::Weak;

/// A container entry's weak reference. Its node in the object's watchers
/// is found through the object when the entry leaves
/// ([`EntrySlab::forget`]), so the entry is no bigger than a `Weak`.
pub(crate) struct WeakSlot<T: ?Sized> {
    weak: Weak<T>,
}

impl<T: ?Sized> WeakSlot<T> {
    /// An entry for `gc` whose key hashes to `hash`, watched by `slab`: a
    /// live entry, unless the object no longer upgrades (see
    /// [`EntrySlab::watch`]).
    #[inline]
    pub(crate) fn new(gc: &Gc<T>, slab: &EntrySlab, hash: u64) -> WeakSlot<T> {
        slab.watch(gc.header(), hash);
        WeakSlot {
            weak: Gc::downgrade(gc),
        }
    }

    /// Whether the object is alive. (Every way an object dies makes it
    /// fail to upgrade before its watchers are told, and an object that
    /// failed once never upgrades again.)
    #[inline]
    pub(crate) fn is_live(&self) -> bool {
        self.header().is_upgradable()
    }

    /// As `Weak::upgrade`, less the test for `Weak::new`'s dangling
    /// pointer, which a slot never holds: `get` is mostly this.
    #[inline]
    pub(crate) fn upgrade(&self) -> Option<Gc<T>> {
        let header = self.header();
        if !header.is_upgradable() {
            return None;
        }
        header.inc_strong();
        // SAFETY: the strong count now includes the new `Gc`.
        Some(unsafe { Gc::from_inner(self.weak.inner()) })
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

/// An entry of a [`WeakTable`]: its key's hash (kept or computed without
/// user code, so that growing the table and removing dead entries run
/// none) and its weak slot.
pub(crate) trait TableEntry {
    type Object: ?Sized;

    fn hash(&self) -> u64;

    fn slot(&self) -> &WeakSlot<Self::Object>;
}

/// The hash table of a weak container, and its [`EntrySlab`].
///
/// Every entry has one node in the slab: linked into its object's watchers
/// while the object is alive, then on the slab's dead list until
/// [`remove_dead`](WeakTable::remove_dead) takes the entry out. The table
/// is changed only through `&mut self`; deaths change only the slab.
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

    /// Takes out the entries whose objects died since the last call, and
    /// drops them (which runs the keys' and values' `Drop`). Each is found
    /// by the hash and address its node kept: O(1) per death.
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
        while let Some((hash, object)) = self.slab.take_dead() {
            // An entry that left the table another way may have left its
            // node on the dead list; a live entry for a new object at the
            // same address is not it (`is_live`). Two dead entries with the
            // same hash and object are interchangeable.
            let found = self
                .entries
                .find_entry(hash, |e| e.slot().is(object) && !e.slot().is_live());
            if let Ok(found) = found {
                let (entry, _) = found.remove();
                drop(entry);
            }
        }
    }

    /// Removes the entry that hashes to `hash` and satisfies `eq`, and
    /// returns it, for the caller to drop once the table is consistent.
    pub(crate) fn remove(&mut self, hash: u64, eq: impl FnMut(&E) -> bool) -> Option<E> {
        self.remove_dead();
        let (entry, _) = self.entries.find_entry(hash, eq).ok()?.remove();
        self.slab.forget(entry.slot(), entry.hash());
        Some(entry)
    }

    /// Keeps the live entries for which `keep` returns `true`.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&mut E) -> bool) {
        self.remove_dead();
        let slab = &self.slab;
        self.entries.retain(|entry| {
            let kept = entry.slot().is_live() && keep(entry);
            if !kept {
                slab.forget(entry.slot(), entry.hash());
            }
            kept
        });
    }

    /// Removes every entry.
    pub(crate) fn clear(&mut self) {
        self.forget_all();
        self.entries.clear();
        self.slab.discard_dead();
    }

    fn forget_all(&self) {
        for entry in &self.entries {
            self.slab.forget(entry.slot(), entry.hash());
        }
    }
}

impl<E: TableEntry> Drop for WeakTable<E> {
    fn drop(&mut self) {
        self.forget_all();
    }
}

/// Nodes in the first chunk of an [`EntrySlab`]; each further chunk
/// doubles the slab's capacity.
const FIRST_CHUNK: usize = 16;

/// A container's count of live entries, and the nodes that keep it: one
/// per entry, linked into its object's watchers while the object lives. A
/// death unlinks the node, decrements the count and puts the node on the
/// dead list, for the container to remove the entry; an entry leaving the
/// container while its object lives ([`EntrySlab::forget`]) unlinks its
/// node and frees it.
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

pub(super) struct SlabShared {
    live: Cell<usize>,
    /// Freed nodes, linked through their `next`.
    free: Cell<*mut WatchNode>,
    /// Nodes whose objects died, linked through their `next`; each keeps
    /// its object's header in its `vtable` field, and its entry's hash.
    dead: Cell<*mut WatchNode>,
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

    #[inline]
    fn owner(&self) -> *const () {
        self.shared.as_ptr().cast_const().cast()
    }

    /// The number of live entries.
    #[inline]
    pub(crate) fn live(&self) -> usize {
        self.shared().live.get()
    }

    /// Gives a new entry for the object at `header`, whose key hashes to
    /// `hash`, a node: linked into the object's watchers and counted live;
    /// or, if the object no longer upgrades (a finalizer or a `Drop` can
    /// hold a `Gc` to an object that a collection condemned), put straight
    /// on the dead list, since nothing will ever tell it.
    #[inline]
    fn watch(&self, header: NonNull<Header>, hash: u64) {
        let node = self.alloc_node();
        // SAFETY: `node` is an unused node of one of our chunks.
        unsafe { node.write(WatchNode::new(self.owner(), hash)) };
        // SAFETY: the caller holds a `Gc` to the object.
        if unsafe { header.as_ref() }.is_upgradable() {
            let shared = self.shared();
            shared.live.set(shared.live.get() + 1);
            // SAFETY: the caller holds a `Gc` to the object; the node stays
            // in its chunk until it is freed, after it is unlinked. Within
            // a chunk, the pointer is not null.
            unsafe { WatchNode::link(NonNull::new_unchecked(node), header) };
        } else {
            // SAFETY: as above; the node is unlinked, and counted nowhere.
            unsafe {
                self.shared()
                    .push_dead(NonNull::new_unchecked(node), header)
            };
        }
    }

    #[inline]
    fn alloc_node(&self) -> *mut WatchNode {
        let shared = self.shared();
        let free = shared.free.get();
        if free.is_null() {
            return self.fresh_node();
        }
        // SAFETY: a freed node: its `next` links the free list.
        shared.free.set(unsafe { (*free).next.get() }.cast_mut());
        free
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

    /// The entry `slot`, whose key hashes to `hash`, leaves the container
    /// (removed, replaced, or the container dropped): if its object has not
    /// died yet, unlink the entry's node from its watchers, stop counting
    /// it and free it. (A dead entry's node is on the dead list, where
    /// `remove_dead` finds that its entry is gone.)
    #[inline]
    pub(crate) fn forget<T: ?Sized>(&self, slot: &WeakSlot<T>, hash: u64) {
        let header = slot.header();
        if !header.has(flags::WATCHED) {
            return;
        }
        let owner = self.owner();
        let mut prev: *const WatchNode = ptr::null();
        let mut node = header.tagged_pointer().cast::<WatchNode>();
        // SAFETY: a WATCHED header points at its first node; the list's
        // nodes are live while linked.
        while let Some(n) = unsafe { node.as_ref() } {
            // Entries of one container for one object differ by hash (or
            // are interchangeable).
            if ptr::eq(n.owner, owner) && n.hash.get() == hash {
                // SAFETY: not null; the raw pointer keeps the chunk's
                // provenance, which the free list needs.
                let n = unsafe { NonNull::new_unchecked(node.cast_mut()) };
                // SAFETY: `n` is in the object's watchers, after `prev`;
                // then unlinked, and counted live (linked).
                unsafe {
                    WatchNode::unlink_after(prev, n, header);
                    let shared = self.shared();
                    shared.live.set(shared.live.get() - 1);
                    shared.push_free(n);
                }
                return;
            }
            prev = node;
            node = n.next.get();
        }
    }

    /// Whether some entry's object died since the last `take_dead`.
    #[inline]
    fn has_dead(&self) -> bool {
        !self.shared().dead.get().is_null()
    }

    /// The hash and object of a node on the dead list, which is freed.
    fn take_dead(&self) -> Option<(u64, *const Header)> {
        let shared = self.shared();
        let node = NonNull::new(shared.dead.get())?;
        // SAFETY: a node on the dead list (see `push_dead`), then freed.
        unsafe {
            let n = node.as_ref();
            shared.dead.set(n.next.get().cast_mut());
            let found = (n.hash.get(), n.vtable.get().cast::<Header>());
            shared.push_free(node);
            Some(found)
        }
    }

    /// Frees every node on the dead list, once the table is empty.
    fn discard_dead(&self) {
        while self.take_dead().is_some() {}
    }
}

impl SlabShared {
    /// Uncounts a slab's node whose object, `header`, died, and puts it on
    /// the dead list.
    ///
    /// # Safety
    /// `node` came from `EntrySlab::watch`, and was unlinked just now.
    #[inline]
    pub(super) unsafe fn died(node: NonNull<WatchNode>, header: NonNull<Header>) {
        // SAFETY: per the contract; the slab outlives its linked nodes
        // (the container forgets every entry before dropping it).
        unsafe {
            let shared = &*node.as_ref().owner.cast::<SlabShared>();
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
        n.next.set(self.dead.get());
        self.dead.set(node.as_ptr());
    }

    /// # Safety
    /// As `push_dead`.
    #[inline]
    unsafe fn push_free(&self, node: NonNull<WatchNode>) {
        // SAFETY: per the contract.
        unsafe { node.as_ref() }.next.set(self.free.get());
        self.free.set(node.as_ptr());
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

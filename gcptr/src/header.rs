//! The memory layout of a `Gc` allocation. All bit work lives here.
//!
//! ```text
//!  untracked object (a type that can never own a Gc): 16-byte header, as Rc
//!  ┌──────────┬──────────┬──────────────────────┬───────────┐
//!  │ strong   │ weak     │ vtable | flags       │ value: T  │
//!  │ u32      │ u32      │ usize                │           │
//!  └──────────┴──────────┴──────────────────────┴───────────┘
//!  ^ the Gc pointer points here (at the Header)
//!
//!  tracked object: 16 bytes of list links in front, 32 bytes in all
//!  ┌──────────┬──────────┬──────────┬──────────┬─────────────┬───────────┐
//!  │ next     │ prev     │ strong   │ weak     │vtable|flags │ value: T  │
//!  │ ptr      │ ptr      │ u32      │ u32      │ usize       │           │
//!  └──────────┴──────────┴──────────┴──────────┴─────────────┴───────────┘
//!                        ^ the Gc pointer points here
//! ```
//!
//! * `strong` counts `Gc`s; `weak` counts `Weak`s plus one held by all the
//!   strong references together, as in `std::rc`, plus one held by the
//!   collector while it condemns the object. Both abort the process on
//!   overflow, so every strong count below 2^32 works, and every weak count
//!   below 2^26 (up to 2^26 - 3 `Weak`s to one object, with both of those
//!   units): the weak word's top bits are [`QUIET`], which says that the
//!   object need not report a lost reference (see [`Header::dec_strong`]),
//!   [`OLD`], which says that it is counted in generation 2's
//!   `State::old_count`, [`BUFFERED`], which says that the collector's
//!   buffer of reporters holds its address, [`PROVISIONAL`], which says
//!   that its `DEAD` flag is a full collection's verdict in advance, and
//!   [`DROP_ONLY_RELEASES_GCS`], which says that its drop does nothing but
//!   drop `Gc`s, and [`EPOCH`], which says which `Weak`s may upgrade after
//!   a finalizer resurrected the object.
//! * `vtable` is a `&'static VTable` for the concrete type the object was
//!   allocated as: it survives coercion to `Gc<dyn Trait>` and lets the
//!   collector, which sees only headers, trace, finalize, drop and free.
//!   The vtable is 32-aligned, which leaves the low five bits for [`flags`].
//!   While the object is `WATCHED`, the word points at the first node of
//!   its watchers instead, which holds the vtable (`weak_maps`).
//! * The links put a tracked object in one of the collector's intrusive,
//!   circular, doubly linked lists (a generation, or the permanent one for
//!   frozen objects). An object in no list has `next` pointing at itself,
//!   so unlinking it is a no-op, and `prev` at itself too, unless it is
//!   acyclic ([`Links::is_acyclic`]): then `prev` is null. While a
//!   collection analyses a set of objects, the links of those objects are
//!   scratch space instead ([`Links::begin_analysis`]).
//!
//! The allocation starts `VTable::header_offset` bytes before the header
//! (16 for a tracked object whose alignment is at most 16), as
//! [`Allocation::of`] decides (`SliceVTables` for slices, which keep their
//! length in front). For a `Sized` value the compiler knows the same
//! figures, and the drop of the last `Gc` frees with those constants
//! ([`GcBox::known_allocation`]) instead of reading the vtable.
//!
//! Invariant: a `GcBox<T>` with a thin pointer (`T: Sized`) is always an
//! allocation made for `T` itself by `Gc::allocate`, with `VTables::<T>`.
//! Nothing may make a thin `Gc` into another allocation (such as a
//! `Gc<[T; N]>` from a `Gc<[T]>`): the drop would free it with the wrong
//! layout.

use core::alloc::Layout;
use core::cell::Cell;
use core::mem::{align_of, size_of};
use core::ptr::{self, NonNull};

use crate::trace::{Trace, Tracer};

/// The header's flag bits, in the low bits of the vtable pointer.
pub(crate) mod flags {
    /// The object has [`Links`](super::Links) in front of its header.
    pub const TRACKED: usize = 1;
    /// The value has been dropped, or the collector has condemned it and is
    /// about to drop it. Deref panics from here on (for a type with drop
    /// glue: a drop leaves the bytes of any other as they were). While an
    /// analysis runs, the mark may be provisional
    /// ([`Header::is_dead`](super::Header::is_dead)).
    pub const DEAD: usize = 2;
    /// The finalizer has run, or the type has none.
    pub const FINALIZED: usize = 4;
    /// A collection found the object to be garbage, with user code to run
    /// before its drop (a finalizer, a watcher): no weak reference upgrades
    /// (as CPython clears weak references before it runs finalizers). Set
    /// for good: if a finalizer resurrects the object, the weak references
    /// made from then on upgrade by the weak epoch
    /// ([`Header::revive_weak_references`](super::Header::revive_weak_references)).
    pub const WEAK_CLEARED: usize = 8;
    /// Something watches for the object's death: a weak map entry or a
    /// death callback (`weak_maps::watch`).
    pub const WATCHED: usize = 16;
    pub const ALL: usize = 31;
}

/// What the collector needs to know about a concrete type, with only a
/// header pointer in hand.
#[repr(C, align(32))]
pub(crate) struct VTable {
    pub trace: unsafe fn(NonNull<Header>, &mut Tracer),
    pub finalize: unsafe fn(NonNull<Header>),
    pub drop_value: unsafe fn(NonNull<Header>),
    /// For diagnostics (`gcptr::referrers`).
    pub type_name: fn() -> &'static str,
    pub type_id: fn() -> core::any::TypeId,
    /// Layout of the whole allocation, links included (for a slice, with
    /// no element: see [`Header::allocation_layout`]).
    pub layout: Layout,
    /// For a slice (`Gc<[T]>`, `Gc<str>`): the element's layout. The length
    /// is then stored in the word just before the links (or the header).
    pub element: Option<Layout>,
    /// From the start of the allocation to the header.
    pub header_offset: usize,
    /// From the header to the value.
    pub value_offset: usize,
}

/// The part of every allocation that the `Gc` pointer points at.
#[repr(C)]
pub(crate) struct Header {
    strong: Cell<u32>,
    weak: Cell<u32>,
    vtable_and_flags: Cell<*const VTable>,
}

/// A `Gc` allocation as the typed pointers see it. Public (hidden) only so
/// that `gc_coerce!` can name it.
#[repr(C)]
pub struct GcBox<T: ?Sized> {
    pub(crate) header: Header,
    pub(crate) value: T,
}

/// A tracked object's place in a collector list, just in front of its
/// header. The collector's list heads are bare `Links` too.
#[repr(C)]
pub(crate) struct Links {
    next: Cell<*const Links>,
    prev: Cell<*const Links>,
}

/// Which of an object's two weak epochs a weak reference was made in
/// ([`EPOCH`]): 0, the first, or 1, the one after a finalizer resurrected
/// it (a `usize`, as a `Weak` keeps it in its address's lowest bit).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct WeakEpoch(usize);

impl WeakEpoch {
    /// The epoch whose number is `bit`'s lowest bit.
    #[inline(always)]
    pub(crate) fn from_low_bit(bit: usize) -> WeakEpoch {
        WeakEpoch(bit & 1)
    }

    /// The epoch's number, 0 or 1.
    #[inline(always)]
    pub(crate) fn number(self) -> usize {
        self.0
    }
}

/// Where a tracked object stands in the analysis under way.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mark {
    /// Not in the set being analysed: its links are list links.
    Outside,
    /// In the set; `reachable` once known to be reachable from outside.
    InSet { reachable: bool },
}

/// The weak word's top bit, set while the object need not report the loss
/// of a strong reference that leaves others (`collector::lost_reference`):
/// from birth for objects the collector never looks at (untracked and
/// acyclic ones), and for a tracked one once it has reported, until a full
/// collection analyses it again. The weak count is the word's other bits.
const QUIET: u32 = 1 << 31;
/// The weak word's second bit, set exactly while the object is in
/// generation 2 (either of its lists), and counted in `State::old_count`:
/// set as the object moves up from generation 1 (or back from the
/// permanent generation), cleared when it dies or is set aside. Its death
/// counts against generation 2, and its lost reference puts it in
/// `State::reporters`, where the next full collection finds it without
/// walking generation 2.
const OLD: u32 = 1 << 30;
/// The weak word's third bit, set while `State::reporters` holds the
/// object's address, or a full collection holds it as a root that waits
/// its turn (`collector::take_roots`): its memory is not freed until the
/// buffer lets go of it, as if the buffer held a unit of weak count (but
/// without one, which `Gc::get_mut` and `Gc::weak_count` would see).
const BUFFERED: u32 = 1 << 29;
/// The weak word's fourth bit, set while the object's `DEAD` flag is
/// provisional: the gathering pass of a full collection condemns each
/// object it takes into its set in advance ([`Header::condemn_provisionally`]),
/// and the mark pass acquits those it finds reachable
/// ([`Header::acquit`]). While the analysis runs, a provisionally dead
/// object is alive to user code (which runs in traces) but not to the
/// collector's own paths: the death of its last strong reference leaves
/// the strong references' share of the weak count for the collection to
/// take over. Once the analysis is over, the objects still provisional are
/// the garbage, dead from then on, and the collection drops them without
/// first visiting each to condemn it (on a dropped 1M-node ring, a pass
/// that took a sixth of its collection's time).
const PROVISIONAL: u32 = 1 << 28;
/// The weak word's fifth bit, set from birth and never changed, for an
/// object whose type's drop does nothing but drop the `Gc`s it owns
/// ([`Trace::__drop_only_releases_gcs`]): a garbage set of such objects
/// whose edges all lead to each other is freed without its drops.
const DROP_ONLY_RELEASES_GCS: u32 = 1 << 27;
/// The weak word's sixth bit, the object's weak epoch: set while the object
/// lives on after a collection's finalizers first resurrected it. That
/// collection cleared its weak references (`flags::WEAK_CLEARED`, which
/// stays set from then on). Each `Weak` carries the epoch it was made in
/// (`Weak`'s tag), and a cleared object's `Weak`s upgrade only if both are
/// set: those made before the resurrection stay cleared, as CPython's do,
/// and those made after it work, as new `weakref.ref`s to a resurrected
/// object do. When a collection condemns the object again, the bit goes
/// for good: a `Weak` of the second epoch must not upgrade again, and
/// there is no third ([`Header::revive_weak_references`]).
///
/// An object never cleared has only `Weak`s of the first epoch, so the
/// common test (`WEAK_CLEARED` and `DEAD` both clear) needs no look at
/// the epochs ([`Header::is_upgradable_from`]).
const EPOCH: u32 = 1 << 26;
/// The weak word's bits that hold the weak count.
const WEAK_COUNT: u32 = EPOCH - 1;

const LINKS_SIZE: usize = size_of::<Links>();

/// How many objects ahead a walk along a list fetches
/// ([`Links::prefetch_along`]).
const LIST_PREFETCH_DISTANCE: isize = 8;

/// The longest step between neighbours in a list that a walk along it
/// takes for a stride to extrapolate: a few small objects.
const LIST_PREFETCH_STRIDE: usize = 256;

/// Asks for the memory at `address` to be brought into the cache.
#[inline(always)]
pub(crate) fn prefetch<T>(address: *const T) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: a prefetch is a hint: it reads nothing and cannot fault, at
    // any address, mapped or not.
    unsafe {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(address.cast());
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = address;
}

/// Scratch encoding of `next` during analysis: the mark in the two low
/// bits, with `IN_SET` always set (so scratch never reads as a real `Links`
/// address, which is 8-aligned), and above them the strong count when the
/// object was taken in (on a 32-bit target, its low 30 bits).
const IN_SET: usize = 1;
const REACHABLE: usize = 2;
const MARK_BITS: u32 = 2;

#[cold]
#[inline(never)]
fn count_overflow() -> ! {
    // As std's Rc: a count that wraps would free a live object. Only
    // `mem::forget` in a loop can get here; abort rather than unwind.
    std::process::abort()
}

impl Header {
    /// A header with counts of one; `drop_only_releases_gcs` is the type's
    /// [`Trace::__drop_only_releases_gcs`] (`false` is always sound).
    pub(crate) fn new(
        vtable: &'static VTable,
        flags: usize,
        drop_only_releases_gcs: bool,
    ) -> Header {
        let quiet = if flags & flags::TRACKED == 0 {
            QUIET
        } else {
            0
        };
        let releases = if drop_only_releases_gcs {
            DROP_ONLY_RELEASES_GCS
        } else {
            0
        };
        Header {
            strong: Cell::new(1),
            weak: Cell::new(1 | quiet | releases),
            vtable_and_flags: Cell::new(ptr::from_ref(vtable).map_addr(|a| a | flags)),
        }
    }

    #[inline(always)]
    pub(crate) fn strong(&self) -> usize {
        self.strong.get() as usize
    }

    #[inline(always)]
    pub(crate) fn inc_strong(&self) {
        let strong = self.strong.get().wrapping_add(1);
        self.strong.set(strong);
        if strong == 0 {
            count_overflow();
        }
    }

    /// Decrements the strong count of the object at `this` and returns the
    /// new count. A reference lost while others remain is how a garbage
    /// cycle comes to be, so a tracked object reports the first such loss
    /// to the collector (`collector::lost_reference`); then it is `QUIET`.
    #[inline(always)]
    pub(crate) fn dec_strong(this: NonNull<Header>) -> usize {
        // SAFETY: the caller holds a strong reference to the live object.
        let h = unsafe { this.as_ref() };
        let strong = h.strong.get() - 1;
        h.strong.set(strong);
        if strong != 0 && !h.is_quiet() {
            crate::collector::lost_reference(this);
        }
        strong as usize
    }

    pub(crate) fn set_strong(&self, strong: usize) {
        self.strong.set(strong as u32);
    }

    /// For tests: as if `weak` units of the weak count had been taken.
    #[cfg(test)]
    pub(crate) fn set_weak(&self, weak: usize) {
        assert!(weak <= WEAK_COUNT as usize);
        self.weak.set(weak as u32 | self.weak.get() & !WEAK_COUNT);
    }

    /// The raw weak count: `Weak`s, plus one for all strong references
    /// together while any exist, plus one while the collector holds the
    /// object in a garbage set.
    #[inline(always)]
    pub(crate) fn weak(&self) -> usize {
        (self.weak.get() & WEAK_COUNT) as usize
    }

    #[inline(always)]
    pub(crate) fn inc_weak(&self) {
        let weak = self.weak.get().wrapping_add(1);
        if weak & WEAK_COUNT == 0 {
            // The count would carry into the flag bits above it.
            count_overflow();
        }
        self.weak.set(weak);
    }

    /// Decrements the weak count and returns the new count.
    #[inline(always)]
    pub(crate) fn dec_weak(&self) -> usize {
        debug_assert!(self.weak() > 0, "weak count underflow");
        let weak = self.weak.get() - 1;
        self.weak.set(weak);
        (weak & WEAK_COUNT) as usize
    }

    /// Whether the object need not report a lost reference (`QUIET`).
    #[inline(always)]
    pub(crate) fn is_quiet(&self) -> bool {
        self.weak.get() & QUIET != 0
    }

    pub(crate) fn set_quiet(&self, quiet: bool) {
        self.set_weak_bit(QUIET, quiet);
    }

    /// Whether the object is counted in generation 2 (`OLD`).
    #[inline(always)]
    pub(crate) fn is_old(&self) -> bool {
        self.weak.get() & OLD != 0
    }

    pub(crate) fn set_old(&self, old: bool) {
        self.set_weak_bit(OLD, old);
    }

    /// Condemns in advance an object, with strong references, that a full
    /// collection's gathering pass takes into its set ([`PROVISIONAL`]):
    /// `DEAD`, and quiet: the references garbage loses as its peers'
    /// values are dropped need no report. (One that a trace drops during
    /// the analysis, the only user code that runs then, is reported when
    /// the object is acquitted: see [`Header::acquit`].)
    ///
    /// The memory of garbage must outlive whatever the drops of its peers
    /// release, until its own drop. Rather than a unit of weak count taken
    /// here and given back by each survivor, the strong references' share
    /// stays when the last of them goes while the mark is provisional
    /// (`death::dead_reached_zero`), and the collection takes it over.
    #[inline(always)]
    pub(crate) fn condemn_provisionally(&self) {
        self.weak.set(self.weak.get() | PROVISIONAL | QUIET);
        self.set(flags::DEAD);
    }

    /// What must happen before the value may be dropped, as flag bits:
    /// `FINALIZED` if the finalizer has still to run, `WATCHED` if
    /// something watches for the death; 0 if nothing.
    #[inline(always)]
    pub(crate) fn pending_events(&self) -> usize {
        (self.flags() ^ flags::FINALIZED) & (flags::FINALIZED | flags::WATCHED)
    }

    /// Whether the object's type drops nothing but `Gc`s
    /// ([`DROP_ONLY_RELEASES_GCS`]).
    #[inline(always)]
    pub(crate) fn drop_only_releases_gcs(&self) -> bool {
        self.weak.get() & DROP_ONLY_RELEASES_GCS != 0
    }

    /// Whether the object's `DEAD` mark is provisional ([`PROVISIONAL`]).
    #[inline(always)]
    pub(crate) fn is_provisional(&self) -> bool {
        self.weak.get() & PROVISIONAL != 0
    }

    /// Takes back a provisional condemnation, if the object has one: it is
    /// reachable. It is left loud, as an analysis leaves the objects it
    /// sees. `links` are its links, which still hold the analysis's
    /// scratch. Returns `true` if its strong count changed since the
    /// analysis took it in ([`Links::strong_changed_in_analysis`]): a trace
    /// dropped a reference to it (or made one). Then the caller queues its
    /// death if that was the last (the strong references' share of the
    /// weak count stayed, as for a death during an analysis), and otherwise
    /// reports the loss, which the object, quiet then, could not: had that
    /// been the last reference from outside a cycle, the cycle would be
    /// garbage that no object reports, missed by every collection that
    /// starts from the reports.
    #[inline(always)]
    pub(crate) fn acquit(&self, links: &Links) -> bool {
        let weak = self.weak.get();
        if weak & PROVISIONAL == 0 {
            return false;
        }
        self.clear(flags::DEAD);
        self.weak.set(weak & !(PROVISIONAL | QUIET));
        links.strong_changed_in_analysis(self.strong())
    }

    /// Makes a condemnation final: no longer provisional, and quiet (the
    /// references it loses from here on are the collection's own doing:
    /// values dropped, finalizers run).
    #[inline(always)]
    pub(crate) fn settle_condemned(&self) {
        self.weak.set((self.weak.get() & !PROVISIONAL) | QUIET);
    }

    /// Whether the value has been dropped, or the collector has condemned
    /// the object and is about to drop it: `DEAD`, unless the mark is
    /// provisional ([`PROVISIONAL`]) and the analysis still running.
    #[inline(always)]
    pub(crate) fn is_dead(&self) -> bool {
        self.has(flags::DEAD) && !self.is_provisionally_dead()
    }

    #[cold]
    #[inline(never)]
    fn is_provisionally_dead(&self) -> bool {
        self.is_provisional() && crate::collector::is_analysing()
    }

    /// Whether `State::reporters` holds the object (`BUFFERED`).
    #[inline(always)]
    pub(crate) fn is_buffered(&self) -> bool {
        self.weak.get() & BUFFERED != 0
    }

    pub(crate) fn set_buffered(&self, buffered: bool) {
        self.set_weak_bit(BUFFERED, buffered);
    }

    fn set_weak_bit(&self, bit: u32, on: bool) {
        let word = self.weak.get();
        self.weak.set(if on { word | bit } else { word & !bit });
    }

    #[inline(always)]
    pub(crate) fn flags(&self) -> usize {
        self.vtable_and_flags.get().addr() & flags::ALL
    }

    #[inline(always)]
    pub(crate) fn has(&self, flag: usize) -> bool {
        self.flags() & flag != 0
    }

    pub(crate) fn set(&self, flag: usize) {
        let tagged = self.vtable_and_flags.get();
        self.vtable_and_flags.set(tagged.map_addr(|a| a | flag));
    }

    pub(crate) fn clear(&self, flag: usize) {
        let tagged = self.vtable_and_flags.get();
        self.vtable_and_flags.set(tagged.map_addr(|a| a & !flag));
    }

    #[inline(always)]
    pub(crate) fn vtable(&self) -> &'static VTable {
        let pointer = self.tagged_pointer();
        if self.has(flags::WATCHED) {
            // SAFETY: a WATCHED header points at the first node of its
            // watchers (`weak_maps::WatchNode`), a live `#[repr(C)]` struct
            // whose first field is a `Cell` holding the vtable.
            unsafe { &*(*pointer.cast::<Cell<*const VTable>>()).get() }
        } else {
            // SAFETY: otherwise the pointer is the `&'static VTable` that
            // `Header::new` stored (or that the last watcher put back).
            unsafe { &*pointer.cast::<VTable>() }
        }
    }

    /// The header's pointer without its flags: the vtable, or while
    /// `WATCHED` the first watcher node.
    #[inline(always)]
    pub(crate) fn tagged_pointer(&self) -> *const () {
        self.vtable_and_flags
            .get()
            .map_addr(|a| a & !flags::ALL)
            .cast()
    }

    /// Replaces the header's pointer, keeping the flags. `pointer` is
    /// 32-aligned: the vtable, or a watcher node (`weak_maps`).
    pub(crate) fn set_tagged_pointer(&self, pointer: *const ()) {
        debug_assert_eq!(pointer.addr() & flags::ALL, 0);
        let flag_bits = self.flags();
        self.vtable_and_flags
            .set(pointer.cast::<VTable>().map_addr(|a| a | flag_bits));
    }

    /// Whether a weak reference made now could hand out a new strong
    /// reference: for a weak handle about to be made (a container entry, a
    /// death callback), which is made in the current epoch.
    #[inline(always)]
    pub(crate) fn is_upgradable(&self) -> bool {
        self.is_upgradable_from(self.weak_epoch())
    }

    /// Whether a weak reference made in `epoch` (see [`EPOCH`]) may hand
    /// out a new strong reference.
    #[inline(always)]
    pub(crate) fn is_upgradable_from(&self, epoch: WeakEpoch) -> bool {
        let doomed = self.flags() & (flags::DEAD | flags::WEAK_CLEARED);
        self.strong.get() != 0 && (doomed == 0 || self.is_upgradable_when(doomed, epoch))
    }

    /// [`is_upgradable_from`](Header::is_upgradable_from) for an object
    /// with `doomed`, some of `DEAD` and `WEAK_CLEARED`: provisionally
    /// `DEAD` in an analysis, or cleared and resurrected.
    #[cold]
    #[inline(never)]
    fn is_upgradable_when(&self, doomed: usize, epoch: WeakEpoch) -> bool {
        let alive = doomed & flags::DEAD == 0 || !self.is_dead();
        let in_epoch = doomed & flags::WEAK_CLEARED == 0
            || (self.weak.get() & EPOCH != 0 && epoch.number() == 1);
        alive && in_epoch
    }

    /// The epoch that a weak reference made now belongs to ([`EPOCH`]).
    #[inline(always)]
    pub(crate) fn weak_epoch(&self) -> WeakEpoch {
        WeakEpoch::from_low_bit((self.weak.get() >> EPOCH.trailing_zeros()) as usize)
    }

    /// Clears the object's weak references (`WEAK_CLEARED`), for a
    /// collection that found it to be garbage. Returns whether a collection
    /// had cleared them before: then a finalizer resurrected the object,
    /// which is garbage once more, and the `Weak`s of its second epoch stop
    /// upgrading, for good ([`EPOCH`]): it must not be revived again.
    pub(crate) fn clear_weak_references(&self) -> bool {
        let before = self.has(flags::WEAK_CLEARED);
        self.set(flags::WEAK_CLEARED);
        if before {
            self.set_weak_bit(EPOCH, false);
        }
        before
    }

    /// For a survivor of a collection's second look at its garbage, which a
    /// finalizer resurrected, and whose weak references that collection
    /// cleared for the first time: those stay cleared, and the ones made
    /// from now on upgrade, in the second epoch ([`EPOCH`]).
    pub(crate) fn revive_weak_references(&self) {
        debug_assert!(self.has(flags::WEAK_CLEARED));
        self.set_weak_bit(EPOCH, true);
    }

    /// The object's list links, if it is tracked.
    ///
    /// Takes the header as a raw pointer: the links lie outside the header,
    /// so they must be reached with the allocation's own provenance, never
    /// through a `&Header`.
    #[inline]
    pub(crate) fn links(this: NonNull<Header>) -> Option<NonNull<Links>> {
        // SAFETY: `this` points at a live header.
        if unsafe { this.as_ref() }.has(flags::TRACKED) {
            // SAFETY: a TRACKED header was allocated with `Links` right in
            // front of it (`VTables::TRACKED`), within the same allocation.
            Some(unsafe { this.byte_sub(LINKS_SIZE).cast::<Links>() })
        } else {
            None
        }
    }

    /// The list links of an object known to be tracked: a member of the
    /// collector's lists or of the set it analyses. Saves the load of the
    /// flags and the branch that [`links`](Self::links) needs, on every
    /// object of every pass.
    ///
    /// # Safety
    ///
    /// `this` points at the live header of a tracked object.
    #[inline(always)]
    pub(crate) unsafe fn tracked_links(this: NonNull<Header>) -> NonNull<Links> {
        // SAFETY: the caller's promise: a live header.
        debug_assert!(unsafe { this.as_ref() }.has(flags::TRACKED));
        // SAFETY: a TRACKED header was allocated with `Links` right in
        // front of it, within the same allocation (as in `links`).
        unsafe { this.byte_sub(LINKS_SIZE).cast::<Links>() }
    }

    /// The address of the value, as `Gc::as_ptr` returns it: with the
    /// provenance of `this`, the whole allocation's. Made from a `&Header`,
    /// it could reach the header alone, and a read through it would be
    /// undefined behaviour under Stacked Borrows.
    ///
    /// # Safety
    /// `this` points at an allocated header.
    pub(crate) unsafe fn value_address(this: NonNull<Header>) -> *const () {
        // SAFETY: allocated, per the contract.
        let offset = unsafe { this.as_ref() }.vtable().value_offset;
        this.as_ptr()
            .cast::<u8>()
            .wrapping_add(offset)
            .cast_const()
            .cast()
    }

    /// The layout of the whole allocation, for `dealloc`.
    #[inline]
    pub(crate) fn allocation_layout(this: NonNull<Header>) -> Layout {
        // SAFETY: `this` points at a live header.
        let vtable = unsafe { this.as_ref() }.vtable();
        match vtable.element {
            None => vtable.layout,
            Some(element) => slice_layout(vtable, element, Header::slice_len(this)),
        }
    }

    /// The length of a slice allocation.
    pub(crate) fn slice_len(this: NonNull<Header>) -> usize {
        Header::slice_len_slot(this).map_or(0, |slot| {
            // SAFETY: written by the slice's allocation
            // (`slice::allocate_slice`) right after the header and before
            // any `Gc` to the object existed, and never changed.
            unsafe { slot.read() }
        })
    }

    /// Where a slice allocation keeps its length: just before its links
    /// (tracked) or its header.
    pub(crate) fn slice_len_slot(this: NonNull<Header>) -> Option<NonNull<usize>> {
        // SAFETY: `this` points at a live header.
        let h = unsafe { this.as_ref() };
        h.vtable().element?;
        let before = if h.has(flags::TRACKED) { LINKS_SIZE } else { 0 } + size_of::<usize>();
        // SAFETY: slice layouts reserve that word in front (`SliceVTables`).
        Some(unsafe { this.byte_sub(before).cast::<usize>() })
    }

    /// The start of the allocation, for `dealloc`.
    #[inline]
    pub(crate) fn allocation(this: NonNull<Header>) -> NonNull<u8> {
        // SAFETY: `header_offset` is the distance from the allocation's
        // start to the header, so the result is the allocation's start.
        unsafe { this.cast::<u8>().sub(this.as_ref().vtable().header_offset) }
    }
}

/// How many objects [`Links::take_for_analysis`] makes room for at a time.
/// The set's buffer is kept between collections, so this sets only its
/// first size, and the growth of a new buffer doubles it. 64 entries are
/// 512 bytes, a request that glibc serves from its small bins: with 1024,
/// every thread's first set took 8 KiB, a large request that can make
/// glibc consolidate its fast bins. (The first young collection at the
/// default threshold now takes five allocations, once per thread.)
const TAKE_BLOCK: usize = 64;

// List operations take raw `NonNull<Links>`: a node's pointer must keep the
// provenance of its whole allocation, so that `Links::header` may step from
// the links to the header and the value behind them.
impl Links {
    /// An empty list head (once [`Links::link_to_self`] has run at its
    /// final address).
    pub(crate) const fn new() -> Links {
        Links {
            next: Cell::new(ptr::null()),
            prev: Cell::new(ptr::null()),
        }
    }

    /// Makes `this` a list of its own: an empty head, or an object in no list.
    pub(crate) fn link_to_self(this: NonNull<Links>) {
        // SAFETY: `this` points at live links (all callers).
        let links = unsafe { this.as_ref() };
        links.next.set(this.as_ptr());
        links.prev.set(this.as_ptr());
    }

    /// The header that follows an object's links.
    pub(crate) fn header(this: NonNull<Links>) -> NonNull<Header> {
        // SAFETY: object links are always directly followed by the header,
        // and `this` has the provenance of the whole allocation.
        unsafe { this.byte_add(LINKS_SIZE).cast() }
    }

    /// Appends `node` at the end of the list headed by `head`.
    pub(crate) fn push_back(head: NonNull<Links>, node: NonNull<Links>) {
        // SAFETY: `head` is a valid list; its `prev` is its last node (or
        // itself), live while in the list; `node` is live.
        unsafe {
            let last = NonNull::new_unchecked(head.as_ref().prev.get().cast_mut());
            node.as_ref().prev.set(last.as_ptr());
            node.as_ref().next.set(head.as_ptr());
            last.as_ref().next.set(node.as_ptr());
            head.as_ref().prev.set(node.as_ptr());
        }
    }

    /// Takes `this` out of its list and links it to itself. A no-op for an
    /// object in no list.
    pub(crate) fn unlink(this: NonNull<Links>) {
        Links::unlink_dying(this);
        Links::link_to_self(this);
    }

    /// Takes `this` out of its list for good, as the object dies: its own
    /// links are left stale, never to be followed again (a `DEAD` object is
    /// in no list, and no list operation touches it). Returns whether it was
    /// in a list; a no-op for an object in no list (set aside, or acyclic).
    #[inline(always)]
    pub(crate) fn unlink_dying(this: NonNull<Links>) -> bool {
        // SAFETY: `this` points at live links.
        let links = unsafe { this.as_ref() };
        let next = links.next.get();
        if ptr::eq(next, this.as_ptr()) {
            return false;
        }
        // Read once: the first store below writes a `next` field, never
        // this object's `prev` (the compiler cannot see that).
        let prev = links.prev.get();
        // SAFETY: outside an analysis, the links of an object in a list
        // point at live neighbours in the same list.
        unsafe {
            (*prev).next.set(next);
            (*next).prev.set(prev);
        }
        true
    }

    /// Puts the object at `this`, in no list, out of the collector's care
    /// for good: it is acyclic (see [`Links::is_acyclic`]). Its `next` stays
    /// at itself, so that every list operation treats it as in no list;
    /// its null `prev` tells it from an object set aside by `Gc::get_mut`.
    pub(crate) fn mark_acyclic(this: NonNull<Links>) {
        // SAFETY: `this` points at live links.
        let links = unsafe { this.as_ref() };
        links.next.set(this.as_ptr());
        links.prev.set(ptr::null());
    }

    /// Whether the object at `this` was found acyclic when it was made: its
    /// value can never gain a `Gc` (its type's `Trace::__edges_fixed`), and
    /// everything it owned then was untracked or acyclic itself. No cycle
    /// can pass through it, so no collection looks at it, and edges to it
    /// are ignored like edges to untracked objects. `Gc::get_mut` ends it.
    #[inline]
    pub(crate) fn is_acyclic(this: NonNull<Links>) -> bool {
        // SAFETY: `this` points at live links.
        let links = unsafe { this.as_ref() };
        ptr::eq(links.next.get(), this.as_ptr()) && links.prev.get().is_null()
    }

    /// Whether the object at `this` is in no list but not acyclic: set
    /// aside by `Gc::get_mut` (it comes back at its next lost reference,
    /// or when a collection sees an edge to it, which takes it into its
    /// set: `Tracer::take_set_aside_objects`), condemned or dead
    /// (`Links::unlink`), made after thread exit, or left by it.
    #[inline]
    pub(crate) fn is_set_aside(this: NonNull<Links>) -> bool {
        // SAFETY: `this` points at live links.
        let links = unsafe { this.as_ref() };
        ptr::eq(links.next.get(), this.as_ptr()) && ptr::eq(links.prev.get(), this.as_ptr())
    }

    /// Moves every node of the list headed by `other` to the end of the
    /// list headed by `head`, leaving `other` empty.
    pub(crate) fn append(head: NonNull<Links>, other: NonNull<Links>) {
        if Links::is_empty(other) {
            return;
        }
        // SAFETY: both heads are valid lists; their ends are live nodes.
        unsafe {
            let (first, last) = (other.as_ref().next.get(), other.as_ref().prev.get());
            let tail = head.as_ref().prev.get();
            (*tail).next.set(first);
            (*first).prev.set(tail);
            (*last).next.set(head.as_ptr());
            head.as_ref().prev.set(last);
        }
        Links::link_to_self(other);
    }

    pub(crate) fn is_empty(head: NonNull<Links>) -> bool {
        // SAFETY: `head` is a live list head.
        ptr::eq(unsafe { head.as_ref() }.next.get(), head.as_ptr())
    }

    /// The headers of the objects in the list headed by `head`, in order.
    pub(crate) fn headers(head: NonNull<Links>) -> Vec<NonNull<Header>> {
        let mut out = Vec::new();
        Links::for_each(head, |node| out.push(Links::header(node)));
        out
    }

    pub(crate) fn len(head: NonNull<Links>) -> usize {
        let mut n = 0;
        Links::for_each(head, |_| n += 1);
        n
    }

    fn for_each(head: NonNull<Links>, mut f: impl FnMut(NonNull<Links>)) {
        // SAFETY: `head` is a live list head.
        let mut node = unsafe { head.as_ref() }.next.get();
        while !ptr::eq(node, head.as_ptr()) {
            // SAFETY: every node of a list is a live object's links, so
            // non-null and readable; read `next` before `f`, which may
            // relink the node.
            let this = unsafe { NonNull::new_unchecked(node.cast_mut()) };
            // SAFETY: as above.
            node = unsafe { this.as_ref() }.next.get();
            f(this);
        }
    }

    /// Fetches ahead of a walk along a list that just stepped from `from`
    /// to `to`. Each next address is in the object before it, so such a
    /// walk waits on every object in turn unless something fetches ahead.
    /// A list built, or relinked by a collection, in memory order goes on
    /// at about the same stride, so the object [`LIST_PREFETCH_DISTANCE`]
    /// steps on is likely where that stride leads. After a long step (a
    /// list in no memory order) nothing is fetched: the guess would only
    /// take memory bandwidth from the walk.
    ///
    /// A full collection of a live 2^20 - 1 node tree, after a clone and
    /// drop of every node (so that it goes through the whole list), took 13% less
    /// time this way, the build of a 1M-node ring with automatic
    /// collection on 5% less; a list in random memory order took the
    /// same.
    #[inline(always)]
    fn prefetch_along(from: *const Links, to: *const Links) {
        let stride = (to.addr() as isize).wrapping_sub(from.addr() as isize);
        if stride.unsigned_abs() <= LIST_PREFETCH_STRIDE {
            prefetch(to.wrapping_byte_offset(stride * LIST_PREFETCH_DISTANCE));
        }
    }

    /// Moves every object of the list headed by `head` into an analysis
    /// (see [`Links::begin_analysis`]), appending their headers to `out`,
    /// and leaves the list empty. If `loud`, each object reports its next
    /// lost reference again (`QUIET` cleared): a full collection's set
    /// while objects are frozen (otherwise it takes them one at a time:
    /// [`Links::take_first`]).
    ///
    /// `out` gets the objects in list order, and that order matters: a
    /// collection relinks its survivors in the order it traces them, which
    /// is this order for the roots it meets and for lists whose edges
    /// follow them, so a list that starts in memory order mostly stays in
    /// it, and the hardware prefetcher keeps later walks of it fast.
    /// Walking from both ends at once (two cache misses in flight instead
    /// of one) was tried and measured: appending first, last, second, one before the last, and
    /// so on shuffled the survivors once more at each collection, and
    /// building 2M live objects with automatic collection on took 3.5
    /// times as long; keeping list order with a second buffer for the
    /// back half still lost to this plain walk on every workload but one
    /// (a 1M ring built on memory in scrambled order). What keeps a second
    /// miss in flight now is a guess: [`Links::prefetch_along`].
    ///
    /// Out of line: see `cycle::finish_analysis`.
    #[inline(never)]
    pub(crate) fn take_for_analysis(
        head: NonNull<Links>,
        out: &mut Vec<NonNull<Header>>,
        loud: bool,
    ) {
        // SAFETY: `head` is a live list head.
        let mut node = unsafe { head.as_ref() }.next.get();
        // Into spare capacity, a block at a time: `push` stored the length
        // back to memory and tested the capacity at every object.
        while !ptr::eq(node, head.as_ptr()) {
            out.reserve(TAKE_BLOCK);
            let spare = out.spare_capacity_mut();
            let mut taken = 0;
            while taken < spare.len() && !ptr::eq(node, head.as_ptr()) {
                // SAFETY: every node of a list is a live object's links, so
                // non-null and readable; `next` is read before `take_one`
                // overwrites it.
                let this = unsafe { NonNull::new_unchecked(node.cast_mut()) };
                // SAFETY: as above.
                node = unsafe { this.as_ref() }.next.get();
                Links::prefetch_along(this.as_ptr(), node);
                spare[taken].write(Links::take_one(this, loud));
                taken += 1;
            }
            // SAFETY: the `taken` slots after the length were written just
            // above, and are within the capacity.
            unsafe { out.set_len(out.len() + taken) };
        }
        Links::link_to_self(head);
    }

    /// Takes the first object of the list headed by `head` into an
    /// analysis, as [`Links::take_listed`] does, and fetches ahead along
    /// the list ([`Links::prefetch_along`]); `None` if the list is empty.
    /// A full collection of everything takes its roots this way, in list
    /// order, as its first pass reaches the end of what it took in.
    pub(crate) fn take_first(head: NonNull<Links>) -> Option<NonNull<Header>> {
        // SAFETY: `head` is a live list head.
        let first = unsafe { head.as_ref() }.next.get();
        if ptr::eq(first, head.as_ptr()) {
            return None;
        }
        // SAFETY: every node of a list is a live object's links.
        let first = unsafe { NonNull::new_unchecked(first.cast_mut()) };
        // SAFETY: as above.
        Links::prefetch_along(first.as_ptr(), unsafe { first.as_ref() }.next.get());
        Some(Links::take_listed(first))
    }

    /// Marks every object of the young generation's list headed by `head`
    /// [`OLD`], as it moves into generation 2, and if `quiet` is given,
    /// appends the headers of the `QUIET` ones to it, in list order, and
    /// marks them [`BUFFERED`] (the collection lets go of them,
    /// `collector::take_root`).
    /// Returns how many objects were not `OLD` before: all of them, as only
    /// generation 2's are.
    ///
    /// A quiet object reported a lost reference since a full collection
    /// last analysed it, and every garbage cycle has such a member
    /// (`collector::lost_reference`): these are the roots from which a
    /// full collection gathers its set ([`Links::take_listed`]).
    ///
    /// Out of line: see `cycle::finish_analysis`.
    #[inline(never)]
    pub(crate) fn make_old(
        head: NonNull<Links>,
        mut quiet: Option<&mut Vec<NonNull<Header>>>,
    ) -> usize {
        let mut marked = 0;
        // SAFETY: `head` is a live list head.
        let mut node = unsafe { head.as_ref() }.next.get();
        while !ptr::eq(node, head.as_ptr()) {
            // SAFETY: every node of a list is a live object's links, so
            // non-null and readable.
            let this = unsafe { NonNull::new_unchecked(node.cast_mut()) };
            // SAFETY: as above.
            node = unsafe { this.as_ref() }.next.get();
            // SAFETY: the header of a live, listed object.
            let h = unsafe { Links::header(this).as_ref() };
            debug_assert!(!h.is_old(), "an OLD object in a young generation");
            marked += usize::from(!h.is_old());
            h.set_old(true);
            if let Some(out) = quiet.as_deref_mut().filter(|_| h.is_quiet()) {
                // (Buffered while it was old, it was let go of as the
                // reporters were taken.)
                debug_assert!(!h.is_buffered(), "a young object buffered");
                h.set_buffered(true);
                out.push(Links::header(this));
            } else {
                debug_assert!(
                    !h.is_quiet(),
                    "a quiet object would be lost in generation 2"
                );
            }
        }
        marked
    }

    /// Takes the object at `this` out of its list and into a full
    /// collection's set, condemned provisionally
    /// ([`Header::condemn_provisionally`]); returns its header. Its list
    /// links are lost. Inlined into every type's trace, where the first
    /// pass of a full collection takes in each object it meets.
    /// An object whose strong count is zero is queued to die, and is a
    /// root of the set ([`Links::begin_analysis`]): never garbage, it is
    /// only made loud.
    #[inline(always)]
    pub(crate) fn take_listed(this: NonNull<Links>) -> NonNull<Header> {
        Links::unlink_dying(this);
        let header = Links::take_one(this, false);
        // SAFETY: the header of a live object.
        let h = unsafe { header.as_ref() };
        if h.strong() != 0 {
            h.condemn_provisionally();
        } else {
            h.set_quiet(false);
        }
        header
    }

    /// Takes the object at `this`, set aside by `Gc::get_mut` (in no
    /// list, alive), into an analysis, as [`Links::take_listed`] takes a
    /// listed one: condemned provisionally if `provisional` (a full
    /// collection's gathering pass), otherwise only put in the set.
    #[cold]
    #[inline(never)]
    pub(crate) fn take_set_aside(this: NonNull<Links>, provisional: bool) -> NonNull<Header> {
        debug_assert!(Links::is_set_aside(this));
        if provisional {
            Links::take_listed(this)
        } else {
            Links::take_one(this, false)
        }
    }

    /// Whether the object at `this` is in one of the collector's lists
    /// (outside an analysis, or not in its set).
    #[inline(always)]
    pub(crate) fn is_listed(this: NonNull<Links>) -> bool {
        // SAFETY: `this` points at live links.
        !ptr::eq(unsafe { this.as_ref() }.next.get(), this.as_ptr())
    }

    /// Puts the listed object at `this` into an analysis; returns its
    /// header. Its list links are lost.
    #[inline]
    fn take_one(this: NonNull<Links>, loud: bool) -> NonNull<Header> {
        let header = Links::header(this);
        // SAFETY: the links and header of a live, listed object.
        unsafe {
            let h = header.as_ref();
            if loud {
                h.set_quiet(false);
            }
            this.as_ref().begin_analysis(h.strong());
        }
        header
    }

    // Analysis scratch: `next` holds the mark and the strong count that
    // the analysis began with, `prev` the count of references not yet
    // accounted for (CPython's `gc_refs`).

    /// Puts the object, whose strong count is `strong`, in the analysed
    /// set, with that many references to account for; or 1 if it has none:
    /// an object whose count is zero is queued to die (`death.rs`) and until
    /// then holds its referents from outside. Its list links are lost; the
    /// caller relinks it after. Inlined into every type's trace, with
    /// `take_listed`.
    #[inline(always)]
    pub(crate) fn begin_analysis(&self, strong: usize) {
        let refs = strong.max(1);
        self.next
            .set(ptr::without_provenance(IN_SET | strong << MARK_BITS));
        self.prev.set(ptr::without_provenance(refs));
    }

    /// Whether the strong count of the object in the analysed set, now
    /// `strong`, differs from the one the analysis began with
    /// ([`Links::begin_analysis`]): a trace dropped a reference to it, or
    /// made one. (On a 32-bit target, a change by a multiple of 2^30 is not
    /// seen.)
    #[inline(always)]
    pub(crate) fn strong_changed_in_analysis(&self, strong: usize) -> bool {
        self.next.get().addr() >> MARK_BITS != (strong << MARK_BITS) >> MARK_BITS
    }

    pub(crate) fn mark(&self) -> Mark {
        let next = self.next.get().addr();
        if next & IN_SET == 0 {
            Mark::Outside
        } else {
            Mark::InSet {
                reachable: next & REACHABLE != 0,
            }
        }
    }

    pub(crate) fn refs(&self) -> usize {
        self.prev.get().addr()
    }

    /// Accounts for one reference from inside the set; returns whether
    /// that was the last one left.
    ///
    /// Only a `Trace` impl that reports more edges than exist (breaking
    /// its contract) takes the count below zero; it wraps, and the object
    /// looks held from outside from then on.
    #[inline(always)]
    pub(crate) fn decrement_refs(&self) -> bool {
        debug_assert!(
            self.refs() > 0,
            "a Trace impl reported more edges than exist"
        );
        let refs = self.refs().wrapping_sub(1);
        self.prev.set(ptr::without_provenance(refs));
        refs == 0
    }

    pub(crate) fn set_mark_reachable(&self) {
        self.next
            .set(self.next.get().map_addr(|next| next | REACHABLE));
    }
}

/// The allocation of a `GcBox` that holds one value (not a slice): the only
/// place that decides where the header goes in it.
#[derive(Clone, Copy)]
pub(crate) struct Allocation {
    pub layout: Layout,
    /// From the start of the allocation to the header.
    pub header_offset: usize,
}

impl Allocation {
    /// The allocation of a `GcBox` whose own layout is `box_layout`: with
    /// `Links` in front of the header if `tracked`, padded so that the
    /// header keeps the box's alignment.
    #[inline(always)]
    pub(crate) const fn of(box_layout: Layout, tracked: bool) -> Allocation {
        let header_offset = if !tracked {
            0
        } else if box_layout.align() > LINKS_SIZE {
            box_layout.align()
        } else {
            LINKS_SIZE
        };
        let align = if box_layout.align() > align_of::<Links>() {
            box_layout.align()
        } else {
            align_of::<Links>()
        };
        match Layout::from_size_align(header_offset + box_layout.size(), align) {
            Ok(layout) => Allocation {
                layout,
                header_offset,
            },
            Err(_) => panic!("gcptr: value too large to allocate"),
        }
    }
}

impl<T: ?Sized> GcBox<T> {
    /// The allocation of this object when the compiler knows it, that is
    /// when `T` is `Sized` (the pointer is thin), so that a drop frees
    /// memory with constants instead of reading the vtable. `None` for a
    /// slice or a trait object: their allocation is in the vtable
    /// ([`Header::allocation_layout`]).
    ///
    /// Takes `&self`: call it while the value is alive.
    ///
    /// # Safety
    /// The box is an object's: allocated by `Gc::allocate` (the module's
    /// invariant for thin pointers), tracked exactly if `tracked`.
    #[inline(always)]
    pub(crate) unsafe fn known_allocation(&self, tracked: bool) -> Option<Allocation> {
        // Unsized values are never thin; a thin one is `VTables::<T>`'s,
        // whose layout is `Allocation::of` the same box layout.
        (size_of::<*const T>() == size_of::<*const ()>())
            .then(|| Allocation::of(Layout::for_value(self), tracked))
    }
}

/// The vtables of a concrete type `T`.
pub(crate) struct VTables<T>(core::marker::PhantomData<T>);

impl<T: Trace + 'static> VTables<T> {
    const UNTRACKED: VTable = Self::vtable(false);
    const TRACKED: VTable = Self::vtable(true);

    /// The vtable for a `T` allocation, tracked or not.
    #[inline(always)]
    pub(crate) fn get(tracked: bool) -> &'static VTable {
        if tracked {
            &Self::TRACKED
        } else {
            &Self::UNTRACKED
        }
    }

    const fn vtable(tracked: bool) -> VTable {
        let Allocation {
            layout,
            header_offset,
        } = Allocation::of(Layout::new::<GcBox<T>>(), tracked);
        VTable {
            trace: trace_value::<T>,
            finalize: finalize_value::<T>,
            drop_value: drop_value::<T>,
            type_name: core::any::type_name::<T>,
            type_id: core::any::TypeId::of::<T>,
            layout,
            element: None,
            header_offset,
            value_offset: core::mem::offset_of!(GcBox<T>, value),
        }
    }
}

/// # Safety
/// `header` heads a live `GcBox<T>` whose value has not been dropped.
unsafe fn trace_value<T: Trace>(header: NonNull<Header>, tracer: &mut Tracer) {
    // SAFETY: per the function's contract.
    unsafe { (*header.cast::<GcBox<T>>().as_ptr()).value.trace(tracer) }
}

/// # Safety
/// As `trace_value`.
unsafe fn finalize_value<T: Trace>(header: NonNull<Header>) {
    // SAFETY: per the function's contract.
    unsafe { (*header.cast::<GcBox<T>>().as_ptr()).value.__finalize() }
}

/// # Safety
/// As `trace_value`; the value is dropped in place and must not be used
/// again.
unsafe fn drop_value<T: Trace>(header: NonNull<Header>) {
    // SAFETY: per the function's contract.
    unsafe {
        ptr::drop_in_place(ptr::addr_of_mut!(
            (*header.cast::<GcBox<T>>().as_ptr()).value
        ))
    }
}

/// The layout of a slice allocation of `len` elements.
pub(crate) fn slice_layout(vtable: &VTable, element: Layout, len: usize) -> Layout {
    let size = element
        .size()
        .checked_mul(len)
        .and_then(|data| data.checked_add(vtable.layout.size()))
        .expect("gcptr: slice too large to allocate");
    Layout::from_size_align(size, vtable.layout.align())
        .expect("gcptr: slice too large to allocate")
        .pad_to_align()
}

/// The vtables of `[T]` (and of `str`, which is `[u8]` for the collector).
pub(crate) struct SliceVTables<T>(core::marker::PhantomData<T>);

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

const fn round_up(n: usize, align: usize) -> usize {
    (n + align - 1) & !(align - 1)
}

impl<T: Trace + 'static> SliceVTables<T> {
    const UNTRACKED: VTable = Self::vtable(
        false,
        core::any::type_name::<[T]>,
        core::any::TypeId::of::<[T]>,
    );
    const TRACKED: VTable = Self::vtable(
        true,
        core::any::type_name::<[T]>,
        core::any::TypeId::of::<[T]>,
    );

    /// The vtable for a `[T]` allocation, tracked or not.
    pub(crate) fn get(tracked: bool) -> &'static VTable {
        if tracked {
            &Self::TRACKED
        } else {
            &Self::UNTRACKED
        }
    }

    const fn vtable(
        tracked: bool,
        type_name: fn() -> &'static str,
        type_id: fn() -> core::any::TypeId,
    ) -> VTable {
        let align = max(align_of::<Header>(), align_of::<T>());
        let prefix = size_of::<usize>() + if tracked { LINKS_SIZE } else { 0 };
        let header_offset = round_up(prefix, align);
        let value_offset = round_up(size_of::<Header>(), align_of::<T>());
        let layout = match Layout::from_size_align(header_offset + value_offset, align) {
            Ok(layout) => layout,
            Err(_) => panic!("gcptr: element too large to allocate"),
        };
        VTable {
            trace: trace_slice::<T>,
            finalize: finalize_nothing,
            drop_value: drop_slice::<T>,
            type_name,
            type_id,
            layout,
            element: Some(Layout::new::<T>()),
            header_offset,
            value_offset,
        }
    }
}

impl SliceVTables<u8> {
    const STR: VTable = Self::vtable(
        false,
        core::any::type_name::<str>,
        core::any::TypeId::of::<str>,
    );

    /// The vtable for a `str` allocation.
    pub(crate) fn str() -> &'static VTable {
        &Self::STR
    }
}

/// The elements of a slice allocation.
fn slice_elements<T>(header: NonNull<Header>) -> *mut [T] {
    // SAFETY: `header` heads a live slice allocation: the elements start
    // `value_offset` bytes after the header.
    let data = unsafe { header.byte_add(header.as_ref().vtable().value_offset) };
    ptr::slice_from_raw_parts_mut(data.cast::<T>().as_ptr(), Header::slice_len(header))
}

/// # Safety
/// `header` heads a live `[T]` allocation whose elements are alive.
unsafe fn trace_slice<T: Trace>(header: NonNull<Header>, tracer: &mut Tracer) {
    // SAFETY: per the function's contract.
    unsafe { (*slice_elements::<T>(header)).trace(tracer) }
}

/// # Safety
/// As `trace_slice`; the elements are dropped and must not be used again.
unsafe fn drop_slice<T>(header: NonNull<Header>) {
    // SAFETY: per the function's contract.
    unsafe { ptr::drop_in_place(slice_elements::<T>(header)) }
}

/// Slices have no finalizer.
unsafe fn finalize_nothing(_: NonNull<Header>) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_sixteen_bytes_and_links_sixteen_more() {
        assert_eq!(size_of::<Header>(), 16);
        assert_eq!(size_of::<Links>(), 16);
        assert_eq!(VTables::<u64>::get(false).layout.size(), 24);
        assert_eq!(VTables::<Vec<u64>>::get(true).layout.size(), 32 + 24);
    }

    #[repr(align(64))]
    struct Wide(#[allow(dead_code)] u8);
    // SAFETY: `Wide` owns no Gc.
    unsafe impl Trace for Wide {
        fn trace(&self, _: &mut Tracer) {}
    }

    #[test]
    fn over_aligned_values_keep_links_just_before_the_header() {
        let vt = VTables::<Wide>::get(true);
        assert_eq!(vt.header_offset, 64);
        assert_eq!(vt.layout.align(), 64);
        assert_eq!(vt.value_offset, 64);
    }

    /// The constants a drop frees with are the vtable's layout, for every
    /// shape of value, tracked or not.
    #[test]
    fn known_allocations_agree_with_the_vtables() {
        fn check<T: Trace + 'static>(value: T) {
            let object = GcBox {
                header: Header::new(VTables::<T>::get(false), 0, false),
                value,
            };
            for tracked in [false, true] {
                let vt = VTables::<T>::get(tracked);
                // SAFETY: the result is only compared, never used to free.
                let known = unsafe { object.known_allocation(tracked) }.expect("a sized value");
                assert_eq!(
                    (known.layout, known.header_offset),
                    (vt.layout, vt.header_offset),
                    "{}, tracked: {tracked}",
                    core::any::type_name::<T>()
                );
            }
        }
        check(());
        check(7u8);
        check(7u64);
        check([1u64; 5]);
        check(vec![1u64]);
        check(Wide(1));
        let array = GcBox {
            header: Header::new(VTables::<u64>::get(false), 0, false),
            value: [1u64, 2, 3],
        };
        let slice: &GcBox<[u64]> = &array;
        // SAFETY: as above.
        assert!(unsafe { slice.known_allocation(false) }.is_none());
    }

    /// Every strong count below 2^32 works, and every weak count below
    /// 2^26 (the weak word's top bits are flags), for quiet objects and
    /// others alike (not only counts a small counter would allow). The
    /// counts are set directly: 4 billion clones would take seconds.
    #[test]
    fn every_count_below_the_limits_works() {
        fn check<T: crate::Trace + 'static>(value: T, quiet: bool) {
            let max_strong = u32::MAX as usize;
            let max_weak = WEAK_COUNT as usize;
            let gc = crate::Gc::new(value);
            assert_eq!(gc.header_ref().is_quiet(), quiet);
            gc.header_ref().set_strong(max_strong - 1);
            let last = gc.clone();
            assert_eq!(crate::Gc::strong_count(&gc), max_strong);
            drop(last);
            assert_eq!(crate::Gc::strong_count(&gc), max_strong - 1);
            gc.header_ref().set_strong(1);

            let weak = crate::Gc::downgrade(&gc);
            gc.header_ref().set_weak(max_weak - 1);
            let last = weak.clone();
            assert_eq!(crate::Gc::weak_count(&gc), max_weak - 1);
            drop(last);
            gc.header_ref().set_weak(2);
            drop(weak);
            assert_eq!(crate::Gc::weak_count(&gc), 0);
            assert!(gc.header_ref().is_quiet() || !quiet);
        }
        check(5u64, true);
        check(core::cell::RefCell::new(None::<crate::Gc<u64>>), false);
        check(String::from("a drop of its own"), true);
    }

    /// A count that would wrap aborts the process, as `Rc`'s does: a
    /// wrapped count would free a live object. Run in a child process,
    /// which must die of `SIGABRT`.
    #[test]
    #[cfg_attr(miri, ignore = "spawns a process")]
    fn a_count_that_would_wrap_aborts_the_process() {
        const CHILD: &str = "GCPTR_TEST_WRAP_COUNT";
        if let Some(count) = std::env::var_os(CHILD) {
            let gc = crate::Gc::new(5u64);
            let weak = crate::Gc::downgrade(&gc);
            if count == "strong" {
                gc.header_ref().set_strong(u32::MAX as usize);
                core::mem::forget(gc.clone());
            } else {
                gc.header_ref().set_weak(WEAK_COUNT as usize);
                core::mem::forget(weak.clone());
            }
            // Not aborted: the test passes, and the parent sees it.
            core::mem::forget((gc, weak));
            return;
        }
        for count in ["strong", "weak"] {
            let status = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "header::tests::a_count_that_would_wrap_aborts_the_process",
                    "--test-threads=1",
                ])
                .env(CHILD, count)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(
                !status.success(),
                "a {count} count wrapped without aborting"
            );
            #[cfg(unix)]
            {
                use std::os::unix::process::ExitStatusExt;
                assert_eq!(status.signal(), Some(6), "{count}: not SIGABRT: {status}");
            }
        }
    }

    #[test]
    fn flags_live_beside_the_vtable_pointer() {
        let vt = VTables::<u64>::get(false);
        let header = Header::new(vt, flags::FINALIZED, false);
        header.set(flags::DEAD);
        assert!(header.has(flags::DEAD) && header.has(flags::FINALIZED));
        assert!(!header.has(flags::TRACKED));
        assert!(ptr::eq(header.vtable(), vt));
        assert!(!header.is_upgradable());
    }

    #[test]
    fn analysis_scratch_round_trips() {
        let links = Links::new();
        let this = NonNull::from(&links);
        links.begin_analysis(3);
        assert_eq!(links.mark(), Mark::InSet { reachable: false });
        assert!(!links.strong_changed_in_analysis(3));
        assert!(links.strong_changed_in_analysis(2));
        assert!(links.strong_changed_in_analysis(4));
        assert!(!links.decrement_refs());
        assert_eq!(links.refs(), 2);
        assert!(!links.decrement_refs());
        assert!(links.decrement_refs());
        assert_eq!(links.refs(), 0);
        links.set_mark_reachable();
        assert_eq!(links.mark(), Mark::InSet { reachable: true });
        assert!(!links.strong_changed_in_analysis(3));
        Links::link_to_self(this);
        assert_eq!(links.mark(), Mark::Outside);
        assert!(Links::is_empty(this));
    }
}

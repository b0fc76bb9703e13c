//! The per-thread collector state, and its life from first use to thread
//! exit.
//!
//! The state lives in thread-local memory of its own, which a const,
//! destructor-free thread-local points to once the state is made, so every
//! `Gc` operation can reach it, even from other thread-locals' destructors;
//! the thread's end frees that memory, whatever is left in it. Thread-locals
//! with a destructor (`ExitGuard`s) collect at thread exit. The first
//! collects the cycles the thread left behind. If objects survive, held by
//! thread-locals destroyed after it, it parks the state; if none do, it
//! drops it (keeping its thresholds, enabled state and stats in
//! `SETTINGS_LEFT`). Either way the next use of the state by a later
//! thread-local destructor (an object made, lost or dying, a setting
//! changed, a collection) arms the next guard, and brings the state back,
//! or makes a new one from what the last left. A question (`count`,
//! `threshold`, `is_enabled`, `stats`, `freeze_count`) is not a use: it reads
//! a parked state where it lies, or what a dropped one left, and arms
//! nothing ([`for_reading`]). When the guards run out, the last detaches
//! the surviving objects from the lists and drops the state. From then on
//! the pointer reads "gone", and `Gc`s still alive work as plain reference
//! counts.

use core::cell::{Cell, RefCell, UnsafeCell};
use core::mem::MaybeUninit;
use core::ptr::{self, NonNull};

use super::blocks::Blocks;
use crate::header::{Header, Links};

/// Figures for one generation, as `gcptr::stats()` returns them (Python's
/// `gc.get_stats()`).
///
/// # Examples
///
/// ```
/// let before = gcptr::stats()[2].collections;
/// gcptr::collect();
/// assert_eq!(gcptr::stats()[2].collections, before + 1);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GenerationStats {
    /// Collections of this generation so far, including the `skipped`
    /// ones.
    pub collections: usize,
    /// Automatic collections that skipped their analysis because no
    /// garbage could exist (see [`set_threshold`](crate::set_threshold)):
    /// their objects moved up a generation untraced. Not in CPython.
    pub skipped: usize,
    /// Objects these collections found unreachable and reclaimed.
    pub collected: usize,
    /// Objects these collections could not reclaim. Always 0: gcptr
    /// reclaims every garbage cycle, finalizers included (PEP 442).
    pub uncollectable: usize,
    /// Objects these collections found unreachable but that a finalizer
    /// resurrected (not counted in `collected`).
    pub resurrected: usize,
}

pub(crate) const GENERATIONS: usize = 3;

/// CPython's 25% rule as a shift: a full collection waits for a quarter of
/// the long-lived objects (`State::long_lived_shift`).
pub(crate) const LONG_LIVED_SHIFT: u32 = 2;

/// Added to `State::drop_depth` while an analysis is under way: past any
/// depth at which the trashcan queues deaths, so that one test tells a
/// death whether it must wait, for the stack of drops to unwind or for the
/// analysis to end.
pub(crate) const ANALYSIS_DEPTH: usize = 1 << (usize::BITS - 1);

pub(crate) struct State {
    /// Heads of the generation lists, youngest first. Generation 2's holds
    /// the objects that came into it since the last full collection; the
    /// others are in `old`. Both lists' objects are `OLD`, and no other.
    pub generations: [Links; GENERATIONS],
    /// Generation 2's objects that a full collection has seen.
    pub old: Links,
    /// The `OLD` objects that went `QUIET` since the last full collection
    /// began (they reported a lost reference while in generation 2, or
    /// before they moved into it), each `BUFFERED`, which keeps its memory.
    /// A full collection starts from those still old and quiet
    /// (`collector::take_roots`), and from the quiet ones of the young
    /// generations, which it walks (`Links::make_old`). A buffer rather
    /// than a list: reports come in any order, and a buffer's addresses can
    /// be fetched ahead, where a list's walk waits on each miss in turn.
    pub reporters: RefCell<Vec<NonNull<Header>>>,
    /// The reporters outgrew their buffer (`State::are_many_reporters`):
    /// it was emptied, reporters stay unbuffered, and the next full
    /// collection analyses everything instead (`cycle::Extent`).
    pub reporters_overflowed: Cell<bool>,
    /// How many objects are `OLD`: generation 2's count without walking
    /// it, kept exact by every move up, death, `Gc::get_mut` and `freeze`.
    pub old_count: Cell<usize>,
    /// Head of the list of frozen objects (`gcptr::freeze`).
    pub permanent: Links,
    /// Python's `gc.get_count()`: allocations minus deallocations of
    /// tracked objects for generation 0; for older ones, collections of the
    /// next younger generation since this one was last collected.
    pub counts: [Cell<usize>; GENERATIONS],
    pub thresholds: [Cell<usize>; GENERATIONS],
    pub enabled: Cell<bool>,
    /// A collection is under way; nested ones do nothing.
    pub collecting: Cell<bool>,
    /// Objects in generation 2 after the last full collection, and those
    /// promoted into it since (CPython's 25% rule).
    pub long_lived_total: Cell<usize>,
    pub long_lived_pending: Cell<usize>,
    /// The next automatic full collection waits until `long_lived_pending`
    /// reaches `long_lived_total >> long_lived_shift`: 2 (CPython's 25%),
    /// one less (50%, then 100%) after each automatic full collection that
    /// found no garbage, 2 again after one that found some
    /// (`collector::collect_automatically`) and at every call to
    /// `gcptr::collect()`.
    pub long_lived_shift: Cell<u32>,
    /// Generation 0's growth (its count at each collection) since the last
    /// full collection began, and how many objects that collection
    /// analysed and found alive: a full collection of what the reporters
    /// reach follows a young one once the growth is twice that
    /// (`collector::reach_into_older`).
    pub grown_since_full: Cell<usize>,
    pub full_survivors: Cell<usize>,
    /// A young collection moved up a `QUIET` object that it found held
    /// from outside its set: a member, perhaps, of garbage that spans
    /// generations (`collector::reach_into_older`).
    pub quiet_survived: Cell<bool>,
    pub stats: [Cell<GenerationStats>; GENERATIONS],
    /// Nesting of drops in progress (see `death.rs`), plus
    /// [`ANALYSIS_DEPTH`] while an analysis is under way.
    pub drop_depth: Cell<usize>,
    /// Objects whose strong count reached zero and whose death waits: for
    /// the stack of drops to unwind, or for an analysis to end. A `Cell`
    /// reached only through `defer`, `next_deferred` and
    /// `deferred_is_empty`, so that the last is one load, with no borrow
    /// flag to test.
    deferred: Cell<Vec<NonNull<Header>>>,
    /// The buffer a collection keeps its set in, kept between collections
    /// so that they do not allocate it anew.
    pub scratch: Cell<Vec<NonNull<Header>>>,
    /// The mark pass's stack of objects reached, kept too: it must have
    /// room to spare when a trace pushes onto it (a trace calls no
    /// allocator of the program, `crate::spill`), and starting empty it
    /// would spill at once in every collection.
    pub mark_stack: Cell<Vec<NonNull<Header>>>,
    /// Live `WeakWithCallback`s: while there are none, a collection skips
    /// looking for them in its garbage.
    pub callback_weaks: Cell<usize>,
    /// Something began to watch an object that the gathering pass under
    /// way condemned in advance (a hand-written trace can: the object
    /// still upgrades). The pass read whether its set needs events as it
    /// took each object in, so that answer may be stale: no set is dropped
    /// early, and the garbage is looked at again before its drops
    /// (`cycle::collect_locked`). Cleared as each collection begins.
    pub watched_in_analysis: Cell<bool>,
    /// How many finalizers deaths by count have run (`death::die`): a
    /// collection that sees it change knows that a finalizer may have
    /// resurrected some of its garbage, and looks at it again
    /// (`cycle::finalize_and_recheck`).
    pub finalized_by_count: Cell<usize>,
    /// Whether garbage may have come to be since the last full collection
    /// began: some tracked object lost a strong reference and kept others
    /// (`collector::lost_reference`). Until then, automatic collections
    /// find nothing, and skip the analysis.
    pub garbage_possible: Cell<bool>,
    /// Whether a young generation may hold a `QUIET` object, one that
    /// reported a lost reference since it was made (young objects are
    /// never analysed by a full collection, which moves them all up).
    /// `[0]`: some young object went quiet since generation 0 was last
    /// collected, wherever it is now. `[1]`: generation 1 may hold one.
    /// Each garbage set has a quiet member (`collector::lost_reference`),
    /// so a young collection with neither flag of its generations set
    /// could find nothing, and skips its analysis; this happens while a
    /// program builds a structure after it dropped garbage elsewhere.
    /// (Losses of objects in generation 1 set `[0]` too: which young
    /// generation an object is in is not recorded.)
    pub young_quiet: [Cell<bool>; 2],
    /// The next full collection analyses every object, not only what the
    /// `QUIET` ones reach (`cycle::Extent`): garbage may exist with no
    /// quiet member, since objects were unfrozen (they missed the full
    /// collections meanwhile) or a trace panicked (an analysis made loud
    /// the members of garbage that it kept).
    pub analyse_everything: Cell<bool>,
    /// Objects set aside by `Gc::get_mut` that lost a reference while a
    /// collection ran, when the lists must not change: each holds a unit
    /// of weak count (which also keeps `get_mut` from lending it out), and
    /// comes back into generation 0 when the collection ends
    /// (`collector::relink_returning`).
    pub returning: RefCell<Vec<NonNull<Header>>>,
    /// Freed objects' memory, kept for new ones.
    pub blocks: Blocks,
}

impl State {
    fn new() -> State {
        State {
            generations: [Links::new(), Links::new(), Links::new()],
            old: Links::new(),
            reporters: RefCell::new(Vec::new()),
            reporters_overflowed: Cell::new(false),
            old_count: Cell::new(0),
            permanent: Links::new(),
            counts: Default::default(),
            thresholds: [Cell::new(700), Cell::new(10), Cell::new(10)],
            enabled: Cell::new(true),
            collecting: Cell::new(false),
            long_lived_total: Cell::new(0),
            long_lived_pending: Cell::new(0),
            long_lived_shift: Cell::new(LONG_LIVED_SHIFT),
            grown_since_full: Cell::new(0),
            full_survivors: Cell::new(0),
            quiet_survived: Cell::new(false),
            stats: Default::default(),
            drop_depth: Cell::new(0),
            deferred: Cell::new(Vec::new()),
            scratch: Cell::new(Vec::new()),
            mark_stack: Cell::new(Vec::new()),
            callback_weaks: Cell::new(0),
            watched_in_analysis: Cell::new(false),
            finalized_by_count: Cell::new(0),
            garbage_possible: Cell::new(false),
            young_quiet: [Cell::new(false), Cell::new(false)],
            analyse_everything: Cell::new(false),
            returning: RefCell::new(Vec::new()),
            blocks: Blocks::new(),
        }
    }

    pub(crate) fn generation(&self, generation: usize) -> NonNull<Links> {
        NonNull::from(&self.generations[generation])
    }

    pub(crate) fn permanent(&self) -> NonNull<Links> {
        NonNull::from(&self.permanent)
    }

    pub(crate) fn old(&self) -> NonNull<Links> {
        NonNull::from(&self.old)
    }

    /// The heads of the lists that collections look at, youngest first.
    pub(crate) fn collected_lists(&self) -> [NonNull<Links>; GENERATIONS + 1] {
        [
            self.generation(0),
            self.generation(1),
            self.generation(2),
            self.old(),
        ]
    }

    /// Every list head, the permanent one last.
    pub(crate) fn lists(&self) -> [NonNull<Links>; GENERATIONS + 2] {
        let [a, b, c, d] = self.collected_lists();
        [a, b, c, d, self.permanent()]
    }

    pub(crate) fn add_stats(&self, generation: usize, f: impl FnOnce(&mut GenerationStats)) {
        let mut stats = self.stats[generation].get();
        f(&mut stats);
        self.stats[generation].set(stats);
    }

    /// Whether the set being analysed has scratch in its links: deaths
    /// wait in `deferred`, and nothing may be linked or unlinked.
    #[inline]
    pub(crate) fn is_analysing(&self) -> bool {
        self.drop_depth.get() >= ANALYSIS_DEPTH
    }

    /// Starts or ends an analysis (they never nest).
    pub(crate) fn set_analysing(&self, analysing: bool) {
        debug_assert_ne!(self.is_analysing(), analysing, "analyses never nest");
        let depth = self.drop_depth.get();
        self.drop_depth.set(if analysing {
            depth + ANALYSIS_DEPTH
        } else {
            depth - ANALYSIS_DEPTH
        });
    }

    // The death queue, `deferred`. Its `Cell` never lends its contents
    // out; these three methods alone reach inside, each for a span that
    // calls no code outside it (`defer` moves the queue out while `push`
    // may call the allocator), so no two references to the queue ever
    // overlap.

    /// Whether no death waits in `deferred`. Asked by every tracked death
    /// at depth zero.
    #[inline]
    pub(crate) fn deferred_is_empty(&self) -> bool {
        // SAFETY: no other reference to the queue exists (see above).
        unsafe { &*self.deferred.as_ptr() }.is_empty()
    }

    /// Takes the death queued last, if any.
    pub(crate) fn next_deferred(&self) -> Option<NonNull<Header>> {
        // SAFETY: no other reference to the queue exists (see above), and
        // `pop` calls nothing that could make one.
        unsafe { &mut *self.deferred.as_ptr() }.pop()
    }

    /// Queues the death of `header` (see `deferred`).
    pub(crate) fn defer(&self, header: NonNull<Header>) {
        let mut queue = self.deferred.take();
        queue.push(header);
        self.deferred.set(queue);
    }

    /// Whether a full collection would analyse only what the quiet
    /// objects reach (`cycle::Extent::Reported`), rather than everything:
    /// no reporter may be hidden or unbuffered, and no object is frozen
    /// (the gathering pass must not take one in).
    pub(crate) fn gathers(&self) -> bool {
        !self.analyse_everything.get()
            && !self.reporters_overflowed.get()
            && Links::is_empty(self.permanent())
    }

    /// Notes the lost reference that the tracked object at `header`
    /// reports, in its list (its `OLD` mark says which), as it goes `QUIET`
    /// (the caller's part): garbage is possible now. An old object goes in
    /// the reporters' buffer, where a full collection finds it.
    pub(crate) fn note_loss(&self, header: NonNull<Header>) {
        // SAFETY: callers pass an allocated object's header.
        if unsafe { header.as_ref() }.is_old() {
            self.garbage_possible.set(true);
            self.buffer_reporter(header);
        } else {
            self.note_young_quiet();
        }
    }

    /// Notes that a young object went `QUIET`: it may be in garbage.
    pub(crate) fn note_young_quiet(&self) {
        self.garbage_possible.set(true);
        self.young_quiet[0].set(true);
    }

    /// Whether an automatic collection of `generation` could find garbage:
    /// a loss was noted since the last full collection began, and, for a
    /// young collection, its generations may hold a quiet object
    /// (`young_quiet`).
    pub(crate) fn garbage_possible_in(&self, generation: usize) -> bool {
        self.garbage_possible.get()
            && self
                .young_quiet
                .get(..=generation)
                .is_none_or(|young| young.iter().any(Cell::get))
    }

    /// Moves `young_quiet` along as a collection of `generation` begins:
    /// its younger generations' objects move up into it, and all of its
    /// objects move out of it, survivors into the next one.
    pub(crate) fn young_quiet_move_up(&self, generation: usize) {
        let [gen0, gen1] = &self.young_quiet;
        if generation == 0 {
            gen1.set(gen1.get() | gen0.get());
        } else {
            gen1.set(false);
        }
        gen0.set(false);
    }

    /// Counts one fewer live tracked object (CPython decrements generation
    /// 0's count on every deallocation), and one fewer in generation 2 if
    /// it was `OLD` (whose mark it loses).
    pub(crate) fn note_death(&self, header: NonNull<Header>) {
        let count = &self.counts[0];
        count.set(count.get().saturating_sub(1));
        self.note_not_old(header);
    }

    /// Counts the object at `header` in generation 2, if it is not yet
    /// (and buffers it if it is quiet, as if it reported now).
    pub(crate) fn note_old(&self, header: NonNull<Header>) {
        // SAFETY: callers pass an allocated object's header.
        let h = unsafe { header.as_ref() };
        if !h.is_old() {
            h.set_old(true);
            self.old_count.set(self.old_count.get() + 1);
            if h.is_quiet() {
                self.buffer_reporter(header);
            }
        }
    }

    /// Whether `count` reporters are enough that a full collection should
    /// analyse everything rather than gather what they reach: a sixteenth
    /// of generation 2, and at least `REPORTERS_MIN`. Their reach is then
    /// likely much of the heap, and going through the lists in list order
    /// costs less per object than starting from each reporter in turn.
    pub(crate) fn are_many_reporters(&self, count: usize) -> bool {
        count >= (self.old_count.get() / 16).max(REPORTERS_MIN)
    }

    /// Puts the `OLD` object at `header`, which reported a lost reference,
    /// in the reporters' buffer, unless the buffer overflowed.
    pub(crate) fn buffer_reporter(&self, header: NonNull<Header>) {
        // SAFETY: callers pass an allocated object's header.
        let h = unsafe { header.as_ref() };
        if h.is_buffered() || self.reporters_overflowed.get() {
            return;
        }
        let mut reporters = self.reporters.borrow_mut();
        if !self.are_many_reporters(reporters.len()) {
            h.set_buffered(true);
            reporters.push(header);
        } else {
            drop(reporters);
            self.reporters_overflowed.set(true);
            super::take_reporters(self);
        }
    }

    /// The object at `header` leaves generation 2's count, if it is in it.
    #[inline]
    pub(crate) fn note_not_old(&self, header: NonNull<Header>) {
        // SAFETY: callers pass an allocated object's header.
        let h = unsafe { header.as_ref() };
        if h.is_old() {
            h.set_old(false);
            debug_assert!(self.old_count.get() > 0, "old count underflow");
            self.old_count.set(self.old_count.get() - 1);
        }
    }

    /// [`State::note_death`] for the object whose links are `links`, as it
    /// dies or leaves the collector's care, unless it is acyclic: acyclic
    /// objects were never counted.
    #[inline]
    pub(crate) fn note_leaving(&self, links: NonNull<Links>) {
        if !Links::is_acyclic(links) {
            self.note_death(Links::header(links));
        }
    }
}

/// The reporters' buffer never overflows below this length (see
/// `State::reporters_overflowed`). At 1024, one of the 32 full collections
/// of `rust-cc`'s stress test (about 1,000 reporters each, in a heap of
/// 12,000 to 32,000 objects) overflowed and analysed all 12,325 objects
/// where the others, gathering, analyse about 6,500 on average.
///
/// Under Miri, 128: the tests that overflow the buffer then interpret 16
/// times fewer objects (`tests/generations.rs` mirrors this value).
const REPORTERS_MIN: usize = if cfg!(miri) { 128 } else { 2048 };

/// `STATE` before the state exists (it is created on first use), and
/// while it is parked: between two of the thread's exit collections,
/// while objects the last one left alive wait for the thread-locals that
/// hold them to go. `PARKED_STATE` holds a parked state. (A marker of its
/// own in `STATE` would make the hot paths' test against the markers
/// costlier.)
const UNSET: *const State = ptr::null();
/// `STATE` after thread exit tore the state down.
const GONE: *const State = ptr::without_provenance(1);

thread_local! {
    static STATE: Cell<*const State> = const { Cell::new(UNSET) };
    /// The state's memory, which `STATE` points to while the state exists
    /// (or `PARKED_STATE`, while it is parked). A const thread-local whose
    /// type has no drop glue registers no destructor: it stays usable from
    /// every other thread-local's destructor, and the thread's end frees it
    /// with the rest of its thread-local memory. So a state that waits for
    /// a destructor that never comes (objects leaked, or held by a
    /// thread-local never destroyed) is not leaked with them. The objects
    /// still linked to its list heads are never reached again: no `Gc`
    /// leaves its thread.
    static STORAGE: UnsafeCell<MaybeUninit<State>> =
        const { UnsafeCell::new(MaybeUninit::uninit()) };
    static PARKED_STATE: Cell<*const State> = const { Cell::new(UNSET) };
    /// How many exit guards the thread has armed: the index of the next.
    static GUARDS_ARMED: Cell<usize> = const { Cell::new(0) };
    /// `State::callback_weaks` of a state that an exit guard dropped while
    /// `WeakWithCallback`s lived (held outside any tracked object), for the
    /// next state to start from: they may die in its garbage, whose
    /// collection must then look for them.
    static CALLBACK_WEAKS_LEFT: Cell<usize> = const { Cell::new(0) };
    /// The settings and figures of a state that an exit guard dropped
    /// while guards were left, for the next state to start from: a
    /// thread's `disable`, `set_threshold` and `stats` hold in its later
    /// thread-local destructors too, as they do when the state is parked.
    static SETTINGS_LEFT: Cell<Option<Settings>> = const { Cell::new(None) };
}

/// What the public functions set or report of a state, that no object
/// depends on (`SETTINGS_LEFT`).
#[derive(Clone, Copy)]
pub(crate) struct Settings {
    pub thresholds: [usize; GENERATIONS],
    pub enabled: bool,
    pub stats: [GenerationStats; GENERATIONS],
}

/// The calling thread's collector state, or `None` once thread exit has
/// used up its guards (`ExitGuard`).
///
/// The reference is valid until the thread's armed `ExitGuard` runs, which
/// happens after all of the thread's other code, apart from other
/// thread-locals' destructors (those find the state parked, dropped and
/// unset, or gone). Nothing holds it across that point: a guard runs only
/// between two thread-local destructors, never inside code of this crate.
#[inline]
pub(crate) fn current() -> Option<&'static State> {
    let state = STATE.with(Cell::get);
    if state.addr() > GONE.addr() {
        // SAFETY: a pointer other than the markers points to `STORAGE`,
        // where `create` made the state, which only `tear_down` drops, and
        // it changes `STATE` first.
        Some(unsafe { &*state })
    } else if state == UNSET {
        create()
    } else {
        None
    }
}

/// The calling thread's collector state if it exists: as [`current`],
/// without creating it, and `None` while it is parked. Any tracked
/// object's thread has created it. A path on which a parked state must
/// wake (one that may make garbage) calls [`current`], or [`unparked`]
/// after this.
#[inline(always)]
pub(crate) fn current_if_created() -> Option<&'static State> {
    let state = STATE.with(Cell::get);
    // SAFETY: as in `current`.
    (state.addr() > GONE.addr()).then(|| unsafe { &*state })
}

/// What the read-only functions (`count`, `threshold`, `is_enabled`,
/// `stats`, `freeze_count`) answer from.
pub(crate) enum Reading {
    /// A state in use, or parked: read, not woken.
    State(&'static State),
    /// The settings and figures that a state dropped at thread exit left
    /// for the next (`SETTINGS_LEFT`); it had no objects.
    Left(Settings),
    /// The collector is gone for good.
    Gone,
}

/// The calling thread's state for a function that only reads it: as
/// [`current`], but a parked state is read where it lies, and a state
/// dropped at thread exit is answered for by what it left. Neither is made
/// or woken, which would spend one of the thread's exit guards on a
/// question (a destructor that asks `gcptr::count()` would otherwise leave
/// one guard fewer for those that make garbage).
pub(crate) fn for_reading() -> Reading {
    if let Some(st) = current_if_created() {
        return Reading::State(st);
    }
    let parked = PARKED_STATE.with(Cell::get);
    if !parked.is_null() {
        // A parked state lies in `STORAGE`, which never moves and is freed
        // only with the thread; only `unpark` leads to its `tear_down`, and
        // the five readers never reach it: they copy figures out, or walk
        // the permanent list (which `park` left linked), and run no other
        // code while they hold the reference.
        // SAFETY: a live state from `create`, stored by `park`, which stays
        // alive while the reader holds it (see above).
        return Reading::State(unsafe { &*parked });
    }
    if STATE.with(Cell::get) == UNSET {
        // Copied, not taken: the next state made starts from it.
        if let Some(left) = SETTINGS_LEFT.with(Cell::get) {
            return Reading::Left(left);
        }
    }
    current().map_or(Reading::Gone, Reading::State)
}

/// The state for a lost reference when [`current_if_created`] found none:
/// the parked state, brought back ([`unpark`]); or, for an object that
/// `Gc::get_mut` set aside (`set_aside`), a new state while exit guards
/// are left ([`current`]): in no list, the object was no survivor to the
/// exit guard that dropped the state, and its loss may close a cycle that
/// only a collector would reclaim. `None` otherwise. Out of line, so that
/// the paths that call it after [`current_if_created`] stay as small as
/// they were.
#[cold]
#[inline(never)]
pub(crate) fn unparked(set_aside: bool) -> Option<&'static State> {
    if !PARKED_STATE.with(Cell::get).is_null() {
        unpark()
    } else if set_aside {
        current()
    } else {
        None
    }
}

/// [`current`] with `STATE` unset: brings a parked state back, or creates
/// the state.
#[cold]
#[inline(never)]
fn create() -> Option<&'static State> {
    if !PARKED_STATE.with(Cell::get).is_null() {
        return unpark();
    }
    // Registering a guard fails once the thread's destructors have run,
    // or when all have run: a `Gc` created that late is never tracked.
    if !arm_next_exit_guard() {
        STATE.with(|s| s.set(GONE));
        return None;
    }
    // Keep the raw pointer (not one derived from a shared reference):
    // `tear_down` drops the state through it.
    let raw: *mut State = STORAGE.with(|storage| storage.get().cast());
    // SAFETY: `STORAGE` is this thread's, and holds no state: none was made
    // yet, or `tear_down` dropped the last (`STATE` is unset, and nothing
    // is parked). No reference to it is alive.
    unsafe { raw.write(State::new()) };
    // SAFETY: just made; dropped only by `tear_down`.
    let state: &'static State = unsafe { &*raw };
    for head in state.lists() {
        Links::link_to_self(head);
    }
    state
        .callback_weaks
        .set(CALLBACK_WEAKS_LEFT.with(Cell::take));
    if let Some(left) = SETTINGS_LEFT.with(Cell::take) {
        for (cell, value) in state.thresholds.iter().zip(left.thresholds) {
            cell.set(value);
        }
        state.enabled.set(left.enabled);
        for (cell, value) in state.stats.iter().zip(left.stats) {
            cell.set(value);
        }
    }
    if GUARDS_ARMED.with(Cell::get) > 1 {
        // Made during thread exit, perhaps by a destructor that runs after
        // the thread-local ones (a pthread key's), whose guard never runs:
        // it keeps no freed blocks, as a parked state (`park`).
        state.blocks.stop_keeping();
    }
    STATE.with(|s| s.set(raw));
    Some(state)
}

/// Thread exit: one of the thread's exit collections.
///
/// Thread-locals are destroyed in the reverse order of their first use,
/// so the ones first used before the thread's first tracked `Gc` are
/// destroyed after the first guard has run, and may hold objects it found
/// alive, let go of cycles, or make new ones. So a guard that leaves
/// objects alive parks the state rather than tearing it down, and one that
/// tears it down leaves `STATE` unset rather than gone. The first use of
/// the state after that (a lost reference, a death, a new object) arms
/// the next guard and brings the state back, or makes a new one:
/// registered from inside the destructor that uses it, that guard runs as
/// soon as the destructor returns, and collects what it let go.
/// Thread-locals hold few objects as a rule; a thread that uses up the
/// guards (more than `EXIT_GUARDS - 1` destructors that use gcptr late)
/// gets the teardown of before: its survivors become plain
/// reference-counted objects, and so do the objects made afterwards.
struct ExitGuard;

/// Declares the exit guards, each its own thread-local (each registers
/// its own destructor), and `arm_exit_guard`.
macro_rules! exit_guards {
    ($($round:literal => $guard:ident),* $(,)?) => {
        thread_local! {
            $(static $guard: ExitGuard = const { ExitGuard };)*
        }

        const EXIT_GUARDS: usize = [$($round),*].len();

        /// Registers the destructor of the exit guard of `round`; false if
        /// there is no such guard, or its destructor has already run.
        fn arm_exit_guard(round: usize) -> bool {
            match round {
                $($round => $guard.try_with(|_| ()).is_ok(),)*
                _ => false,
            }
        }
    };
}

/// Arms the thread's next exit guard; false if none is left, or it cannot
/// be registered any more.
fn arm_next_exit_guard() -> bool {
    let round = GUARDS_ARMED.with(Cell::get);
    let armed = arm_exit_guard(round);
    if armed {
        GUARDS_ARMED.with(|g| g.set(round + 1));
    }
    armed
}

/// Whether an exit guard is left to arm.
fn exit_guards_left() -> bool {
    GUARDS_ARMED.with(Cell::get) < EXIT_GUARDS
}

exit_guards! {
    0 => EXIT_GUARD_0, 1 => EXIT_GUARD_1, 2 => EXIT_GUARD_2, 3 => EXIT_GUARD_3,
    4 => EXIT_GUARD_4, 5 => EXIT_GUARD_5, 6 => EXIT_GUARD_6, 7 => EXIT_GUARD_7,
    8 => EXIT_GUARD_8, 9 => EXIT_GUARD_9, 10 => EXIT_GUARD_10, 11 => EXIT_GUARD_11,
    12 => EXIT_GUARD_12, 13 => EXIT_GUARD_13, 14 => EXIT_GUARD_14, 15 => EXIT_GUARD_15,
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let state = STATE.with(Cell::get);
        if state.addr() <= GONE.addr() {
            return;
        }
        // SAFETY: as in `current`; it is dropped only by `tear_down`.
        let st = unsafe { &*state };
        collect_at_exit(st);
        let survivors = st.lists().into_iter().any(|head| !Links::is_empty(head));
        if survivors && exit_guards_left() {
            park(state, st);
        } else {
            // A later destructor may make objects: a new state tracks them,
            // while guards are left.
            let after = if exit_guards_left() { UNSET } else { GONE };
            // SAFETY: from `create`, not parked; this thread runs nothing
            // else now.
            unsafe { tear_down(state, after) };
        }
    }
}

/// Reclaims the cycles that the thread leaves behind, again while a
/// collection leaves new garbage possible: a `Drop` or finalizer it ran
/// lost a reference (even one that resurrected everything, or panicked).
/// Rounds that reclaim or resurrect something go on however many it
/// takes (finalizers that each make new garbage with a finalizer: each
/// runs once, so only new objects keep the rounds coming); eight rounds in
/// a row that reclaim nothing end it (a trace that panics every time). A
/// panic escaping here would abort the process: it is reported (by the
/// panic hook) and dropped.
fn collect_at_exit(st: &State) {
    let mut fruitless = 0;
    while fruitless < 8 {
        // Frozen objects too: a thread's garbage is reclaimed when it
        // exits, whatever `freeze` said, even a `freeze` called by a `Drop`
        // that the round before ran once its collection was over.
        if !Links::is_empty(st.permanent()) {
            super::thaw(st);
        }
        let before = reclaimed_so_far(st);
        // What other threads sent home (`crate::sync`) may be garbage now.
        let mut panicked = None;
        crate::sync::release_returned_catching(&mut panicked);
        let collected = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            super::cycle::collect(st, 2, super::cycle::Extent::Everything)
        }));
        if let Err(payload) = collected {
            super::panics::keep_first(&mut panicked, payload);
        }
        super::death::run_deferred_catching(st, &mut panicked);
        if let Some(payload) = panicked {
            super::panics::drop_payload(payload);
        }
        if !st.garbage_possible.get() {
            break;
        }
        fruitless = if reclaimed_so_far(st) > before {
            0
        } else {
            fruitless + 1
        };
    }
    super::take_reporters(st);
}

/// The objects that full collections have reclaimed or seen resurrected.
fn reclaimed_so_far(st: &State) -> usize {
    let stats = st.stats[GENERATIONS - 1].get();
    stats.collected + stats.resurrected
}

/// Leaves the state for a later thread-local destructor to bring back
/// ([`unpark`]). Every survivor is made loud, so that its next lost
/// reference reaches the state (a `Drop` that ran after the last
/// collection may have quieted it), and the memory the state only keeps
/// for speed goes back to the allocator: if no destructor wakes it, the
/// thread's end frees its memory (`STORAGE`), and nothing is leaked but
/// the objects that were. `state` is `st`'s raw pointer from `create`.
fn park(state: *const State, st: &State) {
    for head in st.lists() {
        for header in Links::headers(head) {
            // SAFETY: listed, so allocated.
            unsafe { header.as_ref() }.set_quiet(false);
        }
    }
    st.garbage_possible.set(false);
    // For good: a state woken by a destructor that runs after the
    // thread-local destructors (a pthread key's, on glibc) arms a guard
    // that never runs, and would keep every block freed after.
    st.blocks.stop_keeping();
    drop(st.scratch.take());
    drop(st.mark_stack.take());
    // The queues' buffers too, which `collect_at_exit` left empty (it ran
    // the deaths and let go of the reporters), kept with up to 4096
    // entries' room (`give_back_reporters`). Each is given back as it was
    // should an entry be left.
    let deferred = st.deferred.take();
    if deferred.is_empty() {
        drop(deferred);
    } else {
        st.deferred.set(deferred);
    }
    for queue in [&st.reporters, &st.returning] {
        let mut queue = queue.borrow_mut();
        if queue.is_empty() {
            *queue = Vec::new();
        }
    }
    // The raw pointer from `create`, through which `tear_down` may drop
    // the state.
    PARKED_STATE.with(|s| s.set(state));
    STATE.with(|s| s.set(UNSET));
}

/// Brings a parked state back, arming the next exit guard to collect once
/// the thread-local destructor that asked for it returns; tears it down if
/// that guard cannot be armed.
#[cold]
#[inline(never)]
fn unpark() -> Option<&'static State> {
    let state = PARKED_STATE.with(|s| s.replace(UNSET));
    // SAFETY: `park` stored a live state from `create`, which only
    // `tear_down` drops.
    let st = unsafe { &*state };
    if arm_next_exit_guard() {
        STATE.with(|s| s.set(state));
        Some(st)
    } else {
        // SAFETY: from `create`, parked until now: no collection is under
        // way, and the caller asked for the state before it touched any
        // list.
        unsafe { tear_down(state, GONE) };
        None
    }
}

/// Survivors (held by other thread-locals, or leaked) become plain
/// reference-counted objects in no list, the state is dropped (what it
/// keeps goes back to the allocator), and `STATE` becomes `after`: `UNSET`
/// (a later use makes a new state, in the same memory) or `GONE`.
///
/// # Safety
/// `state` came from `create`, is not parked, no collection is under way,
/// and no reference to it is used afterwards (`current`).
unsafe fn tear_down(state: *const State, after: *const State) {
    // SAFETY: per the contract.
    let st = unsafe { &*state };
    for head in st.lists() {
        for header in Links::headers(head) {
            if let Some(links) = Header::links(header) {
                Links::link_to_self(links);
            }
        }
    }
    if after == UNSET {
        CALLBACK_WEAKS_LEFT.with(|left| left.set(st.callback_weaks.get()));
        SETTINGS_LEFT.with(|left| {
            left.set(Some(Settings {
                thresholds: st.thresholds.each_ref().map(Cell::get),
                enabled: st.enabled.get(),
                stats: st.stats.each_ref().map(Cell::get),
            }));
        });
    }
    STATE.with(|s| s.set(after));
    // SAFETY: made by `create`, and dropped once: `STATE` no longer points
    // to it, nor `PARKED_STATE`, so no new reference to it can be made, and
    // none is alive (per the contract).
    unsafe { ptr::drop_in_place(state.cast_mut()) };
}

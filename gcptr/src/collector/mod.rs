//! The per-thread cycle collector and its public functions, named after
//! Python's `gc` module.
//!
//! Reading order: `state.rs` (where the collector lives, and how it ends
//! with its thread), `death.rs` (an object whose count reaches zero),
//! `cycle.rs` (a collection).

pub(crate) mod blocks;
mod cycle;
pub(crate) mod death;
pub(crate) mod panics;
pub(crate) mod state;

use core::alloc::Layout;
use core::ptr::NonNull;

pub use state::GenerationStats;
use state::{Reading, State, GENERATIONS};

use crate::header::{flags, Header, Links};

/// Memory for a new tracked object of `layout`: a block that the thread
/// kept from a freed object ([`blocks`]), or one from the global
/// allocator.
#[inline(always)]
pub(crate) fn allocate_tracked(layout: Layout) -> NonNull<u8> {
    if let Some(block) = state::current_if_created().and_then(|st| st.blocks.take(layout)) {
        return block;
    }
    // SAFETY: the layout has a non-zero size (it holds the header).
    let memory = unsafe { std::alloc::alloc(layout) };
    NonNull::new(memory).unwrap_or_else(|| std::alloc::handle_alloc_error(layout))
}

/// Whether the calling thread's collector is analysing a set: user code
/// runs then only in traces.
pub(crate) fn is_analysing() -> bool {
    state::current_if_created().is_some_and(State::is_analysing)
}

/// Links a new tracked object into generation 0, first running an
/// automatic collection if generation 0 is over its threshold (as CPython
/// does on allocation). With no collector (thread exit), the object is
/// linked to itself: reference counted, never collected.
///
/// `reachable` says whether user code may hold a `Weak` to the object
/// (one that the closure of `Gc::new_cyclic` kept). User code that ran
/// since, a collection here or the trace that tested the value for an
/// acyclic one, may have reached it through that `Weak`: a lost reference,
/// or an edge from a traced object, then brought it into generation 0 as
/// an object set aside. It must not be linked twice.
#[inline]
pub(crate) fn track_new(links: NonNull<Links>, reachable: bool) {
    // The common case first, apart: a state in use, and one test of it.
    match state::current_if_created() {
        Some(st) => track_in(st, links, reachable),
        None => track_new_without_state(links, reachable),
    }
}

/// [`track_new`] in a thread whose state is not in use: not created yet,
/// parked, or gone (thread exit).
#[cold]
#[inline(never)]
fn track_new_without_state(links: NonNull<Links>, reachable: bool) {
    match state::current() {
        Some(st) => track_in(st, links, reachable),
        None => Links::link_to_self(links),
    }
}

#[inline(always)]
fn track_in(st: &State, links: NonNull<Links>, reachable: bool) {
    let count = st.counts[0].get() + 1;
    st.counts[0].set(count);
    let collects = count > st.thresholds[0].get();
    if collects {
        collect_automatically(st);
    }
    if !(collects || reachable) || Links::is_set_aside(links) {
        Links::push_back(st.generation(0), links);
    }
}

/// Picks the oldest generation over its threshold, as CPython's
/// `gc_collect_generations`, with the 25% rule for full collections (50%
/// or 100% while they find nothing); after a young one, a full collection
/// of what the reporters reach, if it is due ([`reach_into_older`]).
#[cold]
#[inline(never)]
fn collect_automatically(st: &state::State) {
    if collects_automatically(st) {
        collect_after_returns(st, || collect_due(st));
    }
}

/// The collection of [`collect_automatically`].
fn collect_due(st: &state::State) {
    for generation in (0..GENERATIONS).rev() {
        if st.counts[generation].get() > st.thresholds[generation].get() {
            let full = generation == GENERATIONS - 1;
            // A full collection costs time in proportion to what the quiet
            // objects reach, up to everything alive; wait until enough new
            // objects survived to make that linear overall (CPython's
            // `long_lived_pending` rule), and longer while full collections
            // find nothing (see `set_threshold`): garbage that waits
            // meanwhile is at most as large as what is alive.
            if full
                && st.long_lived_pending.get()
                    < st.long_lived_total.get() >> st.long_lived_shift.get()
            {
                continue;
            }
            if st.garbage_possible_in(generation) {
                let found = cycle::collect(st, generation, cycle::Extent::Reported);
                if full {
                    let shift = st.long_lived_shift.get();
                    st.long_lived_shift.set(if found == 0 {
                        shift.saturating_sub(1)
                    } else {
                        state::LONG_LIVED_SHIFT
                    });
                }
            } else {
                cycle::promote(st, generation);
            }
            if !full {
                reach_into_older(st);
            }
            break;
        }
    }
}

/// Drops the values that other threads sent home ([`crate::sync`]), then
/// runs `collect`, which may find what they let go. A panic of such a drop
/// comes after the collection, as a collection's own panics do.
fn collect_after_returns<R: Default>(st: &State, collect: impl FnOnce() -> R) -> R {
    let mut first_panic = None;
    if !st.collecting.get() {
        crate::sync::release_returned_catching(&mut first_panic);
    }
    let Some(payload) = first_panic else {
        return collect();
    };
    let reclaimed =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(collect)).unwrap_or_else(|later| {
            panics::drop_payload(later);
            R::default()
        });
    panics::resume_unless_unwinding(payload);
    reclaimed
}

/// Whether an automatic collection may run now: automatic collection is
/// on, and no collection is under way.
fn collects_automatically(st: &state::State) -> bool {
    st.enabled.get() && st.thresholds[0].get() != 0 && !st.collecting.get()
}

/// Objects generation 0 must grow by, for each object the last full
/// collection found alive, before a full collection follows a young one
/// ([`reach_into_older`]).
const GROWTH_PER_SURVIVOR: usize = 2;

/// Follows a young collection with a full collection of what the
/// reporters reach, if garbage may have escaped the young one and the
/// growth since the last full collection has paid for it.
///
/// Garbage that spans generations waits for a full collection, and a
/// structure built across a few young collections spans them: a young
/// collection finds a quiet member of it held from an older generation,
/// and moves it up. Such a survivor, or a reporter in generation 2, may be
/// in garbage. A full collection that starts from the reporters costs what
/// they reach, not the heap (`cycle::Extent::Reported`), and what it finds
/// alive is work the growth must pay for: it comes once generation 0 has
/// grown by twice as many objects as the last full collection found
/// alive, so that it analyses at most one survivor for every two objects
/// of growth, whatever the reporters reach. (At one survivor for each
/// object of growth, rust-cc's large-list benchmark took 12% more
/// instructions; at one for every four, its garbage lists piled up again:
/// `benches/README.md`.)
///
/// While a full collection would analyse everything (a reporter may be
/// hidden, the reporters overflowed, or objects are frozen), none comes
/// early: the 25% rule alone schedules it.
fn reach_into_older(st: &state::State) {
    let escaped = st.quiet_survived.replace(false) || !st.reporters.borrow().is_empty();
    if escaped
        && collects_automatically(st)
        && st.gathers()
        && st.grown_since_full.get() >= GROWTH_PER_SURVIVOR * st.full_survivors.get()
    {
        cycle::collect(st, GENERATIONS - 1, cycle::Extent::Reported);
    }
}

/// Notes that the tracked object at `header` lost a strong reference and
/// kept others ([`Header::dec_strong`]).
///
/// This is the only way garbage comes to be. A set of objects becomes
/// garbage when the last reference into it from outside goes; that
/// reference was the handle each new object starts with, or one the set
/// had when a full collection found it reachable. A reference goes by being
/// dropped, which is such a loss unless it kills its object; or by being
/// moved into the set itself, which needs a path to the set that does not
/// borrow the reference being moved: another reference (whose drop is such
/// a loss) or a raw pointer (`Gc::as_ptr`, in `unsafe` code). So while no
/// loss has been noted since the last full collection began, automatic
/// collections skip their analysis: it would find nothing. And each
/// garbage set has a member that reported (it is `QUIET`) since a full
/// collection last analysed it, so full collections analyse only what
/// those reach (`cycle::Extent`), and a young collection none of whose
/// objects reported skips its analysis too (`State::young_quiet`). A cycle
/// closed through a raw pointer waits for thread exit, which analyses
/// everything.
///
/// An `OLD` object goes into `State::reporters` here, for the next full
/// collection to start from; a young one sets `State::young_quiet`. An
/// object that `Gc::get_mut` set aside comes back into generation 0: a
/// loss means another reference existed, so the `&mut` is gone.
#[cold]
#[inline(never)]
pub(crate) fn lost_reference(header: NonNull<Header>) {
    // SAFETY: the caller holds a strong reference to the object.
    let h = unsafe { header.as_ref() };
    let set_aside = Header::links(header)
        .filter(|&links| Links::is_set_aside(links))
        .filter(|_| !h.has(flags::DEAD));
    // A loss may make garbage: it wakes a parked state (thread exit), and
    // an object set aside brings a new one if the last was freed.
    if let Some(st) = state::current_if_created().or_else(|| state::unparked(set_aside.is_some())) {
        st.note_loss(header);
        if let Some(links) = set_aside {
            if st.collecting.get() {
                // The lists must not change now (and the collection's own
                // objects look set aside too): it comes back when the
                // collection ends.
                h.inc_weak();
                st.returning.borrow_mut().push(header);
            } else {
                Links::push_back(st.generation(0), links);
            }
        }
    }
    h.set_quiet(true);
}

/// Empties `State::reporters`, freeing each object that died meanwhile and
/// that only the buffer kept allocated.
pub(super) fn take_reporters(st: &State) {
    let_go_of_all(st, st.reporters.take());
}

/// Lets go of every object in `buffered` ([`let_go`]), then gives the
/// buffer back ([`give_back_reporters`]).
pub(super) fn let_go_of_all(st: &State, buffered: Vec<NonNull<Header>>) {
    for (i, &header) in buffered.iter().enumerate() {
        if let Some(&ahead) = buffered.get(i + PREFETCH_DISTANCE) {
            crate::header::prefetch(ahead.as_ptr());
        }
        // SAFETY: `BUFFERED` kept the memory of each buffered object, and
        // only this buffer holds it.
        unsafe { let_go(header) };
    }
    give_back_reporters(st, buffered);
}

/// Takes `State::reporters` for a full collection that starts from them:
/// keeps in it each object that is still a root ([`root_links`]), still
/// `BUFFERED`, and lets go of the others. The collection lets go of each
/// root as it takes it ([`take_root`]), and then gives the buffer back
/// ([`give_back_reporters`]).
pub(super) fn take_roots(st: &State) -> Vec<NonNull<Header>> {
    let mut reporters = st.reporters.take();
    let mut kept = 0;
    for i in 0..reporters.len() {
        if let Some(&ahead) = reporters.get(i + PREFETCH_DISTANCE) {
            crate::header::prefetch(ahead.as_ptr());
        }
        let header = reporters[i];
        // SAFETY: `BUFFERED` kept the memory of each buffered object.
        if unsafe { root_links(header) }.is_some() {
            reporters[kept] = header;
            kept += 1;
        } else {
            // SAFETY: as above.
            unsafe { let_go(header) };
        }
    }
    reporters.truncate(kept);
    reporters
}

/// Lets go of the object at `header`, a root that a full collection kept
/// waiting ([`take_roots`]); returns it if it is a root still, taken out
/// of its list and into the collection's set ([`Links::take_listed`]).
/// It may have died while it waited, or have been taken into the set by a
/// trace.
///
/// # Safety
/// The object is `BUFFERED`, and held by no buffer but the caller's.
pub(super) unsafe fn take_root(header: NonNull<Header>) -> Option<NonNull<Header>> {
    // SAFETY: `BUFFERED` keeps the memory (per the contract).
    let links = unsafe { root_links(header) };
    // SAFETY: as above. It frees only a dead object, never a root.
    unsafe { let_go(header) };
    links.map(Links::take_listed)
}

/// The links of the buffered object at `header` if it is a root for a
/// full collection: alive, `OLD`, `QUIET`, and in a list.
///
/// An object already in the set of the collection under way fails the
/// test: it is marked `DEAD` (provisionally), or, if its strong count was
/// zero, no longer `QUIET` (`Links::take_listed`). Its links, scratch
/// then, would pass for a list's.
///
/// # Safety
/// The object's memory is allocated (`BUFFERED` keeps it so).
unsafe fn root_links(header: NonNull<Header>) -> Option<NonNull<Links>> {
    // SAFETY: per the contract.
    let h = unsafe { header.as_ref() };
    // A dead object's links are stale: ask `DEAD` first.
    if h.weak() == 0 || h.has(flags::DEAD) || !h.is_old() || !h.is_quiet() {
        return None;
    }
    Header::links(header).filter(|&links| Links::is_listed(links))
}

/// Clears the `BUFFERED` mark of the object at `header`, and frees it if
/// it died while the mark alone kept its memory.
///
/// # Safety
/// The object is `BUFFERED`, and held by no buffer but the caller's.
unsafe fn let_go(header: NonNull<Header>) {
    // SAFETY: `BUFFERED` keeps the memory (per the contract).
    let h = unsafe { header.as_ref() };
    h.set_buffered(false);
    if h.weak() == 0 {
        // SAFETY: no reference of any kind is left, nor a buffer (per the
        // contract), and the value is gone (the strong references' unit
        // went with the last one).
        unsafe { death::free(header, None) };
    }
}

/// Puts an emptied reporters' buffer back for reuse, unless it grew large
/// or reports came in meanwhile.
pub(super) fn give_back_reporters(st: &State, mut reporters: Vec<NonNull<Header>>) {
    reporters.clear();
    if reporters.capacity() <= 4096 {
        let mut current = st.reporters.borrow_mut();
        if current.is_empty() {
            *current = reporters;
        }
    }
}

/// How far ahead of a walk over a buffer of objects to fetch.
const PREFETCH_DISTANCE: usize = 8;

/// Brings back the set-aside objects that lost a reference while the
/// collection that just ended ran (`State::returning`), and gives up the
/// weak units they hold.
pub(super) fn relink_returning(st: &State) {
    debug_assert!(!st.collecting.get());
    let returning = st.returning.take();
    for header in returning {
        // SAFETY: the unit of weak count queued with it keeps it allocated.
        let h = unsafe { header.as_ref() };
        // It may have died or be dying, or have been in the collection's
        // set, which put it back in a list. The unit kept `get_mut` from
        // setting it aside again (and lending a `&mut` that could still
        // live now).
        let alive = h.strong() != 0 && !h.has(flags::DEAD);
        let set_aside = Header::links(header).filter(|&links| Links::is_set_aside(links));
        if let Some(links) = set_aside.filter(|_| alive) {
            Links::push_back(st.generation(0), links);
        }
        // SAFETY: the unit queued with it is ours. This frees the memory
        // only if the strong references' share is gone too, which happens
        // only after the value was dropped or moved out.
        unsafe { death::release_weak(header) };
    }
}

/// The panic of [`untrack`] and [`set_aside`] called from a trace during
/// an analysis: it names what the program called, and what to do instead.
#[cold]
#[inline(never)]
#[track_caller]
fn called_from_a_trace(caller: &str, what: &str) -> ! {
    panic!(
        "gcptr: `{caller}` called from a `Trace` impl during a collection: it would \
         {what} while the collector reads the heap. `trace` must only visit the \
         value's `Gc`s (call `trace` on each field that owns one); call `{caller}` \
         outside `trace`, before or after the collection"
    )
}

/// Unlinks a tracked object that leaves the collector's care without
/// dying (its value is about to be moved out by `Gc::try_unwrap` or
/// `Gc::make_mut`). Panics, having changed nothing, if called from a trace
/// while an analysis runs: callers call it before anything else. `caller`
/// names the public function the program called, for the message, which
/// points at the program's line (`track_caller`).
#[track_caller]
pub(crate) fn untrack(header: NonNull<Header>, caller: &str) {
    if let Some(links) = Header::links(header) {
        if let Some(st) = state::current() {
            if st.is_analysing() {
                called_from_a_trace(caller, "move a value out of a `Gc`");
            }
            st.note_leaving(links);
        }
        Links::unlink(links);
    }
}

/// Takes a tracked object out of the collector's lists while
/// `Gc::get_mut` lends out its value: a collection must not trace a value
/// that is mutably borrowed. The object comes back (into generation 0) at
/// its next lost reference (`lost_reference`), or when an analysis sees a
/// reference to it from a traced object, which takes it into its set
/// (`Tracer::take_set_aside_objects`); neither can happen while the
/// `&mut` lives, since both need a second `Gc` (or the one lent from,
/// held by a traced value that shows no edges while mutably borrowed).
///
/// An acyclic object becomes tracked here for good, so it is counted as a
/// tracked allocation now: its death will be counted as a tracked one.
///
/// Panics, having changed nothing, if called from a trace while an
/// analysis runs (`caller` as for [`untrack`]).
#[track_caller]
pub(crate) fn set_aside(header: NonNull<Header>, caller: &str) {
    if let Some(links) = Header::links(header) {
        if let Some(st) = state::current() {
            if st.is_analysing() {
                called_from_a_trace(caller, "lend a `&mut` to a value in a `Gc`");
            }
            if Links::is_acyclic(links) {
                st.counts[0].set(st.counts[0].get() + 1);
            } else {
                // It comes back into generation 0.
                st.note_not_old(header);
            }
        }
        // Loud, so that it comes back at its next lost reference.
        // SAFETY: the caller holds the only strong reference.
        unsafe { header.as_ref() }.set_quiet(false);
        Links::unlink(links);
    }
}

/// Every tracked object in the collector's lists (none while an analysis
/// has the lists in pieces).
pub(crate) fn tracked_objects() -> Vec<NonNull<Header>> {
    match state::current().filter(|st| !st.is_analysing()) {
        Some(st) => st.lists().into_iter().flat_map(Links::headers).collect(),
        None => Vec::new(),
    }
}

/// Runs a full collection (Python's `gc.collect()`): finds every
/// unreachable reference cycle, finalizes it and frees it.
///
/// It analyses what the objects that lost a reference since a full
/// collection last looked at them reach: every garbage cycle has such an
/// object. The time it takes follows what changed since the last full
/// collection (those objects, and the young generations), not everything
/// alive. The one
/// exception is a cycle closed by `unsafe` code that moved an object's last
/// handle into the object through [`Gc::as_ptr`](crate::Gc::as_ptr), with no
/// reference lost: it is found when the thread exits, by a collection that
/// analyses everything. While objects are frozen ([`freeze`]), and for the
/// first full collection after [`unfreeze`], a full collection analyses
/// every object of the generations.
///
/// Returns the number of objects found unreachable and reclaimed. Objects
/// that a finalizer resurrected are not counted. A call made while a
/// collection is running (from a finalizer or a `Drop`) does nothing and
/// returns 0.
///
/// A full collection traces from one root at a time (an object that lost
/// a reference; or, when it goes through every object, as after
/// [`unfreeze`], the next in the lists), and drops a garbage structure
/// with no finalizer to run and nothing watching it as soon as it has
/// traced it, while the structure is in cache; the rest of the analysis
/// follows. Once it has met a live object, all it meets after is analysed
/// together and dropped at the end. So a `Drop` run early sees garbage
/// found later in the same collection still alive (its weak references
/// upgrade, as before any collection), and a reference it drops can leave
/// garbage that the same collection finds.
///
/// # Panics
///
/// If a finalizer, `Drop` or trace panicked during the collection, the
/// collection still completes, then the first panic is resumed. Unless the
/// thread is already panicking (a collection started by a `Drop` during
/// unwinding, or by an allocation there): a second panic would abort the
/// process, so the panic is dropped, as CPython ignores an exception in
/// `__del__` (the panic hook has reported it). That holds even inside a
/// `catch_unwind` run during the unwinding, which cannot be told apart.
///
/// # Examples
///
/// ```
/// use std::cell::RefCell;
/// use gcptr::{Gc, Trace};
///
/// #[derive(Trace)]
/// struct Node {
///     next: RefCell<Option<Gc<Node>>>,
/// }
///
/// let a = Gc::new(Node { next: RefCell::new(None) });
/// let b = Gc::new(Node { next: RefCell::new(Some(a.clone())) });
/// *a.next.borrow_mut() = Some(b.clone());
/// let watch = Gc::downgrade(&a);
/// drop((a, b)); // each still holds the other
/// assert!(watch.upgrade().is_some());
/// assert_eq!(gcptr::collect(), 2);
/// assert!(watch.upgrade().is_none());
/// ```
pub fn collect() -> usize {
    collect_generation(2)
}

/// Collects `generation` and all younger ones: Python's
/// `gc.collect(generation)`. Survivors move to the next generation.
///
/// # Panics
///
/// If `generation` is not 0, 1 or 2; and as [`collect`].
///
/// # Examples
///
/// ```
/// let young_only = gcptr::collect_generation(0);
/// assert_eq!(young_only, 0); // nothing here is garbage
/// assert_eq!(gcptr::count()[0], 0);
/// ```
#[track_caller]
pub fn collect_generation(generation: usize) -> usize {
    assert!(
        generation < GENERATIONS,
        "gcptr::collect_generation: generation {generation} does not exist; use 0, 1 or 2"
    );
    state::current().map_or(0, |st| {
        if generation == GENERATIONS - 1 {
            // A full collection starts the 25% rule afresh: its counts, and
            // how long automatic ones wait.
            st.long_lived_shift.set(state::LONG_LIVED_SHIFT);
        }
        collect_after_returns(st, || {
            cycle::collect(st, generation, cycle::Extent::Reported)
        })
    })
}

/// Turns automatic collection on (Python's `gc.enable()`).
///
/// # Examples
///
/// ```
/// gcptr::disable();
/// assert!(!gcptr::is_enabled());
/// gcptr::enable();
/// assert!(gcptr::is_enabled());
/// ```
pub fn enable() {
    if let Some(st) = state::current() {
        st.enabled.set(true);
    }
}

/// Turns automatic collection off (Python's `gc.disable()`). Reference
/// counting goes on, and [`collect`] still works.
///
/// # Examples
///
/// ```
/// use std::cell::RefCell;
/// use gcptr::Gc;
///
/// gcptr::disable();
/// // Build a large graph without pauses: past generation 0's threshold
/// // of 700, no automatic collection runs.
/// let graph: Vec<Gc<RefCell<Vec<Gc<u8>>>>> =
///     (0..1_000).map(|_| Gc::new(RefCell::new(Vec::new()))).collect();
/// assert_eq!(gcptr::stats()[0].collections, 0);
/// assert_eq!(gcptr::count()[0], 1_000);
/// assert_eq!(gcptr::collect(), 0); // explicit collections still run
/// gcptr::enable();
/// # drop(graph);
/// ```
pub fn disable() {
    if let Some(st) = state::current() {
        st.enabled.set(false);
    }
}

/// Whether automatic collection is on (Python's `gc.isenabled()`).
///
/// # Examples
///
/// ```
/// assert!(gcptr::is_enabled()); // the default
/// ```
pub fn is_enabled() -> bool {
    match state::for_reading() {
        Reading::State(st) => st.enabled.get(),
        Reading::Left(left) => left.enabled,
        Reading::Gone => false,
    }
}

/// The collection counts (Python's `gc.get_count()`): for generation 0,
/// tracked allocations minus deallocations since it was last collected;
/// for generations 1 and 2, collections of the next younger generation
/// since they were last collected.
///
/// Only tracked objects count: a `Gc<u64>` or a `Gc<String>` does not.
///
/// # Examples
///
/// ```
/// use gcptr::Gc;
/// use std::cell::RefCell;
///
/// gcptr::collect();
/// let _tracked = Gc::new(RefCell::new(Vec::<Gc<u8>>::new()));
/// let _untracked = Gc::new(String::from("plain data"));
/// assert_eq!(gcptr::count(), [1, 0, 0]);
/// ```
pub fn count() -> [usize; 3] {
    match state::for_reading() {
        Reading::State(st) => st.counts.each_ref().map(|c| c.get()),
        Reading::Left(_) | Reading::Gone => [0; 3],
    }
}

/// The collection thresholds (Python's `gc.get_threshold()`); by default
/// `[700, 10, 10]`. A thread-local's destructor at thread exit sees the
/// thread's own thresholds (and `is_enabled`, `stats`): asking neither
/// wakes a parked collector nor remakes a dropped one, so it spends none
/// of the thread's exit guards; `[0, 0, 0]` once the thread's collector
/// is gone for good (its exit guards used up by other thread-locals'
/// destructors that used gcptr's objects): nothing is collected
/// automatically then.
///
/// # Examples
///
/// ```
/// assert_eq!(gcptr::threshold(), [700, 10, 10]);
/// ```
pub fn threshold() -> [usize; 3] {
    match state::for_reading() {
        Reading::State(st) => st.thresholds.each_ref().map(|c| c.get()),
        Reading::Left(left) => left.thresholds,
        Reading::Gone => [0; 3],
    }
}

/// Sets the collection thresholds (Python's `gc.set_threshold()`).
/// Generation 0 is collected when its count exceeds `thresholds[0]`; an
/// older one when its count exceeds its threshold. `thresholds[0] == 0`
/// turns automatic collection off.
///
/// A full collection also waits, as in CPython, until the objects that
/// came into generation 2 since the last one number a quarter of those
/// that survived it. While automatic full collections find nothing, the
/// wait grows to a half of them, then to all: a program building a large
/// structure that loses references as it grows has all of it analysed at
/// each one, about twice in all rather than five times. One that finds
/// garbage, or a call to [`collect`], sets it back to a quarter.
///
/// A full collection also comes sooner, right after a young one, when
/// garbage may have escaped the young generations: the young collection
/// found an object that lost a reference held from an older generation
/// (a structure built across a few young collections is spread over
/// them), or an object of generation 2 lost a reference. It analyses only
/// what such objects reach, not the heap, and it waits until generation
/// 0 has grown, since the last full collection, by twice as many objects
/// as that one found alive: whatever those objects reach, the collector's
/// work stays in proportion to the growth. None comes this way while
/// objects are frozen.
///
/// An automatic collection that cannot find anything skips its analysis
/// and only moves its objects up a generation: until a tracked object
/// loses a strong reference and keeps others (a drop that leaves its count
/// above zero), no garbage can have come to be since the last full
/// collection began, so a program that only builds (appends objects,
/// clones handles into new ones) pays nothing for the collector. A young
/// collection also skips while none of its own objects lost a reference
/// since it was made, whatever older objects lost: a garbage set has a
/// member that did. The one exception is `unsafe` code that moves an
/// object's last handle into the object itself through
/// [`Gc::as_ptr`](crate::Gc::as_ptr): the cycle it closes waits for thread
/// exit (see [`collect`]).
///
/// # Examples
///
/// ```
/// gcptr::set_threshold([10_000, 10, 10]); // fewer, larger young collections
/// assert_eq!(gcptr::threshold(), [10_000, 10, 10]);
/// gcptr::set_threshold([700, 10, 10]);
/// ```
pub fn set_threshold(thresholds: [usize; 3]) {
    if let Some(st) = state::current() {
        for (cell, value) in st.thresholds.iter().zip(thresholds) {
            cell.set(value);
        }
    }
}

/// Figures per generation (Python's `gc.get_stats()`).
///
/// # Examples
///
/// ```
/// let before = gcptr::stats();
/// gcptr::collect_generation(1);
/// let after = gcptr::stats();
/// assert_eq!(after[1].collections, before[1].collections + 1);
/// assert_eq!(after[2].collections, before[2].collections);
/// ```
pub fn stats() -> [GenerationStats; 3] {
    match state::for_reading() {
        Reading::State(st) => st.stats.each_ref().map(|c| c.get()),
        Reading::Left(left) => left.stats,
        Reading::Gone => [GenerationStats::default(); 3],
    }
}

/// Moves every tracked object into a permanent generation that no
/// collection looks at (Python's `gc.freeze()`). Use it after building a
/// large long-lived graph, so collections no longer pay for it.
///
/// Does nothing while a collection is running.
///
/// # Examples
///
/// ```
/// use gcptr::Gc;
/// use std::cell::RefCell;
///
/// let config = Gc::new(RefCell::new(Vec::<Gc<u8>>::new()));
/// gcptr::freeze();
/// assert!(gcptr::freeze_count() >= 1);
/// gcptr::unfreeze();
/// assert_eq!(gcptr::freeze_count(), 0);
/// # drop(config);
/// ```
pub fn freeze() {
    if let Some(st) = state::current().filter(|st| !st.collecting.get()) {
        for list in st.collected_lists() {
            for header in Links::headers(list) {
                st.note_not_old(header);
            }
            Links::append(st.permanent(), list);
        }
        st.counts[0].set(0);
    }
}

/// Moves the frozen objects back into the oldest generation (Python's
/// `gc.unfreeze()`).
///
/// Does nothing while a collection is running.
///
/// # Examples
///
/// ```
/// gcptr::freeze();
/// gcptr::unfreeze();
/// assert_eq!(gcptr::freeze_count(), 0);
/// ```
pub fn unfreeze() {
    if let Some(st) = state::current().filter(|st| !st.collecting.get()) {
        thaw(st);
    }
}

/// `unfreeze`, with no collection running: also at thread exit, so that
/// frozen garbage is reclaimed with the rest.
pub(super) fn thaw(st: &State) {
    for header in Links::headers(st.permanent()) {
        st.note_old(header);
    }
    Links::append(st.generation(GENERATIONS - 1), st.permanent());
    // Frozen objects missed the full collections meanwhile: the next one
    // analyses them all.
    st.garbage_possible.set(true);
    st.analyse_everything.set(true);
}

/// The number of frozen objects (Python's `gc.get_freeze_count()`).
///
/// # Examples
///
/// ```
/// assert_eq!(gcptr::freeze_count(), 0);
/// ```
pub fn freeze_count() -> usize {
    // Also from a trace while an analysis runs: the permanent list is
    // never in the set, and nothing links or unlinks until it ends.
    match state::for_reading() {
        Reading::State(st) => Links::len(st.permanent()),
        Reading::Left(_) | Reading::Gone => 0,
    }
}

#[cfg(test)]
mod tests {
    use core::cell::RefCell;

    use crate::header::Links;
    use crate::Gc;

    /// A collection relinks its survivors in the order their lists had
    /// (`Links::take_for_analysis`), so that lists built in memory order
    /// stay in it. A collection that shuffled them made every later walk a
    /// chain of cache misses.
    #[test]
    fn survivors_keep_their_list_order() {
        std::thread::spawn(|| {
            let objects: Vec<Gc<RefCell<Option<Gc<u32>>>>> =
                (0..100).map(|_| Gc::new(RefCell::new(None))).collect();
            let allocated: Vec<_> = objects.iter().map(Gc::header).collect();
            for generation in [0, 1, 2, 2, 2] {
                super::collect_generation(generation);
                assert_eq!(super::tracked_objects(), allocated);
            }
        })
        .join()
        .unwrap();
    }

    /// The objects of generation 2's two lists are `OLD` and no others
    /// are, and `old_count` counts them: checked after every step of a
    /// run that moves objects up by skipped and analysed collections of
    /// every generation, loses references, kills objects by count and by
    /// collection, sets objects aside, and freezes and unfreezes.
    #[test]
    fn old_marks_follow_generation_two() {
        type Node = Gc<RefCell<Vec<Gc<u8>>>>;
        struct Link(RefCell<Option<Gc<Link>>>);
        // SAFETY: traces its one field, which holds its only `Gc`.
        unsafe impl crate::Trace for Link {
            fn trace(&self, tracer: &mut crate::Tracer) {
                self.0.trace(tracer);
            }
        }

        fn check(step: usize) {
            let st = super::state::current().unwrap();
            let mut old = 0;
            for (index, list) in st.collected_lists().into_iter().enumerate() {
                for header in Links::headers(list) {
                    // SAFETY: listed objects are allocated.
                    let is_old = unsafe { header.as_ref() }.is_old();
                    assert_eq!(is_old, index >= 2, "step {step}, list {index}");
                    old += usize::from(is_old);
                }
            }
            for header in Links::headers(st.permanent()) {
                // SAFETY: as above.
                assert!(!unsafe { header.as_ref() }.is_old(), "step {step}");
            }
            assert_eq!(st.old_count.get(), old, "step {step}");
        }

        std::thread::spawn(|| {
            // Each check walks every list: fewer steps under Miri, with
            // collections as frequent.
            let (steps, thresholds) = if cfg!(miri) {
                (600, [6, 2, 1])
            } else {
                (6000, [20, 3, 2])
            };
            super::set_threshold(thresholds);
            let mut kept: Vec<Node> = Vec::new();
            let mut cycles: Vec<Gc<Link>> = Vec::new();
            let mut seed = 0x2545_f491_4f6c_dd1d_u64;
            let mut moved_up = 0;
            let mixed = steps / 3..2 * steps / 3;
            for step in 0..steps {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                // Only building in the first and last thirds: automatic
                // collections skip their analysis there.
                let building = !mixed.contains(&step);
                if step == mixed.end {
                    super::collect();
                }
                let op = if building { seed % 5 } else { seed % 12 };
                match op {
                    0..=3 => kept.push(Gc::new(RefCell::new(Vec::new()))),
                    4 => {
                        // A two-object cycle, kept or dropped at once.
                        let a = Gc::new(Link(RefCell::new(None)));
                        let b = Gc::new(Link(RefCell::new(Some(a.clone()))));
                        *a.0.borrow_mut() = Some(b);
                        if building || seed & 64 == 0 {
                            cycles.push(a);
                        }
                    }
                    5 if !cycles.is_empty() => {
                        let index = (seed >> 8) as usize % cycles.len();
                        cycles.swap_remove(index);
                    }
                    6 if kept.len() > 1 => {
                        // A reference lost that leaves others.
                        let index = (seed >> 8) as usize % kept.len();
                        let extra = kept[index].clone();
                        drop(extra);
                        kept.swap_remove(index);
                    }
                    7 if !kept.is_empty() => {
                        // Set aside by `get_mut`. A second handle: a later
                        // loss of a reference to it (op 6) brings it back.
                        let index = (seed >> 8) as usize % kept.len();
                        if let Some(items) = Gc::get_mut(&mut kept[index]) {
                            items.get_mut().push(Gc::new(1));
                        }
                        let again = kept[index].clone();
                        kept.push(again);
                    }
                    8 => {
                        super::collect_generation((seed >> 8) as usize % 3);
                    }
                    9 if seed & 256 == 0 => {
                        super::freeze();
                        check(step);
                        super::unfreeze();
                    }
                    _ => {}
                }
                check(step);
                moved_up = moved_up.max(super::state::current().unwrap().old_count.get());
            }
            assert!(moved_up > steps / 60, "too little moved up: {moved_up}");
            let stats = super::stats();
            assert!(stats[1].skipped > 0 && stats[1].collections > stats[1].skipped);
            assert!(stats[2].skipped > 0 && stats[2].collections > stats[2].skipped);
            drop((kept, cycles));
            super::collect();
            check(usize::MAX);
        })
        .join()
        .unwrap();
    }
}

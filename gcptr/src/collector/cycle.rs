//! One collection: trial deletion over a generation and the younger ones,
//! then the PEP 442 sequence for what it finds.
//!
//! 1. **Analysis** ([`find_unreachable`]). Each object in the set starts
//!    with its strong count; tracing every object subtracts the references
//!    that come from inside the set (CPython's `update_refs` and
//!    `subtract_refs`). What is left counts references from outside: the
//!    stack, statics, untracked owners, older generations. Objects with a
//!    count above zero, and all they reach, are alive (`move_unreachable`,
//!    done here with an explicit stack, never recursion); they move up a
//!    generation. The rest is garbage. An object that `Gc::get_mut` set
//!    aside (in no list) joins the set when an edge from the set meets
//!    it, in every first analysis (`Tracer::take_set_aside_objects`).
//!
//!    A full collection's set is not the whole heap but what the objects
//!    that reported a lost reference reach ([`Extent::Reported`]): its
//!    first pass takes those in as roots, and each listed object it
//!    meets. Objects outside it count as outside references, as older
//!    generations do for a young collection. A full collection of
//!    everything gathers too, from each object left in the lists, in list
//!    order, as the pass runs out of objects to trace ([`FirstPass`]):
//!    taking the whole lists first would read the heap once more.
//! 2. **Condemn.** Each garbage object gets a unit of weak count held by
//!    the collector, so its memory outlives anything that happens next.
//!    If user code is to run before the drops (a finalizer, a watcher),
//!    each also gets `WEAK_CLEARED`: weak references stop upgrading (those
//!    made before the object is resurrected, if it is, for good); then the
//!    weak containers and death callbacks watching it are told. (Otherwise
//!    the `DEAD` mark does the same.)
//! 3. **Finalize** every garbage object that has a finalizer not yet run,
//!    while the whole garbage set is intact.
//! 4. **Resurrection check.** If any finalizer ran (step 3's, or one that
//!    a death by count ran since the collection began), analyse the
//!    garbage set again: what a finalizer made reachable from outside
//!    survives.
//! 5. **Drop.** Mark every remaining object `DEAD` (deref panics from now
//!    on, naming `Finalize`, for types with drop glue), then drop each
//!    value and give up the
//!    collector's unit, which frees the memory once nothing refers to it.
//!    References between garbage objects die with the values; a reference
//!    that a `Drop` stored elsewhere keeps the memory (not the value) alive.
//!
//! Objects are visited in as few passes as the order above allows: the
//! analysis's last pass also moves each survivor up and condemns each
//! garbage object (marking it `DEAD` too while no finalizer or watcher
//! has turned up); dropping and releasing are one more. A full
//! collection's gathering pass condemns each object it takes in
//! provisionally, `DEAD` at once, and the mark pass acquits the
//! survivors ([`Header::condemn_provisionally`]): a set found all garbage
//! then goes to its drops with no pass in between. Taking its roots one
//! at a time (from the lists, or from the reporters while each set so far
//! was garbage), that pass drops what it gathered as soon as it has traced
//! it all and found it all garbage, while it is in cache, and starts again
//! ([`drop_gathered_garbage`]). If those drops would do nothing but lower
//! each other's counts (no member's type drops more than its `Gc`s, and
//! every edge leads to a member), the set is freed without them
//! ([`release_without_drops`]).
//!
//! A panic in a finalizer, a `Drop` or a trace is caught, the collection
//! completes, and the first panic is resumed when the collector is
//! consistent again.

use core::ops::Range;
use core::ptr::NonNull;
use std::panic::{self, AssertUnwindSafe};

use super::death;
use super::panics::{keep_first, Panic};
use super::state::{State, GENERATIONS};
use crate::header::{flags, Header, Links, Mark};
use crate::trace::{Action, Tracer};

/// How close in memory an object taken in must be to the object that took
/// it for the gathering pass to trace it next ([`gather_from_roots`]): a
/// few small objects apart, as consecutive allocations are.
const NEAR_BYTES: usize = 256;

/// Entries of the set buffer kept between collections whatever their size:
/// enough for the young generations at the default thresholds.
const SCRATCH_KEPT: usize = 8192;

/// What a full collection analyses. Young collections analyse their whole
/// generations.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Extent {
    /// What the `QUIET` objects reach: those that reported a lost
    /// reference since a full collection last analysed them. Every garbage
    /// cycle made without `unsafe` has such a member
    /// (`collector::lost_reference`), and the set holds all it reaches, so
    /// this finds the same garbage as `Everything`, in time that follows
    /// the losses rather than the heap. The quiet objects are found in the
    /// reporters' buffer (`State::reporters`), where generation 2's go, and
    /// by a walk of the two young generations, which marks them `OLD` as
    /// they move up; generation 2 is neither walked nor counted here.
    ///
    /// While something may have hidden a reporter, the collection analyses
    /// everything instead: see `State::analyse_everything`; and when the
    /// reporters are many (`State::reporters_overflowed`), since going
    /// through the lists in order then costs less than starting from each
    /// reporter in turn.
    Reported,
    /// Every object of the generations (thread exit: the raw-pointer cycles
    /// of `lost_reference` too).
    Everything,
}

/// Collects `generation` and all younger ones. Returns the number of
/// objects found unreachable and reclaimed; 0 if a collection is already
/// running.
pub(crate) fn collect(st: &State, generation: usize, extent: Extent) -> usize {
    if st.collecting.get() {
        return 0;
    }
    st.collecting.set(true);
    let mut first_panic = None;
    let reclaimed = collect_locked(st, generation, extent, &mut first_panic);
    st.collecting.set(false);
    super::relink_returning(st);
    // The queued deaths may panic too: run them all, and keep the first
    // panic of the whole collection.
    death::run_deferred_catching(st, &mut first_panic);
    if let Some(payload) = first_panic {
        // During unwinding (a collection from a `Drop`, or an allocation's
        // automatic one), a second panic would abort: dropped instead.
        super::panics::resume_unless_unwinding(payload);
    }
    reclaimed
}

/// A collection of `generation` that skips the analysis because it could
/// find nothing (`State::garbage_possible_in`): no garbage can have come
/// to be since the last full collection began, or, for a young
/// generation, none of its objects is quiet, and each garbage set has a
/// quiet member (`collector::lost_reference`). Its set moves up a
/// generation whole, as survivors do, and is counted as an analysis would
/// count them, for the 25% rule: the objects that come into generation 2
/// are walked into its `OLD` count (only the young lists: generation 2's
/// are `OLD` already), none of them quiet.
pub(crate) fn promote(st: &State, generation: usize) {
    debug_assert!(!st.garbage_possible_in(generation) && !st.collecting.get());
    debug_assert!(
        generation < GENERATIONS - 1 || st.reporters.borrow().is_empty(),
        "reports set garbage_possible"
    );
    debug_assert!(
        (0..=generation.min(1))
            .flat_map(|younger| Links::headers(st.generation(younger)))
            // SAFETY: listed objects are allocated.
            .all(|header| !unsafe { header.as_ref() }.is_quiet()),
        "a young collection skipped its analysis with a quiet object in its set"
    );
    let survivors = if generation >= 1 {
        make_young_old(st, None)
    } else {
        0
    };
    let (young, older) = begin(st, generation);
    let survivors = if generation == GENERATIONS - 1 {
        st.old_count.get()
    } else {
        survivors
    };
    Links::append(older, young);
    note_survivors(st, generation, survivors);
    st.add_stats(generation, |s| {
        s.collections += 1;
        s.skipped += 1;
    });
}

/// Python's bookkeeping at the start of a collection: it counts toward the
/// next generation's threshold, and resets its own and the younger ones'.
/// Returns the list of the collection's set (the younger lists appended to
/// `generation`'s; for a full collection, generation 2's objects that are
/// not `OLD` yet) and the list its survivors move to (for a full
/// collection, `old`).
fn begin(st: &State, generation: usize) -> (NonNull<Links>, NonNull<Links>) {
    if generation + 1 < GENERATIONS {
        let next = &st.counts[generation + 1];
        next.set(next.get() + 1);
    }
    let grown = &st.grown_since_full;
    if generation == GENERATIONS - 1 {
        grown.set(0);
        st.quiet_survived.set(false);
    } else {
        grown.set(grown.get() + st.counts[0].get());
    }
    for count in &st.counts[..=generation] {
        count.set(0);
    }
    st.young_quiet_move_up(generation);
    let young = st.generation(generation);
    for younger in 0..generation {
        Links::append(young, st.generation(younger));
    }
    let older = if generation + 1 < GENERATIONS {
        st.generation(generation + 1)
    } else {
        st.old()
    };
    (young, older)
}

/// Marks the objects of generations 0 and 1 `OLD` and counts them in
/// generation 2, as they are about to move into it; if `quiet` is given,
/// appends the quiet ones to it (a full collection's roots). Returns how
/// many were marked.
///
/// Objects are marked as they come into generation 2, not at the next full
/// collection: the young lists are small and were walked by the collection
/// that moves them, so they are likely in cache, where generation 2's newer
/// objects, walked at the full collection, had long left it. Building 2M
/// live objects with automatic collection on walked each one from memory.
fn make_young_old(st: &State, mut quiet: Option<&mut Vec<NonNull<Header>>>) -> usize {
    let walked = Links::make_old(st.generation(0), quiet.as_deref_mut())
        + Links::make_old(st.generation(1), quiet);
    st.old_count.set(st.old_count.get() + walked);
    walked
}

/// CPython's 25% rule: objects promoted into generation 2 since the last
/// full collection, against those that survived it.
fn note_survivors(st: &State, generation: usize, survivors: usize) {
    match generation {
        1 => {
            let pending = &st.long_lived_pending;
            pending.set(pending.get() + survivors);
        }
        2 => {
            st.long_lived_pending.set(0);
            st.long_lived_total.set(survivors);
        }
        _ => {}
    }
}

fn collect_locked(
    st: &State,
    generation: usize,
    extent: Extent,
    first_panic: &mut Option<Panic>,
) -> usize {
    let full = generation == GENERATIONS - 1;
    st.watched_in_analysis.set(false);
    let finalized_by_count = st.finalized_by_count.get();
    // Frozen objects must not be gathered into the set: with any, analyse
    // the generations whole (edges to frozen objects then leave the set).
    let gather = full && extent == Extent::Reported && st.gathers();
    if full {
        // Losses from here on count toward the next one; the set's
        // objects report theirs again.
        st.garbage_possible.set(false);
        if !gather {
            st.analyse_everything.set(false);
            st.reporters_overflowed.set(false);
        }
    }

    let mut set = st.scratch.take();
    st.set_analysing(true);
    // The set's links become scratch; objects allocated meanwhile (by a
    // trace) start a fresh list. A gathering collection's roots: the quiet
    // objects, reporters (generation 2's) or young (in that order: the walk
    // marks the young ones old), each kept `BUFFERED` until its turn.
    let mut roots = Vec::new();
    if gather {
        roots = super::take_roots(st);
        make_young_old(st, Some(&mut roots));
    }
    let (young, older) = begin(st, generation);
    // Where the gathering pass takes roots once those given run out: a
    // full collection of everything (with no frozen objects, which it must
    // not take in) gathers from each object left in the lists, in list
    // order, rather than take the whole lists first, which would read the
    // heap once more. Its total is then known at the end.
    let (first_pass, total) = if gather {
        Links::append(older, young);
        let roots = if st.are_many_reporters(roots.len()) {
            super::let_go_of_all(st, roots);
            Roots::InList(older)
        } else {
            Roots::Waiting(roots)
        };
        // Everything it can take in is `OLD` now, but the objects set aside
        // by `Gc::get_mut` that it takes in (not counted: `room` is a hint).
        let room = st.old_count.get();
        (FirstPass::Gather { roots, room }, Some(room))
    } else if full && Links::is_empty(st.permanent()) {
        super::take_reporters(st);
        Links::append(older, young);
        let roots = Roots::InList(older);
        let room = usize::MAX;
        (FirstPass::Gather { roots, room }, None)
    } else {
        if full {
            super::take_reporters(st);
            Links::take_for_analysis(older, &mut set, true);
        }
        Links::take_for_analysis(young, &mut set, full);
        (
            FirstPass::Subtract {
                takes_set_aside: true,
            },
            Some(set.len()),
        )
    };
    // A finalizer to run, or a watcher to tell, runs user code before the
    // drops, and the DEAD marks must wait for it. While no callback weak
    // exists, mark DEAD as each object is condemned, and take the marks
    // back if the garbage needs either. `pending_events` gathers over the
    // garbage `FINALIZED` where it is missing (a finalizer to run) and
    // `WATCHED` where it is set.
    let dead_at_once = if st.callback_weaks.get() > 0 {
        0
    } else {
        flags::DEAD
    };
    // A gathering pass condemns what it takes in provisionally, and the
    // mark pass acquits the survivors.
    let gathering = matches!(first_pass, FirstPass::Gather { .. });
    let mut pending_events = 0;
    let mut reached = 0;
    let mut condemn = |header: NonNull<Header>| {
        // SAFETY: garbage objects are allocated (held by their strong
        // references, or by their share that stayed, for one condemned in
        // advance); the unit taken here keeps them so until the last pass.
        let h = unsafe { header.as_ref() };
        h.inc_weak();
        if h.is_provisional() && h.strong() == 0 {
            // A trace dropped its last reference, and the strong
            // references' share stayed (`death::dead_reached_zero`): it
            // goes with the object to the death queue, where a death
            // during an analysis waits.
            st.defer(header);
        }
        // Quiet: a report would only buffer a dying object, and send the
        // next full collection over everything once the buffer overflows.
        h.settle_condemned();
        pending_events |= h.pending_events();
        h.set(dead_at_once);
        Links::link_to_self(member_links(header));
    };
    let verdict = find_unreachable(
        st,
        set,
        first_pass,
        first_panic,
        |header| {
            reached += 1;
            // SAFETY: members of the set are allocated.
            let h = unsafe { header.as_ref() };
            if gathering && h.acquit(links(header)) {
                changed_in_analysis(st, header);
            }
            if !full && h.is_quiet() {
                st.quiet_survived.set(true);
            }
            relink(st, older, header);
        },
        &mut condemn,
    );
    let mut garbage = verdict.garbage;
    if full {
        st.full_survivors.set(reached);
    }
    // Whether a weak reference with a callback exists: there was one when
    // the collection began, or a `Drop` run since made one (the gathering
    // pass drops garbage it meets first, `drop_gathered_garbage`), which
    // the garbage left may own. Its callbacks are cancelled before any of
    // it is dropped.
    let callbacks = dead_at_once == 0 || st.callback_weaks.get() > 0;
    // Garbage condemned in advance needs no visit before its drop (which
    // finishes its condemnation), unless there is user code to run first,
    // or a trace began to watch some of it after the pass read its events.
    let stale = st.watched_in_analysis.get();
    if verdict
        .needs_events
        .is_some_and(|needs| needs || callbacks || stale)
    {
        garbage.iter().for_each(|&header| condemn(header));
    }
    let eventful = callbacks || pending_events != 0;
    // Garbage whose weak references a collection cleared before: a
    // finalizer resurrected it once already, and may not revive them again.
    let mut resurrected_before = Vec::new();
    if eventful {
        // User code runs before the drops: the weak references go now.
        // (Without it, `DEAD` alone keeps them from upgrading.)
        let take_back_dead = dead_at_once != 0 || gathering;
        for &header in &garbage {
            // SAFETY: as above.
            let h = unsafe { header.as_ref() };
            if take_back_dead {
                h.clear(flags::DEAD);
            }
            if h.clear_weak_references() {
                resurrected_before.push(header);
            }
        }
    }
    // Looked up once per survivor of the re-check: sorted, so that a
    // second resurrection of a large set costs O(n log n), not O(n^2).
    resurrected_before.sort_unstable();
    let dropped_early = verdict.dropped_early;
    // (Objects allocated by a trace, gathered from generation 0, were not
    // counted in `total`; the objects set aside that the set took in are.)
    let survivors = total.map_or(reached, |total| {
        (total + verdict.taken_aside).saturating_sub(garbage.len() + dropped_early)
    });
    note_survivors(st, generation, survivors);

    let found = garbage.len() + dropped_early;
    let mut already_dead = Vec::new();
    if eventful {
        notify_watchers(st, &garbage, first_panic);
        // A death by count of a garbage object, since condemnation (a death
        // that an analysis queued, run when a watcher's callback let go of
        // something), runs its finalizer, which may resurrect its peers.
        let finalized_meanwhile = st.finalized_by_count.get() != finalized_by_count;
        garbage = finalize_and_recheck(
            st,
            garbage,
            older,
            &resurrected_before,
            finalized_meanwhile,
            first_panic,
        );
        // Mark the whole set before any value is dropped, so that a `Drop`
        // that reaches a peer panics whether or not the peer went first.
        // Objects that died by count meanwhile are DEAD already: release
        // them only.
        garbage.retain(|&header| {
            // SAFETY: held by the collector's unit of weak count.
            let h = unsafe { header.as_ref() };
            if h.has(flags::DEAD) {
                already_dead.push(header);
                return false;
            }
            h.set(flags::DEAD);
            true
        });
    }
    let reclaimed = garbage.len() + already_dead.len() + dropped_early;
    drop_and_release(st, &garbage, first_panic);
    for &header in &already_dead {
        // SAFETY: the unit of weak count taken at condemnation.
        unsafe { death::release_weak(header) };
    }
    garbage.clear();
    // Keep the buffers for the next collection, but not the memory of a
    // large set that is gone (8 bytes per object it held). The set buffer
    // also keeps what room it has, up to an entry per object of generation
    // 2, for the next full collection: memory fresh from the system costs
    // a page fault per 512 entries as the buffer grows again, and on a VM
    // that took a fifth of the 1M-node ring's drop + collect
    // (`benches/README.md`).
    let kept = SCRATCH_KEPT.max(2 * survivors);
    garbage.shrink_to(kept.max(garbage.capacity().min(st.old_count.get())));
    st.scratch.set(garbage);
    let mut mark_stack = st.mark_stack.take();
    mark_stack.shrink_to(kept);
    st.mark_stack.set(mark_stack);

    let resurrected = found - reclaimed;
    st.add_stats(generation, |s| {
        s.collections += 1;
        s.collected += reclaimed;
        s.resurrected += resurrected;
    });
    reclaimed
}

/// Tells the weak containers and death callbacks watching `garbage`, after
/// the weak references to all of it are cleared, so that no callback can
/// reach a condemned object. The callbacks of weak references that the
/// garbage itself owns are cancelled first (CPython's rule: they die with
/// it).
fn notify_watchers(st: &State, garbage: &[NonNull<Header>], first_panic: &mut Option<Panic>) {
    // Every container first, before any user code (traces, callbacks)
    // runs, so that each container's `len()` leaves the whole set out.
    for &header in garbage {
        crate::weak_maps::tell_containers(header);
    }
    if st.callback_weaks.get() > 0 {
        let mut tracer = Tracer::new(Action::CancelCallbacks);
        for &header in garbage {
            // A cancelled callback's drop is user code: it may have killed
            // an object of the set by count (through a `Gc` a hand-written
            // trace kept), whose value is gone. Every other object of the
            // set is not `DEAD` here.
            // SAFETY: held by the collector's unit of weak count.
            if unsafe { header.as_ref() }.has(flags::DEAD) {
                continue;
            }
            // The trace is user code, run outside the analysis, where no
            // death waits: it may kill this object by count (cutting a
            // peer's edge to it) while it borrows the value.
            // SAFETY: held by the collector's unit of weak count; not DEAD.
            let hold = unsafe { death::Hold::new(header) };
            catch(first_panic, || trace(header, &mut tracer));
            catch(first_panic, || drop(hold));
            while let Some(callback) = tracer.take_cancelled() {
                catch(first_panic, || callback.cancel());
            }
        }
    }
    for &header in garbage {
        if let Some(payload) = crate::weak_maps::run_callbacks(header) {
            keep_first(first_panic, payload);
        }
    }
}

/// Runs the finalizers of `garbage`; if any ran, here or (`finalized`)
/// since the analysis, returns what is still garbage afterwards and moves
/// the resurrected objects to `older`, where the weak references made from
/// then on upgrade, unless they are in `resurrected_before`.
fn finalize_and_recheck(
    st: &State,
    mut garbage: Vec<NonNull<Header>>,
    older: NonNull<Links>,
    resurrected_before: &[NonNull<Header>],
    finalized: bool,
    first_panic: &mut Option<Panic>,
) -> Vec<NonNull<Header>> {
    let mut ran_any = finalized;
    for &header in &garbage {
        // SAFETY: held by the collector's unit of weak count.
        let h = unsafe { header.as_ref() };
        if h.flags() & (flags::FINALIZED | flags::DEAD) == 0 {
            h.set(flags::FINALIZED);
            ran_any = true;
            let finalize = h.vtable().finalize;
            // The finalizer borrows the value: a peer's finalizer, run from
            // inside this one, must not drop the last reference and the
            // value with it. If its last references go meanwhile, it dies
            // by count when the hold goes (it stays allocated: we hold a
            // unit). If its death is queued already, it stays so, and the
            // re-check below keeps it for the queue.
            // SAFETY: held by our unit of weak count; not DEAD.
            let hold = unsafe { death::Hold::new(header) };
            // SAFETY: the value is alive: not DEAD.
            catch(first_panic, || unsafe { finalize(header) });
            catch(first_panic, || drop(hold));
        }
    }
    if !ran_any {
        return garbage;
    }
    // A finalizer may have killed garbage objects by count (they are DEAD
    // now, and their memory is held by our unit), or stored new references.
    // SAFETY: held by the collector's unit of weak count.
    let dead_at = partition_in_place(&mut garbage, |&h| !unsafe { h.as_ref() }.has(flags::DEAD));
    let dead = garbage.split_off(dead_at);
    st.set_analysing(true);
    for &header in &garbage {
        // SAFETY: held by our unit; not DEAD, so tracked and alive.
        let strong = unsafe { header.as_ref() }.strong();
        links(header).begin_analysis(strong);
    }
    // Its set is the garbage still undecided, no more: an object set aside
    // since (by a finalizer) is not taken in, but comes back into
    // generation 0, quiet.
    let mut still_garbage = find_unreachable(
        st,
        garbage,
        FirstPass::Subtract {
            takes_set_aside: false,
        },
        first_panic,
        |header| {
            // Loud again, as an analysis leaves the objects it sees: all
            // that referred to it were garbage, so a future garbage set
            // holding it forms by the loss of a reference made from now
            // on, which it must report. Unless a trace dropped one during
            // this analysis, as for an acquittal (`Header::acquit`): then
            // it reports that loss now.
            // SAFETY: held by our unit.
            let h = unsafe { header.as_ref() };
            h.set_quiet(false);
            // Resurrected: the weak references made from now on upgrade,
            // once in the object's life.
            if resurrected_before.binary_search(&header).is_err() {
                h.revive_weak_references();
            }
            let lost = h.strong() != 0 && links(header).strong_changed_in_analysis(h.strong());
            relink(st, older, header);
            if lost {
                report_loss(st, header);
            }
            // SAFETY: the collector's unit; the strong references keep the
            // object allocated, so this cannot free it.
            unsafe { death::release_weak(header) };
        },
        |header| Links::link_to_self(member_links(header)),
    )
    .garbage;
    still_garbage.extend(dead);
    still_garbage
}

/// Drops the value of each object of `garbage` (all marked DEAD by us) and
/// gives up the collector's unit of weak count on it. The condemnation of
/// objects condemned in advance ([`Header::condemn_provisionally`]) ends
/// here: the provisional mark was final once the analysis ended, and what
/// is left is to make the object quiet and its links its own.
///
/// Releasing right after the drop is safe: an object whose memory this
/// frees has no strong reference left, so no value dropped later can reach
/// it; one that still has some keeps its memory through the strong
/// references' own unit.
fn drop_and_release(st: &State, garbage: &[NonNull<Header>], first_panic: &mut Option<Panic>) {
    // Deaths that the drops cause nest no deeper than from the top.
    st.drop_depth.set(st.drop_depth.get() + 1);
    for &header in garbage {
        // SAFETY: held by our unit, or (condemned in advance) by the strong
        // references or their share.
        let h = unsafe { header.as_ref() };
        if h.is_provisional() && h.strong() != 0 {
            // Our unit, from here to its release below. (At a count of
            // zero, the share that stayed is ours.)
            h.inc_weak();
        }
        h.settle_condemned();
        Links::link_to_self(member_links(header));
        st.note_death(header);
        // SAFETY: held by our unit; the value is not dropped yet (we marked
        // it DEAD, and only whoever sets DEAD drops the value).
        let drop_value = h.vtable().drop_value;
        // SAFETY: as above.
        catch(first_panic, || unsafe { drop_value(header) });
        // SAFETY: our unit, taken at condemnation or above (or the share
        // that stayed).
        unsafe { death::release_weak(header) };
    }
    st.drop_depth.set(st.drop_depth.get() - 1);
}

/// Frees `garbage` as [`drop_and_release`] would, but without the drops:
/// every object's drop would do nothing but drop `Gc`s, and each of those
/// leads to another object of `garbage`
/// ([`Tracer::drops_only_release_members`]). So the drops would only
/// bring the counts of `garbage` to zero, and each object's memory would
/// go once its count and its `Weak`s were gone: here, each gives up the
/// strong references' share of its weak count at once, and is freed
/// unless a `Weak` (or the buffer of reporters) still holds it. Its value
/// is left as it was, forgotten: it owns nothing that its drop would free,
/// and no `Gc` in it is used again. No user code runs.
///
/// The strong counts are those the gathering pass took: the traces that
/// ran since, the members' own, ran no code that could make a reference
/// (point 6 of `Trace`'s contract, for which each member's type answers),
/// and dropping one (a count that reached zero in a trace) keeps the
/// strong references' share for here (`death::dead_reached_zero`).
///
/// On a dropped 1M-node ring, the drops took two fifths of the
/// collection's instructions: a call through the vtable per object, and
/// for each of its `Gc`s a decrement and the slow path of a count that
/// reaches zero on a condemned object.
fn release_without_drops(st: &State, garbage: &[NonNull<Header>]) {
    for &header in garbage {
        // SAFETY: held by the strong references' share of the weak count
        // (or by that share, stayed: `death::dead_reached_zero`).
        let h = unsafe { header.as_ref() };
        h.settle_condemned();
        // As the drops would have left it: every reference came from a
        // member (see above).
        h.set_strong(0);
        Links::link_to_self(member_links(header));
        st.note_death(header);
        // If this frees the memory, the value goes undropped, as
        // `mem::forget` would leave it: it owns nothing but `Gc`s to
        // members, and no reference reaches it.
        // SAFETY: the strong references' share, given up once, here, as
        // the last of the drops would have.
        unsafe { death::release_weak(header) };
    }
}

/// How the first pass of an analysis ([`find_unreachable`]) finds its set.
enum FirstPass {
    /// The set is given whole, and traced in order
    /// ([`Action::SubtractInternal`]); if `takes_set_aside`, with the
    /// objects set aside by `Gc::get_mut` that its edges meet
    /// ([`Tracer::take_set_aside_objects`]).
    Subtract { takes_set_aside: bool },
    /// The set grows from `roots` ([`Action::Gather`]). `room` is the most
    /// objects the set is expected to come to (`usize::MAX` if unknown):
    /// its buffer grows no further than that while it suffices.
    Gather { roots: Roots, room: usize },
}

/// Where a gathering pass takes its roots, each once all it took in so
/// far is traced ([`gather_from_roots`]).
enum Roots {
    /// Each object left in the list, in list order, until it is empty.
    InList(NonNull<Links>),
    /// The quiet objects, each `BUFFERED` until its turn
    /// (`collector::take_roots`).
    Waiting(Vec<NonNull<Header>>),
}

/// Trial deletion over `set`, whose objects are in analysis (their links
/// are scratch, `State::is_analysing`); if `first_pass` gathers, `set` is
/// an empty buffer, and the set is its roots and every listed object they
/// reach, which the first pass takes in as it meets them.
/// Hands each object reachable from outside to `reachable` just before it
/// is traced, and each other one to `garbage` at the end (no user code
/// runs in between); returns the garbage, in the same buffer and in the
/// order `garbage` saw it.
///
/// When the first pass accounted for every reference to every member
/// ([`Tracer::internal_only`]), nothing in the set is reachable from
/// outside, and all of it is garbage without a walk for roots; a gathered
/// set is then left condemned in advance, without a visit to each object
/// ([`Verdict::needs_events`]). A gathering pass makes that test each
/// time it has traced all it took in, before it takes its next root, and
/// may drop the set there and start a new one ([`drop_gathered_garbage`]):
/// such garbage goes to neither callback ([`Verdict::dropped_early`]).
///
/// Survivors are handed on in the order they are traced, roots before
/// what they reach. The walk for roots ([`Walk`]) meets them early both
/// among survivors and among new objects (roots last); objects reached
/// before the walk gets to them need no second look.
///
/// If a trace panics, some edges went unseen, and an object reachable only
/// through them would look like garbage: then the whole set is reported
/// reachable.
fn find_unreachable(
    st: &State,
    set: Vec<NonNull<Header>>,
    first_pass: FirstPass,
    first_panic: &mut Option<Panic>,
    mut reachable: impl FnMut(NonNull<Header>),
    mut garbage: impl FnMut(NonNull<Header>),
) -> Verdict {
    let mut trace_panic = None;
    let mut dropped_early = 0;
    let mut tracer;
    match first_pass {
        FirstPass::Subtract { takes_set_aside } => {
            tracer = Tracer::over(Action::SubtractInternal, set);
            if takes_set_aside {
                tracer.take_set_aside_objects();
            }
            subtract_in_order(&mut tracer, &mut trace_panic);
        }
        FirstPass::Gather { ref roots, room } => {
            tracer = Tracer::over(Action::Gather, set);
            tracer.take_set_aside_objects();
            let drop_closed = |tracer: &mut Tracer| {
                let dropped = drop_gathered_garbage(st, tracer, first_panic);
                dropped_early += dropped;
                dropped != 0
            };
            gather_from_roots(&mut tracer, roots, room, &mut trace_panic, drop_closed);
        }
    }
    let gathered = match first_pass {
        FirstPass::Gather { roots, .. } => {
            if let Roots::Waiting(roots) = roots {
                super::give_back_reporters(st, roots);
            }
            true
        }
        FirstPass::Subtract { .. } => false,
    };
    let taken_aside = tracer.taken_aside();
    let returning = tracer.take_set_aside();
    let all_internal = tracer.internal_only() == tracer.pending_len() && trace_panic.is_none();
    let needs_events = tracer.needs_events();
    let mut set = tracer.into_pending();
    if all_internal {
        // No member has a reference from outside, so none is reachable:
        // the whole set is garbage, and the walk for roots would read
        // every object for nothing (a dropped structure, gathered from
        // the reporters, often is exactly this). Gathered, it stands
        // condemned in advance, and is left so.
        let needs_events = if gathered {
            Some(needs_events)
        } else {
            set.iter().for_each(|&header| garbage(header));
            None
        };
        let garbage = finish_analysis(st, set, returning);
        return Verdict {
            garbage,
            needs_events,
            dropped_early,
            taken_aside,
        };
    }
    // A handed-on object's links are list links again (`Mark::Outside`),
    // so edges to it are ignored from then on. Objects with no references
    // from outside, not reached yet, are kept behind the walk as
    // candidates.
    let mut tracer = Tracer::over(Action::MarkReachable, st.mark_stack.take());
    let mut walk = Walk::new(set.len());
    let mut handed_on = 0;
    steps_catching(&mut trace_panic, || {
        if handed_on == set.len() {
            // All reached, candidates too: the rest of the walk, and a
            // second look at the candidates, would each read every object
            // again for nothing.
            walk.forget_kept();
            return false;
        }
        let reached = tracer.pop_pending().or_else(|| {
            // In any order: the mark pass only marks. It pushes each member
            // at most once.
            tracer.settle(set.len());
            tracer.pop_pending()
        });
        let header = match reached {
            Some(reached) => reached,
            None => loop {
                let Some(i) = walk.next() else { return false };
                let header = set[i];
                let l = links(header);
                if l.mark() != (Mark::InSet { reachable: false }) {
                    continue;
                }
                if l.refs() == 0 {
                    walk.keep(&mut set, i);
                    continue;
                }
                walk.met_root();
                l.set_mark_reachable();
                break header;
            },
        };
        reachable(header);
        handed_on += 1;
        trace(header, &mut tracer);
        true
    });
    let mut found = 0;
    for i in walk.kept().into_iter().flatten() {
        let header = set[i];
        if links(header).mark() == (Mark::InSet { reachable: false }) {
            if trace_panic.is_some() {
                reachable(header);
            } else {
                garbage(header);
                // `found <= i`: the kept objects lie at or after it.
                set[found] = header;
                found += 1;
            }
        }
    }
    if let Some(payload) = trace_panic {
        // Garbage may have been kept, with its reporters made loud: look
        // at everything next time.
        st.garbage_possible.set(true);
        st.analyse_everything.set(true);
        keep_first(first_panic, payload);
    }
    set.truncate(found);
    let mut mark_stack = tracer.into_pending();
    mark_stack.clear();
    st.mark_stack.set(mark_stack);
    Verdict {
        garbage: finish_analysis(st, set, returning),
        needs_events: None,
        dropped_early,
        taken_aside,
    }
}

/// What [`find_unreachable`] found.
struct Verdict {
    /// The garbage, in the order it was found.
    garbage: Vec<NonNull<Header>>,
    /// `None` if each garbage object went through the `garbage` callback;
    /// `Some` if none did: a gathering pass found that the whole set was
    /// garbage, and left it condemned in advance
    /// ([`Header::condemn_provisionally`]). Then it says whether any of it
    /// has a finalizer to run or something watching for its death
    /// ([`Tracer::needs_events`]).
    needs_events: Option<bool>,
    /// How many garbage objects the gathering pass dropped and released
    /// already ([`drop_gathered_garbage`]): they are in neither `garbage`
    /// nor the survivors.
    dropped_early: usize,
    /// How many objects set aside by `Gc::get_mut` the set took in
    /// ([`Tracer::take_set_aside_objects`]): they are in the garbage or
    /// the survivors, but were in no generation when it began.
    taken_aside: usize,
}

/// The first pass of a full collection ([`Action::Gather`]): traces the
/// roots it takes from `roots` and everything they take in, in set order
/// (breadth first), except that an object taken in next to the object
/// that took it (within [`NEAR_BYTES`]) is traced at once, by swapping it
/// into the next place.
///
/// In set order, the objects to trace next are known long before their
/// turn, so their traces do not wait on each other's cache misses: on
/// rust-cc's stress test (a random graph, about 1,000 roots and 7,000
/// objects a collection) this pass took 4.7 ms instead of 7.5 depth first,
/// and the mark pass, which follows the set's order, 1 ms less too. But a
/// walk along a chain built in order goes through memory in order only
/// depth first, as the hardware prefetcher expects: the 1M-node ring, its
/// 52,000 roots in a row, took 12% longer in set order, this pass and the
/// drop pass both. Tracing a neighbour at once keeps such walks in order
/// (the ring up to 2% slower than depth first on fresh memory, a few
/// percent where it reuses a freed ring's, from the swaps) and leaves
/// random graphs in set order (the stress test 9% faster).
///
/// It takes a root whenever all it took in is traced. First it hands the
/// set to `drop_closed` if the set is garbage that needs nothing but its
/// drops ([`Tracer::gathered_all_internal`]), which drops it if it may and
/// says whether it did; the set then starts again, empty. Taking roots one
/// at a time, the pass meets the structures of a dropped collection one
/// after another, and frees each while it is in cache, where a set of all
/// of them would be read again to be dropped, and its buffer would grow to
/// their number. From a list, it takes one root at a time to the end.
/// Waiting roots, it takes one at a time while every set so far was
/// dropped; once a set stays, no later one can be all garbage (it holds a
/// member with a reference from outside), and it takes all the rest at
/// once, for set order.
///
/// Both first passes are out of line: inlined into `collect_locked`, a
/// change to one moved the spills of the other passes. (The mark pass out
/// of line too lost 2% on a large live tree.)
#[inline(never)]
fn gather_from_roots(
    tracer: &mut Tracer,
    roots: &Roots,
    room: usize,
    trace_panic: &mut Option<Panic>,
    mut drop_closed: impl FnMut(&mut Tracer) -> bool,
) {
    let mut traced = 0;
    // The address of the object traced last, and where what it took in
    // starts.
    let mut previous = 0;
    let mut first_taken = usize::MAX;
    let mut next_waiting = 0;
    loop {
        steps_catching(trace_panic, || {
            if let Some(taken) = tracer.pending_at(first_taken) {
                if address(taken).abs_diff(previous) <= NEAR_BYTES {
                    tracer.swap_pending(traced, first_taken);
                }
            }
            // What spilled from `pending` joins the set once the rest is
            // traced.
            let next = tracer.pending_at(traced).or_else(|| {
                tracer.settle(room);
                tracer.pending_at(traced)
            });
            let Some(header) = next else {
                return false;
            };
            previous = address(header);
            first_taken = tracer.pending_len();
            traced += 1;
            trace(header, tracer);
            true
        });
        if trace_panic.is_none() && tracer.gathered_all_internal() && drop_closed(tracer) {
            traced = 0;
            first_taken = usize::MAX;
        }
        match roots {
            Roots::InList(list) => {
                let Some(root) = Links::take_first(*list) else {
                    return;
                };
                tracer.push_root(root);
            }
            Roots::Waiting(waiting) => {
                let set_len = tracer.pending_len();
                let one = set_len == 0;
                for &waiting in &waiting[next_waiting..] {
                    next_waiting += 1;
                    // SAFETY: the roots that wait are `BUFFERED` in this
                    // buffer only, and it lets go of each once.
                    if let Some(root) = unsafe { super::take_root(waiting) } {
                        tracer.push_root(root);
                        if one {
                            break;
                        }
                    }
                }
                if tracer.pending_len() == set_len {
                    return;
                }
            }
        }
    }
}

/// Drops and releases the set gathered so far, which is all garbage and
/// needs no finalizer run and no watcher told
/// ([`Tracer::gathered_all_internal`]), or frees it without the drops if
/// they would only release its own members
/// ([`Tracer::drops_only_release_members`]), and empties it; returns how
/// many objects it held, or 0 if they must wait for the end of the
/// collection:
///
/// - while a weak reference with a callback exists: the callbacks that
///   garbage owns are cancelled first (`notify_watchers`);
/// - while a trace has begun to watch an object the pass condemned in
///   advance (`State::watched_in_analysis`).
///
/// An object that `Gc::get_mut` set aside and that the set refers to is
/// a member of the set: the pass takes it in
/// ([`Tracer::take_set_aside_objects`]). (Left out, its drop by the set's
/// drops would have made what it held garbage found in the same
/// collection; before it was taken in, such a set waited for the end.)
///
/// Otherwise the references that the drops give up lead only to members
/// and to objects outside every list (untracked, acyclic), none of which
/// holds an object of a list: what the rest of the collection finds is
/// what it would have found had the set been dropped at the end, as a
/// model of the collector predicts (`tests/model/machine.rs`). Only a
/// `Drop` that reaches further (through a thread-local) can leave more
/// garbage for the rest to find.
///
/// The set's members are the only objects with scratch in their links
/// (the roots still to take are in their lists), and a drop treats a peer's
/// scratch as the collection's last pass does. So the drops run as that
/// pass runs them, outside the analysis: a dropped value sees its peers
/// `DEAD`, and the deaths it causes happen at once. Every reference to a
/// member that the pass counted came from a member; a hand-written trace
/// may have made one more since (upgrading a `Weak`), which keeps the
/// memory and finds the value `DEAD`, but then its type answers `false` to
/// [`Trace::__drop_only_releases_gcs`](crate::Trace::__drop_only_releases_gcs),
/// and the set is dropped.
fn drop_gathered_garbage(
    st: &State,
    tracer: &mut Tracer,
    first_panic: &mut Option<Panic>,
) -> usize {
    if st.callback_weaks.get() > 0 || st.watched_in_analysis.get() {
        return 0;
    }
    st.set_analysing(false);
    if tracer.drops_only_release_members() {
        release_without_drops(st, tracer.pending());
    } else {
        drop_and_release(st, tracer.pending(), first_panic);
    }
    let dropped = tracer.pending_len();
    tracer.restart();
    st.set_analysing(true);
    dropped
}

fn address(header: NonNull<Header>) -> usize {
    header.as_ptr() as usize
}

/// The first pass of a young collection ([`Action::SubtractInternal`]):
/// traces every object of the set, in order, and the objects set aside
/// that it takes in after them.
#[inline(never)]
fn subtract_in_order(tracer: &mut Tracer, trace_panic: &mut Option<Panic>) {
    let mut traced = 0;
    steps_catching(trace_panic, || {
        // What spilled from `pending` (objects set aside, taken in) joins
        // the set once the rest is traced.
        let next = tracer.pending_at(traced).or_else(|| {
            tracer.settle(usize::MAX);
            tracer.pending_at(traced)
        });
        let Some(header) = next else {
            return false;
        };
        traced += 1;
        trace(header, tracer);
        true
    });
}

/// Ends an analysis whose garbage is `garbage`: takes back into generation
/// 0 the set-aside objects that edges from the set met and did not take
/// in (a second look at garbage keeps its set,
/// [`Tracer::take_set_aside_objects`]); returns `garbage`.
///
/// Out of line, as are `Links::take_for_analysis` and `Links::make_old`:
/// inlined into `collect_locked`, they moved the spills of its mark pass
/// (the large linked list and the parent trees took about 1.5% more
/// instructions, a large live tree 0.7%).
#[inline(never)]
fn finish_analysis(
    st: &State,
    garbage: Vec<NonNull<Header>>,
    returning: Vec<NonNull<Header>>,
) -> Vec<NonNull<Header>> {
    st.set_analysing(false);
    for header in returning {
        if let Some(links) = Header::links(header).filter(|&l| Links::is_set_aside(l)) {
            Links::push_back(st.generation(0), links);
            // It missed the full collections while it was set aside, and
            // may close a cycle that reported no loss meanwhile (its last
            // handle moved into the cycle): quiet, the next one starts
            // from it.
            // SAFETY: reached through an edge of a live member of the set.
            unsafe { header.as_ref() }.set_quiet(true);
            st.note_young_quiet();
        }
    }
    garbage
}

/// The mark pass's walk over the set. It starts from both ends, one object
/// from each in turn, and at the first root (an object with references
/// from outside) goes on from that end only. The roots, which reach the
/// rest, come first among survivors (handed on roots first) and last among
/// objects new since the last collection (a value is built before whatever
/// holds it): either way the walk meets them early, and stops once
/// everything is reached, so the objects it passed by, kept behind it at
/// their end of the buffer, are all it read for nothing. Going on from one
/// end keeps the order of sets that are all roots, which stay in memory
/// order that way.
struct Walk {
    /// The indices not walked yet.
    rest: Range<usize>,
    /// The objects kept at the front are before `front_kept`; those kept
    /// at the back, from `back_kept` on.
    front_kept: usize,
    back_kept: usize,
    /// Whether the last index came from the back.
    from_back: bool,
    /// Whether the walk still takes from both ends.
    both: bool,
    len: usize,
}

impl Walk {
    fn new(len: usize) -> Self {
        Walk {
            rest: 0..len,
            front_kept: 0,
            back_kept: len,
            // The first `next` flips it: the walk starts from the front.
            from_back: true,
            both: true,
            len,
        }
    }

    fn next(&mut self) -> Option<usize> {
        if self.both {
            self.from_back = !self.from_back;
        }
        if self.from_back {
            self.rest.next_back()
        } else {
            self.rest.next()
        }
    }

    /// The index `next` returned last holds a root: go on from its end.
    fn met_root(&mut self) {
        self.both = false;
    }

    /// Keeps `items[i]`, the index `next` returned last, behind the walk.
    fn keep<T: Copy>(&mut self, items: &mut [T], i: usize) {
        // At most one object is kept per index walked from each end: the
        // place is `i` or one walked already.
        if self.from_back {
            self.back_kept -= 1;
            items[self.back_kept] = items[i];
        } else {
            items[self.front_kept] = items[i];
            self.front_kept += 1;
        }
    }

    fn forget_kept(&mut self) {
        self.front_kept = 0;
        self.back_kept = self.len;
    }

    /// The indices of the kept objects, in ascending order.
    fn kept(&self) -> [Range<usize>; 2] {
        [0..self.front_kept, self.back_kept..self.len]
    }
}

/// Reorders `items` so that those for which `first` holds come first, and
/// returns how many they are.
fn partition_in_place<T>(items: &mut [T], mut first: impl FnMut(&T) -> bool) -> usize {
    let mut split = 0;
    for i in 0..items.len() {
        if first(&items[i]) {
            items.swap(split, i);
            split += 1;
        }
    }
    split
}

/// The links of `header`, an object of the set (or a root, a survivor or
/// garbage of it): only tracked objects are ever collected.
fn member_links(header: NonNull<Header>) -> NonNull<Links> {
    // SAFETY: members of the set are allocated and tracked: they come from
    // the collector's lists, and edges take in only tracked objects.
    unsafe { Header::tracked_links(header) }
}

fn links<'a>(header: NonNull<Header>) -> &'a Links {
    // SAFETY: the links of an allocated, tracked object.
    unsafe { member_links(header).as_ref() }
}

/// Traces the object at `header`, a member of the set. A panic unwinds
/// from here: the passes catch it around many objects at once
/// ([`steps_catching`]), since a `catch_unwind` per object costs a call.
fn trace(header: NonNull<Header>, tracer: &mut Tracer) {
    // SAFETY: members of the set are allocated, and their values alive.
    let trace = unsafe { header.as_ref() }.vtable().trace;
    // SAFETY: as above.
    unsafe { trace(header, tracer) };
}

/// Runs `step` until it returns `false`, keeping the first panic in
/// `first_panic` and going on with the next step after one. `step` must
/// leave its state ready for the next step before it runs user code (a
/// trace), and a step whose trace panicked is not run again.
fn steps_catching(first_panic: &mut Option<Panic>, mut step: impl FnMut() -> bool) {
    loop {
        match panic::catch_unwind(AssertUnwindSafe(|| while step() {})) {
            Ok(()) => return,
            Err(payload) => keep_first(first_panic, payload),
        }
    }
}

/// Moves a survivor of the set into `list`, the generation above the set's.
/// Into generation 2 (or `old`), it becomes `OLD` if it was not (it was
/// young, or a trace allocated it), and goes into the reporters' buffer if
/// it is quiet: the objects of generation 2 are all `OLD`.
fn relink(st: &State, list: NonNull<Links>, header: NonNull<Header>) {
    if list != st.generation(1) {
        st.note_old(header);
    }
    Links::push_back(list, member_links(header));
}

/// For an object acquitted by a full collection's mark pass, whose strong
/// count a trace changed while the analysis ran ([`Header::acquit`]):
/// queues its death if the trace dropped its last reference, and otherwise
/// reports the loss.
#[cold]
#[inline(never)]
fn changed_in_analysis(st: &State, header: NonNull<Header>) {
    // SAFETY: a member of the set, allocated.
    if unsafe { header.as_ref() }.strong() == 0 {
        st.defer(header);
    } else {
        report_loss(st, header);
    }
}

/// Reports, for a survivor of an analysis, the loss of a reference that a
/// trace dropped meanwhile, which the object, quiet then, could not
/// report: it goes quiet, and the next full collection starts from it.
#[cold]
#[inline(never)]
fn report_loss(st: &State, header: NonNull<Header>) {
    // SAFETY: a survivor of the set, allocated.
    unsafe { header.as_ref() }.set_quiet(true);
    st.note_loss(header);
}

fn catch(first_panic: &mut Option<Panic>, f: impl FnOnce()) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(f)) {
        keep_first(first_panic, payload);
    }
}

#[cfg(test)]
mod tests {
    use core::cell::RefCell;

    use super::{Walk, SCRATCH_KEPT};
    use crate::collector::{self, state};
    use crate::Gc;

    fn set_buffer_capacity() -> usize {
        let st = state::current().unwrap();
        let buffer = st.scratch.take();
        let capacity = buffer.capacity();
        st.scratch.set(buffer);
        capacity
    }

    /// A full collection's set, gathered from one reporter along a chain
    /// of every object, fills its buffer to generation 2's count, not to
    /// the next power of two: the buffer is kept for the next collection.
    #[test]
    #[cfg_attr(miri, ignore = "a memory policy, over 25,576 objects")]
    fn a_gathered_set_grows_no_further_than_generation_two() {
        struct Chain(Option<Gc<Chain>>);
        // SAFETY: traces its one field, which holds its only `Gc`.
        unsafe impl crate::Trace for Chain {
            fn trace(&self, tracer: &mut crate::Tracer) {
                self.0.trace(tracer);
            }
        }
        std::thread::spawn(|| {
            collector::disable();
            let count = 3 * SCRATCH_KEPT + 1000;
            let head = (0..count).fold(None, |next, _| Some(Gc::new(Chain(next))));
            let head = head.unwrap();
            // Nothing reported: every object becomes old, none analysed.
            assert_eq!(collector::collect(), 0);
            assert_eq!(state::current().unwrap().old_count.get(), count);
            drop(head.clone());
            assert_eq!(collector::collect(), 0);
            assert_eq!(set_buffer_capacity(), count);
            drop(head);
        })
        .join()
        .unwrap();
    }

    /// The set buffer keeps room for the objects of generation 2 through
    /// young collections, and gives it back once they are gone.
    #[test]
    #[cfg_attr(miri, ignore = "a memory policy, over 32,768 objects")]
    fn the_set_buffer_keeps_room_for_generation_two_while_it_lives() {
        type Node = Gc<RefCell<Option<Gc<u8>>>>;
        std::thread::spawn(|| {
            collector::disable();
            let count = 4 * SCRATCH_KEPT;
            let old: Vec<Node> = (0..count).map(|_| Gc::new(RefCell::new(None))).collect();
            // Each reports a lost reference: the full collection analyses
            // all of them.
            old.iter().for_each(|node| drop(node.clone()));
            assert_eq!(collector::collect(), 0);
            assert!(set_buffer_capacity() >= count);
            let young: Vec<Node> = (0..10).map(|_| Gc::new(RefCell::new(None))).collect();
            collector::collect_generation(0);
            assert!(
                set_buffer_capacity() >= count,
                "a young collection kept the room"
            );
            drop(old);
            collector::collect_generation(0);
            assert_eq!(
                set_buffer_capacity(),
                SCRATCH_KEPT,
                "dead objects keep no room"
            );
            drop(young);
        })
        .join()
        .unwrap();
    }

    /// Walks `roots.len()` objects, where `roots[i]` says whether object
    /// `i` is a root, and returns the order walked and the objects kept.
    fn walk(roots: &[bool]) -> (Vec<usize>, Vec<usize>) {
        let mut items: Vec<usize> = (0..roots.len()).collect();
        let mut walk = Walk::new(items.len());
        let mut order = Vec::new();
        while let Some(i) = walk.next() {
            order.push(items[i]);
            if roots[items[i]] {
                walk.met_root();
            } else {
                walk.keep(&mut items, i);
            }
        }
        let kept = walk
            .kept()
            .into_iter()
            .flatten()
            .map(|i| items[i])
            .collect();
        (order, kept)
    }

    #[test]
    fn the_walk_takes_both_ends_until_a_root_then_goes_on_from_its_end() {
        // A root last, as in objects built children first.
        let (order, kept) = walk(&[false, false, false, false, true, false]);
        assert_eq!(order, [0, 5, 1, 4, 3, 2]);
        assert_eq!(kept, [0, 1, 2, 3, 5]);
        // A root first, as among survivors.
        let (order, kept) = walk(&[true, false, false, false, false]);
        assert_eq!(order, [0, 1, 2, 3, 4]);
        assert_eq!(kept, [1, 2, 3, 4]);
        // All roots: list order is kept.
        let (order, kept) = walk(&[true; 4]);
        assert_eq!(order, [0, 1, 2, 3]);
        assert!(kept.is_empty());
        // No root: every object is kept once.
        let (order, kept) = walk(&[false; 5]);
        assert_eq!(order, [0, 4, 1, 3, 2]);
        assert_eq!(kept, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn forgotten_objects_are_not_kept() {
        let mut items = [0, 1, 2];
        let mut walk = Walk::new(items.len());
        while let Some(i) = walk.next() {
            walk.keep(&mut items, i);
        }
        walk.forget_kept();
        assert_eq!(walk.kept().into_iter().flatten().count(), 0);
    }
}

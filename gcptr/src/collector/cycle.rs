//! One collection: trial deletion over a generation and the younger ones,
//! then the PEP 442 sequence for what it finds.
//!
//! 1. **Analysis** ([`find_unreachable`]). Each object in the set starts
//!    with its strong count; tracing every object subtracts the references
//!    that come from inside the set (CPython's `update_refs` and
//!    `subtract_refs`). What is left counts references from outside: the
//!    stack, statics, untracked owners, older generations. Objects with a
//!    count above zero, and all they reach, are alive (`move_unreachable`,
//!    done here with an explicit stack, never recursion). The rest is
//!    garbage.
//! 2. **Condemn.** Survivors move up a generation. Each garbage object gets
//!    a unit of weak count held by the collector, so its memory outlives
//!    anything that happens next, and `WEAK_CLEARED`: weak references stop
//!    upgrading.
//! 3. **Finalize** every garbage object that has a finalizer not yet run,
//!    while the whole garbage set is intact.
//! 4. **Resurrection check.** If any finalizer ran, analyse the garbage set
//!    again: what a finalizer made reachable from outside survives.
//! 5. **Drop.** Mark every remaining object `DEAD` (deref panics from now
//!    on, naming `Finalize`), then drop each value. References between
//!    garbage objects die with the values; a reference that a `Drop` stored
//!    elsewhere keeps the memory (not the value) alive.
//! 6. **Release** the collector's units of weak count; memory that nothing
//!    refers to is freed.
//!
//! A panic in a finalizer, a `Drop` or a trace is caught, the collection
//! completes, and the first panic is resumed when the collector is
//! consistent again.

use core::ptr::NonNull;
use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

use super::death;
use super::state::{State, GENERATIONS};
use crate::header::{flags, Header, Links, Mark};
use crate::trace::{Action, Tracer};

type Panic = Box<dyn Any + Send + 'static>;

/// Collects `generation` and all younger ones. Returns the number of
/// objects found unreachable and reclaimed; 0 if a collection is already
/// running.
pub(crate) fn collect(st: &State, generation: usize) -> usize {
    if st.collecting.get() {
        return 0;
    }
    st.collecting.set(true);
    let mut first_panic = None;
    let reclaimed = collect_locked(st, generation, &mut first_panic);
    st.collecting.set(false);
    death::run_deferred(st);
    if let Some(payload) = first_panic {
        panic::resume_unwind(payload);
    }
    reclaimed
}

fn collect_locked(st: &State, generation: usize, first_panic: &mut Option<Panic>) -> usize {
    // Python's bookkeeping: this collection counts toward the next
    // generation's threshold, and resets its own and the younger ones'.
    if generation + 1 < GENERATIONS {
        let next = &st.counts[generation + 1];
        next.set(next.get() + 1);
    }
    for count in &st.counts[..=generation] {
        count.set(0);
    }
    let young = st.generation(generation);
    for younger in 0..generation {
        Links::append(young, st.generation(younger));
    }
    let older = st.generation((generation + 1).min(GENERATIONS - 1));

    let set = Links::headers(young);
    // The set's links become scratch; objects allocated meanwhile (by a
    // trace) start a fresh list.
    Links::link_to_self(young);
    let (survivors, garbage) = find_unreachable(st, set, first_panic);
    for &header in &survivors {
        relink(older, header);
    }
    match generation {
        1 => {
            let pending = &st.long_lived_pending;
            pending.set(pending.get() + survivors.len());
        }
        2 => {
            st.long_lived_pending.set(0);
            st.long_lived_total.set(survivors.len());
        }
        _ => {}
    }
    drop(survivors);

    let found = garbage.len();
    for &header in &garbage {
        // SAFETY: garbage objects are allocated; the unit taken here keeps
        // them so until `release`.
        let h = unsafe { header.as_ref() };
        h.inc_weak();
        h.set(flags::WEAK_CLEARED);
        Links::link_to_self(Header::links(header).expect("garbage is tracked"));
    }
    // Weak references are cleared for the whole set before any callback
    // runs, so no callback can reach a condemned object. The callbacks of
    // weak references that the garbage itself owns are cancelled (CPython's
    // rule: they die with it, and their callbacks could see it).
    if st.callback_weaks.get() > 0 {
        let mut tracer = Tracer::new(Action::CancelCallbacks);
        for &header in &garbage {
            trace(header, &mut tracer, first_panic);
        }
    }
    for &header in &garbage {
        if let Some(payload) = crate::weak_maps::notify_death(header) {
            first_panic.get_or_insert(payload);
        }
    }
    let garbage = finalize_and_recheck(st, garbage, older, first_panic);
    let resurrected = found - garbage.len();
    drop_values(st, &garbage, first_panic);
    for header in garbage {
        // SAFETY: the unit of weak count taken at condemnation.
        unsafe { death::release_weak(header) };
    }
    st.add_stats(generation, |s| {
        s.collections += 1;
        s.collected += found - resurrected;
        s.resurrected += resurrected;
    });
    found - resurrected
}

/// Runs the finalizers of `garbage`; if any ran, returns what is still
/// garbage afterwards and moves the resurrected objects to `older`.
fn finalize_and_recheck(
    st: &State,
    garbage: Vec<NonNull<Header>>,
    older: NonNull<Links>,
    first_panic: &mut Option<Panic>,
) -> Vec<NonNull<Header>> {
    let mut ran_any = false;
    for &header in &garbage {
        // SAFETY: held by the collector's unit of weak count.
        let h = unsafe { header.as_ref() };
        if h.flags() & (flags::FINALIZED | flags::DEAD) == 0 {
            h.set(flags::FINALIZED);
            ran_any = true;
            let finalize = h.vtable().finalize;
            // The finalizer borrows the value: hold a strong reference so
            // that a peer's finalizer, run from inside this one, cannot
            // drop the last reference and the value with it.
            h.inc_strong();
            // SAFETY: the value is alive: not DEAD.
            catch(first_panic, || unsafe { finalize(header) });
            if h.dec_strong() == 0 {
                // Its last references went while it finalized: it dies
                // by count now (it stays allocated: we hold a unit).
                // SAFETY: the strong count just reached zero.
                catch(first_panic, || unsafe {
                    death::strong_count_reached_zero(header)
                });
            }
        }
    }
    if !ran_any {
        return garbage;
    }
    // A finalizer may have killed garbage objects by count (they are DEAD
    // now, and their memory is held by our unit), or stored new references.
    let (live, dead): (Vec<_>, Vec<_>) = garbage
        .into_iter()
        // SAFETY: held by the collector's unit of weak count.
        .partition(|h| !unsafe { h.as_ref() }.has(flags::DEAD));
    let (resurrected, mut still_garbage) = find_unreachable(st, live, first_panic);
    for &header in &resurrected {
        relink(older, header);
        // SAFETY: the collector's unit; the strong references keep the
        // object allocated, so this cannot free it.
        unsafe { death::release_weak(header) };
    }
    for &header in &still_garbage {
        Links::link_to_self(Header::links(header).expect("garbage is tracked"));
    }
    still_garbage.extend(dead);
    still_garbage
}

/// Marks every object of `garbage` DEAD, then drops the values that are
/// not dropped yet.
fn drop_values(st: &State, garbage: &[NonNull<Header>], first_panic: &mut Option<Panic>) {
    let mut to_drop = Vec::with_capacity(garbage.len());
    for &header in garbage {
        // SAFETY: held by the collector's unit of weak count.
        let h = unsafe { header.as_ref() };
        if !h.has(flags::DEAD) {
            h.set(flags::DEAD);
            to_drop.push(header);
        }
    }
    for header in to_drop {
        st.note_death();
        // SAFETY: held by our unit; the value is not dropped yet (it was
        // not DEAD above, and DEAD objects are never dropped by anyone but
        // the one who set DEAD).
        let drop_value = unsafe { header.as_ref() }.vtable().drop_value;
        // Deaths that the drop causes nest no deeper than from the top.
        st.drop_depth.set(st.drop_depth.get() + 1);
        // SAFETY: as above.
        catch(first_panic, || unsafe { drop_value(header) });
        st.drop_depth.set(st.drop_depth.get() - 1);
    }
}

/// Trial deletion over `set`: splits it into (reachable from outside,
/// garbage). The links of `set` are scratch while this runs; the caller
/// relinks every object afterwards.
///
/// If a trace panics, some edges went unseen, and an object reachable only
/// through them would look like garbage: then the whole set is reported
/// reachable.
fn find_unreachable(
    st: &State,
    set: Vec<NonNull<Header>>,
    first_panic: &mut Option<Panic>,
) -> (Vec<NonNull<Header>>, Vec<NonNull<Header>>) {
    st.analysing.set(true);
    for &header in &set {
        // SAFETY: members of the set are allocated and tracked.
        let h = unsafe { header.as_ref() };
        // An object with no strong reference is queued to die (see
        // `death.rs`); until it has, it holds its referents from outside.
        let refs = h.strong().max(usize::from(h.strong() == 0));
        links(header).begin_analysis(refs);
    }
    let mut trace_panic = None;
    let mut tracer = Tracer::new(Action::SubtractInternal);
    for &header in &set {
        trace(header, &mut tracer, &mut trace_panic);
    }
    let returning = tracer.take_set_aside();
    let mut tracer = Tracer::new(Action::MarkReachable);
    for &header in &set {
        let l = links(header);
        if l.refs() > 0 && l.mark() == (Mark::InSet { reachable: false }) {
            l.set_mark_reachable();
            trace(header, &mut tracer, &mut trace_panic);
            while let Some(reached) = tracer.pop_pending() {
                trace(reached, &mut tracer, &mut trace_panic);
            }
        }
    }
    st.analysing.set(false);
    for header in returning {
        if let Some(links) = Header::links(header).filter(|&l| Links::is_empty(l)) {
            Links::push_back(st.generation(0), links);
        }
    }
    if let Some(payload) = trace_panic {
        first_panic.get_or_insert(payload);
        return (set, Vec::new());
    }
    set.into_iter()
        .partition(|&header| links(header).mark() == (Mark::InSet { reachable: true }))
}

fn links<'a>(header: NonNull<Header>) -> &'a Links {
    let links = Header::links(header).expect("only tracked objects are collected");
    // SAFETY: the links of an allocated, tracked object.
    unsafe { links.as_ref() }
}

fn trace(header: NonNull<Header>, tracer: &mut Tracer, first_panic: &mut Option<Panic>) {
    // SAFETY: members of the set are allocated, and their values alive.
    let trace = unsafe { header.as_ref() }.vtable().trace;
    // SAFETY: as above.
    catch(first_panic, || unsafe { trace(header, tracer) });
}

fn relink(list: NonNull<Links>, header: NonNull<Header>) {
    Links::push_back(list, Header::links(header).expect("survivors are tracked"));
}

fn catch(first_panic: &mut Option<Panic>, f: impl FnOnce()) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(f)) {
        first_panic.get_or_insert(payload);
    }
}

//! What a review of the collector's control API checked against CPython's
//! `gc` module and the functions' docs: `collect`, `collect_generation`,
//! `enable`/`disable`/`is_enabled`, `count`, `threshold`/`set_threshold`
//! (edge values), `stats` and `freeze`/`unfreeze`/`freeze_count`, called
//! from a finalizer, a `Drop` and a death callback run by a collection, a
//! hand-written trace during an analysis, and a thread-local's destructor
//! at thread exit. Every test runs on a thread of its own, so each starts
//! with a fresh collector.

mod support;

use std::cell::{Cell, RefCell};
use std::thread;

use gcptr::{Finalize, Gc, GenerationStats, Trace, Tracer};

fn on_fresh_thread(f: impl FnOnce() + Send + 'static) {
    thread::spawn(f).join().unwrap();
}

/// What the control API answered at one moment.
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    collect: usize,
    collect_young: usize,
    count: [usize; 3],
    threshold: [usize; 3],
    enabled: bool,
    stats: [GenerationStats; 3],
    frozen: usize,
}

thread_local! {
    static SEEN: RefCell<Vec<Seen>> = const { RefCell::new(Vec::new()) };
}

/// Calls every part of the control API: two collections (which return 0
/// when nested), the readers, and then `freeze`, `set_threshold` and
/// `disable`, whose effects the tests check afterwards.
fn look_and_meddle() {
    let collect = gcptr::collect();
    let collect_young = gcptr::collect_generation(0);
    let seen = Seen {
        collect,
        collect_young,
        count: gcptr::count(),
        threshold: gcptr::threshold(),
        enabled: gcptr::is_enabled(),
        stats: gcptr::stats(),
        frozen: gcptr::freeze_count(),
    };
    let _ = SEEN.try_with(|s| s.borrow_mut().push(seen));
    gcptr::freeze();
    gcptr::set_threshold([5, 6, 7]);
    gcptr::disable();
}

fn take_seen() -> Vec<Seen> {
    SEEN.with(|s| std::mem::take(&mut *s.borrow_mut()))
}

/// A self-cycle whose finalizer runs `look_and_meddle`.
#[derive(Trace)]
#[gc(finalize)]
struct Finalized {
    me: RefCell<Option<Gc<Finalized>>>,
}

impl Finalize for Finalized {
    fn finalize(&self) {
        look_and_meddle();
    }
}

/// A self-cycle whose `Drop` runs `look_and_meddle`.
#[derive(Trace)]
struct Dropped {
    me: RefCell<Option<Gc<Dropped>>>,
}

impl Drop for Dropped {
    fn drop(&mut self) {
        look_and_meddle();
    }
}

/// A self-cycle whose hand-written trace runs `look_and_meddle` while it
/// is armed, once.
struct Traced {
    armed: Cell<bool>,
    me: RefCell<Option<Gc<Traced>>>,
}

// SAFETY: visits the one `Gc` it owns; the code it runs borrows none of
// its `RefCell`s.
unsafe impl Trace for Traced {
    fn trace(&self, tracer: &mut Tracer) {
        if self.armed.replace(false) {
            look_and_meddle();
        }
        self.me.trace(tracer);
    }
}

/// A plain tracked node: kept alive, or made a garbage self-cycle.
#[derive(Trace)]
struct Link {
    next: RefCell<Option<Gc<Link>>>,
}

fn tracked() -> Gc<Link> {
    Gc::new(Link {
        next: RefCell::new(None),
    })
}

fn garbage_cycle() {
    let a = tracked();
    *a.next.borrow_mut() = Some(a.clone());
}

/// CPython's `gc_collect_generations` over a program that only allocates
/// tracked objects and keeps them (nothing is garbage, and no collection
/// runs user code): counts, which generation each automatic collection
/// takes, and the 25% rule. (gcptr waits longer after full collections
/// that analysed and found nothing; these skip their analysis.)
struct Model {
    thresholds: [usize; 3],
    counts: [usize; 3],
    sizes: [usize; 3],
    collections: [usize; 3],
    pending: usize,
    total: usize,
}

impl Model {
    fn allocate(&mut self) {
        self.counts[0] += 1;
        if self.thresholds[0] != 0 && self.counts[0] > self.thresholds[0] {
            for g in (0..3).rev() {
                if self.counts[g] <= self.thresholds[g] {
                    continue;
                }
                if g == 2 && self.pending < self.total / 4 {
                    continue;
                }
                if g < 2 {
                    self.counts[g + 1] += 1;
                }
                for c in &mut self.counts[..=g] {
                    *c = 0;
                }
                let moved: usize = self.sizes[..=g].iter().sum();
                for s in &mut self.sizes[..=g] {
                    *s = 0;
                }
                match g {
                    2 => {
                        self.sizes[2] = moved;
                        self.total = moved;
                        self.pending = 0;
                    }
                    1 => {
                        self.sizes[2] += moved;
                        self.pending += moved;
                    }
                    _ => self.sizes[1] += moved,
                }
                self.collections[g] += 1;
                break;
            }
        }
        self.sizes[0] += 1;
    }
}

fn check_against_model(thresholds: [usize; 3], allocations: usize) {
    on_fresh_thread(move || {
        gcptr::set_threshold(thresholds);
        let mut model = Model {
            thresholds,
            counts: [0; 3],
            sizes: [0; 3],
            collections: [0; 3],
            pending: 0,
            total: 0,
        };
        let mut keep = Vec::new();
        for step in 0..allocations {
            keep.push(tracked());
            model.allocate();
            let stats = gcptr::stats();
            assert_eq!(gcptr::count(), model.counts, "{thresholds:?}, step {step}");
            assert_eq!(
                stats.map(|s| s.collections),
                model.collections,
                "{thresholds:?}, step {step}"
            );
            assert_eq!(stats.map(|s| s.collected), [0; 3]);
        }
    });
}

struct AtExit(std::sync::mpsc::Sender<String>, Option<Gc<Link>>);

impl Drop for AtExit {
    fn drop(&mut self) {
        let _ = self.0.send(format!(
            "threshold {:?} enabled {} count {:?} collections {:?} frozen {}",
            gcptr::threshold(),
            gcptr::is_enabled(),
            gcptr::count(),
            gcptr::stats().map(|s| s.collections),
            gcptr::freeze_count(),
        ));
    }
}

thread_local! {
    static AT_EXIT: RefCell<Option<AtExit>> = const { RefCell::new(None) };
}

fn exit_with(hold: bool) -> Vec<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        AT_EXIT.with(|a| *a.borrow_mut() = Some(AtExit(tx, None)));
        gcptr::disable();
        gcptr::set_threshold([5, 6, 7]);
        let held = tracked();
        gcptr::collect();
        gcptr::freeze();
        if hold {
            AT_EXIT.with(|a| a.borrow_mut().as_mut().unwrap().1 = Some(held));
        }
    })
    .join()
    .unwrap();
    rx.try_iter().collect()
}

/// A self-cycle of `T`, dropped: garbage for the next collection.
fn drop_self_cycle<T: Trace + 'static>(value: T, me: impl Fn(&T) -> &RefCell<Option<Gc<T>>>) {
    let object = Gc::new(value);
    *me(&object).borrow_mut() = Some(object.clone());
}

/// A finalizer run by `collect()`: nested `collect()` and
/// `collect_generation(0)` return 0 and leave `stats()` alone (CPython's
/// `gc.collect()` inside a collection returns 0 too), the running
/// collection is counted once it ends, the counts read as `begin` reset
/// them, `freeze` does nothing (its docs say so), and `set_threshold` and
/// `disable` take effect.
#[test]
fn the_control_api_from_a_finalizer_run_by_a_collection() {
    on_fresh_thread(|| {
        let keep = tracked();
        drop_self_cycle(
            Finalized {
                me: RefCell::new(None),
            },
            |f| &f.me,
        );
        assert_eq!(gcptr::count(), [2, 0, 0]);
        assert_eq!(gcptr::collect(), 1);
        let seen = take_seen();
        assert_eq!(
            seen,
            [Seen {
                collect: 0,
                collect_young: 0,
                count: [0, 0, 0],
                threshold: [700, 10, 10],
                enabled: true,
                stats: [GenerationStats::default(); 3],
                frozen: 0,
            }]
        );
        let stats = gcptr::stats();
        assert_eq!(stats.map(|s| s.collections), [0, 0, 1]);
        assert_eq!(stats.map(|s| s.collected), [0, 0, 1]);
        assert_eq!(gcptr::freeze_count(), 0, "freeze did nothing");
        assert_eq!(gcptr::threshold(), [5, 6, 7]);
        assert!(!gcptr::is_enabled());
        assert!(gcptr::is_tracked(&keep));
    });
}

/// A `Drop` run by a collection sees the same as a finalizer; a `Drop`
/// run by a death by count (no collection under way) collects for real,
/// is counted, and freezes.
#[test]
fn the_control_api_from_a_drop_run_by_a_collection_and_by_count() {
    on_fresh_thread(|| {
        let keep = tracked();
        drop_self_cycle(
            Dropped {
                me: RefCell::new(None),
            },
            |d| &d.me,
        );
        assert_eq!(gcptr::collect(), 1);
        let seen = take_seen();
        assert_eq!(seen.len(), 1);
        assert_eq!((seen[0].collect, seen[0].collect_young), (0, 0));
        assert_eq!(gcptr::stats()[2].collections, 1);
        assert_eq!(gcptr::freeze_count(), 0);

        gcptr::enable();
        gcptr::set_threshold([700, 10, 10]);
        let by_count = Gc::new(Dropped {
            me: RefCell::new(None),
        });
        garbage_cycle();
        drop(by_count);
        let seen = take_seen();
        assert_eq!((seen[0].collect, seen[0].collect_young), (1, 0));
        assert_eq!(seen[0].stats.map(|s| s.collections), [1, 0, 2]);
        // `keep` was frozen by the `Drop`.
        assert_eq!(gcptr::freeze_count(), 1);
        assert_eq!(gcptr::count(), [0, 1, 0]);
        drop(keep);
        assert_eq!(gcptr::freeze_count(), 0);
    });
}

/// A death callback run by a collection (after the weak references are
/// cleared, before the drops): nested collections return 0, and `freeze`
/// does nothing; run by a death by count, `freeze` works.
#[test]
fn the_control_api_from_a_death_callback() {
    on_fresh_thread(|| {
        let keep = tracked();
        let a = tracked();
        *a.next.borrow_mut() = Some(a.clone());
        let _watch = Gc::on_death(&a, look_and_meddle);
        drop(a);
        assert_eq!(gcptr::collect(), 1);
        let seen = take_seen();
        assert_eq!(seen.len(), 1);
        assert_eq!((seen[0].collect, seen[0].collect_young), (0, 0));
        assert_eq!(seen[0].stats, [GenerationStats::default(); 3]);
        assert_eq!(gcptr::freeze_count(), 0);
        assert_eq!(gcptr::stats()[2].collections, 1);

        let b = tracked();
        let _watch = Gc::on_death(&b, look_and_meddle);
        drop(b);
        assert_eq!(take_seen().len(), 1);
        assert_eq!(gcptr::freeze_count(), 1, "`keep`");
        drop(keep);
    });
}

/// A hand-written trace during an analysis: the readers answer, nested
/// collections return 0, `freeze` does nothing. `freeze_count()` answered
/// 0 there whatever was frozen (it refused while an analysis ran, though
/// the permanent list is never part of one); it now counts.
#[test]
fn the_control_api_from_a_trace_during_an_analysis() {
    on_fresh_thread(|| {
        let frozen = tracked();
        gcptr::freeze();
        let a = Gc::new(Traced {
            armed: Cell::new(false),
            me: RefCell::new(None),
        });
        *a.me.borrow_mut() = Some(a.clone());
        a.armed.set(true);
        drop(a);
        assert_eq!(gcptr::collect(), 1);
        let seen = take_seen();
        assert_eq!(seen.len(), 1);
        assert_eq!((seen[0].collect, seen[0].collect_young), (0, 0));
        assert_eq!(seen[0].count, [0, 0, 0]);
        assert_eq!(seen[0].frozen, 1, "the frozen object");
        assert_eq!(gcptr::freeze_count(), 1);
        assert_eq!(gcptr::threshold(), [5, 6, 7]);
        assert!(!gcptr::is_enabled());
        drop(frozen);
        assert_eq!(gcptr::freeze_count(), 0);
    });
}

/// Automatic collections at default and edge thresholds (1, 0 for the old
/// generations, `usize::MAX`, all zeros) follow CPython's
/// `gc_collect_generations` step by step: the same counts after every
/// tracked allocation and the same collections per generation, including
/// the 25% rule. No overflow in debug builds, no collection on every
/// allocation once the threshold is passed.
#[test]
fn automatic_collections_follow_cpythons_schedule_at_edge_thresholds() {
    for thresholds in [
        [700, 10, 10],
        [1, 1, 1],
        [1, 0, 0],
        [2, 3, 1],
        [3, usize::MAX, 0],
        [usize::MAX, 0, 0],
        [0, 0, 0],
        [0, 1, 1],
        [1, usize::MAX, usize::MAX],
    ] {
        check_against_model(thresholds, support::scaled(3000));
    }
}

/// `set_threshold([0, ..])` turns automatic collection off, as CPython's
/// `gc.set_threshold(0)` does, and so does `disable()`; generation 0's
/// count grows past any threshold meanwhile. Turning it back on collects
/// once, at the next tracked allocation (not an untracked one; and the
/// object allocated is not counted, as in CPython up to 3.11, which
/// collects before it links the object), then after `threshold`
/// allocations again, not on each one.
#[test]
fn turning_automatic_collection_back_on_collects_once_then_on_schedule() {
    for by_threshold in [true, false] {
        on_fresh_thread(move || {
            if by_threshold {
                gcptr::set_threshold([0, 10, 10]);
            } else {
                gcptr::disable();
            }
            for _ in 0..2000 {
                garbage_cycle();
            }
            assert_eq!(gcptr::stats()[0].collections, 0);
            assert_eq!(gcptr::count(), [2000, 0, 0]);
            if by_threshold {
                gcptr::set_threshold([700, 10, 10]);
            } else {
                gcptr::enable();
            }
            let _ = Gc::new(5u64);
            assert_eq!(gcptr::stats()[0].collections, 0);
            garbage_cycle();
            assert_eq!(gcptr::stats()[0].collections, 1);
            assert_eq!(gcptr::stats()[0].collected, 2000);
            assert_eq!(gcptr::count(), [0, 1, 0]);
            for _ in 0..700 {
                garbage_cycle();
            }
            assert_eq!(gcptr::stats()[0].collections, 1);
            assert_eq!(gcptr::count(), [700, 1, 0]);
            garbage_cycle();
            assert_eq!(gcptr::stats()[0].collections, 2);
            assert_eq!(gcptr::stats()[0].collected, 2701);
            assert_eq!(gcptr::collect(), 1);
        });
    }
}

/// `collect_generation(3)` and `collect_generation(usize::MAX)` panic
/// (CPython: `ValueError: invalid generation`) before touching anything:
/// counts, stats and the garbage are as they were, and the collector
/// works after.
#[test]
fn collecting_a_generation_out_of_range_panics_and_changes_nothing() {
    on_fresh_thread(|| {
        let keep = tracked();
        gcptr::collect_generation(0);
        garbage_cycle();
        let (count, stats) = (gcptr::count(), gcptr::stats());
        assert_eq!(count, [1, 1, 0]);
        for generation in [3, usize::MAX] {
            let payload = std::panic::catch_unwind(|| gcptr::collect_generation(generation))
                .expect_err("no such generation");
            assert!(support::panic_message(&payload).contains("does not exist"));
            assert_eq!((gcptr::count(), gcptr::stats()), (count, stats));
        }
        assert_eq!(gcptr::collect_generation(1), 1);
        assert_eq!(gcptr::count(), [0, 0, 1]);
        drop(keep);
    });
}

/// `freeze` moves every tracked object, of every generation, into the
/// permanent generation once: a second `freeze` adds only what came since,
/// `count()[0]` goes to 0 and the older counts stay (CPython's
/// `gc_freeze_impl`); deaths of frozen objects leave `freeze_count` exact
/// and never take `count()[0]` below 0. `unfreeze` twice moves them back
/// once: a full collection finds the frozen garbage exactly once.
#[test]
fn freeze_and_unfreeze_neither_lose_nor_double_count_objects() {
    on_fresh_thread(|| {
        gcptr::disable();
        let old = tracked();
        gcptr::collect_generation(1); // generation 2
        let middle = tracked();
        gcptr::collect_generation(0); // generation 1
        let young = tracked();
        garbage_cycle();
        assert_eq!(gcptr::count(), [2, 1, 1]);
        gcptr::freeze();
        assert_eq!(gcptr::freeze_count(), 4);
        assert_eq!(gcptr::count(), [0, 1, 1]);
        gcptr::freeze();
        assert_eq!(gcptr::freeze_count(), 4);
        let after = tracked();
        gcptr::freeze();
        assert_eq!(gcptr::freeze_count(), 5);
        // Frozen objects die by count: the count stays at 0.
        drop((old, middle));
        assert_eq!(gcptr::freeze_count(), 3);
        assert_eq!(gcptr::count(), [0, 1, 1]);
        assert_eq!(gcptr::collect(), 0, "the frozen cycle is not looked at");
        gcptr::unfreeze();
        gcptr::unfreeze();
        assert_eq!(gcptr::freeze_count(), 0);
        assert_eq!(gcptr::collect(), 1, "the frozen cycle, once");
        assert_eq!(gcptr::stats()[2].collected, 1);
        assert_eq!(gcptr::collect(), 0);
        drop((young, after));
        assert_eq!(gcptr::count(), [0, 0, 0]);
    });
}

/// An object that `Gc::get_mut` set aside is in no list: `freeze` does not
/// take it (`freeze_count` leaves it out), and at its next lost reference
/// it comes back into generation 0, where a collection finds it while the
/// others stay frozen.
#[test]
fn an_object_set_aside_by_get_mut_is_not_frozen_and_comes_back_young() {
    on_fresh_thread(|| {
        gcptr::disable();
        let other = tracked();
        let mut lent = tracked();
        let next = Gc::get_mut(&mut lent).expect("unique").next.get_mut();
        *next = None;
        gcptr::freeze();
        assert_eq!(gcptr::freeze_count(), 1, "`other` only");
        *lent.next.borrow_mut() = Some(lent.clone());
        drop(lent); // a lost reference: back into generation 0
        assert_eq!(gcptr::freeze_count(), 1);
        assert_eq!(gcptr::collect_generation(0), 1);
        assert_eq!(gcptr::freeze_count(), 1);
        gcptr::unfreeze();
        drop(other);
        assert_eq!(gcptr::freeze_count(), 0);
    });
}

thread_local! {
    static RESCUED: RefCell<Option<Gc<Rescuer>>> = const { RefCell::new(None) };
}

/// A self-cycle whose finalizer saves it in `RESCUED`.
#[derive(Trace)]
#[gc(finalize)]
struct Rescuer {
    me: RefCell<Option<Gc<Rescuer>>>,
}

impl Finalize for Rescuer {
    fn finalize(&self) {
        let me = self.me.borrow().clone();
        RESCUED.with(|r| *r.borrow_mut() = me);
    }
}

/// `stats()` agrees with what the collections returned: `collected` sums
/// their results, per generation, automatic ones included; an object a
/// finalizer resurrected is in `resurrected`, not in `collected` (nor in
/// `collect()`'s result), and is counted in `collected` when it dies in a
/// later collection, its finalizer not run again; `uncollectable` stays 0;
/// `skipped` counts the automatic collections that had nothing to find,
/// within `collections`.
#[test]
fn stats_agree_with_what_collections_return() {
    on_fresh_thread(|| {
        gcptr::set_threshold([10, 10, 10]);
        let mut returned = [0; 3];
        for _ in 0..3 {
            garbage_cycle();
        }
        drop_self_cycle(
            Rescuer {
                me: RefCell::new(None),
            },
            |r| &r.me,
        );
        returned[0] += gcptr::collect_generation(0);
        assert_eq!(returned[0], 3);
        let rescued = RESCUED
            .with(|r| r.borrow_mut().take())
            .expect("resurrected");
        drop(rescued);
        returned[1] += gcptr::collect_generation(1);
        assert_eq!(returned[1], 1, "dies now, not finalized again");
        assert!(RESCUED.with(|r| r.borrow().is_none()));
        // Building only: automatic collections skip their analysis.
        let keep: Vec<_> = (0..25).map(|_| tracked()).collect();
        returned[2] += gcptr::collect();
        let stats = gcptr::stats();
        assert_eq!(stats.map(|s| s.collected), returned);
        assert_eq!(stats[0].resurrected, 1);
        assert_eq!(stats.map(|s| s.uncollectable), [0; 3]);
        assert_eq!(stats[0].collections, 3);
        assert_eq!(stats[0].skipped, 2);
        assert!(stats.iter().all(|s| s.skipped <= s.collections));
        drop(keep);
    });
}

/// A thread's `disable()`, `set_threshold` and `stats()` in a
/// thread-local's destructor that runs after the collector's first exit
/// guard (the thread-local was first used before the thread's first
/// tracked `Gc`). They held when that guard left survivors (it parks the
/// state), but when it left none it dropped the state, and the destructor
/// met a fresh one: thresholds `[700, 10, 10]`, automatic collection on,
/// stats zero. The settings and figures now carry over to the new state.
#[test]
fn a_threads_settings_hold_in_its_late_thread_local_destructors() {
    for hold in [false, true] {
        assert_eq!(
            exit_with(hold),
            ["threshold [5, 6, 7] enabled false count [0, 0, 0] collections [0, 0, 2] frozen 0"],
            "survivors: {hold}"
        );
    }
}

/// A thread-local whose destructor only asks the control API.
struct Asks;

impl Drop for Asks {
    fn drop(&mut self) {
        let _ = (
            gcptr::count(),
            gcptr::threshold(),
            gcptr::is_enabled(),
            gcptr::stats(),
            gcptr::freeze_count(),
        );
    }
}

/// Counts the drops of [`Closing`]'s cycle, from any thread-local's
/// destructor.
static CYCLE_DROPS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A node of the cycle that [`Closing`]'s destructor makes and lets go.
#[derive(Trace)]
struct Member {
    other: RefCell<Option<Gc<Member>>>,
}

impl Drop for Member {
    fn drop(&mut self) {
        CYCLE_DROPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A thread-local whose destructor makes a two-object cycle and drops it.
struct Closing;

impl Drop for Closing {
    fn drop(&mut self) {
        let a = Gc::new(Member {
            other: RefCell::new(None),
        });
        let b = Gc::new(Member {
            other: RefCell::new(Some(a.clone())),
        });
        *a.other.borrow_mut() = Some(b);
    }
}

thread_local! {
    static CLOSING: RefCell<Option<Closing>> = const { RefCell::new(None) };
}

/// Declares one thread-local per name, each holding an [`Asks`]: one
/// destructor each.
macro_rules! askers {
    ($($key:ident)*) => {
        thread_local! {
            $(static $key: RefCell<Option<Asks>> = const { RefCell::new(None) };)*
        }
        const ASKERS: &[&std::thread::LocalKey<RefCell<Option<Asks>>>] = &[$(&$key),*];
    };
}

askers!(A0 A1 A2 A3 A4 A5 A6 A7 A8 A9 A10 A11 A12 A13 A14 A15 A16 A17 A18 A19 A20 A21 A22 A23);

/// Questions asked in thread-local destructors at thread exit spend none
/// of the collector's exit guards: they read a parked state, or what a
/// dropped one left, without making or waking one. Twenty-four
/// destructors that only ask (more than there are guards) run before the
/// one that makes and lets go a cycle, which is still collected before the
/// thread is joined. When each question made a state, they used up the
/// guards, and the cycle leaked.
#[test]
fn questions_at_thread_exit_spend_no_exit_guard() {
    CYCLE_DROPS.store(0, std::sync::atomic::Ordering::Relaxed);
    thread::spawn(|| {
        // Destroyed in the reverse order of first use: the collector's
        // guard first, then the askers, then `CLOSING`.
        CLOSING.with(|c| *c.borrow_mut() = Some(Closing));
        for key in ASKERS {
            key.with(|a| *a.borrow_mut() = Some(Asks));
        }
        drop(tracked());
        gcptr::collect();
    })
    .join()
    .unwrap();
    assert_eq!(CYCLE_DROPS.load(std::sync::atomic::Ordering::Relaxed), 2);
}

/// A node of a two-object cycle that counts its drops in `drops`.
struct Tally {
    drops: &'static std::sync::atomic::AtomicUsize,
    other: RefCell<Option<Gc<Tally>>>,
}

// SAFETY: visits the one `Gc` it owns.
unsafe impl Trace for Tally {
    fn trace(&self, tracer: &mut Tracer) {
        self.other.trace(tracer);
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        self.drops
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Makes a two-object cycle of [`Tally`] nodes and lets it go.
fn let_go_a_tally_cycle(drops: &'static std::sync::atomic::AtomicUsize) {
    let a = Gc::new(Tally {
        drops,
        other: RefCell::new(None),
    });
    let b = Gc::new(Tally {
        drops,
        other: RefCell::new(Some(a.clone())),
    });
    *a.other.borrow_mut() = Some(b);
}

/// A thread-local destructor that reports what the readers answer, then
/// (if `drops` is set) makes a cycle and lets it go.
struct Round(
    std::sync::mpsc::Sender<String>,
    Option<&'static std::sync::atomic::AtomicUsize>,
);

impl Drop for Round {
    fn drop(&mut self) {
        let stats = gcptr::stats();
        let _ = self.0.send(format!(
            "threshold {:?} enabled {} count {:?} frozen {} collected {:?}",
            gcptr::threshold(),
            gcptr::is_enabled(),
            gcptr::count(),
            gcptr::freeze_count(),
            stats.map(|s| s.collected),
        ));
        let _ = self
            .0
            .send(format!("collections {:?}", stats.map(|s| s.collections)));
        if let Some(drops) = self.1 {
            let_go_a_tally_cycle(drops);
        }
    }
}

thread_local! {
    static ROUND_0: RefCell<Option<Round>> = const { RefCell::new(None) };
    static ROUND_1: RefCell<Option<Round>> = const { RefCell::new(None) };
    static ROUND_2: RefCell<Option<Round>> = const { RefCell::new(None) };
    static ROUND_3: RefCell<Option<Round>> = const { RefCell::new(None) };
    static PARKED_HOLDER: RefCell<Option<Gc<Tally>>> = const { RefCell::new(None) };
}

/// The lines the [`Round`]s sent, apart from their `collections`, which are
/// checked to grow strictly, round after round, and returned last.
fn split_rounds(lines: Vec<String>) -> (Vec<String>, Vec<String>) {
    let (collections, seen): (Vec<_>, Vec<_>) = lines
        .into_iter()
        .partition(|l| l.starts_with("collections"));
    (seen, collections)
}

/// Stats carried over several create/drop rounds at thread exit: each late
/// destructor reads what the state dropped before it left
/// (`SETTINGS_LEFT`), then makes a state (from those settings) by letting a
/// cycle go, which the next exit guard collects before dropping the state
/// again. Every round's reading adds the cycle the round before collected
/// to the carried `collected`, with the thread's own thresholds and
/// `disable()`; counts and frozen objects start at zero in each new state.
#[test]
fn stats_carry_over_several_rounds_of_states_made_and_dropped_at_exit() {
    static DROPS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        // Destroyed after the collector's first guard, in this order:
        // ROUND_3, ROUND_2, ROUND_1, then ROUND_0 (which only reads).
        for (round, key) in [&ROUND_0, &ROUND_1, &ROUND_2, &ROUND_3]
            .into_iter()
            .enumerate()
        {
            let drops = (round > 0).then_some(&DROPS);
            key.with(|r| *r.borrow_mut() = Some(Round(tx.clone(), drops)));
        }
        gcptr::set_threshold([5, 6, 7]);
        gcptr::disable();
        drop(tracked());
    })
    .join()
    .unwrap();
    let (seen, collections) = split_rounds(rx.try_iter().collect());
    let expected: Vec<String> = (0..4)
        .map(|round| {
            format!(
                "threshold [5, 6, 7] enabled false count [0, 0, 0] frozen 0 collected [0, 0, {}]",
                2 * round
            )
        })
        .collect();
    assert_eq!(seen, expected);
    let full: Vec<usize> = collections
        .iter()
        .map(|l| {
            l.rsplit(' ')
                .next()
                .unwrap()
                .trim_end_matches(']')
                .parse()
                .unwrap()
        })
        .collect();
    assert!(full.windows(2).all(|w| w[0] < w[1]), "{collections:?}");
    assert_eq!(DROPS.load(std::sync::atomic::Ordering::Relaxed), 6);
}

/// Questions asked while the state is parked (a survivor is held by a
/// thread-local destroyed last) read it in place, as often as they like:
/// twenty-four destructors that only ask, and a `Round` that reports the
/// parked state's settings, leave every exit guard for the destructor
/// after them, which lets a cycle go (collected), and for the holder's,
/// whose survivor then dies by count.
#[test]
fn questions_to_a_parked_state_read_it_in_place_and_spend_no_exit_guard() {
    static DROPS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        // Destroyed in the reverse order: the collector's guard (which
        // parks, the holder's node surviving), the reporting round, the
        // askers, the round that lets a cycle go, then the holder.
        PARKED_HOLDER.with(|_| ());
        ROUND_1.with(|r| *r.borrow_mut() = Some(Round(tx.clone(), Some(&DROPS))));
        for key in ASKERS {
            key.with(|a| *a.borrow_mut() = Some(Asks));
        }
        ROUND_0.with(|r| *r.borrow_mut() = Some(Round(tx.clone(), None)));
        gcptr::set_threshold([5, 6, 7]);
        let held = Gc::new(Tally {
            drops: &DROPS,
            other: RefCell::new(None),
        });
        gcptr::collect();
        PARKED_HOLDER.with(|h| *h.borrow_mut() = Some(held));
    })
    .join()
    .unwrap();
    let (seen, collections) = split_rounds(rx.try_iter().collect());
    assert_eq!(
        seen,
        [
            "threshold [5, 6, 7] enabled true count [0, 0, 0] frozen 0 collected [0, 0, 0]",
            "threshold [5, 6, 7] enabled true count [0, 0, 0] frozen 0 collected [0, 0, 0]",
        ]
    );
    assert_eq!(collections[0], collections[1], "no collection between");
    assert_eq!(DROPS.load(std::sync::atomic::Ordering::Relaxed), 3);
}

/// On a brand-new thread the readers still make the collector, as
/// `current()` did before they read in place: whichever is called first
/// answers the defaults (`[700, 10, 10]`, enabled, zero counts, stats and
/// frozen objects), and the setters and `freeze` called after it act on
/// the same state.
#[test]
fn the_readers_first_on_a_fresh_thread_answer_the_defaults_and_make_the_collector() {
    type Reader = fn() -> String;
    let readers: [Reader; 5] = [
        || format!("{:?}", gcptr::threshold()),
        || format!("{}", gcptr::is_enabled()),
        || format!("{:?}", gcptr::count()),
        || format!("{:?}", gcptr::stats()[2]),
        || format!("{}", gcptr::freeze_count()),
    ];
    let expected = [
        "[700, 10, 10]".to_string(),
        "true".into(),
        "[0, 0, 0]".into(),
        format!("{:?}", GenerationStats::default()),
        "0".into(),
    ];
    for (reader, expected) in readers.into_iter().zip(expected) {
        on_fresh_thread(move || {
            assert_eq!(reader(), expected);
            gcptr::set_threshold([1_000, 2, 3]);
            assert_eq!(gcptr::threshold(), [1_000, 2, 3]);
            gcptr::disable();
            assert!(!gcptr::is_enabled());
            let kept = tracked();
            assert_eq!(gcptr::count(), [1, 0, 0]);
            gcptr::freeze();
            assert_eq!(gcptr::freeze_count(), 1);
            drop(kept);
            assert_eq!(gcptr::stats()[2].collections, 0);
        });
    }
}

/// A thread that never used gcptr before its thread-locals' destructors:
/// the first question makes a state (it answers the defaults), and the
/// ones after it, once that state's guard dropped it, answer from what it
/// left: the same defaults, with the guard's collection counted.
#[test]
fn questions_in_destructors_of_a_thread_that_never_used_gcptr_answer_the_defaults() {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        // ROUND_1 is destroyed first, ROUND_0 after it.
        ROUND_0.with(|r| *r.borrow_mut() = Some(Round(tx.clone(), None)));
        ROUND_1.with(|r| *r.borrow_mut() = Some(Round(tx.clone(), None)));
    })
    .join()
    .unwrap();
    let (seen, collections) = split_rounds(rx.try_iter().collect());
    let defaults =
        "threshold [700, 10, 10] enabled true count [0, 0, 0] frozen 0 collected [0, 0, 0]";
    assert_eq!(seen, [defaults, defaults]);
    assert_eq!(
        collections,
        ["collections [0, 0, 0]", "collections [0, 0, 1]"]
    );
}

/// Once the thread's collector is gone for good (its exit guards used up
/// by destructors that let objects go), the readers answer "no
/// collector", not the settings a dropped state left before: thresholds
/// `[0, 0, 0]`, disabled, zero counts, stats and frozen objects.
#[test]
fn once_the_collector_is_gone_the_readers_answer_nothing_left_over() {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        // Destroyed after the fillers, which use up the guards.
        ROUND_0.with(|r| *r.borrow_mut() = Some(Round(tx.clone(), None)));
        support::touch_exit_guard_fillers();
        gcptr::set_threshold([5, 6, 7]);
        drop(tracked());
        gcptr::collect();
        support::fill_exit_guard_fillers(0);
    })
    .join()
    .unwrap();
    let (seen, collections) = split_rounds(rx.try_iter().collect());
    assert_eq!(
        seen,
        ["threshold [0, 0, 0] enabled false count [0, 0, 0] frozen 0 collected [0, 0, 0]"]
    );
    assert_eq!(collections, ["collections [0, 0, 0]"]);
}

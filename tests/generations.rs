//! Generations, thresholds, counts, automatic collection and freezing, as
//! Python's `gc` module has them. Every test runs on its own thread, so
//! each starts with a fresh collector.

mod support;

use std::cell::RefCell;
use std::thread;

use gcptr::Gc;

use support::{take_drops, Node, Reporter};

fn on_fresh_thread(f: impl FnOnce() + Send + 'static) {
    thread::spawn(f).join().unwrap();
}

/// Allocates a garbage self-cycle with id `id`.
fn garbage(id: u32) {
    let node = Node::new(id);
    node.link(&node);
}

#[test]
fn count_follows_tracked_allocations_and_deaths_only() {
    on_fresh_thread(|| {
        assert_eq!(gcptr::count(), [0, 0, 0]);
        let a = Node::new(1);
        let b = Node::new(2);
        let _plain = Gc::new(5u64);
        let _text = Gc::new(String::from("untracked"));
        let _numbers = Gc::new(vec![1u64, 2, 3]);
        assert_eq!(gcptr::count(), [2, 0, 0]);
        drop(a);
        assert_eq!(gcptr::count(), [1, 0, 0]);
        gcptr::collect_generation(0);
        assert_eq!(gcptr::count(), [0, 1, 0]);
        gcptr::collect_generation(0);
        gcptr::collect_generation(1);
        assert_eq!(gcptr::count(), [0, 0, 1]);
        gcptr::collect();
        assert_eq!(gcptr::count(), [0, 0, 0]);
        drop(b);
        take_drops();
    });
}

#[test]
fn survivors_are_promoted_and_young_collections_leave_old_garbage_alone() {
    on_fresh_thread(|| {
        gcptr::disable();
        let survivor = Node::new(1);
        survivor.link(&survivor);
        gcptr::collect_generation(0); // survivor -> gen 1
        gcptr::collect_generation(1); // survivor -> gen 2
        let weak = Gc::downgrade(&survivor);
        drop(survivor); // garbage now, but in generation 2
        garbage(2); // garbage in generation 0
        assert_eq!(gcptr::collect_generation(0), 1);
        assert_eq!(take_drops(), [2]);
        assert_eq!(gcptr::collect_generation(1), 0);
        assert!(
            weak.upgrade().is_some(),
            "generation 2 is not collected by a gen-1 collection"
        );
        assert_eq!(gcptr::collect_generation(2), 1);
        assert_eq!(take_drops(), [1]);
        assert!(weak.upgrade().is_none());
    });
}

#[test]
fn generation_one_collection_includes_generation_zero() {
    on_fresh_thread(|| {
        gcptr::disable();
        garbage(1);
        gcptr::collect_generation(0);
        take_drops();
        let old = Node::new(2);
        old.link(&old);
        gcptr::collect_generation(0); // old -> gen 1
        drop(old);
        garbage(3); // gen 0
        assert_eq!(gcptr::collect_generation(1), 2);
        assert_eq!(take_drops(), [2, 3]);
    });
}

#[test]
fn automatic_collection_runs_after_700_tracked_allocations() {
    on_fresh_thread(|| {
        assert_eq!(gcptr::threshold(), [700, 10, 10]);
        assert!(gcptr::is_enabled());
        for id in 0..700 {
            garbage(id);
        }
        assert_eq!(gcptr::stats()[0].collections, 0);
        assert!(take_drops().is_empty());
        garbage(700); // the 701st tracked allocation goes over the threshold
        assert_eq!(gcptr::stats()[0].collections, 1);
        assert_eq!(gcptr::stats()[0].collected, 700);
        assert_eq!(take_drops().len(), 700);
        // Untracked allocations do not count.
        let plain: Vec<_> = (0..2000).map(Gc::new).collect();
        assert_eq!(gcptr::stats()[0].collections, 1);
        drop(plain);
    });
}

#[test]
fn disable_stops_automatic_collection_but_not_collect() {
    on_fresh_thread(|| {
        gcptr::disable();
        for id in 0..2000 {
            garbage(id);
        }
        assert_eq!(gcptr::stats()[0].collections, 0);
        assert!(take_drops().is_empty());
        assert_eq!(gcptr::count()[0], 2000);
        assert_eq!(gcptr::collect(), 2000);
        gcptr::enable();
        assert!(gcptr::is_enabled());
        take_drops();
    });
}

#[test]
fn set_threshold_changes_when_collections_happen() {
    on_fresh_thread(|| {
        gcptr::set_threshold([3, 2, 10]);
        assert_eq!(gcptr::threshold(), [3, 2, 10]);
        for id in 0..4 {
            garbage(id);
        }
        assert_eq!(gcptr::stats()[0].collections, 1);
        for id in 4..16 {
            garbage(id);
        }
        // Generation 0 is collected each time its count passes 3; once
        // three such collections have passed generation 1's threshold of 2,
        // the next trigger collects generation 1 instead.
        let [g0, g1, _] = gcptr::stats();
        assert_eq!((g0.collections, g1.collections), (3, 1));
        gcptr::set_threshold([0, 10, 10]); // 0 turns automatic collection off
        let before = gcptr::stats()[0].collections + gcptr::stats()[1].collections;
        for id in 100..2000 {
            garbage(id);
        }
        let after = gcptr::stats()[0].collections + gcptr::stats()[1].collections;
        assert_eq!(before, after);
        gcptr::collect();
        take_drops();
    });
}

#[test]
fn full_collections_wait_for_a_quarter_of_the_long_lived_objects() {
    on_fresh_thread(|| {
        gcptr::set_threshold([10, 1, 1]);
        // 1000 long-lived objects in generation 2.
        let keep: Vec<_> = (0..1000).map(Node::new).collect();
        gcptr::collect();
        let full_before = gcptr::stats()[2].collections;
        // A little churn: generation 2's count passes its threshold, but
        // only a few objects survive into it, far below 25% of 1000.
        for id in 0..200 {
            let n = Node::new(10_000 + id);
            n.link(&n);
        }
        assert_eq!(gcptr::stats()[2].collections, full_before, "25% rule");
        // Enough survivors to pass 25%: a full collection happens.
        let more: Vec<_> = (0..400).map(|id| Node::new(20_000 + id)).collect();
        for id in 0..100 {
            garbage(30_000 + id);
        }
        assert!(gcptr::stats()[2].collections > full_before);
        drop((keep, more));
        gcptr::collect();
        take_drops();
    });
}

/// Adds live objects to `keep` one at a time, each losing a reference (so
/// that automatic collections analyse), until the next full collection, and
/// checks that it came after `1/share` of the `keep.len()` objects alive at
/// the start, less `promoted`, the objects already promoted into generation
/// 2 since the last full collection (collections come every few dozen
/// objects, hence the slack).
fn next_full_collection_waits_for(keep: &mut Vec<Gc<Node>>, share: usize, promoted: usize) {
    let (alive, full_before) = (keep.len(), gcptr::stats()[2].collections);
    while gcptr::stats()[2].collections == full_before {
        let node = Node::new(keep.len() as u32);
        drop(node.clone());
        keep.push(node);
        assert!(keep.len() < 1 << 16, "no full collection came");
    }
    let wait = keep.len() - alive + promoted;
    assert!(
        (alive / share..alive / share + 100).contains(&wait),
        "{wait} objects before the next full collection, from {alive} alive \
         (expected 1/{share} of them)"
    );
}

#[test]
#[cfg_attr(miri, ignore = "a scheduling policy, over 35,000 objects")]
fn full_collections_that_find_nothing_wait_longer() {
    on_fresh_thread(|| {
        // A frozen object makes every full collection analyse everything,
        // so the 25% rule alone schedules them (none follows a young one
        // early: see the last test of this file).
        let _frozen = Node::new(u32::MAX);
        gcptr::freeze();
        gcptr::set_threshold([10, 1, 1]);
        let mut keep: Vec<_> = (0..1000).map(Node::new).collect();
        gcptr::collect();
        // Each full collection finds nothing: the wait for the next grows
        // from a quarter of what is alive to a half, then to all of it.
        for share in [4, 2, 1, 1] {
            next_full_collection_waits_for(&mut keep, share, 0);
        }
        // One that finds garbage brings the wait back to a quarter.
        let cycles: Vec<_> = (0..100)
            .map(|id| {
                let node = Node::new(50_000 + id);
                node.link(&node);
                node
            })
            .collect();
        gcptr::collect_generation(1); // the cycles move into generation 2
        drop(cycles);
        let found_before = gcptr::stats()[2].collected;
        next_full_collection_waits_for(&mut keep, 1, 100);
        assert_eq!(gcptr::stats()[2].collected, found_before + 100);
        next_full_collection_waits_for(&mut keep, 4, 0);
        next_full_collection_waits_for(&mut keep, 2, 0);
        // So does an explicit full collection.
        gcptr::collect();
        next_full_collection_waits_for(&mut keep, 4, 0);
        drop(keep);
        gcptr::collect();
        take_drops();
    });
}

#[test]
fn frozen_objects_are_never_collected_until_unfrozen() {
    on_fresh_thread(|| {
        gcptr::disable();
        let a = Node::new(1);
        a.link(&a);
        let weak = Gc::downgrade(&a);
        gcptr::freeze();
        assert_eq!(gcptr::freeze_count(), 1);
        assert_eq!(gcptr::count(), [0, 0, 0]);
        drop(a);
        assert_eq!(gcptr::collect(), 0);
        assert!(weak.upgrade().is_some());
        gcptr::unfreeze();
        assert_eq!(gcptr::freeze_count(), 0);
        assert_eq!(gcptr::collect(), 1);
        assert_eq!(take_drops(), [1]);
    });
}

#[test]
fn frozen_objects_still_die_by_count() {
    on_fresh_thread(|| {
        let a = Node::new(1);
        gcptr::freeze();
        drop(a);
        assert_eq!(take_drops(), [1]);
        assert_eq!(gcptr::freeze_count(), 0);
    });
}

#[test]
#[should_panic(expected = "generation 3 does not exist")]
fn collecting_a_generation_that_does_not_exist_panics() {
    gcptr::collect_generation(3);
}

#[test]
fn stats_count_collections_and_collected_objects() {
    on_fresh_thread(|| {
        garbage(1);
        garbage(2);
        gcptr::collect();
        let stats = gcptr::stats();
        assert_eq!(stats[2].collections, 1);
        assert_eq!(stats[2].collected, 2);
        assert_eq!(stats[2].uncollectable, 0);
        assert_eq!(stats[0].collections, 0);
        take_drops();
    });
}

// Automatic collections skip their analysis while no garbage can have come
// to be: since the last full collection began, no tracked object lost a
// strong reference and kept others. These tests watch the analysis through
// a type that counts its traces.

thread_local! {
    static TRACES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// For each `Counted` dropped, in order, the traces done before its drop.
    static TRACED_BEFORE_DROPS: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    /// Set: the next `Counted` dropped panics (once).
    static PANIC_IN_NEXT_DROP: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A tracked object that counts the times a collection traces it, and
/// notes when it is dropped.
struct Counted {
    edges: std::cell::RefCell<Vec<Gc<Counted>>>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        TRACED_BEFORE_DROPS.with(|d| d.borrow_mut().push(traces()));
        if PANIC_IN_NEXT_DROP.with(|p| p.replace(false)) {
            panic!("a Drop panics");
        }
    }
}

/// The traces done before each drop since the last call, counted from
/// `since`.
fn traced_before_drops(since: usize) -> Vec<usize> {
    let drops = TRACED_BEFORE_DROPS.with(|d| d.take());
    drops.into_iter().map(|traced| traced - since).collect()
}

// SAFETY: visits exactly the Gcs in `edges`.
unsafe impl gcptr::Trace for Counted {
    fn trace(&self, tracer: &mut gcptr::Tracer) {
        TRACES.with(|t| t.set(t.get() + 1));
        self.edges.trace(tracer);
    }
}

fn counted() -> Gc<Counted> {
    Gc::new(Counted {
        edges: std::cell::RefCell::new(Vec::new()),
    })
}

fn traces() -> usize {
    TRACES.with(std::cell::Cell::get)
}

/// Allocates `n` tracked objects and lets them die by count: no lost
/// reference, but enough allocations for automatic collections.
fn churn_without_losses(n: usize) {
    let filler: Vec<_> = (0..n).map(|_| counted()).collect();
    drop(filler);
}

/// Enough churn, at thresholds of about `[10, 1, 1]`, for automatic
/// collections of every generation to run many times.
fn run_automatic_collections() {
    for _ in 0..100 {
        churn_without_losses(20);
    }
}

#[test]
fn building_without_losing_references_skips_the_analysis() {
    on_fresh_thread(|| {
        gcptr::set_threshold([10, 2, 2]);
        // A growing chain: each object holds a clone of the one before,
        // and nothing is ever dropped.
        let mut chain = vec![counted()];
        for _ in 0..300 {
            let next = counted();
            next.edges.borrow_mut().push(chain.last().unwrap().clone());
            chain.push(next);
        }
        let stats = gcptr::stats();
        assert!(stats.iter().all(|s| s.collections > 0), "{stats:?}");
        assert!(
            stats.iter().all(|s| s.skipped == s.collections),
            "{stats:?}"
        );
        assert_eq!(traces(), 0, "an automatic collection analysed");
        // The generations moved on as after real collections.
        assert!(gcptr::count()[0] <= 10);

        // A reference lost by an old object: garbage may exist, but only
        // with old members, so young collections still skip. The first
        // one is followed by a full collection of what the reporter
        // reaches: itself (it holds no edge), traced once to count its
        // references and once as it is found alive.
        assert!(chain.iter().all(|c| c.edges.borrow().len() <= 1));
        drop(chain[0].clone());
        let young_runs = |stats: &[gcptr::GenerationStats]| {
            let young = &stats[..2];
            let sum = |f: fn(&gcptr::GenerationStats) -> usize| young.iter().map(f).sum::<usize>();
            (sum(|s| s.collections), sum(|s| s.skipped))
        };
        let (runs, skipped) = young_runs(&stats);
        assert_eq!(stats[2].collections, 2);
        churn_without_losses(20);
        let after = gcptr::stats();
        assert_eq!(after[2].collections, 3, "{after:?}");
        assert_eq!(after[2].skipped, stats[2].skipped, "{after:?}");
        let (runs_after, skipped_after) = young_runs(&after);
        assert!(runs_after > runs, "{after:?}");
        assert_eq!(skipped_after - skipped, runs_after - runs, "{after:?}");
        assert_eq!(traces(), 2, "a young collection analysed");

        // One lost by a young object, and the next young collection
        // analyses.
        let young = counted();
        drop(young.clone());
        let mut filler = Vec::new();
        while young_runs(&gcptr::stats()).0 == runs_after {
            filler.push(counted());
        }
        let last = gcptr::stats();
        let (runs_last, skipped_last) = young_runs(&last);
        assert_eq!(runs_last, runs_after + 1, "{last:?}");
        assert_eq!(skipped_last, skipped_after, "{last:?}");
        assert!(traces() > 2);
    });
}

#[test]
fn automatic_collections_find_garbage_again_after_a_lost_reference() {
    on_fresh_thread(|| {
        gcptr::set_threshold([10, 1, 1]);
        churn_without_losses(support::scaled(2000));
        assert_eq!(traces(), 0);
        garbage(1); // a self-cycle: `link` clones, and the handle goes
        run_automatic_collections();
        assert_eq!(take_drops(), [1]);
    });
}

/// Makes a garbage cycle of #1, in generation 2, and #2, in generation 0.
fn garbage_across_generations() {
    let old = Node::new(1);
    gcptr::collect(); // `old` moves to generation 2
    let young = Node::new(2);
    old.link(&young);
    young.link(&old);
    drop((old, young));
}

/// Young collections cannot find a cycle through an older generation, and
/// must not forget that garbage may exist: the next full one looks.
#[test]
fn young_collections_do_not_forget_lost_references() {
    on_fresh_thread(|| {
        gcptr::disable();
        garbage_across_generations();
        assert_eq!(gcptr::collect_generation(0), 0);
        assert_eq!(gcptr::collect_generation(1), 0);
        gcptr::enable();
        gcptr::set_threshold([10, 1, 1]);
        run_automatic_collections();
        assert_eq!(take_drops(), [1, 2]);
    });
}

/// Garbage made while a full collection runs (here by a `Drop`) is not
/// covered by that collection's fresh start.
#[test]
fn garbage_made_during_a_full_collection_is_found_automatically() {
    struct MakesGarbageOnDrop;
    impl Drop for MakesGarbageOnDrop {
        fn drop(&mut self) {
            garbage(2);
        }
    }
    #[derive(gcptr::Trace)]
    struct Host {
        #[gc(skip)]
        _on_drop: MakesGarbageOnDrop,
        next: std::cell::RefCell<Option<Gc<Host>>>,
    }
    on_fresh_thread(|| {
        gcptr::set_threshold([10, 1, 1]);
        let host = Gc::new(Host {
            _on_drop: MakesGarbageOnDrop,
            next: std::cell::RefCell::new(None),
        });
        *host.next.borrow_mut() = Some(host.clone());
        drop(host);
        assert_eq!(gcptr::collect(), 1);
        assert_eq!(take_drops(), []);
        run_automatic_collections();
        assert_eq!(take_drops(), [2]);
    });
}

#[test]
fn unfrozen_garbage_is_found_automatically() {
    on_fresh_thread(|| {
        gcptr::disable();
        garbage(1);
        gcptr::freeze();
        assert_eq!(gcptr::collect(), 0);
        gcptr::unfreeze();
        gcptr::enable();
        gcptr::set_threshold([10, 1, 1]);
        run_automatic_collections();
        assert_eq!(take_drops(), [1]);
    });
}

/// The one way to make garbage without losing a reference: moving the last
/// handle into the object through a raw pointer. No collection starts from
/// it, since nothing reported a loss (`collect()` analyses what the
/// reporters reach); thread exit analyses everything.
#[test]
fn a_cycle_closed_through_a_raw_pointer_waits_for_thread_exit() {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        gcptr::set_threshold([10, 1, 1]);
        let node = Gc::new(Reporter(1, tx, RefCell::new(None)));
        let raw = Gc::as_ptr(&node);
        // SAFETY: `node` stays alive (the object owns it now) for as long
        // as the reference is used.
        *unsafe { &*raw }.2.borrow_mut() = Some(node);
        run_automatic_collections();
        assert_eq!(gcptr::collect(), 0);
        assert_eq!(rx.try_recv().ok(), None, "reclaimed before thread exit");
        rx
    })
    .join()
    .map(|rx| assert_eq!(rx.try_recv().ok(), Some(1), "leaked at thread exit"))
    .unwrap();
}

/// The reporters' buffer takes this many objects at most while generation
/// 2 holds fewer than 16 times as many (`REPORTERS_MIN` in the collector,
/// smaller under Miri).
const REPORTERS_MIN: usize = if cfg!(miri) { 128 } else { 2048 };

/// Old pairs whose objects, dropped, overflow the reporters' buffer: the
/// next full collection goes through the lists in order.
const PAIRS_PAST_THE_BUFFER: usize = REPORTERS_MIN / 2 + REPORTERS_MIN / 32;

/// `n` new objects, each in a two-object cycle with the next, held only by
/// the returned handles.
fn pairs(n: usize) -> Vec<Gc<Counted>> {
    let objects: Vec<_> = (0..2 * n).map(|_| counted()).collect();
    for pair in objects.chunks(2) {
        pair[0].edges.borrow_mut().push(pair[1].clone());
        pair[1].edges.borrow_mut().push(pair[0].clone());
    }
    objects
}

/// [`pairs`] made old: in generation 2 after two full collections.
fn old_pairs(n: usize) -> Vec<Gc<Counted>> {
    let objects = pairs(n);
    gcptr::collect();
    gcptr::collect();
    objects
}

/// Asserts that each of the pairs dropped since `since` traces ago was
/// dropped right after its own two traces, and returns how many objects
/// were dropped.
fn assert_dropped_pair_by_pair(since: usize) -> usize {
    let traced = traced_before_drops(since);
    for (i, &traced) in traced.iter().enumerate() {
        assert_eq!(traced, 2 * (i / 2 + 1), "pair {} dropped late", i / 2);
    }
    traced.len()
}

#[test]
fn a_full_collection_traces_what_the_reporters_reach_and_no_more() {
    on_fresh_thread(|| {
        gcptr::disable();
        let objects = old_pairs(500);
        let before = traces();
        assert_eq!(gcptr::collect(), 0);
        assert_eq!(traces(), before, "no object lost a reference");
        // One pair loses a reference: the analysis starts from it, and
        // reaches its partner only.
        drop(objects[0].clone());
        let before = traces();
        assert_eq!(gcptr::collect(), 0);
        assert_eq!(traces() - before, 4, "two objects, traced twice each");
        // Both handles of a pair go: it is garbage, and found.
        let mut objects = objects;
        objects.drain(..2);
        assert_eq!(gcptr::collect(), 2);
        assert_eq!(gcptr::collect(), 0);
        drop(objects);
        assert_eq!(gcptr::collect(), 1000 - 2);
    });
}

/// Past a sixteenth of generation 2 (and `REPORTERS_MIN`), reporters are no longer
/// buffered, and the next full collection analyses everything instead.
#[test]
fn reporters_past_the_buffer_are_found_by_an_analysis_of_everything() {
    on_fresh_thread(|| {
        gcptr::disable();
        // Live pairs that never lose a reference: only an analysis of
        // everything traces them.
        let live = old_pairs(10);
        let pairs = PAIRS_PAST_THE_BUFFER;
        let objects = old_pairs(pairs);
        let weak: Vec<_> = objects.iter().map(Gc::downgrade).collect();
        drop(objects); // past the reporters the buffer takes
        let before = traces();
        assert_eq!(gcptr::collect(), 2 * pairs);
        assert!(weak.iter().all(|w| w.upgrade().is_none()));
        // Garbage is traced once and live objects twice; the live pairs'
        // traces show that the buffer overflowed.
        assert_eq!(traces() - before, 2 * pairs + 2 * live.len());
        // The buffer works again after the walk: the live pairs are left
        // alone.
        let objects = old_pairs(2);
        drop(objects);
        let before = traces();
        assert_eq!(gcptr::collect(), 4);
        assert_eq!(traces() - before, 4);
        drop(live);
        assert_eq!(gcptr::collect(), 20);
    });
}

/// A collection that goes through the lists in order drops each garbage
/// structure it meets before anything alive as soon as it has traced it,
/// while it is in cache, rather than once everything is traced; and its set
/// buffer holds one structure at a time.
#[test]
fn garbage_met_before_anything_alive_is_dropped_once_traced() {
    on_fresh_thread(|| {
        gcptr::disable();
        let pairs = PAIRS_PAST_THE_BUFFER;
        let objects = old_pairs(pairs);
        let weak: Vec<_> = objects.iter().map(Gc::downgrade).collect();
        drop(objects); // past the reporters' buffer: the lists, in order
        let before = traces();
        traced_before_drops(0);
        assert_eq!(gcptr::collect(), 2 * pairs);
        assert_eq!(traces() - before, 2 * pairs, "each traced once");
        assert_eq!(assert_dropped_pair_by_pair(before), 2 * pairs);
        assert!(weak.iter().all(|w| w.upgrade().is_none()));
    });
}

/// A collection that starts from a few reporters takes them one at a time
/// too, while each set is garbage. A reporter that dies in the drops of an
/// earlier set, and that only the collection's buffer of roots keeps
/// allocated, is freed as its turn comes; one that a `Weak` holds too
/// lives on until the `Weak` goes (Miri and LeakSanitizer check both).
#[test]
fn garbage_found_from_reporters_is_dropped_root_by_root() {
    on_fresh_thread(|| {
        gcptr::disable();
        let live = old_pairs(100);
        let pairs = 10;
        let objects = old_pairs(pairs);
        let second = Gc::downgrade(&objects[1]);
        drop(objects); // 20 reporters, each pair's two in a row
        let before = traces();
        traced_before_drops(0);
        assert_eq!(gcptr::collect(), 2 * pairs);
        assert_eq!(
            traces() - before,
            2 * pairs,
            "each garbage object traced once, the live pairs never"
        );
        assert_eq!(assert_dropped_pair_by_pair(before), 2 * pairs);
        assert!(second.upgrade().is_none());
        drop(second);
        drop(live);
        assert_eq!(gcptr::collect(), 200);
    });
}

/// The young generations' quiet objects are roots that wait their turn
/// as the reporters do.
#[test]
fn young_garbage_is_dropped_root_by_root() {
    on_fresh_thread(|| {
        gcptr::disable();
        let live = old_pairs(100);
        let pairs = 10;
        drop(self::pairs(pairs));
        let before = traces();
        traced_before_drops(0);
        assert_eq!(gcptr::collect(), 2 * pairs);
        assert_eq!(assert_dropped_pair_by_pair(before), 2 * pairs);
        drop(live);
        assert_eq!(gcptr::collect(), 200);
    });
}

/// Once a set gathered from the reporters holds an object with a
/// reference from outside, the collection takes all the roots left at
/// once, and drops its garbage at the end. A root that a trace took into
/// the set before its turn is passed over.
#[test]
fn garbage_found_from_reporters_after_a_live_object_waits_for_the_whole_analysis() {
    on_fresh_thread(|| garbage_after_a_live_pair_waits_for_the_whole_analysis(10, true));
}

/// Drops `pairs` old pairs, listed after a live pair whose objects report
/// first if `live_reports`, and checks that the collection drops them all
/// after its whole analysis.
fn garbage_after_a_live_pair_waits_for_the_whole_analysis(pairs: usize, live_reports: bool) {
    gcptr::disable();
    let live = old_pairs(1);
    let objects = old_pairs(pairs);
    if live_reports {
        drop(live[0].clone());
        drop(live[1].clone());
    }
    drop(objects);
    let before = traces();
    traced_before_drops(0);
    assert_eq!(gcptr::collect(), 2 * pairs);
    // Every object traced once, and the live pair twice (the mark pass).
    assert_eq!(traces() - before, 2 * pairs + 4);
    let traced = traced_before_drops(before);
    assert_eq!(traced, vec![2 * pairs + 4; 2 * pairs]);
    drop(live);
    assert_eq!(gcptr::collect(), 2);
}

/// A panic in the drop of garbage met before anything alive stops
/// nothing: the collection goes on, drops the rest, and then resumes it.
#[test]
fn a_panic_in_a_drop_before_the_analysis_ends_is_resumed_after_the_collection() {
    on_fresh_thread(|| {
        gcptr::disable();
        let pairs = PAIRS_PAST_THE_BUFFER;
        drop(old_pairs(pairs));
        traced_before_drops(0);
        PANIC_IN_NEXT_DROP.with(|p| p.set(true));
        let collected = std::panic::catch_unwind(gcptr::collect);
        let payload = collected.expect_err("the panic is resumed");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"a Drop panics"));
        let traced = traced_before_drops(0);
        assert_eq!(traced.len(), 2 * pairs, "every value dropped once");
        assert!(
            traced[0] < traced[2 * pairs - 1],
            "the first pair went first"
        );
        assert_eq!(gcptr::collect(), 0);
    });
}

/// Once the set holds an object with a reference from outside, all it
/// gathers is analysed together, and its garbage dropped at the end.
#[test]
fn garbage_met_after_a_live_object_waits_for_the_whole_analysis() {
    on_fresh_thread(|| {
        garbage_after_a_live_pair_waits_for_the_whole_analysis(PAIRS_PAST_THE_BUFFER, false);
    });
}

/// Garbage that refers to an object set aside by `Gc::get_mut` takes the
/// object into its set (an edge to it means the `&mut` is gone), and what
/// the object holds with it: the cycle it held is found in the same
/// collection, not left for the next one. (Before, the set waited for
/// the end of the analysis, and the object, left out of it, held the
/// cycle through this collection.)
#[test]
fn garbage_holding_a_set_aside_object_takes_it_in() {
    on_fresh_thread(|| {
        gcptr::disable();
        let pairs = PAIRS_PAST_THE_BUFFER;
        let objects = old_pairs(pairs);
        // Listed after the pairs: a self-cycle held by `held`, which the
        // last pair alone will hold, set aside.
        let cycle = counted();
        cycle.edges.borrow_mut().push(cycle.clone());
        let mut held = counted();
        held.edges.borrow_mut().push(cycle.clone());
        gcptr::collect();
        gcptr::collect();
        drop(cycle);
        Gc::get_mut(&mut held)
            .expect("unique")
            .edges
            .get_mut()
            .len();
        objects[2 * pairs - 1].edges.borrow_mut().push(held);
        drop(objects);
        traced_before_drops(0);
        // The pairs, `held` and the cycle, all in this collection.
        assert_eq!(gcptr::collect(), 2 * pairs + 2);
        assert_eq!(traced_before_drops(0).len(), 2 * pairs + 2);
        assert_eq!(gcptr::collect(), 0);
    });
}

/// While a weak reference with a callback exists, garbage met before
/// anything alive waits for the end of the analysis too: the callbacks
/// that garbage owns are cancelled before any of it is dropped (CPython's
/// rule), which takes a visit to all of it.
#[test]
fn callbacks_owned_by_garbage_met_before_anything_alive_do_not_run() {
    #[derive(gcptr::Trace)]
    struct Owner {
        partner: RefCell<Option<Gc<Owner>>>,
        holds: Option<Gc<String>>,
        watching: Option<gcptr::WeakWithCallback<String>>,
    }
    on_fresh_thread(|| {
        gcptr::disable();
        let fired = std::rc::Rc::new(std::cell::Cell::new(false));
        let watched = Gc::new(String::from("held by garbage only"));
        // Listed first, so gathered first, and first to drop: its drop
        // kills `watched`, which the second watches.
        let first = Gc::new(Owner {
            partner: RefCell::new(None),
            holds: Some(watched.clone()),
            watching: None,
        });
        let fired_by = fired.clone();
        let second = Gc::new(Owner {
            partner: RefCell::new(Some(first.clone())),
            holds: None,
            watching: Some(Gc::downgrade_with(&watched, move || fired_by.set(true))),
        });
        *first.partner.borrow_mut() = Some(second.clone());
        drop(watched);
        let pairs = PAIRS_PAST_THE_BUFFER;
        let objects = old_pairs(pairs);
        drop((first, second));
        drop(objects); // past the reporters' buffer: the lists, in order
        assert_eq!(gcptr::collect(), 2 + 2 * pairs);
        assert!(!fired.get(), "a callback owned by garbage ran");
    });
}

/// A `Drop` of garbage dropped before the analysis ends may make a weak
/// reference with a callback and give it to garbage not yet found: its
/// callback is cancelled with the rest of that garbage's, before any of it
/// is dropped.
#[test]
fn a_callback_made_by_an_early_drop_for_garbage_found_later_does_not_run() {
    thread_local! {
        static FIRED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    type Plant = Option<(gcptr::Weak<Owner>, gcptr::Weak<String>)>;
    #[derive(gcptr::Trace)]
    struct Owner {
        partner: RefCell<Option<Gc<Owner>>>,
        // Dropped before `watching`, which watches it.
        holds: Option<Gc<String>>,
        watching: RefCell<Option<gcptr::WeakWithCallback<String>>>,
        // On drop: give the first a callback watching the second.
        #[gc(skip)]
        plant: RefCell<Plant>,
    }
    impl Drop for Owner {
        fn drop(&mut self) {
            let Some((owner, watched)) = self.plant.get_mut().take() else {
                return;
            };
            let (owner, watched) = (owner.upgrade().unwrap(), watched.upgrade().unwrap());
            let callback = Gc::downgrade_with(&watched, || FIRED.with(|f| f.set(true)));
            *owner.watching.borrow_mut() = Some(callback);
        }
    }
    fn pair(holds: Option<Gc<String>>) -> Gc<Owner> {
        let owner = |partner, holds| {
            Gc::new(Owner {
                partner: RefCell::new(partner),
                holds,
                watching: RefCell::new(None),
                plant: RefCell::new(None),
            })
        };
        let first = owner(None, holds);
        let second = owner(Some(first.clone()), None);
        *first.partner.borrow_mut() = Some(second);
        first
    }
    on_fresh_thread(|| {
        gcptr::disable();
        let watched = Gc::new(String::from("held by later garbage only"));
        // In list order: the planting pair, met and dropped first; then
        // the pair that will own the callback, and holds `watched`.
        let planting = pair(None);
        let later = pair(Some(watched.clone()));
        *planting.plant.borrow_mut() = Some((Gc::downgrade(&later), Gc::downgrade(&watched)));
        drop(watched);
        let pairs = PAIRS_PAST_THE_BUFFER;
        let objects = old_pairs(pairs);
        drop((planting, later));
        drop(objects); // past the reporters' buffer: the lists, in order
        assert_eq!(gcptr::collect(), 2 * pairs + 4);
        let fired = FIRED.with(std::cell::Cell::get);
        assert!(!fired, "a callback owned by garbage ran");
    });
}

/// A buffered reporter keeps its memory until the next full collection
/// lets go of it, however it dies meanwhile (Miri and LeakSanitizer check
/// that the memory is freed then, and not before).
#[test]
fn a_reporter_that_dies_before_the_collection_is_freed_by_it() {
    on_fresh_thread(|| {
        gcptr::disable();
        let objects = old_pairs(2);
        let mut objects = objects.into_iter();
        let (a, b) = (objects.next().unwrap(), objects.next().unwrap());
        let (c, d) = (objects.next().unwrap(), objects.next().unwrap());
        // `a` reports, then dies by count with its partner.
        drop(a.clone());
        b.edges.borrow_mut().clear();
        drop(a);
        drop(b);
        // `c` reports and dies, with a `Weak` that outlives the collection.
        drop(c.clone());
        let weak = Gc::downgrade(&c);
        d.edges.borrow_mut().clear();
        drop(c);
        assert!(weak.upgrade().is_none());
        assert_eq!(gcptr::collect(), 0);
        drop(weak);
        drop(d);
        assert_eq!(gcptr::collect(), 0);
    });
}

/// The references that garbage loses as the collector drops it are not
/// reports: they would fill the buffer with dying objects, and past it,
/// send the next full collection over every live object.
#[test]
fn dropping_garbage_reports_nothing() {
    on_fresh_thread(|| {
        gcptr::disable();
        let live = old_pairs(REPORTERS_MIN / 2);
        // An old ring whose objects each hold two references to others,
        // so that each drop of a value takes a count from 2 to 1: more
        // reports than the buffer takes.
        let size = REPORTERS_MIN * 3 / 2;
        let ring: Vec<_> = (0..size).map(|_| counted()).collect();
        for (i, object) in ring.iter().enumerate() {
            let mut edges = object.edges.borrow_mut();
            edges.push(ring[(i + 1) % ring.len()].clone());
            edges.push(ring[(i + ring.len() - 1) % ring.len()].clone());
        }
        gcptr::collect();
        let handle = ring[0].clone();
        drop(ring);
        assert_eq!(gcptr::collect(), 0);
        drop(handle);
        assert_eq!(gcptr::collect(), size);
        let before = traces();
        assert_eq!(gcptr::collect(), 0);
        assert_eq!(traces(), before, "a collection after the drops analysed");
        let live_objects = live.len();
        drop(live);
        assert_eq!(gcptr::collect(), live_objects);
    });
}

/// Garbage with members in generation 2 escapes young collections; the
/// first young collection that moves up a quiet object is followed by a
/// full collection of what the reporters reach, which finds it.
#[test]
fn a_full_collection_follows_a_young_one_that_cannot_find_old_garbage() {
    on_fresh_thread(|| {
        garbage_across_generations();
        let full_before = gcptr::stats()[2].collections;
        let mut filler = Vec::new();
        while gcptr::stats()[0].collections == 0 {
            filler.push(counted());
        }
        assert_eq!(take_drops(), [1, 2]);
        assert_eq!(
            gcptr::stats()[0].collected,
            0,
            "the young collection found it"
        );
        assert_eq!(gcptr::stats()[2].collections, full_before + 1);
        assert_eq!(gcptr::stats()[2].collected, 2);
    });
}

/// What a full collection finds alive is work that growth must pay for:
/// after one that found `N` objects alive, the next that follows a young
/// collection waits until generation 0 has grown by `2 * N`.
#[test]
#[cfg_attr(miri, ignore = "a scheduling policy, over 3,000 objects")]
fn a_full_collection_follows_a_young_one_once_growth_pays_for_it() {
    on_fresh_thread(|| {
        const ALIVE: usize = 1000;
        gcptr::set_threshold([10, 1000, 1000]);
        // A chain whose last object reaches all of it.
        let mut chain = vec![counted()];
        for _ in 1..ALIVE {
            let next = counted();
            next.edges.borrow_mut().push(chain.last().unwrap().clone());
            chain.push(next);
        }
        drop(chain.last().unwrap().clone());
        // Finds the whole chain alive.
        gcptr::collect();
        // A reporter in generation 2 from now on: every young collection
        // may have missed garbage.
        drop(chain.last().unwrap().clone());
        let full_before = gcptr::stats()[2].collections;
        let mut grown = Vec::new();
        while gcptr::stats()[2].collections == full_before {
            grown.push(counted());
            assert!(grown.len() < 4 * ALIVE, "no full collection came");
        }
        // Young collections come every 11 objects.
        assert!(
            (2 * ALIVE..2 * ALIVE + 11).contains(&grown.len()),
            "{} objects grown before the full collection",
            grown.len()
        );
    });
}

/// `referrers` holds each object while its trace runs: letting go of the
/// hold loses no reference, and reports none.
#[test]
fn referrers_leaves_nothing_for_the_next_full_collection_to_analyse() {
    on_fresh_thread(|| {
        gcptr::disable();
        let live = old_pairs(REPORTERS_MIN / 2);
        let before = traces();
        assert_eq!(gcptr::collect(), 0);
        assert_eq!(traces(), before, "no object lost a reference");
        let found = gcptr::referrers(&Gc::new(0u32));
        assert!(found.is_empty());
        let before = traces();
        assert_eq!(gcptr::collect(), 0);
        assert_eq!(traces(), before, "referrers reported lost references");
        drop(live);
    });
}

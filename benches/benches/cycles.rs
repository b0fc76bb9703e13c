//! Workloads 2 to 5: two-object cycles, a 1,000,000-node doubly linked
//! ring, a collection over a live 2^20 - 1 node tree, and the drop of a
//! 1,000,000-node list.
//!
//! Each sample runs on a fresh thread (its own collector in every library),
//! with the structure built untimed. gcptr runs workload 3 on a 2 MiB stack
//! and workload 5 on a 256 KiB stack (the targets), after a probe in
//! a child process checked it survives them; `Rc` and the peers run on a big
//! stack (several overflow otherwise: see the `probes` bench). Before each
//! build whose drop is timed, the thread's stack is mapped
//! (`prefault_this_stack`), so that a recursive drop is not also timed
//! mapping fresh stack pages (`Rc`'s list drop: 7,800 page faults).

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, BenchmarkGroup, Criterion, SamplingMode};
use gcptr_benches::{
    libs, prefault_this_stack, timed, timed_live, BIG_STACK, NORMAL_STACK, SMALL_STACK,
};
use gcptr_benches::{W2_PAIRS, W3_RING, W4_DEPTH, W5_LIST};

fn heavy<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(1))
        .sampling_mode(SamplingMode::Flat);
    g
}

/// The stack gcptr runs probe `name` on: `want` if a child process showed
/// it survives there, else a big one (and a warning).
fn gcptr_stack(name: &str, want: usize) -> usize {
    if gcptr_benches::survives(name, want) {
        want
    } else {
        eprintln!(
            "warning: gcptr overflows a {} KiB stack on {name}; benchmarking it on a big stack",
            want >> 10
        );
        BIG_STACK
    }
}

/// Benchmarks every library in group `$g` on one workload (`$probe` names
/// its probe), each sample on a fresh thread, in one of three shapes:
/// `build: f(size), then teardown` times the build; `after f(size), drop:
/// g` times the drop and collection of what `f` built; `live tree` times a
/// full collection over a live tree, as built or `touched` (after a clone
/// and drop of a handle to every node, untimed).
macro_rules! each_lib {
    ($g:ident, $probe:literal, $stack:expr, $($shape:tt)*) => {
        each_lib!(@libs $g, $probe, $stack, [$($shape)*], rc gcptr gc dumpster rust_cc gcmodule bacon_rajan_cc)
    };
    (@libs $g:ident, $probe:literal, $stack:expr, $shape:tt, $($m:ident)*) => {$(
        if survives_big(concat!($probe, ":", stringify!($m))) {
            $g.bench_function(libs::$m::NAME, |b| {
                b.iter_custom(|iters| each_lib!(@sample $m, iters, stack_of(stringify!($m), $stack), $shape))
            });
        }
    )*};
    (@sample $m:ident, $iters:ident, $stack:expr, [build: $build:ident($size:expr), then $teardown:ident]) => {
        timed($iters, $stack, || (), |()| libs::$m::$build($size), libs::$m::$teardown)
    };
    // The stack is mapped before the build (`prefault_this_stack`): the
    // drops of w3 and w5 recurse a million levels deep in some libraries.
    (@sample $m:ident, $iters:ident, $stack:expr, [after $build:ident($size:expr), drop: $measured:ident]) => {
        timed(
            $iters,
            $stack,
            || {
                prefault_this_stack();
                libs::$m::$build($size)
            },
            libs::$m::$measured,
            drop,
        )
    };
    (@sample $m:ident, $iters:ident, $stack:expr, [live tree]) => {
        each_lib!(@live $m, $iters, $stack, nothing)
    };
    (@sample $m:ident, $iters:ident, $stack:expr, [live tree, touched]) => {
        each_lib!(@live $m, $iters, $stack, libs::$m::tree_touch)
    };
    (@live $m:ident, $iters:ident, $stack:expr, $prepare:expr) => {
        timed_live(
            $iters,
            $stack,
            || libs::$m::tree_build(W4_DEPTH),
            $prepare,
            libs::$m::tree_collect,
            |t| {
                drop(t);
                libs::$m::collect()
            },
        )
    };
}

/// Whether a peer completes probe `name` at all (on a big stack), in a child
/// process: an overflow would abort the whole run (gcmodule's derive
/// overflowed any stack on these nodes until its `Trace` was written by
/// hand, `libs::gcmodule`). gcptr is probed on
/// its own small stacks above.
fn survives_big(name: &str) -> bool {
    if name.ends_with(":gcptr") || gcptr_benches::survives(name, BIG_STACK) {
        return true;
    }
    eprintln!(
        "warning: {name} overflows even a {} GiB stack: not benchmarked",
        BIG_STACK >> 30
    );
    false
}

/// The preparation of a tree that does nothing.
fn nothing<T>(_: &T) {}

fn stack_of(m: &str, gcptr: usize) -> usize {
    if m == "gcptr" {
        gcptr
    } else {
        BIG_STACK
    }
}

fn cycles(c: &mut Criterion) {
    let w3_stack = gcptr_stack("w3:gcptr", NORMAL_STACK);
    let w5_stack = gcptr_stack("w5:gcptr", SMALL_STACK);

    let mut g = heavy(c, "w2_pairs_build");
    each_lib!(g, "w2", BIG_STACK, build: pairs_build(W2_PAIRS), then pairs_drop_collect);
    g.finish();
    let mut g = heavy(c, "w2_pairs_drop_collect");
    each_lib!(g, "w2", BIG_STACK, after pairs_build(W2_PAIRS), drop: pairs_drop_collect);
    g.finish();

    let mut g = heavy(c, "w3_ring_build");
    each_lib!(g, "w3", w3_stack, build: ring_build(W3_RING), then ring_drop_collect);
    g.finish();
    let mut g = heavy(c, "w3_ring_drop_collect");
    each_lib!(g, "w3", w3_stack, after ring_build(W3_RING), drop: ring_drop_collect);
    g.finish();

    // ---- workload 4: Rc's figure is one plain traversal of the tree ----
    /// gcptr's plain `Tree` is acyclic and never scanned: the collector's
    /// speed shows on the same tree with a mutable slot per node.
    fn w4_tracked_tree(
        g: &mut BenchmarkGroup<'_, WallTime>,
        prepare: fn(&libs::gcptr::Ptr<libs::gcptr::TrackedTree>),
    ) {
        g.bench_function("gcptr (tracked tree)", |b| {
            b.iter_custom(|iters| {
                timed_live(
                    iters,
                    BIG_STACK,
                    || libs::gcptr::tracked_tree_build(W4_DEPTH),
                    prepare,
                    libs::gcptr::tracked_tree_collect,
                    |t| {
                        drop(t);
                        libs::gcptr::collect()
                    },
                )
            })
        });
    }
    let mut g = heavy(c, "w4_collect_live_tree");
    each_lib!(g, "w4", BIG_STACK, live tree);
    w4_tracked_tree(&mut g, nothing);
    g.finish();
    let mut g = heavy(c, "w4_collect_live_tree_touched");
    each_lib!(g, "w4", BIG_STACK, live tree, touched);
    w4_tracked_tree(&mut g, libs::gcptr::tracked_tree_touch);
    g.finish();

    let mut g = heavy(c, "w5_list_drop");
    each_lib!(g, "w5", w5_stack, after list_build(W5_LIST), drop: list_drop_collect);
    g.finish();
    black_box(());
}

criterion_group!(benches, cycles);

fn main() {
    gcptr_benches::run_probe_if_requested();
    benches();
    Criterion::default().configure_from_args().final_summary();
}

//! Workloads 2 to 5: two-object cycles, a 1,000,000-node doubly linked
//! ring, a collection over a live 2^20 - 1 node tree, and the drop of a
//! 1,000,000-node list.
//!
//! Each sample runs on a fresh thread (its own collector in every library),
//! with the structure built untimed. gcptr runs workload 3 on a 2 MiB stack
//! and workload 5 on a 256 KiB stack (the targets), after a probe in
//! a child process checked it survives them; `Rc` and the peers run on a big
//! stack (several overflow otherwise: see the `probes` bench).

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, BenchmarkGroup, Criterion, SamplingMode};
use gcptr_benches::{libs, timed, timed_live, BIG_STACK, NORMAL_STACK, SMALL_STACK};
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

macro_rules! each_lib {
    ($mac:ident) => {
        $mac!(rc);
        $mac!(gcptr);
        $mac!(gc);
        $mac!(dumpster);
        $mac!(rust_cc);
        $mac!(gcmodule);
        $mac!(bacon_rajan_cc);
    };
}

/// Whether a peer completes probe `name` at all (on a big stack), in a child
/// process: some overflow whatever the stack (gcmodule, bacon_rajan_cc on
/// the ring), and an overflow would abort the whole run. gcptr is probed on
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

    // ---- workload 2 ----
    let mut g = heavy(c, "w2_pairs_build");
    macro_rules! w2_build {
        ($m:ident) => {
            if survives_big(concat!("w2:", stringify!($m))) {
                g.bench_function(libs::$m::NAME, |b| {
                    b.iter_custom(|iters| {
                        timed(
                            iters,
                            stack_of(stringify!($m), BIG_STACK),
                            || (),
                            |()| libs::$m::pairs_build(W2_PAIRS),
                            libs::$m::pairs_drop_collect,
                        )
                    })
                });
            }
        };
    }
    each_lib!(w2_build);
    g.finish();

    let mut g = heavy(c, "w2_pairs_drop_collect");
    macro_rules! w2_drop {
        ($m:ident) => {
            if survives_big(concat!("w2:", stringify!($m))) {
                g.bench_function(libs::$m::NAME, |b| {
                    b.iter_custom(|iters| {
                        timed(
                            iters,
                            stack_of(stringify!($m), BIG_STACK),
                            || libs::$m::pairs_build(W2_PAIRS),
                            libs::$m::pairs_drop_collect,
                            drop,
                        )
                    })
                });
            }
        };
    }
    each_lib!(w2_drop);
    g.finish();

    // ---- workload 3 ----
    let mut g = heavy(c, "w3_ring_build");
    macro_rules! w3_build {
        ($m:ident) => {
            if survives_big(concat!("w3:", stringify!($m))) {
                g.bench_function(libs::$m::NAME, |b| {
                    b.iter_custom(|iters| {
                        timed(
                            iters,
                            stack_of(stringify!($m), w3_stack),
                            || (),
                            |()| libs::$m::ring_build(W3_RING),
                            libs::$m::ring_drop_collect,
                        )
                    })
                });
            }
        };
    }
    each_lib!(w3_build);
    g.finish();

    let mut g = heavy(c, "w3_ring_drop_collect");
    macro_rules! w3_drop {
        ($m:ident) => {
            if survives_big(concat!("w3:", stringify!($m))) {
                g.bench_function(libs::$m::NAME, |b| {
                    b.iter_custom(|iters| {
                        timed(
                            iters,
                            stack_of(stringify!($m), w3_stack),
                            || libs::$m::ring_build(W3_RING),
                            libs::$m::ring_drop_collect,
                            drop,
                        )
                    })
                });
            }
        };
    }
    each_lib!(w3_drop);
    g.finish();

    // ---- workload 4: Rc's figure is one plain traversal of the tree ----
    fn nothing<T>(_: &T) {}
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
    macro_rules! w4 {
        ($m:ident) => {
            if survives_big(concat!("w4:", stringify!($m))) {
                g.bench_function(libs::$m::NAME, |b| {
                    b.iter_custom(|iters| {
                        timed_live(
                            iters,
                            BIG_STACK,
                            || libs::$m::tree_build(W4_DEPTH),
                            nothing,
                            libs::$m::tree_collect,
                            |t| {
                                drop(t);
                                libs::$m::collect()
                            },
                        )
                    })
                });
            }
        };
    }
    each_lib!(w4);
    w4_tracked_tree(&mut g, nothing);
    g.finish();

    let mut g = heavy(c, "w4_collect_live_tree_touched");
    macro_rules! w4t {
        ($m:ident) => {
            if survives_big(concat!("w4:", stringify!($m))) {
                g.bench_function(libs::$m::NAME, |b| {
                    b.iter_custom(|iters| {
                        timed_live(
                            iters,
                            BIG_STACK,
                            || libs::$m::tree_build(W4_DEPTH),
                            libs::$m::tree_touch,
                            libs::$m::tree_collect,
                            |t| {
                                drop(t);
                                libs::$m::collect()
                            },
                        )
                    })
                });
            }
        };
    }
    each_lib!(w4t);
    w4_tracked_tree(&mut g, libs::gcptr::tracked_tree_touch);
    g.finish();

    // ---- workload 5 ----
    let mut g = heavy(c, "w5_list_drop");
    macro_rules! w5 {
        ($m:ident) => {
            if survives_big(concat!("w5:", stringify!($m))) {
                g.bench_function(libs::$m::NAME, |b| {
                    b.iter_custom(|iters| {
                        timed(
                            iters,
                            stack_of(stringify!($m), w5_stack),
                            || libs::$m::list_build(W5_LIST),
                            libs::$m::list_drop_collect,
                            drop,
                        )
                    })
                });
            }
        };
    }
    each_lib!(w5);
    g.finish();
    black_box(());
}

criterion_group!(benches, cycles);

fn main() {
    gcptr_benches::run_probe_if_requested();
    benches();
    Criterion::default().configure_from_args().final_summary();
}

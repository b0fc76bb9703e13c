//! Workload 7: the four workloads of the public rust-cc-benchmarks suite
//! (binary trees of depth 11, the same with parent pointers, a large doubly
//! linked list of 30 x 4096 nodes, the 32k-node stress test) and dumpster's
//! single-threaded mix of 1,000,000 random operations over a 50-node pool.
//! `Rc` uses `Weak` back-edges; it has no version of the stress test, and
//! leaks the mix's cycles (as in dumpster's own benchmark).

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, BenchmarkGroup, Criterion, SamplingMode};
use gcptr_benches::{libs, timed, BIG_STACK};

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(2))
        .sampling_mode(SamplingMode::Flat);
    g
}

macro_rules! bench {
    ($g:ident, $name:expr, $m:ident, $f:ident $args:tt) => {
        // Probed in a child first: an overflow would abort the run.
        if gcptr_benches::survives(concat!("w7:", stringify!($m)), BIG_STACK) {
            $g.bench_function($name, |b| b.iter_custom(|iters| timed(iters, BIG_STACK,
                || (), |()| black_box(libs::$m::$f $args), drop)));
        } else {
            eprintln!("warning: {} aborts (stack overflow) in workload 7: not benchmarked", libs::$m::NAME);
        }
    };
    ($g:ident, $f:ident $args:tt; $($m:ident),*) => {
        $( bench!($g, libs::$m::NAME, $m, $f $args); )*
    };
}

fn suite(c: &mut Criterion) {
    let mut g = group(c, "w7_binary_trees");
    bench!(g, binary_trees(11); rc, gcptr, gc, dumpster, rust_cc, gcmodule, bacon_rajan_cc);
    g.finish();

    let mut g = group(c, "w7_binary_trees_parent");
    bench!(g, binary_trees_parent(11); rc, gcptr, gc, dumpster, rust_cc, gcmodule, bacon_rajan_cc);
    g.finish();

    let mut g = group(c, "w7_large_linked_list");
    bench!(g, large_linked_list(4096); rc, gcptr, gc, dumpster, rust_cc, gcmodule, bacon_rajan_cc);
    g.finish();

    let mut g = group(c, "w7_stress_test");
    bench!(g, stress_test(0x5eed); gcptr, gc, dumpster, rust_cc, gcmodule, bacon_rajan_cc);
    g.finish();

    let mut g = group(c, "w7_dumpster_mix");
    bench!(g, "Rc (leaks cycles)", rc, dumpster_mix(1_000_000, 12345));
    bench!(g, dumpster_mix(1_000_000, 12345); gcptr, gc, dumpster, rust_cc, gcmodule, bacon_rajan_cc);
    g.finish();
}

criterion_group!(benches, suite);

fn main() {
    gcptr_benches::run_probe_if_requested();
    benches();
    Criterion::default().configure_from_args().final_summary();
}

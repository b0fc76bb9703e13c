//! Workload 8: automatic collection while building. 2,000,000 tracked
//! objects appended to a live `Vec` (CPython's quadratic trap), each
//! library with its default automatic collection; gcptr also with its
//! collector disabled, the figure its target is measured against.

use std::time::Duration;

use criterion::{criterion_group, Criterion, SamplingMode};
use gcptr_benches::{libs, timed, BIG_STACK, W8_APPEND};

fn auto(c: &mut Criterion) {
    let mut g = c.benchmark_group("w8_append_2m");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(2))
        .sampling_mode(SamplingMode::Flat);
    macro_rules! each {
        ($($m:ident),*) => {$(
            // In a child first: an overflow would abort the run.
            if gcptr_benches::survives(concat!("w8:", stringify!($m)), BIG_STACK) {
                g.bench_function(libs::$m::NAME, |b| b.iter_custom(|iters| timed(iters, BIG_STACK,
                    || (), |()| libs::$m::append_tracked(W8_APPEND), libs::$m::append_teardown)));
            } else {
                eprintln!("warning: {} overflows even a big stack on w8: not benchmarked", libs::$m::NAME);
            }
        )*};
    }
    each!(rc, gcptr);
    // Right after gcptr with its collector on: building 2,000,000 objects
    // is mostly page faults, as many as the allocator's state (left by the
    // benchmarks before, in this process) calls for. Run first, on a fresh
    // heap, this took 36 ms where the same code after `Rc` took 106 ms.
    g.bench_function("gcptr (disabled)", |b| {
        b.iter_custom(|iters| {
            timed(
                iters,
                BIG_STACK,
                || (),
                |()| libs::gcptr::append_tracked_disabled(W8_APPEND),
                libs::gcptr::append_teardown,
            )
        })
    });
    each!(gc, dumpster, rust_cc, gcmodule, bacon_rajan_cc);
    g.finish();
}

criterion_group!(benches, auto);

fn main() {
    gcptr_benches::run_probe_if_requested();
    benches();
    Criterion::default().configure_from_args().final_summary();
}

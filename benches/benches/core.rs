//! Workload 1: `new` + drop of 1,000,000 small acyclic values, 10,000,000
//! `clone` + drop, 10,000,000 derefs; each on a plain `u64` (untracked in
//! gcptr) and on a node type with a pointer field (tracked).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, Criterion, SamplingMode};
use gcptr_benches::{libs, W1_CLONE, W1_NEW};

macro_rules! group {
    ($c:expr, $name:literal, $f:ident, $n:expr) => {{
        let mut g = $c.benchmark_group($name);
        g.sample_size(20)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(2))
            .sampling_mode(SamplingMode::Flat);
        group!(@each g, $f, $n, rc, gcptr, gc, dumpster, rust_cc, gcmodule, bacon_rajan_cc);
        g.finish();
    }};
    (@each $g:ident, $f:ident, $n:expr, $($m:ident),*) => {
        $(
            // Tracked variants: probed in a child first (an overflow would
            // abort the run; gcmodule's derived `Trace` did, on any stack).
            if !stringify!($f).ends_with("_tracked")
                || gcptr_benches::survives(concat!("w1t:", stringify!($m)), gcptr_benches::BIG_STACK)
            {
                $g.bench_function(libs::$m::NAME, |b| b.iter(|| libs::$m::$f(black_box($n))));
            } else {
                eprintln!("warning: {} aborts (stack overflow) on tracked nodes: not benchmarked", libs::$m::NAME);
            }
        )*
    };
}

fn core(c: &mut Criterion) {
    group!(c, "w1_new_drop", new_drop, W1_NEW);
    group!(c, "w1_new_drop_tracked", new_drop_tracked, W1_NEW);
    group!(c, "w1_clone_drop", clone_drop, W1_CLONE);
    group!(c, "w1_clone_drop_tracked", clone_drop_tracked, W1_CLONE);
    group!(c, "w1_deref", deref, W1_CLONE);
    group!(c, "w1_deref_tracked", deref_tracked, W1_CLONE);
}

criterion_group!(benches, core);

fn main() {
    gcptr_benches::run_probe_if_requested();
    benches();
    Criterion::default().configure_from_args().final_summary();
}

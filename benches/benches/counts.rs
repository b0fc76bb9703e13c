//! The benchmarks' measured parts, one run each, for instruction counts and
//! simulated cache misses under valgrind; not timed, so not criterion.
//!
//! `counts LIB WORKLOAD` (e.g. `counts gcptr w3_ring_drop_collect`) runs the
//! workload's setup, then its measured part once, inside
//! [`counted_region`], then its teardown: the same sizes, split, thread and
//! stack as the criterion group of the same name. `benches/counts.py` runs
//! it under `valgrind --tool=callgrind --collect-atstart=no
//! --toggle-collect='*counted_region*'`, so that only the measured part is
//! counted, and prints the tables:
//!
//!     python3 benches/counts.py [--workloads w1,w3_ring_build] [--libs rc,gcptr] [--jobs 2]
//!
//! LIB is a module of `gcptr_benches::libs` (`rc`, `gcptr`, `gc`,
//! `dumpster`, `rust_cc`, `gcmodule`, `bacon_rajan_cc`), or one of gcptr's
//! variants in the criterion groups: `gcptr_tracked` (workload 4 on the
//! tree with a mutable slot per node) and `gcptr_disabled` (workload 8 with
//! the automatic collector off). WORKLOAD `calibrate` counts a known, tiny
//! measured part after a large setup: the script's check that the toggle
//! restricts counting to [`counted_region`].

use std::hint::black_box;

use gcptr_benches::{libs, on_stack, prefault_this_stack, BIG_STACK, NORMAL_STACK, SMALL_STACK};
use gcptr_benches::{RINGS, W1_CLONE, W1_NEW, W2_PAIRS, W3_RING, W4_DEPTH, W5_LIST, W8_APPEND};

/// The workloads, named after their criterion groups, and one more:
/// `rings_drop_collect`, workload 3's drop + collect over [`RINGS`], which
/// a full collection saw while they lived: many structures dropped
/// together, each found from the one reference it lost. Criterion does not
/// time it.
const WORKLOADS: &[&str] = &[
    "w1_new_drop",
    "w1_new_drop_tracked",
    "w1_clone_drop",
    "w1_clone_drop_tracked",
    "w1_deref",
    "w1_deref_tracked",
    "w2_pairs_build",
    "w2_pairs_drop_collect",
    "w3_ring_build",
    "w3_ring_drop_collect",
    "w4_collect_live_tree",
    "w4_collect_live_tree_touched",
    "w5_list_drop",
    "w7_binary_trees",
    "w7_binary_trees_parent",
    "w7_large_linked_list",
    "w7_stress_test",
    "w7_dumpster_mix",
    "w8_append_2m",
    "rings_drop_collect",
    "calibrate",
];

/// The measured part, and the only function whose cost is counted (callgrind
/// toggles collection on its entry and exit): never inlined, so that a
/// symbol of that name exists to match. `black_box` as in `timed`.
#[inline(never)]
fn counted_region<S, O>(routine: impl FnOnce(S) -> O, input: S) -> O {
    black_box(routine(black_box(input)))
}

/// Tells the script how far a run got, should it crash (a library that
/// overflows its stack): `SETUP_DONE`, then `COUNTED_DONE`.
fn reached(stage: &str) {
    eprintln!("counts: {stage}");
}

/// Runs the measured part in [`counted_region`], then says so with its
/// wall time: run natively, with another build's binary in turn, that
/// compares two versions in time on the measured part alone.
///
/// On Linux it also says how many page faults the thread took in it (the
/// first touch of memory fresh from the system, which costs several µs a
/// page on some VMs).
fn measured<S, O>(routine: impl FnOnce(S) -> O, input: S) -> O {
    let faults_before = page_faults();
    let start = std::time::Instant::now();
    let output = counted_region(routine, input);
    let elapsed = start.elapsed();
    let faults = match (faults_before, page_faults()) {
        (Some(before), Some(after)) => format!(", {} page faults", after - before),
        _ => String::new(),
    };
    reached(&format!(
        "{COUNTED_DONE} in {} ns{faults}",
        elapsed.as_nanos()
    ));
    output
}

/// The calling thread's minor page faults so far (`minflt`, the tenth
/// field of `/proc/thread-self/stat`); `None` where there is no such file.
fn page_faults() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // The second field, the command name, may hold spaces: count from the
    // `)` that ends it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(7)?.parse().ok()
}

const SETUP_DONE: &str = "setup done";
const COUNTED_DONE: &str = "measured part done";

/// `timed`'s split, once: `setup`, the counted `routine`, `teardown`.
fn once<S, O>(setup: fn() -> S, routine: fn(S) -> O, teardown: fn(O)) {
    let input = setup();
    reached(SETUP_DONE);
    let output = measured(routine, input);
    teardown(output);
}

/// [`once`] on a fresh thread with a `stack`-byte stack, as `timed` runs it.
fn once_on<S: 'static, O: 'static>(
    stack: usize,
    setup: fn() -> S,
    routine: fn(S) -> O,
    teardown: fn(O),
) {
    on_stack(stack, move || once(setup, routine, teardown));
}

/// `timed_live`'s split, once: `build`, the settling `routine`, `prepare`,
/// the counted `routine`, `teardown`.
fn once_live<T: 'static>(build: fn() -> T, prepare: fn(&T), routine: fn(&T), teardown: fn(T)) {
    on_stack(BIG_STACK, move || {
        let live = build();
        routine(&live);
        prepare(&live);
        reached(SETUP_DONE);
        measured(routine, &live);
        teardown(live);
    });
}

fn nothing<T>(_: &T) {}

/// Workload `workload` for library module `$m`; `false` if unknown.
macro_rules! workload {
    ($m:ident, $workload:expr) => {{
        use libs::$m as l;
        // gcptr runs workloads 3 and 5 on the small stacks, as in
        // the criterion groups (which fall back to a big stack if gcptr
        // overflows there; here that shows as a failure); the others on a
        // big one.
        let big = BIG_STACK;
        let (w3, w5) = match stringify!($m) {
            "gcptr" => (NORMAL_STACK, SMALL_STACK),
            _ => (big, big),
        };
        let w4_teardown = |t| {
            drop(t);
            l::collect()
        };
        // Workload 1 runs on the main thread, as criterion's `iter` does.
        match $workload {
            "w1_new_drop" => once(|| W1_NEW, l::new_drop, drop),
            "w1_new_drop_tracked" => once(|| W1_NEW, l::new_drop_tracked, drop),
            "w1_clone_drop" => once(|| W1_CLONE, l::clone_drop, drop),
            "w1_clone_drop_tracked" => once(|| W1_CLONE, l::clone_drop_tracked, drop),
            "w1_deref" => once(|| W1_CLONE, l::deref, drop),
            "w1_deref_tracked" => once(|| W1_CLONE, l::deref_tracked, drop),
            "w2_pairs_build" => once_on(big, || W2_PAIRS, l::pairs_build, l::pairs_drop_collect),
            // The three drops after a build map the stack first, as the
            // criterion group does (`prefault_this_stack`).
            "w2_pairs_drop_collect" => once_on(
                big,
                || {
                    prefault_this_stack();
                    l::pairs_build(W2_PAIRS)
                },
                l::pairs_drop_collect,
                drop,
            ),
            "w3_ring_build" => once_on(w3, || W3_RING, l::ring_build, l::ring_drop_collect),
            "w3_ring_drop_collect" => once_on(
                w3,
                || {
                    prefault_this_stack();
                    l::ring_build(W3_RING)
                },
                l::ring_drop_collect,
                drop,
            ),
            "w4_collect_live_tree" => once_live(
                || l::tree_build(W4_DEPTH),
                nothing,
                l::tree_collect,
                w4_teardown,
            ),
            "w4_collect_live_tree_touched" => once_live(
                || l::tree_build(W4_DEPTH),
                l::tree_touch,
                l::tree_collect,
                w4_teardown,
            ),
            "w5_list_drop" => once_on(
                w5,
                || {
                    prefault_this_stack();
                    l::list_build(W5_LIST)
                },
                l::list_drop_collect,
                drop,
            ),
            "w7_binary_trees" => once_on(big, || 11, l::binary_trees, drop),
            "w7_binary_trees_parent" => once_on(big, || 11, l::binary_trees_parent, drop),
            "w7_large_linked_list" => once_on(big, || 4096, l::large_linked_list, drop),
            "w7_stress_test" => once_on(big, || 0x5eed, l::stress_test, drop),
            "w7_dumpster_mix" => once_on(big, || (), |()| l::dumpster_mix(1_000_000, 12345), drop),
            "w8_append_2m" => once_on(big, || W8_APPEND, l::append_tracked, l::append_teardown),
            "rings_drop_collect" => once_on(
                w3,
                || {
                    let rings = (0..RINGS.0).map(|_| l::ring_build(RINGS.1)).collect();
                    // As in a program that ran on: a full collection saw them.
                    l::collect();
                    rings
                },
                l::rings_drop_collect,
                drop,
            ),
            _ => return false,
        }
        true
    }};
}

/// Runs `workload` for `lib` once; `false` if either name is unknown.
fn run(lib: &str, workload: &str) -> bool {
    use libs::gcptr as g;
    match (lib, workload) {
        ("gcptr_tracked", "w4_collect_live_tree" | "w4_collect_live_tree_touched") => {
            let prepare = match workload {
                "w4_collect_live_tree" => nothing,
                _ => g::tracked_tree_touch,
            };
            once_live(
                || g::tracked_tree_build(W4_DEPTH),
                prepare,
                g::tracked_tree_collect,
                |t| {
                    drop(t);
                    g::collect()
                },
            );
            true
        }
        ("gcptr_disabled", "w8_append_2m") => {
            once_on(
                BIG_STACK,
                || W8_APPEND,
                g::append_tracked_disabled,
                g::append_teardown,
            );
            true
        }
        // A measured part of a few thousand instructions between a setup
        // and a teardown of millions: what the script expects to count.
        (_, "calibrate") => {
            once(
                || (0..100_000u64).map(Box::new).collect::<Vec<_>>(),
                |boxes| {
                    for i in 0..1000u64 {
                        black_box(i);
                    }
                    boxes
                },
                drop,
            );
            true
        }
        ("rc", w) => workload!(rc, w),
        ("gcptr", w) => workload!(gcptr, w),
        ("gc", w) => workload!(gc, w),
        ("dumpster", w) => workload!(dumpster, w),
        ("rust_cc", w) => workload!(rust_cc, w),
        ("gcmodule", w) => workload!(gcmodule, w),
        ("bacon_rajan_cc", w) => workload!(bacon_rajan_cc, w),
        _ => false,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` runs every bench target with `--bench`: nothing to do.
    if args.iter().any(|a| a.starts_with('-')) {
        return;
    }
    let [lib, workload] = &args[..] else {
        eprintln!(
            "usage: counts LIB WORKLOAD\nworkloads: {}",
            WORKLOADS.join(" ")
        );
        std::process::exit(2);
    };
    if !run(lib, workload) {
        eprintln!("unknown library or workload: {lib} {workload}");
        std::process::exit(2);
    }
}

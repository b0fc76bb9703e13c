//! Workload 6 and the stack probes; not timed, so not criterion.
//!
//! * Workload 6: bytes per node of workload 3's 1,000,000-node ring, live
//!   (after building) and at peak (during build, drop and collection),
//!   counted by a global allocator that adds up requested sizes. It lives in
//!   its own binary so the counting does not slow the timed benchmarks.
//! * Who overflows: workload 3 (drop + collect of the ring) and workload 5
//!   (drop of a 1,000,000-node list) for every library, on 256 KiB and 2 MiB
//!   thread stacks, each in a child process (an overflow aborts).
//!
//! Prints a table and writes `target/gcptr-bench/probes.json`, which
//! `benches/report.py` reads.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

use gcptr_benches::{libs, on_stack, survives, BIG_STACK, NORMAL_STACK, SMALL_STACK, W3_RING};

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

struct Counting;

// SAFETY: forwards to `System`, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size() as isize, Relaxed) + layout.size() as isize;
        PEAK.fetch_max(live, Relaxed);
        // SAFETY: the caller's contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Relaxed);
        // SAFETY: the caller's contract.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let live = LIVE.fetch_add(new_size as isize - layout.size() as isize, Relaxed)
            + new_size as isize
            - layout.size() as isize;
        PEAK.fetch_max(live, Relaxed);
        // SAFETY: the caller's contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// (live bytes per node after building, peak bytes per node during build,
/// drop and collect, bytes per node left after collect)
fn bytes_per_node<B: 'static>(build: fn(usize) -> B, drop_collect: fn(B)) -> (f64, f64, f64) {
    on_stack(BIG_STACK, move || {
        let before = LIVE.load(Relaxed);
        PEAK.store(before, Relaxed);
        let ring = build(W3_RING);
        let live = LIVE.load(Relaxed);
        drop_collect(ring);
        let after = LIVE.load(Relaxed);
        let peak = PEAK.load(Relaxed);
        let per = |b: isize| (b - before) as f64 / W3_RING as f64;
        (per(live), per(peak), per(after))
    })
}

fn main() {
    gcptr_benches::run_probe_if_requested();
    // `cargo bench -- FILTER`: run only if the filter names these probes.
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let names = "probes w6_bytes_per_node w3_stack w5_stack";
    if !filters.is_empty() && !filters.iter().any(|f| names.contains(f.as_str())) {
        return;
    }

    let mut json = String::from("{\n  \"w6_bytes_per_node\": {\n");
    println!("w6: bytes per node of a {W3_RING}-node doubly linked ring (requested sizes)");
    println!("{:<16} {:>8} {:>8} {:>10}", "library", "live", "peak", "leftover");
    let mut rows = Vec::new();
    macro_rules! w6 {
        ($($m:ident),*) => {$(
            let (live, peak, left) = bytes_per_node(libs::$m::ring_build, libs::$m::ring_drop_collect);
            println!("{:<16} {:>8.1} {:>8.1} {:>10.1}", libs::$m::NAME, live, peak, left);
            rows.push(format!("    \"{}\": {{\"live\": {live:.2}, \"peak\": {peak:.2}, \"leftover\": {left:.2}}}", libs::$m::NAME));
        )*};
    }
    w6!(rc, gcptr, gc, dumpster, rust_cc, gcmodule, bacon_rajan_cc);
    json += &rows.join(",\n");
    json += "\n  },\n  \"stack\": {\n";

    println!("\nstack probes (ok = completes, OVERFLOW = aborts): w3 = ring drop+collect, w5 = list drop");
    println!("{:<16} {:>10} {:>10} {:>10} {:>10}", "library", "w3 256K", "w3 2M", "w5 256K", "w5 2M");
    let mut rows = Vec::new();
    macro_rules! stack {
        ($($m:ident),*) => {$(
            let mut cells = Vec::new();
            let mut fields = Vec::new();
            for w in ["w3", "w5"] {
                for (label, size) in [("256K", SMALL_STACK), ("2M", NORMAL_STACK)] {
                    let ok = survives(&format!("{w}:{}", stringify!($m)), size);
                    cells.push(if ok { "ok" } else { "OVERFLOW" });
                    fields.push(format!("\"{w} {label}\": {ok}"));
                }
            }
            println!("{:<16} {:>10} {:>10} {:>10} {:>10}", libs::$m::NAME, cells[0], cells[1], cells[2], cells[3]);
            rows.push(format!("    \"{}\": {{{}}}", libs::$m::NAME, fields.join(", ")));
        )*};
    }
    stack!(rc, gcptr, gc, dumpster, rust_cc, gcmodule, bacon_rajan_cc);
    json += &rows.join(",\n");
    json += "\n  }\n}\n";

    let path = gcptr_benches::results_dir().join("probes.json");
    std::fs::write(&path, json).expect("write probes.json");
    println!("\nwrote {}", path.display());
}

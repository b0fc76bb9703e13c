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

use gcptr_benches::{
    counting::Counting, libs, probe_child, survives, BIG_STACK, NORMAL_STACK, SMALL_STACK, W3_RING,
};

#[global_allocator]
static ALLOC: Counting = Counting;

fn main() {
    gcptr_benches::run_probe_if_requested();
    // `cargo bench -- FILTER`: run only if the filter names these probes.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let names = "probes w6_bytes_per_node w3_stack w5_stack";
    if !filters.is_empty() && !filters.iter().any(|f| names.contains(f.as_str())) {
        return;
    }

    let mut json = String::from("{\n  \"w6_bytes_per_node\": {\n");
    println!("w6: bytes per node of a {W3_RING}-node doubly linked ring (requested sizes)");
    println!(
        "{:<16} {:>8} {:>8} {:>10}",
        "library", "live", "peak", "leftover"
    );
    let mut rows = Vec::new();
    macro_rules! w6 {
        ($($m:ident),*) => {$(
            // In a child process: some libraries overflow any stack here.
            let (ok, out) = probe_child(concat!("w6:", stringify!($m)), BIG_STACK);
            let field = |key: &str| out.lines().find_map(|l| l.strip_prefix(key)?.trim().parse::<f64>().ok());
            let (live, peak, left) = (field("live "), field("peak "), field("leftover "));
            let show = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
            let json = |v: Option<f64>| v.map_or("null".to_owned(), |v| format!("{v:.2}"));
            println!("{:<16} {:>8} {:>8} {:>10}{}", libs::$m::NAME, show(live), show(peak), show(left),
                if ok { "" } else { "  (drop + collect overflows: crashed)" });
            rows.push(format!("    \"{}\": {{\"live\": {}, \"peak\": {}, \"leftover\": {}, \"completed\": {ok}}}",
                libs::$m::NAME, json(live), json(peak), json(left)));
        )*};
    }
    w6!(rc, gcptr, gc, dumpster, rust_cc, gcmodule, bacon_rajan_cc);
    json += &rows.join(",\n");
    json += "\n  },\n  \"stack\": {\n";

    println!("\nstack probes (ok = completes, OVERFLOW = aborts): w3 = ring drop+collect, w5 = list drop");
    println!(
        "{:<16} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "library", "w3 256K", "w3 2M", "w3 4G", "w5 256K", "w5 2M", "w5 4G"
    );
    let mut rows = Vec::new();
    macro_rules! stack {
        ($($m:ident),*) => {$(
            let mut cells = Vec::new();
            let mut fields = Vec::new();
            for w in ["w3", "w5"] {
                for (label, size) in [("256K", SMALL_STACK), ("2M", NORMAL_STACK), ("4G", BIG_STACK)] {
                    let ok = survives(&format!("{w}:{}", stringify!($m)), size);
                    cells.push(if ok { "ok" } else { "OVERFLOW" });
                    fields.push(format!("\"{w} {label}\": {ok}"));
                }
            }
            println!("{:<16} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}", libs::$m::NAME, cells[0], cells[1], cells[2], cells[3], cells[4], cells[5]);
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

#!/usr/bin/env python3
"""Turns the benchmark results of issue 6 into markdown tables.

How to run, from the repository root:

    cargo bench                     # the whole suite, ~10-15 min on 2 cores
    python3 benches/report.py       # prints the tables (markdown)

Options:
    --no-python     do not run benches/cpython_reference.py (workload 9)
    --quick-python  run it with --quick (smaller sizes, scaled up)
    --target DIR    cargo's target directory (default: ./target or $CARGO_TARGET_DIR)

Reads criterion's target/criterion/<group>/<library>/new/{benchmark,estimates}.json
(median of each benchmark), target/gcptr-bench/probes.json (workload 6 and the
stack probes, written by `cargo bench --bench probes`), and runs the CPython
reference with the same python3. Prints one table per workload: median and
ratio to the group's `Rc` entry (for workload 4, one plain traversal of the
`Rc` tree), then the issue's targets with the measured ratio and met / MISSED.
Standard library only.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TITLES = {
    "w1_new_drop": "1. new + drop, 1M `u64` (gcptr: untracked)",
    "w1_new_drop_tracked": "1. new + drop, 1M nodes with a pointer field (tracked)",
    "w1_clone_drop": "1. clone + drop x 10M, `u64`",
    "w1_clone_drop_tracked": "1. clone + drop x 10M, tracked node",
    "w1_deref": "1. deref x 10M, `u64`",
    "w1_deref_tracked": "1. deref x 10M, tracked node",
    "w2_pairs_build": "2. 100k two-object cycles: build",
    "w2_pairs_drop_collect": "2. 100k two-object cycles: drop + collect (Rc: manual teardown)",
    "w3_ring_build": "3. 1M-node doubly linked ring: build",
    "w3_ring_drop_collect": "3. 1M-node ring: drop + collect (Rc: manual teardown)",
    "w4_collect_live_tree": "4. full collection, live tree of 2^20-1 nodes (Rc: one traversal; gcptr: acyclic, never scanned)",
    "w4_collect_live_tree_touched": "4. same after clone + drop of a handle to every node",
    "w5_list_drop": "5. drop of a 1M-node list from its head (gcptr on 256 KiB stack)",
    "w7_binary_trees": "7. rust-cc-benchmarks: binary trees (depth 11)",
    "w7_binary_trees_parent": "7. rust-cc-benchmarks: binary trees with parent pointers",
    "w7_large_linked_list": "7. rust-cc-benchmarks: large linked list (30 x 4096)",
    "w7_stress_test": "7. rust-cc-benchmarks: stress test (no Rc version)",
    "w7_dumpster_mix": "7. dumpster's mix: 1M random ops over a 50-node pool",
    "w8_append_2m": "8. append 2M tracked objects to a live Vec, collector on",
    "w10_weak_map_get": "Weak maps (issue 4): 10k `get` hits (Rc: `HashMap<u32, rc::Weak<V>>`)",
    "w10_weak_map_insert": "Weak maps (issue 4): 10k `insert`s into a new map",
    "w10_death_with_entry": "Weak maps (issue 4): 10k deaths, each removing its map entry, vs plain drops",
}
ORDER = list(TITLES)
LIBS = ["Rc", "gcptr", "gcptr (disabled)", "gc", "dumpster", "rust-cc", "gcmodule", "bacon_rajan_cc",
        "weak-table", "gcptr (plain drop)", "gcptr (entry removed)"]


def fmt_ns(ns):
    if ns is None:
        return "-"
    for unit, div in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= div:
            return f"{ns / div:.3g} {unit}"
    return f"{ns:.3g} ns"


def load_criterion(target):
    results = {}
    base = target / "criterion"
    if not base.is_dir():
        return results
    for bench in base.glob("*/*/new/benchmark.json"):
        try:
            meta = json.loads(bench.read_text())
            est = json.loads((bench.parent / "estimates.json").read_text())
        except (OSError, ValueError):
            continue
        group = meta.get("group_id")
        lib = meta.get("function_id") or meta.get("value_str")
        if group and lib:
            results.setdefault(group, {})[lib] = est["median"]["point_estimate"]
    return results


def baseline(row):
    for lib, ns in row.items():
        if lib.startswith("Rc"):
            return lib, ns
    return None, None


def lib_key(lib):
    base = lib.split(" (")[0]
    return (LIBS.index(base) if base in LIBS else len(LIBS), lib)


def run_cpython(quick):
    script = ROOT / "benches" / "cpython_reference.py"
    cmd = [sys.executable or "python3", str(script)] + (["--quick"] if quick else [])
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as e:
        print(f"<!-- CPython reference failed: {e} -->")
        return None


def main():
    args = sys.argv[1:]
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    if "--target" in args:
        target = Path(args[args.index("--target") + 1])
    crit = load_criterion(target)
    probes_path = target / "gcptr-bench" / "probes.json"
    probes = json.loads(probes_path.read_text()) if probes_path.exists() else None
    py = None if "--no-python" in args else run_cpython("--quick-python" in args)
    if py:
        cp = f"CPython {py['python']}"
        for group, ns in py["ns"].items():
            if group in crit:
                crit[group][cp] = ns

    print("| workload | library | median | ratio to Rc |")
    print("|---|---|---:|---:|")
    groups = [g for g in ORDER if g in crit] + sorted(g for g in crit if g not in ORDER)
    for group in groups:
        row = crit[group]
        _, base = baseline(row)
        title = TITLES.get(group, group)
        for lib in sorted(row, key=lib_key):
            ratio = f"{row[lib] / base:.2f}x" if base else "-"
            print(f"| {title} | {lib} | {fmt_ns(row[lib])} | {ratio} |")
            title = ""
    if py and "w4_traversal" in py["ns"]:
        r = py["ns"]["w4_collect_live_tree"] / py["ns"]["w4_traversal"]
        print(f"\nCPython {py['python']}: gc.collect() of the live tree = {r:.1f}x one Python traversal of it.")

    if probes:
        print("\n| 6. bytes per node, 1M-node ring | live | peak | left after collect |")
        print("|---|---:|---:|---:|")
        for lib, v in probes["w6_bytes_per_node"].items():
            f = lambda x: "-" if x is None else f"{x:.1f}"
            note = "" if v.get("completed", True) else " (crashes: stack overflow)"
            print(f"| {lib}{note} | {f(v['live'])} | {f(v['peak'])} | {f(v['leftover'])} |")
        if py:
            b = py["bytes_per_node"]
            print(f"| CPython {py['python']} (tracemalloc, __slots__) | {b['live']:.1f} | {b['peak']:.1f} | - |")
        print("\n| stack probe (ok / OVERFLOW) | " + " | ".join(next(iter(probes["stack"].values())).keys()) + " |")
        print("|---|" + "---|" * len(next(iter(probes["stack"].values()))))
        for lib, v in probes["stack"].items():
            print(f"| {lib} | " + " | ".join("ok" if ok else "OVERFLOW" for ok in v.values()) + " |")

    # The targets.
    def get(group, lib):
        return crit.get(group, {}).get(lib)

    def ratio(group, lib, base_lib="Rc"):
        a, b = get(group, lib), get(group, base_lib)
        return a / b if a and b else None

    def peers_best(group):
        peers = ["gc", "dumpster", "rust-cc", "gcmodule", "bacon_rajan_cc"]
        vals = [v for k, v in crit.get(group, {}).items() if k in peers]
        return min(vals) if vals else None

    rows = []
    for g in ["w1_new_drop", "w1_clone_drop", "w1_deref",
              "w1_new_drop_tracked", "w1_clone_drop_tracked", "w1_deref_tracked"]:
        rows.append((f"{g}: gcptr within 1.05x of Rc", ratio(g, "gcptr"), 1.05))
    rows.append(("w2 drop + collect within 1.3x of Rc's teardown", ratio("w2_pairs_drop_collect", "gcptr"), 1.3))
    rows.append(("w3 drop + collect within 1.5x of Rc (2 MiB stack)", ratio("w3_ring_drop_collect", "gcptr"), 1.5))
    for g in ["w4_collect_live_tree", "w4_collect_live_tree_touched"]:
        # gcptr's `Tree` is acyclic (never scanned): the target is measured
        # on the same tree with a mutable slot per node, which is tracked.
        rows.append((f"{g}: full collection of a tracked tree within 2.5x of one traversal",
                     ratio(g, "gcptr (tracked tree)"), 2.5))
    rows.append(("w5 list drop within 1.2x of Rc (gcptr on 256 KiB)", ratio("w5_list_drop", "gcptr"), 1.2))
    if probes:
        live = probes["w6_bytes_per_node"].get("gcptr", {}).get("live")
        rows.append(("w6 at most 64 bytes per node live (value = bytes)", live, 64))
    for g in ["w7_binary_trees_parent", "w7_large_linked_list"]:
        rows.append((f"{g}: within 1.5x of Rc+Weak", ratio(g, "gcptr"), 1.5))
    for g in ["w7_binary_trees", "w7_binary_trees_parent", "w7_large_linked_list", "w7_stress_test", "w7_dumpster_mix"]:
        best = peers_best(g)
        mine = get(g, "gcptr")
        rows.append((f"{g}: ahead of every peer (gcptr / best peer)", mine / best if mine and best else None, 1.0))
    rows.append(("w8 collector on within 1.2x of disabled", ratio("w8_append_2m", "gcptr", "gcptr (disabled)"), 1.2))
    for g in ["w10_weak_map_get", "w10_weak_map_insert"]:
        rows.append((f"{g}: within 1.3x of HashMap<K, rc::Weak<V>>", ratio(g, "gcptr"), 1.3))
        rows.append((f"{g}: ahead of weak-table (gcptr / weak-table)", ratio(g, "gcptr", "weak-table"), 1.0))
    rows.append(("w10 death with entry removed, against a plain drop (reported)",
                 ratio("w10_death_with_entry", "gcptr (entry removed)", "gcptr (plain drop)"), float("inf")))

    print("\n| target | measured | limit | |")
    print("|---|---:|---:|---|")
    for name, val, limit in rows:
        if val is None:
            print(f"| {name} | - | {limit} | not measured |")
        else:
            print(f"| {name} | {val:.2f} | {limit} | {'met' if val <= limit else '**MISSED**'} |")
    print("\nThese verdicts are criterion's, whose loop builds each iteration's structure in the")
    print("memory the last one freed: the README's rest on every workload timed in fresh")
    print("processes, in turn (benches/README.md, \"Every workload timed in turn\", gives the")
    print("commands), which can differ: the list drop (w5) most, as the README explains.")


if __name__ == "__main__":
    main()

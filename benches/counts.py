#!/usr/bin/env python3
"""Instruction counts and simulated cache misses of the benchmarks' measured parts.

Wall-clock times on a small shared VM move by up to 2x between identical
runs; these counts do not. How to run, from the repository root:

    python3 benches/counts.py                       # everything, 11-14 min on 2 cores
    python3 benches/counts.py --workloads w1,w2_pairs_drop_collect --libs rc,gcptr

Options:
    --workloads a,b  only these workloads: a criterion group name (see
                     `TITLES` in report.py) or its prefix (`w1`, `w7_binary`)
    --libs x,y       only these libraries (`rc`, `gcptr`, `gc`, `dumpster`,
                     `rust_cc`, `gcmodule`, `bacon_rajan_cc`; gcptr's variants
                     `gcptr_tracked`, `gcptr_disabled` come with `gcptr`)
    --jobs N         valgrind processes at once (default 2)

Builds the `counts` bench (benches/benches/counts.rs), which runs one
workload's setup, its measured part once inside `counted_region`, then its
teardown. Each (workload, library) runs first natively, so that a library
that crashes there (stack overflow) is reported without a long valgrind run,
then under `valgrind --tool=callgrind --cache-sim=yes --collect-atstart=no
--toggle-collect=*counted_region*` (and a pinned cache geometry: `CACHES`),
so that only the measured part is counted. Before that, the `calibrate`
workload checks that the toggle counts a region of a few thousand
instructions and not the large setup around it.

Prints one markdown table per metric: instructions (Ir), L1 data misses
(D1mr + D1mw) and last-level misses (ILmr + DLmr + DLmw), with `Rc`'s
absolute count and every other library's ratio to it (counts instead where
a ratio says little: see `MIN_BASE`, `MIN_RATIO`), then the failures.
Writes the raw counts to target/gcptr-bench/counts.json.

Two runs of the same binary give the same numbers, but for dumpster, whose
collector uses std's randomly seeded `HashMap` (its Ir moves by up to 0.1%
from run to run, its misses by up to a few percent). A rebuild that moves
code or data (any change to the crate, even outside the measured part)
leaves Ir alone but moves the cache misses a little (by 0.01% on the
stress test, by a few misses in workload 1), so compare small miss counts
with care. Standard library only.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from report import TITLES  # noqa: E402  (the criterion groups' titles)

# The counts binary's workloads, in table order (criterion group names).
WORKLOADS = [
    "w1_new_drop", "w1_new_drop_tracked", "w1_clone_drop", "w1_clone_drop_tracked",
    "w1_deref", "w1_deref_tracked",
    "w2_pairs_build", "w2_pairs_drop_collect", "w3_ring_build", "w3_ring_drop_collect",
    "w4_collect_live_tree", "w4_collect_live_tree_touched", "w5_list_drop",
    "w7_binary_trees", "w7_binary_trees_parent", "w7_large_linked_list", "w7_stress_test",
    "w7_dumpster_mix", "w8_append_2m",
]
# (argument of the counts binary, name in the tables), in column order.
LIBS = [("rc", "Rc"), ("gcptr", "gcptr"), ("gc", "gc"), ("dumpster", "dumpster"),
        ("rust_cc", "rust-cc"), ("gcmodule", "gcmodule"), ("bacon_rajan_cc", "bacon_rajan_cc")]
# gcptr's extra rows in some criterion groups: (argument, row label).
VARIANTS = {
    "w4_collect_live_tree": [("gcptr_tracked", "gcptr (tracked tree)")],
    "w4_collect_live_tree_touched": [("gcptr_tracked", "gcptr (tracked tree)")],
    "w8_append_2m": [("gcptr_disabled", "gcptr (disabled)")],
}
# Left out as the criterion groups leave them out.
SKIP = {("w7_stress_test", "rc"): "no Rc version of the stress test"}

# callgrind's function name is demangled (`counts::counted_region`) but a
# symbol with an `.llvm.NNN` suffix may stay mangled
# (`_ZN6counts14counted_region17h...E`): the pattern matches both.
TOGGLE = "*counted_region*"
# Pinned cache geometry, so that the counts do not depend on what valgrind
# makes of the host's cpuid (on this VM's AMD EPYC: a 256 MiB direct-mapped
# LL). These are the host's L1s and its 32 MiB, 16-way L3.
CACHES = ["--I1=32768,8,64", "--D1=32768,8,64", "--LL=33554432,16,64"]
CACHES_TEXT = "I1 and D1 32 KiB 8-way, LL 32 MiB 16-way, 64 B lines"

METRICS = [
    ("instructions (Ir)", ["Ir"]),
    ("L1 data misses (D1mr + D1mw)", ["D1mr", "D1mw"]),
    ("last-level misses (ILmr + DLmr + DLmw)", ["ILmr", "DLmr", "DLmw"]),
]
# `calibrate` counts a loop of 1,000 iterations: a few thousand
# instructions, against millions in its setup and teardown.
CALIBRATE_IR = (1_000, 50_000)
# Below this many events for Rc (a few cache misses in a loop that reuses
# one allocation), a ratio to it says little: counts are shown instead.
MIN_BASE = 10_000
# Below this ratio to Rc (a collection with nothing to do, against Rc's
# traversal), the count itself says more.
MIN_RATIO = 0.01


def build():
    """Builds the counts bench; returns its executable's path."""
    cmd = ["cargo", "bench", "-p", "gcptr-benches", "--bench", "counts", "--no-run",
           "--message-format=json"]
    out = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True).stdout
    for line in out.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if (msg.get("reason") == "compiler-artifact" and msg.get("executable")
                and msg["target"]["name"] == "counts"):
            return msg["executable"]
    sys.exit("counts.py: cargo built no `counts` executable")


def why_failed(how, p):
    """What a failed run's exit code and stderr say: where it stopped (the
    counts binary's `counts: ...` lines) and its last message."""
    lines = [l.strip() for l in p.stderr.strip().splitlines()]
    marks = [l for l in lines if l.startswith("counts: ")]
    stage = {0: "setup", 1: "measured part"}.get(len(marks), "teardown")
    last = " / ".join([l for l in lines if not l.startswith(("counts: ", "==", "--"))][-2:])
    return f"fails {how} in its {stage} (exit {p.returncode}): {last}"


def run_native(exe, lib, workload):
    """None if the workload completes natively, else why not."""
    p = subprocess.run([exe, lib, workload], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return None if p.returncode == 0 else why_failed("natively", p)


def parse_callgrind(path):
    """{event: total} from a callgrind output file's `events:` and
    `summary:` (or `totals:`) lines; trailing zero events may be left out."""
    events, totals = None, None
    with open(path) as f:
        for line in f:
            if line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith(("summary:", "totals:")):
                totals = [int(v) for v in line.split()[1:]]
    if events is None or totals is None:
        return None
    totals += [0] * (len(events) - len(totals))
    return dict(zip(events, totals))


def run_callgrind(exe, lib, workload, tmp):
    """({event: count}, None) or (None, why it failed)."""
    out = Path(tmp) / f"callgrind.{workload}.{lib}"
    cmd = ["valgrind", "--tool=callgrind", "--cache-sim=yes", *CACHES, "--collect-atstart=no",
           f"--toggle-collect={TOGGLE}", f"--callgrind-out-file={out}", exe, lib, workload]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    counts = parse_callgrind(out) if out.exists() else None
    if p.returncode != 0 or counts is None:
        return None, why_failed("under valgrind", p)
    return counts, None


def measure(exe, lib, workload, tmp):
    start = time.monotonic()
    why = run_native(exe, lib, workload)
    counts = None
    if why is None:
        counts, why = run_callgrind(exe, lib, workload, tmp)
    return counts, why, time.monotonic() - start


def calibrate(exe, tmp):
    counts, why = run_callgrind(exe, "rc", "calibrate", tmp)
    if counts is None:
        sys.exit(f"counts.py: calibration {why}")
    low, high = CALIBRATE_IR
    if not low <= counts["Ir"] <= high:
        sys.exit(f"counts.py: the calibration region counted {counts['Ir']} instructions, "
                 f"not {low}-{high}: --toggle-collect={TOGGLE} does not isolate it")
    return counts["Ir"]


def fmt_count(n):
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.4g} {unit}"
    return str(n)


def fmt_ratio(r):
    return f"{r:.2f}x" if r >= 0.1 else f"{r:.2g}x"


def metric(counts, keys):
    return sum(counts[k] for k in keys)


def print_table(title, keys, rows, libs):
    """One markdown table: a row per (workload or gcptr variant), a column
    per library; `Rc` absolute, the others as ratios to it."""
    print(f"\n### {title}\n")
    print("| workload | " + " | ".join(name for _, name in libs) + " |")
    print("|---|" + "---:|" * len(libs))
    for label, cells in rows:
        base = cells.get("rc")
        base = metric(base, keys) if isinstance(base, dict) else None
        if base is not None and base < MIN_BASE:
            base = None
        shown = []
        for lib, _ in libs:
            c = cells.get(lib)
            if c is None:
                shown.append("")
            elif not isinstance(c, dict):
                shown.append(c)
            elif lib == "rc" or not base or metric(c, keys) / base < MIN_RATIO:
                shown.append(fmt_count(metric(c, keys)))
            else:
                shown.append(fmt_ratio(metric(c, keys) / base))
        print(f"| {label} | " + " | ".join(shown) + " |")
    print(f"\nRatios (`x`) are to Rc's count; plain numbers are counts: Rc's, and the others' "
          f"where Rc has none or fewer than {MIN_BASE:,}, or where the ratio is below {MIN_RATIO}.")


def selected(names, wanted):
    """The names that `wanted` gives: a name itself, else those it prefixes
    (`w1_new_drop` is one workload, `w1` six)."""
    if not wanted:
        return list(names)
    pick = lambda w: [w] if w in names else [n for n in names if n.startswith(w + "_")]
    chosen = {n for w in wanted for n in pick(w)}
    return [n for n in names if n in chosen]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default="", help="comma-separated names or prefixes")
    ap.add_argument("--libs", default="", help="comma-separated library arguments")
    ap.add_argument("--jobs", type=int, default=2, help="valgrind processes at once")
    args = ap.parse_args()
    wanted = [w for w in args.workloads.split(",") if w]
    workloads = selected(WORKLOADS, wanted)
    if not workloads:
        sys.exit(f"counts.py: no workload matches {args.workloads!r}; known: {' '.join(WORKLOADS)}")
    lib_args = {l for l in args.libs.split(",") if l} or {lib for lib, _ in LIBS}
    variant_args = {lib for vs in VARIANTS.values() for lib, _ in vs}
    unknown = lib_args - {lib for lib, _ in LIBS} - variant_args
    if unknown:
        sys.exit(f"counts.py: unknown libraries {sorted(unknown)}; known: "
                 f"{' '.join(lib for lib, _ in LIBS)} {' '.join(sorted(variant_args))}")

    def runs_of(workload):
        for lib, _ in LIBS:
            if lib in lib_args:
                yield lib
        for lib, _ in VARIANTS.get(workload, []):
            if lib in lib_args or "gcptr" in lib_args:
                yield lib

    jobs = [(w, lib) for w in workloads for lib in runs_of(w)]
    exe = build()
    begin = time.monotonic()
    results, notes, seconds = {}, [], {}
    with tempfile.TemporaryDirectory(prefix="gcptr-counts-") as tmp:
        calibration = calibrate(exe, tmp)

        def one(job):
            w, lib = job
            if job in SKIP:
                return job, SKIP[job], None, 0.0
            counts, why, secs = measure(exe, lib, w, tmp)
            return job, why, counts, secs

        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            for i, ((w, lib), why, counts, secs) in enumerate(pool.map(one, jobs), 1):
                print(f"[{i}/{len(jobs)}] {w} {lib}: {secs:.0f} s"
                      + (f" ({why})" if why else ""), file=sys.stderr, flush=True)
                seconds[w] = seconds.get(w, 0.0) + secs
                results[(w, lib)] = counts or ("-" if (w, lib) in SKIP else "failed")
                if why:
                    notes.append(f"- {w}, {lib}: {why}")
    elapsed = time.monotonic() - begin

    # A variant's figures go in gcptr's column.
    libs = [(lib, name) for lib, name in LIBS
            if lib in lib_args or (lib == "gcptr" and lib_args & variant_args)]
    rows = []
    for w in workloads:
        title = TITLES.get(w, w)
        rows.append((title, {lib: results[(w, lib)] for lib, _ in libs if (w, lib) in results}))
        for lib, name in VARIANTS.get(w, []):
            if (w, lib) in results:
                cells = {"gcptr": results[(w, lib)]}
                if isinstance(results.get((w, "rc")), dict):
                    cells["rc"] = results[(w, "rc")]
                rows.append((f"{title}: {name}", cells))

    version = subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip()
    print(f"Counts of each workload's measured part, one run, callgrind ({version}), "
          f"simulated caches: {CACHES_TEXT}. Calibration region: {calibration} instructions "
          f"(about 4,000 expected).")
    for title, keys in METRICS:
        print_table(title, keys, rows, libs)
    if notes:
        print("\nNot counted:\n")
        print("\n".join(notes))
    print(f"\n{len(jobs)} runs in {elapsed / 60:.1f} min; per workload (sum over libraries):",
          ", ".join(f"{w} {s:.0f} s" for w, s in seconds.items()))

    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    path = target / "gcptr-bench" / "counts.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = {w: {lib: v for (w2, lib), v in results.items() if w2 == w} for w in workloads}
    path.write_text(json.dumps({"valgrind": version, "caches": CACHES, "counts": raw}, indent=1) + "\n")
    print(f"\nwrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()

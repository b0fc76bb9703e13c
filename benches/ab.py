#!/usr/bin/env python3
"""Two or more builds of gcptr, timed against each other on the same workloads.

    cargo bench -p gcptr-benches --bench counts --no-run   # prints the binary's path
    cp target/release/deps/counts-<hash> /tmp/before       # then change the code, build again
    python3 benches/ab.py /tmp/before target/release/deps/counts-<hash> \\
        --workloads w7_stress_test,w3_ring_drop_collect --runs 20

Each binary is a build of the `counts` bench target, which runs one
workload's measured part once and prints its wall time (`counts: measured
part done in N ns`, and on Linux the page faults the thread took in it).
The binaries run in turn, the order reversed every other round, so that a
drift of the machine (another process, a warming CPU) falls on all of
them alike; the medians are compared. A difference
of a few percent is seen this way on a VM where criterion's runs of one
build move by more than that from one run to the next, because only the
code changed between the binaries and they alternate. Layout still
matters: a change anywhere in the crate can move hot loops, so a small
difference is worth checking with a third build that changes nothing
that runs.

With --across-libs, one binary's libraries are timed against each other
the same way, each in a fresh process, in turn, with ratios to the first
library named (the README's targets table takes its verdicts from such
a round of every workload; `benches/README.md` gives the commands):

    python3 benches/ab.py target/release/deps/counts-<hash> --across-libs \
        --libs rc,gcptr,rust_cc --workloads w7_binary_trees_parent --runs 11

and, after the rows, one more table for each binary: a row per workload, a
column per library, the first library's median and each other one's ratio
to it (the layout of `benches/README.md`'s table of every workload).
"""

import argparse
import re
import statistics
import subprocess
import sys

# A median below this means the library ran no version of the workload.
NO_VERSION_MS = 0.01

DONE = re.compile(r"measured part done in (\d+) ns(?:, (\d+) page faults)?")


def measure(exe, lib, workload):
    p = subprocess.run([exe, lib, workload], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    m = DONE.search(p.stderr)
    if p.returncode != 0 or not m:
        sys.exit(f"ab.py: {exe} {lib} {workload} failed (exit {p.returncode}): "
                 f"{p.stderr.strip()[-300:]}")
    faults = int(m.group(2)) if m.group(2) is not None else None
    return int(m.group(1)) / 1e6, faults


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binaries", nargs="+", help="counts binaries; the first is the baseline")
    ap.add_argument("--workloads", required=True, help="comma-separated criterion group names")
    ap.add_argument("--libs", default="gcptr", help="comma-separated libraries (default gcptr)")
    ap.add_argument("--runs", type=int, default=20, help="runs of each binary per workload")
    ap.add_argument("--across-libs", action="store_true",
                    help="time the libraries against each other in each binary, in turn "
                         "(ratios to the first library) instead of the binaries for each library")
    args = ap.parse_args()

    print("| library | workload | binary | median | min | ratio to the first | page faults |")
    print("|---|---|---|---:|---:|---:|---:|")
    libs = args.libs.split(",")
    # Each block is timed in turn and compared with its first entry.
    if args.across_libs:
        blocks = [[(exe, lib) for lib in libs] for exe in args.binaries]
    else:
        blocks = [[(exe, lib) for exe in args.binaries] for lib in libs]
    workloads = args.workloads.split(",")
    medians = {}
    for block in blocks:
        for workload in workloads:
            times = {entry: [] for entry in block}
            faults = {entry: [] for entry in block}
            for round_ in range(args.runs):
                order = block if round_ % 2 == 0 else block[::-1]
                for entry in order:
                    time, fault_count = measure(*entry, workload)
                    times[entry].append(time)
                    if fault_count is not None:
                        faults[entry].append(fault_count)
            base = statistics.median(times[block[0]])
            for entry in block:
                exe, lib = entry
                median = statistics.median(times[entry])
                medians[exe, lib, workload] = median
                # The median count, where the binary reports it (Linux).
                fault_median = (f"{statistics.median(faults[entry]):.0f}"
                                if faults[entry] else "")
                print(f"| {lib} | {workload} | {exe} | {median:.3f} ms "
                      f"| {min(times[entry]):.3f} ms | {median / base:.3f} | {fault_median} |")

    if args.across_libs:
        for exe in args.binaries:
            print_wide(exe, libs, workloads, medians)


def print_wide(exe, libs, workloads, medians):
    """The medians of one binary's round as a workload-by-library table."""
    print(f"\n{exe}:\n")
    print("| workload | " + " | ".join(libs) + " |")
    print("|---|" + "---:|" * len(libs))
    for workload in workloads:
        base = medians[exe, libs[0], workload]
        others = [medians[exe, lib, workload] for lib in libs[1:]]
        if base < NO_VERSION_MS:
            # The first library has no version of it (`Rc` and the stress
            # test): the others' times, as the README's table gives them.
            cells = [""] + [f"{t:.1f} ms" for t in others]
        else:
            cells = [f"{base:.2f} ms"] + [f"{t / base:.2f}x" for t in others]
        print(f"| {workload} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

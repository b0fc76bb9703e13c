#!/usr/bin/env python3
"""CPython reference for workloads 2, 3, 4 and 6 of issue 6 (workload 9).

Run by `benches/report.py` when python3 is present, or by hand:

    python3 benches/cpython_reference.py [--quick]

Prints one JSON object: medians in nanoseconds per workload (same names as
the criterion groups) and bytes per node for workload 6 (tracemalloc).
The shapes are those of the Rust benchmarks: every node has a `value` and
its links, with `__slots__` (the leanest CPython object that gc tracks).
"""
import gc
import json
import sys
import time
import tracemalloc

QUICK = "--quick" in sys.argv
PAIRS = 100_000
RING = 1_000_000 // (10 if QUICK else 1)
DEPTH = 20 - (3 if QUICK else 0)
REPEAT = 3 if QUICK else 5


class Link:
    __slots__ = ("value", "next")

    def __init__(self, value, next=None):
        self.value = value
        self.next = next


class DNode:
    __slots__ = ("value", "next", "prev")

    def __init__(self, value):
        self.value = value
        self.next = None
        self.prev = None


class Tree:
    __slots__ = ("value", "left", "right")

    def __init__(self, value, left, right):
        self.value = value
        self.left = left
        self.right = right


def pairs_build(n):
    handles = []
    for i in range(n):
        a = Link(i)
        b = Link(i, a)
        a.next = b
        handles.append(a)
    return handles


def ring_build(n):
    head = DNode(0)
    last = head
    for i in range(1, n):
        node = DNode(i)
        node.prev = last
        last.next = node
        last = node
    last.next = head
    head.prev = last
    return head


def tree_build(depth):
    sub = tree_build(depth - 1) if depth > 1 else None
    sub2 = tree_build(depth - 1) if depth > 1 else None
    return Tree(depth, sub, sub2)


def tree_traverse(node):
    total = 0
    stack = [node]
    while stack:
        n = stack.pop()
        total += n.value
        if n.left is not None:
            stack.append(n.left)
            stack.append(n.right)
    return total


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def timed(setup, routine, repeat=REPEAT):
    """Median time of `routine(setup())`. What the routine returns is
    dropped after the clock stops, as the Rust benchmarks drop a build's
    output in their untimed teardown (a build's list of 100,000 handles
    would otherwise be freed, and each handle's count decremented, inside
    the timed region)."""
    times = []
    for _ in range(repeat):
        x = setup()
        t = time.perf_counter_ns()
        y = routine(x)
        times.append(time.perf_counter_ns() - t)
        del x, y
        gc.collect()
    return median(times)


def main():
    gc.collect()
    out = {"python": sys.version.split()[0], "quick": QUICK, "ns": {}, "bytes_per_node": {}}
    ns = out["ns"]

    # Workload 2: build; drop handles + collect.
    def build_pairs(_):
        h = pairs_build(PAIRS)
        return h
    ns["w2_pairs_build"] = timed(lambda: None, lambda _: build_pairs(None))

    def drop_collect(box):
        box.pop()
        gc.collect()
    ns["w2_pairs_drop_collect"] = timed(lambda: [pairs_build(PAIRS)], drop_collect)

    # Workload 3 (scaled to the Rust size if --quick).
    scale = 1_000_000 / RING
    ns["w3_ring_build"] = timed(lambda: None, lambda _: ring_build(RING)) * scale
    ns["w3_ring_drop_collect"] = timed(lambda: [ring_build(RING)], drop_collect) * scale

    # Workload 4: full collection of a live tree with no garbage, against
    # one plain traversal of it.
    tree = tree_build(DEPTH)
    gc.collect()
    tscale = (2 ** 20 - 1) / (2 ** DEPTH - 1)
    ns["w4_collect_live_tree"] = timed(lambda: None, lambda _: gc.collect()) * tscale
    ns["w4_traversal"] = timed(lambda: None, lambda _: tree_traverse(tree)) * tscale
    del tree
    gc.collect()

    # Workload 6: bytes per node of the ring, live and at peak.
    gc.collect()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    box = [ring_build(RING)]
    live, _ = tracemalloc.get_traced_memory()
    box.pop()
    gc.collect()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    out["bytes_per_node"] = {"live": (live - base) / RING, "peak": (peak - base) / RING}

    print(json.dumps(out))


if __name__ == "__main__":
    main()

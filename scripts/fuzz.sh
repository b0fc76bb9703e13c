#!/usr/bin/env bash
# Fuzzes gcptr under AddressSanitizer (cargo-fuzz's default), with one of
# two targets (FUZZ_TARGET):
#
# * `ops` (the default; fuzz/fuzz_targets/ops.rs): programs of the
#   model-based test's operation language, decoded from fuzzer bytes and
#   checked against the reference model after every step;
# * `meddling_traces` (fuzz/fuzz_targets/meddling_traces.rs): programs
#   whose hand-written traces, `Drop`s, finalizers and death callbacks
#   meddle (drop roots, cut other nodes' edges, upgrade, allocate, collect,
#   freeze, call `referrers`, watch and stop watching), beside nodes with
#   no `Drop` (freed without drops), fixed-edge (acyclic) nodes and plain
#   data with no drop glue, checked by oracles that need no model.
#
#   scripts/fuzz.sh                 # 5 minutes, one job, `ops`
#   FUZZ_SECONDS=1800 FUZZ_JOBS=2 scripts/fuzz.sh
#   FUZZ_TARGET=meddling_traces scripts/fuzz.sh
#   scripts/fuzz.sh -runs=100000    # extra arguments go to libFuzzer
#
# Built with `--cfg gcptr_no_block_reuse`, as scripts/sanitizers.sh is: every
# free reaches ASan, which would miss a use after free of memory that the
# thread kept for reuse. FUZZ_BLOCK_REUSE=1 fuzzes with reuse on instead.
#
# Needs the nightly toolchain and cargo-fuzz (installed here if missing).
# The corpus grows in fuzz/corpus/<target>; crashes land in
# fuzz/artifacts/<target>, and `cargo +nightly fuzz run <target>
# fuzz/artifacts/<target>/<file>` replays one. `cargo +nightly fuzz fmt ops
# <file>` prints an `ops` input as a list of operations.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${FUZZ_TARGET:-ops}
seconds=${FUZZ_SECONDS:-300}
jobs=${FUZZ_JOBS:-1}

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz
fi

args=(-max_total_time="$seconds" -print_final_stats=1)
if [ "$jobs" -gt 1 ]; then
    args+=(-jobs="$jobs" -workers="$jobs")
fi

if [ "${FUZZ_BLOCK_REUSE:-0}" != 1 ]; then
    export RUSTFLAGS="${RUSTFLAGS:-} --cfg gcptr_no_block_reuse"
fi

cd fuzz
exec cargo +nightly fuzz run "$target" -- "${args[@]}" "$@"

#!/usr/bin/env bash
# Runs the test suite under memory checkers:
#
#   scripts/sanitizers.sh asan       # AddressSanitizer + LeakSanitizer (nightly)
#   scripts/sanitizers.sh valgrind   # valgrind --leak-check=full (stable build)
#   scripts/sanitizers.sh            # both
#   scripts/sanitizers.sh asan --test model   # extra arguments select tests
#
# Either must report zero errors and zero leaks. Tests that leak on purpose
# can be excused with suppression files: LSAN_SUPPRESSIONS=<file> (LSan's
# `leak:<function>` lines) and VALGRIND_SUPPRESSIONS=<file>.
#
# The benchmarks package (peer crates) is not run. The model test runs
# GCPTR_MODEL_CASES programs per property (default here: 300 under ASan,
# 40 under valgrind, which is about 50 times slower than a plain run).
# ASAN_BUILD_STD=1 also instruments std (needs the rust-src component).
# Both build with `--cfg gcptr_no_block_reuse`: freed objects' memory goes
# straight back to the allocator, so that the checker sees every free.
set -euo pipefail
cd "$(dirname "$0")/.."
# The compile-fail test checks compiler messages, not memory, and its
# pinned messages are the pinned toolchain's, not nightly's.
export GCPTR_SKIP_UI=1

host=$(rustc -vV | sed -n 's/^host: //p')
mode=${1:-all}
shift || true
# Which test targets: all of the workspace's but the benchmarks', or those
# given on the command line (cargo test's target selection).
targets=(--workspace --exclude gcptr-benches --lib --bins --tests)
if [ $# -gt 0 ]; then
    targets=("$@")
fi

run_asan() {
    echo "=== AddressSanitizer + LeakSanitizer ==="
    local flags="-Zsanitizer=address -Cdebuginfo=1 -Cforce-frame-pointers=yes --cfg gcptr_no_block_reuse"
    local build_std=()
    if [ "${ASAN_BUILD_STD:-0}" = 1 ]; then
        build_std=(-Zbuild-std)
    fi
    local lsan="detect_leaks=1:report_objects=1"
    if [ -n "${LSAN_SUPPRESSIONS:-}" ]; then
        lsan="$lsan:suppressions=$(realpath "$LSAN_SUPPRESSIONS")"
    fi
    # `--target` keeps the sanitizer off build scripts and proc macros.
    # Doc tests are left out: rustdoc's own harness does not link ASan.
    GCPTR_MODEL_CASES=${GCPTR_MODEL_CASES:-300} \
    RUSTFLAGS="$flags" \
    ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1" \
    LSAN_OPTIONS="$lsan" \
    CARGO_TARGET_DIR=target/asan \
        cargo +nightly test --no-fail-fast "${build_std[@]}" --target "$host" "${targets[@]}" -- --test-threads=2
}

run_valgrind() {
    echo "=== valgrind --leak-check=full ==="
    local list
    list=$(mktemp)
    # The proc-macro crate's test binary links libstd dynamically (it cannot
    # start outside cargo) and holds no unsafe code: left out here.
    local valgrind_targets=("${targets[@]}")
    if [ $# -eq 0 ] && [ "${targets[0]}" = --workspace ]; then
        valgrind_targets+=(--exclude gcptr-derive)
    fi
    CARGO_TARGET_DIR=target/valgrind RUSTFLAGS="--cfg gcptr_no_block_reuse" \
        cargo test "${valgrind_targets[@]}" --no-run \
        --message-format=json \
        | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    if msg.get("reason") == "compiler-artifact" and msg.get("profile", {}).get("test") \
            and msg.get("executable"):
        manifest = msg["manifest_path"].rsplit("/", 1)[0]
        print(manifest + "\t" + msg["executable"])
' >"$list"
    local supp=()
    if [ -n "${VALGRIND_SUPPRESSIONS:-}" ]; then
        supp=(--suppressions="$VALGRIND_SUPPRESSIONS")
    fi
    local failed=0
    while IFS=$'\t' read -r manifest_dir exe; do
        echo "--- $exe"
        # As `cargo test` runs it: from its package, which trybuild needs.
        if ! (cd "$manifest_dir" && CARGO_MANIFEST_DIR="$manifest_dir" GCPTR_MODEL_CASES=${GCPTR_MODEL_CASES:-40} \
            valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect \
            --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
            "${supp[@]}" "$exe" --test-threads=1 -q </dev/null); then
            echo "!!! $exe failed under valgrind"
            failed=1
        fi
    done <"$list"
    rm -f "$list"
    return $failed
}

case "$mode" in
    asan) run_asan ;;
    valgrind) run_valgrind ;;
    all)
        run_asan
        run_valgrind
        ;;
    *)
        echo "usage: $0 [asan|valgrind|all]" >&2
        exit 2
        ;;
esac
echo "=== $mode: no errors, no leaks ==="

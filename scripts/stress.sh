#!/usr/bin/env bash
# Long stress tests (ignored by `cargo test`): 10,000,000 objects in random
# graphs with automatic collection, memory bounded across 100 rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --test stress -- --ignored --nocapture

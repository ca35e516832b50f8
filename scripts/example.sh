#!/usr/bin/env bash
# Builds the wasikv CLI and the counter example guest, then runs the guest
# against the embedded default bucket (.wasikv/default.redb here). Run it twice:
# the counts persist.
#
#   scripts/example.sh [NAME]
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2 >/dev/null 2>&1 || rustup target add wasm32-wasip2
cargo build --release --quiet --manifest-path examples/guests/Cargo.toml \
    --target wasm32-wasip2 --target-dir examples/guests/target -p counter
cargo run --release --quiet -p wasikv-host --bin wasikv -- \
    run examples/guests/target/wasm32-wasip2/release/counter.wasm -- "${1:-world}"

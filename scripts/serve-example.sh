#!/usr/bin/env bash
# Builds the wasikv CLI and the HTTP example guest (examples/guests/http-kv),
# then serves it on 127.0.0.1:8080 (or ADDR) over the embedded default bucket
# (.wasikv/default.redb here; examples/config/serve.toml lists the component),
# with /healthz and /metrics on 127.0.0.1:9090,
# until Ctrl-C.
#
#   scripts/serve-example.sh [ADDR] [-- MORE wasikv serve FLAGS]
set -euo pipefail
cd "$(dirname "$0")/.."

addr=${1:-127.0.0.1:8080}
shift || true
[[ ${1:-} == -- ]] && shift
rustup target add wasm32-wasip2 >/dev/null 2>&1 || rustup target add wasm32-wasip2
cargo build --release --quiet --manifest-path examples/guests/Cargo.toml \
    --target wasm32-wasip2 --target-dir examples/guests/target -p http-kv
exec cargo run --release --quiet -p wasikv-host --bin wasikv -- \
    serve examples/guests/target/wasm32-wasip2/release/http_kv.wasm \
    --config examples/config/serve.toml \
    --listen "$addr" --admin 127.0.0.1:9090 "$@"

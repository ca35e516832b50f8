#!/usr/bin/env bash
# Guest `get`/`set` calls per second through the host, per store, next to a
# loop of the same Rust client the provider uses and (Redis) the store's own
# tool, all in one run against the servers of scripts/services.sh.
# A first cut of the benchmark suite (issue: benchmarks); release build.
#
#   scripts/bench-stores.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20000}
TARGET=${CARGO_TARGET_DIR:-target}
scripts/services.sh >/dev/null
rustup target add wasm32-wasip2 >/dev/null 2>&1
cargo build --release --quiet -p wasikv-host --all-features
cargo build --release --quiet -p wasikv-redis -p wasikv-etcd -p wasikv-memcached -p wasikv-dynamodb -p wasikv-cosmos --examples
cargo build --release --quiet --manifest-path examples/guests/Cargo.toml --target wasm32-wasip2 \
    --target-dir examples/guests/target -p probe
PROBE=examples/guests/target/wasm32-wasip2/release/probe.wasm
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cat >"$WORK/wasikv.toml" <<TOML
[runtime]
data_dir = "$WORK/data"
cache_dir = "$WORK/cache"
[buckets.memory]
provider = "memory"
[buckets.redis]
provider = "redis"
url = "redis://127.0.0.1:6379/0"
prefix = "wasikv-bench:"
[buckets.etcd]
provider = "etcd"
endpoints = ["http://127.0.0.1:12379"]
prefix = "wasikv-bench/"
[buckets.memcached]
provider = "memcached"
address = "127.0.0.1:12211"
prefix = "wasikv-bench:"
[buckets.dynamodb]
provider = "dynamodb"
table = "wasikv-test"
prefix = "wasikv-bench/"
create_table = true
region = "us-east-1"
endpoint = "http://127.0.0.1:14566"
access_key_id = "test"
secret_access_key = "test"
max_item_bytes = 300000
[buckets.cosmos]
provider = "cosmos"
endpoint = "https://127.0.0.1:18081/"
key = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="
database = "wasikv-test"
container = "shared"
create = true
TOML
guest() { "$TARGET/release/wasikv" run --config "$WORK/wasikv.toml" "$PROBE" -- loop "$2" "$1" "$3" | sed 's/^ok /guest /'; }
rate() { sed -E 's/.* ([0-9]+) calls\/s$/\1/'; }
for op in get set; do
    echo "== $op"
    g=$(guest memory $op $((N * 20))); echo "memory    $g"
    for store in redis memcached etcd dynamodb cosmos; do
        n=$N; [[ $store == etcd ]] && n=$((N / 4)); [[ $store == dynamodb || $store == cosmos ]] && n=$((N / 20))
        g=$(guest $store $op $n)
        case $store in
            redis) native=$(cargo run --release --quiet -p wasikv-redis --example redis_native_loop -- redis://127.0.0.1:6379/0 $n $op) ;;
            etcd) native=$(cargo run --release --quiet -p wasikv-etcd --example etcd_native_loop -- http://127.0.0.1:12379 $n $op) ;;
            memcached) native=$(cargo run --release --quiet -p wasikv-memcached --example memcached_native_loop -- 127.0.0.1:12211 $n $op) ;;
            dynamodb) native=$(cargo run --release --quiet -p wasikv-dynamodb --example dynamodb_native_loop -- http://127.0.0.1:14566 $n $op) ;;
            cosmos) native=$(cargo run --release --quiet -p wasikv-cosmos --example cosmos_native_loop -- https://127.0.0.1:18081/ $n $op) ;;
        esac
        ratio=$(awk -v a="$(echo "$g" | rate)" -v b="$(echo "$native" | rate)" 'BEGIN { printf "%.2f", a / b }')
        echo "$store  $g"
        echo "$store  $native"
        echo "$store  guest/native = ${ratio}x"
        if [[ $store == redis ]]; then
            echo "redis  redis-benchmark -c 1: $(redis-benchmark -h 127.0.0.1 -p 6379 -c 1 -n $n -t $op -q | tr "\r" "\n" | grep -E "^(GET|SET):" | tail -1)"
        fi
    done
done

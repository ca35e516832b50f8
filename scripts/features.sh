#!/usr/bin/env bash
# Builds the `wasikv` CLI with no networked provider and with each one alone
# (what an operator builds for one cloud), checks that `wasikv providers`
# lists exactly the providers of that build, and prints the size of each
# binary with its debug info stripped (what the `dist` profile writes).
# With host/feature-pins complete (checked first), each build reuses the
# compiled dependencies and recompiles only wasikv-host: about a minute each.
#
#   scripts/features.sh           # build, list and size each (about 12 min)
#   scripts/features.sh --check   # only that each compiles alone (CI: a
#                                 # minute or two warm; the builds relink
#                                 # the 180 MB binary nine times)
set -euo pipefail
mode=${1:-build}
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"

scripts/feature-pins.sh
sizes=$(mktemp)
trap 'rm -f "$sizes" "$sizes.bin"' EXIT
for feature in none redis etcd memcached dynamodb firestore cosmos postgres nats; do
    flags=()
    expected="memory embedded"
    if [[ $feature != none ]]; then
        flags=(--features "$feature")
        expected="$expected $feature"
    fi
    started=$SECONDS
    if [[ $mode == --check ]]; then
        cargo check --release --quiet --locked -p wasikv-host --bin wasikv "${flags[@]}"
        printf '%-10s compiles alone (%d s)\n' "$feature" $(( SECONDS - started ))
        continue
    fi
    cargo build --release --quiet --locked -p wasikv-host --bin wasikv "${flags[@]}"
    binary="$target_dir/release/wasikv"
    # The matrix's header row has a column per provider (several for one
    # provider's variants, e.g. "dynamodb (table without stream)").
    listed=$("$binary" providers | head -n 1 | tr '|' '\n' | tail -n +3 | awk 'NF { print $1 }' | uniq | xargs)
    if [[ $listed != "$expected" ]]; then
        echo "features: the build with '$feature' lists providers '$listed', expected '$expected'" >&2
        exit 1
    fi
    objcopy --strip-debug "$binary" "$sizes.bin"
    printf '%-10s %4d MB with line tables, %3d MB stripped (%d s)\n' "$feature" \
        $(( $(stat -c %s "$binary") / 1000000 )) $(( $(stat -c %s "$sizes.bin") / 1000000 )) \
        $(( SECONDS - started )) | tee -a "$sizes"
done
if [[ $mode == --check ]]; then
    echo "features: the CLI compiles with no networked provider and with each one alone"
else
    echo "features: every build lists exactly its providers"
fi

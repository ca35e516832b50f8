#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer, through the libfuzzer-sys crate) of the
# key codec, the counter grammar, list-keys cursors, the configuration and
# the large-value layout (manifests, hidden keys).
# The targets live in fuzz/ (a workspace of its own) and are built with
# sanitizer-coverage instrumentation by stable rustc flags (what `cargo
# fuzz --sanitizer none` passes), into their own target directory.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   # default: 60 s each, every target
#
# CI runs `scripts/fuzz.sh 10` from scripts/test.sh. Each target starts from
# its checked-in corpus (fuzz/corpus/TARGET); new inputs it finds go to a
# scratch corpus, not into the repository. A crash or failed assertion
# stops the run with the input written to fuzz/artifacts/TARGET/ and a
# non-zero exit. Prints executions per target.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(codec counter cursor config chunks)
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
case $target_dir in /*) ;; *) target_dir=$PWD/$target_dir ;; esac
fuzz_dir=$target_dir/fuzz

# The flags of `cargo fuzz build --sanitizer none`, on a stable toolchain.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# An explicit --target keeps the flags off build scripts and proc macros.
host=$(rustc -vV | sed -n 's/^host: //p')
cargo build --release --quiet --locked --manifest-path fuzz/Cargo.toml \
    --target "$host" --target-dir "$fuzz_dir" --bins

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
status=0
for target in "${targets[@]}"; do
    mkdir -p "$scratch/$target" "fuzz/artifacts/$target"
    log=$scratch/$target.log
    if "$fuzz_dir/$host/release/$target" -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="fuzz/artifacts/$target/" \
        "$scratch/$target" "fuzz/corpus/$target" >"$log" 2>&1; then
        execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log" | tail -1)
        cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 || true)
        echo "fuzz: $target: ${execs:-?} executions in ${seconds} s, ${cov:-cov: ?}, no crash"
    else
        status=1
        echo "fuzz: $target FAILED; the input is in fuzz/artifacts/$target/:" >&2
        grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$log" >&2 || tail -30 "$log" >&2
    fi
done
exit $status

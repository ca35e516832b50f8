#!/usr/bin/env bash
# Runs every test of wasikv, after setting up what they need.
#
#   scripts/test.sh            # set up, lint, test (release profile, like CI)
#   WASIKV_SKIP_LINT=1 scripts/test.sh   # tests only
#   WASIKV_SKIP_CROSS=1 scripts/test.sh  # no Windows/macOS checks (never under CI=true)
#
# Everything is built with the release profile: wasmtime is compiled once and
# shared by the tests, the CLI and the benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s (at %d s)\n' "$*" "$SECONDS"; }

step "toolchain: wasm32-wasip2 target (guests)"
rustup target add wasm32-wasip2

step "services"
scripts/services.sh

if [[ "${WASIKV_SKIP_LINT:-}" != "1" ]]; then
    step "format"
    cargo fmt --all --check
    (cd examples/guests && cargo fmt --all --check)
    (cd fuzz && cargo fmt --all --check)
fi

step "tests (release)"
log="$(mktemp)"
set +e
cargo test --release --workspace --all-features --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing tally over every test binary (unit, behavior suites, guests, doctests).
summary=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i; if ($(i+1) ~ /^ignored;?$/) g += $i } }
    END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, g }' "$log")
rm -f "$log"
if [[ $status != 0 ]]; then
    echo "$summary"
    exit "$status"
fi

step "fuzz: each target for 10 s from its checked-in corpus (scripts/fuzz.sh)"
scripts/fuzz.sh 10

step "benchmark smoke run (scripts/bench.sh --quick: every part, seconds)"
scripts/bench.sh --quick

step "the CLI compiled with each networked provider alone (scripts/features.sh --check)"
scripts/features.sh --check

if [[ "${WASIKV_SKIP_CROSS:-}" != "1" || "${CI:-}" == "true" ]]; then
    step "Windows: cross-build with mingw-w64, guest checks under wine"
    scripts/windows.sh
    step "macOS: cargo check for aarch64-apple-darwin (zig cc for the C)"
    scripts/macos.sh
fi

if [[ "${WASIKV_SKIP_LINT:-}" != "1" ]]; then
    step "clippy"
    cargo clippy --release --workspace --all-targets --all-features -- -D warnings
    (cd examples/guests && cargo clippy --release --target wasm32-wasip2 --target-dir "${CARGO_TARGET_DIR:-target}/guests-lint" -- -D warnings)
    step "docs"
    RUSTDOCFLAGS=-Dwarnings cargo doc --release --workspace --no-deps --all-features
fi
printf '\n==> all tests passed in %d s\n' "$SECONDS"
echo "$summary"

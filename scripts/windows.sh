#!/usr/bin/env bash
# Cross-builds the wasikv CLI for Windows (x86_64-pc-windows-gnu, every
# provider feature) with Debian's mingw-w64, then runs guest checks with the
# .exe under Debian's wine: the unit, property, behavior and crash tests of
# wasikv-core and the memory and embedded providers (test .exes run by wine),
# the counter example against the embedded default
# (twice: the count must persist), `wasikv check`, `wasikv providers`, and the
# guest conformance component against every provider (memory and embedded in
# the process; Redis, memcached, etcd, DynamoDB/moto, the Firestore emulator
# and the Cosmos fixture started by scripts/services.sh; PostgreSQL and NATS,
# the machine's own), and `wasikv serve`
# of the HTTP example answering curl from Linux. Any failure fails the script.
#
#   scripts/windows.sh            # install what is missing, build, check
#
# The Windows build has its own cargo target directory inside the Linux one
# (<CARGO_TARGET_DIR>/windows), so it never waits on the Linux build's lock and
# repeated runs are incremental wherever CARGO_TARGET_DIR is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-pc-windows-gnu
FEATURES=redis,etcd,memcached,dynamodb,firestore,cosmos,postgres,nats
root=$PWD
target_dir=${CARGO_TARGET_DIR:-$root/target}
case $target_dir in /*) ;; *) target_dir=$root/$target_dir ;; esac
windows_dir=$target_dir/windows
work=$windows_dir/check

say() { printf 'windows: %s\n' "$*"; }
fail() { printf 'windows: FAILED: %s\n' "$*" >&2; exit 1; }

# --- tools ------------------------------------------------------------------
find_wine() {
    command -v wine64 2>/dev/null && return
    for candidate in /usr/lib/wine/wine64 /usr/lib/x86_64-linux-gnu/wine/wine64; do
        [[ -x $candidate ]] && { echo "$candidate"; return; }
    done
    return 1
}
if ! command -v x86_64-w64-mingw32-gcc >/dev/null || ! find_wine >/dev/null; then
    say "installing mingw-w64 and wine64 (Debian)"
    if [[ $(id -u) == 0 ]]; then sudo=; else sudo=sudo; fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        gcc-mingw-w64-x86-64 wine64 >/dev/null ||
        { $sudo apt-get update -q >/dev/null &&
          $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
              gcc-mingw-w64-x86-64 wine64 >/dev/null; }
fi
WINE=$(find_wine) || fail "wine64 not found after installing it"
rustup target add "$TARGET" wasm32-wasip2 >/dev/null 2>&1 || rustup target add "$TARGET" wasm32-wasip2
scripts/services.sh >/dev/null

# --- build --------------------------------------------------------------------
say "cross-building wasikv.exe (--features $FEATURES)"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
cargo build --release --quiet --target "$TARGET" --target-dir "$windows_dir" \
    -p wasikv-host --bin wasikv --features "$FEATURES"
exe=$windows_dir/$TARGET/release/wasikv.exe
[[ -f $exe ]] || fail "no $exe after the build"

say "building the guests (wasm32-wasip2)"
cargo build --release --quiet --manifest-path examples/guests/Cargo.toml \
    --target wasm32-wasip2 --target-dir "$windows_dir/guests" -p counter -p conformance -p http-kv
guests=$windows_dir/guests/wasm32-wasip2/release

# --- wine ---------------------------------------------------------------------
rm -rf "$work/run"
mkdir -p "$work/run"
# Wine < 8.13 has no ProcessPrng (bcryptprimitives.dll), which every Rust
# >= 1.78 .exe imports: a test-only shim next to the .exe provides it.
x86_64-w64-mingw32-gcc -shared -O2 -o "$(dirname "$exe")/bcryptprimitives.dll" \
    scripts/windows/bcryptprimitives.c -ladvapi32
cp "$guests/counter.wasm" "$guests/conformance.wasm" "$guests/http_kv.wasm" "$work/run/"

export WINEPREFIX=$work/prefix WINEDEBUG=-all WINEDLLOVERRIDES="bcryptprimitives=n,b"
if [[ ! -f $WINEPREFIX/system.reg ]]; then
    say "creating the wine prefix"
    "$WINE" wineboot --init >/dev/null 2>&1 || true
fi
say "$("$WINE" --version 2>/dev/null || echo wine), $(du -h "$exe" | cut -f1) .exe (line tables included)"

# The in-process providers' own tests on Windows: wasikv-core (codec, counter
# rules, properties), and the behavior suite, crash durability and unit tests
# of the memory and embedded providers, each test .exe run by wine.
say "core, memory and embedded tests under wine"
mkdir -p "$(dirname "$exe")/deps"
cp "$(dirname "$exe")/bcryptprimitives.dll" "$(dirname "$exe")/deps/"
tests_log=$work/tests.log
if ! CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=$WINE cargo test --release --quiet --target "$TARGET" \
    --target-dir "$windows_dir" -p wasikv-core -p wasikv-memory -p wasikv-embedded --lib --tests \
    >"$tests_log" 2>&1; then
    cat "$tests_log" >&2
    fail "core, memory or embedded tests under wine"
fi
say "$(awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "tests under wine: %d passed, %d failed, %d skipped (capability-gated)", p, f, i }' "$tests_log")"

cd "$work/run"
# Runs the .exe with its arguments; output in $out, exit code in $code.
wasikv() {
    set +e
    out=$("$WINE" "$exe" "$@" 2>&1)
    code=$?
    set -e
}

# The main job: the counter example against the embedded default, twice.
wasikv run counter.wasm -- windows
[[ $code == 0 && $out == *"visit number 1 "* ]] || fail "counter, first run (exit $code): $out"
wasikv run counter.wasm -- windows
[[ $code == 0 && $out == *"visit number 2 "* ]] || fail "counter, second run (exit $code): $out"
[[ -f .wasikv/default.redb ]] || fail "no .wasikv/default.redb after the counter runs"
say "counter example against the embedded default: ok (the count persisted)"

# Every provider: memory and embedded in the process, the networked ones
# against the servers of scripts/services.sh (fresh namespaces per run).
cat > wasikv.toml <<TOML
[limits]
list_page_keys = 7

[buckets.mem]
provider = "memory"

[buckets.file]
provider = "embedded"
path = 'data\\file.redb'

[buckets.secret]
provider = "memory"

[components.conformance]
buckets = ["default", "mem", "file", "redis", "memcached", "etcd", "dynamodb", "firestore", "cosmos", "cosmos-partition", "postgres", "nats"]

[components.http_kv]
buckets = ["mem"]
TOML
"$root/scripts/test-buckets.sh" "wasikv-win-$(date +%s)-$$" >> wasikv.toml
wasikv check
[[ $code == 0 ]] || fail "wasikv check (exit $code): $out"
wasikv providers
[[ $code == 0 && $out == *cosmos* && $out == *dynamodb* ]] || fail "wasikv providers (exit $code): $out"

# The conformance component prints `ok NAME`, `skip NAME` (a capability the
# bucket reports unsupported; `open-denied` without DENIED_BUCKET) or
# `FAIL NAME`, then `P passed, F failed`: 28 checks in all.
total_passed=0 total_skipped=0
for bucket in mem default file redis memcached etcd dynamodb firestore cosmos cosmos-partition postgres nats; do
    env=()
    case $bucket in mem | default | file) env=(--env DENIED_BUCKET=secret) ;; esac
    wasikv run conformance.wasm "${env[@]}" -- "$bucket"
    clean=$(printf '%s\n' "$out" | tr -d '\r')
    last=$(printf '%s\n' "$clean" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1 || true)
    [[ $code == 0 && $last =~ ^([0-9]+)\ passed,\ 0\ failed$ ]] ||
        fail "conformance on $bucket (exit $code): $out"
    passed=${BASH_REMATCH[1]}
    skipped=$(printf '%s\n' "$clean" | grep -c '^skip ' || true)
    (( passed + skipped == 28 )) || fail "conformance on $bucket: $passed passed + $skipped skipped != 28: $out"
    total_passed=$((total_passed + passed)) total_skipped=$((total_skipped + skipped))
    say "conformance on $bucket: $passed passed, $skipped skipped, 0 failed"
done
[[ -f data/file.redb ]] || fail "the embedded bucket did not create data\\file.redb"
say "all guest checks passed under wine: conformance $total_passed passed, $total_skipped skipped, 0 failed on 12 buckets"

# Serving: the HTTP example under wine, requests from Linux over loopback.
serve_port=18096
serve_log=$work/serve.log
"$WINE" "$exe" serve http_kv.wasm --listen "127.0.0.1:$serve_port" --env BUCKET=mem >"$serve_log" 2>&1 &
serve_pid=$!
trap 'kill "$serve_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
    grep -q "serving .* on http://127.0.0.1:$serve_port" "$serve_log" && break
    kill -0 "$serve_pid" 2>/dev/null || fail "wasikv serve exited: $(cat "$serve_log")"
    sleep 0.1
done
grep -q "serving" "$serve_log" || fail "wasikv serve did not start within 60 s: $(cat "$serve_log")"
url=http://127.0.0.1:$serve_port
for expected in 1 2; do
    got=$(curl -fsS "$url/counter/wine") || fail "GET /counter/wine: $(cat "$serve_log")"
    [[ $got == *"\"count\":$expected}"* ]] || fail "GET /counter/wine answered $got"
done
curl -fsS -X PUT --data 'from linux' "$url/kv/greeting" >/dev/null || fail "PUT /kv/greeting"
[[ $(curl -fsS "$url/kv/greeting") == "from linux" ]] || fail "GET /kv/greeting"
kill "$serve_pid" 2>/dev/null || true
wait "$serve_pid" 2>/dev/null || true
trap - EXIT
say "wasikv serve under wine: the HTTP example answered curl (counter, PUT/GET)"

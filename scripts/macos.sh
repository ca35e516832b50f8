#!/usr/bin/env bash
# Cross-checks wasikv for macOS on Apple silicon (aarch64-apple-darwin, every
# provider feature, every target of every workspace crate): `cargo check`, no link.
# gcc has no macOS target or headers for the C that build scripts compile
# (ring, wasmtime's helpers), so C goes through `zig cc` with zig's bundled
# macOS libc headers (ziglang from PyPI, in a venv). Linking a macOS binary
# needs Apple's SDK (frameworks), which cannot be fetched here: this is a
# compile check of every line of Rust, not a test run.
#
#   scripts/macos.sh
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=aarch64-apple-darwin
ZIG_VERSION=0.17.1
root=$PWD
target_dir=${CARGO_TARGET_DIR:-$root/target}
case $target_dir in /*) ;; *) target_dir=$root/$target_dir ;; esac
macos_dir=$target_dir/macos

say() { printf 'macos: %s\n' "$*"; }

rustup target add "$TARGET" >/dev/null 2>&1 || rustup target add "$TARGET"
venv=$macos_dir/zig-venv
if ! "$venv/bin/python" -m ziglang version >/dev/null 2>&1; then
    say "installing ziglang $ZIG_VERSION (PyPI)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "ziglang==$ZIG_VERSION"
fi

# cc-rs calls $CC_<target> with clang-style flags; zig takes the target from
# its own -target (it knows `aarch64`, not Apple's `arm64`), so cc-rs's
# `--target=arm64-apple-macosx` and `-arch arm64` are dropped.
mkdir -p "$macos_dir/bin"
for tool in cc ar; do
    cat > "$macos_dir/bin/zig-$tool" <<WRAP
#!/usr/bin/env bash
args=()
while (( \$# )); do
    case \$1 in
        -arch) shift ;;
        --target=*) ;;
        *) args+=("\$1") ;;
    esac
    shift
done
exec "$venv/bin/python" -m ziglang $tool $([[ $tool == cc ]] && echo "-target aarch64-macos") "\${args[@]}"
WRAP
    chmod +x "$macos_dir/bin/zig-$tool"
done
export CC_aarch64_apple_darwin=$macos_dir/bin/zig-cc AR_aarch64_apple_darwin=$macos_dir/bin/zig-ar

say "cargo check --target $TARGET --workspace --all-targets --all-features"
cargo check --release --quiet --target "$TARGET" --target-dir "$macos_dir" \
    --workspace --all-targets --all-features
say "ok: every crate of the workspace (libraries, binaries, tests, benches, examples) with every provider compiles for $TARGET"

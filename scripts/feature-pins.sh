#!/usr/bin/env bash
# Checks host/feature-pins (see its src/lib.rs): every dependency of the
# `wasikv` CLI must get the same features in a build with one networked
# provider (or none) as in the all-features build, so that per-provider
# builds reuse the compiled dependencies. Seconds (cargo tree, no build).
# On a difference it prints the lines to put in host/feature-pins/Cargo.toml.
#
#   scripts/feature-pins.sh
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
tree() { cargo tree --locked -q -p wasikv-host -e normal --prefix none -f '{p} [{f}]' "$@"; }
# Per build: the target's crates alone (exact features), then with the
# proc macros' crates, which the host compiles (each copy's own features).
for feature in all none redis etcd memcached dynamodb firestore cosmos postgres nats; do
    case $feature in
        all) flags=(--all-features) ;;
        none) flags=() ;;
        *) flags=(--features "$feature") ;;
    esac
    tree "${flags[@]}" -e normal,no-proc-macro > "$dir/$feature.target"
    tree "${flags[@]}" -e normal > "$dir/$feature.both"
done
python3 - "$dir" <<'PY'
import re, sys, pathlib
dir = pathlib.Path(sys.argv[1])
def load(path):
    # A crate may appear twice: built for the target and, for proc macros
    # and build scripts, for the host; each with its own features.
    crates = {}
    for line in path.read_text().splitlines():
        m = re.match(r'(\S+) v(\S+)(?: \(.*?\))? \[(.*)\]$', line.strip())
        if m and not m.group(1).startswith('wasikv'):
            crates.setdefault((m.group(1), m.group(2)), set()).add(m.group(3))
    return crates
stale = {}
for graph, same in (('target', lambda a, b: a == b), ('both', lambda a, b: a <= b)):
    everything = load(dir / f'all.{graph}')
    for build in ('none', 'redis', 'etcd', 'memcached', 'dynamodb', 'firestore', 'cosmos'):
        for crate, features in load(dir / f'{build}.{graph}').items():
            if not same(features, everything.get(crate, set())):
                stale.setdefault(crate, set()).add(build)
everything = load(dir / 'all.both')
if not stale:
    print('feature-pins: every build with one provider (or none) compiles its dependencies as the all-features build does')
    sys.exit(0)
print('feature-pins: these dependencies get other features in some builds; add them to host/feature-pins/Cargo.toml:', file=sys.stderr)
for (name, version), builds in sorted(stale.items()):
    for seen in sorted(everything[(name, version)]):
        features = ', '.join(f'"{f}"' for f in seen.split(',') if f)
        print(f'  {name} = {{ version = "{version}", default-features = false, features = [{features}] }}   # differs in: {", ".join(sorted(builds))}', file=sys.stderr)
print('(a crate listed twice is built for the target and for the host: the pin of its proc-macro/build-script copy goes under [build-dependencies])', file=sys.stderr)
sys.exit(1)
PY

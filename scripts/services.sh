#!/usr/bin/env bash
# Installs and starts the servers the provider tests talk to, idempotently,
# all on 127.0.0.1. Providers add their server here as they land.
#
# The always-built providers (memory, embedded) need no server. Under
# CI=true a provider test never skips: a server that cannot be started is a
# failure here or in the test.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "services: memory and embedded need no server; no networked provider is compiled in yet"

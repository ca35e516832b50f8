#!/usr/bin/env bash
# Prints the [buckets.*] sections of one bucket per networked provider on the
# servers that scripts/services.sh starts, all on namespace NS: a key prefix
# (redis, memcached, etcd, dynamodb, postgres, nats), a collection (firestore), a container
# (cosmos) and a partition of the shared container (cosmos-partition). For
# the configurations that scripts write (scripts/bench.sh, scripts/windows.sh).
#
#   scripts/test-buckets.sh NS
set -euo pipefail
ns=${1:?usage: scripts/test-buckets.sh NAMESPACE}
cosmos_account='provider = "cosmos"
endpoint = "https://127.0.0.1:18081/"
key = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="
database = "wasikv-test"
create = true'
cat <<TOML
[buckets.redis]
provider = "redis"
url = "redis://127.0.0.1:6379/0"
prefix = "$ns:"

[buckets.memcached]
provider = "memcached"
address = "127.0.0.1:12211"
prefix = "$ns:"

[buckets.etcd]
provider = "etcd"
endpoints = ["http://127.0.0.1:12379"]
prefix = "$ns/"

[buckets.dynamodb]
provider = "dynamodb"
table = "wasikv-test"
prefix = "$ns/"
create_table = true
region = "us-east-1"
endpoint = "http://127.0.0.1:14566"
access_key_id = "test"
secret_access_key = "test"
max_item_bytes = 300000

[buckets.firestore]
provider = "firestore"
project_id = "demo-wasikv"
collection = "$ns"
emulator_host = "127.0.0.1:18686"

[buckets.cosmos]
$cosmos_account
container = "$ns"

[buckets.cosmos-partition]
$cosmos_account
container = "shared"
partition = "$ns"

[buckets.postgres]
provider = "postgres"
url = "postgres://postgres@127.0.0.1:5432/test"
table = "wasikv_test"
prefix = "$ns/"
create = true

[buckets.nats]
provider = "nats"
url = "nats://127.0.0.1:4222"
kv_bucket = "wasikv_test"
prefix = "$(printf '%s' "$ns" | tr -c 'A-Za-z0-9_-' '_')"
create = true
TOML

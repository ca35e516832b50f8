#!/usr/bin/env bash
# Installs and starts the servers the provider tests talk to, idempotently,
# all on 127.0.0.1, and waits until each answers. A server that cannot be
# started is a failure (exit 1), never a silent skip.
#
# Servers this script starts itself run under .services/ (data, logs, PIDs)
# and are stopped by `scripts/services.sh stop`, by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE="$PWD/.services"
mkdir -p "$STATE"

APT_UPDATED=0
apt_install() {
    # apt_install COMMAND PACKAGE...: installs the packages when COMMAND is missing.
    local cmd=$1; shift
    command -v "$cmd" >/dev/null 2>&1 && return 0
    if [[ $APT_UPDATED == 0 ]]; then
        apt-get update -qq >/dev/null
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    command -v "$cmd" >/dev/null 2>&1 || { echo "services: installing $* did not provide $cmd" >&2; exit 1; }
}

wait_for() {
    # wait_for NAME SECONDS COMMAND...: retries COMMAND until it succeeds.
    local name=$1 seconds=$2; shift 2
    for _ in $(seq 1 $((seconds * 10))); do
        if "$@" >/dev/null 2>&1; then echo "services: $name is up"; return 0; fi
        sleep 0.1
    done
    echo "services: $name did not come up within ${seconds}s" >&2
    exit 1
}

stop_all() {
    for pidfile in "$STATE"/*.pid; do
        [[ -e $pidfile ]] || continue
        kill "$(cat "$pidfile")" 2>/dev/null || true
        rm -f "$pidfile"
    done
}

if [[ "${1:-}" == "stop" ]]; then stop_all; exit 0; fi

# --- Build prerequisites of provider crates.
apt_install protoc protobuf-compiler   # etcd-client generates its gRPC code with protoc
apt_install wrk wrk                    # the HTTP load generator of the serve benchmark (scripts/bench.sh)

# --- Redis (redis provider): the machine's server on 6379, else our own there.
REDIS_PORT=6379
apt_install redis-cli redis-tools
if ! redis-cli -h 127.0.0.1 -p $REDIS_PORT ping >/dev/null 2>&1; then
    apt_install redis-server redis-server
    mkdir -p "$STATE/redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port $REDIS_PORT --save "" --appendonly no \
        --dir "$STATE/redis" --logfile "$STATE/redis/redis.log" --pidfile "$STATE/redis.pid"
fi
wait_for "redis at 127.0.0.1:$REDIS_PORT" 10 redis-cli -h 127.0.0.1 -p $REDIS_PORT ping

# --- PostgreSQL (postgres provider): the machine's server on 5432 (trust
# authentication, database `test`), which this machine kind runs before
# every session and CI run; tests that need a server of their own start a
# private one (wasikv_postgres::testing::PrivateServer, initdb + postgres).
apt_install psql postgresql-client
apt_install pg_isready postgresql-client
pg_test_db() { psql "postgres://postgres@127.0.0.1:5432/test" -qAtc 'select 1'; }
wait_for "PostgreSQL at 127.0.0.1:5432 (database test)" 30 pg_test_db

# --- NATS with JetStream (nats provider): the machine's server on 4222,
# which this machine kind runs before every session and CI run; the
# provider's own tests start private `nats-server`s (installed with it).
nats_up() { (exec 3<>/dev/tcp/127.0.0.1/4222 && head -c 4 <&3 | grep -q INFO); }
wait_for "NATS at 127.0.0.1:4222" 30 nats_up
command -v nats-server >/dev/null || apt_install nats-server nats-server

# --- etcd (etcd provider): our own single-node server on test ports.
ETCD_PORT=12379
ETCD_PEER_PORT=12380
apt_install etcd etcd-server
if ! curl -fsS "http://127.0.0.1:$ETCD_PORT/health" >/dev/null 2>&1; then
    mkdir -p "$STATE/etcd"
    nohup etcd --name wasikv-test --data-dir "$STATE/etcd/data" \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
        --initial-cluster "wasikv-test=http://127.0.0.1:$ETCD_PEER_PORT" \
        >"$STATE/etcd/etcd.log" 2>&1 &
    echo $! >"$STATE/etcd.pid"
fi
wait_for "etcd at 127.0.0.1:$ETCD_PORT" 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

# --- Redis Cluster (redis provider, cluster mode): 3 masters and 3 replicas
# of our own on 17000-17005 (cluster bus on 27000-27005), each node's state
# under .services/redis-cluster/PORT.
REDIS_CLUSTER_PORTS=(17000 17001 17002 17003 17004 17005)
redis_cluster_ok() {
    local info masters
    info=$(redis-cli -h 127.0.0.1 -p "${REDIS_CLUSTER_PORTS[0]}" cluster info 2>/dev/null | tr -d '\r') || return 1
    grep -q '^cluster_state:ok' <<<"$info" || return 1
    masters=$(redis-cli -h 127.0.0.1 -p "${REDIS_CLUSTER_PORTS[0]}" cluster nodes | grep -v fail | grep -c master)
    [[ $masters -ge 3 ]]
}
if ! redis_cluster_ok; then
    apt_install redis-server redis-server
    for port in "${REDIS_CLUSTER_PORTS[@]}"; do
        redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1 && continue
        dir="$STATE/redis-cluster/$port"
        mkdir -p "$dir"
        redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --cluster-enabled yes \
            --cluster-config-file "$dir/nodes.conf" --cluster-node-timeout 2000 \
            --save "" --appendonly no --dir "$dir" --logfile "$dir/redis.log" \
            --pidfile "$STATE/redis-cluster-$port.pid"
    done
    for port in "${REDIS_CLUSTER_PORTS[@]}"; do
        wait_for "redis cluster node at 127.0.0.1:$port" 10 redis-cli -h 127.0.0.1 -p "$port" ping
    done
    # Nodes restarted with their nodes.conf rejoin on their own; otherwise
    # (first start, or a cluster left broken) start from empty nodes.
    for _ in $(seq 1 50); do redis_cluster_ok && break; sleep 0.1; done
    if ! redis_cluster_ok; then
        for port in "${REDIS_CLUSTER_PORTS[@]}"; do
            redis-cli -h 127.0.0.1 -p "$port" flushall >/dev/null 2>&1 || true
            redis-cli -h 127.0.0.1 -p "$port" cluster reset hard >/dev/null
        done
        redis-cli --cluster create $(printf '127.0.0.1:%s ' "${REDIS_CLUSTER_PORTS[@]}") \
            --cluster-replicas 1 --cluster-yes >"$STATE/redis-cluster/create.log" 2>&1 ||
            { cat "$STATE/redis-cluster/create.log" >&2; exit 1; }
    fi
fi
wait_for "redis cluster at 127.0.0.1:${REDIS_CLUSTER_PORTS[0]}-${REDIS_CLUSTER_PORTS[5]}" 30 redis_cluster_ok

# --- etcd cluster (etcd provider, several members): 3 members of our own,
# clients on 22379, 22479, 22579, peers on the next port of each.
ETCD_CLUSTER_CLIENT_PORTS=(22379 22479 22579)
etcd_members=""
for i in 0 1 2; do
    etcd_members+="${etcd_members:+,}wasikv-member$i=http://127.0.0.1:$((ETCD_CLUSTER_CLIENT_PORTS[i] + 1))"
done
for i in 0 1 2; do
    client=${ETCD_CLUSTER_CLIENT_PORTS[i]}
    peer=$((client + 1))
    curl -fsS "http://127.0.0.1:$client/health" >/dev/null 2>&1 && continue
    # A member whose process is gone but whose data is there restarts from
    # its data (the flags below only matter for a new data directory).
    mkdir -p "$STATE/etcd-cluster"
    nohup etcd --name "wasikv-member$i" --data-dir "$STATE/etcd-cluster/member$i" \
        --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
        --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
        --initial-cluster "$etcd_members" --initial-cluster-state new --initial-cluster-token wasikv-test-cluster \
        >>"$STATE/etcd-cluster/member$i.log" 2>&1 &
    echo $! >"$STATE/etcd-cluster-$i.pid"
done
for client in "${ETCD_CLUSTER_CLIENT_PORTS[@]}"; do
    wait_for "etcd cluster member at 127.0.0.1:$client" 30 curl -fsS "http://127.0.0.1:$client/health"
done

# --- Memcached (memcached provider): our own server on a test port.
MEMCACHED_PORT=12211
apt_install memcached memcached
if ! (exec 3<>/dev/tcp/127.0.0.1/$MEMCACHED_PORT) 2>/dev/null; then
    mkdir -p "$STATE/memcached"
    # -U 0: no UDP. Runs as root only with -u.
    memcached -d -l 127.0.0.1 -p $MEMCACHED_PORT -U 0 -m 64 -u "$(id -un)" -P "$STATE/memcached.pid"
fi
wait_for "memcached at 127.0.0.1:$MEMCACHED_PORT" 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$MEMCACHED_PORT"

# --- DynamoDB (dynamodb provider): moto server from a project-local virtualenv.
MOTO_PORT=14566
MOTO_VENV="$STATE/moto-venv"
if [[ ! -x "$MOTO_VENV/bin/moto_server" ]]; then
    python3 -m venv "$MOTO_VENV"
    "$MOTO_VENV/bin/pip" install -q 'moto[dynamodb,server]==5.2.5' flask flask-cors
fi
moto_ready() {
    # moto answers DynamoDB only to a signed-looking request; dummy credentials suffice.
    curl -fsS -o /dev/null -X POST "http://127.0.0.1:$MOTO_PORT/" \
        -H 'Content-Type: application/x-amz-json-1.0' \
        -H 'X-Amz-Target: DynamoDB_20120810.ListTables' \
        -H "X-Amz-Date: $(date -u +%Y%m%dT%H%M%SZ)" \
        -H 'Authorization: AWS4-HMAC-SHA256 Credential=test/20200101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0' \
        -d '{}'
}
if ! moto_ready 2>/dev/null; then
    mkdir -p "$STATE/moto"
    # moto_server, with requests applied one at a time (see the script).
    nohup "$MOTO_VENV/bin/python" scripts/moto_serial.py 127.0.0.1 $MOTO_PORT >"$STATE/moto/moto.log" 2>&1 &
    echo $! >"$STATE/moto.pid"
fi
wait_for "moto (DynamoDB) at 127.0.0.1:$MOTO_PORT" 30 moto_ready

# --- Firestore (firestore provider): Google's Cloud Firestore emulator. It
# comes from Debian's google-cloud-cli-firestore-emulator (with Java 17), whose
# apt source is not reachable from here: find it, or fail saying so.
FIRESTORE_PORT=18686
firestore_ready() { curl -fsS "http://127.0.0.1:$FIRESTORE_PORT/" >/dev/null; }
if ! firestore_ready 2>/dev/null; then
    FIRESTORE_LAUNCHER=$(dpkg -L google-cloud-cli-firestore-emulator 2>/dev/null | grep 'cloud_firestore_emulator$' | head -1 || true)
    if [[ -z $FIRESTORE_LAUNCHER || ! -x $FIRESTORE_LAUNCHER ]] || ! command -v java >/dev/null; then
        echo "services: the Cloud Firestore emulator is not installed (Debian package google-cloud-cli-firestore-emulator and Java 17)" >&2
        exit 1
    fi
    mkdir -p "$STATE/firestore"
    # The launcher is a bash script that starts java: record both PIDs so that
    # `stop` ends the java child too.
    nohup "$FIRESTORE_LAUNCHER" start --host=127.0.0.1 --port=$FIRESTORE_PORT >"$STATE/firestore/firestore.log" 2>&1 &
    echo $! >"$STATE/firestore-launcher.pid"
fi
wait_for "Firestore emulator at 127.0.0.1:$FIRESTORE_PORT" 60 firestore_ready
if [[ -e "$STATE/firestore-launcher.pid" && ! -e "$STATE/firestore-java.pid" ]]; then
    java_pid=$(pgrep -P "$(cat "$STATE/firestore-launcher.pid")" java || true)
    [[ -n $java_pid ]] && echo "$java_pid" >"$STATE/firestore-java.pid"
fi

# --- Azure Cosmos DB (cosmos provider): the npm fixture @vercel/cosmosdb-server
# (Microsoft's emulator is Docker-only), installed under .services/ and patched.
# It serves HTTPS with its own (expired) self-signed certificate; the provider
# relaxes certificate checks for loopback endpoints only.
COSMOS_PORT=18081
COSMOS_PREFIX="$STATE/cosmos-npm"
COSMOS_LIB="$COSMOS_PREFIX/node_modules/@vercel/cosmosdb-server/lib"
apt_install node nodejs
apt_install npm npm
if [[ ! -e "$COSMOS_LIB/cli.js" ]]; then
    mkdir -p "$COSMOS_PREFIX"
    npm install --prefix "$COSMOS_PREFIX" --no-audit --no-fund --silent @vercel/cosmosdb-server@1.0.1 >/dev/null
fi
cosmos_patch() {
    # cosmos_patch FILE OLD NEW: a one-line fix of the fixture, applied once.
    local file="$COSMOS_LIB/$1"
    grep -qF -- "$3" "$file" && return 0
    grep -qF -- "$2" "$file" || { echo "services: cannot patch $file (fixture changed?)" >&2; exit 1; }
    OLD="$2" NEW="$3" perl -0pi -e 's/\Q$ENV{OLD}\E/$ENV{NEW}/' "$file"
}
# 1. Partition-key-range ids are strings in Cosmos; the SDK's routing fails
#    (ClientTopologyResolutionFailed) on the fixture's number 0.
cosmos_patch account/collection.js 'id: 0,' 'id: "0",'
# 2. Reading a missing item dereferenced undefined: a 500 instead of a 404.
cosmos_patch handler/read-document.js 'if (data[path] !== clientKeys[i])' 'if (!data || data[path] !== clientKeys[i])'
# 3. Transactional batches: the SDK sends the partition key once, in the
#    x-ms-documentdb-partitionkey header, not in each operation (else 500).
cosmos_patch handler/batch-documents.js 'const input = body[i];' 'const input = body[i]; if (input && input.partitionKey === undefined) input.partitionKey = req.headers["x-ms-documentdb-partitionkey"];'
# 4. Cross-partition queries: the SDK addresses each partition-key range with
#    x-ms-documentdb-partitionkeyrangeid instead of the enable-cross-partition header.
cosmos_patch handler/query-documents.js 'if (!(0, true_header_1.default)(req, "x-ms-documentdb-query-enablecrosspartition")) {' 'if (!(0, true_header_1.default)(req, "x-ms-documentdb-query-enablecrosspartition") && !req.headers["x-ms-documentdb-partitionkeyrangeid"]) {'
# 5. Creating an item in a missing container dereferenced undefined: a 500
#    where Cosmos answers 404 (the container is gone: no-such-store).
cosmos_patch handler/create-document.js 'const collection = account.database(dbId).collection(collId);' 'const collection = account.database(dbId).collection(collId); if (!collection.read()) { res.statusCode = 404; return { code: "NotFound", message: "Resource Not Found" }; }'
cosmos_ready() { curl -ksS -o /dev/null "https://127.0.0.1:$COSMOS_PORT/"; }
if ! cosmos_ready 2>/dev/null; then
    mkdir -p "$STATE/cosmos"
    nohup node "$COSMOS_LIB/cli.js" -p $COSMOS_PORT --host 127.0.0.1 >"$STATE/cosmos/cosmos.log" 2>&1 &
    echo $! >"$STATE/cosmos.pid"
fi
wait_for "Cosmos DB fixture at 127.0.0.1:$COSMOS_PORT" 30 cosmos_ready

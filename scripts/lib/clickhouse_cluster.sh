# scripts/lib/clickhouse_cluster.sh — the local ClickHouse cluster of `scripts/services up
# --clickhouse-shards N [--clickhouse-replicas M]`: a ZooKeeper (zookeeper.sh) and N×M chdb
# nodes (chdb_server.py --tcp-port --cluster --shard ...) on 127.0.0.1, cluster `kevents`,
# with remote_servers and macros written at start. Sourced by scripts/services (after
# common.sh), which owns the ENV array and env_save; everything here is in chcluster_*
# functions. What chdb can and cannot do as a cluster node: docs/clickhouse-cluster.md.
#
# Env file keys: KEVENTS_CLICKHOUSE_CLUSTER (the name), KEVENTS_CLICKHOUSE_CLUSTER_SHAPE
# (NxM), KEVENTS_CLICKHOUSE_CLUSTER_URLS (every node's HTTP URL, comma-separated, node 1
# first: the sink's clickhouse.url and clickhouse.cluster_nodes),
# KEVENTS_CLICKHOUSE_CLUSTER_PIDS, KEVENTS_ZOOKEEPER_PORT, KEVENTS_ZOOKEEPER_PID. Data and
# logs in $KEVENTS_DIR/chcluster/. Stopped by PID.

CHCLUSTER_NAME=kevents
CHCLUSTER_DIR="$KEVENTS_DIR/chcluster"
CHCLUSTER_ENV_KEYS=(KEVENTS_CLICKHOUSE_CLUSTER KEVENTS_CLICKHOUSE_CLUSTER_SHAPE KEVENTS_CLICKHOUSE_CLUSTER_URLS
    KEVENTS_CLICKHOUSE_CLUSTER_PIDS KEVENTS_ZOOKEEPER_PORT KEVENTS_ZOOKEEPER_PID)

# `srvr`, not `ruok`: ruok says imok even when the serving thread died at start.
chcluster_zk_serving() {
    local out
    out="$(exec 2>/dev/null; exec 3<>"/dev/tcp/127.0.0.1/$1" && printf srvr >&3 && timeout 2 cat <&3)" || return 1
    [[ "$out" == *"Mode: standalone"* ]]
}

chcluster_healthy() {
    local shape="$1" pid url i=0 pids urls
    [ "${ENV[KEVENTS_CLICKHOUSE_CLUSTER_SHAPE]:-}" = "$shape" ] || return 1
    pid_matches "${ENV[KEVENTS_ZOOKEEPER_PID]:-}" QuorumPeerMain || return 1
    chcluster_zk_serving "${ENV[KEVENTS_ZOOKEEPER_PORT]:-0}" || return 1
    IFS=, read -ra pids <<<"${ENV[KEVENTS_CLICKHOUSE_CLUSTER_PIDS]:-}"
    IFS=, read -ra urls <<<"${ENV[KEVENTS_CLICKHOUSE_CLUSTER_URLS]:-}"
    [ ${#pids[@]} -gt 0 ] && [ ${#pids[@]} = ${#urls[@]} ] || return 1
    for pid in "${pids[@]}"; do
        url="${urls[$i]}"
        pid_matches "$pid" chdb_server.py && clickhouse_ping "${url##*:}" || return 1
        i=$((i + 1))
    done
}

# Wait for PID to make READY-COMMAND true; die with the log tail otherwise.
chcluster_wait() {
    local what="$1" pid="$2" log="$3" started=$SECONDS
    shift 3
    until "$@"; do
        if ! pid_alive "$pid"; then
            log_tail "$log"
            die "$what exited during start-up; see $log"
        fi
        if ((SECONDS - started > CLICKHOUSE_START_TIMEOUT)); then
            log_tail "$log"
            stop_pid "$pid" 5
            die "$what did not become ready within ${CLICKHOUSE_START_TIMEOUT}s"
        fi
        sleep 0.1
    done
}

chcluster_up() {
    local shards="$1" replicas="$2" shape="$1x$2"
    [[ "$shards" =~ ^[1-9][0-9]*$ && "$replicas" =~ ^[1-9][0-9]*$ ]] || die "--clickhouse-shards/--clickhouse-replicas take numbers from 1"
    if chcluster_healthy "$shape"; then
        say "clickhouse cluster $CHCLUSTER_NAME ($shape) already running: ${ENV[KEVENTS_CLICKHOUSE_CLUSTER_URLS]}"
        return 0
    fi
    chcluster_down
    if ! "$REPO_ROOT/scripts/install-deps" --only zookeeper --check >/dev/null 2>&1; then
        "$REPO_ROOT/scripts/install-deps" --only zookeeper
    fi
    local started_ms zk_port zk_pid n=$((shards * replicas)) i s r
    started_ms=$(now_ms)
    mkdir -p "$CHCLUSTER_DIR/zookeeper"
    zk_port="$(free_port)"
    say "starting zookeeper (Apache ZooKeeper $ZOOKEEPER_VERSION) on 127.0.0.1:$zk_port"
    setsid "$ZOOKEEPER_SH" "$CHCLUSTER_DIR/zookeeper" "$zk_port" </dev/null >>"$CHCLUSTER_DIR/zookeeper/zookeeper.log" 2>&1 9>&- &
    zk_pid=$!
    ENV[KEVENTS_ZOOKEEPER_PORT]="$zk_port"
    ENV[KEVENTS_ZOOKEEPER_PID]="$zk_pid"
    chcluster_wait zookeeper "$zk_pid" "$CHCLUSTER_DIR/zookeeper/zookeeper.log" chcluster_zk_serving "$zk_port"

    # Every node's ports first: each node's remote_servers lists all of them.
    local http=() tcp=() shard_args=() pids=() urls=()
    for ((i = 0; i < n; i++)); do
        http[i]="$(free_port)"
        tcp[i]="$(free_port)"
    done
    for ((s = 0; s < shards; s++)); do
        local members=()
        for ((r = 0; r < replicas; r++)); do members+=("127.0.0.1:${tcp[s * replicas + r]}"); done
        shard_args+=(--shard "$(IFS=,; echo "${members[*]}")")
    done
    for ((i = 0; i < n; i++)); do
        local dir="$CHCLUSTER_DIR/node$((i + 1))" pid
        mkdir -p "$dir"
        setsid "$CHDB_PYTHON" "$CHDB_SERVER_PY" --dir "$dir" --port "${http[i]}" --tcp-port "${tcp[i]}" \
            --cluster "$CHCLUSTER_NAME" "${shard_args[@]}" --shard-index $((i / replicas + 1)) \
            --replica-index $((i % replicas + 1)) --zookeeper "127.0.0.1:$zk_port" \
            --start-timeout "$CLICKHOUSE_START_TIMEOUT" </dev/null >>"$dir/chdb.log" 2>&1 9>&- &
        pid=$!
        pids+=("$pid")
        urls+=("http://127.0.0.1:${http[i]}")
        ENV[KEVENTS_CLICKHOUSE_CLUSTER_PIDS]="$(IFS=,; echo "${pids[*]}")"
        chcluster_wait "clickhouse node $((i + 1))" "$pid" "$dir/chdb.log" clickhouse_ping "${http[i]}"
    done
    ENV[KEVENTS_CLICKHOUSE_CLUSTER]="$CHCLUSTER_NAME"
    ENV[KEVENTS_CLICKHOUSE_CLUSTER_SHAPE]="$shape"
    ENV[KEVENTS_CLICKHOUSE_CLUSTER_URLS]="$(IFS=,; echo "${urls[*]}")"
    say "clickhouse cluster $CHCLUSTER_NAME ready: $shards shard(s) x $replicas replica(s), ${ENV[KEVENTS_CLICKHOUSE_CLUSTER_URLS]} ($(since "$started_ms"))"
}

chcluster_down() {
    local pid pids
    IFS=, read -ra pids <<<"${ENV[KEVENTS_CLICKHOUSE_CLUSTER_PIDS]:-}"
    for pid in "${pids[@]}"; do
        if pid_matches "$pid" chdb_server.py; then
            say "stopping clickhouse cluster node (pid $pid)"
            stop_pid "$pid" 10
        fi
    done
    pid="${ENV[KEVENTS_ZOOKEEPER_PID]:-}"
    if pid_matches "$pid" QuorumPeerMain; then
        say "stopping zookeeper (pid $pid)"
        stop_pid "$pid" 10
    fi
    local key
    for key in "${CHCLUSTER_ENV_KEYS[@]}"; do ENV[$key]=""; done
}

# One status line; fails when a cluster is recorded and does not answer.
chcluster_status() {
    [ -n "${ENV[KEVENTS_CLICKHOUSE_CLUSTER]:-}" ] || return 0
    local shape="${ENV[KEVENTS_CLICKHOUSE_CLUSTER_SHAPE]}"
    if chcluster_healthy "$shape"; then
        echo "chcluster   up    ${ENV[KEVENTS_CLICKHOUSE_CLUSTER]} ($shape) ${ENV[KEVENTS_CLICKHOUSE_CLUSTER_URLS]} pids ${ENV[KEVENTS_CLICKHOUSE_CLUSTER_PIDS]}, zookeeper 127.0.0.1:${ENV[KEVENTS_ZOOKEEPER_PORT]} pid ${ENV[KEVENTS_ZOOKEEPER_PID]}"
    else
        echo "chcluster   DOWN  ${ENV[KEVENTS_CLICKHOUSE_CLUSTER]} ($shape) ${ENV[KEVENTS_CLICKHOUSE_CLUSTER_URLS]}; logs in $CHCLUSTER_DIR"
        return 1
    fi
}

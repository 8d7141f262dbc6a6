# scripts/lib/kafka_cluster.sh — the shared Kafka *cluster* of `scripts/services up
# --kafka-brokers N` (N ≥ 2; 3 is what the docs and tests use): N KRaft nodes on
# 127.0.0.1, each a combined broker + controller run by scripts/lib/kafka_broker.sh, with
# a static N-voter controller quorum (`controller.quorum.voters`, which Apache Kafka 4.1.1
# still accepts beside the dynamic `controller.quorum.bootstrap.servers` of KIP-853; the
# static form needs no `--initial-controllers` at format and no voter changes).
# Sourced by scripts/services after common.sh; uses its ENV array and say/die helpers.
#
# Layout: $KEVENTS_DIR/kafka-cluster/cluster.env (node count, cluster id, each node's
# PLAINTEXT, SASL_SSL and CONTROLLER ports: fixed at the first start, reused by restarts
# so clients' addresses stay valid) and node-I/ (kafka_broker.sh's DIR: properties,
# data, tls, kafka.log). Node 1 makes the CA and the SCRAM user's password; the others
# copy its tls/, so one CA file and one password file serve the whole cluster.
#
# Env file keys beyond the single broker's: KEVENTS_KAFKA_BROKERS (node count),
# KEVENTS_KAFKA_PIDS and KEVENTS_KAFKA_LOGS (comma-separated, node order).
# KEVENTS_KAFKA_BOOTSTRAP and KEVENTS_KAFKA_SASL_BOOTSTRAP list every node;
# KEVENTS_KAFKA_PID / KEVENTS_KAFKA_PORT / KEVENTS_KAFKA_LOG are node 1's.

KAFKA_CLUSTER_DIR="$KEVENTS_DIR/kafka-cluster"
KAFKA_CLUSTER_ENV="$KAFKA_CLUSTER_DIR/cluster.env"
KAFKA_CLUSTER_KEYS=(KEVENTS_KAFKA_BROKERS KEVENTS_KAFKA_PIDS KEVENTS_KAFKA_LOGS)

# Is the recorded (or requested) Kafka a cluster rather than the single broker?
kafka_cluster_mode() { [ "${ENV[KEVENTS_KAFKA_BROKERS]:-1}" -gt 1 ]; }

kafka_node_dir() { echo "$KAFKA_CLUSTER_DIR/node-$1"; }

# NODES, CLUSTER_ID, PORT_I, SASL_PORT_I, CONTROLLER_PORT_I from cluster.env.
declare -A KCLUSTER=()
kafka_cluster_load() {
    KCLUSTER=()
    [ -f "$KAFKA_CLUSTER_ENV" ] || return 0
    local line
    while IFS= read -r line; do
        case "$line" in '' | '#'*) continue ;; esac
        KCLUSTER[${line%%=*}]="${line#*=}"
    done <"$KAFKA_CLUSTER_ENV"
}

# The recorded layout is usable for N nodes: same count, every node's ports free.
kafka_cluster_reusable() {
    local n="$1" i key
    [ "${KCLUSTER[NODES]:-0}" = "$n" ] || return 1
    for ((i = 1; i <= n; i++)); do
        for key in PORT SASL_PORT CONTROLLER_PORT; do
            [ -n "${KCLUSTER[${key}_$i]:-}" ] || return 1
            ! port_open "${KCLUSTER[${key}_$i]}" || return 1
        done
        [ -f "$(kafka_node_dir "$i")/server.properties" ] || return 1
    done
}

# A fresh layout: 3 distinct free ports per node, a new cluster id.
kafka_cluster_layout() {
    local n="$1" i key port
    local -A used=()
    rm -rf "$KAFKA_CLUSTER_DIR"
    mkdir -p "$KAFKA_CLUSTER_DIR"
    {
        echo "# written by scripts/lib/kafka_cluster.sh at the first start of this cluster"
        echo "NODES=$n"
        echo "CLUSTER_ID=$(new_cluster_id)"
        for ((i = 1; i <= n; i++)); do
            for key in PORT SASL_PORT CONTROLLER_PORT; do
                port="$(free_port)"
                while [ -n "${used[$port]:-}" ]; do port="$(free_port)"; done
                used[$port]=1
                echo "${key}_$i=$port"
            done
        done
    } >"$KAFKA_CLUSTER_ENV"
    kafka_cluster_load
}

kafka_cluster_voters() {
    local i voters=""
    for ((i = 1; i <= KCLUSTER[NODES]; i++)); do
        voters+="${voters:+,}$i@127.0.0.1:${KCLUSTER[CONTROLLER_PORT_$i]}"
    done
    echo "$voters"
}

# Comma-separated field of every node: kafka_cluster_list PORT → 127.0.0.1:P1,...
kafka_cluster_list() {
    local key="$1" i out=""
    for ((i = 1; i <= KCLUSTER[NODES]; i++)); do
        out+="${out:+,}127.0.0.1:${KCLUSTER[${key}_$i]}"
    done
    echo "$out"
}

kafka_cluster_pid() { cut -d, -f"$1" <<<"${ENV[KEVENTS_KAFKA_PIDS]:-}"; }

kafka_cluster_set_pid() {
    local i="$1" pid="$2" n="${KCLUSTER[NODES]}" j out=""
    for ((j = 1; j <= n; j++)); do
        if [ "$j" = "$i" ]; then out+="${out:+,}$pid"; else out+="${out:+,}$(kafka_cluster_pid "$j")"; fi
    done
    # A list of empty fields is no cluster running.
    [ -n "${out//,/}" ] || out=""
    ENV[KEVENTS_KAFKA_PIDS]="$out"
    ENV[KEVENTS_KAFKA_PID]="$(kafka_cluster_pid 1)"
}

kafka_node_pid_ok() { pid_matches "$(kafka_cluster_pid "$1")" "kafka.Kafka $(kafka_node_dir "$1")/"; }

# The node answers metadata that lists every node of the cluster (it has joined).
kafka_node_ready() {
    local port="${KCLUSTER[PORT_$1]}" out
    out="$("$(host_python)" "$KAFKA_PING_PY" "127.0.0.1:$port" 2>/dev/null)" || return 1
    [ "$(grep -c '^broker ' <<<"$out")" -ge "${KCLUSTER[NODES]}" ]
}

kafka_cluster_healthy() {
    kafka_cluster_load
    [ -n "${KCLUSTER[NODES]:-}" ] || return 1
    local i
    for ((i = 1; i <= KCLUSTER[NODES]; i++)); do
        kafka_node_pid_ok "$i" && kafka_node_ready "$i" || return 1
    done
}

# Start node I in the background (setsid, as the single broker), record its pid.
kafka_node_spawn() {
    local i="$1" dir log tls_from=""
    dir="$(kafka_node_dir "$i")"
    log="$dir/kafka.log"
    mkdir -p "$dir"
    [ "$i" = 1 ] || tls_from="$(kafka_node_dir 1)"
    echo "---- $(date -u +%FT%TZ) start node $i on 127.0.0.1:${KCLUSTER[PORT_$i]}" >>"$log"
    setsid "$KAFKA_BROKER_SH" "$dir" "${KCLUSTER[PORT_$i]}" "${KCLUSTER[SASL_PORT_$i]}" \
        "$i" "${KCLUSTER[CONTROLLER_PORT_$i]}" "$(kafka_cluster_voters)" "${KCLUSTER[CLUSTER_ID]}" \
        $tls_from </dev/null >>"$log" 2>&1 9>&- &
    kafka_cluster_set_pid "$i" $!
}

# Wait until each node in "$@" answers with the whole cluster in its metadata.
kafka_cluster_wait() {
    local started=$SECONDS i pending=("$@") left
    while [ ${#pending[@]} -gt 0 ]; do
        left=()
        for i in "${pending[@]}"; do
            kafka_node_ready "$i" && continue
            left+=("$i")
            if ! pid_alive "$(kafka_cluster_pid "$i")"; then
                log_tail "$(kafka_node_dir "$i")/kafka.log"
                die "kafka node $i exited during start-up; see $(kafka_node_dir "$i")/kafka.log"
            fi
        done
        pending=(${left[@]+"${left[@]}"})
        [ ${#pending[@]} -gt 0 ] || break
        if ((SECONDS - started > KAFKA_START_TIMEOUT)); then
            for i in "${pending[@]}"; do log_tail "$(kafka_node_dir "$i")/kafka.log"; done
            kafka_cluster_stop
            die "kafka nodes ${pending[*]} did not answer with the whole cluster within ${KAFKA_START_TIMEOUT}s"
        fi
        sleep 0.2
    done
}

# Start every node that does not run (all of them on a fresh layout) and wait for all.
kafka_cluster_start() {
    local n="${ENV[KEVENTS_KAFKA_BROKERS]}" i started_ms
    kafka_cluster_load
    if ! kafka_cluster_reusable "$n"; then
        [ ! -d "$KAFKA_CLUSTER_DIR" ] || say "kafka cluster's recorded layout is missing, different or its ports are taken: a new cluster directory"
        kafka_cluster_layout "$n"
        ENV[KEVENTS_KAFKA_PIDS]=""
    fi
    started_ms=$(now_ms)
    say "starting a kafka cluster of $n KRaft nodes (Apache Kafka $KAFKA_VERSION, broker+controller each) on $(kafka_cluster_list PORT)"
    for ((i = 1; i <= n; i++)); do
        kafka_node_pid_ok "$i" && continue
        kafka_node_spawn "$i"
        # The other nodes copy node 1's CA and password: wait until it made them.
        if [ "$i" = 1 ]; then
            local t=$SECONDS
            until [ -f "$(kafka_node_dir 1)/server.properties" ]; do
                pid_alive "$(kafka_cluster_pid 1)" || { log_tail "$(kafka_node_dir 1)/kafka.log"; die "kafka node 1 exited during set-up"; }
                ((SECONDS - t < 60)) || die "kafka node 1 did not write its properties within 60s"
                sleep 0.1
            done
        fi
    done
    kafka_cluster_env
    kafka_cluster_wait $(seq 1 "$n")
    say "kafka cluster ready on ${ENV[KEVENTS_KAFKA_BOOTSTRAP]} (pids ${ENV[KEVENTS_KAFKA_PIDS]}, $(since "$started_ms"))"
}

# The env file's Kafka keys for the recorded cluster layout.
kafka_cluster_env() {
    kafka_cluster_load
    [ -n "${KCLUSTER[NODES]:-}" ] || return 0
    local i logs=""
    for ((i = 1; i <= KCLUSTER[NODES]; i++)); do logs+="${logs:+,}$(kafka_node_dir "$i")/kafka.log"; done
    ENV[KEVENTS_KAFKA_BOOTSTRAP]="$(kafka_cluster_list PORT)"
    ENV[KEVENTS_KAFKA_SASL_BOOTSTRAP]="$(kafka_cluster_list SASL_PORT)"
    ENV[KEVENTS_KAFKA_PORT]="${KCLUSTER[PORT_1]}"
    ENV[KEVENTS_KAFKA_SASL_PORT]="${KCLUSTER[SASL_PORT_1]}"
    ENV[KEVENTS_KAFKA_CA_FILE]="$(kafka_node_dir 1)/tls/ca.pem"
    ENV[KEVENTS_KAFKA_SASL_USER]="kevents"
    ENV[KEVENTS_KAFKA_PASSWORD_FILE]="$(kafka_node_dir 1)/tls/kevents.password"
    ENV[KEVENTS_KAFKA_DATA]="$KAFKA_CLUSTER_DIR"
    ENV[KEVENTS_KAFKA_LOG]="$(kafka_node_dir 1)/kafka.log"
    ENV[KEVENTS_KAFKA_LOGS]="$logs"
}

# SIGTERM to every node at once, then wait for each: stopped one by one, the last
# node's controlled shutdown waits for a controller quorum that is gone (until KILL).
kafka_cluster_stop() {
    kafka_cluster_load
    local i pid
    for ((i = 1; i <= ${KCLUSTER[NODES]:-0}; i++)); do
        pid="$(kafka_cluster_pid "$i")"
        if kafka_node_pid_ok "$i"; then
            say "stopping kafka node $i (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    for ((i = 1; i <= ${KCLUSTER[NODES]:-0}; i++)); do
        pid="$(kafka_cluster_pid "$i")"
        if kafka_node_pid_ok "$i"; then stop_pid "$pid" 10; fi
    done
    ENV[KEVENTS_KAFKA_PIDS]=""
    ENV[KEVENTS_KAFKA_PID]=""
}

# stop-kafka-node I (SIGTERM; `kill -9` by hand for a crash) / start-kafka-node I: one
# node, same ports and data, for fault drills by hand.
kafka_cluster_stop_node() {
    local i="$1" pid
    kafka_cluster_load
    [ "$i" -ge 1 ] && [ "$i" -le "${KCLUSTER[NODES]:-0}" ] || die "no kafka node $i (the cluster has ${KCLUSTER[NODES]:-0})"
    pid="$(kafka_cluster_pid "$i")"
    if kafka_node_pid_ok "$i"; then
        say "stopping kafka node $i (pid $pid)"
        stop_pid "$pid" 10
    fi
    kafka_cluster_set_pid "$i" ""
}

kafka_cluster_start_node() {
    local i="$1" started_ms
    kafka_cluster_load
    [ "$i" -ge 1 ] && [ "$i" -le "${KCLUSTER[NODES]:-0}" ] || die "no kafka node $i (the cluster has ${KCLUSTER[NODES]:-0})"
    if kafka_node_pid_ok "$i"; then
        say "kafka node $i already running (pid $(kafka_cluster_pid "$i"))"
        return
    fi
    started_ms=$(now_ms)
    kafka_node_spawn "$i"
    kafka_cluster_wait "$i"
    say "kafka node $i ready on 127.0.0.1:${KCLUSTER[PORT_$i]} (pid $(kafka_cluster_pid "$i"), $(since "$started_ms"))"
}

kafka_cluster_status() {
    kafka_cluster_load
    local i state
    for ((i = 1; i <= ${KCLUSTER[NODES]:-0}; i++)); do
        if kafka_node_pid_ok "$i" && kafka_ping "${KCLUSTER[PORT_$i]}"; then state="up  "; else state="DOWN"; fi
        echo "  node $i    $state  127.0.0.1:${KCLUSTER[PORT_$i]} (SASL_SSL ${KCLUSTER[SASL_PORT_$i]}, controller ${KCLUSTER[CONTROLLER_PORT_$i]}) pid $(kafka_cluster_pid "$i"); log $(kafka_node_dir "$i")/kafka.log"
    done
}

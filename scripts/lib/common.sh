# scripts/lib/common.sh — shared paths and helpers for scripts/install-deps and
# scripts/services. Sourced, never run.
#
# Paths (all overridable through the environment):
#   KEVENTS_CACHE  tools built or downloaded once per machine, outside the clone, so
#                  CI runs and later clones reuse them (default ~/.cache/kevents)
#   KEVENTS_DIR    per-clone run state: data dirs, logs, services.env (default
#                  <repo>/.kevents, git-ignored)
#   KEVENTS_SERVICES_ENV  the env file `scripts/services up` writes and the Rust
#                  harness (testkit::services) reads (default $KEVENTS_DIR/services.env)

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
KEVENTS_CACHE="${KEVENTS_CACHE:-$HOME/.cache/kevents}"
KEVENTS_DIR="${KEVENTS_DIR:-$REPO_ROOT/.kevents}"
# Make KEVENTS_DIR absolute: the broker runs with its data dir as cwd.
mkdir -p "$KEVENTS_DIR"
KEVENTS_DIR="$(cd "$KEVENTS_DIR" && pwd)"
KEVENTS_SERVICES_ENV="${KEVENTS_SERVICES_ENV:-$KEVENTS_DIR/services.env}"

# Pinned versions. KAFKA_VERSION must match tools/kafka/pom.xml.
KAFKA_VERSION="4.1.1"
CARGO_FUZZ_VERSION="0.13.2"
CHDB_VERSION="26.9.0"
# Must match tools/zookeeper/pom.xml (3.9.5: the newest 3.9 on Maven Central here).
ZOOKEEPER_VERSION="3.9.5"

# The broker's jars (tools/kafka/pom.xml resolved by Maven) and Maven's own repository,
# both in the cache so that CI runs and later clones reuse them.
KAFKA_LIBS="$KEVENTS_CACHE/kafka-$KAFKA_VERSION/libs"
KAFKA_BROKER_SH="$REPO_ROOT/scripts/lib/kafka_broker.sh"
MAVEN_REPO="$KEVENTS_CACHE/m2"
# ZooKeeper for the local ClickHouse cluster (tools/zookeeper/pom.xml, scripts/lib/zookeeper.sh).
ZOOKEEPER_LIBS="$KEVENTS_CACHE/zookeeper-$ZOOKEEPER_VERSION/libs"
ZOOKEEPER_SH="$REPO_ROOT/scripts/lib/zookeeper.sh"
CHDB_VENV="$KEVENTS_CACHE/chdb-venv"
CHDB_PYTHON="$CHDB_VENV/bin/python"
CHDB_SERVER_PY="$REPO_ROOT/scripts/lib/chdb_server.py"
KAFKA_PING_PY="$REPO_ROOT/scripts/lib/kafka_ping.py"
# Clients nobody here wrote, for the ingest stage's tests (ingest/tests/): the
# OpenTelemetry Python SDK with its OTLP/HTTP exporter, and schemathesis (API fuzzing
# from the served OpenAPI description). Their own venv: chdb-core is installed
# --no-deps and must not share a dependency resolution with them.
PYCLIENTS_VENV="$KEVENTS_CACHE/pyclients-venv"
PYCLIENTS_PYTHON="$PYCLIENTS_VENV/bin/python"
PYCLIENTS_PACKAGES=(opentelemetry-sdk==1.45.2 opentelemetry-exporter-otlp-proto-http==1.45.2 schemathesis==4.32.5)

# Milliseconds since the epoch, and "1.23s" since a start taken with it.
now_ms() { echo $(($(date +%s%N) / 1000000)); }
since() { local ms=$(($(now_ms) - $1)); printf '%d.%02ds' $((ms / 1000)) $((ms % 1000 / 10)); }

say() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# A python3 for helper scripts that need only the standard library.
host_python() {
    if command -v python3 >/dev/null 2>&1; then
        echo python3
    elif [ -x "$CHDB_PYTHON" ]; then
        echo "$CHDB_PYTHON"
    else
        die "python3 is missing; run scripts/install-deps"
    fi
}

# A new KRaft cluster id: 16 random bytes, URL-safe base64, never starting with '-'
# (which the format tool would parse as an option; Kafka's own Uuid.randomUuid() skips
# those too).
new_cluster_id() {
    "$(host_python)" -c 'import base64, uuid
while True:
    s = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not s.startswith("-"):
        print(s)
        break'
}

# Is PID a live process (and not a zombie)?
pid_alive() {
    local pid="$1"
    [ -n "$pid" ] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    local state
    state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" || return 1
    [ "$state" != "Z" ]
}

# Is PID alive and running a command line that contains WORD? Recorded PIDs can be
# reused by unrelated processes after a reboot or a crash: never signal those.
pid_matches() {
    local pid="$1" word="$2"
    pid_alive "$pid" || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$word"
}

# A TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
    "$(host_python)" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# Does something accept TCP connections on 127.0.0.1:PORT?
port_open() {
    "$(host_python)" -c 'import socket, sys
s = socket.socket()
s.settimeout(1)
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)' "$1"
}

# ClickHouse answers GET /ping with "Ok." when its HTTP interface is up.
clickhouse_ping() {
    [ "$(curl -fsS --max-time 2 "http://127.0.0.1:$1/ping" 2>/dev/null)" = "Ok." ]
}

# The broker answers a Kafka Metadata request advertising itself.
kafka_ping() {
    "$(host_python)" "$KAFKA_PING_PY" "127.0.0.1:$1" >/dev/null 2>&1
}

# Stop PID: TERM, wait up to $2 seconds (default 10), then KILL.
stop_pid() {
    local pid="$1" grace="${2:-10}" i
    pid_alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.1
    done
    warn "pid $pid did not stop within ${grace}s; sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.1
    done
    die "pid $pid survived KILL"
}

# Print the last lines of a log file, for failed starts.
log_tail() {
    local file="$1"
    if [ -f "$file" ]; then
        printf -- '---- last lines of %s ----\n' "$file" >&2
        tail -n 40 "$file" >&2
        printf -- '----\n' >&2
    fi
}

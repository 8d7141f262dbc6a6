# scripts/lib/peers_build.sh — build the peers that scripts/bench-peers runs beside kevents
# (issue #19), once per machine, from the Go module proxy, into $KEVENTS_CACHE/peers/:
#
#   otelcol-$PEERS_OTELCOL_VERSION/otelcol-kevents-peer
#       an OpenTelemetry Collector made by the OpenTelemetry Collector Builder
#       (go.opentelemetry.io/collector/cmd/builder) from tools/peers/otelcol-builder.yaml:
#       k8sobjects + k8s_events receivers, batch processor, kafka + clickhouse exporters
#   kubernetes-event-exporter-$PEERS_KEE_VERSION/kubernetes-event-exporter
#       resmoio's kubernetes-event-exporter, built from the wrapper module
#       tools/peers/kubernetes-event-exporter/go.mod
#   venv/   Python with confluent-kafka and fastavro from PyPI: bench-peers' checker reads
#           every tool's topic and decodes kevents' Avro records
#
# Nothing of the peers' code is in the repository: only the builder manifest, the wrapper
# go.mod/go.sum and run configurations (tools/peers/). The Go module and build caches are
# Go's defaults (~/go/pkg/mod, ~/.cache/go-build), outside the clone, as for scripts/kube.
# Versions: the newest the module proxy serves (see tools/peers/otelcol-builder.yaml and
# BENCHMARKS.md "Side by side with the peers").
#
# Sourced by scripts/install-deps (step `peers`) and scripts/bench-peers, which provide
# KEVENTS_CACHE, say and die (scripts/lib/common.sh) and kube_go (scripts/lib/kube_build.sh).
# Defines:
#     peers_ok        true when both binaries and the checker's venv are in place
#     install_peers   build or install whatever is missing
# Run alone to build:    bash scripts/lib/peers_build.sh

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    # shellcheck source=common.sh
    source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
    # shellcheck source=kube_build.sh
    source "$(dirname "${BASH_SOURCE[0]}")/kube_build.sh"
fi

# Keep in step with tools/peers/otelcol-builder.yaml (dist.version and the gomod lines) and
# tools/peers/kubernetes-event-exporter/go.mod.
PEERS_OTELCOL_VERSION="0.145.0"
PEERS_KEE_VERSION="v1.6.1"
PEERS_PY_PACKAGES=(confluent-kafka==2.16.1 fastavro==1.13.1)

PEERS_TOOLS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../tools/peers" && pwd)"
PEERS_DIR="${KEVENTS_CACHE:?KEVENTS_CACHE is unset: source scripts/lib/common.sh first}/peers"
OTELCOL_BIN="$PEERS_DIR/otelcol-$PEERS_OTELCOL_VERSION/otelcol-kevents-peer"
KEE_BIN="$PEERS_DIR/kubernetes-event-exporter-$PEERS_KEE_VERSION/kubernetes-event-exporter"
PEERS_VENV="$PEERS_DIR/venv"
PEERS_PYTHON="$PEERS_VENV/bin/python"

otelcol_ok() { [ -x "$OTELCOL_BIN" ] && "$OTELCOL_BIN" --version 2>/dev/null | grep -q "$PEERS_OTELCOL_VERSION-peer"; }
kee_ok() { [ -x "$KEE_BIN" ] && [ -f "$KEE_BIN.built" ]; }
peers_venv_ok() { [ -x "$PEERS_PYTHON" ] && "$PEERS_PYTHON" -c 'import confluent_kafka, fastavro' 2>/dev/null; }
peers_ok() { otelcol_ok && kee_ok && peers_venv_ok; }

# shellcheck source=otelcol_builder.sh
source "$(dirname "${BASH_SOURCE[0]}")/otelcol_builder.sh"

build_otelcol() {
    mkdir -p "$(dirname "$OTELCOL_BIN")"
    otelcol_build "$PEERS_OTELCOL_VERSION" "$PEERS_TOOLS_DIR/otelcol-builder.yaml" otelcol-kevents-peer "$OTELCOL_BIN" \
        "k8sobjects, k8s_events, kafka, clickhouse" "cold: ~1 GB of modules, about 15-25 min on 2 shared cores"
}

build_kee() {
    local go start
    go="$(kube_go)" || exit 1
    mkdir -p "$(dirname "$KEE_BIN")"
    say "building kubernetes-event-exporter $PEERS_KEE_VERSION with $("$go" env GOVERSION)"
    start=$(date +%s)
    (cd "$PEERS_TOOLS_DIR/kubernetes-event-exporter" &&
        GOFLAGS=-buildvcs=false "$go" build -trimpath -ldflags "-s -w" -o "$KEE_BIN.tmp" \
            github.com/resmoio/kubernetes-event-exporter) ||
        die "go build of kubernetes-event-exporter failed"
    mv -f "$KEE_BIN.tmp" "$KEE_BIN"
    echo "$PEERS_KEE_VERSION" >"$KEE_BIN.built"
    say "built kubernetes-event-exporter in $(($(date +%s) - start))s ($(du -m "$KEE_BIN" | cut -f1) MB)"
}

install_peers_venv() {
    local py
    py="$(command -v python3 || true)"
    [ -n "$py" ] || die "python3 is missing (run scripts/install-deps as root to install it)"
    [ -x "$PEERS_PYTHON" ] || "$py" -m venv "$PEERS_VENV" || die "python3 -m venv failed (Debian needs python3-venv)"
    say "installing ${PEERS_PY_PACKAGES[*]} into $PEERS_VENV"
    "$PEERS_VENV/bin/pip" install --quiet --progress-bar off "${PEERS_PY_PACKAGES[@]}" || die "pip install failed"
}

install_peers() {
    if peers_ok; then
        say "peers present: $OTELCOL_BIN, $KEE_BIN"
        return 0
    fi
    mkdir -p "$PEERS_DIR"
    peers_venv_ok || install_peers_venv
    kee_ok || build_kee
    otelcol_ok || build_otelcol
    peers_ok || die "the peers in $PEERS_DIR are not complete after building"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    install_peers
fi

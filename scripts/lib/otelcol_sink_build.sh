# scripts/lib/otelcol_sink_build.sh — build the OpenTelemetry Collector that `kevents
# export`'s tests send to (issue #20), once per machine, from the Go module proxy:
#
#   $KEVENTS_CACHE/otelcol-sink-$OTELCOL_SINK_VERSION/otelcol-kevents-sink
#       made by the OpenTelemetry Collector Builder from tools/otelcol-sink/otelcol-builder.yaml:
#       OTLP receiver, file exporter (contrib), debug exporter
#
# Only the builder manifest is in the repository. The Go module and build caches are Go's
# defaults (~/go/pkg/mod, ~/.cache/go-build), outside the clone, shared with the peers'
# build (scripts/lib/peers_build.sh, the same release): whichever runs second reuses most
# of the first's modules. testkit::otelcol looks for the binary at this path (or
# $KEVENTS_OTELCOL_SINK).
#
# Sourced by scripts/install-deps (step `otelcol`), which provides KEVENTS_CACHE, say and
# die (scripts/lib/common.sh) and kube_go (scripts/lib/kube_build.sh).
# Defines:
#     otelcol_sink_ok        true when the binary is in place and reports its version
#     install_otelcol_sink   build it when missing
# Run alone to build:    bash scripts/lib/otelcol_sink_build.sh

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    # shellcheck source=common.sh
    source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
    # shellcheck source=kube_build.sh
    source "$(dirname "${BASH_SOURCE[0]}")/kube_build.sh"
fi

# Keep in step with tools/otelcol-sink/otelcol-builder.yaml (dist.version and the gomod
# lines) and testkit/src/otelcol.rs (OTELCOL_SINK_VERSION).
OTELCOL_SINK_VERSION="0.145.0"
OTELCOL_SINK_MANIFEST="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../tools/otelcol-sink" && pwd)/otelcol-builder.yaml"
OTELCOL_SINK_DIR="${KEVENTS_CACHE:?KEVENTS_CACHE is unset: source scripts/lib/common.sh first}/otelcol-sink-$OTELCOL_SINK_VERSION"
OTELCOL_SINK_BIN="$OTELCOL_SINK_DIR/otelcol-kevents-sink"

otelcol_sink_ok() { [ -x "$OTELCOL_SINK_BIN" ] && "$OTELCOL_SINK_BIN" --version 2>/dev/null | grep -q "$OTELCOL_SINK_VERSION-sink"; }

# shellcheck source=otelcol_builder.sh
source "$(dirname "${BASH_SOURCE[0]}")/otelcol_builder.sh"

install_otelcol_sink() {
    if otelcol_sink_ok; then
        say "OpenTelemetry Collector (export tests' sink) present: $OTELCOL_SINK_BIN"
        return 0
    fi
    mkdir -p "$OTELCOL_SINK_DIR"
    otelcol_build "$OTELCOL_SINK_VERSION" "$OTELCOL_SINK_MANIFEST" otelcol-kevents-sink "$OTELCOL_SINK_BIN" \
        "otlp receiver, file + debug exporters" \
        "about 2-15 min on 2 shared cores, depending on what Go's module cache holds; once per machine"
    otelcol_sink_ok || die "$OTELCOL_SINK_BIN does not report version $OTELCOL_SINK_VERSION-sink"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    install_otelcol_sink
fi

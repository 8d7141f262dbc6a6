# scripts/lib/otelcol_builder.sh — build an OpenTelemetry Collector with the
# OpenTelemetry Collector Builder (go.opentelemetry.io/collector/cmd/builder) from the
# Go module proxy. Used by the peers' build (scripts/lib/peers_build.sh) and the export
# tests' sink (scripts/lib/otelcol_sink_build.sh); only their builder manifests are in
# the repository. Needs KEVENTS_CACHE, say and die (common.sh) and kube_go (kube_build.sh).
#
#   otelcol_build VERSION MANIFEST DIST_NAME OUT_BIN WHAT HINT
#       build the Collector MANIFEST describes (its dist.name is DIST_NAME) with the
#       Builder at VERSION, into OUT_BIN; WHAT names its components in the log, HINT
#       says how long it takes.
#
# The Builder generates a main module, `go mod tidy`s it and `go build`s it (CGO off,
# -s -w by default). It is itself a Go module, installed once per release under
# $KEVENTS_CACHE/peers/ and shared by both builds.
otelcol_build() {
    local version="$1" manifest="$2" dist="$3" out="$4" what="$5" hint="$6"
    local go start builder work
    go="$(kube_go)" || exit 1
    builder="$KEVENTS_CACHE/peers/builder-v$version/builder"
    if [ ! -x "$builder" ]; then
        say "installing the OpenTelemetry Collector Builder v$version"
        GOBIN="$(dirname "$builder")" GOFLAGS=-buildvcs=false "$go" install \
            "go.opentelemetry.io/collector/cmd/builder@v$version" ||
            die "go install of the Collector Builder failed"
    fi
    work="$out.build"
    rm -rf "$work"
    mkdir -p "$work"
    say "building the OpenTelemetry Collector $version ($what) with $("$go" env GOVERSION)"
    say "($hint)"
    start=$(date +%s)
    PATH="$(dirname "$go"):$PATH" GOFLAGS=-buildvcs=false \
        "$builder" --config="$manifest" --output-path="$work" >"$work/build.log" 2>&1 ||
        { tail -20 "$work/build.log" >&2; die "the Collector Builder failed (log: $work/build.log)"; }
    mv -f "$work/$dist" "$out"
    rm -rf "$work"
    say "built the OpenTelemetry Collector in $(($(date +%s) - start))s ($(du -m "$out" | cut -f1) MB)"
}

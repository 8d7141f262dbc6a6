# scripts/lib/kube_build.sh — build the real kube-apiserver, kubectl and etcd once per machine.
#
# No registry ships these binaries, but the Go module proxy serves their source. The wrapper
# module tools/kube/go.mod pins k8s.io/kubernetes, every staging module and etcd to one release;
# this file builds its three `tool` packages into
#     $KEVENTS_CACHE/kube/$KUBE_VERSION/bin/{kube-apiserver,kubectl,etcd}
# outside the clone, so CI runs and later clones on the same machine reuse them. The Go module
# and build caches are Go's defaults (~/go/pkg/mod, ~/.cache/go-build), also outside the clone.
# See docs/real-apiserver.md for versions, build times and pitfalls.
#
# Sourced by scripts/install-deps and scripts/kube, which provide KEVENTS_CACHE, say and die
# (scripts/lib/common.sh). Defines:
#     kube_tools_ok       true when all three binaries exist and report the pinned versions
#     install_kube_tools  build whatever is missing or at the wrong version
# Run alone to build:    bash scripts/lib/kube_build.sh

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    # shellcheck source=common.sh
    source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
fi

# Keep in step with tools/kube/go.mod (the release it pins, and the etcd that release requires).
KUBE_VERSION="v1.37.2"
KUBE_ETCD_VERSION="3.7.0"
KUBE_TOOLS_MOD="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../tools/kube" && pwd)"
KUBE_BIN_DIR="${KEVENTS_CACHE:?KEVENTS_CACHE is unset: source scripts/lib/common.sh first}/kube/$KUBE_VERSION/bin"
KUBE_APISERVER_BIN="$KUBE_BIN_DIR/kube-apiserver"
KUBECTL_BIN="$KUBE_BIN_DIR/kubectl"
ETCD_BIN="$KUBE_BIN_DIR/etcd"

# The Go toolchain the build needs (tools/kube/go.mod says go 1.26.0).
KUBE_GO_VERSION="1.26.8"

# Is GO a go command of at least 1.26?
kube_go_new_enough() {
    local v
    v="$("$1" env GOVERSION 2>/dev/null)" || return 1 # e.g. go1.26.8
    v="${v#go}"
    local major="${v%%.*}" rest="${v#*.}"
    local minor="${rest%%.*}"
    [ "$major" -gt 1 ] 2>/dev/null || { [ "$major" = 1 ] && [ "${minor:-0}" -ge 26 ] 2>/dev/null; }
}

# The go command: one on PATH or the machine's /usr/local/go when it is new enough; else
# Go $KUBE_GO_VERSION fetched once from the Go module proxy (the toolchain module
# golang.org/toolchain, what `GOTOOLCHAIN` downloads) into the cache: a machine that
# reaches only package registries needs no Go installed beforehand.
kube_go() {
    local g
    for g in "$(command -v go 2>/dev/null)" /usr/local/go/bin/go; do
        if [ -n "$g" ] && [ -x "$g" ] && kube_go_new_enough "$g"; then
            echo "$g"
            return 0
        fi
    done
    local root="$KEVENTS_CACHE/go-toolchain" mod="golang.org/toolchain@v0.0.1-go$KUBE_GO_VERSION.linux-amd64"
    if [ ! -x "$root/$mod/bin/go" ]; then
        local proxy="${GOPROXY:-https://proxy.golang.org}"
        proxy="${proxy%%,*}"
        [ "$proxy" != direct ] && [ "$proxy" != off ] || proxy=https://proxy.golang.org
        say "no Go >= 1.26 here: fetching Go $KUBE_GO_VERSION from $proxy (about 70 MB)"
        mkdir -p "$root"
        curl -fsSL --retry 3 -o "$root/go.zip" "$proxy/golang.org/toolchain/@v/v0.0.1-go$KUBE_GO_VERSION.linux-amd64.zip" ||
            die "downloading the Go toolchain from $proxy failed"
        (cd "$root" && unzip -q -o go.zip && rm -f go.zip) || die "unpacking the Go toolchain failed (is unzip installed?)"
    fi
    echo "$root/$mod/bin/go"
}

# Does binary NAME in KUBE_BIN_DIR report the version we pin? Prints nothing.
kube_tool_ok() {
    local name="$1" out
    [ -x "$KUBE_BIN_DIR/$name" ] || return 1
    case "$name" in
    kube-apiserver) out="$("$KUBE_BIN_DIR/$name" --version 2>/dev/null)" &&
        [ "$out" = "Kubernetes $KUBE_VERSION" ] ;;
    kubectl) out="$("$KUBE_BIN_DIR/$name" version --client 2>/dev/null)" &&
        grep -qx "Client Version: $KUBE_VERSION" <<<"$out" ;;
    etcd) out="$("$KUBE_BIN_DIR/$name" --version 2>/dev/null)" &&
        grep -qx "etcd Version: $KUBE_ETCD_VERSION" <<<"$out" ;;
    *) return 1 ;;
    esac
}

kube_tools_ok() {
    kube_tool_ok kube-apiserver && kube_tool_ok kubectl && kube_tool_ok etcd
}

# Build one binary NAME from Go package PKG into KUBE_BIN_DIR (atomically: a failed build
# leaves no binary behind).
kube_build_one() {
    local name="$1" pkg="$2" go start secs minor ldflags p
    go="$(kube_go)" || exit 1
    minor="$(cut -d. -f2 <<<"$KUBE_VERSION")" # "37": gitMinor is the bare minor number
    ldflags="-s -w"
    if [ "$name" != etcd ]; then
        # What the Kubernetes release build stamps (hack/lib/version.sh); --version reads it.
        for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
            ldflags="$ldflags -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1"
            ldflags="$ldflags -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
        done
    fi
    say "building $name ($pkg) with $("$go" env GOVERSION)"
    start=$(date +%s)
    # -pgo=off: cmd/kube-apiserver ships a default.pgo that makes a cold build slower.
    # -trimpath: no build paths in the binary. GOFLAGS cleared of -mod=vendor and friends.
    (cd "$KUBE_TOOLS_MOD" &&
        GOFLAGS=-buildvcs=false "$go" build -trimpath -pgo=off -ldflags "$ldflags" \
            -o "$KUBE_BIN_DIR/.$name.tmp" "$pkg") ||
        die "go build of $name failed (module: $KUBE_TOOLS_MOD)"
    mv -f "$KUBE_BIN_DIR/.$name.tmp" "$KUBE_BIN_DIR/$name"
    secs=$(($(date +%s) - start))
    say "built $name in ${secs}s ($(du -m "$KUBE_BIN_DIR/$name" | cut -f1) MB)"
}

install_kube_tools() {
    if kube_tools_ok; then
        say "kube-apiserver/kubectl $KUBE_VERSION and etcd $KUBE_ETCD_VERSION already built in $KUBE_BIN_DIR"
        return 0
    fi
    mkdir -p "$KUBE_BIN_DIR"
    local start go
    start=$(date +%s)
    go="$(kube_go)" || exit 1
    say "building the real Kubernetes API server $KUBE_VERSION + etcd $KUBE_ETCD_VERSION into $KUBE_BIN_DIR"
    say "(cold: ~600 MB of modules, ~3 GB of Go build cache, ~6-10 min on 2 cores)"
    say "downloading Go modules of $KUBE_TOOLS_MOD"
    (cd "$KUBE_TOOLS_MOD" && GOFLAGS=-buildvcs=false "$go" mod download) ||
        die "go mod download failed in $KUBE_TOOLS_MOD"
    kube_tool_ok kube-apiserver || kube_build_one kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
    kube_tool_ok kubectl || kube_build_one kubectl k8s.io/kubernetes/cmd/kubectl
    kube_tool_ok etcd || kube_build_one etcd go.etcd.io/etcd/server/v3
    kube_tools_ok || die "built binaries in $KUBE_BIN_DIR do not report $KUBE_VERSION / etcd $KUBE_ETCD_VERSION"
    say "kube tools ready in $(($(date +%s) - start))s"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    install_kube_tools
fi

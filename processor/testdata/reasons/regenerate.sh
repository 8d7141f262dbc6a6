#!/usr/bin/env bash
# Re-extracts the reason files from their sources (see extract.py for how, and each
# file's header for the origin). Everything from a file's "# ---- read by hand" line
# on is kept as it is: those reasons flow through variables and were read by hand.
#
# Needs the Go module sources of k8s.io/kubernetes v1.37.2 and k8s.io/cloud-provider
# v0.37.2 (`go mod download`, or what scripts/kube left in ~/go/pkg/mod), and a
# checkout of kubernetes/node-problem-detector's config/ directory in $NPD_CONFIG.
# cluster-autoscaler.txt is read by hand entirely and left alone.
set -euo pipefail
cd "$(dirname "$0")"
M=${GOMODCACHE:-$HOME/go/pkg/mod}/k8s.io
K=$M/kubernetes@v1.37.2
MAPS=(--map "k8s.io/kubernetes=$K" --map "k8s.io/api=$M/api@v0.37.2"
      --map "k8s.io/cloud-provider=$M/cloud-provider@v0.37.2"
      --map "k8s.io/component-helpers=$M/component-helpers@v0.37.2"
      --map "k8s.io/dynamic-resource-allocation=$M/dynamic-resource-allocation@v0.37.2"
      --map "k8s.io/endpointslice=$M/endpointslice@v0.37.2")

# rewrite FILE CMD...: keeps FILE's header (up to the first data line) and its
# hand-read tail, replaces the extracted middle with CMD's output.
rewrite() {
  local file=$1; shift
  local tmp; tmp=$(mktemp)
  awk '/^(Normal|Warning|# \?) /{exit} {print}' "$file" > "$tmp"
  "$@" >> "$tmp"
  if grep -q '^# ---- read by hand' "$file"; then
    printf '\n' >> "$tmp"
    sed -n '/^# ---- read by hand/,$p' "$file" >> "$tmp"
  fi
  mv "$tmp" "$file"
}

kubelet() {
  python3 extract.py "$K" pkg/kubelet pkg/volume "${MAPS[@]}" --component kubelet |
    sed -E 's/^(\S+ (Node\S*|Rebooted|SystemOOM|Starting|KubeletSetupFailed|CgroupV1) kubelet) -/\1 Node/;
            s/^(\S+ \S+ kubelet) -/\1 Pod/'
}
scheduler() {
  python3 extract.py "$K" pkg/scheduler "${MAPS[@]}" --component default-scheduler |
    sed -E 's/^(\S+ \S+ default-scheduler) -/\1 Pod/'
}
controllers() {
  # controller_utils.go's pod control is listed by hand, once per controller using it.
  python3 extract.py "$K" pkg/controller "${MAPS[@]}" |
    grep -v 'pkg/controller/testutil\|pkg/controller/controller_utils.go' |
    sed -E 's/^(\S+ \S+) - (\S+)(  # pkg\/controller\/endpoint\/)/\1 endpoint-controller \2\3/;
            s/^(\S+ \S+) - (\S+)(  # pkg\/controller\/util\/node\/)/\1 node-controller \2\3/;
            s/^(\S+ \S+) - -(  # pkg\/controller\/tainteviction\/)/\1 taint-eviction-controller Pod\2/;
            s/^(\S+ \S+) - -(  # pkg\/controller\/devicetainteviction\/)/\1 device-taint-eviction-controller Pod\2/;
            s/^(\S+ \S+) - -(  # pkg\/controller\/servicecidrs\/)/\1 service-cidr-controller ServiceCIDR\2/;
            s/^(\S+ (RegisteredNode|RemovingNode) node-controller) -/\1 Node/;
            s/^(\S+ (ClaimLost|ClaimMisbound) persistentvolume-controller) -/\1 PersistentVolumeClaim/;
            s/^(\S+ \S+ cronjob-controller) -/\1 CronJob/;
            s/^\?type (\S+ volume_expand)/Warning \1/; s/^\?type (RecyclerPod \S+)/Normal \1/'
}
cloud() {
  python3 extract.py "$M/cloud-provider@v0.37.2" controllers "${MAPS[@]}" |
    sed -E 's/^(\S+ \S+ (cloud-node-lifecycle-controller|route_controller)) -/\1 Node/'
}

rewrite kubelet.txt kubelet
rewrite scheduler.txt scheduler
rewrite kube-controller-manager.txt controllers
rewrite cloud-provider.txt cloud
if [ -n "${NPD_CONFIG:-}" ]; then
  rewrite node-problem-detector.txt python3 extract.py --npd "$NPD_CONFIG"
fi

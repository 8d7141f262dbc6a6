#!/usr/bin/env bash
# scripts/lib/zookeeper.sh — run one Apache ZooKeeper server (standalone) from the jars
# scripts/install-deps put in the cache: the coordination service of the local ClickHouse
# cluster (docs/clickhouse-cluster.md). Used by scripts/services (`up --clickhouse-shards N`)
# and by testkit's OwnedClickHouseCluster, so both run exactly the same server.
#
#   zookeeper.sh DIR PORT      exec the server in the foreground on 127.0.0.1:PORT
#
# DIR holds zoo.cfg (rewritten at every start: only the port may change) and the data
# (DIR/data: snapshots and the transaction log), so a restart keeps the znodes.
# The admin server (Jetty, port 8080) is off; four-letter words `ruok`/`srvr` are on
# (health checks). Logs go to stderr through slf4j-simple (tools/zookeeper/pom.xml).
#
# Environment: KEVENTS_ZOOKEEPER_LIBS (the jars; default from common.sh),
# KEVENTS_ZOOKEEPER_HEAP (default "-Xms64m -Xmx256m": a handful of ClickHouse tables).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[ $# -eq 2 ] || die "usage: zookeeper.sh DIR PORT"
DIR="$1"
PORT="$2"
mkdir -p "$DIR/data"
DIR="$(cd "$DIR" && pwd)"
LIBS="${KEVENTS_ZOOKEEPER_LIBS:-$ZOOKEEPER_LIBS}"
[ -f "$LIBS/zookeeper-$ZOOKEEPER_VERSION.jar" ] || die "Apache ZooKeeper $ZOOKEEPER_VERSION jars are missing in $LIBS: run scripts/install-deps --only zookeeper"
command -v java >/dev/null || die "java is missing: run scripts/install-deps (Debian openjdk-17-jre-headless)"

cat >"$DIR/zoo.cfg.tmp" <<CFG
# Written by scripts/lib/zookeeper.sh at every start.
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$DIR/data
clientPort=$PORT
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,stat,mntr
autopurge.snapRetainCount=3
autopurge.purgeInterval=1
CFG
mv "$DIR/zoo.cfg.tmp" "$DIR/zoo.cfg"

# shellcheck disable=SC2086 # the heap options are words
exec java ${KEVENTS_ZOOKEEPER_HEAP:--Xms64m -Xmx256m} -XX:+UseSerialGC \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=info \
    -Dorg.slf4j.simpleLogger.showDateTime=true \
    -Dorg.slf4j.simpleLogger.dateTimeFormat="yyyy-MM-dd'T'HH:mm:ss.SSSZ" \
    -Dzookeeper.jmx.log4j.disable=true \
    -cp "$LIBS/*" org.apache.zookeeper.server.quorum.QuorumPeerMain "$DIR/zoo.cfg"

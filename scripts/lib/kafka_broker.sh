#!/usr/bin/env bash
# scripts/lib/kafka_broker.sh — run one Apache Kafka broker (KRaft, combined broker +
# controller) from the jars scripts/install-deps put in the cache: a single node, or one
# node of a cluster. Used by scripts/services (the shared broker, and the shared cluster
# of scripts/lib/kafka_cluster.sh) and by testkit's OwnedBroker and OwnedKafkaCluster
# (private brokers that fault tests kill and restart), so all run exactly the same broker.
#
#   kafka_broker.sh DIR PORT SASL_PORT     exec a single-node broker in the foreground
#   kafka_broker.sh DIR PORT SASL_PORT NODE_ID CONTROLLER_PORT VOTERS CLUSTER_ID [TLS_FROM]
#                                          exec node NODE_ID of a cluster: VOTERS is the
#                                          static controller quorum
#                                          (1@127.0.0.1:P1,2@127.0.0.1:P2,...), CLUSTER_ID
#                                          the id every node is formatted with, TLS_FROM a
#                                          node directory whose tls/ this node copies (one
#                                          CA and one SCRAM password for the whole cluster)
#
# A cluster's internal topics get replication factor 3 (fewer when it has fewer nodes),
# min.insync.replicas 2, and default.replication.factor 3: what KEVENTS_KAFKA_RF_* below
# say. The single node keeps 1 everywhere.
#
# DIR holds everything of this broker: server.properties, the KRaft log dirs (data/), the
# TLS material and the SCRAM user's password (tls/). DIR/extra.properties, when present
# at the first start, is appended to server.properties (test brokers that must differ). The first start in an empty DIR
# writes them and formats the storage; later starts reuse them unchanged (same ports,
# same cluster id, same data), which is what a restart after `kill -9` must do.
#
# Listeners, all on 127.0.0.1:
#   PLAINTEXT  PORT        clients without security (tests, the demo's default)
#   SASL_SSL   SASL_PORT   SCRAM-SHA-512 over TLS: user `kevents`, password in
#                          DIR/tls/kevents.password, server certificate signed by the CA
#                          in DIR/tls/ca.pem (made with openssl at the first start)
#   CONTROLLER (a free port chosen at the first start; KRaft only, never for clients)
#
# Environment: KEVENTS_KAFKA_LIBS (the jars; default from common.sh),
# KEVENTS_KAFKA_HEAP (default "-Xms256m -Xmx1g": plenty for one node on a 2-core machine;
# "-Xms128m -Xmx512m" for a cluster node, three of which share the machine).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[ $# -eq 3 ] || [ $# -eq 7 ] || [ $# -eq 8 ] ||
    die "usage: kafka_broker.sh DIR PORT SASL_PORT [NODE_ID CONTROLLER_PORT VOTERS CLUSTER_ID [TLS_FROM]]"
DIR="$1"
PORT="$2"
SASL_PORT="$3"
# Cluster node: its id, its controller port and the quorum, fixed at the first start.
NODE_ID="${4:-1}"
CONTROLLER_PORT="${5:-}"
VOTERS="${6:-}"
CLUSTER_ID="${7:-}"
TLS_FROM="${8:-}"
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
LIBS="${KEVENTS_KAFKA_LIBS:-$KAFKA_LIBS}"
[ -f "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" ] || die "Apache Kafka $KAFKA_VERSION jars are missing in $LIBS: run scripts/install-deps"
command -v java >/dev/null || die "java is missing: run scripts/install-deps (Debian openjdk-17-jre-headless)"

PROPS="$DIR/server.properties"
TLS="$DIR/tls"
LOG4J="$REPO_ROOT/tools/kafka/log4j2.properties"
JAVA_LOG=(-Dlog4j2.configurationFile="file:$LOG4J" -Dkafka.logs.dir="$DIR/logs")

# The CA and a server certificate for 127.0.0.1/localhost, as one PEM keystore file
# (private key, then certificate), which Kafka reads with ssl.keystore.type=PEM.
make_tls() {
    if [ -n "$TLS_FROM" ]; then
        # Another node of the cluster made them: same CA, same SCRAM password.
        [ -f "$TLS_FROM/tls/ca.pem" ] || die "$TLS_FROM/tls has no CA yet (start that node first)"
        cp -a "$TLS_FROM/tls" "$TLS"
        return
    fi
    mkdir -p "$TLS"
    chmod 700 "$TLS"
    (
        cd "$TLS"
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=kevents test CA" \
            -keyout ca.key -out ca.pem 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
            -keyout broker.key -out broker.csr 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >broker.ext
        openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
            -extfile broker.ext -out broker.crt 2>/dev/null
        # Kafka's PEM keystore wants a PKCS#8 key.
        openssl pkcs8 -topk8 -nocrypt -in broker.key -out broker.pk8
        cat broker.pk8 broker.crt >broker.pem
        rm -f broker.csr broker.ext broker.key
        # A random password for the SCRAM user, readable only by us: clients read it
        # from this file (kafka.sasl.password_file), never from a config or the env.
        head -c 18 /dev/urandom | base64 | tr '+/' '-_' >kevents.password
        chmod 600 kevents.password broker.pem broker.pk8 ca.key
    )
}

write_properties() {
    local controller_port="$1" voters="$2" nodes="$3"
    # Replication of the internal topics and of topics created without a factor: the
    # cluster keeps 3 copies (fewer nodes: all of them) and acknowledges an acks=all
    # write once 2 have it, so one node may die without losing or refusing a write.
    local rf=$((nodes < 3 ? nodes : 3))
    local min_isr=$((rf < 2 ? 1 : 2))
    cat >"$PROPS.tmp" <<EOF
# Written by scripts/lib/kafka_broker.sh at the first start of this directory.
process.roles=broker,controller
node.id=$NODE_ID
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$PORT,SASL_SSL://127.0.0.1:$SASL_PORT,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT,SASL_SSL://127.0.0.1:$SASL_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL
log.dirs=$DIR/data
num.partitions=1
num.network.threads=2
num.io.threads=4
# $nodes node(s): internal topics with $rf replica(s), writes acknowledged by $min_isr.
default.replication.factor=$rf
min.insync.replicas=$min_isr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$min_isr
transaction.state.log.num.partitions=8
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$min_isr
# Tests join and leave groups all the time: no initial delay, and session timeouts down
# to 1 s allowed (the default floor, 6 s, is for production fleets).
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
auto.create.topics.enable=true
# Transactions whose producer died are aborted after its transaction.timeout.ms; check
# often so a killed member's open transaction does not hold read_committed consumers.
transaction.abort.timed.out.transaction.cleanup.interval.ms=1000
# SASL_SSL listener: SCRAM-SHA-512 users live in the cluster metadata (added at format).
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=$TLS/broker.pem
EOF
    # Test brokers that must differ from the ordinary one (testkit's
    # OwnedBroker::spawn_with) put their settings here; the later line wins.
    if [ -f "$DIR/extra.properties" ]; then
        cat "$DIR/extra.properties" >>"$PROPS.tmp"
    fi
    mv "$PROPS.tmp" "$PROPS"
}

if [ ! -f "$PROPS" ]; then
    started_ms=$(now_ms)
    make_tls
    if [ -n "$VOTERS" ]; then
        controller_port="$CONTROLLER_PORT"
        voters="$VOTERS"
        cluster_id="$CLUSTER_ID"
    else
        controller_port="$(free_port)"
        voters="1@127.0.0.1:$controller_port"
        cluster_id="$(new_cluster_id)"
    fi
    nodes="$(tr ',' '\n' <<<"$voters" | grep -c @)"
    write_properties "$controller_port" "$voters" "$nodes"
    say "formatting KRaft storage in $DIR/data (cluster $cluster_id)"
    mkdir -p "$DIR/logs"
    if ! java -Xmx256m "${JAVA_LOG[@]}" -cp "$LIBS/*" kafka.tools.StorageTool format \
        -t "$cluster_id" -c "$PROPS" \
        --add-scram "SCRAM-SHA-512=[name=kevents,password=$(cat "$TLS/kevents.password")]" \
        >"$DIR/logs/format.log" 2>&1 || [ ! -f "$DIR/data/meta.properties" ]; then
        log_tail "$DIR/logs/format.log"
        rm -f "$PROPS"
        die "formatting the KRaft storage in $DIR/data failed"
    fi
    say "broker directory ready ($(since "$started_ms"))"
fi

# The JVM options of Kafka's bin/kafka-run-class.sh, with a heap for a small machine.
if [ -n "$VOTERS" ]; then DEFAULT_HEAP="-Xms128m -Xmx512m"; else DEFAULT_HEAP="-Xms256m -Xmx1g"; fi
# shellcheck disable=SC2086
exec java ${KEVENTS_KAFKA_HEAP:-$DEFAULT_HEAP} -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 \
    -Djava.awt.headless=true "${JAVA_LOG[@]}" -cp "$LIBS/*" kafka.Kafka "$PROPS"

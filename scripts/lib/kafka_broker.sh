#!/usr/bin/env bash
# scripts/lib/kafka_broker.sh — run one Apache Kafka broker (KRaft, combined broker +
# controller, a single node) from the jars scripts/install-deps put in the cache. Used by
# scripts/services (the shared broker) and by testkit's OwnedBroker (private brokers that
# fault tests kill and restart), so both run exactly the same broker.
#
#   kafka_broker.sh DIR PORT SASL_PORT     exec the broker in the foreground
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
# KEVENTS_KAFKA_HEAP (default "-Xms256m -Xmx1g": plenty for one node on a 2-core machine).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[ $# -eq 3 ] || die "usage: kafka_broker.sh DIR PORT SASL_PORT"
DIR="$1"
PORT="$2"
SASL_PORT="$3"
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
    local controller_port="$1"
    cat >"$PROPS.tmp" <<EOF
# Written by scripts/lib/kafka_broker.sh at the first start of this directory.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$PORT,SASL_SSL://127.0.0.1:$SASL_PORT,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT,SASL_SSL://127.0.0.1:$SASL_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL
log.dirs=$DIR/data
num.partitions=1
num.network.threads=2
num.io.threads=4
# One node: every internal topic has one replica.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=8
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
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
    controller_port="$(free_port)"
    write_properties "$controller_port"
    # 16 random bytes, URL-safe base64, never starting with '-' (which the format
    # tool would parse as an option; Kafka's own Uuid.randomUuid() skips those too).
    cluster_id="$("$(host_python)" -c 'import base64, uuid
while True:
    s = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not s.startswith("-"):
        print(s)
        break')"
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
# shellcheck disable=SC2086
exec java ${KEVENTS_KAFKA_HEAP:--Xms256m -Xmx1g} -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 \
    -Djava.awt.headless=true "${JAVA_LOG[@]}" -cp "$LIBS/*" kafka.Kafka "$PROPS"

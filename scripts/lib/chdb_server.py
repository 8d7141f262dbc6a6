"""Run the real ClickHouse engine (PyPI chdb-core) as an HTTP server on 127.0.0.1.

Used by scripts/services (the shared local ClickHouse) and by testkit's OwnedClickHouse
(a private one a fault test can stop and start). Run it with the chdb venv's python:

    chdb_server.py --dir RUN_DIR --port PORT

RUN_DIR gets config.xml and users.xml and holds the data (RUN_DIR/data), so starting
again with the same RUN_DIR and PORT brings the same tables back.

How it works (see ../../../shared/README.md section 1 — every step here is required):
- chdb's module-level `_chdb.query(sql, fmt, path=...)` runs a full clickhouse-local
  server for as long as the query runs. `SYSTEM START LISTEN HTTP` opens the HTTP port,
  whose host/port come from config.xml in the process's *working directory*, so we
  write config.xml there and chdir before importing chdb.
- Only one `_chdb.query()` per process: it is a long sleeping query, run in a thread
  (it releases the GIL) while the main thread polls GET /ping and waits for signals.
- Bind errors only reach stderr, so we refuse to start when the port is taken.
- On SIGTERM/SIGINT we exit at once with status 0. Every INSERT that ClickHouse has
  acknowledged is already on disk (MergeTree writes parts synchronously), so nothing
  acknowledged is lost; tests that want a crash use SIGKILL instead.

A cluster member (docs/clickhouse-cluster.md) also serves the native protocol
(`--tcp-port`: `SYSTEM START LISTEN TCP` in the same keep-alive query) and gets
`remote_servers`, `macros` and `zookeeper` in config.xml from `--cluster NAME --shard
H:P,H:P ... --shard-index I --replica-index J [--zookeeper H:P]` (one `--shard` per
shard, its replicas' native addresses; `internal_replication` false: the Distributed
tables write every replica, since clickhouse-local cannot replicate), or any elements
from `--config-extra FILE`. Without these options config.xml and the keep-alive query
are exactly the single node's.

Prints one line `ready http://127.0.0.1:PORT pid=PID` on stdout when /ping answers.
Exit codes: 0 on SIGTERM, 2 port in use, 3 did not come up, 4 the server query ended.
"""

import argparse
import os
import signal
import socket
import sys
import threading
import time
import urllib.request

CONFIG_XML = """<clickhouse>
    <listen_host>127.0.0.1</listen_host>
    <http_port>{port}</http_port>
{extra}    <users_config>users.xml</users_config>
    <logger>
        <level>warning</level>
        <console>true</console>
    </logger>
</clickhouse>
"""

# default_format: the HTTP interface answers in TabSeparated like a real server
# (clickhouse-local defaults to CSV). network_compression_method: clients sending
# compress=1 (the clickhouse crate with lz4) get LZ4 back, not ZSTD.
USERS_XML = """<clickhouse>
    <profiles>
        <default>
            <default_format>TabSeparated</default_format>
            <network_compression_method>LZ4</network_compression_method>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
            <access_management>1</access_management>
            <named_collection_control>1</named_collection_control>
        </default>
    </users>
    <quotas>
        <default></default>
    </quotas>
</clickhouse>
"""

# Sleeps one second per row; 10^9 rows is ~31 years. The marker comment lets an operator
# find it in system.processes (never KILL QUERY everything: this query is the server).
KEEPALIVE_SQL = (
    "SYSTEM START LISTEN HTTP; "
    "{listen_tcp}"
    "SELECT /* kevents-chdb-keepalive */ count() FROM numbers(1000000000) "
    "WHERE sleepEachRow(1) = 1 "
    "SETTINGS max_block_size = 1, function_sleep_max_microseconds_per_block = 0"
)


def cluster_xml(args):
    """remote_servers, macros and zookeeper elements for a cluster member."""
    shards = "".join(
        "            <shard>\n"
        "                <internal_replication>false</internal_replication>\n"
        + "".join(
            f"                <replica><host>{h}</host><port>{p}</port></replica>\n"
            for h, p in (r.rsplit(":", 1) for r in shard.split(","))
        )
        + "            </shard>\n"
        for shard in args.shard
    )
    xml = (
        f"    <remote_servers>\n        <{args.cluster}>\n{shards}        </{args.cluster}>\n    </remote_servers>\n"
        f"    <macros>\n        <cluster>{args.cluster}</cluster>\n"
        f"        <shard>{args.shard_index:02d}</shard>\n        <replica>r{args.replica_index:02d}</replica>\n    </macros>\n"
    )
    if args.zookeeper:
        h, p = args.zookeeper.rsplit(":", 1)
        xml += f"    <zookeeper>\n        <node><host>{h}</host><port>{p}</port></node>\n    </zookeeper>\n"
    return xml


def log(msg):
    print(f"chdb_server[{os.getpid()}]: {msg}", file=sys.stderr, flush=True)


def port_free(port):
    # SO_REUSEADDR as ClickHouse sets it: a port with only TIME_WAIT connections left
    # by a previous run (a restart on the same port) counts as free; a listener does not.
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def ping(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as r:
            return r.read().strip() == b"Ok."
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", required=True, help="run dir: config, users and data")
    ap.add_argument("--port", required=True, type=int, help="HTTP port on 127.0.0.1")
    ap.add_argument(
        "--tcp-port", type=int, help="also serve the native protocol on 127.0.0.1 (cluster members)"
    )
    ap.add_argument(
        "--config-extra",
        help="a file of config.xml elements added as they are (remote_servers, macros, zookeeper)",
    )
    ap.add_argument("--cluster", help="cluster name in remote_servers (with --shard ...)")
    ap.add_argument(
        "--shard", action="append", default=[], help="one shard's replicas: HOST:TCP_PORT,... (repeat per shard)"
    )
    ap.add_argument("--shard-index", type=int, default=1, help="this node's shard, from 1 (macro {shard})")
    ap.add_argument("--replica-index", type=int, default=1, help="this node's replica, from 1 (macro {replica})")
    ap.add_argument("--zookeeper", help="HOST:PORT of ZooKeeper, written as <zookeeper>")
    ap.add_argument("--start-timeout", type=float, default=60.0, help="seconds to wait for /ping")
    args = ap.parse_args()

    run_dir = os.path.abspath(args.dir)
    data_dir = os.path.join(run_dir, "data")
    os.makedirs(data_dir, exist_ok=True)
    for port in [args.port] + ([args.tcp_port] if args.tcp_port else []):
        if not port_free(port):
            log(f"port {port} on 127.0.0.1 is in use; refusing to start")
            return 2
    # With neither option, config.xml and the keep-alive query are exactly the
    # single node's of before.
    extra = ""
    if args.tcp_port:
        extra += f"    <tcp_port>{args.tcp_port}</tcp_port>\n"
    if args.cluster:
        if not args.shard or not args.tcp_port:
            log("--cluster needs --shard and --tcp-port")
            return 2
        extra += cluster_xml(args)
    if args.config_extra:
        with open(args.config_extra) as f:
            extra += f.read().rstrip("\n") + "\n"
    listen_tcp = "SYSTEM START LISTEN TCP; " if args.tcp_port else ""
    with open(os.path.join(run_dir, "config.xml"), "w") as f:
        f.write(CONFIG_XML.format(port=args.port, extra=extra))
    with open(os.path.join(run_dir, "users.xml"), "w") as f:
        f.write(USERS_XML)

    stop = threading.Event()

    def on_signal(signum, _frame):
        log(f"signal {signum}: stopping")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    os.chdir(run_dir)
    from chdb import _chdb  # noqa: E402  (must follow the chdir)

    outcome = {}

    def serve():
        try:
            _chdb.query(KEEPALIVE_SQL.format(listen_tcp=listen_tcp), "TabSeparated", path=data_dir)
            outcome["error"] = "the keep-alive query returned"
        except Exception as e:  # noqa: BLE001  (report whatever chdb raised)
            outcome["error"] = f"the server query failed: {e}"
        stop.set()

    threading.Thread(target=serve, name="chdb-server", daemon=True).start()

    deadline = time.monotonic() + args.start_timeout
    while not ping(args.port):
        if stop.is_set():
            log(outcome.get("error", "stopped before it answered /ping"))
            return 4 if "error" in outcome else 0
        if time.monotonic() > deadline:
            log(f"no answer on /ping within {args.start_timeout}s")
            return 3
        time.sleep(0.05)
    print(f"ready http://127.0.0.1:{args.port} pid={os.getpid()}", flush=True)
    log(f"ready on http://127.0.0.1:{args.port}, data in {data_dir}")

    while not stop.wait(1.0):
        pass
    if "error" in outcome:
        log(outcome["error"])
        code = 4
    else:
        code = 0
    # os._exit: the server thread is inside a C++ call that never returns by itself;
    # a normal interpreter exit would wait on it or crash in static destructors.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())

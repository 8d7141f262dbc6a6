"""Is a Kafka-protocol broker up and advertising itself? (standard library only)

    kafka_ping.py HOST:PORT [--timeout SECONDS]

Sends ApiVersions v0 (every broker answers it, whatever its version), then a Metadata
request in the highest non-flexible version (1..8) the broker supports, and checks that
the broker list names HOST:PORT — an accepted TCP connection alone does not prove the
broker can serve clients, and a wrong advertised listener sends librdkafka elsewhere.
Prints the brokers on success; exit 0 ok, 1 not ready (reason on stderr).

scripts/services uses it to wait for the broker; testkit does the same check in Rust.
"""

import socket
import struct
import sys

API_METADATA = 3
API_VERSIONS = 18


def request(sock, api_key, version, correlation_id, body):
    client_id = b"kevents-ping"
    header = struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id
    payload = header + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    size = struct.unpack(">i", recv_exact(sock, 4))[0]
    data = recv_exact(sock, size)
    got = struct.unpack(">i", data[:4])[0]
    if got != correlation_id:
        raise RuntimeError(f"correlation id {got}, expected {correlation_id}")
    return data[4:]


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise RuntimeError("connection closed by the broker")
        buf += chunk
    return buf


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        value = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value[0] if len(value) == 1 else value

    def string(self):
        n = self.take(">h")
        if n < 0:
            return None
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return s


def ping(host, port, timeout):
    with socket.create_connection((host, port), timeout=timeout) as sock:
        r = Reader(request(sock, API_VERSIONS, 0, 1, b""))
        error = r.take(">h")
        if error != 0:
            raise RuntimeError(f"ApiVersions error code {error}")
        versions = {}
        for _ in range(r.take(">i")):
            key, lo, hi = r.take(">hhh")
            versions[key] = (lo, hi)
        if API_METADATA not in versions:
            raise RuntimeError("broker does not offer the Metadata API")
        lo, hi = versions[API_METADATA]
        v = min(hi, 8)
        if v < max(lo, 1):
            raise RuntimeError(f"no Metadata version in 1..8 (broker offers {lo}..{hi})")
        body = struct.pack(">i", -1)  # null topic array: all topics
        if v >= 4:
            body += b"\x00"  # allow_auto_topic_creation = false
        if v >= 8:
            body += b"\x00\x00"  # include cluster/topic authorized operations = false
        r = Reader(request(sock, API_METADATA, v, 2, body))
        if v >= 3:
            r.take(">i")  # throttle_time_ms
        brokers = []
        for _ in range(r.take(">i")):
            node = r.take(">i")
            bhost = r.string()
            bport = r.take(">i")
            r.string()  # rack
            brokers.append((node, bhost, bport))
        return brokers


def main():
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    host, _, port = args[0].rpartition(":")
    timeout = float(args[2]) if len(args) >= 3 and args[1] == "--timeout" else 2.0
    try:
        brokers = ping(host, int(port), timeout)
    except (OSError, RuntimeError, struct.error) as e:
        print(f"kafka_ping: {host}:{port} not ready: {e}", file=sys.stderr)
        return 1
    if not any(b[1] == host and b[2] == int(port) for b in brokers):
        print(f"kafka_ping: {host}:{port} answers but advertises {brokers}", file=sys.stderr)
        return 1
    for node, bhost, bport in brokers:
        print(f"broker {node} {bhost}:{bport}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

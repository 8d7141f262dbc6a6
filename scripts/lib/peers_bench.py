"""The measuring side of scripts/bench-peers (issue #19): samples the tools while they run,
reads back what each one delivered, asks the API server what it served, and turns a round
into numbers. Runs with the peers venv (confluent-kafka, fastavro; scripts/lib/peers_build.sh).

    peers_bench.py sample --pids FILE --kafka HOST:PORT --ch-url URL --out FILE
                          [--topic NAME=TOPIC]... [--ch-count NAME=SQL]...
        every second until SIGTERM: CPU seconds (utime+stime of /proc/PID/stat) and RSS
        (VmRSS) of every PID listed in FILE (lines "tool pid", re-read each second so
        restarted tools are followed), the high watermark of each topic and each count;
        one JSON line per second.
    peers_bench.py list-rv --kubeenv FILE
        prints the API server's current resourceVersion (a list of events, limit 1).
    peers_bench.py truth --kubeenv FILE --from-rv RV --to-rv RV --out FILE
        every (uid, resourceVersion) the API server served after RV FROM up to RV TO: a watch
        of events.k8s.io/v1 from FROM (etcd replays every revision; the bench runs the API
        server with compaction off so nothing is compacted away).
    peers_bench.py collect --kafka HOST:PORT --format kevents|otlp|kee --topic T --out FILE
    peers_bench.py collect --ch-url URL --sql SQL --out FILE
        what one tool delivered, as "uid rv" lines (one per delivered record, duplicates kept).
    peers_bench.py score --round DIR [--ch-url URL]
        per tool: arrived, lost, doubled (against DIR/truth.txt), CPU s per 1,000 events,
        peak and steady RSS, sustained events/s, bytes per event stored (ClickHouse tools:
        compressed bytes of the tool's whole database / versions arrived); writes
        DIR/score.json.
    peers_bench.py questions --ch-url URL --kevents-db DB --otel-db DB
        times the three questions people ask (top reasons by namespace in the last hour, one
        pod's timeline, fleet-wide counts by category per minute) on both tools' databases
        of one round: median of 5 runs each, wall clock of the HTTP request, as Markdown.
    peers_bench.py table --rounds DIR... [--restart DIR] [--gone DIR]
        the Markdown table (medians over the rounds) for BENCHMARKS.md.

Definitions (also in BENCHMARKS.md): arrived = distinct served versions the tool delivered;
lost = served versions it never delivered; doubled = deliveries beyond the first of a
version; events/s = distinct versions delivered / seconds from the first write until the
tool's count reached its final value (1-second samples); steady RSS = median RSS over the
second half of the load (PSS likewise: pages shared between processes counted once); CPU = all of the tool's processes, all restarts, from the
start of the load until the outputs stopped growing (start-up before the load excluded).
"""

import argparse
import json
import os
import signal
import socket
import ssl
import statistics
import sys
import time
import urllib.parse
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = 1


# ---- process and service probes -----------------------------------------------------


def proc_cpu(pid):
    """CPU seconds (utime + stime, fields 14 and 15 of /proc/PID/stat) of a live PID;
    OSError when it is gone. scale_bench.py uses it too."""
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / CLK_TCK


def proc_cpu_rss(pid):
    """(cpu seconds, rss MiB, pss MiB) of a live PID, or None. PSS (smaps_rollup) counts
    a page shared by n processes as 1/n: the kevents pipeline's three processes run one
    binary, whose code RSS counts three times."""
    try:
        cpu = proc_cpu(pid)
        rss = 0.0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) / 1024.0
        pss = rss
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1]) / 1024.0
                    break
        return cpu, rss, pss
    except (OSError, IndexError, ValueError):
        return None


def ch_query(url, sql):
    req = urllib.request.Request(url.rstrip("/") + "/", data=sql.encode())
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read().decode()


def kafka_conf(bootstrap):
    return {"bootstrap.servers": bootstrap, "group.id": f"peers-bench-{os.getpid()}",
            "enable.auto.commit": False, "log_level": 3}


def watermarks(consumer, topic):
    from confluent_kafka import TopicPartition

    md = consumer.list_topics(topic, timeout=10)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return {}
    out = {}
    for p in t.partitions:
        lo, hi = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        out[p] = (lo, hi)
    return out


def cmd_sample(a):
    from confluent_kafka import Consumer

    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    consumer = Consumer(kafka_conf(a.kafka))
    topics = dict(t.split("=", 1) for t in a.topic)
    counts = dict(c.split("=", 1) for c in a.ch_count)
    with open(a.out, "a") as out:
        while not stop[0]:
            t0 = time.time()
            row = {"t": round(t0, 3), "procs": {}, "topics": {}, "ch": {}}
            try:
                with open(a.pids) as f:
                    for line in f:
                        parts = line.split()
                        if len(parts) == 2:
                            got = proc_cpu_rss(parts[1])
                            if got:
                                row["procs"].setdefault(parts[0], {})[parts[1]] = [round(got[0], 2), round(got[1], 1), round(got[2], 1)]
            except OSError:
                pass
            for name, topic in topics.items():
                try:
                    row["topics"][name] = sum(hi for _, hi in watermarks(consumer, topic).values())
                except Exception:  # noqa: BLE001 — a topic not created yet
                    row["topics"][name] = 0
            for name, sql in counts.items():
                try:
                    row["ch"][name] = int(ch_query(a.ch_url, sql).strip() or 0)
                except Exception:  # noqa: BLE001 — a table not created yet
                    row["ch"][name] = 0
            out.write(json.dumps(row) + "\n")
            out.flush()
            time.sleep(max(0.0, 1.0 - (time.time() - t0)))
    consumer.close()


# ---- the API server -------------------------------------------------------------------


def kube_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            if "=" in line and not line.startswith("#"):
                k, v = line.rstrip("\n").split("=", 1)
                env[k] = v
    return env


def kube_open(env, path, timeout):
    ctx = ssl.create_default_context(cafile=env["KEVENTS_KUBE_CA"]) if os.path.exists(env["KEVENTS_KUBE_CA"]) \
        else ssl.create_default_context(cadata=env["KEVENTS_KUBE_CA"])
    req = urllib.request.Request(env["KEVENTS_KUBE_APISERVER_URL"] + path,
                                 headers={"Authorization": "Bearer " + env["KEVENTS_KUBE_ADMIN_TOKEN"]})
    return urllib.request.urlopen(req, context=ctx, timeout=timeout)


def list_rv(env):
    with kube_open(env, "/apis/events.k8s.io/v1/events?limit=1", 30) as r:
        return int(json.load(r)["metadata"]["resourceVersion"])


def cmd_list_rv(a):
    print(list_rv(kube_env(a.kubeenv)))


def cmd_truth(a):
    """Replays the watch from FROM. Events bypass the watch cache, so etcd replays every
    revision; kube-apiserver sends no BOOKMARK on Event watches, and the list RV counts
    writes of every kind, so the end is when the stream has been silent for --quiet
    seconds (the load stopped before this runs) or passed TO."""
    env = kube_env(a.kubeenv)
    rv, to_rv, n, more = int(a.from_rv), int(a.to_rv), 0, True
    with open(a.out, "w") as out:
        while more and rv < to_rv:
            more = False
            q = urllib.parse.urlencode({"watch": "1", "resourceVersion": str(rv), "timeoutSeconds": "300"})
            r = kube_open(env, "/apis/events.k8s.io/v1/events?" + q, a.quiet)
            try:
                for line in r:
                    ev = json.loads(line)
                    if ev["type"] == "ERROR":
                        sys.exit(f"truth watch from {rv} failed: {ev['object'].get('message')}")
                    md = ev["object"]["metadata"]
                    v = int(md["resourceVersion"])
                    if v > to_rv:
                        break
                    out.write(f"{md['uid']} {v}\n")
                    n += 1
                    rv = v
                else:
                    more = True  # the server ended the watch: go on from rv
            except (TimeoutError, socket.timeout):
                pass
            finally:
                r.close()
    print(f"{n} versions served between RV {a.from_rv} and {a.to_rv}", file=sys.stderr)


# ---- what the tools delivered -----------------------------------------------------------


def read_topic(bootstrap, topic):
    """Every record value of TOPIC from the start to the current end."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer(kafka_conf(bootstrap))
    marks = watermarks(c, topic)
    want = {p: hi for p, (lo, hi) in marks.items() if hi > lo}
    c.assign([TopicPartition(topic, p, 0) for p in want])
    done = {p for p, hi in want.items() if hi == 0}
    idle = 0
    while len(done) < len(want) and idle < 30:
        msgs = c.consume(10000, timeout=1.0)
        if not msgs:
            idle += 1
            continue
        idle = 0
        for m in msgs:
            if m.error():
                continue
            yield m.value()
            if m.offset() + 1 >= want[m.partition()]:
                done.add(m.partition())
    c.close()


def pb_fields(buf):
    """(field number, wire type, value) of one protobuf message: enough to walk OTLP."""
    i, n = 0, len(buf)
    while i < n:
        key, i = varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, i = varint(buf, i)
        elif wt == 1:
            val, i = buf[i:i + 8], i + 8
        elif wt == 2:
            ln, i = varint(buf, i)
            val, i = buf[i:i + ln], i + ln
        elif wt == 5:
            val, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wt}")
        yield num, wt, val


def varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def pb_kvlist(anyvalue):
    """An OTLP AnyValue holding a kvlist (field 6) -> {key: AnyValue bytes}."""
    out = {}
    for num, _, kvl in pb_fields(anyvalue):
        if num == 6:
            for n2, _, kv in pb_fields(kvl):
                if n2 == 1:
                    key, val = None, b""
                    for n3, _, v in pb_fields(kv):
                        if n3 == 1:
                            key = bytes(v).decode()
                        elif n3 == 2:
                            val = v
                    out[key] = val
    return out


def pb_string(anyvalue):
    for num, _, v in pb_fields(anyvalue):
        if num == 1:
            return bytes(v).decode()
    return ""


def otlp_versions(value):
    """uid, rv of every log record of an OTLP/protobuf LogsData whose body is a watch event."""
    for n1, _, rl in pb_fields(value):  # LogsData.resource_logs
        if n1 != 1:
            continue
        for n2, _, sl in pb_fields(rl):  # ResourceLogs.scope_logs
            if n2 != 2:
                continue
            for n3, _, lr in pb_fields(sl):  # ScopeLogs.log_records
                if n3 != 2:
                    continue
                for n4, _, body in pb_fields(lr):  # LogRecord.body
                    if n4 == 5:
                        obj = pb_kvlist(pb_kvlist(body).get("object", b""))
                        md = pb_kvlist(obj.get("metadata", b""))
                        yield pb_string(md.get("uid", b"")), pb_string(md.get("resourceVersion", b""))


def kevents_versions(value, schema):
    import io

    import fastavro

    if value[0] != 0:
        raise ValueError("not Confluent framing")
    rec = fastavro.schemaless_reader(io.BytesIO(value[5:]), schema)
    ev = rec.get("event")
    if ev:
        yield ev["event"]["uid"], ev["event"]["resource_version"]


def cmd_collect(a):
    n = 0
    with open(a.out, "w") as out:
        if a.sql:
            for line in ch_query(a.ch_url, a.sql).splitlines():
                uid, rv = line.split("\t")
                out.write(f"{uid} {rv}\n")
                n += 1
        else:
            schema = None
            if a.format == "kevents":
                import fastavro

                schema = fastavro.parse_schema(json.load(open(a.avsc)))
            for value in read_topic(a.kafka, a.topic):
                if a.format == "kevents":
                    pairs = kevents_versions(value, schema)
                elif a.format == "otlp":
                    pairs = otlp_versions(value)
                else:
                    md = json.loads(value)["metadata"]
                    pairs = [(md["uid"], md["resourceVersion"])]
                for uid, rv in pairs:
                    out.write(f"{uid} {rv}\n")
                    n += 1
    print(f"{n} records -> {a.out}", file=sys.stderr)


# ---- scoring ------------------------------------------------------------------------------


def read_pairs(path):
    with open(path) as f:
        return [tuple(line.split()) for line in f if line.strip()]


def cmd_score(a):
    d = a.round
    meta = json.load(open(os.path.join(d, "round.json")))
    truth = set(read_pairs(os.path.join(d, "truth.txt")))
    samples = [json.loads(line) for line in open(os.path.join(d, "samples.jsonl"))]
    t_load0, t_load1 = meta["load_start"], meta["load_end"]
    result = {"served": len(truth), "load_secs": round(t_load1 - t_load0, 1), "tools": {}}
    for tool in meta["tools"]:
        name, procs, counter = tool["name"], tool["procs"], tool["counter"]
        got = read_pairs(os.path.join(d, f"delivered-{tool['delivered']}.txt"))
        seen, doubled = set(), 0
        for p in got:
            if p in seen:
                doubled += 1
            seen.add(p)
        arrived = len(seen & truth)
        extra = len(seen - truth)
        # CPU: per PID of the tool's processes, its last sample minus its CPU when the load
        # started (0 for a PID started later: a restart's start-up counts), summed.
        last_cpu, base_cpu, rss_series, pss_series, peak = {}, {}, [], [], 0.0
        for s in samples:
            rss = pss = 0.0
            for proc in procs:
                for pid, (cpu, r, *ps) in s["procs"].get(proc, {}).items():
                    last_cpu[(proc, pid)] = cpu
                    if s["t"] <= t_load0:
                        base_cpu[(proc, pid)] = cpu
                    rss += r
                    pss += ps[0] if ps else r
            if t_load0 + (t_load1 - t_load0) / 2 <= s["t"] <= t_load1:
                rss_series.append(rss)
                pss_series.append(pss)
            peak = max(peak, rss)
        cpu = sum(v - base_cpu.get(k, 0.0) for k, v in last_cpu.items())
        cpu_by_proc = {}
        for (proc, pid), v in last_cpu.items():
            cpu_by_proc[proc] = cpu_by_proc.get(proc, 0.0) + v - base_cpu.get((proc, pid), 0.0)
        # Sustained rate: distinct versions / seconds from the first write until the
        # delivered count stopped growing (its final value first reached).
        kind, key = counter.split(":", 1)
        series = [(s["t"], s["topics" if kind == "topic" else "ch"].get(key, 0)) for s in samples]
        final = series[-1][1] if series else 0
        t_done = next((t for t, c in series if c >= final), t_load1)
        secs = max(t_done - t_load0, 1e-9)
        stored = None
        if tool.get("db") and a.ch_url:
            # Bytes on disk (compressed, active parts) of everything the tool keeps in its
            # database, per distinct version arrived.
            b = ch_query(a.ch_url, "SELECT sum(data_compressed_bytes) FROM system.parts "
                                   f"WHERE active AND database = '{tool['db']}'").strip()
            stored = round(int(b or 0) / max(arrived, 1), 1)
        result["tools"][name] = {
            "bytes_per_event": stored,
            "arrived": arrived, "lost": len(truth) - arrived, "doubled": doubled, "not_served": extra,
            "cpu_s": round(cpu, 2), "cpu_s_per_1000": round(cpu / max(arrived, 1) * 1000, 3),
            "cpu_s_per_1000_by_process": {k: round(v / max(arrived, 1) * 1000, 3) for k, v in cpu_by_proc.items()},
            "rss_peak_mib": round(peak, 1),
            "rss_steady_mib": round(statistics.median(rss_series), 1) if rss_series else None,
            "pss_steady_mib": round(statistics.median(pss_series), 1) if pss_series else None,
            "events_per_s": round(arrived / secs, 1), "secs_to_done": round(secs, 1),
        }
    with open(os.path.join(d, "score.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result, indent=1))


def cmd_table(a):
    rounds = [json.load(open(os.path.join(d, "score.json"))) for d in a.rounds]
    restart = json.load(open(os.path.join(a.restart, "score.json"))) if a.restart else None
    gone = json.load(open(os.path.join(a.gone, "score.json"))) if a.gone else None
    names = list(rounds[0]["tools"])

    def med(name, key):
        vals = [r["tools"][name].get(key) for r in rounds if r["tools"][name].get(key) is not None]
        return statistics.median(vals) if vals else float("nan")

    served = statistics.median(r["served"] for r in rounds)
    print(f"Versions served per round (median of {len(rounds)}): {served:,.0f} in "
          f"{statistics.median(r['load_secs'] for r in rounds):.0f} s of load\n")
    hdr = ("| tool | events/s | CPU s / 1,000 events | RSS peak | RSS steady | PSS steady | bytes / event stored |"
           " steady: lost / doubled |")
    if restart:
        hdr += " restart: lost / doubled |"
    if gone:
        hdr += " restart + 410: lost / doubled |"
    print(hdr)
    print("|" + "---|" * (hdr.count("|") - 1))
    for n in names:
        has_bytes = rounds[0]["tools"][n].get("bytes_per_event") is not None
        stored = f"{med(n, 'bytes_per_event'):.0f} B" if has_bytes else ""
        row = (f"| {n} | {med(n, 'events_per_s'):,.0f} | {med(n, 'cpu_s_per_1000'):.3f} | "
               f"{med(n, 'rss_peak_mib'):.0f} MiB | {med(n, 'rss_steady_mib'):.0f} MiB | "
               f"{med(n, 'pss_steady_mib'):.0f} MiB | "
               f"{stored} | "
               f"{'/'.join(str(r['tools'][n]['lost']) for r in rounds)} / "
               f"{'/'.join(str(r['tools'][n]['doubled']) for r in rounds)} |")
        if restart:
            t = restart["tools"][n]
            row += f" {t['lost']:,} / {t['doubled']:,} (of {restart['served']:,}) |"
        if gone:
            t = gone["tools"][n]
            row += f" {t['lost']:,} / {t['doubled']:,} (of {gone['served']:,}) |"
        print(row)
    # Where a multi-process tool's CPU goes (medians per process over the steady rounds).
    for n in names:
        procs = rounds[0]["tools"][n].get("cpu_s_per_1000_by_process") or {}
        if len(procs) > 1:
            parts = [f"{p} {statistics.median(r['tools'][n]['cpu_s_per_1000_by_process'].get(p, 0.0) for r in rounds):.3f}"
                     for p in procs]
            print(f"\n{n}, CPU s / 1,000 events by process: " + ", ".join(parts))


# The three questions, as each schema needs them. OTel keeps the whole Event as a JSON
# string (Body): every field is a JSONExtract, and it has no category or occurrences.
def _j(*path):
    return "JSONExtractString(Body, 'object', " + ", ".join(f"'{p}'" for p in path) + ")"


QUESTIONS = [
    ("top reasons by namespace, last hour",
     "SELECT namespace, reason, sum(occurrences) AS n FROM {k}.events WHERE event_time >= now() - INTERVAL 1 HOUR "
     "GROUP BY namespace, reason ORDER BY n DESC LIMIT 10",
     f"SELECT {_j('regarding', 'namespace')} AS ns, {_j('reason')} AS reason, count() AS n FROM {{o}}.otel_logs "
     "WHERE TimestampTime >= now() - INTERVAL 1 HOUR GROUP BY ns, reason ORDER BY n DESC LIMIT 10"),
    ("one pod's timeline",
     "SELECT event_time, reason, message FROM {k}.events WHERE namespace = '{ns}' AND kind = 'Pod' AND name = '{pod}' "
     "ORDER BY event_time",
     f"SELECT Timestamp, {_j('reason')}, {_j('note')} FROM {{o}}.otel_logs WHERE {_j('regarding', 'namespace')} = '{{ns}}' "
     f"AND {_j('regarding', 'kind')} = 'Pod' AND {_j('regarding', 'name')} = '{{pod}}' ORDER BY Timestamp"),
    ("counts by category per minute",
     "SELECT toStartOfMinute(event_time) AS minute, category, sum(occurrences) FROM {k}.events "
     "GROUP BY minute, category ORDER BY minute, category",
     f"SELECT toStartOfMinute(TimestampTime) AS minute, {_j('reason')} AS reason, count() FROM {{o}}.otel_logs "
     "GROUP BY minute, reason ORDER BY minute, reason"),
]


def cmd_questions(a):
    pod = ch_query(a.ch_url, f"SELECT namespace, name FROM {a.kevents_db}.events WHERE kind = 'Pod' "
                             "GROUP BY namespace, name ORDER BY count() DESC, name LIMIT 1 FORMAT TSV").split()
    ns, name = pod[0], pod[1]

    def timed(sql):
        times, rows = [], 0
        for _ in range(5):
            t0 = time.perf_counter()
            out = ch_query(a.ch_url, sql + " FORMAT TSV")
            times.append((time.perf_counter() - t0) * 1000)
            rows = len(out.splitlines())
        return statistics.median(times), rows

    print(f"Pod for the timeline: {ns}/{name} (the one with most events)\n")
    print("| question | kevents (`events`) | OTel Collector (`otel_logs`) |")
    print("|---|---|---|")
    for title, ksql, osql in QUESTIONS:
        kt, kr = timed(ksql.format(k=a.kevents_db, ns=ns, pod=name))
        ot, orows = timed(osql.format(o=a.otel_db, ns=ns, pod=name))
        print(f"| {title} | {kt:.0f} ms ({kr} rows) | {ot:.0f} ms ({orows} rows) |")
    print("\nSQL (kevents, then OTel; {db} is each tool's database):\n")
    for title, ksql, osql in QUESTIONS:
        print(f"- {title}:\n  `{ksql.format(k='{db}', ns=ns, pod=name)}`\n  `{osql.format(o='{db}', ns=ns, pod=name)}`")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample")
    s.add_argument("--pids", required=True)
    s.add_argument("--kafka", required=True)
    s.add_argument("--ch-url", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--topic", action="append", default=[])
    s.add_argument("--ch-count", action="append", default=[])
    s = sub.add_parser("list-rv")
    s.add_argument("--kubeenv", required=True)
    s = sub.add_parser("truth")
    s.add_argument("--kubeenv", required=True)
    s.add_argument("--from-rv", required=True)
    s.add_argument("--to-rv", required=True)
    s.add_argument("--quiet", type=float, default=10.0)
    s.add_argument("--out", required=True)
    s = sub.add_parser("collect")
    s.add_argument("--kafka")
    s.add_argument("--format", choices=["kevents", "otlp", "kee"])
    s.add_argument("--topic")
    s.add_argument("--avsc")
    s.add_argument("--ch-url")
    s.add_argument("--sql")
    s.add_argument("--out", required=True)
    s = sub.add_parser("score")
    s.add_argument("--round", required=True)
    s.add_argument("--ch-url")
    s = sub.add_parser("questions")
    s.add_argument("--ch-url", required=True)
    s.add_argument("--kevents-db", required=True)
    s.add_argument("--otel-db", required=True)
    s = sub.add_parser("table")
    s.add_argument("--rounds", nargs="+", required=True)
    s.add_argument("--restart")
    s.add_argument("--gone")
    a = ap.parse_args()
    {"sample": cmd_sample, "list-rv": cmd_list_rv, "truth": cmd_truth, "collect": cmd_collect,
     "score": cmd_score, "table": cmd_table,
     "questions": cmd_questions}[a.cmd](a)


if __name__ == "__main__":
    main()

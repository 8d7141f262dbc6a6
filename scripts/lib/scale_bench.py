"""The measuring side of scripts/bench-scale (docs/scaling.md's capacity model).

    scale_bench.py sample --out FILE
        every second until SIGTERM: the CPU seconds (utime+stime, /proc/PID/stat) of every
        process of each part of the pipeline, found by its command line; one JSON line
        per second.
    scale_bench.py table --dir DIR --rates R1,R2,...
        reads DIR/demo-R.log (scripts/demo's output) and DIR/cpu-R.jsonl per rate and
        prints the Markdown table for docs/scaling.md.

Parts: collector, processor, sink and load are `kevents <subcommand>` processes (load is
`kevents simulate`, which also serves the test API servers); broker is the Apache Kafka
JVM (`kafka.Kafka`); clickhouse is scripts/lib/chdb_server.py. A process's CPU counts from
its first sample to its last, so a part's figure misses at most a second of start-up.
"""

import argparse
import json
import os
import re
import signal
import statistics
import time

from peers_bench import proc_cpu  # the same /proc reading as the side-by-side bench

PARTS = ["collector", "processor", "sink", "broker", "clickhouse", "load"]


def part_of(argv):
    if not argv:
        return None
    exe = os.path.basename(argv[0])
    if exe == "kevents" and len(argv) > 1:
        return {"collector": "collector", "processor": "processor", "sink": "sink", "simulate": "load"}.get(argv[1])
    if exe == "java" and "kafka.Kafka" in argv:
        return "broker"
    if any(a.endswith("chdb_server.py") for a in argv[:3]):
        return "clickhouse"
    return None


def cmd_sample(a):
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    with open(a.out, "a") as out:
        while not stop[0]:
            row = {"t": round(time.time(), 3), "pids": {}}
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        argv = [x.decode(errors="replace") for x in f.read().split(b"\0") if x]
                    part = part_of(argv)
                    if part:
                        row["pids"][pid] = [part, round(proc_cpu(pid), 2)]
                except OSError:
                    continue
            out.write(json.dumps(row) + "\n")
            out.flush()
            time.sleep(1)


PROGRESS = re.compile(r"\[(\d+)s\] events published to Kafka \([^)]*\): (\d+); stored in ClickHouse: (\d+)")


def demo_figures(path):
    text = open(path).read()
    rows = [(int(t), int(p), int(s)) for t, p, s in PROGRESS.findall(text)]
    if not rows:
        raise SystemExit(f"{path}: no progress lines (did the demo run?)")
    # The load's steady part: from 10 s (consumer groups formed) to the last line.
    steady = [r for r in rows if r[0] >= 10] or rows
    t0, p0, s0 = steady[0]
    t1, p1, s1 = steady[-1]
    secs = max(t1 - t0, 1)
    drain = re.search(r"all (\d+) published events are stored \((\d+)s\)", text)
    left = re.search(r"(\d+) of (\d+) published events still in flight after (\d+)s", text)
    lat = re.search(r"│\s*(\d+)\s*│\s*(\d+)\s*│\s*(\d+)\s*│\s*(\d+)\s*│\s*(\d+)\s*│", text)
    done = re.search(r"==> done: (\d+) events published by \d+ collector\(s\), (\d+) stored", text)
    return {
        "published_per_s": (p1 - p0) / secs,
        "stored_per_s": (s1 - s0) / secs,
        "max_backlog": max(p - s for _, p, s in rows),
        "backlog_end": p1 - s1,
        "drain": f"{drain.group(2)} s" if drain else (f"{left.group(1)} left after {left.group(3)} s" if left else "?"),
        "p99_ms": int(lat.group(4)) if lat else None,
        "stored": int(done.group(2)) if done else s1,
    }


def cpu_figures(path):
    first, last, t_first, t_last = {}, {}, None, None
    for line in open(path):
        row = json.loads(line)
        t_first = t_first or row["t"]
        t_last = row["t"]
        for pid, (part, cpu) in row["pids"].items():
            first.setdefault(pid, (part, cpu))
            last[pid] = (part, cpu)
    per_part = {p: 0.0 for p in PARTS}
    for pid, (part, cpu) in last.items():
        per_part[part] += cpu - first[pid][1]
    return per_part, max((t_last or 0) - (t_first or 0), 1e-9)


def cmd_table(a):
    rates = [r for r in a.rates.split(",") if r]
    print("| target events/s | published /s | stored /s | largest backlog | drain after the load | p99 latency | "
          + " | ".join(f"{p} CPU s / 1,000" for p in PARTS) + " | all parts, cores busy |")
    print("|" + "---|" * (7 + len(PARTS)))
    for r in rates:
        d = demo_figures(os.path.join(a.dir, f"demo-{r}.log"))
        cpu, wall = cpu_figures(os.path.join(a.dir, f"cpu-{r}.jsonl"))
        per = " | ".join(f"{cpu[p] / max(d['stored'], 1) * 1000:.3f}" for p in PARTS)
        p99 = f"{d['p99_ms']:,} ms" if d["p99_ms"] is not None else "?"
        print(f"| {int(r):,} | {d['published_per_s']:,.0f} | {d['stored_per_s']:,.0f} | {d['max_backlog']:,} | {d['drain']} | {p99} | "
              f"{per} | {sum(cpu.values()) / wall:.2f} |")
    print("\nCPU per part: CPU seconds over the whole run (start-up, load and drain) per 1,000 events stored; "
          "cores busy: all parts' CPU seconds per wall second of the run.")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample")
    s.add_argument("--out", required=True)
    t = sub.add_parser("table")
    t.add_argument("--dir", required=True)
    t.add_argument("--rates", required=True)
    a = ap.parse_args()
    {"sample": cmd_sample, "table": cmd_table}[a.cmd](a)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Lists the event reasons a Go code base records, for the reason files beside it.

Why: the classification coverage test (processor/tests/classify_coverage.rs)
must check the reasons the emitters really write, not the ones we remember.
This walks Go sources (non-test files) for event-recorder calls
(`Event`, `Eventf`, `AnnotatedEventf`, events.k8s.io `Eventf(regarding, related,
type, reason, action, note)`), finds the type argument and the reason after it,
and resolves a reason given as a constant (same package, or the imported
package's directory). Reasons computed at run time (a variable, a Sprintf) are
printed as `?` lines with the expression, to be read by hand; the reason files
say which lines came from such a reading.

node-problem-detector is configured, not coded: `extract.py --npd CONFIG_DIR`
reads its monitor configs (config/*.json) instead. Each monitor reports with its
own `source` as the component: a `temporary` rule is a Warning event with the
rule's reason; a `permanent` rule sets a node condition and records a Warning
with the rule's reason, and the return to normal a Normal event with the
condition's default reason (pkg/util/helpers.go GenerateConditionChangeEvent).

Usage: extract.py ROOT DIR... [--map IMPORT_PREFIX=DIR]... [--component NAME]
Prints one line per (type, reason, component), first place found:
`TYPE REASON COMPONENT KIND  # PATH:LINE`. COMPONENT is --component, else the
directory's `EventSource{Component: "..."}`, else `-`; KIND is guessed from the
name of the object argument (`node` → Node, `pvc`/`claim` → PersistentVolumeClaim, ...),
`-` when it cannot be; both are checked by hand afterwards.
"""

import os
import re
import sys

CALL = re.compile(r"\b(\w+)\(")
EVENT_CALL = re.compile(r"^(Event|Eventf|AnnotatedEventf|LabeledEventf)$")
CONST_BLOCK = re.compile(r"^const\s*\((.*?)^\)", re.M | re.S)
CONST_LINE = re.compile(r'^const\s+([A-Za-z_]\w*)\s*(?:[A-Za-z_][\w.]*\s*)?=\s*"([^"]*)"', re.M)
CONST_ITEM = re.compile(r'^\s*([A-Za-z_]\w*)\s*(?:[A-Za-z_][\w.]*\s*)?=\s*"([^"]*)"', re.M)


def consts_in(text):
    """Top-level string constants of a Go file (not variables, not locals)."""
    found = CONST_LINE.findall(text)
    for block in CONST_BLOCK.findall(text):
        found += CONST_ITEM.findall(block)
    return found
IMPORT = re.compile(r'^\s*(?:(\w+|\.)\s+)?"([^"]+)"\s*$', re.M)
# Helpers that take the reason as a plain argument: name -> (type, reason index).
HELPERS = {
    "getUnableComputeReplicaCountCondition": ("Warning", 1),  # pkg/controller/podautoscaler/horizontal.go
    "RecordNodeStatusChange": ("Normal", 3),  # pkg/controller/util/node/controller_utils.go
    "emitRollbackWarningEvent": ("Warning", 1),  # pkg/controller/deployment/rollback.go
    "rejectPod": ("Warning", 2),  # pkg/kubelet/kubelet.go
}
COMPONENT = re.compile(r'Component:\s*"([^"]+)"')


def split_args(text, start):
    """Top-level comma-separated arguments of the call whose '(' is at start-1."""
    depth, i, cur, args = 0, start, [], []
    in_str = None
    while i < len(text):
        c = text[i]
        if in_str:
            cur.append(c)
            if c == "\\" and in_str == '"':
                cur.append(text[i + 1])
                i += 2
                continue
            if c == in_str:
                in_str = None
        elif c in "\"`'":
            in_str = c
            cur.append(c)
        elif c in "([{":
            depth += 1
            cur.append(c)
        elif c in ")]}":
            if depth == 0:
                args.append("".join(cur).strip())
                return args
            depth -= 1
            cur.append(c)
        elif c == "," and depth == 0:
            args.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
        i += 1
    return args


def go_files(d):
    for root, _, files in os.walk(d):
        for f in files:
            if f.endswith(".go") and not f.endswith("_test.go"):
                yield os.path.join(root, f)


_consts = {}


def consts_of(d):
    if d not in _consts:
        m = {}
        if os.path.isdir(d):
            for f in os.listdir(d):
                if f.endswith(".go") and not f.endswith("_test.go"):
                    for name, val in consts_in(open(os.path.join(d, f), errors="replace").read()):
                        m.setdefault(name, val)
        _consts[d] = m
    return _consts[d]


def imports_of(text):
    out = {}
    for block in re.findall(r"^import\s*\((.*?)^\)", text, re.M | re.S) + re.findall(r'^import\s+(.*)$', text, re.M):
        for alias, path in IMPORT.findall(block):
            out[alias or path.rsplit("/", 1)[-1]] = path
    return out


def resolve(expr, path, text, maps):
    expr = expr.strip()
    if re.fullmatch(r'"[^"]*"', expr):
        return expr[1:-1]
    m = re.fullmatch(r"([A-Za-z_]\w*)", expr)
    if m:
        # The file's own constants, then the package's exported ones: a
        # lower-case name elsewhere in the package is usually a local variable
        # here (`reason`, `event`).
        own = dict(consts_in(text))
        if expr in own:
            return own[expr]
        return consts_of(os.path.dirname(path)).get(expr) if expr[0].isupper() else None
    m = re.fullmatch(r"([A-Za-z_]\w*)\.([A-Za-z_]\w*)", expr)
    if m:
        imp = imports_of(text).get(m.group(1))
        if imp:
            for prefix, d in maps:
                if imp == prefix or imp.startswith(prefix + "/"):
                    return consts_of(os.path.join(d, imp[len(prefix):].lstrip("/"))).get(m.group(2))
    return None


def event_type(expr):
    if "EventTypeWarning" in expr or expr == '"Warning"':
        return "Warning"
    if "EventTypeNormal" in expr or expr == '"Normal"':
        return "Normal"
    return None


def component_of(d, root):
    while d.startswith(root):
        found = set()
        for f in os.listdir(d):
            if f.endswith(".go") and not f.endswith("_test.go"):
                found.update(COMPONENT.findall(open(os.path.join(d, f), errors="replace").read()))
        if len(found) == 1:
            return found.pop()
        d = os.path.dirname(d)
    return "-"


KINDS = [
    (r"(?i)hpa", "HorizontalPodAutoscaler"),
    (r"(?i)cron|^cj$", "CronJob"),
    (r"(?i)job", "Job"),
    (r"(?i)node", "Node"),
    (r"(?i)claim|pvc", "PersistentVolumeClaim"),
    (r"(?i)volume|^pv$", "PersistentVolume"),
    (r"(?i)pdb", "PodDisruptionBudget"),
    (r"(?i)pod", "Pod"),
    (r"(?i)^ds$|daemon", "DaemonSet"),
    (r"(?i)^set$|stateful", "StatefulSet"),
    (r"(?i)^rs$|replicaset", "ReplicaSet"),
    (r"(?i)^d$|deploy", "Deployment"),
    (r"(?i)svc|service", "Service"),
    (r"(?i)slice", "EndpointSlice"),
    (r"(?i)endpoint", "Endpoints"),
]


def kind_of(arg):
    name = re.sub(r"[&*()]", "", arg).split(".")[-1]
    for pat, kind in KINDS:
        if re.search(pat, name):
            return kind
    return "-"


def npd(config_dir):
    import json

    seen = set()
    for f in sorted(os.listdir(config_dir)):
        if not f.endswith(".json"):
            continue
        cfg = json.load(open(os.path.join(config_dir, f)))
        source = cfg.get("source")
        if not source:
            continue  # system-stats monitors export metrics, not events
        lines = [("Warning", r["reason"], r.get("type")) for r in cfg.get("rules", [])]
        lines += [("Normal", c["reason"], "default condition " + c["type"]) for c in cfg.get("conditions", [])]
        for ty, reason, what in lines:
            if (ty, reason, source) not in seen:
                seen.add((ty, reason, source))
                print(f"{ty} {reason} {source} Node  # config/{f} ({what})")


def main(argv):
    if argv[:1] == ["--npd"]:
        return npd(argv[1])
    maps = []
    rest = []
    component = None
    seen = set()
    it = iter(argv)
    for a in it:
        if a == "--component":
            component = next(it)
        elif a == "--map":
            k, v = next(it).split("=", 1)
            maps.append((k, v))
        else:
            rest.append(a)
    root, dirs = rest[0], rest[1:]

    def emit(ty, reason_expr, obj, path, rel, line, text):
        reason = resolve(reason_expr, path, text, maps)
        comp = component or component_of(os.path.dirname(path), root)
        if reason is None:
            print(f"# ? {ty} {reason_expr!r} {comp}  # {rel}:{line}")
            return
        if (ty, reason, comp) in seen:
            return
        seen.add((ty, reason, comp))
        print(f"{ty} {reason} {comp} {kind_of(obj)}  # {rel}:{line}")

    for d in dirs:
        for path in sorted(go_files(os.path.join(root, d))):
            text = open(path, errors="replace").read()
            rel = os.path.relpath(path, root)
            for m in CALL.finditer(text):
                if text[max(0, m.start() - 5) : m.start()] == "func " or text[max(0, m.start() - 2) : m.start()] == ") ":
                    continue  # a definition, not a call
                args = split_args(text, m.end())
                line = text.count("\n", 0, m.start()) + 1
                if m.group(1) in HELPERS:
                    ty, idx = HELPERS[m.group(1)]
                    if idx < len(args):
                        emit(ty, args[idx], args[idx - 1], path, rel, line, text)
                    continue
                if not EVENT_CALL.match(m.group(1)) and not any(re.fullmatch(r"(\w+\.)?EventType(Warning|Normal)", a) for a in args):
                    continue
                types = [i for i, a in enumerate(args) if event_type(a) or re.fullmatch(r"\w*[eE]vent[tT]ype\w*", a)]
                if not types or types[0] + 1 >= len(args):
                    continue
                ti = types[0]
                obj = args[ti - 1] if ti > 0 else "-"
                if m.group(1) == "Eventf" and ti == 2:
                    obj = args[0]  # events.k8s.io: Eventf(regarding, related, type, reason, ...)
                emit(event_type(args[ti]) or "?type", args[ti + 1], obj, path, rel, line, text)


if __name__ == "__main__":
    main(sys.argv[1:])

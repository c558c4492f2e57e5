#!/usr/bin/env python3
"""Runs the real `wxsim run` as a user does: the main job (scenarios/
zone-outage.yaml) passes and writes report.json / history.jsonl /
timing.json; the same seed gives the same report.json bytes and trace hash;
a failing scenario exits 1 with a reproduction line that reproduces it; every
malformed scenario file exits 2 with `file:line:column: ...` and nothing
crashes; --check and --check-determinism."""
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

wxsim, source = sys.argv[1], sys.argv[2]
failures = []
checks = 0


def run(*args, cwd=None):
    return subprocess.run([wxsim, *args], capture_output=True, text=True, timeout=600, cwd=cwd)


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)


zone_outage = os.path.join(source, "scenarios/zone-outage.yaml")
with tempfile.TemporaryDirectory() as tmp:
    out_a, out_b = os.path.join(tmp, "a"), os.path.join(tmp, "b")
    a = run("run", zone_outage, "--out", out_a)
    check(a.returncode == 0, f"zone-outage exit {a.returncode}: {a.stderr}\n{a.stdout}")
    for phase in ["before", "during", "after"]:
        check(re.search(rf"^\s+{phase}\s+\S+\s+\d+/\d+", a.stdout, re.M) is not None, f"no '{phase}' phase row")
    check("fault: kill_zone b" in a.stdout and "healed: kill_zone b" in a.stdout, "timeline lacks the zone outage")
    m = re.search(r"^PASS — trace hash ([0-9a-f]{16})", a.stdout, re.M)
    check(m is not None, "no PASS line with the trace hash")
    try:
        with open(os.path.join(out_a, "report.json")) as f:
            report = json.load(f)
        check(report["seed"] == 1 and report["passed"] is True, "report.json: seed/passed")
        check(m is not None and report["trace_hash"] == m.group(1), "report.json trace_hash differs from the summary")
        names = {e["name"]: e for e in report["expectations"]}
        for n in ["no_loss", "no_duplicates", "order", "convergence", "unique_ids", "no_cross_user_access",
                  "converge_within", "availability.during", "latency_p99.after"]:
            check(n in names and names[n]["passed"] and names[n]["evidence"], f"report.json: expectation {n}")
        check([p["phase"] for p in report["phases"]] == ["before", "during", "after"], "report.json: phases")
        with open(os.path.join(out_a, "history.jsonl")) as f:
            events = [json.loads(l) for l in f if l.strip()]
        check(len(events) == report["checker"]["events"], "history.jsonl has the checker's events")
        with open(os.path.join(out_a, "timing.json")) as f:
            check(json.load(f)["wall_seconds"] > 0, "timing.json wall_seconds")
    except (OSError, ValueError, KeyError) as e:
        check(False, f"run files unreadable: {e!r}")
    # trace.json: trace-event JSON naming every server node on its own track,
    # RPC flow arrows, the fault as a global marker. metrics.csv: per-second
    # counters per zone and service.
    try:
        with open(os.path.join(out_a, "trace.json")) as f:
            trace = json.load(f)
        events = trace["traceEvents"]
        threads = {e["args"]["name"] for e in events if e.get("ph") == "M" and e.get("name") == "thread_name"}
        servers = [f"kv-dc1-s0-{z}" for z in "abc"] + [f"{r}-dc1-{z}" for r in
                   ["seqsvr", "account", "contacts", "inbox", "msg", "access", "group", "fanout"] for z in "abc"]
        missing = [n for n in servers if n not in threads]
        check(not missing, f"trace.json does not name nodes {missing}")
        starts = {e["id"] for e in events if e.get("ph") == "s"}
        ends = {e["id"] for e in events if e.get("ph") == "f"}
        check(len(starts) > 1000 and starts == ends, f"trace.json flows: {len(starts)} starts, {len(ends)} ends")
        check(any(e.get("ph") == "i" and e.get("s") == "g" and "zone:dc1/b" in e.get("name", "") for e in events),
              "trace.json has no global marker for the zone outage")
        check(trace["otherData"]["trace_hash"] == report["trace_hash"], "trace.json otherData.trace_hash")
        with open(os.path.join(out_a, "metrics.csv")) as f:
            rows = [l.rstrip("\n").split(",") for l in f]
        check(rows[0] == ["second", "datacenter", "zone", "service", "counter", "value"], f"metrics.csv header {rows[0]}")
        services = {(r[2], r[3]) for r in rows[1:]}
        check(all((z, "msg") in services and (z, "kv") in services for z in "abc"), "metrics.csv lacks msg/kv per zone")
        sends_ok = sum(int(r[5]) for r in rows[1:] if r[4] == "sends_ok")
        check(sends_ok > 0, "metrics.csv has no client sends_ok")
    except (OSError, ValueError, KeyError, IndexError, NameError) as e:
        check(False, f"trace.json / metrics.csv unreadable: {e!r}")
    b = run("run", zone_outage, "--out", out_b, "--quiet")
    check(b.returncode == 0, f"second run exit {b.returncode}")
    for name in ["report.json", "trace.json", "metrics.csv", "history.jsonl"]:
        try:
            with open(os.path.join(out_a, name), "rb") as fa, open(os.path.join(out_b, name), "rb") as fb:
                check(fa.read() == fb.read(), f"same seed, different {name} bytes")
        except OSError as e:
            check(False, f"{name} missing: {e}")
    c = run("run", zone_outage, "--seed", "2", "--quiet")
    mc = re.search(r"trace ([0-9a-f]{16})", c.stdout)
    check(c.returncode == 0 and mc is not None and m is not None and mc.group(1) != m.group(1),
          f"seed 2: exit {c.returncode}, same hash as seed 1? {c.stdout}")

    # A small scenario for the rest.
    small = os.path.join(tmp, "small.yaml")
    with open(small, "w") as f:
        f.write("name: small\nworkload: {users: 20, groups: 2, rate: 4/min, duration: 40s}\n"
                "faults:\n  - {at: 10s, for: 10s, kill_zone: a}\n")
    d = run("run", small, "--check-determinism")
    check(d.returncode == 0 and "deterministic: two runs of seed 1" in d.stdout, f"--check-determinism: {d.stdout}")
    k = run("run", small, "--check")
    check(k.returncode == 0 and "is valid" in k.stdout, f"--check: {k.returncode} {k.stdout}")

    # The planted bug: exit 1, a reproduction line, and it reproduces.
    bug = os.path.join(source, "tests/scenarios/ack_before_commit_swarm.yaml")
    f1 = run("run", bug, "--seed", "1", "--swarm")
    check(f1.returncode == 1, f"planted bug: exit {f1.returncode}, expected 1")
    check("FAIL no_loss" in re.sub(r"\s+", " ", f1.stdout), "planted bug: no_loss not failed")
    rep = re.search(r"^reproduce: wxsim run (\S+) --seed (\d+) --swarm$", f1.stdout, re.M)
    h1 = re.search(r"^FAIL — trace hash ([0-9a-f]{16})", f1.stdout, re.M)
    check(rep is not None and h1 is not None, "planted bug: no reproduction line or hash")
    if rep and h1:
        f2 = run("run", rep.group(1), "--seed", rep.group(2), "--swarm", "--quiet")
        check(f2.returncode == 1 and h1.group(1) in f2.stdout, f"reproduction differs: {f2.stdout}")

# Every malformed scenario: exit 2, file:line:column (or file:) first, no crash.
bad = sorted(glob.glob(os.path.join(source, "tests/scenarios/malformed/*.yaml")))
check(len(bad) >= 20, f"only {len(bad)} malformed files")
for path in bad:
    r = run("run", path)
    check(r.returncode == 2, f"{os.path.basename(path)}: exit {r.returncode}, expected 2 ({r.stderr!r})")
    check(re.match(re.escape(path) + r":(\d+:\d+:)? \S", r.stderr) is not None,
          f"{os.path.basename(path)}: error does not start with the file and position: {r.stderr!r}")
    check(r.stdout == "", f"{os.path.basename(path)}: printed a summary for a bad file")

for args, what in [(["run", "/nonexistent.yaml"], "cannot open"),
                   (["run", zone_outage, "--seed", "x"], "--seed"),
                   (["run", zone_outage, "--log-level", "loud"], "--log-level"),
                   (["run", zone_outage, "--out", "/proc/forbidden/dir"], "--out"),
                   (["run"], "scenario")]:
    r = run(*args)
    check(r.returncode == 2, f"{args}: exit {r.returncode}, expected 2")
    check(what in r.stderr, f"{args}: error does not say {what!r}: {r.stderr!r}")

for f in failures:
    print("FAIL:", f)
print(f"{checks - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)

#!/usr/bin/env python3
"""Runs the real wxsim binary: the main job (`wxsim demo`, messaging through a
zone outage judged by the messaging checker) passes, is deterministic and
reports what it claims; bad arguments fail with exit 2 and a message naming
the flag."""
import json
import os
import re
import subprocess
import sys
import tempfile

wxsim = sys.argv[1]
failures = []
checks = 0


def run(*args):
    return subprocess.run([wxsim, *args], capture_output=True, text=True, timeout=240)


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)


def deterministic_part(stdout):
    # The speed line is wall-clock time: everything else must be identical.
    return "\n".join(l for l in stdout.splitlines() if not l.startswith("simulated "))


CHECKS = ["lost", "duplicated", "order", "convergence", "origin", "history"]

# The default scenario, as ./scripts/main.sh runs it.
d = run("demo")
check(d.returncode == 0, f"default demo exit {d.returncode}: {d.stderr}\n{d.stdout}")
for name in CHECKS:
    check(re.search(rf"^\s+{name}\s+pass$", d.stdout, re.M) is not None, f"default demo: check '{name}' not 'pass'")
check("checker (checkers::messaging" in d.stdout and ": PASS" in d.stdout, "default demo: no overall PASS")
check("zone b loses power" in d.stdout and "zone b restored" in d.stdout, "default demo: timeline missing the outage")
for phase in ["before", "during", "after"]:
    check(re.search(rf"^\s+{phase}\s+\S+\s+\d+/\d+", d.stdout, re.M) is not None, f"default demo: no '{phase}' phase row")
check("200 users" in d.stdout and "10 group chats" in d.stdout, "default demo: set-up not shown")
m = re.search(r"messages: (\d+) sent, (\d+) acknowledged", d.stdout)
check(m is not None and int(m.group(1)) > 1000 and int(m.group(2)) > 0, "default demo: too few messages sent/acknowledged")
check(re.search(r"simulated [0-9.]+s in [0-9.]+s wall: [0-9.]+ simulated s per wall s, \d+ events", d.stdout)
      is not None, "default demo: no simulation speed")
check(re.search(r"reproduce:\s+wxsim demo --seed 42 --users 200 --groups 10 --duration 3m", d.stdout) is not None,
      "default demo: no reproduce line")

# Determinism, on a smaller run.
small = ["--users", "30", "--groups", "3", "--duration", "30s", "--outage-start", "10s", "--outage-for", "10s"]
with tempfile.TemporaryDirectory() as tmp:
    hist = os.path.join(tmp, "h.jsonl")
    a = run("demo", "--seed", "7", *small, "--history-out", hist)
    b = run("demo", "--seed", "7", *small)
    c = run("demo", "--seed", "8", *small)
    check(a.returncode == 0 and b.returncode == 0 and c.returncode == 0,
          f"small demo exits {a.returncode} {b.returncode} {c.returncode}: {a.stderr} {c.stderr}")
    hash_a = re.search(r"trace hash: ([0-9a-f]{16})", a.stdout)
    hash_b = re.search(r"trace hash: ([0-9a-f]{16})", b.stdout)
    hash_c = re.search(r"trace hash: ([0-9a-f]{16})", c.stdout)
    check(hash_a is not None and hash_b is not None and hash_c is not None, "report has no trace hash")
    if hash_a and hash_b and hash_c:
        check(hash_a.group(1) == hash_b.group(1), "same seed gave different trace hashes")
        check(hash_a.group(1) != hash_c.group(1), "different seeds gave the same trace hash")
    a_report = deterministic_part(a.stdout)
    a_report = "\n".join(l for l in a_report.splitlines() if not l.startswith("history:"))
    check(a_report == deterministic_part(b.stdout), "same seed gave different reports")
    check(re.search(r"reproduce:\s+wxsim demo --seed 7 --users 30 --groups 3", a.stdout) is not None,
          "no reproduce line")
    # The history file: JSON lines, one event each, as many as the checker judged.
    events = re.search(r"checker \(checkers::messaging over (\d+) recorded events\)", a.stdout)
    try:
        with open(hist) as f:
            lines = [l for l in f.read().splitlines() if l.strip()]
        parsed = [json.loads(l) for l in lines]
        check(events is not None and len(parsed) == int(events.group(1)),
              f"history file has {len(parsed)} events, the report says {events and events.group(1)}")
    except (OSError, ValueError) as e:
        check(False, f"--history-out file unreadable: {e}")

# Churn: users go offline and come back; everyone is back for the final
# states, so the checker still passes; the flags are in the reproduce line.
ch = run("demo", "--seed", "7", *small, "--churn-online", "10s", "--churn-offline", "5s")
check(ch.returncode == 0, f"churn demo exit {ch.returncode}: {ch.stderr}\n{ch.stdout}")
m = re.search(r"^churn: .*: (\d+) offline periods, (\d+) returns", ch.stdout, re.M)
check(m is not None and int(m.group(1)) > 0 and int(m.group(2)) > 0, "churn demo: no churn line or no churn")
check("--churn-online 10s --churn-offline 5s" in ch.stdout, "churn demo: flags missing from the reproduce line")
check("churn:" not in a.stdout, "a demo without churn flags reports churn")

for args, flag in [(["demo", "--duration", "10"], "--duration"),
                   (["demo", "--duration", "5s"], "--duration"),
                   (["demo", "--users", "1"], "--users"),
                   (["demo", "--users", "many"], "--users"),
                   (["demo", "--groups", "-1"], "--groups"),
                   (["demo", "--seed", "x"], "--seed"),
                   (["demo", "--rate", "-1"], "--rate"),
                   (["demo", "--rate", "0"], "--rate"),
                   (["demo", "--outage-start", "5m"], "--outage-start"),
                   (["demo", "--outage-for", "0s"], "--outage-for"),
                   (["demo", "--outage-start", "2m", "--outage-for", "2m"], "--outage-for"),
                   (["demo", "--zone", "d"], "--zone"),
                   (["demo", "--history-out", "/nonexistent-dir/h.jsonl"], "--history-out"),
                   (["demo", "--trace-out", "/nonexistent-dir/t.txt"], "--trace-out"),
                   (["demo", "--log-level", "loud"], "--log-level"),
                   (["demo", "--churn-online", "soon"], "--churn-online"),
                   (["demo", "--churn-online", "1m"], "--churn-offline")]:
    r = run(*args)
    check(r.returncode == 2, f"{args}: exit {r.returncode}, expected 2")
    check(flag in r.stderr, f"{args}: error does not name {flag}: {r.stderr!r}")

r = run("--version")
check(r.returncode == 0 and r.stdout.startswith("wxsim "), f"--version: {r.returncode} {r.stdout!r}")
r = run("--help")
check(r.returncode == 0 and "demo" in r.stdout and "node" in r.stdout, "--help lists demo and node")
r = run("frobnicate")
check(r.returncode != 0, "an unknown subcommand must fail")
r = run()
check(r.returncode != 0, "no subcommand must fail")

for f in failures:
    print("FAIL:", f)
print(f"{checks - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)

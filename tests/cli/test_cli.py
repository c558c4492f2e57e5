#!/usr/bin/env python3
"""Runs the real wxsim binary: the main job is deterministic and reports what
it claims; bad arguments fail with a message naming the flag."""
import re
import subprocess
import sys

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


a = run("demo", "--seed", "7", "--duration", "4s")
b = run("demo", "--seed", "7", "--duration", "4s")
c = run("demo", "--seed", "8", "--duration", "4s")
check(a.returncode == 0, f"demo exit {a.returncode}: {a.stderr}")
check(a.stdout == b.stdout, "same seed gave different reports")
hash_a = re.search(r"trace hash: ([0-9a-f]{16})", a.stdout)
hash_c = re.search(r"trace hash: ([0-9a-f]{16})", c.stdout)
check(hash_a is not None and hash_c is not None, "report has no trace hash")
if hash_a and hash_c:
    check(hash_a.group(1) != hash_c.group(1), "different seeds gave the same trace hash")
check("zone sh-b loses power" in a.stdout, "timeline missing the zone outage")
overall = re.search(r"overall ([0-9.]+)", a.stdout)
check(overall is not None, "report has no overall availability")
if overall:
    # With fail-over on, the surviving clients ride through every fault.
    check(float(overall.group(1)) >= 0.99, f"availability with fail-over {overall.group(1)} < 0.99")
check(re.search(r"reproduce:\s+wxsim demo --seed 7", a.stdout) is not None, "no reproduce line")

no_failover = run("demo", "--seed", "7", "--duration", "10s", "--attempts", "1")
overall_nf = re.search(r"overall ([0-9.]+)", no_failover.stdout)
check(overall_nf is not None and float(overall_nf.group(1)) < 1.0,
      "without fail-over the partition should cost some calls")

for args, flag in [(["demo", "--duration", "10"], "--duration"),
                   (["demo", "--duration", "0.5s"], "--duration"),
                   (["demo", "--rate", "-1"], "--rate"),
                   (["demo", "--attempts", "0"], "--attempts"),
                   (["demo", "--log-level", "loud"], "--log-level")]:
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

#!/usr/bin/env python3
"""Runs a command and checks both its outcome and its output.

  expect.py --fail|--pass [--match REGEX]... [--no-match REGEX]... [--remove PATHS] -- CMD...

Passes only if CMD exits non-zero (--fail) or zero (--pass) AND its combined
output matches every --match and no --no-match. A planted seam violation must
fail the build *and* name the file and the reason; an exit status or a
message alone is not enough (a message in a passing build, or a failure for
another reason such as a compile error, is a test failure). --remove deletes
files first (';'-separated), e.g. a target's objects and archive, so that a
build really runs its checks again instead of finding the target up to date.
"""
import os
import re
import subprocess
import sys

args = sys.argv[1:]
want_fail = None
match, no_match = [], []
while args and args[0] != "--":
    a = args.pop(0)
    if a == "--fail":
        want_fail = True
    elif a == "--pass":
        want_fail = False
    elif a == "--match":
        match.append(args.pop(0))
    elif a == "--no-match":
        no_match.append(args.pop(0))
    elif a == "--remove":
        for path in args.pop(0).split(";"):
            if path and os.path.exists(path):
                os.remove(path)
    else:
        sys.exit(f"expect.py: unknown option {a}")
if want_fail is None or not args:
    sys.exit("usage: expect.py --fail|--pass [--match RE]... [--no-match RE]... -- CMD...")
r = subprocess.run(args[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
print(r.stdout)
problems = []
if want_fail and r.returncode == 0:
    problems.append("the command succeeded; it had to fail")
if not want_fail and r.returncode != 0:
    problems.append(f"the command failed (exit {r.returncode}); it had to succeed")
for m in match:
    if not re.search(m, r.stdout, re.M):
        problems.append(f"output does not match: {m}")
for m in no_match:
    if re.search(m, r.stdout, re.M):
        problems.append(f"output matches what it must not: {m}")
for p in problems:
    print("EXPECTATION FAILED:", p)
sys.exit(1 if problems else 0)

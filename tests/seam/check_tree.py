#!/usr/bin/env python3
"""The real tree passes the seam checks that the build runs.

  check_tree.py --root SRC --build BIN [--lib LIB.a SOURCE_DIR 'a.cc|b.cc']...

Re-runs, outside the build, the same judges on the real node code:
seam_headers.py on every node translation unit of compile_commands.json
(the source files under nodes/, except nodes/prod/), and seam_symbols.py on
every node library passed with --lib (CMake passes all wxsim_node_library
targets under nodes/). It also checks the bookkeeping, so that it cannot pass
by judging nothing: every node source of those libraries is among the
translation units judged, each of them is compiled with WXSIM_NODE_CODE,
and there is at least one library and one unit.
"""
import concurrent.futures
import json
import os
import shlex
import sys

args = sys.argv[1:]
root = build = None
libs = []
while args:
    a = args.pop(0)
    if a == "--root":
        root = os.path.realpath(args.pop(0))
    elif a == "--build":
        build = os.path.realpath(args.pop(0))
    elif a == "--lib":
        libs.append((args.pop(0), args.pop(0), args.pop(0)))
    else:
        sys.exit(f"check_tree.py: unknown option {a}")
sys.dont_write_bytecode = True   # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(root, "scripts"))
import seam_headers  # noqa: E402
import seam_symbols  # noqa: E402

problems = []
units = []
with open(os.path.join(build, "compile_commands.json"), encoding="utf-8") as f:
    for e in json.load(f):
        path = os.path.realpath(os.path.join(e["directory"], e["file"]))
        rel = os.path.relpath(path, root)
        if not rel.startswith("nodes/") or rel.startswith("nodes/prod/"):
            continue
        cmd = e.get("arguments") or shlex.split(e["command"])
        if not any(a.startswith("-DWXSIM_NODE_CODE") for a in cmd):
            problems.append(f"{rel}: compiled without WXSIM_NODE_CODE (not a node library?)")
        units.append((rel, cmd, e["directory"]))


def judge(unit):
    rel, cmd, cwd = unit
    violations, rc, err = seam_headers.check(root, build, cmd, cwd)
    if rc != 0 and not violations:
        violations = [f"{rel}: does not preprocess:\n{err.decode('utf-8', 'replace')}"]
    return violations


with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
    for v in pool.map(judge, units):
        problems += v

judged = {rel for rel, _, _ in units}
for lib, source_dir, sources in libs:
    srcs = [s for s in sources.replace(";", "|").split("|") if s]
    for s in srcs:
        rel = os.path.relpath(os.path.realpath(os.path.join(source_dir, s)), root)
        if rel.endswith((".cc", ".cpp", ".cxx")) and rel not in judged:
            problems.append(f"{rel}: a source of {os.path.basename(lib)} that no header check judged")
    srcmap = seam_symbols.Sources(root, source_dir, srcs)
    try:
        problems += seam_symbols.check_archive(lib, srcmap)
    except (OSError, RuntimeError) as e:
        problems.append(f"{lib}: cannot be judged: {e}")

if not units:
    problems.append("no node translation unit found in compile_commands.json")
if not libs:
    problems.append("no node library given")
for p in problems:
    print(p)
print(f"seam tree check: {len(units)} node translation units, {len(libs)} node libraries, "
      f"{len(problems)} problem(s)")
sys.exit(1 if problems else 0)

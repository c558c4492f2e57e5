#!/usr/bin/env python3
"""Checks the Runtime seam: node code reaches the world only through its Runtime.

Usage: check_seam.py ROOT

Scans ROOT/nodes/ (every C++ source and header, except the production runtime
under nodes/prod/) and exits non-zero if any line includes Boost.Asio, sim/ or
nodes/prod/, a header for threads, <random>, files, clocks or the OS, or reads
a real clock, std::random_device, rand() or the environment. Each offence is
printed as `path:line: reason`. The build runs this before compiling any node
library (CMakeLists.txt, target seam_check), so a violating file fails the build.

This is the fast, readable first line: it names the line, and it sees headers
that no node translation unit compiles. It reads text, so spelling defeats it
(an include split by a backslash-newline, an include through a macro, a Boost
header that pulls Asio in, ::time() declared through <string>). The checks that
judge what is really compiled are scripts/seam_headers.py (the include tree the
compiler built) and scripts/seam_symbols.py (what the objects reference).
"""
import pathlib
import re
import sys

RULES = [
    (r'#\s*include\s*[<"](boost/)?asio', "includes Asio (only nodes/prod may)"),
    (r'#\s*include\s*"sim/', "includes the simulator (sim/)"),
    (r'#\s*include\s*"nodes/prod/', "includes the production runtime (nodes/prod/)"),
    (r'#\s*include\s*"(\.\./)+(prod|sim|nodes/prod)/',
     "includes the production runtime or the simulator by a relative path"),
    (r'#\s*include\s*<(thread|mutex|shared_mutex|future|condition_variable|stop_token|semaphore|'
     r'latch|barrier|random|filesystem|fstream|chrono|ctime|time\.h|unistd\.h|fcntl\.h|sys/|'
     r'netinet/|arpa/)',
     "includes a header for threads, <random>, files, clocks or the OS; use the Runtime"),
    (r'\b(system_clock|steady_clock|high_resolution_clock)\b', "reads a real clock; use Runtime::now()"),
    (r'\brandom_device\b', "uses std::random_device; use Runtime::rng()"),
    (r'(?<![\w:.>])s?rand\s*\(', "calls rand()/srand(); use Runtime::rng()"),
    (r'\b(secure_)?getenv\s*\(', "reads the environment"),
    (r'std::(this_thread|thread|jthread)\b', "uses threads; node code is single-threaded"),
    (r'(?<![\w.>])(::|std::)?(fopen|freopen|popen|gettimeofday|clock_gettime|usleep|nanosleep)\s*\(',
     "calls the OS directly (files, time); use the Runtime"),
    (r'(?<![\w.>])(::|std::)(open|socket|connect|time|sleep|system)\s*\(',
     "calls the OS directly (files, sockets, time); use the Runtime"),
    (r'(?<![\w.>])(::|std::)?time\s*\(\s*(nullptr|NULL|0)\s*\)', "reads the real clock; use Runtime::now()"),
    (r'\b(__builtin_ia32_rdtscp?|__rdtscp?|_rdtsc)\b', "reads the CPU time-stamp counter; use Runtime::now()"),
    (r'(?<![\w.>])(::|std::|fmt::)?(localtime|gmtime)(_r|_s)?\s*\(', "reads calendar time in the host's zone"),
    (r'(?<![\w.>])(::)?pthread_\w+\s*\(', "uses POSIX threads; node code is single-threaded"),
]
COMPILED = [(re.compile(p), why) for p, why in RULES]
SUFFIXES = {".h", ".hh", ".hpp", ".cc", ".cpp", ".cxx", ".ipp", ".inc"}


def strip_comments(text):
    """Blanks out comments and string literals, keeping line structure."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("".join("\n" if ch == "\n" else " " for ch in text[i:j]))
            i = j
        elif c == '"' and not _in_include(text, i):
            j = i + 1
            while j < n and text[j] != '"' and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append('"' + " " * (min(j, n) - i - 1) + ('"' if j < n and text[j] == '"' else ""))
            i = j + 1 if j < n and text[j] == '"' else j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _in_include(text, i):
    line_start = text.rfind("\n", 0, i) + 1
    return re.match(r'\s*#\s*include\s*$', text[line_start:i]) is not None


def check(root):
    root = pathlib.Path(root)
    nodes = root / "nodes"
    if not nodes.is_dir():
        print(f"check_seam: {nodes} is not a directory", file=sys.stderr)
        return 2
    offences = 0
    for path in sorted(p for p in nodes.rglob("*") if p.suffix in SUFFIXES and p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("nodes/prod/"):
            continue
        text = strip_comments(path.read_text(encoding="utf-8", errors="replace"))
        for lineno, line in enumerate(text.splitlines(), 1):
            for rx, why in COMPILED:
                if rx.search(line):
                    print(f"{rel}:{lineno}: seam violation: {why}\n    {line.strip()}")
                    offences += 1
    if offences:
        print(f"seam check failed: {offences} violation(s) under nodes/ "
              "(docs/architecture.md, 'The seam')", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: check_seam.py ROOT", file=sys.stderr)
        sys.exit(2)
    sys.exit(check(sys.argv[1]))

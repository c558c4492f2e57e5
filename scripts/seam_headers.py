#!/usr/bin/env python3
"""Seam check, headers: judges what the compiler actually includes in node code.

Usage (the build uses the first form: CMake sets it as the compiler launcher
of every node target, see wxsim_node_library() in the top CMakeLists.txt):

  seam_headers.py --root SRC --build BIN -- <compiler> <args...> -c FILE -o OBJ
  seam_headers.py --root SRC --build BIN --check-only -- <compiler> <args...>

Before each node translation unit compiles, the same compiler command is run
once more as a preprocessor (`-E -dI`: the preprocessed text with line
markers, plus every `#include` directive exactly as the compiler executed it,
after macro expansion and line splicing). Then the include tree is rebuilt
from the line markers and judged. On any violation the unit is not compiled:
the step prints `path:line: seam violation: includes X (reason)` and fails.
With --check-only the unit is judged and not compiled (tests, tree check).

Because the judge reads the compiler's own view, spelling does not matter:
`#include "../prod/x.h"`, an include split by a backslash-newline, an include
through a macro (`#define H <thread>` / `#include H`), an include inside a
node header — all arrive as the file the compiler opened.

Who counts as node code: the translation unit itself (the launcher is set on
node targets only), every file under SRC/nodes/ except SRC/nodes/prod/, and
the protobuf headers generated from them (BIN/nodes/, except BIN/nodes/prod/).

The rule for transitive includes:

1. Anywhere in the include tree, at any depth, no matter who includes it:
   * a header under sim/ (the simulator),
   * a header under nodes/prod/ (source or generated: the production runtime),
   * an Asio header (boost/asio*, asio.hpp, asio/).
   These are whole subsystems that bring sockets, timers and threads; a node
   file that reaches one through a third-party header (`<boost/beast/core.hpp>`,
   `<boost/process.hpp>`) is reported at its own include line, with the chain.
2. Included *directly by node code* (the includer is node code): headers for
   threads and locks, clocks and calendars, OS randomness, files, the OS
   (unistd.h, sys/*, sockets, signals, dynamic loading), CPU intrinsics that
   read the time-stamp counter, fmt's chrono/os parts, and the Boost
   libraries for threads, processes, files and clocks; also any project
   header outside nodes/ (cli/, tests/, bench/…: not judged as node code).
   The same headers reached *transitively through a system or third-party
   header* are allowed: libstdc++'s <memory>, <atomic> and <iostream> pull
   in gthr and <pthread.h> (and with it <time.h>), protobuf's headers include
   <mutex> and <atomic>, fmt includes <cstdio>. Refusing those would refuse
   the standard library itself (nodes/runtime/runtime.h includes <memory>).
   What such a header declares is only dangerous when node code calls it,
   and calls are judged by the symbol check (scripts/seam_symbols.py) on the
   compiled node libraries: a node file that calls ::time() declared through
   <memory> passes here and fails there.
3. The include tree must be honest. Every file the compiler enters has to be
   explained by an `#include` the compiler executed; a GNU line marker
   (`# 1 "/usr/include/c++/12/string" 1`) or `#line N "other-file"` written in
   node code, which would make node code look like a system header, is itself
   a violation.

A directive that the compiler skips because the header was already included
(include guard / #pragma once) still appears in the `-dI` output with its
includer, so `#include <pthread.h>` in a node file is caught even when
<memory> has already pulled pthread.h in. Directives in `#if 0` blocks are not
executed and are not judged (the line scanner, scripts/check_seam.py, still
sees them). Headers in nodes/ that no node translation unit includes are not
compiled and are judged only by the line scanner.
"""
import os
import re
import subprocess
import sys

# --- what is judged ----------------------------------------------------------

ASIO_REASON = ("Asio: sockets, timers and threads of the production runtime; "
               "only nodes/prod may use it")
SIM_REASON = "the simulator; node code reaches it only through the Runtime seam"
PROD_REASON = ("the production runtime; node code reaches the world only through "
               "Runtime")
OUTSIDE_REASON = ("a project header outside nodes/; node code may include only node "
                  "headers (nodes/, except nodes/prod/)")

# Included directly by node code: (pattern on a logical header name, reason).
# A logical name is what follows an include directory: "thread", "sys/socket.h",
# "boost/process.hpp". Patterns are anchored at both ends.
_DIRECT = [
    (r"thread|mutex|shared_mutex|condition_variable|future|stop_token|semaphore|latch|"
     r"barrier|execution|pthread\.h|threads\.h|sched\.h|"
     r"bits/(std_thread|std_mutex|unique_lock|gthr[\w-]*|atomic_timed_wait|"
     r"atomic_wait|semaphore_base|this_thread_sleep)\.h|"
     r"boost/(thread|fiber|coroutine2?|context)(\.hpp|/.*)",
     "threads and locks; node code is single-threaded: use Runtime::spawn() and Channel"),
    (r"chrono|ctime|time\.h|sys/time\.h|sys/timeb\.h|sys/times\.h|bits/chrono\.h|"
     r"boost/(chrono|date_time|timer)(\.hpp|/.*)|fmt/chrono\.h",
     "clocks and calendar time; use Runtime::now() and wx::Duration"),
    (r"random|bits/random\.h|sys/random\.h|openssl/rand\.h|boost/(nondet_random\.hpp|"
     r"random/random_device\.hpp|uuid/random_generator\.hpp)",
     "OS randomness and <random>'s engines; use Runtime::rng() (nodes/runtime/random.h)"),
    (r"filesystem|fstream|bits/fs_\w+\.h|bits/fstream\.tcc|fcntl\.h|dirent\.h|stdio_ext\.h|"
     r"boost/(filesystem|iostreams)(\.hpp|/.*)|fmt/os\.h",
     "files; a node's only storage is Runtime::disk()"),
    (r"unistd\.h|sys/.*|netinet/.*|arpa/.*|net/.*|netdb\.h|ifaddrs\.h|poll\.h|signal\.h|"
     r"csignal|dlfcn\.h|spawn\.h|syscall\.h|linux/.*|asm/.*|termios\.h|pwd\.h|grp\.h|"
     r"openssl/(ssl|bio|http)\.h|boost/(process|interprocess|beast|dll|stacktrace)(\.hpp|/.*)",
     "the OS (processes, sockets, signals, system calls); use the Runtime"),
    (r"x86intrin\.h|ia32intrin\.h|immintrin\.h|x86gprintrin\.h|cpuid\.h|intrin\.h",
     "CPU intrinsics (time-stamp counter, hardware random numbers)"),
]
DIRECT = [(re.compile(r"(?:%s)\Z" % p), why) for p, why in _DIRECT]
ASIO_PATH = re.compile(r"(^|/)(boost/asio(\.hpp$|/)|asio\.hpp$|asio/)")

MARKER = re.compile(rb'# (\d+) "((?:[^"\\]|\\.)*)"((?: \d)*)$')
DIRECTIVE = re.compile(rb'#\s*(include|include_next|import)\s*([<"])(.*)[>"]\s*$')
HASH_LINE = re.compile(rb"^#[^\n]*", re.M)


class Frame:
    """A file on the include stack, with the state needed to give line numbers."""
    __slots__ = ("path", "node", "line", "pos", "via", "pending")

    def __init__(self, path, node, line, pos, via):
        self.path = path          # normalised absolute path
        self.node = node          # node code?
        self.line = line          # line number of the text starting at `pos`
        self.pos = pos
        self.via = via            # the directive (dict) that entered this file, or None
        self.pending = None       # last directive executed in this file, not yet entered


class Judge:
    def __init__(self, root, build, main, cwd, include_dirs):
        self.root = os.path.realpath(root)
        self.build = os.path.realpath(build)
        self.main = self._norm(main, cwd)
        self.cwd = cwd
        self.include_dirs = include_dirs
        self.violations = {}      # (path, line) -> message; the first one wins
        self._real = {}

    # -- paths --
    @staticmethod
    def _norm(path, cwd):
        return os.path.normpath(os.path.join(cwd, path))

    def real(self, path):
        r = self._real.get(path)
        if r is None:
            r = os.path.realpath(path)
            self._real[path] = r
        return r

    @staticmethod
    def _under(path, top):
        return path == top or path.startswith(top + os.sep)

    def project_rel(self, path):
        """(kind, relative path) for project files, else (None, None).
        kind is 'build' (generated, under BIN) or 'source' (under SRC)."""
        r = self.real(path)
        if self._under(r, self.build):
            return "build", os.path.relpath(r, self.build)
        if self._under(r, self.root):
            return "source", os.path.relpath(r, self.root)
        return None, None

    def shown(self, path):
        kind, rel = self.project_rel(path)
        if kind == "source":
            return rel
        if kind == "build":
            return rel + " (generated)"
        best = None
        for d in self.include_dirs:
            if path.startswith(d + os.sep) and (best is None or len(d) > len(best)):
                best = d
        return f"<{path[len(best) + 1:]}>" if best else path

    def is_node(self, path):
        if path == self.main:
            return True
        kind, rel = self.project_rel(path)
        return kind is not None and rel.startswith("nodes/") and not rel.startswith("nodes/prod/")

    # -- the rules --
    def anywhere(self, path):
        """Rule 1: a reason if `path` may not appear anywhere below node code."""
        kind, rel = self.project_rel(path)
        if kind is not None:
            if kind == "source" and rel.startswith("sim/"):
                return SIM_REASON
            if rel.startswith("nodes/prod/"):
                return PROD_REASON
            return None
        if ASIO_PATH.search(self.real(path)) or ASIO_PATH.search(path):
            return ASIO_REASON
        return None

    def direct(self, path, spelled, angle):
        """Rule 2: a reason if node code may not include this header itself."""
        why = self.anywhere(path) if path else None
        if why:
            return why
        if path:
            kind, rel = self.project_rel(path)
            if kind is not None:
                if not self.is_node(path):
                    return OUTSIDE_REASON
                return None
        names = []
        if angle and not spelled.startswith("/"):
            names.append(os.path.normpath(spelled))
        if path:
            parts = self.real(path).split(os.sep)
            names += ["/".join(parts[i:]) for i in range(1, len(parts))]
        elif not angle:
            parts = os.path.normpath(spelled).split("/")
            names += ["/".join(parts[i:]) for i in range(len(parts)) if parts[i] != ".."]
        for name in names:
            if ASIO_PATH.search(name):
                return ASIO_REASON
            for rx, why in DIRECT:
                if rx.match(name):
                    return why
        return None

    def resolve_skipped(self, spelled, angle, includer, entered):
        """The file a directive named when the compiler skipped it (already
        included): the first candidate on the search path that exists."""
        cands = []
        if not angle:
            cands.append(os.path.join(os.path.dirname(includer), spelled))
        cands += [os.path.join(d, spelled) for d in self.include_dirs]
        for c in cands:
            c = os.path.normpath(c)
            if c in entered or os.path.isfile(c):
                return c
        return None

    # -- reporting --
    def report(self, frame_path, line, text):
        key = (frame_path, line)
        if key not in self.violations:
            self.violations[key] = f"{self.shown(frame_path)}:{line}: seam violation: {text}"

    def parse(self, out):
        """Walks the `-E -dI` output, keeping the real include stack."""
        stack = [Frame(self.main, True, 1, 0, None)]
        prelude = True
        entered = {self.main}
        for m in HASH_LINE.finditer(out):
            text = m.group(0)
            top = stack[-1]
            mk = MARKER.match(text)
            if mk:
                num = int(mk.group(1))
                name = mk.group(2).decode("utf-8", "replace").replace('\\"', '"').replace("\\\\", "\\")
                flags = mk.group(3).split()
                nxt = m.end() + 1
                if b"1" in flags:
                    path = self._norm(name, self.cwd)
                    via = top.pending
                    top.pending = None
                    if via is not None:
                        via["path"] = path
                    elif not prelude and top.node:
                        self.report(top.path, self._line(top, out, m.start()),
                                    f'enters "{name}" with a line marker, not an #include '
                                    "(a GNU line marker written in node code hides the "
                                    "include tree)")
                    stack.append(Frame(path, not prelude and self.is_node(path), num, nxt, via))
                    entered.add(path)
                    self._judge_entry(stack)
                elif b"2" in flags:
                    if len(stack) == 1:
                        self.report(self.main, self._line(top, out, m.start()),
                                    "leaves the main file with a line marker (the include "
                                    "tree is forged)")
                        continue
                    stack.pop()
                    stack[-1].line, stack[-1].pos = num, nxt
                    stack[-1].pending = None
                else:
                    if name in ("<built-in>", "<command-line>"):
                        prelude = True
                    elif prelude and len(stack) == 1 and self._norm(name, self.cwd) == self.main:
                        prelude = False
                    elif not prelude and top.node and self._norm(name, self.cwd) != top.path:
                        self.report(top.path, self._line(top, out, m.start()),
                                    f'renames itself "{name}" with #line (node code may not '
                                    "pose as another file)")
                    top.line, top.pos = num, nxt
                continue
            dv = DIRECTIVE.match(text)
            if dv:
                spelled = dv.group(3).decode("utf-8", "replace")
                angle = dv.group(2) == b"<"
                d = {"includer": top.path, "line": self._line(top, out, m.start()),
                     "shown": f"<{spelled}>" if angle else f'"{spelled}"',
                     "spelled": spelled, "angle": angle, "path": None}
                top.pending = d
                if top.node and not prelude:
                    self._directives.append(d)
            else:
                top.pending = None    # a pragma or other text between directive and entry
        return entered

    def _line(self, frame, out, pos):
        return frame.line + out.count(b"\n", frame.pos, pos)

    def _judge_entry(self, stack):
        """Rule 1 at any depth, reported at the innermost node frame."""
        frame = stack[-1]
        why = self.anywhere(frame.path)
        if not why:
            return
        # the innermost node file on the stack below this one, and its directive
        for i in range(len(stack) - 2, -1, -1):
            if stack[i].node:
                first = stack[i + 1]
                chain = [self.shown(f.path) for f in stack[i + 1:]]
                shown = first.via["shown"] if first.via else self.shown(first.path)
                line = first.via["line"] if first.via else 1
                what = f"includes {shown}"
                if first.via and chain[0].strip("<>") != first.via["spelled"]:
                    what += f" = {chain[0]}"
                if len(chain) > 2:
                    what += f", which pulls in {chain[-1]} (through {chain[-2]})"
                elif len(chain) == 2:
                    what += f", which pulls in {chain[-1]}"
                self.report(stack[i].path, line, f"{what} ({why})")
                return

    def scan_line_directives(self, path):
        """Rule 3 at the source: `#line` or a GNU line marker in a node file."""
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            return
        if "line" not in text and not re.search(r"(#|%:)\s*\d", text):
            return
        for lineno, line in _logical_lines(text):
            if LINE_DIRECTIVE.match(line):
                self.report(path, lineno, "uses #line or a GNU line marker (node code may not "
                            "rewrite the compiler's view of files and lines)")

    def run(self, out):
        self._directives = []
        entered = self.parse(out)
        # Rule 2 on every directive executed by node code. A directive that
        # entered a file knows it from the line marker that followed; one the
        # compiler skipped (already included) is resolved on the search path.
        for d in self._directives:
            includer, line = d["includer"], d["line"]
            if (includer, line) in self.violations:
                continue
            path = d["path"] or self.resolve_skipped(d["spelled"], d["angle"], includer, entered)
            why = self.direct(path, d["spelled"], d["angle"])
            if why:
                target = "" if path is None else self.shown(path)
                extra = f" = {target}" if target and target.strip("<>") != d["spelled"] else ""
                self.report(includer, line, f"includes {d['shown']}{extra} ({why})")
        for path in sorted(p for p in entered if self.is_node(p)):
            self.scan_line_directives(path)
        return [self.violations[k] for k in sorted(self.violations)]


LINE_DIRECTIVE = re.compile(r"\s*(#|%:)\s*(line\b|\d)")


def _logical_lines(text):
    """(first physical line number, text) of each logical line, with
    backslash-newlines spliced and comments blanked (strings kept intact)."""
    out, i, n, line, start = [], 0, len(text), 1, 1
    cur = []
    while i < n:
        c = text[i]
        if c == "\\" and text.startswith("\n", i + 1):
            i += 2
            line += 1
            continue
        if c == "\n":
            out.append((start, "".join(cur)))
            cur = []
            i += 1
            line += 1
            start = line
            continue
        if text.startswith("//", i):
            while i < n and text[i] != "\n":
                if text[i] == "\\" and text.startswith("\n", i + 1):
                    line += 1
                    i += 1
                i += 1
            continue
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            line += text.count("\n", i, j)
            cur.append(" ")
            i = j
            continue
        if c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            cur.append(text[i:j + 1])
            i = j + 1
            continue
        cur.append(c)
        i += 1
    out.append((start, "".join(cur)))
    return out


# --- the compiler command ----------------------------------------------------

_DROP_WITH_ARG = {"-o", "-MF", "-MT", "-MQ"}
_DROP = {"-c", "-MD", "-MMD", "-MP", "-M", "-MM", "-E", "-S"}


def preprocess_command(cmd):
    """The compile command turned into `-E -dI` with the same flags."""
    out, i = [], 0
    while i < len(cmd):
        a = cmd[i]
        if a in _DROP_WITH_ARG:
            i += 2
            continue
        if a in _DROP or a.startswith(("-MF", "-MT", "-MQ")) or (a.startswith("-o") and len(a) > 2):
            i += 1
            continue
        out.append(a)
        i += 1
    # -fno-working-directory: with -g, g++ otherwise writes a line marker
    # naming the build folder ("# 1 \"<cwd>//\"") after the first line, which
    # would read as the file renaming itself.
    return out + ["-E", "-dI", "-fno-working-directory"]


def source_of(cmd):
    for i, a in enumerate(cmd):
        if a == "-c" and i + 1 < len(cmd):
            return cmd[i + 1]
    srcs = [a for a in cmd[1:] if not a.startswith("-") and
            os.path.splitext(a)[1] in (".cc", ".cpp", ".cxx", ".c++", ".C")]
    return srcs[-1] if srcs else None


def include_dirs_of(cmd, cwd):
    dirs, i = [], 0
    while i < len(cmd):
        a = cmd[i]
        for flag in ("-I", "-isystem", "-iquote", "-idirafter"):
            if a == flag and i + 1 < len(cmd):
                dirs.append(os.path.normpath(os.path.join(cwd, cmd[i + 1])))
                i += 1
            elif a.startswith(flag) and len(a) > len(flag) and flag == "-I":
                dirs.append(os.path.normpath(os.path.join(cwd, a[2:])))
        i += 1
    return dirs


def default_include_dirs(compiler):
    """The compiler's built-in search list, asked once and cached in BIN."""
    try:
        r = subprocess.run([compiler, "-x", "c++", "-E", "-v", "-"], input=b"",
                           capture_output=True)
    except OSError:
        return []
    dirs, on = [], False
    for line in r.stderr.decode("utf-8", "replace").splitlines():
        if line.startswith("#include <...> search starts here"):
            on = True
        elif line.startswith("End of search list"):
            break
        elif on and line.startswith(" "):
            dirs.append(os.path.normpath(line.strip()))
    return dirs


def cached_default_dirs(build, compiler):
    cache = os.path.join(build, "CMakeFiles", "seam_include_dirs.txt")
    key = os.path.realpath(compiler) if os.path.sep in compiler else compiler
    try:
        with open(cache, encoding="utf-8") as f:
            lines = f.read().splitlines()
        if lines and lines[0] == key:
            return lines[1:]
    except OSError:
        pass
    dirs = default_include_dirs(compiler)
    try:
        tmp = f"{cache}.{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join([key] + dirs) + "\n")
        os.replace(tmp, cache)
    except OSError:
        pass
    return dirs


def check(root, build, cmd, cwd):
    """Returns (violations, preprocessor return code, preprocessor stderr)."""
    src = source_of(cmd)
    if src is None:
        return [f"seam_headers: cannot find the source file in: {' '.join(cmd)}"], 2, b""
    compiler = next((a for a in cmd if not a.startswith("-") and
                     os.path.basename(a) not in ("ccache", "sccache", "distcc")), cmd[0])
    dirs = include_dirs_of(cmd, cwd) + cached_default_dirs(build, compiler)
    r = subprocess.run(preprocess_command(cmd), capture_output=True, cwd=cwd)
    judge = Judge(root, build, src, cwd, dirs)
    return judge.run(r.stdout), r.returncode, r.stderr


def main(argv):
    args = argv[1:]
    root = build = None
    check_only = False
    while args and args[0] != "--":
        a = args.pop(0)
        if a == "--root":
            root = args.pop(0)
        elif a == "--build":
            build = args.pop(0)
        elif a == "--check-only":
            check_only = True
        else:
            print(f"seam_headers: unknown option {a}", file=sys.stderr)
            return 2
    if not args or root is None or build is None:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    cmd = args[1:]
    cwd = os.getcwd()
    violations, rc, err = check(root, build, cmd, cwd)
    if violations:
        for v in violations:
            print(v, file=sys.stderr)
        if rc != 0 and err:
            sys.stderr.write(err.decode("utf-8", "replace"))
        print(f"seam check (headers) failed: {len(violations)} violation(s); node code "
              "reaches time, timers, randomness, network and disk only through its Runtime "
              "(docs/architecture.md, 'The seam')", file=sys.stderr)
        return 1
    if check_only:
        if rc != 0:
            sys.stderr.write(err.decode("utf-8", "replace"))
        return rc
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    sys.exit(main(sys.argv))

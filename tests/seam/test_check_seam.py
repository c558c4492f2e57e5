#!/usr/bin/env python3
"""Plants seam violations in a scratch tree and checks that check_seam.py
rejects each one naming file and line, accepts clean node code, and ignores
the production runtime and comments."""
import pathlib
import subprocess
import sys
import tempfile

checker = sys.argv[1]

VIOLATIONS = {
    "asio.cc": '#include <boost/asio.hpp>\n',
    "asio2.h": '#include <boost/asio/ip/tcp.hpp>\n',
    "sim.cc": '#include "sim/kernel.h"\n',
    "prod.cc": '#include "nodes/prod/asio_runtime.h"\n',
    "thread.cc": '#include <thread>\n',
    "random.cc": '#include <random>\n',
    "files.cc": '#include <fstream>\n',
    "clock.cc": 'auto t = std::chrono::steady_clock::now();\n',
    "sysclock.cc": 'auto t = system_clock::now();\n',
    "rdev.cc": 'std::random_device rd;\n',
    "rand.cc": 'int x = rand();\n',
    "env.cc": 'auto p = getenv("HOME");\n',
    "fopen.cc": 'FILE* f = fopen("x", "r");\n',
    "thr.cc": 'std::thread t([]{});\n',
    "relprod.cc": '#include "../prod/asio_runtime.h"\n',
    "relsim.h": '#include "../../sim/kernel.h"\n',
    "time0.cc": 'long t = time(nullptr);\n',
    "rdtsc.cc": 'auto c = __builtin_ia32_rdtsc();\n',
    "localtime.cc": 'auto tm = fmt::localtime(t);\n',
    "pthread.cc": 'pthread_create(&t, nullptr, f, nullptr);\n',
}
CLEAN = (
    '// Mentions of std::thread, rand() and #include <thread> in comments are fine.\n'
    '#include "nodes/runtime/runtime.h"\n'
    'int f(wx::Runtime& rt) { auto d = rt.disk(); sqlite::Database::open("x"); return rt.rng().uniform(3); }\n'
    'const char* s = "std::thread in a string";\n'
    'int operand(int x) { return x; }\n'
    'Duration time() const; auto t = msg.time(); auto c = rt.clock(); int timer(0);\n'
)

failures = []
with tempfile.TemporaryDirectory() as tmp:
    root = pathlib.Path(tmp)
    (root / "nodes" / "clean").mkdir(parents=True)
    (root / "nodes" / "clean" / "ok.cc").write_text(CLEAN)
    (root / "nodes" / "prod").mkdir(parents=True)
    (root / "nodes" / "prod" / "runtime.cc").write_text('#include <boost/asio.hpp>\n#include <thread>\n')
    r = subprocess.run([sys.executable, checker, str(root)], capture_output=True, text=True)
    if r.returncode != 0:
        failures.append(f"clean tree rejected:\n{r.stdout}{r.stderr}")

    for name, line in VIOLATIONS.items():
        bad = root / "nodes" / "bad" / name
        bad.parent.mkdir(parents=True, exist_ok=True)
        bad.write_text("// a node file\n" + line)
        r = subprocess.run([sys.executable, checker, str(root)], capture_output=True, text=True)
        where = f"nodes/bad/{name}:2:"
        if r.returncode == 0:
            failures.append(f"{name}: violation not caught: {line.strip()}")
        elif where not in r.stdout:
            failures.append(f"{name}: error does not name {where}:\n{r.stdout}")
        bad.unlink()

for f in failures:
    print("FAIL:", f)
print(f"{len(VIOLATIONS) + 1 - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)

#!/usr/bin/env python3
"""Seam check, symbols: judges what compiled node code references.

Usage (the build runs it after archiving every node library: a POST_BUILD step
added by wxsim_node_library() in the top CMakeLists.txt):

  seam_symbols.py --root SRC [--source-dir DIR --sources 'a.cc|b.cc'] [--delete-on-failure] LIB.a...

Reads the undefined symbols of every object in the archive (`nm -A -P`,
demangled with c++filt) and its machine code (`objdump -d`), and fails if node
code calls the world behind the Runtime's back: the real clock, calendar time,
sleeping, threads, OS or libc randomness, the environment and processes, the
file system, sockets, raw system calls, or the CPU's time-stamp counter and
random-number instructions. Each offence prints
`path/source.cc: seam violation: references SYMBOL (reason) [libX.a]`. With --delete-on-failure the
archive is removed on failure, so the next build archives and judges it again
instead of treating it as up to date.

Why symbols: the header check (scripts/seam_headers.py) must allow what system
and third-party headers pull in transitively (<memory> brings <pthread.h> and
<time.h>, and nodes/runtime/runtime.h includes <memory>), so `::time(nullptr)`
compiles in a node file without any forbidden include. Only the compiled
object says whether node code calls it. And
`__builtin_ia32_rdtsc()` needs no header and no symbol at all: it is an
instruction, found by disassembly.

What this cannot see: code that is not in the node libraries (a template in
a node header instantiated only by a test), calls made through a function
pointer obtained at run time from an allowed API, and SQL text passed to
SQLite (e.g. ATTACH of a file, datetime('now'), random()). The line scanner
(scripts/check_seam.py) covers the first in part.

Allowed although they match the deny list (ALLOW below), each with its reason:
  * sqlite3_open_v2 in nodes/runtime/sqlite.cc: that file is the SQLite
    wrapper behind Runtime::disk(); its Database::open(uri) is called only by
    the two runtimes (sim/sim_disk.cc with a memdb URI, nodes/prod with a file
    in the node's data folder). Any other node object that references
    sqlite3_open* or wx::sqlite::Database::open is rejected.
Symbols that are not on the deny list pass: the C++ runtime (operator new,
exceptions, std::string, <algorithm>), libm, memcpy/strlen/snprintf, fmt's
formatting, protobuf and the other sqlite3_* calls (statements on the
Database the Runtime handed out). Writing to stdout/stderr is not one of the
doors the seam guards (time, timers, randomness, network, disk), so printf and
fwrite pass; reading stdin does not.
"""
import os
import re
import subprocess
import sys

CLOCK = "reads the real clock; use Runtime::now()"
CALENDAR = "converts to calendar/local time with the host's time zone; node code has only Runtime::now()"
SLEEP = "sleeps or arms an OS timer; use co_await sleep(d) or Runtime::call_after()"
THREAD = "starts or synchronises threads; node code is single-threaded: use Runtime::spawn()"
RANDOM = "draws OS or libc randomness; use Runtime::rng()"
ENV = "reads the environment or the host's identity, or runs processes"
FILES = "touches the file system; a node's only storage is Runtime::disk()"
STDIN = "reads standard input"
NET = "uses sockets or name resolution; use Runtime::transport()"
SYSCALL = "makes a raw system call or loads code at run time"
DBOPEN = "opens a database by name; node code gets its database from Runtime::disk()"

_C_NAMES = {
    CLOCK: "time time64 clock clock_gettime clock_gettime64 __clock_gettime64 clock_getres "
           "clock_getcpuclockid gettimeofday __gettimeofday64 ftime times timespec_get "
           "timespec_getres getrusage",
    CALENDAR: "localtime localtime_r localtime64 localtime64_r __localtime64 __localtime64_r "
              "gmtime gmtime_r gmtime64 gmtime64_r __gmtime64 __gmtime64_r mktime mktime64 "
              "__mktime64 timegm timelocal tzset strftime strftime_l ctime ctime_r asctime "
              "asctime_r",
    SLEEP: "sleep usleep nanosleep __nanosleep64 clock_nanosleep __clock_nanosleep_time64 "
           "sched_yield pause alarm setitimer getitimer timer_create timer_settime "
           "timerfd_create timerfd_settime",
    THREAD: "pthread_create pthread_join pthread_tryjoin_np pthread_timedjoin_np pthread_detach "
            "pthread_exit pthread_kill pthread_cancel pthread_yield pthread_once "
            "pthread_mutex_lock pthread_mutex_trylock pthread_mutex_timedlock "
            "pthread_mutex_clocklock pthread_mutex_unlock pthread_cond_wait "
            "pthread_cond_timedwait pthread_cond_clockwait pthread_cond_signal "
            "pthread_cond_broadcast pthread_rwlock_rdlock pthread_rwlock_wrlock "
            "pthread_rwlock_unlock pthread_key_create pthread_setspecific pthread_getspecific "
            "pthread_self pthread_setaffinity_np sem_wait sem_timedwait sem_post "
            "thrd_create thrd_join thrd_detach thrd_sleep thrd_yield call_once clone clone3 "
            "fork vfork __once_proxy",
    RANDOM: "rand srand rand_r random srandom random_r srandom_r initstate setstate "
            "initstate_r setstate_r drand48 erand48 lrand48 nrand48 mrand48 jrand48 srand48 "
            "seed48 lcong48 drand48_r erand48_r lrand48_r nrand48_r mrand48_r jrand48_r "
            "srand48_r seed48_r lcong48_r arc4random arc4random_buf arc4random_uniform "
            "getrandom getentropy sqlite3_randomness",
    ENV: "getenv secure_getenv setenv putenv unsetenv clearenv environ __environ system popen "
         "pclose execl execle execlp execv execve execvp execvpe fexecve posix_spawn "
         "posix_spawnp getpid getppid gettid getuid geteuid gethostname uname sysconf "
         "get_nprocs get_nprocs_conf",
    FILES: "open open64 openat openat64 __open_2 __open64_2 __openat_2 __openat64_2 creat "
           "creat64 fopen fopen64 freopen freopen64 fdopen tmpfile tmpfile64 tmpnam mkstemp "
           "mkstemp64 mkostemp mkdtemp opendir fdopendir readdir readdir64 scandir stat stat64 "
           "fstat fstat64 lstat lstat64 fstatat fstatat64 __xstat __xstat64 __fxstat __fxstat64 "
           "__lxstat __lxstat64 statx access faccessat euidaccess unlink unlinkat remove rename "
           "renameat renameat2 mkdir mkdirat rmdir truncate truncate64 ftruncate ftruncate64 "
           "chdir fchdir getcwd realpath readlink readlinkat symlink link fsync fdatasync sync "
           "mmap mmap64 read write pread pread64 pwrite pwrite64 readv writev __read_chk "
           "__pread_chk __pread64_chk lseek lseek64 close dup dup2 dup3 pipe pipe2 ioctl fcntl "
           "fcntl64 flock inotify_init inotify_add_watch",
    STDIN: "stdin fread fgets fgetc getc getchar getline getdelim scanf fscanf "
           "__isoc99_scanf __isoc99_fscanf __isoc23_scanf __isoc23_fscanf __fread_chk "
           "__fgets_chk",
    NET: "socket socketpair connect bind listen accept accept4 send sendto sendmsg sendmmsg "
         "recv recvfrom recvmsg recvmmsg __recv_chk __recvfrom_chk shutdown getsockopt "
         "setsockopt getsockname getpeername getaddrinfo freeaddrinfo gai_strerror "
         "gethostbyname gethostbyname2 gethostbyname_r gethostbyaddr getnameinfo poll ppoll "
         "select pselect epoll_create epoll_create1 epoll_ctl epoll_wait epoll_pwait eventfd",
    SYSCALL: "syscall dlopen dlsym dlvsym dlmopen",
    DBOPEN: "sqlite3_open sqlite3_open_v2 sqlite3_open16 sqlite3_vfs_register",
}
C_DENY = {name: why for why, names in _C_NAMES.items() for name in names.split()}
# Families of C names (matched whole).
C_DENY_RX = [(re.compile(p), why) for p, why in [
    (r"(RAND|EVP_RAND|RAND_DRBG)_\w+|BN_(priv_)?(pseudo_)?rand(_range)?(_ex)?", RANDOM),  # OpenSSL
    (r"BIO_(new_file|new_fp|new_fd|s_file|s_fd|read_filename|new_socket|s_socket|"
     r"new_connect|s_connect|new_accept|s_accept|s_datagram|new_dgram)", FILES),           # OpenSSL
    (r"SSL_\w+|OSSL_HTTP_\w+", NET),                                                   # OpenSSL
]]

# Demangled C++ names (matched at the start).
CXX_DENY = [(re.compile(p), why) for p, why in [
    (r"std::chrono::(_V2::)?\w+_clock::now\(", CLOCK),
    (r"std::chrono::(tzdb|time_zone|get_tzdb|locate_zone|current_zone)", CALENDAR),
    (r"fmt::(v\d+::)?(localtime|gmtime)\(", CALENDAR),
    (r"std::this_thread::", SLEEP),
    (r"std::(thread|jthread)\b", THREAD),
    (r"std::(_V2::)?condition_variable(_any)?\b", THREAD),
    (r"std::__future_base\b|std::__atomic_futex_unsigned_base\b|std::__basic_future\b", THREAD),
    (r"std::__once_call\b|std::__once_callable\b|std::__once_functor\b", THREAD),
    (r"boost::(thread|this_thread|detail::thread_data_base|fibers)\b", THREAD),
    (r"std::random_device\b", RANDOM),
    (r"std::filesystem::|std::__cxx11::filesystem::|std::experimental::filesystem::", FILES),
    (r"std::(basic_filebuf|basic_ifstream|basic_ofstream|basic_fstream|__basic_file)<", FILES),
    (r"std::(__cxx11::)?(basic_ifstream|basic_ofstream|basic_fstream)<", FILES),
    (r"std::cin\b|std::wcin\b", STDIN),
    (r"boost::asio::|boost::beast::", NET),
    (r"wx::sqlite::Database::open\(", DBOPEN),
    (r"fmt::(v\d+::)?(file|buffered_file|ostream|output_file)\b", FILES),
]]

# (symbol, source path relative to SRC, reason): a match that is allowed.
ALLOW = [
    ("sqlite3_open_v2", "nodes/runtime/sqlite.cc",
     "the SQLite wrapper behind Runtime::disk(): Database::open(uri) is called only by "
     "the runtimes (sim/sim_disk.cc, nodes/prod/asio_runtime.cc)"),
]

# Instructions (objdump -d mnemonics).
INSN_DENY = {
    "rdtsc": "reads the CPU time-stamp counter (a real clock); use Runtime::now()",
    "rdtscp": "reads the CPU time-stamp counter (a real clock); use Runtime::now()",
    "rdpid": "reads the processor id",
    "rdrand": "draws hardware randomness; use Runtime::rng()",
    "rdseed": "draws hardware randomness; use Runtime::rng()",
    "syscall": "makes a raw system call",
    "sysenter": "makes a raw system call",
}
INSN_LINE = re.compile(r"^\s*[0-9a-f]+:\s+(?:[a-z]+ )*?([a-z][a-z0-9.]*)\b(.*)$")
FUNC_LINE = re.compile(r"^[0-9a-f]+ <(.*)>:$")
MEMBER_LINE = re.compile(r"^(\S+):\s+file format ")
NM_LINE = re.compile(r"^(.*)\[(.*)\]: (\S+) ([A-Za-z?])")


def run(cmd, input_text=None):
    r = subprocess.run(cmd, input=input_text, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr}")
    return r.stdout


def demangle(names):
    if not names:
        return {}
    out = run(["c++filt"], "\n".join(names) + "\n").split("\n")
    return dict(zip(names, out))


def strip_version(sym):
    return sym.split("@", 1)[0]


class Sources:
    """Maps archive members (`kv_replica.cc.o`) to source paths."""

    def __init__(self, root, source_dir, sources):
        self.root = os.path.realpath(root)
        self.by_base = {}
        for s in sources:
            p = os.path.normpath(os.path.join(source_dir or root, s))
            self.by_base.setdefault(os.path.basename(p), []).append(p)

    def rel(self, path):
        r = os.path.realpath(path)
        if r.startswith(self.root + os.sep):
            return os.path.relpath(r, self.root)
        return path

    def of(self, member):
        base = member[:-2] if member.endswith(".o") else member
        paths = self.by_base.get(base)
        if not paths:
            return [member]
        return [self.rel(p) for p in paths]


def allowed(sym, sources):
    for s, src, _ in ALLOW:
        if s == sym and all(x == src for x in sources):
            return True
    return False


def check_archive(lib, srcmap):
    offences = []
    libname = os.path.basename(lib)
    undefined = []          # (member, raw symbol)
    slim_lto = set()
    members = set()
    for line in run(["nm", "-A", "-P", lib]).splitlines():
        m = NM_LINE.match(line)
        if not m:
            continue
        member, sym, kind = m.group(2), m.group(3), m.group(4)
        members.add(member)
        if kind in ("U", "w", "v"):
            undefined.append((member, strip_version(sym)))
        if sym == "__gnu_lto_slim":
            slim_lto.add(member)
    for member in sorted(slim_lto):
        offences.append(f"{' or '.join(srcmap.of(member))}: seam violation: is a slim LTO "
                        "object, with no machine code to judge; build node libraries with "
                        f"-ffat-lto-objects [{libname}]")
    names = demangle(sorted({s for _, s in undefined}))
    seen = set()
    for member, sym in undefined:
        if (member, sym) in seen:
            continue
        seen.add((member, sym))
        why = C_DENY.get(sym)
        shown = sym
        if why is None:
            for rx, w in C_DENY_RX:
                if rx.fullmatch(sym):
                    why = w
                    break
        if why is None:
            dem = names.get(sym, sym)
            for rx, w in CXX_DENY:
                if rx.match(dem):
                    why, shown = w, dem
                    break
        if why is None:
            continue
        srcs = srcmap.of(member)
        if allowed(sym, srcs):
            continue
        offences.append(f"{' or '.join(srcs)}: seam violation: references {shown} ({why}) "
                        f"[{libname}]")
    # Instructions: the time-stamp counter, hardware randomness, raw system calls.
    member = func = None
    for line in run(["objdump", "-d", "--no-show-raw-insn", lib]).splitlines():
        m = MEMBER_LINE.match(line)
        if m:
            member, func = m.group(1), None
            continue
        m = FUNC_LINE.match(line)
        if m:
            func = m.group(1)
            continue
        m = INSN_LINE.match(line)
        if not m:
            continue
        insn, rest = m.group(1), m.group(2)
        why = INSN_DENY.get(insn)
        if why is None and insn == "int" and "$0x80" in rest:
            why = "makes a raw system call"
        if why:
            where = names.get(func, func) if func else "?"
            if func and func not in names:
                where = demangle([func]).get(func, func)
            offences.append(f"{' or '.join(srcmap.of(member or '?'))}: seam violation: "
                            f"executes {insn} in {where} ({why}) [{libname}]")
    return offences


def main(argv):
    args = argv[1:]
    root, source_dir, sources, libs, delete = None, None, [], [], False
    while args:
        a = args.pop(0)
        if a == "--root":
            root = args.pop(0)
        elif a == "--source-dir":
            source_dir = args.pop(0)
        elif a == "--sources":       # one argument, separated by '|' or ';'
            sources += [x for x in re.split(r"[|;]", args.pop(0)) if x]
        elif a == "--delete-on-failure":
            delete = True
        elif a.startswith("--"):
            print(f"seam_symbols: unknown option {a}", file=sys.stderr)
            return 2
        else:
            libs.append(a)
    if root is None or not libs:
        print("usage: seam_symbols.py --root SRC [--source-dir DIR --sources 'a.cc|b.cc'] "
              "[--delete-on-failure] LIB.a...", file=sys.stderr)
        return 2
    srcmap = Sources(root, source_dir, sources)
    failed = False
    for lib in libs:
        try:
            offences = check_archive(lib, srcmap)
        except (OSError, RuntimeError) as e:
            offences = [f"{lib}: seam violation: cannot be judged: {e}"]
        for o in offences:
            print(o, file=sys.stderr)
        if offences:
            failed = True
            print(f"seam check (symbols) failed for {lib}: {len(offences)} violation(s); node "
                  "code reaches time, timers, randomness, network and disk only through its "
                  "Runtime (docs/architecture.md, 'The seam')", file=sys.stderr)
            if delete:
                try:
                    os.remove(lib)
                except OSError:
                    pass
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

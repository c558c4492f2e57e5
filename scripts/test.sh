#!/usr/bin/env bash
# Every test: set up and build (scripts/setup.sh), then run the whole suite
# through ctest — C++ unit and simulation tests, the production-mode tests
# on 127.0.0.1, and the seam checks. (Python and notebook tests join here
# when the bindings exist.) Exits non-zero if any test fails.
#
#   scripts/test.sh [ctest args...]
#   scripts/test.sh --sanitize [ctest args...]
#
# --sanitize: the same set-up, then a second build with AddressSanitizer and
# UndefinedBehaviorSanitizer (-DWXSIM_SANITIZE=ON, RelWithDebInfo) in
# build-sanitize/ ($WXSIM_SANITIZE_BUILD_DIR), and the runtime, simulation,
# storage, RPC, logic, access, deployment, checker and scenario-reader tests
# under it (ctest labels). Any sanitizer report aborts its test. Seeded sweeps run fewer seeds there ($WX_SEEDS, default below);
# set WX_SEEDS yourself for a deeper sanitized sweep.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${WXSIM_BUILD_DIR:-$ROOT/build}"
JOBS="${WXSIM_JOBS:-$(nproc)}"

SANITIZE=0
if [[ ${1:-} == --sanitize ]]; then
  SANITIZE=1
  shift
fi

"$ROOT/scripts/setup.sh"

if ((!SANITIZE)); then
  ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" "$@"
  exit
fi

SAN_DIR="${WXSIM_SANITIZE_BUILD_DIR:-$ROOT/build-sanitize}"
echo "test: sanitizer build in $SAN_DIR"
# -O1 -g1: the usual optimisation for ASan, and line tables (enough for the
# reports' stack traces) instead of full debug information — the sanitized
# build is most of CI's time.
cmake -S "$ROOT" -B "$SAN_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
  -DWXSIM_SANITIZE=ON -DWXSIM_BUILD_BENCH=OFF -DPython3_EXECUTABLE=/usr/bin/python3 >/dev/null
# Only what the sanitized labels run: the test folders below and what they
# link (not the CLI, the production-mode, seam or scale tests), to keep CI
# within its time. make -C builds a folder's targets and their dependencies.
# (Another generator than Makefiles: everything is built.)
SAN_LABELS=(runtime sim storage rpc logic access deploy checkers scenario)
if [[ -f "$SAN_DIR/Makefile" ]]; then
  for label in "${SAN_LABELS[@]}"; do
    make -C "$SAN_DIR/tests/$label" -j "$JOBS" --no-print-directory
  done
else
  cmake --build "$SAN_DIR" -j "$JOBS"
fi

# Sweeps default to hundreds of seeds, sized for the normal build; under the
# sanitizers each seed is several times slower, so CI runs a prefix.
export WX_SEEDS="${WX_SEEDS:-3}"
# Every finding is fatal and printed with its stack. detect_leaks: LeakSanitizer
# at exit. detect_stack_use_after_return: also catches a coroutine or callback
# keeping a pointer into a returned stack frame.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# The longest simulations (a hundred users through a whole zone outage, a
# minute or more each under the sanitizers) and the planted-bug tests (…IsCaught…:
# a deliberately broken service, to show a checker catches it) run in the
# normal build only: the code they drive is the code the shorter sanitized
# tests drive, and CI's time is bounded. Set WXSIM_SANITIZE_EXCLUDE= (empty)
# to run them too.
SAN_EXCLUDE="${WXSIM_SANITIZE_EXCLUDE-HundredUsersZoneOutage|StalledFanoutWorkerYieldsItsQueues|GroupSendZoneOutageCheckerPasses|ThroughZoneOutage|ZoneOutageAllTypes|(Unsafe|TakingOver|ReplyingWithout|Trusting|UnavailableAfter|SendBefore|Unordered)[A-Za-z]*IsCaught}"
echo "test: sanitized run, WX_SEEDS=$WX_SEEDS${SAN_EXCLUDE:+, without /$SAN_EXCLUDE/}"
ctest --test-dir "$SAN_DIR" --output-on-failure -j "$JOBS" -L "^($(IFS='|'; echo "${SAN_LABELS[*]}"))\$" \
  ${SAN_EXCLUDE:+-E "$SAN_EXCLUDE"} "$@"

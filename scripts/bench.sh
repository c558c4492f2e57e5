#!/usr/bin/env bash
# Every benchmark: installs what the benchmarks need beyond the build
# (Google Benchmark, and gRPC C++ as the peer of rpc_tcp_bench), sets up and
# builds (scripts/setup.sh), then runs each driver in bench/ and prints its
# figures. Safe to run any number of times: packages are installed only when
# missing (--no-install-recommends; apt-get update only then).
#
# Arguments go to rpc_tcp_bench, e.g. `scripts/bench.sh --duration-s 2 --repeat 3`.
# Figures depend on the machine and its load: the script prints the load
# average before each driver; run it on a quiet machine.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${WXSIM_BUILD_DIR:-$ROOT/build}"
JOBS="${WXSIM_JOBS:-$(nproc)}"

# Benchmark-only Debian packages (the build's own are in setup.sh).
BENCH_PACKAGES=(libbenchmark-dev libgrpc++-dev protobuf-compiler-grpc)

missing=()
for p in "${BENCH_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "bench: installing missing packages: ${missing[*]}"
  SUDO=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "bench: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    SUDO=(sudo)
  fi
  "${SUDO[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "bench: all ${#BENCH_PACKAGES[@]} benchmark packages present"
fi

# Base packages, configure and build.
WXSIM_BUILD_DIR="$BUILD_DIR" WXSIM_JOBS="$JOBS" "$ROOT/scripts/setup.sh"

# A build folder configured before gRPC was installed keeps the comparison
# switched off in its cache: switch it on now that gRPC is there.
if grep -q '^WXSIM_BENCH_GRPC:BOOL=OFF' "$BUILD_DIR/CMakeCache.txt"; then
  echo "bench: turning on the gRPC comparison (WXSIM_BENCH_GRPC=ON)"
  cmake -S "$ROOT" -B "$BUILD_DIR" -DWXSIM_BENCH_GRPC=ON >/dev/null
  cmake --build "$BUILD_DIR" -j "$JOBS" --target rpc_tcp_bench
fi

run() {
  local name="$1"
  shift
  local exe="$BUILD_DIR/bench/$name"
  echo
  echo "=== $name $* ($(date '+%Y-%m-%d %H:%M:%S'); load average $(cut -d' ' -f1-3 /proc/loadavg))"
  "$exe" "$@"
}

run phold_bench
run coro_bench
if [[ -x "$BUILD_DIR/bench/rpc_sim_bench" ]]; then
  run rpc_sim_bench
fi
run rpc_tcp_bench "$@"

#!/usr/bin/env bash
# Set-up for a fresh Debian 12 machine, safe to run any number of times:
#   1. installs exactly the Debian packages that are missing
#      (--no-install-recommends; apt-get update only when something is missing),
#   2. configures (Release) and builds everything into $WXSIM_BUILD_DIR
#      (default: ./build).
# Sourced or run by scripts/main.sh and scripts/test.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${WXSIM_BUILD_DIR:-$ROOT/build}"
JOBS="${WXSIM_JOBS:-$(nproc)}"

# What the build and the tests need, by Debian package name.
PACKAGES=(
  build-essential cmake python3
  libboost-dev libsqlite3-dev libprotobuf-dev protobuf-compiler
  libfmt-dev libcli11-dev libgtest-dev libbenchmark-dev
  libssl-dev nlohmann-json3-dev libyaml-cpp-dev
  libgoogle-perftools-dev  # tcmalloc_minimal: the executables' allocator
  locales  # localedef data: the locale test generates a comma-decimal locale
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing missing packages: ${missing[*]}"
  SUDO=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "setup: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    SUDO=(sudo)
  fi
  "${SUDO[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all ${#PACKAGES[@]} packages present"
fi

# Debian's Python (with its python3-* packages), not a pyenv shim on PATH.
cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE=/usr/bin/python3 >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS"

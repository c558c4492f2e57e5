#!/usr/bin/env bash
# Every test: set up and build (scripts/setup.sh), then run the whole suite
# through ctest — C++ unit and simulation tests, the production-mode tests
# on 127.0.0.1, and the seam checks. (Python and notebook tests join here
# when the bindings exist.) Exits non-zero if any test fails.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${WXSIM_BUILD_DIR:-$ROOT/build}"
"$ROOT/scripts/setup.sh"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "${WXSIM_JOBS:-$(nproc)}" "$@"

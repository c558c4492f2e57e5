#!/usr/bin/env bash
# The main job: set up and build (scripts/setup.sh), then run the default
# scenario and print its report. Extra arguments go to `wxsim demo`
# (e.g. --seed 7 --duration 30s).
#
# Until YAML scenarios exist (`wxsim run`), the default scenario is the echo
# service across three zones with a crash, a restart and a disk wipe.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
exec "${WXSIM_BUILD_DIR:-$ROOT/build}/cli/wxsim" demo "$@"

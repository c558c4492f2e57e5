#!/usr/bin/env bash
# The main job: set up and build (scripts/setup.sh), then run the default
# outage scenario and print its report. Extra arguments go to `wxsim demo`
# (e.g. --seed 7 --duration 30s).
#
# Until YAML scenarios exist (`wxsim run`), the default scenario is built in:
# an RPC echo service in three zones through a zone power loss, a process
# crash and a partition (cli/demo_cmd.cc).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
exec "${WXSIM_BUILD_DIR:-$ROOT/build}/cli/wxsim" demo "$@"

#!/usr/bin/env bash
# The main job: set up and build (scripts/setup.sh), then run the default
# outage scenario and print its report. Extra arguments go to `wxsim demo`
# (e.g. --seed 7 --users 50 --duration 1m --outage-start 20s --outage-for 20s).
#
# Until YAML scenarios exist (`wxsim run`), the default scenario is built in
# (cli/demo_cmd.cc): the messaging product in one datacenter of three zones,
# every service in every zone; 200 simulated users chatting 1:1 over access
# long connections plus 10 group chats of 3-30 members, 6 sends per user per
# minute, for 3 simulated minutes, with zone b dark from 1m to 2m; then
# quiescence and the messaging checker over the recorded history (lost,
# duplicated, order, convergence, origin, history). The report shows
# availability and latency before / during / after the outage, the verdict
# per check, the trace hash and a reproduce line. Exit 0 when every check
# passes, 1 when one fails, 2 on a bad option. About 20 s of wall time.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
exec "${WXSIM_BUILD_DIR:-$ROOT/build}/cli/wxsim" demo "$@"

#!/usr/bin/env bash
# The main job: set up and build (scripts/setup.sh), then run the default
# outage scenario and print its report. Extra arguments go to `wxsim demo`
# (e.g. --seed 7 --users 50 --duration 1m --outage-start 20s --outage-for 20s).
#
# The main job: the default outage scenario, scenarios/zone-outage.yaml —
# the messaging product in one datacenter of three zones, every service in
# every zone; 100 simulated users chatting 1:1 over access long connections
# plus 10 group chats, 2 sends per user per minute for 3 simulated minutes,
# zone b losing power from 1m to 2m; then the liveness phase and the
# expectations, judged from the recorded history (no acknowledged message
# lost, no duplicates, per-recipient order, convergence, unique ids, no
# cross-user access, availability and latency per phase). Prints the summary
# and the trace hash. Extra arguments go to `wxsim run` (e.g. --seed 7,
# --out DIR for report.json). Exit 0 when every expectation holds, 1 when
# one fails, 2 on bad input. A few seconds of wall time.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
exec "${WXSIM_BUILD_DIR:-$ROOT/build}/cli/wxsim" run "$ROOT/scenarios/zone-outage.yaml" "$@"

// Subcommands of the `wxsim` CLI. Each adds itself to the CLI11 app; the
// callback it installs runs the command and sets `exit_code`.
#pragma once

#include <CLI/CLI.hpp>

namespace wx::cli {

// `wxsim demo`: the default outage scenario in simulation — the messaging
// product (every service in three zones; 1:1 chat over access long
// connections and group chats) through a zone power loss; prints a report
// with per-phase availability, the messaging checker's verdict and the trace
// hash. Options: --seed, --users, --groups, --duration, --outage-start,
// --outage-for, --zone, --rate (sends per user per minute), --trace-out,
// --history-out, --log-level. Exit 0: every check passed; 1: one failed;
// 2: a bad option.
void add_demo_command(CLI::App& app, int& exit_code);

// `wxsim run SCENARIO.yaml`: one outage scenario from a YAML file, judged
// (cli/run_cmd.cc, docs/scenarios.md). Exit 0 pass, 1 fail, 2 bad input.
void add_run_command(CLI::App& app, int& exit_code);

// `wxsim node`: runs one node on real sockets (production mode).
void add_node_command(CLI::App& app, int& exit_code);

// `wxsim sweep SCENARIO --seeds A..B [--jobs N] [--swarm] [--shard I/N]
// [--out DIR] [--keep-passing]`: the scenario over a range of seeds (or one
// shard of it), each seed a `wxsim run` child process; writes DIR/sweep.json
// and prints every failing seed with the command that reproduces it. Exit 0:
// every seed passed; 1: one failed or crashed; 2: bad input.
// `wxsim sweep-merge DIR... [--out FILE]`: merges shards' sweep.json; exit 0
// all passed and every seed covered exactly once, 1 failures, 2 bad input or
// incomplete coverage. docs/sweeps.md.
void add_sweep_command(CLI::App& app, int& exit_code);

}  // namespace wx::cli

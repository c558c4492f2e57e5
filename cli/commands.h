// Subcommands of the `wxsim` CLI. Each adds itself to the CLI11 app; the
// callback it installs runs the command and sets `exit_code`.
#pragma once

#include <CLI/CLI.hpp>

namespace wx::cli {

// `wxsim demo`: the default outage scenario in simulation — an RPC echo
// service in three zones through a zone outage, a crash and a partition;
// prints a report and the trace hash.
void add_demo_command(CLI::App& app, int& exit_code);

// `wxsim node`: runs one node on real sockets (production mode).
void add_node_command(CLI::App& app, int& exit_code);

}  // namespace wx::cli

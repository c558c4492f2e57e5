// Subcommands of the `wxsim` CLI. Each adds itself to the CLI11 app; the
// callback it installs runs the command and sets `exit_code`.
#pragma once

#include <CLI/CLI.hpp>

namespace wx::cli {

// `wxsim demo`: the echo service in simulation across three zones, with a
// crash, a restart and a wipe; prints a report and the trace hash.
void add_demo_command(CLI::App& app, int& exit_code);

// `wxsim node`: runs one node on real sockets (production mode).
void add_node_command(CLI::App& app, int& exit_code);

}  // namespace wx::cli

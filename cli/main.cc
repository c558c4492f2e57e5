// wxsim: the command-line face of the testbed.
//
// Only subcommands that exist are registered; later ones (cluster, client)
// arrive with the capabilities behind them.
#include <CLI/CLI.hpp>

#include "cli/commands.h"

#ifndef WXSIM_VERSION
#define WXSIM_VERSION "unknown"
#endif

int main(int argc, char** argv) {
  CLI::App app{"wxsim — deterministic simulation testbed of a WeChat-style messaging backend"};
  app.set_version_flag("--version", std::string("wxsim ") + WXSIM_VERSION);
  app.require_subcommand(1);
  int exit_code = 0;
  wx::cli::add_demo_command(app, exit_code);
  wx::cli::add_run_command(app, exit_code);
  wx::cli::add_node_command(app, exit_code);
  wx::cli::add_sweep_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every other parse error is bad input: 2.
    return app.exit(e) == 0 ? 0 : 2;
  }
  return exit_code;
}

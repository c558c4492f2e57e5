// Helpers for the process-level tests of `wxsim sweep` and `wxsim
// sweep-merge` (sweep_cli_test.cc, sweep_run_test.cc): run the real wxsim
// binary and collect its exit, stdout and stderr; a scratch directory per
// test; read a JSON file; split a printed command line as a POSIX shell would.
#pragma once

#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli/child_process.h"

#ifndef WXSIM_BINARY
#error "WXSIM_BINARY must name the wxsim executable"
#endif

namespace wx::cli::sweep_test {

namespace fs = std::filesystem;

struct Result {
  int exit = -1;  // -1: killed by a signal or did not finish
  std::string out, err;
};

// Runs `program args...` to completion (or the deadline: exit -1).
inline Result run_process(const std::string& program, const std::vector<std::string>& args,
                          std::chrono::seconds timeout) {
  ChildProcess p(program, args, ChildProcess::Stderr::capture);
  const auto deadline = ChildProcess::Clock::now() + timeout;
  Result r;
  r.out = p.read_stdout(deadline);
  r.err = p.read_stderr(deadline);
  const std::optional<int> st = p.wait(deadline);
  if (st && WIFEXITED(*st)) r.exit = WEXITSTATUS(*st);
  return r;
}

inline Result wxsim(const std::vector<std::string>& args, std::chrono::seconds timeout = std::chrono::seconds(900)) {
  return run_process(WXSIM_BINARY, args, timeout);
}

// A fresh directory under the system's temporary directory, removed at the end.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& name) {
    path_ = fs::temp_directory_path() / fmt_name(name);
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  std::string operator/(const std::string& sub) const { return (path_ / sub).string(); }

 private:
  static std::string fmt_name(const std::string& name) {
    return "wxsim-" + name + "-" + std::to_string(::getpid());
  }
  fs::path path_;
};

inline nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) {
    ADD_FAILURE() << "cannot read " << path;
    return nullptr;
  }
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    ADD_FAILURE() << path << ": " << e.what();
    return nullptr;
  }
}

inline void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

// POSIX shell word splitting for the lines `wxsim sweep` prints: blanks
// separate words; '...' is literal; a backslash outside quotes escapes the
// next character. nullopt for an unterminated quote.
inline std::optional<std::vector<std::string>> shell_split(const std::string& line) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (c == ' ' || c == '\t') {
      if (in_word) words.push_back(std::exchange(word, std::string()));
      in_word = false;
    } else if (c == '\'') {
      const size_t end = line.find('\'', i + 1);
      if (end == std::string::npos) return std::nullopt;
      word += line.substr(i + 1, end - i - 1);
      i = end;
      in_word = true;
    } else if (c == '\\' && i + 1 < line.size()) {
      word += line[++i];
      in_word = true;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(word);
  return words;
}

// The lines of `text` that start (after blanks) with `prefix`, without it.
inline std::vector<std::string> lines_after(const std::string& text, const std::string& prefix) {
  std::vector<std::string> found;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(pos, nl - pos);
    const size_t start = line.find_first_not_of(' ');
    if (start != std::string::npos && line.compare(start, prefix.size(), prefix) == 0) {
      found.push_back(line.substr(start + prefix.size()));
    }
    pos = nl + 1;
  }
  return found;
}

}  // namespace wx::cli::sweep_test

// The echo service as real processes over TCP: launches the `wxsim` binary
// (path from the WXSIM_BINARY compile definition) as an echo server and as a
// pinger, on 127.0.0.1 only. Every wait on a child is bounded; a child still
// running when a test ends is killed and reaped.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "cli/child_process.h"

#ifndef WXSIM_BINARY
#error "WXSIM_BINARY must name the wxsim executable"
#endif

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Generous bounds: only a hang comes near them.
constexpr auto kStartBound = 20s;
constexpr auto kRunBound = 60s;

// The wxsim binary as a child process (cli/child_process.h).
class Child : public wx::cli::ChildProcess {
 public:
  Child(const std::vector<std::string>& args, bool capture_stderr)
      : ChildProcess(WXSIM_BINARY, args, capture_stderr ? Stderr::capture : Stderr::inherit) {}
};

std::string describe_status(std::optional<int> st) {
  if (!st) return "still running at the deadline";
  if (WIFEXITED(*st)) return "exit " + std::to_string(WEXITSTATUS(*st));
  if (WIFSIGNALED(*st)) return "killed by signal " + std::to_string(WTERMSIG(*st));
  return "status " + std::to_string(*st);
}

int exit_code(std::optional<int> st) {
  return st && WIFEXITED(*st) ? WEXITSTATUS(*st) : -1;
}

struct Summary {
  uint64_t sent = 0, ok = 0, timeouts = 0, resets = 0, send_failed = 0;
  std::string p50_us, p99_us;
};

std::optional<Summary> parse_summary(const std::string& out) {
  static const std::regex line(
      R"(ping: sent=(\d+) ok=(\d+) timeouts=(\d+) resets=(\d+) send_failed=(\d+) p50_us=(\d+|-) p99_us=(\d+|-))");
  std::smatch m;
  if (!std::regex_search(out, m, line)) return std::nullopt;
  Summary s;
  s.sent = std::stoull(m[1]);
  s.ok = std::stoull(m[2]);
  s.timeouts = std::stoull(m[3]);
  s.resets = std::stoull(m[4]);
  s.send_failed = std::stoull(m[5]);
  s.p50_us = m[6];
  s.p99_us = m[7];
  return s;
}

// A loopback port nothing listens on (bound, then released).
uint16_t unused_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error("cannot find a free loopback port");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

class EchoTcp : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("wxsim_echo_tcp_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(EchoTcp, PingerGetsEveryPongFromARealEchoProcess) {
  Child echo({"node", "--role", "echo", "--id", "1", "--listen", "127.0.0.1:0", "--data-dir",
              (dir_ / "echo").string(), "--log-level", "warn"},
             /*capture_stderr=*/false);
  const std::optional<std::string> first = echo.read_line(Clock::now() + kStartBound);
  ASSERT_TRUE(first.has_value()) << "echo printed no `listening` line";
  std::smatch m;
  ASSERT_TRUE(std::regex_match(*first, m, std::regex(R"(listening 127\.0\.0\.1:(\d+))"))) << *first;
  const std::string port = m[1];
  ASSERT_NE(port, "0");

  for (const char* count : {"50", "5"}) {  // a second client is served just the same
    SCOPED_TRACE(std::string("--count ") + count);
    Child ping({"node", "--role", "ping", "--id", "2", "--peer", "1=127.0.0.1:" + port, "--count",
                count, "--interval", "2ms", "--timeout", "10s", "--log-level", "warn"},
               /*capture_stderr=*/false);
    const std::string out = ping.read_stdout(Clock::now() + kRunBound);
    const std::optional<int> st = ping.wait(Clock::now() + kRunBound);
    ASSERT_EQ(exit_code(st), 0) << describe_status(st) << "\nstdout: " << out;
    const std::optional<Summary> s = parse_summary(out);
    ASSERT_TRUE(s.has_value()) << "no summary line in: " << out;
    EXPECT_EQ(s->sent, std::stoull(count));
    EXPECT_EQ(s->ok, s->sent);
    EXPECT_EQ(s->timeouts, 0u);
    EXPECT_EQ(s->resets, 0u);
    EXPECT_EQ(s->send_failed, 0u);
    ASSERT_NE(s->p50_us, "-");
    EXPECT_LE(std::stoull(s->p50_us), std::stoull(s->p99_us));
  }

  echo.signal(SIGTERM);
  const std::optional<int> st = echo.wait(Clock::now() + kStartBound);
  EXPECT_EQ(exit_code(st), 0) << describe_status(st);
  EXPECT_TRUE(std::filesystem::exists(dir_ / "echo" / "node-1.sqlite"));
}

TEST_F(EchoTcp, PingWithNobodyListeningFails) {
  const std::string port = std::to_string(unused_loopback_port());
  Child ping({"node", "--role", "ping", "--id", "2", "--peer", "1=127.0.0.1:" + port, "--count",
              "3", "--interval", "1ms", "--timeout", "10s", "--log-level", "error"},
             /*capture_stderr=*/false);
  const std::string out = ping.read_stdout(Clock::now() + kRunBound);
  const std::optional<int> st = ping.wait(Clock::now() + kRunBound);
  EXPECT_EQ(exit_code(st), 1) << describe_status(st) << "\nstdout: " << out;
  const std::optional<Summary> s = parse_summary(out);
  ASSERT_TRUE(s.has_value()) << out;
  EXPECT_EQ(s->sent, 3u);
  EXPECT_EQ(s->ok, 0u);
  EXPECT_EQ(s->resets, 3u) << "each failed dial is a reset";
  EXPECT_EQ(s->p50_us, "-");
}

TEST_F(EchoTcp, BadArgumentsNameTheFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"--interval", "10"}, "--interval '10': expected a duration"},
      {{"--timeout", "0s"}, "--timeout '0s': expected a duration > 0"},
      {{"--count", "0"}, "--count"},
      {{"--target", "9"}, "--target 9"},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.says);
    std::vector<std::string> args = {"node", "--role", "ping",         "--id",
                                     "2",    "--peer", "1=127.0.0.1:9"};
    args.insert(args.end(), k.args.begin(), k.args.end());
    Child c(args, /*capture_stderr=*/true);
    const std::string err = c.read_stderr(Clock::now() + kStartBound);
    const std::optional<int> st = c.wait(Clock::now() + kStartBound);
    EXPECT_EQ(exit_code(st), 2) << describe_status(st);
    EXPECT_NE(err.find(k.says), std::string::npos) << err;
  }
  Child bad_peer({"node", "--role", "ping", "--id", "2", "--peer", "one=127.0.0.1:9"},
                 /*capture_stderr=*/true);
  const std::string err = bad_peer.read_stderr(Clock::now() + kStartBound);
  EXPECT_EQ(exit_code(bad_peer.wait(Clock::now() + kStartBound)), 2);
  EXPECT_NE(err.find("--peer 'one=127.0.0.1:9': expected ID=HOST:PORT"), std::string::npos) << err;
}

}  // namespace

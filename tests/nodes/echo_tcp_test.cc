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

extern char** environ;

#ifndef WXSIM_BINARY
#error "WXSIM_BINARY must name the wxsim executable"
#endif

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Generous bounds: only a hang comes near them.
constexpr auto kStartBound = 20s;
constexpr auto kRunBound = 60s;

// A child process with its stdout (and optionally stderr) on pipes. Killed and
// reaped on destruction if still running.
class Child {
 public:
  Child(const std::vector<std::string>& args, bool capture_stderr) {
    int out[2], err[2] = {-1, -1};
    if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    if (capture_stderr && ::pipe2(err, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    if (capture_stderr) posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(WXSIM_BINARY));
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, WXSIM_BINARY, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    if (capture_stderr) ::close(err[1]);
    out_fd_ = out[0];
    err_fd_ = err[0];
    if (rc != 0) {
      pid_ = -1;
      throw std::runtime_error(std::string("posix_spawn " WXSIM_BINARY ": ") + std::strerror(rc));
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ > 0 && !status_) {
      ::kill(pid_, SIGKILL);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
    if (out_fd_ >= 0) ::close(out_fd_);
    if (err_fd_ >= 0) ::close(err_fd_);
  }

  // One line of stdout (without the newline), or nullopt on EOF or deadline.
  std::optional<std::string> read_line(Clock::time_point deadline) {
    for (;;) {
      const size_t nl = out_buffer_.find('\n');
      if (nl != std::string::npos) {
        std::string line = out_buffer_.substr(0, nl);
        out_buffer_.erase(0, nl + 1);
        return line;
      }
      if (!read_some(out_fd_, out_buffer_, deadline)) return std::nullopt;
    }
  }
  // Everything up to EOF (or the deadline).
  std::string read_stdout(Clock::time_point deadline) {
    return drain(out_fd_, out_buffer_, deadline);
  }
  std::string read_stderr(Clock::time_point deadline) {
    return drain(err_fd_, err_buffer_, deadline);
  }

  // The wait status once the child exits, or nullopt at the deadline.
  std::optional<int> wait(Clock::time_point deadline) {
    while (!status_) {
      int st = 0;
      const pid_t r = ::waitpid(pid_, &st, WNOHANG);
      if (r == pid_) {
        status_ = st;
        break;
      }
      if (r < 0 && errno != EINTR) return std::nullopt;
      if (Clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(5ms);
    }
    return status_;
  }
  void signal(int signo) { ::kill(pid_, signo); }

 private:
  // Appends what is readable to `buffer`; false on EOF, error or deadline.
  static bool read_some(int fd, std::string& buffer, Clock::time_point deadline) {
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      pollfd p{fd, POLLIN, 0};
      const int ready = ::poll(&p, 1, static_cast<int>(left));
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) return false;
      char chunk[4096];
      const ssize_t n = ::read(fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      buffer.append(chunk, static_cast<size_t>(n));
      return true;
    }
  }
  static std::string drain(int fd, std::string& buffer, Clock::time_point deadline) {
    while (read_some(fd, buffer, deadline)) {
    }
    return std::exchange(buffer, std::string());
  }

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::string out_buffer_, err_buffer_;
  std::optional<int> status_;
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

// ChildProcess: a child process started with posix_spawn, its stdout (and
// optionally stderr) on pipes, for the tools and tests that run real wxsim
// processes (bench/kv_tcp_bench, tests/nodes/echo_tcp_test,
// tests/storage/kv_tcp_test). Every read and wait takes a deadline, so a hung
// child fails its caller instead of hanging it. A child still running when
// the object dies is killed (SIGKILL) and reaped.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

extern char** environ;

namespace wx::cli {

class ChildProcess {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Stderr : bool { inherit = false, capture = true };

  ChildProcess(const std::string& binary, const std::vector<std::string>& args, Stderr err = Stderr::inherit) {
    const bool capture_err = err == Stderr::capture;
    int out[2], errp[2] = {-1, -1};
    if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    if (capture_err && ::pipe2(errp, O_CLOEXEC) != 0) {
      ::close(out[0]);
      ::close(out[1]);
      throw std::runtime_error("pipe2 failed");
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    if (capture_err) posix_spawn_file_actions_adddup2(&actions, errp[1], STDERR_FILENO);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(binary.c_str()));
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    if (capture_err) ::close(errp[1]);
    out_fd_ = out[0];
    err_fd_ = errp[0];
    if (rc != 0) {
      pid_ = -1;
      throw std::runtime_error("posix_spawn " + binary + ": " + std::strerror(rc));
    }
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() {
    if (running()) {
      ::kill(pid_, SIGKILL);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
    if (out_fd_ >= 0) ::close(out_fd_);
    if (err_fd_ >= 0) ::close(err_fd_);
  }

  bool running() const { return pid_ > 0 && !status_; }
  pid_t pid() const { return pid_; }
  void signal(int signo) {
    if (running()) ::kill(pid_, signo);
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
  std::string read_stdout(Clock::time_point deadline) { return drain(out_fd_, out_buffer_, deadline); }
  // Empty unless constructed with Stderr::capture.
  std::string read_stderr(Clock::time_point deadline) { return drain(err_fd_, err_buffer_, deadline); }

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
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return status_;
  }

  // SIGTERM, then SIGKILL if it has not exited after `grace`; reaps it.
  std::optional<int> stop(std::chrono::milliseconds grace) {
    if (!running()) return status_;
    ::kill(pid_, SIGTERM);
    if (std::optional<int> st = wait(Clock::now() + grace)) return st;
    ::kill(pid_, SIGKILL);
    int st = 0;
    if (::waitpid(pid_, &st, 0) == pid_) status_ = st;
    return status_;
  }

 private:
  // Appends what is readable to `buffer`; false on EOF, error or deadline.
  static bool read_some(int fd, std::string& buffer, Clock::time_point deadline) {
    if (fd < 0) return false;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
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

}  // namespace wx::cli

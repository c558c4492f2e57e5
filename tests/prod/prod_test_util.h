// Helpers shared by the production-mode tests (tests/prod/): bounded waits on
// an io_context, log capture, loopback endpoints, and a raw socket client.
// Every wait is bounded: a broken implementation fails a test, never hangs it.
#pragma once

#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "nodes/prod/asio_runtime.h"

namespace wx::prod::testing {

namespace asio = boost::asio;
using asio::ip::tcp;

// Generous: only a broken implementation comes near it.
constexpr std::chrono::milliseconds kWaitBound{20'000};

// Runs `io` until `done()` holds or `bound` passes; returns done().
inline bool run_until(asio::io_context& io, const std::function<bool()>& done,
                      std::chrono::milliseconds bound = kWaitBound) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    if (io.stopped()) io.restart();
    io.run_one_for(std::chrono::milliseconds(10));
  }
  return true;
}

// Runs `io` for a while, to show that something does NOT happen.
inline void run_for(asio::io_context& io, std::chrono::milliseconds d) {
  if (io.stopped()) io.restart();
  io.run_for(d);
}

struct LogCapture {
  std::vector<std::string> lines;
  bool contains_all(std::initializer_list<std::string> parts) const {
    for (const std::string& line : lines) {
      bool all = true;
      for (const std::string& p : parts) all = all && line.find(p) != std::string::npos;
      if (all) return true;
    }
    return false;
  }
  std::string dump() const {
    std::string out;
    for (const std::string& l : lines) out += l + "\n";
    return out;
  }
};

inline tcp::endpoint loopback(uint16_t port) {
  return tcp::endpoint(asio::ip::make_address("127.0.0.1"), port);
}

// A runtime config whose log lines (all levels) go to `logs`.
inline AsioRuntimeConfig config(LogCapture& logs) {
  AsioRuntimeConfig c;
  c.seed = 42;
  c.log_level = LogLevel::debug;
  c.log_sink = [&logs](std::string_view line) { logs.lines.emplace_back(line); };
  return c;
}

// A hand-driven client socket: writes raw bytes, records what comes back and
// whether the server closed it.
class RawClient {
 public:
  RawClient(asio::io_context& io, uint16_t port) : socket_(io) {
    socket_.connect(loopback(port));  // completes in the kernel's backlog
    local_port_ = socket_.local_endpoint().port();
    read_more();
  }
  void write(const std::string& bytes) { asio::write(socket_, asio::buffer(bytes)); }
  bool closed() const { return closed_; }
  const std::string& received() const { return received_; }
  uint16_t local_port() const { return local_port_; }

 private:
  void read_more() {
    socket_.async_read_some(asio::buffer(buf_), [this](const boost::system::error_code& ec, size_t n) {
      if (ec) {
        closed_ = true;
        return;
      }
      received_.append(buf_.data(), n);
      read_more();
    });
  }
  tcp::socket socket_;
  std::array<char, 4096> buf_{};
  std::string received_;
  bool closed_ = false;
  uint16_t local_port_ = 0;
};

}  // namespace wx::prod::testing

#include "nodes/prod/tcp_transport.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

#include "nodes/prod/frame.h"
#include "nodes/prod/wire.pb.h"

namespace wx::prod {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

namespace {

std::string endpoint_text(const tcp::endpoint& ep) {
  if (ep.address().is_v6()) return fmt::format("[{}]:{}", ep.address().to_string(), ep.port());
  return fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

std::chrono::nanoseconds to_chrono(Duration d) {
  return std::chrono::nanoseconds(d.ns());
}

}  // namespace

// One TCP connection. Handlers capture a shared_ptr to it, so it outlives
// every pending operation; `owner` is cleared when it is closed (or the
// transport is), after which no handler calls back into the transport.
struct TcpTransport::Connection {
  enum class Role : uint8_t { dialed, accepted };
  struct OutFrame {
    std::array<char, kFrameHeaderBytes> header;
    std::string payload;
  };

  Connection(tcp::socket s, uint64_t connection_id, Role r, asio::io_context& io)
      : id(connection_id),
        role(r),
        socket(std::move(s)),
        handshake_timer(io),
        decoder(kHelloBytesMax, EmptyFrames::allowed),
        read_buffer(kReadChunkBytes) {}

  const uint64_t id;
  const Role role;
  tcp::socket socket;
  asio::steady_timer handshake_timer;
  std::string remote;          // endpoint text, for logs
  std::optional<NodeId> peer;  // dialed: from the start; accepted: once its Hello is valid
  TcpTransport* owner = nullptr;
  bool connected = false;
  bool hello_received = false;
  bool closed = false;

  FrameDecoder decoder;
  std::vector<char> read_buffer;

  std::deque<OutFrame> write_queue;
  size_t write_queue_bytes = 0;  // headers included
  size_t frames_in_flight = 0;   // the front of write_queue being written; 0: idle
  std::vector<asio::const_buffer> write_buffers;
};

TcpTransport::TcpTransport(Runtime& rt, asio::io_context& io, NodeId self,
                           TcpTransportConfig config)
    : Transport(rt, config.frame_bytes_max, config.inbox_frames_max),
      rt_(rt),
      io_(io),
      self_(self),
      config_(std::move(config)),
      accept_retry_timer_(io) {
  if (config_.frame_bytes_max > kFrameBytesMaxEncodable) {
    throw std::invalid_argument(
        fmt::format("frame_bytes_max {} exceeds the {} a 4-byte length can express",
                    config_.frame_bytes_max, kFrameBytesMaxEncodable));
  }
}

TcpTransport::~TcpTransport() {
  close();
}

void TcpTransport::set_peer(NodeId peer, const tcp::endpoint& endpoint) {
  config_.peers[peer] = endpoint;
}

// --- listening ----------------------------------------------------------------

uint16_t TcpTransport::listen(std::string_view host, uint16_t port) {
  error_code ec;
  const asio::ip::address address = asio::ip::make_address(std::string(host), ec);
  if (ec) {
    throw std::invalid_argument(fmt::format("listen address '{}' is not an IP address", host));
  }
  return listen(tcp::endpoint(address, port));
}

uint16_t TcpTransport::listen(const tcp::endpoint& endpoint) {
  if (closed_) throw std::logic_error("TcpTransport::listen after close()");
  if (acceptor_) throw std::logic_error("TcpTransport::listen called twice");
  tcp::acceptor acceptor(io_);
  error_code ec;
  const auto check = [&](const char* step) {
    if (ec)
      throw std::system_error(ec, fmt::format("listen on {}: {}", endpoint_text(endpoint), step));
  };
  acceptor.open(endpoint.protocol(), ec);
  check("open");
  // Lets a restarted node bind its port while old connections linger in TIME_WAIT.
  acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  check("SO_REUSEADDR");
  acceptor.bind(endpoint, ec);
  check("bind");
  acceptor.listen(asio::socket_base::max_listen_connections, ec);
  check("listen");
  acceptor_.emplace(std::move(acceptor));
  const tcp::endpoint bound = acceptor_->local_endpoint(ec);
  check("local_endpoint");
  rt_.info("tcp: listening on {}", endpoint_text(bound));
  accept_next();
  return bound.port();
}

std::optional<tcp::endpoint> TcpTransport::listen_endpoint() const {
  if (!acceptor_ || !acceptor_->is_open()) return std::nullopt;
  error_code ec;
  tcp::endpoint ep = acceptor_->local_endpoint(ec);
  if (ec) return std::nullopt;
  return ep;
}

void TcpTransport::accept_next() {
  acceptor_->async_accept(
      [this, alive = std::weak_ptr<int>(alive_)](const error_code& ec, tcp::socket socket) {
        if (alive.expired()) return;
        on_accept(ec, std::move(socket));
      });
}

void TcpTransport::on_accept(const error_code& ec, tcp::socket socket) {
  if (closed_) return;
  if (ec) {
    if (ec == asio::error::operation_aborted) return;
    // Typically out of file descriptors: back off instead of spinning.
    rt_.warn("tcp: accept failed: {}; retrying in {}", ec.message(), to_string(kAcceptRetryDelay));
    accept_retry_timer_.expires_after(to_chrono(kAcceptRetryDelay));
    accept_retry_timer_.async_wait(
        [this, alive = std::weak_ptr<int>(alive_)](const error_code& wait_ec) {
          if (alive.expired() || wait_ec || closed_) return;
          accept_next();
        });
    return;
  }
  error_code ep_ec;
  const tcp::endpoint remote = socket.remote_endpoint(ep_ec);
  const std::string remote_text = ep_ec ? std::string("unknown endpoint") : endpoint_text(remote);
  if (connections_.size() >= config_.connections_max) {
    ++stats_.connections_refused;
    rt_.warn("tcp: refusing connection from {}: connections_max {} reached", remote_text,
             config_.connections_max);
    error_code ignored;
    socket.close(ignored);
    accept_next();
    return;
  }
  auto c = std::make_shared<Connection>(std::move(socket), next_connection_id_++,
                                        Connection::Role::accepted, io_);
  c->owner = this;
  c->remote = remote_text;
  c->connected = true;
  error_code opt_ec;
  c->socket.set_option(tcp::no_delay(true), opt_ec);
  connections_.emplace(c->id, c);
  ++stats_.connections_accepted;
  rt_.debug("tcp: accepted {}", describe(*c));
  start_handshake_timer(c);
  start_read(c);
  accept_next();
}

// --- dialing --------------------------------------------------------------------

TcpTransport::ConnectionPtr TcpTransport::dial(NodeId peer, const tcp::endpoint& endpoint) {
  if (connections_.size() >= config_.connections_max) {
    ++stats_.dial_failures;
    rt_.warn("tcp: cannot dial {} at {}: connections_max {} reached", to_string(peer),
             endpoint_text(endpoint), config_.connections_max);
    deliver_reset(peer);
    return nullptr;
  }
  auto c = std::make_shared<Connection>(tcp::socket(io_), next_connection_id_++,
                                        Connection::Role::dialed, io_);
  c->owner = this;
  c->peer = peer;
  c->remote = endpoint_text(endpoint);
  connections_.emplace(c->id, c);
  registered_[peer] = c;
  ++stats_.connections_dialed;
  rt_.debug("tcp: dialing {}", describe(*c));
  queue_hello(c);  // first on the wire, ahead of every frame sent before the connect completes
  start_handshake_timer(c);
  c->socket.async_connect(endpoint, [c](const error_code& ec) {
    if (c->owner) c->owner->on_connected(c, ec);
  });
  return c;
}

void TcpTransport::on_connected(const ConnectionPtr& c, const error_code& ec) {
  if (ec) {
    ++stats_.dial_failures;
    fail(c, Severity::warn, fmt::format("connect failed: {}", ec.message()));
    return;
  }
  c->connected = true;
  error_code opt_ec;
  c->socket.set_option(tcp::no_delay(true), opt_ec);
  start_read(c);
  if (!c->write_queue.empty() && c->frames_in_flight == 0) start_write(c);
}

void TcpTransport::start_handshake_timer(const ConnectionPtr& c) {
  c->handshake_timer.expires_after(to_chrono(config_.handshake_timeout));
  c->handshake_timer.async_wait([c](const error_code& ec) {
    if (ec || !c->owner || c->hello_received) return;
    TcpTransport& t = *c->owner;
    if (!c->connected) {
      ++t.stats_.dial_failures;
      t.fail(c, Severity::warn,
             fmt::format("connect timed out after {}", to_string(t.config_.handshake_timeout)));
    } else {
      ++t.stats_.protocol_errors;
      t.fail(c, Severity::error,
             fmt::format("no Hello within handshake_timeout {}",
                         to_string(t.config_.handshake_timeout)));
    }
  });
}

// --- reading --------------------------------------------------------------------

void TcpTransport::start_read(const ConnectionPtr& c) {
  c->socket.async_read_some(asio::buffer(c->read_buffer), [c](const error_code& ec, size_t bytes) {
    if (c->owner) c->owner->on_read(c, ec, bytes);
  });
}

void TcpTransport::on_read(const ConnectionPtr& c, const error_code& ec, size_t bytes) {
  if (ec) {
    if (ec == asio::error::eof) {
      fail(c, c->hello_received ? Severity::info : Severity::error,
           c->hello_received ? "closed by peer" : "closed by peer before its Hello");
    } else {
      fail(c, Severity::warn, fmt::format("read failed: {}", ec.message()));
    }
    return;
  }
  c->decoder.feed(std::string_view(c->read_buffer.data(), bytes));
  while (std::optional<std::string> frame = c->decoder.next()) {
    if (!c->hello_received) {
      if (!on_hello(c, *frame)) return;  // closed
      continue;
    }
    ++stats_.frames_received;
    const NodeId peer = *c->peer;
    if (!deliver(Inbound{Inbound::Kind::frame, peer, std::move(*frame)})) {
      ++stats_.inbox_overflows;
      fail(c, Severity::error,
           fmt::format("inbox full ({} frames waiting for the node)", inbox_size()));
      return;
    }
  }
  if (c->decoder.failed()) {
    ++stats_.protocol_errors;
    fail(c, Severity::error,
         c->hello_received ? c->decoder.error()
                           : fmt::format("bad first frame (Hello): {}", c->decoder.error()));
    return;
  }
  start_read(c);
}

bool TcpTransport::on_hello(const ConnectionPtr& c, const std::string& bytes) {
  Hello hello;
  std::string problem;
  if (bytes.empty()) {
    problem = "empty Hello (zero-length first frame)";
  } else if (!hello.ParseFromString(bytes)) {
    problem = fmt::format("garbled Hello: {} bytes that do not parse", bytes.size());
  } else if (hello.protocol_version() != kProtocolVersion) {
    problem = fmt::format("Hello with protocol version {}, expected {}", hello.protocol_version(),
                          kProtocolVersion);
  } else if (NodeId{hello.node_id()} == self_) {
    problem = fmt::format("Hello names this node's own id {}", to_string(self_));
  } else if (c->role == Connection::Role::dialed && NodeId{hello.node_id()} != *c->peer) {
    problem = fmt::format("Hello names {} but {} was dialed at this address",
                          to_string(NodeId{hello.node_id()}), to_string(*c->peer));
  }
  if (!problem.empty()) {
    ++stats_.protocol_errors;
    fail(c, Severity::error, problem);
    return false;
  }
  const NodeId from{hello.node_id()};
  c->hello_received = true;
  c->handshake_timer.cancel();
  c->decoder.set_frame_bytes_max(frame_bytes_max());
  if (c->role == Connection::Role::accepted) {
    c->peer = from;
    queue_hello(c);
    if (c->closed) return false;
    auto [it, inserted] = registered_.emplace(from, c);
    if (!inserted) {
      rt_.debug("tcp: {} is a second connection from {}; sends keep using connection {}",
                describe(*c), to_string(from), it->second->id);
    }
  }
  rt_.debug("tcp: handshake complete on {}", describe(*c));
  return true;
}

// --- writing ----------------------------------------------------------------------

SendStatus TcpTransport::send(NodeId to, std::string frame) {
  if (frame.size() > frame_bytes_max()) return SendStatus::frame_too_large;
  if (to == self_) return SendStatus::to_self;
  if (closed_) return SendStatus::ok;  // the incarnation is ending; the network "loses" it
  ConnectionPtr c;
  if (auto it = registered_.find(to); it != registered_.end()) {
    c = it->second;
  } else {
    auto peer = config_.peers.find(to);
    if (peer == config_.peers.end()) return SendStatus::unknown_peer;
    c = dial(to, peer->second);
    if (!c) return SendStatus::ok;  // could not dial; a reset is on its way
  }
  queue_frame(c, std::move(frame));
  return SendStatus::ok;
}

void TcpTransport::queue_hello(const ConnectionPtr& c) {
  Hello hello;
  hello.set_node_id(self_.value);
  hello.set_protocol_version(kProtocolVersion);
  queue_frame(c, hello.SerializeAsString());
}

void TcpTransport::queue_frame(const ConnectionPtr& c, std::string payload) {
  const size_t bytes = kFrameHeaderBytes + payload.size();
  if (c->write_queue_bytes + bytes > config_.write_queue_bytes_max) {
    ++stats_.write_queue_overflows;
    fail(c, Severity::error,
         fmt::format(
             "write queue overflow: {} bytes queued, {} more would pass write_queue_bytes_max {}",
             c->write_queue_bytes, bytes, config_.write_queue_bytes_max));
    return;
  }
  c->write_queue.push_back(
      Connection::OutFrame{encode_frame_header(payload.size()), std::move(payload)});
  c->write_queue_bytes += bytes;
  if (c->connected && c->frames_in_flight == 0) start_write(c);
}

void TcpTransport::start_write(const ConnectionPtr& c) {
  const size_t n = std::min(c->write_queue.size(), kWriteBatchFramesMax);
  c->write_buffers.clear();
  for (size_t i = 0; i < n; ++i) {
    const Connection::OutFrame& f = c->write_queue[i];
    c->write_buffers.push_back(asio::buffer(f.header));
    if (!f.payload.empty()) c->write_buffers.push_back(asio::buffer(f.payload));
  }
  c->frames_in_flight = n;
  // The buffers point into write_queue's front elements, which stay put
  // (deque push_back does not move elements) until on_written pops them.
  asio::async_write(c->socket, c->write_buffers, [c](const error_code& ec, size_t) {
    if (c->owner) c->owner->on_written(c, ec);
  });
}

void TcpTransport::on_written(const ConnectionPtr& c, const error_code& ec) {
  if (ec) {
    fail(c, Severity::warn, fmt::format("write failed: {}", ec.message()));
    return;
  }
  for (size_t i = 0; i < c->frames_in_flight; ++i) {
    c->write_queue_bytes -= kFrameHeaderBytes + c->write_queue.front().payload.size();
    c->write_queue.pop_front();
  }
  stats_.frames_sent += c->frames_in_flight;
  c->frames_in_flight = 0;
  if (!c->write_queue.empty()) start_write(c);
}

// --- breaking connections ------------------------------------------------------

void TcpTransport::fail(const ConnectionPtr& c_ref, Severity severity, std::string_view why) {
  const ConnectionPtr c =
      c_ref;  // keep it alive: the caller's reference may be a map entry erased below
  if (c->closed) return;
  const std::string what = describe(*c);
  c->closed = true;
  c->owner = nullptr;
  error_code ignored;
  c->socket.close(ignored);
  c->handshake_timer.cancel();
  c->write_queue.clear();  // lost, as TCP loses what is in flight
  c->write_queue_bytes = 0;
  connections_.erase(c->id);
  ++stats_.connections_closed;
  switch (severity) {
    case Severity::quiet:
      rt_.debug("tcp: closing {}: {}", what, why);
      break;
    case Severity::info:
      rt_.info("tcp: closing {}: {}", what, why);
      break;
    case Severity::warn:
      rt_.warn("tcp: closing {}: {}", what, why);
      break;
    case Severity::error:
      rt_.error("tcp: closing {}: {}", what, why);
      break;
  }
  if (!c->peer) return;  // never identified: nobody to tell
  const NodeId peer = *c->peer;
  if (auto it = registered_.find(peer); it != registered_.end() && it->second == c) {
    registered_.erase(it);
    // Another live, identified connection from that peer takes over sends.
    for (const auto& [id, other] : connections_) {
      if (other->peer == peer && other->hello_received) {
        registered_.emplace(peer, other);
        rt_.debug("tcp: sends to {} now use {}", to_string(peer), describe(*other));
        break;
      }
    }
  }
  deliver_reset(peer);
}

void TcpTransport::deliver_reset(NodeId peer) {
  if (closed_) return;
  (void)deliver(Inbound{Inbound::Kind::reset, peer, {}});  // resets are always accepted
  ++stats_.resets_delivered;
}

void TcpTransport::close() {
  if (closed_) return;
  closed_ = true;
  error_code ignored;
  if (acceptor_) acceptor_->close(ignored);
  accept_retry_timer_.cancel();
  std::map<uint64_t, ConnectionPtr> doomed;
  doomed.swap(connections_);
  registered_.clear();
  for (auto& [id, c] : doomed) {
    c->closed = true;
    c->owner = nullptr;
    c->socket.close(ignored);
    c->handshake_timer.cancel();
    c->write_queue.clear();
  }
}

std::string TcpTransport::describe(const Connection& c) const {
  if (c.role == Connection::Role::dialed) {
    return fmt::format("connection {} to {} at {}", c.id, to_string(*c.peer), c.remote);
  }
  if (c.peer) return fmt::format("connection {} from {} at {}", c.id, to_string(*c.peer), c.remote);
  return fmt::format("connection {} from {} (no Hello yet)", c.id, c.remote);
}

}  // namespace wx::prod

// TcpTransport: the wx::Transport seam over real TCP (Boost.Asio), for
// production mode.
//
// Connections. There is at most one connection a node sends on per peer (its
// "registered" connection). The first send() to a peer that has none dials the
// address in the peer table; a connection accepted from a peer is registered
// under the NodeId its Hello names. Every connection starts, in each direction,
// with one Hello frame (nodes/prod/wire.proto): the dialer sends its Hello and
// then its queued frames at once; the acceptor answers with its own Hello once
// the dialer's is valid. If both nodes dial each other at once, each keeps
// sending on the connection it registered first and still reads from both;
// when a registered connection breaks, another live connection from that peer,
// if any, takes its place.
//
// Guarantees (transport.h): frames on one connection are delivered whole and
// in order. Every connection that has a known peer (dialed, or accepted with a
// valid Hello) yields exactly one Inbound{reset, peer} when it breaks — peer
// close, I/O error, failed dial, handshake timeout, protocol violation, write
// queue overflow, or inbox overflow; whatever was queued on it is lost. If the
// inbox is full when a reset is due, the reset waits and is retried until it
// fits (a reset for a peer already waiting is merged into it).
//
// Protection: a frame longer than frame_bytes_max, a missing, empty, garbled or
// wrong-version Hello, or a Hello naming the wrong node is logged as an error
// naming the remote endpoint, and closes that one connection; the transport
// keeps serving every other. Each connection's unsent bytes are bounded
// (write_queue_bytes_max; overflow closes it), and so is the number of
// connections (connections_max; extra accepts are closed at once).
//
// Threading and lifetime: single-threaded, on the io_context the owning
// Runtime runs. close() (also run by the destructor) closes every socket and
// delivers nothing more; no handler touches the transport afterwards, even if
// the io_context runs on after it is destroyed.
#pragma once

#include "nodes/prod/prod_only.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "nodes/runtime/runtime.h"
#include "nodes/runtime/transport.h"

namespace wx::prod {

// Version of the framing + Hello protocol; a Hello with another is refused.
constexpr uint32_t kProtocolVersion = 1;
// Largest serialized Hello accepted; the first frame on a connection is read
// with this limit, so a hostile client cannot make us buffer megabytes
// before it has identified itself.
constexpr size_t kHelloBytesMax = 64;
// Unsent bytes (headers included) one connection may hold before it is
// declared broken.
constexpr size_t kWriteQueueBytesMaxDefault = 64u << 20;
// Time from dial (or accept) until the peer's Hello must have arrived.
constexpr Duration kHandshakeTimeoutDefault = seconds(5);
// Open connections (dialed + accepted, handshaking or not).
constexpr size_t kConnectionsMaxDefault = 1024;
// Frames handed to one gathered write.
constexpr size_t kWriteBatchFramesMax = 64;
// Bytes requested per socket read.
constexpr size_t kReadChunkBytes = 64u << 10;
// Pause before accepting again after accept() failed (e.g. out of fds).
constexpr Duration kAcceptRetryDelay = milliseconds(100);

struct TcpTransportConfig {
  // Where to dial each peer. Peers that dial us need no entry.
  std::map<NodeId, boost::asio::ip::tcp::endpoint> peers;
  size_t frame_bytes_max = kFrameBytesMaxDefault;
  size_t inbox_frames_max = kInboxFramesMaxDefault;
  size_t write_queue_bytes_max = kWriteQueueBytesMaxDefault;
  Duration handshake_timeout = kHandshakeTimeoutDefault;
  size_t connections_max = kConnectionsMaxDefault;
};

class TcpTransport final : public Transport {
 public:
  struct Stats {
    uint64_t connections_dialed = 0;
    uint64_t connections_accepted = 0;
    uint64_t connections_closed = 0;
    uint64_t connections_refused = 0;  // accepted beyond connections_max
    uint64_t protocol_errors = 0;      // bad frame or Hello from the remote side
    uint64_t dial_failures = 0;
    uint64_t write_queue_overflows = 0;
    uint64_t inbox_overflows = 0;
    uint64_t frames_sent = 0;  // handed to the kernel
    uint64_t frames_received = 0;
    uint64_t resets_delivered = 0;
  };

  // Throws std::invalid_argument if frame_bytes_max cannot be framed.
  TcpTransport(Runtime& rt, boost::asio::io_context& io, NodeId self, TcpTransportConfig config);
  ~TcpTransport() override;

  // Starts accepting on host:port (host is an IP address literal; port 0
  // picks a free port). Returns the bound port. Throws std::system_error (or
  // std::invalid_argument for a malformed host) naming the address on failure.
  // At most once per transport.
  uint16_t listen(std::string_view host, uint16_t port);
  uint16_t listen(const boost::asio::ip::tcp::endpoint& endpoint);
  // The bound endpoint, if listening.
  std::optional<boost::asio::ip::tcp::endpoint> listen_endpoint() const;

  // transport.h: frame_too_large, to_self, unknown_peer (no connection and no
  // address), else ok. After close(), frames are dropped and `ok` returned.
  [[nodiscard]] SendStatus send(NodeId to, std::string frame) override;

  // Closes the listener and every connection without delivering resets. Idempotent.
  void close();

  // Adds or replaces a peer's address; an existing connection is kept.
  void set_peer(NodeId peer, const boost::asio::ip::tcp::endpoint& endpoint);

  const Stats& stats() const { return stats_; }
  size_t connection_count() const { return connections_.size(); }
  // Whether frames to `peer` would go out on an existing connection.
  bool has_connection(NodeId peer) const { return registered_.count(peer) != 0; }

 private:
  struct Connection;
  using ConnectionPtr = std::shared_ptr<Connection>;
  enum class Severity : uint8_t { quiet, info, warn, error };

  void accept_next();
  void on_accept(const boost::system::error_code& ec, boost::asio::ip::tcp::socket socket);
  ConnectionPtr dial(NodeId peer, const boost::asio::ip::tcp::endpoint& endpoint);
  void on_connected(const ConnectionPtr& c, const boost::system::error_code& ec);
  void start_handshake_timer(const ConnectionPtr& c);
  void start_read(const ConnectionPtr& c);
  void on_read(const ConnectionPtr& c, const boost::system::error_code& ec, size_t bytes);
  bool on_hello(const ConnectionPtr& c, const std::string& bytes);
  void queue_frame(const ConnectionPtr& c, std::string payload);
  void queue_hello(const ConnectionPtr& c);
  void start_write(const ConnectionPtr& c);
  void on_written(const ConnectionPtr& c, const boost::system::error_code& ec);
  // Breaks `c`: logs `why` at `severity`, unregisters it, closes the socket,
  // and queues the reset if its peer is known. Idempotent.
  void fail(const ConnectionPtr& c, Severity severity, std::string_view why);
  void deliver_reset(NodeId peer);
  std::string describe(const Connection& c) const;

  Runtime& rt_;
  boost::asio::io_context& io_;
  const NodeId self_;
  TcpTransportConfig config_;
  Stats stats_;
  bool closed_ = false;
  uint64_t next_connection_id_ = 1;

  std::optional<boost::asio::ip::tcp::acceptor> acceptor_;
  boost::asio::steady_timer accept_retry_timer_;
  // Every open connection, by id (creation order).
  std::map<uint64_t, ConnectionPtr> connections_;
  // The connection sends to each peer go out on.
  std::map<NodeId, ConnectionPtr> registered_;


  // Handlers hold a weak_ptr to this; it expires with the transport, so a
  // handler that runs after destruction returns without touching it.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace wx::prod

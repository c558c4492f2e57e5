// Length-prefixed framing for the production TCP transport.
//
// On the wire a frame is a 4-byte big-endian payload length followed by that
// many payload bytes. `FrameDecoder` turns a byte stream, fed in whatever
// pieces the socket returns, back into whole frames, in order. It is pure code:
// no sockets, no clocks, no logging.
//
// Guarantees: the decoder never buffers more than one incomplete frame plus
// the bytes of the last feed, and never accepts a declared length above its
// frame_bytes_max (nor a zero length when empty frames are rejected). On such a
// violation it enters a sticky error state with a message saying what was
// wrong; from then on it returns no frames and ignores further input, because
// the stream can no longer be trusted to be in step.
#pragma once

#include "nodes/prod/prod_only.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "nodes/runtime/transport.h"

namespace wx::prod {

constexpr size_t kFrameHeaderBytes = 4;
// The largest length the 4-byte header can express.
constexpr size_t kFrameBytesMaxEncodable = 0xFFFF'FFFFu;

// The 4-byte big-endian header for a payload of `payload_bytes`.
// Precondition: payload_bytes <= kFrameBytesMaxEncodable (asserted).
std::array<char, kFrameHeaderBytes> encode_frame_header(size_t payload_bytes);

// Header followed by payload, as one string. Throws std::length_error if the
// payload cannot be expressed in 4 bytes.
std::string encode_frame(std::string_view payload);

// Whether a zero-length frame is a legal frame or a protocol violation.
enum class EmptyFrames : uint8_t { allowed, rejected };

class FrameDecoder {
 public:
  // Throws std::invalid_argument if frame_bytes_max > kFrameBytesMaxEncodable.
  explicit FrameDecoder(size_t frame_bytes_max = kFrameBytesMaxDefault,
                        EmptyFrames empty_frames = EmptyFrames::allowed);

  // Appends bytes read from the stream. Ignored once the decoder has failed.
  void feed(std::string_view bytes);

  // The next whole frame's payload, or nullopt if none is complete yet (or the
  // decoder has failed). A header declaring an illegal length puts the decoder
  // in the error state as soon as its 4 bytes have arrived, without waiting
  // for the body.
  std::optional<std::string> next();

  bool failed() const { return failed_; }
  // Why the decoder failed; empty while it has not.
  const std::string& error() const { return error_; }

  // Changes the limit for frames whose header has not been read yet (for
  // example a small limit for a handshake frame, then the normal one).
  // Throws std::invalid_argument like the constructor.
  void set_frame_bytes_max(size_t frame_bytes_max);
  size_t frame_bytes_max() const { return frame_bytes_max_; }

  // Bytes received but not yet returned as frames.
  size_t buffered_bytes() const { return buffer_.size() - read_offset_; }
  // Frames returned so far.
  uint64_t frames_decoded() const { return frames_decoded_; }

 private:
  void fail(std::string message);

  size_t frame_bytes_max_;
  EmptyFrames empty_frames_;
  std::string buffer_;
  size_t read_offset_ = 0;  // bytes of buffer_ already consumed
  uint64_t frames_decoded_ = 0;
  bool failed_ = false;
  std::string error_;
};

}  // namespace wx::prod

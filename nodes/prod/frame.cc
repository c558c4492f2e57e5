#include "nodes/prod/frame.h"

#include <fmt/format.h>

#include <cassert>
#include <stdexcept>
#include <utility>

namespace wx::prod {

namespace {

void check_limit(size_t frame_bytes_max) {
  if (frame_bytes_max > kFrameBytesMaxEncodable) {
    throw std::invalid_argument(
        fmt::format("frame_bytes_max {} exceeds the {} a 4-byte length can express",
                    frame_bytes_max, kFrameBytesMaxEncodable));
  }
}

uint32_t decode_header(const char* p) {
  const auto b = [p](int i) { return static_cast<uint32_t>(static_cast<unsigned char>(p[i])); };
  return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

}  // namespace

std::array<char, kFrameHeaderBytes> encode_frame_header(size_t payload_bytes) {
  assert(payload_bytes <= kFrameBytesMaxEncodable);
  const auto n = static_cast<uint32_t>(payload_bytes);
  return {static_cast<char>((n >> 24) & 0xFF), static_cast<char>((n >> 16) & 0xFF),
          static_cast<char>((n >> 8) & 0xFF), static_cast<char>(n & 0xFF)};
}

std::string encode_frame(std::string_view payload) {
  if (payload.size() > kFrameBytesMaxEncodable) {
    throw std::length_error(
        fmt::format("frame payload of {} bytes exceeds the {} a 4-byte length can express",
                    payload.size(), kFrameBytesMaxEncodable));
  }
  const auto header = encode_frame_header(payload.size());
  std::string out;
  out.reserve(kFrameHeaderBytes + payload.size());
  out.append(header.data(), header.size());
  out.append(payload);
  return out;
}

FrameDecoder::FrameDecoder(size_t frame_bytes_max, EmptyFrames empty_frames)
    : frame_bytes_max_(frame_bytes_max), empty_frames_(empty_frames) {
  check_limit(frame_bytes_max);
}

void FrameDecoder::set_frame_bytes_max(size_t frame_bytes_max) {
  check_limit(frame_bytes_max);
  frame_bytes_max_ = frame_bytes_max;
}

void FrameDecoder::feed(std::string_view bytes) {
  if (failed_ || bytes.empty()) return;
  // Drop consumed bytes before growing, so the buffer holds at most one
  // partial frame plus this feed.
  if (read_offset_ == buffer_.size()) {
    buffer_.clear();
    read_offset_ = 0;
  } else if (read_offset_ > 0) {
    buffer_.erase(0, read_offset_);
    read_offset_ = 0;
  }
  buffer_.append(bytes);
}

std::optional<std::string> FrameDecoder::next() {
  if (failed_) return std::nullopt;
  const size_t available = buffer_.size() - read_offset_;
  if (available < kFrameHeaderBytes) return std::nullopt;
  const size_t length = decode_header(buffer_.data() + read_offset_);
  if (length > frame_bytes_max_) {
    fail(fmt::format("frame length {} exceeds frame_bytes_max {}", length, frame_bytes_max_));
    return std::nullopt;
  }
  if (length == 0 && empty_frames_ == EmptyFrames::rejected) {
    fail("zero-length frame where empty frames are not allowed");
    return std::nullopt;
  }
  if (available - kFrameHeaderBytes < length) return std::nullopt;
  std::string frame = buffer_.substr(read_offset_ + kFrameHeaderBytes, length);
  read_offset_ += kFrameHeaderBytes + length;
  if (read_offset_ == buffer_.size()) {
    buffer_.clear();
    read_offset_ = 0;
  }
  ++frames_decoded_;
  return frame;
}

void FrameDecoder::fail(std::string message) {
  failed_ = true;
  error_ = std::move(message);
  buffer_.clear();
  buffer_.shrink_to_fit();
  read_offset_ = 0;
}

}  // namespace wx::prod

// FrameDecoder and frame encoding (nodes/prod/frame.h): whole frames, frames
// split across reads, several frames per read, and the error state for
// illegal lengths.
#include "nodes/prod/frame.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace wx::prod {
namespace {

using namespace std::string_literals;

std::vector<std::string> drain(FrameDecoder& d) {
  std::vector<std::string> out;
  while (auto f = d.next()) out.push_back(std::move(*f));
  return out;
}

TEST(Frame, HeaderIsBigEndianLength) {
  EXPECT_EQ(encode_frame("abc"), "\0\0\0\3abc"s);
  EXPECT_EQ(encode_frame(""), "\0\0\0\0"s);
  const auto h = encode_frame_header(0x01020304);
  EXPECT_EQ(std::string(h.data(), h.size()), "\x01\x02\x03\x04"s);
  const auto max = encode_frame_header(kFrameBytesMaxEncodable);
  EXPECT_EQ(std::string(max.data(), max.size()), "\xff\xff\xff\xff"s);
}

TEST(FrameDecoder, WholeFrameInOneFeed) {
  FrameDecoder d;
  d.feed(encode_frame("hello"));
  EXPECT_EQ(drain(d), std::vector<std::string>{"hello"});
  EXPECT_FALSE(d.failed());
  EXPECT_EQ(d.buffered_bytes(), 0u);
  EXPECT_EQ(d.frames_decoded(), 1u);
}

TEST(FrameDecoder, SeveralFramesInOneFeedComeOutInOrder) {
  FrameDecoder d;
  d.feed(encode_frame("one") + encode_frame("") + encode_frame("three") +
         encode_frame(std::string(1000, 'x')));
  const auto frames = drain(d);
  ASSERT_EQ(frames.size(), 4u);
  EXPECT_EQ(frames[0], "one");
  EXPECT_EQ(frames[1], "");
  EXPECT_EQ(frames[2], "three");
  EXPECT_EQ(frames[3], std::string(1000, 'x'));
}

TEST(FrameDecoder, FrameSplitByteByByte) {
  const std::string wire = encode_frame("split me") + encode_frame("and me");
  FrameDecoder d;
  std::vector<std::string> frames;
  for (char ch : wire) {
    d.feed(std::string_view(&ch, 1));
    for (auto& f : drain(d)) frames.push_back(std::move(f));
  }
  EXPECT_EQ(frames, (std::vector<std::string>{"split me", "and me"}));
  EXPECT_EQ(d.buffered_bytes(), 0u);
}

TEST(FrameDecoder, SplitInsideHeaderAndAcrossFrameBoundary) {
  const std::string wire = encode_frame("abcdef") + encode_frame("ghij");
  // Cut 1: inside the first header; cut 2: inside the second frame's header.
  FrameDecoder d;
  d.feed(wire.substr(0, 2));
  EXPECT_FALSE(d.next());
  d.feed(wire.substr(2, 10));  // rest of header 1, body 1, first 2 bytes of header 2
  EXPECT_EQ(drain(d), std::vector<std::string>{"abcdef"});
  EXPECT_EQ(d.buffered_bytes(), 2u);
  d.feed(wire.substr(12));
  EXPECT_EQ(drain(d), std::vector<std::string>{"ghij"});
}

TEST(FrameDecoder, IncompleteBodyWaits) {
  FrameDecoder d;
  const std::string wire = encode_frame(std::string(100, 'y'));
  d.feed(wire.substr(0, 50));
  EXPECT_FALSE(d.next());
  EXPECT_FALSE(d.failed());
  EXPECT_EQ(d.buffered_bytes(), 50u);
  d.feed(wire.substr(50));
  EXPECT_EQ(drain(d), std::vector<std::string>{std::string(100, 'y')});
}

TEST(FrameDecoder, FrameOfExactlyTheMaximumIsAccepted) {
  FrameDecoder d(16);
  d.feed(encode_frame(std::string(16, 'm')));
  EXPECT_EQ(drain(d), std::vector<std::string>{std::string(16, 'm')});
  EXPECT_FALSE(d.failed());
}

TEST(FrameDecoder, OversizeLengthFailsAsSoonAsTheHeaderArrives) {
  FrameDecoder d(16);
  d.feed("\0\0\0\x11"s);  // 17 > 16, and no body sent at all
  EXPECT_FALSE(d.next());
  ASSERT_TRUE(d.failed());
  EXPECT_NE(d.error().find("17"), std::string::npos) << d.error();
  EXPECT_NE(d.error().find("frame_bytes_max 16"), std::string::npos) << d.error();
}

TEST(FrameDecoder, HugeLengthPrefixWithDefaultLimit) {
  FrameDecoder d;  // kFrameBytesMaxDefault
  d.feed("\xff\xff\xff\xff"s);
  EXPECT_FALSE(d.next());
  ASSERT_TRUE(d.failed());
  EXPECT_NE(d.error().find("4294967295"), std::string::npos) << d.error();
}

TEST(FrameDecoder, ErrorIsStickyAndLaterInputIgnored) {
  FrameDecoder d(8);
  d.feed(encode_frame("ok") + "\0\0\1\0"s);  // a good frame, then 256 > 8
  EXPECT_EQ(d.next(), std::optional<std::string>("ok"));
  EXPECT_FALSE(d.next());
  ASSERT_TRUE(d.failed());
  const std::string first_error = d.error();
  d.feed(encode_frame("later"));
  EXPECT_FALSE(d.next());
  EXPECT_EQ(d.error(), first_error);
  EXPECT_EQ(d.buffered_bytes(), 0u);
}

TEST(FrameDecoder, EmptyFramesAllowedByDefault) {
  FrameDecoder d;
  d.feed(encode_frame("") + encode_frame(""));
  EXPECT_EQ(drain(d), (std::vector<std::string>{"", ""}));
  EXPECT_FALSE(d.failed());
}

TEST(FrameDecoder, EmptyFrameRejectedWhenConfigured) {
  FrameDecoder d(kFrameBytesMaxDefault, EmptyFrames::rejected);
  d.feed(encode_frame("x") + encode_frame(""));
  EXPECT_EQ(d.next(), std::optional<std::string>("x"));
  EXPECT_FALSE(d.next());
  ASSERT_TRUE(d.failed());
  EXPECT_NE(d.error().find("zero-length"), std::string::npos) << d.error();
}

TEST(FrameDecoder, LimitCanBeRaisedAfterAHandshakeFrame) {
  FrameDecoder d(4);
  d.feed(encode_frame("hi") + encode_frame("a longer frame"));
  EXPECT_EQ(d.next(), std::optional<std::string>("hi"));
  d.set_frame_bytes_max(64);
  EXPECT_EQ(d.next(), std::optional<std::string>("a longer frame"));
  EXPECT_FALSE(d.failed());
}

TEST(FrameDecoder, LimitBeyondFourBytesIsRefused) {
  EXPECT_THROW(FrameDecoder(kFrameBytesMaxEncodable + 1), std::invalid_argument);
  FrameDecoder d;
  EXPECT_THROW(d.set_frame_bytes_max(kFrameBytesMaxEncodable + 1), std::invalid_argument);
}

TEST(FrameDecoder, BufferDoesNotGrowWithConsumedFrames) {
  FrameDecoder d;
  const std::string wire = encode_frame(std::string(100, 'z'));
  for (int i = 0; i < 1000; ++i) {
    d.feed(wire.substr(0, 60));
    EXPECT_FALSE(d.next());
    d.feed(wire.substr(60));
    ASSERT_TRUE(d.next());
    EXPECT_EQ(d.buffered_bytes(), 0u);
  }
  EXPECT_EQ(d.frames_decoded(), 1000u);
}

}  // namespace
}  // namespace wx::prod

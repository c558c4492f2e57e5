#include "sim/report/rpc_frame.h"

#include <iterator>

namespace wx::sim::report {
namespace {

// A cursor over protobuf wire-format bytes. Every read checks bounds; a
// malformed input makes `ok` false and the caller gives up.
struct Reader {
  const unsigned char* p;
  const unsigned char* end;
  bool ok = true;

  bool done() const { return p >= end; }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p >= end) break;
      const unsigned char b = *p++;
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    ok = false;
    return 0;
  }
  // A length-delimited field's bytes.
  std::string_view bytes() {
    const uint64_t n = varint();
    if (!ok || n > static_cast<uint64_t>(end - p)) {
      ok = false;
      return {};
    }
    std::string_view s(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
    p += n;
    return s;
  }
  // Skips a field of wire type `type` (0 varint, 1 fixed64, 2 length, 5 fixed32).
  void skip(uint32_t type) {
    switch (type) {
      case 0: (void)varint(); return;
      case 1: fixed(8); return;
      case 2: (void)bytes(); return;
      case 5: fixed(4); return;
      default: ok = false; return;  // groups (3, 4) are not used by our protos
    }
  }
  void fixed(size_t n) {
    if (static_cast<size_t>(end - p) < n) {
      ok = false;
      return;
    }
    p += n;
  }
};

Reader reader_of(std::string_view s) {
  const auto* b = reinterpret_cast<const unsigned char*>(s.data());
  return Reader{b, b + s.size()};
}

bool method_name_ok(std::string_view m) {
  if (m.empty() || m.size() > 128) return false;
  for (char c : m) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) return false;
  }
  return true;
}

}  // namespace

RpcFrameInfo classify_rpc_frame(std::string_view frame) {
  // Frame { oneof body { Request request = 1; Response response = 2; } }:
  // exactly one length-delimited field 1 or 2 spanning the whole frame.
  Reader r = reader_of(frame);
  const uint64_t key = r.varint();
  if (!r.ok) return {};
  const uint64_t field = key >> 3;
  if ((key & 7) != 2 || (field != 1 && field != 2)) return {};
  const std::string_view body = r.bytes();
  if (!r.ok || !r.done()) return {};

  RpcFrameInfo info;
  Reader b = reader_of(body);
  while (b.ok && !b.done()) {
    const uint64_t k = b.varint();
    if (!b.ok) break;
    const uint64_t f = k >> 3;
    const uint32_t type = static_cast<uint32_t>(k & 7);
    if (f == 1 && type == 0) {
      info.call_id = b.varint();
    } else if (field == 1 && f == 2 && type == 2) {
      info.method = b.bytes();
    } else if (field == 1 && f == 3 && type == 0) {
      info.timeout_ns = static_cast<int64_t>(b.varint());  // int64: two's complement in 10 bytes
    } else if (field == 2 && f == 2 && type == 0) {
      info.status = static_cast<int32_t>(b.varint());
    } else {
      b.skip(type);
    }
  }
  if (!b.ok || info.call_id == 0) return {};
  if (field == 1) {
    if (!method_name_ok(info.method)) return {};
    info.kind = RpcFrameInfo::Kind::request;
  } else {
    info.method = {};
    info.kind = RpcFrameInfo::Kind::response;
  }
  return info;
}

std::string_view rpc_status_name(int32_t status) {
  // wire::StatusCode (nodes/rpc/rpc.proto).
  static constexpr std::string_view kNames[] = {"OK",         "TIMEOUT",         "UNAVAILABLE", "OVERLOADED",
                                                "UNAUTHENTICATED", "INVALID_ARGUMENT", "INTERNAL",    "NOT_FOUND"};
  if (status >= 0 && static_cast<size_t>(status) < std::size(kNames)) return kNames[status];
  return "STATUS_OTHER";
}

}  // namespace wx::sim::report

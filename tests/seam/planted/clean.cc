// Clean node code: what node files legitimately use must pass every check.
// The standard library (which pulls in gthr, <pthread.h> and <time.h>
// transitively), fmt formatting, a generated protobuf message, coroutines,
// <cstdlib> and <cstdio> without the clock/random/env calls, and the Runtime.
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "nodes/rpc/rpc.pb.h"
#include "nodes/runtime/runtime.h"
#include "nodes/runtime/sqlite.h"

namespace wx::rpc::planted {

Task<int> planted_clean_task(Runtime& rt) {
  co_await rt.sleep(milliseconds(5));
  co_return static_cast<int>(rt.rng().uniform(3));
}

std::string planted_clean(Runtime& rt, int x) {
  std::map<int, std::string> m{{1, fmt::format("{}:{}", x, to_string(rt.now()))}};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%d", std::abs(x));
  auto p = std::make_shared<std::string>(buf);
  wire::Request req;
  req.set_method(*p);
  return m[1] + req.SerializeAsString() + std::to_string(std::strtoull("7", nullptr, 10));
}

}  // namespace wx::rpc::planted

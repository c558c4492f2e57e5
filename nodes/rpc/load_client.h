// LoadClient: an open-loop load generator node.
//
// Issues calls to a service at Poisson arrivals of `rate_per_s` (open loop:
// arrivals do not wait for responses, as real users do not), each through a
// Router with the given timeout, and records every outcome. Used by the
// overload tests, the RPC benchmarks and, later, workload models.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "nodes/rpc/router.h"
#include "nodes/runtime/node.h"

namespace wx::rpc {

struct CallRecord {
  TimePoint sent_at;
  Duration latency;
  StatusCode code;
};

struct LoadConfig {
  std::string service;
  MethodSpec method;
  std::string request;  // serialized request payload, sent as is
  double rate_per_s = 100;
  Duration start_delay = Duration::zero();
  Duration duration = seconds(10);  // stop issuing after this long
  CallOptions options;              // timeout, priorities, ticket
  ServiceDirectory directory;
  Locality self;
  RouterConfig router;
  size_t in_flight_max = 100'000;  // beyond this, arrivals are counted as shed
  size_t records_max = 1u << 22;   // outcomes kept individually
  // Also called with every outcome, if set: lets a harness keep outcomes
  // past the node's crash (the node's own records die with it).
  std::function<void(const CallRecord&)> on_record;
};


class LoadClient final : public Node {
 public:
  LoadClient(Runtime& rt, LoadConfig config);
  void start() override;
  std::string_view kind() const override { return "load"; }

  const std::vector<CallRecord>& records() const { return records_; }
  uint64_t issued() const { return issued_; }
  uint64_t shed() const { return shed_; }
  size_t in_flight() const { return in_flight_; }
  const Router& router() const { return router_; }
  const RpcEndpoint& endpoint() const { return endpoint_; }

 private:
  Task<void> arrivals();
  Task<void> one_call(TimePoint sent_at);

  Runtime& rt_;
  LoadConfig config_;
  RpcEndpoint endpoint_;
  Router router_;
  std::vector<CallRecord> records_;
  uint64_t issued_ = 0, shed_ = 0;
  size_t in_flight_ = 0;
};

}  // namespace wx::rpc

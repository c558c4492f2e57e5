// Service directory and zone-aware routing with fail-over.
//
// ServiceDirectory lists, per service name, its instances with their
// datacenter and zone. A Router (one per calling node) sends a call to an
// instance of a service, preferring the caller's own zone, then the other
// zones of its datacenter, then other datacenters; inside a tier it rotates
// round robin. An instance that just failed with timeout or unavailable is
// "suspect" for `suspect_for` and tried last.
//
// Retries and fail-over happen only for idempotent methods, only on
// retryable statuses (timeout, unavailable, overloaded), at most
// `attempts_max` attempts, each to an instance not yet tried in this call when
// one exists, with exponential backoff and jitter, and never past the call's
// deadline. An idempotent call's budget is split over the attempts left, so a
// silent instance (partition) leaves time to fail over. A non-idempotent
// method gets exactly one attempt with the whole budget: it is never retried,
// silently or otherwise; its caller sees the failure.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "nodes/rpc/endpoint.h"

namespace wx::rpc {

struct Instance {
  NodeId node;
  std::string datacenter;
  std::string zone;
};

struct Locality {
  std::string datacenter;
  std::string zone;
};

class ServiceDirectory {
 public:
  void add(const std::string& service, Instance instance) { services_[service].push_back(std::move(instance)); }
  // Empty if the service is unknown.
  const std::vector<Instance>& instances(std::string_view service) const;
  const std::map<std::string, std::vector<Instance>, std::less<>>& all() const { return services_; }

 private:
  std::map<std::string, std::vector<Instance>, std::less<>> services_;
};

struct RouterConfig {
  int attempts_max = 3;
  Duration backoff_initial = milliseconds(2);
  Duration backoff_max = milliseconds(100);
  Duration suspect_for = seconds(5);
};

class Router {
 public:
  // `directory` must outlive the Router (it is usually shared config).
  Router(Runtime& rt, RpcEndpoint& endpoint, const ServiceDirectory& directory, Locality self,
         RouterConfig config = {});

  Task<Result<std::string>> call_raw(std::string service, const MethodSpec& spec, std::string payload,
                                     CallOptions options);

  template <class Resp, class Req>
  Task<Result<Resp>> call(std::string service, const MethodSpec& spec, const Req& request, CallOptions options) {
    return typed<Resp>(*this, std::move(service), spec, request.SerializeAsString(), std::move(options));
  }

  struct Stats {
    uint64_t calls = 0, attempts = 0, retries = 0, failovers = 0;
  };
  const Stats& stats() const { return stats_; }
  // The order in which instances of `service` would be tried now.
  std::vector<NodeId> candidates(std::string_view service);

 private:
  template <class Resp>
  static Task<Result<Resp>> typed(Router& r, std::string service, const MethodSpec& spec, std::string payload,
                                  CallOptions options) {
    Result<std::string> raw = co_await r.call_raw(std::move(service), spec, std::move(payload), std::move(options));
    if (!raw.ok()) co_return raw.status();
    Resp resp;
    if (!resp.ParseFromString(raw.value())) co_return Status{StatusCode::internal, "response does not parse"};
    co_return resp;
  }
  int tier(const Instance& i) const;

  Runtime& rt_;
  RpcEndpoint& endpoint_;
  const ServiceDirectory& directory_;
  Locality self_;
  RouterConfig config_;
  std::map<std::string, uint64_t, std::less<>> round_robin_;
  std::map<NodeId, TimePoint> suspect_until_;
  Stats stats_;
};

}  // namespace wx::rpc

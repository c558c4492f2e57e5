// Selector: names a set of nodes by where they are placed.
//
// A fault is aimed at nodes through selectors: one node (by id), every node
// on a host, in a zone, or in a datacenter. A selector is matched against a
// node's Placement each time a rule is evaluated, so a node added after the
// fault was applied is covered too. Names are matched exactly; a zone
// selector without a datacenter matches a zone of that name in every
// datacenter, one with a datacenter only that one. Selectors are plain values:
// they carry no pointers, so rules built from them are deterministic.
//
// Text form (for logs, the trace and scenario files): "n3", "host:h1",
// "zone:sh-a", "zone:sh/sh-a" (zone sh-a of datacenter sh), "dc:sh".
#pragma once

#include "sim/sim_only.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nodes/runtime/node.h"
#include "sim/topology.h"

namespace wx::sim {

struct Selector {
  enum class Kind : uint8_t { node, host, zone, datacenter };
  Kind kind = Kind::node;
  NodeId node;                // for Kind::node
  std::string name;           // host, zone or datacenter name
  std::string in_datacenter;  // for Kind::zone: restricts to this datacenter if not empty

  Selector() = default;
  // A node id is a selector of that one node, so `{a, b}` reads naturally.
  Selector(NodeId id) : kind(Kind::node), node(id) {}  // NOLINT(google-explicit-constructor)

  static Selector of(NodeId id) { return Selector(id); }
  static Selector host(std::string name);
  static Selector zone(std::string name, std::string datacenter = "");
  static Selector datacenter(std::string name);
  // Parses the text form above; nullopt if malformed.
  static std::optional<Selector> parse(std::string_view text);

  bool matches(NodeId id, const Placement& placement) const;
  std::string describe() const;
  bool operator==(const Selector&) const = default;
};

using Selectors = std::vector<Selector>;

bool matches_any(const Selectors& selectors, NodeId id, const Placement& placement);
// "[zone:a, n3]"
std::string describe(const Selectors& selectors);

}  // namespace wx::sim

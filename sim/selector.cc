#include "sim/selector.h"

#include <charconv>

namespace wx::sim {

Selector Selector::host(std::string name) {
  Selector s;
  s.kind = Kind::host;
  s.name = std::move(name);
  return s;
}

Selector Selector::zone(std::string name, std::string datacenter) {
  Selector s;
  s.kind = Kind::zone;
  s.name = std::move(name);
  s.in_datacenter = std::move(datacenter);
  return s;
}

Selector Selector::datacenter(std::string name) {
  Selector s;
  s.kind = Kind::datacenter;
  s.name = std::move(name);
  return s;
}

std::optional<Selector> Selector::parse(std::string_view text) {
  auto after = [&](std::string_view prefix) -> std::optional<std::string> {
    if (text.substr(0, prefix.size()) != prefix || text.size() == prefix.size())
      return std::nullopt;
    return std::string(text.substr(prefix.size()));
  };
  if (auto h = after("host:")) return host(*h);
  if (auto d = after("dc:")) return datacenter(*d);
  if (auto z = after("zone:")) {
    const size_t slash = z->find('/');
    if (slash == std::string::npos) return zone(*z);
    if (slash == 0 || slash + 1 == z->size()) return std::nullopt;
    return zone(z->substr(slash + 1), z->substr(0, slash));
  }
  if (text.size() >= 2 && text[0] == 'n') {
    uint32_t v = 0;
    const char* first = text.data() + 1;
    const char* last = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(first, last, v);
    if (ec == std::errc() && ptr == last && v != 0) return Selector(NodeId{v});
  }
  return std::nullopt;
}

bool Selector::matches(NodeId id, const Placement& p) const {
  switch (kind) {
    case Kind::node:
      return id == node;
    case Kind::host:
      return !p.host.empty() && p.host == name;
    case Kind::zone:
      return p.zone == name && (in_datacenter.empty() || p.datacenter == in_datacenter);
    case Kind::datacenter:
      return p.datacenter == name;
  }
  return false;
}

std::string Selector::describe() const {
  switch (kind) {
    case Kind::node:
      return to_string(node);
    case Kind::host:
      return "host:" + name;
    case Kind::zone:
      return in_datacenter.empty() ? "zone:" + name : "zone:" + in_datacenter + "/" + name;
    case Kind::datacenter:
      return "dc:" + name;
  }
  return "?";
}

bool matches_any(const Selectors& selectors, NodeId id, const Placement& placement) {
  for (const Selector& s : selectors) {
    if (s.matches(id, placement)) return true;
  }
  return false;
}

std::string describe(const Selectors& selectors) {
  std::string out = "[";
  for (size_t i = 0; i < selectors.size(); ++i) {
    if (i) out += ", ";
    out += selectors[i].describe();
  }
  return out + "]";
}

}  // namespace wx::sim

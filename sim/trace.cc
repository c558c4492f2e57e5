#include "sim/trace.h"

#include <cstdio>

namespace wx::sim {

std::string_view to_string(TraceKind k) {
  switch (k) {
    case TraceKind::callback: return "callback";
    case TraceKind::timer: return "timer";
    case TraceKind::deliver: return "deliver";
    case TraceKind::reset: return "reset";
    case TraceKind::start: return "start";
    case TraceKind::crash: return "crash";
    case TraceKind::wipe: return "wipe";
    case TraceKind::buggify: return "buggify";
    case TraceKind::fault: return "fault";
    case TraceKind::failure: return "failure";
  }
  return "?";
}

void Trace::write_text(std::ostream& out) const {
  char buf[160];
  for (const TraceRecord& r : records_) {
    std::snprintf(buf, sizeof buf, "%14s #%llu %-8s n%u detail=%016llx\n", to_string(r.at).c_str(),
                  static_cast<unsigned long long>(r.seq), std::string(to_string(r.tag.kind)).c_str(),
                  r.tag.node, static_cast<unsigned long long>(r.tag.detail));
    out << buf;
  }
}

}  // namespace wx::sim

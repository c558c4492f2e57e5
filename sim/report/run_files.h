// The run's files, written from a RunRecorder (run_recorder.h):
//   trace.json   Chrome trace-event JSON that opens in Perfetto
//                (https://ui.perfetto.dev): a track per node, RPC slices with
//                flow arrows from caller to callee, node lifecycle, fault and
//                phase markers, nodes up per zone;
//   metrics.csv  counters per second and per (datacenter, zone, service).
// docs/run-files.md describes both. Same recorded run, same bytes: nothing
// written depends on pointers, hash order, the locale or the wall clock.
#pragma once

#include "sim/sim_only.h"

#include <cstddef>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "sim/report/run_recorder.h"

namespace wx::sim::report {

struct TraceJsonOptions {
  // Thread tracks per node: the node's own and overlap lanes (RPC slices on
  // one track must nest; one that overlaps another without nesting goes to
  // the next lane). Slices that fit no lane are left out and counted in
  // otherData.rpc_slices_unplaced. 1 to 99.
  size_t lanes_max = 64;
  // Extra otherData fields, written in this order after the built-in ones
  // (e.g. {"scenario", "zone-outage.yaml"}).
  std::vector<std::pair<std::string, std::string>> other_data;
};

// Writes trace.json: {"traceEvents":[...],"displayTimeUnit":"ms","otherData":{...}}.
// Throws std::invalid_argument for bad options.
void write_trace_json(std::ostream& out, const RunRecorder& recorder, const TraceJsonOptions& options = {});

// Writes metrics.csv: header `second,datacenter,zone,service,counter,value`,
// one row per (bucket, group, counter) with a non-zero value, plus
// `nodes_up` for every bucket and every group with nodes (zeros included),
// sorted by (second, datacenter, zone, service, counter).
void write_metrics_csv(std::ostream& out, const RunRecorder& recorder);

}  // namespace wx::sim::report

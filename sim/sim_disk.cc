#include "sim/sim_disk.h"

#include <atomic>

namespace wx::sim {

namespace {
// Distinguishes the databases of simulations that share a process (tests,
// Python). Only used in names, never in anything a run outputs or hashes.
std::atomic<uint64_t> g_next_store_id{1};
}  // namespace

DiskStore::DiskStore() : store_id_(g_next_store_id.fetch_add(1)) {}

std::string DiskStore::uri_for(NodeId node) {
  auto it = disks_.find(node);
  if (it != disks_.end()) return it->second.uri;
  Entry e;
  e.generation = ++generations_[node];
  e.uri = "file:/wxsim-" + std::to_string(store_id_) + "-n" + std::to_string(node.value) + "-g" +
          std::to_string(e.generation) + "?vfs=memdb";
  e.keeper = sqlite::Database::open(e.uri);
  std::string uri = e.uri;
  disks_.emplace(node, std::move(e));
  return uri;
}

void DiskStore::wipe(NodeId node) { disks_.erase(node); }

sqlite::Database& SimDisk::db() {
  if (!db_.is_open()) db_ = sqlite::Database::open(uri_);
  return db_;
}

}  // namespace wx::sim

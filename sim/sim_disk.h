// Simulated disks: one SQLite database per node that outlives incarnations.
//
// Each node's database lives in SQLite's in-memory VFS (memdb) under a name
// unique to this DiskStore, node and disk generation. The store holds one
// idle "keeper" connection per disk so the database survives while no
// incarnation has it open (between a crash and a restart). An incarnation
// opens its own connection (SimDisk); a crash closes it, which rolls back any
// transaction left open — exactly the data a real crash would lose.
// `wipe` drops the keeper: the database is gone, and the next incarnation
// starts from an empty one under a new generation.
#pragma once

#include "sim/sim_only.h"

#include <map>
#include <string>

#include "nodes/runtime/disk.h"
#include "nodes/runtime/node.h"

namespace wx::sim {

class DiskStore {
 public:
  DiskStore();
  // URI of the node's current database; creates it (and its keeper) if needed.
  std::string uri_for(NodeId node);
  // Loses the node's database. The next uri_for gives a fresh one.
  void wipe(NodeId node);
  bool has_disk(NodeId node) const { return disks_.count(node) != 0; }

 private:
  struct Entry {
    uint64_t generation = 0;
    std::string uri;
    sqlite::Database keeper;
  };
  uint64_t store_id_;
  std::map<NodeId, Entry> disks_;
  std::map<NodeId, uint64_t> generations_;
};

class SimDisk final : public Disk {
 public:
  explicit SimDisk(std::string uri) : uri_(std::move(uri)) {}
  sqlite::Database& db() override;

 private:
  std::string uri_;
  sqlite::Database db_;
};

}  // namespace wx::sim

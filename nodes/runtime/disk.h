// Disk: a node's durable storage, one SQLite database per node.
//
// What survives: everything committed. A crash closes the connection and so
// rolls back any open transaction; a restart reopens the same database. A
// "wipe" fault (simulation) or deleting the data folder (production) loses it.
// In simulation the database lives in SQLite's in-memory VFS (memdb), kept
// alive across incarnations by the simulator; in production it is a file
// under the node's data folder.
#pragma once

#include "nodes/runtime/sqlite.h"

namespace wx {

class Disk {
 public:
  virtual ~Disk() = default;
  // The node's database, opened on first use in this incarnation. Throws
  // sqlite::SqliteError if it cannot be opened.
  virtual sqlite::Database& db() = 0;
};

}  // namespace wx

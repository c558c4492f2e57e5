// Builds any node of a deployment, in any world: the simulator's builder and
// the production process main both call `make_node` with their own Runtime.
//
// The node's config is its role's template from the spec with the deployment
// filled in: a KV replica gets its group's members and its replica index;
// seqsvr gets the global group and every allocator (ordered by id, so
// section % count picks the same preferred allocator everywhere); account the
// global group; contacts and inbox the shard map; every node its zone.
#pragma once

#include <memory>

#include "nodes/deploy/deployment.h"
#include "nodes/runtime/node.h"
#include "nodes/storage/seqsvr/seq_client.h"

namespace wx::deploy {

struct StartOptions {
  // True only for the very first start of a brand-new deployment: a KV
  // replica then creates its group instead of recovering from its peers.
  bool bootstrap = false;
};

// Throws std::out_of_range if `id` is not a node of `d`.
std::unique_ptr<Node> make_node(Runtime& rt, const Deployment& d, NodeId id, StartOptions options);

// What a seqsvr client in `datacenter` needs (that datacenter's allocators —
// each datacenter allocates the sequences of its own users — and the section
// size). Empty datacenter: every allocator (one-datacenter deployments).
seqsvr::SeqClientConfig seq_client_config(const Deployment& d, std::string_view datacenter = {});

}  // namespace wx::deploy

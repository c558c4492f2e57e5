// FanoutWorker: consumes the group queues and writes each group message into
// every member's inbox exactly once (see fanout_worker.h).
#include "nodes/logic/msg/fanout_worker.h"

#include <algorithm>
#include <utility>

#include "nodes/access/notify.h"
#include "nodes/runtime/channel.h"
#include "nodes/storage/inbox/inbox.pb.h"

namespace wx::msg {

struct FanoutWorker::Parallel {
  Parallel(Runtime& rt, size_t width) : done(rt, width + 1) {}
  size_t n = 0;
  size_t next = 0;
  std::function<Task<void>(size_t)> fn;
  Channel<int> done;
};

FanoutWorker::FanoutWorker(Runtime& rt, FanoutWorkerConfig config)
    : rt_(rt),
      config_(std::move(config)),
      keys_(config_.keys.keys.empty() ? std::nullopt : std::make_optional<ticket::KeyRing>(config_.keys)),
      endpoint_(rt, config_.server),
      router_(rt, endpoint_, config_.directory, config_.locality, config_.router),
      seq_(rt, endpoint_, config_.seq),
      pool_(rt, endpoint_, config_.shards, config_.kv, config_.locality.datacenter),
      queue_(rt, pool_, config_.queue),
      leases_(rt, queue_, config_.lease) {
  config_.batch_items = std::clamp<uint32_t>(config_.batch_items, 1, queue::kQueueBatchMax);
  config_.chunk_members = std::clamp<size_t>(config_.chunk_members, 1, kFanoutChunkMembersMax);
  config_.parallel_appends = std::clamp<size_t>(config_.parallel_appends, 1, kFanoutParallelMax);
  config_.stall_yield_after = std::max(config_.stall_yield_after, config_.item_budget);
}

FanoutWorker::~FanoutWorker() = default;

void FanoutWorker::start() {
  endpoint_.start();
  leases_.start();
  for (uint32_t q = 0; q < queue_.queues(); ++q) rt_.spawn(queue_loop(q), "fanout-queue");
}

Task<void> FanoutWorker::pause() {
  const int64_t ns = config_.retry_pause.ns();
  co_await rt_.sleep(nanoseconds(ns / 2 + static_cast<int64_t>(rt_.rng().uniform(static_cast<uint64_t>(ns) + 1))));
}

Task<void> FanoutWorker::parallel_worker(std::shared_ptr<Parallel> p) {
  while (p->next < p->n) {
    const size_t i = p->next++;
    co_await p->fn(i);
  }
  (void)p->done.push(0);
}

Task<void> FanoutWorker::run_parallel(size_t n, size_t width, std::function<Task<void>(size_t)> fn) {
  if (n == 0) co_return;
  const size_t workers = std::min(n, std::max<size_t>(width, 1));
  auto p = std::make_shared<Parallel>(rt_, workers);
  p->n = n;
  p->fn = std::move(fn);
  for (size_t w = 0; w < workers; ++w) rt_.spawn(parallel_worker(p), "fanout-par");
  for (size_t w = 0; w < workers; ++w) (void)co_await p->done.pop();
}

Task<void> FanoutWorker::queue_loop(uint32_t q) {
  // Since when this worker has held q without fanning out an item while
  // items were waiting (reset by every item done and by an empty queue).
  TimePoint progress_at = rt_.now();
  for (;;) {
    if (!leases_.holds(q)) {
      co_await rt_.sleep(config_.poll_interval);
      progress_at = rt_.now();
      continue;
    }
    std::optional<queue::Batch> b =
        co_await queue_.read_batch(q, config_.batch_items, rt_.now() + config_.item_budget);
    if (b && b->items.empty()) progress_at = rt_.now();
    if (!b || b->items.empty()) {
      co_await rt_.sleep(config_.poll_interval);
      continue;
    }
    ++stats_.batches;
    uint64_t done = 0;
    for (queue::QueueItem& item : b->items) {
      if (!leases_.holds(q)) break;
      if (!co_await fanout_item(q, item.payload(), rt_.now() + config_.item_budget)) {
        ++stats_.items_failed;
        break;
      }
      ++stats_.items;
      ++done;
      progress_at = rt_.now();
    }
    if (done > 0 && leases_.holds(q)) {
      ++stats_.kv_writes;
      if (co_await queue_.commit(q, b->commit_version, b->committed + done, rt_.now() + config_.item_budget)) {
        ++stats_.commits;
      }
    }
    if (done < b->items.size() && leases_.holds(q) && rt_.now() - progress_at >= config_.stall_yield_after) {
      // Holding the lease but not getting the work done: let another
      // consumer (another zone, other connections) take the queue over.
      ++stats_.lease_yields;
      rt_.info("fanout: queue {}: no item fanned out for {} ms with items waiting; yielding the queue", q,
               (rt_.now() - progress_at).ns() / 1'000'000);
      leases_.yield(q);
      progress_at = rt_.now();
    }
    if (done < b->items.size()) co_await rt_.sleep(config_.poll_interval);
  }
}

Task<bool> FanoutWorker::fanout_item(uint32_t q, std::string payload, TimePoint deadline) {
  GroupQueueItem item;
  if (!item.ParseFromString(payload)) {
    rt_.error("fanout: queue {} holds an item that does not parse; skipped", q);
    co_return true;
  }
  if (config_.group_members_observer && item.group_id() != 0) {
    GroupMembersRecord f;
    f.group_id = item.group_id();
    f.sender = item.sender();
    f.client_msg_id = item.client_msg_id();
    f.message_id = item.message_id();
    f.members.assign(item.members().begin(), item.members().end());
    config_.group_members_observer(rt_.node_id(), f);
  }
  std::vector<uint64_t> recipients, remote;
  for (uint64_t m : item.members()) {
    if (m != item.sender()) (homed_here(m) ? recipients : remote).push_back(m);
  }
  bool skip = false;
  std::optional<std::string> ticket = ticket_for(item, deadline, &skip);
  if (!ticket) {
    if (!skip) co_return false;  // not usable yet: the batch is retried
    ++stats_.items_refused;
    rt_.error("fanout: item {} of sender {} refused: its ticket is not the sender's valid ticket; skipped",
              item.message_id(), item.sender());
    co_return true;
  }
  StoredMessage stored;
  stored.set_message_id(item.message_id());
  stored.set_sender(item.sender());
  stored.set_client_msg_id(item.client_msg_id());
  stored.set_group_id(item.group_id());
  stored.set_body(item.body());
  const std::string bytes = stored.SerializeAsString();
  const size_t per = config_.chunk_members;
  for (size_t c = 0; c * per < recipients.size(); ++c) {
    std::vector<uint64_t> chunk(recipients.begin() + static_cast<std::ptrdiff_t>(c * per),
                                recipients.begin() + static_cast<std::ptrdiff_t>(std::min(recipients.size(), (c + 1) * per)));
    if (!co_await fanout_chunk(q, item, c, std::move(chunk), bytes, *ticket, deadline)) co_return false;
  }
  if (remote.empty()) co_return true;
  // Captures by reference only (like the other run_parallel calls): g++ 12
  // destroys a by-value capture of a closure temporary in a co_await
  // expression twice.
  std::vector<char> settled(remote.size(), 0);
  const std::string remote_ticket = *ticket;
  co_await run_parallel(remote.size(), config_.parallel_appends, [&, this](size_t i) -> Task<void> {
    const bool done = co_await deliver_remote(item, remote[i], remote_ticket, deadline);
    settled[i] = done ? 1 : 0;
  });
  co_return std::all_of(settled.begin(), settled.end(), [](char c) { return c != 0; });
}

bool FanoutWorker::homed_here(uint64_t uid) const {
  if (!config_.shards->multi_datacenter()) return true;
  const std::optional<std::string> home = config_.shards->home_of(uid);
  return !home || *home == config_.locality.datacenter;
}

Task<bool> FanoutWorker::deliver_remote(const GroupQueueItem& item, uint64_t member, std::string ticket,
                                        TimePoint deadline) {
  DeliverRequest req;
  *req.mutable_item() = item;
  req.mutable_item()->clear_sender_ticket();  // the call carries the ticket
  req.set_recipient(member);
  std::string service = "msg@" + config_.shards->home_of(member).value_or("");
  while (rt_.now() < deadline) {
    rpc::CallOptions o;
    o.timeout = config_.inbox_call_timeout * 2;
    o.deadline = deadline;
    o.ticket = ticket;
    ++stats_.remote_calls;
    rpc::Result<DeliverReply> r = co_await router_.call<DeliverReply>(service, kDeliverMethod, req, o);
    if (r.ok() && r.value().code() == MSG_OK) {
      ++stats_.remote_ok;
      co_return true;
    }
    if (r.ok() && r.value().code() != MSG_UNKNOWN) {
      // Definite refusal there (bad ticket, invalid item): retrying cannot help.
      ++stats_.remote_refused;
      rt_.error("fanout: msg.Deliver of {} to {} refused: {}", item.message_id(), member, r.value().error());
      co_return true;
    }
    co_await pause();
  }
  co_return false;
}

std::optional<std::string> FanoutWorker::ticket_for(const GroupQueueItem& item, TimePoint deadline, bool* skip) {
  *skip = false;
  if (!keys_) return item.sender_ticket();
  const TimePoint now = rt_.now();
  const ticket::TicketCheck c = keys_->verify_for_user(item.sender_ticket(), now, item.sender());
  if (c.ok() && c.expires_at - deadline > keys_->clock_skew_max()) return item.sender_ticket();
  if (c.ok() || c.status == ticket::TicketStatus::expired) {
    // The sender's own, authentic ticket, outlived by its queued item: the
    // item was authenticated when GroupSend enqueued it, so the worker
    // speaks for the same sender with a short-lived ticket of its own.
    const Duration ttl = std::min(config_.reissue_ttl, keys_->ttl_max());
    std::optional<std::string> fresh = keys_->issue(item.sender(), now, ttl);
    if (fresh) ++stats_.tickets_reissued;
    return fresh;
  }
  if (c.status == ticket::TicketStatus::not_yet_valid) return std::nullopt;  // clock skew: later
  *skip = true;  // forged, unknown key, another user's, malformed: never replaced
  return std::nullopt;
}

Task<std::optional<inbox::InboxCode>> FanoutWorker::append(uint64_t uid, uint64_t seq, std::string bytes,
                                                           uint64_t sender, std::string ticket, TimePoint deadline) {
  inbox::AppendRequest req;
  req.set_uid(uid);
  req.set_seq(seq);
  req.set_message(std::move(bytes));
  req.set_sender_uid(sender);
  rpc::CallOptions o;
  o.timeout = config_.inbox_call_timeout;
  o.deadline = deadline;
  o.ticket = std::move(ticket);
  ++stats_.appends;
  ++stats_.kv_writes;  // an append is one KV CAS when it applies
  rpc::Result<inbox::AppendReply> r =
      co_await router_.call<inbox::AppendReply>(std::string(kInboxServiceName), inbox::kAppendMethod, req, o);
  if (!r.ok()) co_return std::nullopt;
  if (r->code() == inbox::INBOX_OK && r->duplicate()) ++stats_.duplicates;
  co_return r->code();
}

Task<void> FanoutWorker::alloc_into(uint64_t uid, uint64_t* out) {
  seqsvr::SeqResult s = co_await seq_.alloc(uid);
  ++stats_.seq_allocs;
  *out = s.ok ? s.seq : 0;
}

Task<void> FanoutWorker::append_into(uint64_t uid, uint64_t seq, std::string bytes, uint64_t sender,
                                     std::string ticket, TimePoint deadline, std::optional<inbox::InboxCode>* out) {
  *out = co_await append(uid, seq, std::move(bytes), sender, std::move(ticket), deadline);
}

Task<bool> FanoutWorker::fanout_chunk(uint32_t q, const GroupQueueItem& item, size_t chunk,
                                      std::vector<uint64_t> members, std::string bytes, std::string ticket,
                                      TimePoint deadline) {
  const std::string key = "fanout/" + item.message_id() + "/" + std::to_string(chunk);
  queue::KvPool::Lease kv = pool_.lease(queue_.group_of(q));
  const size_t n = members.size();
  std::vector<uint64_t> seqs(n, 0);
  std::vector<bool> confirmed(n, false);
  std::vector<uint64_t> stale_seq(n, 0);  // a seq the inbox refused as stale
  auto is_stale = [&](size_t i) { return seqs[i] != 0 && seqs[i] == stale_seq[i]; };
  uint64_t version = 0;
  bool have = false;  // `version` and `seqs` reflect the stored record
  for (int round = 0; round < kFanoutRoundsMax && rt_.now() < deadline; ++round) {
    if (!have) {
      kv::KvResult g = co_await kv->get(key);
      if (g.code != kv::KvResultCode::ok) {
        co_await pause();
        continue;
      }
      std::fill(seqs.begin(), seqs.end(), 0);
      if (g.found) {
        FanoutRecord rec;
        if (!rec.ParseFromString(g.value) || rec.members_size() != rec.seqs_size()) {
          rt_.error("fanout: record {} does not parse", key);
          co_return false;
        }
        if (round == 0) ++stats_.records_reused;  // a redelivery (or a racing consumer)
        for (int i = 0; i < rec.members_size(); ++i) {
          auto it = std::lower_bound(members.begin(), members.end(), rec.members(i));
          if (it != members.end() && *it == rec.members(i)) seqs[static_cast<size_t>(it - members.begin())] = rec.seqs(i);
        }
      }
      version = g.version;
      have = true;
    }
    // 1. Seqs for members without one (or whose seq went stale), then the
    //    record, before any append with them.
    std::vector<size_t> need;
    for (size_t i = 0; i < n; ++i) {
      if (!confirmed[i] && (seqs[i] == 0 || is_stale(i))) need.push_back(i);
    }
    if (!need.empty()) {
      std::vector<uint64_t> fresh(need.size(), 0);
      co_await run_parallel(need.size(), config_.parallel_appends, [&, this](size_t j) -> Task<void> {
        return alloc_into(members[need[j]], &fresh[j]);
      });
      bool all = true;
      for (size_t j = 0; j < need.size(); ++j) all = all && fresh[j] != 0;
      if (!all) {
        co_await pause();
        continue;
      }
      std::vector<uint64_t> next = seqs;
      for (size_t j = 0; j < need.size(); ++j) next[need[j]] = fresh[j];
      FanoutRecord rec;
      for (size_t i = 0; i < n; ++i) {
        rec.add_members(members[i]);
        rec.add_seqs(next[i]);
      }
      const std::string value = rec.SerializeAsString();
      ++stats_.kv_writes;
      kv::KvResult c = co_await kv->cas(key, version, value);
      while (c.code == kv::KvResultCode::unknown && rt_.now() < deadline) {
        co_await pause();
        ++stats_.kv_writes;
        c = co_await kv->cas(key, version, value);
      }
      if (c.code != kv::KvResultCode::ok) {
        // Lost to a racing consumer (or our own unknown CAS applied): use
        // what is stored.
        ++stats_.record_races;
        have = false;
        continue;
      }
      version = c.version;
      seqs = std::move(next);
    }
    // 2. Appends of every member not confirmed yet.
    std::vector<size_t> todo;
    for (size_t i = 0; i < n; ++i) {
      if (!confirmed[i]) todo.push_back(i);
    }
    std::vector<std::optional<inbox::InboxCode>> codes(todo.size());
    co_await run_parallel(todo.size(), config_.parallel_appends, [&, this](size_t j) -> Task<void> {
      return append_into(members[todo[j]], seqs[todo[j]], bytes, item.sender(), ticket, deadline, &codes[j]);
    });
    for (size_t j = 0; j < todo.size(); ++j) {
      const size_t i = todo[j];
      if (!codes[j]) continue;  // unknown: the same seq again
      if (*codes[j] == inbox::INBOX_OK) {
        confirmed[i] = true;
        ++stats_.appends_ok;
      } else if (*codes[j] == inbox::INBOX_STALE_SEQ) {
        ++stats_.stale_seqs;
        stale_seq[i] = seqs[i];
      } else if (*codes[j] == inbox::INBOX_CONFLICT || *codes[j] == inbox::INBOX_INVALID ||
                 *codes[j] == inbox::INBOX_UNAUTHENTICATED || *codes[j] == inbox::INBOX_FORBIDDEN) {
        rt_.error("fanout: inbox refused {} seq {} of {}: code {}", members[i], seqs[i], item.message_id(),
                  static_cast<int>(*codes[j]));
        co_return false;
      }
    }
    if (std::all_of(confirmed.begin(), confirmed.end(), [](bool b) { return b; })) {
      ++stats_.chunks;
      if (config_.group_ack_observer) {
        GroupAckRecord a;
        a.message_id = item.message_id();
        a.sender = item.sender();
        a.client_msg_id = item.client_msg_id();
        a.group_id = item.group_id();
        for (size_t i = 0; i < n; ++i) a.recipients.emplace_back(members[i], seqs[i]);
        config_.group_ack_observer(rt_.node_id(), a);
      }
      // Every member stored in this chunk is told "new data, version <seq>"
      // through the access nodes of its home datacenter (fire-and-forget, as
      // for 1:1 sends: a lost notify only waits for the periodic sync).
      for (size_t i = 0; i < n; ++i) {
        access::notify_user(rt_, endpoint_, config_.directory, config_.shards->home_of(members[i]).value_or(""),
                            members[i], seqs[i]);
        if (config_.notify) config_.notify(rt_.node_id(), members[i], seqs[i]);
      }
      if (config_.chunk_stored) config_.chunk_stored(rt_.node_id(), item.message_id(), chunk);
      co_return true;
    }
    bool any_stale = false;
    for (size_t i = 0; i < n; ++i) any_stale = any_stale || is_stale(i);
    if (any_stale) continue;
    co_await pause();
  }
  co_return false;
}

}  // namespace wx::msg

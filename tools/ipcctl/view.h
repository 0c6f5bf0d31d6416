// What ipcctl knows about a channel: the registry's answer to kList (name, type, owner,
// members) and, for a QUEUE channel on shared memory the caller may read, the ring's
// counters and its reader and writer entries, read straight from the mapped segment.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/registry/client.h"
#include "runtime/registry/protocol.h"
#include "tools/ipcctl/ring2_view.h"
#include "transports/shm/segment.h"
#include "transports/shm/stats.h"

namespace fwipc::ipcctl {

struct Peer {
  uint32_t pid;
  bool alive;
  uint64_t lag = 0;  // readers of a ring: messages behind the tail
  bool reads = false, writes = false, creator = false;
};

// One look at a segment's counters (or a ring v2 channel's: Ring2Observer::stats); not a
// consistent snapshot (writers keep going).
struct RingStats {
  uint64_t tail;   // messages claimed since creation
  uint64_t depth;  // tail minus the slowest active reader's cursor
  uint64_t abandoned, refused;
  uint64_t evictions;  // readers evicted (IPC_OVERFLOW_EVICT)
  uint32_t slots;      // capacity in messages (ring v2: per writer)
  bool closed;
  // Ring v2: false when `tail` (messages) is an estimate: a ring that wrapped no longer
  // holds its first records, so the bytes before the oldest one still there are counted
  // at the average record size (the rings keep no message counter).
  bool messages_exact = true;
};

struct ChannelView {
  registry::ChannelInfo raw;
  uint32_t member_count;
  std::vector<Peer> readers, writers;
  std::optional<RingStats> ring;      // QUEUE on shared memory, readable by us
  std::shared_ptr<shm::Segment> seg;  // layout 4: mapped when ring is set (stat and tail use it)
  std::shared_ptr<Ring2Observer> v2;  // ring v2: set with ring (stat and tail refresh it)
  // The queues in the creator's process (hub, bridge, NAME.call), from the channel's stats
  // page, for those who may read the channel.
  std::optional<stats::Snapshot> queues;
};

// Evictions, whoever counts them: the ring (QUEUE on shared memory), else the hub.
std::optional<uint64_t> evictions_of(const ChannelView& c);

// One request to the registry of dir, never starting one: ipcctl observes, and with no
// registry there is nothing to observe. 0 with the answer (exactly len bytes) in out and
// its first descriptor in *fd (-1: none), its second in *fd2 when not null, or -errno
// (-ECONNREFUSED, -ENOENT: none runs).
int ask_registry(registry::Client& c, const std::string& dir, registry::Op op, uint32_t handle, void* out, size_t len,
                 int* fd, int* fd2 = nullptr);

// Every channel the registry of dir knows, in channel-number order. *err: 0, or the
// -errno that ended the walk early (what came before it is still returned).
std::vector<ChannelView> list_channels(const std::string& dir, int* err);

// The segment's counters, and its active reader and writer entries into readers and
// writers when not null.
RingStats read_ring(const shm::Segment& seg, std::vector<Peer>* readers, std::vector<Peer>* writers);

// Ring capacity in messages: the segment's, else what the requested bytes round to.
uint32_t capacity_msgs(const ChannelView& c);

const char* type_name(uint32_t ipc_type);
const char* transport_name(uint32_t transport);
std::string owner_name(uint32_t uid);  // the user name, else the number

}  // namespace fwipc::ipcctl

// The registry's side of a ring segment (and of a client that closes its own handle):
// taking and giving back reader and writer entries, closing the channel, and recovering
// from members that died. Clients send and receive through ring.h and never call these on
// the hot path (a blocked writer and a stalled reader fall back on the recovery calls).
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "fwipc/types.hpp"
#include "transports/shm/segment.h"

namespace fwipc::shm {

// Joins a reader at the current tail. Returns the entry index; *state_out receives the
// state word that identifies this membership.
Result<uint32_t> join_reader(const Segment& seg, pid_t pid, uint64_t start_time, uint32_t* state_out) noexcept;
// Frees entry idx if it still holds membership `state`; wakes blocked writers. Idempotent.
bool release_reader(const Segment& seg, uint32_t idx, uint32_t state) noexcept;
// The same for writers: an entry per writing handle carries its in-flight claim count.
Result<uint32_t> join_writer(const Segment& seg, pid_t pid, uint64_t start_time, uint32_t* state_out) noexcept;
bool release_writer(const Segment& seg, uint32_t idx, uint32_t state) noexcept;
// Marks the channel closed and wakes everyone waiting on it.
void close_channel(const Segment& seg) noexcept;
// Bumps bridge_epoch and wakes everyone waiting, so that the creator's runtime notices.
void poke_bridge(const Segment& seg) noexcept;

// IPC_OVERFLOW_EVICT (see the paragraph in membership.cc). Called by a writer that found
// the ring full at `tail`: stamps the readers that hold it back and evicts those stamped at
// their current cursor more than evict_after_ms ago. Returns how many it evicted;
// *due_ns: how soon (ns) the next stamp comes due, -1 if none (or not an EVICT ring).
int evict_stuck_readers(const Segment& seg, uint64_t tail, int64_t now_ns, int64_t* due_ns) noexcept;
// Evicts reader entry idx if it still holds active membership `state` (counted, woken).
bool evict_reader(const Segment& seg, uint32_t idx, uint32_t state) noexcept;

// Recovery (see the paragraph in membership.cc).
// If position pos is claimed but uncommitted and no live writer is in flight, the claim
// was a dead writer's: marks it abandoned so readers skip it. True if pos is committed or
// skippable now.
bool recover_claim(const Segment& seg, uint64_t pos) noexcept;
// recover_claim at every reader's cursor (recover_claim wakes the readers).
// Returns how many claims were abandoned.
int recover_stalled(const Segment& seg) noexcept;
// recover_stalled, then frees the reader and writer entries of dead processes.
void reap_dead_entries(const Segment& seg) noexcept;
// Frees the blocked-writer slots of a dead process so readers stop waking it.
void release_sleeper(const Segment& seg, pid_t pid) noexcept;

}  // namespace fwipc::shm

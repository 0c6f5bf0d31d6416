// QUEUE transport: a multi-writer, multi-reader broadcast ring in a sealed memfd segment.
// See layout.h for who owns which field.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <vector>

#include "fwipc/types.hpp"
#include "transports/shm/layout.h"
#include "transports/transport.h"

namespace fwipc::shm {

// A mapped segment. Owns the mapping and the descriptor.
class Segment {
 public:
  Segment() = default;
  Segment(Segment&& o) noexcept;
  Segment& operator=(Segment&& o) noexcept;
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;
  ~Segment();

  // Rounds capacity_bytes to a power-of-two slot count within [kMinSlots, kMaxSlots].
  static Result<uint32_t> slots_for_capacity(uint32_t capacity_bytes) noexcept;
  // Creates, touches (posix_fallocate: no space is an error now, not a SIGBUS later) and
  // seals a new segment.
  static Result<Segment> create(const char* debug_name, uint32_t slot_count, pid_t creator) noexcept;
  // Maps fd (duplicated) after validating magic, version, sizes and seals. -EBADMSG if not
  // a segment of this layout.
  static Result<Segment> attach(int fd) noexcept;

  SegmentHeader* header() const noexcept { return hdr_; }
  int fd() const noexcept { return fd_; }
  uint32_t slot_count() const noexcept { return slot_count_; }
  Slot* slot(uint64_t pos) const noexcept { return slots_ + (pos & (slot_count_ - 1)); }

 private:
  SegmentHeader* hdr_ = nullptr;
  Slot* slots_ = nullptr;
  uint64_t bytes_ = 0;
  uint32_t slot_count_ = 0;  // local copy: never re-read from shared memory
  int fd_ = -1;
};

// Registry-side membership: joins a reader at the current tail. Returns the entry index;
// *state_out receives the state word that identifies this membership.
Result<uint32_t> join_reader(const Segment& seg, pid_t pid, uint64_t start_time, uint32_t* state_out) noexcept;
// Frees entry idx if it still holds membership `state`; wakes blocked writers. Idempotent.
bool release_reader(const Segment& seg, uint32_t idx, uint32_t state) noexcept;
// The same for writers: an entry per writing handle carries its in-flight claim count.
Result<uint32_t> join_writer(const Segment& seg, pid_t pid, uint64_t start_time, uint32_t* state_out) noexcept;
bool release_writer(const Segment& seg, uint32_t idx, uint32_t state) noexcept;
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
// Marks the channel closed and wakes everyone waiting on it.
void close_channel(const Segment& seg) noexcept;
// Bumps bridge_epoch and wakes everyone waiting, so that the creator's runtime notices.
void poke_bridge(const Segment& seg) noexcept;
// Wakes readers sleeping on the futex and pings fd-armed readers.
void notify_readers(const Segment& seg) noexcept;

// A zero-copy loan: a claimed slot whose payload the caller fills before commit().
struct Loan {
  uint64_t pos = 0;
  Slot* slot = nullptr;
  char* data() const noexcept { return slot ? slot->payload : nullptr; }
  static constexpr uint32_t capacity() noexcept { return kMaxPayload; }
  explicit operator bool() const noexcept { return slot != nullptr; }
};

// Which entries of the segment a handle owns (from join_reader / join_writer).
struct Roles {
  int reader_index = -1;  // < 0: cannot receive
  uint32_t reader_state = 0;
  int writer_index = -1;  // < 0: cannot send
  uint32_t writer_state = 0;
};

class ShmRing final : public Transport {
 public:
  ShmRing(Segment seg, Roles roles, pid_t self) noexcept;
  ~ShmRing() override;

  TransportKind kind() const noexcept override { return TransportKind::kShmRing; }
  int send(const MsgHeader& hdr, const void* payload, int64_t timeout_ns) noexcept override;
  // send() with the sender set by the caller: the bridge commits what it read from a
  // socket, stamped with the connection's SO_PEERCRED PID.
  int send_as(uint32_t sender, const MsgHeader& hdr, const void* payload, int64_t timeout_ns) noexcept;
  int receive(MsgHeader* hdr, void* buf, uint32_t cap, int64_t timeout_ns) noexcept override;
  // One claim (one CAS, one wakeup check) for as many messages as the ring has room for.
  int send_batch(const MsgHeader* hdrs, const void* const* payloads, uint32_t n, int64_t timeout_ns) noexcept override;
  // Visits messages in place (no copy) and releases them with one cursor update.
  int consume(uint32_t max, Visitor fn, void* ctx, int64_t timeout_ns) noexcept override;
  int notify_fd() noexcept override;
  void forget_after_fork() noexcept override;

  // While on, calls return -EINTR once bridge_epoch has moved since (the bridge's cue).
  void watch_bridge_epoch(bool on) noexcept;
  bool bridge_epoch_moved() const noexcept;

  // Claims a slot for zero-copy filling; -EAGAIN/-ETIMEDOUT/-EPIPE as send().
  int loan(Loan* out, int64_t timeout_ns) noexcept;
  // Publishes a loan; hdr.size must be <= kMaxPayload (else -EMSGSIZE, loan abandoned).
  int commit(Loan* loan, const MsgHeader& hdr) noexcept;
  // Publishes the slot as a skip record so readers pass over it.
  void abandon(Loan* loan) noexcept;

  const Segment& segment() const noexcept { return seg_; }
  const Roles& roles() const noexcept { return roles_; }

  // Spin budget before sleeping: FWIPC_SPIN_NS at first use (default 50 us), or as set.
  static int64_t spin_ns() noexcept;
  static void set_spin_ns(int64_t ns) noexcept;

 private:
  struct Pending {
    uint64_t pos;
    MsgHeader hdr;
    char payload[kMaxPayload];
  };

  // Claims up to `want` consecutive positions from *pos; returns how many (>= 1) or -errno.
  int claim(uint64_t* pos, uint32_t want, int64_t timeout_ns) noexcept;
  void fill(Slot* s, const MsgHeader& h, uint32_t sender) noexcept;
  void commit_slot(uint64_t pos, Slot* s, uint32_t priority, uint64_t flag) noexcept;
  void end_claim() noexcept;
  template <typename Attempt>
  int receive_with(Attempt attempt, int64_t timeout_ns) noexcept;
  int try_consume(uint32_t max, Visitor fn, void* ctx) noexcept;
  int try_receive_closed() noexcept;
  int sleep_for_space(uint64_t pos, int64_t slice_ns) noexcept;
  uint64_t compute_limit(uint64_t tail) noexcept;
  void publish(uint64_t pos, Slot* s, uint32_t priority, uint64_t flag) noexcept;
  int try_receive(MsgHeader* hdr, void* buf, uint32_t cap) noexcept;
  int take_from_heap(MsgHeader* hdr, void* buf, uint32_t cap) noexcept;
  int drain_into_heap() noexcept;
  void advance(uint64_t next) noexcept;
  bool stalled_on_claim() const noexcept;
  void maybe_recover(int64_t now) noexcept;
  bool data_ready() const noexcept;
  int wait_for_data(int64_t deadline_ns) noexcept;
  void rearm_notify() noexcept;

  Segment seg_;
  SegmentHeader* hdr_;
  Roles roles_;
  ReaderEntry* me_ = nullptr;
  WriterEntry* wme_ = nullptr;
  uint32_t pid_;
  // Writer: a bound on claimable positions computed from the cursors earlier. Bounds only
  // grow (cursors only advance; joiners start at the tail), so any stale value is safe.
  // Shared by the threads sending on this handle (release/acquire, see compute_limit).
  std::atomic<uint64_t> limit_{0};
  // Reader: next position, and the priority heap (see try_receive).
  uint64_t cursor_ = 0;
  uint64_t prio_seen_ = 0;
  std::vector<Pending> heap_;
  int corrupt_ = 0;
  uint64_t stall_pos_ = ~0ull;  // cursor at which a claim was first seen pending
  int64_t stall_since_ = 0;
  int notify_fd_ = -1;
  // Set by the bridge from whichever thread notices the epoch, read by every call.
  std::atomic<bool> watch_epoch_{false};
  std::atomic<uint32_t> epoch_seen_{0};
};

}  // namespace fwipc::shm

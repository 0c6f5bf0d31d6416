// QUEUE transport, the client's side: a multi-writer, multi-reader broadcast ring in a
// sealed memfd segment (segment.h). See layout.h for who owns which field and
// membership.h for the registry's side. The class is implemented in ring.cc (the handle),
// ring_writer.cc, ring_reader.cc and notify.cc.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "base/time.h"
#include "fwipc/types.hpp"
#include "transports/shm/layout.h"
#include "transports/shm/segment.h"
#include "transports/transport.h"

namespace fwipc::shm {

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
  bool bridge_epoch_moved() const noexcept {
    return watch_epoch_.load(std::memory_order_relaxed) &&
           hdr_->bridge_epoch.load(std::memory_order_relaxed) != epoch_seen_.load(std::memory_order_relaxed);
  }

  // Claims a slot for zero-copy filling; -EAGAIN/-ETIMEDOUT/-EPIPE as send().
  int loan(Loan* out, int64_t timeout_ns) noexcept;
  // Publishes a loan; hdr.size must be <= kMaxPayload (else -EMSGSIZE, loan abandoned).
  int commit(Loan* loan, const MsgHeader& hdr) noexcept;
  // Publishes the slot as a skip record so readers pass over it.
  void abandon(Loan* loan) noexcept;

  const Segment& segment() const noexcept { return seg_; }
  // IPC_OVERFLOW_EVICT: this handle's reader entry was evicted (receive gives what it had
  // taken already, then -ENOBUFS).
  bool evicted() noexcept { return check_evicted(); }
  uint64_t evictions() const noexcept override { return hdr_->evictions.load(std::memory_order_relaxed); }
  bool was_evicted() const noexcept override {
    return evict_ && me_ != nullptr && me_->state.load(std::memory_order_relaxed) != roles_.reader_state;
  }
  const Roles& roles() const noexcept { return roles_; }

  // Spin budget of a blocking receive before it sleeps, process-wide (the runtime sets it
  // from FWIPC_SPIN_NS, runtime/config.h).
  static constexpr int64_t kDefaultSpinNs = 50'000;
  static int64_t spin_ns() noexcept;
  static void set_spin_ns(int64_t ns) noexcept;

 private:
  // Timing of the slow paths, all in one place.
  static constexpr int64_t kLivenessSliceNs = 100'000'000;  // blocked writers re-check reader liveness
  static constexpr int64_t kStallNs = 2'000'000;            // a pending claim this old gets a liveness check
  static constexpr int64_t kStallSliceNs = 5'000'000;       // readers behind a pending claim re-check it
  static constexpr uint64_t kCorruptLimit = 0;              // compute_limit: a reader entry is impossible

  struct Pending {
    uint64_t pos;
    MsgHeader hdr;
    char payload[kMaxPayload];
    uint32_t priority() const noexcept { return hdr.priority; }
    uint64_t arrival() const noexcept { return pos; }
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
  int wait_for_data(const Deadline& deadline) noexcept;
  void rearm_notify() noexcept;
  // IPC_OVERFLOW_EVICT: true once our reader entry no longer holds our membership (a
  // writer evicted it). Sticky. Only ever true on an EVICT ring.
  bool check_evicted() noexcept;
  int evicted_receive(MsgHeader* hdr, void* buf, uint32_t cap) noexcept;

  Segment seg_;
  SegmentHeader* hdr_;
  Roles roles_;
  ReaderEntry* me_ = nullptr;
  WriterEntry* wme_ = nullptr;
  uint32_t pid_;
  // Writer: a bound on claimable positions computed from the cursors earlier. Bounds only
  // grow (cursors only advance; joiners start at the tail), so any stale value is safe.
  // Shared by the threads sending on this handle (SYNC POINT limit, see compute_limit).
  // On its own cache line: every sending thread writes it, so it must not share a line
  // with the read-mostly fields above or the reader's fields below.
  alignas(kCacheLine) std::atomic<uint64_t> limit_{0};
  // Reader (one receiving thread): next position, and the priority heap (see try_receive).
  alignas(kCacheLine) uint64_t cursor_ = 0;
  uint64_t prio_seen_ = 0;
  std::vector<Pending> heap_;
  int corrupt_ = 0;
  uint64_t stall_pos_ = ~0ull;  // cursor at which a claim was first seen pending
  int64_t stall_since_ = 0;
  int notify_fd_ = -1;
  bool evict_ = false;    // an IPC_OVERFLOW_EVICT ring (header line 0, read once)
  bool evicted_ = false;  // check_evicted() saw our entry taken
  // Set by the bridge from whichever thread notices the epoch, read by every call.
  std::atomic<bool> watch_epoch_{false};
  std::atomic<uint32_t> epoch_seen_{0};
};

}  // namespace fwipc::shm

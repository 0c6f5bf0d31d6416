// QUEUE transport on ring v2 (RING-V2.md): a handle's own ring (writer) and own reader
// page (reader) from the registry at open, the channel directory and bells mapped beside
// them, and everything else fetched through Peers when the directory's generation moves:
// readers map each writer's ring read-only, writers map each reader's page read-only.
// The sender of a message is the directory's PID for the ring it came through.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fwipc/types.hpp"
#include "transports/shm/directory.h"
#include "transports/shm/wring.h"
#include "transports/transport.h"

namespace fwipc::shm::v2 {

// What a handle asks the registry for after open (runtime/registry/protocol.h).
class Peers {
 public:
  virtual ~Peers() = default;
  // A read-only descriptor (the caller's to close) of ring idx while the directory holds
  // `state` there and its writer has sealed it (-EAGAIN: not sealed yet), or of reader
  // page idx. -ESTALE: the entry changed.
  virtual int ring_fd(uint32_t idx, uint64_t state) noexcept = 0;
  virtual int page_fd(uint32_t idx, uint64_t state) noexcept = 0;
  // This joining reader has set its cursors: count it from now on. 0 or -errno.
  virtual int reader_ready(uint32_t idx, uint64_t state) noexcept = 0;
  // IPC_OVERFLOW_EVICT: reader idx has held this member's ring full at `cursor` longer
  // than the channel's bound. No answer: the registry checks and decides.
  virtual void evict(uint32_t reader_idx, uint64_t reader_state, uint64_t cursor) noexcept = 0;
  // Once open: what this handle holds (-1: no such role), so that a registry restarted
  // since can be asked for a membership for it again.
  virtual void held(uint64_t instance_id, int32_t ring_index, uint64_t ring_state, int32_t reader_index,
                    uint64_t reader_state) noexcept {
    (void)instance_id, (void)ring_index, (void)ring_state, (void)reader_index, (void)reader_state;
  }
  // The handle is closed (its owner's call; the transport never makes it). 0 or -errno.
  virtual int leave() noexcept { return 0; }
};

// What open gave this handle (descriptors are taken over; -1 where absent).
struct Roles2 {
  int dir_fd = -1;    // read-only
  int bells_fd = -1;  // read-write
  int ring_fd = -1;   // own ring, read-write (writers)
  int32_t ring_index = -1;
  uint64_t ring_state = 0;
  int page_fd = -1;  // own reader page, read-write (readers)
  int32_t reader_index = -1;
  uint64_t reader_state = 0;
  std::string channel;  // its name: the rings' memfds are "fwipc-ring:NAME"
};

class ShmRing2 final : public Transport {
 public:
  // Maps what roles names, seals the own ring against further writable mappings,
  // and for a reader attaches every ring and reports ready. Takes the descriptors.
  static Result<std::unique_ptr<ShmRing2>> open(Roles2 roles, std::shared_ptr<Peers> peers, pid_t self) noexcept;
  ~ShmRing2() override;

  TransportKind kind() const noexcept override { return TransportKind::kShmRing; }
  int send(const MsgHeader& hdr, const void* payload, int64_t timeout_ns) noexcept override;
  int send_batch(const MsgHeader* hdrs, const void* const* payloads, uint32_t n, int64_t timeout_ns) noexcept override;
  int receive(MsgHeader* hdr, void* buf, uint32_t cap, int64_t timeout_ns) noexcept override;
  int consume(uint32_t max, Visitor fn, void* ctx, int64_t timeout_ns) noexcept override;
  int notify_fd() noexcept override;
  void forget_after_fork() noexcept override;
  bool was_evicted() const noexcept override { return evicted_.load(std::memory_order_relaxed); }
  uint64_t evictions() const noexcept override { return dir_.evictions(); }

  // Zero copy: a loan holds the ring's send lock until commit() or abandon() (same thread).
  int loan(WLoan* out, int64_t timeout_ns) noexcept;
  int commit(WLoan* l, const MsgHeader& hdr) noexcept;
  void abandon(WLoan* l) noexcept;

  // Rings this reader reads now, and records it restarted past after being lapped while
  // its writers did not count it yet (RingReader::attach_at).
  size_t rings() const noexcept;
  uint64_t lapped() const noexcept;
  const DirReader& directory() const noexcept { return dir_; }

  static constexpr int64_t kSliceNs = 100'000'000;  // sleeps re-check the directory this often
  // Spin budget of a blocking receive before it sleeps, process-wide (FWIPC_SPIN_NS).
  static int64_t spin_ns() noexcept;
  static void set_spin_ns(int64_t ns) noexcept;

  struct Map;  // a mapping with its descriptor (ring2.cc)

 private:
  ShmRing2() = default;
  struct Ring;
  struct Page;
  int setup(Roles2& roles, pid_t self) noexcept;
  template <typename Op>
  int with_room(Op op, int64_t timeout_ns) noexcept;
  int lock_writer(int64_t timeout_ns) noexcept;
  // Reader: attach new rings, drop finished ones, notice our own eviction. Under recv_mu_.
  void refresh_reader(bool force) noexcept;
  bool attach_ring(uint32_t idx, const EntryView& e, uint64_t guard_gen) noexcept;
  int ring_fd_of_writer(uint32_t idx, const EntryView& e) noexcept;
  void detach_ring(uint32_t idx) noexcept;
  // attempt: a receive from the rings; queued: one from what was already taken (the
  // heap), all an evicted reader still gets.
  template <typename Attempt, typename Queued>
  int receive_with(Attempt attempt, Queued queued, int64_t timeout_ns) noexcept;
  // EVICT channels: after a copy from a ring, were we evicted meanwhile? Under recv_mu_.
  bool evicted_since_copy() noexcept;
  bool data_ready() noexcept;
  bool any_guarded() const noexcept;
  void rearm_notify() noexcept;

  std::shared_ptr<Peers> peers_;
  std::string channel_;
  DirReader dir_;
  std::shared_ptr<Map> dir_map_, bells_map_;
  bool forgotten_ = false;

  // Writer: shared by the process's handles on this channel (ring2.cc).
  struct Writer;
  std::shared_ptr<Writer> wr_;

  // Reader.
  std::mutex recv_mu_;
  std::unique_ptr<Map> page_map_;
  ReaderPage* page_ = nullptr;
  int32_t reader_index_ = -1;
  uint64_t reader_state_ = 0;
  uint64_t rgen_ = ~0ull;
  std::vector<std::unique_ptr<Ring>> rings_;  // by ring index
  std::unique_ptr<RingSet> set_;
  std::unique_ptr<ReaderSleep> sleep_;
  int64_t retry_at_ns_ = 0;  // rings not sealed yet: ask again then
  int64_t retry_ns_ = 0;
  bool retry_ = false;
  bool joined_ = false;    // kReaderReady answered: writers that start from now count us
  uint32_t draining_ = 0;  // attached rings whose writer is gone
  std::atomic<bool> evicted_{false};
  int notify_fd_ = -1;
};

}  // namespace fwipc::shm::v2

// The transport of a QUEUE channel's creator.
//
// Only processes of the channel owner's uid (and root) map the ring: a mapping is
// read-write, so anyone holding one could write any sender PID into a slot. The registry
// sends every other process to a socket that this creator serves, where the kernel names
// the peer (SO_PEERCRED). The bridge commits those writers' frames into the ring under that
// PID, and feeds each such reader from the ring reader entry the registry joined for it at
// its open(): it gets exactly what a ring reader would, with the same back-pressure.
//
// Like a SOCKET channel's hub, the bridge works on the runtime's progress thread once a
// process of another uid has opened the channel, and inside the creator's calls on it.
// Until the first such process opens the channel (the registry bumps bridge_epoch), every
// call goes straight to the ring and nothing runs on the progress thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>

#include "base/time.h"
#include "transports/frame.h"
#include "transports/progress/progress.h"
#include "transports/shm/ring.h"
#include "transports/socket/hub.h"
#include "transports/transport.h"

namespace fwipc::bridge {

class Bridge final : public Transport, private progress::Work {
 public:
  // listen_fd: the channel's socket, bound by the registry with the channel's mode.
  Bridge(std::unique_ptr<shm::ShmRing> ring, int listen_fd, sock::Owner owner, uint32_t capacity_msgs,
         pid_t self) noexcept;
  ~Bridge() override;

  TransportKind kind() const noexcept override { return TransportKind::kShmRing; }
  int send(const MsgHeader& hdr, const void* payload, int64_t timeout_ns) noexcept override;
  int receive(MsgHeader* hdr, void* buf, uint32_t cap, int64_t timeout_ns) noexcept override;
  int send_batch(const MsgHeader* hdrs, const void* const* payloads, uint32_t n, int64_t timeout_ns) noexcept override;
  int consume(uint32_t max, Visitor fn, void* ctx, int64_t timeout_ns) noexcept override;
  int notify_fd() noexcept override;
  uint64_t evictions() const noexcept override { return ring_->evictions(); }
  bool was_evicted() const noexcept override { return ring_->was_evicted(); }
  // The bridge's hub publishes (bridged readers' queues, writers' frames waiting for room).
  void set_stats(std::shared_ptr<stats::Mapping> page) noexcept override {
    if (hub_) hub_->set_stats(std::move(page));
  }
  void forget_after_fork() noexcept override;

  int loan(shm::Loan* out, int64_t timeout_ns) noexcept;
  shm::ShmRing* ring() noexcept { return ring_.get(); }

 private:
  struct Pump {
    uint32_t index, state;
    std::unique_ptr<shm::ShmRing> ring;  // a view of the ring as that reader's entry
  };
  static bool admit(void* self, pid_t pid, uint32_t index, uint32_t state);
  template <typename Op>
  int call(Op op, int64_t timeout_ns, bool writes) noexcept;
  void activate() noexcept;
  int ensure_epoll(bool reading) noexcept;
  void watch(int fd) noexcept;
  void service() noexcept;
  void pump_readers() noexcept;
  void wait(const Deadline& deadline, bool for_space) noexcept;
  // On the progress thread: service(), then what to be woken for next (arm_progress()).
  void progress() noexcept override;
  void arm_progress() noexcept;

  std::unique_ptr<shm::ShmRing> ring_;  // thread-safe as the API promises (sends from any thread)
  // Ids may be sent on from several threads while one receives: mu_ guards the rest.
  std::mutex mu_;
  std::deque<frame::Frame> sink_;   // bridged writers' frames, waiting for ring space
  std::unique_ptr<sock::Hub> hub_;  // null if it could not be made: never activated then
  std::map<int, Pump> pumps_;       // by the reader's connection
  int ep_ = -1;                     // the ring's, the hub's and the pumps' descriptors
  bool ring_watched_ = false;       // the ring's own descriptor is in ep_
  std::atomic<bool> active_{false};
  // The progress thread's view (guarded by mu_): the hub's descriptor, each bridged reader's
  // ring entry while it has room, and a nap timer while writers' frames wait for ring space
  // (which has no descriptor).
  int prog_ep_ = -1;
  int nap_fd_ = -1;
  bool registered_ = false;
};

}  // namespace fwipc::bridge

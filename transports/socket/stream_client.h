// The member side shared by the SOCKET and PIPE transports: an inbox filled from one
// descriptor, the receive loop around it, and the pollable notify descriptor.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>

#include "transports/socket/inbox.h"
#include "transports/transport.h"

namespace fwipc::sock {

class StreamClient : public Transport {
 public:
  ~StreamClient() override;  // closes what notify_fd() made; subclasses close their own
  int receive(MsgHeader* hdr, void* buf, uint32_t cap, int64_t timeout_ns) noexcept final;
  // Readable while the inbox holds a message or read_fd has data (or, PIPE, the hub is gone).
  int notify_fd() noexcept final;
  void forget_after_fork() noexcept final {}  // descriptors only: closing them is local
  bool was_evicted() const noexcept final { return evicted_.load(std::memory_order_relaxed); }

 protected:
  // read_fd: where this member's frames arrive, -1 if it does not read (receive() and
  // notify_fd() then fail with -EBADF). gone_fd: POLLERR there means the hub is gone, or -1.
  StreamClient(int read_fd, int gone_fd, uint32_t capacity_msgs, pid_t self) noexcept;

  // Moves what has arrived on read_fd into inbox_, at most capacity_ messages: the rest
  // stays in the kernel, so a full inbox holds the hub (and the writers) back.
  virtual void fill() noexcept = 0;
  // Asked before the inbox: an error to report ahead of any queued message, or 0.
  virtual int error_first() noexcept { return 0; }
  // Asked when the inbox is empty: a negative errno to return, 0 to wait for more, or
  // kFillAgain to look again at once.
  static constexpr int kFillAgain = 1;
  virtual int when_empty() noexcept = 0;

  void inbox_changed() noexcept;

  Inbox inbox_;
  // The hub's kEvicted came (IPC_OVERFLOW_EVICT): nothing follows it; once the inbox is
  // empty every receive is -ENOBUFS.
  std::atomic<bool> evicted_{false};
  const uint32_t capacity_;
  const uint32_t pid_;

 private:
  const int read_fd_, gone_fd_;
  int ep_ = -1, evfd_ = -1;  // made on the first notify_fd()
  bool ev_set_ = false;
};

}  // namespace fwipc::sock

// The priority-ordered inbox of a SOCKET/PIPE member: messages that reached this process,
// waiting for its receive().
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "transports/frame.h"
#include "transports/message.h"

namespace fwipc::sock {

// Highest priority first, arrival order within one priority (delivered_later()). Unbounded:
// the owner bounds it (a client stops reading its descriptor at its capacity, the hub
// stops reading writers), so back-pressure reaches the kernel buffers, not this queue.
class Inbox {
 public:
  void push(const frame::Frame& f);
  bool empty() const noexcept { return heap_.empty(); }
  size_t size() const noexcept { return heap_.size(); }
  // Copies the top message out and removes it; not to be called when empty(). -EMSGSIZE if cap is too small: *hdr is
  // filled (the caller learns the size) and the message stays at the top.
  int pop(MsgHeader* hdr, void* buf, uint32_t cap) noexcept;

 private:
  struct Item {
    uint64_t seq;  // arrival number: the tie-break within one priority
    frame::Frame f;
    uint32_t priority() const noexcept { return f.priority; }
    uint64_t arrival() const noexcept { return seq; }
  };
  std::vector<Item> heap_;
  uint64_t seq_ = 0;
};

}  // namespace fwipc::sock

// One interface for every channel transport, so the runtime core (handle table, C and C++
// APIs) is the same whatever carries the bytes.
#pragma once

#include <cerrno>
#include <cstdint>
#include <memory>

#include "transports/message.h"

namespace fwipc {

namespace stats {
class Mapping;
}

class Transport {
 public:
  virtual ~Transport() = default;
  virtual TransportKind kind() const noexcept = 0;

  // Sends hdr.size bytes; hdr.sender is filled in by the transport. -EAGAIN when full and
  // timeout_ns == 0, -ETIMEDOUT when it runs out, -EPIPE when the channel is gone.
  virtual int send(const MsgHeader& hdr, const void* payload, int64_t timeout_ns) noexcept = 0;

  // Takes the next message for this process: header into *hdr, payload into buf. Returns
  // the payload size; -EMSGSIZE (message kept, hdr->size says what is needed) if cap is too
  // small; -EAGAIN when nothing waits and timeout_ns == 0; -ETIMEDOUT; -EPIPE when the
  // channel is closed and drained.
  virtual int receive(MsgHeader* hdr, void* buf, uint32_t cap, int64_t timeout_ns) noexcept = 0;

  // Sends hdrs[i]/payloads[i] in order; returns how many were sent (all, unless an error
  // stopped it after some) or -errno if none. Transports without a cheaper way loop.
  virtual int send_batch(const MsgHeader* hdrs, const void* const* payloads, uint32_t n, int64_t timeout_ns) noexcept {
    uint32_t i = 0;
    for (; i < n; ++i) {
      const int rc = send(hdrs[i], payloads[i], timeout_ns);
      if (rc < 0) return i > 0 ? static_cast<int>(i) : rc;
    }
    return static_cast<int>(i);
  }

  // Calls fn for up to max waiting messages (payload valid only during the call), waiting
  // like receive() for the first. Returns how many, or -errno as receive(). The C API's
  // ipc_visit_fn itself, so ipc_consume adds no call per message.
  using Visitor = void (*)(void* ctx, const MsgHeader* hdr, const void* payload);
  virtual int consume(uint32_t max, Visitor fn, void* ctx, int64_t timeout_ns) noexcept {
    if (max == 0) return -EINVAL;
    char buf[kMaxPayloadBytes];
    MsgHeader h;
    const int rc = receive(&h, buf, sizeof buf, timeout_ns);
    if (rc < 0) return rc;
    fn(ctx, &h, buf);
    return 1;
  }

  // IPC_OVERFLOW_EVICT: readers evicted from the channel as far as this id sees it (QUEUE:
  // the ring's count; a SOCKET/PIPE creator: its hub's; other ids 0), and whether this id's
  // own reader was evicted. Safe from any thread.
  virtual uint64_t evictions() const noexcept { return 0; }
  virtual bool was_evicted() const noexcept { return false; }
  // A creator's transport publishes its queue counters (hub, bridge) in the channel's
  // stats page from now on (transports/shm/stats.h). Others have none to publish.
  virtual void set_stats(std::shared_ptr<stats::Mapping>) noexcept {}

  // A descriptor readable while a message waits for this reader (created on first call).
  virtual int notify_fd() noexcept = 0;

  // In a forked child: drop this process's references (mappings, descriptors) without
  // touching shared state, which still belongs to the parent.
  virtual void forget_after_fork() noexcept = 0;
};

}  // namespace fwipc

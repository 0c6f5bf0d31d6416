// One interface for every channel transport, so the runtime core (handle table, C and C++
// APIs) is the same whatever carries the bytes.
#pragma once

#include <cerrno>
#include <cstdint>

namespace fwipc {

// The largest payload any transport carries (IPC_MAX_PAYLOAD).
inline constexpr uint32_t kMaxPayloadBytes = 512;

enum class TransportKind : uint32_t { kShmRing = 0, kSocket = 1, kPipe = 2 };

// A message header as the runtime sees it; the payload travels separately so receives can
// copy straight into the caller's buffer.
struct MsgHeader {
  uint32_t type;
  uint32_t size;
  uint32_t sender;
  uint32_t receiver;
  uint32_t priority;
};

// Delivery order among waiting messages, as a heap's less-than: higher priority first,
// then arrival order. a and b are (priority, arrival) pairs.
inline bool delivered_later(uint32_t prio_a, uint64_t arrival_a, uint32_t prio_b, uint64_t arrival_b) noexcept {
  if (prio_a != prio_b) return prio_a < prio_b;
  return arrival_a > arrival_b;
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
  // like receive() for the first. Returns how many, or -errno as receive().
  using Visitor = void (*)(void* ctx, const MsgHeader& hdr, const char* payload);
  virtual int consume(uint32_t max, Visitor fn, void* ctx, int64_t timeout_ns) noexcept {
    if (max == 0) return -EINVAL;
    char buf[kMaxPayloadBytes];
    MsgHeader h;
    const int rc = receive(&h, buf, sizeof buf, timeout_ns);
    if (rc < 0) return rc;
    fn(ctx, h, buf);
    return 1;
  }

  // A descriptor readable while a message waits for this reader (created on first call).
  virtual int notify_fd() noexcept = 0;

  // In a forked child: drop this process's references (mappings, descriptors) without
  // touching shared state, which still belongs to the parent.
  virtual void forget_after_fork() noexcept = 0;
};

}  // namespace fwipc

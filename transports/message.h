// The one message header of the runtime. The five fields of IPC_MESSAGE (ipc.h, the public
// ABI) travel in every transport's record: shm::Slot, frame::Frame and IPC_MESSAGE itself.
// Records keep their own layout (each is an ABI of its own, asserted beside it); these
// templates are the only place the fields are copied between them.
#pragma once

#include <cstdint>

#include "fwipc/types.hpp"
#include "ipc.h"

namespace fwipc {

// The largest payload any transport carries.
inline constexpr uint32_t kMaxPayloadBytes = IPC_MAX_PAYLOAD;

// MsgHeader (fwipc/types.hpp) is the public IPC_HEADER; the payload travels separately so
// receives can copy straight into the caller's buffer.

// The header of any record with the five fields (shm::Slot, frame::Frame, IPC_MESSAGE).
template <typename Record>
inline MsgHeader header_of(const Record& r) noexcept {
  return MsgHeader{r.type, r.size, r.sender, r.receiver, r.priority};
}

// Writes h into such a record; the sender is given separately because only the runtime
// may choose it (the caller's hdr.sender is never trusted).
template <typename Record>
inline void put_header(Record* r, const MsgHeader& h, uint32_t sender) noexcept {
  r->type = h.type;
  r->size = h.size;
  r->sender = sender;
  r->receiver = h.receiver;
  r->priority = h.priority;
}

// Delivery order among waiting messages, as a heap's less-than: higher priority first,
// then arrival order. a and b are (priority, arrival) pairs.
inline bool delivered_later(uint32_t prio_a, uint64_t arrival_a, uint32_t prio_b, uint64_t arrival_b) noexcept {
  if (prio_a != prio_b) return prio_a < prio_b;
  return arrival_a > arrival_b;
}

// delivered_later() as a heap's comparator, for queued items that say their priority()
// and arrival(): the ring reader's heap and the SOCKET/PIPE inbox.
struct DeliveredLater {
  template <typename Item>
  bool operator()(const Item& a, const Item& b) const noexcept {
    return delivered_later(a.priority(), a.arrival(), b.priority(), b.arrival());
  }
};

}  // namespace fwipc

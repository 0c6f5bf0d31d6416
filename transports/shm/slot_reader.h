// Reading one slot's record at a known position: the commit word, then the header, then
// (for a copy) the payload and a re-check of the commit word. The one decoder of a slot,
// shared by ShmRing's reader (fast path, heap drain, consume) and ipcctl's tail (an
// observer without a cursor entry, which also checks the tail for laps).
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>

#include "transports/message.h"
#include "transports/shm/layout.h"

namespace fwipc::shm {

struct SlotRead {
  const Slot* slot;
  uint64_t pos;
  SlotState state;
  MsgHeader hdr;  // valid when state == kReady; size is a peer's word until size_ok()

  // A size a copy or a visit may trust.
  bool size_ok() const noexcept { return hdr.size <= kMaxPayload; }
  // Broadcast (receiver 0) or addressed to this process.
  bool addressed_to(uint32_t pid) const noexcept { return hdr.receiver == 0 || hdr.receiver == pid; }
  // The payload in place: stable while the reader's cursor keeps writers off the slot.
  const char* payload() const noexcept { return slot->payload; }

  // Copies hdr.size bytes (the caller checked size_ok() and its capacity) into buf, or
  // nothing when buf is null, then re-checks the commit word seqlock-style. False: the slot
  // no longer holds pos's record (a peer lapped us or forged our entry), the copy is torn.
  bool copy_to(void* buf) const noexcept {
    if (buf != nullptr) std::memcpy(buf, slot->payload, hdr.size);
    // Orders the copy before the re-read below (and, for ipcctl, before its tail load).
    std::atomic_thread_fence(std::memory_order_acquire);
    return slot->seq.load(std::memory_order_relaxed) == pos + 1;
  }
};

inline SlotRead read_slot(const Slot* s, uint64_t pos) noexcept {
  // SYNC POINT READ: commit. Seeing pos + 1 makes the writer's record (header, payload)
  // visible.
  const SlotState st = slot_state(s->seq.load(std::memory_order_acquire), pos);
  if (st != SlotState::kReady) return SlotRead{s, pos, st, MsgHeader{}};
  return SlotRead{s, pos, st, header_of(*s)};
}

}  // namespace fwipc::shm
